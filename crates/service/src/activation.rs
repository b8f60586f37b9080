//! The one activation mechanism shared by instances, offerings and shares: who may set which
//! flag (the domain's map), the org's distinct-activators rule, and the error mapping.

use crate::Ctx;
use crate::{Deps, ServiceError};
use inventiv_domain::ErrorCode;
use inventiv_domain::{Action, Activation, ActivationError, Flag, OrgId, Workspace, authorize};
use inventiv_persistence::repo::organizations;

/// Whether `org` requires two different people for the two approvals. Read before the write
/// transaction opens (a transaction never waits for a second pooled connection).
pub(crate) async fn distinct_required(deps: &Deps, org: OrgId) -> Result<bool, ServiceError> {
    Ok(organizations::find_by_id(&deps.db, org)
        .await?
        .is_some_and(|o| o.require_distinct_activators))
}

/// The state after `principal` sets `flag` to `active` on a resource whose current state is
/// `current` — or why not.
pub(crate) fn next_state(
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
