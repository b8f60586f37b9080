//! `rate_limit_slots`: rate-limit attempts shared by every replica (SPEC §6 v2: limits hold
//! across replicas), counted per key and second.
//!
//! One check is one transaction that takes each key's lock (serialized per key across
//! replicas), reads the keys' live seconds, and counts the attempt against each key in order
//! until one refuses it. A second's admitted attempts all count until the last of them leaves
//! the window, so the window slides at one second's granularity and is never more lenient than
//! the exact one (an attempt is held at most a second longer), while `Retry-After` never
//! exceeds the window: N replicas together admit at most `limit` attempts within any window,
//! not N × `limit`. A check costs the same five statements however many keys it counts and
//! whatever the limit (a key has at most window + 1 live rows): issue 18 found the former
//! one-row-per-attempt table read thousands of rows per sign-in under a lifted limit.

use crate::repo::{exec_sql, query_all_sql};
use crate::{Backend, Db, StoreError};
use sea_orm::Value;
use std::collections::BTreeMap;

/// The granularity of the shared limits (their windows are minutes).
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

/// One second of one key.
struct Slot {
    /// Attempts admitted in this second; they count until `last_admitted_ms` + the window.
    admitted: i64,
    last_admitted_ms: Option<i64>,
    last_refused_ms: Option<i64>,
}

