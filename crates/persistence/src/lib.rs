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
//! - A repository function that changes a row some read cache is built from takes the open
//!   [`Tx`], never the pool, and marks the [`Tag`]s of what it changed on it; the commit
//!   publishes them, here and to the other replicas ([`tags`], [`versions`], [`listener`]).
//! - Database failures become [`StoreError`]: constraint violations by *name*
//!   ([`Constraint`]), an unreachable database as [`StoreError::Unavailable`]; nothing else is
//!   interpreted here.

mod connect_url;
mod db;
mod entities;
mod error;
pub mod listener;
pub mod repo;
pub mod tags;
mod timefmt;
pub mod versions;

pub use db::{Backend, Db, DbOptions, Store, Tx};
pub use error::{Constraint, StoreError};
pub use tags::Tag;
pub use timefmt::{now_utc_micros, rfc3339_micros, to_utc, truncate_micros};
pub use versions::Stamp;
