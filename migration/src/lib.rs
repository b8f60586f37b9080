//! Schema migrations for the Inventiv control plane (sea-orm-migration).
//!
//! Contract: every migration runs unchanged on SQLite and PostgreSQL. Tables are written as
//! plain SQL templates (see [`sql`]) so that what the database enforces — CHECK constraints,
//! `ON DELETE` actions, partial unique indexes, append-only triggers — is visible in one place
//! and identical on both backends; only column types and triggers differ per backend.
//! One file per migration (`DeriveMigrationName` names a migration after its file).

pub use sea_orm_migration::prelude::*;

mod m20261128_000001_create_users;
mod m20261128_000002_create_organizations;
mod m20261128_000003_create_organization_memberships;
mod m20261128_000004_create_user_sessions;
mod m20261128_000005_create_audit_events;
mod m20261128_000006_create_password_reset_tokens;
mod m20261128_000007_create_organization_invitations;
mod m20261128_000008_create_models;
mod m20261128_000009_create_instances;
mod m20261128_000010_create_api_keys;
mod m20261128_000011_create_organization_models;
mod m20261128_000012_create_organization_model_shares;
mod m20261128_000013_create_inference_usage;
mod m20261128_000014_usage_idempotent_by_id;
mod m20261130_000001_create_model_namespaces;
mod m20261130_000002_shares_as_contracts;
mod m20261130_000003_create_endpoint_claims;
mod m20261130_000004_spend_caps_and_metering;
mod m20261130_000005_refresh_reuse_and_shared_limits;
mod m20261130_000006_instance_leases;
mod m20261130_000007_models_and_keys_activation;
mod m20261130_000008_create_access_requests;
mod m20261130_000009_create_workbench;
mod m20261130_000010_superseded_invitation_links;
mod m20261130_000011_rate_limit_slots;
mod m20261130_000012_sessions_most_recent_index;
pub mod sql;

/// The ordered list of migrations.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261128_000001_create_users::Migration),
            Box::new(m20261128_000002_create_organizations::Migration),
            Box::new(m20261128_000003_create_organization_memberships::Migration),
            Box::new(m20261128_000004_create_user_sessions::Migration),
            Box::new(m20261128_000005_create_audit_events::Migration),
            Box::new(m20261128_000006_create_password_reset_tokens::Migration),
            Box::new(m20261128_000007_create_organization_invitations::Migration),
            Box::new(m20261128_000008_create_models::Migration),
            Box::new(m20261128_000009_create_instances::Migration),
            Box::new(m20261128_000010_create_api_keys::Migration),
            Box::new(m20261128_000011_create_organization_models::Migration),
            Box::new(m20261128_000012_create_organization_model_shares::Migration),
            Box::new(m20261128_000013_create_inference_usage::Migration),
            Box::new(m20261128_000014_usage_idempotent_by_id::Migration),
            Box::new(m20261130_000001_create_model_namespaces::Migration),
            Box::new(m20261130_000002_shares_as_contracts::Migration),
            Box::new(m20261130_000003_create_endpoint_claims::Migration),
            Box::new(m20261130_000004_spend_caps_and_metering::Migration),
            Box::new(m20261130_000005_refresh_reuse_and_shared_limits::Migration),
            Box::new(m20261130_000006_instance_leases::Migration),
            Box::new(m20261130_000007_models_and_keys_activation::Migration),
            Box::new(m20261130_000008_create_access_requests::Migration),
            Box::new(m20261130_000009_create_workbench::Migration),
            Box::new(m20261130_000010_superseded_invitation_links::Migration),
            Box::new(m20261130_000011_rate_limit_slots::Migration),
            Box::new(m20261130_000012_sessions_most_recent_index::Migration),
        ]
    }
}
