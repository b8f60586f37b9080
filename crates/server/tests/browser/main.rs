//! The web console in a real browser (issue 10): Debian's headless Chromium driven over
//! WebDriver, against the real server with its SMTP sink. The flows of the seed: an invitation
//! accepted from the emailed link (creating the account), the double activation by two roles,
//! a `user` who gets no invite control, a password reset from the emailed link; and (issue 20)
//! every other flow of the console, each checked through the API afterwards. With
//! `SCREENSHOTS_DIR` set, the screenshots test writes the README's pictures there
//! (`make screenshots`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../api/helpers/mod.rs"]
mod helpers;
mod webdriver;

use helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, json_with_status, spawn_app_with};
use inventiv_domain::{OrgId, Role};
use inventiv_service::SystemClock;
use serde_json::json;
use std::sync::Arc;
use webdriver::Browser;

const PW: &str = "a-good-password";

/// The app on a port known in advance, so that `public_url` (the links in emails, and the
/// origin the CSRF rule accepts) is the address the browser uses.
async fn app() -> TestApp {
    app_with(|_| {}).await
}

/// [`app`] with more settings changed.
async fn app_with(
    customize: impl FnOnce(&mut inventiv_server::settings::Settings) + Send + 'static,
) -> TestApp {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    spawn_app_with(
        move |s| {
            s.server.port = port;
            s.server.public_url = format!("http://127.0.0.1:{port}");
            customize(s);
        },
        Arc::new(SystemClock),
    )
    .await
}

/// An organization "Acme AI" with one member of each role (`<role>@acme.test`).
async fn acme(app: &TestApp) -> (OrgId, Vec<inventiv_domain::UserId>) {
    let mut ids = Vec::new();
    for role in ["owner", "admin", "manager", "user"] {
        ids.push(app.create_user(&format!("{role}@acme.test"), PW).await);
    }
    let roles = [Role::Owner, Role::Admin, Role::Manager, Role::User];
    let members: Vec<_> = ids.iter().copied().zip(roles).collect();
    (app.create_org("acme", &members).await, ids)
}

/// A public catalogue model, created by the platform admin; returns its JSON.
async fn public_model(app: &TestApp, name: &str, model_id: &str) -> serde_json::Value {
    let platform = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.token;
    let body =
        json!({"name": name, "model_id": model_id, "required_vram_gb": 16, "context_length": 8192});
    json_with_status(app.post_as(&platform, "/models", body).await, 201).await
}

/// Signs in through the login form and switches to `org` with the workspace selector.
async fn sign_in(b: &Browser, app: &TestApp, email: &str, password: &str, org: Option<OrgId>) {
    b.goto(&app.url("/")).await;
    b.fill("#login-email", email).await;
    b.fill("#login-password", password).await;
    b.click("#login-submit").await;
    b.find("#workspace-banner").await;
    if let Some(org) = org {
        b.click(&format!("#workspace-switcher option[value='{org}']"))
            .await;
        b.wait_text("#workspace-banner", "Org: Org acme").await;
    }
}

