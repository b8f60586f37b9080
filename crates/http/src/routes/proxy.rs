//! The OpenAI-compatible proxy (SPEC §5): `/v1/models`, `/v1/chat/completions`,
//! `/v1/completions`, `/v1/embeddings`, authenticated by API key or session.

use crate::AppState;
use crate::error::{ApiError, OpenAiErrorBody};
use crate::extract::Caller;
use crate::request_context::RequestStart;
use actix_web::http::header::{CONTENT_TYPE, HeaderValue};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, get, post, web};
use inventiv_service::proxy::{self, Endpoint, ProxyBody};
use serde::Serialize;
use std::time::Instant;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(models)
        .service(chat_completions)
        .service(completions)
        .service(embeddings);
}

/// Header on every proxied response: time spent in the proxy, upstream excluded.
pub const OVERHEAD_HEADER: &str = "x-inventiv-overhead-ms";
/// Header on every proxied response: the `request_id` of its usage row (for reconciliation).
pub const USAGE_HEADER: &str = "x-inventiv-usage-id";

/// An OpenAI request body: relayed as it is, with every OpenAI field; only the fields below
/// are read (and checked) by the proxy.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct OpenAiRequest {
    /// `<org_slug>/<code>` (an offering) or a public catalogue model id.
    #[schema(min_length = 1, max_length = 256)]
    model: String,
    /// Stream the answer as server-sent events (a JSON boolean).
    stream: Option<bool>,
    /// `include_usage` must be a JSON boolean; the proxy sets it when streaming.
    stream_options: Option<StreamOptions>,
    /// Answers per prompt.
    #[schema(minimum = 1, maximum = 128)]
    n: Option<u32>,
    /// Clamped to the model's context length; bounds the reservation against spend caps.
    #[schema(minimum = 0, maximum = 4294967295_u64)]
    max_tokens: Option<u64>,
    #[schema(minimum = 0, maximum = 4294967295_u64)]
    max_completion_tokens: Option<u64>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct StreamOptions {
    include_usage: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct ModelEntry {
    id: String,
    /// Always `model`.
    object: &'static str,
    created: i64,
    owned_by: String,
}

#[derive(Serialize, ToSchema)]
pub struct ModelList {
    /// Always `list`.
    object: &'static str,
    data: Vec<ModelEntry>,
}

/// The models this caller may call now: public models with a ready operational instance in
/// its scope, its org's offerings, and the offerings shared with its org. A call to any of them
/// is accepted; nothing else is.
#[utoipa::path(tag = "openai", security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "Models", body = ModelList),
    (status = 401, description = "No valid API key or session", body = OpenAiErrorBody),
))]
#[get("/models")]
async fn models(state: web::Data<AppState>, ctx: Caller) -> Result<web::Json<ModelList>, ApiError> {
    let listed = proxy::available(&state.deps, &ctx).await?;
    let created = state.deps.clock.now().unix_timestamp();
    let data = listed
        .into_iter()
        .map(|m| ModelEntry {
            id: m.id,
            object: "model",
            created,
            owned_by: m.owned_by,
        })
        .collect();
    Ok(web::Json(ModelList {
        object: "list",
        data,
    }))
}

async fn relay(
    state: &AppState,
    req: &HttpRequest,
    ctx: Caller,
    endpoint: Endpoint,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let arrived = req
        .extensions()
        .get::<RequestStart>()
        .map_or_else(Instant::now, |s| s.0);
    let answer = proxy::forward(&state.deps, &ctx, endpoint, &body).await?;
    let overhead = arrived.elapsed().saturating_sub(answer.upstream_wait);
    let mut res = HttpResponse::build(
        actix_web::http::StatusCode::from_u16(answer.status)
            .unwrap_or(actix_web::http::StatusCode::BAD_GATEWAY),
    );
    if let Ok(value) = HeaderValue::from_str(&answer.content_type) {
        res.insert_header((CONTENT_TYPE, value));
    }
    res.insert_header((
        OVERHEAD_HEADER,
        format!("{:.3}", overhead.as_secs_f64() * 1000.0),
    ));
    res.insert_header((USAGE_HEADER, answer.usage_id.to_string()));
    Ok(match answer.body {
        ProxyBody::Full(bytes) => res.body(bytes),
        ProxyBody::Stream(stream) => res
            .insert_header(("cache-control", "no-cache"))
            .streaming(stream),
    })
}

/// OpenAI chat completions (streaming with `"stream": true`).
#[utoipa::path(tag = "openai", request_body(content = OpenAiRequest, content_type = "application/json"), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "The upstream's answer (JSON, or SSE when streaming)", body = Object),
    (status = 400, description = "`invalid_body` (e.g. a non-boolean `stream`) or `validation_failed`", body = OpenAiErrorBody),
    (status = 402, description = "`spend_cap_reached`: the call's worst case does not fit a spend cap", body = OpenAiErrorBody),
    (status = 403, description = "`model_not_operational` or `model_not_allowed`", body = OpenAiErrorBody),
    (status = 404, description = "`model_not_found`", body = OpenAiErrorBody),
    (status = 502, description = "`upstream_error`, or `upstream_unreachable` (also for an endpoint outside the allowed networks)", body = OpenAiErrorBody),
    (status = 503, description = "`no_ready_instance`", body = OpenAiErrorBody),
    (status = 504, description = "`upstream_timeout`", body = OpenAiErrorBody),
))]
#[post("/chat/completions")]
async fn chat_completions(
    state: web::Data<AppState>,
    req: HttpRequest,
    ctx: Caller,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    relay(&state, &req, ctx, Endpoint::ChatCompletions, body).await
}

/// OpenAI text completions.
#[utoipa::path(tag = "openai", request_body(content = OpenAiRequest, content_type = "application/json"), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "The upstream's answer", body = Object),
    (status = 400, description = "`invalid_body` or `validation_failed`", body = OpenAiErrorBody),
    (status = 402, description = "`spend_cap_reached`", body = OpenAiErrorBody),
    (status = 403, description = "`model_not_operational` or `model_not_allowed`", body = OpenAiErrorBody),
    (status = 404, description = "`model_not_found`", body = OpenAiErrorBody),
    (status = 503, description = "`no_ready_instance`", body = OpenAiErrorBody),
))]
#[post("/completions")]
async fn completions(
    state: web::Data<AppState>,
    req: HttpRequest,
    ctx: Caller,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    relay(&state, &req, ctx, Endpoint::Completions, body).await
}

/// OpenAI embeddings.
#[utoipa::path(tag = "openai", request_body(content = OpenAiRequest, content_type = "application/json"), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "The upstream's answer", body = Object),
    (status = 400, description = "`invalid_body` or `validation_failed`", body = OpenAiErrorBody),
    (status = 402, description = "`spend_cap_reached`", body = OpenAiErrorBody),
    (status = 403, description = "`model_not_operational` or `model_not_allowed`", body = OpenAiErrorBody),
    (status = 404, description = "`model_not_found`", body = OpenAiErrorBody),
    (status = 503, description = "`no_ready_instance`", body = OpenAiErrorBody),
))]
#[post("/embeddings")]
async fn embeddings(
    state: web::Data<AppState>,
    req: HttpRequest,
    ctx: Caller,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    relay(&state, &req, ctx, Endpoint::Embeddings, body).await
}
