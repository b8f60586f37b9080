use crate::sql;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Refresh reuse detection and rate limits shared by replicas (SPEC §6 v2, issue 16 items 6, 9).
///
/// - `user_sessions.rotated_at`: when the session's token generation last moved (refresh or
///   workspace switch). A superseded generation presented within
///   `auth.refresh_reuse_grace_seconds` of it is a concurrent refresh (two tabs); later, a reuse.
/// - `rate_limit_counters`: attempts per limiter key and time bucket, incremented atomically by
///   every replica on PostgreSQL (a process-local limiter would give N replicas N × the limit).
///   `key_hash` is SHA-256 of the limiter's scope and its normalized key, so no login string
///   (possibly hostile, possibly huge) is stored; `bucket` is a Unix time divided by the bucket
///   length. Old buckets are pruned by the replicas as they go.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::exec(
            manager,
            r#"
            ALTER TABLE user_sessions ADD COLUMN rotated_at {ts} NULL;
            CREATE TABLE rate_limit_counters (
                key_hash VARCHAR(64) NOT NULL,
                bucket BIGINT NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
                refused INTEGER NOT NULL DEFAULT 0 CHECK (refused >= 0),
                PRIMARY KEY (key_hash, bucket)
            );
            CREATE INDEX ix_rate_limit_counters_bucket ON rate_limit_counters (bucket)
            "#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::drop_tables(manager, &["rate_limit_counters"]).await?;
        sql::exec_raw(manager, "ALTER TABLE user_sessions DROP COLUMN rotated_at").await
    }
}
