//! Read caches that can never serve an answer a committed write of this process made stale:
//! an entry remembers the [`Stamp`] taken *before* its lookup and the [`Tag`]s of the rows it
//! was read from, and is served only while none of those tags changed since (see
//! `inventiv_persistence::versions`). Writes mark the tags of what they change, so a write
//! flushes exactly the entries built from the rows it touched: a new usage row or an audit
//! event flushes nothing, a revoked session flushes that session's entry.
//!
//! On PostgreSQL the writes of *other* replicas bump their tags here when their notification
//! arrives; while that cannot be guaranteed, no stamp is given and nothing is served from here
//! (see `inventiv_persistence::listener`). Time-based validity (expiry dates) is still checked
//! by the callers on every use.

use crate::auth::Me;
use crate::instances::Instance;
use crate::organizations::Organization;
use crate::paging::Page;
use crate::users::User;
use bytes::Bytes;
use inventiv_domain::{InstanceId, OrgId, Scope, SessionId, UserId};
use inventiv_persistence::repo::api_keys::KeyAuth;
use inventiv_persistence::repo::sessions::SessionAuth;
use inventiv_persistence::{Db, Stamp, Tag};
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// The service's read caches (the proxy keeps its routes itself, `proxy::Proxy::routes`). Each
/// entry names the tags it depends on where it is filled.
#[derive(Debug)]
pub struct Caches {
    /// Sessions by id: the row, its user's flags, the role in its current org
    /// (`auth::principal`).
    pub sessions: TagCache<SessionId, SessionAuth>,
    /// API keys by hash, with their owner and the owner's role in the key's org
    /// (`api_keys::authenticate`).
    pub keys: TagCache<String, KeyAuth>,
    /// Accounts and orgs by id, as `GET /auth/me` shows them.
    pub users: TagCache<UserId, User>,
    pub orgs: TagCache<OrgId, Organization>,
    /// Pages of `GET /instances`: (scope, `operational` filter, cursor, rows asked).
    pub instance_pages: TagCache<InstancePageKey, Arc<Rendered<Page<Instance>>>>,
    /// `GET /auth/me` of a session, until the session, its account, its membership or its
    /// org changes.
    pub me: TagCache<SessionId, Arc<Rendered<Me>>>,
}

/// A cached answer and the caller's rendering of it: the http layer serializes the value once
/// and every later hit of the entry sends the same bytes. Serializing was most of the CPU of
/// a cached read (issue 18: a 37 KB instance page, a 1.6 KB `/auth/me`), and the bytes live
/// exactly as long as the value they render, so they can be no staler than it.
#[derive(Debug)]
pub struct Rendered<T> {
    value: T,
    body: OnceLock<Bytes>,
    /// The body transformed once more (the http layer's gzip of it), made on first demand.
    encoded: OnceLock<Bytes>,
}

impl<T> Rendered<T> {
    pub fn new(value: T) -> Self {
        Self {
            value,
            body: OnceLock::new(),
            encoded: OnceLock::new(),
        }
    }

    pub fn value(&self) -> &T {
        &self.value
    }

    /// The rendering of the value: `render`'s, on the first call only. The renderer must be
    /// a function of the value alone (every caller gets the first rendering).
    pub fn body(&self, render: impl FnOnce(&T) -> Bytes) -> Bytes {
        self.body.get_or_init(|| render(&self.value)).clone()
    }

    /// A second rendering (the http layer's gzip of the first), made by `encode` on the first
    /// call only; the same rule holds (a function of the value alone). It lives and dies with
    /// the value, so a write that flushes the value flushes it too.
    pub fn encoded(&self, encode: impl FnOnce() -> Bytes) -> Bytes {
        self.encoded.get_or_init(encode).clone()
    }
}

/// What names one page of `GET /instances`.
pub type InstancePageKey = (Scope, Option<bool>, Option<InstanceId>, u64);

