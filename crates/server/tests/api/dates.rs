//! Hostile dates (issue 16 item 4): every date a client sends, in a query or a body, outside
//! 1970..9999 in UTC is a 400 `validation_failed` naming the field — never a panic (the
//! connection closing with no answer) nor a 500 — and the dates at the very ends of the range
//! work end to end, through a write transaction.

use crate::helpers::{
    ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, assert_error, json_with_status, spawn_app,
};
use reqwest::Method;
use serde_json::{Value, json};

/// Out of range: a UTC form in year 10000, before 1970, year 1, an offset that moves 1970 back.
const BAD: &[&str] = &[
    "9999-12-31T23:59:59-23:59",
    "9999-12-31T23:00:00-01:00",
    "1969-12-31T23:59:59Z",
    "0001-01-01T00:00:00Z",
    "1970-01-01T00:30:00+01:00",
];

async fn owner(app: &TestApp) -> String {
    let session = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let orgs = json_with_status(app.get_as(&session.token, "/organizations").await, 200).await;
    let org = orgs["items"][0]["id"].as_str().unwrap().to_owned();
    app.switch_raw(&session.token, &org).await
}

impl TestApp {
    async fn switch_raw(&self, token: &str, org: &str) -> String {
        let res = self
            .put_as(
                token,
                "/organizations/current",
                json!({"organization_id": org}),
            )
            .await;
        json_with_status(res, 200).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn send_as(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut req = self
            .client
            .request(method, self.url(path))
            .bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.unwrap()
    }
}

fn encoded(date: &str) -> String {
    date.replace('+', "%2B").replace(':', "%3A")
}

#[tokio::test]
async fn dates_outside_1970_to_9999_are_a_400_naming_the_field_on_every_endpoint() {
    let app = spawn_app().await;
    let token = owner(&app).await;
    let good = "2026-01-01T00:00:00Z";
    let some_id = uuid::Uuid::now_v7();
    for bad in BAD {
        let q = encoded(bad);
        // (method, path, body, the field at fault)
        let cases: Vec<(Method, String, Option<Value>, &str)> = vec![
            (
                Method::GET,
                format!("/finops/dashboard/costs?from={q}&to={good}"),
                None,
                "from",
            ),
            (
                Method::GET,
                format!("/finops/dashboard/costs?from={good}&to={q}"),
                None,
                "to",
            ),
            (
                Method::GET,
                format!("/finops/usage?from={q}&to={good}"),
                None,
                "from",
            ),
            (
                Method::GET,
                format!("/finops/usage?from={good}&to={q}"),
                None,
                "to",
            ),
            (
                Method::GET,
                format!("/organizations/current/audit?since={q}"),
                None,
                "since",
            ),
            (
                Method::POST,
                "/api_keys".to_owned(),
                Some(json!({"name": "k", "expires_at": bad})),
                "expires_at",
            ),
            (
                Method::POST,
                "/organizations/current/shares".to_owned(),
                Some(json!({
                    "offering_id": some_id,
                    "consumer_organization_slug": "someone",
                    "price_input_micros_per_1k": 1,
                    "price_output_micros_per_1k": 1,
                    "ends_at": bad,
                })),
                "ends_at",
            ),
            (
                Method::PATCH,
                format!("/organizations/current/shares/{some_id}"),
                Some(json!({"ends_at": bad})),
                "ends_at",
            ),
        ];
        for (method, path, body, field) in cases {
            let res = app.send_as(&token, method.clone(), &path, body).await;
            let err = assert_error(res, 400, "validation_failed").await;
            assert!(
                err["fields"][field].is_string(),
                "{method} {path} with {bad}: {err}"
            );
        }
    }
    // Still answering (no worker lost to a panic).
    json_with_status(app.get_as(&token, "/auth/me").await, 200).await;
}

#[tokio::test]
async fn the_ends_of_the_range_are_accepted_and_stored_in_utc() {
    let app = spawn_app().await;
    let token = owner(&app).await;
    // 9999-12-31T23:59:59Z written in another offset: accepted, kept as the UTC instant.
    let res = app
        .post_as(
            &token,
            "/api_keys",
            json!({"name": "far", "expires_at": "10000-01-01T00:59:59+01:00"}),
        )
        .await;
    // Five-digit years are not RFC 3339: refused as a malformed body, not a panic.
    assert_error(res, 400, "invalid_body").await;
    let res = app
        .post_as(
            &token,
            "/api_keys",
            json!({"name": "far", "expires_at": "9999-12-31T23:59:59.999999Z"}),
        )
        .await;
    let key = json_with_status(res, 201).await;
    assert_eq!(
        key["key"]["expires_at"], "9999-12-31T23:59:59.999999Z",
        "{key}"
    );
    let res = app
        .post_as(
            &token,
            "/api_keys",
            json!({"name": "offset", "expires_at": "2030-06-01T12:00:00+02:00"}),
        )
        .await;
    let key = json_with_status(res, 201).await;
    assert_eq!(key["key"]["expires_at"], "2030-06-01T10:00:00Z", "{key}");
    let since = encoded("1970-01-01T00:00:00+00:00");
    let page = json_with_status(
        app.get_as(
            &token,
            &format!("/organizations/current/audit?since={since}"),
        )
        .await,
        200,
    )
    .await;
    assert!(!page["items"].as_array().unwrap().is_empty());
    // A 366-day range that ends at the last representable instant.
    let res = app
        .get_as(
            &token,
            "/finops/dashboard/costs?from=9999-01-01T00%3A00%3A00Z&to=9999-12-31T23%3A59%3A59.999999Z",
        )
        .await;
    json_with_status(res, 200).await;
    let res = app
        .get_as(
            &token,
            "/finops/usage?from=9999-01-01T00%3A00%3A00Z&to=9999-12-31T23%3A59%3A59.999999Z",
        )
        .await;
    json_with_status(res, 200).await;
}
