//! The one mapping from failures to HTTP responses.

use crate::request_context::{REQUEST_ID_HEADER, current_request_id};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, error, web};
use inventiv_service::ServiceError;
use serde::Serialize;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// An error as the client sees it.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: Cow<'static, str>,
    pub message: String,
    pub fields: Option<BTreeMap<String, String>>,
    pub retry_after_secs: Option<u64>,
}

/// The JSON body of every error (documented in the OpenAPI as `ErrorBody`).
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody<'a> {
    /// Stable snake_case code, e.g. `not_found`, `last_owner`.
    pub error: &'a str,
    /// Human-readable explanation.
    pub message: &'a str,
    /// The `X-Request-Id` of the request, to quote when reporting a problem.
    pub request_id: &'a str,
    /// Validation failures: field name → reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<&'a BTreeMap<String, String>>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
            fields: None,
            retry_after_secs: None,
        }
    }

    /// The generic error for a bare status (used for errors actix raises itself).
    pub fn from_status(status: StatusCode) -> Self {
        let (code, message) = match status.as_u16() {
            400 => ("bad_request", "The request is malformed."),
            401 => ("unauthorized", "Authentication is required."),
            403 => ("forbidden", "You are not allowed to do this."),
            404 => ("not_found", "No such resource."),
            405 => (
                "method_not_allowed",
                "This method is not allowed on this resource.",
            ),
            408 => ("request_timeout", "The request took too long to arrive."),
            411 => ("length_required", "A Content-Length is required."),
            413 => ("payload_too_large", "The request body is too large."),
            414 => ("uri_too_long", "The request URI is too long."),
            415 => (
                "unsupported_media_type",
                "Send the body as application/json.",
            ),
            429 => ("rate_limited", "Too many requests; retry later."),
            431 => ("headers_too_large", "The request headers are too large."),
            503 => (
                "service_unavailable",
                "The service is temporarily unavailable.",
            ),
            s if s >= 500 => ("internal_error", "An internal error occurred."),
            _ => ("bad_request", "The request could not be processed."),
        };
        Self::new(status, code, message)
    }

    pub fn not_found() -> Self {
        Self::from_status(StatusCode::NOT_FOUND)
    }

    /// Builds the response for request `request_id`.
    pub fn to_response(&self, request_id: &str) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        res.insert_header((header::CONTENT_TYPE, "application/json"));
        if let Ok(value) = HeaderValue::from_str(request_id) {
            res.insert_header((REQUEST_ID_HEADER.clone(), value));
        }
        if let Some(secs) = self.retry_after_secs {
            res.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        res.body(error_body(self, request_id))
    }
}

/// The error body of the OpenAI-compatible routes (`/v1/*`, SPEC §5.3): OpenAI's own shape,
/// so that every OpenAI client reports the failure properly.
#[derive(Serialize, utoipa::ToSchema)]
pub struct OpenAiErrorBody<'a> {
    pub error: OpenAiError<'a>,
    /// The `X-Request-Id` of the request.
    pub request_id: &'a str,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct OpenAiError<'a> {
    pub message: &'a str,
    /// OpenAI's error type: `invalid_request_error`, `authentication_error`,
    /// `permission_error`, `not_found_error`, `insufficient_quota`, `rate_limit_error`,
    /// `api_error`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The request field at fault, if one is.
    pub param: Option<&'a str>,
    /// The stable code (the same as `error` elsewhere).
    pub code: &'a str,
}

fn openai_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        402 => "insufficient_quota",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        s if s >= 500 => "api_error",
        _ => "invalid_request_error",
    }
}

tokio::task_local! {
    /// Whether the request being handled is one of `/v1/*` (errors in OpenAI's shape).
    pub static OPENAI_SHAPE: bool;
}

/// Whether errors of `path` take OpenAI's shape.
pub fn is_openai_path(path: &str) -> bool {
    path == "/v1" || path.starts_with("/v1/")
}

/// The serialized error body, in OpenAI's shape on `/v1/*`.
pub(crate) fn error_body(err: &ApiError, request_id: &str) -> String {
    if OPENAI_SHAPE.try_with(|openai| *openai).unwrap_or(false) {
        let body = OpenAiErrorBody {
            error: OpenAiError {
                message: &err.message,
                kind: openai_type(err.status),
                param: err
                    .fields
                    .as_ref()
                    .and_then(|f| f.keys().next())
                    .map(String::as_str),
                code: &err.code,
            },
            request_id,
        };
        if let Ok(text) = serde_json::to_string(&body) {
            return text;
        }
    }
    let body = ErrorBody {
        error: &err.code,
        message: &err.message,
        request_id,
        fields: err.fields.as_ref(),
    };
    serde_json::to_string(&body).unwrap_or_else(|_| {
        r#"{"error":"internal_error","message":"An internal error occurred.","request_id":""}"#
            .to_owned()
    })
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let id = current_request_id().unwrap_or_default();
        self.to_response(&id)
    }
}

