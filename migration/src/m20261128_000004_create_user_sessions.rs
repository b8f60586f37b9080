use crate::sql;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One row per login: the session, not the user, holds the workspace. Partial indexes
        // cover only live rows (revoked ones are kept for the audit trail but never searched).
        sql::exec(
            manager,
            r#"
            CREATE TABLE user_sessions (
                id {uuid} NOT NULL PRIMARY KEY,
                user_id {uuid} NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                current_organization_id {uuid} NULL REFERENCES organizations (id) ON DELETE SET NULL,
                organization_role VARCHAR(16) NULL CHECK (organization_role IN ('owner', 'admin', 'manager', 'user')),
                token_generation INTEGER NOT NULL DEFAULT 0,
                ip VARCHAR(64) NULL,
                user_agent VARCHAR(512) NULL,
                created_at {ts} NOT NULL,
                last_used_at {ts} NOT NULL,
                idle_expires_at {ts} NOT NULL,
                expires_at {ts} NOT NULL,
                revoked_at {ts} NULL,
                revoked_reason VARCHAR(64) NULL
            );
            CREATE INDEX ix_user_sessions_user_live ON user_sessions (user_id, last_used_at) WHERE revoked_at IS NULL;
            CREATE INDEX ix_user_sessions_org_live ON user_sessions (current_organization_id) WHERE revoked_at IS NULL
            "#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::drop_tables(manager, &["user_sessions"]).await
    }
}
