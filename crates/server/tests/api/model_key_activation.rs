//! Double activation on org models and org API keys (issue 19 item 1; SPEC §1, §4.3 v2): the
//! same mechanism as instances, offerings and shares. A non-operational org model serves no
//! traffic (its offerings are not operational); a non-operational org key is refused with 403
//! `api_key_not_operational` wherever a key authenticates. Public models and personal keys need
//! no approval.

use crate::helpers::{TestApp, assert_error, json_with_status, spawn_app};
use crate::instances::{PW, Team, approve, deploy, private_model, public_model, wait_for_status};
use crate::proxy::{chat, market};
use reqwest::Method;
use serde_json::{Value, json};

async fn flag(
    app: &TestApp,
    token: &str,
    path: &str,
    flag: &str,
    active: bool,
) -> reqwest::Response {
    app.post_as(
        token,
        &format!("{path}/activation"),
        json!({"flag": flag, "active": active}),
    )
    .await
}

/// A new org key (not approved) created by the team's admin: (path, secret).
async fn new_org_key(app: &TestApp, team: &Team, name: &str) -> (String, String) {
    let created = json_with_status(
        app.post_as(&team.admin, "/api_keys", json!({"name": name}))
            .await,
        201,
    )
    .await;
    assert_eq!(
        (
            created["key"]["operational"].as_bool(),
            created["key"]["missing_activation"].clone()
        ),
        (Some(false), json!(["tech", "eco"])),
        "org keys start non-operational: {created}"
    );
    (
        format!("/api_keys/{}", created["key"]["id"].as_str().unwrap()),
        created["secret"].as_str().unwrap().to_owned(),
    )
}

async fn new_org_model(app: &TestApp, team: &Team, model_id: &str) -> String {
    let id = private_model(app, &team.admin, model_id).await;
    format!("/models/{id}")
}

/// SPEC §2.3: tech by owner/admin, eco by owner/manager — on org models and org keys alike.
#[tokio::test]
async fn every_role_and_flag_pair_on_models_and_keys() {
    let app = spawn_app().await;
    let team = Team::new(&app, "acme").await;
    let model = new_org_model(&app, &team, "acme/tiny").await;
    let (key, _) = new_org_key(&app, &team, "k").await;
    let table = [
        (&team.owner, true, true),
        (&team.admin, true, false),
        (&team.manager, false, true),
        (&team.user, false, false),
    ];
    for path in [&model, &key] {
        for (token, tech, eco) in table {
            for (name, allowed) in [("tech", tech), ("eco", eco)] {
                for active in [true, false] {
                    let res = flag(&app, token, path, name, active).await;
                    if allowed {
                        let body = json_with_status(res, 200).await;
                        assert_eq!(
                            body[format!("{name}_activated_by")].is_string(),
                            active,
                            "{path}: {body}"
                        );
                        assert_eq!(
                            body["can_set"],
                            json!({"eco": ["owner", "manager"], "tech": ["owner", "admin"]})
                        );
                    } else {
                        assert_error(res, 403, "forbidden").await;
                    }
                }
            }
        }
    }
}

