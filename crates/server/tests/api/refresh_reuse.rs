//! Refresh reuse (issue 16 item 6, SPEC §6 v2): a superseded token generation presented to
//! `/auth/refresh` revokes the session — a stolen and a legitimate copy cannot both live —
//! except within `auth.refresh_reuse_grace_seconds` of the rotation (two tabs refreshing at
//! once), when it gets the current token without rotating again.

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, assert_error, json_with_status};
use base64::Engine;
use inventiv_domain::SessionId;
use inventiv_service::ManualClock;
use serde_json::{Value, json};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

fn session_of(token: &str) -> SessionId {
    claims_of(token)["sid"].as_str().unwrap().parse().unwrap()
}

async fn app_with_grace(grace: u64) -> (TestApp, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let app = crate::helpers::spawn_app_with(
        |s| s.auth.refresh_reuse_grace_seconds = grace,
        clock.clone(),
    )
    .await;
    (app, clock)
}

async fn refresh(app: &TestApp, token: &str) -> reqwest::Response {
    app.post_as(token, "/auth/refresh", json!({})).await
}

async fn refreshed(app: &TestApp, token: &str) -> String {
    json_with_status(refresh(app, token).await, 200).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn reuse_events(
    app: &TestApp,
    sid: SessionId,
) -> Vec<inventiv_persistence::repo::audit::AuditRecord> {
    crate::helpers::platform_events(app, "session.reuse_detected")
        .await
        .into_iter()
        .filter(|e| e.target_id.as_deref() == Some(sid.to_string().as_str()))
        .collect()
}

async fn revoked_reason(app: &TestApp, sid: SessionId) -> Option<String> {
    inventiv_persistence::repo::sessions::find(&app.db, sid)
        .await
        .unwrap()
        .unwrap()
        .revoked_reason
}

#[tokio::test]
async fn a_superseded_token_presented_after_the_grace_revokes_the_session() {
    let (app, clock) = app_with_grace(10).await;
    let stolen = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.token;
    let sid = session_of(&stolen);
    // The thief refreshes first and keeps the new token …
    let thief = refreshed(&app, &stolen).await;
    app.me(&thief).await;
    // … the legitimate copy comes back after the grace: the session dies for both.
    clock.advance(Duration::seconds(11));
    assert_error(refresh(&app, &stolen).await, 401, "refresh_reuse_detected").await;
    assert_error(app.get_as(&thief, "/auth/me").await, 401, "unauthorized").await;
    assert_error(refresh(&app, &thief).await, 401, "unauthorized").await;
    assert_error(refresh(&app, &stolen).await, 401, "unauthorized").await;
    assert_eq!(
        revoked_reason(&app, sid).await.as_deref(),
        Some("reuse_detected")
    );
    assert_eq!(reuse_events(&app, sid).await.len(), 1, "one audit event");
    app.assert_audit_verifies().await;
    // Signing in again works: only that session was revoked.
    app.me(&app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.token)
        .await;
}

#[tokio::test]
async fn two_tabs_refreshing_at_once_both_get_the_current_token_and_the_session_lives() {
    let (app, clock) = app_with_grace(10).await;
    let token = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.token;
    let sid = session_of(&token);
    let (a, b) = tokio::join!(refresh(&app, &token), refresh(&app, &token));
    let a = json_with_status(a, 200).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = json_with_status(b, 200).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // One rotation, not two: both tabs hold the current generation and both work.
    assert_eq!(claims_of(&a)["gen"], 1);
    assert_eq!(claims_of(&b)["gen"], 1);
    app.me(&a).await;
    app.me(&b).await;
    // A third tab still within the grace: the current token again, no new rotation.
    clock.advance(Duration::seconds(9));
    let c = refreshed(&app, &token).await;
    assert_eq!(claims_of(&c)["gen"], 1);
    app.me(&a).await;
    // The newest token refreshes normally and the session lives on.
    let next = refreshed(&app, &c).await;
    assert_eq!(claims_of(&next)["gen"], 2);
    app.me(&next).await;
    assert!(revoked_reason(&app, sid).await.is_none());
    assert!(reuse_events(&app, sid).await.is_empty());
}

#[tokio::test]
async fn the_grace_covers_only_the_generation_just_superseded_and_only_for_its_length() {
    let (app, clock) = app_with_grace(10).await;
    // Two generations behind, even at once: a reuse.
    let old = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.token;
    let sid = session_of(&old);
    let mid = refreshed(&app, &old).await;
    let new = refreshed(&app, &mid).await;
    assert_error(refresh(&app, &old).await, 401, "refresh_reuse_detected").await;
    assert_error(app.get_as(&new, "/auth/me").await, 401, "unauthorized").await;
    assert_eq!(reuse_events(&app, sid).await.len(), 1);

    // One generation behind, exactly at the end of the grace: still the current token; one
    // second later: a reuse. A workspace switch rotates like a refresh.
    let old = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.token;
    let sid = session_of(&old);
    let switched = app.switch(&old, None).await;
    clock.advance(Duration::seconds(10));
    let current = refreshed(&app, &old).await;
    assert_eq!(claims_of(&current)["gen"], claims_of(&switched)["gen"]);
    clock.advance(Duration::seconds(1));
    assert_error(refresh(&app, &old).await, 401, "refresh_reuse_detected").await;
    assert_error(app.get_as(&switched, "/auth/me").await, 401, "unauthorized").await;
    assert_eq!(
        revoked_reason(&app, sid).await.as_deref(),
        Some("reuse_detected")
    );

    // The grace is the configured one: with 0, a superseded refresh a second later revokes.
    let (app, clock) = app_with_grace(0).await;
    let old = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.token;
    let new = refreshed(&app, &old).await;
    clock.advance(Duration::seconds(1));
    assert_error(refresh(&app, &old).await, 401, "refresh_reuse_detected").await;
    assert_error(app.get_as(&new, "/auth/me").await, 401, "unauthorized").await;
}

/// A replayed token revoking the session while its holder keeps rotating it: the audit event
/// records the generation the session was revoked at, not one read before a rotation that
/// committed meanwhile (the session's generation cannot move once it is revoked).
#[tokio::test]
async fn a_reuse_racing_rotations_audits_the_generation_it_revoked() {
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let app =
        crate::helpers::spawn_app_with(|s| s.rate_limit.login_per_minute = u32::MAX, clock.clone())
            .await;
    for round in 0..24u64 {
        let stolen = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.token;
        let sid = session_of(&stolen);
        // Two generations on, the stolen copy is outside any grace.
        let mut held = refreshed(&app, &refreshed(&app, &stolen).await).await;
        let holder = async {
            // Rotates until the session dies under it.
            loop {
                let response = refresh(&app, &held).await;
                if response.status() != 200 {
                    break;
                }
                held = json_with_status(response, 200).await["access_token"]
                    .as_str()
                    .unwrap()
                    .to_owned();
            }
        };
        let thief = async {
            // A different moment in the holder's rotations each round.
            tokio::time::sleep(std::time::Duration::from_micros(300 * (round % 8))).await;
            assert_error(refresh(&app, &stolen).await, 401, "refresh_reuse_detected").await;
        };
        tokio::join!(holder, thief);
        let final_generation = inventiv_persistence::repo::sessions::find(&app.db, sid)
            .await
            .unwrap()
            .unwrap()
            .token_generation;
        let events = reuse_events(&app, sid).await;
        assert_eq!(events.len(), 1, "round {round}");
        let before = events[0].before.as_ref().unwrap();
        assert_eq!(
            before["token_generation"],
            json!(final_generation),
            "round {round}: the audited generation is the one the session was revoked at"
        );
    }
    app.assert_audit_verifies().await;
}
