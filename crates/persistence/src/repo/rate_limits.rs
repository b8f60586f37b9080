//! `rate_limit_slots`: rate-limit attempts shared by every replica (SPEC §6 v2: limits hold
//! across replicas), counted per key and second.
//!
//! One check is one call of the database function `inventiv_rate_limit_attempt` (migration
//! `m20261130_000011`, PostgreSQL only: SQLite is one process and keeps its limits in memory),
//! which takes each key's lock (serialized per key across replicas), reads the keys' live
//! seconds, and counts the attempt against each key in order until one refuses it. A second's
//! admitted attempts all count until the last of them leaves the window, so the window slides
//! at one second's granularity and is never more lenient than the exact one (an attempt is
//! held at most a second longer), while `Retry-After` never exceeds the window: N replicas together admit at most `limit` attempts within any window,
//! not N × `limit`. A check is one round trip however many keys it counts, and reads at most
//! window + 1 rows per key whatever the limit: issue 18 found the former one-row-per-attempt
//! table, six statements per key, reading thousands of rows per sign-in under a lifted limit.

use crate::repo::{exec_sql, query_all_sql};
use crate::{Backend, Db, StoreError};

/// The granularity of the shared limits (their windows are minutes): the function's seconds.
pub const SLOT_MS: i64 = 1_000;

/// One key to count an attempt against.
#[derive(Debug, Clone, Copy)]
pub struct Key<'a> {
    /// SHA-256 of the limiter's scope and key (never the text the client sent).
    pub hash: &'a str,
    /// Attempts admitted per window.
    pub limit: usize,
    pub window_ms: i64,
}

/// The outcome of one attempt against one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Allowed,
    /// Over the limit, so not counted as admitted. `retry_after_ms`: until enough of the
    /// key's admitted attempts have left the window for one more. `first`: the first refusal
    /// since the key's last admitted attempt, across all replicas (worth one audit event).
    Refused {
        retry_after_ms: i64,
        first: bool,
    },
}

/// Counts one attempt at `now_ms` against each of `keys` in order, and stops at the first that
/// refuses it: the keys after it are not counted, and refused attempts are never counted as
/// admitted (hammering would otherwise push the window forward for ever, past the
/// `Retry-After` announced). Returns one outcome per key checked: all `Allowed`, or ending
/// with the `Refused` one. PostgreSQL only.
pub async fn attempt(db: &Db, keys: &[Key<'_>], now_ms: i64) -> Result<Vec<Attempt>, StoreError> {
    if db.backend() != Backend::Postgres {
        // A caller's bug: SQLite keeps its limits in memory.
        return Err(StoreError::Db(sea_orm::DbErr::Custom(
            "shared rate limits live in PostgreSQL".to_owned(),
        )));
    }
    let list =
        |each: &dyn Fn(&Key<'_>) -> String| keys.iter().map(each).collect::<Vec<_>>().join(",");
    let rows = query_all_sql(
        db,
        "SELECT admitted, retry_after_ms, first FROM inventiv_rate_limit_attempt($1, $2, $3, $4)",
        vec![
            // Hex digests: no commas inside.
            list(&|k| k.hash.to_owned()).into(),
            list(&|k| k.limit.to_string()).into(),
            list(&|k| k.window_ms.to_string()).into(),
            now_ms.into(),
        ],
    )
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(if row.try_get::<bool>("", "admitted")? {
                Attempt::Allowed
            } else {
                Attempt::Refused {
                    retry_after_ms: row.try_get("", "retry_after_ms")?,
                    first: row.try_get("", "first")?,
                }
            })
        })
        .collect()
}

/// Deletes the seconds that no window reads any more at `now_ms` (windows up to `window_ms`).
pub async fn prune(db: &Db, now_ms: i64, window_ms: i64) -> Result<u64, StoreError> {
    exec_sql(
        db,
        "DELETE FROM rate_limit_slots WHERE slot_ms <= $1",
        vec![(now_ms - window_ms - SLOT_MS).into()],
    )
    .await
}
