//! `rate_limit_attempts`: rate-limit attempts shared by every replica (SPEC §6 v2: limits hold
//! across replicas). An attempt is one transaction, serialized per key, that counts the key's
//! admitted attempts within the window and records this one if it is under the limit — an
//! exact sliding window, the same as the in-process limiter's, so N replicas together admit
//! exactly `limit` attempts per window, not N × `limit`.

use crate::repo::{exec_sql, query_all_sql, query_one_sql};
use crate::{Backend, Db, StoreError};

/// The outcome of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Allowed,
    /// Over the limit, so not recorded as admitted. `retry_after_ms`: until the oldest attempt
    /// that keeps the key at its limit leaves the window. `first`: the first refusal since the
    /// key's last admitted attempt, across all replicas (worth one audit event).
    Refused {
        retry_after_ms: i64,
        first: bool,
    },
}

/// Counts one attempt of `key_hash` at `now_ms` against `limit` admitted attempts per
/// `window_ms`. Refused attempts are not counted (hammering would otherwise push the window
/// forward for ever, past the `Retry-After` announced).
pub async fn attempt(
    db: &Db,
    key_hash: &str,
    now_ms: i64,
    window_ms: i64,
    limit: usize,
) -> Result<Attempt, StoreError> {
    let since = now_ms.saturating_sub(window_ms);
    let tx = db.begin_write().await?;
    if db.backend() == Backend::Postgres {
        // Per key, attempts are serialized for the whole transaction: otherwise two replicas
        // could both count limit - 1 and both admit. (SQLite write transactions are already
        // serialized: BEGIN IMMEDIATE.)
        exec_sql(
            &tx,
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            vec![key_hash.into()],
        )
        .await?;
    }
    let admitted: Vec<i64> = query_all_sql(
        &tx,
        "SELECT at_ms FROM rate_limit_attempts \
         WHERE key_hash = $1 AND refused = FALSE AND at_ms > $2 ORDER BY at_ms",
        vec![key_hash.into(), since.into()],
    )
    .await?
    .into_iter()
    .map(|row| row.try_get::<i64>("", "at_ms"))
    .collect::<Result<_, _>>()?;
    if admitted.len() < limit {
        // This key's expired rows go now: a key keeps at most `limit` admitted rows.
        exec_sql(
            &tx,
            "DELETE FROM rate_limit_attempts WHERE key_hash = $1 AND at_ms <= $2",
            vec![key_hash.into(), since.into()],
        )
        .await?;
        exec_sql(
            &tx,
            "INSERT INTO rate_limit_attempts (key_hash, at_ms, refused) VALUES ($1, $2, FALSE)",
            vec![key_hash.into(), now_ms.into()],
        )
        .await?;
        tx.commit().await?;
        return Ok(Attempt::Allowed);
    }
    // The next attempt passes when all but `limit - 1` of the admitted ones have left.
    let oldest_blocking = admitted[admitted.len() - limit];
    let last_admitted = admitted.last().copied().unwrap_or(since);
    let already = query_one_sql(
        &tx,
        "SELECT 1 AS found FROM rate_limit_attempts \
         WHERE key_hash = $1 AND refused = TRUE AND at_ms >= $2 LIMIT 1",
        vec![key_hash.into(), last_admitted.into()],
    )
    .await?
    .is_some();
    if !already {
        // One refused row per burst (so at most one per admitted attempt): the marker that
        // the next refusal is not the first.
        exec_sql(
            &tx,
            "INSERT INTO rate_limit_attempts (key_hash, at_ms, refused) VALUES ($1, $2, TRUE)",
            vec![key_hash.into(), now_ms.into()],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Attempt::Refused {
        retry_after_ms: oldest_blocking + window_ms - now_ms,
        first: !already,
    })
}

/// Deletes every attempt made at or before `before_ms` (no window reads them any more).
pub async fn prune(db: &Db, before_ms: i64) -> Result<u64, StoreError> {
    exec_sql(
        db,
        "DELETE FROM rate_limit_attempts WHERE at_ms <= $1",
        vec![before_ms.into()],
    )
    .await
}
