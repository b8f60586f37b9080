//! `make bench`: an HTTP load driver on loopback against the real server, started in this
//! process on a fresh database (SQLite by default; PostgreSQL with `INVENTIV_BENCH_DATABASE_URL`).
//!
//! Each scenario keeps C keep-alive HTTP/1.1 connections busy for D seconds (a minimal client
//! written on raw TCP so the driver costs little CPU), then reports throughput and latency
//! percentiles, and each scenario's cost as a ratio to `GET /healthz` measured in the same run.
//! Performance is only ever *reported* here, never asserted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use inventiv_server::settings::Secret;
use inventiv_server::{Application, Environment, Settings};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Scenario {
    name: &'static str,
    path: &'static str,
    token: Option<String>,
}

struct Outcome {
    name: &'static str,
    connections: usize,
    requests: usize,
    errors: usize,
    seconds: f64,
    p50_us: f64,
    p99_us: f64,
}

#[tokio::main]
async fn main() {
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let connections: Vec<usize> = std::env::var("BENCH_CONNECTIONS")
        .ok()
        .map(|s| s.split(',').filter_map(|c| c.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 32]);

    let dir =
        std::env::temp_dir().join(format!("inventiv-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../config"));
    let mut settings = Settings::load(&config, Environment::Development).unwrap();
    settings.server.port = 0;
    settings.server.data_dir = dir.clone();
    settings.log.level = "error".into();
    settings.database.max_connections = 64;
    settings.database.url = Secret::new(
        std::env::var("INVENTIV_BENCH_DATABASE_URL")
            .unwrap_or_else(|_| format!("sqlite://{}?mode=rwc", dir.join("bench.db").display())),
    );
    settings.bootstrap.admin_password = Secret::new("bench-admin-password");
    let backend = if settings.database.url.expose().starts_with("sqlite") {
        "SQLite"
    } else {
        "PostgreSQL"
    };
    let app = Application::build(settings).await.unwrap();
    let port = app.port();
    tokio::spawn(app.run_until_stopped());

    let login = request(
        port,
        "POST",
        "/auth/login",
        None,
        Some(r#"{"email":"admin@inventiv.local","password":"bench-admin-password"}"#),
    )
    .await;
    let token = serde_json::from_str::<serde_json::Value>(&login).unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let scenarios = [
        Scenario {
            name: "GET /healthz",
            path: "/healthz",
            token: None,
        },
        Scenario {
            name: "GET /auth/me (authenticated)",
            path: "/auth/me",
            token: Some(token),
        },
    ];
    let mut outcomes = Vec::new();
    for &c in &connections {
        for scenario in &scenarios {
            outcomes.push(run(port, scenario, c, Duration::from_secs(seconds)).await);
        }
    }

    let mut report = format!(
        "Backend: {backend}; {seconds} s per scenario; server and driver share this machine ({} cores).\n\n\
         | scenario | connections | requests/s | p50 (µs) | p99 (µs) | errors | throughput vs /healthz | p50 vs /healthz |\n\
         |---|---|---|---|---|---|---|---|\n",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    for o in &outcomes {
        let base = outcomes
            .iter()
            .find(|b| b.connections == o.connections && b.name == "GET /healthz")
            .unwrap();
        let rps = o.requests as f64 / o.seconds;
        let base_rps = base.requests as f64 / base.seconds;
        report.push_str(&format!(
            "| {} | {} | {:.0} | {:.0} | {:.0} | {} | {:.2} | {:.2} |\n",
            o.name,
            o.connections,
            rps,
            o.p50_us,
            o.p99_us,
            o.errors,
            rps / base_rps,
            o.p50_us / base.p50_us
        ));
    }
    println!("{report}");
    let out = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/bench"));
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("http_load.md"), &report).unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

async fn run(port: u16, scenario: &Scenario, connections: usize, duration: Duration) -> Outcome {
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let req = raw_request("GET", scenario.path, scenario.token.as_deref(), None);
        tasks.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let mut buf = vec![0u8; 64 * 1024];
            let (mut latencies, mut errors) = (Vec::new(), 0usize);
            while Instant::now() < deadline {
                let t = Instant::now();
                stream.write_all(req.as_bytes()).await.unwrap();
                let status = read_response(&mut stream, &mut buf).await;
                latencies.push(t.elapsed().as_secs_f64() * 1e6);
                if status != 200 {
                    errors += 1;
                }
            }
            (latencies, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        all.extend(l);
        errors += e;
    }
    let seconds = started.elapsed().as_secs_f64();
    all.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    Outcome {
        name: scenario.name,
        connections,
        requests: all.len(),
        errors,
        seconds,
        p50_us: pct(0.50),
        p99_us: pct(0.99),
    }
}

fn raw_request(method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> String {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    if let Some(token) = token {
        req.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    if let Some(body) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
    } else {
        req.push_str("\r\n");
    }
    req
}

/// Reads one response (headers + Content-Length body); returns its status.
async fn read_response(stream: &mut TcpStream, buf: &mut [u8]) -> u16 {
    let mut filled = 0;
    loop {
        let n = stream.read(&mut buf[filled..]).await.unwrap();
        assert!(n > 0, "server closed the connection");
        filled += n;
        if let Some(end) = find(&buf[..filled], b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).unwrap();
            let status: u16 = head[9..12].parse().unwrap();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            let total = end + 4 + length;
            while filled < total {
                let n = stream.read(&mut buf[filled..]).await.unwrap();
                assert!(n > 0, "server closed the connection");
                filled += n;
            }
            return status;
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One request on a fresh connection, returning the body.
async fn request(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut req = raw_request(method, path, token, body);
    req = req.replacen("HTTP/1.1\r\n", "HTTP/1.1\r\nConnection: close\r\n", 1);
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8(out).unwrap();
    text.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}
