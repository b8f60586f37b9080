//! Bounded memory under hostile bodies (issue 16 item 8): over-long logins are refused before
//! anything keeps them, and all bodies in flight share one budget of bytes (503 `server_busy`
//! with `Retry-After` when it is spent, never an unbounded pile of buffers).

use crate::helpers::{assert_error, json_with_status, spawn_app, spawn_app_with};
use inventiv_service::SystemClock;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn a_1_mb_email_or_username_is_a_400_at_login_and_at_reset() {
    let app = spawn_app().await;
    let email = format!("{}@example.com", "a".repeat(1_000_000));
    let res = app
        .post_json(
            "/auth/login",
            json!({"email": email, "password": "whatever-password"}),
        )
        .await;
    let err = assert_error(res, 400, "validation_failed").await;
    assert!(err["fields"]["email"].is_string(), "{err}");
    let res = app
        .post_json(
            "/auth/login",
            json!({"username": "u".repeat(100_000), "password": "whatever-password"}),
        )
        .await;
    let err = assert_error(res, 400, "validation_failed").await;
    assert!(err["fields"]["username"].is_string(), "{err}");
    let res = app
        .post_json("/auth/password-reset/request", json!({"email": email}))
        .await;
    let err = assert_error(res, 400, "validation_failed").await;
    assert!(err["fields"]["email"].is_string(), "{err}");
    // A long but possible email is still an ordinary failed sign-in.
    let res = app
        .post_json(
            "/auth/login",
            json!({"email": format!("{}@example.com", "b".repeat(60)), "password": "whatever-password"}),
        )
        .await;
    assert_error(res, 401, "invalid_credentials").await;
}

/// Opens a request that declares `length` bytes of body and sends only part of it, so the
/// server holds its reservation until the connection is closed.
async fn hold_a_body(address: &str, path: &str, length: usize) -> tokio::net::TcpStream {
    let host = address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n\r\n{{\"email\":\""
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.flush().await.unwrap();
    stream
}

#[tokio::test]
async fn bodies_in_flight_share_one_budget_and_a_request_over_it_is_a_503_with_retry_after() {
    let app = spawn_app_with(
        |s| s.server.max_inflight_body_bytes = 1024 * 1024,
        Arc::new(SystemClock),
    )
    .await;
    // Two bodies of 400 KiB in flight take 800 KiB of the 1 MiB budget…
    let first = hold_a_body(&app.address, "/auth/login", 400 * 1024).await;
    let second = hold_a_body(&app.address, "/auth/password-reset/request", 400 * 1024).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // …so a third of 400 KiB is refused at once, before its body is read.
    let big = json!({"email": "x".repeat(400 * 1024), "password": "p"}).to_string();
    let res = app
        .client
        .post(app.url("/auth/login"))
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["retry-after"], "1");
    assert_error(res, 503, "server_busy").await;
    // A request without a body is not concerned.
    json_with_status(app.get("/healthz").await, 200).await;
    // A small body still fits in what is left.
    let res = app
        .post_json(
            "/auth/login",
            json!({"email": "nobody@example.com", "password": "whatever-password"}),
        )
        .await;
    assert_error(res, 401, "invalid_credentials").await;

    // The held requests end (the clients go away): their reservations come back.
    drop(first);
    let mut second = second;
    second.shutdown().await.ok();
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), second.read_to_end(&mut rest)).await;
    drop(second);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let res = app
            .client
            .post(app.url("/auth/login"))
            .header("content-type", "application/json")
            .body(big.clone())
            .send()
            .await
            .unwrap();
        if res.status() != 503 {
            assert_error(res, 400, "validation_failed").await;
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the budget never came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
