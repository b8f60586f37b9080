//! Issue 16, items 1, 2, 5 and 7: org API keys live only while their creator may hold them;
//! API keys never write outside `/v1/*`; nobody chooses another person's password; deleting a
//! model that something uses is a clear 409.

use crate::helpers::{
    ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, assert_error, json_with_status, spawn_app,
};
use crate::instances::{Team, deploy, private_model, public_model, wait_for_status};
use reqwest::Method;
use serde_json::{Value, json};

/// Reads the one-time link's token out of the last email sent to `to`.
async fn emailed_token(app: &TestApp, to: &str) -> String {
    let mail = app.smtp.wait_for(to).await;
    let body = mail.body_text();
    let start = body.find("token=").expect("a link with a token") + "token=".len();
    body[start..].split_whitespace().next().unwrap().to_owned()
}

// --- Item 5: POST /users never takes a password -------------------------------------------------

#[tokio::test]
async fn nobody_chooses_another_persons_password() {
    let app = spawn_app().await;
    let team = Team::new(&app, "acme").await;
    let admin = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.token;
    // The field itself is refused, in an org and for a platform admin in Personal, and no
    // account comes out of it.
    for token in [&team.admin, &admin] {
        let res = app
            .post_as(
                token,
                "/users",
                json!({"email": "victim@example.com", "password": "chosen-by-admin"}),
            )
            .await;
        let body = assert_error(res, 400, "invalid_body").await;
        assert!(
            body["message"].as_str().unwrap().contains("password"),
            "{body}"
        );
    }
    let login = json!({"email": "victim@example.com", "password": "chosen-by-admin"});
    assert_error(
        app.post_json("/auth/login", login.clone()).await,
        401,
        "invalid_credentials",
    )
    .await;

    // Without it: the account exists, nobody can sign into it, its owner gets the link.
    for (token, email) in [
        (&team.admin, "member@example.com"),
        (&admin, "plain@example.com"),
    ] {
        let created = json_with_status(
            app.post_as(token, "/users", json!({"email": email})).await,
            201,
        )
        .await;
        assert_eq!(created["email"], email);
        let link = emailed_token(&app, email).await;
        for guess in ["chosen-by-admin", "a-good-password", ""] {
            let res = app
                .post_json("/auth/login", json!({"email": email, "password": guess}))
                .await;
            assert_eq!(res.status(), 401, "{email} signed in with {guess:?}");
        }
        let res = app
            .post_json(
                "/auth/password-reset/confirm",
                json!({"token": link, "new_password": "my-own-password"}),
            )
            .await;
        assert_eq!(res.status(), 204);
        app.login(email, "my-own-password").await;
        // The link works once.
        let again = app
            .post_json(
                "/auth/password-reset/confirm",
                json!({"token": link, "new_password": "another-password"}),
            )
            .await;
        assert_eq!(again.status().as_u16() / 100, 4);
    }
    app.assert_audit_verifies().await;
}

// --- Item 7: DELETE /models/{id} of a model in use ----------------------------------------------

