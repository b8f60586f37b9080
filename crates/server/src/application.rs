use crate::settings::{Environment, Settings};
use anyhow::Context;
use inventiv_domain::{Email, OrgName, Password, Slug};
use inventiv_http::{AppState, CookieSettings, HttpSettings, Metrics};
use inventiv_persistence::{Db, DbOptions};
use inventiv_service::auth::AuthConfig;
use inventiv_service::bootstrap::{self, BootstrapOutcome, BootstrapSettings};
use inventiv_service::cache::Caches;
use inventiv_service::instances::lifecycle;
use inventiv_service::instances::providers::{ExternalSettings, MockSettings, Providers};
use inventiv_service::mailer::{Mailer, SmtpSettings, SmtpTls};
use inventiv_service::network::AllowedNetworks;
use inventiv_service::password::{HashCost, PasswordHasher, PoolSize};
use inventiv_service::proxy::{Proxy, ProxySettings};
use inventiv_service::{Clock, Deps, SystemClock};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

/// The running server: database connected and migrated, bootstrap done, socket bound.
pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    db: Db,
    deps: Deps,
    bootstrap: BootstrapOutcome,
    /// Listens for other replicas' writes, so the caches may be used (PostgreSQL).
    follower: Option<tokio::task::JoinHandle<()>>,
}

/// Connects the database (no migration): all that the operator commands working on rows alone
/// (`migrate`, `audit-verify`, `seed-scale`) need.
pub async fn connect(settings: &Settings) -> anyhow::Result<Db> {
    Db::connect(
        settings.database.url.expose(),
        &DbOptions {
            max_connections: settings.database.max_connections,
            acquire_timeout: Duration::from_secs(settings.database.acquire_timeout_secs),
            ..DbOptions::default()
        },
    )
    .await
    .context("connecting to the database")
}

/// Connects the database and builds the use-case dependencies (no migration, no bootstrap),
/// for a one-off process running use cases (`bootstrap`, `seed-demo`), not for a server. The
/// database handle comes back beside them, for what the caller itself does with it
/// (migrations, closing): use cases reach it only through [`Deps`].
///
/// Such a process proxies nothing, so it opens no usage journal: the journal directory is the
/// servers'. A journal of its own would be left behind when it exits, and opening one replays
/// the orphaned journals of dead servers — the next server to start does that.
pub async fn build_deps(settings: &Settings, clock: Arc<dyn Clock>) -> anyhow::Result<(Db, Deps)> {
    build_deps_on(settings, settings.server.port, clock, None).await
}

/// The server's usage journal directory (`proxy.journal_dir`, by default under the data dir).
fn journal_dir(settings: &Settings) -> std::path::PathBuf {
    if settings.proxy.journal_dir.is_empty() {
        settings.server.data_dir.join("usage-journal")
    } else {
        std::path::PathBuf::from(&settings.proxy.journal_dir)
    }
}

/// [`build_deps`] for a process listening on `port` (the bound one, when `server.port` is 0),
/// journaling usage rows in `journal` (a server) or not at all (None).
async fn build_deps_on(
    settings: &Settings,
    port: u16,
    clock: Arc<dyn Clock>,
    journal: Option<std::path::PathBuf>,
) -> anyhow::Result<(Db, Deps)> {
    let db = connect(settings).await?;
    let mailer = match &settings.smtp.host {
        Some(host) if !host.is_empty() => {
            let tls = match settings.smtp.tls.as_str() {
                "none" => SmtpTls::None,
                "tls" => SmtpTls::Tls,
                _ => SmtpTls::StartTls,
            };
            Mailer::smtp(
                &SmtpSettings {
                    host: host.clone(),
                    port: settings.smtp.port,
                    tls,
                    username: settings.smtp.username.clone(),
                    password: settings
                        .smtp
                        .password
                        .as_ref()
                        .map(|p| p.expose().to_owned()),
                },
                &settings.smtp.from,
            )?
        }
        _ => Mailer::outbox(settings.server.data_dir.join("outbox"), &settings.smtp.from)?,
    };
    let cost = match settings.environment {
        Environment::Test => HashCost::TestOnly,
        Environment::Development | Environment::Production => HashCost::Standard,
    };
    let jwt_secret = settings.jwt_secret()?;
    let auth = AuthConfig::new(
        jwt_secret.expose().as_bytes(),
        settings.auth.access_token_ttl_seconds,
        settings.auth.session_idle_seconds,
        settings.auth.session_absolute_seconds,
        settings.rate_limit.login_per_minute,
    )?
    .with_refresh_reuse_grace(settings.auth.refresh_reuse_grace_seconds);
    let p = &settings.providers;
    let allowed_networks = Arc::new(
        AllowedNetworks::parse(&p.external.allowed_networks)
            .map_err(anyhow::Error::msg)
            .context("providers.external.allowed_networks")?,
    );
    tracing::info!(
        added = ?p.external.allowed_networks,
        "external endpoints may be at public unicast addresses and in the added networks"
    );
    let providers = Providers::new(
        MockSettings {
            endpoint_url: settings.mock_endpoint(port),
            boot_delay: Duration::from_millis(p.mock.boot_delay_ms),
            ready_delay: Duration::from_millis(p.mock.ready_delay_ms),
            hourly_cost_micros: p.mock.hourly_cost_micros,
        },
        ExternalSettings {
            ready_timeout: Duration::from_secs(p.external.ready_timeout_secs),
            health_interval: Duration::from_secs(p.external.health_interval_secs.max(1)),
            request_timeout: Duration::from_millis(p.external.request_timeout_ms),
            allowed_networks: allowed_networks.clone(),
        },
    )
    .with_lease_ttl(Duration::from_secs(p.lease_seconds.max(1)));
    let proxy = Proxy::new(
        &ProxySettings {
            upstream_timeout: Duration::from_secs(settings.proxy.upstream_timeout_secs),
            connect_timeout: Duration::from_millis(settings.proxy.connect_timeout_ms),
            pool_idle_per_host: settings.proxy.pool_idle_per_host,
            meter_linger: Duration::from_millis(settings.proxy.meter_linger_ms),
            meter_queue: settings.proxy.meter_queue,
            cache: settings.cache.enabled,
            reservation_ttl: Duration::from_secs(match settings.proxy.reservation_ttl_seconds {
                0 => settings.proxy.upstream_timeout_secs + 60,
                ttl => ttl,
            }),
            max_response_bytes: settings.proxy.max_response_bytes,
            journal_dir: journal,
            allowed_networks,
        },
        db.clone(),
        clock.clone(),
    )
    .context("opening the usage journal")?;
    let deps = Deps::new(
        db.clone(),
        clock,
        mailer,
        PasswordHasher::new(
            cost,
            PoolSize {
                threads: settings.auth.hash_threads,
                queue: settings.auth.hash_queue,
            },
        )?,
        Arc::new(auth),
        providers,
        proxy,
        settings.server.public_url.trim_end_matches('/').to_owned(),
        settings.organizations.reserved_slugs().into(),
        Arc::new(Caches::new(settings.cache.enabled)),
    );
    Ok((db, deps))
}

