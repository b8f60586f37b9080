//! The one mapping from failures to HTTP responses.

use crate::request_context::{REQUEST_ID_HEADER, current_request_id};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, error, web};
use inventiv_domain::ErrorCode;
use inventiv_service::ServiceError;
use serde::Serialize;
use std::borrow::Cow;
use std::collections::BTreeMap;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

/// An error as the client sees it.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    pub fields: Option<BTreeMap<String, String>>,
    pub retry_after_secs: Option<u64>,
}

/// The JSON body of every error (documented in the OpenAPI as `ErrorBody`).
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody<'a> {
    /// Stable snake_case code, e.g. `not_found`, `last_owner`.
    #[schema(value_type = ErrorCodeSchema)]
    pub error: ErrorCode,
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

/// The OpenAPI schema of [`ErrorCode`] (component `ErrorCode`): a string enum of
/// [`ErrorCode::ALL`], so the document lists every code a client can meet. Written here because
/// the domain crate, which owns the codes, does not depend on utoipa.
pub(crate) struct ErrorCodeSchema;

impl utoipa::PartialSchema for ErrorCodeSchema {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "Stable snake_case error code; docs/errors.md gives the status and meaning of each.",
            ))
            .enum_values(Some(ErrorCode::ALL.iter().map(|code| code.as_str())))
            .into()
    }
}

impl utoipa::ToSchema for ErrorCodeSchema {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ErrorCode")
    }
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            fields: None,
            retry_after_secs: None,
        }
    }

    /// The generic error for a bare status (used for errors actix raises itself).
    pub fn from_status(status: StatusCode) -> Self {
        use ErrorCode as C;
        let (code, message) = match status.as_u16() {
            400 => (C::BadRequest, "The request is malformed."),
            401 => (C::Unauthorized, "Authentication is required."),
            403 => (C::Forbidden, "You are not allowed to do this."),
            404 => (C::NotFound, "No such resource."),
            405 => (
                C::MethodNotAllowed,
                "This method is not allowed on this resource.",
            ),
            408 => (C::RequestTimeout, "The request took too long to arrive."),
            411 => (C::LengthRequired, "A Content-Length is required."),
            413 => (C::PayloadTooLarge, "The request body is too large."),
            414 => (C::UriTooLong, "The request URI is too long."),
            415 => (
                C::UnsupportedMediaType,
                "Send the body as application/json.",
            ),
            429 => (C::RateLimited, "Too many requests; retry later."),
            431 => (C::HeadersTooLarge, "The request headers are too large."),
            503 => (
                C::ServiceUnavailable,
                "The service is temporarily unavailable.",
            ),
            s if s >= 500 => (C::InternalError, "An internal error occurred."),
            _ => (C::BadRequest, "The request could not be processed."),
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
    #[schema(value_type = ErrorCodeSchema)]
    pub code: ErrorCode,
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
                code: err.code,
            },
            request_id,
        };
        if let Ok(text) = serde_json::to_string(&body) {
            return text;
        }
    }
    let body = ErrorBody {
        error: err.code,
        message: &err.message,
        request_id,
        fields: err.fields.as_ref(),
    };
    serde_json::to_string(&body).unwrap_or_else(|_| {
        format!(
            r#"{{"error":"{}","message":"An internal error occurred.","request_id":""}}"#,
            ErrorCode::InternalError
        )
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

/// The one place that picks the HTTP status of a service failure: one status per variant.
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
                    ..ApiError::new(S::BAD_REQUEST, ErrorCode::ValidationFailed, message)
                }
            }
            ServiceError::BadRequest { code, message } => {
                ApiError::new(S::BAD_REQUEST, code, message)
            }
            ServiceError::Unauthenticated { code, message } => {
                ApiError::new(S::UNAUTHORIZED, code, message)
            }
            ServiceError::PaymentRequired { code, message } => {
                ApiError::new(S::PAYMENT_REQUIRED, code, message)
            }
            ServiceError::Forbidden { code, message } => ApiError::new(S::FORBIDDEN, code, message),
            ServiceError::NotFound { code, message } => ApiError::new(S::NOT_FOUND, code, message),
            ServiceError::Conflict { code, message } => ApiError::new(S::CONFLICT, code, message),
            ServiceError::Gone { code, message } => ApiError::new(S::GONE, code, message),
            ServiceError::RateLimited { retry_after_secs } => ApiError {
                retry_after_secs: Some(retry_after_secs),
                ..ApiError::from_status(S::TOO_MANY_REQUESTS)
            },
            ServiceError::BadGateway { code, message } => {
                ApiError::new(S::BAD_GATEWAY, code, message)
            }
            ServiceError::Unavailable { code, message } => {
                ApiError::new(S::SERVICE_UNAVAILABLE, code, message)
            }
            ServiceError::GatewayTimeout { code, message } => {
                ApiError::new(S::GATEWAY_TIMEOUT, code, message)
            }
            ServiceError::Busy { retry_after_secs } => ApiError {
                retry_after_secs: Some(retry_after_secs),
                ..ApiError::new(
                    S::SERVICE_UNAVAILABLE,
                    ErrorCode::ServerBusy,
                    "The server is busy; retry after the Retry-After delay.",
                )
            },
            ServiceError::DatabaseUnavailable(cause) => {
                tracing::warn!(%cause, "database unavailable");
                ApiError::new(
                    S::SERVICE_UNAVAILABLE,
                    ErrorCode::DatabaseUnavailable,
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
                error::JsonPayloadError::Payload(e) if crate::body_budget::is_timed_out(e) => {
                    ApiError::from_status(StatusCode::REQUEST_TIMEOUT)
                }
                error::JsonPayloadError::Deserialize(e) if e.is_data() => ApiError::new(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::InvalidBody,
                    format!("The JSON body is invalid: {e}"),
                ),
                error::JsonPayloadError::Deserialize(e) => ApiError::new(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::MalformedJson,
                    format!("The body is not valid JSON: {e}"),
                ),
                _ => ApiError::new(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::MalformedJson,
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
            ErrorCode::InvalidQuery,
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Both error bodies point their code at the `ErrorCode` component, which lists every code.
    #[test]
    fn the_openapi_document_lists_every_code() {
        let doc = serde_json::to_value(crate::openapi()).unwrap();
        let schemas = &doc["components"]["schemas"];
        let listed: Vec<&str> = schemas["ErrorCode"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let all: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(listed, all);
        let reference = "#/components/schemas/ErrorCode";
        assert_eq!(
            schemas["ErrorBody"]["properties"]["error"]["$ref"],
            reference
        );
        assert_eq!(
            schemas["OpenAiError"]["properties"]["code"]["$ref"],
            reference
        );
    }

    /// A policy refusal keeps its code and message on the wire.
    #[test]
    fn a_denied_action_is_a_403_with_the_reasons_code() {
        let denied = inventiv_domain::Denied {
            reason: inventiv_domain::DenyReason::RoleChangeNotAllowed,
        };
        let api = ApiError::from(ServiceError::from(denied));
        assert_eq!(api.status, StatusCode::FORBIDDEN);
        assert_eq!(api.code, ErrorCode::RoleChangeNotAllowed);
        assert_eq!(
            api.message,
            "Your role may not assign, change or remove this role."
        );
    }
}
