//! Organizations, memberships, invitations and the org audit trail (issue 4; SPEC §2.1, §2.2,
//! §4.2): role tests for every endpoint, cross-tenant tests, the invitation lifecycle over
//! real SMTP, and the last-owner and single-use invariants under concurrency.

use crate::helpers::{
    ADMIN_EMAIL, ADMIN_PASSWORD, ReceivedMail, TestApp, assert_error, audited_renames,
    json_with_status, spawn_app,
};
use inventiv_domain::{OrgId, Role, UserId};
use inventiv_persistence::repo::memberships;
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;

const PW: &str = "a-good-password";
const ROLES: [Role; 4] = [Role::Owner, Role::Admin, Manager, Role::User];
use Role::Manager;

/// An org with one member of each role, each signed in and switched into it, plus an outsider
/// (no membership, personal workspace).
struct Org4 {
    id: OrgId,
    users: Vec<(Role, UserId, String)>,
    outsider: String,
}

impl Org4 {
    async fn new(app: &TestApp, slug: &str) -> Org4 {
        let mut members = Vec::new();
        for role in ROLES {
            let email = format!("{}@{slug}.test", role.as_str());
            members.push((role, app.create_user(&email, PW).await, email));
        }
        let pairs: Vec<(UserId, Role)> = members.iter().map(|(r, u, _)| (*u, *r)).collect();
        let id = app.create_org(slug, &pairs).await;
        let mut users = Vec::new();
        for (role, user, email) in members {
            let token = app
                .switch(&app.login(&email, PW).await.token, Some(id))
                .await;
            users.push((role, user, token));
        }
        let outsider_email = format!("outsider@{slug}.test");
        app.create_user(&outsider_email, PW).await;
        let outsider = app.login(&outsider_email, PW).await.token;
        Org4 {
            id,
            users,
            outsider,
        }
    }

    fn token(&self, role: Role) -> &str {
        &self.users.iter().find(|(r, _, _)| *r == role).unwrap().2
    }

    fn user(&self, role: Role) -> UserId {
        self.users.iter().find(|(r, _, _)| *r == role).unwrap().1
    }
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = app.client.request(method, app.url(path));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.unwrap()
}

fn invitation_token(mail: &ReceivedMail) -> String {
    let body = mail.body_text();
    let start = body.find("/invitations/").expect("link in the email") + "/invitations/".len();
    body[start..].split_whitespace().next().unwrap().to_owned()
}

#[tokio::test]
async fn creating_an_org_makes_the_creator_owner_and_switches_the_session() {
    let app = spawn_app().await;
    app.create_user("alice@example.com", PW).await;
    let s = app.login("alice@example.com", PW).await;
    let res = app
        .post_as(
            &s.token,
            "/organizations",
            json!({"name": "Acme Research Lab"}),
        )
        .await;
    assert!(
        res.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("inventiv_session=")
    );
    let org = json_with_status(res, 201).await;
    assert_eq!(org["slug"], "acme-research-lab");
    assert_eq!(org["role"], "owner");
    let token = org["access_token"].as_str().unwrap();
    let me = app.me(token).await;
    assert_eq!(me["current_organization_slug"], "acme-research-lab");
    assert_eq!(me["current_organization_role"], "owner");
    assert_error(app.get_as(&s.token, "/auth/me").await, 401, "unauthorized").await;

    let res = app
        .post_as(
            token,
            "/organizations",
            json!({"name": "Other", "slug": "acme-research-lab"}),
        )
        .await;
    assert_error(res, 409, "slug_taken").await;
    let res = app
        .post_as(
            token,
            "/organizations",
            json!({"name": "Bad", "slug": "Not A Slug"}),
        )
        .await;
    assert!(assert_error(res, 400, "validation_failed").await["fields"]["slug"].is_string());
    let second = json_with_status(
        app.post_as(
            token,
            "/organizations",
            json!({"name": "Second", "set_as_current": false}),
        )
        .await,
        201,
    )
    .await;
    assert!(second.get("access_token").is_none());
    app.me(token).await; // not switched: the token still works

    let page1 = json_with_status(app.get_as(token, "/organizations?limit=1").await, 200).await;
    assert_eq!(page1["items"].as_array().unwrap().len(), 1);
    let cursor = page1["next_cursor"].as_str().unwrap();
    let page2 = json_with_status(
        app.get_as(token, &format!("/organizations?limit=1&cursor={cursor}"))
            .await,
        200,
    )
    .await;
    assert_eq!(page2["items"].as_array().unwrap().len(), 1);
    assert_eq!(page2["next_cursor"], Value::Null);
    assert_eq!(page2["items"][0]["member_count"], 1);
    assert_ne!(page1["items"][0]["id"], page2["items"][0]["id"]);
    assert_error(
        app.get_as(token, "/organizations?limit=0").await,
        400,
        "validation_failed",
    )
    .await;
    assert_error(
        app.get_as(token, "/organizations?cursor=%%%").await,
        400,
        "validation_failed",
    )
    .await;
    app.assert_audit_verifies().await;
}

