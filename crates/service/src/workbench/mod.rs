//! The workbench (SPEC §4.8): projects and runs owned by a user in a workspace, and a run's
//! conversation with a model through the proxy.
//!
//! - Scope: like every scoped resource, rows of the caller's workspace only (another tenant's
//!   ids are 404). Inside it, the caller sees its own projects and runs plus those colleagues
//!   share with the org (`inventiv_domain::workbench::can_see`).
//! - Writes: `workbench.use` (every member; never an API key), then the owner rule
//!   (`ensure_owner`): a colleague's shared item answers 403 `workbench_owner_only`.
//! - Sharing exists only in an org workspace (400 `sharing_requires_organization` in
//!   Personal) and is the one privileged workbench write: it shows a user's work to the whole
//!   org, so `workbench_project.shared` / `workbench_run.shared` (and `….unshared`) go to the
//!   org's audit chain, in the transaction of the change. Titles, models and messages are the
//!   owner's own working data and are not audited.
//!
//! [`projects`], [`runs`] and [`messages`] hold the use cases.

pub mod messages;
pub mod projects;
pub mod runs;

use crate::{Ctx, ServiceError};
use inventiv_domain::{Action, Actor, Ownership, WorkbenchDenied, authorize, workbench};

impl From<WorkbenchDenied> for ServiceError {
    fn from(denied: WorkbenchDenied) -> Self {
        match denied {
            WorkbenchDenied::NotOwner => ServiceError::Forbidden {
                code: denied.code(),
                message: "Only its owner may change, delete, share or continue it; a shared \
                          item is read-only for colleagues."
                    .to_owned(),
            },
            WorkbenchDenied::SharingNeedsOrg => ServiceError::BadRequest {
                code: denied.code(),
                message: "shared_with_org needs an organization workspace: a personal item \
                          has nobody to be shared with."
                    .to_owned(),
            },
        }
    }
}

/// The caller may read the workbench (`workbench.view`).
fn viewer(ctx: &Ctx) -> Result<Actor, ServiceError> {
    let actor = ctx.actor();
    authorize(&actor, Action::ViewWorkbench)?;
    Ok(actor)
}

/// The caller may write in the workbench (`workbench.use`); the owner rule comes on top, per
/// item ([`owner_only`]).
fn writer(ctx: &Ctx) -> Result<Actor, ServiceError> {
    let actor = ctx.actor();
    authorize(&actor, Action::UseWorkbench)?;
    Ok(actor)
}

/// Only the owner of `item` changes it.
fn owner_only(actor: &Actor, item: Ownership) -> Result<(), ServiceError> {
    Ok(workbench::ensure_owner(actor.user, item)?)
}

/// The org whose chain records a sharing change (sharing only exists in an org).
fn org_of(actor: &Actor) -> Option<inventiv_domain::OrgId> {
    match actor.scope() {
        inventiv_domain::Scope::Org(org) => Some(org),
        inventiv_domain::Scope::Personal(_) => None,
    }
}

/// The audit action of a change of `shared_with_org` (None: unchanged).
fn sharing_action(
    before: bool,
    after: bool,
    shared: &'static str,
    unshared: &'static str,
) -> Option<&'static str> {
    match (before, after) {
        (false, true) => Some(shared),
        (true, false) => Some(unshared),
        _ => None,
    }
}
