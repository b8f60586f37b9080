use crate::sql;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::exec(
            manager,
            r#"
            CREATE TABLE organizations (
                id {uuid} NOT NULL PRIMARY KEY,
                name VARCHAR(100) NOT NULL,
                slug VARCHAR(64) NOT NULL,
                created_by_user_id {uuid} NULL REFERENCES users (id) ON DELETE SET NULL,
                require_distinct_activators {bool} NOT NULL DEFAULT FALSE,
                created_at {ts} NOT NULL,
                updated_at {ts} NOT NULL
            );
            CREATE UNIQUE INDEX ux_organizations_slug ON organizations (slug)
            "#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::drop_tables(manager, &["organizations"]).await
    }
}
