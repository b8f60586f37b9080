//! The local versions of the [`Tag`]s, from which read caches (in the service crate) tell
//! whether an entry may still be trusted.
//!
//! - A cache lookup first takes a [`Stamp`] (the current write sequence number), then reads
//!   the database, and stores its answer with the stamp and the tags of the rows it read —
//!   tags it may only learn from the rows themselves (a session's user and org), which is why
//!   the stamp is a moment rather than the versions of tags named in advance.
//! - A committed write moves the sequence on and records, for each tag it marked, the
//!   sequence number of that change ([`Versions::bump`]). An entry is valid while none of its
//!   tags changed after its stamp. The bump happens after the commit, so a lookup that ran
//!   before the commit is always invalidated, and one that ran after it saw the change.
//! - Tags share a fixed table of counters by hash: two tags on one counter only cost needless
//!   misses, never a stale answer, and memory stays bounded whatever the number of sessions.
//! - [`Versions::bump_all`] invalidates every entry stamped before it (an operator's statement,
//!   a notification too large to list its tags, a listener that lost or regained its
//!   connection).
//! - While *untrusted* (PostgreSQL, the listener not connected: another replica's writes
//!   could be missed) no stamp is given and no entry is valid. Regaining trust invalidates
//!   everything stamped before, since notifications missed meanwhile cannot be replayed.
//! - On SQLite (one process, embedded) the versions are trusted from the start.

use crate::tags::Tag;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Counters tags are spread over (a power of two; 512 KiB): an unrelated tag lands on one of
/// an entry's (at most four) counters, and costs it a needless miss, 4 times in 65,536.
const SLOTS: usize = 1 << 16;

/// When a cache lookup started (see the module documentation). Only [`crate::Db::stamp`]
/// makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp(u64);

#[derive(Debug)]
pub(crate) struct Versions {
    /// The write sequence: moved on by every bump.
    seq: AtomicU64,
    /// Entries stamped before this are invalid (see [`Versions::bump_all`]).
    floor: AtomicU64,
    /// Per counter, the sequence number of the last change of a tag hashed to it.
    slots: Box<[AtomicU64]>,
    /// Whether every write that can matter reaches [`Versions::bump`].
    trusted: AtomicBool,
    /// Spreads tags over the counters: seeded once per process, so a tag always lands on the
    /// same counter here, and nobody outside can pick tags that share one. (foldhash, not
    /// SipHash: every cached read hashes each tag of its entries, issue 18.)
    hasher: foldhash::fast::RandomState,
    /// Names this process's writes in their notifications, so its listener skips them: its
    /// commits bumped their tags already, and a second bump when the echo arrives would
    /// only evict entries cached since (see `crate::listener`).
    pub(crate) writer: u64,
}

impl Versions {
    pub(crate) fn new(trusted: bool) -> Self {
        Self {
            seq: AtomicU64::new(0),
            floor: AtomicU64::new(0),
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            trusted: AtomicBool::new(trusted),
            hasher: foldhash::fast::RandomState::default(),
            writer: uuid::Uuid::new_v4().as_u64_pair().0,
        }
    }

    fn slot(&self, tag: &Tag) -> &AtomicU64 {
        let hash = self.hasher.hash_one(tag);
        &self.slots[(hash as usize) & (SLOTS - 1)]
    }

    /// Now, for a lookup about to read the database; None while untrusted.
    pub(crate) fn stamp(&self) -> Option<Stamp> {
        self.is_trusted()
            .then(|| Stamp(self.seq.load(Ordering::SeqCst)))
    }

    /// Whether none of `tags` — nor everything — changed after `stamp`, and the versions are
    /// trusted now.
    pub(crate) fn unchanged_since(&self, stamp: Stamp, tags: &[Tag]) -> bool {
        self.is_trusted()
            && self.floor.load(Ordering::SeqCst) <= stamp.0
            && tags
                .iter()
                .all(|tag| self.slot(tag).load(Ordering::SeqCst) <= stamp.0)
    }

    /// Records a change of `tags` (after its commit).
    pub(crate) fn bump(&self, tags: &[Tag]) {
        let at = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
        for tag in tags {
            self.slot(tag).fetch_max(at, Ordering::SeqCst);
        }
    }

    /// Records that anything may have changed.
    pub(crate) fn bump_all(&self) {
        let at = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
        self.floor.fetch_max(at, Ordering::SeqCst);
    }

    pub(crate) fn is_trusted(&self) -> bool {
        self.trusted.load(Ordering::SeqCst)
    }

    pub(crate) fn set_trusted(&self, trusted: bool) {
        // Invalidate first: an entry stored before must not be used once trusted again.
        self.bump_all();
        self.trusted.store(trusted, Ordering::SeqCst);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::Versions;
    use crate::tags::Tag;
    use inventiv_domain::{OrgId, SessionId, UserId};

    #[test]
    fn an_entry_dies_with_a_change_of_one_of_its_tags_only() {
        let versions = Versions::new(true);
        let (session, user) = (Tag::Session(SessionId::new()), Tag::User(UserId::new()));
        let other = Tag::Session(SessionId::new());
        let stamp = versions.stamp().unwrap();
        assert!(versions.unchanged_since(stamp, &[session, user]));
        versions.bump(&[other, Tag::Org(OrgId::new())]);
        assert!(
            versions.unchanged_since(stamp, &[session, user]),
            "another session's change"
        );
        versions.bump(&[user]);
        assert!(!versions.unchanged_since(stamp, &[session, user]));
        assert!(versions.unchanged_since(stamp, &[session]));
        let later = versions.stamp().unwrap();
        assert!(versions.unchanged_since(later, &[session, user]));
        versions.bump_all();
        assert!(!versions.unchanged_since(later, &[]));
    }

    #[test]
    fn nothing_is_valid_while_untrusted_nor_from_before_trust_returned() {
        let versions = Versions::new(false);
        assert_eq!(versions.stamp(), None);
        versions.set_trusted(true);
        let stamp = versions.stamp().unwrap();
        let tags = [Tag::Routes];
        assert!(versions.unchanged_since(stamp, &tags));
        versions.set_trusted(false);
        assert!(!versions.unchanged_since(stamp, &tags));
        assert_eq!(versions.stamp(), None);
        versions.set_trusted(true);
        assert!(
            !versions.unchanged_since(stamp, &tags),
            "a notification may have been missed while untrusted"
        );
    }
}
