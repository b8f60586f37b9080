//! Connections to tenants' endpoints, checked against [`AllowedNetworks`] (SPEC §6 v2).
//!
//! Three checks, so that no name, number format or later DNS answer gets around the rule:
//! - at registration, [`admit`] resolves the host and refuses the endpoint if any address it
//!   resolves to is not allowed (the system resolver also normalises numeric forms such as
//!   `2130706433`, `127.1` or `0x7f.1`);
//! - at every connection, [`CheckedConnector`] resolves again through [`CheckedResolver`] and
//!   refuses before connecting if any address is not allowed (a name that resolved to a public
//!   address at registration and to a private one now — DNS rebinding — is refused), and checks
//!   an IP-literal host itself, since hyper's connector does not send literals to the resolver;
//! - once connected, the peer address is checked again, so that a change in how hyper decides
//!   what is a literal cannot open a way around the first two (nothing is sent before it).
//!
//! The client built on it is hyper's: it follows no redirect and reads no proxy environment
//! variable (`HTTP_PROXY` would send every call through a proxy the rule knows nothing of).

use crate::network::AllowedNetworks;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::TokioIo;
use std::error::Error as StdError;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;

type BoxError = Box<dyn StdError + Send + Sync>;
type BoxFuture<T> = Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send>>;

/// A connection refused because an address is outside the allowed networks. Its text is all a
/// tenant may learn about such an address.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the endpoint is outside the networks this server may call")]
pub struct NotAllowed;

/// Whether `err` (or one of its causes) is a [`NotAllowed`] refusal.
pub fn is_not_allowed(err: &(dyn StdError + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if e.is::<NotAllowed>() {
            return true;
        }
        current = e.source();
    }
    false
}

/// Resolves `host` and returns its addresses if every one is allowed. All, not some: the
/// connector would try each in turn, and an endpoint must not reach a refused network by
/// failing over to it.
pub async fn resolve_allowed(
    allowed: &AllowedNetworks,
    host: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, BoxError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await?.collect();
    if addrs.is_empty() {
        return Err(Box::new(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "the host has no address",
        )));
    }
    if addrs.iter().any(|a| !allowed.allows(a.ip())) {
        return Err(Box::new(NotAllowed));
    }
    Ok(addrs)
}

/// hyper's DNS resolver, checked: resolves with the system resolver and refuses a name if any
/// of its addresses is not allowed.
#[derive(Debug, Clone)]
pub struct CheckedResolver {
    allowed: Arc<AllowedNetworks>,
}

impl tower_service::Service<Name> for CheckedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = BoxError;
    type Future = BoxFuture<Self::Response>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let allowed = self.allowed.clone();
        Box::pin(async move {
            // hyper sets the port on the addresses afterwards.
            Ok(resolve_allowed(&allowed, name.as_str(), 0)
                .await?
                .into_iter())
        })
    }
}

/// The host of `uri` as an IP address, if it is one (brackets of an IPv6 literal removed):
/// what hyper's connector connects to without resolving.
fn literal_ip(uri: &http::Uri) -> Option<IpAddr> {
    let host = uri.host()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.parse().ok()
}

/// hyper's HTTP connector with every connection checked (see the module documentation).
#[derive(Debug, Clone)]
pub struct CheckedConnector {
    inner: HttpConnector<CheckedResolver>,
    allowed: Arc<AllowedNetworks>,
}

impl CheckedConnector {
    pub fn new(allowed: Arc<AllowedNetworks>, connect_timeout: Duration) -> CheckedConnector {
        let mut inner = HttpConnector::new_with_resolver(CheckedResolver {
            allowed: allowed.clone(),
        });
        inner.set_nodelay(true);
        inner.set_connect_timeout(Some(connect_timeout));
        CheckedConnector { inner, allowed }
    }
}

impl tower_service::Service<http::Uri> for CheckedConnector {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = BoxFuture<Self::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        if literal_ip(&uri).is_some_and(|ip| !self.allowed.allows(ip)) {
            return Box::pin(async { Err(Box::new(NotAllowed) as BoxError) });
        }
        let connecting = self.inner.call(uri);
        let allowed = self.allowed.clone();
        Box::pin(async move {
            let stream = connecting.await?;
            let peer = stream.inner().peer_addr()?;
            if !allowed.allows(peer.ip()) {
                return Err(Box::new(NotAllowed) as BoxError);
            }
            Ok(stream)
        })
    }
}