/// Waits (at most 10 s) until the instance at `path` (`/instances/{id}`) is ready.
async fn wait_ready(app: &TestApp, token: &str, path: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while json_with_status(app.get_as(token, path).await, 200).await["status"] != "ready" {
        assert!(
            std::time::Instant::now() < deadline,
            "the instance never got ready"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Gives the resource at `path` its technical (`tech`'s) and economic (`eco`'s) approvals.
async fn approve(app: &TestApp, tech: &str, eco: &str, path: &str) {
    for (token, flag) in [(tech, "tech"), (eco, "eco")] {
        let body = json!({"flag": flag, "active": true});
        json_with_status(
            app.post_as(token, &format!("{path}/activation"), body)
                .await,
            200,
        )
        .await;
    }
}

/// The owner of acme invites `email` (an existing account) as manager; returns the owner's
/// token in acme.
async fn invite_to_acme(app: &TestApp, org: OrgId, email: &str) -> String {
    app.create_user(email, PW).await;
    let owner = app.login("owner@acme.test", PW).await.token;
    let owner = app.switch(&owner, Some(org)).await;
    let invite = json!({"email": email, "role": "manager"});
    json_with_status(
        app.post_as(&owner, "/organizations/current/invitations", invite)
            .await,
        201,
    )
    .await;
    owner
}

async fn sign_out(b: &Browser) {
    b.click("#sign-out").await;
    b.find("#login-email").await;
}

/// One of the two approvals of the double activation.
#[derive(Clone, Copy)]
enum Approval {
    Technical,
    Economic,
}

impl Approval {
    fn other(self) -> Approval {
        match self {
            Approval::Technical => Approval::Economic,
            Approval::Economic => Approval::Technical,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Approval::Technical => "technical",
            Approval::Economic => "economic",
        }
    }

    /// Its button in a row.
    fn button(self) -> &'static str {
        match self {
            Approval::Technical => "[data-action='tech-set']",
            Approval::Economic => "[data-action='eco-set']",
        }
    }
}

/// The double activation of `row` on the console page `page`: `first` (email, approval) sees no
/// button for the other approval and gives its own; the row then waits for the other one,
/// which `second` gives; the row is then operational.
async fn approve_twice(
    app: &TestApp,
    org: OrgId,
    page: &str,
    row: &str,
    (first, approval): (&str, Approval),
    second: &str,
) {
    let activation = format!("{row} .activation");
    let b = Browser::start().await;
    sign_in(&b, app, first, PW, Some(org)).await;
    b.click(&format!("nav a[href='{page}']")).await;
    b.wait_text(
        &activation,
        "non-operational: waiting for the technical and economic approval",
    )
    .await;
    let other = approval.other();
    assert!(
        b.find_all(&format!("{row} {}", other.button()))
            .await
            .is_empty(),
        "{first} gets no {} approval button",
        other.name()
    );
    b.click(&format!("{row} {}", approval.button())).await;
    b.wait_text(
        &activation,
        &format!("non-operational: waiting for the {} approval", other.name()),
    )
    .await;
    sign_out(&b).await;

    sign_in(&b, app, second, PW, Some(org)).await;
    b.click(&format!("nav a[href='{page}']")).await;
    b.click(&format!("{row} {}", other.button())).await;
    b.wait_exact(&activation, "operational").await;
    b.quit().await;
}

/// The first link to `path` in the last email sent to `to`.
async fn link_in_mail(app: &TestApp, to: &str, path: &str) -> String {
    let body = app.smtp.wait_for(to).await.body_text();
    let start = body.find(&app.url(path)).expect("the link in the email");
    body[start..].split_whitespace().next().unwrap().to_owned()
}

#[tokio::test]
async fn an_invitee_opens_the_emailed_link_creates_the_account_and_lands_in_the_org() {
    let app = app().await;
    let (org, _) = acme(&app).await;
    let b = Browser::start().await;
    sign_in(&b, &app, "owner@acme.test", PW, Some(org)).await;
    b.click("nav a[href='#/members']").await;
    b.fill("#invite-email", "newcomer@example.com").await;
    b.click("#invite-role option[value='manager']").await;
    b.click("#invite-button").await;
    b.wait_text(
        "tr[data-invitation='newcomer@example.com'] .status",
        "pending",
    )
    .await;

    // Another person, another browser state: only the link from the email.
    let link = link_in_mail(&app, "newcomer@example.com", "/invitations/").await;
    b.delete_cookies().await;
    b.goto(&link).await;
    b.wait_text("#invite-org", "Org acme").await;
    b.wait_text("#invite-role", "manager").await;
    b.wait_text("#invite-inviter", "owner@acme.test").await;
    b.fill("#accept-first-name", "Nina").await;
    b.fill("#accept-password", "newcomer-password").await;
    b.click("#accept-submit").await;
    let banner = b.wait_text("#workspace-banner", "Org: Org acme").await;
    assert!(banner.contains("manager"), "{banner}");
    b.quit().await;

    // The account exists and its password works through the API.
    app.login("newcomer@example.com", "newcomer-password").await;
}

#[tokio::test]
async fn an_instance_is_operational_once_the_manager_and_the_admin_both_approved_it() {
    let app = app().await;
    let (org, _) = acme(&app).await;
    let model = public_model(&app, "Llama", "meta/llama-3").await;
    let admin = app.login("admin@acme.test", PW).await.token;
    let admin = app.switch(&admin, Some(org)).await;
    let instance = json_with_status(
        app.post_as(&admin, "/deployments", json!({"model_id": model["id"]}))
            .await,
        201,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let row = format!("tr[data-instance='{instance}']");
    let first = ("manager@acme.test", Approval::Economic);
    approve_twice(&app, org, "#/instances", &row, first, "admin@acme.test").await;
}

#[tokio::test]
async fn a_user_sees_the_members_but_no_invite_or_role_controls() {
    let app = app().await;
    let (org, _) = acme(&app).await;
    let b = Browser::start().await;
    sign_in(&b, &app, "user@acme.test", PW, Some(org)).await;
    let banner = b.wait_text("#workspace-banner", "Org: Org acme").await;
    assert!(banner.contains("user"), "{banner}");
    // The nav shows only the modules /auth/me returned: a user has no audit log.
    assert!(b.find_all("nav a[href='#/audit']").await.is_empty());
    b.click("nav a[href='#/members']").await;
    b.wait_text("tr[data-member='owner@acme.test'] .role", "owner")
        .await;
    assert!(
        b.find_all("#invite-button").await.is_empty(),
        "no invite button"
    );
    assert!(
        b.find_all("select[id^='role-']").await.is_empty(),
        "no role menus"
    );
    b.quit().await;
}

#[tokio::test]
async fn a_password_is_reset_through_the_emailed_link() {
    let app = app().await;
    acme(&app).await;
    let b = Browser::start().await;
    b.goto(&app.url("/")).await;
    b.click("details summary").await;
    b.fill("#reset-email", "user@acme.test").await;
    b.click("#reset-request").await;
    b.wait_text("#toast", "reset link").await;

    let link = link_in_mail(&app, "user@acme.test", "/reset-password?token=").await;
    b.goto(&link).await;
    b.fill("#new-password", "brand-new-password").await;
    b.fill("#confirm-password", "brand-new-password").await;
    b.click("#reset-submit").await;
    b.click("#go-sign-in").await;
    sign_in(&b, &app, "user@acme.test", "brand-new-password", None).await;
    b.wait_text("#workspace-banner", "Workspace").await;
    b.quit().await;
    let old = app
        .post_json(
            "/auth/login",
            json!({"email": "user@acme.test", "password": PW}),
        )
        .await;
    assert_eq!(old.status(), 401, "the old password no longer works");
}

/// The console's main pages, photographed (PNG) at laptop width and one at phone width. Written
/// to `SCREENSHOTS_DIR` when set (`make screenshots` points it at docs/screenshots), else under
/// target/.
#[tokio::test]
async fn screenshots_of_the_main_pages() {
    let dir = std::env::var("SCREENSHOTS_DIR").map_or_else(
        |_| {
            std::path::PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../target/screenshots"
            ))
        },
        std::path::PathBuf::from,
    );
    std::fs::create_dir_all(&dir).unwrap();
    let app = app().await;
    let (org, _) = acme(&app).await;
    let model = public_model(&app, "Llama 3 8B", "meta/llama-3-8b").await;
    let owner = app.login("owner@acme.test", PW).await.token;
    let owner = app.switch(&owner, Some(org)).await;
    let mut instances = Vec::new();
    for _ in 0..2 {
        let made = json_with_status(
            app.post_as(&owner, "/deployments", json!({"model_id": model["id"]}))
                .await,
            201,
        )
        .await;
        instances.push(made["id"].as_str().unwrap().to_owned());
    }
    let offering = json!({"model_id": model["id"], "code": "llama-8b", "name": "Llama 3 8B chat"});
    json_with_status(
        app.post_as(&owner, "/organizations/current/offerings", offering)
            .await,
        201,
    )
    .await;
    let invite = json!({"email": "guest@example.com", "role": "manager"});
    json_with_status(
        app.post_as(&owner, "/organizations/current/invitations", invite)
            .await,
        201,
    )
    .await;

    let b = Browser::start().await;
    let mut shots = Vec::new();
    let mut shoot = async |b: &Browser, name: &str| {
        let png = b.screenshot().await;
        assert!(png.starts_with(b"\x89PNG"), "{name} is not a PNG");
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
        shots.push(name.to_owned());
    };
    b.goto(&app.url("/")).await;
    b.find("#login-email").await;
    shoot(&b, "login").await;
    sign_in(&b, &app, "owner@acme.test", PW, Some(org)).await;
    b.click("nav a[href='#/members']").await;
    b.wait_text("tr[data-invitation='guest@example.com'] .status", "pending")
        .await;
    shoot(&b, "members").await;
    b.click("nav a[href='#/instances']").await;
    b.wait_text("tbody .activation", "non-operational").await;
    shoot(&b, "instances").await;
    b.click("nav a[href='#/api-keys']").await;
    b.fill("#key-name", "ci-pipeline").await;
    b.click("#key-create").await;
    b.wait_text("#key-secret", "sk-inv-").await;
    shoot(&b, "api-keys").await;
    b.click("nav a[href='#/sharing']").await;
    b.wait_text(
        "tr[data-offering='llama-8b'] .activation",
        "non-operational",
    )
    .await;
    shoot(&b, "sharing").await;
    b.click("nav a[href='#/finops']").await;
    b.find("#burn-rate").await;
    shoot(&b, "finops").await;
    // The workbench, on the first instance once approved and ready (the built-in mock model
    // answers).
    let path = format!("/instances/{}", instances[0]);
    approve(&app, &owner, &owner, &path).await;
    wait_ready(&app, &owner, &path).await;
    b.click("nav a[href='#/workbench']").await;
    b.fill("#run-title", "Support answers").await;
    b.fill("#run-model", "meta/llama-3-8b").await;
    b.click("#run-share").await;
    b.click("#run-create").await;
    b.fill("#run-input", "How do I reset my password?").await;
    b.click("#run-send").await;
    b.wait_text("#run-messages .message-assistant .text", "You said")
        .await;
    shoot(&b, "workbench").await;
    b.resize(390, 844).await;
    b.click("nav a[href='#/members']").await;
    b.wait_text("tr[data-member='owner@acme.test'] .role", "owner")
        .await;
    shoot(&b, "members-phone").await;
    b.resize(1280, 900).await;
    let link = link_in_mail(&app, "guest@example.com", "/invitations/").await;
    b.delete_cookies().await;
    b.goto(&link).await;
    b.wait_text("#invite-org", "Org acme").await;
    shoot(&b, "accept-invitation").await;
    b.quit().await;
    assert_eq!(shots.len(), 9);
}

/// The sharing page: an offering becomes operational once an admin and a manager approved it
/// there, each with the button of their role.
#[tokio::test]
async fn an_offering_is_approved_on_the_sharing_page_by_both_roles() {
    let app = app().await;
    let (org, _) = acme(&app).await;
    let model = public_model(&app, "Llama", "meta/llama-3").await;
    let admin = app.login("admin@acme.test", PW).await.token;
    let admin = app.switch(&admin, Some(org)).await;
    let offering = json!({"model_id": model["id"], "code": "chat", "name": "Chat"});
    json_with_status(
        app.post_as(&admin, "/organizations/current/offerings", offering)
            .await,
        201,
    )
    .await;
    let row = "tr[data-offering='chat']";
    let first = ("admin@acme.test", Approval::Technical);
    approve_twice(&app, org, "#/sharing", row, first, "manager@acme.test").await;
}

/// Sharing from the console: the owner offers a catalogue model, publishes it and grants it
/// to another organization at a price, all through the sharing page's forms.
#[tokio::test]
async fn an_owner_offers_publishes_and_grants_a_model_from_the_console() {
    let app = app().await;
    let (org, _) = acme(&app).await;
    let model = public_model(&app, "Llama", "meta/llama-3").await;
    let buyer = app.create_user("owner@beta.test", PW).await;
    let beta = app.create_org("beta", &[(buyer, Role::Owner)]).await;
    let row = "tr[data-offering='chat']";

    let b = Browser::start().await;
    sign_in(&b, &app, "owner@acme.test", PW, Some(org)).await;
    b.click("nav a[href='#/sharing']").await;
    b.click(&format!(
        "#offer-model option[value='{}']",
        model["id"].as_str().unwrap()
    ))
    .await;
    b.fill("#offer-code", "chat").await;
    b.fill("#offer-name", "Chat").await;
    b.click("#offer-create").await;
    b.wait_exact(&format!("{row} .state"), "unpublished").await;
    b.click(&format!("{row} [data-action='publish']")).await;
    b.wait_exact(&format!("{row} .state"), "published").await;
    b.fill("#share-consumer", "beta").await;
    b.fill("#share-price-in", "0.5").await;
    b.fill("#share-price-out", "1.25").await;
    b.click("#share-grant").await;
    // v2: a grant is a proposal until the consumer accepts it.
    b.wait_text("tr[data-share='beta'] .status", "waiting for the consumer")
        .await;
    b.quit().await;

    // The consumer receives exactly that: the offering, at the prices typed in euros.
    let token = app.login("owner@beta.test", PW).await.token;
    let token = app.switch(&token, Some(beta)).await;
    let received = json_with_status(
        app.get_as(&token, "/organizations/current/shares?side=consumer")
            .await,
        200,
    )
    .await;
    let share = &received["items"][0];
    assert_eq!(share["name_for_clients"], "acme/chat");
    assert_eq!(share["price_input_micros_per_1k"], 500_000);
    assert_eq!(share["price_output_micros_per_1k"], 1_250_000);
}

/// Organizations and sessions from the console: create an organization (landing in it as its
/// owner), switch back to Personal, and sign out every other session.
#[tokio::test]
async fn a_user_creates_an_organization_switches_back_and_signs_out_other_sessions() {
    let app = app().await;
    app.create_user("solo@example.com", PW).await;
    let other = app.login("solo@example.com", PW).await.token;
    let b = Browser::start().await;
    sign_in(&b, &app, "solo@example.com", PW, None).await;
    b.wait_text("#workspace-banner", "Personal").await;
    b.click("nav a[href='#/organizations']").await;
    b.fill("#org-name", "Beta Labs").await;
    b.click("#org-create").await;
    let banner = b.wait_text("#workspace-banner", "Org: Beta Labs").await;
    assert!(banner.contains("owner"), "{banner}");
    b.click("#workspace-switcher option[value='']").await;
    b.wait_text("#workspace-banner", "Personal").await;

    b.click("nav a[href='#/sessions']").await;
    b.wait_text("tbody", "this session").await;
    // Issue 20: a confirmation first; dismissed, nothing happens.
    b.execute("window.confirm = () => false").await;
    b.click("#revoke-others").await;
    assert_eq!(app.get_as(&other, "/auth/me").await.status(), 200);
    accept_confirms(&b).await;
    b.click("#revoke-others").await;
    b.wait_text("#toast", "1 other session(s) signed out").await;
    assert_eq!(app.get_as(&other, "/auth/me").await.status(), 401);
    b.quit().await;
}

/// Issue 20 / SPEC §4 v2: two tabs share one session; another tab switches it to Personal.
/// The stale tab, still showing the org, tries to create a key: the server refuses (409
/// `workspace_changed`), the tab says what changed and shows the real workspace, and no key
/// exists in either workspace.
#[tokio::test]
async fn a_stale_tab_is_refused_and_told_the_workspace_changed() {
    let app = app().await;
    let (org, _) = acme(&app).await;
    let b = Browser::start().await;
    sign_in(&b, &app, "admin@acme.test", PW, Some(org)).await;
    b.click("nav a[href='#/api-keys']").await;
    b.find("#key-name").await;
    // "Another tab": the same cookie, switched to Personal.
    b.execute(
        "fetch('/organizations/current', {method: 'PUT', credentials: 'same-origin', \
         headers: {'Content-Type': 'application/json'}, body: JSON.stringify({organization_id: null})})",
    )
    .await;
    let banner = b.text(&b.find("#workspace-banner").await).await;
    assert!(banner.contains("Org: Org acme"), "still stale: {banner}");
    b.fill("#key-name", "meant for acme").await;
    b.click("#key-create").await;
    let toast = b.wait_text("#toast", "workspace changed").await;
    assert!(toast.contains("Personal"), "{toast}");
    b.wait_text("#workspace-banner", "Personal").await;
    // Nothing was created, in either workspace.
    let admin = app.login("admin@acme.test", PW).await.token;
    let keys = json_with_status(app.get_as(&admin, "/api_keys").await, 200).await;
    assert_eq!(keys["items"], json!([]), "{keys}");
    let in_org = app.switch(&admin, Some(org)).await;
    let keys = json_with_status(app.get_as(&in_org, "/api_keys").await, 200).await;
    assert_eq!(keys["items"], json!([]), "{keys}");
    b.quit().await;
}

/// Answers every `confirm()` of the page with yes (WebDriver cannot click native dialogs).
async fn accept_confirms(b: &Browser) {
    b.execute("window.confirm = () => true").await;
}

/// Issue 20: the organization's settings page. The owner reads the slug to give to others,
/// renames the org (an empty name is refused under its label), is refused deletion with the
/// server's message while an instance runs, and deletes another org that has none.
#[tokio::test]
async fn an_owner_renames_reads_the_slug_and_deletes_an_organization_from_its_settings() {
    let app = app().await;
    let (org, ids) = acme(&app).await;
    let scratch = app.create_org("scratch", &[(ids[0], Role::Owner)]).await;
    let model = public_model(&app, "Llama", "meta/llama-3").await;
    let owner = app.login("owner@acme.test", PW).await.token;
    let in_org = app.switch(&owner, Some(org)).await;
    json_with_status(
        app.post_as(&in_org, "/deployments", json!({"model_id": model["id"]}))
            .await,
        201,
    )
    .await;

    let b = Browser::start().await;
    sign_in(&b, &app, "owner@acme.test", PW, Some(org)).await;
    b.click("nav a[href='#/settings']").await;
    b.wait_exact("#org-slug", "acme").await;
    b.fill("#org-rename", "   ").await;
    b.click("#org-rename-submit").await;
    b.wait_text("[data-field='name'] .field-error", "").await;
    let error = b.wait_text("#main .error", "New name").await;
    assert!(
        !error.starts_with("name:"),
        "labels, not API fields: {error}"
    );
    b.fill("#org-rename", "Acme Labs").await;
    b.click("#org-rename-submit").await;
    b.wait_text("#workspace-banner", "Org: Acme Labs").await;
    accept_confirms(&b).await;
    b.click("#org-delete").await;
    b.wait_text("#org-delete-error", "terminate them first")
        .await;

    b.click(&format!("#workspace-switcher option[value='{scratch}']"))
        .await;
    b.wait_text("#workspace-banner", "Org: Org scratch").await;
    b.click("nav a[href='#/settings']").await;
    b.wait_exact("#org-slug", "scratch").await;
    accept_confirms(&b).await;
    b.click("#org-delete").await;
    b.wait_text("#workspace-banner", "Personal").await;
    b.quit().await;

    let owner = app.login("owner@acme.test", PW).await.token;
    let mine = json_with_status(app.get_as(&owner, "/organizations").await, 200).await;
    let names: Vec<_> = mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["Acme Labs"], "{mine}");
}

