//! Recording privileged changes in the audit trail (inside the caller's transaction) and
//! verifying the chains.

use crate::{RequestMeta, ServiceError};
use inventiv_domain::{OrgId, SessionId, UserId};
use inventiv_persistence::repo::audit::{self, NewAuditEvent};
pub use inventiv_persistence::repo::audit::{AuditRecord, BrokenLink, VerifyReport};
use inventiv_persistence::{Db, Tx};
use serde_json::Value;
use time::OffsetDateTime;

/// Who did it: a user (and the session they acted from), or the system (bootstrap, jobs).
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditActor {
    pub user: Option<UserId>,
    pub session: Option<SessionId>,
}

/// One privileged change.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    /// Dotted lowercase, e.g. `member.role_changed`.
    pub action: &'static str,
    /// The org whose chain receives the event; `None` = the platform chain.
    pub organization: Option<OrgId>,
    pub target_type: &'static str,
    pub target_id: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// Appends `entry` in `tx`: it commits or rolls back with the change it describes.
pub async fn record(
    tx: &Tx,
    now: OffsetDateTime,
    actor: AuditActor,
    meta: &RequestMeta,
    entry: AuditEntry,
) -> Result<AuditRecord, ServiceError> {
    Ok(audit::append(
        tx,
        NewAuditEvent {
            organization_id: entry.organization,
            actor_user_id: actor.user,
            actor_session_id: actor.session,
            action: entry.action.to_owned(),
            target_type: Some(entry.target_type.to_owned()),
            target_id: Some(entry.target_id),
            before: entry.before,
            after: entry.after,
            request_id: meta.request_id.clone(),
            ip: meta.ip.clone(),
            occurred_at: now,
        },
    )
    .await?)
}

/// Recomputes every chain (the `audit-verify` command).
pub async fn verify(db: &Db) -> Result<VerifyReport, ServiceError> {
    Ok(audit::verify(db).await?)
}

/// How timestamps appear inside audit `before`/`after` documents.
pub fn timestamp(t: OffsetDateTime) -> String {
    inventiv_persistence::rfc3339_micros(t)
}
