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
