//! Logins beyond the password hash threads (issue 18 item 2). At most `hash_threads` hashes run
//! at once and `hash_queue` wait; a login beyond is refused at once with 503 `server_busy` and
//! `Retry-After`, never a 500, while the others sign in. With a queue as long as the burst,
//! every login of the burst signs in.
//!
//! These apps hash at the standard cost (19 MiB, t = 2: the development environment's), so a
//! hash lasts long enough for a burst to pile up behind one thread.

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, assert_error, spawn_app_with};
use inventiv_server::Environment;
use inventiv_service::SystemClock;
use serde_json::json;
use std::sync::Arc;

async fn app_with_hash_pool(threads: usize, queue: usize) -> TestApp {
    spawn_app_with(
        |s| {
            s.environment = Environment::Development;
            s.auth.hash_threads = threads;
            s.auth.hash_queue = queue;
        },
        Arc::new(SystemClock),
    )
    .await
}

/// `n` sign-ins of the admin sent at once, each on its own connection.
async fn burst(app: &TestApp, n: usize) -> Vec<reqwest::Response> {
    let logins = (0..n).map(|_| {
        app.client
            .post(app.url("/auth/login"))
            .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
            .send()
    });
    futures_util::future::join_all(logins)
        .await
        .into_iter()
        .map(|res| res.expect("request sent"))
        .collect()
}

#[tokio::test]
async fn logins_beyond_the_hash_queue_are_refused_at_once_with_retry_after() {
    // One thread and one waiting place: 64 logins arrive much faster than one thread hashes
    // (~30 ms each), so many find both taken.
    let app = app_with_hash_pool(1, 1).await;
    let (mut signed_in, mut busy) = (0, 0);
    for res in burst(&app, 64).await {
        match res.status().as_u16() {
            200 => signed_in += 1,
            503 => {
                assert_eq!(
                    res.headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok()),
                    Some("1")
                );
                assert_error(res, 503, "server_busy").await;
                busy += 1;
            }
            other => panic!("{other}: {}", res.text().await.unwrap_or_default()),
        }
    }
    assert!(signed_in >= 1, "{signed_in} signed in, {busy} busy");
    assert!(busy >= 1, "{signed_in} signed in, {busy} busy");
    // The refusals took nothing away: the next login signs in.
    app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
}

#[tokio::test]
async fn a_queue_as_long_as_the_burst_signs_every_login_in() {
    let app = app_with_hash_pool(1, 24).await;
    let statuses: Vec<u16> = burst(&app, 24)
        .await
        .iter()
        .map(|res| res.status().as_u16())
        .collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
}
