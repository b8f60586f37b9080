use crate::sql;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Spend caps (SPEC §5.2 v2) and metering that never fails open (§5.3 v2).
///
/// - `api_keys.monthly_cap_micros`: a key's monthly ceiling (NULL: none). A share's lives on the
///   share (migration …000002).
/// - `spend_counters`: one row per capped subject (`share` or `api_key`) and calendar month
///   (UTC, `yyyymm`): `spent_micros` (charges recorded) and `leased_micros` (budget handed to
///   replicas and not yet spent or returned). A lease is granted only while
///   `spent + leased + grant <= cap`, in one statement, so the two together never pass the cap.
/// - `spend_leases`: each slice of budget a replica holds (`holder` is that process), with what
///   was charged under it. A lease its holder stops renewing lapses after
///   `proxy.reservation_ttl_seconds` and any replica returns its unspent part.
/// - `inference_usage.usage_source` (`upstream` | `estimated`), `late` (stored after its lease
///   had lapsed: a crash replay) and `clamped` (the upstream reported more than was reserved).
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::exec(
            manager,
            r#"
            ALTER TABLE api_keys ADD COLUMN monthly_cap_micros BIGINT NULL CHECK (monthly_cap_micros >= 0);
            ALTER TABLE inference_usage ADD COLUMN usage_source VARCHAR(16) NOT NULL DEFAULT 'upstream'
                CHECK (usage_source IN ('upstream', 'estimated'));
            ALTER TABLE inference_usage ADD COLUMN late {bool} NOT NULL DEFAULT FALSE;
            ALTER TABLE inference_usage ADD COLUMN clamped {bool} NOT NULL DEFAULT FALSE;
            CREATE TABLE spend_counters (
                subject_kind VARCHAR(8) NOT NULL CHECK (subject_kind IN ('share', 'api_key')),
                subject_id {uuid} NOT NULL,
                month INTEGER NOT NULL CHECK (month BETWEEN 197001 AND 999912),
                spent_micros BIGINT NOT NULL DEFAULT 0 CHECK (spent_micros >= 0),
                leased_micros BIGINT NOT NULL DEFAULT 0,
                PRIMARY KEY (subject_kind, subject_id, month)
            );
            CREATE TABLE spend_leases (
                id {uuid} NOT NULL PRIMARY KEY,
                subject_kind VARCHAR(8) NOT NULL,
                subject_id {uuid} NOT NULL,
                month INTEGER NOT NULL,
                holder VARCHAR(64) NOT NULL,
                granted_micros BIGINT NOT NULL CHECK (granted_micros >= 0),
                consumed_micros BIGINT NOT NULL DEFAULT 0,
                returned_micros BIGINT NULL,
                lapsed {bool} NOT NULL DEFAULT FALSE,
                created_at {ts} NOT NULL,
                expires_at {ts} NOT NULL,
                released_at {ts} NULL,
                FOREIGN KEY (subject_kind, subject_id, month)
                    REFERENCES spend_counters (subject_kind, subject_id, month) ON DELETE CASCADE
            );
            CREATE INDEX ix_spend_leases_live ON spend_leases (expires_at) WHERE released_at IS NULL;
            CREATE INDEX ix_spend_leases_holder ON spend_leases (holder) WHERE released_at IS NULL
            "#,
        )
        .await?;
        // What was already charged this month counts against a cap set now.
        let month = match manager.get_database_backend() {
            DbBackend::Postgres => {
                "CAST(EXTRACT(YEAR FROM occurred_at AT TIME ZONE 'UTC') * 100 + EXTRACT(MONTH FROM occurred_at AT TIME ZONE 'UTC') AS INTEGER)"
            }
            _ => "CAST(substr(occurred_at, 1, 4) || substr(occurred_at, 6, 2) AS INTEGER)",
        };
        for (kind, column) in [("share", "share_id"), ("api_key", "api_key_id")] {
            sql::exec_raw(
                manager,
                &format!(
                    "INSERT INTO spend_counters (subject_kind, subject_id, month, spent_micros) \
                     SELECT '{kind}', {column}, {month}, SUM(charged_micros) FROM inference_usage \
                     WHERE {column} IS NOT NULL GROUP BY {column}, {month}"
                ),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::drop_tables(manager, &["spend_leases", "spend_counters"]).await?;
        for statement in [
            "ALTER TABLE inference_usage DROP COLUMN clamped",
            "ALTER TABLE inference_usage DROP COLUMN late",
            "ALTER TABLE inference_usage DROP COLUMN usage_source",
            "ALTER TABLE api_keys DROP COLUMN monthly_cap_micros",
        ] {
            sql::exec_raw(manager, statement).await?;
        }
        Ok(())
    }
}
