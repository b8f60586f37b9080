//! The one activation mechanism shared by instances, offerings and shares: who may set which
//! flag (the domain's map), the org's distinct-activators rule, the write of one flag with its
//! audit event ([`set`]), and the error mapping.
//!
//! Contract:
//! - A kind that carries the two approvals implements [`Activatable`] beside its use cases
//!   (how its row is read, locked and written); its use case checks that the caller may see
//!   the resource and that an approval applies to it, then calls [`set`] for the rest.
//! - [`set`] takes the kind's locks, then re-reads the row inside its write transaction, so two
//!   concurrent approvals decide one after the other (the distinct-activators rule holds under
//!   concurrency), and records `<kind>.activation_changed` in the org's chain in that transaction.

use crate::Ctx;
use crate::audit::AuditEntry;
use crate::{Deps, ServiceError};
use inventiv_domain::ErrorCode;
use inventiv_domain::{
    Action, Activation, ActivationError, Flag, OrgId, UserId, Workspace, authorize,
};
use inventiv_persistence::repo::organizations;
use inventiv_persistence::{StoreError, Tx};
use serde_json::json;
use std::fmt::Display;
use time::OffsetDateTime;

/// A resource with the technical and economic approvals, as [`set`] reads and writes it. An
/// org's resource only: a personal one is operational by definition.
pub(crate) trait Activatable: Sized {
    type Id: Copy + Display;
    /// The audit target type, and what a 404 names.
    const KIND: &'static str;
    /// The audit event: `<KIND>.activation_changed`.
    const EVENT: &'static str;
    /// Whether the event also states the flag as it was (`before`). Instances' events always
    /// have; offerings' and shares' never did, and an event's payload does not change.
    const AUDITS_BEFORE: bool;

    /// Locks to hold before the row is read, in the order the kind's other writes take them
    /// (none for a kind whose [`Activatable::find`] locks its row itself).
    async fn lock(_tx: &Tx, _org: OrgId, _id: Self::Id) -> Result<(), StoreError> {
        Ok(())
    }

    /// Reads the row such that a concurrent change of it waits for this transaction to
    /// commit (under [`Activatable::lock`]'s locks, or its own row lock): the flags [`set`]
    /// decides from are still the row's when it writes.
    async fn find(tx: &Tx, org: OrgId, id: Self::Id) -> Result<Option<Self>, StoreError>;

    fn activation(&self) -> &Activation;

    /// Stores `by` as the holder of `flag` (`None` clears it).
    async fn set_flag(
        tx: &Tx,
        org: OrgId,
        id: Self::Id,
        flag: Flag,
        by: Option<UserId>,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;
}

/// The caller sets `flag` to `active` on `org`'s resource `id`, in one write transaction: the
/// state is decided from the row as read in that transaction ([`next_state`]), written, and
/// audited. Returns the resource as it now is. The caller has checked before that it may see
/// the resource and that an approval applies to it.
pub(crate) async fn set<R: Activatable>(
    deps: &Deps,
    ctx: &Ctx,
    org: OrgId,
    id: R::Id,
    flag: Flag,
    active: bool,
) -> Result<R, ServiceError> {
    let distinct = distinct_required(deps, org).await?;
    let tx = deps.db.begin_write().await?;
    R::lock(&tx, org, id).await?;
    // Read inside the write transaction, under the lock: the flags of a concurrent change count.
    let current = R::find(&tx, org, id)
        .await?
        .ok_or_else(|| ServiceError::not_found(R::KIND))?;
    let after = next_state(ctx, current.activation(), flag, active, distinct)?;
    R::set_flag(&tx, org, id, flag, after.holder(flag), ctx.now).await?;
    let was_active = current.activation().holder(flag).is_some();
    let operational = after.operational(false);
    let entry = AuditEntry {
        action: R::EVENT,
        organization: Some(org),
        target_type: R::KIND,
        target_id: id.to_string(),
        before: R::AUDITS_BEFORE.then(|| json!({"flag": flag.as_str(), "active": was_active})),
        after: Some(json!({"flag": flag.as_str(), "active": active, "operational": operational})),
    };
    ctx.record(&tx, entry).await?;
    let updated = R::find(&tx, org, id)
        .await?
        .ok_or_else(|| ServiceError::not_found(R::KIND))?;
    tx.commit().await?;
    Ok(updated)
}

/// Whether `org` requires two different people for the two approvals. Read before the write
/// transaction opens (a transaction never waits for a second pooled connection).
async fn distinct_required(deps: &Deps, org: OrgId) -> Result<bool, ServiceError> {
    Ok(organizations::find_by_id(&deps.db, org)
        .await?
        .is_some_and(|o| o.require_distinct_activators))
}

/// The state after `principal` sets `flag` to `active` on a resource whose current state is
/// `current` — or why not.
fn next_state(
    ctx: &Ctx,
    current: &Activation,
    flag: Flag,
    active: bool,
    distinct: bool,
) -> Result<Activation, ServiceError> {
    let actor = ctx.actor();
    authorize(&actor, Action::SetActivation { flag })?;
    let Workspace::Org { role, .. } = actor.workspace else {
        return Err(error(ActivationError::NotApplicable));
    };
    current
        .set(ctx.user_id(), role, flag, active, distinct)
        .map_err(error)
}

pub(crate) fn error(err: ActivationError) -> ServiceError {
    match err {
        ActivationError::RoleNotAllowed { .. } => {
            inventiv_domain::Denied { reason: inventiv_domain::DenyReason::NotAllowed }.into()
        }
        ActivationError::DistinctActivatorsRequired => ServiceError::Conflict {
            code: ErrorCode::DistinctActivatorsRequired,
            message: "This organization requires the technical and economic approvals to come from two different people."
                .to_owned(),
        },
        ActivationError::NotApplicable => ServiceError::Conflict {
            code: ErrorCode::ActivationNotApplicable,
            message: "Personal resources are operational by definition; there is nothing to approve.".to_owned(),
        },
    }
}
