//! What a write changed, as the read caches see it: a [`Tag`] names one cached fact (a
//! session, an account, a membership, an org, an API key, a tenant's instances, the models,
//! or the routing tables as a whole).
//!
//! Contract:
//! - Every repository function that changes a row some cache is built from takes the open
//!   [`crate::Tx`] (never the pool) and marks the tags of what it changed on it
//!   ([`crate::Tx::mark`]); the commit publishes them (see [`crate::versions`]). A cache entry
//!   depends on the tags of every row it was built from, its parents included, so a change
//!   that cascades (an account or an org deleted) is covered by the parent's tag.
//! - Inserting a row under a fresh id marks nothing: no cache can hold an answer about an id
//!   that did not exist (caches store rows found, never "not found").
//! - The tags travel to the other replicas as the text of a PostgreSQL notification
//!   ([`encode`], [`decode`]). A payload that does not fit, or that cannot be read, means
//!   "everything changed": the safe side.

use inventiv_domain::{ApiKeyId, OrgId, Scope, SessionId, UserId};
use uuid::Uuid;

/// One cached fact that a write can change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tag {
    /// A session row (revoked, moved to another workspace, its token generation).
    Session(SessionId),
    /// An account: email, profile, disabled, platform flag, password; and everything that
    /// cascades from it (its sessions, memberships, keys).
    User(UserId),
    /// A user's membership of an org (added, role changed, removed).
    Membership(OrgId, UserId),
    /// An org row (name, settings, deletion with everything under it).
    Org(OrgId),
    /// An API key (renamed, capped, revoked).
    ApiKey(ApiKeyId),
    /// The instances of one tenant (deployed, moved along their lifecycle, approved, purged).
    Instances(Scope),
    /// The models of every catalogue (their names show in instance lists).
    Models,
    /// The tables proxy routes are resolved from (models, offerings, shares, instances,
    /// namespaces), as a whole: they change rarely next to proxied calls.
    Routes,
}

/// What a notification says changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changed {
    Tags(Vec<Tag>),
    /// Anything may have changed (too many tags, an operator's statement, an unreadable
    /// payload).
    Everything,
}

/// PostgreSQL refuses a notification payload of 8000 bytes or more; this leaves room.
pub(crate) const MAX_PAYLOAD: usize = 7_900;

/// The payload meaning [`Changed::Everything`].
pub(crate) const EVERYTHING: &str = "*";

/// The notification text for `tags`: comma-separated, one letter and the id(s) in simple
/// hex form (`s…`, `u…`, `m<org>.<user>`, `o…`, `k…`, `io…` or `iu…` for an org's or a
/// user's instances, `c` for the models, `r`); `*` when it would not fit.
pub(crate) fn encode(tags: &[Tag]) -> String {
    let mut out = String::new();
    for tag in tags {
        if !out.is_empty() {
            out.push(',');
        }
        let simple = |id: Uuid| id.simple().to_string();
        match tag {
            Tag::Session(id) => out.push_str(&format!("s{}", simple(id.as_uuid()))),
            Tag::User(id) => out.push_str(&format!("u{}", simple(id.as_uuid()))),
            Tag::Membership(org, user) => out.push_str(&format!(
                "m{}.{}",
                simple(org.as_uuid()),
                simple(user.as_uuid())
            )),
            Tag::Org(id) => out.push_str(&format!("o{}", simple(id.as_uuid()))),
            Tag::ApiKey(id) => out.push_str(&format!("k{}", simple(id.as_uuid()))),
            Tag::Instances(Scope::Org(org)) => {
                out.push_str(&format!("io{}", simple(org.as_uuid())));
            }
            Tag::Instances(Scope::Personal(user)) => {
                out.push_str(&format!("iu{}", simple(user.as_uuid())));
            }
            Tag::Models => out.push('c'),
            Tag::Routes => out.push('r'),
        }
        if out.len() > MAX_PAYLOAD {
            return EVERYTHING.to_owned();
        }
    }
    out
}

/// The notification of `writer`'s change: `<writer hex>:<payload>`.
pub(crate) fn from_writer(writer: u64, payload: &str) -> String {
    format!("{writer:x}:{payload}")
}

