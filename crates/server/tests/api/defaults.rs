//! Defaults a user expects (issue 19 item 5, SPEC §4.3 v2): FinOps ranges default to the
//! current calendar month (UTC) and a refused range says what to send; `GET /auth/sessions`
//! honours `limit`/`cursor`; `POST /models` needs only `model_id` and names it when missing.

use crate::helpers::{
    ADMIN_EMAIL, ADMIN_PASSWORD, assert_error, json_with_status, spawn_app, spawn_app_with,
};
use crate::instances::{PW, Team, deploy, public_model, wait_for_status};
use inventiv_service::ManualClock;
use serde_json::{Value, json};
use std::sync::Arc;
use time::macros::datetime;

#[tokio::test]
async fn finops_ranges_default_to_the_current_calendar_month() {
    let clock = Arc::new(ManualClock::new(datetime!(2026-02-28 22:00 UTC)));
    let long = |s: &mut inventiv_server::Settings| {
        s.auth.access_token_ttl_seconds = 30 * 86_400;
        s.auth.session_idle_seconds = 30 * 86_400;
    };
    let app = spawn_app_with(long, clock.clone()).await;
    let model = public_model(&app, "org/llama").await;
    let team = Team::new(&app, "acme").await;
    // 3.6 EUR an hour = 1 000 micro-EUR a second, ready at 22:00 on 28 February.
    let instance = deploy(
        &app,
        &team.admin,
        json!({"model_id": model, "hourly_cost_micros": 3_600_000}),
    )
    .await;
    wait_for_status(&app, &team.admin, instance["id"].as_str().unwrap(), "ready").await;
    clock.set(datetime!(2026-03-01 02:00 UTC));

    // No range: March so far, 00:00 → 02:00 = 7.2 EUR; the answer says which range it is.
    let month = json_with_status(
        app.get_as(&team.manager, "/finops/dashboard/costs").await,
        200,
    )
    .await;
    assert_eq!(
        (
            month["from"].as_str(),
            month["to"].as_str(),
            month["total_micros"].as_i64()
        ),
        (
            Some("2026-03-01T00:00:00Z"),
            Some("2026-04-01T00:00:00Z"),
            Some(7_200_000)
        ),
        "{month}"
    );
    // `from` alone: from then to the end of the current month (22:00 → 02:00 = 14.4 EUR).
    let since = json_with_status(
        app.get_as(
            &team.manager,
            "/finops/dashboard/costs?from=2026-02-01T00:00:00Z&group_by=day",
        )
        .await,
        200,
    )
    .await;
    assert_eq!(since["total_micros"], 14_400_000);
    assert_eq!(since["to"], "2026-04-01T00:00:00Z");
    // `to` alone: from the start of the current month.
    let until = json_with_status(
        app.get_as(
            &team.manager,
            "/finops/dashboard/costs?to=2026-03-01T01:00:00Z",
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        (until["from"].as_str(), until["total_micros"].as_i64()),
        (Some("2026-03-01T00:00:00Z"), Some(3_600_000))
    );
    // Usage too, on both sides.
    for path in [
        "/finops/usage",
        "/finops/usage?side=provider&group_by=offering",
    ] {
        let usage = json_with_status(app.get_as(&team.owner, path).await, 200).await;
        assert_eq!(
            (usage["from"].as_str(), usage["to"].as_str()),
            (Some("2026-03-01T00:00:00Z"), Some("2026-04-01T00:00:00Z")),
            "{usage}"
        );
    }
    // Personal: the user's own scope, same default.
    app.create_user("pat@example.com", PW).await;
    let pat = app.login("pat@example.com", PW).await.token;
    json_with_status(app.get_as(&pat, "/finops/dashboard/costs").await, 200).await;

    // A refused range says what to send.
    for path in [
        "/finops/dashboard/costs?from=2024-01-01T00:00:00Z&to=2026-03-01T00:00:00Z",
        "/finops/usage?from=2024-01-01T00:00:00Z&to=2026-03-01T00:00:00Z",
        "/finops/dashboard/costs?from=2020-01-01T00:00:00Z",
    ] {
        let body = assert_error(
            app.get_as(&team.owner, path).await,
            400,
            "validation_failed",
        )
        .await;
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains("366 days") && message.contains("omit both"),
            "{message}"
        );
    }
    // A `from` after the default `to`.
    let body = assert_error(
        app.get_as(&team.owner, "/finops/usage?from=2026-05-01T00:00:00Z")
            .await,
        400,
        "validation_failed",
    )
    .await;
    assert!(
        body["message"].as_str().unwrap().contains("after from"),
        "{body}"
    );
    // The role rules are unchanged.
    assert_error(
        app.get_as(&team.user, "/finops/dashboard/costs").await,
        403,
        "forbidden",
    )
    .await;
}

