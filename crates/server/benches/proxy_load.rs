//! `make bench-proxy`: the proxy's added latency and CPU cost, measured in one run against a
//! fast local OpenAI-compatible upstream (a fixed completion, keep-alive, TCP_NODELAY).
//!
//! The release server binary runs as its own process (so its CPU time can be read from
//! /proc). Scenarios alternate: straight to the upstream, then through the proxy with an API
//! key, at 1 and at 32 connections. The report gives the added latency p50/p99 at 1
//! connection, the throughput at 32, and the proxy's CPU time per request (metering on).
//! It runs on a SQLite file, or on a fresh PostgreSQL database of the server named by
//! `INVENTIV_BENCH_DATABASE_URL`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Stdio};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[path = "support/database.rs"]
mod database;
#[path = "support/driver.rs"]
mod driver;

const COMPLETION: &str = r#"{"id":"c","object":"chat.completion","created":1,"model":"bench","choices":[{"index":0,"message":{"role":"assistant","content":"Hello!"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}"#;

/// A fast upstream: answers every request with a fixed completion, on keep-alive connections.
async fn upstream() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            stream.set_nodelay(true).unwrap();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let mut filled = 0;
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{COMPLETION}",
                    COMPLETION.len()
                );
                loop {
                    let Some(end) = buf[..filled].windows(4).position(|w| w == b"\r\n\r\n") else {
                        match stream.read(&mut buf[filled..]).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => filled += n,
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| {
                            l.strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    while filled < end + 4 + length {
                        match stream.read(&mut buf[filled..]).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => filled += n,
                        }
                    }
                    buf.copy_within(end + 4 + length..filled, 0);
                    filled -= end + 4 + length;
                    if stream.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// One management call that must succeed; its JSON answer.
async fn call(port: u16, method: &str, path: &str, token: &str, body: &str) -> serde_json::Value {
    let body = (!body.is_empty()).then_some(body);
    let (status, answer) = driver::request(port, method, path, Some(token), body).await;
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {answer}"
    );
    json(&answer)
}

/// Switches `token`'s session to the org `slug`; the new token.
async fn switch(port: u16, token: &str, slug: &str) -> String {
    let orgs = call(port, "GET", "/organizations", token, "").await;
    let org = orgs["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["slug"] == slug)
        .unwrap()["id"]
        .clone();
    let body = format!(r#"{{"organization_id":{org}}}"#);
    call(port, "PUT", "/organizations/current", token, &body).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Both approvals (the platform admin owns the orgs: it may give both).
async fn approve(port: u16, token: &str, path: &str) {
    for flag in ["tech", "eco"] {
        let body = format!(r#"{{"flag":"{flag}","active":true}}"#);
        call(port, "POST", path, token, &body).await;
    }
}

/// Sets up a priced share through the API and returns a consumer key capped (like the share)
/// far above what the run can spend, so every call is admitted against two caps.
///
/// The platform admin owns both orgs: `prov` runs the model and offers it as `prov/chat`,
/// `cons` accepts the share and calls it.
async fn capped_share_key(port: u16, admin: &str, model_id: &str) -> String {
    for slug in ["prov", "cons"] {
        let body = format!(r#"{{"name":"Bench {slug}","slug":"{slug}","set_as_current":false}}"#);
        call(port, "POST", "/organizations", admin, &body).await;
    }
    let prov = switch(port, admin, "prov").await;
    let body = format!(r#"{{"model_id":"{model_id}"}}"#);
    let instance = call(port, "POST", "/deployments", &prov, &body).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    while call(port, "GET", &format!("/instances/{instance}"), &prov, "").await["status"] != "ready"
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    approve(port, &prov, &format!("/instances/{instance}/activation")).await;
    let body = format!(r#"{{"model_id":"{model_id}","code":"chat","name":"Chat"}}"#);
    let offering = call(
        port,
        "POST",
        "/organizations/current/offerings",
        &prov,
        &body,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/organizations/current/offerings/{offering}");
    call(port, "PATCH", &path, &prov, r#"{"is_active":true}"#).await;
    approve(port, &prov, &format!("{path}/activation")).await;
    let body = format!(
        r#"{{"offering_id":"{offering}","consumer_organization_slug":"cons","price_input_micros_per_1k":1000,"price_output_micros_per_1k":2000}}"#
    );
    let share = call(port, "POST", "/organizations/current/shares", &prov, &body).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/organizations/current/shares/{share}");
    approve(port, &prov, &format!("{path}/activation")).await;
    let cons = switch(port, &prov, "cons").await;
    call(port, "POST", &format!("{path}/accept"), &cons, "{}").await;
    // Caps far above what a run spends (a call costs at most 4096 + 128 µ€ here).
    let cap = 1_000_000_000_000_i64;
    call(
        port,
        "PATCH",
        &path,
        &cons,
        &format!(r#"{{"monthly_cap_micros":{cap}}}"#),
    )
    .await;
    let body = format!(r#"{{"name":"capped","monthly_cap_micros":{cap}}}"#);
    let created = call(port, "POST", "/api_keys", &cons, &body).await;
    // An org key authenticates once both approvals are on (SPEC §4.3 v2).
    let key_id = created["key"]["id"].as_str().unwrap();
    approve(port, &cons, &format!("/api_keys/{key_id}/activation")).await;
    created["secret"].as_str().unwrap().to_owned()
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    let hz: f64 = String::from_utf8(
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .parse()
    .unwrap_or(100.0);
    ticks / hz
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[tokio::main]
async fn main() {
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let up = upstream().await;
    let root = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    // `INVENTIV_BENCH_SERVER_BIN=<checkout>/target/release/inventiv-server` runs another
    // checkout's build, from that checkout (its config), for A/B runs in one sitting.
    let binary: std::path::PathBuf = std::env::var_os("INVENTIV_BENCH_SERVER_BIN")
        .map_or_else(|| root.join("target/release/inventiv-server"), Into::into);
    let checkout = binary
        .ancestors()
        .nth(3)
        .map_or_else(|| root.clone(), std::path::Path::to_path_buf);
    assert!(
        binary.exists(),
        "build it first: cargo build --release -p inventiv-server (make bench-proxy does)"
    );
    let dir = std::env::temp_dir().join(format!(
        "inventiv-bench-proxy-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let database = database::BenchDatabase::create(&dir).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new(&binary)
        .arg("serve")
        .current_dir(&checkout)
        .env("INVENTIV__SERVER__PORT", port.to_string())
        .env("INVENTIV__SERVER__DATA_DIR", &dir)
        .env("INVENTIV__DATABASE__URL", &database.url)
        .env(
            "INVENTIV__BOOTSTRAP__ADMIN_PASSWORD",
            "bench-admin-password",
        )
        .env(
            "INVENTIV__PROVIDERS__MOCK__ENDPOINT_URL",
            format!("http://127.0.0.1:{up}"),
        )
        .env("INVENTIV__PROVIDERS__MOCK__BOOT_DELAY_MS", "10")
        .env("INVENTIV__PROVIDERS__MOCK__READY_DELAY_MS", "10")
        .env("INVENTIV__LOG__LEVEL", "error")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if let Ok(Some(status)) = server.try_wait() {
            panic!("the server exited before listening ({status}); its error is above");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The platform admin adds a public model, runs an instance of it in Personal (operational
    // by definition) and makes a personal API key.
    let (_, login) = driver::request(
        port,
        "POST",
        "/auth/login",
        None,
        Some(r#"{"email":"admin@inventiv.local","password":"bench-admin-password"}"#),
    )
    .await;
    let token = json(&login)["access_token"].as_str().unwrap().to_owned();
    let model =
        r#"{"name":"Bench","model_id":"bench/model","required_vram_gb":1,"context_length":4096}"#;
    let (_, created) = driver::request(port, "POST", "/models", Some(&token), Some(model)).await;
    let model_id = json(&created)["id"].as_str().unwrap().to_owned();
    let (_, instance) = driver::request(
        port,
        "POST",
        "/deployments",
        Some(&token),
        Some(&format!(r#"{{"model_id":"{model_id}"}}"#)),
    )
    .await;
    let instance_id = json(&instance)["id"].as_str().unwrap().to_owned();
    loop {
        let (_, state) = driver::request(
            port,
            "GET",
            &format!("/instances/{instance_id}"),
            Some(&token),
            None,
        )
        .await;
        if json(&state)["status"] == "ready" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, key) = driver::request(
        port,
        "POST",
        "/api_keys",
        Some(&token),
        Some(r#"{"name":"bench"}"#),
    )
    .await;
    let key = json(&key)["secret"].as_str().unwrap().to_owned();
    let capped = capped_share_key(port, &token, &model_id).await;

    let body = r#"{"model":"bench/model","messages":[{"role":"user","content":"Hi"}]}"#;
    let shared =
        r#"{"model":"prov/chat","max_tokens":64,"messages":[{"role":"user","content":"Hi"}]}"#;
    let direct = driver::raw_request("POST", "/v1/chat/completions", None, Some(body));
    let scenarios = [
        (
            "public model, no cap",
            driver::raw_request("POST", "/v1/chat/completions", Some(&key), Some(body)),
        ),
        (
            "priced share, key and share caps",
            driver::raw_request("POST", "/v1/chat/completions", Some(&capped), Some(shared)),
        ),
    ];
    // Warm every path (connection pools, caches, spend leases).
    driver::run(up, &direct, 4, Duration::from_secs(1)).await;
    // Every proxied 200 must leave exactly one usage row (checked after the server stops).
    let mut answered = 0;
    for (_, proxied) in &scenarios {
        let warm = driver::run(port, proxied, 4, Duration::from_secs(1)).await;
        assert_eq!(warm.errors, 0, "the warm-up failed");
        answered += warm.requests - warm.errors;
    }

    let duration = Duration::from_secs(seconds);
    // (scenario, connections, direct, proxied, proxy CPU per request)
    let mut rows = Vec::new();
    for (name, proxied) in &scenarios {
        for connections in [1usize, 32] {
            let d = driver::run(up, &direct, connections, duration).await;
            let cpu_before = cpu_seconds(server.id());
            let p = driver::run(port, proxied, connections, duration).await;
            let cpu = cpu_seconds(server.id()) - cpu_before;
            answered += p.requests - p.errors;
            let per_request = cpu / p.requests.max(1) as f64;
            rows.push((*name, connections, d, p, per_request));
        }
    }
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let stopped = std::time::Instant::now();
    let _ = server.wait();
    let stopping = stopped.elapsed();
    let db = inventiv_persistence::Db::connect(&database.url, &Default::default())
        .await
        .unwrap();
    let stored = inventiv_persistence::repo::usage::reconciliation::count_all(&db)
        .await
        .unwrap();
    db.close().await.unwrap();
    let backend = database.backend;
    database.drop().await;
    let _ = std::fs::remove_dir_all(&dir);

    let mut report = format!(
        "Proxy vs direct, {backend}, {seconds} s per scenario, alternating, on this machine ({} cores; driver, proxy and upstream share them).\n\n\
         | proxied path | connections | path | requests/s | p50 (µs) | p99 (µs) | errors |\n|---|---|---|---|---|---|---|\n",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    for (name, c, d, p, _) in &rows {
        report.push_str(&format!(
            "| {name} | {c} | direct | {:.0} | {:.0} | {:.0} | {} |\n",
            d.rps(),
            d.p50_us,
            d.p99_us,
            d.errors
        ));
        report.push_str(&format!(
            "| {name} | {c} | proxy | {:.0} | {:.0} | {:.0} | {} |\n",
            p.rps(),
            p.p50_us,
            p.p99_us,
            p.errors
        ));
    }
    report.push('\n');
    for pair in rows.chunks(2) {
        let [(name, _, d1, p1, _), (_, _, d32, p32, cpu)] = pair else {
            continue;
        };
        report.push_str(&format!(
            "{name}: added latency at 1 connection p50 {:.3} ms, p99 {:.3} ms; \
             throughput at 32 connections {:.0} req/s vs direct {:.0} (ratio {:.2}); \
             proxy CPU per request at 32 connections {:.1} µs.\n",
            (p1.p50_us - d1.p50_us) / 1000.0,
            (p1.p99_us - d1.p99_us) / 1000.0,
            p32.rps(),
            d32.rps(),
            p32.rps() / d32.rps(),
            cpu * 1e6,
        ));
    }
    report.push_str(&format!(
        "Usage rows stored: {stored} for {answered} proxied 200s (graceful stop, with the final flush, took {:.1} s).\n",
        stopping.as_secs_f64()
    ));
    println!("{report}");
    assert_eq!(
        stored, answered as i64,
        "every proxied 200 has exactly one usage row"
    );
    let out = root.join("target/bench");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("proxy_load.md"), &report).unwrap();
}
