use crate::sql;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Only the SHA-256 of a token is stored; `used_at` makes it single-use (a conditional
        // UPDATE … WHERE used_at IS NULL consumes it exactly once, even under concurrency).
        sql::exec(
            manager,
            r#"
            CREATE TABLE password_reset_tokens (
                id {uuid} NOT NULL PRIMARY KEY,
                user_id {uuid} NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                token_hash CHAR(64) NOT NULL,
                expires_at {ts} NOT NULL,
                used_at {ts} NULL,
                created_at {ts} NOT NULL
            );
            CREATE UNIQUE INDEX ux_password_reset_tokens_hash ON password_reset_tokens (token_hash);
            CREATE INDEX ix_password_reset_tokens_user_live ON password_reset_tokens (user_id) WHERE used_at IS NULL
            "#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::drop_tables(manager, &["password_reset_tokens"]).await
    }
}
