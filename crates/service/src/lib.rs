//! Use cases of the Inventiv control plane.
//!
//! Contract:
//! - Each use case takes `&Deps` first, then, when someone authenticated is acting, the request
//!   context [`Ctx`] (principal, request facts, the clock reading). It starts with the policy
//!   check (`inventiv_domain::authorize`, or [`Ctx::current_org`] for org actions), then runs
//!   ONE write transaction holding the repository calls and the audit event
//!   ([`Ctx::record`]), and commits.
//! - No HTTP types here (no actix) and no HTTP statuses: errors are [`ServiceError`] kinds
//!   carrying an `inventiv_domain::ErrorCode`, mapped to HTTP in one place by the http crate.
//! - Use cases return this crate's own views (e.g. [`instances::Instance`]), never a
//!   persistence record; the database stays inside this crate ([`Deps`]).
//! - Time comes from the injected [`Clock`], never from `OffsetDateTime::now_utc()` directly,
//!   so tests can pin it.
//! - Slow CPU work (password hashing) runs on the password hash threads ([`password`]), never
//!   on the async executor.

pub mod access_requests;
mod accounts;
mod activation;
pub mod api_keys;
pub mod audit;
pub mod audit_log;
pub mod auth;
pub mod bootstrap;
pub mod cache;
mod clock;
mod context;
pub mod demo;
mod deps;
mod error;
pub mod finops;
pub mod health;
pub mod instances;
pub mod invitations;
pub mod mailer;
pub mod marketplace;
pub mod members;
pub mod models;
pub mod network;
pub mod offerings;
pub mod organizations;
pub mod outbound;
pub mod paging;
pub mod password;
pub mod proxy;
pub mod rate_limit;
pub mod shares;
pub mod tokens;
pub mod users;
pub mod workbench;

pub use clock::{Clock, ManualClock, SystemClock};
pub use context::Ctx;
pub use deps::{Deps, RequestMeta};
pub use error::ServiceError;
