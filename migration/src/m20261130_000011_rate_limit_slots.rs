use crate::sql;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Shared rate limits counted per second instead of per attempt (issue 18 item 2).
///
/// `rate_limit_attempts` held one row per admitted attempt, so a check read every attempt of
/// its key within the window: O(limit) rows per sign-in, thousands under a lifted limit.
/// `rate_limit_slots` holds one row per key and second in which it was used: how many
/// attempts were `admitted` in that second and when the last of them was (they all count until
/// it leaves the window), and when an attempt was last refused in it (so the next refusal of a
/// burst is not taken for its first). A key has at most 61 live rows for a one-minute window,
/// whatever its limit. The attempts of the old table are dropped: they live
/// one minute, so an upgrade forgets at most one minute of counts.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::exec(
            manager,
            r#"
            CREATE TABLE rate_limit_slots (
                key_hash VARCHAR(64) NOT NULL,
                slot_ms BIGINT NOT NULL,
                admitted BIGINT NOT NULL,
                last_admitted_ms BIGINT NULL,
                last_refused_ms BIGINT NULL,
                PRIMARY KEY (key_hash, slot_ms)
            );
            CREATE INDEX ix_rate_limit_slots_slot ON rate_limit_slots (slot_ms);
            DROP TABLE rate_limit_attempts
            "#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::drop_tables(manager, &["rate_limit_slots"]).await?;
        sql::exec(
            manager,
            r#"
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
}
