use crate::sql;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // organization_id NULL = the public catalogue. NULLs are distinct in a unique index on
        // both backends, so the public catalogue gets its own partial unique index.
        sql::exec(
            manager,
            r#"
            CREATE TABLE models (
                id {uuid} NOT NULL PRIMARY KEY,
                organization_id {uuid} NULL REFERENCES organizations (id) ON DELETE CASCADE,
                name VARCHAR(100) NOT NULL,
                model_id VARCHAR(200) NOT NULL,
                required_vram_gb INTEGER NOT NULL CHECK (required_vram_gb >= 0),
                context_length INTEGER NOT NULL CHECK (context_length > 0),
                is_active {bool} NOT NULL DEFAULT TRUE,
                created_at {ts} NOT NULL,
                updated_at {ts} NOT NULL
            );
            CREATE UNIQUE INDEX ux_models_org_model_id ON models (organization_id, model_id);
            CREATE UNIQUE INDEX ux_models_public_model_id ON models (model_id) WHERE organization_id IS NULL
            "#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::drop_tables(manager, &["models"]).await
    }
}
