//! The marketplace and access requests (SPEC §4.7 v2, issue 19 item 2): other orgs' public
//! published offerings are listed; a consumer's owner/manager asks for access; the provider's
//! owner/admin approves (a share is proposed at the offering's default prices, then approved
//! and accepted like any share) or rejects (renewable after 7 days); both chains record it.

use crate::helpers::upstream::Upstream;
use crate::helpers::{TestApp, assert_error, json_with_status, spawn_app_with};
use crate::instances::{PW, Team, deploy, public_model, wait_for_status};
use crate::proxy::chat;
use inventiv_domain::{AccessRequestId, OfferingId, OrgId};
use inventiv_persistence::repo::access_requests::{self, NewAccessRequest};
use inventiv_persistence::repo::audit::{self, AuditRecord};
use inventiv_persistence::{Constraint, StoreError};
use inventiv_service::{Clock, ManualClock};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

/// The priced offering's default prices, micro-EUR per 1k tokens.
const PRICE_IN: i64 = 1_000;
const PRICE_OUT: i64 = 2_000;
/// One chat call at those prices: ceil(1000·1000/1000) + ceil(500·2000/1000).
const CHAT_CHARGE: i64 = 1_000 + 1_000;

struct Bazaar {
    app: TestApp,
    upstream: Upstream,
    clock: Arc<ManualClock>,
    model: String,
    provider: Team,
    consumer: Team,
    third: Team,
    /// Provider offerings: public, published, priced, both approvals.
    chat: String,
    /// Public, published, no default prices.
    free: String,
    /// Private, published.
    private: String,
    /// Public, unpublished.
    draft: String,
    /// The consumer's own public published offering.
    own: String,
}

