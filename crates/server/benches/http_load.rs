//! `make bench`: an HTTP load driver on loopback against the real server, started in this
//! process on a fresh database — a new PostgreSQL database when `INVENTIV_BENCH_DATABASE_URL`
//! names a PostgreSQL server (what `make bench` does; dropped at the end), else a SQLite file.
//!
//! 1. Seeds 10 organizations × 100 instances (1,000 instances), then measures `GET /healthz`,
//!    an authenticated `GET /auth/me`, a scoped `GET /instances` (one org's first page) and
//!    `POST /auth/login`, at each connection count (default 1 and 64). Each read is measured
//!    twice: as `wrk` asks (no `Accept-Encoding`) and as a browser asks (gzip accepted). The
//!    list is also measured with a page of one instance, and with a page about as long as a
//!    static file of the console, beside that file: the same bytes with and without a session.
//! 2. Issue 18: the authenticated reads as ratios to `/healthz` (throughput at the largest
//!    connection count, p50 at the smallest), and a mixed load at the largest count — `GET
//!    /auth/me` on one session per connection, beside writers making 5 % of all requests —
//!    against the same reads alone, with the session cache's hit rate. The writes rename an
//!    API key of the same user in the same org (nothing the readers' sessions are built from),
//!    then, for contrast, change the readers' own account (which flushes every reader's
//!    session, as any write did when one global epoch invalidated every cache). Before them,
//!    the write alone: its rate, and the CPU per write of this process and of PostgreSQL;
//!    with it, each load's reads per CPU second left to the reads.
//! 3. Seeds up to 10,000 organizations × 100 instances (1,000,000 instances) with the
//!    set-based seeder, and measures the same `GET /instances` again.
//!
//! `BENCH_ROUNDS=N` repeats the reads N times, interleaved, and reports each ratio's median
//! (each read against the same round's `/healthz`).
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

#[path = "support/cpu.rs"]
mod cpu;
#[path = "support/database.rs"]
mod database;
#[path = "support/driver.rs"]
mod driver;
use database::BenchDatabase;

struct Scenario {
    name: &'static str,
    request: String,
}

const HEALTHZ: &str = "GET /healthz";
const LOGIN: &str = "POST /auth/login";

/// The authenticated reads, each as a client without `Accept-Encoding` (like `wrk`) and as
/// a browser asks (which gets the cached gzip of a body of 1 KiB or more), then the scoped
/// list with pages of other sizes (what a page's bytes cost, apart from being signed in).
const READS: [&str; 6] = [
    "GET /auth/me (authenticated)",
    "GET /auth/me (authenticated, gzip accepted)",
    "GET /instances (one org's first page)",
    "GET /instances (one org's first page, gzip accepted)",
    "GET /instances?limit=1 (a page of one instance)",
    SAME_BYTES_READ,
];

/// A page of instances about as long as [`STATIC_FILE`], and that file: the same bytes
/// answered with a session and a scope, and answered from a static table with neither.
const SAME_BYTES_READ: &str = "GET /instances?limit=K (about the bytes of the static file)";
const STATIC_FILE: &str = "GET /console/app.js (a static file, no session)";

/// `request` with the `Accept-Encoding` of today's browsers.
fn as_a_browser(request: &str) -> String {
    request.replacen(
        "\r\n",
        "\r\nAccept-Encoding: gzip, deflate, br, zstd\r\n",
        1,
    )
}

