//! Use cases of the Inventiv control plane.
//!
//! Contract:
//! - Each use case takes `&Deps` first, then, when someone authenticated is acting, the request
//!   context [`Ctx`] (principal, request facts, the clock reading). It starts with the policy
//!   check (`inventiv_domain::authorize`, or [`Ctx::current_org`] for org actions), then runs
//!   ONE write transaction holding the repository calls and the audit event
//!   ([`Ctx::record`]), and commits.
//! - No HTTP types here (no actix); errors are [`ServiceError`], mapped to HTTP in one place by
//!   the http crate.
//! - Time comes from the injected [`Clock`], never from `OffsetDateTime::now_utc()` directly,
//!   so tests can pin it.
//! - Slow CPU work (password hashing) runs on the password hash threads ([`password`]), never
//!   on the async executor.

mod activation;
pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod bootstrap;
pub mod cache;
mod clock;
mod context;
pub mod demo;
mod deps;
mod error;
pub mod finops;
pub mod instances;
pub mod invitations;
pub mod mailer;
pub mod members;
pub mod models;
pub mod network;
pub mod organizations;
pub mod outbound;
pub mod paging;
pub mod password;
pub mod proxy;
pub mod rate_limit;
pub mod sharing;
pub mod tokens;
pub mod users;

pub use clock::{Clock, ManualClock, SystemClock};
pub use context::Ctx;
pub use deps::{Deps, RequestMeta};
pub use error::ServiceError;

/// The records use cases return (read-only data, no database handle).
pub mod records {
    pub use inventiv_persistence::repo::audit::AuditRecord;
    pub use inventiv_persistence::repo::invitations::InvitationRecord;
    pub use inventiv_persistence::repo::memberships::{MemberRow, MembershipRecord};
    pub use inventiv_persistence::repo::organizations::MyOrg;
    pub use inventiv_persistence::repo::organizations::OrgRecord;
    pub use inventiv_persistence::repo::sessions::SessionRecord;
    pub use inventiv_persistence::repo::users::UserRecord;
}
