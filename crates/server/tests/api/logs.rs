//! Secrets stay out of the server's output (issue 16 item 3): the real binary runs as a child
//! process at `debug`, an invitation and a password reset are issued and used, and neither
//! token — nor its SHA-256 hex, the form the database keeps — appears in what it printed.

use crate::helpers::{
    ADMIN_EMAIL, ADMIN_PASSWORD, ReceivedMail, SmtpSink, TestDatabase, config_dir, json_with_status,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    base: String,
    out: PathBuf,
}

impl Server {
    async fn start(db: &TestDatabase, smtp_port: u16, level: &str) -> Server {
        Server::start_with(db, smtp_port, level, &[]).await
    }

    /// Like [`Server::start`], with more settings (`INVENTIV__…` variables) last.
    async fn start_with(
        db: &TestDatabase,
        smtp_port: u16,
        level: &str,
        extra: &[(&str, &str)],
    ) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let out = db.data_dir().join(format!("server-{port}.log"));
        let file = std::fs::File::create(&out).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_inventiv-server"))
            .arg("serve")
            .env_remove("RUST_LOG")
            .env("INVENTIV_ENV", "test")
            .env("INVENTIV_CONFIG_DIR", config_dir())
            .env("INVENTIV__DATABASE__URL", db.url())
            .env("INVENTIV__SERVER__DATA_DIR", db.data_dir())
            .env("INVENTIV__SERVER__PORT", port.to_string())
            .env(
                "INVENTIV__AUTH__JWT_SECRET",
                "logs-test-jwt-secret-0123456789abcdef",
            )
            .env("INVENTIV__BOOTSTRAP__ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("INVENTIV__SMTP__HOST", "127.0.0.1")
            .env("INVENTIV__SMTP__PORT", smtp_port.to_string())
            .env("INVENTIV__SMTP__TLS", "none")
            .env("INVENTIV__LOG__LEVEL", level)
            .envs(extra.iter().copied())
            // Both streams into one file: whatever the process prints counts.
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("start the server binary");
        let server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            out,
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while client.get(server.url("/healthz")).send().await.is_err() {
            assert!(Instant::now() < deadline, "the server did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops the process and returns everything it printed.
    fn finish(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::fs::read_to_string(&self.out).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn after(mail: &ReceivedMail, marker: &str) -> String {
    let body = mail.body_text();
    let start = body.find(marker).expect("link in the email") + marker.len();
    body[start..].split_whitespace().next().unwrap().to_owned()
}

async fn ok(res: reqwest::Response, status: u16) -> Value {
    json_with_status(res, status).await
}

#[tokio::test]
async fn invitation_and_reset_tokens_never_reach_the_servers_output() {
    let db = TestDatabase::create().await;
    let smtp = SmtpSink::start().await;
    let server = Server::start(&db, smtp.port(), "debug").await;
    let client = reqwest::Client::new();

    let login = client
        .post(server.url("/auth/login"))
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    let token = ok(login, 200).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let orgs = client
        .get(server.url("/organizations"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let org = ok(orgs, 200).await["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let switched = client
        .put(server.url("/organizations/current"))
        .bearer_auth(&token)
        .json(&json!({"organization_id": org}))
        .send()
        .await
        .unwrap();
    let token = ok(switched, 200).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    // The invitation: previewed, then accepted (which creates the account).
    let invited = client
        .post(server.url("/organizations/current/invitations"))
        .bearer_auth(&token)
        .json(&json!({"email": "invitee@example.com", "role": "user"}))
        .send()
        .await
        .unwrap();
    ok(invited, 201).await;
    let invitation = after(&smtp.wait_for("invitee@example.com").await, "/invitations/");
    let preview = client
        .get(server.url(&format!("/organizations/invitations/{invitation}")))
        .send()
        .await
        .unwrap();
    ok(preview, 200).await;
    // The console's page for the link, with the token in the path too.
    let page = client
        .get(server.url(&format!("/invitations/{invitation}")))
        .send()
        .await
        .unwrap();
    assert!(page.status().as_u16() < 500);
    let accepted = client
        .post(server.url(&format!("/organizations/invitations/{invitation}/accept")))
        .json(&json!({"password": "invitee-password"}))
        .send()
        .await
        .unwrap();
    ok(accepted, 200).await;

    // The reset: requested, its console page opened (`?token=`), then confirmed.
    let requested = client
        .post(server.url("/auth/password-reset/request"))
        .json(&json!({"email": "invitee@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(requested.status(), 202);
    let reset = after(&smtp.wait_for_nth("invitee@example.com", 2).await, "token=");
    let page = client
        .get(server.url(&format!("/reset-password?token={reset}")))
        .send()
        .await
        .unwrap();
    assert!(page.status().as_u16() < 500);
    let confirmed = client
        .post(server.url("/auth/password-reset/confirm"))
        .json(&json!({"token": reset, "new_password": "another-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status(), 204);
    // A used token, presented again: the error paths must not print it either.
    let again = client
        .get(server.url(&format!("/organizations/invitations/{invitation}")))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 410);

    let output = server.finish();
    for secret in [&invitation, &reset] {
        let hash = hex::encode(Sha256::digest(secret.as_bytes()));
        for needle in [secret.as_str(), hash.as_str()] {
            assert!(
                !output.contains(needle),
                "{needle} is in the server's output:\n{}",
                output
                    .lines()
                    .filter(|l| l.contains(needle))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
    assert!(
        output.contains("/organizations/invitations/{token}"),
        "the request lines name the route template ({} bytes of output)",
        output.len()
    );
}

/// Load shedding is not a failure (issue 18): a storm of sign-ins beyond the hash queue is
/// answered 503 `server_busy` + `Retry-After`, and each such answer is logged as a WARN "request
/// shed" line, never as an ERROR that would page an operator for the server doing its job.
#[tokio::test]
async fn refusals_of_a_full_hash_queue_are_warnings_not_errors() {
    let db = TestDatabase::create().await;
    let smtp = SmtpSink::start().await;
    // One hash thread and one place in its queue, at the standard cost (development): a burst
    // of sign-ins piles up behind it.
    let server = Server::start_with(
        &db,
        smtp.port(),
        "info",
        &[
            ("INVENTIV_ENV", "development"),
            ("INVENTIV__AUTH__HASH_THREADS", "1"),
            ("INVENTIV__AUTH__HASH_QUEUE", "1"),
            ("INVENTIV__LOG__FORMAT", "json"),
        ],
    )
    .await;
    let client = reqwest::Client::new();
    let logins = (0..24).map(|_| {
        client
            .post(server.url("/auth/login"))
            .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
            .send()
    });
    let statuses: Vec<u16> = futures_util::future::join_all(logins)
        .await
        .into_iter()
        .map(|res| res.unwrap().status().as_u16())
        .collect();
    let shed = statuses.iter().filter(|s| **s == 503).count();
    assert!(shed >= 1, "no login was refused: {statuses:?}");
    assert!(
        statuses.iter().all(|s| [200, 503].contains(s)),
        "{statuses:?}"
    );

    let output = server.finish();
    let lines: Vec<Value> = output
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let shed_lines: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "request shed")
        .collect();
    assert_eq!(shed_lines.len(), shed, "one line per refusal:\n{output}");
    for line in &shed_lines {
        assert_eq!(line["level"], "WARN", "{line}");
        assert_eq!(line["status"], 503, "{line}");
    }
    let errors: Vec<&Value> = lines.iter().filter(|l| l["level"] == "ERROR").collect();
    assert!(
        errors.is_empty(),
        "ERROR lines for load shedding: {errors:?}"
    );
}
