//! Typed settings (SPEC §4.6). Sources, later ones winning: `config/default.toml`,
//! `config/<INVENTIV_ENV>.toml` (`development` by default; `test`, `production`), then
//! environment variables `INVENTIV__<SECTION>__<KEY>` (lists comma-separated).
//!
//! The repository's `config/*.toml` are compiled into the binary, so it runs from any
//! directory; a file of the same name in the configuration directory (`./config`, or
//! `INVENTIV_CONFIG_DIR`) overrides its built-in copy key by key, and a missing one is not an
//! error. Each file keeps its rank: an on-disk `default.toml` still yields to the environment's
//! file.

use anyhow::{Context, bail};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Which configuration file applies, and which safety rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Test,
    Production,
}

impl Environment {
    /// From `INVENTIV_ENV` (default `development`).
    pub fn from_env() -> anyhow::Result<Self> {
        match std::env::var("INVENTIV_ENV").as_deref() {
            Err(_) | Ok("") | Ok("development") => Ok(Self::Development),
            Ok("test") => Ok(Self::Test),
            Ok("production") => Ok(Self::Production),
            Ok(other) => {
                bail!("INVENTIV_ENV must be development, test or production, not {other:?}")
            }
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Development => "development",
            Self::Test => "test",
            Self::Production => "production",
        }
    }

    /// This environment's `config/<name>.toml`, as built into the binary.
    fn built_in_toml(self) -> &'static str {
        match self {
            Self::Development => include_str!("../../../config/development.toml"),
            Self::Test => include_str!("../../../config/test.toml"),
            Self::Production => include_str!("../../../config/production.toml"),
        }
    }
}

/// A secret that never prints.
#[derive(Clone, Deserialize, Default)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() {
            "Secret(<unset>)"
        } else {
            "Secret(***)"
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    /// Base of the links in emails (and the default allowed origin). Unset or empty:
    /// `http://<host>:<port>`, filled in by [`Settings::load`], so changing the port
    /// keeps the links right.
    #[serde(default)]
    pub public_url: String,
    /// Where the embedded database, the generated JWT secret and the email outbox live.
    pub data_dir: PathBuf,
    /// Actix workers; 0 = one per core.
    pub workers: usize,
    /// Maximum JSON body on management endpoints, bytes.
    pub json_limit_bytes: usize,
    pub shutdown_timeout_secs: u64,
    /// Bytes all request bodies in flight may take together; beyond, 503 `server_busy`.
    pub max_inflight_body_bytes: usize,
    /// Seconds a request's body may take to arrive, from its head; beyond, 408.
    pub body_timeout_secs: u64,
    /// Reverse proxies (addresses or CIDR networks) whose `X-Forwarded-For` names the client;
    /// empty: the TCP peer is the client.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://…` or `postgres://…`.
    pub url: Secret,
    pub max_connections: u32,
    pub acquire_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// HS256 key, ≥ 32 bytes. Empty: generated once into `data_dir` (not in production).
    pub jwt_secret: Secret,
    pub access_token_ttl_seconds: u64,
    pub session_idle_seconds: u64,
    pub session_absolute_seconds: u64,
    pub cookie_secure: bool,
    /// Origins accepted on cookie-authenticated writes; empty = `[server.public_url]`.
    pub allowed_origins: Vec<String>,
    /// After a token refresh, how long the superseded token still refreshes (to the current
    /// token) instead of revoking the session as reused (SPEC §6 v2).
    #[serde(default = "default_refresh_reuse_grace_seconds")]
    pub refresh_reuse_grace_seconds: u64,
    /// Threads that hash passwords (argon2id, one 19 MiB buffer each); 0 = one per core.
    #[serde(default)]
    pub hash_threads: usize,
    /// Hashes that may wait for a thread; beyond, 503 `server_busy`. 0 = 8 per thread.
    #[serde(default)]
    pub hash_queue: usize,
}