/// The `[bootstrap]` section, parsed.
pub fn bootstrap_settings(settings: &Settings) -> anyhow::Result<BootstrapSettings> {
    let b = &settings.bootstrap;
    Ok(BootstrapSettings {
        admin_email: Email::parse(&b.admin_email).context("bootstrap.admin_email")?,
        admin_password: if b.admin_password.is_empty() {
            None
        } else {
            Some(Password::parse(b.admin_password.expose()).context("bootstrap.admin_password")?)
        },
        org_name: OrgName::parse(&b.org_name).context("bootstrap.org_name")?,
        org_slug: Slug::parse(&b.org_slug).context("bootstrap.org_slug")?,
    })
}

impl Application {
    /// Builds with the wall clock.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// Builds with an injected clock (tests pin time with `ManualClock`).
    pub async fn build_with_clock(
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Application> {
        // Bound first: the mock instances' endpoint may be this server's own (the built-in
        // mock model), on the port the system picked.
        let listener = TcpListener::bind((settings.server.host.as_str(), settings.server.port))
            .with_context(|| {
                format!("binding {}:{}", settings.server.host, settings.server.port)
            })?;
        let port = listener.local_addr()?.port();
        let (db, deps) =
            build_deps_on(&settings, port, clock, Some(journal_dir(&settings))).await?;
        db.migrate().await.context("applying migrations")?;
        let bootstrap = bootstrap::run(&deps, &bootstrap_settings(&settings)?)
            .await
            .map_err(|e| anyhow::anyhow!("bootstrap failed: {e}"))?;

        let resumed = lifecycle::reconcile(&deps)
            .await
            .map_err(|e| anyhow::anyhow!("resuming instances: {e}"))?;
        if resumed > 0 {
            tracing::info!(
                resumed,
                "resumed instances left mid-way and not held by a live replica"
            );
        }
        lifecycle::spawn_lease_keeper(deps.clone());
        lifecycle::spawn_health_checks(deps.clone());
        let follower = settings.cache.enabled.then(|| {
            let db = db.clone();
            tokio::spawn(async move { db.follow_other_writers().await })
        });

        let state = AppState {
            deps: deps.clone(),
            metrics: Metrics::new()?,
            cookies: CookieSettings {
                secure: settings.auth.cookie_secure,
                allowed_origins: settings.allowed_origins(),
            },
        };
        let server = inventiv_http::serve(
            listener,
            state,
            &HttpSettings {
                workers: settings.server.workers,
                json_limit: settings.server.json_limit_bytes,
                proxy_body_limit: settings.proxy.max_body_bytes,
                shutdown_timeout_secs: settings.server.shutdown_timeout_secs,
                max_inflight_body_bytes: settings.server.max_inflight_body_bytes,
                body_timeout: Duration::from_secs(settings.server.body_timeout_secs.max(1)),
                trusted_proxies: settings
                    .server
                    .trusted_proxies
                    .iter()
                    .map(|p| p.parse())
                    .collect::<Result<_, String>>()
                    .map_err(|e| anyhow::anyhow!("server.trusted_proxies: {e}"))?,
                mock_model: settings.builtin_mock_model(),
            },
        )?;
        Ok(Application {
            port,
            server,
            db,
            deps,
            bootstrap,
            follower,
        })
    }

    /// The bound port (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// What the start-up bootstrap did.
    pub fn bootstrap_outcome(&self) -> &BootstrapOutcome {
        &self.bootstrap
    }

    /// The use-case dependencies.
    pub fn deps(&self) -> &Deps {
        &self.deps
    }

    /// The database handle (tests and benchmarks read and seed the database directly).
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// A handle that stops the server gracefully.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGTERM/SIGINT (or a stop through the handle), then closes the pool.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.server.await?;
        if let Some(follower) = &self.follower {
            follower.abort();
        }
        // Every proxied request that completed has queued its usage row: store them all, then
        // give back the spend leases this process holds.
        self.deps.proxy.shut_down().await;
        tracing::info!("server stopped, usage flushed; closing the database pool");
        self.db.close().await?;
        Ok(())
    }
}
