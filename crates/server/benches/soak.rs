//! `make soak`: the server's memory under hostile bodies (issue 16 item 8).
//!
//! The release binary runs as a child process on a fresh database (SQLite, or PostgreSQL when
//! `INVENTIV_BENCH_DATABASE_URL` names a server); its memory is read from
//! `/proc/<pid>/status` (VmRSS now, VmHWM the peak since the last reset through
//! `/proc/<pid>/clear_refs`), and VmRSS is also sampled every 10 ms as a cross-check.
//!
//! Phases, each followed by a settling pause (`SOAK_SETTLE_SECS`, default 10):
//! 1. idle, after start-up and one sign-in;
//! 2. hostile logins: `SOAK_LOGINS` (400) `POST /auth/login` with a ~1 MB email, 16 at a time,
//!    with the login rate limit lifted so every attempt reaches the limiter and the password
//!    check (the worst case; with the shipped limit most would stop at the per-IP limit);
//! 3. fuzz-like: every operation of `/openapi.json` with hostile bodies and queries (long
//!    strings, deep nesting, huge numbers, out-of-range dates), 16 at a time, plus 10 MiB
//!    bodies on the proxy routes, 16 at a time.
//!
//! Targets (docs/benchmarks.md): peak under 256 MB during the hostile logins; settled RSS
//! within 2× idle afterwards. The report is printed as Markdown; the run fails (exit 1) when a
//! target is missed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use server::BenchServer;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[path = "support/database.rs"]
mod database;
#[path = "support/memory.rs"]
mod memory;
#[path = "support/server.rs"]
mod server;
use memory::{reset_peak, status_bytes};

const ADMIN_PASSWORD: &str = "soak-admin-password";
const MB: f64 = 1024.0 * 1024.0;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Samples VmRSS every 10 ms while a phase runs; the highest sample is its peak.
struct Sampler {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<()>,
}

impl Sampler {
    fn start(pid: u32) -> Sampler {
        let peak = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        let handle = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(status_bytes(pid, "VmRSS:"), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        Sampler { peak, stop, handle }
    }

    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap();
        self.peak.load(Ordering::Relaxed)
    }
}

struct Phase {
    name: String,
    requests: usize,
    statuses: std::collections::BTreeMap<u16, usize>,
    seconds: f64,
    peak_hwm: u64,
    peak_sampled: u64,
    settled: u64,
}

/// One request of a phase: method, path, body.
#[derive(Clone)]
struct Req {
    method: reqwest::Method,
    path: String,
    body: Option<Arc<String>>,
}

async fn run_phase(
    name: &str,
    pid: u32,
    base: &str,
    token: &str,
    requests: Vec<Req>,
    concurrency: usize,
    settle: Duration,
) -> Phase {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let hwm_ok = reset_peak(pid);
    let sampler = Sampler::start(pid);
    let started = Instant::now();
    let total = requests.len();
    let gate = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut tasks = Vec::with_capacity(total);
    for req in requests {
        let permit = gate.clone().acquire_owned().await.unwrap();
        let client = client.clone();
        let url = format!("{base}{}", req.path);
        let token = token.to_owned();
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            let mut r = client.request(req.method, url).bearer_auth(token);
            if let Some(body) = req.body {
                r = r
                    .header("content-type", "application/json")
                    .body(body.as_ref().clone());
            }
            match r.send().await {
                Ok(res) => {
                    let status = res.status().as_u16();
                    let _ = res.bytes().await;
                    status
                }
                // A connection the server closed (it may refuse a body early): counted as 0.
                Err(_) => 0,
            }
        }));
    }
    let mut statuses = std::collections::BTreeMap::new();
    for task in tasks {
        *statuses.entry(task.await.unwrap()).or_insert(0) += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    let peak_sampled = sampler.finish();
    let peak_hwm = if hwm_ok {
        status_bytes(pid, "VmHWM:")
    } else {
        0
    };
    tokio::time::sleep(settle).await;
    Phase {
        name: name.to_owned(),
        requests: total,
        statuses,
        seconds,
        peak_hwm,
        peak_sampled,
        settled: status_bytes(pid, "VmRSS:"),
    }
}

