use crate::sql;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One external endpoint (normalised `host:port`) belongs to one owner: an org, or a
        // user for their personal workspace (exactly one of the two). The primary key makes a
        // race between two owners end with one claim. The owner's deletion frees the claim.
        sql::exec(
            manager,
            r#"
            CREATE TABLE endpoint_claims (
                endpoint VARCHAR(300) NOT NULL PRIMARY KEY,
                organization_id {uuid} NULL REFERENCES organizations (id) ON DELETE CASCADE,
                user_id {uuid} NULL REFERENCES users (id) ON DELETE CASCADE,
                claimed_at {ts} NOT NULL,
                CHECK ((organization_id IS NULL AND user_id IS NOT NULL) OR (organization_id IS NOT NULL AND user_id IS NULL))
            )
            "#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::drop_tables(manager, &["endpoint_claims"]).await
    }
}
