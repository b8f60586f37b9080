//! PostgreSQL stopped under load (issue 9). The test runs a private PostgreSQL server of its
//! own (initdb in a temporary directory, on a free port), so stopping it disturbs nothing
//! else on the machine.

use crate::helpers::{assert_error, json_with_status};
use crate::load::{HANG, Load, Op, Workload, summary};
use crate::process::{ServerProcess, admin_in_bootstrap_org};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

struct PrivatePostgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    /// Run the PostgreSQL tools as `postgres` (they refuse to run as root).
    as_postgres: bool,
}

impl PrivatePostgres {
    fn create() -> PrivatePostgres {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL server binaries under /usr/lib/postgresql")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("pg_ctl").exists())
            .max()
            .expect("a PostgreSQL version with pg_ctl");
        let dir = std::env::temp_dir().join(format!("inventiv-pg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let as_postgres = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        if as_postgres {
            assert!(
                Command::new("chown")
                    .args(["postgres:postgres"])
                    .arg(&dir)
                    .status()
                    .unwrap()
                    .success()
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let pg = PrivatePostgres {
            bin,
            dir,
            port,
            as_postgres,
        };
        let data = pg.dir.join("data");
        pg.run(
            "initdb",
            &[
                "-D",
                path(&data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        pg.start();
        pg
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let tool = self.bin.join(tool);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(tool);
            c
        } else {
            Command::new(tool)
        };
        let out = command.args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn start(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.dir.display()
        );
        let (data, log) = (self.dir.join("data"), self.dir.join("postgres.log"));
        self.run(
            "pg_ctl",
            &[
                "-D",
                path(&data),
                "-l",
                path(&log),
                "-o",
                &options,
                "-w",
                "start",
            ],
        );
    }

    fn stop(&self) {
        let data = self.dir.join("data");
        self.run("pg_ctl", &["-D", path(&data), "-m", "fast", "-w", "stop"]);
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = Command::new(self.bin.join("pg_ctl"))
            .args(["-D", path(&data), "-m", "immediate", "stop"])
            .output();
        if self.as_postgres {
            let _ = Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(self.bin.join("pg_ctl"))
                .args(["-D", path(&data), "-m", "immediate", "stop"])
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Polls `/readyz` until it answers `status`.
async fn readyz_becomes(server: &ServerProcess, status: u16) -> serde_json::Value {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let res = client.get(server.url("/readyz")).send().await.unwrap();
        if res.status().as_u16() == status {
            return res.json().await.unwrap();
        }
        assert!(Instant::now() < deadline, "/readyz never answered {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_under_load_gives_503_then_service_resumes_by_itself() {
    let pg = PrivatePostgres::create();
    let data_dir = pg.dir.join("server");
    std::fs::create_dir_all(&data_dir).unwrap();
    let server = ServerProcess::start(
        &pg.url(),
        &data_dir,
        // Waiting for a connection is bounded by this: the longest a request can wait.
        &[("INVENTIV__DATABASE__ACQUIRE_TIMEOUT_SECS", "2")],
    )
    .await;
    let (token, _) = admin_in_bootstrap_org(&server).await;
    let work = Workload {
        token: token.clone(),
        members: vec![],
        model: String::new(),
        ops: vec![Op::Me, Op::Invite],
    };
    let load = Load::start(std::slice::from_ref(&server.base), 4, &work);
    tokio::time::sleep(Duration::from_millis(500)).await;

    pg.stop();
    let stopped = Instant::now();
    let readiness = readyz_becomes(&server, 503).await;
    assert_eq!(readiness["database"], false, "{readiness}");
    let client = reqwest::Client::new();
    let me = || {
        client
            .get(server.url("/auth/me"))
            .bearer_auth(&token)
            .send()
    };
    assert_error(me().await.unwrap(), 503, "database_unavailable").await;
    tokio::time::sleep(Duration::from_millis(1000)).await;

    pg.start();
    let restarted = Instant::now();
    readyz_becomes(&server, 200).await;
    json_with_status(me().await.unwrap(), 200).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let outcomes = load.stop().await;
    println!("{}", summary(&outcomes));

    // Every request got an answer (none hung) that was either a success or a clean 503.
    for o in &outcomes {
        match &o.result {
            Ok((status, _)) if (200..300).contains(status) => {}
            Ok((503, body)) => assert_eq!(body["error"], "database_unavailable", "{body}"),
            other => panic!("{:?} answered {other:?}", o.op),
        }
        assert!(o.answered - o.sent < HANG);
    }
    let unavailable = outcomes.iter().filter(|o| !o.ok()).count();
    assert!(unavailable > 0, "the outage was never seen by the load");
    let after = outcomes
        .iter()
        .filter(|o| o.ok() && o.sent > restarted)
        .count();
    assert!(after > 0, "no success after PostgreSQL came back");
    let slowest = outcomes
        .iter()
        .filter(|o| o.sent > stopped && o.sent < restarted)
        .map(|o| o.answered - o.sent)
        .max();
    println!("slowest answer during the outage: {slowest:?}");
}