/// Every endpoint × {owner, admin, manager, user, non-member, anonymous}: the status §2.3 says.
#[tokio::test]
async fn role_matrix_of_every_org_endpoint() {
    let app = spawn_app().await;
    let org = Org4::new(&app, "matrix").await;
    let stranger = app.create_user("victim@matrix.test", PW).await;
    app.add_member(org.id, stranger, Role::User).await;
    let victim = stranger.to_string();

    // (method, path, body, [owner, admin, manager, user, non-member, anonymous])
    let cases: Vec<(Method, String, Option<Value>, [u16; 6])> = vec![
        (
            Method::GET,
            "/organizations".into(),
            None,
            [200, 200, 200, 200, 200, 401],
        ),
        (
            Method::GET,
            "/organizations/current/members".into(),
            None,
            [200, 200, 200, 200, 403, 401],
        ),
        (
            Method::PATCH,
            "/organizations/current".into(),
            Some(json!({"name": "Renamed"})),
            [200, 403, 403, 403, 403, 401],
        ),
        (
            Method::GET,
            "/organizations/current/invitations".into(),
            None,
            [200, 200, 200, 403, 403, 401],
        ),
        (
            Method::POST,
            "/organizations/current/invitations".into(),
            Some(json!({"email": "x@y.test"})),
            [201, 409, 409, 403, 403, 401],
        ),
        (
            Method::GET,
            "/organizations/current/audit".into(),
            None,
            [200, 200, 200, 403, 403, 401],
        ),
        (
            Method::PUT,
            format!("/organizations/current/members/{victim}"),
            Some(json!({"role": "user"})),
            [200, 200, 200, 403, 403, 401],
        ),
        (
            Method::PUT,
            format!("/organizations/current/members/{victim}"),
            Some(json!({"role": "admin"})),
            [200, 200, 403, 403, 403, 401],
        ),
    ];
    for (method, path, body, expected) in cases {
        let tokens = [
            Some(org.token(Role::Owner)),
            Some(org.token(Role::Admin)),
            Some(org.token(Manager)),
            Some(org.token(Role::User)),
            Some(org.outsider.as_str()),
            None,
        ];
        for (i, token) in tokens.into_iter().enumerate() {
            let res = send(&app, method.clone(), &path, token, body.clone()).await;
            let status = res.status().as_u16();
            let text = res.text().await.unwrap();
            assert_eq!(status, expected[i], "{method} {path} as actor #{i}: {text}");
            if status == 403 && i == 4 {
                assert!(text.contains("organization_required"), "{text}");
            }
            // Put the victim back for the next actor.
            app.set_member_role(org.id, stranger, Role::User).await;
        }
        app.set_member_role(org.id, stranger, Role::User).await;
    }
}

#[tokio::test]
async fn change_role_follows_the_delegation_rule_for_every_triple() {
    let app = spawn_app().await;
    let org = Org4::new(&app, "triples").await;
    let target = app.create_user("target@triples.test", PW).await;
    app.add_member(org.id, target, Role::User).await;
    // §2.1, written out: what each actor may assign.
    let assignable = |actor: Role| -> &'static [Role] {
        match actor {
            Role::Owner => &[Role::Owner, Role::Admin, Manager, Role::User],
            Role::Admin => &[Role::Admin, Role::User],
            Manager => &[Manager, Role::User],
            Role::User => &[],
        }
    };
    for actor in ROLES {
        for from in ROLES {
            for to in ROLES {
                app.set_member_role(org.id, target, from).await;
                let res = app
                    .put_as(
                        org.token(actor),
                        &format!("/organizations/current/members/{target}"),
                        json!({"role": to.as_str()}),
                    )
                    .await;
                let allowed = assignable(actor).contains(&from) && assignable(actor).contains(&to);
                let expected = if allowed { 200 } else { 403 };
                let status = res.status().as_u16();
                let body: Value = res.json().await.unwrap();
                assert_eq!(
                    status, expected,
                    "{actor:?} changing {from:?}→{to:?}: {body}"
                );
                let now = memberships::find(&app.db, org.id, target)
                    .await
                    .unwrap()
                    .unwrap()
                    .role;
                assert_eq!(
                    now,
                    if allowed { to } else { from },
                    "{actor:?} {from:?}→{to:?}"
                );
                if status == 403 && actor != Role::User {
                    assert_eq!(body["error"], "role_change_not_allowed");
                }
            }
        }
    }
}

#[tokio::test]
async fn remove_follows_the_delegation_rule_and_kills_the_removed_members_workspace() {
    let app = spawn_app().await;
    for actor in ROLES {
        for target_role in ROLES {
            let org = Org4::new(
                &app,
                &format!("rm-{}-{}", actor.as_str(), target_role.as_str()),
            )
            .await;
            let email = format!("t-{}-{}@rm.test", actor.as_str(), target_role.as_str());
            let target = app.create_user(&email, PW).await;
            app.add_member(org.id, target, target_role).await;
            let target_token = app
                .switch(&app.login(&email, PW).await.token, Some(org.id))
                .await;
            let res = app
                .delete_as(
                    org.token(actor),
                    &format!("/organizations/current/members/{target}"),
                )
                .await;
            let allowed = match actor {
                Role::Owner => true,
                Role::Admin => matches!(target_role, Role::Admin | Role::User),
                Manager => matches!(target_role, Manager | Role::User),
                Role::User => false,
            };
            assert_eq!(
                res.status().as_u16(),
                if allowed { 204 } else { 403 },
                "{actor:?} removing {target_role:?}"
            );
            let me = app.me(&target_token).await;
            if allowed {
                assert_eq!(
                    me["current_organization_id"],
                    Value::Null,
                    "removed → Personal at once"
                );
            } else {
                assert_eq!(me["current_organization_id"], org.id.to_string());
            }
        }
    }
}

