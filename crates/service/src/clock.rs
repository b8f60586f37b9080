use inventiv_persistence::{now_utc_micros, truncate_micros};
use std::sync::Mutex;
use time::{Duration, OffsetDateTime};

/// The source of "now" for every use case (an injectable clock: tests pin and advance it).
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Current UTC time at microsecond precision.
    fn now(&self) -> OffsetDateTime;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        now_utc_micros()
    }
}

/// A clock that only moves when told to (tests).
#[derive(Debug)]
pub struct ManualClock(Mutex<OffsetDateTime>);

impl ManualClock {
    pub fn new(start: OffsetDateTime) -> Self {
        Self(Mutex::new(truncate_micros(start)))
    }

    pub fn set(&self, t: OffsetDateTime) {
        if let Ok(mut now) = self.0.lock() {
            *now = truncate_micros(t);
        }
    }

    pub fn advance(&self, by: Duration) {
        if let Ok(mut now) = self.0.lock() {
            *now += by;
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        self.0
            .lock()
            .map(|t| *t)
            .unwrap_or_else(|p| *p.into_inner())
    }
}