struct Measured {
    name: String,
    connections: usize,
    /// Which pass over the scenarios (`BENCH_ROUNDS`); ratios compare within one round.
    round: usize,
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
    // On a machine whose speed drifts from one second to the next (a shared host), one pass
    // can put `/healthz` in a fast second and a read in a slow one: several interleaved
    // passes, each read compared with the same pass's `/healthz`, and the median reported.
    let rounds: usize = env_or("BENCH_ROUNDS", 1).max(1);
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
    let deps = app.deps().clone();
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
    let tx = db.begin_write().await.unwrap();
    memberships::insert(&tx, org.id, admin_id, Role::Owner, now_utc_micros())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let switch_body = format!(r#"{{"organization_id":"{}"}}"#, org.id);
    let org_token = switch(port, &token, &switch_body).await;

    let instances = driver::raw_request("GET", "/instances", Some(&org_token), None);
    let me = driver::raw_request("GET", "/auth/me", Some(&org_token), None);
    let static_file = driver::raw_request("GET", "/console/app.js", None, None);
    // As many instances as make the static file's length (their JSON is all of one shape).
    let (_, page_bytes) = body_length(port, &instances).await;
    let (_, file_bytes) = body_length(port, &static_file).await;
    let per_instance = page_bytes / per_org.min(50) as usize;
    let same_bytes_limit = (file_bytes + per_instance / 2) / per_instance.max(1);
    let same_bytes = driver::raw_request(
        "GET",
        &format!("/instances?limit={}", same_bytes_limit.max(1)),
        Some(&org_token),
        None,
    );
    let scenarios = [
        Scenario {
            name: HEALTHZ,
            request: driver::raw_request("GET", "/healthz", None, None),
        },
        Scenario {
            name: READS[0],
            request: me.clone(),
        },
        Scenario {
            name: READS[1],
            request: as_a_browser(&me),
        },
        Scenario {
            name: READS[2],
            request: instances.clone(),
        },
        Scenario {
            name: READS[3],
            request: as_a_browser(&instances),
        },
        Scenario {
            name: READS[4],
            request: driver::raw_request("GET", "/instances?limit=1", Some(&org_token), None),
        },
        Scenario {
            name: SAME_BYTES_READ,
            request: same_bytes,
        },
        Scenario {
            name: STATIC_FILE,
            request: static_file,
        },
        Scenario {
            name: LOGIN,
            request: driver::raw_request("POST", "/auth/login", None, Some(LOGIN_BODY)),
        },
    ];
    let mut sizes = String::from("\nBody sizes (bytes):");
    for scenario in scenarios
        .iter()
        .filter(|s| s.name != HEALTHZ && s.name != LOGIN)
    {
        let (status, length) = body_length(port, &scenario.request).await;
        assert_eq!(status, 200, "{}", scenario.name);
        sizes.push_str(&format!(" {}: {length};", scenario.name));
    }
    let mut measured = Vec::new();
    for round in 0..rounds {
        for &c in &connections {
            // Sign-ins (seconds of hashing each) once: the rounds are for the reads.
            for scenario in scenarios.iter().filter(|s| round == 0 || s.name != LOGIN) {
                let result = driver::run(port, &scenario.request, c, duration).await;
                measured.push(Measured {
                    name: scenario.name.to_owned(),
                    connections: c,
                    round,
                    result,
                });
            }
        }
    }

    // Reads with 5 % writes vs the same reads alone, at the largest connection count: one
    // session per reading connection, all of the admin in scale-1.
    let busiest = connections.iter().copied().max().unwrap_or(1);
    let mut reads = Vec::new();
    for _ in 0..busiest {
        let token = switch(port, &login(port).await, &switch_body).await;
        reads.push(driver::raw_request("GET", "/auth/me", Some(&token), None));
    }
    let (status, created) = driver::request(
        port,
        "POST",
        "/api_keys",
        Some(&org_token),
        Some(r#"{"name":"bench"}"#),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let key_id = serde_json::from_str::<serde_json::Value>(&created).unwrap()["key"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let elsewhere = driver::raw_request(
        "PUT",
        &format!("/api_keys/{key_id}"),
        Some(&org_token),
        Some(r#"{"name":"bench-renamed"}"#),
    );
    let own_account = driver::raw_request(
        "PUT",
        "/auth/me",
        Some(&org_token),
        Some(r#"{"first_name":"Bench"}"#),
    );
    // What one audited write costs, alone: the writers back to back, and the CPU this process
    // (server and driver) and PostgreSQL spent per write. This is what a 5 % write share
    // takes from the reads on a machine the reads already saturate.
    let spent = cpu::Spent::now(std::process::id());
    let [_, writes_alone] =
        driver::run_with_writes(port, &[], Some((&elsewhere, f64::MAX)), duration).await;
    let [_, process, postgres, _] =
        cpu::Spent::now(std::process::id()).per(&spent, writes_alone.requests);
    let per_write = process + postgres;
    // Each load: its outcomes, the session cache's hit rate, and the CPU seconds this process
    // and PostgreSQL spent in it.
    let mut mixes: Vec<(&str, [driver::Outcome; 2], f64, f64)> = Vec::new();
    let loads = [
        ("reads alone", None),
        (
            "5 % writes of something else (an API key)",
            Some(elsewhere.as_str()),
        ),
        (
            "5 % writes of the readers' own account",
            Some(own_account.as_str()),
        ),
    ];
    for (name, write) in loads {
        // 5 % of all requests: 5 writes for 95 reads at the rate of the reads alone.
        let rate = mixes
            .first()
            .map_or(0.0, |(_, [alone, _], _, _)| alone.rps() * 5.0 / 95.0);
        let hits = deps.caches.sessions.hits();
        let spent = cpu::Spent::now(std::process::id());
        let outcome =
            driver::run_with_writes(port, &reads, write.map(|w| (w, rate)), duration).await;
        let [hashing, process, postgres, _] = cpu::Spent::now(std::process::id()).per(&spent, 1);
        let requests = outcome[0].requests + outcome[1].requests;
        let hit_rate = (deps.caches.sessions.hits() - hits) as f64 / requests.max(1) as f64;
        let cpu_seconds = (hashing + process + postgres).as_secs_f64();
        mixes.push((name, outcome, hit_rate, cpu_seconds));
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
            round: 0,
            result: driver::run(port, &instances, c, duration).await,
        });
    }

    let mut report = format!(
        "Backend: {}; {seconds} s per scenario; server and driver share this machine ({} cores).\n\n\
         | scenario | round | connections | requests/s | p50 (µs) | p99 (µs) | errors | throughput vs /healthz | p50 vs /healthz |\n\
         |---|---|---|---|---|---|---|---|---|\n",
        database.backend,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    for m in &measured {
        let base = measured
            .iter()
            .find(|b| b.connections == m.connections && b.round == m.round && b.name == HEALTHZ)
            .unwrap();
        let (r, b) = (&m.result, &base.result);
        report.push_str(&format!(
            "| {} | {} | {} | {:.0} | {:.0} | {:.0} | {} | {:.2} | {:.2} |\n",
            m.name,
            m.round + 1,
            m.connections,
            r.rps(),
            r.p50_us,
            r.p99_us,
            r.errors,
            r.rps() / b.rps(),
            r.p50_us / b.p50_us
        ));
    }
    report.push_str(&authenticated_reads(&measured, &connections, rounds));
    report.push_str(&sizes);
    report.push('\n');
    report.push_str(&format!(
        "\nMixed load: {busiest} connections read `GET /auth/me`, each with a session of its own, \
         while {} more write at 5 % of all requests (5 writes for 95 reads at the rate of the \
         reads alone; as fast as the server takes them if it cannot keep up):\n\n\
         | load | reads/s | writes/s | write share | read p50 (µs) | read p99 (µs) | errors | sessions from the cache |\n\
         |---|---|---|---|---|---|---|---|\n",
        driver::WRITERS
    ));
    for (name, [reads, writes], hit_rate, _) in &mixes {
        report.push_str(&format!(
            "| {name} | {:.0} | {:.0} | {:.1} % | {:.0} | {:.0} | {} | {:.1} % |\n",
            reads.rps(),
            writes.rps(),
            100.0 * writes.requests as f64 / (reads.requests + writes.requests).max(1) as f64,
            reads.p50_us,
            reads.p99_us,
            reads.errors + writes.errors,
            100.0 * hit_rate,
        ));
    }
    report.push_str(&format!(
        "\nThe write alone (`PUT /api_keys/{{id}}`, a rename and its audit event), {} connections \
         back to back: {:.0} writes/s, p50 {:.0} µs, {} errors; CPU per write: {:.0} µs in this \
         process (server and driver), {:.0} µs in PostgreSQL.\n",
        driver::WRITERS,
        writes_alone.rps(),
        writes_alone.p50_us,
        writes_alone.errors,
        process.as_secs_f64() * 1e6,
        postgres.as_secs_f64() * 1e6,
    ));
    let alone = mixes[0].1[0].rps();
    // Reads per CPU second left to them: the load's CPU less what its writes cost alone. Where
    // the writes take only their own CPU from the reads (no cache flushed, no lock waited on),
    // this stays at the reads-alone figure whatever the share of writes.
    let reads_per_cpu = |(_, [reads, writes], _, cpu): &(&str, [driver::Outcome; 2], f64, f64)| {
        let writing = writes.requests as f64 * per_write.as_secs_f64();
        reads.requests as f64 / (cpu - writing).max(1e-3)
    };
    let efficiency = reads_per_cpu(&mixes[0]);
    report.push_str(&format!(
        "\nReads under 5 % writes / reads alone: **{:.2}** with writes of something else (goal \
         ≥ 0.9), {:.2} with writes of the readers' own account (each flushes every reader's \
         session, as any write did before tags).\n\
         \nReads per CPU second left to the reads (the load's CPU, this process and PostgreSQL, \
         less its writes at the cost of the write alone), against the reads alone: **{:.2}** \
         with writes of something else, {:.2} with writes of the readers' own account. The \
         reads alone: {:.0} reads per CPU second.\n",
        mixes[1].1[0].rps() / alone,
        mixes[2].1[0].rps() / alone,
        reads_per_cpu(&mixes[1]) / efficiency,
        reads_per_cpu(&mixes[2]) / efficiency,
        efficiency,
    ));
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
            .find(|m| m.connections == big.connections && m.name == READS[2])
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

/// Issue 18's figures: each authenticated read's throughput at the largest connection count
/// and p50 at the smallest, as ratios to `/healthz` measured in the same run.
fn authenticated_reads(measured: &[Measured], connections: &[usize], rounds: usize) -> String {
    let (few, many) = (
        connections.iter().copied().min().unwrap_or(1),
        connections.iter().copied().max().unwrap_or(1),
    );
    let find = |name: &str, c: usize, round: usize| {
        measured
            .iter()
            .find(|m| m.connections == c && m.round == round && m.name == name)
            .map(|m| &m.result)
            .unwrap()
    };
    // The middle value; with an even count, the mean of the middle two (not the upper one).
    let median = |mut values: Vec<f64>| {
        values.sort_by(|a, b| a.total_cmp(b));
        let mid = values.len() / 2;
        if values.len().is_multiple_of(2) {
            (values[mid - 1] + values[mid]) / 2.0
        } else {
            values[mid]
        }
    };
    let mut out = format!(
        "\nAuthenticated reads vs `/healthz` (goal: ≥ 0.75× the throughput at {many} connections, \
         p50 within +50 µs at {few}); medians of {rounds} round(s), each read against the same \
         round's `/healthz`:\n\n\
         | read | throughput at {many} vs /healthz | each round | p50 at {few} (µs) | p50 − /healthz's (µs) |\n\
         |---|---|---|---|---|\n"
    );
    for name in READS {
        let ratios: Vec<f64> = (0..rounds)
            .map(|r| find(name, many, r).rps() / find(HEALTHZ, many, r).rps())
            .collect();
        let each: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
        let p50 = median((0..rounds).map(|r| find(name, few, r).p50_us).collect());
        let added = median(
            (0..rounds)
                .map(|r| find(name, few, r).p50_us - find(HEALTHZ, few, r).p50_us)
                .collect(),
        );
        out.push_str(&format!(
            "| {name} | **{:.2}** | {} | {p50:.0} | **{added:+.0}** |\n",
            median(ratios),
            each.join(" / "),
        ));
    }
    let ratios: Vec<f64> = (0..rounds)
        .map(|r| find(SAME_BYTES_READ, many, r).rps() / find(STATIC_FILE, many, r).rps())
        .collect();
    let each: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
    let added = median(
        (0..rounds)
            .map(|r| find(SAME_BYTES_READ, few, r).p50_us - find(STATIC_FILE, few, r).p50_us)
            .collect(),
    );
    out.push_str(&format!(
        "\nThe same bytes with and without a session: `{SAME_BYTES_READ}` vs `{STATIC_FILE}`: \
         **{:.2}** of its throughput at {many} connections ({}), p50 at {few} **{added:+.0} µs**.\n",
        median(ratios),
        each.join(" / "),
    ));
    out
}

/// Sends the raw `request` once on a fresh connection; returns (status, body length).
async fn body_length(port: u16, request: &str) -> (u16, usize) {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    driver::read_response(&mut stream, &mut vec![0u8; 1 << 20]).await
}

/// Moves the session of `token` to the org of `body`; returns the new token.
async fn switch(port: u16, token: &str, body: &str) -> String {
    let (status, switched) = driver::request(
        port,
        "PUT",
        "/organizations/current",
        Some(token),
        Some(body),
    )
    .await;
    assert_eq!(status, 200, "{switched}");
    serde_json::from_str::<serde_json::Value>(&switched).unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn login(port: u16) -> String {
    let (status, body) = driver::request(port, "POST", "/auth/login", None, Some(LOGIN_BODY)).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<serde_json::Value>(&body).unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}
