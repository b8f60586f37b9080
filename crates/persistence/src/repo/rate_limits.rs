//! `rate_limit_counters`: rate-limit attempts shared by every replica (SPEC §6 v2: limits hold
//! across replicas). One row per (hashed key, time bucket); an attempt is one transaction that
//! increments the current bucket and reads the window's total, serialized per key, so N
//! replicas together admit exactly `limit` attempts per window, not N × `limit`.

use crate::repo::{exec_sql, query_all_sql, query_one_sql};
use crate::{Backend, Db, StoreError};

/// The outcome of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// Counted; `total` attempts (this one included) are now in the window.
    Allowed { total: i64 },
    /// Over the limit, so not counted. `buckets` are the window's (bucket, attempts), oldest
    /// first (when the next attempt will pass); `first` is true for the first refusal of the
    /// key in this bucket (worth an audit event, once for all replicas).
    Refused {
        buckets: Vec<(i64, i64)>,
        first: bool,
    },
}

/// Counts one attempt of `key_hash` in `bucket`, against the attempts of buckets
/// `oldest_bucket..=bucket`. Refused attempts are not counted (they would push the window
/// forward for ever under a steady hammering, past the `Retry-After` announced).
pub async fn attempt(
    db: &Db,
    key_hash: &str,
    bucket: i64,
    oldest_bucket: i64,
    limit: i64,
) -> Result<Attempt, StoreError> {
    let tx = db.begin_untracked().await?;
    if db.backend() == Backend::Postgres {
        // Per key, attempts are serialized for the whole transaction: without it, two replicas
        // incrementing two different buckets at a bucket boundary could both see limit - 1.
        // (SQLite write transactions are already serialized: BEGIN IMMEDIATE.)
        exec_sql(
            &tx,
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            vec![key_hash.into()],
        )
        .await?;
    }
    exec_sql(
        &tx,
        "INSERT INTO rate_limit_counters (key_hash, bucket, attempts, refused) VALUES ($1, $2, 1, 0) \
         ON CONFLICT (key_hash, bucket) DO UPDATE SET attempts = rate_limit_counters.attempts + 1",
        vec![key_hash.into(), bucket.into()],
    )
    .await?;
    let rows = query_all_sql(
        &tx,
        "SELECT bucket, attempts FROM rate_limit_counters \
         WHERE key_hash = $1 AND bucket >= $2 AND bucket <= $3 ORDER BY bucket",
        vec![key_hash.into(), oldest_bucket.into(), bucket.into()],
    )
    .await?;
    let mut buckets = Vec::with_capacity(rows.len());
    for row in rows {
        let attempts: i32 = row.try_get("", "attempts")?;
        buckets.push((row.try_get::<i64>("", "bucket")?, i64::from(attempts)));
    }
    let total: i64 = buckets.iter().map(|(_, n)| n).sum();
    if total <= limit {
        tx.commit().await?;
        return Ok(Attempt::Allowed { total });
    }
    let refused = query_one_sql(
        &tx,
        "UPDATE rate_limit_counters SET attempts = attempts - 1, refused = refused + 1 \
         WHERE key_hash = $1 AND bucket = $2 RETURNING refused",
        vec![key_hash.into(), bucket.into()],
    )
    .await?;
    let refused: i32 = match refused {
        Some(row) => row.try_get("", "refused")?,
        None => 1,
    };
    tx.commit().await?;
    if let Some(last) = buckets.last_mut().filter(|(b, _)| *b == bucket) {
        last.1 -= 1;
    }
    Ok(Attempt::Refused {
        buckets,
        first: refused == 1,
    })
}

/// Deletes every bucket older than `oldest_bucket` (no window reads them any more).
pub async fn prune(db: &Db, oldest_bucket: i64) -> Result<u64, StoreError> {
    exec_sql(
        db,
        "DELETE FROM rate_limit_counters WHERE bucket < $1",
        vec![oldest_bucket.into()],
    )
    .await
}
