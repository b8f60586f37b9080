//! The built-in mock model: a small OpenAI-compatible server inside this binary, so the `mock`
//! provider's instances really answer (`make demo`: a call goes through the proxy, is metered
//! and shows in FinOps, with no other program to start).
//!
//! Contract:
//! - Mounted at [`PREFIX`] only when `providers.mock.endpoint_url` is unset (the mock instances
//!   then point at it); it is an upstream, like a model server on the provider's network: not
//!   part of the API, absent from `/openapi.json`, and it costs nothing to call directly.
//! - `GET /v1/models`, `POST /v1/chat/completions` and `POST /v1/completions`, with `stream`
//!   (server-sent events, one word a chunk, and the usage chunk when
//!   `stream_options.include_usage` asks for it, as the proxy always does).
//! - Deterministic: the answer quotes the last user message; a token is a word; `max_tokens`
//!   (or `max_completion_tokens`) cuts the answer, with `finish_reason: "length"`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::time::Duration;

/// Where the mock model is served.
pub const PREFIX: &str = "/mock-model";

/// The model name it reports when the request names none.
const NAME: &str = "inventiv-mock";

/// Between two streamed words: slow enough to see a stream arrive, fast enough for tests.
const WORD_GAP: Duration = Duration::from_millis(15);

/// The longest quote of the user's message, in characters.
const QUOTE: usize = 200;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope(PREFIX)
            .route("/v1/models", web::get().to(models))
            .route("/v1/chat/completions", web::post().to(chat))
            .route("/v1/completions", web::post().to(completions)),
    );
}

async fn models() -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "object": "list",
        "data": [{"id": NAME, "object": "model", "owned_by": "inventiv"}],
    }))
}

/// What one request asks for, read leniently (an upstream answers what it can).
struct Ask {
    model: String,
    /// The text the prompt tokens are counted from.
    prompt: String,
    /// What the answer quotes.
    quote: String,
    max_tokens: Option<usize>,
    stream: bool,
    include_usage: bool,
}

fn ask(body: &[u8], chat: bool) -> Result<Ask, Box<HttpResponse>> {
    let body: Value = serde_json::from_slice(body).map_err(|_| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            "the body is not JSON (the mock model reads an OpenAI request)",
        ))
    })?;
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        // Content parts: the text ones.
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    };
    let (prompt, quote) = if chat {
        let messages = body
            .get("messages")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let contents: Vec<String> = messages
            .iter()
            .map(|m| text(m.get("content").unwrap_or(&Value::Null)))
            .collect();
        let last_user = messages
            .iter()
            .rev()
            .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
            .map(|m| text(m.get("content").unwrap_or(&Value::Null)))
            .unwrap_or_default();
        (contents.join(" "), last_user)
    } else {
        let prompt = text(body.get("prompt").unwrap_or(&Value::Null));
        (prompt.clone(), prompt)
    };
    let limit = |key: &str| {
        body.get(key)
            .and_then(Value::as_u64)
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
    };
    Ok(Ask {
        model: body
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or(NAME)
            .to_owned(),
        prompt,
        quote,
        max_tokens: limit("max_completion_tokens").or_else(|| limit("max_tokens")),
        stream: body.get("stream").and_then(Value::as_bool) == Some(true),
        include_usage: body
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            == Some(true),
    })
}

/// The answer's words, and whether `max_tokens` cut it.
fn answer(ask: &Ask) -> (Vec<String>, bool) {
    let quote: String = ask.quote.trim().chars().take(QUOTE).collect();
    let text = if quote.is_empty() {
        "Hello from the built-in mock model. Send a message and I will repeat it.".to_owned()
    } else {
        format!("Hello from the built-in mock model. You said: \"{quote}\"")
    };
    let mut words: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
    let cut = ask.max_tokens.is_some_and(|max| words.len() > max);
    if let Some(max) = ask.max_tokens {
        words.truncate(max);
    }
    (words, cut)
}

fn usage(ask: &Ask, completion: usize) -> Value {
    let prompt = ask.prompt.split_whitespace().count().max(1);
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    })
}