fn session_ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn sessions_are_listed_a_page_at_a_time() {
    let app = spawn_app().await;
    app.create_user("pat@example.com", PW).await;
    let mut tokens = Vec::new();
    for _ in 0..5 {
        tokens.push(app.login("pat@example.com", PW).await.token);
    }
    let me = &tokens[4];
    let all = json_with_status(app.get_as(me, "/auth/sessions").await, 200).await;
    let every = session_ids(&all);
    assert_eq!(every.len(), 5);
    assert_eq!(all["next_cursor"], Value::Null);
    // Two at a time: the same sessions, each once, in the same order.
    let mut paged = Vec::new();
    let mut path = "/auth/sessions?limit=2".to_owned();
    let mut pages = 0;
    loop {
        let page = json_with_status(app.get_as(me, &path).await, 200).await;
        let ids = session_ids(&page);
        assert!(ids.len() <= 2, "{page}");
        paged.extend(ids);
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/auth/sessions?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let (mut sorted_paged, mut sorted_every) = (paged.clone(), every.clone());
    sorted_paged.sort();
    sorted_every.sort();
    assert_eq!(sorted_paged, sorted_every, "every session exactly once");
    // Exactly one is the caller's own.
    let current = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["is_current"] == true)
        .count();
    assert_eq!(current, 1);
    // Bad paging parameters are 400s; another user's sessions are never listed.
    for bad in [
        "/auth/sessions?limit=0",
        "/auth/sessions?limit=201",
        "/auth/sessions?cursor=nope",
    ] {
        assert_eq!(app.get_as(me, bad).await.status(), 400, "{bad}");
    }
    app.create_user("quinn@example.com", PW).await;
    let quinn = app.login("quinn@example.com", PW).await.token;
    let theirs = json_with_status(app.get_as(&quinn, "/auth/sessions").await, 200).await;
    assert_eq!(session_ids(&theirs).len(), 1);
}

#[tokio::test]
async fn a_model_needs_only_its_model_id() {
    let app = spawn_app().await;
    let team = Team::new(&app, "acme").await;
    let created = json_with_status(
        app.post_as(&team.admin, "/models", json!({"model_id": "acme/tiny"}))
            .await,
        201,
    )
    .await;
    assert_eq!(
        (
            created["name"].as_str(),
            created["required_vram_gb"].as_i64(),
            created["context_length"].as_i64(),
            created["is_active"].as_bool(),
            created["visibility"].as_str(),
        ),
        (
            Some("acme/tiny"),
            Some(0),
            Some(4096),
            Some(true),
            Some("org")
        ),
        "{created}"
    );
    // What is given is kept.
    let given = json_with_status(
        app.post_as(
            &team.admin,
            "/models",
            json!({"model_id": "acme/big", "name": "Big", "required_vram_gb": 80, "context_length": 131072}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(
        (given["name"].as_str(), given["context_length"].as_i64()),
        (Some("Big"), Some(131_072))
    );
    // A long model_id makes a name of its first 100 characters.
    let long_id = format!("acme/{}", "x".repeat(150));
    let long = json_with_status(
        app.post_as(&team.admin, "/models", json!({"model_id": long_id}))
            .await,
        201,
    )
    .await;
    assert_eq!(long["name"].as_str().unwrap().chars().count(), 100);
    // No model_id: the error names it and says what it is.
    for body in [json!({}), json!({"name": "x"}), json!({"model_id": null})] {
        let error = assert_error(
            app.post_as(&team.admin, "/models", body).await,
            400,
            "validation_failed",
        )
        .await;
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains("model_id") && message.contains("required"),
            "{message}"
        );
    }
    // The platform admin's public models get the same defaults.
    let admin = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.token;
    let public = json_with_status(
        app.post_as(&admin, "/models", json!({"model_id": "meta/llama-3"}))
            .await,
        201,
    )
    .await;
    assert_eq!(public["visibility"], "public");
    // A PUT replaces the whole model: its fields stay required.
    let id = created["id"].as_str().unwrap();
    let res = app
        .put_as(
            &team.admin,
            &format!("/models/{id}"),
            json!({"model_id": "acme/tiny"}),
        )
        .await;
    assert_eq!(res.status(), 400);
    // Roles are unchanged: a manager may not create models.
    assert_error(
        app.post_as(&team.manager, "/models", json!({"model_id": "acme/m"}))
            .await,
        403,
        "forbidden",
    )
    .await;
}
