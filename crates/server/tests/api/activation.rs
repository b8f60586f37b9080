//! Double activation and role-driven module visibility (issue 7; SPEC §1, §2.3, §2.4).

use crate::helpers::{
    ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, assert_error, json_with_status, spawn_app,
};
use crate::instances::{Team, deploy, public_model, wait_for_status};
use crate::proxy::market;
use inventiv_persistence::repo::audit;
use reqwest::Method;
use serde_json::{Value, json};

const PW: &str = "a-good-password";

async fn flag(app: &TestApp, token: &str, id: &str, flag: &str, active: bool) -> reqwest::Response {
    app.post_as(
        token,
        &format!("/instances/{id}/activation"),
        json!({"flag": flag, "active": active}),
    )
    .await
}

/// The owner turns on the org's distinct-activators rule.
async fn require_distinct_activators(app: &TestApp, owner: &str) {
    let res = app
        .as_bearer(Method::PATCH, "/organizations/current", owner)
        .json(&json!({"require_distinct_activators": true}))
        .send()
        .await
        .unwrap();
    json_with_status(res, 200).await;
}

#[tokio::test]
async fn every_role_and_flag_pair() {
    let app = spawn_app().await;
    let model = public_model(&app, "org/llama").await;
    let team = Team::new(&app, "acme").await;
    let instance = deploy(&app, &team.admin, json!({"model_id": model})).await;
    let id = instance["id"].as_str().unwrap();
    // (role token, may set tech, may set eco) — SPEC §2.3.
    let table = [
        (&team.owner, true, true),
        (&team.admin, true, false),
        (&team.manager, false, true),
        (&team.user, false, false),
    ];
    for (token, tech, eco) in table {
        for (name, allowed) in [("tech", tech), ("eco", eco)] {
            for active in [true, false] {
                let res = flag(&app, token, id, name, active).await;
                if allowed {
                    let body = json_with_status(res, 200).await;
                    assert_eq!(
                        body[format!("{name}_activated_by")].is_string(),
                        active,
                        "{body}"
                    );
                } else {
                    assert_error(res, 403, "forbidden").await;
                }
            }
        }
    }
}

