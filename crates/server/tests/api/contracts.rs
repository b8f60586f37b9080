//! Shares as two-party contracts (SPEC §4.4 v2, issue 15): the consumer accepts a contract
//! version, each side pauses with its own flag, either side revokes, both audit chains record
//! it without the other org's people, and proposals expire.

use crate::helpers::{TestApp, TestDatabase, assert_error, json_with_status};
use crate::instances::Team;
use crate::proxy::{Market, chat, market};
use inventiv_domain::{OrgId, ShareParty, ShareStatus};
use inventiv_persistence::repo::audit::{self, AuditRecord};
use inventiv_persistence::repo::shares as share_repo;
use inventiv_persistence::{Db, DbOptions};
use inventiv_service::Clock;
use reqwest::Method;
use serde_json::{Value, json};
use time::Duration;

async fn ok(res: reqwest::Response) -> Value {
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    assert!((200..300).contains(&status), "{status}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

fn share_path(id: &str) -> String {
    format!("/organizations/current/shares/{id}")
}

async fn post(app: &TestApp, token: &str, path: &str, body: Value) -> reqwest::Response {
    app.post_as(token, path, body).await
}

async fn patch(app: &TestApp, token: &str, path: &str, body: Value) -> reqwest::Response {
    app.as_bearer(Method::PATCH, path, token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// The share `id` as the org of `token` lists it on `side`.
async fn listed(app: &TestApp, token: &str, side: &str, id: &str) -> Value {
    let page = json_with_status(
        app.get_as(
            token,
            &format!("/organizations/current/shares?side={side}&limit=200"),
        )
        .await,
        200,
    )
    .await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("share {id} not listed on the {side} side: {page}"))
}

/// A new offering of the market's provider (published, both approvals) and a proposal of it to
/// the consumer; returns (offering id, share id).
async fn propose_new(m: &Market, code: &str, extra: Value) -> (String, String) {
    let (app, p) = (&m.app, &m.provider);
    let offering = ok(post(
        app,
        &p.admin,
        "/organizations/current/offerings",
        json!({"model_id": public_model_id(m).await, "code": code, "name": code}),
    )
    .await)
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/organizations/current/offerings/{offering}");
    ok(patch(app, &p.admin, &path, json!({"is_active": true})).await).await;
    for (token, flag) in [(&p.admin, "tech"), (&p.manager, "eco")] {
        ok(post(
            app,
            token,
            &format!("{path}/activation"),
            json!({"flag": flag, "active": true}),
        )
        .await)
        .await;
    }
    let mut body = json!({"offering_id": offering, "consumer_organization_slug": "cons",
                          "price_input_micros_per_1k": 10, "price_output_micros_per_1k": 20});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let share = json_with_status(
        post(app, &p.admin, "/organizations/current/shares", body).await,
        201,
    )
    .await;
    assert_eq!(share["status"], "proposed", "{share}");
    let id = share["id"].as_str().unwrap().to_owned();
    for (token, flag) in [(&p.admin, "tech"), (&p.manager, "eco")] {
        ok(post(
            app,
            token,
            &format!("{}/activation", share_path(&id)),
            json!({"flag": flag, "active": true}),
        )
        .await)
        .await;
    }
    (offering, id)
}

async fn public_model_id(m: &Market) -> String {
    let models = json_with_status(m.app.get_as(&m.provider.admin, "/models").await, 200).await;
    models["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["model_id"] == m.public_model.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_consumer_accepts_a_version_and_a_change_of_terms_needs_a_new_acceptance() {
    let m = market().await;
    let (app, p, c) = (&m.app, &m.provider, &m.consumer);
    let share = share_path(&m.share);
    json_with_status(chat(app, &m.key, "prov/chat").await, 200).await;

    // A proposal carries no traffic: answered as for no share at all.
    let (_, fresh) = propose_new(&m, "fresh", json!({})).await;
    assert_error(
        chat(app, &m.key, "prov/fresh").await,
        404,
        "model_not_found",
    )
    .await;
    let listed_models = json_with_status(app.get_as(&m.key, "/v1/models").await, 200).await;
    assert!(
        !listed_models.to_string().contains("prov/fresh"),
        "{listed_models}"
    );
    let proposal = listed(app, &c.user, "consumer", &fresh).await;
    assert_eq!(
        (
            proposal["operational"].clone(),
            proposal["missing_activation"].clone()
        ),
        (json!(false), json!(["consumer_acceptance"]))
    );
    // A body that is there must be valid; no body at all accepts the current version.
    let accept_fresh = format!("{}/accept", share_path(&fresh));
    for bad in [
        json!({"contract_version": "1"}),
        json!({"contract_version": 1, "x": 1}),
        json!([1]),
    ] {
        let res = post(app, &c.manager, &accept_fresh, bad.clone()).await;
        assert_eq!(res.status().as_u16(), 400, "{bad}");
    }
    assert_eq!(
        listed(app, &c.user, "consumer", &fresh).await["status"],
        "proposed"
    );
    ok(app
        .as_bearer(Method::POST, &accept_fresh, &c.manager)
        .send()
        .await
        .unwrap())
    .await;
    json_with_status(chat(app, &m.key, "prov/fresh").await, 200).await;

    // New prices: version 2, back to proposed, no traffic; the old version cannot be accepted.
    let repriced = ok(patch(
        app,
        &p.manager,
        &share,
        json!({"price_input_micros_per_1k": 7}),
    )
    .await)
    .await;
    assert_eq!(
        (
            repriced["status"].as_str(),
            repriced["contract_version"].as_i64(),
            repriced["price_input_micros_per_1k"].as_i64(),
            repriced["price_output_micros_per_1k"].as_i64()
        ),
        (Some("proposed"), Some(2), Some(7), Some(2_000))
    );
    assert_error(chat(app, &m.key, "prov/chat").await, 404, "model_not_found").await;
    assert_error(
        post(
            app,
            &c.owner,
            &format!("{share}/accept"),
            json!({"contract_version": 1}),
        )
        .await,
        409,
        "contract_changed",
    )
    .await;
    // A new end is a change of terms too.
    let end = (m.clock.now() + Duration::days(90))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let extended = ok(patch(app, &p.owner, &share, json!({"ends_at": end})).await).await;
    assert_eq!(extended["contract_version"], 3);
    assert_error(
        post(
            app,
            &c.owner,
            &format!("{share}/accept"),
            json!({"contract_version": 2}),
        )
        .await,
        409,
        "contract_changed",
    )
    .await;
    let accepted = ok(post(
        app,
        &c.owner,
        &format!("{share}/accept"),
        json!({"contract_version": 3}),
    )
    .await)
    .await;
    assert_eq!(
        (
            accepted["status"].as_str(),
            accepted["accepted_version"].as_i64()
        ),
        (Some("active"), Some(3))
    );
    // Accepted, but the price change cleared the provider's economic approval.
    assert_error(
        chat(app, &m.key, "prov/chat").await,
        403,
        "model_not_operational",
    )
    .await;
    ok(post(
        app,
        &p.manager,
        &format!("{share}/activation"),
        json!({"flag": "eco", "active": true}),
    )
    .await)
    .await;
    json_with_status(chat(app, &m.key, "prov/chat").await, 200).await;
    // Accepting an active share again is a state error.
    assert_error(
        post(app, &c.owner, &format!("{share}/accept"), json!({})).await,
        409,
        "invalid_state",
    )
    .await;
    // The same terms again are no new version.
    let same = ok(patch(
        app,
        &p.manager,
        &share,
        json!({"price_input_micros_per_1k": 7}),
    )
    .await)
    .await;
    assert_eq!(
        (same["status"].as_str(), same["contract_version"].as_i64()),
        (Some("active"), Some(3))
    );

    // Decline is terminal.
    ok(patch(
        app,
        &p.manager,
        &share,
        json!({"price_output_micros_per_1k": 1}),
    )
    .await)
    .await;
    let declined = ok(post(app, &c.manager, &format!("{share}/decline"), json!({})).await).await;
    assert_eq!(declined["status"], "declined");
    for (token, action) in [
        (&c.owner, "accept"),
        (&c.owner, "decline"),
        (&c.owner, "pause"),
        (&p.admin, "revoke"),
    ] {
        assert_error(
            post(app, token, &format!("{share}/{action}"), json!({})).await,
            409,
            "invalid_state",
        )
        .await;
    }
    assert_error(
        patch(
            app,
            &p.manager,
            &share,
            json!({"price_input_micros_per_1k": 1}),
        )
        .await,
        409,
        "invalid_state",
    )
    .await;
    assert_error(chat(app, &m.key, "prov/chat").await, 404, "model_not_found").await;
    // A declined share is not live: the offering can be proposed again.
    let again = json!({"offering_id": m.offering, "consumer_organization_slug": "cons", "price_input_micros_per_1k": 1, "price_output_micros_per_1k": 1});
    json_with_status(
        post(app, &p.admin, "/organizations/current/shares", again).await,
        201,
    )
    .await;
    app.assert_audit_verifies().await;
}

#[tokio::test]
async fn each_side_pauses_and_resumes_only_its_own_flag() {
    let m = market().await;
    let (app, p, c) = (&m.app, &m.provider, &m.consumer);
    let share = share_path(&m.share);
    let paused = ok(post(app, &c.manager, &format!("{share}/pause"), json!({})).await).await;
    assert_eq!(
        (
            paused["consumer_paused"].clone(),
            paused["provider_paused"].clone(),
            paused["status"].clone()
        ),
        (json!(true), json!(false), json!("active"))
    );
    assert_error(chat(app, &m.key, "prov/chat").await, 404, "model_not_found").await;
    // The provider cannot lift the consumer's pause.
    assert_error(
        post(app, &p.admin, &format!("{share}/resume"), json!({})).await,
        409,
        "invalid_state",
    )
    .await;
    ok(post(app, &p.admin, &format!("{share}/pause"), json!({})).await).await;
    assert_error(
        post(app, &p.owner, &format!("{share}/pause"), json!({})).await,
        409,
        "invalid_state",
    )
    .await;
    // Nor the consumer the provider's.
    let consumer_resumed =
        ok(post(app, &c.admin, &format!("{share}/resume"), json!({})).await).await;
    assert_eq!(
        (
            consumer_resumed["consumer_paused"].clone(),
            consumer_resumed["provider_paused"].clone()
        ),
        (json!(false), json!(true))
    );
    assert_error(
        post(app, &c.admin, &format!("{share}/resume"), json!({})).await,
        409,
        "invalid_state",
    )
    .await;
    assert_error(chat(app, &m.key, "prov/chat").await, 404, "model_not_found").await;
    // Pauses survive a new contract version.
    ok(patch(
        app,
        &p.owner,
        &share,
        json!({"price_input_micros_per_1k": 3}),
    )
    .await)
    .await;
    let reaccepted = ok(post(
        app,
        &c.owner,
        &format!("{share}/accept"),
        json!({"contract_version": 2}),
    )
    .await)
    .await;
    assert_eq!(
        (
            reaccepted["status"].clone(),
            reaccepted["provider_paused"].clone()
        ),
        (json!("active"), json!(true))
    );
    ok(post(
        app,
        &p.owner,
        &format!("{share}/activation"),
        json!({"flag": "eco", "active": true}),
    )
    .await)
    .await;
    assert_error(chat(app, &m.key, "prov/chat").await, 404, "model_not_found").await;
    let resumed = ok(post(app, &p.admin, &format!("{share}/resume"), json!({})).await).await;
    assert_eq!(resumed["operational"], true);
    json_with_status(chat(app, &m.key, "prov/chat").await, 200).await;
}

#[tokio::test]
async fn either_side_revokes_for_good() {
    let m = market().await;
    let (app, p, c) = (&m.app, &m.provider, &m.consumer);
    let share = share_path(&m.share);
    let revoked = ok(post(app, &c.admin, &format!("{share}/revoke"), json!({})).await).await;
    assert_eq!(revoked["status"], "revoked");
    assert_error(chat(app, &m.key, "prov/chat").await, 404, "model_not_found").await;
    for (token, actions) in [
        (&p.admin, &["resume", "pause", "revoke"][..]),
        (
            &c.owner,
            &["resume", "pause", "revoke", "accept", "decline"][..],
        ),
    ] {
        for action in actions {
            assert_error(
                post(app, token, &format!("{share}/{action}"), json!({})).await,
                409,
                "invalid_state",
            )
            .await;
        }
    }
    // The provider revokes a live one too (here: still proposed).
    let again = json!({"offering_id": m.offering, "consumer_organization_slug": "cons", "price_input_micros_per_1k": 1, "price_output_micros_per_1k": 1});
    let second = json_with_status(
        post(app, &p.admin, "/organizations/current/shares", again).await,
        201,
    )
    .await;
    let second = share_path(second["id"].as_str().unwrap());
    let gone = ok(post(app, &p.owner, &format!("{second}/revoke"), json!({})).await).await;
    assert_eq!(gone["status"], "revoked");
    assert_error(
        post(app, &c.owner, &format!("{second}/accept"), json!({})).await,
        409,
        "invalid_state",
    )
    .await;
}

#[tokio::test]
async fn every_share_route_checks_the_role_of_its_side() {
    let m = market().await;
    let (app, p, c) = (&m.app, &m.provider, &m.consumer);
    let share = share_path(&m.share);
    let reprice = |v: i64| json!({"price_input_micros_per_1k": v});
    // Accept and decline: consumer owner/manager.
    ok(patch(app, &p.manager, &share, reprice(11)).await).await;
    for token in [&c.admin, &c.user] {
        for action in ["accept", "decline"] {
            assert_error(
                post(app, token, &format!("{share}/{action}"), json!({})).await,
                403,
                "forbidden",
            )
            .await;
        }
    }
    for token in [&p.owner, &p.admin, &p.manager] {
        assert_error(
            post(app, token, &format!("{share}/accept"), json!({})).await,
            403,
            "consumer_only",
        )
        .await;
        assert_error(
            post(app, token, &format!("{share}/decline"), json!({})).await,
            403,
            "consumer_only",
        )
        .await;
    }
    ok(post(app, &c.manager, &format!("{share}/accept"), json!({})).await).await;
    ok(patch(app, &p.owner, &share, reprice(12)).await).await;
    ok(post(app, &c.owner, &format!("{share}/accept"), json!({})).await).await;
    // Provider prices: owner/manager (admin and user refused).
    for token in [&p.admin, &p.user] {
        assert_error(
            patch(app, token, &share, reprice(13)).await,
            403,
            "forbidden",
        )
        .await;
    }
    // Pause/resume/revoke, consumer side: owner/admin/manager; provider side: owner/admin.
    for (token, role) in [
        (&c.user, "consumer user"),
        (&p.user, "provider user"),
        (&p.manager, "provider manager"),
    ] {
        for action in ["pause", "resume", "revoke"] {
            let res = post(app, token, &format!("{share}/{action}"), json!({})).await;
            assert_eq!(res.status().as_u16(), 403, "{role} {action}");
        }
    }
    for token in [&c.owner, &c.admin, &c.manager] {
        ok(post(app, token, &format!("{share}/pause"), json!({})).await).await;
        ok(post(app, token, &format!("{share}/resume"), json!({})).await).await;
    }
    for token in [&p.owner, &p.admin] {
        ok(post(app, token, &format!("{share}/pause"), json!({})).await).await;
        ok(post(app, token, &format!("{share}/resume"), json!({})).await).await;
    }
    // The cap: consumer owner/manager; each side only its own fields.
    for token in [&c.admin, &c.user] {
        assert_error(
            patch(app, token, &share, json!({"monthly_cap_micros": 5})).await,
            403,
            "forbidden",
        )
        .await;
    }
    assert_error(
        patch(app, &p.owner, &share, json!({"monthly_cap_micros": 5})).await,
        403,
        "consumer_only",
    )
    .await;
    assert_error(
        patch(app, &c.owner, &share, reprice(1)).await,
        403,
        "provider_only",
    )
    .await;
    for bad in [
        json!({"monthly_cap_micros": -1}),
        json!({"monthly_cap_micros": 1_000_000_000_000_000_001_i64}),
        json!({"monthly_cap_micros": "x"}),
        json!({}),
    ] {
        let res = patch(app, &c.owner, &share, bad.clone()).await;
        assert_eq!(res.status().as_u16(), 400, "{bad}");
    }
    let capped = ok(patch(
        app,
        &c.manager,
        &share,
        json!({"monthly_cap_micros": 5_000}),
    )
    .await)
    .await;
    assert_eq!(capped["monthly_cap_micros"], 5_000);
    assert_eq!(capped["status"], "active", "a cap is not a change of terms");
    // Only the consumer sees its cap: the provider's view has no such field at all.
    let provider_view = listed(app, &p.user, "provider", &m.share).await;
    assert!(
        provider_view.get("monthly_cap_micros").is_none(),
        "{provider_view}"
    );
    assert_eq!(
        listed(app, &c.user, "consumer", &m.share).await["monthly_cap_micros"],
        5_000
    );
    let uncapped =
        ok(patch(app, &c.owner, &share, json!({"monthly_cap_micros": null})).await).await;
    assert_eq!(uncapped["monthly_cap_micros"], Value::Null);
    // Prices above the bound are refused everywhere.
    assert_error(
        patch(app, &p.owner, &share, reprice(10_000_001)).await,
        400,
        "validation_failed",
    )
    .await;

    // Offerings: default prices on create; delete by owner/admin, refused while a share lives.
    let model = public_model_id(&m).await;
    let priced = json_with_status(
        post(app, &p.admin, "/organizations/current/offerings", json!({"model_id": model, "code": "priced", "name": "Priced", "default_price_input_micros_per_1k": 4, "default_price_output_micros_per_1k": 6})).await,
        201,
    )
    .await;
    assert_eq!(
        (
            priced["default_price_input_micros_per_1k"].as_i64(),
            priced["default_price_output_micros_per_1k"].as_i64()
        ),
        (Some(4), Some(6))
    );
    assert_error(
        post(app, &p.admin, "/organizations/current/offerings", json!({"model_id": model, "code": "dear", "name": "Dear", "default_price_input_micros_per_1k": 10_000_001})).await,
        400,
        "validation_failed",
    )
    .await;
    let offering = format!("/organizations/current/offerings/{}", m.offering);
    for token in [&p.manager, &p.user] {
        assert_error(app.delete_as(token, &offering).await, 403, "forbidden").await;
    }
    assert_error(app.delete_as(&c.owner, &offering).await, 404, "not_found").await;
    assert_error(
        app.delete_as(&p.admin, &offering).await,
        409,
        "offering_in_use",
    )
    .await;
    ok(post(app, &c.owner, &format!("{share}/revoke"), json!({})).await).await;
    let res = app.delete_as(&p.admin, &offering).await;
    assert_eq!(res.status().as_u16(), 204);
    let priced_path = format!(
        "/organizations/current/offerings/{}",
        priced["id"].as_str().unwrap()
    );
    assert_eq!(
        app.delete_as(&p.owner, &priced_path)
            .await
            .status()
            .as_u16(),
        204
    );
    assert_error(app.delete_as(&p.owner, &offering).await, 404, "not_found").await;
    assert_error(chat(app, &m.key, "prov/chat").await, 404, "model_not_found").await;
    app.assert_audit_verifies().await;
}

#[tokio::test]
async fn a_third_org_gets_404_on_every_share_route() {
    let m = market().await;
    let third = Team::new(&m.app, "third").await;
    let share = share_path(&m.share);
    for token in [&third.owner, &third.admin, &third.manager] {
        for action in ["accept", "decline", "pause", "resume", "revoke"] {
            assert_error(
                post(&m.app, token, &format!("{share}/{action}"), json!({})).await,
                404,
                "not_found",
            )
            .await;
        }
        assert_error(
            post(
                &m.app,
                token,
                &format!("{share}/activation"),
                json!({"flag": "tech", "active": false}),
            )
            .await,
            404,
            "not_found",
        )
        .await;
        for body in [
            json!({"monthly_cap_micros": 1}),
            json!({"price_input_micros_per_1k": 1}),
        ] {
            assert_error(patch(&m.app, token, &share, body).await, 404, "not_found").await;
        }
        assert_error(
            m.app
                .delete_as(
                    token,
                    &format!("/organizations/current/offerings/{}", m.offering),
                )
                .await,
            404,
            "not_found",
        )
        .await;
        for side in ["provider", "consumer"] {
            let page = json_with_status(
                m.app
                    .get_as(token, &format!("/organizations/current/shares?side={side}"))
                    .await,
                200,
            )
            .await;
            assert_eq!(page["items"], json!([]));
        }
    }
    // Nothing changed.
    json_with_status(chat(&m.app, &m.key, "prov/chat").await, 200).await;
}

async fn chain(app: &TestApp, org: OrgId) -> Vec<AuditRecord> {
    audit::list(&app.db, org, Default::default(), 10_000)
        .await
        .unwrap()
}

#[tokio::test]
async fn both_chains_record_the_contract_and_name_only_the_other_org() {
    let m = market().await;
    let (app, p, c) = (&m.app, &m.provider, &m.consumer);
    let share = share_path(&m.share);
    ok(post(app, &c.manager, &format!("{share}/pause"), json!({})).await).await;
    ok(post(app, &c.manager, &format!("{share}/resume"), json!({})).await).await;
    ok(patch(
        app,
        &c.owner,
        &share,
        json!({"monthly_cap_micros": 123_456}),
    )
    .await)
    .await;
    ok(patch(
        app,
        &p.manager,
        &share,
        json!({"price_input_micros_per_1k": 9}),
    )
    .await)
    .await;
    ok(post(app, &c.owner, &format!("{share}/accept"), json!({})).await).await;
    ok(post(app, &p.admin, &format!("{share}/pause"), json!({})).await).await;
    ok(post(app, &p.admin, &format!("{share}/resume"), json!({})).await).await;
    ok(post(app, &c.admin, &format!("{share}/revoke"), json!({})).await).await;
    let (_, declined) = propose_new(&m, "other", json!({})).await;
    ok(post(
        app,
        &c.owner,
        &format!("{}/decline", share_path(&declined)),
        json!({}),
    )
    .await)
    .await;

    let expected = [
        "share.proposed",
        "share.accepted",
        "share.paused",
        "share.resumed",
        "share.cap_changed",
        "share.price_changed",
        "share.revoked",
        "share.declined",
    ];
    for (me, them) in [(p, c), (c, p)] {
        let events: Vec<AuditRecord> = chain(app, me.org)
            .await
            .into_iter()
            .filter(|e| e.action.starts_with("share.") && e.action != "share.activation_changed")
            .collect();
        for action in expected {
            assert!(
                events.iter().any(|e| e.action == action),
                "{action} missing from {:?}",
                me.org
            );
        }
        let their_ids: Vec<String> = them.user_ids.iter().map(|u| u.to_string()).collect();
        for e in &events {
            let by = &e.after.as_ref().unwrap()["by_organization"];
            let theirs = by["id"] == them.org.to_string();
            if theirs {
                // The other org acted: only the org, never its people or their address.
                assert_eq!(
                    (e.actor_user_id, e.actor_session_id, e.ip.as_deref()),
                    (None, None, None),
                    "{e:?}"
                );
                assert!(by["slug"].is_string());
            } else {
                assert_eq!(by["id"], me.org.to_string(), "{e:?}");
                assert!(e.actor_user_id.is_some() && e.ip.is_some(), "{e:?}");
            }
            let text = serde_json::to_string(&e.after).unwrap();
            for id in &their_ids {
                assert!(!text.contains(id.as_str()), "{e:?}");
                assert_ne!(
                    e.actor_user_id.map(|u| u.to_string()).as_deref(),
                    Some(id.as_str())
                );
            }
        }
        // Each side saw the other's acts.
        assert!(events.iter().any(|e| e.after.as_ref().unwrap()["by_organization"]["id"] == them.org.to_string()));
    }
    // The provider's chain says the cap changed, never its amount.
    let provider_cap: Vec<AuditRecord> = chain(app, p.org)
        .await
        .into_iter()
        .filter(|e| e.action == "share.cap_changed")
        .collect();
    assert_eq!(provider_cap.len(), 1);
    assert!(
        !serde_json::to_string(&provider_cap[0].after)
            .unwrap()
            .contains("123456")
    );
    let consumer_cap: Vec<AuditRecord> = chain(app, c.org)
        .await
        .into_iter()
        .filter(|e| e.action == "share.cap_changed")
        .collect();
    assert_eq!(
        consumer_cap[0].after.as_ref().unwrap()["monthly_cap_micros"],
        123_456
    );
    app.assert_audit_verifies().await;
}

/// Many accept/reprice pairs at once, on distinct shares: whatever the interleaving, a share
/// is never active at a version the consumer did not accept.
#[tokio::test]
async fn an_acceptance_racing_a_change_of_terms_never_activates_unaccepted_terms() {
    let m = market().await;
    let (app, p, c) = (&m.app, &m.provider, &m.consumer);
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(propose_new(&m, &format!("race-{i}"), json!({})).await.1);
    }
    let mut accepted_wins = 0;
    for round in 1..=5_i64 {
        let mut tasks = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let path = share_path(id);
            let (owner, manager) = (c.owner.clone(), p.manager.clone());
            tasks.push(async move {
                let accept_path = format!("{path}/accept");
                let body = json!({"price_input_micros_per_1k": 100 * round + i as i64});
                let (a, r) = tokio::join!(
                    post(
                        app,
                        &owner,
                        &accept_path,
                        json!({"contract_version": round})
                    ),
                    patch(app, &manager, &path, body)
                );
                (
                    a.status().as_u16(),
                    a.text().await.unwrap(),
                    r.status().as_u16(),
                )
            });
        }
        for (id, (accept_status, accept_body, reprice_status)) in
            ids.iter().zip(futures_util::future::join_all(tasks).await)
        {
            assert_eq!(reprice_status, 200, "round {round}");
            match accept_status {
                200 => accepted_wins += 1,
                409 => assert!(
                    accept_body.contains("contract_changed")
                        || accept_body.contains("invalid_state"),
                    "{accept_body}"
                ),
                other => panic!("accept answered {other}: {accept_body}"),
            }
            // Whatever came first, the new terms are pending: proposed at the next version.
            let now = listed(app, &c.owner, "consumer", id).await;
            assert_eq!(
                (now["status"].as_str(), now["contract_version"].as_i64()),
                (Some("proposed"), Some(round + 1)),
                "{now}"
            );
            if accept_status == 200 {
                assert_eq!(now["accepted_version"].as_i64(), Some(round));
            }
        }
    }
    // The stored rows agree (the database refuses an active row at an unaccepted version too).
    let active_unaccepted = app
        .db
        .query_i64("SELECT COUNT(*) FROM organization_model_shares WHERE status = 'active' AND (accepted_version IS NULL OR accepted_version <> contract_version)")
        .await
        .unwrap();
    assert_eq!(active_unaccepted, 0);
    eprintln!("acceptances that won the race: {accepted_wins} of 30");
    app.assert_audit_verifies().await;
}

#[tokio::test]
async fn unanswered_proposals_and_ended_shares_expire_and_stay_expired() {
    let m = market().await;
    let (app, p, c) = (&m.app, &m.provider, &m.consumer);
    let (offering, waiting) = propose_new(&m, "waiting", json!({})).await;
    let end = (m.clock.now() + Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (_, ending) = propose_new(&m, "ending", json!({"ends_at": end})).await;
    ok(post(
        app,
        &c.owner,
        &format!("{}/accept", share_path(&ending)),
        json!({}),
    )
    .await)
    .await;
    json_with_status(chat(app, &m.key, "prov/ending").await, 200).await;

    m.clock.advance(Duration::hours(2));
    assert_error(
        chat(app, &m.key, "prov/ending").await,
        404,
        "model_not_found",
    )
    .await;
    assert_eq!(
        listed(app, &c.user, "consumer", &ending).await["status"],
        "expired"
    );
    m.clock.advance(Duration::days(30));
    assert_eq!(
        listed(app, &p.user, "provider", &waiting).await["status"],
        "expired"
    );
    // Stored, not derived on read.
    for id in [&waiting, &ending] {
        let row = share_repo::find(
            &app.db,
            p.org,
            ShareParty::Provider,
            inventiv_domain::ShareId::from_uuid(id.parse().unwrap()),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(row.state.status, ShareStatus::Expired);
    }
    // A later end does not revive them, nor can they be accepted.
    let later = (m.clock.now() + Duration::days(365))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    for id in [&waiting, &ending] {
        assert_error(
            patch(app, &p.owner, &share_path(id), json!({"ends_at": later})).await,
            409,
            "invalid_state",
        )
        .await;
        assert_error(
            post(
                app,
                &c.owner,
                &format!("{}/accept", share_path(id)),
                json!({}),
            )
            .await,
            409,
            "invalid_state",
        )
        .await;
    }
    assert_eq!(
        listed(app, &c.user, "consumer", &ending).await["status"],
        "expired"
    );
    // Both chains record the expiry, by the system.
    for org in [p.org, c.org] {
        let expired: Vec<AuditRecord> = chain(app, org)
            .await
            .into_iter()
            .filter(|e| e.action == "share.expired")
            .collect();
        assert_eq!(expired.len(), 2, "{org:?}");
        assert!(
            expired
                .iter()
                .all(|e| e.actor_user_id.is_none() && e.ip.is_none())
        );
    }
    // An expired proposal does not block a new one.
    let again = json!({"offering_id": offering, "consumer_organization_slug": "cons", "price_input_micros_per_1k": 1, "price_output_micros_per_1k": 1});
    json_with_status(
        post(app, &p.admin, "/organizations/current/shares", again).await,
        201,
    )
    .await;
    app.assert_audit_verifies().await;
}

/// A database as the v1 release left it (migrations up to usage-by-id) with shares in every v1
/// status, usage rows naming them and a table whose foreign key points at the shares; then the
/// v2 migration.
#[tokio::test]
async fn v1_shares_become_proposals_and_nothing_that_names_them_is_lost() {
    let database = TestDatabase::create().await;
    let db = Db::connect(&database.url(), &DbOptions::default())
        .await
        .unwrap();
    db.migrate_steps(14).await.unwrap();
    let pg = database.is_postgres();
    let id = |u: uuid::Uuid| {
        if pg {
            format!("'{u}'")
        } else {
            format!("X'{}'", u.simple())
        }
    };
    let ts = "'2026-01-01T00:00:00.000000Z'";
    let (user, prov, cons, model) = (
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
    );
    let mut sql = vec![
        format!(
            "INSERT INTO users (id, email, password_hash, is_platform_admin, created_at, updated_at) VALUES ({}, 'u@x.test', 'x', FALSE, {ts}, {ts})",
            id(user)
        ),
        format!(
            "INSERT INTO organizations (id, name, slug, require_distinct_activators, created_at, updated_at) VALUES ({}, 'Prov', 'prov', FALSE, {ts}, {ts})",
            id(prov)
        ),
        format!(
            "INSERT INTO organizations (id, name, slug, require_distinct_activators, created_at, updated_at) VALUES ({}, 'Cons', 'cons', FALSE, {ts}, {ts})",
            id(cons)
        ),
        format!(
            "INSERT INTO models (id, name, model_id, required_vram_gb, context_length, is_active, created_at, updated_at) VALUES ({}, 'M', 'meta/m', 1, 100, TRUE, {ts}, {ts})",
            id(model)
        ),
        // Another release's table whose foreign key points at the shares, cascading.
        format!(
            "CREATE TABLE share_notes (id {} NOT NULL PRIMARY KEY, share_id {} NOT NULL REFERENCES organization_model_shares (id) ON DELETE CASCADE)",
            if pg { "uuid" } else { "BLOB" },
            if pg { "uuid" } else { "BLOB" }
        ),
    ];
    // (v1 status, ends_at) → (v2 status, provider_paused)
    let cases = [
        ("active", "NULL", "proposed", false),
        ("paused", "NULL", "proposed", true),
        ("revoked", "NULL", "revoked", false),
        ("active", "'2020-01-01T00:00:00.000000Z'", "expired", false),
        ("expired", "'2020-01-01T00:00:00.000000Z'", "expired", false),
    ];
    let mut shares = Vec::new();
    for (i, (status, ends_at, _, _)) in cases.iter().enumerate() {
        let (offering, share) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        sql.push(format!(
            "INSERT INTO organization_models (id, organization_id, model_id, code, name, visibility, is_active, default_price_input_micros_per_1k, default_price_output_micros_per_1k, tech_activated_by, eco_activated_by, created_at, updated_at) \
             VALUES ({}, {}, {}, 'o{i}', 'O', 'private', TRUE, 0, 0, {u}, {u}, {ts}, {ts})",
            id(offering), id(prov), id(model), u = id(user)
        ));
        sql.push(format!(
            "INSERT INTO organization_model_shares (id, provider_organization_id, consumer_organization_id, organization_model_id, status, price_input_micros_per_1k, price_output_micros_per_1k, starts_at, ends_at, tech_activated_by, tech_activated_at, eco_activated_by, eco_activated_at, created_at, updated_at) \
             VALUES ({}, {}, {}, {}, '{status}', 5, 6, {ts}, {ends_at}, {u}, {ts}, {u}, {ts}, {ts}, {ts})",
            id(share), id(prov), id(cons), id(offering), u = id(user)
        ));
        for _ in 0..2 {
            sql.push(format!(
                "INSERT INTO inference_usage (id, request_id, occurred_at, consumer_organization_id, provider_organization_id, organization_model_id, share_id, model_id, instance_id, input_tokens, output_tokens, price_input_micros_per_1k, price_output_micros_per_1k, charged_micros, created_at) \
                 VALUES ({u}, '{r}', {ts}, {}, {}, {}, {}, {}, {}, 10, 10, 5, 6, 1, {ts})",
                id(cons), id(prov), id(offering), id(share), id(model), id(uuid::Uuid::new_v4()), u = id(uuid::Uuid::new_v4()), r = uuid::Uuid::new_v4()
            ));
        }
        sql.push(format!(
            "INSERT INTO share_notes (id, share_id) VALUES ({}, {})",
            id(uuid::Uuid::new_v4()),
            id(share)
        ));
        shares.push(share);
    }
    for statement in &sql {
        db.execute_unprepared(statement)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }

    db.migrate().await.unwrap();

    assert_eq!(
        db.query_i64("SELECT COUNT(*) FROM inference_usage")
            .await
            .unwrap(),
        10
    );
    assert_eq!(
        db.query_i64("SELECT COUNT(*) FROM share_notes")
            .await
            .unwrap(),
        5
    );
    assert_eq!(
        db.query_i64("SELECT COUNT(*) FROM organization_model_shares")
            .await
            .unwrap(),
        5
    );
    let provider = OrgId::from_uuid(prov);
    let rows = share_repo::list(&db, provider, ShareParty::Provider, None, 100)
        .await
        .unwrap();
    let now = time::OffsetDateTime::now_utc();
    for (share, (_, _, status, paused)) in shares.iter().zip(cases) {
        let row = rows.iter().find(|r| r.id.as_uuid() == *share).unwrap();
        assert_eq!(
            (
                row.state.status.as_str(),
                row.state.provider_paused,
                row.state.consumer_paused
            ),
            (status, paused, false),
            "{row:?}"
        );
        assert_eq!(
            (row.state.contract_version, row.state.accepted_version),
            (1, None)
        );
        assert_eq!(
            (
                row.price_input_micros_per_1k,
                row.price_output_micros_per_1k
            ),
            (5, 6)
        );
        assert!(row.activation.tech_by.is_some() && row.activation.eco_by.is_some());
        assert_eq!(row.monthly_cap_micros, None);
        if status == "proposed" {
            // The consumer has 30 days from the upgrade to accept.
            let deadline = row.state.proposal_expires_at.unwrap();
            assert!(
                deadline > now + Duration::days(29) && deadline < now + Duration::days(31),
                "{deadline}"
            );
        }
    }
    // The foreign key still holds (and now points at the rebuilt table): an orphan is refused.
    let orphan = format!(
        "INSERT INTO share_notes (id, share_id) VALUES ({}, {})",
        id(uuid::Uuid::new_v4()),
        id(uuid::Uuid::new_v4())
    );
    assert!(
        db.execute_unprepared(&orphan).await.is_err(),
        "foreign keys are off after the migration"
    );
    let fine = format!(
        "INSERT INTO share_notes (id, share_id) VALUES ({}, {})",
        id(uuid::Uuid::new_v4()),
        id(shares[0])
    );
    db.execute_unprepared(&fine).await.unwrap();
    // And one live share per triple: a second proposal of the first offering is refused.
    let dup = format!(
        "INSERT INTO organization_model_shares (id, provider_organization_id, consumer_organization_id, organization_model_id, status, price_input_micros_per_1k, price_output_micros_per_1k, starts_at, created_at, updated_at) \
         SELECT {}, provider_organization_id, consumer_organization_id, organization_model_id, 'proposed', 1, 1, starts_at, created_at, updated_at FROM organization_model_shares WHERE id = {}",
        id(uuid::Uuid::new_v4()),
        id(shares[0])
    );
    assert!(db.execute_unprepared(&dup).await.is_err());
    db.close().await.unwrap();
}

/// Two orgs that share with each other in both directions, writing at once: every write takes
/// both chain heads in one fixed order, so none deadlocks (PostgreSQL would abort one with a
/// deadlock error, a 500).
#[tokio::test]
async fn share_writes_in_opposite_directions_between_two_orgs_do_not_deadlock() {
    let m = market().await;
    let (app, p, c) = (&m.app, &m.provider, &m.consumer);
    let model = public_model_id(&m).await;
    let back = ok(post(
        app,
        &c.admin,
        "/organizations/current/offerings",
        json!({"model_id": model, "code": "back", "name": "Back"}),
    )
    .await)
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let reverse = json!({"offering_id": back, "consumer_organization_slug": "prov", "price_input_micros_per_1k": 1, "price_output_micros_per_1k": 1});
    let reverse = json_with_status(
        post(app, &c.admin, "/organizations/current/shares", reverse).await,
        201,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (forward, reverse) = (share_path(&m.share), share_path(&reverse));
    // Each request moves a different flag, so each must succeed whatever the order.
    let writers = [
        (&p.admin, &forward),
        (&c.admin, &forward),
        (&c.admin, &reverse),
        (&p.admin, &reverse),
    ];
    for _ in 0..10 {
        for action in ["pause", "resume"] {
            let calls = writers.iter().map(|(token, share)| {
                let path = format!("{share}/{action}");
                async move {
                    let res = post(app, token, &path, json!({})).await;
                    (res.status().as_u16(), res.text().await.unwrap())
                }
            });
            for (status, body) in futures_util::future::join_all(calls).await {
                assert_eq!(status, 200, "{action}: {body}");
            }
        }
    }
    app.assert_audit_verifies().await;
}

/// Cap changes racing on one share: each is decided and audited from the share as re-read
/// under both parties' chain heads, so each `share.cap_changed` event's previous cap is the
/// cap the event before it set.
#[tokio::test]
async fn concurrent_cap_changes_audit_each_the_cap_they_replaced() {
    let m = market().await;
    let share = share_path(&m.share);
    let changes = (1..=12).map(|cap| {
        let (app, token, share) = (&m.app, &m.consumer.owner, &share);
        async move {
            ok(patch(app, token, share, json!({"monthly_cap_micros": cap * 1000})).await).await
        }
    });
    futures_util::future::join_all(changes).await;
    let events = crate::helpers::org_events(&m.app, m.consumer.org, "share.cap_changed").await;
    assert_eq!(events.len(), 12);
    let cap = |e: &AuditRecord, field: &str| e.after.as_ref().unwrap()[field].clone();
    for pair in events.windows(2) {
        assert_eq!(
            cap(&pair[1], "previous_monthly_cap_micros"),
            cap(&pair[0], "monthly_cap_micros"),
            "{events:#?}"
        );
    }
}

/// A share granted to an org that is being deleted at that moment: the grant holds the
/// consumer org in its transaction, so it either lands first (and goes with the org) or
/// answers as for an unknown slug; never a 500 on the consumer's foreign key.
#[tokio::test]
async fn a_share_granted_to_an_org_being_deleted_never_fails_with_500() {
    let m = market().await;
    let mut consumers = Vec::new();
    for round in 0..4 {
        consumers.push(Team::new(&m.app, &format!("third-{round}")).await);
    }
    let runs = consumers.iter().enumerate().map(|(round, team)| {
        let m = &m;
        async move {
            let body = json!({"offering_id": m.offering, "consumer_organization_slug": format!("third-{round}"), "price_input_micros_per_1k": 1, "price_output_micros_per_1k": 1});
            let grant = post(&m.app, &m.provider.owner, "/organizations/current/shares", body);
            let delete = m.app.delete_as(&team.owner, "/organizations/current");
            let (granted, deleted) = futures_util::future::join(grant, delete).await;
            let granted = (granted.status().as_u16(), granted.text().await.unwrap());
            (granted, deleted.status().as_u16())
        }
    });
    for (granted, deleted) in futures_util::future::join_all(runs).await {
        assert_eq!(deleted, 204, "{granted:?}");
        match granted.0 {
            201 => {}
            400 => assert!(
                granted.1.contains("consumer_organization_slug"),
                "{granted:?}"
            ),
            _ => panic!("{granted:?}"),
        }
    }
}
