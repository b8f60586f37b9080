//! Instances and models scoped by organization (issue 5; SPEC §1, §3, §4.3): the seed's test
//! list, cross-tenant and role tests for every route, providers and the lifecycle.

use crate::helpers::{
    ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, assert_error, json_with_status, spawn_app, spawn_app_with,
};
use inventiv_domain::{OrgId, Role, UserId};
use inventiv_persistence::Backend;
use serde_json::{Value, json};
use std::time::Duration;

pub const PW: &str = "a-good-password";

/// An org with one signed-in member per role.
#[allow(dead_code)] // not every test reads every field
pub struct Team {
    pub org: OrgId,
    pub owner: String,
    pub admin: String,
    pub manager: String,
    pub user: String,
    pub user_ids: Vec<UserId>,
}

impl Team {
    pub async fn new(app: &TestApp, slug: &str) -> Team {
        let mut ids = Vec::new();
        for role in ["owner", "admin", "manager", "user"] {
            ids.push(app.create_user(&format!("{role}@{slug}.test"), PW).await);
        }
        let roles = [Role::Owner, Role::Admin, Role::Manager, Role::User];
        let pairs: Vec<(UserId, Role)> = ids.iter().copied().zip(roles).collect();
        let org = app.create_org(slug, &pairs).await;
        let mut tokens = Vec::new();
        for role in ["owner", "admin", "manager", "user"] {
            tokens.push(
                app.switch(
                    &app.login(&format!("{role}@{slug}.test"), PW).await.token,
                    Some(org),
                )
                .await,
            );
        }
        let [owner, admin, manager, user]: [String; 4] = tokens.try_into().unwrap();
        Team {
            org,
            owner,
            admin,
            manager,
            user,
            user_ids: ids,
        }
    }
}

/// Sets both approvals of the activatable resource at `path` (e.g. `/api_keys/{id}`): tech
/// with `tech`'s token, eco with `eco`'s (SPEC §1: org keys and org models start
/// non-operational). Returns the resource as the last answer gives it.
pub async fn approve(app: &TestApp, tech: &str, eco: &str, path: &str) -> Value {
    let mut last = Value::Null;
    for (token, flag) in [(tech, "tech"), (eco, "eco")] {
        last = json_with_status(
            app.post_as(
                token,
                &format!("{path}/activation"),
                json!({"flag": flag, "active": true}),
            )
            .await,
            200,
        )
        .await;
    }
    last
}

/// Approves the org key `created` (a `POST /api_keys` answer) with `owner`'s token for both
/// flags (an owner may give both unless the org requires distinct activators); a personal key
/// needs nothing.
pub async fn approve_key(app: &TestApp, owner: &str, created: &Value) {
    if created["key"]["scope"] == "org" {
        let id = created["key"]["id"].as_str().unwrap();
        approve(app, owner, owner, &format!("/api_keys/{id}")).await;
    }
}

impl Team {
    /// Creates an org key as the admin with `body` and approves it (tech: admin, eco:
    /// manager), so it authenticates. Returns the 201 answer ({key, secret}).
    pub async fn org_key(&self, app: &TestApp, body: Value) -> Value {
        let created =
            json_with_status(app.post_as(&self.admin, "/api_keys", body).await, 201).await;
        let id = created["key"]["id"].as_str().unwrap();
        approve(app, &self.admin, &self.manager, &format!("/api_keys/{id}")).await;
        created
    }

