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
use std::time::Duration;

#[path = "support/driver.rs"]
mod driver;

struct Scenario {
    name: &'static str,
    path: &'static str,
    token: Option<String>,
}

struct Outcome {
    name: &'static str,
    connections: usize,
    result: driver::Outcome,
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

    let (_, login) = driver::request(
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
            let req = driver::raw_request("GET", scenario.path, scenario.token.as_deref(), None);
            let result = driver::run(port, &req, c, Duration::from_secs(seconds)).await;
            outcomes.push(Outcome {
                name: scenario.name,
                connections: c,
                result,
            });
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
        let (r, b) = (&o.result, &base.result);
        report.push_str(&format!(
            "| {} | {} | {:.0} | {:.0} | {:.0} | {} | {:.2} | {:.2} |\n",
            o.name,
            o.connections,
            r.rps(),
            r.p50_us,
            r.p99_us,
            r.errors,
            r.rps() / b.rps(),
            r.p50_us / b.p50_us
        ));
    }
    println!("{report}");
    let out = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/bench"));
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("http_load.md"), &report).unwrap();
    let _ = std::fs::remove_dir_all(dir);
}
