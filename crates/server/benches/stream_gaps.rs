//! `make bench-proxy` (after `proxy_load`): the time between the tokens of a streamed answer
//! through the proxy vs straight from the upstream (issue 18 item 4, SPEC §5 TCP_NODELAY).
//!
//! A local upstream streams `STREAM_TOKENS` (20) SSE chunks `STREAM_GAP_MS` (5) apart, each its
//! own HTTP chunk, with TCP_NODELAY. The client reads `STREAMS` (20) answers one after another
//! on one keep-alive connection — straight from the upstream, then through the proxy with an
//! API key — so the kernel's quick-ACK start is over and the client delays its ACKs: a server
//! socket with Nagle's algorithm on would then hold each small chunk until the previous one is
//! acknowledged (up to 40 ms). Reported: the gaps between consecutive tokens as the client sees
//! them (p50, p99, max), direct vs proxy.
//!
//! The release binary runs as a child process (`INVENTIV_BENCH_SERVER_BIN` for another
//! checkout's build), on a SQLite file or a fresh PostgreSQL database of the server named by
//! `INVENTIV_BENCH_DATABASE_URL`. Figures are only ever reported here.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use server::BenchServer;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[path = "support/database.rs"]
mod database;
#[path = "support/server.rs"]
mod server;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// One SSE event as one HTTP chunk.
fn chunk(event: &str) -> String {
    let data = format!("data: {event}\n\n");
    format!("{:x}\r\n{data}\r\n", data.len())
}

