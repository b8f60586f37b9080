//! A minimal HTTP/1.1 keep-alive load driver on raw TCP (shared by the benches): C connections
//! send one request after another for D seconds; latencies are recorded per request.

use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct Outcome {
    pub requests: usize,
    pub errors: usize,
    pub seconds: f64,
    pub p50_us: f64,
    pub p99_us: f64,
}

impl Outcome {
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
}

/// Builds a request (`body` is JSON when present).
pub fn raw_request(method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> String {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    if let Some(token) = token {
        req.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    match body {
        Some(body) => req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )),
        None => req.push_str("\r\n"),
    }
    req
}

/// Keeps `connections` connections to `port` busy with `request` for `duration`.
pub async fn run(port: u16, request: &str, connections: usize, duration: Duration) -> Outcome {
    let [outcome, _] = run_mix(port, request, request, 0, connections, duration).await;
    outcome
}

/// Like [`run`], but every `write_every`-th request of each connection is `write` instead of
/// `read` (0: never). Returns the outcomes of the reads and of the writes apart.
pub async fn run_mix(
    port: u16,
    read: &str,
    write: &str,
    write_every: usize,
    connections: usize,
    duration: Duration,
) -> [Outcome; 2] {
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let requests = [read.to_owned(), write.to_owned()];
        tasks.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let mut buf = vec![0u8; 256 * 1024];
            let mut latencies = [Vec::new(), Vec::new()];
            let mut errors = [0usize; 2];
            let mut sent = 0usize;
            while Instant::now() < deadline {
                sent += 1;
                let kind = usize::from(write_every > 0 && sent % write_every == 0);
                let t = Instant::now();
                stream.write_all(requests[kind].as_bytes()).await.unwrap();
                let status = read_response(&mut stream, &mut buf).await;
                latencies[kind].push(t.elapsed().as_secs_f64() * 1e6);
                if status != 200 {
                    errors[kind] += 1;
                }
            }
            (latencies, errors)
        }));
    }
    let mut all = [Vec::new(), Vec::new()];
    let mut errors = [0usize; 2];
    for t in tasks {
        let (latencies, e) = t.await.unwrap();
        for kind in 0..2 {
            all[kind].extend_from_slice(&latencies[kind]);
            errors[kind] += e[kind];
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let [reads, writes] = all;
    [
        outcome(reads, errors[0], seconds),
        outcome(writes, errors[1], seconds),
    ]
}

fn outcome(mut latencies: Vec<f64>, errors: usize, seconds: f64) -> Outcome {
    latencies.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    Outcome {
        requests: latencies.len(),
        errors,
        seconds,
        p50_us: pct(0.50),
        p99_us: pct(0.99),
    }
}

/// Reads one response (headers + Content-Length body); returns its status.
pub async fn read_response(stream: &mut TcpStream, buf: &mut [u8]) -> u16 {
    let mut filled = 0;
    loop {
        let n = stream.read(&mut buf[filled..]).await.unwrap();
        assert!(n > 0, "the server closed the connection");
        filled += n;
        if let Some(end) = buf[..filled].windows(4).position(|w| w == b"\r\n\r\n") {
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
                assert!(n > 0, "the server closed the connection");
                filled += n;
            }
            return status;
        }
    }
}

/// One request on a fresh connection; returns (status, body).
pub async fn request(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let req = raw_request(method, path, token, body).replacen(
        "HTTP/1.1\r\n",
        "HTTP/1.1\r\nConnection: close\r\n",
        1,
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8(out).unwrap();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    (
        status,
        text.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default(),
    )
}
