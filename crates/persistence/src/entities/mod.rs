//! sea-orm entities, one per table. Private to this crate: a `Model` never leaves it
//! (repositories convert to records of domain types).

pub mod audit_events;
pub mod memberships;
pub mod organizations;
pub mod user_sessions;
pub mod users;
