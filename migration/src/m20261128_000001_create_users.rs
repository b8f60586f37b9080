use crate::sql;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Email is stored lowercase by the application (domain::Email); the unique index makes
        // two accounts with one address impossible even under concurrent sign-ups.
        sql::exec(
            manager,
            r#"
            CREATE TABLE users (
                id {uuid} NOT NULL PRIMARY KEY,
                email VARCHAR(254) NOT NULL,
                username VARCHAR(64) NULL,
                first_name VARCHAR(100) NULL,
                last_name VARCHAR(100) NULL,
                password_hash VARCHAR(255) NOT NULL,
                is_platform_admin {bool} NOT NULL DEFAULT FALSE,
                disabled_at {ts} NULL,
                created_at {ts} NOT NULL,
                updated_at {ts} NOT NULL
            );
            CREATE UNIQUE INDEX ux_users_email ON users (email);
            CREATE UNIQUE INDEX ux_users_username ON users (username)
            "#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::drop_tables(manager, &["users"]).await
    }
}
