use crate::sql;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // organization_id NULL = a personal (legacy) instance of owner_user_id. RESTRICT on the
        // org: an org is deleted only after its instances are terminated (its terminated rows
        // are removed in the same transaction). RESTRICT on the model: history keeps its model.
        sql::exec(
            manager,
            r#"
            CREATE TABLE instances (
                id {uuid} NOT NULL PRIMARY KEY,
                organization_id {uuid} NULL REFERENCES organizations (id) ON DELETE RESTRICT,
                owner_user_id {uuid} NULL REFERENCES users (id) ON DELETE SET NULL,
                model_id {uuid} NOT NULL REFERENCES models (id) ON DELETE RESTRICT,
                provider VARCHAR(32) NOT NULL,
                zone VARCHAR(64) NULL,
                instance_type VARCHAR(64) NULL,
                status VARCHAR(16) NOT NULL CHECK (status IN ('provisioning', 'booting', 'ready', 'terminating', 'terminated', 'failed')),
                failure_reason VARCHAR(500) NULL,
                endpoint_url VARCHAR(2048) NULL,
                hourly_cost_micros BIGINT NOT NULL CHECK (hourly_cost_micros >= 0),
                tech_activated_by {uuid} NULL REFERENCES users (id) ON DELETE SET NULL,
                tech_activated_at {ts} NULL,
                eco_activated_by {uuid} NULL REFERENCES users (id) ON DELETE SET NULL,
                eco_activated_at {ts} NULL,
                created_at {ts} NOT NULL,
                ready_at {ts} NULL,
                terminated_at {ts} NULL,
                updated_at {ts} NOT NULL
            );
            CREATE INDEX ix_instances_org_id ON instances (organization_id, id);
            CREATE INDEX ix_instances_personal ON instances (owner_user_id, id) WHERE organization_id IS NULL;
            CREATE INDEX ix_instances_model ON instances (model_id);
            CREATE INDEX ix_instances_live_status ON instances (status) WHERE status <> 'terminated'
            "#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::drop_tables(manager, &["instances"]).await
    }
}
