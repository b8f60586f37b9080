//! `spawn_app()` and what tests share.
// Shared by every test module; a helper unused by the current set of tests is not an error.
#![allow(dead_code, unused_imports)]

mod smtp_sink;
mod test_db;
pub mod upstream;

pub use smtp_sink::{ReceivedMail, SmtpSink};
pub use test_db::TestDatabase;

use inventiv_domain::{Email, OrgId, OrgName, Password, Role, Slug, UserId};
use inventiv_persistence::Db;
use inventiv_persistence::repo::{memberships, organizations, users};
use inventiv_server::settings::Secret;
use inventiv_server::{Application, Environment, Settings};
use inventiv_service::{Clock, SystemClock};
use std::path::PathBuf;
use std::sync::Arc;

/// The bootstrap admin's password in every test app.
pub const ADMIN_EMAIL: &str = "admin@inventiv.local";
pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

/// A running application and what a test needs to talk to it.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub db: Db,
    pub deps: inventiv_service::Deps,
    /// Shared with the app's replicas ([`TestApp::spawn_replica`]).
    pub smtp: Arc<SmtpSink>,
    pub settings: Settings,
    pub database: Arc<TestDatabase>,
    pub handle: actix_web::dev::ServerHandle,
}

/// The repository's `config/` directory.
pub fn config_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../config"))
}

/// Test settings for `database` with mail going to `smtp`.
pub fn test_settings(database: &TestDatabase, smtp_port: u16) -> Settings {
    let mut settings = Settings::load(&config_dir(), Environment::Test).expect("test settings");
    settings.server.port = 0;
    settings.server.data_dir = database.data_dir();
    settings.database.url = Secret::new(database.url());
    settings.database.max_connections = 8;
    settings.smtp.host = Some("127.0.0.1".to_owned());
    settings.smtp.port = smtp_port;
    settings.smtp.tls = "none".to_owned();
    settings.bootstrap.admin_password = Secret::new(ADMIN_PASSWORD);
    settings
}

/// Starts the application with the wall clock.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}, Arc::new(SystemClock)).await
}

/// Starts the application with an injected clock.
pub async fn spawn_app_with_clock(clock: Arc<dyn Clock>) -> TestApp {
    spawn_app_with(|_| {}, clock).await
}

/// Starts the application with adjusted settings and an injected clock.
pub async fn spawn_app_with(
    customize: impl FnOnce(&mut Settings),
    clock: Arc<dyn Clock>,
) -> TestApp {
    let database = TestDatabase::create().await;
    let smtp = SmtpSink::start().await;
    let mut settings = test_settings(&database, smtp.port());
    customize(&mut settings);
    if std::env::var_os("TEST_LOG").is_some() {
        // `TEST_LOG=1 cargo test …` shows the server's logs (errors with their causes).
        inventiv_server::telemetry::init(&settings);
    }
    start(settings, clock, Arc::new(smtp), Arc::new(database)).await
}

async fn start(
    settings: Settings,
    clock: Arc<dyn Clock>,
    smtp: Arc<SmtpSink>,
    database: Arc<TestDatabase>,
) -> TestApp {
    let app = Application::build_with_clock(settings.clone(), clock)
        .await
        .expect("application starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let db = app.db().clone();
    let deps = app.deps().clone();
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client"),
        db,
        deps,
        smtp,
        settings,
        database,
        handle,
    }
}

/// A signed-in session: its token, its `Set-Cookie` value and the login body.
#[derive(Debug, Clone)]
pub struct Session {
    pub token: String,
    pub cookie: String,
    pub body: serde_json::Value,
}

