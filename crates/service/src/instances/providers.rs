//! Instance providers behind one trait. `mock` provisions nothing: it walks an instance through
//! provisioning → booting → ready after configured delays and points it at a configured
//! endpoint (so the proxy can route to a local upstream). `external` registers an existing
//! OpenAI-compatible server: ready when `GET <endpoint>/v1/models` answers 200, and checked
//! periodically afterwards. Its endpoint is a tenant's input: it must be within the allowed
//! networks at registration and at every connection (see [`crate::outbound`]).

use crate::network::AllowedNetworks;
use crate::outbound::{self, CheckedConnector, Refusal};
use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// `[providers.mock]`.
#[derive(Debug, Clone)]
pub struct MockSettings {
    pub endpoint_url: String,
    pub boot_delay: Duration,
    pub ready_delay: Duration,
    pub hourly_cost_micros: i64,
}

/// `[providers.external]`.
#[derive(Debug, Clone)]
pub struct ExternalSettings {
    /// How long a new endpoint may take to answer `/v1/models` before the instance fails.
    pub ready_timeout: Duration,
    /// Between two health checks of a ready instance.
    pub health_interval: Duration,
    pub request_timeout: Duration,
    /// `providers.external.allowed_networks`.
    pub allowed_networks: Arc<AllowedNetworks>,
}

/// A provider failure: the instance ends `failed` with this reason.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct ProviderFailure(pub String);

#[async_trait]
pub trait Provider: Send + Sync + std::fmt::Debug {
    /// The name stored in `instances.provider`.
    fn name(&self) -> &'static str;
    /// The endpoint to store at deployment (None: known only once ready).
    fn initial_endpoint(&self, requested: Option<&str>) -> Result<Option<String>, String>;
    /// The registration check of a tenant's endpoint: `Some(key)`, the endpoint it claims
    /// (see `crate::outbound::endpoint_key`), or `None` when it claims none (the operator's).
    async fn admit(&self, endpoint: &str) -> Result<Option<String>, Refusal>;
    /// The default price of an hour of this instance, in micro-EUR.
    fn default_hourly_cost_micros(&self) -> i64;
    /// Provisioning: acquire the machine (returns when it boots).
    async fn provision(&self) -> Result<(), ProviderFailure>;
    /// Booting: wait until the model server answers; returns its endpoint.
    async fn wait_ready(&self, endpoint: Option<&str>) -> Result<String, ProviderFailure>;
    /// Whether a ready instance still answers.
    async fn healthy(&self, endpoint: &str) -> bool;
    /// Release the machine.
    async fn tear_down(&self) -> Result<(), ProviderFailure>;
}

#[derive(Debug)]
pub struct MockProvider(pub MockSettings);

#[async_trait]
impl Provider for MockProvider {
    fn name(&self) -> &'static str {
        "mock"
    }

    fn initial_endpoint(&self, _requested: Option<&str>) -> Result<Option<String>, String> {
        Ok(None)
    }

    /// The configured endpoint is the operator's: it is neither checked nor claimed.
    async fn admit(&self, _endpoint: &str) -> Result<Option<String>, Refusal> {
        Ok(None)
    }

    fn default_hourly_cost_micros(&self) -> i64 {
        self.0.hourly_cost_micros
    }

    async fn provision(&self) -> Result<(), ProviderFailure> {
        tokio::time::sleep(self.0.boot_delay).await;
        Ok(())
    }

    async fn wait_ready(&self, _endpoint: Option<&str>) -> Result<String, ProviderFailure> {
        tokio::time::sleep(self.0.ready_delay).await;
        Ok(self.0.endpoint_url.trim_end_matches('/').to_owned())
    }

    async fn healthy(&self, _endpoint: &str) -> bool {
        true
    }

    async fn tear_down(&self) -> Result<(), ProviderFailure> {
        tokio::time::sleep(self.0.boot_delay).await;
        Ok(())
    }
}

#[derive(Debug)]
pub struct ExternalProvider {
    settings: ExternalSettings,
    /// hyper's client over the checked connector (the proxy's), not reqwest: it follows no
    /// redirect (a redirect to a refused address would otherwise be a way around the check)
    /// and reads no `HTTP_PROXY` variable.
    client: Client<CheckedConnector, Empty<Bytes>>,
}

/// What a tenant learns when their endpoint is outside the allowed networks: nothing more.
pub const NOT_ALLOWED_REASON: &str =
    "endpoint not allowed (outside the networks this server may call)";

/// How a `GET /v1/models` went, without the details of the error (see [`without_url`]).
enum Probe {
    Answered(http::StatusCode),
    NotAllowed,
    Failed(&'static str),
}

impl ExternalProvider {
    pub fn new(settings: ExternalSettings) -> Self {
        let connector =
            CheckedConnector::new(settings.allowed_networks.clone(), settings.request_timeout);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(1)
            .build(connector);
        Self { settings, client }
    }

