//! In-process sliding-window rate limits (login, password reset, invitation accept).
//!
//! Each key (e.g. `ip:203.0.113.9`, `account:alice@example.com`) may be used `limit` times per
//! window. This state is per process; on PostgreSQL the limits are shared by every replica
//! through the database instead (see [`shared`]).

pub mod shared;

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

#[derive(Debug)]
pub struct RateLimiter {
    limit: usize,
    window: Duration,
    state: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Default)]
struct Bucket {
    attempts: VecDeque<Instant>,
    limited: bool,
}

const PRUNE_ABOVE: usize = 10_000;

impl RateLimiter {
    /// `limit` attempts per `window` for each key.
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit: limit.max(1) as usize,
            window,
            state: Mutex::new(HashMap::new()),
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
        if state.len() > PRUNE_ABOVE {
            let window = self.window;
            state.retain(|_, b| {
                b.attempts
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < window)
            });
        }
        let bucket = state.entry(key.to_owned()).or_default();
        while bucket
            .attempts
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            bucket.attempts.pop_front();
        }
        if bucket.attempts.len() < self.limit {
            bucket.attempts.push_back(now);
            bucket.limited = false;
            return Verdict::Allowed;
        }
        let oldest = bucket.attempts.front().copied().unwrap_or(now);
        let retry = self.window.saturating_sub(now.duration_since(oldest));
        let first = !bucket.limited;
        bucket.limited = true;
        Verdict::Limited {
            retry_after_secs: retry.as_secs().max(1),
            first,
        }
    }
}

#[cfg(test)]
mod tests {
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
}
