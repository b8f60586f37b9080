//! Authentication and the multi-session architecture (issue 3; SPEC §4.1, §4.2 switch, §6).

use crate::helpers::{
    ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, assert_error, json_with_status, spawn_app, spawn_app_with,
};
use base64::Engine;
use inventiv_domain::{Role, UserId};
use inventiv_service::ManualClock;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

const PW: &str = "a-good-password";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

async fn manual_app(
    customize: impl FnOnce(&mut inventiv_server::Settings),
) -> (TestApp, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let app = spawn_app_with(customize, clock.clone()).await;
    (app, clock)
}

#[tokio::test]
async fn login_returns_a_session_token_in_body_and_cookie() {
    let app = spawn_app().await;
    let s = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert!(
        s.cookie
            .starts_with(&format!("inventiv_session={}", s.token)),
        "{}",
        s.cookie
    );
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age="] {
        assert!(
            s.cookie.contains(attribute),
            "cookie lacks {attribute}: {}",
            s.cookie
        );
    }
    assert!(
        !s.cookie.contains("Secure"),
        "development/test cookies are not Secure"
    );
    assert_eq!(s.body["user"]["email"], ADMIN_EMAIL);
    assert!(s.body["user"].get("password_hash").is_none());
    assert_eq!(s.body["session"]["is_current"], true);
    let claims = claims_of(&s.token);
    for claim in [
        "sub", "sid", "gen", "org", "org_role", "iat", "exp", "iss", "aud",
    ] {
        assert!(
            claims.get(claim).is_some(),
            "claim {claim} missing: {claims}"
        );
    }
    assert_eq!(claims["sid"], s.body["session"]["id"]);
    // The admin's first session starts in Personal: no previous session to resume.
    assert_eq!(claims["org"], Value::Null);
    // The cookie alone authenticates a read.
    let res = app
        .client
        .get(app.url("/auth/me"))
        .header("Cookie", format!("inventiv_session={}", s.token))
        .send()
        .await
        .unwrap();
    assert_eq!(json_with_status(res, 200).await["email"], ADMIN_EMAIL);
}

#[tokio::test]
async fn unknown_account_and_wrong_password_get_the_same_answer() {
    let app = spawn_app().await;
    let strip = |mut v: Value| {
        v.as_object_mut().unwrap().remove("request_id");
        v
    };
    let wrong = app
        .post_json(
            "/auth/login",
            json!({"email": ADMIN_EMAIL, "password": "wrong-password"}),
        )
        .await;
    let wrong = strip(assert_error(wrong, 401, "invalid_credentials").await);
    let unknown = app
        .post_json(
            "/auth/login",
            json!({"email": "nobody@example.com", "password": "wrong-password"}),
        )
        .await;
    let unknown = strip(assert_error(unknown, 401, "invalid_credentials").await);
    assert_eq!(wrong, unknown);
    let short = app
        .post_json(
            "/auth/login",
            json!({"email": ADMIN_EMAIL, "password": "short"}),
        )
        .await;
    assert_eq!(
        strip(assert_error(short, 401, "invalid_credentials").await),
        wrong
    );
}

#[tokio::test]
async fn login_by_username_and_refusal_of_disabled_accounts() {
    let app = spawn_app().await;
    let s = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    json_with_status(
        app.put_as(&s.token, "/auth/me", json!({"username": "Root.Admin"}))
            .await,
        200,
    )
    .await;
    let res = app
        .post_json(
            "/auth/login",
            json!({"username": "root.admin", "password": ADMIN_PASSWORD}),
        )
        .await;
    json_with_status(res, 200).await;
    let both = app
        .post_json(
            "/auth/login",
            json!({"email": ADMIN_EMAIL, "username": "x", "password": PW}),
        )
        .await;
    assert_error(both, 400, "validation_failed").await;

    app.create_user("off@example.com", PW).await;
    app.db
        .execute_unprepared(
            "UPDATE users SET disabled_at = created_at WHERE email = 'off@example.com'",
        )
        .await
        .unwrap();
    let res = app
        .post_json(
            "/auth/login",
            json!({"email": "off@example.com", "password": PW}),
        )
        .await;
    assert_error(res, 403, "account_disabled").await;
}

