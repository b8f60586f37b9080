//! A minimal HTTP/1.1 keep-alive load driver on raw TCP (shared by the benches): C connections
//! send one request after another for D seconds, optionally beside writers at a set rate;
//! latencies are recorded per request.

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
    let reads = vec![request.to_owned(); connections];
    let [outcome, _] = run_with_writes(port, &reads, None, duration).await;
    outcome
}

/// Connections kept by the writers of [`run_with_writes`].
pub const WRITERS: usize = 8;

/// One connection per request of `reads`, each sending its request over and over for
/// `duration`, while (with `writes` = `Some((request, per_second))`) [`WRITERS`] more
/// connections send `request` at that rate between them (as fast as they can, if the server
/// cannot keep up). Returns the outcomes of the reads and of the writes apart.
pub async fn run_with_writes(
    port: u16,
    reads: &[String],
    writes: Option<(&str, f64)>,
    duration: Duration,
) -> [Outcome; 2] {
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    // `pace`: (period, offset of the first request), for a writer; None: back to back.
    let connection = |request: String, pace: Option<(Duration, Duration)>| {
        tokio::spawn(async move {
            let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let mut buf = vec![0u8; 256 * 1024];
            let (mut latencies, mut errors) = (Vec::new(), 0usize);
            let mut next = Instant::now() + pace.map_or(Duration::ZERO, |(_, offset)| offset);
            while Instant::now() < deadline {
                if let Some((period, _)) = pace {
                    if next >= deadline {
                        break;
                    }
                    tokio::time::sleep_until(next.into()).await;
                    next += period;
                }
                let t = Instant::now();
                stream.write_all(request.as_bytes()).await.unwrap();
                let (status, _) = read_response(&mut stream, &mut buf).await;
                latencies.push(t.elapsed().as_secs_f64() * 1e6);
                if status != 200 {
                    errors += 1;
                }
            }
            (latencies, errors)
        })
    };
    let readers: Vec<_> = reads
        .iter()
        .map(|request| connection(request.clone(), None))
        .collect();
    let writers: Vec<_> = writes
        .into_iter()
        .flat_map(|(request, per_second)| {
            let period = Duration::from_secs_f64(WRITERS as f64 / per_second.max(1e-3));
            (0..WRITERS).map(move |i| {
                let offset = period.mul_f64(i as f64 / WRITERS as f64);
                connection(request.to_owned(), Some((period, offset)))
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for tasks in [readers, writers] {
        let (mut all, mut errors) = (Vec::new(), 0);
        for t in tasks {
            let (latencies, e) = t.await.unwrap();
            all.extend(latencies);
            errors += e;
        }
        outcomes.push((all, errors));
    }
    let seconds = started.elapsed().as_secs_f64();
    let mut outcomes = outcomes
        .into_iter()
        .map(|(latencies, errors)| outcome(latencies, errors, seconds));
    [outcomes.next().unwrap(), outcomes.next().unwrap()]
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

/// Reads one response (headers + Content-Length body); returns its status and body length.
pub async fn read_response(stream: &mut TcpStream, buf: &mut [u8]) -> (u16, usize) {
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
            return (status, length);
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