fn default_refresh_reuse_grace_seconds() -> u64 {
    10
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSection {
    /// Unset: emails are written to `data_dir/outbox/`.
    pub host: Option<String>,
    pub port: u16,
    /// `none`, `starttls` or `tls`.
    pub tls: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub from: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapSection {
    pub admin_email: String,
    /// Empty: generated and printed once.
    pub admin_password: Secret,
    pub org_name: String,
    pub org_slug: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Login attempts per minute, per IP and per account.
    pub login_per_minute: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `pretty` (human) or `json`.
    pub format: String,
    /// Default filter; `RUST_LOG` overrides it.
    pub level: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MockProviderSettings {
    /// Where every mock instance "answers". Unset (empty): the built-in mock model this
    /// server serves itself (see [`Settings::mock_endpoint`]); or a local OpenAI-compatible
    /// upstream.
    #[serde(default)]
    pub endpoint_url: String,
    pub boot_delay_ms: u64,
    pub ready_delay_ms: u64,
    pub hourly_cost_micros: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalProviderSettings {
    /// How long a registered endpoint may take to answer `GET /v1/models`.
    pub ready_timeout_secs: u64,
    pub health_interval_secs: u64,
    pub request_timeout_ms: u64,
    /// CIDRs tenants' endpoints may be in besides public unicast addresses (the default,
    /// empty); comma-separated in `INVENTIV__PROVIDERS__EXTERNAL__ALLOWED_NETWORKS`.
    pub allowed_networks: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvidersSection {
    /// How long a replica's lease on an instance bring-up (or tear-down) outlives its last
    /// renewal: when a replica dies, a live one takes its work over this long after.
    #[serde(default = "default_lease_seconds")]
    pub lease_seconds: u64,
    pub mock: MockProviderSettings,
    pub external: ExternalProviderSettings,
}

fn default_lease_seconds() -> u64 {
    30
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxySection {
    pub upstream_timeout_secs: u64,
    pub connect_timeout_ms: u64,
    pub pool_idle_per_host: usize,
    /// Maximum body of a proxied request.
    pub max_body_bytes: usize,
    /// How long the usage writer waits to batch rows (flushed at shutdown anyway).
    pub meter_linger_ms: u64,
    /// Usage rows queued at most before proxied requests wait for the writer.
    pub meter_queue: usize,
    /// How long a spend lease outlives its holder's last renewal (0: upstream timeout + 60 s).
    #[serde(default)]
    pub reservation_ttl_seconds: u64,
    /// The largest answer (not streamed) read from a model server.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: usize,
    /// Where usage rows are journaled before answers complete (empty: `<data_dir>/usage-journal`).
    #[serde(default)]
    pub journal_dir: String,
}

fn default_max_response_bytes() -> usize {
    64 << 20
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSettings {
    /// In-process caches of sessions, accounts, orgs, API keys and proxy routes, invalidated by
    /// the committed writes of what they were read from, of this process and, on PostgreSQL, of
    /// every other replica (`LISTEN/NOTIFY`, see `inventiv_persistence::tags` and `listener`).
    pub enabled: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrganizationsSettings {
    /// Names nobody may take as an org slug or a public model namespace (SPEC §5.1).
    pub reserved_slugs: Vec<String>,
}

impl OrganizationsSettings {
    /// The reserved names, trimmed and lowercase (comparison is case-insensitive), blanks
    /// dropped (a trailing comma in the environment variable is harmless).
    pub fn reserved_slugs(&self) -> Vec<String> {
        self.reserved_slugs
            .iter()
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect()
    }
}

/// Every setting of the server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(skip, default = "default_env")]
    pub environment: Environment,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub auth: AuthSettings,
    pub smtp: SmtpSection,
    pub bootstrap: BootstrapSection,
    pub rate_limit: RateLimitSettings,
    pub providers: ProvidersSection,
    pub proxy: ProxySection,
    pub cache: CacheSettings,
    pub log: LogSettings,
    pub organizations: OrganizationsSettings,
}

fn default_env() -> Environment {
    Environment::Development
}

/// `INVENTIV__<SECTION>__<KEY>` variables; the list-valued keys are comma-separated.
fn environment_source() -> config::Environment {
    config::Environment::with_prefix("INVENTIV")
        .prefix_separator("__")
        .separator("__")
        .list_separator(",")
        .with_list_parse_key("auth.allowed_origins")
        .with_list_parse_key("organizations.reserved_slugs")
        .with_list_parse_key("providers.external.allowed_networks")
        .with_list_parse_key("server.trusted_proxies")
        .try_parsing(true)
}

/// The repository's `config/default.toml`, as built into the binary.
const DEFAULT_TOML: &str = include_str!("../../../config/default.toml");

/// `http://<host>:<port>`, with an IPv6 address in brackets.
fn url_of(host: &str, port: u16) -> String {
    if host.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("http://[{host}]:{port}")
    } else {
        format!("http://{host}:{port}")
    }
}

/// The address this server answers itself on, from its bind address: a wildcard bind
/// (`0.0.0.0`, `::`) is reached on loopback.
fn own_url(host: &str, port: u16) -> String {
    match host {
        "0.0.0.0" | "" => url_of("127.0.0.1", port),
        "::" => url_of("::1", port),
        host => url_of(host, port),
    }
}

impl Settings {
    /// Whether the mock provider's instances are served by the built-in mock model
    /// (`providers.mock.endpoint_url` unset).
    pub fn builtin_mock_model(&self) -> bool {
        self.providers.mock.endpoint_url.trim().is_empty()
    }

    /// Where mock instances answer, once the server listens on `port`: the configured
    /// endpoint, or the built-in mock model of this very server.
    pub fn mock_endpoint(&self, port: u16) -> String {
        if self.builtin_mock_model() {
            format!(
                "{}{}",
                own_url(&self.server.host, port),
                inventiv_http::mock_model::PREFIX
            )
        } else {
            self.providers.mock.endpoint_url.clone()
        }
    }

    /// Loads the settings of `environment`: the built-in files, overridden by those in
    /// `config_dir` (each optional), then by the process environment.
    pub fn load(config_dir: &Path, environment: Environment) -> anyhow::Result<Settings> {
        let environment_file = format!("{}.toml", environment.as_str());
        let files = [
            ("default.toml", DEFAULT_TOML),
            (environment_file.as_str(), environment.built_in_toml()),
        ];
        let mut builder = config::Config::builder();
        for (name, built_in) in files {
            builder = builder
                .add_source(config::File::from_str(built_in, config::FileFormat::Toml))
                .add_source(config::File::from(config_dir.join(name)).required(false));
        }
        let built = builder
            .add_source(environment_source())
            .build()
            .context("reading configuration")?;
        let mut settings: Settings = built.try_deserialize().context("invalid configuration")?;
        settings.environment = environment;
        if settings.server.public_url.is_empty() {
            settings.server.public_url = url_of(&settings.server.host, settings.server.port);
        }
        settings.validate()?;
        Ok(settings)
    }

    /// Loads for the environment named by `INVENTIV_ENV`, overridden by the files in `./config`
    /// (or `INVENTIV_CONFIG_DIR`) when they exist.
    pub fn from_env() -> anyhow::Result<Settings> {
        let dir = std::env::var_os("INVENTIV_CONFIG_DIR")
            .map_or_else(|| PathBuf::from("config"), PathBuf::from);
        Settings::load(&dir, Environment::from_env()?)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.environment == Environment::Production && self.auth.jwt_secret.expose().len() < 32 {
            bail!(
                "auth.jwt_secret must be set to at least 32 bytes in production (INVENTIV__AUTH__JWT_SECRET)"
            );
        }
        if !self.auth.jwt_secret.is_empty() && self.auth.jwt_secret.expose().len() < 32 {
            bail!("auth.jwt_secret must be at least 32 bytes");
        }
        if !matches!(self.smtp.tls.as_str(), "none" | "starttls" | "tls") {
            bail!("smtp.tls must be none, starttls or tls");
        }
        if !matches!(self.log.format.as_str(), "pretty" | "json") {
            bail!("log.format must be pretty or json");
        }
        if let Err(err) = inventiv_service::network::AllowedNetworks::parse(
            &self.providers.external.allowed_networks,
        ) {
            bail!("providers.external.allowed_networks: {err}");
        }
        Ok(())
    }

    /// Origins allowed for cookie-authenticated writes.
    pub fn allowed_origins(&self) -> Vec<String> {
        if self.auth.allowed_origins.is_empty() {
            vec![self.server.public_url.trim_end_matches('/').to_owned()]
        } else {
            self.auth.allowed_origins.clone()
        }
    }

    /// The JWT key: the configured one, or one generated once into `data_dir/jwt_secret` and
    /// reused on every later start (never a literal in the code).
    pub fn jwt_secret(&self) -> anyhow::Result<Secret> {
        if !self.auth.jwt_secret.is_empty() {
            return Ok(self.auth.jwt_secret.clone());
        }
        let path = self.server.data_dir.join("jwt_secret");
        if let Ok(existing) = std::fs::read_to_string(&path) {
            let existing = existing.trim().to_owned();
            if existing.len() >= 32 {
                return Ok(Secret::new(existing));
            }
        }
        std::fs::create_dir_all(&self.server.data_dir)
            .with_context(|| format!("creating {}", self.server.data_dir.display()))?;
        let mut bytes = [0u8; 48];
        rand::fill(&mut bytes);
        let secret = hex::encode(bytes);
        write_private(&path, &secret)?;
        Ok(Secret::new(secret))
    }
}

#[cfg(unix)]
fn write_private(path: &Path, content: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(content.as_bytes())?;
    Ok(())
}

#[cfg(not(unix))]
fn write_private(path: &Path, content: &str) -> anyhow::Result<()> {
    std::fs::write(path, content).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::{DEFAULT_TOML, Environment, OrganizationsSettings, Settings, environment_source};
    use std::collections::HashMap;
    use std::path::PathBuf;

    /// A fresh, empty directory: a working directory with no `config/` in it.
    fn empty_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("inventiv-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn without_config_files_on_disk_the_built_in_ones_apply() {
        let dir = empty_dir();
        let missing = dir.join("config");
        let settings = Settings::load(&missing, Environment::Development).unwrap();
        assert_eq!(
            (settings.server.host.as_str(), settings.server.port),
            ("127.0.0.1", 8080)
        );
        assert_eq!(settings.server.public_url, "http://127.0.0.1:8080");
        assert_eq!(
            settings.database.url.expose(),
            "sqlite://data/inventiv.db?mode=rwc"
        );
        // development.toml is built in too.
        assert!(!settings.auth.cookie_secure);
        assert_eq!(settings.log.format, "pretty");
        assert_eq!(
            settings.providers.external.allowed_networks,
            ["127.0.0.0/8", "::1"]
        );
        let test = Settings::load(&missing, Environment::Test).unwrap();
        assert_eq!(test.rate_limit.login_per_minute, 10000);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_file_on_disk_overrides_its_built_in_copy_key_by_key_and_keeps_its_rank() {
        let dir = empty_dir();
        std::fs::write(dir.join("development.toml"), "[server]\nport = 9090\n").unwrap();
        // An on-disk default.toml still yields to the environment's (built-in) file.
        std::fs::write(
            dir.join("default.toml"),
            "[log]\nformat = \"json\"\nlevel = \"debug\"\n",
        )
        .unwrap();
        let settings = Settings::load(&dir, Environment::Development).unwrap();
        assert_eq!(settings.server.port, 9090);
        assert_eq!(settings.server.host, "127.0.0.1", "the other keys stay");
        assert!(
            !settings.auth.cookie_secure,
            "development.toml's other keys stay"
        );
        assert_eq!(settings.log.level, "debug");
        assert_eq!(settings.log.format, "pretty");
        // The links in emails follow the port.
        assert_eq!(settings.server.public_url, "http://127.0.0.1:9090");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn public_url_is_derived_only_when_unset() {
        let dir = empty_dir();
        std::fs::write(
            dir.join("development.toml"),
            "[server]\nhost = \"::1\"\nport = 8443\n",
        )
        .unwrap();
        let derived = Settings::load(&dir, Environment::Development).unwrap();
        assert_eq!(derived.server.public_url, "http://[::1]:8443");
        assert_eq!(derived.allowed_origins(), ["http://[::1]:8443"]);

        std::fs::write(
            dir.join("development.toml"),
            "[server]\npublic_url = \"https://inventiv.example.com/\"\n",
        )
        .unwrap();
        let configured = Settings::load(&dir, Environment::Development).unwrap();
        assert_eq!(
            configured.server.public_url,
            "https://inventiv.example.com/"
        );
        assert_eq!(
            configured.allowed_origins(),
            ["https://inventiv.example.com"]
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn reserved_from(vars: &[(&str, &str)]) -> Vec<String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let built = config::Config::builder()
            .add_source(config::File::from_str(
                DEFAULT_TOML,
                config::FileFormat::Toml,
            ))
            .add_source(environment_source().source(Some(vars)))
            .build()
            .unwrap();
        built
            .get::<OrganizationsSettings>("organizations")
            .unwrap()
            .reserved_slugs()
    }

    #[test]
    fn reserved_slugs_default_and_comma_separated_override() {
        assert_eq!(
            reserved_from(&[]),
            [
                "admin",
                "api",
                "v1",
                "inventiv",
                "openai",
                "platform",
                "marketplace",
                "workbench"
            ]
        );
        assert_eq!(
            reserved_from(&[(
                "INVENTIV__ORGANIZATIONS__RESERVED_SLUGS",
                "Acme, globex,,initech"
            )]),
            ["acme", "globex", "initech"]
        );
    }

    #[test]
    fn trusted_proxies_default_empty_and_comma_separated_override() {
        let proxies = |vars: &[(&str, &str)]| {
            let vars: HashMap<String, String> = vars
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            config::Config::builder()
                .add_source(config::File::from_str(
                    DEFAULT_TOML,
                    config::FileFormat::Toml,
                ))
                .add_source(environment_source().source(Some(vars)))
                .build()
                .unwrap()
                .get::<Vec<String>>("server.trusted_proxies")
                .unwrap()
        };
        assert!(proxies(&[]).is_empty());
        assert_eq!(
            proxies(&[("INVENTIV__SERVER__TRUSTED_PROXIES", "10.0.0.5,10.1.0.0/16")]),
            ["10.0.0.5", "10.1.0.0/16"]
        );
    }
}
