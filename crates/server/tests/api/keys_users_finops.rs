//! API keys, users and FinOps scoped by organization (issue 6; SPEC §3, §4.3, §6).

use crate::helpers::{
    ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, assert_error, audited_renames, json_with_status,
    spawn_app, spawn_app_with,
};
use crate::instances::{Team, deploy, public_model, wait_for_status};
use inventiv_service::ManualClock;
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const PW: &str = "a-good-password";

async fn create_key(app: &TestApp, token: &str, body: Value) -> (String, Value) {
    let created = json_with_status(app.post_as(token, "/api_keys", body).await, 201).await;
    (
        created["secret"].as_str().unwrap().to_owned(),
        created["key"].clone(),
    )
}

/// [`create_key`], then approved by `owner` if it is an org key (SPEC §4.3 v2).
async fn approved_key(app: &TestApp, token: &str, owner: &str, body: Value) -> (String, Value) {
    let created = json_with_status(app.post_as(token, "/api_keys", body).await, 201).await;
    crate::instances::approve_key(app, owner, &created).await;
    (
        created["secret"].as_str().unwrap().to_owned(),
        created["key"].clone(),
    )
}

#[tokio::test]
async fn org_keys_are_created_by_owner_or_admin_and_seen_by_every_member_without_secret() {
    let app = spawn_app().await;
    let a = Team::new(&app, "tenant-a").await;
    let b = Team::new(&app, "tenant-b").await;
    for token in [&a.manager, &a.user] {
        assert_error(
            app.post_as(token, "/api_keys", json!({"name": "k"})).await,
            403,
            "forbidden",
        )
        .await;
    }
    let (secret, key) = create_key(&app, &a.admin, json!({"name": "ci"})).await;
    assert!(
        secret.starts_with("sk-inv-") && secret.len() >= "sk-inv-".len() + 43,
        "{secret}"
    );
    assert!(secret.starts_with(key["prefix"].as_str().unwrap()));
    assert_eq!(
        (key["scope"].as_str(), key["organization_name"].as_str()),
        (Some("org"), Some("Org tenant-a"))
    );
    for token in [&a.owner, &a.admin, &a.manager, &a.user] {
        let list = json_with_status(app.get_as(token, "/api_keys").await, 200).await;
        assert_eq!(list["items"].as_array().unwrap().len(), 1);
        assert!(
            !list.to_string().contains(&secret),
            "a secret leaked in a listing"
        );
    }
    let id = key["id"].as_str().unwrap();
    // Another org sees nothing of it and cannot touch it.
    assert_eq!(
        json_with_status(app.get_as(&b.owner, "/api_keys").await, 200).await["items"],
        json!([])
    );
    assert_error(
        app.put_as(&b.owner, &format!("/api_keys/{id}"), json!({"name": "x"}))
            .await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        app.delete_as(&b.owner, &format!("/api_keys/{id}")).await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        app.delete_as(&a.user, &format!("/api_keys/{id}")).await,
        403,
        "forbidden",
    )
    .await;
    let renamed = json_with_status(
        app.put_as(
            &a.owner,
            &format!("/api_keys/{id}"),
            json!({"name": "renamed"}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(renamed["name"], "renamed");
    app.assert_audit_verifies().await;
}

/// Renames racing on one key: each is audited with the name it actually replaced, so the
/// trail reads as one sequence of names (the key is read under its row lock in the renaming
/// transaction; read before it, two renames both recorded the same "before").
#[tokio::test]
async fn concurrent_renames_audit_each_the_name_it_replaced() {
    let app = spawn_app().await;
    let a = Team::new(&app, "tenant-a").await;
    let (_, key) = create_key(&app, &a.owner, json!({"name": "n-start"})).await;
    let id = key["id"].as_str().unwrap().to_owned();
    let renames = (0..12).map(|i| {
        let (app, owner, id) = (&app, &a.owner, &id);
        async move {
            let body = json!({"name": format!("n-{i}")});
            json_with_status(
                app.put_as(owner, &format!("/api_keys/{id}"), body).await,
                200,
            )
            .await
        }
    });
    futures_util::future::join_all(renames).await;
    let renames = audited_renames(&app, a.org, "api_key.renamed").await;
    assert_eq!(renames.len(), 12);
    assert_eq!(renames[0].0, "n-start");
    let name = &renames[11].1;
    let listed = json_with_status(app.get_as(&a.owner, "/api_keys").await, 200).await;
    assert_eq!(
        listed["items"][0]["name"],
        name.as_str(),
        "the last audited name is the key's"
    );
    app.assert_audit_verifies().await;
}

#[tokio::test]
async fn a_key_reads_its_own_scope_as_a_user_and_never_manages() {
    let app = spawn_app().await;
    let model = public_model(&app, "org/llama").await;
    let a = Team::new(&app, "tenant-a").await;
    let b = Team::new(&app, "tenant-b").await;
    let in_a = deploy(&app, &a.admin, json!({"model_id": model})).await;
    let in_b = deploy(&app, &b.admin, json!({"model_id": model})).await;
    let (key, _) = approved_key(&app, &a.owner, &a.owner, json!({"name": "reader"})).await;

    let listed = json_with_status(app.get_as(&key, "/instances").await, 200).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert_eq!(listed["items"][0]["id"], in_a["id"]);
    let via_header = app
        .client
        .get(app.url("/models"))
        .header("X-API-Key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(via_header.status(), 200);
    assert_error(
        app.get_as(
            &key,
            &format!("/instances/{}", in_b["id"].as_str().unwrap()),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    // Never management, whatever its creator's role.
    let writes = [
        (Method::POST, "/deployments", json!({"model_id": model})),
        (Method::POST, "/api_keys", json!({"name": "x"})),
        (
            Method::POST,
            "/organizations/current/invitations",
            json!({"email": "x@example.com"}),
        ),
        (Method::POST, "/organizations", json!({"name": "Nope"})),
    ];
    for (method, path, body) in writes {
        let res = app
            .as_bearer(method, path, &key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_error(res, 403, "api_key_not_allowed").await;
    }
    // A key acts as a `user`: the finops and audit views of managers stay closed.
    assert_error(
        app.get_as(&key, "/organizations/current/audit").await,
        403,
        "forbidden",
    )
    .await;
    assert_error(
        app.get_as(&key, "/auth/sessions").await,
        403,
        "api_key_not_allowed",
    )
    .await;
    let me = app.me(&key).await;
    assert_eq!(
        (
            me["session_id"].clone(),
            me["current_organization_role"].as_str()
        ),
        (Value::Null, Some("user"))
    );
}

#[tokio::test]
async fn personal_keys_see_only_their_owners_personal_rows() {
    let app = spawn_app().await;
    let model = public_model(&app, "org/llama").await;
    let team = Team::new(&app, "acme").await;
    deploy(&app, &team.admin, json!({"model_id": model})).await;
    app.create_user("pat@example.com", PW).await;
    let pat = app.login("pat@example.com", PW).await.token;
    let mine = deploy(&app, &pat, json!({"model_id": model})).await;
    let (key, meta) = create_key(&app, &pat, json!({"name": "laptop"})).await;
    assert_eq!(meta["scope"], "personal");
    let listed = json_with_status(app.get_as(&key, "/instances").await, 200).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert_eq!(listed["items"][0]["id"], mine["id"]);
    let keys = json_with_status(app.get_as(&pat, "/api_keys").await, 200).await;
    assert_eq!(keys["items"].as_array().unwrap().len(), 1);
    let org_keys = json_with_status(app.get_as(&team.owner, "/api_keys").await, 200).await;
    assert_eq!(org_keys["items"], json!([]));
}

#[tokio::test]
async fn revoked_or_expired_keys_are_refused_on_the_next_request() {
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let long = |s: &mut inventiv_server::Settings| s.auth.access_token_ttl_seconds = 30 * 86_400;
    let app = spawn_app_with(long, clock.clone()).await;
    let team = Team::new(&app, "acme").await;
    let (key, meta) = approved_key(&app, &team.admin, &team.owner, json!({"name": "temp"})).await;
    let expiring_at = clock_now(&clock) + Duration::hours(1);
    let (short, _) = approved_key(&app, &team.admin, &team.owner, json!({"name": "short", "expires_at": expiring_at.format(&time::format_description::well_known::Rfc3339).unwrap()})).await;
    assert_eq!(app.get_as(&key, "/instances").await.status(), 200);
    assert_eq!(app.get_as(&short, "/instances").await.status(), 200);
    let used = json_with_status(app.get_as(&team.admin, "/api_keys").await, 200).await;
    assert!(
        used["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["last_used_at"].is_string())
    );
    assert_eq!(
        app.delete_as(
            &team.admin,
            &format!("/api_keys/{}", meta["id"].as_str().unwrap())
        )
        .await
        .status(),
        204
    );
    assert_error(app.get_as(&key, "/instances").await, 401, "invalid_api_key").await;
    clock.advance(Duration::minutes(61));
    assert_error(
        app.get_as(&short, "/instances").await,
        401,
        "invalid_api_key",
    )
    .await;
    assert_error(
        app.get_as("sk-inv-not-a-real-key", "/instances").await,
        401,
        "invalid_api_key",
    )
    .await;
    let past = app
        .post_as(
            &team.admin,
            "/api_keys",
            json!({"name": "old", "expires_at": "2001-01-01T00:00:00Z"}),
        )
        .await;
    assert_error(past, 400, "validation_failed").await;
}

fn clock_now(clock: &ManualClock) -> OffsetDateTime {
    use inventiv_service::Clock;
    clock.now()
}

#[tokio::test]
async fn org_users_are_members_only_and_created_with_an_assignable_role() {
    let app = spawn_app().await;
    let a = Team::new(&app, "tenant-a").await;
    let b = Team::new(&app, "tenant-b").await;
    for token in [&a.owner, &a.admin, &a.manager] {
        let users = json_with_status(app.get_as(token, "/users").await, 200).await;
        let emails: Vec<&str> = users["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["email"].as_str().unwrap())
            .collect();
        assert_eq!(emails.len(), 4);
        assert!(
            emails.iter().all(|e| e.ends_with("@tenant-a.test")),
            "{emails:?}"
        );
    }
    assert_error(app.get_as(&a.user, "/users").await, 403, "forbidden").await;
    let b_member = b.user_ids[0];
    assert_error(
        app.get_as(&a.owner, &format!("/users/{b_member}")).await,
        404,
        "not_found",
    )
    .await;

    let res = app
        .post_as(
            &a.admin,
            "/users",
            json!({"email": "boss@example.com", "role": "owner"}),
        )
        .await;
    assert_error(res, 403, "role_change_not_allowed").await;
    assert_error(
        app.post_as(&a.manager, "/users", json!({"email": "m@example.com"}))
            .await,
        403,
        "forbidden",
    )
    .await;
    let created = json_with_status(
        app.post_as(
            &a.admin,
            "/users",
            json!({"email": "New@Example.com", "role": "admin"}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(
        (created["email"].as_str(), created["role"].as_str()),
        (Some("new@example.com"), Some("admin"))
    );
    assert_error(
        app.post_as(&a.admin, "/users", json!({"email": "owner@tenant-b.test"}))
            .await,
        409,
        "email_taken",
    )
    .await;
    // No password given: the set-password link arrives by email and works once.
    let mail = app.smtp.wait_for("new@example.com").await;
    let body = mail.body_text();
    let token = body[body.find("token=").unwrap() + 6..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let res = app
        .post_json(
            "/auth/password-reset/confirm",
            json!({"token": token, "new_password": "chosen-password"}),
        )
        .await;
    assert_eq!(res.status(), 204);
    let s = app.login("new@example.com", "chosen-password").await;
    let orgs = json_with_status(app.get_as(&s.token, "/organizations").await, 200).await;
    assert_eq!(orgs["items"][0]["role"], "admin");
}

/// Platform admins disabling and re-enabling one account at once: each change decides from
/// the account as the previous one left it (its row is read under its lock), so the trail
/// alternates `user.disabled` / `user.enabled` and each event's "before" is the state it
/// replaced, and an account that ends disabled has had its sessions revoked.
#[tokio::test]
async fn concurrent_disables_and_enables_each_decide_from_the_state_they_replace() {
    let app = spawn_app().await;
    let admin = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.token;
    let pat = app.create_user("pat@example.com", PW).await;
    let session = app.login("pat@example.com", PW).await.token;
    let path = format!("/users/{pat}");
    let changes = (0..16).map(|i| {
        let body = json!({"disabled": i % 2 == 0});
        let (app, admin, path) = (&app, &admin, &path);
        async move { app.put_as(admin, path, body).await.status().as_u16() }
    });
    let statuses = futures_util::future::join_all(changes).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let mut events: Vec<_> = crate::helpers::platform_events(&app, "user.disabled").await;
    events.extend(crate::helpers::platform_events(&app, "user.enabled").await);
    events.extend(crate::helpers::platform_events(&app, "user.updated").await);
    events.retain(|e| e.target_id.as_deref() == Some(pat.to_string().as_str()));
    events.sort_by_key(|e| e.chain_seq);
    let mut disabled = false;
    for e in &events {
        let before = e.before.as_ref().unwrap()["disabled"].as_bool().unwrap();
        let after = e.after.as_ref().unwrap()["disabled"].as_bool().unwrap();
        assert_eq!(before, disabled, "{}: {events:#?}", e.action);
        let expected = match (before, after) {
            (false, true) => "user.disabled",
            (true, false) => "user.enabled",
            _ => "user.updated",
        };
        assert_eq!(e.action, expected, "{events:#?}");
        disabled = after;
    }
    let now = json_with_status(app.get_as(&admin, &path).await, 200).await;
    assert_eq!(now["disabled"], disabled);
    if disabled {
        assert_error(app.get_as(&session, "/auth/me").await, 401, "unauthorized").await;
    }
}

#[tokio::test]
async fn platform_admins_manage_every_account_from_personal() {
    let app = spawn_app().await;
    let admin = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.token;
    let team = Team::new(&app, "acme").await;
    app.create_user("pat@example.com", PW).await;
    let pat = app.login("pat@example.com", PW).await.token;
    assert_error(app.get_as(&pat, "/users").await, 403, "forbidden").await;
    let all = json_with_status(app.get_as(&admin, "/users?limit=200").await, 200).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 6);

    // The last owner of an org cannot be deleted.
    let owner_id = team.user_ids[0];
    assert_error(
        app.delete_as(&admin, &format!("/users/{owner_id}")).await,
        409,
        "last_owner",
    )
    .await;
    // Disabling kills the sessions and keys at once.
    let user_id = team.user_ids[3];
    let (admin_key, _) = create_key(&app, &team.admin, json!({"name": "k"})).await;
    let admin_id = team.user_ids[1];
    let res = app
        .put_as(
            &admin,
            &format!("/users/{admin_id}"),
            json!({"disabled": true}),
        )
        .await;
    assert_eq!(json_with_status(res, 200).await["disabled"], true);
    assert_error(
        app.get_as(&team.admin, "/auth/me").await,
        401,
        "unauthorized",
    )
    .await;
    assert_error(
        app.get_as(&admin_key, "/instances").await,
        401,
        "invalid_api_key",
    )
    .await;
    let relogin = app
        .post_json(
            "/auth/login",
            json!({"email": "admin@acme.test", "password": PW}),
        )
        .await;
    assert_error(relogin, 403, "account_disabled").await;
    // Delete: the account, its memberships and sessions go together.
    assert_eq!(
        app.delete_as(&admin, &format!("/users/{user_id}"))
            .await
            .status(),
        204
    );
    assert_error(
        app.get_as(&team.user, "/auth/me").await,
        401,
        "unauthorized",
    )
    .await;
    let members = json_with_status(
        app.get_as(&team.owner, "/organizations/current/members")
            .await,
        200,
    )
    .await;
    assert_eq!(members["items"].as_array().unwrap().len(), 3);
    // Non-admins: only their own profile.
    let pat_id = app.me(&pat).await["user_id"].as_str().unwrap().to_owned();
    json_with_status(
        app.put_as(
            &pat,
            &format!("/users/{pat_id}"),
            json!({"first_name": "Pat"}),
        )
        .await,
        200,
    )
    .await;
    assert_error(
        app.put_as(
            &pat,
            &format!("/users/{pat_id}"),
            json!({"is_platform_admin": true}),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    assert_error(
        app.put_as(
            &pat,
            &format!("/users/{owner_id}"),
            json!({"first_name": "X"}),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    assert_error(
        app.delete_as(&pat, &format!("/users/{owner_id}")).await,
        403,
        "forbidden",
    )
    .await;
    app.assert_audit_verifies().await;
}

async fn set_clock_and_wait(
    app: &TestApp,
    clock: &ManualClock,
    at: OffsetDateTime,
    token: &str,
    id: &str,
    status: &str,
) {
    clock.set(at);
    wait_for_status(app, token, id, status).await;
}

#[tokio::test]
async fn finops_costs_are_exact_to_the_micro_euro() {
    let t0 = datetime!(2026-03-01 22:00 UTC);
    let clock = Arc::new(ManualClock::new(t0));
    let long = |s: &mut inventiv_server::Settings| {
        s.auth.access_token_ttl_seconds = 30 * 86_400;
        s.auth.session_idle_seconds = 30 * 86_400;
    };
    let app = spawn_app_with(long, clock.clone()).await;
    let model = public_model(&app, "org/llama").await;
    let team = Team::new(&app, "acme").await;
    // 3.6 EUR an hour = 1 000 micro-EUR a second.
    let a = deploy(
        &app,
        &team.admin,
        json!({"model_id": model, "hourly_cost_micros": 3_600_000}),
    )
    .await;
    let a_id = a["id"].as_str().unwrap();
    wait_for_status(&app, &team.admin, a_id, "ready").await; // ready at 22:00
    clock.set(datetime!(2026-03-01 23:30 UTC));
    let b = deploy(
        &app,
        &team.admin,
        json!({"model_id": model, "hourly_cost_micros": 7_200_000}),
    )
    .await;
    let b_id = b["id"].as_str().unwrap();
    wait_for_status(&app, &team.admin, b_id, "ready").await; // ready at 23:30
    clock.set(datetime!(2026-03-02 01:00 UTC));
    app.post_as(
        &team.admin,
        &format!("/instances/{a_id}/terminate"),
        json!({}),
    )
    .await;
    set_clock_and_wait(
        &app,
        &clock,
        datetime!(2026-03-02 01:00 UTC),
        &team.admin,
        a_id,
        "terminated",
    )
    .await;
    clock.set(datetime!(2026-03-02 02:00 UTC)); // now; B still runs

    let current =
        json_with_status(app.get_as(&team.manager, "/finops/cost/current").await, 200).await;
    assert_eq!(
        current,
        json!({"currency": "EUR", "hourly_micros": 7_200_000, "instances": 1})
    );
    let q = |group: &str| {
        format!(
            "/finops/dashboard/costs?from=2026-03-01T00:00:00Z&to=2026-03-03T00:00:00Z&group_by={group}"
        )
    };
    // A: 22:00→01:00 = 3 h × 3.6 = 10.8 EUR; B: 23:30→02:00 (now) = 2.5 h × 7.2 = 18 EUR.
    let by_day = json_with_status(app.get_as(&team.manager, &q("day")).await, 200).await;
    assert_eq!(by_day["total_micros"], 28_800_000);
    assert_eq!(
        by_day["groups"],
        json!([
            {"key": "2026-03-01", "label": "2026-03-01", "cost_micros": 7_200_000 + 3_600_000},
            {"key": "2026-03-02", "label": "2026-03-02", "cost_micros": 3_600_000 + 14_400_000},
        ])
    );
    let by_instance = json_with_status(app.get_as(&team.owner, &q("instance")).await, 200).await;
    let cost_of = |id: &str| {
        by_instance["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["key"] == id)
            .unwrap()["cost_micros"]
            .clone()
    };
    assert_eq!(
        (cost_of(a_id), cost_of(b_id)),
        (json!(10_800_000), json!(18_000_000))
    );
    let by_model = json_with_status(app.get_as(&team.admin, &q("model")).await, 200).await;
    assert_eq!(by_model["groups"].as_array().unwrap().len(), 1);
    assert_eq!(by_model["groups"][0]["cost_micros"], 28_800_000);
    // A window that cuts both: 00:00→00:30 on 03-02 = 0.5 h × (3.6 + 7.2) = 5.4 EUR.
    let cut =
        "/finops/dashboard/costs?from=2026-03-02T00:00:00Z&to=2026-03-02T00:30:00Z&group_by=model";
    assert_eq!(
        json_with_status(app.get_as(&team.admin, cut).await, 200).await["total_micros"],
        5_400_000
    );

    // Roles and validation.
    assert_error(app.get_as(&team.user, &q("day")).await, 403, "forbidden").await;
    assert_error(
        app.get_as(&team.user, "/finops/cost/current").await,
        403,
        "forbidden",
    )
    .await;
    let bad = [
        "/finops/dashboard/costs?from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z",
        "/finops/dashboard/costs?from=2024-01-01T00:00:00Z&to=2026-03-01T00:00:00Z",
        "/finops/dashboard/costs?from=2026-03-01T00:00:00Z&to=2026-03-02T00:00:00Z&group_by=week",
    ];
    for path in bad {
        assert_error(
            app.get_as(&team.admin, path).await,
            400,
            "validation_failed",
        )
        .await;
    }
    // SPEC §4.3 v2: a missing `from` is the start of the current calendar month (UTC), no
    // longer a 400 (see also defaults.rs).
    let defaulted = json_with_status(
        app.get_as(
            &team.admin,
            "/finops/dashboard/costs?to=2026-03-02T00:00:00Z",
        )
        .await,
        200,
    )
    .await;
    assert_eq!(defaulted["from"], "2026-03-01T00:00:00Z");
}

#[tokio::test]
async fn finops_is_scoped_to_the_workspace() {
    let app = spawn_app().await;
    let model = public_model(&app, "org/llama").await;
    let a = Team::new(&app, "tenant-a").await;
    let b = Team::new(&app, "tenant-b").await;
    let in_b = deploy(
        &app,
        &b.admin,
        json!({"model_id": model, "hourly_cost_micros": 1_000_000}),
    )
    .await;
    wait_for_status(&app, &b.admin, in_b["id"].as_str().unwrap(), "ready").await;
    app.create_user("pat@example.com", PW).await;
    let pat = app.login("pat@example.com", PW).await.token;
    let mine = deploy(
        &app,
        &pat,
        json!({"model_id": model, "hourly_cost_micros": 2_000_000}),
    )
    .await;
    wait_for_status(&app, &pat, mine["id"].as_str().unwrap(), "ready").await;
    let none = json_with_status(app.get_as(&a.owner, "/finops/cost/current").await, 200).await;
    assert_eq!(none["instances"], 0);
    let b_cost = json_with_status(app.get_as(&b.owner, "/finops/cost/current").await, 200).await;
    assert_eq!(b_cost["hourly_micros"], 1_000_000);
    let personal = json_with_status(app.get_as(&pat, "/finops/cost/current").await, 200).await;
    assert_eq!(personal["hourly_micros"], 2_000_000);
}