    /// [`Team::org_key`]'s secret.
    pub async fn org_key_secret(&self, app: &TestApp, name: &str) -> String {
        self.org_key(app, json!({"name": name})).await["secret"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

/// Creates a public catalogue model as the platform admin (Personal workspace).
pub async fn public_model(app: &TestApp, model_id: &str) -> String {
    let admin = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.token;
    let body = json!({"name": format!("Public {model_id}"), "model_id": model_id, "required_vram_gb": 16, "context_length": 8192});
    json_with_status(app.post_as(&admin, "/models", body).await, 201).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

pub async fn private_model(app: &TestApp, token: &str, model_id: &str) -> String {
    let body = json!({"name": format!("Private {model_id}"), "model_id": model_id, "required_vram_gb": 24, "context_length": 4096});
    json_with_status(app.post_as(token, "/models", body).await, 201).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

pub async fn deploy(app: &TestApp, token: &str, body: Value) -> Value {
    json_with_status(app.post_as(token, "/deployments", body).await, 201).await
}

/// Polls `GET /instances/{id}` until `status` (5 s at most).
pub async fn wait_for_status(app: &TestApp, token: &str, id: &str, status: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(8);
    loop {
        let instance =
            json_with_status(app.get_as(token, &format!("/instances/{id}")).await, 200).await;
        if instance["status"] == status {
            return instance;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "instance never became {status}: {instance}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn ids(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn personal_workspace_reaches_its_own_legacy_instances_only() {
    let app = spawn_app().await;
    let model = public_model(&app, "org/llama").await;
    app.create_user("pat@example.com", PW).await;
    app.create_user("quinn@example.com", PW).await;
    let pat = app.login("pat@example.com", PW).await.token;
    let quinn = app.login("quinn@example.com", PW).await.token;
    let mine = deploy(&app, &pat, json!({"model_id": model})).await;
    assert_eq!(
        (mine["scope"].as_str(), mine["organization_id"].clone()),
        (Some("personal"), Value::Null)
    );
    // A personal instance needs no approval; it is operational once it serves.
    assert_eq!(
        (
            mine["operational"].as_bool(),
            mine["missing_activation"].clone()
        ),
        (Some(false), json!([]))
    );
    let id = mine["id"].as_str().unwrap();
    let ready = wait_for_status(&app, &pat, id, "ready").await;
    assert_eq!(ready["operational"], true, "{ready}");
    // A legacy row written before organizations existed: organization_id NULL, owned by Pat.
    let pat_id = app.me(&pat).await["user_id"].as_str().unwrap().to_owned();
    let legacy = uuid::Uuid::now_v7();
    let (pat_blob, model_blob, legacy_blob) = match app.db.backend() {
        Backend::Postgres => (
            format!("'{pat_id}'"),
            format!("'{model}'"),
            format!("'{legacy}'"),
        ),
        Backend::Sqlite => (
            format!("X'{}'", pat_id.replace('-', "")),
            format!("X'{}'", model.replace('-', "")),
            format!("X'{}'", legacy.simple()),
        ),
    };
    app.db
        .execute_unprepared(&format!(
            "INSERT INTO instances (id, organization_id, owner_user_id, model_id, provider, status, hourly_cost_micros, created_at, updated_at) \
             VALUES ({legacy_blob}, NULL, {pat_blob}, {model_blob}, 'mock', 'terminated', 0, '2024-01-01T00:00:00Z', '2024-01-01T00:00:00Z')"
        ))
        .await
        .unwrap();
    let listed = json_with_status(app.get_as(&pat, "/instances").await, 200).await;
    let listed_ids = ids(&listed);
    assert!(
        listed_ids.contains(&id.to_owned()) && listed_ids.contains(&legacy.to_string()),
        "{listed}"
    );
    json_with_status(app.get_as(&pat, &format!("/instances/{legacy}")).await, 200).await;
    // Nobody else sees them: another user's Personal, or an org workspace.
    assert_eq!(
        ids(&json_with_status(app.get_as(&quinn, "/instances").await, 200).await).len(),
        0
    );
    assert_error(
        app.get_as(&quinn, &format!("/instances/{id}")).await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        app.post_as(&quinn, &format!("/instances/{id}/terminate"), json!({}))
            .await,
        404,
        "not_found",
    )
    .await;
    let team = Team::new(&app, "acme").await;
    assert_eq!(
        ids(&json_with_status(app.get_as(&team.owner, "/instances").await, 200).await).len(),
        0
    );
    assert_error(
        app.get_as(&team.owner, &format!("/instances/{legacy}"))
            .await,
        404,
        "not_found",
    )
    .await;
    // Personal instances have nothing to approve.
    let res = app
        .post_as(
            &pat,
            &format!("/instances/{id}/activation"),
            json!({"flag": "tech", "active": true}),
        )
        .await;
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn an_org_sees_only_its_own_instances_and_other_ids_are_404() {
    let app = spawn_app().await;
    let model = public_model(&app, "org/llama").await;
    let a = Team::new(&app, "tenant-a").await;
    let b = Team::new(&app, "tenant-b").await;
    let in_a = deploy(&app, &a.admin, json!({"model_id": model})).await;
    let in_b = deploy(&app, &b.owner, json!({"model_id": model})).await;
    assert_eq!(in_a["scope"], "org");
    assert_eq!(in_a["organization_name"], "Org tenant-a");
    assert_eq!(
        (
            in_a["operational"].as_bool(),
            in_a["missing_activation"].clone()
        ),
        (Some(false), json!(["tech", "eco"]))
    );
    assert_eq!(
        in_a["can_set"],
        json!({"eco": ["owner", "manager"], "tech": ["owner", "admin"]})
    );
    let b_id = in_b["id"].as_str().unwrap();
    let list_a = json_with_status(app.get_as(&a.user, "/instances").await, 200).await;
    assert_eq!(ids(&list_a), vec![in_a["id"].as_str().unwrap().to_owned()]);
    for token in [&a.owner, &a.admin, &a.manager, &a.user] {
        assert_error(
            app.get_as(token, &format!("/instances/{b_id}")).await,
            404,
            "not_found",
        )
        .await;
        for action in ["terminate", "reinstall"] {
            assert_error(
                app.post_as(token, &format!("/instances/{b_id}/{action}"), json!({}))
                    .await,
                404,
                "not_found",
            )
            .await;
        }
        let res = app
            .post_as(
                token,
                &format!("/instances/{b_id}/activation"),
                json!({"flag": "eco", "active": true}),
            )
            .await;
        assert_error(res, 404, "not_found").await;
    }
    let untouched = wait_for_status(&app, &b.owner, b_id, "ready").await;
    assert_eq!(untouched["eco_activated_by"], Value::Null);
}

#[tokio::test]
async fn deploy_terminate_and_reinstall_need_owner_or_admin() {
    let app = spawn_app().await;
    let model = public_model(&app, "org/llama").await;
    let team = Team::new(&app, "acme").await;
    for token in [&team.manager, &team.user] {
        assert_error(
            app.post_as(token, "/deployments", json!({"model_id": model}))
                .await,
            403,
            "forbidden",
        )
        .await;
    }
    let by_owner = deploy(&app, &team.owner, json!({"model_id": model})).await;
    let id = by_owner["id"].as_str().unwrap();
    let ready = wait_for_status(&app, &team.user, id, "ready").await;
    assert_eq!(ready["endpoint_url"], format!("{}/mock-model", app.address));
    assert!(ready["ready_at"].is_string());
    // The seed's test: a user cannot terminate org instances.
    for token in [&team.user, &team.manager] {
        assert_error(
            app.post_as(token, &format!("/instances/{id}/terminate"), json!({}))
                .await,
            403,
            "forbidden",
        )
        .await;
        assert_error(
            app.post_as(token, &format!("/instances/{id}/reinstall"), json!({}))
                .await,
            403,
            "forbidden",
        )
        .await;
    }
    let res = app
        .post_as(
            &team.admin,
            &format!("/instances/{id}/reinstall"),
            json!({}),
        )
        .await;
    assert_eq!(json_with_status(res, 202).await["status"], "provisioning");
    wait_for_status(&app, &team.admin, id, "ready").await;
    let res = app
        .post_as(
            &team.admin,
            &format!("/instances/{id}/terminate"),
            json!({}),
        )
        .await;
    assert_eq!(json_with_status(res, 202).await["status"], "terminating");
    let gone = wait_for_status(&app, &team.admin, id, "terminated").await;
    assert!(gone["terminated_at"].is_string());
    assert_error(
        app.post_as(
            &team.admin,
            &format!("/instances/{id}/terminate"),
            json!({}),
        )
        .await,
        409,
        "invalid_state",
    )
    .await;
    assert_error(
        app.post_as(
            &team.admin,
            &format!("/instances/{id}/reinstall"),
            json!({}),
        )
        .await,
        409,
        "invalid_state",
    )
    .await;
    // Every transition is in the org's audit trail.
    let events = json_with_status(
        app.get_as(
            &team.owner,
            "/organizations/current/audit?action=instance.status_changed&limit=50",
        )
        .await,
        200,
    )
    .await;
    let steps: Vec<String> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|e| e["after"]["status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        steps,
        [
            "booting",
            "ready",
            "provisioning",
            "booting",
            "ready",
            "terminating",
            "terminated"
        ]
    );
    app.assert_audit_verifies().await;
}

#[tokio::test]
async fn deployment_input_is_validated() {
    let app = spawn_app().await;
    let model = public_model(&app, "org/llama").await;
    let team = Team::new(&app, "acme").await;
    let other = Team::new(&app, "other").await;
    let foreign = private_model(&app, &other.admin, "other/secret").await;
    let cases = [
        (json!({"model_id": foreign}), "model_id"),
        (json!({"model_id": uuid::Uuid::now_v7()}), "model_id"),
        (json!({"model_id": model, "provider": "aws"}), "provider"),
        (
            json!({"model_id": model, "provider": "external"}),
            "endpoint_url",
        ),
        (
            json!({"model_id": model, "provider": "external", "endpoint_url": "ftp://x"}),
            "endpoint_url",
        ),
        (
            json!({"model_id": model, "hourly_cost_micros": -1}),
            "hourly_cost_micros",
        ),
        (json!({"model_id": model, "zone": "z".repeat(65)}), "zone"),
    ];
    for (body, field) in cases {
        let res = app.post_as(&team.admin, "/deployments", body.clone()).await;
        let err = assert_error(res, 400, "validation_failed").await;
        assert!(err["fields"][field].is_string(), "{body} → {err}");
    }
}

/// A minimal OpenAI-compatible `GET /v1/models` answering 200 (or `status`).
async fn tiny_upstream(status: u16) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    let body = r#"{"object":"list","data":[]}"#;
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if stream.write_all(reply.as_bytes()).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    url
}

#[tokio::test]
async fn the_external_provider_is_ready_when_the_endpoint_answers_and_fails_otherwise() {
    let app = spawn_app_with(
        |s| s.providers.external.ready_timeout_secs = 1,
        std::sync::Arc::new(inventiv_service::SystemClock),
    )
    .await;
    let model = public_model(&app, "org/llama").await;
    let team = Team::new(&app, "acme").await;
    let up = tiny_upstream(200).await;
    let ok = deploy(
        &app,
        &team.admin,
        json!({"model_id": model, "provider": "external", "endpoint_url": format!("{up}/")}),
    )
    .await;
    let ready = wait_for_status(&app, &team.admin, ok["id"].as_str().unwrap(), "ready").await;
    assert_eq!(ready["endpoint_url"], up.as_str());
    assert_eq!(ready["hourly_cost_micros"], 0);
    let broken = tiny_upstream(500).await;
    let bad = deploy(
        &app,
        &team.admin,
        json!({"model_id": model, "provider": "external", "endpoint_url": broken}),
    )
    .await;
    let failed = wait_for_status(&app, &team.admin, bad["id"].as_str().unwrap(), "failed").await;
    assert!(
        failed["failure_reason"].as_str().unwrap().contains("500"),
        "{failed}"
    );
    let dead = deploy(
        &app,
        &team.admin,
        json!({"model_id": model, "provider": "external", "endpoint_url": "http://127.0.0.1:9"}),
    )
    .await;
    let failed = wait_for_status(&app, &team.admin, dead["id"].as_str().unwrap(), "failed").await;
    assert!(
        failed["failure_reason"]
            .as_str()
            .unwrap()
            .contains("not ready"),
        "{failed}"
    );
}

#[tokio::test]
async fn models_personal_sees_the_public_catalogue_and_orgs_add_their_private_ones() {
    let app = spawn_app().await;
    let public = public_model(&app, "meta/llama").await;
    let a = Team::new(&app, "tenant-a").await;
    let b = Team::new(&app, "tenant-b").await;
    let private_a = private_model(&app, &a.admin, "a/secret").await;
    let private_b = private_model(&app, &b.owner, "b/secret").await;
    app.create_user("pat@example.com", PW).await;
    let pat = app.login("pat@example.com", PW).await.token;

    let personal = json_with_status(app.get_as(&pat, "/models").await, 200).await;
    assert_eq!(ids(&personal), vec![public.clone()]);
    assert_eq!(personal["items"][0]["visibility"], "public");
    let in_a = json_with_status(app.get_as(&a.user, "/models").await, 200).await;
    let mut expected = vec![public.clone(), private_a.clone()];
    expected.sort();
    assert_eq!(ids(&in_a), expected);
    let private_dto = in_a["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == private_a.as_str())
        .unwrap();
    assert_eq!(
        (
            private_dto["visibility"].as_str(),
            private_dto["organization_name"].as_str()
        ),
        (Some("org"), Some("Org tenant-a"))
    );
    for token in [&a.user, &pat] {
        assert_error(
            app.get_as(token, &format!("/models/{private_b}")).await,
            404,
            "not_found",
        )
        .await;
    }
    let update =
        json!({"name": "x", "model_id": "b/renamed", "required_vram_gb": 1, "context_length": 1});
    assert_error(
        app.put_as(&a.owner, &format!("/models/{private_b}"), update.clone())
            .await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        app.delete_as(&a.owner, &format!("/models/{private_b}"))
            .await,
        404,
        "not_found",
    )
    .await;

    // The seed's test: a user (or manager) cannot modify org models; owner/admin can.
    for token in [&a.user, &a.manager] {
        assert_error(
            app.post_as(
                token,
                "/models",
                json!({"name": "n", "model_id": "a/x", "required_vram_gb": 1, "context_length": 1}),
            )
            .await,
            403,
            "forbidden",
        )
        .await;
        assert_error(
            app.put_as(token, &format!("/models/{private_a}"), update.clone())
                .await,
            403,
            "forbidden",
        )
        .await;
        assert_error(
            app.delete_as(token, &format!("/models/{private_a}")).await,
            403,
            "forbidden",
        )
        .await;
    }
    let renamed = json!({"name": "Renamed", "model_id": "a/secret", "required_vram_gb": 8, "context_length": 2048, "is_active": false});
    let updated = json_with_status(
        app.put_as(&a.owner, &format!("/models/{private_a}"), renamed)
            .await,
        200,
    )
    .await;
    assert_eq!(
        (updated["name"].as_str(), updated["is_active"].as_bool()),
        (Some("Renamed"), Some(false))
    );
    // The public catalogue is read-only from an org, and written by platform admins only.
    assert_error(
        app.put_as(&a.owner, &format!("/models/{public}"), update.clone())
            .await,
        403,
        "forbidden",
    )
    .await;
    assert_error(
        app.post_as(
            &pat,
            "/models",
            json!({"name": "n", "model_id": "p/x", "required_vram_gb": 1, "context_length": 1}),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    let dup = app.post_as(&a.admin, "/models", json!({"name": "dup", "model_id": "a/secret", "required_vram_gb": 1, "context_length": 1})).await;
    assert_error(dup, 409, "model_id_taken").await;
    // Another org may use the same model_id in its own catalogue.
    private_model(&app, &b.owner, "a/secret").await;
    assert_eq!(
        app.delete_as(&a.admin, &format!("/models/{private_a}"))
            .await
            .status(),
        204
    );
    app.assert_audit_verifies().await;
}

#[tokio::test]
async fn models_and_orgs_in_use_cannot_be_deleted() {
    let app = spawn_app().await;
    let team = Team::new(&app, "acme").await;
    let model = private_model(&app, &team.admin, "acme/bot").await;
    let instance = deploy(&app, &team.admin, json!({"model_id": model})).await;
    let id = instance["id"].as_str().unwrap();
    assert_error(
        app.delete_as(&team.admin, &format!("/models/{model}"))
            .await,
        409,
        "model_in_use",
    )
    .await;
    assert_error(
        app.delete_as(&team.owner, "/organizations/current").await,
        409,
        "org_has_instances",
    )
    .await;
    wait_for_status(&app, &team.admin, id, "ready").await;
    app.post_as(
        &team.admin,
        &format!("/instances/{id}/terminate"),
        json!({}),
    )
    .await;
    wait_for_status(&app, &team.admin, id, "terminated").await;
    let res = app
        .delete_as(&team.admin, &format!("/models/{model}"))
        .await;
    assert!(
        assert_error(res, 409, "model_in_use").await["message"]
            .as_str()
            .unwrap()
            .contains("deactivate")
    );
    assert_eq!(
        app.delete_as(&team.owner, "/organizations/current")
            .await
            .status(),
        204
    );
    app.assert_audit_verifies().await;
}

#[tokio::test]
async fn operational_filter_and_unauthenticated_access() {
    let app = spawn_app().await;
    let model = public_model(&app, "org/llama").await;
    let team = Team::new(&app, "acme").await;
    let a = deploy(&app, &team.admin, json!({"model_id": model})).await;
    deploy(&app, &team.admin, json!({"model_id": model})).await;
    let a_id = a["id"].as_str().unwrap();
    app.post_as(
        &team.admin,
        &format!("/instances/{a_id}/activation"),
        json!({"flag": "tech", "active": true}),
    )
    .await;
    app.post_as(
        &team.manager,
        &format!("/instances/{a_id}/activation"),
        json!({"flag": "eco", "active": true}),
    )
    .await;
    let ready = wait_for_status(&app, &team.user, a_id, "ready").await;
    assert_eq!(ready["operational"], true, "{ready}");
    let operational = json_with_status(
        app.get_as(&team.user, "/instances?operational=true").await,
        200,
    )
    .await;
    assert_eq!(ids(&operational), vec![a_id.to_owned()]);
    let waiting = json_with_status(
        app.get_as(&team.user, "/instances?operational=false").await,
        200,
    )
    .await;
    assert_eq!(ids(&waiting).len(), 1);
    assert_ne!(ids(&waiting)[0], a_id);
    // Approved but terminated: no longer operational (it serves nothing), in the item and in
    // the filter alike.
    assert_eq!(
        app.post_as(
            &team.admin,
            &format!("/instances/{a_id}/terminate"),
            json!({})
        )
        .await
        .status(),
        202
    );
    let gone = wait_for_status(&app, &team.user, a_id, "terminated").await;
    assert_eq!(gone["operational"], false, "{gone}");
    assert_eq!(gone["missing_activation"], json!([]), "{gone}");
    let operational = json_with_status(
        app.get_as(&team.user, "/instances?operational=true").await,
        200,
    )
    .await;
    assert!(ids(&operational).is_empty(), "{operational}");
    let waiting = json_with_status(
        app.get_as(&team.user, "/instances?operational=false").await,
        200,
    )
    .await;
    assert_eq!(ids(&waiting).len(), 2);
    assert_error(
        app.get_as(&team.user, "/instances?operational=maybe").await,
        400,
        "invalid_query",
    )
    .await;
    for path in ["/instances", "/models", &format!("/instances/{a_id}")] {
        assert_error(app.get(path).await, 401, "unauthorized").await;
    }
}

#[tokio::test]
async fn scoped_list_queries_use_the_organization_id_indexes() {
    let app = spawn_app().await;
    let org = uuid::Uuid::now_v7();
    let (plan_sql, literal) = match app.db.backend() {
        Backend::Postgres => ("EXPLAIN", format!("'{org}'")),
        Backend::Sqlite => ("EXPLAIN QUERY PLAN", format!("X'{}'", org.simple())),
    };
    let queries = [
        (
            format!(
                "SELECT * FROM instances i WHERE i.organization_id = {literal} ORDER BY i.id LIMIT 51"
            ),
            &["ix_instances_org_id"][..],
        ),
        (
            format!(
                "SELECT * FROM models m WHERE m.organization_id = {literal} ORDER BY m.id LIMIT 51"
            ),
            &["ux_models_org_model_id"][..],
        ),
        (
            format!(
                "SELECT * FROM organization_memberships m WHERE m.organization_id = {literal} AND m.role = 'owner'"
            ),
            &[
                "ix_memberships_org_role",
                "organization_memberships_pkey",
                "sqlite_autoindex_organization_memberships",
            ][..],
        ),
        (
            format!(
                "SELECT * FROM organization_invitations i WHERE i.organization_id = {literal} ORDER BY i.id DESC LIMIT 51"
            ),
            &["ix_invitations_org_created"][..],
        ),
        (
            // Not a scoped list, but on the same path: a sign-in reads the user's most recent
            // session, revoked or not (issue 18: it scanned the whole table).
            format!(
                "SELECT * FROM user_sessions s WHERE s.user_id = {literal} ORDER BY s.last_used_at DESC LIMIT 1"
            ),
            &["ix_user_sessions_user_recent"][..],
        ),
    ];
    for (sql, indexes) in queries {
        let plan = app
            .db
            .explain(&format!("{plan_sql} {sql}"))
            .await
            .unwrap()
            .join("\n");
        assert!(
            indexes.iter().any(|index| plan.contains(index)),
            "{sql}\n→ {plan}"
        );
    }
}

/// Issue 18: a page of `GET /instances` is served from the cache until something it shows
/// changes — an instance of that workspace, a model's name, the org's name — on the very next
/// request; another org's instances evict nothing.
#[tokio::test]
async fn instance_pages_are_cached_until_what_they_show_changes() {
    let app = spawn_app().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !app.db.caches_usable() {
        assert!(std::time::Instant::now() < deadline, "caches never usable");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let team = Team::new(&app, "pages").await;
    let other = Team::new(&app, "elsewhere").await;
    let model = private_model(&app, &team.admin, "pages/llm").await;
    let theirs = private_model(&app, &other.admin, "elsewhere/llm").await;
    let first = deploy(&app, &team.admin, json!({"model_id": model})).await;
    let first = first["id"].as_str().unwrap().to_owned();
    // Settled first: a bring-up in progress changes the page on every step.
    wait_for_status(&app, &team.admin, &first, "ready").await;
    let hits = || app.deps.caches.instance_pages.hits();
    let list = || async { json_with_status(app.get_as(&team.user, "/instances").await, 200).await };
    let cached = || async {
        let before = hits();
        let page = list().await;
        assert!(hits() > before, "the page was not served from the cache");
        page
    };
    list().await;
    cached().await;

    // Another org's deployment, its lifecycle and approvals evict nothing here.
    let elsewhere = deploy(&app, &other.admin, json!({"model_id": theirs})).await;
    wait_for_status(
        &app,
        &other.admin,
        elsewhere["id"].as_str().unwrap(),
        "ready",
    )
    .await;
    cached().await;

    // This org's changes show on the next request.
    let second = deploy(&app, &team.admin, json!({"model_id": model})).await;
    let page = list().await;
    assert_eq!(ids(&page).len(), 2);
    assert_eq!(page["items"][0]["status"], "ready");
    let renamed = json!({"name": "Renamed model", "model_id": "pages/llm", "required_vram_gb": 24, "context_length": 4096});
    json_with_status(
        app.put_as(&team.admin, &format!("/models/{model}"), renamed)
            .await,
        200,
    )
    .await;
    assert_eq!(list().await["items"][0]["model_name"], "Renamed model");
    json_with_status(
        app.as_bearer(
            reqwest::Method::PATCH,
            "/organizations/current",
            &team.owner,
        )
        .json(&json!({"name": "Pages renamed"}))
        .send()
        .await
        .unwrap(),
        200,
    )
    .await;
    assert_eq!(
        list().await["items"][0]["organization_name"],
        "Pages renamed"
    );
    let second = second["id"].as_str().unwrap().to_owned();
    let terminate = format!("/instances/{second}/terminate");
    json_with_status(app.post_as(&team.admin, &terminate, json!({})).await, 202).await;
    assert_ne!(list().await["items"][1]["status"], "provisioning");
    wait_for_status(&app, &team.admin, &second, "terminated").await;
    assert_eq!(list().await["items"][1]["status"], "terminated");
    cached().await;
}

/// A terminate that races the bring-up (provisioning → booting → ready, 20 ms a step in
/// tests) is judged again on the new state instead of failing with 409 `invalid_state`: every
/// one of those states may be terminated.
#[tokio::test]
async fn a_terminate_racing_the_bring_up_succeeds() {
    let app = spawn_app().await;
    let model = public_model(&app, "org/llama").await;
    let team = Team::new(&app, "race").await;
    for i in 0..12u64 {
        let id = deploy(&app, &team.admin, json!({"model_id": model})).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        // Spread the terminates over the bring-up's steps.
        tokio::time::sleep(Duration::from_millis(i * 4)).await;
        let res = app
            .post_as(
                &team.admin,
                &format!("/instances/{id}/terminate"),
                json!({}),
            )
            .await;
        json_with_status(res, 202).await;
        wait_for_status(&app, &team.admin, &id, "terminated").await;
    }
}
