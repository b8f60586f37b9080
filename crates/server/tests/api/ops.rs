//! Operations endpoints and the error contract of actix-level failures.

use crate::helpers::{assert_error, json_with_status, spawn_app};

#[tokio::test]
async fn healthz_answers_ok_with_a_request_id() {
    let app = spawn_app().await;
    let res = app.get("/healthz").await;
    assert!(res.headers().contains_key("x-request-id"));
    let body = json_with_status(res, 200).await;
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn a_well_formed_incoming_request_id_is_kept_and_a_bad_one_replaced() {
    let app = spawn_app().await;
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("X-Request-Id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "abc-123");
    let res = app
        .client
        .get(app.url("/nope"))
        .header("X-Request-Id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_ne!(id, "bad id with spaces");
    let body = assert_error(res, 404, "not_found").await;
    assert_eq!(body["request_id"], id.as_str());
}

#[tokio::test]
async fn readyz_reports_database_and_migrations() {
    let app = spawn_app().await;
    let body = json_with_status(app.get("/readyz").await, 200).await;
    assert_eq!(
        body,
        serde_json::json!({"status": "ready", "database": true, "migrations": true})
    );
}

#[tokio::test]
async fn unknown_route_is_a_json_404() {
    let app = spawn_app().await;
    assert_error(app.get("/no/such/route").await, 404, "not_found").await;
}

#[tokio::test]
async fn wrong_method_is_a_json_405_with_allow() {
    let app = spawn_app().await;
    let res = app.client.delete(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.headers()["allow"], "GET");
    assert_error(res, 405, "method_not_allowed").await;
}

#[tokio::test]
async fn openapi_document_is_openapi_3_and_lists_the_operations_routes() {
    let app = spawn_app().await;
    let doc = json_with_status(app.get("/openapi.json").await, 200).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );
    for path in ["/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"] {
        assert!(
            doc["paths"][path]["get"].is_object(),
            "{path} missing from /openapi.json"
        );
    }
}

#[tokio::test]
async fn docs_page_loads_nothing_from_the_internet() {
    let app = spawn_app().await;
    let res = app.get("/docs").await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("/openapi.json"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "external resource in /docs"
    );
}

#[tokio::test]
async fn metrics_count_requests_per_route_pattern() {
    let app = spawn_app().await;
    app.get("/healthz").await;
    app.get("/healthz").await;
    app.get("/no/such/route").await;
    // Routes live in one scope per first segment: a scoped route is named by its whole
    // template, and a path inside a scope that no route takes is a JSON 404 like any other,
    // never named by its raw path (which may carry a secret).
    let id = uuid::Uuid::now_v7();
    assert_eq!(app.get(&format!("/instances/{id}")).await.status(), 401);
    let inside = app.get("/instances/secret-token/no/such/route").await;
    assert_eq!(inside.status(), 404);
    assert_eq!(
        inside.json::<serde_json::Value>().await.unwrap()["error"],
        "not_found"
    );
    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(
        text.contains(r#"route="/instances/{id}",status="401""#),
        "{text}"
    );
    assert!(!text.contains("secret-token"), "{text}");
    assert!(
        text.contains(
            r#"inventiv_http_requests_total{method="GET",route="/healthz",status="200"} 2"#
        ),
        "{text}"
    );
    assert!(text.contains(r#"route="unmatched",status="404""#), "{text}");
    assert!(
        text.contains("inventiv_http_request_duration_seconds_bucket"),
        "{text}"
    );
}

#[test]
fn production_refuses_to_start_without_a_jwt_secret_and_development_keeps_the_generated_one() {
    let err = inventiv_server::Settings::load(
        &crate::helpers::config_dir(),
        inventiv_server::Environment::Production,
    )
    .expect_err("production without INVENTIV__AUTH__JWT_SECRET must not load");
    assert!(format!("{err:#}").contains("jwt_secret"), "{err:#}");

    let mut settings = inventiv_server::Settings::load(
        &crate::helpers::config_dir(),
        inventiv_server::Environment::Development,
    )
    .unwrap();
    let dir = std::env::temp_dir().join(format!("inventiv-secret-{}", uuid::Uuid::new_v4()));
    settings.server.data_dir = dir.clone();
    let first = settings.jwt_secret().unwrap();
    let again = settings.jwt_secret().unwrap();
    assert!(first.expose().len() >= 32);
    assert_eq!(
        first.expose(),
        again.expose(),
        "generated once, then reused"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("jwt_secret"))
            .unwrap()
            .trim(),
        first.expose()
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn the_v1_routes_document_their_errors_in_openais_shape() {
    let app = spawn_app().await;
    let doc = json_with_status(app.get("/openapi.json").await, 200).await;
    assert!(doc["components"]["schemas"]["OpenAiErrorBody"].is_object());
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let openai = path.starts_with("/v1/");
        for (_, operation) in item.as_object().unwrap() {
            for (status, response) in operation["responses"].as_object().unwrap() {
                if !status.starts_with('4') && !status.starts_with('5') {
                    continue;
                }
                let schema = &response["content"]["application/json"]["schema"]["$ref"];
                if openai {
                    assert_eq!(
                        schema, "#/components/schemas/OpenAiErrorBody",
                        "{path} {status}"
                    );
                    checked += 1;
                } else {
                    assert_ne!(
                        schema, "#/components/schemas/OpenAiErrorBody",
                        "{path} {status}"
                    );
                }
            }
        }
    }
    assert!(checked >= 8, "{checked}");
    // What a /v1 route really answers has that shape.
    let res = app.get("/v1/models").await;
    let body = json_with_status(res, 401).await;
    assert_eq!(body["error"]["code"], "unauthorized", "{body}");
}

/// Kills the child process when the test ends, passed or not.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// SPEC §4.6 (v2): the binary carries its `config/*.toml`, so it serves from a directory
/// holding only an override of one key (no `config/default.toml`), in the default
/// (development) environment.
#[tokio::test]
async fn the_binary_runs_from_any_directory_on_its_built_in_configuration() {
    use std::time::{Duration, Instant};
    let database = crate::helpers::TestDatabase::create().await;
    let dir = std::env::temp_dir().join(format!("inventiv-cwd-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(dir.join("config")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        dir.join("config/development.toml"),
        format!("[server]\nport = {port}\n"),
    )
    .unwrap();
    let log = dir.join("server.log");
    let file = std::fs::File::create(&log).unwrap();
    let server = KillOnDrop(
        std::process::Command::new(env!("CARGO_BIN_EXE_inventiv-server"))
            .current_dir(&dir)
            .env_remove("INVENTIV_ENV")
            .env_remove("INVENTIV_CONFIG_DIR")
            .env_remove("INVENTIV__SERVER__PORT")
            .env("INVENTIV__DATABASE__URL", database.url())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("start the server binary"),
    );
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await;
        if ready.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not ready on port {port}: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The relative data directory of the built-in default.toml is the working directory's.
    assert!(dir.join("data/jwt_secret").is_file());
    drop(server);
    std::fs::remove_dir_all(dir).unwrap();
}
