//! One proxied call, step by step: read the request body, resolve the model, admit the call
//! against its spend caps, call a ready instance, then relay the answer (whole, or streamed
//! chunk by chunk) and meter it. Each step's details live in its own module: the body in
//! [`super::body`], the route in [`super::resolve`], the caps in [`super::budget`], the stream
//! in [`super::relay`], the usage row in [`super::metering`].

use super::body::{RequestBody, Shape};
use super::budget::{Capped, Reservation};
use super::client;
use super::metering::{self, Metered, Metering};
use super::relay;
use super::resolve::{Target, Upstream, resolve};
use crate::Ctx;
use crate::{Deps, ServiceError};
use bytes::Bytes;
use futures_util::stream::BoxStream;
use http_body_util::BodyExt;
use inventiv_domain::ErrorCode;
use inventiv_domain::UsageId;
use inventiv_persistence::repo::spend::{Subject, SubjectKind};
use rand::RngExt;
use std::time::{Duration, Instant};

/// The OpenAI endpoints the proxy serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    ChatCompletions = 0,
    Completions = 1,
    Embeddings = 2,
}

impl Endpoint {
    pub(super) const ALL: [Endpoint; 3] = [
        Endpoint::ChatCompletions,
        Endpoint::Completions,
        Endpoint::Embeddings,
    ];

    pub(super) fn path(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "/v1/chat/completions",
            Endpoint::Completions => "/v1/completions",
            Endpoint::Embeddings => "/v1/embeddings",
        }
    }

    pub(super) fn streams(self) -> bool {
        match self {
            Endpoint::ChatCompletions | Endpoint::Completions => true,
            Endpoint::Embeddings => false,
        }
    }
}

