//! The audit log as it is read: an org's chain by its owners, admins and managers
//! (`GET /organizations/current/audit`), and the platform chain by platform admins
//! (`GET /platform/audit`, SPEC §4.9 v2). Recording events and verifying chains is
//! [`crate::audit`]'s job; this module only reads.

use crate::ServiceError;
use inventiv_domain::{OrgId, UserId};
use inventiv_persistence::repo::audit::{self, AuditRecord};
use serde_json::Value;
use time::OffsetDateTime;

/// An event of an org's chain, as its managers see it.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub id: i64,
    pub organization_id: Option<OrgId>,
    pub actor_user_id: Option<UserId>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub request_id: Option<String>,
    pub ip: Option<String>,
    pub occurred_at: OffsetDateTime,
    /// This event's link in the chain (see `inventiv-server audit-verify`).
    pub hash: String,
}

impl From<AuditRecord> for AuditEvent {
    fn from(e: AuditRecord) -> Self {
        AuditEvent {
            id: e.id,
            organization_id: e.organization_id,
            actor_user_id: e.actor_user_id,
            action: e.action,
            target_type: e.target_type,
            target_id: e.target_id,
            before: e.before,
            after: e.after,
            request_id: e.request_id,
            ip: e.ip,
            occurred_at: e.occurred_at,
            hash: e.hash,
        }
    }
}

/// `GET /organizations/current/audit` filters.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub action: Option<String>,
    pub since: Option<OffsetDateTime>,
}

/// The current org's events, newest first (owner/admin/manager).
pub async fn list_for_org(
    deps: &crate::Deps,
    ctx: &crate::Ctx,
    filter: &AuditFilter,
    page: &crate::paging::PageRequest,
) -> Result<crate::paging::Page<AuditEvent>, ServiceError> {
    let (org, _) = ctx.current_org(inventiv_domain::Action::ViewAudit)?;
    let (limit, before) = page.parse::<i64>()?;
    let events = event_filter(filter, before)?;
    let rows = audit::list(&deps.db, org, events, limit + 1)
        .await?
        .into_iter()
        .map(AuditEvent::from)
        .collect();
    Ok(crate::paging::page_of(rows, limit, |e| e.id))
}

/// The platform chain's events (no organization: accounts, sessions, sign-ins, the public
/// catalogue), newest first: platform admins, in the personal workspace only.
pub async fn list_platform(
    deps: &crate::Deps,
    ctx: &crate::Ctx,
    filter: &AuditFilter,
    page: &crate::paging::PageRequest,
) -> Result<crate::paging::Page<AuditEvent>, ServiceError> {
    inventiv_domain::authorize(&ctx.actor(), inventiv_domain::Action::ViewPlatformAudit)?;
    let (limit, before) = page.parse::<i64>()?;
    let events = event_filter(filter, before)?;
    let rows = audit::list_platform(&deps.db, events, limit + 1)
        .await?
        .into_iter()
        .map(AuditEvent::from)
        .collect();
    Ok(crate::paging::page_of(rows, limit, |e| e.id))
}

/// The repository's filter, once the action name is checked.
fn event_filter(
    filter: &AuditFilter,
    before: Option<i64>,
) -> Result<audit::EventFilter<'_>, ServiceError> {
    if let Some(action) = &filter.action
        && (action.len() > 64
            || !action
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_'))
    {
        return Err(ServiceError::invalid(
            "action",
            "a dotted lowercase action name, e.g. member.role_changed",
        ));
    }
    Ok(audit::EventFilter {
        action: filter.action.as_deref(),
        since: filter.since,
        before_id: before,
    })
}