#[tokio::test]
async fn deleting_a_model_in_use_is_a_conflict_not_a_500() {
    let app = spawn_app().await;
    let team = Team::new(&app, "acme").await;
    // An org model used by an offering only (no instance): the offering's RESTRICT foreign key
    // is what refuses the deletion, mapped by constraint on both backends.
    let model = private_model(&app, &team.admin, "acme/chat").await;
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
    let path = format!("/models/{model}");
    let body = assert_error(app.delete_as(&team.admin, &path).await, 409, "model_in_use").await;
    assert!(
        body["message"].as_str().unwrap().contains("offering"),
        "{body}"
    );
    json_with_status(app.get_as(&team.admin, &path).await, 200).await;
    // Once the offering is gone, the model can go.
    let res = app
        .delete_as(
            &team.admin,
            &format!("/organizations/current/offerings/{offering}"),
        )
        .await;
    assert_eq!(res.status(), 204);
    assert_eq!(app.delete_as(&team.admin, &path).await.status(), 204);
    assert_error(app.get_as(&team.admin, &path).await, 404, "not_found").await;

    // A public model used by an instance of an org and by that org's offering.
    let public = public_model(&app, "meta/llama-3").await;
    let instance = deploy(&app, &team.admin, json!({"model_id": public})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_for_status(&app, &team.admin, &instance, "ready").await;
    json_with_status(
        app.post_as(
            &team.admin,
            "/organizations/current/offerings",
            json!({"model_id": public, "code": "llama", "name": "Llama"}),
        )
        .await,
        201,
    )
    .await;
    let admin = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.token;
    assert_error(
        app.delete_as(&admin, &format!("/models/{public}")).await,
        409,
        "model_in_use",
    )
    .await;
    json_with_status(app.get_as(&admin, &format!("/models/{public}")).await, 200).await;
    app.assert_audit_verifies().await;
}

// --- Item 2: API keys never write outside /v1 ---------------------------------------------------

async fn create_key(app: &TestApp, token: &str, name: &str) -> String {
    let created = json_with_status(
        app.post_as(token, "/api_keys", json!({"name": name})).await,
        201,
    )
    .await;
    created["secret"].as_str().unwrap().to_owned()
}

/// What a write could have changed, read back through the API as the org's owner and counted
/// in the database.
async fn fingerprint(app: &TestApp, owner: &str) -> Value {
    let mut seen = serde_json::Map::new();
    for path in [
        "/auth/me",
        "/organizations",
        "/organizations/current/members",
        "/organizations/current/invitations",
        "/organizations/current/offerings",
        "/organizations/current/shares",
        "/api_keys",
        "/models",
        "/instances",
        "/users",
    ] {
        let mut body = json_with_status(app.get_as(owner, path).await, 200).await;
        // Reading with a key moves its `last_used_at`: not a change made by a write.
        if let Some(items) = body["items"].as_array_mut() {
            for item in items {
                if let Some(item) = item.as_object_mut() {
                    item.remove("last_used_at");
                }
            }
        }
        seen.insert(path.to_owned(), body);
    }
    for table in [
        "users",
        "organizations",
        "organization_memberships",
        "user_sessions",
        "audit_events",
        "password_reset_tokens",
        "organization_invitations",
        "models",
        "instances",
        "api_keys",
        "organization_models",
        "organization_model_shares",
    ] {
        let count = app
            .db
            .query_i64(&format!("SELECT COUNT(*) FROM {table}"))
            .await
            .unwrap();
        seen.insert(table.to_owned(), json!(count));
    }
    let revoked = app
        .db
        .query_i64("SELECT COUNT(*) FROM user_sessions WHERE revoked_at IS NOT NULL")
        .await
        .unwrap();
    seen.insert("revoked_sessions".to_owned(), json!(revoked));
    Value::Object(seen)
}

#[tokio::test]
async fn api_keys_are_refused_by_every_write_outside_v1_before_anything_else() {
    let app = spawn_app().await;
    let team = Team::new(&app, "acme").await;
    let other = Team::new(&app, "other").await;
    let org_key = create_key(&app, &team.owner, "org key").await;
    let personal = app.login("owner@acme.test", "a-good-password").await.token;
    let personal_key = create_key(&app, &personal, "personal key").await;
    // The keys are valid: they read.
    for key in [&org_key, &personal_key] {
        json_with_status(app.get_as(key, "/api_keys").await, 200).await;
        json_with_status(app.get_as(key, "/v1/models").await, 200).await;
    }
    // A pending invitation of the keys' owner to another org: accepting it with a key would
    // make the key's user a member.
    json_with_status(
        app.post_as(
            &other.owner,
            "/organizations/current/invitations",
            json!({"email": "owner@acme.test", "role": "admin"}),
        )
        .await,
        201,
    )
    .await;
    let mail = app.smtp.wait_for("owner@acme.test").await;
    let body = mail.body_text();
    let start = body.find("/invitations/").unwrap() + "/invitations/".len();
    let invitation = body[start..].split_whitespace().next().unwrap().to_owned();

    let before = fingerprint(&app, &team.owner).await;
    let doc = json_with_status(app.get("/openapi.json").await, 200).await;
    let mut walked = Vec::new();
    for (template, item) in doc["paths"].as_object().unwrap() {
        if template == "/v1" || template.starts_with("/v1/") {
            continue;
        }
        for method in ["post", "put", "patch", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            // Every path parameter gets a random UUID: the refusal comes before any lookup.
            let path: String = template
                .split('/')
                .map(|segment| {
                    if segment.starts_with('{') {
                        uuid::Uuid::new_v4().to_string()
                    } else {
                        segment.to_owned()
                    }
                })
                .collect::<Vec<_>>()
                .join("/");
            let verb = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            for key in [&org_key, &personal_key] {
                let by_bearer = app.as_bearer(verb.clone(), &path, key);
                let by_header = app
                    .client
                    .request(verb.clone(), app.url(&path))
                    .header("X-API-Key", key.as_str());
                for request in [by_bearer, by_header] {
                    let res = request.json(&json!({})).send().await.unwrap();
                    assert_error(res, 403, "api_key_not_allowed").await;
                }
            }
            walked.push(format!("{} {template}", method.to_uppercase()));
        }
    }
    // The walk covered the whole API, the public writes included.
    assert!(walked.len() >= 40, "{walked:?}");
    for expected in [
        "PUT /auth/me",
        "POST /auth/login",
        "POST /auth/password-reset/request",
        "POST /organizations/invitations/{token}/accept",
        "POST /users",
        "DELETE /organizations/current/members/{user_id}",
    ] {
        assert!(
            walked.iter().any(|w| w == expected),
            "{expected} not walked"
        );
    }
    // Real targets with valid bodies are refused the same way.
    let accept = format!("/organizations/invitations/{invitation}/accept");
    for key in [&org_key, &personal_key] {
        assert_error(
            app.post_as(key, &accept, json!({})).await,
            403,
            "api_key_not_allowed",
        )
        .await;
        assert_error(
            app.put_as(key, "/auth/me", json!({"first_name": "Mallory"}))
                .await,
            403,
            "api_key_not_allowed",
        )
        .await;
    }
    // A write with a key that does not exist is refused the same way: nothing was looked up.
    let forged = format!("sk-inv-{}", "A".repeat(43));
    assert_error(
        app.put_as(&forged, "/auth/me", json!({"first_name": "Mallory"}))
            .await,
        403,
        "api_key_not_allowed",
    )
    .await;
    assert_eq!(fingerprint(&app, &team.owner).await, before);
    // The invitation is still pending (and a session can still accept it).
    let orgs = json_with_status(app.get_as(&personal, "/organizations").await, 200).await;
    assert_eq!(orgs["items"].as_array().unwrap().len(), 1, "{orgs}");
    json_with_status(
        app.get(&format!("/organizations/invitations/{invitation}"))
            .await,
        200,
    )
    .await;
    // Reads and /v1 still work with the same keys.
    for key in [&org_key, &personal_key] {
        json_with_status(app.get_as(key, "/v1/models").await, 200).await;
    }
    app.assert_audit_verifies().await;
}
