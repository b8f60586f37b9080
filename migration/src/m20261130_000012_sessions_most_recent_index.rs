use crate::sql;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// A sign-in opens its session in the workspace of the user's most recently used session,
/// revoked or not (`sessions::most_recent`). The only index on `user_sessions (user_id, …)`
/// was partial (live sessions), which that query cannot use, so every sign-in scanned the
/// whole table (issue 18: found by profiling the sign-in storm).
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::exec(
            manager,
            "CREATE INDEX ix_user_sessions_user_recent ON user_sessions (user_id, last_used_at)",
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::exec_raw(manager, "DROP INDEX ix_user_sessions_user_recent").await
    }
}