#[tokio::test]
async fn one_user_two_sessions_two_workspaces_at_once() {
    let app = spawn_app().await;
    let alice = app.create_user("alice@example.com", PW).await;
    let org_a = app.create_org("org-a", &[(alice, Role::Owner)]).await;
    let org_b = app.create_org("org-b", &[(alice, Role::User)]).await;
    let browser = app.login("alice@example.com", PW).await;
    let cli = app.login("alice@example.com", PW).await;
    let browser_token = app.switch(&browser.token, Some(org_a)).await;
    let cli_token = app.switch(&cli.token, Some(org_b)).await;

    let me_browser = app.me(&browser_token).await;
    let me_cli = app.me(&cli_token).await;
    assert_eq!(me_browser["current_organization_id"], org_a.to_string());
    assert_eq!(me_browser["current_organization_slug"], "org-a");
    assert_eq!(me_browser["current_organization_role"], "owner");
    assert_eq!(me_cli["current_organization_id"], org_b.to_string());
    assert_eq!(me_cli["current_organization_name"], "Org org-b");
    assert_eq!(me_cli["current_organization_role"], "user");
    // The delegation rule as the server applies it, for the console's menus.
    assert_eq!(
        me_browser["assignable_roles"],
        serde_json::json!(["owner", "admin", "manager", "user"])
    );
    assert_eq!(me_cli["assignable_roles"], serde_json::json!([]));
    assert_ne!(me_browser["session_id"], me_cli["session_id"]);
    assert!(
        me_browser["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "org.delete")
    );
    assert!(
        !me_cli["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "org.delete")
    );

    // The switch superseded each session's previous token, and only that one.
    assert_error(
        app.get_as(&browser.token, "/auth/me").await,
        401,
        "unauthorized",
    )
    .await;
    // Back to Personal in one session leaves the other where it is.
    let personal = app.switch(&browser_token, None).await;
    assert_eq!(
        app.me(&personal).await["current_organization_id"],
        Value::Null
    );
    assert_eq!(
        app.me(&cli_token).await["current_organization_id"],
        org_b.to_string()
    );
    app.assert_audit_verifies().await;
}

#[tokio::test]
async fn switching_to_an_org_you_are_not_in_is_403_not_a_member() {
    let app = spawn_app().await;
    let alice = app.create_user("alice@example.com", PW).await;
    let bob = app.create_user("bob@example.com", PW).await;
    app.create_org("mine", &[(alice, Role::Owner)]).await;
    let theirs = app.create_org("theirs", &[(bob, Role::Owner)]).await;
    let s = app.login("alice@example.com", PW).await;
    let res = app
        .put_as(
            &s.token,
            "/organizations/current",
            json!({"organization_id": theirs.to_string()}),
        )
        .await;
    assert_error(res, 403, "not_a_member").await;
    let res = app
        .put_as(
            &s.token,
            "/organizations/current",
            json!({"organization_id": uuid::Uuid::now_v7()}),
        )
        .await;
    assert_error(res, 403, "not_a_member").await;
    // The refused switch left the token valid.
    app.me(&s.token).await;
}

#[tokio::test]
async fn login_resumes_the_last_workspace_while_the_membership_exists() {
    let app = spawn_app().await;
    let alice = app.create_user("alice@example.com", PW).await;
    let org = app.create_org("acme", &[(alice, Role::Admin)]).await;
    let s = app.login("alice@example.com", PW).await;
    app.switch(&s.token, Some(org)).await;
    let again = app.login("alice@example.com", PW).await;
    assert_eq!(claims_of(&again.token)["org"], org.to_string());
    assert_eq!(claims_of(&again.token)["org_role"], "admin");
    assert_eq!(
        again.body["session"]["current_organization_name"],
        "Org acme"
    );

    // The most recent session decides, even when it is Personal and older ones were in the org.
    app.switch(&again.token, None).await;
    let personal = app.login("alice@example.com", PW).await;
    assert_eq!(claims_of(&personal.token)["org"], Value::Null);
    assert_eq!(
        personal.body["session"]["current_organization_id"],
        Value::Null
    );
    app.switch(&personal.token, Some(org)).await;
    let back = app.login("alice@example.com", PW).await;
    assert_eq!(claims_of(&back.token)["org"], org.to_string());

    app.db
        .execute_unprepared("DELETE FROM organization_memberships")
        .await
        .unwrap();
    let third = app.login("alice@example.com", PW).await;
    assert_eq!(claims_of(&third.token)["org"], Value::Null);
}

#[tokio::test]
async fn removed_or_demoted_members_lose_rights_on_the_next_request() {
    let app = spawn_app().await;
    let alice = app.create_user("alice@example.com", PW).await;
    let org = app.create_org("acme", &[(alice, Role::Owner)]).await;
    let token = app
        .switch(&app.login("alice@example.com", PW).await.token, Some(org))
        .await;
    assert_eq!(app.me(&token).await["current_organization_role"], "owner");

    app.db
        .execute_unprepared("UPDATE organization_memberships SET role = 'user'")
        .await
        .unwrap();
    let me = app.me(&token).await;
    assert_eq!(
        me["current_organization_role"], "user",
        "the database, not the token, decides"
    );
    assert!(
        !me["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "org.update")
    );

    app.db
        .execute_unprepared("DELETE FROM organization_memberships")
        .await
        .unwrap();
    let me = app.me(&token).await;
    assert_eq!(
        me["current_organization_id"],
        Value::Null,
        "falls back to Personal"
    );
    assert_eq!(me["current_organization_role"], Value::Null);
    assert_eq!(me["assignable_roles"], serde_json::json!([]));
}

#[tokio::test]
async fn tokens_are_refused_when_revoked_superseded_forged_or_foreign() {
    let app = spawn_app().await;
    let secret = app.settings.jwt_secret().unwrap();
    let s = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let claims = claims_of(&s.token);

    let sign = |claims: &Value, key: &[u8]| {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(key).unwrap(),
        )
        .unwrap()
    };
    // Valid signature with our secret: accepted (the control case).
    app.me(&sign(&claims, secret.expose().as_bytes())).await;

    let mut wrong_audience = claims.clone();
    wrong_audience["aud"] = json!("somebody-else");
    let mut wrong_issuer = claims.clone();
    wrong_issuer["iss"] = json!("evil");
    let mut stale_gen = claims.clone();
    stale_gen["gen"] = json!(claims["gen"].as_i64().unwrap() + 1);
    let parts: Vec<&str> = s.token.split('.').collect();
    let mut forged_payload = claims.clone();
    forged_payload["org_role"] = json!("owner");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64(forged_payload.to_string().as_bytes()),
        parts[2]
    );
    let alg_none = format!("{}.{}.", b64(br#"{"alg":"none","typ":"JWT"}"#), parts[1]);
    let hs512 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS512),
        &claims,
        &EncodingKey::from_secret(secret.expose().as_bytes()).unwrap(),
    )
    .unwrap();

    let cases = [
        (
            "wrong secret",
            sign(&claims, b"another-secret-of-at-least-32-bytes!!"),
        ),
        (
            "wrong audience",
            sign(&wrong_audience, secret.expose().as_bytes()),
        ),
        (
            "wrong issuer",
            sign(&wrong_issuer, secret.expose().as_bytes()),
        ),
        (
            "generation mismatch",
            sign(&stale_gen, secret.expose().as_bytes()),
        ),
        ("forged payload", forged),
        ("alg none", alg_none),
        ("other algorithm", hs512),
        ("garbage", "not.a.jwt".to_owned()),
    ];
    for (name, token) in cases {
        let res = app.get_as(&token, "/auth/me").await;
        assert_eq!(res.status(), 401, "{name} must be refused");
        assert_error(res, 401, "unauthorized").await;
    }
    let res = app.client.get(app.url("/auth/me")).send().await.unwrap();
    assert_error(res, 401, "unauthorized").await;

    // Revoked: logout kills the token on the very next request.
    let res = app.post_as(&s.token, "/auth/logout", json!({})).await;
    assert_eq!(res.status(), 204);
    assert!(
        res.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("inventiv_session=;")
    );
    assert_error(app.get_as(&s.token, "/auth/me").await, 401, "unauthorized").await;
    app.assert_audit_verifies().await;
}

#[tokio::test]
async fn expired_tokens_and_idle_or_absolute_expired_sessions_are_refused() {
    let (app, clock) = manual_app(|s| {
        s.auth.access_token_ttl_seconds = 3600;
        s.auth.session_idle_seconds = 600;
        s.auth.session_absolute_seconds = 1800;
    })
    .await;
    // Idle: activity pushes the idle deadline; silence past it ends the session.
    let s = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    clock.advance(Duration::seconds(400));
    app.me(&s.token).await;
    clock.advance(Duration::seconds(400));
    app.me(&s.token).await;
    clock.advance(Duration::seconds(601));
    assert_error(app.get_as(&s.token, "/auth/me").await, 401, "unauthorized").await;

    // Access token expiry (capped by the session's absolute expiry at 1800 s).
    let s = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(
        claims_of(&s.token)["exp"].as_i64().unwrap() - claims_of(&s.token)["iat"].as_i64().unwrap(),
        1800
    );
    for _ in 0..4 {
        clock.advance(Duration::seconds(450));
        if clock_is_past(&s.token, &clock) {
            break;
        }
        app.me(&s.token).await;
    }
    assert_error(app.get_as(&s.token, "/auth/me").await, 401, "token_expired").await;
    // Refresh ignores the token's exp, but not the session's absolute expiry.
    assert_error(
        app.post_as(&s.token, "/auth/refresh", json!({})).await,
        401,
        "unauthorized",
    )
    .await;
}

/// Reads answered from memory (a remembered token and a cached session, issue 18) still move
/// the session's idle deadline once a touch is due: a session used every 100 s with a 120 s
/// idle limit stays alive, which it only does if each of those reads wrote its touch.
#[tokio::test]
async fn reads_from_the_session_cache_still_keep_an_active_session_alive() {
    let (app, clock) = manual_app(|s| {
        s.auth.access_token_ttl_seconds = 3600;
        s.auth.session_idle_seconds = 120;
    })
    .await;
    let s = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    for _ in 0..5 {
        clock.advance(Duration::seconds(100));
        app.me(&s.token).await;
        // A second read at the same instant: no touch due, so served from memory alone
        // (whenever the caches are usable: on PostgreSQL, while the listener is connected).
        app.me(&s.token).await;
    }
    // Silence past the idle limit still ends it.
    clock.advance(Duration::seconds(121));
    assert_error(app.get_as(&s.token, "/auth/me").await, 401, "unauthorized").await;
}

fn clock_is_past(token: &str, clock: &ManualClock) -> bool {
    use inventiv_service::Clock;
    clock.now().unix_timestamp() >= claims_of(token)["exp"].as_i64().unwrap()
}

#[tokio::test]
async fn refresh_rotates_the_generation() {
    let (app, clock) = manual_app(|s| s.auth.access_token_ttl_seconds = 60).await;
    let s = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let body = json_with_status(app.post_as(&s.token, "/auth/refresh", json!({})).await, 200).await;
    let fresh = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        claims_of(&fresh)["gen"],
        claims_of(&s.token)["gen"].as_i64().unwrap() + 1
    );
    app.me(&fresh).await;
    assert_error(app.get_as(&s.token, "/auth/me").await, 401, "unauthorized").await;
    // A token past its exp can still be refreshed while the session lives — once.
    clock.advance(Duration::seconds(120));
    assert_error(app.get_as(&fresh, "/auth/me").await, 401, "token_expired").await;
    let again = json_with_status(app.post_as(&fresh, "/auth/refresh", json!({})).await, 200).await;
    app.me(again["access_token"].as_str().unwrap()).await;
    // Refreshing the same token again past the reuse grace is a reuse (see refresh_reuse.rs).
    clock.advance(Duration::seconds(11));
    assert_error(
        app.post_as(&fresh, "/auth/refresh", json!({})).await,
        401,
        "refresh_reuse_detected",
    )
    .await;
}