/// Issue 20: a user changes the profile's names and the password while signed in.
#[tokio::test]
async fn a_user_changes_names_and_password_from_the_profile_page() {
    let app = app().await;
    app.create_user("solo@example.com", PW).await;
    let b = Browser::start().await;
    sign_in(&b, &app, "solo@example.com", PW, None).await;
    b.click("nav a[href='#/profile']").await;
    b.fill("#profile-first-name", "Solveig").await;
    b.fill("#profile-last-name", "Olsen").await;
    b.click("#profile-save").await;
    b.wait_text("#toast", "Profile saved").await;
    b.fill("#password-current", "not-my-password").await;
    b.fill("#password-new", "another-password").await;
    b.fill("#password-confirm", "another-password").await;
    b.click("#password-submit").await;
    b.wait_text("#toast", "password").await;
    b.fill("#password-current", PW).await;
    b.fill("#password-new", "another-password").await;
    b.fill("#password-confirm", "another-password").await;
    b.click("#password-submit").await;
    b.wait_text("#toast", "Password changed").await;
    b.quit().await;

    let token = app
        .login("solo@example.com", "another-password")
        .await
        .token;
    let me = app.me(&token).await;
    assert_eq!(me["first_name"], "Solveig");
    assert_eq!(me["last_name"], "Olsen");
}

/// Issue 20 / seed §10: in Personal, org-only modules stay in the nav with an "Org required"
/// badge; opening one leads to creating an organization, and then back to that page.
#[tokio::test]
async fn an_org_only_page_leads_from_personal_to_creating_an_organization_and_back() {
    let app = app().await;
    app.create_user("solo@example.com", PW).await;
    let b = Browser::start().await;
    sign_in(&b, &app, "solo@example.com", PW, None).await;
    b.wait_text("nav a[href='#/members']", "Org required").await;
    b.click("nav a[href='#/members']").await;
    b.wait_text("#needs-org", "personal workspace").await;
    b.click("#create-org-link").await;
    b.fill("#org-name", "Solo Co").await;
    b.click("#org-create").await;
    b.wait_text("#workspace-banner", "Org: Solo Co").await;
    b.wait_text("tr[data-member='solo@example.com'] .role", "owner")
        .await;
    let members = b.text(&b.find("nav a[href='#/members']").await).await;
    assert!(!members.contains("Org required"), "{members}");
    b.quit().await;

    let token = app.login("solo@example.com", PW).await.token;
    let mine = json_with_status(app.get_as(&token, "/organizations").await, 200).await;
    assert_eq!(mine["items"][0]["name"], "Solo Co", "{mine}");
}

