//! Per-request context: the request id (taken from a well-formed `X-Request-Id` or generated),
//! a tracing span, the `X-Request-Id` response header, and the guarantee that an error
//! response is JSON even when actix produced it.

use crate::error::{ApiError, OPENAI_SHAPE, error_body, is_openai_path};
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage};
use std::time::Instant;
use tracing::Instrument;

pub static REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    /// The current request's id, readable while its handler runs (used by [`ApiError`]).
    pub static REQUEST_ID: String;
}

/// When the request arrived (for the proxy's `X-Inventiv-Overhead-Ms`).
#[derive(Clone, Copy, Debug)]
pub struct RequestStart(pub Instant);

/// The request id of the request being handled, if called inside one.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

fn incoming_id(req: &ServiceRequest) -> Option<String> {
    let value = req.headers().get(&REQUEST_ID_HEADER)?.to_str().ok()?;
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    ok.then(|| value.to_owned())
}

/// The most header bytes (names and values) a request may carry. actix itself only refuses a
/// head over 128 KiB, with a bare 431 that has neither our JSON body nor a request id; real
/// clients send a few KiB (a JWT is under 1 KiB), so anything over this is refused here.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

fn header_bytes(req: &ServiceRequest) -> usize {
    req.headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum()
}

pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let id = incoming_id(&req).unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string());
    let openai = is_openai_path(req.path());
    OPENAI_SHAPE.scope(openai, handle(req, next, id)).await
}

async fn handle(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
    id: String,
) -> Result<ServiceResponse<BoxBody>, Error> {
    if header_bytes(&req) > MAX_HEADER_BYTES {
        let response =
            ApiError::from_status(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE).to_response(&id);
        return Ok(req.into_response(response));
    }
    let started = Instant::now();
    req.extensions_mut().insert(RequestStart(started));
    // Never the raw path nor the query: invitation tokens travel in the path
    // (`/organizations/invitations/{token}`) and reset links carry `?token=`. The route
    // template is only known once actix has routed the request, so it is recorded below.
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        route = tracing::field::Empty
    );
    let result = REQUEST_ID
        .scope(id.clone(), next.call(req))
        .instrument(span.clone())
        .await;
    let mut res = match result {
        Ok(res) => {
            span.record("route", route_of(res.request()).as_str());
            jsonify_error(res.map_into_boxed_body(), &id)
        }
        // An error that escaped every handler and extractor: still our JSON shape.
        Err(err) => {
            let api = ApiError::from_status(err.as_response_error().status_code());
            let response = api.to_response(&id);
            return Err(actix_web::error::InternalError::from_response(api, response).into());
        }
    };
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID_HEADER.clone(), value);
    }
    let status = res.status().as_u16();
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    // A 503 with `Retry-After` is load shedding (`server_busy`: the hash queue or the body
    // budget is full): the server protecting itself as designed, which an operator should see
    // but not be paged for — a storm of sign-ins wrote over a thousand ERROR lines.
    let shed = status == 503 && res.headers().contains_key(header::RETRY_AFTER);
    span.in_scope(|| {
        if shed {
            tracing::warn!(status, elapsed_ms, "request shed");
        } else if status >= 500 {
            tracing::error!(status, elapsed_ms, "request failed");
        } else {
            tracing::info!(status, elapsed_ms, "request");
        }
    });
    Ok(res)
}

/// The route template that matched (`/organizations/invitations/{token}`), or `unmatched`:
/// what logs and metrics may name, since a raw path can carry a secret.
pub(crate) fn route_of(req: &actix_web::HttpRequest) -> String {
    req.match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned())
}

/// Replaces a non-JSON error body (actix's plain-text 404/405/413/…) with our JSON shape.
fn jsonify_error(res: ServiceResponse<BoxBody>, id: &str) -> ServiceResponse<BoxBody> {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return res;
    }
    let api = ApiError::from_status(status);
    let body = error_body(&api, id);
    res.map_body(|head, _| {
        head.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        BoxBody::new(body)
    })
}
