//! Persistence for the Inventiv control plane: the only crate (with `migration`) that names
//! sea-orm.
//!
//! Contract:
//! - [`Db`] connects to SQLite or PostgreSQL by URL, applies migrations, and opens write
//!   transactions ([`Tx`]) that serialize correctly on both backends (`BEGIN IMMEDIATE` on
//!   SQLite, row locks on PostgreSQL).
//! - Repositories in [`repo`] take any [`Store`] (the pool or an open transaction) and return
//!   plain records, never sea-orm models. Every function on a tenant table takes its scope
//!   right after the store: a `Scope` where personal and org rows share the table, the acting
//!   org's `OrgId` where only orgs own rows. The few that cross tenants on purpose say so in
//!   their name or documentation.
//! - Database failures become [`StoreError`]: constraint violations by *name*
//!   ([`Constraint`]), an unreachable database as [`StoreError::Unavailable`]; nothing else is
//!   interpreted here.

mod db;
mod entities;
pub mod epoch;
mod error;
pub mod repo;
mod timefmt;

pub use db::{Backend, Db, DbOptions, Store, Tx};
pub use error::{Constraint, StoreError};
pub use timefmt::{now_utc_micros, rfc3339_micros, to_utc, truncate_micros};