/// Issue 20: the platform admin's Users page in Personal lists every account; the admin creates
/// one (a set-password link is emailed), edits its names, disables it (its sign-in stops) and
/// deletes another.
#[tokio::test]
async fn a_platform_admin_creates_edits_disables_and_deletes_accounts_on_the_users_page() {
    let app = app().await;
    app.create_user("leaving@example.com", PW).await;
    let b = Browser::start().await;
    sign_in(&b, &app, ADMIN_EMAIL, ADMIN_PASSWORD, None).await;
    b.click("#workspace-switcher option[value='']").await;
    b.wait_text("#workspace-banner", "Personal").await;
    b.click("nav a[href='#/users']").await;
    b.find("tr[data-user='leaving@example.com']").await;
    b.fill("#user-email", "carol@example.com").await;
    b.fill("#new-user-first-name", "Carol").await;
    b.click("#user-create").await;
    b.wait_text("tr[data-user='carol@example.com'] .name", "Carol")
        .await;
    link_in_mail(&app, "carol@example.com", "/reset-password?token=").await;

    let row = "tr[data-user='carol@example.com']";
    b.click(&format!("{row} [data-action='edit']")).await;
    b.fill("#user-last-name", "Jones").await;
    b.click("#user-save").await;
    b.wait_text(&format!("{row} .name"), "Carol Jones").await;
    accept_confirms(&b).await;
    b.click(&format!("{row} [data-action='disable']")).await;
    b.wait_text(&format!("{row} .state"), "disabled").await;
    b.click("tr[data-user='leaving@example.com'] [data-action='delete']")
        .await;
    b.wait_text("#toast", "leaving@example.com deleted").await;
    assert!(
        b.find_all("tr[data-user='leaving@example.com']")
            .await
            .is_empty()
    );
    b.quit().await;

    let admin = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.token;
    let admin = app.switch(&admin, None).await;
    let users = json_with_status(app.get_as(&admin, "/users").await, 200).await;
    let items = users["items"].as_array().unwrap();
    let carol = items.iter().find(|u| u["email"] == "carol@example.com");
    let carol = carol.expect("carol exists");
    assert_eq!(carol["last_name"], "Jones");
    assert_eq!(carol["disabled"], true);
    assert!(
        items.iter().all(|u| u["email"] != "leaving@example.com"),
        "{users}"
    );
    let refused = app
        .post_json(
            "/auth/login",
            json!({"email": "leaving@example.com", "password": PW}),
        )
        .await;
    assert_eq!(refused.status(), 401);
}