pub enum ProxyBody {
    Full(Bytes),
    /// Server-sent events, passed through chunk by chunk as they arrive.
    Stream(BoxStream<'static, Result<Bytes, std::io::Error>>),
}

pub struct ProxyResponse {
    pub status: u16,
    pub content_type: String,
    pub body: ProxyBody,
    /// Time spent waiting for the upstream's answer (excluded from the proxy's overhead).
    pub upstream_wait: Duration,
    /// The `request_id` of the usage row this call writes once it completes successfully.
    pub usage_id: UsageId,
}

/// Forwards one OpenAI request for the caller.
pub async fn forward(
    deps: &Deps,
    ctx: &Ctx,
    endpoint: Endpoint,
    body: &[u8],
) -> Result<ProxyResponse, ServiceError> {
    let request = RequestBody::parse(body)?;
    let requested = request.model()?;
    let shape = request.shape(endpoint)?;
    let target = resolve(deps, ctx, &requested).await?;
    let reservation = admit(deps, ctx, &target, &shape).await?;
    let payload = request.rewrite(
        &target.upstream_model,
        shape.streaming,
        target.context_length,
    )?;
    let input_estimate = metering::input_estimate(body.len(), &shape, target.context_length);
    let (input, output) = shape.most_tokens(target.context_length);
    let tokens = (input_estimate, metering::Usage { input, output });
    let upstream = pick(&target)?;
    let instance_id = upstream.id;
    let request = client::post(upstream.uri(endpoint), payload).map_err(ServiceError::internal)?;

    // The upstream timeout bounds the wait for the answer's head and, unless it streams, for
    // its whole body; a stream may last longer, but never stays silent longer than that.
    let timeout = deps.proxy.settings.upstream_timeout;
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + timeout;
    let (head, body) = send(deps, upstream, request, deadline).await?.into_parts();
    let (status, content_type) = status_and_type(&head)?;
    let meter = Metering::new(deps, ctx, target, instance_id, tokens, reservation);
    let usage_id = meter.usage_id();

    if shape.streaming && status < 300 && content_type.starts_with("text/event-stream") {
        let upstream_wait = started.elapsed();
        return Ok(ProxyResponse {
            status,
            content_type,
            body: ProxyBody::Stream(relay::stream(
                body,
                timeout,
                meter,
                deps.proxy.drains.clone(),
            )),
            upstream_wait,
            usage_id,
        });
    }

    let limit = deps.proxy.settings.max_response_bytes;
    let bytes = read_whole(body, limit, deadline).await?;
    let upstream_wait = started.elapsed();
    if status < 300 {
        meter.record(Metered::of_answer(&bytes)).await;
    }
    Ok(ProxyResponse {
        status,
        content_type,
        body: ProxyBody::Full(bytes),
        upstream_wait,
        usage_id,
    })
}

/// The caps that apply to a call of `target` by the caller: the share's (its consumer's) and
/// the API key's.
fn caps(ctx: &Ctx, target: &Target) -> Vec<Capped> {
    let share = target.share.zip(target.share_cap).map(|(id, cap)| Capped {
        subject: Subject {
            kind: SubjectKind::Share,
            id: id.as_uuid(),
        },
        cap,
    });
    let key = ctx.principal.api_key().and_then(|k| {
        k.monthly_cap_micros.map(|cap| Capped {
            subject: Subject {
                kind: SubjectKind::ApiKey,
                id: k.id.as_uuid(),
            },
            cap,
        })
    });
    share.into_iter().chain(key).collect()
}

/// Reserves the worst-case charge of the call against its caps (SPEC §5.2).
async fn admit(
    deps: &Deps,
    ctx: &Ctx,
    target: &Target,
    shape: &Shape,
) -> Result<Reservation, ServiceError> {
    let caps = caps(ctx, target);
    if caps.is_empty() {
        return Ok(Reservation::none());
    }
    let worst = shape.worst_case_micros(target.context_length, target.prices);
    deps.proxy.budgets.admit(&caps, worst).await
}

/// One of the target's ready instances, at random (a plain spread of the load).
fn pick(target: &Target) -> Result<&Upstream, ServiceError> {
    let pick = rand::rng().random_range(0..target.instances.len());
    target
        .instances
        .get(pick)
        .ok_or_else(|| ServiceError::Unavailable {
            code: ErrorCode::NoReadyInstance,
            message: "no instance".to_owned(),
        })
}

/// Sends `request` to `upstream` and waits for the head of its answer until `deadline`.
async fn send(
    deps: &Deps,
    upstream: &Upstream,
    request: http::Request<http_body_util::Full<Bytes>>,
    deadline: tokio::time::Instant,
) -> Result<http::Response<client::Incoming>, ServiceError> {
    match tokio::time::timeout_at(
        deadline,
        deps.proxy.client().request(upstream.operator, request),
    )
    .await
    {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(err)) => {
            // The client learns only that it is unreachable; the operator, why.
            if crate::outbound::is_not_allowed(&err) {
                tracing::warn!(instance = %upstream.id, "not connecting: the instance's endpoint is outside the allowed networks");
            }
            Err(bad_gateway(
                ErrorCode::UpstreamUnreachable,
                "The model server could not be reached.",
            ))
        }
        Err(_) => Err(timed_out()),
    }
}

/// The status and content type of an answer; a failure of the model server (HTTP 5xx) is
/// answered as a bad gateway.
fn status_and_type(head: &http::response::Parts) -> Result<(u16, String), ServiceError> {
    let status = head.status.as_u16();
    if status >= 500 {
        return Err(bad_gateway(
            ErrorCode::UpstreamError,
            &format!("The model server failed (HTTP {status})."),
        ));
    }
    let content_type = head
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_owned();
    Ok((status, content_type))
}

/// A whole (not streamed) answer: at most `limit` bytes, read by `deadline`.
async fn read_whole(
    body: client::Incoming,
    limit: usize,
    deadline: tokio::time::Instant,
) -> Result<Bytes, ServiceError> {
    let limited = http_body_util::Limited::new(body, limit);
    match tokio::time::timeout_at(deadline, limited.collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(_)) => Err(bad_gateway(
            ErrorCode::UpstreamError,
            "The model server's answer was cut off or too large.",
        )),
        Err(_) => Err(timed_out()),
    }
}

fn bad_gateway(code: ErrorCode, message: &str) -> ServiceError {
    ServiceError::BadGateway {
        code,
        message: message.to_owned(),
    }
}

fn timed_out() -> ServiceError {
    ServiceError::GatewayTimeout {
        code: ErrorCode::UpstreamTimeout,
        message: "The model server did not answer in time.".to_owned(),
    }
}
