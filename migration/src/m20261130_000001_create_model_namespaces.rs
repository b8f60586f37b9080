use crate::sql;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// One owner per model address (SPEC §5.1): the text before the first `/` of a callable name
/// is either an org's slug or a namespace of the public catalogue, never both. The primary key
/// on the lowercase name is what decides under concurrency (an org create and a public-model
/// create racing for one name: the second insert fails, whatever the interleaving).
///
/// `organization_id` is SET NULL when the org is deleted: the row — and with it the name —
/// stays, so a deleted org's slug is never issued again (old clients calling `<slug>/<code>`
/// can never land on a newcomer).
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::exec(
            manager,
            r#"
            CREATE TABLE model_namespaces (
                name VARCHAR(200) NOT NULL PRIMARY KEY CHECK (name = lower(name) AND name <> ''),
                kind VARCHAR(16) NOT NULL CHECK (kind IN ('org', 'public')),
                organization_id {uuid} NULL REFERENCES organizations (id) ON DELETE SET NULL,
                created_at {ts} NOT NULL,
                CHECK (kind = 'org' OR organization_id IS NULL)
            );
            CREATE INDEX ix_model_namespaces_org ON model_namespaces (organization_id)
            "#,
        )
        .await?;
        // Backfill. Where existing data already collides (an org slug equal to a public
        // model's namespace, or two spellings differing only in case), the earliest-created
        // owner keeps the name; ties go to the org (docs/decisions.md). SQLite stores
        // timestamps as text whose fraction is not fixed-width, so it orders by julianday().
        let (slash, order) = match manager.get_database_backend() {
            DbBackend::Postgres => ("strpos(model_id, '/')", "created_at"),
            _ => ("instr(model_id, '/')", "julianday(created_at)"),
        };
        let backfill = format!(
            "INSERT INTO model_namespaces (name, kind, organization_id, created_at) \
             SELECT name, kind, organization_id, created_at FROM ( \
                 SELECT c.name, c.kind, c.organization_id, c.created_at, \
                        ROW_NUMBER() OVER (PARTITION BY c.name ORDER BY {order}, c.kind) AS pick \
                 FROM ( \
                     SELECT lower(slug) AS name, 'org' AS kind, id AS organization_id, created_at \
                     FROM organizations \
                     UNION ALL \
                     SELECT lower(substr(model_id, 1, {slash} - 1)), 'public', NULL, created_at \
                     FROM models WHERE organization_id IS NULL AND {slash} > 1 \
                 ) c \
             ) ranked WHERE pick = 1"
        );
        sql::exec_raw(manager, &backfill).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::drop_tables(manager, &["model_namespaces"]).await
    }
}