/// Counts one attempt at `now_ms` against each of `keys` in order, and stops at the first that
/// refuses it: the keys after it are not counted, and refused attempts are never counted as
/// admitted (hammering would otherwise push the window forward for ever, past the
/// `Retry-After` announced). Returns one outcome per key checked: all `Allowed`, or ending
/// with the `Refused` one. The same key twice counts as one.
pub async fn attempt(db: &Db, keys: &[Key<'_>], now_ms: i64) -> Result<Vec<Attempt>, StoreError> {
    let mut hashes: Vec<&str> = keys.iter().map(|k| k.hash).collect();
    hashes.sort_unstable();
    hashes.dedup();
    if hashes.is_empty() {
        return Ok(Vec::new());
    }
    let params = |from: usize| -> String {
        (from..from + hashes.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let hash_values = || hashes.iter().map(|h| Value::from(*h)).collect::<Vec<_>>();

    let tx = db.begin_write().await?;
    if db.backend() == Backend::Postgres {
        // Per key, checks are serialized for the whole transaction: otherwise two replicas
        // could both count limit - 1 and both admit. The keys are locked in one order (sorted,
        // left to right), so two checks of the same keys cannot deadlock. (SQLite write
        // transactions are already serialized: BEGIN IMMEDIATE.)
        //
        // The commit does not wait for the WAL to reach the disk (`synchronous_commit` off for
        // this transaction only, set in the same statement): a crash may forget the last few
        // milliseconds of counts, which is worth less than an fsync per sign-in.
        let locks = (1..=hashes.len())
            .map(|i| format!("pg_advisory_xact_lock(hashtextextended(${i}, 0))"))
            .collect::<Vec<_>>()
            .join(", ");
        exec_sql(
            &tx,
            &format!("SELECT set_config('synchronous_commit', 'off', true), {locks}"),
            hash_values(),
        )
        .await?;
    }
    let longest = keys.iter().map(|k| k.window_ms).max().unwrap_or(0);
    let mut values = hash_values();
    // Every second whose last admission is still in the window starts after this.
    values.push((now_ms - longest - SLOT_MS).into());
    let rows = query_all_sql(
        &tx,
        &format!(
            "SELECT key_hash, admitted, last_admitted_ms, last_refused_ms FROM rate_limit_slots \
             WHERE key_hash IN ({}) AND slot_ms > ${} ORDER BY slot_ms",
            params(1),
            hashes.len() + 1
        ),
        values,
    )
    .await?;
    let mut slots: BTreeMap<String, Vec<Slot>> = BTreeMap::new();
    for row in rows {
        slots
            .entry(row.try_get("", "key_hash")?)
            .or_default()
            .push(Slot {
                admitted: row.try_get("", "admitted")?,
                last_admitted_ms: row.try_get("", "last_admitted_ms")?,
                last_refused_ms: row.try_get("", "last_refused_ms")?,
            });
    }

    let mut outcomes = Vec::with_capacity(keys.len());
    // What to write, per key: (admitted, refused) in this second.
    let mut writes: BTreeMap<&str, (i64, bool)> = BTreeMap::new();
    for key in keys {
        let seconds = slots.get(key.hash).map_or(&[][..], Vec::as_slice);
        let outcome = judge(seconds, key, now_ms);
        let write = writes.entry(key.hash).or_insert((0, false));
        match &outcome {
            Attempt::Allowed => write.0 = 1,
            Attempt::Refused { first, .. } => write.1 |= *first,
        }
        let refused = outcome != Attempt::Allowed;
        outcomes.push(outcome);
        if refused {
            break;
        }
    }
    writes.retain(|_, (admitted, refused)| *admitted > 0 || *refused);
    if !writes.is_empty() {
        let slot = now_ms.div_euclid(SLOT_MS) * SLOT_MS;
        let mut values = Vec::new();
        let rows = writes
            .iter()
            .enumerate()
            .map(|(i, (hash, (admitted, refused)))| {
                let at = |yes: bool| Value::BigInt(yes.then_some(now_ms));
                values.extend([
                    Value::from(*hash),
                    slot.into(),
                    (*admitted).into(),
                    at(*admitted > 0),
                    at(*refused),
                ]);
                let p = 5 * i;
                format!(
                    "(${}, ${}, ${}, ${}, ${})",
                    p + 1,
                    p + 2,
                    p + 3,
                    p + 4,
                    p + 5
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        exec_sql(
            &tx,
            &format!(
                "INSERT INTO rate_limit_slots \
                 (key_hash, slot_ms, admitted, last_admitted_ms, last_refused_ms) VALUES {rows} \
                 ON CONFLICT (key_hash, slot_ms) DO UPDATE SET \
                 admitted = rate_limit_slots.admitted + excluded.admitted, \
                 last_admitted_ms = {}, last_refused_ms = {}",
                later("last_admitted_ms"),
                later("last_refused_ms")
            ),
            values,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(outcomes)
}

/// The later of a stored time and the one being written (either may be NULL), in SQL both
/// backends read alike.
fn later(column: &str) -> String {
    format!(
        "CASE WHEN rate_limit_slots.{column} IS NULL OR excluded.{column} > rate_limit_slots.{column} \
         THEN excluded.{column} ELSE rate_limit_slots.{column} END"
    )
}

/// The verdict on one attempt against `key`, given its recent seconds (oldest first).
fn judge(seconds: &[Slot], key: &Key<'_>, now_ms: i64) -> Attempt {
    let limit = i64::try_from(key.limit).unwrap_or(i64::MAX);
    let live = |s: &&Slot| {
        s.last_admitted_ms
            .is_some_and(|t| t > now_ms - key.window_ms)
    };
    let mut admitted: i64 = seconds.iter().filter(live).map(|s| s.admitted).sum();
    if admitted < limit {
        return Attempt::Allowed;
    }
    // The oldest seconds leave first; one more passes once fewer than `limit` are left.
    let mut passes_at = now_ms;
    for slot in seconds.iter().filter(live) {
        if admitted < limit {
            break;
        }
        admitted -= slot.admitted;
        passes_at = slot.last_admitted_ms.unwrap_or(now_ms) + key.window_ms;
    }
    // The first refusal of a burst: none since the last admission (one at the same
    // millisecond is taken as after it).
    let last = |of: fn(&Slot) -> Option<i64>| seconds.iter().filter_map(of).max();
    let already = last(|s| s.last_refused_ms) >= last(|s| s.last_admitted_ms)
        && last(|s| s.last_refused_ms).is_some();
    Attempt::Refused {
        retry_after_ms: passes_at - now_ms,
        first: !already,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: Key<'static> = Key {
        hash: "k",
        limit: 3,
        window_ms: 60_000,
    };

    fn admitted(n: i64, last_ms: i64) -> Slot {
        Slot {
            admitted: n,
            last_admitted_ms: Some(last_ms),
            last_refused_ms: None,
        }
    }

    fn refused(at_ms: i64) -> Slot {
        Slot {
            admitted: 0,
            last_admitted_ms: None,
            last_refused_ms: Some(at_ms),
        }
    }

    #[test]
    fn a_full_window_refuses_until_enough_seconds_have_left() {
        let seconds = [admitted(2, 10_400), admitted(1, 20_000)];
        assert_eq!(
            judge(&seconds, &KEY, 30_500),
            Attempt::Refused {
                // The second of 10.4 s counts until 70.4 s; then 1 of 3 is left.
                retry_after_ms: 70_400 - 30_500,
                first: true
            }
        );
        assert_eq!(judge(&seconds, &KEY, 70_400), Attempt::Allowed);
        // A limit lowered since: leaving the first second is not enough (2 left, limit 2).
        let lowered = Key { limit: 2, ..KEY };
        let seconds = [admitted(1, 10_000), admitted(2, 20_000)];
        assert_eq!(
            judge(&seconds, &lowered, 30_500),
            Attempt::Refused {
                retry_after_ms: 80_000 - 30_500,
                first: true
            }
        );
        // Never more than the window.
        let seconds = [admitted(3, 30_500)];
        assert_eq!(
            judge(&seconds, &KEY, 30_500),
            Attempt::Refused {
                retry_after_ms: 60_000,
                first: true
            }
        );
    }

    #[test]
    fn only_the_first_refusal_after_an_admission_is_first() {
        let seconds = [admitted(3, 10_000), refused(20_000)];
        assert!(matches!(
            judge(&seconds, &KEY, 20_500),
            Attempt::Refused { first: false, .. }
        ));
        // A refusal in the same second as the last admission, after it.
        let mut same = admitted(3, 10_100);
        same.last_refused_ms = Some(10_200);
        assert!(matches!(
            judge(&[same], &KEY, 20_500),
            Attempt::Refused { first: false, .. }
        ));
        // A refusal before the last admission belongs to an earlier burst.
        let mut earlier = admitted(2, 10_100);
        earlier.last_refused_ms = Some(10_200);
        let seconds = [earlier, admitted(1, 11_300)];
        assert!(matches!(
            judge(&seconds, &KEY, 20_500),
            Attempt::Refused { first: true, .. }
        ));
    }
}
