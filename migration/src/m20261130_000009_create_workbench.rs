use crate::sql;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The workbench (SPEC §4.8): projects and runs belong to one user in one workspace (an
        // org, or the personal workspace with organization_id NULL), like every scoped table.
        // Only an org's rows may be shared with the org (CHECK). Deleting the org or the account
        // deletes them; deleting a project keeps its runs (project_id SET NULL).
        sql::exec(
            manager,
            r#"
            CREATE TABLE workbench_projects (
                id {uuid} NOT NULL PRIMARY KEY,
                organization_id {uuid} NULL REFERENCES organizations (id) ON DELETE CASCADE,
                owner_user_id {uuid} NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                name VARCHAR(100) NOT NULL,
                description VARCHAR(2000) NULL,
                shared_with_org {bool} NOT NULL DEFAULT FALSE,
                created_at {ts} NOT NULL,
                updated_at {ts} NOT NULL,
                CHECK (organization_id IS NOT NULL OR shared_with_org = FALSE)
            );
            CREATE INDEX workbench_projects_org ON workbench_projects (organization_id, owner_user_id, id);
            CREATE INDEX workbench_projects_owner ON workbench_projects (owner_user_id, id);
            CREATE TABLE workbench_runs (
                id {uuid} NOT NULL PRIMARY KEY,
                organization_id {uuid} NULL REFERENCES organizations (id) ON DELETE CASCADE,
                owner_user_id {uuid} NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                project_id {uuid} NULL REFERENCES workbench_projects (id) ON DELETE SET NULL,
                title VARCHAR(200) NOT NULL,
                model VARCHAR(256) NOT NULL,
                shared_with_org {bool} NOT NULL DEFAULT FALSE,
                created_at {ts} NOT NULL,
                updated_at {ts} NOT NULL,
                CHECK (organization_id IS NOT NULL OR shared_with_org = FALSE)
            );
            CREATE INDEX workbench_runs_org ON workbench_runs (organization_id, owner_user_id, id);
            CREATE INDEX workbench_runs_owner ON workbench_runs (owner_user_id, id);
            CREATE INDEX workbench_runs_project ON workbench_runs (project_id);
            CREATE TABLE workbench_messages (
                id {uuid} NOT NULL PRIMARY KEY,
                run_id {uuid} NOT NULL REFERENCES workbench_runs (id) ON DELETE CASCADE,
                role VARCHAR(16) NOT NULL CHECK (role IN ('user', 'assistant')),
                content TEXT NOT NULL,
                usage_id {uuid} NULL,
                created_at {ts} NOT NULL
            );
            CREATE INDEX workbench_messages_run ON workbench_messages (run_id, id)
            "#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::drop_tables(
            manager,
            &["workbench_messages", "workbench_runs", "workbench_projects"],
        )
        .await
    }
}