async fn ok(res: reqwest::Response) -> Value {
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    assert!((200..300).contains(&status), "{status}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

/// An offering of `team` (created by its admin; prices set at creation).
async fn offering(
    app: &TestApp,
    team: &Team,
    model: &str,
    code: &str,
    visibility: &str,
    prices: Option<(i64, i64)>,
    publish: bool,
) -> String {
    let mut body = json!({"model_id": model, "code": code, "name": format!("Offering {code}"),
                          "description": format!("About {code}"), "visibility": visibility});
    if let Some((input, output)) = prices {
        body["default_price_input_micros_per_1k"] = json!(input);
        body["default_price_output_micros_per_1k"] = json!(output);
    }
    let id = id_of(
        &ok(app
            .post_as(&team.admin, "/organizations/current/offerings", body)
            .await)
        .await,
    );
    let path = format!("/organizations/current/offerings/{id}");
    if publish {
        ok(app
            .as_bearer(Method::PATCH, &path, &team.admin)
            .json(&json!({"is_active": true}))
            .send()
            .await
            .unwrap())
        .await;
    }
    for (token, flag) in [(&team.admin, "tech"), (&team.manager, "eco")] {
        ok(app
            .post_as(
                token,
                &format!("{path}/activation"),
                json!({"flag": flag, "active": true}),
            )
            .await)
        .await;
    }
    id
}

async fn bazaar() -> Bazaar {
    let upstream = Upstream::start().await;
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let url = upstream.url.clone();
    let settings = move |s: &mut inventiv_server::Settings| {
        s.providers.mock.endpoint_url = url;
        s.proxy.upstream_timeout_secs = 1;
        // The tests move the clock past the 7-day renewal delay.
        s.auth.access_token_ttl_seconds = 90 * 86_400;
        s.auth.session_idle_seconds = 90 * 86_400;
        s.auth.session_absolute_seconds = 90 * 86_400;
    };
    let app = spawn_app_with(settings, clock.clone()).await;
    let model = public_model(&app, "meta/llama-3").await;
    let provider = Team::new(&app, "prov").await;
    let consumer = Team::new(&app, "cons").await;
    let third = Team::new(&app, "third").await;
    let priced = Some((PRICE_IN, PRICE_OUT));
    let chat = offering(&app, &provider, &model, "chat", "public", priced, true).await;
    let free = offering(&app, &provider, &model, "free", "public", None, true).await;
    let private = offering(&app, &provider, &model, "secret", "private", priced, true).await;
    let draft = offering(&app, &provider, &model, "draft", "public", priced, false).await;
    let own = offering(&app, &consumer, &model, "mine", "public", priced, true).await;
    Bazaar {
        app,
        upstream,
        clock,
        model,
        provider,
        consumer,
        third,
        chat,
        free,
        private,
        draft,
        own,
    }
}

fn request_path(offering: &str) -> String {
    format!("/marketplace/offerings/{offering}/access-requests")
}

fn decide_path(id: &str, decision: &str) -> String {
    format!("/organizations/current/access-requests/{id}/{decision}")
}

/// Sends an access request for `offering` as `token`.
async fn request(app: &TestApp, token: &str, offering: &str, body: Value) -> reqwest::Response {
    app.post_as(token, &request_path(offering), body).await
}

/// A pending request of the consumer (its manager) for `offering`; returns its id.
async fn pending(b: &Bazaar, offering: &str) -> String {
    let created = json_with_status(
        request(
            &b.app,
            &b.consumer.manager,
            offering,
            json!({"message": "Please"}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(created["status"], "pending", "{created}");
    id_of(&created)
}

async fn listed(app: &TestApp, token: &str, path: &str) -> Vec<Value> {
    json_with_status(app.get_as(token, path).await, 200).await["items"]
        .as_array()
        .unwrap()
        .clone()
}

fn ids(items: &[Value]) -> Vec<String> {
    items.iter().map(id_of).collect()
}

#[tokio::test]
async fn the_marketplace_lists_only_other_orgs_published_public_offerings() {
    let b = bazaar().await;
    let app = &b.app;
    // Every member of the consumer sees the provider's public published offerings only.
    for token in [
        &b.consumer.owner,
        &b.consumer.admin,
        &b.consumer.manager,
        &b.consumer.user,
    ] {
        let items = listed(app, token, "/marketplace/offerings").await;
        assert_eq!(ids(&items), [b.chat.clone(), b.free.clone()]);
    }
    let items = listed(app, &b.consumer.user, "/marketplace/offerings").await;
    let chat = &items[0];
    assert_eq!(chat["address"], "prov/chat");
    assert_eq!(chat["name"], "Offering chat");
    assert_eq!(chat["description"], "About chat");
    assert_eq!(chat["provider"]["slug"], "prov");
    assert!(!chat["provider"]["name"].as_str().unwrap().is_empty());
    assert_eq!(chat["default_price_input_micros_per_1k"], PRICE_IN);
    assert_eq!(chat["default_price_output_micros_per_1k"], PRICE_OUT);
    assert_eq!(chat["operational"], true);
    // Nothing of the provider's internals (model ids, approvals, who set them).
    assert!(chat.get("model_id").is_none() && chat.get("can_set").is_none());
    // The provider sees the consumer's public offering, not its own.
    let items = listed(app, &b.provider.user, "/marketplace/offerings").await;
    assert_eq!(ids(&items), std::slice::from_ref(&b.own));
    // Paged like every list.
    let first = json_with_status(
        app.get_as(&b.third.owner, "/marketplace/offerings?limit=2")
            .await,
        200,
    )
    .await;
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = json_with_status(
        app.get_as(
            &b.third.owner,
            &format!("/marketplace/offerings?limit=2&cursor={cursor}"),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(second["next_cursor"], Value::Null);
    let mut all = ids(first["items"].as_array().unwrap());
    all.extend(ids(second["items"].as_array().unwrap()));
    assert_eq!(all, [b.chat.clone(), b.free.clone(), b.own.clone()]);
    // Unpublishing or making it private takes it out.
    ok(app
        .as_bearer(
            Method::PATCH,
            &format!("/organizations/current/offerings/{}", b.free),
            &b.provider.admin,
        )
        .json(&json!({"visibility": "private"}))
        .send()
        .await
        .unwrap())
    .await;
    let items = listed(app, &b.consumer.user, "/marketplace/offerings").await;
    assert_eq!(ids(&items), std::slice::from_ref(&b.chat));
    // The personal workspace has no org to ask with.
    let personal = app
        .switch(&app.login("owner@cons.test", PW).await.token, None)
        .await;
    assert_error(
        app.get_as(&personal, "/marketplace/offerings").await,
        403,
        "organization_required",
    )
    .await;
    assert_error(app.get("/marketplace/offerings").await, 401, "unauthorized").await;
}

#[tokio::test]
async fn owners_and_managers_request_access_to_listed_offerings_only() {
    let b = bazaar().await;
    let app = &b.app;
    let c = &b.consumer;
    for token in [&c.admin, &c.user] {
        assert_error(
            request(app, token, &b.chat, json!({})).await,
            403,
            "forbidden",
        )
        .await;
    }
    let personal = app
        .switch(&app.login("manager@cons.test", PW).await.token, None)
        .await;
    assert_error(
        request(app, &personal, &b.chat, json!({})).await,
        403,
        "organization_required",
    )
    .await;
    // Not public, not published, the caller's own, or no such offering: 404 alike.
    let unknown = inventiv_domain::OfferingId::new().to_string();
    for offering in [&b.private, &b.draft, &b.own, &unknown] {
        assert_error(
            request(app, &c.owner, offering, json!({})).await,
            404,
            "not_found",
        )
        .await;
    }
    // The owner (no body at all) and the manager (with a message) may.
    let by_owner = json_with_status(
        app.as_bearer(Method::POST, &request_path(&b.chat), &c.owner)
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    assert_eq!(by_owner["status"], "pending");
    assert_eq!(by_owner["offering"]["address"], "prov/chat");
    assert_eq!(by_owner["consumer_organization"]["slug"], "cons");
    assert_eq!(by_owner["provider_organization"]["slug"], "prov");
    assert_eq!(by_owner["message"], Value::Null);
    let by_manager = json_with_status(
        request(
            app,
            &c.manager,
            &b.free,
            json!({"message": "  For our chatbot "}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(by_manager["message"], "For our chatbot");
    // One pending request per (consumer, offering).
    assert_error(
        request(app, &c.manager, &b.chat, json!({})).await,
        409,
        "access_request_pending",
    )
    .await;
    // Bad input is a clear 400.
    let long = "x".repeat(1001);
    let err = assert_error(
        request(app, &b.third.owner, &b.chat, json!({"message": long})).await,
        400,
        "validation_failed",
    )
    .await;
    assert!(err["fields"]["message"].is_string(), "{err}");
    assert_error(
        request(app, &b.third.owner, &b.chat, json!({"note": "x"})).await,
        400,
        "invalid_body",
    )
    .await;
    assert_error(
        app.post_as(
            &c.owner,
            "/marketplace/offerings/not-a-uuid/access-requests",
            json!({}),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    // Another consumer may ask for the same offering.
    json_with_status(
        request(app, &b.third.manager, &b.chat, json!({})).await,
        201,
    )
    .await;
}

#[tokio::test]
async fn requests_are_listed_by_side_and_decided_by_the_providers_owner_or_admin() {
    let b = bazaar().await;
    let app = &b.app;
    let (p, c) = (&b.provider, &b.consumer);
    let first = pending(&b, &b.chat).await;
    let second = pending(&b, &b.free).await;
    // Listing: owner/admin/manager of either side, newest first; not the user role.
    for token in [&p.owner, &p.admin, &p.manager] {
        let items = listed(app, token, "/organizations/current/access-requests").await;
        assert_eq!(ids(&items), [second.clone(), first.clone()]);
        let items = listed(
            app,
            token,
            "/organizations/current/access-requests?side=consumer",
        )
        .await;
        assert!(items.is_empty());
    }
    for token in [&c.owner, &c.admin, &c.manager] {
        let items = listed(
            app,
            token,
            "/organizations/current/access-requests?side=consumer",
        )
        .await;
        assert_eq!(ids(&items), [second.clone(), first.clone()]);
        assert_eq!(items[1]["message"], "Please");
    }
    let page = json_with_status(
        app.get_as(&p.owner, "/organizations/current/access-requests?limit=1")
            .await,
        200,
    )
    .await;
    assert_eq!(
        ids(page["items"].as_array().unwrap()),
        std::slice::from_ref(&second)
    );
    assert!(page["next_cursor"].is_string());
    for token in [&p.user, &c.user] {
        assert_error(
            app.get_as(token, "/organizations/current/access-requests")
                .await,
            403,
            "forbidden",
        )
        .await;
    }
    assert_error(
        app.get_as(&p.owner, "/organizations/current/access-requests?side=both")
            .await,
        400,
        "validation_failed",
    )
    .await;
    // Deciding: the provider's owner/admin only; the consumer is told it is not its call.
    for decision in ["approve", "reject"] {
        for token in [&p.manager, &p.user] {
            assert_error(
                app.post_as(token, &decide_path(&first, decision), json!({}))
                    .await,
                403,
                "forbidden",
            )
            .await;
        }
        for token in [&c.owner, &c.admin] {
            assert_error(
                app.post_as(token, &decide_path(&first, decision), json!({}))
                    .await,
                403,
                "provider_only",
            )
            .await;
        }
    }
    let rejected = json_with_status(
        app.post_as(&p.admin, &decide_path(&first, "reject"), json!({}))
            .await,
        200,
    )
    .await;
    assert_eq!(rejected["status"], "rejected");
    assert!(rejected["renewable_at"].is_string());
    assert!(rejected["decided_at"].is_string());
    let approved = json_with_status(
        app.post_as(&p.owner, &decide_path(&second, "approve"), json!({}))
            .await,
        409,
    )
    .await;
    // The free offering has no default prices: nothing to propose.
    assert_eq!(approved["error"], "offering_unpriced");
    // Only a pending request is decided.
    for decision in ["approve", "reject"] {
        assert_error(
            app.post_as(&p.owner, &decide_path(&first, decision), json!({}))
                .await,
            409,
            "access_request_not_pending",
        )
        .await;
    }
    // Once priced (by the owner/manager), the approval proposes a share at those prices.
    ok(app
        .as_bearer(
            Method::PATCH,
            &format!("/organizations/current/offerings/{}", b.free),
            &p.manager,
        )
        .json(&json!({"default_price_input_micros_per_1k": 7, "default_price_output_micros_per_1k": 9}))
        .send()
        .await
        .unwrap())
    .await;
    let approved = json_with_status(
        app.post_as(&p.admin, &decide_path(&second, "approve"), json!({}))
            .await,
        200,
    )
    .await;
    assert_eq!(approved["status"], "approved");
    let share = approved["share_id"].as_str().unwrap();
    let shares = listed(app, &c.user, "/organizations/current/shares?side=consumer").await;
    let proposed = shares.iter().find(|s| s["id"] == share).unwrap();
    assert_eq!(proposed["status"], "proposed");
    assert_eq!(proposed["price_input_micros_per_1k"], 7);
    assert_eq!(proposed["price_output_micros_per_1k"], 9);
    // While that share is proposed (or active), a new request is refused.
    assert_error(
        request(app, &c.owner, &b.free, json!({})).await,
        409,
        "already_shared",
    )
    .await;
    // Once the consumer declines it, it may ask again.
    ok(app
        .post_as(
            &c.owner,
            &format!("/organizations/current/shares/{share}/decline"),
            json!({}),
        )
        .await)
    .await;
    json_with_status(request(app, &c.owner, &b.free, json!({})).await, 201).await;
}

#[tokio::test]
async fn a_third_org_cannot_see_or_decide_another_orgs_request() {
    let b = bazaar().await;
    let app = &b.app;
    let id = pending(&b, &b.chat).await;
    let t = &b.third;
    for side in ["provider", "consumer"] {
        let items = listed(
            app,
            &t.owner,
            &format!("/organizations/current/access-requests?side={side}"),
        )
        .await;
        assert!(items.is_empty(), "{items:?}");
    }
    for decision in ["approve", "reject"] {
        for token in [&t.owner, &t.admin] {
            assert_error(
                app.post_as(token, &decide_path(&id, decision), json!({}))
                    .await,
                404,
                "not_found",
            )
            .await;
        }
    }
    // An unknown id is the same 404, and the request is still pending for its parties.
    let unknown = inventiv_domain::AccessRequestId::new().to_string();
    assert_error(
        app.post_as(
            &b.provider.owner,
            &decide_path(&unknown, "approve"),
            json!({}),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    let items = listed(
        app,
        &b.provider.owner,
        "/organizations/current/access-requests",
    )
    .await;
    assert_eq!(items[0]["status"], "pending");
}

#[tokio::test]
async fn an_approved_request_becomes_a_share_that_carries_metered_traffic() {
    let b = bazaar().await;
    let app = &b.app;
    let (p, c) = (&b.provider, &b.consumer);
    // The provider serves the model.
    let instance = id_of(&deploy(app, &p.admin, json!({"model_id": b.model})).await);
    wait_for_status(app, &p.admin, &instance, "ready").await;
    for (token, flag) in [(&p.admin, "tech"), (&p.manager, "eco")] {
        ok(app
            .post_as(
                token,
                &format!("/instances/{instance}/activation"),
                json!({"flag": flag, "active": true}),
            )
            .await)
        .await;
    }
    let key = c.org_key_secret(app, "consumer").await;
    // No share yet: the consumer cannot call the offering.
    assert_error(chat(app, &key, "prov/chat").await, 404, "model_not_found").await;

    let id = pending(&b, &b.chat).await;
    let approved = json_with_status(
        app.post_as(&p.owner, &decide_path(&id, "approve"), json!({}))
            .await,
        200,
    )
    .await;
    let share = approved["share_id"].as_str().unwrap().to_owned();
    let share_path = format!("/organizations/current/shares/{share}");
    let given = listed(app, &p.admin, "/organizations/current/shares").await;
    let proposed = given.iter().find(|s| s["id"] == share.as_str()).unwrap();
    assert_eq!(proposed["status"], "proposed");
    assert_eq!(proposed["price_input_micros_per_1k"], PRICE_IN);
    assert_eq!(proposed["price_output_micros_per_1k"], PRICE_OUT);
    assert_eq!(proposed["consumer_organization"]["slug"], "cons");
    // Proposed is not enough: the provider's approvals and the consumer's acceptance follow.
    assert_error(chat(app, &key, "prov/chat").await, 404, "model_not_found").await;
    for (token, flag) in [(&p.admin, "tech"), (&p.manager, "eco")] {
        ok(app
            .post_as(
                token,
                &format!("{share_path}/activation"),
                json!({"flag": flag, "active": true}),
            )
            .await)
        .await;
    }
    let accepted = ok(app
        .post_as(
            &c.manager,
            &format!("{share_path}/accept"),
            json!({"contract_version": 1}),
        )
        .await)
    .await;
    assert_eq!(accepted["status"], "active");
    assert_eq!(accepted["operational"], true, "{accepted}");
    let body = json_with_status(chat(app, &key, "prov/chat").await, 200).await;
    assert_eq!(body["choices"][0]["message"]["content"], "Hello!");
    assert_eq!(b.upstream.last_request()["model"], "meta/llama-3");
    // Metered at the default prices, charged to the consumer, credited to the provider.
    app.deps.proxy.meter.flush().await;
    let now = b.clock.now();
    let fmt = |t: OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let range = format!(
        "from={}&to={}",
        fmt(now - Duration::days(1)),
        fmt(now + Duration::days(1))
    );
    let spend = json_with_status(
        app.get_as(
            &c.owner,
            &format!("/finops/usage?{range}&side=consumer&group_by=offering"),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(spend["total"]["requests"], 1);
    assert_eq!(spend["total"]["charged_micros"], CHAT_CHARGE);
    assert_eq!(spend["groups"][0]["key"], b.chat.as_str());
    let revenue = json_with_status(
        app.get_as(
            &p.owner,
            &format!("/finops/usage?{range}&side=provider&group_by=organization"),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(revenue["total"]["charged_micros"], CHAT_CHARGE);
    assert_eq!(revenue["groups"][0]["key"], c.org.to_string());
    // The consumer's key ids are its own: the provider cannot group its revenue by them.
    let by_key = app
        .get_as(
            &p.owner,
            &format!("/finops/usage?{range}&side=provider&group_by=api_key"),
        )
        .await;
    let refused = json_with_status(by_key, 400).await;
    assert!(
        refused["message"].as_str().unwrap().contains("group_by"),
        "{refused}"
    );
    // The request is approved for both sides and points at the share.
    let sent = listed(
        app,
        &c.owner,
        "/organizations/current/access-requests?side=consumer",
    )
    .await;
    assert_eq!(sent[0]["status"], "approved");
    assert_eq!(sent[0]["share_id"], share.as_str());
    // An active share refuses a new request.
    assert_error(
        request(app, &c.owner, &b.chat, json!({})).await,
        409,
        "already_shared",
    )
    .await;
}

#[tokio::test]
async fn a_rejected_request_is_renewed_only_after_seven_days() {
    let b = bazaar().await;
    let app = &b.app;
    let id = pending(&b, &b.chat).await;
    let rejected = json_with_status(
        app.post_as(&b.provider.admin, &decide_path(&id, "reject"), json!({}))
            .await,
        200,
    )
    .await;
    let renewable_at = OffsetDateTime::parse(
        rejected["renewable_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let decided_at = OffsetDateTime::parse(
        rejected["decided_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(renewable_at - decided_at, Duration::days(7));
    let err = assert_error(
        request(app, &b.consumer.owner, &b.chat, json!({})).await,
        409,
        "access_request_rejected_recently",
    )
    .await;
    assert!(err["message"].as_str().unwrap().contains("from "), "{err}");
    b.clock.advance(Duration::days(7) - Duration::seconds(1));
    assert_error(
        request(app, &b.consumer.owner, &b.chat, json!({})).await,
        409,
        "access_request_rejected_recently",
    )
    .await;
    // Another offering of the same provider was never rejected.
    json_with_status(
        request(app, &b.consumer.owner, &b.free, json!({})).await,
        201,
    )
    .await;
    b.clock.advance(Duration::seconds(1));
    let renewed = json_with_status(
        request(app, &b.consumer.owner, &b.chat, json!({"message": "Again"})).await,
        201,
    )
    .await;
    assert_ne!(id_of(&renewed), id);
    // Both are kept: the history of the pair.
    let sent = listed(
        app,
        &b.consumer.owner,
        "/organizations/current/access-requests?side=consumer",
    )
    .await;
    let statuses: Vec<&str> = sent
        .iter()
        .filter(|r| r["offering"]["id"] == b.chat.as_str())
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["pending", "rejected"]);
}

#[tokio::test]
async fn parallel_requests_for_one_offering_make_exactly_one_pending() {
    let b = bazaar().await;
    let app = &b.app;
    let attempts = 12;
    let calls = (0..attempts).map(|i| {
        let token = if i % 2 == 0 {
            &b.consumer.owner
        } else {
            &b.consumer.manager
        };
        request(app, token, &b.chat, json!({}))
    });
    let statuses: Vec<u16> = futures_util::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.status().as_u16())
        .collect();
    let created = statuses.iter().filter(|s| **s == 201).count();
    let refused = statuses.iter().filter(|s| **s == 409).count();
    assert_eq!((created, refused), (1, attempts - 1), "{statuses:?}");
    let items = listed(
        app,
        &b.provider.owner,
        "/organizations/current/access-requests",
    )
    .await;
    assert_eq!(items.len(), 1);
    app.assert_audit_verifies().await;

    // The database itself refuses a second pending request for the pair, without the
    // service's check (the partial unique index).
    let offering: OfferingId = b.chat.parse().unwrap();
    let tx = app.db.begin_write().await.unwrap();
    let second = NewAccessRequest {
        id: AccessRequestId::new(),
        provider: b.provider.org,
        offering,
        message: None,
        requested_by: b.consumer.user_ids[0],
        now: b.clock.now(),
    };
    let err = access_requests::insert(&tx, b.consumer.org, second)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict(Constraint::AccessRequestPending)),
        "{err:?}"
    );
}

async fn chain(app: &TestApp, org: OrgId) -> Vec<AuditRecord> {
    audit::list(&app.db, org, Default::default(), 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action.starts_with("access_request."))
        .collect()
}

#[tokio::test]
async fn both_chains_record_requests_and_decisions_naming_only_the_other_org() {
    let b = bazaar().await;
    let app = &b.app;
    let (p, c) = (&b.provider, &b.consumer);
    let approved = pending(&b, &b.chat).await;
    let rejected = pending(&b, &b.free).await;
    ok(app
        .post_as(&p.owner, &decide_path(&approved, "approve"), json!({}))
        .await)
    .await;
    ok(app
        .post_as(&p.admin, &decide_path(&rejected, "reject"), json!({}))
        .await)
    .await;
    for (me, them) in [(p, c), (c, p)] {
        let events = chain(app, me.org).await;
        let actions: Vec<(&str, String)> = events
            .iter()
            .map(|e| (e.action.as_str(), e.target_id.clone().unwrap_or_default()))
            .collect();
        for expected in [
            ("access_request.created", approved.clone()),
            ("access_request.created", rejected.clone()),
            ("access_request.approved", approved.clone()),
            ("access_request.rejected", rejected.clone()),
        ] {
            assert!(
                actions
                    .iter()
                    .any(|a| a.0 == expected.0 && a.1 == expected.1),
                "{expected:?} missing from {:?}: {actions:?}",
                me.org
            );
        }
        let their_ids: Vec<String> = them.user_ids.iter().map(|u| u.to_string()).collect();
        for e in &events {
            assert_eq!(e.target_type.as_deref(), Some("access_request"));
            let after = e.after.as_ref().unwrap();
            let by = &after["by_organization"];
            if by["id"] == them.org.to_string() {
                // The other org acted: the org only, never its people or their address.
                assert_eq!(
                    (e.actor_user_id, e.actor_session_id, e.ip.as_deref()),
                    (None, None, None),
                    "{e:?}"
                );
            } else {
                assert_eq!(by["id"], me.org.to_string(), "{e:?}");
                assert!(e.actor_user_id.is_some() && e.ip.is_some(), "{e:?}");
            }
            let text = serde_json::to_string(after).unwrap();
            for id in &their_ids {
                assert!(!text.contains(id.as_str()), "{e:?}");
            }
        }
    }
    // The approval's share proposal is in both chains too, in the same transaction.
    for org in [p.org, c.org] {
        let proposed = audit::list(&app.db, org, Default::default(), 10_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.action == "share.proposed")
            .count();
        assert_eq!(proposed, 1);
    }
    app.assert_audit_verifies().await;
}

/// An offering of an org model is listed as operational only once that model has its own two
/// approvals too (SPEC §1 v2: an unapproved org model serves no traffic).
#[tokio::test]
async fn a_listing_is_operational_only_with_its_org_models_approvals() {
    let b = bazaar().await;
    let app = &b.app;
    let model = crate::instances::private_model(app, &b.third.admin, "third/tuned").await;
    let id = offering(app, &b.third, &model, "tuned", "public", Some((1, 1)), true).await;
    let find = || async {
        listed(app, &b.consumer.user, "/marketplace/offerings?limit=200")
            .await
            .into_iter()
            .find(|o| id_of(o) == id)
            .expect("listed")
    };
    assert_eq!(find().await["operational"], false);
    crate::instances::approve(
        app,
        &b.third.admin,
        &b.third.manager,
        &format!("/models/{model}"),
    )
    .await;
    assert_eq!(find().await["operational"], true);
}