async fn chat(body: web::Bytes) -> HttpResponse {
    respond(&body, true)
}

async fn completions(body: web::Bytes) -> HttpResponse {
    respond(&body, false)
}

fn respond(body: &[u8], chat: bool) -> HttpResponse {
    let ask = match ask(body, chat) {
        Ok(ask) => ask,
        Err(res) => return *res,
    };
    let (words, cut) = answer(&ask);
    let finish = if cut { "length" } else { "stop" };
    let id = format!("mock-{}", uuid::Uuid::now_v7().simple());
    let created = time::OffsetDateTime::now_utc().unix_timestamp();
    if ask.stream {
        return stream(ask, words, finish, id, created, chat);
    }
    let text = words.join(" ");
    let choice = if chat {
        json!({"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish})
    } else {
        json!({"index": 0, "text": text, "finish_reason": finish})
    };
    HttpResponse::Ok().json(json!({
        "id": id,
        "object": if chat { "chat.completion" } else { "text_completion" },
        "created": created,
        "model": ask.model,
        "choices": [choice],
        "usage": usage(&ask, words.len()),
    }))
}

fn stream(
    ask: Ask,
    words: Vec<String>,
    finish: &'static str,
    id: String,
    created: i64,
    chat: bool,
) -> HttpResponse {
    let object = if chat {
        "chat.completion.chunk"
    } else {
        "text_completion"
    };
    let chunk = |choices: Value, usage: Option<Value>| {
        let mut event = json!({
            "id": id, "object": object, "created": created, "model": ask.model, "choices": choices,
        });
        if let Some(usage) = usage {
            event["usage"] = usage;
        }
        Bytes::from(format!("data: {event}\n\n"))
    };
    let piece = |text: &str, finish: Option<&str>| {
        if chat {
            json!([{"index": 0, "delta": {"content": text}, "finish_reason": finish}])
        } else {
            json!([{"index": 0, "text": text, "finish_reason": finish}])
        }
    };
    let mut events = Vec::with_capacity(words.len() + 4);
    if chat {
        events.push(chunk(
            json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]),
            None,
        ));
    }
    for (i, word) in words.iter().enumerate() {
        let text = if i == 0 {
            word.clone()
        } else {
            format!(" {word}")
        };
        events.push(chunk(piece(&text, None), None));
    }
    events.push(chunk(piece("", Some(finish)), None));
    if ask.include_usage {
        events.push(chunk(json!([]), Some(usage(&ask, words.len()))));
    }
    events.push(Bytes::from_static(b"data: [DONE]\n\n"));
    let body =
        futures_util::stream::iter(events.into_iter().enumerate()).then(|(i, event)| async move {
            if i > 0 {
                tokio::time::sleep(WORD_GAP).await;
            }
            Ok::<_, actix_web::Error>(event)
        });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-cache"))
        .streaming(body)
}

fn error(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({
        "error": {"message": message, "type": "invalid_request_error", "code": null},
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn chat_ask(body: Value) -> Ask {
        ask(body.to_string().as_bytes(), true).unwrap_or_else(|_| panic!("not read"))
    }

    #[test]
    fn the_answer_quotes_the_last_user_message_and_counts_words() {
        let ask = chat_ask(json!({"messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "an answer"},
            {"role": "user", "content": [{"type": "text", "text": "second question"}]},
        ]}));
        let (words, cut) = answer(&ask);
        assert!(!cut);
        assert!(words.join(" ").ends_with("You said: \"second question\""));
        assert_eq!(usage(&ask, words.len())["prompt_tokens"], 8);
    }

    #[test]
    fn max_tokens_cuts_the_answer() {
        let ask =
            chat_ask(json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}));
        let (words, cut) = answer(&ask);
        assert_eq!((words.len(), cut), (3, true));
    }

    #[test]
    fn a_body_that_is_not_json_is_a_400() {
        let res = ask(b"not json", true).err().map(|r| r.status());
        assert_eq!(res, Some(StatusCode::BAD_REQUEST));
    }
}
