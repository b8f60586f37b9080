use crate::sql;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Offerings: an org publishes a model under its own code (`<org_slug>/<code>`).
        // UNIQUE (id, organization_id) lets shares reference (offering, provider) together, so
        // the database itself guarantees that a share's provider owns the offering.
        sql::exec(
            manager,
            r#"
            CREATE TABLE organization_models (
                id {uuid} NOT NULL PRIMARY KEY,
                organization_id {uuid} NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
                model_id {uuid} NOT NULL REFERENCES models (id) ON DELETE RESTRICT,
                code VARCHAR(64) NOT NULL,
                name VARCHAR(100) NOT NULL,
                description VARCHAR(1000) NULL,
                visibility VARCHAR(16) NOT NULL CHECK (visibility IN ('private', 'public')),
                is_active {bool} NOT NULL DEFAULT FALSE,
                default_price_input_micros_per_1k BIGINT NOT NULL CHECK (default_price_input_micros_per_1k >= 0),
                default_price_output_micros_per_1k BIGINT NOT NULL CHECK (default_price_output_micros_per_1k >= 0),
                tech_activated_by {uuid} NULL REFERENCES users (id) ON DELETE SET NULL,
                tech_activated_at {ts} NULL,
                eco_activated_by {uuid} NULL REFERENCES users (id) ON DELETE SET NULL,
                eco_activated_at {ts} NULL,
                created_at {ts} NOT NULL,
                updated_at {ts} NOT NULL
            );
            CREATE UNIQUE INDEX ux_offerings_org_code ON organization_models (organization_id, code);
            CREATE UNIQUE INDEX ux_offerings_id_org ON organization_models (id, organization_id);
            CREATE INDEX ix_offerings_org_id ON organization_models (organization_id, id)
            "#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::drop_tables(manager, &["organization_models"]).await
    }
}
