//! One budget of bytes for every request body in flight (issue 16): without it, N concurrent
//! requests may hold N × the per-request limit (10 MiB on the proxy routes), and a flood of
//! large bodies grows the process without bound. Each request with a body reserves its
//! declared `Content-Length` (or, streamed without one, its route's limit) before the body is
//! read, and gives it back when its response is ready. When the budget is spent the request is
//! refused at once — 503 `server_busy` with `Retry-After` — rather than queued: a queue would
//! hold the connections (and their buffers) instead.
//!
//! A reserved body must also arrive in time: `body_timeout` after the request's head, its
//! stream fails, and the request is answered 408 `request_timeout`. Actix times out a request's
//! head, not its body, so 64 clients trickling 1 MiB bodies a byte at a time held the whole
//! budget, and every request with a body got 503, for as long as they liked.

use crate::ApiError;
use crate::error::is_openai_path;
use actix_web::HttpMessage;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::Payload;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::{StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{Error, web};
use futures_util::StreamExt;
use inventiv_domain::ErrorCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Reservations are counted in KiB (a semaphore counts permits in `u32` per acquisition).
const UNIT: u64 = 1024;

/// The shared budget and the per-route limits a reservation is bounded by.
#[derive(Debug)]
pub struct BodyBudget {
    permits: Arc<Semaphore>,
    total_units: u32,
    json_limit: u64,
    proxy_limit: u64,
    body_timeout: Duration,
}

impl BodyBudget {
    /// `total_bytes` for all bodies together; a single body never needs more than the budget
    /// (its reservation is capped), so even a budget below a route's limit lets it through alone.
    pub fn new(
        total_bytes: usize,
        json_limit: usize,
        proxy_limit: usize,
        body_timeout: Duration,
    ) -> Self {
        let total_units = u32::try_from((total_bytes as u64).div_ceil(UNIT))
            .unwrap_or(u32::MAX)
            .clamp(1, u32::try_from(Semaphore::MAX_PERMITS).unwrap_or(u32::MAX));
        Self {
            permits: Arc::new(Semaphore::new(total_units as usize)),
            total_units,
            json_limit: json_limit as u64,
            proxy_limit: proxy_limit as u64,
            body_timeout,
        }
    }

    /// KiB to reserve for `req`: none without a body.
    fn units_for(&self, req: &ServiceRequest) -> u32 {
        let limit = if is_openai_path(req.path()) {
            self.proxy_limit
        } else {
            self.json_limit
        };
        let headers = req.headers();
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let bytes = match declared {
            // A longer body is refused (413) after at most `limit` bytes are read.
            Some(n) => n.min(limit),
            None if headers.contains_key(header::TRANSFER_ENCODING) => limit,
            None => 0,
        };
        u32::try_from(bytes.div_ceil(UNIT))
            .unwrap_or(u32::MAX)
            .min(self.total_units)
    }
}

/// `payload`, failing with a timed-out I/O error once `deadline` passes before its end.
fn with_deadline(payload: Payload, deadline: tokio::time::Instant) -> Payload {
    let stream = futures_util::stream::unfold(Some(payload), move |state| async move {
        let mut payload = state?;
        match tokio::time::timeout_at(deadline, payload.next()).await {
            Ok(Some(chunk)) => Some((chunk, Some(payload))),
            Ok(None) => None,
            Err(_) => Some((Err(timed_out()), None)),
        }
    });
    Payload::Stream {
        payload: Box::pin(stream),
    }
}

/// The error a body that arrives too late ends with ([`is_timed_out`] recognizes it).
fn timed_out() -> PayloadError {
    PayloadError::Io(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "the request body took too long to arrive",
    ))
}

/// Whether `err` is a body that arrived too late.
pub(crate) fn is_timed_out(err: &PayloadError) -> bool {
    matches!(err, PayloadError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut)
}

pub async fn middleware(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let Some(budget) = req.app_data::<web::Data<BodyBudget>>().cloned() else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    let units = budget.units_for(&req);
    if units == 0 {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    }
    let Ok(permit) = budget.permits.clone().try_acquire_many_owned(units) else {
        let busy = ApiError {
            retry_after_secs: Some(1),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::ServerBusy,
                "Too many large request bodies are in flight; retry shortly.",
            )
        };
        let id = crate::request_context::current_request_id().unwrap_or_default();
        let response = busy.to_response(&id);
        return Ok(req.into_response(response));
    };
    let deadline = tokio::time::Instant::now() + budget.body_timeout;
    let payload = with_deadline(req.take_payload(), deadline);
    req.set_payload(payload);
    let res = next.call(req).await;
    drop(permit);
    res.map(ServiceResponse::map_into_boxed_body)
}
