//! Read caches that can never serve a stale answer after a write of this process: an entry
//! remembers the database's write epoch read *before* its lookup, and is only trusted while
//! the epoch is unchanged (every committed write transaction bumps it). Time-based validity
//! (expiry dates) is still checked by the callers on every use.
//!
//! On PostgreSQL the writes of *other* replicas bump the epoch too, when their notification
//! arrives; while that cannot be guaranteed, the epoch never repeats and nothing is served
//! from here (see `inventiv_persistence::epoch`).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// A map whose entries are valid for one write epoch.
#[derive(Debug)]
pub struct EpochCache<K, V> {
    enabled: bool,
    map: Mutex<HashMap<K, (u64, V)>>,
    /// Answers served from the cache, for tests and operators.
    hits: AtomicU64,
}

/// Entries kept at most; the map is simply cleared beyond (it refills on the next requests).
const CAPACITY: usize = 10_000;

impl<K: Eq + Hash, V: Clone> EpochCache<K, V> {
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled,
            map: Mutex::new(HashMap::new()),
            hits: AtomicU64::new(0),
        }
    }

    /// How many lookups were answered from the cache so far.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// The value stored for `key` if it was stored at `epoch`.
    pub fn get(&self, key: &K, epoch: u64) -> Option<V> {
        if !self.enabled {
            return None;
        }
        let map = self.map.lock().ok()?;
        let hit = map
            .get(key)
            .filter(|(at, _)| *at == epoch)
            .map(|(_, v)| v.clone());
        if hit.is_some() {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        hit
    }

    /// Stores `value`, looked up after reading `epoch`.
    pub fn put(&self, key: K, epoch: u64, value: V) {
        if !self.enabled {
            return;
        }
        if let Ok(mut map) = self.map.lock() {
            if map.len() >= CAPACITY {
                map.clear();
            }
            map.insert(key, (epoch, value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::EpochCache;

    #[test]
    fn an_entry_is_valid_for_its_epoch_only() {
        let cache = EpochCache::new(true);
        cache.put("k", 3, 42);
        assert_eq!(cache.get(&"k", 3), Some(42));
        assert_eq!(cache.get(&"k", 4), None, "a later write invalidates it");
        let off: EpochCache<&str, i32> = EpochCache::new(false);
        off.put("k", 1, 1);
        assert_eq!(off.get(&"k", 1), None);
    }
}