/// An endpoint's identity for ownership ([`crate::instances`]'s claims): its host, lowercase
/// and without a trailing dot (IP literals in their canonical text), and its port (80 by
/// default).
pub fn endpoint_key(uri: &http::Uri) -> Option<String> {
    let host = uri.host()?;
    let port = uri.port_u16().unwrap_or(80);
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let host = match bare.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => bare.trim_end_matches('.').to_ascii_lowercase(),
    };
    // A DNS name is at most 253 characters (IP literals are shorter): a longer host names
    // nothing, and the key stays within its column.
    if host.is_empty() || host.len() > 253 + 2 {
        return None;
    }
    Some(format!("{host}:{port}"))
}

/// Why an endpoint is not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not an `http://host[:port][/path]` URL hyper can call.
    Invalid,
    /// It resolves (or resolved within `timeout`) to no address, or to one outside the
    /// allowed networks. One answer for both: which internal names exist is not the
    /// tenant's business either.
    NotAllowed,
}

/// The registration check: `url` parses as the proxy will parse it, and every address its
/// host resolves to now is allowed. Returns the endpoint's [`endpoint_key`].
pub async fn admit(
    allowed: &AllowedNetworks,
    url: &str,
    timeout: Duration,
) -> Result<String, Refusal> {
    let uri: http::Uri = url.parse().map_err(|_| Refusal::Invalid)?;
    if uri.scheme() != Some(&http::uri::Scheme::HTTP) {
        return Err(Refusal::Invalid);
    }
    let key = endpoint_key(&uri).ok_or(Refusal::Invalid)?;
    let host = uri.host().ok_or(Refusal::Invalid)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port = uri.port_u16().unwrap_or(80);
    match tokio::time::timeout(timeout, resolve_allowed(allowed, host, port)).await {
        Ok(Ok(_)) => Ok(key),
        Ok(Err(_)) | Err(_) => Err(Refusal::NotAllowed),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key(url: &str) -> Option<String> {
        endpoint_key(&url.parse().unwrap())
    }

    #[test]
    fn endpoint_keys_are_normalised() {
        assert_eq!(
            key("http://GPU-1.Example.COM/v1").unwrap(),
            "gpu-1.example.com:80"
        );
        assert_eq!(
            key("http://gpu-1.example.com.:80").unwrap(),
            "gpu-1.example.com:80"
        );
        assert_eq!(key("http://10.0.0.5:8000").unwrap(), "10.0.0.5:8000");
        assert_eq!(
            key("http://[::FFFF:7f00:1]:81").unwrap(),
            "[::ffff:127.0.0.1]:81"
        );
        assert_eq!(key("http://[2001:DB8:0::1]").unwrap(), "[2001:db8::1]:80");
        assert_eq!(key(&format!("http://{}.example", "a".repeat(250))), None);
    }

    #[tokio::test]
    async fn admission_resolves_numeric_forms_and_names() {
        let public = AllowedNetworks::public_only();
        let t = Duration::from_secs(5);
        for url in [
            "http://127.0.0.1:8000",
            "http://2130706433:8000",
            "http://127.1",
            "http://0x7f.1",
            "http://[::1]:8000",
            "http://[::ffff:127.0.0.1]",
            "http://169.254.169.254",
            "http://localhost:8000",
            "http://10.0.0.1",
        ] {
            assert_eq!(
                admit(&public, url, t).await,
                Err(Refusal::NotAllowed),
                "{url}"
            );
        }
        assert_eq!(
            admit(&public, "http://8.8.8.8:80", t).await,
            Ok("8.8.8.8:80".to_owned())
        );
        assert_eq!(
            admit(&public, "https://8.8.8.8", t).await,
            Err(Refusal::Invalid)
        );
        let dev = AllowedNetworks::parse(&["127.0.0.0/8", "::1"]).unwrap();
        assert_eq!(
            admit(&dev, "http://2130706433:9", t).await,
            Ok("2130706433:9".to_owned())
        );
        assert!(admit(&dev, "http://[::ffff:127.0.0.1]:9", t).await.is_ok());
    }
}
