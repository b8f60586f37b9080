//! Shares become two-party contracts (SPEC §4.4 v2): statuses `proposed | active | declined |
//! revoked | expired`, a contract version the consumer accepts, one pause flag per side, the
//! consumer's monthly cap and the deadline of an unanswered proposal.
//!
//! v1 rows: `active` and `paused` shares become `proposed` (the consumer accepts them once; a
//! paused one keeps its pause as `provider_paused`) with 30 days to answer; a v1 share already
//! past its `ends_at` is stored as `expired`. `revoked` and `expired` rows stay as they are.
//!
//! SQLite cannot change a CHECK constraint in place, so the table is rebuilt following SQLite's
//! documented procedure: on one pinned connection, `PRAGMA foreign_keys=OFF` (it cannot change
//! inside a transaction), then in a transaction create the new table, copy, drop the old one,
//! rename, `PRAGMA foreign_key_check`, commit, and foreign keys back on. With foreign keys off
//! the `DROP TABLE` runs no implicit `DELETE`, so any table whose foreign key points at
//! `organization_model_shares` keeps its rows (and, after the rename, points at the new table).
//! PostgreSQL alters the table in place, inside the migration's transaction.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{DatabaseExecutor, DbBackend, sqlx};

#[derive(DeriveMigrationName)]
pub struct Migration;

const SQLITE_TABLE: &str = r#"
CREATE TABLE organization_model_shares_v2 (
    id BLOB NOT NULL PRIMARY KEY,
    provider_organization_id BLOB NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    consumer_organization_id BLOB NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    organization_model_id BLOB NOT NULL,
    status VARCHAR(16) NOT NULL CHECK (status IN ('proposed', 'active', 'declined', 'revoked', 'expired')),
    price_input_micros_per_1k BIGINT NOT NULL CHECK (price_input_micros_per_1k >= 0),
    price_output_micros_per_1k BIGINT NOT NULL CHECK (price_output_micros_per_1k >= 0),
    starts_at TEXT NOT NULL,
    ends_at TEXT NULL,
    tech_activated_by BLOB NULL REFERENCES users (id) ON DELETE SET NULL,
    tech_activated_at TEXT NULL,
    eco_activated_by BLOB NULL REFERENCES users (id) ON DELETE SET NULL,
    eco_activated_at TEXT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    contract_version BIGINT NOT NULL DEFAULT 1 CHECK (contract_version >= 1),
    accepted_version BIGINT NULL,
    accepted_at TEXT NULL,
    accepted_by BLOB NULL REFERENCES users (id) ON DELETE SET NULL,
    provider_paused INTEGER NOT NULL DEFAULT FALSE,
    consumer_paused INTEGER NOT NULL DEFAULT FALSE,
    monthly_cap_micros BIGINT NULL CHECK (monthly_cap_micros >= 0),
    proposal_expires_at TEXT NULL,
    CHECK (provider_organization_id <> consumer_organization_id),
    CHECK (status <> 'active' OR accepted_version = contract_version),
    FOREIGN KEY (organization_model_id, provider_organization_id)
        REFERENCES organization_models (id, organization_id) ON DELETE CASCADE
)"#;

/// The v1 columns, copied as they are.
const V1_COLUMNS: &str = "id, provider_organization_id, consumer_organization_id, organization_model_id, \
     price_input_micros_per_1k, price_output_micros_per_1k, starts_at, ends_at, tech_activated_by, \
     tech_activated_at, eco_activated_by, eco_activated_at, created_at, updated_at";

/// v1 → v2 status, pause flag and answer deadline; `{now}` and `{deadline}` are backend SQL.
const V1_STATUS: &str = "CASE WHEN status IN ('active', 'paused') AND ends_at IS NOT NULL AND ends_at <= {now} THEN 'expired' \
     WHEN status IN ('active', 'paused') THEN 'proposed' ELSE status END";
const V1_PAUSED: &str = "CASE WHEN status = 'paused' THEN TRUE ELSE FALSE END";
const V1_DEADLINE: &str = "CASE WHEN status IN ('active', 'paused') THEN {deadline} ELSE NULL END";

const INDEXES: &str = r#"
CREATE UNIQUE INDEX ux_shares_live ON organization_model_shares
    (provider_organization_id, consumer_organization_id, organization_model_id)
    WHERE status IN ('proposed', 'active');
CREATE INDEX ix_shares_provider ON organization_model_shares (provider_organization_id, id);
CREATE INDEX ix_shares_consumer ON organization_model_shares (consumer_organization_id, id)
"#;

fn statements(sql: &str) -> impl Iterator<Item = &str> {
    sql.split(';').map(str::trim).filter(|s| !s.is_empty())
}

