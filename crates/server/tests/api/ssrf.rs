//! No server-side request forgery (issue 15, part 5; SPEC §6 v2 "External endpoints"): an
//! external endpoint must be in the allowed networks at registration and at every connection,
//! a refused endpoint learns nothing of what answers there, and one endpoint has one owner.

use crate::helpers::{TestApp, assert_error, json_with_status, spawn_app_with};
use crate::instances::{PW, Team, deploy, public_model, wait_for_status};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MODEL: &str = "meta/llama-3";

/// An OpenAI-compatible server on 127.0.0.1 that counts the connections it accepts: a
/// refused endpoint must not even be connected to. Every request gets a 200 chat answer with
/// a usage (`GET /v1/models` only needs the status), then the connection is closed.
struct Counting {
    port: u16,
    connections: Arc<AtomicUsize>,
}

impl Counting {
    async fn start() -> Counting {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    // The head, then as much body as its Content-Length says.
                    loop {
                        let Ok(n) = stream.read(&mut buf).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        request.extend_from_slice(&buf[..n]);
                        let text = String::from_utf8_lossy(&request).to_string();
                        if let Some(end) = text.find("\r\n\r\n") {
                            let length = text[..end]
                                .lines()
                                .find_map(|l| {
                                    let (name, value) = l.split_once(':')?;
                                    name.eq_ignore_ascii_case("content-length")
                                        .then(|| value.trim().parse::<usize>().ok())?
                                })
                                .unwrap_or(0);
                            if request.len() >= end + 4 + length {
                                break;
                            }
                        }
                    }
                    let body = r#"{"object":"chat.completion","data":[],"choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#;
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(reply.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Counting { port, connections }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// An app whose allowed networks are `networks` (the test settings allow loopback), with
/// health checks far apart so that only what a test does calls the endpoints.
async fn app_allowing(networks: &[&str]) -> TestApp {
    let networks: Vec<String> = networks.iter().map(|n| (*n).to_owned()).collect();
    spawn_app_with(
        move |s| {
            s.providers.external.allowed_networks = networks;
            s.providers.external.health_interval_secs = 3600;
        },
        Arc::new(inventiv_service::SystemClock),
    )
    .await
}

async fn personal(app: &TestApp, email: &str) -> String {
    app.create_user(email, PW).await;
    app.login(email, PW).await.token
}

fn external(model: &str, url: &str) -> Value {
    json!({"model_id": model, "provider": "external", "endpoint_url": url})
}

async fn chat(app: &TestApp, token: &str) -> reqwest::Response {
    app.post_as(
        token,
        "/v1/chat/completions",
        json!({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await
}

#[tokio::test]
async fn registration_refuses_every_form_of_a_non_public_address() {
    let app = app_allowing(&[]).await;
    let model = public_model(&app, MODEL).await;
    let team = Team::new(&app, "acme").await;
    let pat = personal(&app, "pat@example.com").await;
    // Something really listens there: the refusal must not depend on it, nor reveal it.
    let up = Counting::start().await;
    let port = up.port;
    let urls = [
        format!("http://127.0.0.1:{port}"),
        format!("http://2130706433:{port}"),
        format!("http://127.1:{port}"),
        format!("http://0x7f.1:{port}"),
        format!("http://[::1]:{port}"),
        format!("http://[::ffff:127.0.0.1]:{port}"),
        format!("http://[::ffff:7f00:1]:{port}/v1"),
        format!("http://[64:ff9b::7f00:1]:{port}"),
        format!("http://[2002:7f00:1::1]:{port}"),
        format!("http://localhost:{port}"),
        format!("http://LOCALHOST.:{port}"),
        "http://169.254.169.254".to_owned(),
        "http://169.254.169.254/latest/meta-data".to_owned(),
        "http://[fd00:ec2::254]".to_owned(),
        "http://10.0.0.1".to_owned(),
        "http://172.16.5.4:8000".to_owned(),
        "http://192.168.1.1".to_owned(),
        "http://100.64.0.1".to_owned(),
        "http://0.0.0.0:8000".to_owned(),
        "http://[::]:8000".to_owned(),
        "http://[fe80::1]".to_owned(),
        "http://224.0.0.1".to_owned(),
        "http://255.255.255.255".to_owned(),
        "http://198.18.0.1".to_owned(),
    ];
    for url in &urls {
        for token in [&team.admin, &pat] {
            let err = assert_error(
                app.post_as(token, "/deployments", external(&model, url))
                    .await,
                400,
                "endpoint_not_allowed",
            )
            .await;
            let message = err["message"].as_str().unwrap();
            assert!(
                !message.contains("127.") && !message.contains(&port.to_string()),
                "{url}: {message}"
            );
        }
    }
    // Nothing was created, and nothing was connected to.
    for token in [&team.admin, &pat] {
        let list = json_with_status(app.get_as(token, "/instances").await, 200).await;
        assert_eq!(list["items"], json!([]), "{list}");
    }
    assert_eq!(up.connections(), 0);
    // Still only http://, as before.
    let err = assert_error(
        app.post_as(&pat, "/deployments", external(&model, "https://8.8.8.8"))
            .await,
        400,
        "validation_failed",
    )
    .await;
    assert!(err["fields"]["endpoint_url"].is_string(), "{err}");
}

#[tokio::test]
async fn listed_networks_are_added_to_the_public_default_and_nothing_else() {
    let app = app_allowing(&["127.0.0.1/32"]).await;
    let model = public_model(&app, MODEL).await;
    let pat = personal(&app, "pat@example.com").await;
    let up = Counting::start().await;
    let ok = deploy(
        &app,
        &pat,
        external(&model, &format!("http://127.0.0.1:{}", up.port)),
    )
    .await;
    wait_for_status(&app, &pat, ok["id"].as_str().unwrap(), "ready").await;
    json_with_status(chat(&app, &pat).await, 200).await;
    // 127.0.0.2 is loopback too, but not listed; ::1 neither.
    for url in [
        format!("http://127.0.0.2:{}", up.port),
        format!("http://[::1]:{}", up.port),
    ] {
        assert_error(
            app.post_as(&pat, "/deployments", external(&model, &url))
                .await,
            400,
            "endpoint_not_allowed",
        )
        .await;
    }
}

#[tokio::test]
async fn the_proxy_and_the_checks_never_connect_to_an_endpoint_no_longer_allowed() {
    // Registered while loopback was allowed (by address and by a name that resolves to it)…
    let app = app_allowing(&["127.0.0.0/8", "::1"]).await;
    let model = public_model(&app, MODEL).await;
    let up = Counting::start().await;
    let mut users = Vec::new();
    for (email, url) in [
        ("lit@example.com", format!("http://127.0.0.1:{}", up.port)),
        ("name@example.com", format!("http://localhost:{}", up.port)),
    ] {
        let token = personal(&app, email).await;
        let instance = deploy(&app, &token, external(&model, &url)).await;
        let id = instance["id"].as_str().unwrap().to_owned();
        wait_for_status(&app, &token, &id, "ready").await;
        // Control: this replica reaches it.
        json_with_status(chat(&app, &token).await, 200).await;
        users.push((token, id));
    }
    // …then served by a replica whose allowed networks are the public default. Its first
    // health check (at start) takes them out of routing, saying no more than that.
    let before = up.connections();
    let strict = app
        .spawn_replica(|s| {
            s.providers.external.allowed_networks = Vec::new();
            s.cache.enabled = false;
        })
        .await;
    for (token, id) in &users {
        let booting = wait_for_status(&strict, token, id, "booting").await;
        assert_eq!(
            booting["failure_reason"], "health check failed",
            "{booting}"
        );
    }
    assert_eq!(up.connections(), before, "a health check connected");
    // Back in routing behind its back (as after a restart of an allowing replica): the
    // proxy's own connection check refuses them.
    strict
        .db
        .execute_unprepared(
            "UPDATE instances SET status = 'ready', failure_reason = NULL WHERE status = 'booting'",
        )
        .await
        .unwrap();
    for (token, _) in &users {
        let err = assert_error(chat(&strict, token).await, 502, "upstream_unreachable").await;
        assert!(
            !err["error"]["message"]
                .as_str()
                .unwrap()
                .contains("127.0.0.1"),
            "{err}"
        );
    }
    assert_eq!(
        up.connections(),
        before,
        "the proxy connected to a refused address"
    );

    // Bring-up checks (reinstall) are refused the same way, and say no more than that.
    for (token, id) in &users {
        json_with_status(
            strict
                .post_as(token, &format!("/instances/{id}/reinstall"), json!({}))
                .await,
            202,
        )
        .await;
        let failed = wait_for_status(&strict, token, id, "failed").await;
        assert_eq!(
            failed["failure_reason"],
            "endpoint not allowed (outside the networks this server may call)",
            "{failed}"
        );
    }
    assert_eq!(up.connections(), before, "a readiness check connected");
}

#[tokio::test]
async fn an_endpoint_belongs_to_one_owner() {
    let app = app_allowing(&["127.0.0.0/8", "::1"]).await;
    let model = public_model(&app, MODEL).await;
    let a = Team::new(&app, "tenant-a").await;
    let b = Team::new(&app, "tenant-b").await;
    let pat = personal(&app, "pat@example.com").await;
    let up = Counting::start().await;
    let url = format!("http://127.0.0.1:{}", up.port);
    let first = deploy(&app, &a.admin, external(&model, &url)).await;
    // The same owner may register it again (another instance on the same server).
    let second = deploy(&app, &a.owner, external(&model, &format!("{url}/"))).await;
    // Another org, or a user for themselves: the same host:port, whatever the path.
    for (token, variant) in [
        (&b.admin, url.clone()),
        (&b.owner, format!("{url}/vllm")),
        (&pat, url.clone()),
    ] {
        let err = assert_error(
            app.post_as(token, "/deployments", external(&model, &variant))
                .await,
            409,
            "endpoint_taken",
        )
        .await;
        assert!(
            !err["message"].as_str().unwrap().contains("tenant-a"),
            "{err}"
        );
    }
    // Names are compared lowercase, with the default port.
    let named = Counting::start().await;
    deploy(
        &app,
        &pat,
        external(&model, &format!("http://localhost:{}", named.port)),
    )
    .await;
    assert_error(
        app.post_as(
            &b.admin,
            "/deployments",
            external(&model, &format!("http://LocalHost:{}/x", named.port)),
        )
        .await,
        409,
        "endpoint_taken",
    )
    .await;
    // The operator's mock endpoint is claimed by nobody: every org deploys on it.
    for token in [&a.admin, &b.admin, &pat] {
        deploy(&app, token, json!({"model_id": model})).await;
    }
    // Once all of A's instances there are terminated, the claim is free: B takes it over.
    for instance in [&first, &second] {
        let id = instance["id"].as_str().unwrap();
        wait_for_status(&app, &a.admin, id, "ready").await;
        json_with_status(
            app.post_as(&a.admin, &format!("/instances/{id}/terminate"), json!({}))
                .await,
            202,
        )
        .await;
        // Not yet: one of A's instances still stands until both are terminated.
        if instance == &first {
            assert_error(
                app.post_as(&b.admin, "/deployments", external(&model, &url))
                    .await,
                409,
                "endpoint_taken",
            )
            .await;
        }
        wait_for_status(&app, &a.admin, id, "terminated").await;
    }
    deploy(&app, &b.admin, external(&model, &url)).await;
    assert_error(
        app.post_as(&a.admin, "/deployments", external(&model, &url))
            .await,
        409,
        "endpoint_taken",
    )
    .await;
    app.assert_audit_verifies().await;
}

#[tokio::test]
async fn two_owners_registering_one_endpoint_at_once_get_one_claim() {
    let app = app_allowing(&["127.0.0.0/8", "::1"]).await;
    let model = public_model(&app, MODEL).await;
    let a = Team::new(&app, "tenant-a").await;
    let b = Team::new(&app, "tenant-b").await;
    for round in 0..4 {
        let up = Counting::start().await;
        let url = format!("http://127.0.0.1:{}", up.port);
        let (ra, rb) = tokio::join!(
            app.post_as(&a.admin, "/deployments", external(&model, &url)),
            app.post_as(&b.admin, "/deployments", external(&model, &url)),
        );
        let mut statuses = [ra.status().as_u16(), rb.status().as_u16()];
        statuses.sort_unstable();
        assert_eq!(statuses, [201, 409], "round {round}");
    }
}

#[test]
fn the_allowed_networks_of_each_environment() {
    use inventiv_server::{Environment, Settings};
    let dir = crate::helpers::config_dir();
    let of = |env| {
        Settings::load(&dir, env)
            .unwrap()
            .providers
            .external
            .allowed_networks
    };
    // `make run` may use a local model server; production keeps the default, public unicast
    // only (loading production settings needs a real JWT secret, so its file is read).
    assert_eq!(of(Environment::Development), ["127.0.0.0/8", "::1"]);
    assert_eq!(of(Environment::Test), ["127.0.0.0/8", "::1"]);
    let read = |file: &str| std::fs::read_to_string(dir.join(file)).unwrap();
    assert!(read("default.toml").contains("\nallowed_networks = []\n"));
    assert!(!read("production.toml").contains("allowed_networks"));
}