/// An upstream that answers every request with a stream of `tokens` chunks `gap` apart (and
/// the usage, then `[DONE]`), on keep-alive connections.
async fn streaming_upstream(tokens: usize, gap: Duration) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let token = chunk(
        r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"bench","choices":[{"index":0,"delta":{"content":"tok"},"finish_reason":null}]}"#,
    );
    let usage = chunk(&format!(
        r#"{{"id":"c","object":"chat.completion.chunk","created":1,"model":"bench","choices":[],"usage":{{"prompt_tokens":12,"completion_tokens":{tokens},"total_tokens":{}}}}}"#,
        12 + tokens
    ));
    let end = format!("{}0\r\n\r\n", chunk("[DONE]"));
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            stream.set_nodelay(true).unwrap();
            let (token, usage, end) = (token.clone(), usage.clone(), end.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let mut filled = 0;
                loop {
                    let Some(head_end) = buf[..filled].windows(4).position(|w| w == b"\r\n\r\n")
                    else {
                        match stream.read(&mut buf[filled..]).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => filled += n,
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| {
                            l.strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    let request_end = head_end + 4 + length;
                    while filled < request_end {
                        match stream.read(&mut buf[filled..]).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => filled += n,
                        }
                    }
                    buf.copy_within(request_end..filled, 0);
                    filled -= request_end;
                    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
                    if stream.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    for i in 0..tokens {
                        if i > 0 {
                            tokio::time::sleep(gap).await;
                        }
                        if stream.write_all(token.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                    let tail = format!("{usage}{end}");
                    if stream.write_all(tail.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// The gaps (ms) between consecutive tokens of `streams` answers to `url`, read one after
/// another on one keep-alive connection.
async fn token_gaps(url: &str, key: Option<&str>, streams: usize) -> Vec<f64> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    let body =
        r#"{"model":"bench/model","stream":true,"messages":[{"role":"user","content":"Hi"}]}"#;
    let mut gaps = Vec::new();
    for _ in 0..streams {
        let mut req = client
            .post(url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        let mut res = req.send().await.unwrap();
        assert_eq!(res.status(), 200, "{url}");
        let mut last: Option<Instant> = None;
        while let Some(bytes) = res.chunk().await.unwrap() {
            let now = Instant::now();
            let text = String::from_utf8_lossy(&bytes);
            // Tokens only: the usage chunk and `[DONE]` follow the last token at once.
            for _ in 0..text.matches(r#""content":"tok""#).count() {
                if let Some(previous) = last {
                    gaps.push((now - previous).as_secs_f64() * 1e3);
                }
                last = Some(now);
            }
        }
    }
    gaps.sort_by(|a, b| a.total_cmp(b));
    gaps
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0.0)
}

/// A management call that must succeed; its JSON answer.
async fn call(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> serde_json::Value {
    let mut req = client
        .request(method.clone(), format!("{base}{path}"))
        .bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    assert!(status.is_success(), "{method} {path}: {status} {text}");
    serde_json::from_str(&text).unwrap()
}

#[tokio::main]
async fn main() {
    let tokens: usize = env_or("STREAM_TOKENS", 20);
    let gap = Duration::from_millis(env_or("STREAM_GAP_MS", 5));
    let streams: usize = env_or("STREAMS", 20);
    let up = streaming_upstream(tokens, gap).await;
    let server = BenchServer::start("stream", "make bench-proxy", |server| {
        server
            .env(
                "INVENTIV__BOOTSTRAP__ADMIN_PASSWORD",
                "bench-admin-password",
            )
            .env(
                "INVENTIV__PROVIDERS__MOCK__ENDPOINT_URL",
                format!("http://127.0.0.1:{up}"),
            )
            .env("INVENTIV__PROVIDERS__MOCK__BOOT_DELAY_MS", "10")
            .env("INVENTIV__PROVIDERS__MOCK__READY_DELAY_MS", "10");
    })
    .await;
    let base = server.base.clone();
    let client = reqwest::Client::new();

    // The platform admin adds a public model served by the upstream, runs an instance of it in
    // Personal and makes an API key.
    let login = client
        .post(format!("{base}/auth/login"))
        .json(&serde_json::json!({"email": "admin@inventiv.local", "password": "bench-admin-password"}))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap().to_owned();
    use reqwest::Method;
    let model = call(
        &client,
        &base,
        &token,
        Method::POST,
        "/models",
        Some(serde_json::json!({"name": "Bench", "model_id": "bench/model", "required_vram_gb": 1, "context_length": 4096})),
    )
    .await;
    let instance = call(
        &client,
        &base,
        &token,
        Method::POST,
        "/deployments",
        Some(serde_json::json!({"model_id": model["id"]})),
    )
    .await;
    let instance = format!("/instances/{}", instance["id"].as_str().unwrap());
    while call(&client, &base, &token, Method::GET, &instance, None).await["status"] != "ready" {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let key = call(
        &client,
        &base,
        &token,
        Method::POST,
        "/api_keys",
        Some(serde_json::json!({"name": "bench"})),
    )
    .await["secret"]
        .as_str()
        .unwrap()
        .to_owned();

    let direct = token_gaps(
        &format!("http://127.0.0.1:{up}/v1/chat/completions"),
        None,
        streams,
    )
    .await;
    let proxied = token_gaps(&format!("{base}/v1/chat/completions"), Some(&key), streams).await;
    let binary = server.binary.clone();
    let backend = server.stop().await;

    let mut report = format!(
        "Streamed answers, {backend}: {streams} answers of {tokens} tokens {} ms apart, read one \
         after another on one keep-alive connection; server {}.\n\n\
         | path | gaps | p50 (ms) | p99 (ms) | max (ms) |\n|---|---|---|---|---|\n",
        gap.as_millis(),
        binary.display()
    );
    for (name, gaps) in [("direct", &direct), ("through the proxy", &proxied)] {
        report.push_str(&format!(
            "| {name} | {} | {:.2} | {:.2} | {:.2} |\n",
            gaps.len(),
            percentile(gaps, 0.5),
            percentile(gaps, 0.99),
            gaps.last().copied().unwrap_or(0.0)
        ));
    }
    report.push_str(&format!(
        "\nThe proxy adds {:+.2} ms at the p50 of the time between tokens, {:+.2} ms at the p99.\n",
        percentile(&proxied, 0.5) - percentile(&direct, 0.5),
        percentile(&proxied, 0.99) - percentile(&direct, 0.99)
    ));
    println!("{report}");
    let out = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/bench"));
    std::fs::create_dir_all(out).unwrap();
    std::fs::write(out.join("stream_gaps.md"), &report).unwrap();
}
