//! Rate limits that hold across replicas (SPEC §6 v2, issue 16 item 9).
//!
//! On PostgreSQL every attempt is counted in `rate_limit_counters` (see
//! `inventiv_persistence::repo::rate_limits`), so N replicas together admit `limit` attempts
//! per window — not N × `limit`. On SQLite the server is one process by design
//! (docs/operations.md) and the in-process [`RateLimiter`] is exact: it stays, without a
//! database write per attempt.
//!
//! The window is cut into [`BUCKETS`] buckets; an attempt counts while its bucket is one of the
//! last `BUCKETS + 1` (the current one included), so the shared window errs on the strict side:
//! an attempt counts for at least the window and at most one bucket longer.
//!
//! Keys are bounded, normalized and hashed: the stored key is SHA-256 of the limiter's scope and
//! the key (whatever its length), so no login string is kept and every row has the same size.

use super::{RateLimiter, Verdict};
use crate::{Deps, ServiceError};
use inventiv_persistence::Backend;
use inventiv_persistence::repo::rate_limits::{self, Attempt};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicI64, Ordering};

/// Buckets per window (a 60 s window: 10 s buckets).
pub const BUCKETS: i64 = 6;

/// Keys longer than this are cut before hashing: what identifies a client (an IP, an email
/// within its 254 characters) fits, and hashing stays cheap whatever the request carried.
const MAX_KEY_BYTES: usize = 512;

/// Per-process state of the shared limits: when this replica last pruned old buckets.
#[derive(Debug, Default)]
pub struct SharedLimits {
    pruned_below: AtomicI64,
}

/// The stored form of `scope` + `key`: trimmed, lowercased, bounded, hashed.
pub fn key_hash(scope: &str, key: &str) -> String {
    let key = key.trim();
    let mut end = key.len().min(MAX_KEY_BYTES);
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    let mut hasher = Sha256::new();
    hasher.update(scope.as_bytes());
    hasher.update([0]);
    hasher.update(key[..end].to_lowercase().as_bytes());
    hex::encode(hasher.finalize())
}

/// Counts one attempt of `key` against `limiter`'s limit and window: in the database on
/// PostgreSQL (shared by every replica), in `limiter` on SQLite. `scope` separates limiters
/// whose keys look alike (`login` vs `reset` for the same `ip:…`).
pub async fn check(
    deps: &Deps,
    limiter: &RateLimiter,
    scope: &'static str,
    key: &str,
) -> Result<Verdict, ServiceError> {
    if deps.db.backend() != Backend::Postgres {
        return Ok(limiter.check(key));
    }
    let window = i64::try_from(limiter.window().as_secs())
        .unwrap_or(i64::MAX)
        .max(BUCKETS);
    let bucket_secs = window / BUCKETS;
    let now = deps.clock.now().unix_timestamp();
    let bucket = now.div_euclid(bucket_secs);
    let oldest = bucket - BUCKETS;
    let limit = i64::try_from(limiter.limit()).unwrap_or(i64::MAX);
    let state = &deps.auth.shared_limits;
    // Once per bucket per replica: drop the buckets no window reads any more.
    if state.pruned_below.fetch_max(oldest, Ordering::Relaxed) < oldest
        && let Err(err) = rate_limits::prune(&deps.db, oldest).await
    {
        tracing::warn!(error = %err, "pruning rate-limit counters failed");
    }
    match rate_limits::attempt(&deps.db, &key_hash(scope, key), bucket, oldest, limit).await? {
        Attempt::Allowed { .. } => Ok(Verdict::Allowed),
        Attempt::Refused { buckets, first } => Ok(Verdict::Limited {
            retry_after_secs: retry_after(&buckets, limit, now, bucket_secs),
            first,
        }),
    }
}

/// Seconds until an attempt would pass: until enough of the oldest buckets have left the
/// window (bucket `b` leaves it at `(b + BUCKETS + 1) × bucket_secs`) for the total to be
/// under `limit`.
fn retry_after(buckets: &[(i64, i64)], limit: i64, now: i64, bucket_secs: i64) -> u64 {
    let mut total: i64 = buckets.iter().map(|(_, n)| n).sum();
    for (bucket, attempts) in buckets {
        total -= attempts;
        if total < limit {
            let leaves = (bucket + BUCKETS + 1) * bucket_secs;
            return u64::try_from(leaves - now).unwrap_or(1).max(1);
        }
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_normalized_bounded_and_scoped() {
        assert_eq!(
            key_hash("login", " account:Alice@Example.com "),
            key_hash("login", "account:alice@example.com")
        );
        assert_ne!(key_hash("login", "ip:1"), key_hash("reset", "ip:1"));
        let huge = "x".repeat(1 << 20);
        assert_eq!(key_hash("login", &huge).len(), 64);
        assert_eq!(
            key_hash("login", &huge),
            key_hash("login", &huge[..MAX_KEY_BYTES])
        );
        // A cut inside a multi-byte character is moved back, never a panic.
        let wide = "é".repeat(MAX_KEY_BYTES);
        assert_eq!(key_hash("login", &wide).len(), 64);
    }

    #[test]
    fn retry_after_waits_for_the_oldest_buckets_needed_to_leave() {
        // 10 s buckets; 4 attempts in bucket 100, 6 in bucket 103, limit 10, now = 1035.
        let buckets = [(100, 4), (103, 6)];
        // Bucket 100 leaves at (100 + 7) × 10 = 1070: then 6 < 10.
        assert_eq!(retry_after(&buckets, 10, 1035, 10), 35);
        // With a limit of 5, bucket 103 must leave too: at 1100.
        assert_eq!(retry_after(&buckets, 5, 1035, 10), 65);
    }
}
