//! The workspace precondition (SPEC §4 v2, issue 19): a request carrying
//! `X-Inventiv-Workspace` that no longer matches its session's workspace is refused with 409
//! `workspace_changed` and changes nothing — whether another tab switched the session, the
//! membership was removed, or the switch was made through another replica.

use crate::helpers::{TestApp, assert_error, json_with_status};
use crate::instances::Team;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const HEADER: &str = "X-Inventiv-Workspace";

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    workspace: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = app.as_bearer(method, path, token).header(HEADER, workspace);
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.unwrap()
}

async fn key_names(app: &TestApp, token: &str) -> Vec<String> {
    let keys = json_with_status(app.get_as(token, "/api_keys").await, 200).await;
    keys["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_stale_tab_cannot_write_into_the_workspace_it_no_longer_shows() {
    let app = crate::helpers::spawn_app().await;
    let team = Team::new(&app, "acme").await;
    let org = team.org.to_string();
    // The header that matches is accepted, on reads and writes, in either spelling.
    let res = send(&app, Method::GET, "/auth/me", &team.admin, &org, None).await;
    json_with_status(res, 200).await;
    let res = send(
        &app,
        Method::POST,
        "/api_keys",
        &team.admin,
        &org.to_uppercase(),
        Some(json!({"name": "from the org tab"})),
    )
    .await;
    json_with_status(res, 201).await;

    // Another tab switches the shared session to Personal: the first tab still says "acme".
    let personal = app.switch(&team.admin, None).await;
    let res = send(
        &app,
        Method::POST,
        "/api_keys",
        &personal,
        &org,
        Some(json!({"name": "meant for acme"})),
    )
    .await;
    let body = assert_error(res, 409, "workspace_changed").await;
    assert!(
        body["message"].as_str().unwrap().contains("Personal"),
        "{body}"
    );
    // Nothing was written, in either workspace.
    assert!(key_names(&app, &personal).await.is_empty());
    let back = app.switch(&personal, Some(team.org)).await;
    assert_eq!(key_names(&app, &back).await, vec!["from the org tab"]);
    // Reads are refused too (a stale tab would show another workspace's data as this one's).
    assert_error(
        send(&app, Method::GET, "/api_keys", &back, "personal", None).await,
        409,
        "workspace_changed",
    )
    .await;
    // Without the header nothing changes for API clients.
    json_with_status(app.get_as(&back, "/api_keys").await, 200).await;
    // A header that is neither a hyphenated id nor `personal` is a bad request, not a silent
    // pass — one spelling per value, as documented.
    let simple = team.org.as_uuid().simple().to_string();
    for value in ["acme", "PERSONAL", simple.as_str(), &format!("{{{org}}}")] {
        assert_error(
            send(&app, Method::GET, "/api_keys", &back, value, None).await,
            400,
            "bad_request",
        )
        .await;
    }
    // Empty: no claim, as when absent.
    json_with_status(
        send(&app, Method::GET, "/api_keys", &back, "", None).await,
        200,
    )
    .await;
}

#[tokio::test]
async fn a_removed_member_is_told_the_workspace_changed() {
    let app = crate::helpers::spawn_app().await;
    let team = Team::new(&app, "acme").await;
    let org = team.org.to_string();
    let user_id = team.user_ids[3];
    let res = send(
        &app,
        Method::DELETE,
        &format!("/organizations/current/members/{user_id}"),
        &team.owner,
        &org,
        None,
    )
    .await;
    assert_eq!(res.status(), 204);
    // The removed user's session fell back to Personal: the tab that still shows acme is
    // refused instead of writing a personal key it did not mean to.
    let res = send(
        &app,
        Method::POST,
        "/api_keys",
        &team.user,
        &org,
        Some(json!({"name": "meant for acme"})),
    )
    .await;
    assert_error(res, 409, "workspace_changed").await;
    assert!(key_names(&app, &team.user).await.is_empty());
    let me = json_with_status(
        send(&app, Method::GET, "/auth/me", &team.user, "personal", None).await,
        200,
    )
    .await;
    assert_eq!(me["current_organization_id"], Value::Null);
}

#[tokio::test]
async fn a_switch_through_one_replica_is_enforced_by_the_other() {
    let app = crate::helpers::spawn_app().await;
    let caches = app.database.is_postgres();
    let other = app.spawn_replica(|s| s.cache.enabled = caches).await;
    let team = Team::new(&app, "acme").await;
    let org = team.org.to_string();
    // The other replica has seen (and, on PostgreSQL, cached) the session in acme.
    json_with_status(
        send(&other, Method::GET, "/auth/me", &team.admin, &org, None).await,
        200,
    )
    .await;
    let personal = app.switch(&team.admin, None).await;
    // Within the replicas' bound (1 s), the other replica refuses the stale workspace.
    let started = Instant::now();
    loop {
        let res = send(&other, Method::GET, "/api_keys", &personal, &org, None).await;
        if res.status() == 409 {
            assert_error(res, 409, "workspace_changed").await;
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "still {} after 1 s",
            res.status()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