    async fn probe(&self, endpoint: &str) -> Probe {
        let Ok(uri) = format!("{endpoint}/v1/models").parse::<http::Uri>() else {
            return Probe::Failed("request error");
        };
        let Ok(request) = http::Request::get(uri).body(Empty::new()) else {
            return Probe::Failed("request error");
        };
        match tokio::time::timeout(self.settings.request_timeout, self.client.request(request))
            .await
        {
            Ok(Ok(res)) => Probe::Answered(res.status()),
            Ok(Err(err)) if outbound::is_not_allowed(&err) => Probe::NotAllowed,
            Ok(Err(err)) => Probe::Failed(without_url(&err)),
            Err(_) => Probe::Failed("timeout"),
        }
    }
}

/// A base URL the server may call: `http://host[:port][/path]`, no query, ≤ 2048 chars.
pub fn valid_endpoint(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    url.len() <= 2048
        && !rest.is_empty()
        && !rest.starts_with('/')
        && !url.contains(['?', '#', ' ', '\n', '\r', '\t'])
}

#[async_trait]
impl Provider for ExternalProvider {
    fn name(&self) -> &'static str {
        "external"
    }

    fn initial_endpoint(&self, requested: Option<&str>) -> Result<Option<String>, String> {
        match requested {
            Some(url) if valid_endpoint(url) => Ok(Some(url.trim_end_matches('/').to_owned())),
            Some(_) => Err(
                "must be an http:// base URL without query, e.g. http://10.0.0.5:8000".to_owned(),
            ),
            None => Err("required for the external provider".to_owned()),
        }
    }

    async fn admit(&self, endpoint: &str) -> Result<Option<String>, Refusal> {
        outbound::admit(
            &self.settings.allowed_networks,
            endpoint,
            self.settings.request_timeout,
        )
        .await
        .map(Some)
    }

    fn default_hourly_cost_micros(&self) -> i64 {
        0
    }

    async fn provision(&self) -> Result<(), ProviderFailure> {
        Ok(())
    }

    async fn wait_ready(&self, endpoint: Option<&str>) -> Result<String, ProviderFailure> {
        let endpoint = endpoint.ok_or_else(|| ProviderFailure("no endpoint".to_owned()))?;
        let deadline = tokio::time::Instant::now() + self.settings.ready_timeout;
        loop {
            let last = match self.probe(endpoint).await {
                Probe::Answered(status) if status.is_success() => return Ok(endpoint.to_owned()),
                Probe::Answered(status) => format!("GET /v1/models answered {}", status.as_u16()),
                // Nothing was sent, and retrying would not change the answer; what (if
                // anything) listens there is not the tenant's to learn.
                Probe::NotAllowed => return Err(ProviderFailure(NOT_ALLOWED_REASON.to_owned())),
                Probe::Failed(why) => format!("GET /v1/models failed: {why}"),
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(ProviderFailure(format!(
                    "endpoint not ready in time: {last}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn healthy(&self, endpoint: &str) -> bool {
        matches!(self.probe(endpoint).await, Probe::Answered(status) if status.is_success())
    }

    async fn tear_down(&self) -> Result<(), ProviderFailure> {
        // Registered, not owned: there is nothing to release.
        Ok(())
    }
}

/// The kind of a failed call, never its text (which names the address and the OS error).
fn without_url(err: &hyper_util::client::legacy::Error) -> &'static str {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cause {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return "timeout";
        }
        cause = e.source();
    }
    if err.is_connect() {
        "connection refused"
    } else {
        "request error"
    }
}

/// The providers by name.
#[derive(Debug, Clone)]
pub struct Providers {
    by_name: HashMap<&'static str, Arc<dyn Provider>>,
    pub health_interval: Duration,
    /// This process's bring-up and tear-down leases (see [`super::lifecycle`]).
    pub leases: Arc<super::lifecycle::Leases>,
}

impl Providers {
    pub fn new(mock: MockSettings, external: ExternalSettings) -> Self {
        let health_interval = external.health_interval;
        let list: [Arc<dyn Provider>; 2] = [
            Arc::new(MockProvider(mock)),
            Arc::new(ExternalProvider::new(external)),
        ];
        Self {
            by_name: list.into_iter().map(|p| (p.name(), p)).collect(),
            health_interval,
            leases: Arc::new(super::lifecycle::Leases::new(Duration::from_secs(30))),
        }
    }

    /// Sets how long a bring-up lease outlives its holder's last renewal
    /// (`providers.lease_seconds`).
    #[must_use]
    pub fn with_lease_ttl(mut self, ttl: Duration) -> Self {
        self.leases = Arc::new(super::lifecycle::Leases::new(ttl));
        self
    }

    pub fn get(&self, name: &str) -> Option<Arc<dyn Provider>> {
        self.by_name.get(name).cloned()
    }

    pub fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.by_name.keys().copied().collect();
        names.sort_unstable();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::valid_endpoint;

    #[test]
    fn endpoints_must_be_plain_base_urls() {
        for ok in [
            "http://127.0.0.1:8000",
            "http://llm.example.com/base",
            "http://h",
        ] {
            assert!(valid_endpoint(ok), "{ok}");
        }
        for bad in [
            "ftp://x",
            "https://llm.example.com",
            "http://",
            "http:///x",
            "http://h/?q=1",
            "http://h/#f",
            "127.0.0.1:8000",
            "http://a b",
        ] {
            assert!(!valid_endpoint(bad), "{bad}");
        }
    }
}
