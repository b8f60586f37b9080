//! The instants a client may send (issue 16): from 1970-01-01T00:00:00Z to the end of year
//! 9999 in UTC. Outside that, a date is a mistake or an attack: before 1970 nothing exists
//! here, and after 9999 the UTC form of a legal RFC 3339 text (`9999-12-31T23:59:59-23:59`)
//! is not representable at all, so converting it would overflow. Inputs are checked against
//! this rule when they are parsed, before anything computes with them.

use time::{OffsetDateTime, UtcOffset};

pub const MIN_YEAR: i32 = 1970;
pub const MAX_YEAR: i32 = 9999;

/// Why a date is refused, worded for the `fields` of a validation error.
pub const OUT_OF_RANGE: &str = "must be an RFC 3339 date-time between 1970 and 9999 (UTC)";

/// `t` in UTC if it is an accepted instant; `None` otherwise (never panics).
pub fn accepted(t: OffsetDateTime) -> Option<OffsetDateTime> {
    let utc = t.checked_to_offset(UtcOffset::UTC)?;
    (MIN_YEAR..=MAX_YEAR).contains(&utc.year()).then_some(utc)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::datetime;

    #[test]
    fn the_bounds_are_inclusive_and_offsets_count() {
        assert!(accepted(datetime!(1970-01-01 00:00 UTC)).is_some());
        assert!(accepted(datetime!(9999-12-31 23:59:59.999_999 UTC)).is_some());
        assert!(accepted(datetime!(1969-12-31 23:59:59.999_999 UTC)).is_none());
        assert!(accepted(datetime!(9999-12-31 23:59:59 -23:59)).is_none());
        assert!(accepted(datetime!(1970-01-01 00:30 +01:00)).is_none());
        assert!(accepted(datetime!(1969-12-31 23:30 -01:00)).is_some());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]
        /// Any representable date with any offset: an answer, never a panic, and an accepted
        /// date is the same instant, in UTC, within the bounds.
        #[test]
        fn any_offset_and_year_gets_an_answer(
            // Many cases at the ends of the representable years, where offsets overflow.
            year in prop_oneof![2 => -9999i32..=9999, 1 => Just(9999), 1 => Just(-9999), 1 => 1969i32..=1970],
            ordinal in prop_oneof![1u16..=365, Just(365), Just(1)],
            secs in 0u32..86_400,
            nanos in 0u32..1_000_000_000,
            offset in -93_599i32..=93_599,
        ) {
            let date = time::Date::from_ordinal_date(year, ordinal).unwrap();
            let time = time::Time::from_hms_nano(
                (secs / 3600) as u8, (secs / 60 % 60) as u8, (secs % 60) as u8, nanos,
            ).unwrap();
            let offset = UtcOffset::from_whole_seconds(offset).unwrap();
            let t = time::PrimitiveDateTime::new(date, time).assume_offset(offset);
            if let Some(utc) = accepted(t) {
                prop_assert_eq!(utc, t);
                prop_assert_eq!(utc.offset(), UtcOffset::UTC);
                prop_assert!((MIN_YEAR..=MAX_YEAR).contains(&utc.year()));
            }
        }
    }
}
