//! The workbench (issue 19 item 3; SPEC §4.8): projects and runs owned by a user in a
//! workspace, shared read-only with the org, and a run's conversation sent through the proxy —
//! against a real upstream started by the test (`crate::helpers::upstream`).

use crate::helpers::upstream::{COMPLETION_TOKENS, PROMPT_TOKENS};
use crate::helpers::{TestApp, assert_error, json_with_status, spawn_app};
use crate::instances::{PW, Team};
use crate::proxy::{Market, market};
use inventiv_persistence::repo::usage::reconciliation;
use inventiv_service::Clock;
use reqwest::Method;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

async fn patch(app: &TestApp, token: &str, path: &str, body: Value) -> reqwest::Response {
    app.as_bearer(Method::PATCH, path, token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn create_run(app: &TestApp, token: &str, body: Value) -> Value {
    json_with_status(app.post_as(token, "/workbench/runs", body).await, 201).await
}

async fn create_project(app: &TestApp, token: &str, body: Value) -> Value {
    json_with_status(app.post_as(token, "/workbench/projects", body).await, 201).await
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

fn ids(list: &Value) -> Vec<String> {
    list["items"].as_array().unwrap().iter().map(id).collect()
}

async fn list(app: &TestApp, token: &str, path: &str) -> Vec<String> {
    ids(&json_with_status(app.get_as(token, path).await, 200).await)
}

/// Every route of one run or project, with a body for the writes.
fn item_routes(kind: &str, id: &str) -> Vec<(Method, String, Value)> {
    let path = format!("/workbench/{kind}/{id}");
    let mut routes = vec![
        (Method::GET, path.clone(), Value::Null),
        (
            Method::PATCH,
            path.clone(),
            json!({"shared_with_org": true}),
        ),
        (Method::DELETE, path.clone(), Value::Null),
    ];
    if kind == "runs" {
        routes.push((Method::GET, format!("{path}/messages"), Value::Null));
        routes.push((
            Method::POST,
            format!("{path}/messages"),
            json!({"content": "Hi"}),
        ));
    }
    routes
}

async fn call(
    app: &TestApp,
    token: &str,
    method: &Method,
    path: &str,
    body: &Value,
) -> reqwest::Response {
    let req = app.as_bearer(method.clone(), path, token);
    let req = if body.is_null() { req } else { req.json(body) };
    req.send().await.unwrap()
}

#[tokio::test]
async fn projects_and_runs_are_created_read_changed_and_deleted_by_their_owner() {
    let app = spawn_app().await;
    let team = Team::new(&app, "wb").await;
    let project = create_project(
        &app,
        &team.user,
        json!({"name": " Research ", "description": "prompts"}),
    )
    .await;
    assert_eq!(project["name"], "Research");
    assert_eq!(project["scope"], "org");
    assert_eq!(project["organization_id"], team.org.to_string());
    assert_eq!(project["shared_with_org"], false);
    assert_eq!(project["is_mine"], true);
    let project_id = id(&project);
    let path = format!("/workbench/projects/{project_id}");
    assert_eq!(
        json_with_status(app.get_as(&team.user, &path).await, 200).await,
        project
    );
    let changed = json_with_status(
        patch(
            &app,
            &team.user,
            &path,
            json!({"name": "Lab", "description": null}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        (changed["name"].as_str(), changed["description"].is_null()),
        (Some("Lab"), true)
    );
    assert_eq!(
        list(&app, &team.user, "/workbench/projects").await,
        std::slice::from_ref(&project_id)
    );

    let run = create_run(
        &app,
        &team.user,
        json!({"project_id": project_id, "title": "First", "model": "meta/llama-3"}),
    )
    .await;
    assert_eq!(run["project_id"], project_id.as_str());
    assert_eq!(run["message_count"], 0);
    assert_eq!(
        (run["is_mine"].as_bool(), run["shared_with_org"].as_bool()),
        (Some(true), Some(false))
    );
    let loose = create_run(&app, &team.user, json!({"title": "Loose", "model": "m"})).await;
    assert_eq!(
        list(&app, &team.user, "/workbench/runs").await,
        [id(&loose), id(&run)],
        "newest first"
    );
    assert_eq!(
        list(
            &app,
            &team.user,
            &format!("/workbench/runs?project_id={project_id}")
        )
        .await,
        [id(&run)]
    );
    // Paged like every list.
    let first =
        json_with_status(app.get_as(&team.user, "/workbench/runs?limit=1").await, 200).await;
    assert_eq!(ids(&first), [id(&loose)]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = json_with_status(
        app.get_as(
            &team.user,
            &format!("/workbench/runs?limit=1&cursor={cursor}"),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        (ids(&second), second["next_cursor"].is_null()),
        (vec![id(&run)], true)
    );

    let run_path = format!("/workbench/runs/{}", id(&run));
    let changed = json_with_status(
        patch(
            &app,
            &team.user,
            &run_path,
            json!({"title": "Renamed", "model": "cons/chat", "project_id": null}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        (
            changed["title"].as_str(),
            changed["model"].as_str(),
            changed["project_id"].is_null()
        ),
        (Some("Renamed"), Some("cons/chat"), true)
    );
    assert_eq!(
        json_with_status(app.get_as(&team.user, &run_path).await, 200).await["title"],
        "Renamed"
    );
    // Deleting a project keeps its runs.
    json_with_status(
        patch(
            &app,
            &team.user,
            &run_path,
            json!({"project_id": project_id}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(app.delete_as(&team.user, &path).await.status(), 204);
    assert_error(app.get_as(&team.user, &path).await, 404, "not_found").await;
    let kept = json_with_status(app.get_as(&team.user, &run_path).await, 200).await;
    assert!(kept["project_id"].is_null());
    assert_eq!(app.delete_as(&team.user, &run_path).await.status(), 204);
    assert_error(app.get_as(&team.user, &run_path).await, 404, "not_found").await;
    assert_eq!(
        list(&app, &team.user, "/workbench/runs").await,
        [id(&loose)]
    );
}

#[tokio::test]
async fn every_role_uses_the_workbench_and_bad_input_is_refused_clearly() {
    let app = spawn_app().await;
    let team = Team::new(&app, "wb").await;
    for token in [&team.owner, &team.admin, &team.manager, &team.user] {
        // `/auth/me` shows the workbench to every member, as the API lets them use it.
        let me = app.me(token).await;
        assert!(
            me["modules"]
                .as_array()
                .unwrap()
                .contains(&json!({"id": "workbench", "access": "write"}))
        );
        for permission in ["workbench.view", "workbench.use"] {
            assert!(
                me["permissions"]
                    .as_array()
                    .unwrap()
                    .contains(&json!(permission)),
                "{me}"
            );
        }
        create_run(
            &app,
            token,
            json!({"title": "Mine", "model": "m", "shared_with_org": true}),
        )
        .await;
        create_project(&app, token, json!({"name": "Mine"})).await;
    }
    for body in [
        json!({"title": "", "model": "m"}),
        json!({"title": "t", "model": ""}),
        json!({"title": "t", "model": "has space"}),
        json!({"title": "t", "model": "x".repeat(257)}),
        json!({"title": "t".repeat(201), "model": "m"}),
    ] {
        assert_error(
            app.post_as(&team.user, "/workbench/runs", body).await,
            400,
            "validation_failed",
        )
        .await;
    }
    assert_error(
        app.post_as(
            &team.user,
            "/workbench/runs",
            json!({"title": "t", "model": "m", "colour": 1}),
        )
        .await,
        400,
        "invalid_body",
    )
    .await;
    assert_error(
        app.post_as(&team.user, "/workbench/projects", json!({"name": " "}))
            .await,
        400,
        "validation_failed",
    )
    .await;
    let run = create_run(&app, &team.user, json!({"title": "t", "model": "m"})).await;
    let messages = format!("/workbench/runs/{}/messages", id(&run));
    for content in ["", "  \n ", "a\u{0}b"] {
        assert_error(
            app.post_as(&team.user, &messages, json!({"content": content}))
                .await,
            400,
            "validation_failed",
        )
        .await;
    }
    assert_error(
        app.post_as(
            &team.user,
            &messages,
            json!({"content": "x".repeat(100_001)}),
        )
        .await,
        400,
        "validation_failed",
    )
    .await;
    assert_error(
        app.post_as(
            &team.user,
            &messages,
            json!({"content": "hi", "stream": "yes"}),
        )
        .await,
        400,
        "invalid_body",
    )
    .await;
    // A run is filed only under a project of mine: someone else's → 404 (not visible) or 403.
    let unshared = create_project(&app, &team.admin, json!({"name": "Admin's"})).await;
    let shared = create_project(
        &app,
        &team.admin,
        json!({"name": "Admin's", "shared_with_org": true}),
    )
    .await;
    assert_error(
        app.post_as(
            &team.user,
            "/workbench/runs",
            json!({"title": "t", "model": "m", "project_id": id(&unshared)}),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        app.post_as(
            &team.user,
            "/workbench/runs",
            json!({"title": "t", "model": "m", "project_id": id(&shared)}),
        )
        .await,
        403,
        "workbench_owner_only",
    )
    .await;
    assert_error(
        app.get_as(&team.user, "/workbench/runs/not-a-uuid").await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn another_tenant_gets_404_on_every_workbench_route() {
    let app = spawn_app().await;
    let a = Team::new(&app, "tenant-a").await;
    let b = Team::new(&app, "tenant-b").await;
    let project = create_project(
        &app,
        &a.owner,
        json!({"name": "P", "shared_with_org": true}),
    )
    .await;
    let run = create_run(
        &app,
        &a.owner,
        json!({"title": "R", "model": "m", "shared_with_org": true, "project_id": id(&project)}),
    )
    .await;
    for token in [&b.owner, &b.admin, &b.manager, &b.user] {
        for (kind, item) in [("projects", &project), ("runs", &run)] {
            for (method, path, body) in item_routes(kind, &id(item)) {
                assert_error(
                    call(&app, token, &method, &path, &body).await,
                    404,
                    "not_found",
                )
                .await;
            }
        }
        assert!(list(&app, token, "/workbench/projects").await.is_empty());
        assert!(list(&app, token, "/workbench/runs").await.is_empty());
        assert!(
            list(
                &app,
                token,
                &format!("/workbench/runs?project_id={}", id(&project))
            )
            .await
            .is_empty()
        );
        // Nor can another tenant's project be named.
        assert_error(
            app.post_as(
                token,
                "/workbench/runs",
                json!({"title": "t", "model": "m", "project_id": id(&project)}),
            )
            .await,
            404,
            "not_found",
        )
        .await;
    }
    // Still all there for their owner.
    assert_eq!(list(&app, &a.owner, "/workbench/runs").await, [id(&run)]);
}

#[tokio::test]
async fn colleagues_read_a_shared_run_but_only_its_owner_writes_it() {
    let app = spawn_app().await;
    let team = Team::new(&app, "wb").await;
    // The run's owner is a plain user: even the org's owner and admin only read it.
    let run = create_run(
        &app,
        &team.user,
        json!({"title": "Shared", "model": "m", "shared_with_org": true}),
    )
    .await;
    let project = create_project(
        &app,
        &team.user,
        json!({"name": "Shared", "shared_with_org": true}),
    )
    .await;
    for token in [&team.owner, &team.admin, &team.manager] {
        for (kind, item) in [("runs", &run), ("projects", &project)] {
            let path = format!("/workbench/{kind}/{}", id(item));
            let seen = json_with_status(app.get_as(token, &path).await, 200).await;
            assert_eq!(
                (seen["is_mine"].as_bool(), seen["shared_with_org"].as_bool()),
                (Some(false), Some(true))
            );
            assert!(
                list(&app, token, &format!("/workbench/{kind}"))
                    .await
                    .contains(&id(item))
            );
            let rename = if kind == "runs" { "title" } else { "name" };
            for body in [
                json!({rename: "Taken over"}),
                json!({"shared_with_org": false}),
                json!({"shared_with_org": true}),
            ] {
                assert_error(
                    patch(&app, token, &path, body).await,
                    403,
                    "workbench_owner_only",
                )
                .await;
            }
            assert_error(
                app.delete_as(token, &path).await,
                403,
                "workbench_owner_only",
            )
            .await;
        }
        let messages = format!("/workbench/runs/{}/messages", id(&run));
        json_with_status(app.get_as(token, &messages).await, 200).await;
        assert_error(
            app.post_as(token, &messages, json!({"content": "Hi"}))
                .await,
            403,
            "workbench_owner_only",
        )
        .await;
    }
    // Unchanged by all that.
    let path = format!("/workbench/runs/{}", id(&run));
    let kept = json_with_status(app.get_as(&team.user, &path).await, 200).await;
    assert_eq!(
        (kept["title"].as_str(), kept["shared_with_org"].as_bool()),
        (Some("Shared"), Some(true))
    );

    // The owner stops sharing: colleagues no longer see it at all.
    json_with_status(
        patch(&app, &team.user, &path, json!({"shared_with_org": false})).await,
        200,
    )
    .await;
    for (method, path, body) in item_routes("runs", &id(&run)) {
        assert_error(
            call(&app, &team.owner, &method, &path, &body).await,
            404,
            "not_found",
        )
        .await;
    }
    assert!(
        !list(&app, &team.owner, "/workbench/runs")
            .await
            .contains(&id(&run))
    );

    // Sharing changes are in the org's audit chain.
    let events = json_with_status(
        app.get_as(
            &team.owner,
            "/organizations/current/audit?action=workbench_run.shared",
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        events["items"].as_array().unwrap().len(),
        1,
        "created shared: one event"
    );
    assert_eq!(events["items"][0]["target_id"], id(&run).as_str());
    assert_eq!(
        events["items"][0]["actor_user_id"],
        team.user_ids[3].to_string()
    );
    let events = json_with_status(
        app.get_as(
            &team.owner,
            "/organizations/current/audit?action=workbench_run.unshared",
        )
        .await,
        200,
    )
    .await;
    assert_eq!(events["items"][0]["after"]["shared_with_org"], false);
    let events = json_with_status(
        app.get_as(
            &team.owner,
            "/organizations/current/audit?action=workbench_project.shared",
        )
        .await,
        200,
    )
    .await;
    assert_eq!(events["items"][0]["target_id"], id(&project).as_str());
    app.assert_audit_verifies().await;
}

#[tokio::test]
async fn unshared_runs_are_invisible_to_colleagues() {
    let app = spawn_app().await;
    let team = Team::new(&app, "wb").await;
    let run = create_run(
        &app,
        &team.manager,
        json!({"title": "Private", "model": "m"}),
    )
    .await;
    let project = create_project(&app, &team.manager, json!({"name": "Private"})).await;
    for token in [&team.owner, &team.admin, &team.user] {
        for (kind, item) in [("runs", &run), ("projects", &project)] {
            for (method, path, body) in item_routes(kind, &id(item)) {
                assert_error(
                    call(&app, token, &method, &path, &body).await,
                    404,
                    "not_found",
                )
                .await;
            }
            assert!(
                list(&app, token, &format!("/workbench/{kind}"))
                    .await
                    .is_empty()
            );
        }
    }
}

#[tokio::test]
async fn personal_runs_are_invisible_to_everyone_else_and_never_shared() {
    let app = spawn_app().await;
    let team = Team::new(&app, "wb").await;
    // New sessions of two members, moved to their personal workspaces.
    let alice = app
        .switch(&app.login("user@wb.test", PW).await.token, None)
        .await;
    let bob = app
        .switch(&app.login("admin@wb.test", PW).await.token, None)
        .await;
    let run = create_run(&app, &alice, json!({"title": "Mine", "model": "m"})).await;
    let project = create_project(&app, &alice, json!({"name": "Mine"})).await;
    assert_eq!(
        (run["scope"].as_str(), run["organization_id"].is_null()),
        (Some("personal"), true)
    );
    // Another user's personal workspace, and the owner's own org workspace: not there.
    for token in [&bob, &team.user, &team.owner] {
        for (kind, item) in [("runs", &run), ("projects", &project)] {
            for (method, path, body) in item_routes(kind, &id(item)) {
                assert_error(
                    call(&app, token, &method, &path, &body).await,
                    404,
                    "not_found",
                )
                .await;
            }
        }
    }
    assert!(list(&app, &team.user, "/workbench/runs").await.is_empty());
    assert_eq!(list(&app, &alice, "/workbench/runs").await, [id(&run)]);
    // A personal item has nobody to be shared with.
    for (path, body) in [
        (
            "/workbench/runs",
            json!({"title": "t", "model": "m", "shared_with_org": true}),
        ),
        (
            "/workbench/projects",
            json!({"name": "p", "shared_with_org": true}),
        ),
    ] {
        assert_error(
            app.post_as(&alice, path, body).await,
            400,
            "sharing_requires_organization",
        )
        .await;
    }
    for (kind, item) in [("runs", &run), ("projects", &project)] {
        assert_error(
            patch(
                &app,
                &alice,
                &format!("/workbench/{kind}/{}", id(item)),
                json!({"shared_with_org": true}),
            )
            .await,
            400,
            "sharing_requires_organization",
        )
        .await;
    }
}

#[tokio::test]
async fn api_keys_read_the_workbench_but_never_write_it() {
    let app = spawn_app().await;
    let team = Team::new(&app, "wb").await;
    let run = create_run(&app, &team.admin, json!({"title": "t", "model": "m"})).await;
    let key = team.org_key_secret(&app, "k").await;
    assert_eq!(list(&app, &key, "/workbench/runs").await, [id(&run)]);
    json_with_status(
        app.get_as(&key, &format!("/workbench/runs/{}/messages", id(&run)))
            .await,
        200,
    )
    .await;
    for (method, path, body) in [
        (
            Method::POST,
            "/workbench/runs".to_owned(),
            json!({"title": "t", "model": "m"}),
        ),
        (
            Method::POST,
            "/workbench/projects".to_owned(),
            json!({"name": "p"}),
        ),
        (
            Method::PATCH,
            format!("/workbench/runs/{}", id(&run)),
            json!({"title": "x"}),
        ),
        (
            Method::DELETE,
            format!("/workbench/runs/{}", id(&run)),
            Value::Null,
        ),
        (
            Method::POST,
            format!("/workbench/runs/{}/messages", id(&run)),
            json!({"content": "Hi"}),
        ),
    ] {
        assert_error(
            call(&app, &key, &method, &path, &body).await,
            403,
            "api_key_not_allowed",
        )
        .await;
    }
}

// --- Through the proxy ---------------------------------------------------------------------------

/// What one chat call costs on the market's share (1,000 µ€ in and 2,000 µ€ out per 1k
/// tokens): ceil(1000·1000/1000) + ceil(500·2000/1000).
const CHAT_CHARGE: i64 = 1_000 + 1_000;

async fn consumer_usage(m: &Market, side: &str, token: &str) -> Value {
    m.app.deps.proxy.meter.flush().await;
    let now = m.clock.now();
    let fmt = |t: OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let path = format!(
        "/finops/usage?from={}&to={}&side={side}&group_by=offering",
        fmt(now - Duration::days(1)),
        fmt(now + Duration::days(1))
    );
    json_with_status(m.app.get_as(token, &path).await, 200).await
}

async fn messages_of(app: &TestApp, token: &str, run: &str) -> Vec<(String, String)> {
    let page = json_with_status(
        app.get_as(token, &format!("/workbench/runs/{run}/messages"))
            .await,
        200,
    )
    .await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap().to_owned(),
                m["content"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_message_goes_through_the_proxy_is_stored_and_billed_to_the_runs_workspace() {
    let m = market().await;
    let app = &m.app;
    let user = &m.consumer.user;
    let run = create_run(
        app,
        user,
        json!({"title": "Chat", "model": "prov/chat", "shared_with_org": true}),
    )
    .await;
    let path = format!("/workbench/runs/{}/messages", id(&run));

    let res = app.post_as(user, &path, json!({"content": "Hi"})).await;
    let usage_header = res.headers()["x-inventiv-usage-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let sent = json_with_status(res, 201).await;
    assert_eq!(sent["usage_id"], usage_header.as_str());
    assert_eq!(sent["messages"][0]["role"], "user");
    assert_eq!(sent["messages"][0]["content"], "Hi");
    assert_eq!(sent["messages"][1]["role"], "assistant");
    assert_eq!(sent["messages"][1]["content"], "Hello!");
    assert_eq!(sent["messages"][1]["usage_id"], usage_header.as_str());
    let upstream = m.upstream.last_request();
    assert_eq!(
        upstream["model"], m.public_model,
        "resolved like /v1: the offering's model"
    );
    assert_eq!(
        upstream["messages"],
        json!([{"role": "user", "content": "Hi"}])
    );

    // The whole conversation goes again with the next message.
    json_with_status(
        app.post_as(user, &path, json!({"content": "And then?"}))
            .await,
        201,
    )
    .await;
    assert_eq!(
        m.upstream.last_request()["messages"],
        json!([
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "And then?"},
        ])
    );
    let expected = vec![
        ("user".to_owned(), "Hi".to_owned()),
        ("assistant".to_owned(), "Hello!".to_owned()),
        ("user".to_owned(), "And then?".to_owned()),
        ("assistant".to_owned(), "Hello!".to_owned()),
    ];
    assert_eq!(messages_of(app, user, &id(&run)).await, expected);
    // A colleague reads the shared conversation; paged, oldest first.
    assert_eq!(
        messages_of(app, &m.consumer.admin, &id(&run)).await,
        expected
    );
    let first = json_with_status(app.get_as(user, &format!("{path}?limit=3")).await, 200).await;
    assert_eq!(first["items"].as_array().unwrap().len(), 3);
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest = json_with_status(
        app.get_as(user, &format!("{path}?limit=3&cursor={cursor}"))
            .await,
        200,
    )
    .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        json_with_status(
            app.get_as(user, &format!("/workbench/runs/{}", id(&run)))
                .await,
            200
        )
        .await["message_count"],
        4
    );

    // Metered like any proxied call, charged to the run's workspace (the consumer org), by
    // this user, with no API key.
    let spend = consumer_usage(&m, "consumer", &m.consumer.manager).await;
    assert_eq!(spend["total"]["requests"], 2);
    assert_eq!(spend["total"]["input_tokens"], 2 * PROMPT_TOKENS);
    assert_eq!(spend["total"]["output_tokens"], 2 * COMPLETION_TOKENS);
    assert_eq!(spend["total"]["charged_micros"], 2 * CHAT_CHARGE);
    let revenue = consumer_usage(&m, "provider", &m.provider.owner).await;
    assert_eq!(revenue["total"]["charged_micros"], 2 * CHAT_CHARGE);
    let row = reconciliation::find(&app.db, usage_header.parse().unwrap())
        .await
        .unwrap()
        .expect("the call's usage row");
    assert_eq!(
        (
            row.api_key_id,
            row.share_id.map(|s| s.to_string()),
            row.charged_micros
        ),
        (None, Some(m.share.clone()), CHAT_CHARGE)
    );
}

#[tokio::test]
async fn a_streamed_answer_arrives_as_sse_and_is_stored_whole() {
    let m = market().await;
    let app = &m.app;
    let user = &m.consumer.user;
    let run = create_run(app, user, json!({"title": "Stream", "model": "prov/chat"})).await;
    let path = format!("/workbench/runs/{}/messages", id(&run));
    let res = app
        .post_as(user, &path, json!({"content": "Hi", "stream": true}))
        .await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"),
        "{:?}",
        res.headers()
    );
    let body = res.text().await.unwrap();
    let chunks: Vec<&str> = body.lines().filter(|l| l.starts_with("data: ")).collect();
    assert!(chunks.len() >= 4, "{body}");
    assert!(
        body.contains("\"Hel\"") && body.contains("\"lo\"") && body.contains("data: [DONE]"),
        "{body}"
    );
    assert_eq!(m.upstream.last_request()["stream"], true);
    // Stored whole once the stream has ended (before the response closed).
    assert_eq!(
        messages_of(app, user, &id(&run)).await,
        [
            ("user".to_owned(), "Hi".to_owned()),
            ("assistant".to_owned(), "Hello!".to_owned())
        ]
    );
    let spend = consumer_usage(&m, "consumer", &m.consumer.manager).await;
    assert_eq!(spend["total"]["requests"], 1);
    assert_eq!(spend["total"]["charged_micros"], CHAT_CHARGE);
}

#[tokio::test]
async fn the_proxys_rules_apply_to_workbench_messages() {
    let m = market().await;
    let app = &m.app;
    let user = &m.consumer.user;
    // An unknown model: the proxy's answer, and nothing stored.
    let nowhere = create_run(app, user, json!({"title": "t", "model": "prov/nothing"})).await;
    let path = format!("/workbench/runs/{}/messages", id(&nowhere));
    assert_error(
        app.post_as(user, &path, json!({"content": "Hi"})).await,
        404,
        "model_not_found",
    )
    .await;
    assert!(messages_of(app, user, &id(&nowhere)).await.is_empty());
    // The share's spend cap admits workbench calls like any other.
    let run = create_run(app, user, json!({"title": "t", "model": "prov/chat"})).await;
    let path = format!("/workbench/runs/{}/messages", id(&run));
    json_with_status(
        patch(
            app,
            &m.consumer.owner,
            &format!("/organizations/current/shares/{}", m.share),
            json!({"monthly_cap_micros": 5}),
        )
        .await,
        200,
    )
    .await;
    assert_error(
        app.post_as(user, &path, json!({"content": "Hi"})).await,
        402,
        "spend_cap_reached",
    )
    .await;
    // A failing model server: 502, nothing stored.
    json_with_status(
        patch(
            app,
            &m.consumer.owner,
            &format!("/organizations/current/shares/{}", m.share),
            json!({"monthly_cap_micros": null}),
        )
        .await,
        200,
    )
    .await;
    m.upstream
        .knobs
        .fail_status
        .store(500, std::sync::atomic::Ordering::SeqCst);
    assert_error(
        app.post_as(user, &path, json!({"content": "Hi"})).await,
        502,
        "upstream_error",
    )
    .await;
    m.upstream
        .knobs
        .fail_status
        .store(400, std::sync::atomic::Ordering::SeqCst);
    assert_error(
        app.post_as(user, &path, json!({"content": "Hi"})).await,
        502,
        "upstream_error",
    )
    .await;
    assert!(messages_of(app, user, &id(&run)).await.is_empty());
}

#[tokio::test]
async fn a_removed_owner_can_no_longer_send_messages() {
    let m = market().await;
    let app = &m.app;
    let user = &m.consumer.user;
    let run = create_run(
        app,
        user,
        json!({"title": "t", "model": "prov/chat", "shared_with_org": true}),
    )
    .await;
    let path = format!("/workbench/runs/{}/messages", id(&run));
    json_with_status(
        app.post_as(user, &path, json!({"content": "Hi"})).await,
        201,
    )
    .await;
    let removed = app
        .delete_as(
            &m.consumer.owner,
            &format!("/organizations/current/members/{}", m.consumer.user_ids[3]),
        )
        .await;
    assert_eq!(removed.status(), 204);
    // The session fell back to Personal, where the run is not: nothing is sent, nor billed.
    assert_error(
        app.post_as(user, &path, json!({"content": "Again"})).await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        app.get_as(user, &format!("/workbench/runs/{}", id(&run)))
            .await,
        404,
        "not_found",
    )
    .await;
    // The org still reads what was shared.
    assert_eq!(
        messages_of(app, &m.consumer.admin, &id(&run)).await.len(),
        2
    );
    let spend = consumer_usage(&m, "consumer", &m.consumer.manager).await;
    assert_eq!(spend["total"]["requests"], 1);
}

#[tokio::test]
async fn a_streamed_answer_is_stored_even_when_the_client_leaves_early() {
    let m = market().await;
    let app = &m.app;
    let user = &m.consumer.user;
    let run = create_run(app, user, json!({"title": "t", "model": "prov/chat"})).await;
    let path = format!("/workbench/runs/{}/messages", id(&run));
    m.upstream
        .knobs
        .hold_streams
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let mut res = app
        .post_as(user, &path, json!({"content": "Hi", "stream": true}))
        .await;
    assert_eq!(res.status(), 200);
    let first = res.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("Hel"));
    drop(res);
    m.upstream.knobs.release.notify_one();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let stored = messages_of(app, user, &id(&run)).await;
        if !stored.is_empty() {
            assert_eq!(
                stored,
                [
                    ("user".to_owned(), "Hi".to_owned()),
                    ("assistant".to_owned(), "Hello!".to_owned())
                ]
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never stored");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn a_full_run_refuses_more_before_calling_the_model() {
    use inventiv_domain::{WorkbenchMessageId, WorkbenchRunId};
    use inventiv_persistence::repo::workbench::{MessageRecord, append_message};
    let app = spawn_app().await;
    let team = Team::new(&app, "wb").await;
    let run = create_run(&app, &team.user, json!({"title": "t", "model": "m"})).await;
    let run_id: WorkbenchRunId = id(&run).parse().unwrap();
    // Ten long answers, stored directly: 999,990 characters.
    let tx = app.db.begin_write().await.unwrap();
    for _ in 0..10 {
        let stored = MessageRecord {
            id: WorkbenchMessageId::new(),
            run_id,
            role: "assistant".to_owned(),
            content: "é".repeat(99_999),
            usage_id: None,
            created_at: app.deps.clock.now(),
        };
        assert!(append_message(&tx, &stored).await.unwrap());
    }
    tx.commit().await.unwrap();
    let path = format!("/workbench/runs/{}/messages", id(&run));
    assert_error(
        app.post_as(&team.user, &path, json!({"content": "x".repeat(11)}))
            .await,
        409,
        "conversation_too_long",
    )
    .await;
    // Ten characters still fit: the model is asked (and, here, is not found).
    assert_error(
        app.post_as(&team.user, &path, json!({"content": "x".repeat(10)}))
            .await,
        404,
        "model_not_found",
    )
    .await;
}

/// One owner sharing and unsharing a project from several tabs at once, while renaming it:
/// each edit decides whether it shares or unshares from the project as it stays until it
/// commits (read under the row's lock), so the trail alternates `shared` / `unshared` and ends
/// on the project's actual state, and no rename writes back a stale sharing flag.
#[tokio::test]
async fn concurrent_edits_of_a_project_audit_every_change_of_sharing() {
    let app = spawn_app().await;
    let team = Team::new(&app, "acme").await;
    let project = create_project(&app, &team.user, json!({"name": "p"})).await;
    let path = format!("/workbench/projects/{}", id(&project));
    let edits = (0..16).map(|i| {
        let body = match i % 4 {
            0 => json!({"shared_with_org": true}),
            2 => json!({"shared_with_org": false}),
            _ => json!({"name": format!("p-{i}")}),
        };
        let (app, token, path) = (&app, &team.user, &path);
        async move { json_with_status(patch(app, token, path, body).await, 200).await }
    });
    futures_util::future::join_all(edits).await;
    let mut events = crate::helpers::org_events(&app, team.org, "workbench_project.shared").await;
    events.extend(crate::helpers::org_events(&app, team.org, "workbench_project.unshared").await);
    events.sort_by_key(|e| e.chain_seq);
    for pair in events.windows(2) {
        assert_ne!(pair[0].action, pair[1].action, "{events:#?}");
    }
    let now = json_with_status(app.get_as(&team.user, &path).await, 200).await;
    let last_shared = events.last().is_some_and(|e| e.action.ends_with(".shared"));
    assert_eq!(now["shared_with_org"], last_shared, "{events:#?}");
}