/// Hostile bodies and queries for every operation of the OpenAPI document.
fn fuzz_requests(doc: &serde_json::Value, rounds: usize) -> Vec<Req> {
    let long = "x".repeat(100 * 1024);
    let fields = [
        "name",
        "email",
        "username",
        "password",
        "slug",
        "model_id",
        "description",
        "token",
    ];
    let long_strings = serde_json::Value::Object(
        fields
            .iter()
            .map(|f| ((*f).to_owned(), serde_json::Value::String(long.clone())))
            .collect(),
    )
    .to_string();
    let depth = 200_000;
    let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let nested_object = format!(
        "{{\"name\":{}{}}}",
        "{\"a\":".repeat(50_000),
        "1".to_owned() + &"}".repeat(50_000)
    );
    let huge_numbers = r#"{"limit":1e400,"price_input_micros_per_1k":999999999999999999999999999999,"price_output_micros_per_1k":-999999999999999999999999,"monthly_cap_micros":18446744073709551616,"required_vram_gb":1e308,"context_length":-1e308,"expires_in_days":99999999999999999999,"hourly_cost_micros":9.9e99}"#;
    let dates = r#"{"expires_at":"9999-12-31T23:59:59-23:59","ends_at":"0001-01-01T00:00:00+23:59","starts_at":"1969-12-31T23:59:59Z"}"#;
    let bodies: Vec<Arc<String>> = [
        long_strings,
        nested,
        nested_object,
        huge_numbers.to_owned(),
        dates.to_owned(),
    ]
    .into_iter()
    .map(Arc::new)
    .collect();
    let query = format!(
        "?limit=99999999999999999999&since=9999-12-31T23%3A59%3A59-23%3A59&from=0001-01-01T00%3A00%3A00Z&to=9999-12-31T23%3A59%3A59-23%3A59&cursor={}&action={}",
        "c".repeat(4096),
        "a".repeat(4096)
    );
    let id = "01a22ca2-7b73-716b-aaaa-7abe8f2f3ec2";
    let mut out = Vec::new();
    let paths = doc["paths"].as_object().unwrap();
    for _ in 0..rounds {
        for (path, item) in paths {
            let mut concrete = String::new();
            let mut in_param = false;
            for c in path.chars() {
                match c {
                    '{' => {
                        in_param = true;
                        concrete.push_str(id);
                    }
                    '}' => in_param = false,
                    _ if in_param => {}
                    _ => concrete.push(c),
                }
            }
            // Not DELETE, nor what ends or moves the session in use: the run must stay signed in
            // to reach the handlers (a 401 costs nothing).
            if matches!(
                path.as_str(),
                "/auth/logout" | "/auth/refresh" | "/organizations/current"
            ) {
                continue;
            }
            for method in ["get", "post", "put", "patch"] {
                if item.get(method).is_none() {
                    continue;
                }
                let m: reqwest::Method = method.to_uppercase().parse().unwrap();
                if method == "get" {
                    out.push(Req {
                        method: m,
                        path: format!("{concrete}{query}"),
                        body: None,
                    });
                    continue;
                }
                for body in &bodies {
                    out.push(Req {
                        method: m.clone(),
                        path: concrete.clone(),
                        body: Some(body.clone()),
                    });
                }
            }
        }
    }
    out
}

/// Big proxy bodies: 9 MiB of prompt each, under the 10 MiB limit.
fn proxy_requests(count: usize) -> Vec<Req> {
    let mut out = Vec::new();
    let prompt = format!(
        r#"{{"model":"nobody/none","messages":[{{"role":"user","content":"{}"}}]}}"#,
        "y".repeat(9 * 1024 * 1024)
    );
    let prompt = Arc::new(prompt);
    for _ in 0..count {
        out.push(Req {
            method: reqwest::Method::POST,
            path: "/v1/chat/completions".to_owned(),
            body: Some(prompt.clone()),
        });
    }
    out
}

fn mb(bytes: u64) -> String {
    format!("{:.0}", bytes as f64 / MB)
}