fn sqlite_rebuild() -> Vec<String> {
    // Timestamps are stored as RFC 3339 text; `ends_at <= now` compares as julian days.
    let now = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";
    let deadline = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+30 days')";
    let status = V1_STATUS.replace(
        "ends_at <= {now}",
        &format!("julianday(ends_at) <= julianday({now})"),
    );
    let mut out = vec![SQLITE_TABLE.to_owned()];
    out.push(format!(
        "INSERT INTO organization_model_shares_v2 ({V1_COLUMNS}, status, provider_paused, proposal_expires_at) \
         SELECT {V1_COLUMNS}, {status}, {V1_PAUSED}, {} FROM organization_model_shares",
        V1_DEADLINE.replace("{deadline}", deadline)
    ));
    out.push("DROP TABLE organization_model_shares".to_owned());
    out.push(
        "ALTER TABLE organization_model_shares_v2 RENAME TO organization_model_shares".to_owned(),
    );
    out.extend(statements(INDEXES).map(str::to_owned));
    out
}

async fn sqlite_up(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let DatabaseExecutor::Connection(conn) = manager.get_connection() else {
        return Err(DbErr::Migration(
            "the SQLite share rebuild must run outside a transaction (it turns foreign keys off)"
                .to_owned(),
        ));
    };
    let pool = conn.get_sqlite_connection_pool();
    let mut pinned = pool
        .acquire()
        .await
        .map_err(|e| DbErr::Migration(format!("acquire a connection: {e}")))?;
    let run = |sql: String| sqlx::query(sqlx::AssertSqlSafe(sql));
    let fail = |e: sqlx::Error| DbErr::Migration(format!("rebuild organization_model_shares: {e}"));
    run("PRAGMA foreign_keys = OFF".to_owned())
        .execute(&mut *pinned)
        .await
        .map_err(fail)?;
    let result = async {
        run("BEGIN IMMEDIATE".to_owned())
            .execute(&mut *pinned)
            .await?;
        let body = async {
            for statement in sqlite_rebuild() {
                run(statement).execute(&mut *pinned).await?;
            }
            let broken = run("PRAGMA foreign_key_check".to_owned())
                .fetch_all(&mut *pinned)
                .await?;
            if !broken.is_empty() {
                return Err(sqlx::Error::Protocol(format!(
                    "{} foreign key violations after the rebuild",
                    broken.len()
                )));
            }
            Ok(())
        }
        .await;
        match body {
            Ok(()) => run("COMMIT".to_owned())
                .execute(&mut *pinned)
                .await
                .map(|_| ()),
            Err(e) => {
                let _ = run("ROLLBACK".to_owned()).execute(&mut *pinned).await;
                Err(e)
            }
        }
    }
    .await;
    // Back on whatever happened: the connection returns to the pool.
    let restored = run("PRAGMA foreign_keys = ON".to_owned())
        .execute(&mut *pinned)
        .await;
    result.map_err(fail)?;
    restored.map_err(fail)?;
    Ok(())
}

async fn postgres_up(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let status = V1_STATUS.replace("{now}", "now()");
    let deadline = V1_DEADLINE.replace("{deadline}", "now() + interval '30 days'");
    let conn = manager.get_connection();
    for statement in [
        "ALTER TABLE organization_model_shares DROP CONSTRAINT organization_model_shares_status_check".to_owned(),
        "DROP INDEX ux_shares_live".to_owned(),
        "ALTER TABLE organization_model_shares \
            ADD COLUMN contract_version BIGINT NOT NULL DEFAULT 1 CHECK (contract_version >= 1), \
            ADD COLUMN accepted_version BIGINT NULL, \
            ADD COLUMN accepted_at timestamptz NULL, \
            ADD COLUMN accepted_by uuid NULL REFERENCES users (id) ON DELETE SET NULL, \
            ADD COLUMN provider_paused boolean NOT NULL DEFAULT FALSE, \
            ADD COLUMN consumer_paused boolean NOT NULL DEFAULT FALSE, \
            ADD COLUMN monthly_cap_micros BIGINT NULL CHECK (monthly_cap_micros >= 0), \
            ADD COLUMN proposal_expires_at timestamptz NULL"
            .to_owned(),
        // One statement: every CASE reads the v1 status.
        format!(
            "UPDATE organization_model_shares SET provider_paused = {V1_PAUSED}, \
             proposal_expires_at = {deadline}, status = {status}"
        ),
        "ALTER TABLE organization_model_shares ADD CONSTRAINT organization_model_shares_status_check \
            CHECK (status IN ('proposed', 'active', 'declined', 'revoked', 'expired'))"
            .to_owned(),
        "ALTER TABLE organization_model_shares ADD CONSTRAINT organization_model_shares_accepted_check \
            CHECK (status <> 'active' OR accepted_version = contract_version)"
            .to_owned(),
    ] {
        conn.execute_unprepared(&statement).await?;
    }
    for statement in statements(INDEXES).filter(|s| s.contains("ux_shares_live")) {
        conn.execute_unprepared(statement).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        match manager.get_database_backend() {
            DbBackend::Postgres => postgres_up(manager).await,
            _ => sqlite_up(manager).await,
        }
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        // v2 statuses (proposed, declined) and the consumers' acceptances have no v1 meaning.
        Err(DbErr::Migration(
            "shares as contracts cannot be rolled back; restore a backup instead".to_owned(),
        ))
    }
}
