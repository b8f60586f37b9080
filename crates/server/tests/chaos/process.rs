//! The real `inventiv-server` binary as a child process.

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, config_dir, json_with_status};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Shared by every replica of a test, as docs/operations.md requires.
const JWT_SECRET: &str = "chaos-tests-shared-jwt-secret-0123456789abcdef";

pub struct ServerProcess {
    child: Child,
    pub base: String,
    /// Where its logs go (kept for a failing test's post-mortem).
    pub log: PathBuf,
    args: (String, PathBuf, Vec<(String, String)>),
}

impl ServerProcess {
    /// Starts `inventiv-server serve` on a free loopback port and waits for `/healthz`.
    pub async fn start(db_url: &str, data_dir: &Path, extra_env: &[(&str, &str)]) -> Self {
        let extra = extra_env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Self::spawn(db_url.to_owned(), data_dir.to_owned(), extra).await
    }

    async fn spawn(db_url: String, data_dir: PathBuf, extra: Vec<(String, String)>) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = data_dir.join(format!("server-{port}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_inventiv-server"))
            .arg("serve")
            .env("INVENTIV_ENV", "test")
            .env("INVENTIV_CONFIG_DIR", config_dir())
            .env("INVENTIV__DATABASE__URL", &db_url)
            .env("INVENTIV__SERVER__DATA_DIR", &data_dir)
            .env("INVENTIV__SERVER__PORT", port.to_string())
            .env("INVENTIV__AUTH__JWT_SECRET", JWT_SECRET)
            .env("INVENTIV__BOOTSTRAP__ADMIN_PASSWORD", ADMIN_PASSWORD)
            .envs(extra.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .expect("start the server binary");
        let server = ServerProcess {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
            args: (db_url, data_dir, extra),
        };
        server.wait_until_up().await;
        server
    }

    async fn wait_until_up(&self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while client
            .get(format!("{}/healthz", self.base))
            .send()
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "the server did not start; see {}",
                self.log.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no shutdown hook, no flush, connections cut mid-request.
    pub fn kill9(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    /// A new process with the same settings (on a new port).
    pub async fn restart(&self) -> ServerProcess {
        let (url, dir, extra) = self.args.clone();
        Self::spawn(url, dir, extra).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Signs in as the bootstrap admin and switches to the bootstrap organization; returns the
/// token and the organization's id.
pub async fn admin_in_bootstrap_org(server: &ServerProcess) -> (String, String) {
    let client = reqwest::Client::new();
    let login = client
        .post(server.url("/auth/login"))
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    let token = json_with_status(login, 200).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let orgs = client
        .get(server.url("/organizations"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let orgs = json_with_status(orgs, 200).await;
    let org = orgs["items"][0]["id"].as_str().unwrap().to_owned();
    let switched = client
        .put(server.url("/organizations/current"))
        .bearer_auth(&token)
        .json(&json!({"organization_id": org}))
        .send()
        .await
        .unwrap();
    let token = json_with_status(switched, 200).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    (token, org)
}

/// Every item of a paged list endpoint (SPEC §4 pages), following `next_cursor`.
pub async fn all_pages(server: &ServerProcess, token: &str, path: &str) -> Vec<Value> {
    let client = reqwest::Client::new();
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut url = server.url(&format!("{path}{sep}limit=200"));
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let res = client.get(url).bearer_auth(token).send().await.unwrap();
        let page = json_with_status(res, 200).await;
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return items,
        }
    }
}
