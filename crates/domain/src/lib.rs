//! `inventiv-domain` — the pure rules of the Inventiv control plane.
//!
//! What this crate holds: typed ids, parsed value types (email, slug, password policy…), the four
//! organization roles and who may assign which (SPEC §2.1), the last-owner invariant (§2.2), the
//! single permission map behind every API guard and `GET /auth/me` (§2.3, §2.4), the invitation
//! state machine, the double-activation rules, integer money arithmetic (§3), and the catalogue
//! of stable error codes ([`ErrorCode`]) that the service and http crates share.
//!
//! Contract:
//! - **Pure.** No async, no I/O, no database, no HTTP, no clock reads: every decision receives its
//!   inputs (including `now`) as arguments, so the RBAC rules are tested without any I/O. The only
//!   side effect anywhere is drawing a fresh UUID v7 in `XxxId::new()`.
//! - **Deny by default.** [`policy::authorize`] returns `Ok(())` only for what the map explicitly
//!   grants. Every decision is an exhaustive `match` with no wildcard arm, so adding a role,
//!   permission, action, status or flag does not compile until someone decides what it means.
//! - **Parse, don't validate.** Value types have private fields and can only be built through
//!   `parse`, so holding an [`Email`] or a [`Slug`] proves it is valid.
//! - **One map.** Guards, `permissions`, `modules` and `docs/authorization.md` are all derived
//!   from [`policy`]; nothing else decides who may do what.
//! - Depends only on serde, uuid, time and thiserror, and — behind the `utoipa` feature, which
//!   only the http crate enables — on utoipa, so the OpenAPI document describes the wire enums
//!   and ids from here. Never on sea-orm, actix, tokio or anything that performs I/O.

pub mod access_request;
pub mod activation;
pub mod authorization_doc;
pub mod dates;
pub mod delegation;
pub mod error_code;
pub mod finops;
pub mod ids;
pub mod instance;
pub mod invitation;
pub mod modules;
pub mod money;
pub mod offering;
pub mod owners;
pub mod policy;
pub mod role;
pub mod share;
pub mod user_edit;
pub mod values;
pub mod workbench;
pub mod workspace;

pub use uuid::Uuid;

pub use access_request::{AccessRequestError, AccessRequestStatus};
pub use activation::{Activation, ActivationError, Flag, can_set_roles, ensure_applicable};
pub use authorization_doc::authorization_markdown;
pub use delegation::{can_change_role, can_invite, can_manage_invitation, can_remove};
pub use error_code::ErrorCode;
pub use ids::{
    AccessRequestId, ApiKeyId, InstanceId, InvitationId, ModelId, OfferingId, OrgId, ResetTokenId,
    SessionId, ShareId, UsageId, UserId, WorkbenchMessageId, WorkbenchProjectId, WorkbenchRunId,
};
pub use instance::{InstanceStatus, InvalidTransition};
pub use invitation::{InvitationError, InvitationStatus, accept, effective_status, resend, revoke};
pub use modules::{Access, Module, ModuleId, modules};
pub use money::{MoneyError, accrued_cost_micros, charged_micros, worst_case_micros};
pub use owners::{LastOwner, ensure_owner_remains, removes_owner};
pub use policy::{
    Action, Denied, DenyReason, Permission, authorize, may_hold_org_api_keys, permissions,
};
pub use role::{Role, assignable};
pub use share::{PROPOSAL_TTL, ShareError, ShareParty, ShareState, ShareStatus};
pub use user_edit::{UserEdit, locks_self_out, user_edit};
pub use values::{
    DisplayName, Email, ExpiresInDays, OrgName, PageLimit, Password, PersonName, Slug, Username,
    ValueError, optional_text,
};
pub use workbench::{MessageContent, Ownership, WorkbenchDenied};
pub use workspace::{Actor, Credential, Scope, Workspace};
