use crate::sql;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Shared rate limits counted per second instead of per attempt (issue 18 item 2).
///
/// `rate_limit_attempts` held one row per admitted attempt, so a check read every attempt of
/// its key within the window: O(limit) rows per sign-in, thousands under a lifted limit.
/// `rate_limit_slots` holds one row per key and second in which it was used: how many
/// attempts were `admitted` in that second and when the last of them was (they all count until
/// it leaves the window), and when an attempt was last refused in it (so the next refusal of a
/// burst is not taken for its first). A key has at most 61 live rows for a one-minute window,
/// whatever its limit. The attempts of the old table are dropped: they live
/// one minute, so an upgrade forgets at most one minute of counts.
///
/// On PostgreSQL (the only backend whose replicas share limits) a check is one call of
/// `inventiv_rate_limit_attempt`: locks, reads and writes in one round trip, where the first
/// version took six per limit.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::exec(
            manager,
            r#"
            CREATE TABLE rate_limit_slots (
                key_hash VARCHAR(64) NOT NULL,
                slot_ms BIGINT NOT NULL,
                admitted BIGINT NOT NULL,
                last_admitted_ms BIGINT NULL,
                last_refused_ms BIGINT NULL,
                PRIMARY KEY (key_hash, slot_ms)
            );
            CREATE INDEX ix_rate_limit_slots_slot ON rate_limit_slots (slot_ms);
            DROP TABLE rate_limit_attempts
            "#,
        )
        .await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            sql::exec_raw(manager, ATTEMPT_FUNCTION).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            sql::exec_raw(
                manager,
                "DROP FUNCTION IF EXISTS inventiv_rate_limit_attempt(text, text, text, bigint)",
            )
            .await?;
        }
        sql::drop_tables(manager, &["rate_limit_slots"]).await?;
        sql::exec(
            manager,
            r#"
            CREATE TABLE rate_limit_attempts (
                id {serial_pk},
                key_hash VARCHAR(64) NOT NULL,
                at_ms BIGINT NOT NULL,
                refused {bool} NOT NULL DEFAULT FALSE
            );
            CREATE INDEX ix_rate_limit_attempts_key ON rate_limit_attempts (key_hash, at_ms);
            CREATE INDEX ix_rate_limit_attempts_at ON rate_limit_attempts (at_ms)
            "#,
        )
        .await
    }
}

/// One attempt against each key of `keys` in order (comma-separated key hashes, with their
/// `limits` and `windows` in milliseconds), at `now_ms`, stopping at the first that refuses it.
/// One row per key checked: `admitted`, and for the refusing key when the next attempt passes
/// and whether this is the first refusal since its last admission.
///
/// - Each key's advisory lock is taken first (sorted, so two checks cannot deadlock), then each
///   statement reads with a fresh snapshot (a volatile function in READ COMMITTED): what other
///   replicas committed before the lock was granted is counted.
/// - A second's admitted attempts all count until the last of them leaves the window: a sliding
///   window at one second's granularity, never more lenient than the exact one.
/// - The commit does not wait for the WAL flush (`synchronous_commit` off for this transaction
///   only): a crash may forget the last milliseconds of counts, which is worth less than an
///   fsync per sign-in.
const ATTEMPT_FUNCTION: &str = r#"
CREATE FUNCTION inventiv_rate_limit_attempt(keys text, limits text, windows text, now_ms bigint)
RETURNS TABLE (admitted boolean, retry_after_ms bigint, first boolean)
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    ks text[] := string_to_array(keys, ',');
    ls bigint[] := string_to_array(limits, ',')::bigint[];
    ws bigint[] := string_to_array(windows, ',')::bigint[];
    slot bigint := now_ms - (now_ms % 1000);
    k text;
    i int;
    total bigint;
    last_admitted bigint;
    last_refused bigint;
    passes_at bigint;
    s record;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    FOR k IN SELECT DISTINCT u FROM unnest(ks) AS u ORDER BY u LOOP
        PERFORM pg_advisory_xact_lock(hashtextextended(k, 0));
    END LOOP;
    FOR i IN 1 .. coalesce(array_length(ks, 1), 0) LOOP
        SELECT coalesce(sum(r.admitted), 0), max(r.last_admitted_ms)
          INTO total, last_admitted
          FROM rate_limit_slots r
         WHERE r.key_hash = ks[i] AND r.slot_ms > now_ms - ws[i] - 1000
           AND r.last_admitted_ms > now_ms - ws[i];
        IF total < ls[i] THEN
            INSERT INTO rate_limit_slots AS r (key_hash, slot_ms, admitted, last_admitted_ms)
            VALUES (ks[i], slot, 1, now_ms)
            ON CONFLICT (key_hash, slot_ms) DO UPDATE
               SET admitted = r.admitted + 1,
                   last_admitted_ms = greatest(r.last_admitted_ms, now_ms);
            admitted := true; retry_after_ms := NULL; first := NULL;
            RETURN NEXT;
            CONTINUE;
        END IF;
        -- The oldest seconds leave first; one more passes once fewer than the limit are left.
        passes_at := now_ms;
        FOR s IN SELECT r.admitted AS n, r.last_admitted_ms AS t FROM rate_limit_slots r
                  WHERE r.key_hash = ks[i] AND r.slot_ms > now_ms - ws[i] - 1000
                    AND r.last_admitted_ms > now_ms - ws[i]
                  ORDER BY r.slot_ms LOOP
            EXIT WHEN total < ls[i];
            total := total - s.n;
            passes_at := s.t + ws[i];
        END LOOP;
        SELECT max(r.last_refused_ms) INTO last_refused FROM rate_limit_slots r
         WHERE r.key_hash = ks[i] AND r.slot_ms > now_ms - ws[i] - 1000;
        -- The first refusal since the last admission (one at the same millisecond is after it).
        first := last_refused IS NULL OR last_refused < last_admitted;
        IF first THEN
            -- Marked no earlier than the last admission: the lock orders the checks, but each
            -- replica read its clock before waiting for it, so this refusal's `now_ms` may be
            -- older than that of an admission counted before it.
            INSERT INTO rate_limit_slots AS r (key_hash, slot_ms, admitted, last_refused_ms)
            VALUES (ks[i], slot, 0, greatest(now_ms, last_admitted))
            ON CONFLICT (key_hash, slot_ms) DO UPDATE
               SET last_refused_ms = greatest(r.last_refused_ms, now_ms, last_admitted);
        END IF;
        admitted := false; retry_after_ms := passes_at - now_ms;
        RETURN NEXT;
        RETURN;
    END LOOP;
END
$fn$
"#;
