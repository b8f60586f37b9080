//! In-process sliding-window rate limits (login, password reset, invitation accept).
//!
//! Each key (e.g. `ip:203.0.113.9`, `account:alice@example.com`) may be used `limit` times per
//! window. Keys are kept as a 128-bit digest, never as the text the client sent (a 1 MB "email"
//! costs 16 bytes here), and the map holds at most [`MAX_KEYS`] of them. This state is per
//! process; on PostgreSQL the limits are shared by every replica through the database instead
//! (see [`shared`]).

pub mod shared;

use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The verdict for one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Refused; `first` is true for the first refusal of a burst (worth an audit event),
    /// `retry_after_secs` is when the oldest attempt leaves the window.
    Limited {
        retry_after_secs: u64,
        first: bool,
    },
}

/// The per-address key of a request from `ip` (`None`: unknown): an IPv4 address as it is,
/// an IPv6 address by its /64. One host is routinely given a whole /64, so keying by the full
/// IPv6 address gave a single client 2^64 fresh budgets: logins for random accounts from
/// rotating addresses passed every limit and filled the password-hash queue.
pub fn address_key(ip: Option<&str>) -> String {
    use std::net::IpAddr;
    match ip.and_then(|ip| ip.parse::<IpAddr>().ok()) {
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("ip:{v4}"),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                format!("ip:{}/64", std::net::Ipv6Addr::from(prefix))
            }
        },
        Some(IpAddr::V4(v4)) => format!("ip:{v4}"),
        None => format!("ip:{}", ip.unwrap_or("unknown")),
    }
}

#[derive(Debug)]
pub struct RateLimiter {
    limit: usize,
    window: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    buckets: HashMap<KeyDigest, Bucket>,
    last_prune: Option<Instant>,
}

/// The first 128 bits of SHA-256 of a key: fixed size whatever the client sent, and
/// collisions are out of reach.
type KeyDigest = [u8; 16];

fn digest(key: &str) -> KeyDigest {
    let full = Sha256::digest(key.as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[..16]);
    out
}

#[derive(Debug, Default)]
struct Bucket {
    attempts: VecDeque<Instant>,
    limited: bool,
}

/// Above this many keys, buckets idle for a whole window are dropped (at most once a second:
/// the sweep is linear).
const PRUNE_ABOVE: usize = 10_000;
/// The most keys a limiter holds (about 200 bytes each). When every slot is live, a new key
/// evicts the bucket idle the longest: memory stays bounded under a flood of distinct keys,
/// and the per-IP limit makes such a flood slow (see docs/decisions.md).
pub const MAX_KEYS: usize = 50_000;

impl RateLimiter {
    /// `limit` attempts per `window` for each key.
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit: limit.max(1) as usize,
            window,
            state: Mutex::new(State::default()),
        }
    }

    /// Attempts allowed per window for each key.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The window's length.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Counts one attempt for `key` (refused attempts count too: hammering does not help).
    pub fn check(&self, key: &str) -> Verdict {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: &str, now: Instant) -> Verdict {
        let Ok(mut state) = self.state.lock() else {
            return Verdict::Allowed;
        };
        let state = &mut *state;
        let due = state
            .last_prune
            .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1));
        if state.buckets.len() > PRUNE_ABOVE && due {
            let window = self.window;
            state.buckets.retain(|_, b| {
                b.attempts
                    .back()
                    .is_some_and(|t| now.saturating_duration_since(*t) < window)
            });
            state.last_prune = Some(now);
        }
        let key = digest(key);
        if state.buckets.len() >= MAX_KEYS && !state.buckets.contains_key(&key) {
            let idlest = state
                .buckets
                .iter()
                .min_by_key(|(_, b)| b.attempts.back().copied())
                .map(|(k, _)| *k);
            if let Some(idlest) = idlest {
                state.buckets.remove(&idlest);
            }
        }
        let bucket = state.buckets.entry(key).or_default();
        while bucket
            .attempts
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= self.window)
        {
            bucket.attempts.pop_front();
        }
        if bucket.attempts.len() < self.limit {
            bucket.attempts.push_back(now);
            bucket.limited = false;
            return Verdict::Allowed;
        }
        let oldest = bucket.attempts.front().copied().unwrap_or(now);
        let retry = self
            .window
            .saturating_sub(now.saturating_duration_since(oldest));
        let first = !bucket.limited;
        bucket.limited = true;
        Verdict::Limited {
            retry_after_secs: retry.as_secs().max(1),
            first,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn an_ipv6_host_is_keyed_by_its_64_and_ipv4_as_it_is() {
        use super::address_key;
        let key = |ip: &str| address_key(Some(ip));
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:ffff:1:2:3"));
        assert_eq!(key("2001:db8:1:2::9"), "ip:2001:db8:1:2::/64");
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("203.0.113.9"), "ip:203.0.113.9");
        assert_eq!(key("::ffff:203.0.113.9"), "ip:203.0.113.9");
        assert_ne!(key("203.0.113.9"), key("203.0.113.10"));
        assert_eq!(address_key(None), "ip:unknown");
    }

    use super::*;

    #[test]
    fn the_eleventh_attempt_in_a_window_is_refused_then_allowed_after_it() {
        let limiter = RateLimiter::new(10, Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..10 {
            assert_eq!(
                limiter.check_at("ip:1", t0 + Duration::from_secs(i)),
                Verdict::Allowed
            );
        }
        assert_eq!(
            limiter.check_at("ip:1", t0 + Duration::from_secs(10)),
            Verdict::Limited {
                retry_after_secs: 50,
                first: true
            }
        );
        assert!(matches!(
            limiter.check_at("ip:1", t0 + Duration::from_secs(11)),
            Verdict::Limited { first: false, .. }
        ));
        assert_eq!(
            limiter.check_at("ip:2", t0),
            Verdict::Allowed,
            "keys are independent"
        );
        assert_eq!(
            limiter.check_at("ip:1", t0 + Duration::from_secs(61)),
            Verdict::Allowed
        );
    }

    #[test]
    fn keys_are_held_as_fixed_size_digests_and_their_number_is_capped() {
        let limiter = RateLimiter::new(10, Duration::from_secs(60));
        let t0 = Instant::now();
        let huge = format!("account:{}@example.com", "a".repeat(1024 * 1024));
        assert_eq!(limiter.check_at(&huge, t0), Verdict::Allowed);
        for i in 0..(MAX_KEYS + 100) {
            // All live (inside the window): pruning cannot help, the cap must.
            limiter.check_at(&format!("account:{i}"), t0 + Duration::from_millis(1));
        }
        let state = limiter.state.lock().unwrap();
        assert_eq!(state.buckets.len(), MAX_KEYS);
        // The idlest bucket (the huge key's, used first) went first.
        assert!(!state.buckets.contains_key(&digest(&huge)));
        assert!(
            state
                .buckets
                .contains_key(&digest(&format!("account:{}", MAX_KEYS + 99)))
        );
    }

    #[test]
    fn a_key_and_its_digest_count_as_the_same_bucket() {
        let limiter = RateLimiter::new(1, Duration::from_secs(60));
        let t0 = Instant::now();
        assert_eq!(limiter.check_at("account:a@b.io", t0), Verdict::Allowed);
        assert!(matches!(
            limiter.check_at("account:a@b.io", t0),
            Verdict::Limited { .. }
        ));
        assert_eq!(limiter.check_at("account:c@b.io", t0), Verdict::Allowed);
    }
}