impl From<ServiceError> for ApiError {
    fn from(err: ServiceError) -> Self {
        use StatusCode as S;
        match err {
            ServiceError::Validation(fields) => {
                let message = fields
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join("; ");
                ApiError {
                    fields: Some(fields),
                    ..ApiError::new(S::BAD_REQUEST, "validation_failed", message)
                }
            }
            ServiceError::BadRequest { code, message } => {
                ApiError::new(S::BAD_REQUEST, code, message)
            }
            ServiceError::PaymentRequired { code, message } => {
                ApiError::new(S::PAYMENT_REQUIRED, code, message)
            }
            ServiceError::Unauthenticated { code, message } => {
                ApiError::new(S::UNAUTHORIZED, code, message)
            }
            ServiceError::Denied(denied) => {
                let code = denied.reason.code();
                ApiError::new(S::FORBIDDEN, code, denied_message(code))
            }
            ServiceError::Forbidden { code, message } => ApiError::new(S::FORBIDDEN, code, message),
            ServiceError::NotFound(what) => {
                ApiError::new(S::NOT_FOUND, "not_found", format!("No such {what}."))
            }
            ServiceError::Conflict { code, message } => ApiError::new(S::CONFLICT, code, message),
            ServiceError::NotFoundCode { code, message } => {
                ApiError::new(S::NOT_FOUND, code, message)
            }
            ServiceError::Upstream {
                status,
                code,
                message,
            } => ApiError::new(S::from_u16(status).unwrap_or(S::BAD_GATEWAY), code, message),
            ServiceError::Gone { code, message } => ApiError::new(S::GONE, code, message),
            ServiceError::RateLimited { retry_after_secs } => ApiError {
                retry_after_secs: Some(retry_after_secs),
                ..ApiError::from_status(S::TOO_MANY_REQUESTS)
            },
            ServiceError::Busy { retry_after_secs } => ApiError {
                retry_after_secs: Some(retry_after_secs),
                ..ApiError::new(
                    S::SERVICE_UNAVAILABLE,
                    "server_busy",
                    "The server is busy; retry after the Retry-After delay.",
                )
            },
            ServiceError::Unavailable(cause) => {
                tracing::warn!(%cause, "database unavailable");
                ApiError::new(
                    S::SERVICE_UNAVAILABLE,
                    "database_unavailable",
                    "The database is unavailable; retry shortly.",
                )
            }
            ServiceError::Internal(cause) => {
                tracing::error!(error = ?cause, "internal error");
                ApiError::from_status(S::INTERNAL_SERVER_ERROR)
            }
        }
    }
}

fn denied_message(code: &str) -> &'static str {
    match code {
        "role_change_not_allowed" => "Your role may not assign, change or remove this role.",
        "organization_required" => {
            "This action needs an organization workspace; switch to one first."
        }
        "api_key_not_allowed" => "API keys may only read; sign in to do this.",
        _ => "Your role in this workspace does not allow this action.",
    }
}

/// JSON bodies: size cap, `application/json` required, parse errors as 400 with the reason.
pub(crate) fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(|err, _req: &HttpRequest| {
            let api = match &err {
                error::JsonPayloadError::OverflowKnownLength { .. }
                | error::JsonPayloadError::Overflow { .. } => {
                    ApiError::from_status(StatusCode::PAYLOAD_TOO_LARGE)
                }
                error::JsonPayloadError::ContentType => {
                    ApiError::from_status(StatusCode::UNSUPPORTED_MEDIA_TYPE)
                }
                error::JsonPayloadError::Deserialize(e) if e.is_data() => ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_body",
                    format!("The JSON body is invalid: {e}"),
                ),
                error::JsonPayloadError::Deserialize(e) => ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "malformed_json",
                    format!("The body is not valid JSON: {e}"),
                ),
                _ => ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "malformed_json",
                    "The body could not be read as JSON.",
                ),
            };
            api.into()
        })
}

/// Query strings: 400 with the reason.
pub(crate) fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("Invalid query string: {err}"),
        )
        .into()
    })
}

/// Path parameters that cannot parse (e.g. a malformed id) name no resource: 404 (or 405 when
/// the path is another route's, see [`crate::fallback::path_error`]).
pub(crate) fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err, req| {
        error::InternalError::from_response(err, crate::fallback::path_error(req)).into()
    })
}
