use crate::sql;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One *pending* invitation per (org, email): the partial unique index makes a second one
        // impossible even under concurrent requests. Expiry is computed on read; a stale
        // 'pending' row is marked 'expired' before a new invitation for the address is stored.
        sql::exec(
            manager,
            r#"
            CREATE TABLE organization_invitations (
                id {uuid} NOT NULL PRIMARY KEY,
                organization_id {uuid} NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
                email VARCHAR(254) NOT NULL,
                role VARCHAR(16) NOT NULL CHECK (role IN ('owner', 'admin', 'manager', 'user')),
                token_hash CHAR(64) NOT NULL,
                status VARCHAR(16) NOT NULL CHECK (status IN ('pending', 'accepted', 'revoked', 'expired')),
                invited_by_user_id {uuid} NULL REFERENCES users (id) ON DELETE SET NULL,
                expires_at {ts} NOT NULL,
                accepted_at {ts} NULL,
                accepted_by_user_id {uuid} NULL REFERENCES users (id) ON DELETE SET NULL,
                revoked_at {ts} NULL,
                created_at {ts} NOT NULL,
                updated_at {ts} NOT NULL
            );
            CREATE UNIQUE INDEX ux_invitations_token_hash ON organization_invitations (token_hash);
            CREATE UNIQUE INDEX ux_invitations_pending_email ON organization_invitations (organization_id, email) WHERE status = 'pending';
            CREATE INDEX ix_invitations_org_created ON organization_invitations (organization_id, created_at)
            "#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::drop_tables(manager, &["organization_invitations"]).await
    }
}