#[tokio::test]
async fn the_last_owner_cannot_leave_be_demoted_or_removed() {
    let app = spawn_app().await;
    let org = Org4::new(&app, "lonely").await;
    let owner = org.user(Role::Owner);
    assert_error(
        app.post_as(
            org.token(Role::Owner),
            "/organizations/current/leave",
            json!({}),
        )
        .await,
        409,
        "last_owner",
    )
    .await;
    let res = app
        .put_as(
            org.token(Role::Owner),
            &format!("/organizations/current/members/{owner}"),
            json!({"role": "admin"}),
        )
        .await;
    assert_error(res, 409, "last_owner").await;
    assert_error(
        app.delete_as(
            org.token(Role::Owner),
            &format!("/organizations/current/members/{owner}"),
        )
        .await,
        409,
        "last_owner",
    )
    .await;
    // Others may leave; the leaver's session is back in Personal.
    assert_eq!(
        app.post_as(
            org.token(Role::User),
            "/organizations/current/leave",
            json!({})
        )
        .await
        .status(),
        204
    );
    assert_eq!(
        app.me(org.token(Role::User)).await["current_organization_id"],
        Value::Null
    );
    // With a second owner, the first may go.
    let admin = org.user(Role::Admin);
    json_with_status(
        app.put_as(
            org.token(Role::Owner),
            &format!("/organizations/current/members/{admin}"),
            json!({"role": "owner"}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        app.post_as(
            org.token(Role::Owner),
            "/organizations/current/leave",
            json!({})
        )
        .await
        .status(),
        204
    );
    assert_eq!(memberships::count_owners(&app.db, org.id).await.unwrap(), 1);
    app.assert_audit_verifies().await;
}

async fn two_owner_race(app: &TestApp, round: usize) {
    let a = app.create_user(&format!("a{round}@race.test"), PW).await;
    let b = app.create_user(&format!("b{round}@race.test"), PW).await;
    let org = app
        .create_org(
            &format!("race-{round}"),
            &[(a, Role::Owner), (b, Role::Owner)],
        )
        .await;
    let ta = app
        .switch(
            &app.login(&format!("a{round}@race.test"), PW).await.token,
            Some(org),
        )
        .await;
    let tb = app
        .switch(
            &app.login(&format!("b{round}@race.test"), PW).await.token,
            Some(org),
        )
        .await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let (client, base) = (app.client.clone(), app.address.clone());
        let (token, other) = if i % 2 == 0 {
            (ta.clone(), b)
        } else {
            (tb.clone(), a)
        };
        tasks.push(tokio::spawn(async move {
            let req = match i % 4 {
                0 | 1 => client
                    .put(format!("{base}/organizations/current/members/{other}"))
                    .json(&json!({"role": "user"})),
                _ => client.post(format!("{base}/organizations/current/leave")),
            };
            req.bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    for t in tasks {
        let status = t.await.unwrap();
        assert!(
            [200, 204, 403, 404, 409].contains(&status),
            "unexpected {status}"
        );
    }
    let owners = memberships::count_owners(&app.db, org).await.unwrap();
    assert!(owners >= 1, "round {round}: the org lost all its owners");
}

#[tokio::test]
async fn two_owners_demoting_each_other_or_leaving_in_parallel_never_orphan_the_org() {
    let app = spawn_app().await;
    for round in 0..20 {
        two_owner_race(&app, round).await;
    }
    app.assert_audit_verifies().await;
}

/// An account being deleted by a platform admin while its org's only owner promotes it to
/// owner and then leaves: whatever the interleaving, the org keeps an owner. The deletion
/// must check every org the account belongs to under the owners' lock, not only the orgs it
/// owned when it started (a promotion committed meanwhile would let the old owner leave, and
/// the deletion then cascade the new owner's membership away). Many orgs race at once.
#[tokio::test]
async fn deleting_an_account_while_it_is_promoted_never_orphans_the_org() {
    let app = spawn_app().await;
    let admin = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.token;
    let mut races = Vec::new();
    for round in 0..24 {
        let owner = app.create_user(&format!("o{round}@del.test"), PW).await;
        let member = app.create_user(&format!("m{round}@del.test"), PW).await;
        let org = app
            .create_org(
                &format!("del-{round}"),
                &[(owner, Role::Owner), (member, Role::Admin)],
            )
            .await;
        let token = app
            .switch(
                &app.login(&format!("o{round}@del.test"), PW).await.token,
                Some(org),
            )
            .await;
        races.push((org, member, token));
    }
    let runs = races.iter().map(|(org, member, token)| {
        let (app, admin) = (&app, &admin);
        async move {
            let account = format!("/users/{member}");
            let delete = app.delete_as(admin, &account);
            let promote_then_leave = async {
                let path = format!("/organizations/current/members/{member}");
                let promoted = app.put_as(token, &path, json!({"role": "owner"})).await;
                let left = app
                    .post_as(token, "/organizations/current/leave", json!({}))
                    .await;
                [promoted.status().as_u16(), left.status().as_u16()]
            };
            let (deleted, [promoted, left]) =
                futures_util::future::join(delete, promote_then_leave).await;
            let statuses = [deleted.status().as_u16(), promoted, left];
            let owners = memberships::count_owners(&app.db, *org).await.unwrap();
            (owners, statuses)
        }
    });
    for (round, (owners, statuses)) in futures_util::future::join_all(runs)
        .await
        .into_iter()
        .enumerate()
    {
        assert!(
            owners >= 1,
            "round {round}: the org lost all its owners ({statuses:?})"
        );
        assert!(
            statuses.iter().all(|s| [200, 204, 404, 409].contains(s)),
            "round {round}: {statuses:?}"
        );
    }
    app.assert_audit_verifies().await;
}

/// An owner deleting the org while the other owner demotes them: the deletion decides from
/// the caller's role as it is under the org's lock, so it never succeeds after a demotion that
/// committed first (both answering success would mean a `user` deleted the org), and the two
/// never deadlock (both take the org's row before its audit chain head). Many orgs race at once.
#[tokio::test]
async fn an_owner_demoted_meanwhile_never_deletes_the_org() {
    let app = spawn_app().await;
    let mut races = Vec::new();
    for round in 0..16 {
        let mut ids = Vec::new();
        for who in ["a", "b"] {
            ids.push(
                app.create_user(&format!("{who}{round}@gone.test"), PW)
                    .await,
            );
        }
        let members = [(ids[0], Role::Owner), (ids[1], Role::Owner)];
        let org = app.create_org(&format!("gone-{round}"), &members).await;
        let mut tokens = Vec::new();
        for who in ["a", "b"] {
            let session = app.login(&format!("{who}{round}@gone.test"), PW).await;
            tokens.push(app.switch(&session.token, Some(org)).await);
        }
        races.push((ids[1], tokens));
    }
    let runs = races.iter().map(|(b, tokens)| {
        let app = &app;
        async move {
            let path = format!("/organizations/current/members/{b}");
            let demote = app.put_as(&tokens[0], &path, json!({"role": "user"}));
            let delete = app.delete_as(&tokens[1], "/organizations/current");
            let (demoted, deleted) = futures_util::future::join(demote, delete).await;
            [demoted.status().as_u16(), deleted.status().as_u16()]
        }
    });
    for (round, [demoted, deleted]) in futures_util::future::join_all(runs)
        .await
        .into_iter()
        .enumerate()
    {
        assert!(
            [200, 403, 404].contains(&demoted) && [204, 403].contains(&deleted),
            "round {round}: demote {demoted}, delete {deleted}"
        );
        assert!(
            !(demoted == 200 && deleted == 204),
            "round {round}: a demoted owner deleted the org"
        );
    }
    app.assert_audit_verifies().await;
}

/// A POST in `org`, saying so as the console does (`X-Inventiv-Workspace`): a request that
/// reaches the server after the org's deletion is refused with 409 `workspace_changed` rather
/// than run in the Personal workspace the session fell back to.
fn in_org(app: &TestApp, token: &str, org: OrgId, path: &str) -> reqwest::RequestBuilder {
    in_org_as(app, Method::POST, token, org, path)
}

fn in_org_as(
    app: &TestApp,
    method: Method,
    token: &str,
    org: OrgId,
    path: &str,
) -> reqwest::RequestBuilder {
    app.as_bearer(method, path, token)
        .header("X-Inventiv-Workspace", org.to_string())
}

/// Deleting an org while a member deploys into it: the deletion reads the live instances
/// under the org's lock, so either the deployment lands first and the deletion is refused
/// (`org_has_instances`), or the deletion lands first and the deployment is refused with 409
/// `workspace_changed`; never a 500, and never an org deleted from under a live instance.
#[tokio::test]
async fn an_org_is_never_deleted_from_under_a_deployment() {
    let app = spawn_app().await;
    let model = crate::instances::public_model(&app, "org/llama").await;
    let mut teams = Vec::new();
    for round in 0..12 {
        teams.push(crate::instances::Team::new(&app, &format!("dep-{round}")).await);
    }
    let runs = teams.iter().map(|team| {
        let (app, model) = (&app, &model);
        async move {
            let deploy = in_org(app, &team.admin, team.org, "/deployments")
                .json(&json!({"model_id": model}))
                .send();
            let delete = app.delete_as(&team.owner, "/organizations/current");
            let (deployed, deleted) = futures_util::future::join(deploy, delete).await;
            let deployed = deployed.unwrap();
            let deployed = (deployed.status().as_u16(), deployed.text().await.unwrap());
            (deployed, deleted.status().as_u16(), team.org)
        }
    });
    for (round, (deployed, deleted, org)) in futures_util::future::join_all(runs)
        .await
        .into_iter()
        .enumerate()
    {
        let org_left = inventiv_persistence::repo::organizations::find_by_id(&app.db, org)
            .await
            .unwrap()
            .is_some();
        match (deployed.0, deleted) {
            (201, 409) => assert!(org_left, "round {round}"),
            (409, 204) => {
                assert!(!org_left, "round {round}");
                assert!(
                    deployed.1.contains("workspace_changed"),
                    "round {round}: {deployed:?}"
                );
            }
            other => panic!("round {round}: {other:?}, {deployed:?}"),
        }
    }
    app.assert_audit_verifies().await;
}

/// Every kind of creation in an org racing the org's deletion: the creation holds the org
/// in its transaction, so it either lands first (and the deletion still succeeds, taking the
/// new row with the org) or finds the org gone and answers 409 `workspace_changed`; never a
/// 500 on the foreign key. Three orgs per kind, all racing at once.
#[tokio::test]
async fn creations_racing_the_org_deletion_never_fail_with_500() {
    let app = spawn_app().await;
    let model = crate::instances::public_model(&app, "org/llama").await;
    // (kind, path, body), each made by the org's admin
    let kinds: Vec<(&str, &str, Value)> = vec![
        ("key", "/api_keys", json!({"name": "k"})),
        (
            "invitation",
            "/organizations/current/invitations",
            json!({"email": "new@gone.test"}),
        ),
        (
            "offering",
            "/organizations/current/offerings",
            json!({"model_id": model, "code": "chat", "name": "Chat"}),
        ),
        (
            "model",
            "/models",
            json!({"model_id": "tiny", "name": "Tiny"}),
        ),
        ("project", "/workbench/projects", json!({"name": "p"})),
    ];
    let mut races = Vec::new();
    for (kind, path, body) in &kinds {
        for round in 0..3 {
            let team = crate::instances::Team::new(&app, &format!("{kind}-{round}")).await;
            races.push((*kind, *path, body.clone(), team));
        }
    }
    let runs = races.iter().map(|(kind, path, body, team)| {
        let app = &app;
        async move {
            let create = in_org(app, &team.admin, team.org, path).json(body).send();
            let delete = app.delete_as(&team.owner, "/organizations/current");
            let (created, deleted) = futures_util::future::join(create, delete).await;
            let created = created.unwrap();
            let created = (created.status().as_u16(), created.text().await.unwrap());
            (*kind, created, deleted.status().as_u16())
        }
    });
    for (kind, created, deleted) in futures_util::future::join_all(runs).await {
        assert_eq!(deleted, 204, "{kind}: {created:?}");
        match created.0 {
            201 => {}
            409 => assert!(
                created.1.contains("workspace_changed"),
                "{kind}: {created:?}"
            ),
            _ => panic!("{kind}: {created:?}"),
        }
    }
    app.assert_audit_verifies().await;
}

/// Invitations accepted (by newcomers, creating their accounts) while the org is deleted: the
/// accept holds the org before it locks the invitation and the org's chain, the order the
/// deletion takes them in, so the two queue instead of deadlocking. Either the accept lands
/// first (and the new member goes with the org), or the invitation is gone with the org.
#[tokio::test]
async fn invitations_accepted_while_the_org_is_deleted_never_deadlock() {
    let app = spawn_app().await;
    let mut races = Vec::new();
    for round in 0..20 {
        let team = crate::instances::Team::new(&app, &format!("inv-{round}")).await;
        let email = format!("new{round}@inv.test");
        let res = app
            .post_as(
                &team.owner,
                "/organizations/current/invitations",
                json!({"email": email}),
            )
            .await;
        json_with_status(res, 201).await;
        let token = invitation_token(&app.smtp.wait_for(&email).await);
        races.push((team, token));
    }
    let runs = races.iter().map(|(team, token)| {
        let app = &app;
        async move {
            let path = format!("/organizations/invitations/{token}/accept");
            let accept = app.post_json(&path, json!({"password": "invitee-password"}));
            let delete = app.delete_as(&team.owner, "/organizations/current");
            let (accepted, deleted) = futures_util::future::join(accept, delete).await;
            let accepted = (accepted.status().as_u16(), accepted.text().await.unwrap());
            (accepted, deleted.status().as_u16())
        }
    });
    for (accepted, deleted) in futures_util::future::join_all(runs).await {
        assert_eq!(deleted, 204, "{accepted:?}");
        assert!([200, 404, 410].contains(&accepted.0), "{accepted:?}");
    }
    app.assert_audit_verifies().await;
}

/// Changes inside an org racing its deletion (renames of a key, three at once): each locks
/// its row and then the org's chain head; the deletion locks the org's row, deletes it
/// (cascading to those rows) and only then appends to the chain, so neither ever waits for
/// the other in a cycle. Never a deadlock (503), never a 500.
#[tokio::test]
async fn changes_racing_the_org_deletion_never_deadlock() {
    let app = spawn_app().await;
    let mut races = Vec::new();
    for round in 0..12 {
        let team = crate::instances::Team::new(&app, &format!("chg-{round}")).await;
        let created = app
            .post_as(&team.admin, "/api_keys", json!({"name": "k"}))
            .await;
        let key = json_with_status(created, 201).await["key"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        races.push((team, key));
    }
    let runs = races.iter().map(|(team, key)| {
        let app = &app;
        async move {
            let path = format!("/api_keys/{key}");
            let renames = (0..3).map(|i| {
                in_org_as(app, Method::PUT, &team.owner, team.org, &path)
                    .json(&json!({"name": format!("k{i}")}))
                    .send()
            });
            let delete = app.delete_as(&team.owner, "/organizations/current");
            let (renamed, deleted) =
                futures_util::future::join(futures_util::future::join_all(renames), delete).await;
            let renamed: Vec<u16> = renamed
                .into_iter()
                .map(|r| r.unwrap().status().as_u16())
                .collect();
            (renamed, deleted.status().as_u16())
        }
    });
    for (renamed, deleted) in futures_util::future::join_all(runs).await {
        assert_eq!(deleted, 204, "{renamed:?}");
        assert!(
            renamed.iter().all(|s| [200, 404, 409].contains(s)),
            "{renamed:?}"
        );
    }
    app.assert_audit_verifies().await;
}

/// Renames racing on one org: each `org.updated` event carries the name it actually replaced,
/// so the trail reads as one sequence (the org is read under its row lock in the changing
/// transaction).
#[tokio::test]
async fn concurrent_renames_of_an_org_audit_each_the_name_it_replaced() {
    let app = spawn_app().await;
    let org = Org4::new(&app, "renamed-often").await;
    let renames = (0..12).map(|i| {
        let request = app
            .as_bearer(
                Method::PATCH,
                "/organizations/current",
                org.token(Role::Owner),
            )
            .json(&json!({"name": format!("Name {i}")}));
        async move { json_with_status(request.send().await.unwrap(), 200).await }
    });
    futures_util::future::join_all(renames).await;
    let renames = audited_renames(&app, org.id, "org.updated").await;
    assert_eq!(renames.len(), 12);
    app.assert_audit_verifies().await;
}

#[tokio::test]
async fn update_and_delete_the_current_org() {
    let app = spawn_app().await;
    let org = Org4::new(&app, "doomed").await;
    let updated = json_with_status(
        app.as_bearer(
            Method::PATCH,
            "/organizations/current",
            org.token(Role::Owner),
        )
        .json(&json!({"name": "Renamed Org", "require_distinct_activators": true}))
        .send()
        .await
        .unwrap(),
        200,
    )
    .await;
    assert_eq!(
        (
            updated["name"].as_str(),
            updated["require_distinct_activators"].as_bool()
        ),
        (Some("Renamed Org"), Some(true))
    );
    assert_eq!(
        app.delete_as(org.token(Role::Admin), "/organizations/current")
            .await
            .status(),
        403
    );
    assert_eq!(
        app.delete_as(org.token(Role::Owner), "/organizations/current")
            .await
            .status(),
        204
    );
    for role in ROLES {
        assert_eq!(
            app.me(org.token(role)).await["current_organization_id"],
            Value::Null,
            "{role:?} back in Personal"
        );
    }
    let events = inventiv_persistence::repo::audit::list(&app.db, org.id, Default::default(), 50)
        .await
        .unwrap();
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions[..2], ["org.deleted", "org.updated"], "{actions:?}");
    let updated_event = &events[1];
    assert_eq!(updated_event.before.as_ref().unwrap()["name"], "Org doomed");
    assert_eq!(updated_event.after.as_ref().unwrap()["name"], "Renamed Org");
    app.assert_audit_verifies().await;
}

#[tokio::test]
async fn ids_of_another_org_are_404_and_nothing_changes_there() {
    let app = spawn_app().await;
    let a = Org4::new(&app, "tenant-a").await;
    let b = Org4::new(&app, "tenant-b").await;
    let res = app
        .post_as(
            b.token(Role::Owner),
            "/organizations/current/invitations",
            json!({"email": "guest@b.test"}),
        )
        .await;
    let b_invitation = json_with_status(res, 201).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b_user = b.user(Role::User);
    let owner_a = a.token(Role::Owner);

    let res = app
        .put_as(
            owner_a,
            &format!("/organizations/current/members/{b_user}"),
            json!({"role": "admin"}),
        )
        .await;
    assert_error(res, 404, "not_found").await;
    assert_error(
        app.delete_as(owner_a, &format!("/organizations/current/members/{b_user}"))
            .await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        app.delete_as(
            owner_a,
            &format!("/organizations/current/invitations/{b_invitation}"),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    let res = app
        .post_as(
            owner_a,
            &format!("/organizations/current/invitations/{b_invitation}/resend"),
            json!({}),
        )
        .await;
    assert_error(res, 404, "not_found").await;
    let res = app
        .put_as(
            owner_a,
            "/organizations/current",
            json!({"organization_id": b.id.to_string()}),
        )
        .await;
    assert_error(res, 403, "not_a_member").await;

    // Lists in A show nothing of B.
    let members = json_with_status(
        app.get_as(owner_a, "/organizations/current/members").await,
        200,
    )
    .await;
    assert!(
        members["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["email"].as_str().unwrap().ends_with("@tenant-a.test"))
    );
    let invitations = json_with_status(
        app.get_as(owner_a, "/organizations/current/invitations")
            .await,
        200,
    )
    .await;
    assert_eq!(invitations["items"].as_array().unwrap().len(), 0);
    let audit = json_with_status(
        app.get_as(owner_a, "/organizations/current/audit?limit=200")
            .await,
        200,
    )
    .await;
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["organization_id"] == a.id.to_string())
    );

    // Nothing changed in B.
    assert_eq!(
        memberships::find(&app.db, b.id, b_user)
            .await
            .unwrap()
            .unwrap()
            .role,
        Role::User
    );
    let b_list = json_with_status(
        app.get_as(b.token(Role::Owner), "/organizations/current/invitations")
            .await,
        200,
    )
    .await;
    assert_eq!(b_list["items"][0]["status"], "pending");
}

#[tokio::test]
async fn invitation_lifecycle_over_real_email_including_the_anonymous_account_creation() {
    let app = spawn_app().await;
    let org = Org4::new(&app, "inviting").await;
    let res = app
        .post_as(
            org.token(Role::Owner),
            "/organizations/current/invitations",
            json!({"email": "New.Person@Example.com", "role": "manager"}),
        )
        .await;
    let invitation = json_with_status(res, 201).await;
    assert_eq!(
        (
            invitation["email"].as_str(),
            invitation["role"].as_str(),
            invitation["status"].as_str()
        ),
        (
            Some("new.person@example.com"),
            Some("manager"),
            Some("pending")
        )
    );
    assert!(
        invitation.to_string().find("token").is_none(),
        "the token never reaches the inviter: {invitation}"
    );

    let mail = app.smtp.wait_for("new.person@example.com").await;
    assert!(mail.header("Subject").unwrap().contains("Org inviting"));
    let token = invitation_token(&mail);
    assert!(mail.body_text().contains(&format!(
        "{}/invitations/{token}",
        app.settings.server.public_url
    )));

    let preview = json_with_status(
        app.get(&format!("/organizations/invitations/{token}"))
            .await,
        200,
    )
    .await;
    assert_eq!(preview["organization_name"], "Org inviting");
    assert_eq!(preview["role"], "manager");
    assert_eq!(preview["account_exists"], false);
    assert_eq!(preview["invited_by"], "owner@inviting.test");

    // Duplicate invitation; admin may not invite an owner; a user may not invite at all.
    let again = app
        .post_as(
            org.token(Role::Admin),
            "/organizations/current/invitations",
            json!({"email": "new.person@example.com"}),
        )
        .await;
    assert_error(again, 409, "invitation_pending").await;
    let res = app
        .post_as(
            org.token(Role::Admin),
            "/organizations/current/invitations",
            json!({"email": "x@example.com", "role": "owner"}),
        )
        .await;
    assert_error(res, 403, "role_change_not_allowed").await;
    let res = app
        .post_as(
            org.token(Role::User),
            "/organizations/current/invitations",
            json!({"email": "x@example.com"}),
        )
        .await;
    assert_error(res, 403, "forbidden").await;
    let res = app
        .post_as(
            org.token(Role::Owner),
            "/organizations/current/invitations",
            json!({"email": "admin@inviting.test"}),
        )
        .await;
    assert_error(res, 409, "already_member").await;
    let res = app
        .post_as(
            org.token(Role::Owner),
            "/organizations/current/invitations",
            json!({"email": "y@example.com", "expires_in_days": 31}),
        )
        .await;
    assert_error(res, 400, "validation_failed").await;

    // The anonymous path: no account → the password creates it, with a session in the org.
    let res = app
        .post_json(
            &format!("/organizations/invitations/{token}/accept"),
            json!({}),
        )
        .await;
    assert_error(res, 400, "validation_failed").await;
    let res = app
        .post_json(
            &format!("/organizations/invitations/{token}/accept"),
            json!({"password": "invitee-password", "first_name": "New"}),
        )
        .await;
    assert!(
        res.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("inventiv_session=")
    );
    let accepted = json_with_status(res, 200).await;
    let me = app.me(accepted["access_token"].as_str().unwrap()).await;
    assert_eq!(me["current_organization_id"], org.id.to_string());
    assert_eq!(me["current_organization_role"], "manager");
    assert_eq!(me["first_name"], "New");
    app.login("new.person@example.com", "invitee-password")
        .await;

    // Used: 410 everywhere.
    assert_error(
        app.get(&format!("/organizations/invitations/{token}"))
            .await,
        410,
        "invitation_gone",
    )
    .await;
    let res = app
        .post_json(
            &format!("/organizations/invitations/{token}/accept"),
            json!({"password": "whatever-pass"}),
        )
        .await;
    assert_error(res, 410, "invitation_gone").await;
    let list = json_with_status(
        app.get_as(
            org.token(Manager),
            "/organizations/current/invitations?status=accepted",
        )
        .await,
        200,
    )
    .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    app.assert_audit_verifies().await;
}

#[tokio::test]
async fn accepting_as_a_signed_in_user_existing_accounts_and_mismatches() {
    let app = spawn_app().await;
    let org = Org4::new(&app, "acc").await;
    app.create_user("bob@example.com", PW).await;
    let invite = |email: &'static str, role: &'static str| {
        let token = org.token(Role::Owner).to_owned();
        let app = &app;
        async move {
            let already = app
                .smtp
                .messages()
                .iter()
                .filter(|m| m.to == [email])
                .count();
            json_with_status(
                app.post_as(
                    &token,
                    "/organizations/current/invitations",
                    json!({"email": email, "role": role}),
                )
                .await,
                201,
            )
            .await;
            invitation_token(&app.smtp.wait_for_nth(email, already + 1).await)
        }
    };
    let token = invite("bob@example.com", "admin").await;
    // Anonymous but the account exists → sign in first.
    let res = app
        .post_json(
            &format!("/organizations/invitations/{token}/accept"),
            json!({"password": "doesnt-matter"}),
        )
        .await;
    assert_error(res, 401, "login_required").await;
    // Signed in as somebody else → 403.
    let res = app
        .post_as(
            &org.outsider,
            &format!("/organizations/invitations/{token}/accept"),
            json!({}),
        )
        .await;
    assert_error(res, 403, "email_mismatch").await;
    // Signed in as Bob → member, session unchanged.
    let bob = app.login("bob@example.com", PW).await;
    let accepted = json_with_status(
        app.post_as(
            &bob.token,
            &format!("/organizations/invitations/{token}/accept"),
            json!({}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(accepted["role"], "admin");
    assert!(accepted.get("access_token").is_none());
    let bob_org = app.switch(&bob.token, Some(org.id)).await;
    assert_eq!(app.me(&bob_org).await["current_organization_role"], "admin");

    // An invitation for an existing member never changes their role.
    let owner_token = org.token(Role::Owner).to_owned();
    let bob_id: UserId = app.me(&bob_org).await["user_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    app.remove_member(org.id, bob_id).await;
    let second = invite("bob@example.com", "user").await;
    app.add_member(org.id, bob_id, Role::Admin).await;
    let res = app
        .post_as(
            &bob_org,
            &format!("/organizations/invitations/{second}/accept"),
            json!({}),
        )
        .await;
    assert_error(res, 409, "already_member").await;
    assert_eq!(
        memberships::find(&app.db, org.id, bob_id)
            .await
            .unwrap()
            .unwrap()
            .role,
        Role::Admin
    );
    // Revoked invitations are gone.
    let third = invite("carol@example.com", "user").await;
    let list = json_with_status(
        app.get_as(
            &owner_token,
            "/organizations/current/invitations?status=pending",
        )
        .await,
        200,
    )
    .await;
    let carol = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["email"] == "carol@example.com")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.delete_as(
            org.token(Manager),
            &format!("/organizations/current/invitations/{carol}")
        )
        .await
        .status(),
        204
    );
    assert_error(
        app.delete_as(
            &owner_token,
            &format!("/organizations/current/invitations/{carol}"),
        )
        .await,
        409,
        "invitation_not_pending",
    )
    .await;
    let res = app
        .post_json(
            &format!("/organizations/invitations/{third}/accept"),
            json!({"password": "carol-password"}),
        )
        .await;
    assert_error(res, 410, "invitation_gone").await;
    assert_error(
        app.get("/organizations/invitations/not-a-real-token").await,
        404,
        "not_found",
    )
    .await;
}

/// Resends of one invitation at once: each supersedes the link the previous one sent (its row
/// is read under its lock), so none fails on the superseded link it would otherwise record
/// twice, every replaced link is remembered, and each `invitation.resent` event's "before" is
/// the expiry the previous one set.
#[tokio::test]
async fn concurrent_resends_each_supersede_the_link_before_them() {
    let app = spawn_app().await;
    let org = Org4::new(&app, "resend").await;
    let res = app
        .post_as(
            org.token(Role::Owner),
            "/organizations/current/invitations",
            json!({"email": "twice@example.com"}),
        )
        .await;
    let id = json_with_status(res, 201).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/organizations/current/invitations/{id}/resend");
    let resends = (0..8).map(|_| app.post_as(org.token(Role::Owner), &path, json!({})));
    for res in futures_util::future::join_all(resends).await {
        json_with_status(res, 200).await;
    }
    let events = crate::helpers::org_events(&app, org.id, "invitation.resent").await;
    assert_eq!(events.len(), 8);
    let expiry = |state: &Option<Value>| state.as_ref().unwrap()["expires_at"].clone();
    for pair in events.windows(2) {
        assert_eq!(
            expiry(&pair[1].before),
            expiry(&pair[0].after),
            "{events:#?}"
        );
    }
    // Nine links were mailed (in any order): the last one written works, the eight it and
    // its predecessors replaced each say so.
    app.smtp.wait_for_nth("twice@example.com", 9).await;
    let mut answers = Vec::new();
    for mail in app
        .smtp
        .messages()
        .iter()
        .filter(|m| m.to.iter().any(|t| t == "twice@example.com"))
    {
        let link = format!("/organizations/invitations/{}", invitation_token(mail));
        let res = app.get(&link).await;
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap();
        answers.push((status, body["error"].as_str().unwrap_or("").to_owned()));
    }
    answers.sort();
    let mut expected = vec![(200, String::new())];
    expected.extend(vec![(410, "invitation_superseded".to_owned()); 8]);
    assert_eq!(answers, expected);
}

#[tokio::test]
async fn resend_renews_the_link_and_expiry_is_computed_on_read() {
    let clock = Arc::new(inventiv_service::ManualClock::new(
        time::OffsetDateTime::now_utc(),
    ));
    let long = |s: &mut inventiv_server::Settings| {
        s.auth.access_token_ttl_seconds = 90 * 86_400;
        s.auth.session_idle_seconds = 90 * 86_400;
        s.auth.session_absolute_seconds = 90 * 86_400;
    };
    let app = crate::helpers::spawn_app_with(long, clock.clone()).await;
    let org = Org4::new(&app, "expiry").await;
    let res = app
        .post_as(
            org.token(Role::Owner),
            "/organizations/current/invitations",
            json!({"email": "late@example.com", "expires_in_days": 1}),
        )
        .await;
    let id = json_with_status(res, 201).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let first = invitation_token(&app.smtp.wait_for("late@example.com").await);
    clock.advance(time::Duration::days(2));
    assert_error(
        app.get(&format!("/organizations/invitations/{first}"))
            .await,
        410,
        "invitation_gone",
    )
    .await;
    let expired = json_with_status(
        app.get_as(
            org.token(Role::Owner),
            "/organizations/current/invitations?status=expired",
        )
        .await,
        200,
    )
    .await;
    assert_eq!(expired["items"][0]["id"], id.as_str());
    // A manager may not resend an invitation for a role they cannot assign? (user: they can.)
    let resent = json_with_status(
        app.post_as(
            org.token(Manager),
            &format!("/organizations/current/invitations/{id}/resend"),
            json!({}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(resent["status"], "pending");
    let second = invitation_token(&app.smtp.wait_for_nth("late@example.com", 2).await);
    assert_ne!(first, second);
    // The first link says a newer one was sent (not "no such invitation"), on the preview
    // and on the accept alike, and accepts nothing.
    let body = assert_error(
        app.get(&format!("/organizations/invitations/{first}"))
            .await,
        410,
        "invitation_superseded",
    )
    .await;
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("most recent email"),
        "{body}"
    );
    assert_error(
        app.post_json(
            &format!("/organizations/invitations/{first}/accept"),
            json!({"password": "a-good-password"}),
        )
        .await,
        410,
        "invitation_superseded",
    )
    .await;
    // An unknown token is still just unknown.
    assert_error(
        app.get("/organizations/invitations/not-a-token-anyone-was-sent")
            .await,
        404,
        "not_found",
    )
    .await;
    json_with_status(
        app.get(&format!("/organizations/invitations/{second}"))
            .await,
        200,
    )
    .await;
    // A second resend: both older links say so.
    json_with_status(
        app.post_as(
            org.token(Role::Owner),
            &format!("/organizations/current/invitations/{id}/resend"),
            json!({}),
        )
        .await,
        200,
    )
    .await;
    let third = invitation_token(&app.smtp.wait_for_nth("late@example.com", 3).await);
    for old in [&first, &second] {
        assert_error(
            app.get(&format!("/organizations/invitations/{old}")).await,
            410,
            "invitation_superseded",
        )
        .await;
    }
    json_with_status(
        app.get(&format!("/organizations/invitations/{third}"))
            .await,
        200,
    )
    .await;
    // A new invitation for an address whose old one expired is allowed.
    clock.advance(time::Duration::days(8));
    let res = app
        .post_as(
            org.token(Role::Owner),
            "/organizations/current/invitations",
            json!({"email": "late@example.com"}),
        )
        .await;
    json_with_status(res, 201).await;
}

#[tokio::test]
async fn an_invitation_is_accepted_exactly_once_under_20_parallel_accepts() {
    let app = spawn_app().await;
    let org = Org4::new(&app, "single").await;
    app.post_as(
        org.token(Role::Owner),
        "/organizations/current/invitations",
        json!({"email": "once@example.com"}),
    )
    .await;
    let token = invitation_token(&app.smtp.wait_for("once@example.com").await);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (client, url) = (
            app.client.clone(),
            app.url(&format!("/organizations/invitations/{token}/accept")),
        );
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .json(&json!({"password": format!("password-number-{i}")}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| [200, 401, 410].contains(s)),
        "{statuses:?}"
    );
    let members = json_with_status(
        app.get_as(org.token(Role::Owner), "/organizations/current/members")
            .await,
        200,
    )
    .await;
    assert_eq!(
        members["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["email"] == "once@example.com")
            .count(),
        1
    );
}

#[tokio::test]
async fn the_org_audit_log_filters_and_pages() {
    let app = spawn_app().await;
    let org = Org4::new(&app, "audited").await;
    for i in 0..3 {
        app.post_as(
            org.token(Role::Owner),
            "/organizations/current/invitations",
            json!({"email": format!("p{i}@example.com")}),
        )
        .await;
    }
    let all = json_with_status(
        app.get_as(
            org.token(Manager),
            "/organizations/current/audit?action=invitation.created&limit=2",
        )
        .await,
        200,
    )
    .await;
    let items = all["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(
        items[0]["id"].as_i64() > items[1]["id"].as_i64(),
        "newest first"
    );
    assert_eq!(items[0]["after"]["email"], "p2@example.com");
    assert_eq!(items[0]["actor_user_id"], org.user(Role::Owner).to_string());
    assert_eq!(items[0]["hash"].as_str().unwrap().len(), 64);
    let cursor = all["next_cursor"].as_str().unwrap();
    let rest = json_with_status(
        app.get_as(
            org.token(Manager),
            &format!("/organizations/current/audit?action=invitation.created&cursor={cursor}"),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest["next_cursor"], Value::Null);
    let future = "2999-01-01T00:00:00Z";
    let none = json_with_status(
        app.get_as(
            org.token(Role::Admin),
            &format!("/organizations/current/audit?since={future}"),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(none["items"].as_array().unwrap().len(), 0);
    assert_error(
        app.get_as(
            org.token(Role::Admin),
            "/organizations/current/audit?since=yesterday",
        )
        .await,
        400,
        "invalid_query",
    )
    .await;
    assert_error(
        app.get_as(
            org.token(Role::Admin),
            "/organizations/current/audit?action=DROP%20TABLE",
        )
        .await,
        400,
        "validation_failed",
    )
    .await;
}

#[tokio::test]
async fn a_second_org_of_the_same_name_is_refused_for_its_member_only() {
    let app = spawn_app().await;
    app.create_user("dana@example.com", PW).await;
    app.create_user("eli@example.com", PW).await;
    let dana = app.login("dana@example.com", PW).await.token;
    let eli = app.login("eli@example.com", PW).await.token;
    let create = |token: String, name: &'static str, slug: &'static str| {
        let app = &app;
        async move {
            app.post_as(
                &token,
                "/organizations",
                json!({"name": name, "slug": slug, "set_as_current": false}),
            )
            .await
        }
    };
    json_with_status(create(dana.clone(), "Acme AI", "acme-ai").await, 201).await;
    // The same name in another case, with another slug: a mistake, refused with the slug of
    // the org that has it.
    let body = assert_error(
        create(dana.clone(), "  ACME ai", "acme-ai-2").await,
        409,
        "org_name_taken",
    )
    .await;
    assert!(
        body["message"].as_str().unwrap().contains("acme-ai"),
        "{body}"
    );
    // Someone who is not in that org may use the name (names are not global; comparing them
    // would reveal other tenants' names).
    json_with_status(create(eli.clone(), "Acme AI", "acme-ai-3").await, 201).await;
    // A rename into a name already in the caller's switcher is refused too; keeping one's own
    // name (another case) is not a conflict.
    let other = json_with_status(
        app.post_as(
            &dana,
            "/organizations",
            json!({"name": "Other", "slug": "other-org"}),
        )
        .await,
        201,
    )
    .await;
    let token = other["access_token"].as_str().unwrap().to_owned();
    let rename = |name: &'static str| {
        app.as_bearer(Method::PATCH, "/organizations/current", &token)
            .json(&json!({"name": name}))
            .send()
    };
    assert_error(rename("acme ai").await.unwrap(), 409, "org_name_taken").await;
    let renamed = json_with_status(rename("OTHER").await.unwrap(), 200).await;
    assert_eq!(renamed["name"], "OTHER");
    let orgs = json_with_status(app.get_as(&token, "/organizations").await, 200).await;
    let names: Vec<&str> = orgs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{orgs}");
    app.assert_audit_verifies().await;
}
