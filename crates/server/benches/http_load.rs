//! `make bench`: an HTTP load driver on loopback against the real server, started in this
//! process on a fresh database — a new PostgreSQL database when `INVENTIV_BENCH_DATABASE_URL`
//! names a PostgreSQL server (what `make bench` does; dropped at the end), else a SQLite file.
//!
//! 1. Seeds 10 organizations × 100 instances (1,000 instances), then measures `GET /healthz`,
//!    an authenticated `GET /auth/me`, a scoped `GET /instances` (one org's first page) and
//!    `POST /auth/login`, at each connection count (default 1 and 64).
//! 2. Seeds up to 10,000 organizations × 100 instances (1,000,000 instances) with the
//!    set-based seeder, and measures the same `GET /instances` again.
//!
//! Each scenario keeps C keep-alive HTTP/1.1 connections busy for D seconds (a minimal client
//! on raw TCP so the driver costs little CPU). Figures are ratios to `GET /healthz`, or to the
//! small database, measured in the same run. Performance is only ever *reported* here.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use inventiv_domain::{Role, Slug};
use inventiv_persistence::now_utc_micros;
use inventiv_persistence::repo::{memberships, organizations, scale};
use inventiv_server::settings::Secret;
use inventiv_server::{Application, Environment, Settings};
use std::time::{Duration, Instant};

#[path = "support/database.rs"]
mod database;
#[path = "support/driver.rs"]
mod driver;
use database::BenchDatabase;

struct Scenario {
    name: &'static str,
    request: String,
}

