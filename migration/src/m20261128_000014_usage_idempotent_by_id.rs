use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// A usage row's `request_id` is always the text of its `id` (a fresh id per proxied call,
/// never the client's), so the primary key already makes ingestion idempotent. The unique
/// index on `request_id` was a second one, paid on every metered request.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX ux_usage_request")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX ux_usage_request ON inference_usage (request_id)",
            )
            .await?;
        Ok(())
    }
}
