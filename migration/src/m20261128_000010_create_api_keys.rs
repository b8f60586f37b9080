use crate::sql;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Only the SHA-256 of a key is stored (unique: the lookup on every request); the prefix
        // is kept for recognition. organization_id NULL = a personal key of owner_user_id.
        sql::exec(
            manager,
            r#"
            CREATE TABLE api_keys (
                id {uuid} NOT NULL PRIMARY KEY,
                organization_id {uuid} NULL REFERENCES organizations (id) ON DELETE CASCADE,
                owner_user_id {uuid} NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                name VARCHAR(100) NOT NULL,
                key_prefix VARCHAR(32) NOT NULL,
                key_hash CHAR(64) NOT NULL,
                allowed_models {json} NULL,
                expires_at {ts} NULL,
                last_used_at {ts} NULL,
                revoked_at {ts} NULL,
                created_at {ts} NOT NULL
            );
            CREATE UNIQUE INDEX ux_api_keys_hash ON api_keys (key_hash);
            CREATE INDEX ix_api_keys_org_id ON api_keys (organization_id, id);
            CREATE INDEX ix_api_keys_personal ON api_keys (owner_user_id, id) WHERE organization_id IS NULL
            "#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::drop_tables(manager, &["api_keys"]).await
    }
}
