use crate::sql;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Refresh reuse detection and rate limits shared by replicas (SPEC §6 v2, issue 16 items 6, 9).
///
/// - `user_sessions.rotated_at`: when the session's token generation last moved (refresh or
///   workspace switch). A superseded generation presented within
///   `auth.refresh_reuse_grace_seconds` of it is a concurrent refresh (two tabs); later, a reuse.
/// - `rate_limit_attempts`: the attempts each limiter key made within its window, written by
///   every replica on PostgreSQL (a process-local limiter would give N replicas N × the limit).
///   `key_hash` is SHA-256 of the limiter's scope and its normalized key, so no login string
///   (possibly hostile, possibly huge) is stored; `at_ms` is Unix milliseconds. Admitted attempts
///   have `refused` false (at most `limit` per key and window); a refused row marks the first
///   refusal of a burst. Rows older than the window are pruned by the replicas as they go.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::exec(
            manager,
            r#"
            ALTER TABLE user_sessions ADD COLUMN rotated_at {ts} NULL;
            CREATE TABLE rate_limit_attempts (
                id {serial_pk},
                key_hash VARCHAR(64) NOT NULL,
                at_ms BIGINT NOT NULL,
                refused {bool} NOT NULL DEFAULT FALSE
            );
            CREATE INDEX ix_rate_limit_attempts_key ON rate_limit_attempts (key_hash, at_ms);
            CREATE INDEX ix_rate_limit_attempts_at ON rate_limit_attempts (at_ms)
            "#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::drop_tables(manager, &["rate_limit_attempts"]).await?;
        sql::exec_raw(manager, "ALTER TABLE user_sessions DROP COLUMN rotated_at").await
    }
}
