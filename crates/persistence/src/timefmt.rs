//! One representation of time for both backends: UTC, microsecond precision (what PostgreSQL
//! keeps), so a value read back equals the value written and hashes computed over it agree.

use time::{OffsetDateTime, UtcOffset};

/// `t` in UTC with the sub-microsecond part dropped.
pub fn truncate_micros(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.to_offset(UtcOffset::UTC);
    let micros = t.microsecond();
    t.replace_nanosecond(micros * 1_000).unwrap_or(t)
}

/// The current time, truncated to microseconds.
pub fn now_utc_micros() -> OffsetDateTime {
    truncate_micros(OffsetDateTime::now_utc())
}

/// `2026-11-28T14:00:00.123456Z`: fixed width, so text order is time order.
pub fn rfc3339_micros(t: OffsetDateTime) -> String {
    let t = truncate_micros(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}
