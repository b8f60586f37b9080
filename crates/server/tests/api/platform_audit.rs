//! `GET /platform/audit` (issue 19 item 4, SPEC §4.9 v2): the platform chain — events with no
//! organization — read by platform admins from the personal workspace; everyone else, and a
//! platform admin in an org workspace or with an API key, is refused.

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, assert_error, json_with_status, spawn_app};
use crate::instances::{PW, Team, public_model};
use inventiv_domain::Role;
use serde_json::{Value, json};

fn actions(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn platform_admins_read_the_platform_chain_filtered_and_paged() {
    let app = spawn_app().await;
    // Four workspace switches (session.*) and a public model (model.*) in the platform chain;
    // an org change in the org's own chain.
    let team = Team::new(&app, "acme").await;
    public_model(&app, "meta/llama-3").await;
    let res = app
        .as_bearer(
            reqwest::Method::PATCH,
            "/organizations/current",
            &team.owner,
        )
        .json(&json!({"name": "Acme Renamed"}))
        .send()
        .await
        .unwrap();
    json_with_status(res, 200).await;
    let admin = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.token;
    let all = json_with_status(app.get_as(&admin, "/platform/audit?limit=200").await, 200).await;
    let seen = actions(&all);
    assert!(
        seen.iter().any(|a| a == "session.workspace_switched"),
        "{seen:?}"
    );
    assert!(seen.iter().any(|a| a == "model.created"), "{seen:?}");
    assert!(!seen.iter().any(|a| a.starts_with("org.")), "{seen:?}");
    for event in all["items"].as_array().unwrap() {
        assert_eq!(event["organization_id"], Value::Null, "{event}");
        assert!(event["hash"].is_string() && event["occurred_at"].is_string());
    }
    // Newest first.
    let ids: Vec<i64> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    assert_eq!(all["next_cursor"], Value::Null);

    // The action filter.
    let switched = json_with_status(
        app.get_as(&admin, "/platform/audit?action=session.workspace_switched")
            .await,
        200,
    )
    .await;
    let switched = actions(&switched);
    assert_eq!(switched.len(), 4, "{switched:?}");
    assert!(switched.iter().all(|a| a == "session.workspace_switched"));

    // Paging: two at a time reaches every event once, in the same order.
    let mut paged = Vec::new();
    let mut path = "/platform/audit?limit=2".to_owned();
    loop {
        let page = json_with_status(app.get_as(&admin, &path).await, 200).await;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        paged.extend(items.iter().map(|e| e["id"].as_i64().unwrap()));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/platform/audit?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(paged, ids);

    // `since` in the future: nothing.
    let later = json_with_status(
        app.get_as(&admin, "/platform/audit?since=2999-01-01T00:00:00Z")
            .await,
        200,
    )
    .await;
    assert_eq!(later["items"], json!([]));
    // Bad filters are 400s.
    for bad in [
        "/platform/audit?action=Not%20An%20Action",
        "/platform/audit?cursor=%%%",
        "/platform/audit?limit=0",
        "/platform/audit?since=yesterday",
    ] {
        let status = app.get_as(&admin, bad).await.status().as_u16();
        assert_eq!(status, 400, "{bad}");
    }
}

#[tokio::test]
async fn everyone_else_is_refused() {
    let app = spawn_app().await;
    let team = Team::new(&app, "acme").await;
    app.create_user("pat@example.com", PW).await;
    let pat = app.login("pat@example.com", PW).await.token;
    // A personal user, and every org role (the org's own audit is theirs to read, not this).
    for token in [&pat, &team.owner, &team.admin, &team.manager, &team.user] {
        assert_error(app.get_as(token, "/platform/audit").await, 403, "forbidden").await;
    }
    // A platform admin inside an org workspace acts as a member of that org.
    let admin = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.token;
    let admin_id = app.me(&admin).await["user_id"].as_str().unwrap().to_owned();
    let admin_id = inventiv_domain::UserId::from_uuid(uuid::Uuid::parse_str(&admin_id).unwrap());
    app.add_member(team.org, admin_id, Role::Owner).await;
    let in_org = app.switch(&admin, Some(team.org)).await;
    assert_error(
        app.get_as(&in_org, "/platform/audit").await,
        403,
        "forbidden",
    )
    .await;
    // An API key never acts as a platform admin.
    // (A new sign-in resumes the last workspace: back to Personal explicitly.)
    let personal = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.token;
    let personal = app.switch(&personal, None).await;
    let key = json_with_status(
        app.post_as(&personal, "/api_keys", json!({"name": "ops"}))
            .await,
        201,
    )
    .await["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.get_as(&key, "/platform/audit").await.status(), 403);
    // Without credentials: 401.
    assert_eq!(app.get("/platform/audit").await.status(), 401);
    // The platform admin in Personal reads it.
    json_with_status(app.get_as(&personal, "/platform/audit").await, 200).await;
}

/// The routes of issue 19 are described in `/openapi.json`.
#[tokio::test]
async fn the_new_routes_are_in_the_openapi_document() {
    let app = spawn_app().await;
    let doc = json_with_status(app.get("/openapi.json").await, 200).await;
    for (path, method) in [
        ("/platform/audit", "get"),
        ("/models/{id}/activation", "post"),
        ("/api_keys/{id}/activation", "post"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing from /openapi.json"
        );
    }
}
