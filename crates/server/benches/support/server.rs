//! The release server as a benchmark's child process: the binary (`INVENTIV_BENCH_SERVER_BIN`
//! for another checkout's build, run from that checkout for its config), a fresh database and
//! data directory, a free loopback port, and the wait until it listens. Include beside
//! `support/database.rs` (`mod database;`), whose `BenchDatabase` it uses.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running release server and what it was started on.
pub struct BenchServer {
    pub child: Child,
    pub base: String,
    pub binary: PathBuf,
    dir: PathBuf,
    database: crate::database::BenchDatabase,
}

/// The release binary to run and the checkout to run it from. `make_target` names the make
/// target that builds it, for the message when it is missing.
pub fn release_binary(make_target: &str) -> (PathBuf, PathBuf) {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let binary: PathBuf = std::env::var_os("INVENTIV_BENCH_SERVER_BIN")
        .map_or_else(|| root.join("target/release/inventiv-server"), Into::into);
    let checkout = binary
        .ancestors()
        .nth(3)
        .map_or_else(|| root.clone(), Path::to_path_buf);
    assert!(
        binary.exists(),
        "build it first: cargo build --release -p inventiv-server ({make_target} does)"
    );
    (binary, checkout)
}

impl BenchServer {
    /// Starts `inventiv-server serve` with the bench's port, data directory, database and
    /// `error` logging; `configure` adds the bench's own settings. Returns once it answers
    /// `/healthz`.
    pub async fn start(
        label: &str,
        make_target: &str,
        configure: impl FnOnce(&mut Command),
    ) -> BenchServer {
        let (binary, checkout) = release_binary(make_target);
        let dir = std::env::temp_dir().join(format!(
            "inventiv-bench-{label}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let database = crate::database::BenchDatabase::create(&dir).await;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut command = Command::new(&binary);
        command
            .arg("serve")
            .current_dir(&checkout)
            .env("INVENTIV__SERVER__PORT", port.to_string())
            .env("INVENTIV__SERVER__DATA_DIR", &dir)
            .env("INVENTIV__DATABASE__URL", &database.url)
            .env("INVENTIV__LOG__LEVEL", "error")
            .stdout(Stdio::null());
        configure(&mut command);
        let mut child = command.spawn().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        while client.get(format!("{base}/healthz")).send().await.is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the server exited before listening ({status})");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        BenchServer {
            child,
            base,
            binary,
            dir,
            database,
        }
    }

    /// Stops the server gracefully, drops its database and directory; returns the backend's
    /// name for the report.
    pub async fn stop(mut self) -> &'static str {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let backend = self.database.backend;
        self.database.drop().await;
        let _ = std::fs::remove_dir_all(&self.dir);
        backend
    }
}
