use crate::sql;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // A provider → consumer contract for one offering. The composite foreign key makes
        // "the provider owns the offering" a database fact; the partial unique index allows one
        // live (active or paused) share per (provider, consumer, offering).
        sql::exec(
            manager,
            r#"
            CREATE TABLE organization_model_shares (
                id {uuid} NOT NULL PRIMARY KEY,
                provider_organization_id {uuid} NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
                consumer_organization_id {uuid} NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
                organization_model_id {uuid} NOT NULL,
                status VARCHAR(16) NOT NULL CHECK (status IN ('active', 'paused', 'revoked', 'expired')),
                price_input_micros_per_1k BIGINT NOT NULL CHECK (price_input_micros_per_1k >= 0),
                price_output_micros_per_1k BIGINT NOT NULL CHECK (price_output_micros_per_1k >= 0),
                starts_at {ts} NOT NULL,
                ends_at {ts} NULL,
                tech_activated_by {uuid} NULL REFERENCES users (id) ON DELETE SET NULL,
                tech_activated_at {ts} NULL,
                eco_activated_by {uuid} NULL REFERENCES users (id) ON DELETE SET NULL,
                eco_activated_at {ts} NULL,
                created_at {ts} NOT NULL,
                updated_at {ts} NOT NULL,
                CHECK (provider_organization_id <> consumer_organization_id),
                FOREIGN KEY (organization_model_id, provider_organization_id)
                    REFERENCES organization_models (id, organization_id) ON DELETE CASCADE
            );
            CREATE UNIQUE INDEX ux_shares_live ON organization_model_shares
                (provider_organization_id, consumer_organization_id, organization_model_id)
                WHERE status IN ('active', 'paused');
            CREATE INDEX ix_shares_provider ON organization_model_shares (provider_organization_id, id);
            CREATE INDEX ix_shares_consumer ON organization_model_shares (consumer_organization_id, id)
            "#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::drop_tables(manager, &["organization_model_shares"]).await
    }
}