struct Measured {
    name: String,
    connections: usize,
    result: driver::Outcome,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

const ADMIN_PASSWORD: &str = "bench-admin-password";
const LOGIN_BODY: &str = r#"{"email":"admin@inventiv.local","password":"bench-admin-password"}"#;

#[tokio::main]
async fn main() {
    let seconds: u64 = env_or("BENCH_SECONDS", 5);
    let duration = Duration::from_secs(seconds);
    let connections: Vec<usize> = std::env::var("BENCH_CONNECTIONS")
        .ok()
        .map(|s| s.split(',').filter_map(|c| c.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 64]);
    let scale_orgs: u32 = env_or("BENCH_SCALE_ORGS", 10_000);
    let per_org: u32 = env_or("BENCH_SCALE_INSTANCES_PER_ORG", 100);

    let dir =
        std::env::temp_dir().join(format!("inventiv-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let database = BenchDatabase::create(&dir).await;
    let config = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../config"));
    let mut settings = Settings::load(&config, Environment::Development).unwrap();
    settings.server.port = 0;
    settings.server.data_dir = dir.clone();
    settings.log.level = "error".into();
    settings.database.max_connections = 64;
    settings.database.url = Secret::new(database.url.clone());
    settings.bootstrap.admin_password = Secret::new(ADMIN_PASSWORD);
    // The login scenario signs in thousands of times from one address, all its connections
    // waiting for the hash threads rather than refused (`login_load` measures the refusals).
    settings.rate_limit.login_per_minute = u32::MAX;
    settings.auth.hash_queue = 1024;
    let app = Application::build(settings).await.unwrap();
    let port = app.port();
    let db = app.db().clone();
    tokio::spawn(app.run_until_stopped());

    // The small database: 10 orgs × 100 instances; the admin becomes a member of scale-1 and
    // switches to it (which supersedes the first token).
    scale::seed(&db, 10, per_org, now_utc_micros())
        .await
        .unwrap();
    let small = scale::count_instances(&db).await.unwrap();
    let token = login(port).await;
    let org = organizations::find_by_slug(&db, &Slug::parse(&scale::slug(1)).unwrap())
        .await
        .unwrap()
        .unwrap();
    let me: serde_json::Value = serde_json::from_str(
        &driver::request(port, "GET", "/auth/me", Some(&token), None)
            .await
            .1,
    )
    .unwrap();
    let admin_id: inventiv_domain::UserId = me["user_id"].as_str().unwrap().parse().unwrap();
    memberships::insert(&db, org.id, admin_id, Role::Owner, now_utc_micros())
        .await
        .unwrap();
    let switch = format!(r#"{{"organization_id":"{}"}}"#, org.id);
    let (_, switched) = driver::request(
        port,
        "PUT",
        "/organizations/current",
        Some(&token),
        Some(&switch),
    )
    .await;
    let org_token = serde_json::from_str::<serde_json::Value>(&switched).unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let instances = driver::raw_request("GET", "/instances", Some(&org_token), None);
    let scenarios = [
        Scenario {
            name: "GET /healthz",
            request: driver::raw_request("GET", "/healthz", None, None),
        },
        Scenario {
            name: "GET /auth/me (authenticated)",
            request: driver::raw_request("GET", "/auth/me", Some(&org_token), None),
        },
        Scenario {
            name: "GET /instances (one org's first page)",
            request: instances.clone(),
        },
        Scenario {
            name: "POST /auth/login",
            request: driver::raw_request("POST", "/auth/login", None, Some(LOGIN_BODY)),
        },
    ];
    let mut measured = Vec::new();
    for &c in &connections {
        for scenario in &scenarios {
            let result = driver::run(port, &scenario.request, c, duration).await;
            measured.push(Measured {
                name: scenario.name.to_owned(),
                connections: c,
                result,
            });
        }
    }

    // The large database.
    let started = Instant::now();
    let added = scale::seed(&db, scale_orgs, per_org, now_utc_micros())
        .await
        .unwrap();
    let seed_seconds = started.elapsed().as_secs_f64();
    let large = scale::count_instances(&db).await.unwrap();
    let mut at_scale = Vec::new();
    for &c in &connections {
        at_scale.push(Measured {
            name: "GET /instances".to_owned(),
            connections: c,
            result: driver::run(port, &instances, c, duration).await,
        });
    }

    let mut report = format!(
        "Backend: {}; {seconds} s per scenario; server and driver share this machine ({} cores).\n\n\
         | scenario | connections | requests/s | p50 (µs) | p99 (µs) | errors | throughput vs /healthz | p50 vs /healthz |\n\
         |---|---|---|---|---|---|---|---|\n",
        database.backend,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    for m in &measured {
        let base = measured
            .iter()
            .find(|b| b.connections == m.connections && b.name == "GET /healthz")
            .unwrap();
        let (r, b) = (&m.result, &base.result);
        report.push_str(&format!(
            "| {} | {} | {:.0} | {:.0} | {:.0} | {} | {:.2} | {:.2} |\n",
            m.name,
            m.connections,
            r.rps(),
            r.p50_us,
            r.p99_us,
            r.errors,
            r.rps() / b.rps(),
            r.p50_us / b.p50_us
        ));
    }
    report.push_str(&format!(
        "\nScale: seeding {} organizations and {} instances took {seed_seconds:.1} s \
         ({:.0} instances/s). `GET /instances` of one org, {small} instances in the database vs \
         {large}:\n\n\
         | connections | p50 (µs) small → large | p99 (µs) small → large | p50 large/small | requests/s small → large |\n\
         |---|---|---|---|---|\n",
        added.organizations,
        added.instances,
        added.instances as f64 / seed_seconds
    ));
    for big in &at_scale {
        let small = measured
            .iter()
            .find(|m| m.connections == big.connections && m.name.starts_with("GET /instances"))
            .unwrap();
        let (s, l) = (&small.result, &big.result);
        report.push_str(&format!(
            "| {} | {:.0} → {:.0} | {:.0} → {:.0} | {:.2} | {:.0} → {:.0} |\n",
            big.connections,
            s.p50_us,
            l.p50_us,
            s.p99_us,
            l.p99_us,
            l.p50_us / s.p50_us,
            s.rps(),
            l.rps()
        ));
    }
    println!("{report}");
    let out = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/bench"));
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("http_load.md"), &report).unwrap();
    database.drop().await;
    let _ = std::fs::remove_dir_all(dir);
}

async fn login(port: u16) -> String {
    let (status, body) = driver::request(port, "POST", "/auth/login", None, Some(LOGIN_BODY)).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<serde_json::Value>(&body).unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}
