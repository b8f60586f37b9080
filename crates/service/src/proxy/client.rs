//! The HTTP/1.1 client the proxy calls model servers with: hyper's pooled client, with
//! nothing layered on top. A general-purpose client (reqwest) parses the URL again, looks for
//! cookies and redirects, and copies the request on every call; the proxy needs none of it,
//! and on its hot path that was several microseconds a request.
//!
//! Plain `http://` only, as before (no TLS stack is built in): model servers sit on the
//! provider's private network.

use super::ProxySettings;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::time::Duration;

/// A pooled keep-alive client (cheap to clone: clones share the pool).
pub type Http = Client<HttpConnector, Full<Bytes>>;

/// The body of an upstream answer.
pub type Incoming = hyper::body::Incoming;

/// How long an unused pooled connection is kept.
const IDLE: Duration = Duration::from_secs(90);

pub fn build(settings: &ProxySettings) -> Http {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(settings.connect_timeout));
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(IDLE)
        .pool_max_idle_per_host(settings.pool_idle_per_host)
        .build(connector)
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
