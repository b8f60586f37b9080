//! A real OpenAI-compatible upstream on 127.0.0.1:0 for the proxy tests (actix-web), with
//! knobs: fail with a status, answer slowly, or hold a stream until the test releases it.

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use bytes::Bytes;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// Token counts every answer reports.
pub const PROMPT_TOKENS: u64 = 1000;
pub const COMPLETION_TOKENS: u64 = 500;
pub const EMBEDDING_TOKENS: u64 = 200;

#[derive(Default)]
pub struct Knobs {
    /// Non-zero: answer every call with this status.
    pub fail_status: AtomicU16,
    /// Wait this long before answering.
    pub delay_ms: AtomicU64,
    /// Streams send their first chunk, then wait for this before the rest.
    pub release: Notify,
    pub hold_streams: std::sync::atomic::AtomicBool,
    /// Streams wait this long before each chunk after the first.
    pub stream_gap_ms: AtomicU64,
    /// The last request bodies received.
    pub received: Mutex<Vec<Value>>,
    /// Answers (and streams, even when asked) carry no `usage`.
    pub omit_usage: std::sync::atomic::AtomicBool,
    /// Answers report 1,000,000 completion tokens (more than any reservation allows).
    pub inflate_usage: std::sync::atomic::AtomicBool,
}

#[derive(Clone)]
pub struct Upstream {
    pub url: String,
    pub knobs: Arc<Knobs>,
}

impl Upstream {
    pub async fn start() -> Upstream {
        let knobs = Arc::new(Knobs::default());
        let data = web::Data::from(knobs.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind upstream");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route(
                    "/v1/models",
                    web::get().to(|| async {
                        HttpResponse::Ok().json(
                            json!({"object": "list", "data": [{"id": "any", "object": "model"}]}),
                        )
                    }),
                )
                .route("/v1/chat/completions", web::post().to(completion))
                .route("/v1/completions", web::post().to(completion))
                .route("/v1/embeddings", web::post().to(embeddings))
        })
        .workers(1)
        .listen(listener)
        .expect("listen")
        .run();
        tokio::spawn(server);
        Upstream { url, knobs }
    }

    pub fn last_request(&self) -> Value {
        self.knobs
            .received
            .lock()
            .unwrap()
            .last()
            .cloned()
            .unwrap_or(Value::Null)
    }
}

fn usage(knobs: &Knobs) -> Value {
    if knobs.omit_usage.load(Ordering::SeqCst) {
        return Value::Null;
    }
    let completion = if knobs.inflate_usage.load(Ordering::SeqCst) {
        1_000_000
    } else {
        COMPLETION_TOKENS
    };
    json!({"prompt_tokens": PROMPT_TOKENS, "completion_tokens": completion, "total_tokens": PROMPT_TOKENS + completion})
}

async fn gate(knobs: &Knobs, body: &Value) -> Option<HttpResponse> {
    knobs.received.lock().unwrap().push(body.clone());
    let delay = knobs.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    match knobs.fail_status.load(Ordering::SeqCst) {
        0 => None,
        status => Some(
            HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
                .json(json!({"error": {"message": "upstream failure"}})),
        ),
    }
}

async fn completion(
    knobs: web::Data<Knobs>,
    req: HttpRequest,
    body: web::Json<Value>,
) -> HttpResponse {
    let body = body.into_inner();
    if let Some(failed) = gate(&knobs, &body).await {
        return failed;
    }
    let model = body["model"].as_str().unwrap_or_default().to_owned();
    let chat = req.path().contains("chat");
    if body["stream"] == true {
        let include_usage = body["stream_options"]["include_usage"] == true;
        let knobs = knobs.into_inner();
        let stream = async_stream(model, chat, include_usage, knobs);
        return HttpResponse::Ok()
            .content_type("text/event-stream")
            .streaming(stream);
    }
    let choice = if chat {
        json!({"index": 0, "message": {"role": "assistant", "content": "Hello!"}, "finish_reason": "stop"})
    } else {
        json!({"index": 0, "text": "Hello!", "finish_reason": "stop"})
    };
    HttpResponse::Ok().json(json!({
        "id": "cmpl-1", "object": if chat { "chat.completion" } else { "text_completion" }, "created": 1, "model": model,
        "choices": [choice], "usage": usage(&knobs),
    }))
}

fn async_stream(
    model: String,
    chat: bool,
    include_usage: bool,
    knobs: Arc<Knobs>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    let chunk = move |content: &str| {
        let delta = if chat {
            json!({"index": 0, "delta": {"content": content}})
        } else {
            json!({"index": 0, "text": content})
        };
        Bytes::from(format!(
            "data: {}\n\n",
            json!({"id": "c", "object": "chunk", "model": model, "choices": [delta]})
        ))
    };
    let first = chunk("Hel");
    let rest = vec![chunk("lo"), chunk("!")];
    futures_util::stream::unfold(0u8, move |step| {
        let (first, rest, knobs) = (first.clone(), rest.clone(), knobs.clone());
        async move {
            let gap = knobs.stream_gap_ms.load(Ordering::SeqCst);
            if step > 0 && gap > 0 {
                tokio::time::sleep(Duration::from_millis(gap)).await;
            }
            let out = match step {
                0 => first,
                1 => {
                    if knobs.hold_streams.load(Ordering::SeqCst) {
                        knobs.release.notified().await;
                    }
                    Bytes::from(rest.iter().flat_map(|b| b.to_vec()).collect::<Vec<u8>>())
                }
                2 if include_usage && !knobs.omit_usage.load(Ordering::SeqCst) => {
                    Bytes::from(format!(
                        "data: {}\n\n",
                        json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [], "usage": usage(&knobs)})
                    ))
                }
                2 => Bytes::new(),
                3 => Bytes::from_static(b"data: [DONE]\n\n"),
                _ => return None,
            };
            Some((Ok(out), step + 1))
        }
    })
}

async fn embeddings(knobs: web::Data<Knobs>, body: web::Json<Value>) -> HttpResponse {
    let body = body.into_inner();
    if let Some(failed) = gate(&knobs, &body).await {
        return failed;
    }
    HttpResponse::Ok().json(json!({
        "object": "list", "model": body["model"], "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2, 0.3]}],
        "usage": {"prompt_tokens": EMBEDDING_TOKENS, "total_tokens": EMBEDDING_TOKENS},
    }))
}
