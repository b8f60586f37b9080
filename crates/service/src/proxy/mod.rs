//! The OpenAI-compatible proxy (SPEC §5): resolve the model, pick a ready operational instance,
//! forward (streaming SSE through as it arrives), and meter the usage into `inference_usage`.

mod forward;
pub mod meter;
pub mod resolve;

pub use forward::{Endpoint, ProxyBody, ProxyResponse, forward};
pub use meter::Meter;
pub use resolve::{ListedModel, Target, available};

use std::time::Duration;

/// The proxy's HTTP client (pooled keep-alive connections, TCP_NODELAY) and its meter.
#[derive(Clone, Debug)]
pub struct Proxy {
    pub client: reqwest::Client,
    pub meter: Meter,
    /// Resolved routes by (scope, model name) (see [`crate::cache`]).
    pub routes: std::sync::Arc<
        crate::cache::EpochCache<(inventiv_domain::Scope, String), resolve::CachedTarget>,
    >,
}

/// `[proxy]` settings.
#[derive(Debug, Clone)]
pub struct ProxySettings {
    pub upstream_timeout: Duration,
    pub connect_timeout: Duration,
    pub pool_idle_per_host: usize,
    /// How long the usage writer waits to batch rows.
    pub meter_linger: Duration,
    /// Whether the routing cache is on (off with several replicas; see `crate::cache`).
    pub cache: bool,
}

impl Proxy {
    pub fn new(
        settings: &ProxySettings,
        db: inventiv_persistence::Db,
    ) -> Result<Proxy, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(settings.upstream_timeout)
            .connect_timeout(settings.connect_timeout)
            .pool_max_idle_per_host(settings.pool_idle_per_host)
            .tcp_nodelay(true)
            .build()?;
        Ok(Proxy {
            client,
            meter: Meter::start(db, settings.meter_linger),
            routes: std::sync::Arc::new(crate::cache::EpochCache::new(settings.cache)),
        })
    }
}
