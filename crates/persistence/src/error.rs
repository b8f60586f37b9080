use sea_orm::{DbErr, SqlErr};

/// A named database constraint that the service layer turns into a domain conflict.
/// Matching by name (instead of check-then-insert) keeps races impossible to lose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Constraint {
    UserEmail,
    UserUsername,
    OrganizationSlug,
    MembershipPrimaryKey,
    AuditChainSeq,
    InvitationPendingEmail,
    InvitationTokenHash,
    ModelOrgModelId,
    ModelPublicModelId,
    ApiKeyHash,
    OfferingCode,
    ShareLive,
    /// `access_requests`: one pending request per (consumer, offering) (SPEC §4.7).
    AccessRequestPending,
    UsageRequest,
    /// `model_namespaces` primary key: the name is owned by someone else (SPEC §5.1).
    ModelNamespace,
    /// A foreign key (`ON DELETE RESTRICT`) from an instance or an offering refused the deletion
    /// of their model.
    ModelInUse,
}

/// Foreign keys that refuse a deletion, by their PostgreSQL name (the default
/// `<table>_<column>_fkey`). SQLite names no constraint in its message ("FOREIGN KEY constraint
/// failed"): the repository function that deletes decides there (see [`is_foreign_key`]).
const FOREIGN_KEYS: &[(Constraint, &str)] = &[
    (Constraint::ModelInUse, "instances_model_id_fkey"),
    (Constraint::ModelInUse, "organization_models_model_id_fkey"),
];

/// Whether `err` is a foreign-key violation that no name in [`FOREIGN_KEYS`] matched (SQLite's
/// unnamed one). A `DELETE` can only break the keys that point at the rows it deletes, so the
/// repository function issuing one knows which constraint it was. SQLite runs `ON DELETE
/// RESTRICT` as a trigger: the error is then `SQLITE_CONSTRAINT_TRIGGER` (1811), not the
/// foreign-key code sea-orm classifies, with the same fixed message.
pub(crate) fn is_foreign_key(err: &StoreError) -> bool {
    match err {
        StoreError::Db(db) => {
            matches!(db.sql_err(), Some(SqlErr::ForeignKeyConstraintViolation(_)))
                || db.to_string().contains("FOREIGN KEY constraint failed")
        }
        _ => false,
    }
}

/// (constraint, PostgreSQL index name, the text SQLite puts in its message)
const UNIQUE_CONSTRAINTS: &[(Constraint, &str, &str)] = &[
    (Constraint::UserEmail, "ux_users_email", "users.email"),
    (
        Constraint::UserUsername,
        "ux_users_username",
        "users.username",
    ),
    (
        Constraint::OrganizationSlug,
        "ux_organizations_slug",
        "organizations.slug",
    ),
    (
        Constraint::MembershipPrimaryKey,
        "organization_memberships_pkey",
        "organization_memberships.organization_id, organization_memberships.user_id",
    ),
    (
        Constraint::AuditChainSeq,
        "ux_audit_events_chain",
        "audit_events.chain_key, audit_events.chain_seq",
    ),
    (
        Constraint::InvitationPendingEmail,
        "ux_invitations_pending_email",
        "organization_invitations.organization_id, organization_invitations.email",
    ),
    (
        Constraint::InvitationTokenHash,
        "ux_invitations_token_hash",
        "organization_invitations.token_hash",
    ),
    (
        Constraint::ModelOrgModelId,
        "ux_models_org_model_id",
        "models.organization_id, models.model_id",
    ),
    (
        Constraint::ModelPublicModelId,
        "ux_models_public_model_id",
        "models.model_id",
    ),
    (
        Constraint::ApiKeyHash,
        "ux_api_keys_hash",
        "api_keys.key_hash",
    ),
    (
        Constraint::OfferingCode,
        "ux_offerings_org_code",
        "organization_models.organization_id, organization_models.code",
    ),
    (
        Constraint::ShareLive,
        "ux_shares_live",
        "organization_model_shares.provider_organization_id, organization_model_shares.consumer_organization_id, organization_model_shares.organization_model_id",
    ),
    (
        Constraint::AccessRequestPending,
        "ux_access_requests_pending",
        "access_requests.consumer_organization_id, access_requests.organization_model_id",
    ),
    (
        Constraint::UsageRequest,
        "ux_usage_request",
        "inference_usage.request_id",
    ),
    (
        Constraint::ModelNamespace,
        "model_namespaces_pkey",
        "model_namespaces.name",
    ),
];

/// Everything a repository can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write.
    #[error("unique constraint violated: {0:?}")]
    Conflict(Constraint),
    /// The database could not be reached (or stayed locked past the busy timeout): retryable.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A stored value could not be read back into a domain type (a bug or tampering).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// Anything else: a bug, logged in full, answered as a bare 500.
    #[error(transparent)]
    Db(DbErr),
}

impl From<DbErr> for StoreError {
    fn from(err: DbErr) -> Self {
        if let Some(SqlErr::UniqueConstraintViolation(message)) = err.sql_err() {
            for (constraint, pg_name, sqlite_text) in UNIQUE_CONSTRAINTS {
                if message.contains(&format!("\"{pg_name}\"")) || message.ends_with(sqlite_text) {
                    return StoreError::Conflict(*constraint);
                }
            }
        }
        if let Some(SqlErr::ForeignKeyConstraintViolation(message)) = err.sql_err() {
            for (constraint, pg_name) in FOREIGN_KEYS {
                if message.contains(&format!("\"{pg_name}\"")) {
                    return StoreError::Conflict(*constraint);
                }
            }
        }
        match &err {
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => {
                StoreError::Unavailable(err.to_string())
            }
            _ if is_unavailable_text(&err.to_string()) => StoreError::Unavailable(err.to_string()),
            _ => StoreError::Db(err),
        }
    }
}

/// Errors that mean "the database is not there right now" rather than "this query is wrong".
fn is_unavailable_text(text: &str) -> bool {
    const MARKERS: &[&str] = &[
        "database is locked",
        "Connection refused",
        "connection reset",
        "broken pipe",
        "terminating connection",
        "the database system is shutting down",
        "the database system is starting up",
        "PoolTimedOut",
        "pool timed out",
        "error communicating with database",
        "unexpected end of file",
        // Retryable by nature: the client may simply try again.
        "deadlock detected",
        "could not serialize access",
    ];
    MARKERS.iter().any(|m| text.contains(m))
}