#[tokio::main]
async fn main() {
    let logins: usize = env_or("SOAK_LOGINS", 400);
    let rounds: usize = env_or("SOAK_FUZZ_ROUNDS", 3);
    let settle = Duration::from_secs(env_or("SOAK_SETTLE_SECS", 10));
    let server = BenchServer::start("soak", "make soak", |server| {
        server
            .env("INVENTIV__BOOTSTRAP__ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("INVENTIV__RATE_LIMIT__LOGIN_PER_MINUTE", "1000000");
    })
    .await;
    let pid = server.child.id();
    let base = server.base.clone();
    let client = reqwest::Client::new();
    let login = client
        .post(format!("{base}/auth/login"))
        .json(&serde_json::json!({"email": "admin@inventiv.local", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = login.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap().to_owned();
    let doc: serde_json::Value = client
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = status_bytes(pid, "VmRSS:");

    // ~1 MB, so that the body stays under the 1 MiB JSON limit and is read in full.
    let email = format!("{}@example.com", "a".repeat(1_000_000));
    let login_body =
        Arc::new(serde_json::json!({"email": email, "password": "wrong-password-123"}).to_string());
    let hostile_logins = (0..logins)
        .map(|_| Req {
            method: reqwest::Method::POST,
            path: "/auth/login".to_owned(),
            body: Some(login_body.clone()),
        })
        .collect();
    let phase1 = run_phase(
        &format!("hostile logins ({logins} × 1 MB email, 16 concurrent)"),
        pid,
        &base,
        &token,
        hostile_logins,
        16,
        settle,
    )
    .await;
    let fuzz = fuzz_requests(&doc, rounds);
    let phase2 = run_phase(
        &format!(
            "fuzz-like ({rounds} rounds of hostile bodies and queries on every operation, 16 concurrent)"
        ),
        pid,
        &base,
        &token,
        fuzz,
        16,
        settle,
    )
    .await;
    let proxied = env_or("SOAK_PROXY_BODIES", 96);
    let phase3 = run_phase(
        &format!("proxy bodies ({proxied} × 9 MiB to /v1/chat/completions, 16 concurrent)"),
        pid,
        &base,
        &token,
        proxy_requests(proxied),
        16,
        settle,
    )
    .await;
    let alive = client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success());
    let binary = server.binary.clone();
    let backend = server.stop().await;

    println!("\n## Soak ({}, {})\n", backend, binary.display());
    println!(
        "Idle RSS after start-up and one sign-in: **{} MB**\n",
        mb(idle)
    );
    println!(
        "| phase | requests | statuses | seconds | peak RSS (VmHWM) | peak RSS (sampled) | settled RSS ({} s after) |",
        settle.as_secs()
    );
    println!("|---|---|---|---|---|---|---|");
    for p in [&phase1, &phase2, &phase3] {
        let statuses = p
            .statuses
            .iter()
            .map(|(s, n)| format!("{s}×{n}"))
            .collect::<Vec<_>>()
            .join(" ");
        println!(
            "| {} | {} | {} | {:.1} | {} MB | {} MB | {} MB |",
            p.name,
            p.requests,
            statuses,
            p.seconds,
            mb(p.peak_hwm),
            mb(p.peak_sampled),
            mb(p.settled)
        );
    }
    let peak_login = phase1.peak_hwm.max(phase1.peak_sampled);
    let mut failed = Vec::new();
    if peak_login >= 256 * 1024 * 1024 {
        failed.push(format!("hostile-login peak {} MB ≥ 256 MB", mb(peak_login)));
    }
    for p in [&phase1, &phase2, &phase3] {
        if p.settled > 2 * idle {
            failed.push(format!(
                "{}: settled {} MB > 2 × idle {} MB",
                p.name,
                mb(p.settled),
                mb(idle)
            ));
        }
        if p.statuses.keys().any(|s| *s >= 500 && *s != 503) {
            failed.push(format!("{}: 5xx answers {:?}", p.name, p.statuses));
        }
    }
    if !alive {
        failed.push("the server stopped answering".to_owned());
    }
    if failed.is_empty() {
        println!("\nTargets met: hostile-login peak < 256 MB; settled within 2× idle.");
    } else {
        println!("\nTARGETS MISSED:\n- {}", failed.join("\n- "));
        std::process::exit(1);
    }
}