/// What a notification says changed, unless `own` (this process) wrote it: `None` then. A
/// payload without a writer (a replica of an older version) counts as another's.
pub(crate) fn decode_from_others(notification: &str, own: u64) -> Option<Changed> {
    match notification.split_once(':') {
        Some((writer, payload)) if u64::from_str_radix(writer, 16).is_ok() => {
            (u64::from_str_radix(writer, 16) != Ok(own)).then(|| decode(payload))
        }
        _ => Some(decode(notification)),
    }
}

/// Reads a payload written by [`encode`]. Anything else — including the empty payload of a
/// replica that predates tags — is [`Changed::Everything`].
pub(crate) fn decode(payload: &str) -> Changed {
    let tags: Option<Vec<Tag>> = payload.split(',').map(decode_one).collect();
    match tags {
        Some(tags) if !payload.is_empty() => Changed::Tags(tags),
        _ => Changed::Everything,
    }
}

fn decode_one(token: &str) -> Option<Tag> {
    let uuid = |s: &str| Uuid::try_parse(s).ok();
    let (kind, rest) = token.split_at_checked(1)?;
    Some(match kind {
        "s" => Tag::Session(SessionId::from_uuid(uuid(rest)?)),
        "u" => Tag::User(UserId::from_uuid(uuid(rest)?)),
        "m" => {
            let (org, user) = rest.split_once('.')?;
            Tag::Membership(OrgId::from_uuid(uuid(org)?), UserId::from_uuid(uuid(user)?))
        }
        "o" => Tag::Org(OrgId::from_uuid(uuid(rest)?)),
        "k" => Tag::ApiKey(ApiKeyId::from_uuid(uuid(rest)?)),
        "i" => match rest.split_at_checked(1)? {
            ("o", id) => Tag::Instances(Scope::Org(OrgId::from_uuid(uuid(id)?))),
            ("u", id) => Tag::Instances(Scope::Personal(UserId::from_uuid(uuid(id)?))),
            _ => return None,
        },
        "c" if rest.is_empty() => Tag::Models,
        "r" if rest.is_empty() => Tag::Routes,
        _ => return None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn every_tag_survives_the_trip_through_a_payload() {
        let tags = vec![
            Tag::Session(SessionId::new()),
            Tag::User(UserId::new()),
            Tag::Membership(OrgId::new(), UserId::new()),
            Tag::Org(OrgId::new()),
            Tag::ApiKey(ApiKeyId::new()),
            Tag::Instances(Scope::Org(OrgId::new())),
            Tag::Instances(Scope::Personal(UserId::new())),
            Tag::Models,
            Tag::Routes,
        ];
        let payload = encode(&tags);
        assert!(payload.len() < 400, "{payload}");
        assert_eq!(decode(&payload), Changed::Tags(tags));
    }

    #[test]
    fn a_process_skips_its_own_notifications_only() {
        let tags = vec![Tag::Session(SessionId::new()), Tag::Routes];
        let mine = from_writer(0xabc, &encode(&tags));
        assert_eq!(decode_from_others(&mine, 0xabc), None);
        assert_eq!(decode_from_others(&mine, 0xabd), Some(Changed::Tags(tags)));
        let everything = from_writer(7, EVERYTHING);
        assert_eq!(decode_from_others(&everything, 7), None);
        assert_eq!(
            decode_from_others(&everything, 8),
            Some(Changed::Everything)
        );
        // Without a writer (an older replica), or unreadable: another's, and all of it.
        assert_eq!(
            decode_from_others("r", 1),
            Some(Changed::Tags(vec![Tag::Routes]))
        );
        assert_eq!(decode_from_others("zz:r", 1), Some(Changed::Everything));
    }

    #[test]
    fn too_many_tags_or_an_unreadable_payload_mean_everything() {
        let many: Vec<Tag> = (0..300).map(|_| Tag::User(UserId::new())).collect();
        assert_eq!(encode(&many), EVERYTHING);
        assert_eq!(decode(EVERYTHING), Changed::Everything);
        assert_eq!(decode(""), Changed::Everything, "a replica without tags");
        assert_eq!(decode("x123"), Changed::Everything);
        assert_eq!(decode("unot-a-uuid"), Changed::Everything);
        assert_eq!(decode("r,mabc"), Changed::Everything);
    }
}
