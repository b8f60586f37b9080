//! `make bench` (after `http_load`): sign-ins at the speed of argon2 (issue 18 item 2), side by
//! side in one run on this machine's cores:
//!
//! 1. the raw argon2id verify rate, measured in this process with the argon2 crate at the
//!    server's parameters (m = 19 MiB, t = 2, p = 1), one thread per core — each thread
//!    reusing one buffer (`hash_password_into_with_memory`, what the server's hash threads do),
//!    before the first storm and after each (a shared machine's load drifts: each storm is
//!    compared with the mean of the raw rates around it); and once with `verify_password` (a
//!    fresh 19 MiB buffer per call), for reference;
//! 2. the server's successful sign-ins per second with 8 and with 256 connections signing in
//!    over and over (`BENCH_LOGIN_CONNECTIONS`), where a client answered 503 `server_busy`
//!    waits its `Retry-After` as a client should; and the server's peak RSS during each storm
//!    (VmHWM of `/proc/<pid>/status`, reset before each storm through `clear_refs`).
//!
//! The release binary runs as a child process (`INVENTIV_BENCH_SERVER_BIN` runs another
//! checkout's build from that checkout, for A/B runs in one sitting), on a fresh database:
//! PostgreSQL when `INVENTIV_BENCH_DATABASE_URL` names a server (what `make bench` does), else
//! a SQLite file. The login rate limit is lifted. Figures are only ever reported here.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use server::BenchServer;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[path = "support/cpu.rs"]
mod cpu;
#[path = "support/database.rs"]
mod database;
#[path = "support/memory.rs"]
mod memory;
#[path = "support/server.rs"]
mod server;
use memory::{reset_peak, status_bytes};

const ADMIN_PASSWORD: &str = "bench-admin-password";
const MB: f64 = 1024.0 * 1024.0;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The server's standard cost (crates/service/src/password.rs).
fn standard_params() -> Params {
    Params::new(19 * 1024, 2, 1, None).unwrap()
}

/// Verifies of `ADMIN_PASSWORD` per second on `threads` threads for `duration`; with
/// `reuse`, each thread computes into one buffer of its own, else through `verify_password`.
fn raw_verify_rate(threads: usize, duration: Duration, reuse: bool) -> f64 {
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, standard_params());
    let phc = argon
        .hash_password(ADMIN_PASSWORD.as_bytes())
        .unwrap()
        .to_string();
    let started = Instant::now();
    let deadline = started + duration;
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (argon, phc) = (argon.clone(), phc.clone());
            std::thread::spawn(move || {
                let parsed = argon2::PasswordHash::new(&phc).unwrap();
                let salt = parsed.salt.unwrap();
                let expected = parsed.hash.unwrap();
                let mut memory = vec![Block::new(); standard_params().block_count()];
                let mut out = [0u8; 32];
                let mut done = 0u64;
                while Instant::now() < deadline {
                    if reuse {
                        argon
                            .hash_password_into_with_memory(
                                ADMIN_PASSWORD.as_bytes(),
                                salt.as_ref(),
                                &mut out,
                                &mut memory[..],
                            )
                            .unwrap();
                        assert_eq!(out, expected.as_bytes());
                    } else {
                        argon
                            .verify_password(ADMIN_PASSWORD.as_bytes(), phc.as_str())
                            .unwrap();
                    }
                    done += 1;
                }
                done
            })
        })
        .collect();
    let done: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    done as f64 / started.elapsed().as_secs_f64()
}

/// What a storm of sign-ins got.
struct Storm {
    connections: usize,
    seconds: f64,
    signed_in: usize,
    busy: usize,
    /// Other answers: "status code" → how many.
    other: BTreeMap<String, usize>,
    p50_ms: f64,
    p99_ms: f64,
    /// VmHWM during the storm (0 when it could not be reset).
    peak_rss: u64,
    /// CPU per sign-in: the hash threads, the rest of the server, PostgreSQL, the driver.
    cpu: [Duration; 4],
}

impl Storm {
    fn rate(&self) -> f64 {
        self.signed_in as f64 / self.seconds
    }
}

