//! Instance providers behind one trait. `mock` provisions nothing: it walks an instance through
//! provisioning → booting → ready after configured delays and points it at a configured
//! endpoint (so the proxy can route to a local upstream). `external` registers an existing
//! OpenAI-compatible server: ready when `GET <endpoint>/v1/models` answers 200, and checked
//! periodically afterwards.

use async_trait::async_trait;
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
    client: reqwest::Client,
}

impl ExternalProvider {
    pub fn new(settings: ExternalSettings) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(settings.request_timeout)
            .tcp_nodelay(true)
            .build()?;
        Ok(Self { settings, client })
    }
}

/// A base URL the server may call: `http://host[:port][/path]`, no query, ≤ 2048 chars.
pub fn valid_endpoint(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    else {
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
                "must be an http(s) base URL without query, e.g. http://10.0.0.5:8000".to_owned(),
            ),
            None => Err("required for the external provider".to_owned()),
        }
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
            let last = match self
                .client
                .get(format!("{endpoint}/v1/models"))
                .send()
                .await
            {
                Ok(res) if res.status().is_success() => return Ok(endpoint.to_owned()),
                Ok(res) => format!("GET /v1/models answered {}", res.status().as_u16()),
                Err(err) => format!("GET /v1/models failed: {}", without_url(&err)),
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
        matches!(self.client.get(format!("{endpoint}/v1/models")).send().await, Ok(res) if res.status().is_success())
    }

    async fn tear_down(&self) -> Result<(), ProviderFailure> {
        // Registered, not owned: there is nothing to release.
        Ok(())
    }
}

fn without_url(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "timeout".to_owned()
    } else if err.is_connect() {
        "connection refused".to_owned()
    } else {
        "request error".to_owned()
    }
}

/// The providers by name.
#[derive(Debug, Clone)]
pub struct Providers {
    by_name: HashMap<&'static str, Arc<dyn Provider>>,
    pub health_interval: Duration,
}

impl Providers {
    pub fn new(mock: MockSettings, external: ExternalSettings) -> Result<Self, reqwest::Error> {
        let health_interval = external.health_interval;
        let list: [Arc<dyn Provider>; 2] = [
            Arc::new(MockProvider(mock)),
            Arc::new(ExternalProvider::new(external)?),
        ];
        Ok(Self {
            by_name: list.into_iter().map(|p| (p.name(), p)).collect(),
            health_interval,
        })
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
            "https://llm.example.com/base",
            "http://h",
        ] {
            assert!(valid_endpoint(ok), "{ok}");
        }
        for bad in [
            "ftp://x",
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