impl Caches {
    /// Every cache on, or (`enabled` false) every cache off.
    pub fn new(enabled: bool) -> Self {
        Self {
            sessions: TagCache::new(enabled),
            keys: TagCache::new(enabled),
            users: TagCache::new(enabled),
            orgs: TagCache::new(enabled),
            instance_pages: TagCache::new(enabled),
            me: TagCache::new(enabled),
        }
    }
}

/// A map whose entries are valid while the tags they were read from are unchanged.
#[derive(Debug)]
pub struct TagCache<K, V> {
    enabled: bool,
    /// foldhash, seeded per process: keys are ids and hashes the server issued, and SipHash was
    /// a visible share of a cached read's CPU (issue 18).
    map: Mutex<foldhash::HashMap<K, Entry<V>>>,
    /// Answers served from the cache, for tests and operators.
    hits: AtomicU64,
}

#[derive(Debug)]
struct Entry<V> {
    stamp: Stamp,
    tags: Box<[Tag]>,
    value: V,
}

/// Entries kept at most; the map is simply cleared beyond (it refills on the next requests).
const CAPACITY: usize = 10_000;

impl<K: Eq + Hash, V: Clone> TagCache<K, V> {
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled,
            map: Mutex::new(foldhash::HashMap::default()),
            hits: AtomicU64::new(0),
        }
    }

    /// How many lookups were answered from the cache so far.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Now, for a lookup about to read the database (None: nothing may be cached now).
    pub(crate) fn stamp(&self, db: &Db) -> Option<Stamp> {
        if self.enabled { db.stamp() } else { None }
    }

    /// The value stored for `key`, if none of its tags changed since it was read.
    pub(crate) fn get(&self, db: &Db, key: &K) -> Option<V> {
        if !self.enabled {
            return None;
        }
        let map = self.map.lock().ok()?;
        let hit = map
            .get(key)
            .filter(|e| db.unchanged_since(e.stamp, &e.tags))
            .map(|e| e.value.clone());
        if hit.is_some() {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        hit
    }

    /// Stores `value`, read after `stamp` was taken from rows whose tags are `tags` (nothing
    /// without a stamp).
    pub(crate) fn put(&self, key: K, stamp: Option<Stamp>, tags: Vec<Tag>, value: V) {
        let Some(stamp) = stamp else { return };
        if let Ok(mut map) = self.map.lock() {
            if map.len() >= CAPACITY {
                map.clear();
            }
            let tags = tags.into_boxed_slice();
            map.insert(key, Entry { stamp, tags, value });
        }
    }

    /// Applies `change` to the stored copy, keeping its stamp and tags: for columns written
    /// outside a transaction that no cache decision may trust more than the database (a
    /// `last_used_at` touch), so the copy stays as fresh as this process knows.
    pub(crate) fn update(&self, key: &K, change: impl FnOnce(&mut V)) {
        if let Ok(mut map) = self.map.lock()
            && let Some(entry) = map.get_mut(key)
        {
            change(&mut entry.value);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::TagCache;
    use inventiv_domain::{SessionId, UserId};
    use inventiv_persistence::{Db, DbOptions, Tag};

    async fn db() -> Db {
        Db::connect("sqlite::memory:", &DbOptions::default())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn an_entry_lives_until_one_of_its_tags_changes() {
        let db = db().await;
        let cache = TagCache::new(true);
        let user = UserId::new();
        let tags = vec![Tag::Session(SessionId::new()), Tag::User(user)];
        cache.put("k", cache.stamp(&db), tags, 42);
        assert_eq!(cache.get(&db, &"k"), Some(42));
        cache.update(&"k", |v| *v += 1);
        assert_eq!(cache.get(&db, &"k"), Some(43));
        assert_eq!(cache.hits(), 2);
        db.execute_unprepared("SELECT 1").await.unwrap();
        assert_eq!(cache.get(&db, &"k"), None, "an operator's statement");
        let off: TagCache<&str, i32> = TagCache::new(false);
        off.put("k", off.stamp(&db), vec![], 1);
        assert_eq!(off.get(&db, &"k"), None);
    }
}