#[tokio::test]
async fn password_change_kills_the_other_sessions_and_keeps_this_one() {
    let app = spawn_app().await;
    app.create_user("alice@example.com", PW).await;
    let here = app.login("alice@example.com", PW).await;
    let elsewhere = app.login("alice@example.com", PW).await;
    let res = app
        .put_as(
            &here.token,
            "/auth/me/password",
            json!({"current_password": "nope-nope", "new_password": "new-password-1"}),
        )
        .await;
    assert_error(res, 403, "invalid_current_password").await;
    let res = app
        .put_as(
            &here.token,
            "/auth/me/password",
            json!({"current_password": PW, "new_password": "short"}),
        )
        .await;
    let body = assert_error(res, 400, "validation_failed").await;
    assert!(body["fields"]["new_password"].is_string());
    let res = app
        .put_as(
            &here.token,
            "/auth/me/password",
            json!({"current_password": PW, "new_password": "new-password-1"}),
        )
        .await;
    assert_eq!(res.status(), 204);
    app.me(&here.token).await;
    assert_error(
        app.get_as(&elsewhere.token, "/auth/me").await,
        401,
        "unauthorized",
    )
    .await;
    assert_error(
        app.post_json(
            "/auth/login",
            json!({"email": "alice@example.com", "password": PW}),
        )
        .await,
        401,
        "invalid_credentials",
    )
    .await;
    app.login("alice@example.com", "new-password-1").await;
    app.assert_audit_verifies().await;
}

