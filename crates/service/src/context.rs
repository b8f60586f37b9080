//! The request context every authenticated use case takes first (after `&Deps`): who is
//! calling ([`Principal`]), the request's facts ([`RequestMeta`]) and the one reading of the
//! clock the use case works with.
//!
//! The workspace rules a use case starts with live here too, so no use case re-derives them:
//! [`Ctx::current_org`] (authorize, then the org of the workspace) and [`Ctx::record`] (the
//! audit event, attributed to this caller and session, in the caller's transaction), and
//! [`Ctx::begin_in_workspace`] (a write transaction that holds the caller's org).

use crate::audit::{self, AuditActor, AuditEntry, AuditRecord};
use crate::auth::{Principal, SessionRef};
use crate::{Deps, RequestMeta, ServiceError};
use inventiv_domain::{
    Action, Actor, Denied, DenyReason, OrgId, Role, UserId, Workspace, authorize,
};
use inventiv_persistence::Tx;
use time::OffsetDateTime;

/// Who is calling, about which request, and when.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub principal: Principal,
    pub meta: RequestMeta,
    /// The clock read once when the request was authenticated.
    pub now: OffsetDateTime,
}

impl Ctx {
    /// A context for `principal`, reading the clock now.
    pub fn new(deps: &Deps, principal: Principal, meta: RequestMeta) -> Self {
        Self {
            principal,
            meta,
            now: deps.clock.now(),
        }
    }

    /// Opens the write transaction of a change made in the caller's workspace. In an org, the
    /// org is held first (`FOR KEY SHARE`, the lock the change's inserts take on it anyway): if
    /// it was deleted since this request's session was read, the answer is 409
    /// `workspace_changed` rather than a failed foreign key, and a deletion starting now waits
    /// for this transaction (and then sees what it wrote).
    pub async fn begin_in_workspace(&self, deps: &Deps) -> Result<Tx, ServiceError> {
        let tx = deps.db.begin_write().await?;
        if let Workspace::Org { org, .. } = self.principal.workspace
            && !inventiv_persistence::repo::organizations::hold(&tx, org).await?
        {
            return Err(ServiceError::workspace_changed());
        }
        Ok(tx)
    }

    /// The calling user.
    pub fn user_id(&self) -> UserId {
        self.principal.user_id
    }

    /// The actor the domain policy judges.
    pub fn actor(&self) -> Actor {
        self.principal.actor()
    }

    /// The session, for operations only a signed-in session may perform (403
    /// `api_key_not_allowed` with an API key).
    pub fn session(&self) -> Result<SessionRef, ServiceError> {
        self.principal.session()
    }

    /// Authorizes `action`, then returns the org of the caller's workspace and the caller's
    /// role there (403 when the policy refuses or the workspace is Personal).
    pub fn current_org(&self, action: Action) -> Result<(OrgId, Role), ServiceError> {
        let actor = self.actor();
        authorize(&actor, action)?;
        match actor.workspace {
            Workspace::Org { org, role } => Ok((org, role)),
            // authorize() refuses org actions in Personal; this arm only keeps the types honest.
            Workspace::Personal => Err(Denied {
                reason: DenyReason::RequiresOrgWorkspace,
            }
            .into()),
        }
    }

    /// The audit actor: this user, and the session it acted from (none for an API key).
    pub fn audit_actor(&self) -> AuditActor {
        AuditActor {
            user: Some(self.principal.user_id),
            session: self.principal.session_id(),
        }
    }

    /// Appends `entry` to the audit trail in `tx`, as done by this caller at [`Ctx::now`].
    pub async fn record(&self, tx: &Tx, entry: AuditEntry) -> Result<AuditRecord, ServiceError> {
        audit::record(tx, self.now, self.audit_actor(), &self.meta, entry).await
    }
}