/// `connections` clients signing in over and over for `duration`; a 503 waits its
/// `Retry-After` (1 s when it names none).
async fn storm(base: &str, pid: u32, connections: usize, duration: Duration) -> Storm {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let body = serde_json::json!({"email": "admin@inventiv.local", "password": ADMIN_PASSWORD});
    let peak_known = reset_peak(pid);
    let spent = cpu::Spent::now(pid);
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let (client, body) = (client.clone(), body.clone());
            let url = format!("{base}/auth/login");
            tokio::spawn(async move {
                let (mut latencies, mut busy, mut other) = (Vec::new(), 0, BTreeMap::new());
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    let res = client.post(&url).json(&body).send().await.unwrap();
                    let status = res.status().as_u16();
                    let retry_after = res
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok()?.parse().ok())
                        .unwrap_or(1);
                    let body = res.bytes().await.unwrap_or_default();
                    let code = serde_json::from_slice::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| v["error"].as_str().map(str::to_owned))
                        .unwrap_or_default();
                    match (status, code.as_str()) {
                        (200, _) => latencies.push(sent.elapsed().as_secs_f64() * 1e3),
                        (503, "server_busy") => busy += 1,
                        _ => *other.entry(format!("{status} {code}")).or_insert(0) += 1,
                    }
                    if status == 503 {
                        tokio::time::sleep(Duration::from_secs(retry_after)).await;
                    }
                }
                (latencies, busy, other)
            })
        })
        .collect();
    let (mut latencies, mut busy, mut other) = (Vec::new(), 0, BTreeMap::new());
    for task in tasks {
        let (l, b, o) = task.await.unwrap();
        latencies.extend(l);
        busy += b;
        for (answer, n) in o {
            *other.entry(answer).or_insert(0) += n;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu::Spent::now(pid).per(&spent, latencies.len());
    let peak_rss = if peak_known {
        status_bytes(pid, "VmHWM:")
    } else {
        0
    };
    latencies.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    Storm {
        connections,
        seconds,
        signed_in: latencies.len(),
        busy,
        other,
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        peak_rss,
        cpu,
    }
}

#[tokio::main]
async fn main() {
    let duration = Duration::from_secs(env_or("BENCH_SECONDS", 5));
    let connections: Vec<usize> = std::env::var("BENCH_LOGIN_CONNECTIONS")
        .ok()
        .map(|s| s.split(',').filter_map(|c| c.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![8, 256]);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    // The load of a shared machine drifts: the raw rate is measured before the first storm and
    // after each (the server idle meanwhile), and each storm is compared with the mean of the
    // raw rates just before and just after it.
    let raw_fresh = raw_verify_rate(cores, duration, false);
    let mut raw = vec![raw_verify_rate(cores, duration, true)];

    let server = BenchServer::start("login", "make bench", |server| {
        server
            .env("INVENTIV__BOOTSTRAP__ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("INVENTIV__RATE_LIMIT__LOGIN_PER_MINUTE", "1000000000");
    })
    .await;
    let pid = server.child.id();
    let base = server.base.clone();
    let idle = status_bytes(pid, "VmRSS:");
    let mut storms = Vec::new();
    for &c in &connections {
        storms.push(storm(&base, pid, c, duration).await);
        raw.push(raw_verify_rate(cores, duration, true));
    }
    let binary = server.binary.clone();
    let backend = server.stop().await;

    let mut report = format!(
        "Sign-ins vs raw argon2id (m = 19 MiB, t = 2, p = 1), {backend}, {} s each, in this \
         order, {cores} cores shared by the server, its database and the driver; server {}.\n\n\
         | what | per second | vs raw around it | p50 (ms) | p99 (ms) | 503 server_busy | other errors | server peak RSS |\n\
         |---|---|---|---|---|---|---|---|\n\
         | raw `verify_password`, {cores} threads, a fresh buffer each call | {raw_fresh:.1} | {:.2} | | | | | |\n\
         | raw verify, {cores} threads, one reused buffer each | {:.1} | | | | | | |\n",
        duration.as_secs(),
        binary.display(),
        raw_fresh / raw[0],
        raw[0],
    );
    for (i, s) in storms.iter().enumerate() {
        let around = (raw[i] + raw[i + 1]) / 2.0;
        report.push_str(&format!(
            "| server, {} connections signing in | {:.1} | {:.2} | {:.0} | {:.0} | {} | {} | {} |\n\
             | raw verify, {cores} threads, one reused buffer each | {:.1} | | | | | | |\n",
            s.connections,
            s.rate(),
            s.rate() / around,
            s.p50_ms,
            s.p99_ms,
            s.busy,
            s.other
                .iter()
                .map(|(answer, n)| format!("{answer} × {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            if s.peak_rss == 0 {
                "unknown (clear_refs refused)".to_owned()
            } else {
                format!("{:.0} MB", s.peak_rss as f64 / MB)
            },
            raw[i + 1],
        ));
    }
    report.push_str(&format!(
        "\nServer RSS when idle, before the storms: {:.0} MB.\n\n\
         Where the CPU went, per successful sign-in (from `/proc`, 10 ms ticks over the whole \
         storm; a raw verify's CPU is {cores} cores / the raw rate around the storm). The hash \
         threads' share is the ceiling of the ratio above: the rest is taken from the cores \
         the hashes would use.\n\n\
         | storm | hash threads (ms) | raw verify (ms) | rest of the server (ms) | PostgreSQL (ms) | driver (ms) | hash threads' share |\n\
         |---|---|---|---|---|---|---|\n",
        idle as f64 / MB
    ));
    for (i, s) in storms.iter().enumerate() {
        let around = (raw[i] + raw[i + 1]) / 2.0;
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let total: f64 = s.cpu.iter().map(|d| ms(*d)).sum();
        let [hash, rest, postgres, driver] = s.cpu.map(ms);
        report.push_str(&format!(
            "| {} connections | {hash:.2} | {:.2} | {rest:.2} | {postgres:.2} | {driver:.2} | {:.2} |\n",
            s.connections,
            cores as f64 * 1e3 / around,
            hash / total.max(f64::MIN_POSITIVE),
        ));
    }
    println!("{report}");
    let out = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/bench"));
    std::fs::create_dir_all(out).unwrap();
    std::fs::write(out.join("login_load.md"), &report).unwrap();
}