/// Two sessions that both know the password change it at once (the owner, and someone who
/// learnt the old one). Each request verifies the old password, then hashes the new one: tens
/// of milliseconds in which the other can land. Exactly one change may win; the other must be
/// refused, and must not undo the winner's revocation of the other sessions.
#[tokio::test]
async fn concurrent_password_changes_from_the_old_password_have_one_winner() {
    let app = spawn_app().await;
    app.create_user("alice@example.com", PW).await;
    let mut current = PW.to_owned();
    for round in 0..3 {
        let a = app.login("alice@example.com", &current).await;
        let b = app.login("alice@example.com", &current).await;
        let change = |token: String, new: String| {
            let (app, current) = (&app, current.clone());
            async move {
                let body = json!({"current_password": current, "new_password": new});
                let res = app.put_as(&token, "/auth/me/password", body).await;
                (token, new, res.status().as_u16())
            }
        };
        let (first, second) = futures_util::future::join(
            change(a.token.clone(), format!("password-a-{round}")),
            change(b.token.clone(), format!("password-b-{round}")),
        )
        .await;
        // The loser is refused: its old password is no longer current (403), or, when the
        // winner committed before the loser's request was even authenticated, its session is
        // already revoked (401).
        let mut statuses = [first.2, second.2];
        statuses.sort();
        assert!(
            statuses == [204, 401] || statuses == [204, 403],
            "round {round}: {statuses:?}"
        );
        let (winner, loser) = if first.2 == 204 {
            (first, second)
        } else {
            (second, first)
        };
        app.me(&winner.0).await;
        assert_error(app.get_as(&loser.0, "/auth/me").await, 401, "unauthorized").await;
        current = winner.1;
    }
    app.login("alice@example.com", &current).await;
    app.assert_audit_verifies().await;
}

