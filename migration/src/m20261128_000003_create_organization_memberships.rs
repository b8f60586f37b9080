use crate::sql;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // (organization_id, role) serves the last-owner check: the owners of one org are read
        // (and locked on PostgreSQL) through it.
        sql::exec(
            manager,
            r#"
            CREATE TABLE organization_memberships (
                organization_id {uuid} NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
                user_id {uuid} NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                role VARCHAR(16) NOT NULL CHECK (role IN ('owner', 'admin', 'manager', 'user')),
                created_at {ts} NOT NULL,
                PRIMARY KEY (organization_id, user_id)
            );
            CREATE INDEX ix_memberships_user_org ON organization_memberships (user_id, organization_id);
            CREATE INDEX ix_memberships_org_role ON organization_memberships (organization_id, role)
            "#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::drop_tables(manager, &["organization_memberships"]).await
    }
}
