use crate::auth::AuthConfig;
use crate::cache::Caches;
use crate::clock::Clock;
use crate::instances::providers::Providers;
use crate::mailer::Mailer;
use crate::password::PasswordHasher;
use inventiv_persistence::Db;
use std::sync::Arc;

/// What every use case may use. Built once by the server; cheap to clone.
///
/// The database is private to this crate: outside it, data comes only through use cases (the
/// http crate cannot reach around them to the pool). The server, which connects the database,
/// keeps its own handle for migrations and its operator commands.
#[derive(Clone, Debug)]
pub struct Deps {
    pub(crate) db: Db,
    pub clock: Arc<dyn Clock>,
    pub mailer: Mailer,
    pub passwords: PasswordHasher,
    /// Token keys, lifetimes and rate limiters.
    pub auth: Arc<AuthConfig>,
    /// Instance providers by name (`mock`, `external`).
    pub providers: Providers,
    /// The OpenAI-compatible proxy's client and usage meter.
    pub proxy: crate::proxy::Proxy,
    /// Base URL for links in emails (`server.public_url`), without a trailing slash.
    pub public_url: String,
    /// Names no org slug and no public model namespace may take
    /// (`organizations.reserved_slugs`, SPEC §5.1), trimmed and lowercase.
    pub reserved_slugs: Arc<[String]>,
    /// The read caches (`cache.enabled`); the proxy keeps its routes itself.
    pub caches: Arc<Caches>,
}

impl Deps {
    /// Assembles the dependencies around `db`.
    // Ten arguments of ten different types: a swapped pair does not compile.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        db: Db,
        clock: Arc<dyn Clock>,
        mailer: Mailer,
        passwords: PasswordHasher,
        auth: Arc<AuthConfig>,
        providers: Providers,
        proxy: crate::proxy::Proxy,
        public_url: String,
        reserved_slugs: Arc<[String]>,
        caches: Arc<Caches>,
    ) -> Deps {
        Deps {
            db,
            clock,
            mailer,
            passwords,
            auth,
            providers,
            proxy,
            public_url,
            reserved_slugs,
            caches,
        }
    }

    /// Whether `name` (any case) is reserved by the operator.
    pub fn is_reserved_slug(&self, name: &str) -> bool {
        self.reserved_slugs
            .iter()
            .any(|reserved| reserved.eq_ignore_ascii_case(name))
    }
}

/// Facts about the HTTP request behind a use case, recorded in audit events and sessions.
#[derive(Clone, Debug, Default)]
pub struct RequestMeta {
    pub request_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}
