use crate::sql;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Double activation on org models and org API keys (issue 19 item 1, SPEC §1, §4.3 v2).
///
/// The same four columns every activatable table has (`tech_activated_by/at`,
/// `eco_activated_by/at`; a flag is on while its `*_by` names a user). Public models and
/// personal keys keep them NULL: they need no approval.
///
/// Rows that exist when this runs are stamped as approved, so an upgrade does not cut the
/// traffic of models and keys in use (docs/decisions.md): both flags are set to one owner of
/// the row's org (the longest-standing, ties broken by id), at the row's creation time. Rows
/// created afterwards start with both flags off.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["models", "api_keys"] {
            let template = format!(
                r#"
                ALTER TABLE {table} ADD COLUMN tech_activated_by {{uuid}} NULL REFERENCES users (id) ON DELETE SET NULL;
                ALTER TABLE {table} ADD COLUMN tech_activated_at {{ts}} NULL;
                ALTER TABLE {table} ADD COLUMN eco_activated_by {{uuid}} NULL REFERENCES users (id) ON DELETE SET NULL;
                ALTER TABLE {table} ADD COLUMN eco_activated_at {{ts}} NULL;
                UPDATE {table} SET
                    tech_activated_by = (SELECT m.user_id FROM organization_memberships m
                        WHERE m.organization_id = {table}.organization_id AND m.role = 'owner'
                        ORDER BY m.created_at, m.user_id LIMIT 1),
                    tech_activated_at = created_at,
                    eco_activated_by = (SELECT m.user_id FROM organization_memberships m
                        WHERE m.organization_id = {table}.organization_id AND m.role = 'owner'
                        ORDER BY m.created_at, m.user_id LIMIT 1),
                    eco_activated_at = created_at
                WHERE organization_id IS NOT NULL
                "#
            );
            sql::exec(manager, &template).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["api_keys", "models"] {
            for column in [
                "eco_activated_at",
                "eco_activated_by",
                "tech_activated_at",
                "tech_activated_by",
            ] {
                sql::exec_raw(
                    manager,
                    &format!("ALTER TABLE {table} DROP COLUMN {column}"),
                )
                .await?;
            }
        }
        Ok(())
    }
}