impl TestApp {
    /// Another replica over the same database, settings (JWT secret included), SMTP sink and
    /// clock, with state of its own: pool, caches, tag versions, rate limits. `customize`
    /// adjusts its settings.
    pub async fn spawn_replica(&self, customize: impl FnOnce(&mut Settings)) -> TestApp {
        let mut settings = self.settings.clone();
        customize(&mut settings);
        start(
            settings,
            self.deps.clock.clone(),
            self.smtp.clone(),
            self.database.clone(),
        )
        .await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    /// A request with a bearer token.
    pub fn as_bearer(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(token)
    }

    pub async fn get_as(&self, token: &str, path: &str) -> reqwest::Response {
        self.as_bearer(reqwest::Method::GET, path, token)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn post_as(
        &self,
        token: &str,
        path: &str,
        body: serde_json::Value,
    ) -> reqwest::Response {
        self.as_bearer(reqwest::Method::POST, path, token)
            .json(&body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn put_as(
        &self,
        token: &str,
        path: &str,
        body: serde_json::Value,
    ) -> reqwest::Response {
        self.as_bearer(reqwest::Method::PUT, path, token)
            .json(&body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn delete_as(&self, token: &str, path: &str) -> reqwest::Response {
        self.as_bearer(reqwest::Method::DELETE, path, token)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn post_json(&self, path: &str, body: serde_json::Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("request sent")
    }

    /// Creates an account directly (hashing its password like the service does).
    pub async fn create_user(&self, email: &str, password: &str) -> UserId {
        let hash = self
            .deps
            .passwords
            .hash(&Password::parse(password).unwrap())
            .await
            .unwrap();
        users::insert(
            &self.db,
            users::NewUser {
                id: UserId::new(),
                email: &Email::parse(email).unwrap(),
                username: None,
                first_name: None,
                last_name: None,
                password_hash: &hash,
                is_platform_admin: false,
                now: self.deps.clock.now(),
            },
        )
        .await
        .unwrap()
        .id
    }

    /// Creates an organization with the given members, directly in the database.
    pub async fn create_org(&self, slug: &str, members: &[(UserId, Role)]) -> OrgId {
        let now = self.deps.clock.now();
        let tx = self.db.begin_write().await.unwrap();
        let org = organizations::insert(
            &tx,
            organizations::NewOrg {
                id: OrgId::new(),
                name: &OrgName::parse(&format!("Org {slug}")).unwrap(),
                slug: &Slug::parse(slug).unwrap(),
                created_by: None,
                now,
            },
        )
        .await
        .unwrap();
        for (user, role) in members {
            memberships::insert(&tx, org.id, *user, *role, now)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        org.id
    }

    /// Makes `user` a `role` member of `org`, directly in the database (in a transaction, as
    /// every write of a cached row: its commit invalidates what the caches hold about it).
    pub async fn add_member(&self, org: OrgId, user: UserId, role: Role) {
        let tx = self.db.begin_write().await.unwrap();
        memberships::insert(&tx, org, user, role, self.deps.clock.now())
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }

    /// Sets the role of `user` in `org`, directly in the database.
    pub async fn set_member_role(&self, org: OrgId, user: UserId, role: Role) {
        let tx = self.db.begin_write().await.unwrap();
        memberships::set_role(&tx, org, user, role).await.unwrap();
        tx.commit().await.unwrap();
    }

    /// Removes `user` from `org`, directly in the database.
    pub async fn remove_member(&self, org: OrgId, user: UserId) {
        let tx = self.db.begin_write().await.unwrap();
        memberships::delete(&tx, org, user).await.unwrap();
        tx.commit().await.unwrap();
    }

    /// Signs in (asserting 200).
    pub async fn login(&self, email: &str, password: &str) -> Session {
        let res = self
            .post_json(
                "/auth/login",
                serde_json::json!({"email": email, "password": password}),
            )
            .await;
        let cookie = res
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = json_with_status(res, 200).await;
        let token = body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned();
        Session {
            token,
            cookie,
            body,
        }
    }

    /// `GET /auth/me` with `token` (asserting 200).
    pub async fn me(&self, token: &str) -> serde_json::Value {
        json_with_status(self.get_as(token, "/auth/me").await, 200).await
    }

    /// Switches the session of `token` to `org` (asserting 200); returns the new token.
    pub async fn switch(&self, token: &str, org: Option<OrgId>) -> String {
        let body = serde_json::json!({"organization_id": org.map(|o| o.to_string())});
        let res = self.put_as(token, "/organizations/current", body).await;
        let body = json_with_status(res, 200).await;
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// Asserts the whole audit trail still verifies.
    pub async fn assert_audit_verifies(&self) {
        let report = inventiv_service::audit::verify(&self.db).await.unwrap();
        assert_eq!(report.broken, None, "{report:?}");
    }
}

/// Reads a response as JSON, asserting its status first (with the body in the message).
pub async fn json_with_status(res: reqwest::Response, status: u16) -> serde_json::Value {
    let actual = res.status().as_u16();
    let text = res.text().await.expect("body");
    assert_eq!(actual, status, "unexpected status; body: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Asserts the error shape of SPEC §4: `{error, message, request_id}` with the given code — or,
/// on the OpenAI-compatible routes (`/v1/*`), OpenAI's `{error: {message, type, param, code},
/// request_id}` (SPEC §5.3).
pub async fn assert_error(res: reqwest::Response, status: u16, code: &str) -> serde_json::Value {
    let openai = res.url().path().starts_with("/v1/");
    let header_id = res
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .expect("X-Request-Id on every response");
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "content-type {content_type}"
    );
    let body = json_with_status(res, status).await;
    let error = if openai {
        let error = &body["error"];
        assert!(
            error["type"].as_str().is_some_and(|t| !t.is_empty()),
            "body: {body}"
        );
        assert!(error.get("param").is_some(), "body: {body}");
        error
    } else {
        &body
    };
    let found = if openai {
        &error["code"]
    } else {
        &error["error"]
    };
    assert_eq!(found, code, "body: {body}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "body: {body}"
    );
    assert_eq!(
        body["request_id"].as_str(),
        Some(header_id.as_str()),
        "body: {body}"
    );
    body
}

/// The platform chain's audit events of `action`, newest first (at most 50).
pub async fn platform_events(
    app: &TestApp,
    action: &str,
) -> Vec<inventiv_persistence::repo::audit::AuditRecord> {
    inventiv_persistence::repo::audit::list_platform(
        &app.db,
        inventiv_persistence::repo::audit::EventFilter {
            action: Some(action),
            ..Default::default()
        },
        50,
    )
    .await
    .unwrap()
}

/// `org`'s chain's audit events of `action`, in the order they were appended (at most 100).
pub async fn org_events(
    app: &TestApp,
    org: OrgId,
    action: &str,
) -> Vec<inventiv_persistence::repo::audit::AuditRecord> {
    let mut events = inventiv_persistence::repo::audit::list(
        &app.db,
        org,
        inventiv_persistence::repo::audit::EventFilter {
            action: Some(action),
            ..Default::default()
        },
        100,
    )
    .await
    .unwrap();
    events.sort_by_key(|e| e.chain_seq);
    events
}

/// The `(before, after)` names of `org`'s `action` events, oldest first, after asserting they
/// form one sequence: each event replaced the name the previous one set.
pub async fn audited_renames(app: &TestApp, org: OrgId, action: &str) -> Vec<(String, String)> {
    let events = org_events(app, org, action).await;
    let name = |state: &Option<serde_json::Value>| {
        state.as_ref().unwrap()["name"].as_str().unwrap().to_owned()
    };
    let renames: Vec<(String, String)> = events
        .iter()
        .map(|e| (name(&e.before), name(&e.after)))
        .collect();
    for pair in renames.windows(2) {
        assert_eq!(pair[1].0, pair[0].1, "{renames:#?}");
    }
    renames
}

/// The audited refusals of sign-ins (one per burst).
pub async fn login_refusals(app: &TestApp) -> Vec<inventiv_persistence::repo::audit::AuditRecord> {
    platform_events(app, "auth.login_rate_limited").await
}