#[tokio::test]
async fn sessions_can_be_listed_and_revoked_only_by_their_owner() {
    let app = spawn_app().await;
    app.create_user("alice@example.com", PW).await;
    app.create_user("bob@example.com", PW).await;
    let a1 = app.login("alice@example.com", PW).await;
    let a2 = app.login("alice@example.com", PW).await;
    let a3 = app.login("alice@example.com", PW).await;
    let bob = app.login("bob@example.com", PW).await;

    let list = json_with_status(app.get_as(&a1.token, "/auth/sessions").await, 200).await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(list["next_cursor"], Value::Null);
    assert_eq!(items.iter().filter(|s| s["is_current"] == true).count(), 1);
    let a1_id = a1.body["session"]["id"].as_str().unwrap();
    assert!(
        items
            .iter()
            .any(|s| s["id"] == a1_id && s["is_current"] == true)
    );

    // Bob cannot see or revoke Alice's session: 404, and it keeps working.
    let a2_id = a2.body["session"]["id"].as_str().unwrap();
    assert_error(
        app.delete_as(&bob.token, &format!("/auth/sessions/{a2_id}"))
            .await,
        404,
        "not_found",
    )
    .await;
    app.me(&a2.token).await;
    assert_eq!(
        app.delete_as(&a1.token, &format!("/auth/sessions/{a2_id}"))
            .await
            .status(),
        204
    );
    assert_error(app.get_as(&a2.token, "/auth/me").await, 401, "unauthorized").await;
    assert_error(
        app.delete_as(&a1.token, &format!("/auth/sessions/{a2_id}"))
            .await,
        404,
        "not_found",
    )
    .await;

    let body = json_with_status(
        app.post_as(&a1.token, "/auth/sessions/revoke-others", json!({}))
            .await,
        200,
    )
    .await;
    assert_eq!(body["revoked"], 1);
    assert_error(app.get_as(&a3.token, "/auth/me").await, 401, "unauthorized").await;
    app.me(&a1.token).await;
    app.me(&bob.token).await;
}

