use inventiv_domain::{Denied, DenyReason, ErrorCode, ValueError};
use inventiv_persistence::StoreError;
use std::collections::BTreeMap;

/// Every way a use case can fail. Each variant is one kind of failure, and no two kinds overlap;
/// those the client sees carry a stable [`ErrorCode`] and a message for humans. The service
/// never names an HTTP status: the http crate maps each variant to one, in one place.
/// `DatabaseUnavailable` and `Internal` carry a cause for the log only, never for the client.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The input does not parse; one reason per field (`validation_failed`).
    #[error("invalid input")]
    Validation(BTreeMap<String, String>),
    /// A request refused as a whole rather than field by field: malformed (`invalid_body`) or
    /// refused by a rule (`endpoint_not_allowed`).
    #[error("{code}: {message}")]
    BadRequest { code: ErrorCode, message: String },
    /// The caller is not authenticated, or its credentials are not accepted (`unauthorized`,
    /// `invalid_credentials`, `login_required`, …).
    #[error("{code}: {message}")]
    Unauthenticated { code: ErrorCode, message: String },
    /// The call could pass a spend cap (`spend_cap_reached`).
    #[error("{code}: {message}")]
    PaymentRequired { code: ErrorCode, message: String },
    /// The caller is known but refused: by the policy (built from [`Denied`]) or by a rule of
    /// the use case (`not_a_member`, `email_mismatch`, `model_not_allowed`, …).
    #[error("{code}: {message}")]
    Forbidden { code: ErrorCode, message: String },
    /// Absent, or not in the caller's scope (indistinguishable on purpose): `not_found` (see
    /// [`ServiceError::not_found`]) or a more specific code (`model_not_found`).
    #[error("{code}: {message}")]
    NotFound { code: ErrorCode, message: String },
    /// The current state refuses the change (`slug_taken`, `last_owner`, `invalid_state`, …).
    #[error("{code}: {message}")]
    Conflict { code: ErrorCode, message: String },
    /// An expired, revoked or used token or invitation (`invitation_gone`,
    /// `reset_token_invalid`).
    #[error("{code}: {message}")]
    Gone { code: ErrorCode, message: String },
    /// Too many attempts (`rate_limited`); retry after that many seconds.
    #[error("rate limited")]
    RateLimited { retry_after_secs: u64 },
    /// A model server failed or could not be reached (`upstream_error`, `upstream_unreachable`).
    #[error("{code}: {message}")]
    BadGateway { code: ErrorCode, message: String },
    /// Nothing can serve the request right now; retry later (`no_ready_instance`).
    #[error("{code}: {message}")]
    Unavailable { code: ErrorCode, message: String },
    /// A model server did not answer in time (`upstream_timeout`).
    #[error("{code}: {message}")]
    GatewayTimeout { code: ErrorCode, message: String },
    /// `server_busy`: a bounded queue is full (password hashing); retry after that many
    /// seconds.
    #[error("server busy")]
    Busy { retry_after_secs: u64 },
    /// The database cannot be reached right now (`database_unavailable`). The cause goes to
    /// the log; the client gets a fixed message.
    #[error("database unavailable: {0}")]
    DatabaseUnavailable(String),
    /// A bug (`internal_error`). The cause goes to the log, never to the client.
    #[error(transparent)]
    Internal(anyhow::Error),
}

impl ServiceError {
    /// A single-field validation error.
    pub fn invalid(field: &str, reason: impl Into<String>) -> Self {
        ServiceError::Validation(BTreeMap::from([(field.to_owned(), reason.into())]))
    }

    /// `not_found`: "No such `what`." (a resource absent or out of the caller's scope).
    pub fn not_found(what: &str) -> Self {
        ServiceError::NotFound {
            code: ErrorCode::NotFound,
            message: format!("No such {what}."),
        }
    }

    /// 409 `workspace_changed`: the org this request acts in was deleted (or the caller's
    /// membership removed) while it ran; nothing was done.
    pub fn workspace_changed() -> Self {
        ServiceError::Conflict {
            code: ErrorCode::WorkspaceChanged,
            message:
                "This organization no longer exists, or you are no longer in it; nothing was done."
                    .to_owned(),
        }
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

/// A policy refusal is a `Forbidden` with the reason's code.
impl From<Denied> for ServiceError {
    fn from(denied: Denied) -> Self {
        ServiceError::Forbidden {
            code: denied.reason.code(),
            message: denied_message(denied.reason).to_owned(),
        }
    }
}

fn denied_message(reason: DenyReason) -> &'static str {
    match reason {
        DenyReason::NotAllowed => "Your role in this workspace does not allow this action.",
        DenyReason::RoleChangeNotAllowed => "Your role may not assign, change or remove this role.",
        DenyReason::RequiresOrgWorkspace => {
            "This action needs an organization workspace; switch to one first."
        }
        DenyReason::ApiKeyNotAllowed => "API keys may only read; sign in to do this.",
    }
}

impl From<StoreError> for ServiceError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(msg) => ServiceError::DatabaseUnavailable(msg),
            // A conflict that reaches here was not expected by the use case: a bug, not input.
            other => ServiceError::Internal(anyhow::Error::new(other)),
        }
    }
}
