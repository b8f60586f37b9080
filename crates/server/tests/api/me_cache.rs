//! Issue 18: `GET /auth/me` of a session is served from the cache — its rendered bytes — until
//! something it shows changes: the session (switch, revocation), the account (profile,
//! platform flag), the membership (role, removal) or the org (name). Each change shows on the
//! very next request of the replica that made it, and another org's changes evict nothing.

use crate::helpers::{TestApp, assert_error, json_with_status, spawn_app};
use crate::instances::Team;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn caches_on(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !app.db.caches_usable() {
        assert!(Instant::now() < deadline, "caches never usable");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `/auth/me`, asserting it was (or was not) answered from the Me cache.
async fn me(app: &TestApp, token: &str, from_cache: bool) -> Value {
    let before = app.deps.caches.me.hits();
    let body = json_with_status(app.get_as(token, "/auth/me").await, 200).await;
    assert_eq!(
        app.deps.caches.me.hits() > before,
        from_cache,
        "served from the cache: expected {from_cache}: {body}"
    );
    body
}

async fn patch(app: &TestApp, token: &str, path: &str, body: Value) -> Value {
    let res = app
        .as_bearer(Method::PATCH, path, token)
        .json(&body)
        .send()
        .await
        .unwrap();
    json_with_status(res, 200).await
}

#[tokio::test]
async fn me_is_cached_until_what_it_shows_changes() {
    let app = spawn_app().await;
    caches_on(&app).await;
    let team = Team::new(&app, "acme").await;
    let other = Team::new(&app, "other").await;
    me(&app, &team.manager, false).await;
    let cached = me(&app, &team.manager, true).await;
    assert_eq!(cached["current_organization_role"], "manager");

    // Another org's rename and another user's profile evict nothing.
    patch(
        &app,
        &other.owner,
        "/organizations/current",
        json!({"name": "Other 2"}),
    )
    .await;
    json_with_status(
        app.put_as(&team.user, "/auth/me", json!({"first_name": "Uma"}))
            .await,
        200,
    )
    .await;
    me(&app, &team.manager, true).await;

    // The org's name.
    patch(
        &app,
        &team.owner,
        "/organizations/current",
        json!({"name": "Acme renamed"}),
    )
    .await;
    let body = me(&app, &team.manager, false).await;
    assert_eq!(body["current_organization_name"], "Acme renamed");
    me(&app, &team.manager, true).await;

    // The member's role: new role, new permissions.
    let manager_id = team.user_ids[2];
    json_with_status(
        app.put_as(
            &team.owner,
            &format!("/organizations/current/members/{manager_id}"),
            json!({"role": "admin"}),
        )
        .await,
        200,
    )
    .await;
    let body = me(&app, &team.manager, false).await;
    assert_eq!(body["current_organization_role"], "admin");
    assert_ne!(body["permissions"], cached["permissions"]);

    // The account's own profile.
    json_with_status(
        app.put_as(&team.manager, "/auth/me", json!({"first_name": "Mia"}))
            .await,
        200,
    )
    .await;
    assert_eq!(me(&app, &team.manager, false).await["first_name"], "Mia");

    // The session's workspace.
    let personal = app.switch(&team.manager, None).await;
    let body = me(&app, &personal, false).await;
    assert_eq!(body["current_organization_id"], Value::Null);
    assert_eq!(body["current_organization_role"], Value::Null);
    me(&app, &personal, true).await;

    // Removal from the org: the session falls back to Personal — and a removed member's
    // cached org answer is never served.
    let back = app.switch(&personal, Some(team.org)).await;
    me(&app, &back, false).await;
    me(&app, &back, true).await;
    let removed = app
        .delete_as(
            &team.owner,
            &format!("/organizations/current/members/{manager_id}"),
        )
        .await;
    assert_eq!(removed.status(), 204);
    let body = json_with_status(app.get_as(&back, "/auth/me").await, 200).await;
    assert_eq!(body["current_organization_id"], Value::Null, "{body}");

    // Logout: the next request is refused, not answered from the cache.
    assert_eq!(
        app.post_as(&back, "/auth/logout", json!({})).await.status(),
        204
    );
    assert_error(app.get_as(&back, "/auth/me").await, 401, "unauthorized").await;
}

/// A replica's own notification (PostgreSQL) comes back to its listener after its commit had
/// already invalidated what the write changed: it is skipped, so the entry cached again just
/// after the write stays (before, the echo evicted it once more).
#[tokio::test]
async fn a_replica_does_not_evict_again_on_the_echo_of_its_own_write() {
    let app = spawn_app().await;
    caches_on(&app).await;
    let team = Team::new(&app, "echo").await;
    me(&app, &team.user, false).await;
    me(&app, &team.user, true).await;
    json_with_status(
        app.put_as(&team.user, "/auth/me", json!({"first_name": "Echo"}))
            .await,
        200,
    )
    .await;
    assert_eq!(me(&app, &team.user, false).await["first_name"], "Echo");
    // Far longer than a notification takes on loopback (milliseconds).
    tokio::time::sleep(Duration::from_millis(300)).await;
    me(&app, &team.user, true).await;
}

/// A role changed while the member's own `/auth/me` requests are in flight: each answer may
/// show the role before or after, but once the change is answered, the next `/auth/me` shows
/// the new role. A request that read its session before the change and put its answer in
/// the cache after it must not pin the old role there.
#[tokio::test]
async fn a_role_changed_under_concurrent_reads_is_shown_on_the_next_one() {
    let app = spawn_app().await;
    caches_on(&app).await;
    let team = Team::new(&app, "acme").await;
    let member = team.user_ids[3];
    let stop = std::sync::atomic::AtomicBool::new(false);
    let reader = async {
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            json_with_status(app.get_as(&team.user, "/auth/me").await, 200).await;
        }
    };
    let changer = async {
        for (round, role) in ["admin", "user"].iter().cycle().take(120).enumerate() {
            json_with_status(
                app.put_as(
                    &team.owner,
                    &format!("/organizations/current/members/{member}"),
                    json!({"role": role}),
                )
                .await,
                200,
            )
            .await;
            // Let the reader's requests that straddled the change finish.
            tokio::time::sleep(Duration::from_millis(3)).await;
            let shown = json_with_status(app.get_as(&team.user, "/auth/me").await, 200).await;
            assert_eq!(
                shown["current_organization_role"], *role,
                "round {round}: the role set before this request"
            );
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    };
    tokio::join!(reader, changer);
}