#[tokio::test]
async fn profile_updates_and_username_conflicts() {
    let app = spawn_app().await;
    app.create_user("alice@example.com", PW).await;
    app.create_user("bob@example.com", PW).await;
    let alice = app.login("alice@example.com", PW).await;
    let bob = app.login("bob@example.com", PW).await;
    let me = json_with_status(
        app.put_as(
            &alice.token,
            "/auth/me",
            json!({"username": "alice", "first_name": "Alice", "last_name": "Liddell"}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        (me["username"].as_str(), me["first_name"].as_str()),
        (Some("alice"), Some("Alice"))
    );
    assert_error(
        app.put_as(&bob.token, "/auth/me", json!({"username": "ALICE"}))
            .await,
        409,
        "username_taken",
    )
    .await;
    let me = json_with_status(
        app.put_as(&alice.token, "/auth/me", json!({"last_name": null}))
            .await,
        200,
    )
    .await;
    assert_eq!(
        (me["last_name"].clone(), me["first_name"].as_str()),
        (Value::Null, Some("Alice"))
    );
    assert_error(
        app.put_as(&alice.token, "/auth/me", json!({"username": "a"}))
            .await,
        400,
        "validation_failed",
    )
    .await;
    assert_error(
        app.put_as(&alice.token, "/auth/me", json!({"is_platform_admin": true}))
            .await,
        400,
        "invalid_body",
    )
    .await;
}

fn reset_token_from(mail: &crate::helpers::ReceivedMail) -> String {
    let body = mail.body_text();
    let start = body.find("token=").expect("link in the email") + "token=".len();
    body[start..].split_whitespace().next().unwrap().to_owned()
}

/// Asks for a reset link for `email` and returns its token, from the mail that came.
async fn requested_reset_token(app: &TestApp, email: &str) -> String {
    app.post_json("/auth/password-reset/request", json!({"email": email}))
        .await;
    reset_token_from(&app.smtp.wait_for(email).await)
}

#[tokio::test]
async fn password_reset_is_indistinguishable_for_unknown_emails_and_its_link_works_once() {
    let app = spawn_app().await;
    app.create_user("alice@example.com", PW).await;
    let old_session = app.login("alice@example.com", PW).await;

    let strip = |mut v: Value| {
        v.as_object_mut().unwrap().remove("request_id");
        v
    };
    let known = app
        .post_json(
            "/auth/password-reset/request",
            json!({"email": "Alice@Example.com"}),
        )
        .await;
    let unknown = app
        .post_json(
            "/auth/password-reset/request",
            json!({"email": "nobody@example.com"}),
        )
        .await;
    assert_eq!(
        (known.status().as_u16(), unknown.status().as_u16()),
        (202, 202)
    );
    assert_eq!(
        strip(known.json().await.unwrap()),
        strip(unknown.json().await.unwrap())
    );

    let mail = app.smtp.wait_for("alice@example.com").await;
    assert!(mail.body_text().contains(&format!(
        "{}/reset-password?token=",
        app.settings.server.public_url
    )));
    assert!(
        app.smtp
            .messages()
            .iter()
            .all(|m| m.to != ["nobody@example.com"])
    );
    let token = reset_token_from(&mail);
    assert!(token.len() >= 43, "≥ 256 bits, base64url");

    let res = app
        .post_json(
            "/auth/password-reset/confirm",
            json!({"token": token, "new_password": "brand-new-password"}),
        )
        .await;
    assert_eq!(res.status(), 204);
    assert_error(
        app.get_as(&old_session.token, "/auth/me").await,
        401,
        "unauthorized",
    )
    .await;
    app.login("alice@example.com", "brand-new-password").await;
    let again = app
        .post_json(
            "/auth/password-reset/confirm",
            json!({"token": token, "new_password": "another-password"}),
        )
        .await;
    assert_error(again, 410, "reset_token_invalid").await;
    app.assert_audit_verifies().await;
}

#[tokio::test]
async fn a_reset_token_works_exactly_once_under_20_parallel_confirms() {
    let app = spawn_app().await;
    app.create_user("alice@example.com", PW).await;
    let token = requested_reset_token(&app, "alice@example.com").await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (client, url, token) = (
            app.client.clone(),
            app.url("/auth/password-reset/confirm"),
            token.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let body = json!({"token": token, "new_password": format!("parallel-password-{i}")});
            client
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 204).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 410).count(),
        19,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn reset_links_expire_after_an_hour_and_a_new_request_kills_older_links() {
    let (app, clock) = manual_app(|_| {}).await;
    app.create_user("alice@example.com", PW).await;
    app.post_json(
        "/auth/password-reset/request",
        json!({"email": "alice@example.com"}),
    )
    .await;
    let first = reset_token_from(&app.smtp.wait_for("alice@example.com").await);
    app.post_json(
        "/auth/password-reset/request",
        json!({"email": "alice@example.com"}),
    )
    .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while app.smtp.messages().len() < 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let second = reset_token_from(&app.smtp.wait_for("alice@example.com").await);
    assert_ne!(first, second);
    let res = app
        .post_json(
            "/auth/password-reset/confirm",
            json!({"token": first, "new_password": "new-password-1"}),
        )
        .await;
    assert_error(res, 410, "reset_token_invalid").await;
    clock.advance(Duration::minutes(61));
    let res = app
        .post_json(
            "/auth/password-reset/confirm",
            json!({"token": second, "new_password": "new-password-1"}),
        )
        .await;
    assert_error(res, 410, "reset_token_invalid").await;
}

#[tokio::test]
async fn the_eleventh_login_attempt_in_a_minute_from_one_ip_is_429() {
    let app = spawn_app_with(
        |s| s.rate_limit.login_per_minute = 10,
        Arc::new(inventiv_service::SystemClock),
    )
    .await;
    for i in 0..10 {
        // Different accounts: only the per-IP limit applies.
        let res = app
            .post_json(
                "/auth/login",
                json!({"email": format!("user{i}@example.com"), "password": "wrong-password"}),
            )
            .await;
        assert_eq!(res.status(), 401, "attempt {}", i + 1);
    }
    let res = app
        .post_json(
            "/auth/login",
            json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}),
        )
        .await;
    let retry_after: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after));
    assert_error(res, 429, "rate_limited").await;
    let events = crate::helpers::login_refusals(&app).await;
    assert_eq!(
        events.len(),
        1,
        "one audit event per burst, not per refused attempt"
    );
}

