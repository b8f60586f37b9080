//! Rate limits that hold across replicas (SPEC §6 v2, issue 16 item 9).
//!
//! On PostgreSQL every attempt is counted in `rate_limit_slots` (see
//! `inventiv_persistence::repo::rate_limits`): the same sliding window as the in-process
//! [`RateLimiter`] at one second's granularity, but one for all replicas, so N replicas
//! together admit `limit` attempts per window — not N × `limit`. On SQLite the server is one process by design
//! (docs/operations.md) and the in-process limiter is exact: it stays, without a database write
//! per attempt.
//!
//! Keys are bounded, normalized and hashed: the stored key is SHA-256 of the limiter's scope and
//! the key (whatever its length), so no login string is kept and every row has the same size.

use super::{RateLimiter, Verdict};
use crate::{Deps, ServiceError};
use inventiv_persistence::Backend;
use inventiv_persistence::repo::rate_limits::{self, Attempt, Key};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicI64, Ordering};

/// Each replica deletes expired attempts at most this often.
const PRUNE_EVERY_MS: i64 = 10_000;

/// Keys longer than this are cut before hashing: what identifies a client (an IP, an email
/// within its 254 characters) fits, and hashing stays cheap whatever the request carried.
const MAX_KEY_BYTES: usize = 512;

/// Per-process state of the shared limits: when this replica last pruned expired attempts.
#[derive(Debug, Default)]
pub struct SharedLimits {
    pruned_at_ms: AtomicI64,
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

/// One limit an attempt is counted against.
#[derive(Debug, Clone, Copy)]
pub struct Limit<'a> {
    pub limiter: &'a RateLimiter,
    /// Separates limiters whose keys look alike (`login` vs `reset` for the same `ip:…`).
    pub scope: &'static str,
    pub key: &'a str,
    /// What the key is (`ip`, `account`), for the audit event of a refusal.
    pub kind: &'static str,
}

/// An attempt one of the limits refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// The refusing limit's [`Limit::kind`].
    pub kind: &'static str,
    /// When the next attempt passes.
    pub retry_after_secs: u64,
    /// The first refusal of a burst (worth one audit event).
    pub first: bool,
}

/// Counts one attempt against each of `limits` in order, stopping at the first that refuses
/// it (the later ones are not counted); None when all admit it. In the database on
/// PostgreSQL (shared by every replica, all the limits in one round trip), in each limiter on
/// SQLite.
pub async fn check(deps: &Deps, limits: &[Limit<'_>]) -> Result<Option<Refusal>, ServiceError> {
    if deps.db.backend() != Backend::Postgres {
        return Ok(limits.iter().find_map(|l| match l.limiter.check(l.key) {
            Verdict::Allowed => None,
            Verdict::Limited {
                retry_after_secs,
                first,
            } => Some(Refusal {
                kind: l.kind,
                retry_after_secs,
                first,
            }),
        }));
    }
    let window_ms =
        |l: &Limit<'_>| i64::try_from(l.limiter.window().as_millis()).unwrap_or(i64::MAX / 4);
    let now_ms =
        i64::try_from(deps.clock.now().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX / 2);
    let state = &deps.auth.shared_limits;
    let last = state.pruned_at_ms.load(Ordering::Relaxed);
    if now_ms - last >= PRUNE_EVERY_MS
        && state
            .pruned_at_ms
            .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        let longest = limits.iter().map(window_ms).max().unwrap_or(0);
        if let Err(err) = rate_limits::prune(&deps.db, now_ms, longest).await {
            tracing::warn!(error = %err, "pruning rate-limit attempts failed");
        }
    }
    let hashes: Vec<String> = limits.iter().map(|l| key_hash(l.scope, l.key)).collect();
    let keys: Vec<Key<'_>> = limits
        .iter()
        .zip(&hashes)
        .map(|(l, hash)| Key {
            hash,
            limit: l.limiter.limit(),
            window_ms: window_ms(l),
        })
        .collect();
    let outcomes = rate_limits::attempt(&deps.db, &keys, now_ms).await?;
    Ok(limits
        .iter()
        .zip(outcomes)
        .find_map(|(l, outcome)| match outcome {
            Attempt::Allowed => None,
            Attempt::Refused {
                retry_after_ms,
                first,
            } => Some(Refusal {
                kind: l.kind,
                // Rounded up: a client that waits this long is admitted.
                retry_after_secs: u64::try_from(retry_after_ms)
                    .unwrap_or(0)
                    .div_ceil(1000)
                    .max(1),
                first,
            }),
        }))
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
}
