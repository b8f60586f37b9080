use crate::sql;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The links a resend replaced: a click on an old one is told that a newer link was
        // sent (410 `invitation_superseded`) instead of "no such invitation". Only the hash is
        // kept, like the live token's; the rows go with their invitation.
        sql::exec(
            manager,
            r#"
            CREATE TABLE superseded_invitation_links (
                token_hash VARCHAR(64) NOT NULL PRIMARY KEY,
                invitation_id {uuid} NOT NULL REFERENCES organization_invitations (id) ON DELETE CASCADE,
                superseded_at {ts} NOT NULL
            )
            "#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::drop_tables(manager, &["superseded_invitation_links"]).await
    }
}
