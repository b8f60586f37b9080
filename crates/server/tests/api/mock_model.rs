//! The built-in mock model (issue 19): with `providers.mock.endpoint_url` unset, a mock
//! instance is served by the server itself, so a call goes through the proxy, is metered and
//! shows in FinOps with nothing else running — what `make demo` shows a new user.

use crate::helpers::{TestApp, json_with_status, spawn_app};
use crate::instances::{Team, deploy, public_model, wait_for_status};
use serde_json::{Value, json};

/// An org instance of `model`, ready and approved, and an org key.
async fn served(app: &TestApp, team: &Team, model: &str) -> String {
    let instance = deploy(app, &team.admin, json!({"model_id": model})).await;
    let id = instance["id"].as_str().unwrap();
    let ready = wait_for_status(app, &team.admin, id, "ready").await;
    assert_eq!(
        ready["endpoint_url"].as_str().unwrap(),
        format!("{}/mock-model", app.address)
    );
    for (token, flag) in [(&team.admin, "tech"), (&team.manager, "eco")] {
        json_with_status(
            app.post_as(
                token,
                &format!("/instances/{id}/activation"),
                json!({"flag": flag, "active": true}),
            )
            .await,
            200,
        )
        .await;
    }
    team.org_key_secret(app, "demo").await
}

#[tokio::test]
async fn a_mock_instance_answers_through_the_proxy_and_the_call_is_metered() {
    let app = spawn_app().await;
    assert!(app.settings.builtin_mock_model());
    let model = public_model(&app, "demo/mock-chat").await;
    let team = Team::new(&app, "acme").await;
    let key = served(&app, &team, &model).await;

    let res = app
        .post_as(
            &key,
            "/v1/chat/completions",
            json!({"model": "demo/mock-chat", "messages": [{"role": "user", "content": "What is Inventiv?"}]}),
        )
        .await;
    let answer = json_with_status(res, 200).await;
    let text = answer["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(text.contains("You said: \"What is Inventiv?\""), "{answer}");
    assert_eq!(answer["usage"]["prompt_tokens"], 3);

    // Streamed: several chunks, the usage the proxy asks for, then [DONE].
    let res = app
        .post_as(
            &key,
            "/v1/chat/completions",
            json!({"model": "demo/mock-chat", "stream": true, "max_tokens": 4,
                   "messages": [{"role": "user", "content": "Stream this, please"}]}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body = res.text().await.unwrap();
    let events: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(events.last(), Some(&"[DONE]"), "{body}");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let streamed: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(streamed, "Hello from the built-in");
    assert!(
        chunks
            .iter()
            .any(|c| c["choices"][0]["finish_reason"] == "length")
    );
    assert!(
        chunks.iter().any(|c| c["usage"]["completion_tokens"] == 4),
        "{body}"
    );

    // Both calls are metered to the org's key.
    app.deps.proxy.meter.flush().await;
    let now = time::OffsetDateTime::now_utc();
    let fmt = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
            .replace(':', "%3A")
            .replace('+', "%2B")
    };
    let usage = json_with_status(
        app.get_as(
            &team.owner,
            &format!(
                "/finops/usage?from={}&to={}&side=consumer&group_by=api_key",
                fmt(now - time::Duration::days(1)),
                fmt(now + time::Duration::days(1))
            ),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(usage["total"]["requests"], 2, "{usage}");
    assert_eq!(usage["groups"].as_array().unwrap().len(), 1, "{usage}");
    assert!(
        usage["total"]["output_tokens"].as_i64().unwrap() > 4,
        "{usage}"
    );
}

#[tokio::test]
async fn the_mock_model_is_served_only_when_it_is_the_mock_endpoint() {
    let app = spawn_app().await;
    let models = json_with_status(app.get("/mock-model/v1/models").await, 200).await;
    assert_eq!(models["data"][0]["id"], "inventiv-mock");
    let bad = app
        .client
        .post(app.url("/mock-model/v1/chat/completions"))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    // Pointed elsewhere: the route does not exist.
    let other = app
        .spawn_replica(|s| s.providers.mock.endpoint_url = "http://127.0.0.1:9".into())
        .await;
    assert_eq!(other.get("/mock-model/v1/models").await.status(), 404);
}

/// `make demo`: the seed prints an approved key, and once a server starts, the demo's
/// operational instance answers a call with it through the proxy — nothing else to run.
#[tokio::test]
async fn the_demo_key_calls_the_demo_model_through_the_proxy() {
    let app = spawn_app().await;
    let outcome = inventiv_service::demo::seed(&app.deps).await.unwrap();
    let call = outcome.try_it.expect("a demo key on the first seed");
    // A server started after the seed brings the demo instances up (as `make demo` does).
    let server = app.spawn_replica(|_| {}).await;
    let started = std::time::Instant::now();
    let answer = loop {
        let res = server
            .post_as(
                &call.api_key,
                "/v1/chat/completions",
                json!({"model": call.model, "messages": [{"role": "user", "content": "Hello"}]}),
            )
            .await;
        if res.status() == 200 {
            break res.json::<Value>().await.unwrap();
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "the demo model never answered: {}",
            res.text().await.unwrap()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(
        answer["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .contains("You said: \"Hello\""),
        "{answer}"
    );
    // A second seed creates nothing, and so prints no key.
    let again = inventiv_service::demo::seed(&app.deps).await.unwrap();
    assert!(!again.created && again.try_it.is_none());
}
