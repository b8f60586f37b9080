//! One representation of time for both backends: UTC, microsecond precision (what PostgreSQL
//! keeps), so a value read back equals the value written and hashes computed over it agree.

use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// `t` in UTC. `to_offset` panics when the UTC form is not representable (e.g.
/// `9999-12-31T23:59:59-23:59` is in year 10000): such a value saturates to the nearest
/// representable instant instead. Inputs are range-checked at parsing
/// (`inventiv_domain::dates`), so this only keeps a stray value from panicking.
pub fn to_utc(t: OffsetDateTime) -> OffsetDateTime {
    t.checked_to_offset(UtcOffset::UTC).unwrap_or_else(|| {
        if t.year() > 0 {
            PrimitiveDateTime::MAX.assume_utc()
        } else {
            PrimitiveDateTime::MIN.assume_utc()
        }
    })
}

/// `t` in UTC with the sub-microsecond part dropped.
pub fn truncate_micros(t: OffsetDateTime) -> OffsetDateTime {
    let t = to_utc(t);
    // microsecond() < 1_000_000, so the product fits in u32 and is a valid nanosecond.
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]
        /// Every representable date with every offset: converted and formatted without a
        /// panic, and the text is the fixed-width form of an instant no later than `t`.
        #[test]
        fn any_offset_and_year_is_converted_and_formatted(
            // Many cases at the ends of the representable years, where offsets overflow.
            year in prop_oneof![2 => -9999i32..=9999, 1 => Just(9999), 1 => Just(-9999), 1 => 1969i32..=1970],
            ordinal in prop_oneof![1u16..=365, Just(365), Just(1)],
            secs in 0u32..86_400,
            nanos in 0u32..1_000_000_000,
            offset in -93_599i32..=93_599,
        ) {
            let date = time::Date::from_ordinal_date(year, ordinal).unwrap();
            let clock = time::Time::from_hms_nano(
                (secs / 3600) as u8, (secs / 60 % 60) as u8, (secs % 60) as u8, nanos,
            ).unwrap();
            let offset = UtcOffset::from_whole_seconds(offset).unwrap();
            let t = PrimitiveDateTime::new(date, clock).assume_offset(offset);
            let utc = truncate_micros(t);
            prop_assert_eq!(utc.offset(), UtcOffset::UTC);
            prop_assert_eq!(utc.nanosecond() % 1_000, 0);
            let text = rfc3339_micros(t);
            prop_assert!(text.ends_with('Z'));
            if inventiv_domain::dates::accepted(t).is_some() {
                prop_assert!(t - utc < time::Duration::microseconds(1));
                prop_assert_eq!(text.len(), "2026-11-28T14:00:00.123456Z".len());
            }
        }
    }

    #[test]
    fn a_utc_form_past_year_9999_saturates_instead_of_panicking() {
        let t = time::macros::datetime!(9999-12-31 23:59:59 -23:59);
        assert_eq!(to_utc(t), PrimitiveDateTime::MAX.assume_utc());
        let t = time::macros::datetime!(-9999-01-01 00:00 +23:59);
        assert_eq!(to_utc(t), PrimitiveDateTime::MIN.assume_utc());
    }
}