#[tokio::test]
async fn an_instance_is_operational_only_once_both_flags_are_set() {
    let app = spawn_app().await;
    let model = public_model(&app, "org/llama").await;
    let team = Team::new(&app, "acme").await;
    let id = deploy(&app, &team.admin, json!({"model_id": model})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Operational also means serving: wait until it is ready.
    wait_for_status(&app, &team.user, &id, "ready").await;
    let tech = json_with_status(flag(&app, &team.admin, &id, "tech", true).await, 200).await;
    assert_eq!(
        (
            tech["operational"].as_bool(),
            tech["missing_activation"].clone()
        ),
        (Some(false), json!(["eco"]))
    );
    let both = json_with_status(flag(&app, &team.manager, &id, "eco", true).await, 200).await;
    assert_eq!(
        (
            both["operational"].as_bool(),
            both["missing_activation"].clone()
        ),
        (Some(true), json!([]))
    );
    let admin_id = app.me(&team.admin).await["user_id"].clone();
    assert_eq!(both["tech_activated_by"], admin_id);
    let cleared = json_with_status(flag(&app, &team.admin, &id, "tech", false).await, 200).await;
    assert_eq!(
        (
            cleared["operational"].as_bool(),
            cleared["missing_activation"].clone()
        ),
        (Some(false), json!(["tech"]))
    );
    // Every change is audited.
    let events = json_with_status(
        app.get_as(
            &team.owner,
            "/organizations/current/audit?action=instance.activation_changed",
        )
        .await,
        200,
    )
    .await;
    assert_eq!(events["items"].as_array().unwrap().len(), 3);
    assert_eq!(
        events["items"][0]["after"],
        json!({"flag": "tech", "active": false, "operational": false})
    );
    app.assert_audit_verifies().await;
}

/// Instances, offerings and shares are approved through one setter; each kind's event keeps
/// its own payload (an instance's also states the flag as it was), in the org's chain, by the
/// user who acted.
#[tokio::test]
async fn each_kind_records_its_approvals_in_the_org_chain() {
    // The market: the provider's admin set `tech`, then its manager `eco`, on all three.
    let m = market().await;
    let (admin, manager) = (m.provider.user_ids[1], m.provider.user_ids[2]);
    let mut events = audit::list(&m.app.db, m.provider.org, Default::default(), 10_000)
        .await
        .unwrap();
    events.retain(|e| e.action.ends_with(".activation_changed"));
    events.sort_by_key(|e| e.chain_seq);
    for (kind, id, states_before) in [
        ("instance", &m.instance, true),
        ("offering", &m.offering, false),
        ("share", &m.share, false),
    ] {
        let seen: Vec<_> = events
            .iter()
            .filter(|e| e.target_type.as_deref() == Some(kind))
            .map(|e| {
                let target = e.target_id.as_deref();
                (
                    e.action.as_str(),
                    target,
                    e.actor_user_id,
                    &e.before,
                    &e.after,
                )
            })
            .collect();
        let action = format!("{kind}.activation_changed");
        let before = |flag: &str| states_before.then(|| json!({"flag": flag, "active": false}));
        let (tech_before, eco_before) = (before("tech"), before("eco"));
        let tech = Some(json!({"flag": "tech", "active": true, "operational": false}));
        let eco = Some(json!({"flag": "eco", "active": true, "operational": true}));
        assert_eq!(
            seen,
            [
                (
                    action.as_str(),
                    Some(id.as_str()),
                    Some(admin),
                    &tech_before,
                    &tech
                ),
                (
                    action.as_str(),
                    Some(id.as_str()),
                    Some(manager),
                    &eco_before,
                    &eco
                ),
            ]
        );
    }
}

#[tokio::test]
async fn distinct_activators_when_the_org_requires_them() {
    let app = spawn_app().await;
    let model = public_model(&app, "org/llama").await;
    let team = Team::new(&app, "acme").await;
    let id = deploy(&app, &team.admin, json!({"model_id": model})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_for_status(&app, &team.user, &id, "ready").await;
    // Off (the default): the owner may give both approvals.
    json_with_status(flag(&app, &team.owner, &id, "tech", true).await, 200).await;
    json_with_status(flag(&app, &team.owner, &id, "eco", true).await, 200).await;
    json_with_status(flag(&app, &team.owner, &id, "eco", false).await, 200).await;
    require_distinct_activators(&app, &team.owner).await;
    assert_error(
        flag(&app, &team.owner, &id, "eco", true).await,
        409,
        "distinct_activators_required",
    )
    .await;
    let ok = json_with_status(flag(&app, &team.manager, &id, "eco", true).await, 200).await;
    assert_eq!(ok["operational"], true);
}

/// The distinct-activators rule under concurrency: one owner sends both approvals of one
/// resource at once, many times over, for an instance (whose row is locked alone) and an
/// offering (locked after its org's audit chain head). Each request decides from the flags it
/// reads, so a read that does not lock lets a `tech` and an `eco` each see the other unset
/// and both succeed, leaving one person holding both (PostgreSQL runs these transactions side
/// by side; SQLite serializes them). Whatever the interleaving, the approvals that succeed in
/// a round are all of one flag, and the resource never ends up approved twice by its owner.
#[tokio::test]
async fn one_person_never_holds_both_approvals_under_concurrent_requests() {
    let app = spawn_app().await;
    let model = public_model(&app, "org/llama").await;
    let team = Team::new(&app, "acme").await;
    let instance = deploy(&app, &team.admin, json!({"model_id": model})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let offering = json_with_status(
        app.post_as(
            &team.admin,
            "/organizations/current/offerings",
            json!({"model_id": model, "code": "chat", "name": "Chat"}),
        )
        .await,
        201,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    require_distinct_activators(&app, &team.owner).await;
    // (the resource's path, where to read it back: an offering is read from its list)
    let offerings = "/organizations/current/offerings";
    for (path, read, id) in [
        (
            format!("/instances/{instance}"),
            format!("/instances/{instance}"),
            &instance,
        ),
        (
            format!("{offerings}/{offering}"),
            offerings.to_owned(),
            &offering,
        ),
    ] {
        let set = |name: &'static str, active: bool| {
            let (app, owner, path) = (&app, &team.owner, &path);
            async move {
                let body = json!({"flag": name, "active": active});
                let res = app
                    .post_as(owner, &format!("{path}/activation"), body)
                    .await;
                (name, res.status().as_u16())
            }
        };
        for round in 0..6 {
            let requests = (0..12).map(|i| set(if i % 2 == 0 { "tech" } else { "eco" }, true));
            let outcomes = futures_util::future::join_all(requests).await;
            assert!(
                outcomes.iter().all(|(_, s)| [200, 409].contains(s)),
                "{path}, round {round}: {outcomes:?}"
            );
            let granted: std::collections::BTreeSet<&str> = outcomes
                .iter()
                .filter(|(_, status)| *status == 200)
                .map(|(name, _)| *name)
                .collect();
            assert_eq!(granted.len(), 1, "{path}, round {round}: {outcomes:?}");
            let read = json_with_status(app.get_as(&team.owner, &read).await, 200).await;
            let now = match read["items"].as_array() {
                Some(items) => items.iter().find(|o| o["id"] == **id).unwrap().clone(),
                None => read,
            };
            assert!(
                !(now["tech_activated_by"].is_string() && now["eco_activated_by"].is_string()),
                "{path}, round {round}: {now}"
            );
            for name in ["tech", "eco"] {
                assert_eq!(set(name, false).await.1, 200);
            }
        }
    }
}

/// An offering edit writes back the fields it leaves alone: as the row is when it writes,
/// not as it was when a concurrent edit had not committed yet. An owner withdraws the
/// offering from the marketplace (`visibility: private`) while an admin renames it many
/// times: the renames must not put `public` back.
#[tokio::test]
async fn a_concurrent_rename_never_republishes_a_withdrawn_offering() {
    let app = spawn_app().await;
    let model = public_model(&app, "org/llama").await;
    let team = Team::new(&app, "acme").await;
    let offerings = "/organizations/current/offerings";
    let created = app
        .post_as(
            &team.admin,
            offerings,
            json!({"model_id": model, "code": "chat", "name": "Chat", "visibility": "public"}),
        )
        .await;
    let id = json_with_status(created, 201).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("{offerings}/{id}");
    let patch = |token: &str, body: Value| {
        app.as_bearer(Method::PATCH, &path, token)
            .json(&body)
            .send()
    };
    for round in 0..6 {
        let public = patch(&team.owner, json!({"visibility": "public"}))
            .await
            .unwrap();
        json_with_status(public, 200).await;
        let renames =
            (0..8).map(|i| patch(&team.admin, json!({"name": format!("Chat {round}.{i}")})));
        let withdraw = patch(&team.owner, json!({"visibility": "private"}));
        let (withdrawn, renamed) =
            futures_util::future::join(withdraw, futures_util::future::join_all(renames)).await;
        json_with_status(withdrawn.unwrap(), 200).await;
        for res in renamed {
            json_with_status(res.unwrap(), 200).await;
        }
        let list = json_with_status(app.get_as(&team.owner, offerings).await, 200).await;
        let now = &list["items"].as_array().unwrap()[0];
        assert_eq!(now["visibility"], "private", "round {round}: {now}");
    }
}

/// Permission → a request it guards (in the current workspace), for the "omitted ⇒ 403" check.
fn guarded(instance: &str, member: &str) -> Vec<(&'static str, Method, String, Value)> {
    vec![
        (
            "marketplace.view",
            Method::GET,
            "/marketplace/offerings".into(),
            Value::Null,
        ),
        (
            "access_requests.create",
            Method::POST,
            format!(
                "/marketplace/offerings/{}/access-requests",
                uuid::Uuid::nil()
            ),
            json!({}),
        ),
        (
            "access_requests.view",
            Method::GET,
            "/organizations/current/access-requests".into(),
            Value::Null,
        ),
        (
            "org.update",
            Method::PATCH,
            "/organizations/current".into(),
            json!({"name": "Renamed"}),
        ),
        (
            "invitations.create",
            Method::POST,
            "/organizations/current/invitations".into(),
            json!({"email": "g@example.com"}),
        ),
        (
            "invitations.list",
            Method::GET,
            "/organizations/current/invitations".into(),
            Value::Null,
        ),
        (
            "members.change_role",
            Method::PUT,
            format!("/organizations/current/members/{member}"),
            json!({"role": "user"}),
        ),
        (
            "instances.deploy",
            Method::POST,
            "/deployments".into(),
            json!({"model_id": uuid::Uuid::nil()}),
        ),
        (
            "instances.terminate",
            Method::POST,
            format!("/instances/{instance}/terminate"),
            Value::Null,
        ),
        (
            "activation.tech",
            Method::POST,
            format!("/instances/{instance}/activation"),
            json!({"flag": "tech", "active": false}),
        ),
        (
            "activation.eco",
            Method::POST,
            format!("/instances/{instance}/activation"),
            json!({"flag": "eco", "active": false}),
        ),
        (
            "models.create",
            Method::POST,
            "/models".into(),
            json!({"name": "n", "model_id": "x/y", "required_vram_gb": 1, "context_length": 1}),
        ),
        (
            "api_keys.create",
            Method::POST,
            "/api_keys".into(),
            json!({"name": "k"}),
        ),
        ("users.list", Method::GET, "/users".into(), Value::Null),
        (
            "users.create",
            Method::POST,
            "/users".into(),
            json!({"email": "u@example.com"}),
        ),
        (
            "finops.view",
            Method::GET,
            "/finops/cost/current".into(),
            Value::Null,
        ),
        (
            "audit.view",
            Method::GET,
            "/organizations/current/audit".into(),
            Value::Null,
        ),
        (
            "platform_audit.view",
            Method::GET,
            "/platform/audit".into(),
            Value::Null,
        ),
    ]
}

#[tokio::test]
async fn me_lists_the_modules_and_permissions_of_each_workspace_and_omitted_permissions_are_403() {
    let app = spawn_app().await;
    let model = public_model(&app, "org/llama").await;
    let team = Team::new(&app, "acme").await;
    let instance = deploy(&app, &team.admin, json!({"model_id": model})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let member = team.user_ids[3].to_string();
    app.create_user("pat@example.com", PW).await;
    let pat = app.login("pat@example.com", PW).await.token;
    let platform_admin = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.token;

    // SPEC §2.4, written out (Personal also shows `instances`: its users manage their own).
    // Instance-guarded checks use an instance in the actor's own scope (another scope's id is
    // 404 before any role check).
    let pat_instance = deploy(&app, &pat, json!({"model_id": model})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin_instance = deploy(&app, &platform_admin, json!({"model_id": model})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let expected_modules: [(&str, &str, Vec<&str>); 6] = [
        (
            "personal",
            &pat,
            vec![
                "dashboard:read",
                "chat:write",
                "workbench:write",
                "models:read",
                "api_keys:write",
                "organizations:write",
                "instances:write",
                "finops:read",
            ],
        ),
        (
            "platform admin",
            &platform_admin,
            vec![
                "dashboard:read",
                "chat:write",
                "workbench:write",
                "models:write",
                "api_keys:write",
                "organizations:write",
                "instances:write",
                "users:write",
                "finops:read",
                "settings:write",
            ],
        ),
        (
            "owner",
            &team.owner,
            vec![
                "dashboard:read",
                "chat:write",
                "workbench:write",
                "models:write",
                "api_keys:write",
                "organizations:write",
                "instances:write",
                "members:write",
                "invitations:write",
                "users:write",
                "finops:read",
                "audit:read",
                "sharing:write",
                "settings:write",
            ],
        ),
        (
            "admin",
            &team.admin,
            vec![
                "dashboard:read",
                "chat:write",
                "workbench:write",
                "models:write",
                "api_keys:write",
                "organizations:write",
                "instances:write",
                "members:write",
                "invitations:write",
                "users:write",
                "finops:read",
                "audit:read",
                "sharing:write",
            ],
        ),
        (
            "manager",
            &team.manager,
            vec![
                "dashboard:read",
                "chat:write",
                "workbench:write",
                "models:read",
                "api_keys:read",
                "organizations:write",
                "instances:read",
                "members:write",
                "invitations:write",
                "users:read",
                "finops:read",
                "audit:read",
                "sharing:write",
            ],
        ),
        (
            "user",
            &team.user,
            vec![
                "dashboard:read",
                "chat:write",
                "workbench:write",
                "models:read",
                "api_keys:read",
                "organizations:write",
                "instances:read",
                "members:read",
            ],
        ),
    ];
    for (name, token, modules) in expected_modules {
        let me = app.me(token).await;
        let got: Vec<String> = me["modules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                format!(
                    "{}:{}",
                    m["id"].as_str().unwrap(),
                    m["access"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(got, modules, "modules of {name}");
        let permissions: Vec<String> = me["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_owned())
            .collect();
        let own_instance = match name {
            "personal" => &pat_instance,
            "platform admin" => &admin_instance,
            _ => &instance,
        };
        for (permission, method, path, body) in guarded(own_instance, &member) {
            let mut req = app.as_bearer(method.clone(), &path, token);
            if !body.is_null() {
                req = req.json(&body);
            }
            let status = req.send().await.unwrap().status().as_u16();
            if permissions.iter().any(|p| p == permission) {
                assert_ne!(
                    status, 403,
                    "{name} holds {permission} but {method} {path} answered 403"
                );
            } else {
                assert_eq!(
                    status, 403,
                    "{name} lacks {permission} but {method} {path} answered {status}"
                );
            }
        }
    }
}

#[test]
fn authorization_doc_is_generated_from_the_permission_map() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/authorization.md"
    ))
    .unwrap();
    assert_eq!(
        doc,
        inventiv_domain::authorization_markdown(),
        "docs/authorization.md is stale: run `make docs`"
    );
}