#[tokio::test]
async fn cookie_authenticated_writes_need_an_allowed_origin() {
    let app = spawn_app().await;
    let s = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let cookie = format!("inventiv_session={}", s.token);
    let post = |origin: Option<&str>| {
        let mut req = app
            .client
            .post(app.url("/auth/refresh"))
            .header("Cookie", cookie.clone());
        if let Some(origin) = origin {
            req = req.header("Origin", origin);
        }
        req.send()
    };
    assert_error(post(None).await.unwrap(), 403, "csrf_origin").await;
    assert_error(
        post(Some("https://evil.example")).await.unwrap(),
        403,
        "csrf_origin",
    )
    .await;
    // Reads by cookie need no Origin.
    let res = app
        .client
        .get(app.url("/auth/me"))
        .header("Cookie", cookie.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Same host, another port: another origin.
    let port = app.address.rsplit(':').next().unwrap();
    let other_port = format!("http://127.0.0.1:{}", port.parse::<u16>().unwrap() ^ 1);
    assert_error(post(Some(&other_port)).await.unwrap(), 403, "csrf_origin").await;
    // This server as the browser addressed it (Origin = the request's Host) is accepted.
    let same = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let res = app
        .client
        .post(app.url("/auth/refresh"))
        .header("Cookie", format!("inventiv_session={}", same.token))
        .header("Origin", app.address.clone())
        .send()
        .await
        .unwrap();
    json_with_status(res, 200).await;
    // The configured origin (public_url) is accepted; bearer requests are exempt.
    let res = post(Some("http://127.0.0.1:8080")).await.unwrap();
    let fresh = json_with_status(res, 200).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.post_as(&fresh, "/auth/refresh", json!({}))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn malformed_bodies_get_json_errors_never_500() {
    let app = spawn_app().await;
    let send = |body: &'static str, content_type: &'static str| {
        app.client
            .post(app.url("/auth/login"))
            .header("Content-Type", content_type)
            .body(body)
            .send()
    };
    assert_error(
        send("{not json", "application/json").await.unwrap(),
        400,
        "malformed_json",
    )
    .await;
    assert_error(
        send(r#"{"email": 3}"#, "application/json").await.unwrap(),
        400,
        "invalid_body",
    )
    .await;
    assert_error(
        send(
            r#"{"email":"a@b.io","password":"x","extra":1}"#,
            "application/json",
        )
        .await
        .unwrap(),
        400,
        "invalid_body",
    )
    .await;
    assert_error(
        send(r#"{"email":"a@b.io","password":"pw"}"#, "text/plain")
            .await
            .unwrap(),
        415,
        "unsupported_media_type",
    )
    .await;
    let huge = format!(
        r#"{{"email":"a@b.io","password":"{}"}}"#,
        "x".repeat(2 * 1024 * 1024)
    );
    let res = app
        .client
        .post(app.url("/auth/login"))
        .header("Content-Type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_error(res, 413, "payload_too_large").await;
}

#[tokio::test]
async fn user_ids_in_claims_must_match_the_session() {
    let app = spawn_app().await;
    let s = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let mut claims = claims_of(&s.token);
    claims["sub"] = json!(UserId::new().to_string());
    let secret = app.settings.jwt_secret().unwrap();
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.expose().as_bytes()).unwrap(),
    )
    .unwrap();
    assert_error(app.get_as(&token, "/auth/me").await, 401, "unauthorized").await;
}

/// Sign-ins with the old password racing its change: a sign-in may land before the change
/// (and its session is then revoked with the others) or be refused after it, but no session
/// opened with the old password outlives the change. The password is verified for a while
/// (hashing) between reading the account and storing the session.
#[tokio::test]
async fn no_session_signed_in_with_the_old_password_outlives_its_change() {
    let app = crate::helpers::spawn_app_with(
        |s| s.rate_limit.login_per_minute = u32::MAX,
        std::sync::Arc::new(inventiv_service::SystemClock),
    )
    .await;
    app.create_user("alice@example.com", PW).await;
    let mut current = PW.to_owned();
    for round in 0..12 {
        let changer = app.login("alice@example.com", &current).await.token;
        let new = format!("password-{round}");
        let sign_in = || {
            let (app, current) = (&app, current.clone());
            async move {
                let body = json!({"email": "alice@example.com", "password": current});
                let res = app.post_json("/auth/login", body).await;
                match res.status().as_u16() {
                    200 => Some(
                        res.json::<Value>().await.unwrap()["access_token"]
                            .as_str()
                            .unwrap()
                            .to_owned(),
                    ),
                    401 => None,
                    other => panic!("round {round}: a sign-in answered {other}"),
                }
            }
        };
        let change = async {
            // Into the sign-ins' hashing.
            tokio::time::sleep(std::time::Duration::from_micros(500 * (round % 6))).await;
            let body = json!({"current_password": current, "new_password": new});
            let res = app.put_as(&changer, "/auth/me/password", body).await;
            assert_eq!(res.status(), 204, "round {round}");
        };
        let (signed_in, ()) = futures_util::future::join(
            futures_util::future::join_all((0..8).map(|_| sign_in())),
            change,
        )
        .await;
        for token in signed_in.into_iter().flatten() {
            assert_error(app.get_as(&token, "/auth/me").await, 401, "unauthorized").await;
        }
        current = new;
    }
}

/// A reset link sent before a password change (a forwarded mail, a shared mailbox) no longer
/// works once the account's owner has changed the password: it would set a password over
/// theirs and sign them out.
#[tokio::test]
async fn a_password_change_voids_the_reset_links_sent_before() {
    let app = spawn_app().await;
    app.create_user("alice@example.com", PW).await;
    let token = requested_reset_token(&app, "alice@example.com").await;
    let alice = app.login("alice@example.com", PW).await.token;
    let res = app
        .put_as(
            &alice,
            "/auth/me/password",
            json!({"current_password": PW, "new_password": "changed-by-alice"}),
        )
        .await;
    assert_eq!(res.status(), 204);
    let res = app
        .post_json(
            "/auth/password-reset/confirm",
            json!({"token": token, "new_password": "set-by-mallory"}),
        )
        .await;
    assert_error(res, 410, "reset_token_invalid").await;
    app.me(&alice).await;
    app.login("alice@example.com", "changed-by-alice").await;
}

/// A reset request for an existing account answers as soon as one for an unknown address:
/// before the link is issued (a write transaction an unknown address does not take), so its
/// timing says nothing of which addresses have accounts. Here the write is held up by a lock
/// for longer than the client waits: the answer still comes, and the link follows.
#[tokio::test]
async fn a_reset_request_answers_before_the_link_is_issued() {
    let app = spawn_app().await;
    app.create_user("alice@example.com", PW).await;
    let blocker = app.db.begin_write().await.unwrap();
    if app.database.is_postgres() {
        blocker
            .execute_unprepared("LOCK TABLE password_reset_tokens IN EXCLUSIVE MODE")
            .await
            .unwrap();
    }
    let answered = tokio::time::timeout(
        std::time::Duration::from_secs(3),
        app.post_json(
            "/auth/password-reset/request",
            json!({"email": "alice@example.com"}),
        ),
    )
    .await
    .expect("the answer does not wait for the link's write");
    assert_eq!(answered.status(), 202);
    drop(blocker); // rolled back
    let token = reset_token_from(&app.smtp.wait_for("alice@example.com").await);
    let res = app
        .post_json(
            "/auth/password-reset/confirm",
            json!({"token": token, "new_password": "brand-new-password"}),
        )
        .await;
    assert_eq!(res.status(), 204);
}

/// Behind a trusted load balancer (`server.trusted_proxies`), the per-address sign-in limit
/// applies to each client the balancer names in `X-Forwarded-For`, not to the balancer: it was
/// one budget for every client together, so anyone could lock everyone out of signing in.
/// From a peer that is not trusted, `X-Forwarded-For` is ignored (a client cannot pick its
/// own address).
#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit() {
    let wrong =
        |n: usize| json!({"email": format!("nobody{n}@example.com"), "password": "wrong-password"});
    for (trusted, second_client_limited) in [(vec!["127.0.0.1".to_owned()], false), (vec![], true)]
    {
        let app = crate::helpers::spawn_app_with(
            |s| {
                s.rate_limit.login_per_minute = 3;
                s.server.trusted_proxies = trusted;
            },
            Arc::new(inventiv_service::SystemClock),
        )
        .await;
        let login_from = |client: &'static str, n: usize| {
            app.client
                .post(app.url("/auth/login"))
                // What a balancer sends: the client's word first, then the address it saw.
                .header("X-Forwarded-For", format!("10.9.9.9, {client}"))
                .json(&wrong(n))
                .send()
        };
        for n in 0..3 {
            assert_error(
                login_from("198.51.100.1", n).await.unwrap(),
                401,
                "invalid_credentials",
            )
            .await;
        }
        let res = login_from("198.51.100.1", 3).await.unwrap();
        assert_eq!(res.status(), 429);
        let other = login_from("198.51.100.2", 4).await.unwrap();
        let expected = if second_client_limited { 429 } else { 401 };
        assert_eq!(
            other.status(),
            expected,
            "trusted proxies: {:?}",
            app.settings.server.trusted_proxies
        );
    }
}
