//! The HTTP/1.1 client the proxy calls model servers with: hyper's pooled client, with
//! nothing layered on top. A general-purpose client (reqwest) parses the URL again, looks for
//! cookies and redirects, and copies the request on every call; the proxy needs none of it,
//! and on its hot path that was several microseconds a request.
//!
//! Plain `http://` only, as before (no TLS stack is built in): model servers sit on the
//! provider's private network.
//!
//! Tenants' endpoints (`external` instances) go through [`CheckedConnector`]: every connection
//! is checked against the allowed networks (SPEC §6 v2). The mock provider's endpoint is the
//! operator's own configuration, not a tenant's input, and is called without that check (it
//! is usually a local model server on loopback, which the public default refuses).

use super::ProxySettings;
use crate::outbound::CheckedConnector;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::{Client, ResponseFuture};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::time::Duration;

/// The body of an upstream answer.
pub type Incoming = hyper::body::Incoming;

/// How long an unused pooled connection is kept.
const IDLE: Duration = Duration::from_secs(90);

/// Pooled keep-alive clients (cheap to clone: clones share the pools): one checked, for
/// tenants' endpoints, and one for the operator's.
#[derive(Clone, Debug)]
pub struct Http {
    checked: Client<CheckedConnector, Full<Bytes>>,
    operator: Client<HttpConnector, Full<Bytes>>,
}

impl Http {
    /// Sends `request`; `operator` says the endpoint is the operator's (mock provider).
    pub fn request(&self, operator: bool, request: http::Request<Full<Bytes>>) -> ResponseFuture {
        if operator {
            self.operator.request(request)
        } else {
            self.checked.request(request)
        }
    }
}

pub fn build(settings: &ProxySettings) -> Http {
    let mut builder = Client::builder(TokioExecutor::new());
    builder
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(IDLE)
        .pool_max_idle_per_host(settings.pool_idle_per_host);
    let mut plain = HttpConnector::new();
    plain.set_nodelay(true);
    plain.set_connect_timeout(Some(settings.connect_timeout));
    Http {
        checked: builder.build(CheckedConnector::new(
            settings.allowed_networks.clone(),
            settings.connect_timeout,
        )),
        operator: builder.build(plain),
    }
}

/// A JSON `POST` of `body` to `uri`.
pub fn post(uri: &http::Uri, body: Vec<u8>) -> Result<http::Request<Full<Bytes>>, http::Error> {
    http::Request::post(uri.clone())
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
}

/// The next data chunk of `body` (trailers are skipped), `None` at its end.
pub async fn next_chunk(body: &mut Incoming) -> Option<Result<Bytes, hyper::Error>> {
    loop {
        match body.frame().await? {
            Err(err) => return Some(Err(err)),
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    return Some(Ok(data));
                }
            }
        }
    }
}