/// Operational only once both flags are on; each change is audited in the org's chain
/// (`model.activation_changed`, `api_key.activation_changed`) and the chain verifies.
#[tokio::test]
async fn models_and_keys_are_operational_only_once_both_flags_are_set() {
    let app = spawn_app().await;
    let team = Team::new(&app, "acme").await;
    let model = new_org_model(&app, &team, "acme/tiny").await;
    let (key, _) = new_org_key(&app, &team, "k").await;
    for (path, event) in [
        (&model, "model.activation_changed"),
        (&key, "api_key.activation_changed"),
    ] {
        let tech = json_with_status(flag(&app, &team.admin, path, "tech", true).await, 200).await;
        assert_eq!(
            (
                tech["operational"].as_bool(),
                tech["missing_activation"].clone()
            ),
            (Some(false), json!(["eco"]))
        );
        let both = json_with_status(flag(&app, &team.manager, path, "eco", true).await, 200).await;
        assert_eq!(
            (
                both["operational"].as_bool(),
                both["missing_activation"].clone()
            ),
            (Some(true), json!([]))
        );
        let admin_id = app.me(&team.admin).await["user_id"].clone();
        assert_eq!(both["tech_activated_by"], admin_id);
        // The list shows the same state.
        let list_path = if path.starts_with("/models") {
            "/models"
        } else {
            "/api_keys"
        };
        let list = json_with_status(app.get_as(&team.user, list_path).await, 200).await;
        let listed = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| path.ends_with(i["id"].as_str().unwrap()))
            .unwrap()
            .clone();
        assert_eq!(listed["operational"], true, "{listed}");
        let events = json_with_status(
            app.get_as(
                &team.owner,
                &format!("/organizations/current/audit?action={event}"),
            )
            .await,
            200,
        )
        .await;
        let items = events["items"].as_array().unwrap();
        assert_eq!(items.len(), 2, "{events}");
        assert_eq!(
            items[0]["after"],
            json!({"flag": "eco", "active": true, "operational": true})
        );
        assert_eq!(items[0]["before"], json!({"flag": "eco", "active": false}));
    }
    app.assert_audit_verifies().await;
}

/// A non-operational org key is refused with 403 `api_key_not_operational` on `/v1/*` and on
/// the read-only management routes, until both approvals; clearing one takes effect on the
/// very next request (the key-auth cache is invalidated by the key's tag). Personal keys need
/// no approval.
#[tokio::test]
async fn a_non_operational_org_key_is_refused_everywhere() {
    let m = market().await;
    let app = &m.app;
    let (path, secret) = new_org_key(app, &m.consumer, "fresh").await;
    for res in [
        chat(app, &secret, "prov/chat").await,
        app.get_as(&secret, "/v1/models").await,
        app.get_as(&secret, "/api_keys").await,
        app.get_as(&secret, "/models").await,
    ] {
        let body = assert_error(res, 403, "api_key_not_operational").await;
        let text = body.to_string();
        assert!(text.contains("tech") && text.contains("eco"), "{text}");
    }
    json_with_status(flag(app, &m.consumer.admin, &path, "tech", true).await, 200).await;
    assert_error(
        chat(app, &secret, "prov/chat").await,
        403,
        "api_key_not_operational",
    )
    .await;
    json_with_status(
        flag(app, &m.consumer.manager, &path, "eco", true).await,
        200,
    )
    .await;
    json_with_status(chat(app, &secret, "prov/chat").await, 200).await;
    json_with_status(app.get_as(&secret, "/api_keys").await, 200).await;
    // Withdrawn: refused on the next request, though the key was just cached.
    json_with_status(
        flag(app, &m.consumer.manager, &path, "eco", false).await,
        200,
    )
    .await;
    assert_error(
        chat(app, &secret, "prov/chat").await,
        403,
        "api_key_not_operational",
    )
    .await;
    // A personal key works with no approval at all, and has none to be given.
    app.create_user("pat@example.com", PW).await;
    let pat = app.login("pat@example.com", PW).await.token;
    let personal = json_with_status(
        app.post_as(&pat, "/api_keys", json!({"name": "mine"}))
            .await,
        201,
    )
    .await;
    assert_eq!(
        (
            personal["key"]["operational"].as_bool(),
            personal["key"]["missing_activation"].clone()
        ),
        (Some(true), json!([]))
    );
    let personal_secret = personal["secret"].as_str().unwrap();
    json_with_status(app.get_as(personal_secret, "/v1/models").await, 200).await;
    json_with_status(app.get_as(personal_secret, "/api_keys").await, 200).await;
    let personal_path = format!("/api_keys/{}", personal["key"]["id"].as_str().unwrap());
    // Approvals are an org's (as for a personal instance): refused from Personal.
    assert_error(
        flag(app, &pat, &personal_path, "tech", true).await,
        403,
        "organization_required",
    )
    .await;
}

