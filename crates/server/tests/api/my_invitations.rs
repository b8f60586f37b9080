//! A signed-in user's pending invitations (issue 20): `GET /auth/invitations` lists those sent
//! to their email by any org, and `POST /auth/invitations/{id}/accept` accepts one without the
//! emailed link — never one sent to another address, and each exactly once.

use crate::helpers::{assert_error, json_with_status, spawn_app};
use crate::instances::{PW, Team};
use futures_util::future::join_all;
use serde_json::{Value, json};

fn names(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["organization_slug"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn my_pending_invitations_are_listed_and_accepted_while_signed_in() {
    let app = spawn_app().await;
    let acme = Team::new(&app, "acme").await;
    let beta = Team::new(&app, "beta").await;
    app.create_user("dana@example.com", PW).await;
    let invite = |team: &Team, email: &str| {
        let (app, owner, email) = (&app, team.owner.clone(), email.to_owned());
        async move {
            json_with_status(
                app.post_as(
                    &owner,
                    "/organizations/current/invitations",
                    json!({"email": email, "role": "manager"}),
                )
                .await,
                201,
            )
            .await["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let from_acme = invite(&acme, "dana@example.com").await;
    invite(&beta, "dana@example.com").await;
    let someone_elses = invite(&acme, "eve@example.com").await;

    let dana = app.login("dana@example.com", PW).await.token;
    let mine = json_with_status(app.get_as(&dana, "/auth/invitations").await, 200).await;
    assert_eq!(names(&mine), ["acme", "beta"], "{mine}");
    assert_eq!(mine["items"][0]["role"], "manager");
    assert_eq!(mine["items"][0]["invited_by"], "owner@acme.test");
    // Paged like every list.
    let first = json_with_status(app.get_as(&dana, "/auth/invitations?limit=1").await, 200).await;
    assert_eq!(names(&first), ["acme"]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = json_with_status(
        app.get_as(&dana, &format!("/auth/invitations?limit=1&cursor={cursor}"))
            .await,
        200,
    )
    .await;
    assert_eq!(names(&second), ["beta"]);

    // Someone else's invitation: not found, whatever its id.
    assert_error(
        app.post_as(
            &dana,
            &format!("/auth/invitations/{someone_elses}/accept"),
            json!({}),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    let accepted = json_with_status(
        app.post_as(
            &dana,
            &format!("/auth/invitations/{from_acme}/accept"),
            json!({}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        (
            accepted["organization_slug"].as_str(),
            accepted["role"].as_str()
        ),
        (Some("acme"), Some("manager"))
    );
    // A member of acme now, as manager; the session stays in its workspace.
    let orgs = json_with_status(app.get_as(&dana, "/organizations").await, 200).await;
    assert_eq!(orgs["items"][0]["role"], "manager", "{orgs}");
    assert_eq!(app.me(&dana).await["current_organization_id"], Value::Null);
    // Used: no longer listed, and a second accept is refused.
    let mine = json_with_status(app.get_as(&dana, "/auth/invitations").await, 200).await;
    assert_eq!(names(&mine), ["beta"]);
    assert_error(
        app.post_as(
            &dana,
            &format!("/auth/invitations/{from_acme}/accept"),
            json!({}),
        )
        .await,
        410,
        "invitation_gone",
    )
    .await;
    // The inviter sees it accepted; the org's chain has both events.
    let list = json_with_status(
        app.get_as(
            &acme.owner,
            "/organizations/current/invitations?status=accepted",
        )
        .await,
        200,
    )
    .await;
    assert_eq!(list["items"][0]["id"], from_acme.as_str());
    app.assert_audit_verifies().await;
    // Without a session, nothing is listed.
    assert_error(app.get("/auth/invitations").await, 401, "unauthorized").await;
}

#[tokio::test]
async fn an_invitation_is_accepted_once_under_parallel_accepts_by_id() {
    let app = spawn_app().await;
    let acme = Team::new(&app, "acme").await;
    app.create_user("dana@example.com", PW).await;
    let id = json_with_status(
        app.post_as(
            &acme.owner,
            "/organizations/current/invitations",
            json!({"email": "dana@example.com"}),
        )
        .await,
        201,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let dana = app.login("dana@example.com", PW).await.token;
    let path = format!("/auth/invitations/{id}/accept");
    let tries = (0..12).map(|_| app.post_as(&dana, &path, json!({})));
    let mut accepted = 0;
    for res in join_all(tries).await {
        match res.status().as_u16() {
            200 => accepted += 1,
            status => assert!(status == 410 || status == 409, "{status}"),
        }
    }
    assert_eq!(accepted, 1);
    let members = json_with_status(
        app.get_as(&acme.owner, "/organizations/current/members")
            .await,
        200,
    )
    .await;
    assert_eq!(members["items"].as_array().unwrap().len(), 5, "{members}");
}
