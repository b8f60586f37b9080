use inventiv_domain::{Denied, ValueError};
use inventiv_persistence::StoreError;
use std::collections::BTreeMap;

/// Every way a use case can fail. The http crate maps each variant to one status and a stable
/// `error` code; `Internal` carries the cause for the log only, never for the client.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// 400: the input does not parse; one reason per field.
    #[error("invalid input")]
    Validation(BTreeMap<String, String>),
    /// 400 with a code, for a request that is not a field's validation: malformed
    /// (`invalid_body`) or refused by a rule (`endpoint_not_allowed`).
    #[error("{code}: {message}")]
    BadRequest { code: &'static str, message: String },
    /// 402: a spend cap would be passed (`spend_cap_reached`).
    #[error("{code}: {message}")]
    PaymentRequired { code: &'static str, message: String },
    /// 401 with a code (`unauthorized`, `invalid_credentials`, `login_required`, …).
    #[error("{code}: {message}")]
    Unauthenticated { code: &'static str, message: String },
    /// 403: authenticated but the policy refuses.
    #[error("denied: {0:?}")]
    Denied(Denied),
    /// 403 with a specific code (`not_a_member`, `csrf_origin`, `email_mismatch`, …).
    #[error("{code}: {message}")]
    Forbidden { code: &'static str, message: String },
    /// 404: absent, or not in the caller's scope (indistinguishable on purpose).
    #[error("not found: {0}")]
    NotFound(&'static str),
    /// 404 with a specific code (e.g. `model_not_found`).
    #[error("{code}: {message}")]
    NotFoundCode { code: &'static str, message: String },
    /// 502/503/504 about an upstream (`upstream_error`, `no_ready_instance`, `upstream_timeout`).
    #[error("{code}: {message}")]
    Upstream {
        status: u16,
        code: &'static str,
        message: String,
    },
    /// 409 with a code (`slug_taken`, `last_owner`, `already_member`, …).
    #[error("{code}: {message}")]
    Conflict { code: &'static str, message: String },
    /// 410: an expired, revoked or used token/invitation.
    #[error("{code}: {message}")]
    Gone { code: &'static str, message: String },
    /// 429: too many attempts; retry after that many seconds.
    #[error("rate limited")]
    RateLimited { retry_after_secs: u64 },
    /// 503 `server_busy`: a bounded queue is full (password hashing); retry after that many
    /// seconds.
    #[error("server busy")]
    Busy { retry_after_secs: u64 },
    /// 503: the database cannot be reached right now.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// 500: a bug. The message goes to the log, never to the client.
    #[error(transparent)]
    Internal(anyhow::Error),
}

impl ServiceError {
    /// A single-field validation error.
    pub fn invalid(field: &str, reason: impl Into<String>) -> Self {
        ServiceError::Validation(BTreeMap::from([(field.to_owned(), reason.into())]))
    }

    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        ServiceError::Internal(err.into())
    }
}

impl From<ValueError> for ServiceError {
    fn from(err: ValueError) -> Self {
        ServiceError::invalid(err.field, err.reason)
    }
}

impl From<Denied> for ServiceError {
    fn from(denied: Denied) -> Self {
        ServiceError::Denied(denied)
    }
}

impl From<StoreError> for ServiceError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(msg) => ServiceError::Unavailable(msg),
            // A conflict that reaches here was not expected by the use case: a bug, not input.
            other => ServiceError::Internal(anyhow::Error::new(other)),
        }
    }
}