/// A non-operational org model serves no traffic: its offering reports not operational
/// (`missing_activation` names `model`) and the proxy refuses it with `model_not_operational`,
/// for the org itself and through a share; once the model is approved, it serves.
#[tokio::test]
async fn a_non_operational_org_model_serves_no_traffic() {
    let m = market().await;
    let app = &m.app;
    let (prov, cons) = (&m.provider, &m.consumer);
    let model_id = private_model(app, &prov.admin, "prov-int/tiny").await;
    let model = format!("/models/{model_id}");
    let instance = deploy(app, &prov.admin, json!({"model_id": model_id})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_for_status(app, &prov.admin, &instance, "ready").await;
    approve(
        app,
        &prov.admin,
        &prov.manager,
        &format!("/instances/{instance}"),
    )
    .await;
    let offering = json_with_status(
        app.post_as(
            &prov.admin,
            "/organizations/current/offerings",
            json!({"model_id": model_id, "code": "tiny", "name": "Tiny"}),
        )
        .await,
        201,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let offering_path = format!("/organizations/current/offerings/{offering}");
    let res = app
        .as_bearer(Method::PATCH, &offering_path, &prov.admin)
        .json(&json!({"is_active": true}))
        .send()
        .await
        .unwrap();
    json_with_status(res, 200).await;
    let approved = approve(app, &prov.admin, &prov.manager, &offering_path).await;
    assert_eq!(
        (
            approved["operational"].as_bool(),
            approved["missing_activation"].clone()
        ),
        (Some(false), json!(["model"])),
        "{approved}"
    );
    // Shared with the consumer, accepted.
    let grant = json!({"offering_id": offering, "consumer_organization_slug": "cons", "price_input_micros_per_1k": 1, "price_output_micros_per_1k": 1});
    let share = json_with_status(
        app.post_as(&prov.admin, "/organizations/current/shares", grant)
            .await,
        201,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    approve(
        app,
        &prov.admin,
        &prov.manager,
        &format!("/organizations/current/shares/{share}"),
    )
    .await;
    json_with_status(
        app.post_as(
            &cons.owner,
            &format!("/organizations/current/shares/{share}/accept"),
            json!({"contract_version": 1}),
        )
        .await,
        200,
    )
    .await;
    let prov_key = prov.org_key_secret(app, "own").await;
    // The share reports what the proxy does: not operational while the model is not.
    let share_operational = |token: &str, side: &str| {
        let (token, side) = (token.to_owned(), side.to_owned());
        let share = share.clone();
        async move {
            let list = json_with_status(
                app.get_as(
                    &token,
                    &format!("/organizations/current/shares?side={side}"),
                )
                .await,
                200,
            )
            .await;
            list["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["id"] == share.as_str())
                .unwrap()["operational"]
                .as_bool()
                .unwrap()
        }
    };
    assert!(!share_operational(&cons.owner, "consumer").await);
    for key in [&prov_key, &m.key] {
        assert_error(
            chat(app, key, "prov/tiny").await,
            403,
            "model_not_operational",
        )
        .await;
        let listed = json_with_status(app.get_as(key, "/v1/models").await, 200).await;
        assert!(
            !listed.to_string().contains("prov/tiny"),
            "a model that is refused is not listed: {listed}"
        );
    }
    // The public catalogue and other offerings are unaffected.
    json_with_status(chat(app, &m.key, "prov/chat").await, 200).await;
    // Tech alone is not enough.
    json_with_status(flag(app, &prov.admin, &model, "tech", true).await, 200).await;
    assert_error(
        chat(app, &prov_key, "prov/tiny").await,
        403,
        "model_not_operational",
    )
    .await;
    let both = json_with_status(flag(app, &prov.manager, &model, "eco", true).await, 200).await;
    assert_eq!(both["operational"], true);
    for key in [&prov_key, &m.key] {
        json_with_status(chat(app, key, "prov/tiny").await, 200).await;
    }
    assert!(share_operational(&cons.owner, "consumer").await);
    assert!(share_operational(&prov.owner, "provider").await);
    let offerings = json_with_status(
        app.get_as(&prov.user, "/organizations/current/offerings")
            .await,
        200,
    )
    .await;
    let tiny = offerings["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["code"] == "tiny")
        .unwrap()
        .clone();
    assert_eq!(
        (
            tiny["operational"].as_bool(),
            tiny["missing_activation"].clone()
        ),
        (Some(true), json!([]))
    );
    // Withdrawn again: refused at once (the routes are invalidated by the write).
    json_with_status(flag(app, &prov.admin, &model, "tech", false).await, 200).await;
    assert_error(
        chat(app, &m.key, "prov/tiny").await,
        403,
        "model_not_operational",
    )
    .await;
    app.assert_audit_verifies().await;
}

/// Another org's model or key is 404 whatever the role; a public model, or anything from the
/// personal workspace, has nothing to approve (409 `activation_not_applicable`).
#[tokio::test]
async fn cross_tenant_ids_are_404_and_public_models_need_no_approval() {
    let app = spawn_app().await;
    let a = Team::new(&app, "acme").await;
    let b = Team::new(&app, "globex").await;
    let a_model = new_org_model(&app, &a, "acme/tiny").await;
    let (a_key, _) = new_org_key(&app, &a, "k").await;
    for path in [&a_model, &a_key] {
        for token in [&b.owner, &b.admin, &b.manager, &b.user] {
            for name in ["tech", "eco"] {
                assert_error(flag(&app, token, path, name, true).await, 404, "not_found").await;
            }
        }
    }
    // Nothing moved in A.
    let model = json_with_status(app.get_as(&a.owner, &a_model).await, 200).await;
    assert_eq!(model["missing_activation"], json!(["tech", "eco"]));
    let public = crate::instances::public_model(&app, "meta/llama-3").await;
    let public_path = format!("/models/{public}");
    let listed = json_with_status(app.get_as(&a.owner, &public_path).await, 200).await;
    assert_eq!(
        (
            listed["operational"].as_bool(),
            listed["missing_activation"].clone()
        ),
        (Some(true), json!([]))
    );
    assert_error(
        flag(&app, &a.owner, &public_path, "tech", true).await,
        409,
        "activation_not_applicable",
    )
    .await;
    // The user's role is checked before that.
    assert_error(
        flag(&app, &a.user, &public_path, "tech", true).await,
        403,
        "forbidden",
    )
    .await;
    // An unknown id is 404 too.
    let unknown = format!("/models/{}", uuid::Uuid::now_v7());
    assert_error(
        flag(&app, &a.owner, &unknown, "tech", true).await,
        404,
        "not_found",
    )
    .await;
}

/// With `require_distinct_activators`, one person may not hold both flags of a model or a key.
#[tokio::test]
async fn distinct_activators_apply_to_models_and_keys() {
    let app = spawn_app().await;
    let team = Team::new(&app, "acme").await;
    let model = new_org_model(&app, &team, "acme/tiny").await;
    let (key, _) = new_org_key(&app, &team, "k").await;
    let res = app
        .as_bearer(Method::PATCH, "/organizations/current", &team.owner)
        .json(&json!({"require_distinct_activators": true}))
        .send()
        .await
        .unwrap();
    json_with_status(res, 200).await;
    for path in [&model, &key] {
        json_with_status(flag(&app, &team.owner, path, "tech", true).await, 200).await;
        assert_error(
            flag(&app, &team.owner, path, "eco", true).await,
            409,
            "distinct_activators_required",
        )
        .await;
        let ok: Value =
            json_with_status(flag(&app, &team.manager, path, "eco", true).await, 200).await;
        assert_eq!(ok["operational"], true);
    }
}

/// Bad input is a clear 400, never a 500.
#[tokio::test]
async fn a_bad_activation_body_is_a_400() {
    let app = spawn_app().await;
    let team = Team::new(&app, "acme").await;
    let model = new_org_model(&app, &team, "acme/tiny").await;
    for body in [
        json!({"flag": "money", "active": true}),
        json!({"flag": "tech"}),
        json!({"flag": "tech", "active": true, "extra": 1}),
    ] {
        let res = app
            .post_as(&team.owner, &format!("{model}/activation"), body)
            .await;
        assert_eq!(res.status().as_u16(), 400);
    }
}

/// An upgrade does not cut traffic (docs/decisions.md): org models and org keys that exist
/// when the migration runs are approved as they stand — both flags held by the org's
/// longest-standing owner, at the row's creation time; public models and personal keys keep
/// no flags (they need none).
#[tokio::test]
async fn existing_org_models_and_keys_are_migrated_as_approved() {
    use crate::helpers::TestDatabase;
    use inventiv_domain::{ApiKeyId, ModelId, OrgId, Scope, UserId};
    use inventiv_persistence::repo::{api_keys, models};
    use inventiv_persistence::{Db, DbOptions};

    let database = TestDatabase::create().await;
    let db = Db::connect(&database.url(), &DbOptions::default())
        .await
        .unwrap();
    // Every migration before m20261130_000007.
    db.migrate_steps(20).await.unwrap();
    let pg = database.is_postgres();
    let id = |u: uuid::Uuid| {
        if pg {
            format!("'{u}'")
        } else {
            format!("X'{}'", u.simple())
        }
    };
    let ts = |day: u8| format!("'2026-01-{day:02}T00:00:00.000000Z'");
    let [first_owner, later_owner, admin, org] = [(); 4].map(|()| uuid::Uuid::new_v4());
    let [org_model, public_model, org_key, personal_key] = [(); 4].map(|()| uuid::Uuid::new_v4());
    let mut sql = Vec::new();
    for (user, email) in [
        (first_owner, "first@x.test"),
        (later_owner, "later@x.test"),
        (admin, "admin@x.test"),
    ] {
        sql.push(format!(
            "INSERT INTO users (id, email, password_hash, is_platform_admin, created_at, updated_at) VALUES ({}, '{email}', 'x', FALSE, {t}, {t})",
            id(user),
            t = ts(1)
        ));
    }
    sql.push(format!(
        "INSERT INTO organizations (id, name, slug, require_distinct_activators, created_at, updated_at) VALUES ({}, 'Acme', 'acme', FALSE, {t}, {t})",
        id(org),
        t = ts(1)
    ));
    // The admin joined first, the later owner after the first owner.
    for (user, role, day) in [
        (admin, "admin", 1),
        (first_owner, "owner", 2),
        (later_owner, "owner", 3),
    ] {
        sql.push(format!(
            "INSERT INTO organization_memberships (organization_id, user_id, role, created_at) VALUES ({}, {}, '{role}', {})",
            id(org),
            id(user),
            ts(day)
        ));
    }
    for (model, owner, model_id) in [
        (org_model, Some(org), "acme/tiny"),
        (public_model, None, "meta/m"),
    ] {
        sql.push(format!(
            "INSERT INTO models (id, organization_id, name, model_id, required_vram_gb, context_length, is_active, created_at, updated_at) VALUES ({}, {}, 'M', '{model_id}', 1, 100, TRUE, {t}, {t})",
            id(model),
            owner.map_or("NULL".to_owned(), id),
            t = ts(4)
        ));
    }
    for (key, owner, hash) in [(org_key, Some(org), "a"), (personal_key, None, "b")] {
        sql.push(format!(
            "INSERT INTO api_keys (id, organization_id, owner_user_id, name, key_prefix, key_hash, created_at) VALUES ({}, {}, {}, 'k', 'sk-inv-x', '{}', {})",
            id(key),
            owner.map_or("NULL".to_owned(), id),
            id(admin),
            hash.repeat(64),
            ts(5)
        ));
    }
    for statement in &sql {
        db.execute_unprepared(statement)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }

    db.migrate().await.unwrap();

    let owner = Some(UserId::from_uuid(first_owner));
    let scope = Scope::Org(OrgId::from_uuid(org));
    let migrated = models::find(&db, scope, ModelId::from_uuid(org_model))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (migrated.activation.tech_by, migrated.activation.eco_by),
        (owner, owner)
    );
    assert!(migrated.operational());
    let public = models::find(&db, scope, ModelId::from_uuid(public_model))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(public.activation, Default::default());
    assert!(public.operational());
    let key = api_keys::find(&db, scope, ApiKeyId::from_uuid(org_key))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (key.activation.tech_by, key.activation.eco_by),
        (owner, owner)
    );
    assert!(key.operational());
    let personal = api_keys::find(
        &db,
        Scope::Personal(UserId::from_uuid(admin)),
        ApiKeyId::from_uuid(personal_key),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(personal.activation, Default::default());
    assert!(personal.operational());
    // The approval time is the row's creation time.
    let stamped = db
        .query_i64(&format!(
            "SELECT COUNT(*) FROM models WHERE tech_activated_at = created_at AND eco_activated_at = created_at AND id = {}",
            id(org_model)
        ))
        .await
        .unwrap();
    assert_eq!(stamped, 1);
}

/// `seed-demo` leaves no org model waiting: each demo org's private model is approved (tech by
/// its admin, eco by its manager), with its events in the org's chain.
#[tokio::test]
async fn the_demo_org_models_are_operational() {
    use inventiv_domain::Slug;
    use inventiv_persistence::repo::organizations;
    use inventiv_service::demo;

    let app = spawn_app().await;
    demo::seed(&app.deps).await.unwrap();
    let acme = organizations::find_by_slug(&app.db, &Slug::parse("acme").unwrap())
        .await
        .unwrap()
        .unwrap();
    let alice = app
        .login("alice@acme.demo", demo::DEMO_PASSWORD)
        .await
        .token;
    let alice = app.switch(&alice, Some(acme.id)).await;
    let models = json_with_status(app.get_as(&alice, "/models").await, 200).await;
    let own: Vec<&Value> = models["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["visibility"] == "org")
        .collect();
    assert!(!own.is_empty(), "{models}");
    for model in own {
        assert_eq!(model["operational"], true, "{model}");
        assert_ne!(model["tech_activated_by"], model["eco_activated_by"]);
    }
    app.assert_audit_verifies().await;
}

/// Edits racing on one org model: each `model.updated` event carries the name it actually
/// replaced (the model is read under its row lock in the editing transaction), so the trail
/// reads as one sequence of names.
#[tokio::test]
async fn concurrent_model_edits_audit_each_the_name_it_replaced() {
    let app = spawn_app().await;
    let team = Team::new(&app, "acme").await;
    let body = json!({"model_id": "acme/tiny", "name": "n-start"});
    let created = json_with_status(app.post_as(&team.admin, "/models", body).await, 201).await;
    let path = format!("/models/{}", created["id"].as_str().unwrap());
    let edits = (0..12).map(|i| {
        let name = format!("n-{i}");
        let body = json!({"model_id": "acme/tiny", "name": name, "required_vram_gb": 8, "context_length": 4096});
        app.put_as(&team.admin, &path, body)
    });
    for res in futures_util::future::join_all(edits).await {
        json_with_status(res, 200).await;
    }
    let renames = crate::helpers::audited_renames(&app, team.org, "model.updated").await;
    assert_eq!(renames.len(), 12);
    assert_eq!(renames[0].0, "n-start");
    let now = json_with_status(app.get_as(&team.admin, &path).await, 200).await;
    assert_eq!(now["name"], renames[11].1.as_str());
}

/// Deleting the account that gave an approval withdraws it (its foreign key sets it to NULL):
/// a key and an instance it approved stop being operational on the very next request, though
/// both were just cached (the key by a call through the proxy, the instance in its org's page).
#[tokio::test]
async fn deleting_an_approvers_account_withdraws_its_approvals_from_the_caches() {
    let m = market().await;
    let (app, team) = (&m.app, &m.consumer);
    let (path, secret) = new_org_key(app, team, "approved").await;
    let model = public_model(app, "meta/llama-3-small").await;
    let instance = deploy(app, &team.admin, json!({"model_id": model})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_for_status(app, &team.admin, &instance, "ready").await;
    // The team's manager gives both their economic approval, and approves nothing else.
    for path in [path.clone(), format!("/instances/{instance}")] {
        json_with_status(flag(app, &team.admin, &path, "tech", true).await, 200).await;
        json_with_status(flag(app, &team.manager, &path, "eco", true).await, 200).await;
    }
    json_with_status(chat(app, &secret, "prov/chat").await, 200).await;
    let listed = |page: Value| {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == instance.as_str())
            .map(|i| (i["operational"].clone(), i["missing_activation"].clone()))
            .unwrap()
    };
    let page = json_with_status(app.get_as(&team.admin, "/instances").await, 200).await;
    assert_eq!(listed(page), (json!(true), json!([])));

    let admin = app
        .login(crate::helpers::ADMIN_EMAIL, crate::helpers::ADMIN_PASSWORD)
        .await
        .token;
    let admin = app.switch(&admin, None).await;
    let res = app
        .delete_as(&admin, &format!("/users/{}", team.user_ids[2]))
        .await;
    assert_eq!(res.status(), 204, "{}", res.text().await.unwrap());
    let body = assert_error(
        chat(app, &secret, "prov/chat").await,
        403,
        "api_key_not_operational",
    )
    .await;
    assert!(body.to_string().contains("eco"), "{body}");
    let page = json_with_status(app.get_as(&team.admin, "/instances").await, 200).await;
    assert_eq!(listed(page), (json!(false), json!(["eco"])));
}

/// The model an offering publishes cannot be swapped under it: a consumer accepted terms for
/// that model, and a change of an offering's model asks for a new acceptance (SPEC §4.4).
/// Changing the model's upstream identity while an offering publishes it is 409
/// `model_in_use`; its other fields stay editable.
#[tokio::test]
async fn an_offered_model_cannot_be_swapped_under_its_offering() {
    let app = spawn_app().await;
    let team = Team::new(&app, "prov").await;
    let id = private_model(&app, &team.admin, "prov/big-70b").await;
    let edit = |model_id: &str, name: &str| json!({"name": name, "model_id": model_id, "required_vram_gb": 24, "context_length": 4096});
    // Not offered yet: the identity may change.
    json_with_status(
        app.put_as(
            &team.admin,
            &format!("/models/{id}"),
            edit("prov/big-72b", "Big"),
        )
        .await,
        200,
    )
    .await;
    json_with_status(
        app.post_as(
            &team.admin,
            "/organizations/current/offerings",
            json!({"model_id": id, "code": "big", "name": "Big"}),
        )
        .await,
        201,
    )
    .await;
    assert_error(
        app.put_as(
            &team.admin,
            &format!("/models/{id}"),
            edit("prov/tiny-1b", "Big"),
        )
        .await,
        409,
        "model_in_use",
    )
    .await;
    let renamed = json_with_status(
        app.put_as(
            &team.admin,
            &format!("/models/{id}"),
            edit("prov/big-72b", "Big 72B"),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        (renamed["name"].clone(), renamed["model_id"].clone()),
        (json!("Big 72B"), json!("prov/big-72b"))
    );
}