/// Issue 20: an org admin creates a member on the Users page with a role from /auth/me's
/// assignable roles (an admin may not make an owner: no such option); a manager sees the
/// list without the create form.
#[tokio::test]
async fn an_org_admin_creates_a_member_with_an_assignable_role_on_the_users_page() {
    let app = app().await;
    let (org, _) = acme(&app).await;
    let b = Browser::start().await;
    sign_in(&b, &app, "admin@acme.test", PW, Some(org)).await;
    b.click("nav a[href='#/users']").await;
    b.wait_text("tr[data-user='owner@acme.test'] .role", "owner")
        .await;
    assert!(
        b.find_all("#user-role option[value='owner']")
            .await
            .is_empty(),
        "an admin cannot give the owner role"
    );
    assert!(b.find_all("[data-action='delete']").await.is_empty());
    b.fill("#user-email", "dev@acme.test").await;
    b.click("#user-role option[value='admin']").await;
    b.click("#user-create").await;
    b.wait_text("tr[data-user='dev@acme.test'] .role", "admin")
        .await;
    sign_out(&b).await;
    sign_in(&b, &app, "manager@acme.test", PW, Some(org)).await;
    b.click("nav a[href='#/users']").await;
    b.wait_text("tr[data-user='dev@acme.test'] .role", "admin")
        .await;
    assert!(b.find_all("#user-create").await.is_empty());
    b.quit().await;

    let owner = app.login("owner@acme.test", PW).await.token;
    let owner = app.switch(&owner, Some(org)).await;
    let members = json_with_status(
        app.get_as(&owner, "/organizations/current/members").await,
        200,
    )
    .await;
    let dev = members["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == "dev@acme.test")
        .cloned()
        .expect("dev is a member");
    assert_eq!(dev["role"], "admin");
}

/// Issue 20: models from the console. An org admin adds a model to the org, edits it, filters
/// the list to the org's own, gets no edit control on the public catalogue, and is refused the
/// deletion of a model in use with the server's message; the platform admin adds a public model
/// from Personal.
#[tokio::test]
async fn models_are_created_edited_filtered_and_deleted_by_their_workspace_writers() {
    let app = app().await;
    let (org, _) = acme(&app).await;
    public_model(&app, "Llama", "meta/llama-3").await;
    let b = Browser::start().await;
    sign_in(&b, &app, "admin@acme.test", PW, Some(org)).await;
    b.click("nav a[href='#/models']").await;
    let public = "tr[data-model='meta/llama-3']";
    b.find(public).await;
    assert!(
        b.find_all(&format!("{public} [data-action]"))
            .await
            .is_empty()
    );
    b.fill("#new-model-name", "Mistral").await;
    b.fill("#new-model-id", "acme/mistral-7b").await;
    b.click("#new-model-save").await;
    let row = "tr[data-model='acme/mistral-7b']";
    b.wait_text(&format!("{row} .name"), "Mistral").await;
    b.click(&format!("{row} [data-action='edit']")).await;
    b.fill("#edit-model-vram", "24").await;
    b.click("#edit-model-save").await;
    b.wait_exact(&format!("{row} .vram"), "24 GB").await;
    b.click("#model-filter option[value='org']").await;
    // The filter hides the public model (the list is drawn again, a moment after the click).
    b.wait_gone(public).await;
    b.find(&format!("{row} .name")).await;

    let admin = app.login("admin@acme.test", PW).await.token;
    let admin = app.switch(&admin, Some(org)).await;
    let models = json_with_status(app.get_as(&admin, "/models").await, 200).await;
    let mistral = models["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["model_id"] == "acme/mistral-7b")
        .cloned()
        .unwrap();
    assert_eq!(mistral["required_vram_gb"], 24);
    assert_eq!(mistral["visibility"], "org");
    json_with_status(
        app.post_as(&admin, "/deployments", json!({"model_id": mistral["id"]}))
            .await,
        201,
    )
    .await;
    accept_confirms(&b).await;
    b.click(&format!("{row} [data-action='delete']")).await;
    b.wait_text(
        "#toast",
        "live instance(s) use this model; terminate them first",
    )
    .await;
    b.find(&format!("{row} .name")).await;
    sign_out(&b).await;

    sign_in(&b, &app, ADMIN_EMAIL, ADMIN_PASSWORD, None).await;
    b.click("#workspace-switcher option[value='']").await;
    b.wait_text("#workspace-banner", "Personal").await;
    b.click("nav a[href='#/models']").await;
    b.fill("#new-model-name", "Qwen").await;
    b.fill("#new-model-id", "qwen/qwen-2").await;
    b.click("#new-model-save").await;
    b.wait_text("tr[data-model='qwen/qwen-2'] .name", "Qwen")
        .await;
    b.quit().await;
    let models = json_with_status(app.get_as(&admin, "/models").await, 200).await;
    let qwen = models["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["model_id"] == "qwen/qwen-2")
        .cloned()
        .expect("the public model is visible in the org");
    assert_eq!(qwen["visibility"], "public");
}

/// Issue 20: instances from the console. The owner deploys a mock instance from the form and
/// watches it become ready without reloading (the list polls while it moves), reinstalls and
/// terminates it, and is told why an external endpoint on loopback is refused.
#[tokio::test]
async fn an_owner_deploys_reinstalls_and_terminates_and_the_status_refreshes_by_itself() {
    let app = app_with(|s| {
        s.providers.mock.boot_delay_ms = 1200;
        s.providers.mock.ready_delay_ms = 1200;
        // Production's rule: loopback is not a tenant's endpoint.
        s.providers.external.allowed_networks = Vec::new();
    })
    .await;
    let (org, _) = acme(&app).await;
    let model = public_model(&app, "Llama", "meta/llama-3").await;
    let b = Browser::start().await;
    sign_in(&b, &app, "owner@acme.test", PW, Some(org)).await;
    b.click("nav a[href='#/instances']").await;
    b.click("#deploy-provider option[value='external']").await;
    b.fill("#deploy-endpoint", "http://127.0.0.1:9").await;
    b.click("#deploy-button").await;
    b.wait_text("#main .error", "addresses this server may call")
        .await;

    b.click("#deploy-provider option[value='mock']").await;
    b.execute("window.notReloaded = true").await;
    b.click("#deploy-button").await;
    let status = "#instance-list tbody .status";
    let first = b.wait_text(status, "").await;
    assert!(
        ["provisioning", "booting"].contains(&first.trim()),
        "{first}"
    );
    b.wait_exact(status, "ready").await;
    // Settled: the list stops polling.
    let reads = "return performance.getEntriesByType('resource')\
                 .filter(e => e.name.endsWith('/instances?limit=200')).length";
    let before = b.execute(reads).await;
    assert!(
        before.as_u64().unwrap() > 1,
        "it polled while moving: {before}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(4500)).await;
    assert_eq!(b.execute(reads).await, before, "no polling once settled");
    accept_confirms(&b).await;
    b.click("#instance-list [data-action='reinstall']").await;
    b.wait_exact(status, "provisioning").await;
    b.wait_exact(status, "ready").await;
    b.click("#instance-list [data-action='terminate']").await;
    b.wait_exact(status, "terminated").await;
    assert_eq!(
        b.execute("return window.notReloaded === true").await,
        json!(true),
        "the page was never reloaded"
    );
    b.quit().await;

    let owner = app.login("owner@acme.test", PW).await.token;
    let owner = app.switch(&owner, Some(org)).await;
    let list = json_with_status(app.get_as(&owner, "/instances").await, 200).await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "the refused endpoint made none: {list}");
    assert_eq!(items[0]["status"], "terminated");
    assert_eq!(items[0]["model_id"], model["id"]);
}

/// Acme's public offering `acme/chat` of a catalogue model, published, at default prices of
/// €0.20 in / €0.40 out per 1k tokens; returns the offering's JSON.
async fn public_offering(app: &TestApp, org: OrgId) -> serde_json::Value {
    let model = public_model(app, "Llama", "meta/llama-3").await;
    let owner = app.login("owner@acme.test", PW).await.token;
    let owner = app.switch(&owner, Some(org)).await;
    let body = json!({"model_id": model["id"], "code": "chat", "name": "Acme chat",
        "description": "A helpful model", "visibility": "public",
        "default_price_input_micros_per_1k": 200_000, "default_price_output_micros_per_1k": 400_000});
    let offering = json_with_status(
        app.post_as(&owner, "/organizations/current/offerings", body)
            .await,
        201,
    )
    .await;
    let id = offering["id"].as_str().unwrap();
    let publish = app
        .client
        .patch(app.url(&format!("/organizations/current/offerings/{id}")))
        .bearer_auth(&owner)
        .json(&json!({"is_active": true}))
        .send()
        .await
        .unwrap();
    json_with_status(publish, 200).await
}

/// Issue 20: the marketplace. Beta's owner finds Acme's public offering with its prices and
/// asks for access with a message; Beta's plain user gets no request control; Acme's admin
/// sees the request and approves it, which proposes a share to Beta at the default prices.
#[tokio::test]
async fn a_consumer_requests_access_in_the_marketplace_and_the_provider_approves_it() {
    let app = app().await;
    let (org, _) = acme(&app).await;
    public_offering(&app, org).await;
    let buyer = app.create_user("owner@beta.test", PW).await;
    let reader = app.create_user("user@beta.test", PW).await;
    let beta = app
        .create_org("beta", &[(buyer, Role::Owner), (reader, Role::User)])
        .await;

    let b = Browser::start().await;
    let listing = "tr[data-listing='acme/chat']";
    sign_in(&b, &app, "user@beta.test", PW, None).await;
    b.click(&format!("#workspace-switcher option[value='{beta}']"))
        .await;
    b.wait_text("#workspace-banner", "Org: Org beta").await;
    b.click("nav a[href='#/marketplace']").await;
    b.wait_text(listing, "€0.2000 in / €0.4000 out").await;
    assert!(
        b.find_all(&format!("{listing} [data-action='request']"))
            .await
            .is_empty()
    );
    sign_out(&b).await;

    sign_in(&b, &app, "owner@beta.test", PW, None).await;
    b.click(&format!("#workspace-switcher option[value='{beta}']"))
        .await;
    b.wait_text("#workspace-banner", "Org: Org beta").await;
    b.click("nav a[href='#/marketplace']").await;
    b.fill("#request-message", "For our support bot").await;
    b.click(&format!("{listing} [data-action='request']")).await;
    b.wait_text("tr[data-request='acme/chat'] .status", "pending")
        .await;
    sign_out(&b).await;

    sign_in(&b, &app, "admin@acme.test", PW, Some(org)).await;
    b.click("nav a[href='#/marketplace']").await;
    let received = "tr[data-request='beta:acme/chat']";
    b.wait_text(received, "For our support bot").await;
    b.click(&format!("{received} [data-action='approve']"))
        .await;
    b.wait_text(&format!("{received} .status"), "approved")
        .await;
    b.quit().await;

    let token = app.login("owner@beta.test", PW).await.token;
    let token = app.switch(&token, Some(beta)).await;
    let shares = json_with_status(
        app.get_as(&token, "/organizations/current/shares?side=consumer")
            .await,
        200,
    )
    .await;
    let share = &shares["items"][0];
    assert_eq!(share["name_for_clients"], "acme/chat");
    assert_eq!(share["status"], "proposed");
    assert_eq!(share["price_input_micros_per_1k"], 200_000);
}

/// `token` posts `body` to `path`, expecting a 2xx; returns the JSON.
async fn ok_post(
    app: &TestApp,
    token: &str,
    path: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    let res = app.post_as(token, path, body).await;
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    assert!((200..300).contains(&status), "{path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or_default()
}

/// Everything up to the consumer's acceptance, through the API: Acme serves `acme/chat` (a
/// ready, approved mock instance; a published, approved offering) and proposes it to Beta at
/// €1 per 1k tokens each way, with both of Acme's approvals on the share. Returns (Beta's id,
/// an API key of Beta).
async fn proposed_share(app: &TestApp, acme: OrgId) -> (OrgId, String) {
    let buyer = app.create_user("owner@beta.test", PW).await;
    let manager = app.create_user("manager@beta.test", PW).await;
    let beta = app
        .create_org("beta", &[(buyer, Role::Owner), (manager, Role::Manager)])
        .await;
    let offering = public_offering(app, acme).await;
    let admin = app.login("admin@acme.test", PW).await.token;
    let admin = app.switch(&admin, Some(acme)).await;
    let manager = app.login("manager@acme.test", PW).await.token;
    let manager = app.switch(&manager, Some(acme)).await;
    let instance = ok_post(
        app,
        &admin,
        "/deployments",
        json!({"model_id": offering["model_id"]}),
    )
    .await;
    let path = format!("/instances/{}", instance["id"].as_str().unwrap());
    wait_ready(app, &admin, &path).await;
    let offering_path = format!(
        "/organizations/current/offerings/{}",
        offering["id"].as_str().unwrap()
    );
    let grant = json!({"offering_id": offering["id"], "consumer_organization_slug": "beta",
        "price_input_micros_per_1k": 1_000_000, "price_output_micros_per_1k": 1_000_000});
    let share = ok_post(app, &admin, "/organizations/current/shares", grant).await;
    let share_path = format!(
        "/organizations/current/shares/{}",
        share["id"].as_str().unwrap()
    );
    for resource in [&path, &offering_path, &share_path] {
        for (token, flag) in [(&admin, "tech"), (&manager, "eco")] {
            let body = json!({"flag": flag, "active": true});
            ok_post(app, token, &format!("{resource}/activation"), body).await;
        }
    }
    let owner = app.login("owner@beta.test", PW).await.token;
    let owner = app.switch(&owner, Some(beta)).await;
    let key = ok_post(app, &owner, "/api_keys", json!({"name": "bot"})).await;
    // An org key works once both approvals are on (the owner may give both).
    let key_path = format!("/api_keys/{}", key["key"]["id"].as_str().unwrap());
    for flag in ["tech", "eco"] {
        let body = json!({"flag": flag, "active": true});
        ok_post(app, &owner, &format!("{key_path}/activation"), body).await;
    }
    (beta, key["secret"].as_str().unwrap().to_owned())
}

async fn chat(app: &TestApp, key: &str) -> u16 {
    let body = json!({"model": "acme/chat", "messages": [{"role": "user", "content": "Hi"}]});
    let res = app.post_as(key, "/v1/chat/completions", body).await;
    res.status().as_u16()
}

/// Issue 20, the issue's own example: Beta's manager reads the proposed prices and accepts
/// them, a call goes through, the manager sets a cap below what is spent: the page shows the
/// cap reached and the next call fails. Then Acme's owner changes the price: the share is
/// visibly back to waiting for the consumer, who sees the new price.
#[tokio::test]
async fn a_manager_accepts_a_share_sets_a_cap_and_a_price_change_waits_for_the_consumer() {
    let app = app().await;
    let (acme_id, _) = acme(&app).await;
    let (beta, key) = proposed_share(&app, acme_id).await;
    let b = Browser::start().await;
    sign_in(&b, &app, "manager@beta.test", PW, None).await;
    b.click(&format!("#workspace-switcher option[value='{beta}']"))
        .await;
    b.wait_text("#workspace-banner", "Org: Org beta").await;
    b.click("nav a[href='#/sharing']").await;
    let row = "tr[data-received='acme/chat']";
    b.wait_text(&format!("{row} .price"), "€1.00 in / €1.00 out")
        .await;
    b.wait_text(&format!("{row} .status"), "waiting for your acceptance")
        .await;
    assert_eq!(
        chat(&app, &key).await,
        404,
        "not accepted yet: not a model of Beta"
    );
    b.click(&format!("{row} [data-action='accept']")).await;
    b.wait_text(&format!("{row} .status"), "active").await;
    assert_eq!(chat(&app, &key).await, 200);
    app.deps.proxy.meter.flush().await;

    b.click("nav a[href='#/models']").await;
    b.click("nav a[href='#/sharing']").await;
    b.fill(&format!("{row} input.cap"), "0.000001").await;
    b.click(&format!("{row} [data-action='set-cap']")).await;
    b.wait_text(&format!("{row} .spend"), "cap reached").await;
    assert_eq!(chat(&app, &key).await, 402, "past the cap");
    sign_out(&b).await;

    sign_in(&b, &app, "owner@acme.test", PW, Some(acme_id)).await;
    b.click("nav a[href='#/sharing']").await;
    let given = "tr[data-share='beta']";
    b.wait_text(&format!("{given} .status"), "active").await;
    b.click(&format!("{given} [data-action='pause']")).await;
    b.wait_text(&format!("{given} .status"), "paused by the provider")
        .await;
    b.click(&format!("{given} [data-action='resume']")).await;
    b.find(&format!("{given} [data-action='pause']")).await;
    b.fill(&format!("{given} input.price-in"), "2").await;
    b.click(&format!("{given} [data-action='set-prices']"))
        .await;
    b.wait_text(&format!("{given} .status"), "waiting for the consumer")
        .await;
    b.wait_text(&format!("{given} .price"), "€2.00 in / €1.00 out")
        .await;
    b.quit().await;

    let owner = app.login("owner@beta.test", PW).await.token;
    let owner = app.switch(&owner, Some(beta)).await;
    let shares = json_with_status(
        app.get_as(&owner, "/organizations/current/shares?side=consumer")
            .await,
        200,
    )
    .await;
    let share = &shares["items"][0];
    assert_eq!(share["status"], "proposed", "{share}");
    assert_eq!(share["price_input_micros_per_1k"], 2_000_000);
    assert_eq!(share["monthly_cap_micros"], 1);
}

/// Issue 20: API keys with an allowlist, an expiry and a monthly cap. Beta's owner creates a
/// key limited to `acme/chat` expiring at the end of 2030, calls with it, sees this month's
/// spend, sets a cap below it (the row shows the cap reached, the next call fails), revokes the
/// key and finds it under the "revoked" filter.
#[tokio::test]
async fn an_owner_creates_a_limited_expiring_key_and_caps_it_below_its_spend() {
    let app = app().await;
    let (acme_id, _) = acme(&app).await;
    let (beta, _) = proposed_share(&app, acme_id).await;
    let owner = app.login("owner@beta.test", PW).await.token;
    let owner = app.switch(&owner, Some(beta)).await;
    let shares = json_with_status(
        app.get_as(&owner, "/organizations/current/shares?side=consumer")
            .await,
        200,
    )
    .await;
    let share = shares["items"][0]["id"].as_str().unwrap().to_owned();
    let path = format!("/organizations/current/shares/{share}/accept");
    ok_post(&app, &owner, &path, json!({})).await;

    let b = Browser::start().await;
    sign_in(&b, &app, "owner@beta.test", PW, None).await;
    b.click(&format!("#workspace-switcher option[value='{beta}']"))
        .await;
    b.wait_text("#workspace-banner", "Org: Org beta").await;
    b.click("nav a[href='#/api-keys']").await;
    b.fill("#key-name", "support-bot").await;
    b.click("#key-models option[value='acme/chat']").await;
    b.execute("document.getElementById('key-expires').value = '2030-12-31'")
        .await;
    b.click("#key-create").await;
    let secret = b.wait_text("#key-secret", "sk-inv-").await;
    let row = "tr[data-key='support-bot']";
    b.wait_text(&format!("{row} .allowed"), "acme/chat").await;
    b.wait_text(&format!("{row} .expires"), "2030").await;
    // An org key works only once approved: refused first, then both approvals from its row.
    assert_eq!(chat(&app, secret.trim()).await, 403);
    b.wait_text(
        &format!("{row} .state"),
        "waiting for the technical and economic",
    )
    .await;
    b.click(&format!("{row} [data-action='tech-set']")).await;
    b.wait_text(&format!("{row} .state"), "waiting for the economic")
        .await;
    b.click(&format!("{row} [data-action='eco-set']")).await;
    // Exactly "operational": "non-operational: waiting for…" contains the word too.
    b.wait_exact(&format!("{row} .state"), "operational").await;
    assert_eq!(chat(&app, secret.trim()).await, 200);
    app.deps.proxy.meter.flush().await;

    b.click("nav a[href='#/models']").await;
    b.click("nav a[href='#/api-keys']").await;
    b.fill(&format!("{row} input.cap"), "0.000001").await;
    b.click(&format!("{row} [data-action='set-cap']")).await;
    b.wait_text(&format!("{row} .spend"), "cap reached").await;
    assert_eq!(chat(&app, secret.trim()).await, 402, "past the key's cap");
    let keys = json_with_status(app.get_as(&owner, "/api_keys").await, 200).await;
    let key = &keys["items"][0];
    assert_eq!(key["allowed_models"], json!(["acme/chat"]));
    assert_eq!(key["expires_at"], "2030-12-31T23:59:59Z");
    assert_eq!(key["monthly_cap_micros"], 1);
    assert!(
        key["spent_this_month_micros"].as_i64().unwrap() > 0,
        "{key}"
    );

    accept_confirms(&b).await;
    b.click(&format!("{row} [data-action='revoke']")).await;
    b.wait_text("#toast", "revoked").await;
    // Active keys only: the list is drawn again after the revocation.
    b.wait_gone(row).await;
    b.click("#key-filter option[value='revoked']").await;
    b.wait_text(&format!("{row} .state"), "revoked").await;
    b.quit().await;
}

/// How the console writes an amount below €1 (four decimals).
fn euros(micros: i64) -> String {
    format!("€{:.4}", micros as f64 / 1e6)
}

/// Issue 20: FinOps by offering, API key and counterparty organization, on both sides. One
/// metered call of Beta's key on Acme's share shows on Beta's spend under Acme, the offering
/// and the key's name, and on Acme's revenue under Beta, with the API's amount.
#[tokio::test]
async fn finops_groups_shared_usage_by_offering_key_and_organization_on_both_sides() {
    let app = app().await;
    let (acme_id, _) = acme(&app).await;
    let (beta, key) = proposed_share(&app, acme_id).await;
    let owner = app.login("owner@beta.test", PW).await.token;
    let owner = app.switch(&owner, Some(beta)).await;
    let shares = json_with_status(
        app.get_as(&owner, "/organizations/current/shares?side=consumer")
            .await,
        200,
    )
    .await;
    let share = shares["items"][0]["id"].as_str().unwrap().to_owned();
    let path = format!("/organizations/current/shares/{share}/accept");
    ok_post(&app, &owner, &path, json!({})).await;
    assert_eq!(chat(&app, &key).await, 200);
    app.deps.proxy.meter.flush().await;
    let now = time::OffsetDateTime::now_utc();
    let fmt = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let query = format!(
        "/finops/usage?from={}&to={}&side=consumer&group_by=offering",
        fmt(now - time::Duration::days(1)),
        fmt(now + time::Duration::days(1))
    );
    let report = json_with_status(app.get_as(&owner, &query).await, 200).await;
    let charged = euros(report["total"]["charged_micros"].as_i64().unwrap());

    let b = Browser::start().await;
    sign_in(&b, &app, "owner@beta.test", PW, None).await;
    b.click(&format!("#workspace-switcher option[value='{beta}']"))
        .await;
    b.wait_text("#workspace-banner", "Org: Org beta").await;
    b.click("nav a[href='#/finops']").await;
    b.wait_text("#usage-spend tr[data-group='acme/chat'] .charged", &charged)
        .await;
    b.click("#usage-group option[value='api_key']").await;
    b.wait_text("#usage-spend tr[data-group='key bot'] .charged", &charged)
        .await;
    b.click("#usage-group option[value='organization']").await;
    b.wait_text("#usage-spend tr[data-group='Org acme'] .charged", &charged)
        .await;
    sign_out(&b).await;

    sign_in(&b, &app, "owner@acme.test", PW, Some(acme_id)).await;
    b.click("nav a[href='#/finops']").await;
    b.wait_text(
        "#usage-revenue tr[data-group='acme/chat'] .charged",
        &charged,
    )
    .await;
    b.click("#usage-group option[value='organization']").await;
    b.wait_text(
        "#usage-revenue tr[data-group='Org beta'] .charged",
        &charged,
    )
    .await;
    b.click("#usage-group option[value='day']").await;
    b.wait_text("#usage-revenue .total", &charged).await;
    b.quit().await;
}

/// Issue 20, phone width: table rows become cards, so every control of Members is on screen
/// without sideways scrolling and can be used; an error in the status line is cleared by a
/// later success; revoking an invitation asks first.
#[tokio::test]
async fn at_phone_width_member_controls_are_on_screen_and_errors_give_way_to_successes() {
    let app = app().await;
    let (org, _) = acme(&app).await;
    let b = Browser::start().await;
    b.resize(390, 844).await;
    sign_in(&b, &app, "owner@acme.test", PW, Some(org)).await;
    b.click("nav a[href='#/members']").await;
    b.find("tr[data-member='user@acme.test'] button").await;
    let fits = b
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth && \
             [...document.querySelectorAll('#main button, #main select')].every(e => { \
               const r = e.getBoundingClientRect(); return r.left >= 0 && r.right <= window.innerWidth; })",
        )
        .await;
    assert_eq!(fits, json!(true), "every control within the screen's width");

    // An error (the server's message), then a success: the error does not linger.
    b.fill("#invite-email", "user@acme.test").await;
    b.click("#invite-button").await;
    b.wait_text("#toast.toast-error", "").await;
    b.fill("#invite-email", "guest@example.com").await;
    b.click("#invite-button").await;
    b.wait_text("tr[data-invitation='guest@example.com'] .status", "pending")
        .await;
    assert!(b.find_all("#toast.toast-error").await.is_empty());

    b.execute("window.confirm = () => false").await;
    b.click("tr[data-invitation='guest@example.com'] [data-action='revoke']")
        .await;
    accept_confirms(&b).await;
    b.click("tr[data-member='user@acme.test'] .danger").await;
    b.wait_text("#toast", "user@acme.test removed").await;
    b.quit().await;

    let owner = app.login("owner@acme.test", PW).await.token;
    let owner = app.switch(&owner, Some(org)).await;
    let invitations = json_with_status(
        app.get_as(&owner, "/organizations/current/invitations")
            .await,
        200,
    )
    .await;
    assert_eq!(invitations["items"][0]["status"], "pending", "not revoked");
    let members = json_with_status(
        app.get_as(&owner, "/organizations/current/members").await,
        200,
    )
    .await;
    assert!(
        members["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["email"] != "user@acme.test"),
        "{members}"
    );
}

/// Issue 20: Home greets by full name with readable permissions; the audit log names the
/// actor, keeps the JSON collapsed, filters by the start of the action and says when nothing
/// matches.
#[tokio::test]
async fn home_greets_by_name_and_the_audit_log_names_actors_and_filters_by_prefix() {
    let app = app().await;
    let (org, ids) = acme(&app).await;
    let owner = app.login("owner@acme.test", PW).await.token;
    let names = json!({"first_name": "Olga", "last_name": "Berg"});
    json_with_status(app.put_as(&owner, "/auth/me", names).await, 200).await;
    let owner = app.switch(&owner, Some(org)).await;
    let path = format!("/organizations/current/members/{}", ids[3]);
    json_with_status(
        app.put_as(&owner, &path, json!({"role": "manager"})).await,
        200,
    )
    .await;

    let b = Browser::start().await;
    sign_in(&b, &app, "owner@acme.test", PW, Some(org)).await;
    b.wait_exact("#greeting", "Hello Olga Berg").await;
    b.wait_text("[data-permission='invitations.create']", "Invite people")
        .await;
    b.click("nav a[href='#/audit']").await;
    let row = "tr[data-action='member.role_changed']";
    b.wait_text(&format!("{row} .actor"), "Olga Berg").await;
    let open = b
        .execute("return [...document.querySelectorAll('details.json')].some(d => d.open)")
        .await;
    assert_eq!(open, json!(false), "JSON collapsed");
    b.fill("#audit-action", "member.").await;
    b.click("#audit-filter").await;
    b.find(row).await;
    let others = b
        .execute(
            "return [...document.querySelectorAll('tr[data-action]')]\
             .filter(r => !r.dataset.action.startsWith('member.')).length",
        )
        .await;
    assert_eq!(others, json!(0));
    b.fill("#audit-action", "nothing.like.this").await;
    b.click("#audit-filter").await;
    b.wait_text("#audit-none", "Nothing found").await;
    b.quit().await;
}

/// Issue 20: an existing user, signed in and working in Personal, opens an invitation link and
/// joins: asked whether to work there now, the console comes back in the organization and
/// says so.
#[tokio::test]
async fn a_signed_in_user_who_accepts_an_invitation_is_told_the_workspace_switched() {
    let app = app().await;
    let (org, _) = acme(&app).await;
    invite_to_acme(&app, org, "friend@example.com").await;
    let link = link_in_mail(&app, "friend@example.com", "/invitations/").await;

    let b = Browser::start().await;
    sign_in(&b, &app, "friend@example.com", PW, None).await;
    b.wait_text("#workspace-banner", "Personal").await;
    b.goto(&link).await;
    b.wait_text("#invite-org", "Org acme").await;
    accept_confirms(&b).await;
    b.click("#accept-submit").await;
    let banner = b.wait_text("#workspace-banner", "Org: Org acme").await;
    assert!(banner.contains("manager"), "{banner}");
    b.wait_text("#toast", "You joined Org acme as manager")
        .await;
    b.quit().await;
}

/// Issue 20: an owner changes an offering's default prices on the sharing page; the economic
/// approval is withdrawn by the change (the row waits for it again) and the API has the prices.
#[tokio::test]
async fn an_owner_sets_default_prices_and_the_offering_waits_for_the_economic_approval_again() {
    let app = app().await;
    let (org, _) = acme(&app).await;
    let offering = public_offering(&app, org).await;
    let id = offering["id"].as_str().unwrap();
    let admin = app.login("admin@acme.test", PW).await.token;
    let admin = app.switch(&admin, Some(org)).await;
    let manager = app.login("manager@acme.test", PW).await.token;
    let manager = app.switch(&manager, Some(org)).await;
    let path = format!("/organizations/current/offerings/{id}/activation");
    for (token, flag) in [(&admin, "tech"), (&manager, "eco")] {
        ok_post(&app, token, &path, json!({"flag": flag, "active": true})).await;
    }

    let b = Browser::start().await;
    sign_in(&b, &app, "owner@acme.test", PW, Some(org)).await;
    b.click("nav a[href='#/sharing']").await;
    let row = "tr[data-offering='chat']";
    b.wait_exact(&format!("{row} .activation"), "operational")
        .await;
    b.fill(&format!("{row} input.price-in"), "0.3").await;
    b.fill(&format!("{row} input.price-out"), "0.6").await;
    b.click(&format!("{row} [data-action='set-default-prices']"))
        .await;
    b.wait_text(&format!("{row} .price"), "€0.3000 in / €0.6000 out")
        .await;
    b.wait_text(
        &format!("{row} .activation"),
        "waiting for the economic approval",
    )
    .await;
    b.quit().await;
    let offerings = json_with_status(
        app.get_as(&admin, "/organizations/current/offerings").await,
        200,
    )
    .await;
    let o = &offerings["items"][0];
    assert_eq!(o["default_price_input_micros_per_1k"], 300_000);
    assert_eq!(o["default_price_output_micros_per_1k"], 600_000);
    assert_eq!(o["missing_activation"], json!(["eco"]));
}

/// Issue 20: the platform audit for platform admins. The admin (in Personal) finds the public
/// model just created in the platform chain; an org member has no such page.
#[tokio::test]
async fn a_platform_admin_reads_the_platform_audit_and_a_member_has_no_such_page() {
    let app = app().await;
    let (org, _) = acme(&app).await;
    public_model(&app, "Llama", "meta/llama-3").await;
    let b = Browser::start().await;
    sign_in(&b, &app, ADMIN_EMAIL, ADMIN_PASSWORD, None).await;
    b.click("nav a[href='#/platform-audit']").await;
    b.wait_text("h1", "Platform audit log").await;
    b.fill("#audit-action", "model.").await;
    b.click("#audit-filter").await;
    b.wait_text("tr[data-action='model.created']", "model.created")
        .await;
    b.fill("#audit-action", "org.").await;
    b.click("#audit-filter").await;
    b.wait_text("#audit-none", "Nothing found").await;
    sign_out(&b).await;
    sign_in(&b, &app, "owner@acme.test", PW, Some(org)).await;
    assert!(
        b.find_all("nav a[href='#/platform-audit']")
            .await
            .is_empty(),
        "an org owner sees no platform audit"
    );
    b.quit().await;
}

/// Issue 20: the workbench. An admin starts a run shared with the org on a model the built-in
/// mock model serves, sends a message and sees the answer stream in; the conversation is
/// stored (checked through the API); a colleague opens the shared run read-only.
#[tokio::test]
async fn a_workbench_run_streams_its_answer_and_a_colleague_reads_it_only() {
    let app = app().await;
    let (org, _) = acme(&app).await;
    let model = public_model(&app, "Chat", "demo/chat").await;
    let admin = app.login("admin@acme.test", PW).await.token;
    let admin = app.switch(&admin, Some(org)).await;
    let manager = app.login("manager@acme.test", PW).await.token;
    let manager = app.switch(&manager, Some(org)).await;
    let instance = json_with_status(
        app.post_as(&admin, "/deployments", json!({"model_id": model["id"]}))
            .await,
        201,
    )
    .await;
    let path = format!("/instances/{}", instance["id"].as_str().unwrap());
    approve(&app, &admin, &manager, &path).await;
    wait_ready(&app, &admin, &path).await;

    let b = Browser::start().await;
    sign_in(&b, &app, "admin@acme.test", PW, Some(org)).await;
    b.click("nav a[href='#/workbench']").await;
    b.fill("#run-title", "First try").await;
    b.fill("#run-model", "demo/chat").await;
    b.click("#run-share").await;
    b.click("#run-create").await;
    b.find("#run-input").await;
    b.fill("#run-input", "Hello there").await;
    b.click("#run-send").await;
    b.wait_text(
        "#run-messages .message-assistant .text",
        "You said: \"Hello there\"",
    )
    .await;
    let runs = json_with_status(app.get_as(&admin, "/workbench/runs").await, 200).await;
    let run = runs["items"][0]["id"].as_str().unwrap().to_owned();
    // Stored once the stream ends (the page shows the words as they come, before that).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let roles = loop {
        let messages = json_with_status(
            app.get_as(&admin, &format!("/workbench/runs/{run}/messages"))
                .await,
            200,
        )
        .await;
        let roles: Vec<String> = messages["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["role"].as_str().unwrap().to_owned())
            .collect();
        if !roles.is_empty() || std::time::Instant::now() > deadline {
            break roles;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(roles, ["user", "assistant"]);
    sign_out(&b).await;

    sign_in(&b, &app, "user@acme.test", PW, Some(org)).await;
    b.click("nav a[href='#/workbench']").await;
    b.click("tr[data-run='First try'] a").await;
    b.wait_text("#run-readonly", "Read-only").await;
    b.wait_text("#run-messages", "Hello there").await;
    assert!(b.find_all("#run-input").await.is_empty());
    b.quit().await;
}

/// Issue 20: the invitations waiting for a signed-in user are on the Organizations page, and
/// one is accepted there without its email; the org then shows among the user's own.
#[tokio::test]
async fn a_signed_in_user_accepts_a_pending_invitation_from_the_organizations_page() {
    let app = app().await;
    let (org, _) = acme(&app).await;
    let owner = invite_to_acme(&app, org, "dana@example.com").await;
    let b = Browser::start().await;
    sign_in(&b, &app, "dana@example.com", PW, None).await;
    b.click("nav a[href='#/organizations']").await;
    let row = "tr[data-invitation='acme']";
    b.wait_text(row, "manager").await;
    b.click(&format!("{row} [data-action='accept-invitation']"))
        .await;
    b.wait_text("#toast", "You joined").await;
    b.wait_text("tr[data-org='acme']", "manager").await;
    // The accepted invitation leaves the list when it is drawn again.
    b.wait_gone(row).await;
    let members = json_with_status(
        app.get_as(&owner, "/organizations/current/members").await,
        200,
    )
    .await;
    assert!(
        members["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["email"] == "dana@example.com" && m["role"] == "manager"),
        "{members}"
    );
    b.quit().await;
}

/// Issue 20: the consumer's own controls. Beta's manager accepts, pauses the share (calls stop;
/// Acme sees "paused by the consumer"), resumes it (calls work again); after Acme changes the
/// prices, Beta's manager declines the new terms, and the share carries nothing.
#[tokio::test]
async fn a_consumer_pauses_resumes_and_declines_new_terms_from_the_sharing_page() {
    let app = app().await;
    let (acme_id, _) = acme(&app).await;
    let (beta, key) = proposed_share(&app, acme_id).await;
    let b = Browser::start().await;
    sign_in(&b, &app, "manager@beta.test", PW, None).await;
    b.click(&format!("#workspace-switcher option[value='{beta}']"))
        .await;
    b.wait_text("#workspace-banner", "Org: Org beta").await;
    b.click("nav a[href='#/sharing']").await;
    let row = "tr[data-received='acme/chat']";
    b.click(&format!("{row} [data-action='accept']")).await;
    b.wait_text(&format!("{row} .status"), "active").await;
    assert_eq!(chat(&app, &key).await, 200);
    b.click(&format!("{row} [data-action='pause']")).await;
    b.wait_text(&format!("{row} .status"), "paused by the consumer")
        .await;
    assert_eq!(chat(&app, &key).await, 404, "paused by the consumer");
    let admin = app.login("admin@acme.test", PW).await.token;
    let admin = app.switch(&admin, Some(acme_id)).await;
    let given = json_with_status(
        app.get_as(&admin, "/organizations/current/shares?side=provider")
            .await,
        200,
    )
    .await;
    assert_eq!(given["items"][0]["consumer_paused"], true, "{given}");
    b.click(&format!("{row} [data-action='resume']")).await;
    b.find(&format!("{row} [data-action='pause']")).await;
    assert_eq!(chat(&app, &key).await, 200);

    // New terms from the provider (prices: its owner or manager): the consumer declines them.
    let share = given["items"][0]["id"].as_str().unwrap();
    let owner = app.login("owner@acme.test", PW).await.token;
    let owner = app.switch(&owner, Some(acme_id)).await;
    let res = app
        .as_bearer(
            reqwest::Method::PATCH,
            &format!("/organizations/current/shares/{share}"),
            &owner,
        )
        .json(&json!({"price_input_micros_per_1k": 2_000_000}))
        .send()
        .await
        .unwrap();
    json_with_status(res, 200).await;
    b.click("nav a[href='#/models']").await;
    b.click("nav a[href='#/sharing']").await;
    b.wait_text(&format!("{row} .status"), "waiting for your acceptance")
        .await;
    b.wait_text(&format!("{row} .price"), "€2.00 in").await;
    accept_confirms(&b).await;
    b.click(&format!("{row} [data-action='decline']")).await;
    b.wait_text(&format!("{row} .status"), "declined").await;
    assert_eq!(chat(&app, &key).await, 404, "declined");
    b.quit().await;
}

/// Issue 20: an external endpoint the operator allows (loopback, in tests) is accepted from the
/// deploy form and becomes ready once it answers `/v1/models` — here the server's own built-in
/// mock model, an OpenAI-compatible server like any other.
#[tokio::test]
async fn an_allowed_external_endpoint_is_deployed_from_the_console_and_becomes_ready() {
    let app = app().await;
    let (org, _) = acme(&app).await;
    public_model(&app, "Llama", "meta/llama-3").await;
    let b = Browser::start().await;
    sign_in(&b, &app, "owner@acme.test", PW, Some(org)).await;
    b.click("nav a[href='#/instances']").await;
    b.click("#deploy-provider option[value='external']").await;
    let endpoint = format!("{}/mock-model", app.address);
    b.fill("#deploy-endpoint", &endpoint).await;
    b.click("#deploy-button").await;
    b.wait_exact("#instance-list tbody .status", "ready").await;
    let owner = app.login("owner@acme.test", PW).await.token;
    let owner = app.switch(&owner, Some(org)).await;
    let list = json_with_status(app.get_as(&owner, "/instances").await, 200).await;
    assert_eq!(list["items"][0]["provider"], "external", "{list}");
    assert_eq!(
        list["items"][0]["endpoint_url"],
        endpoint.as_str(),
        "{list}"
    );
    b.quit().await;
}
