use crate::sql;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Bring-up and tear-down leases (issue 16 item 10).
///
/// The replica driving an instance through provisioning/booting (or terminating) holds a lease:
/// `worker_id` names that process (a fresh id per start) and `lease_expires_at` is pushed
/// forward while it works. A lease that lapses (its replica died) is taken over by any live
/// replica, which finishes the work: nothing waits for a restart. NULL `worker_id`: nobody holds
/// it (rows from before this migration, or not yet claimed), so any replica may claim it.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::exec(
            manager,
            r#"
            ALTER TABLE instances ADD COLUMN worker_id VARCHAR(64) NULL;
            ALTER TABLE instances ADD COLUMN lease_expires_at {ts} NULL;
            CREATE INDEX ix_instances_unsettled ON instances (status)
                WHERE status IN ('provisioning', 'booting', 'terminating')
            "#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for statement in [
            "DROP INDEX IF EXISTS ix_instances_unsettled",
            "ALTER TABLE instances DROP COLUMN lease_expires_at",
            "ALTER TABLE instances DROP COLUMN worker_id",
        ] {
            sql::exec_raw(manager, statement).await?;
        }
        Ok(())
    }
}
