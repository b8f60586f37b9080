use crate::sql;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // A consumer org's request for a share of another org's public offering (SPEC §4.7).
        // As for shares, the composite foreign key makes "the provider owns the offering" a
        // database fact. The partial unique index allows one pending request per (consumer,
        // offering), whatever the concurrency; decided requests stay as history (a rejected one
        // is renewed by a new row). An approval points at the share it proposed.
        sql::exec(
            manager,
            r#"
            CREATE TABLE access_requests (
                id {uuid} NOT NULL PRIMARY KEY,
                provider_organization_id {uuid} NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
                consumer_organization_id {uuid} NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
                organization_model_id {uuid} NOT NULL,
                status VARCHAR(16) NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
                message VARCHAR(1000) NULL,
                requested_by_user_id {uuid} NULL REFERENCES users (id) ON DELETE SET NULL,
                decided_by_user_id {uuid} NULL REFERENCES users (id) ON DELETE SET NULL,
                decided_at {ts} NULL,
                share_id {uuid} NULL REFERENCES organization_model_shares (id) ON DELETE SET NULL,
                created_at {ts} NOT NULL,
                updated_at {ts} NOT NULL,
                CHECK (provider_organization_id <> consumer_organization_id),
                CHECK ((status = 'pending') = (decided_at IS NULL)),
                FOREIGN KEY (organization_model_id, provider_organization_id)
                    REFERENCES organization_models (id, organization_id) ON DELETE CASCADE
            );
            CREATE UNIQUE INDEX ux_access_requests_pending ON access_requests
                (consumer_organization_id, organization_model_id)
                WHERE status = 'pending';
            CREATE INDEX ix_access_requests_provider ON access_requests (provider_organization_id, id);
            CREATE INDEX ix_access_requests_consumer ON access_requests (consumer_organization_id, organization_model_id, id)
            "#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::drop_tables(manager, &["access_requests"]).await
    }
}
