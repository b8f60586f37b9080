use crate::sql;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // organization_id and actor ids carry no foreign key on purpose: the trail must outlive
        // the org or user it speaks of (a cascade would also collide with the append-only rule).
        // chain_key is the org id (text) or 'platform'; chain_seq orders one chain without gaps.
        sql::exec(
            manager,
            r#"
            CREATE TABLE audit_events (
                id {serial_pk},
                chain_key VARCHAR(64) NOT NULL,
                chain_seq BIGINT NOT NULL,
                organization_id {uuid} NULL,
                actor_user_id {uuid} NULL,
                actor_session_id {uuid} NULL,
                action VARCHAR(64) NOT NULL,
                target_type VARCHAR(64) NULL,
                target_id VARCHAR(64) NULL,
                before_state {json} NULL,
                after_state {json} NULL,
                request_id VARCHAR(64) NULL,
                ip VARCHAR(64) NULL,
                occurred_at {ts} NOT NULL,
                prev_hash CHAR(64) NOT NULL,
                hash CHAR(64) NOT NULL
            );
            CREATE UNIQUE INDEX ux_audit_events_chain ON audit_events (chain_key, chain_seq);
            CREATE INDEX ix_audit_events_org_id ON audit_events (organization_id, id);
            CREATE TABLE audit_chain_heads (
                chain_key VARCHAR(64) NOT NULL PRIMARY KEY,
                last_seq BIGINT NOT NULL,
                last_hash CHAR(64) NOT NULL
            )
            "#,
        )
        .await?;
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                sql::exec_raw(
                    manager,
                    "CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ \
                     BEGIN RAISE EXCEPTION 'audit_events is append-only'; END $$",
                )
                .await?;
                sql::exec_raw(
                    manager,
                    "CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events \
                     FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()",
                )
                .await?;
                sql::exec_raw(
                    manager,
                    "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events \
                     FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()",
                )
                .await
            }
            _ => {
                for op in ["UPDATE", "DELETE"] {
                    sql::exec_raw(
                        manager,
                        &format!(
                            "CREATE TRIGGER audit_events_no_{} BEFORE {op} ON audit_events \
                             BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END",
                            op.to_lowercase()
                        ),
                    )
                    .await?;
                }
                Ok(())
            }
        }
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::drop_tables(manager, &["audit_chain_heads", "audit_events"]).await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            sql::exec_raw(
                manager,
                "DROP FUNCTION IF EXISTS audit_events_append_only()",
            )
            .await?;
        }
        Ok(())
    }
}
