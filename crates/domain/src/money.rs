//! Money arithmetic in integer micro-EUR (`i64`, 1 EUR = 1 000 000), never floats (SPEC §3).
//! Every partial amount is rounded **up** to the next micro-EUR, so a provider is never paid
//! less than its price; intermediates are 128-bit and every step is checked.

/// Why an amount could not be computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// A price or cost rate was negative.
    #[error("prices must not be negative")]
    NegativePrice,
    /// The result does not fit in an `i64` of micro-EUR.
    #[error("amount overflows")]
    Overflow,
}

fn non_negative(price: i64) -> Result<u128, MoneyError> {
    u128::try_from(price).map_err(|_| MoneyError::NegativePrice)
}

/// `ceil(units × rate / per)` in 128 bits.
fn ceil_mul_div(units: u128, rate: u128, per: u128) -> Result<u128, MoneyError> {
    units
        .checked_mul(rate)
        .map(|product| product.div_ceil(per))
        .ok_or(MoneyError::Overflow)
}

/// The charge for one inference request:
/// `ceil(input_tokens × price_input / 1000) + ceil(output_tokens × price_output / 1000)`,
/// each side rounded up separately. Prices are micro-EUR per 1000 tokens.
pub fn charged_micros(
    input_tokens: u64,
    output_tokens: u64,
    price_input_micros_per_1k: i64,
    price_output_micros_per_1k: i64,
) -> Result<i64, MoneyError> {
    let price_in = non_negative(price_input_micros_per_1k)?;
    let price_out = non_negative(price_output_micros_per_1k)?;
    let input = ceil_mul_div(u128::from(input_tokens), price_in, 1000)?;
    let output = ceil_mul_div(u128::from(output_tokens), price_out, 1000)?;
    let total = input.checked_add(output).ok_or(MoneyError::Overflow)?;
    i64::try_from(total).map_err(|_| MoneyError::Overflow)
}

/// The most a request may cost (SPEC §5.2), which admission reserves against spend caps:
/// each of `prompts` prompts is at most `context_length` input tokens and yields `choices`
/// answers of at most `max_output` tokens each. Charged the way [`charged_micros`] charges, so
/// any metered charge of such a request is at most this. `Overflow` when it does not fit an
/// `i64` (no cap can admit it).
pub fn worst_case_micros(
    prompts: u64,
    choices: u64,
    context_length: u64,
    max_output: u64,
    price_input_micros_per_1k: i64,
    price_output_micros_per_1k: i64,
) -> Result<i64, MoneyError> {
    let input = prompts
        .checked_mul(context_length)
        .ok_or(MoneyError::Overflow)?;
    let output = prompts
        .checked_mul(choices)
        .and_then(|n| n.checked_mul(max_output))
        .ok_or(MoneyError::Overflow)?;
    charged_micros(
        input,
        output,
        price_input_micros_per_1k,
        price_output_micros_per_1k,
    )
}

/// The cost accrued by an instance running `seconds` at `hourly_cost_micros`:
/// `ceil(hourly × seconds / 3600)`; a negative duration counts as zero.
pub fn accrued_cost_micros(hourly_cost_micros: i64, seconds: i64) -> Result<i64, MoneyError> {
    let hourly = non_negative(hourly_cost_micros)?;
    let seconds = u128::try_from(seconds).unwrap_or(0);
    let cost = ceil_mul_div(hourly, seconds, 3600)?;
    i64::try_from(cost).map_err(|_| MoneyError::Overflow)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_worst_case_bounds_every_charge_of_the_request() {
        // 1 prompt of ≤ 4096 tokens, 2 choices of ≤ 100 tokens, at 1000 / 2000 µ€ per 1k.
        assert_eq!(
            worst_case_micros(1, 2, 4096, 100, 1000, 2000).unwrap(),
            4096 + 400
        );
        assert_eq!(worst_case_micros(3, 1, 10, 0, 1000, 0).unwrap(), 30);
        assert_eq!(
            worst_case_micros(u64::MAX, 2, 2, 2, 1, 1),
            Err(MoneyError::Overflow)
        );
        assert_eq!(
            worst_case_micros(1, 1, u64::MAX / 2, 1, 1_000_000_000, 1),
            Err(MoneyError::Overflow)
        );
    }

    proptest! {
        #[test]
        fn no_charge_within_the_bounds_passes_the_worst_case(
            ctx in 1u64..200_000, max_out in 0u64..200_000, n in 1u64..8,
            used_in in 0u64..200_000, used_out in 0u64..1_600_000,
            p_in in 0i64..1_000_000_000, p_out in 0i64..1_000_000_000,
        ) {
            let worst = worst_case_micros(1, n, ctx, max_out, p_in, p_out).unwrap();
            let (used_in, used_out) = (used_in.min(ctx), used_out.min(n * max_out));
            prop_assert!(charged_micros(used_in, used_out, p_in, p_out).unwrap() <= worst);
        }
    }

    #[test]
    fn charged_table() {
        // (in, out, price in, price out, expected)
        let cases: &[(u64, u64, i64, i64, i64)] = &[
            (0, 0, 1_000, 2_000, 0),
            (1000, 1000, 1_000, 2_000, 3_000),
            (1, 0, 1_000, 0, 1),
            (1, 0, 1, 0, 1),      // 0.001 µ€ rounds up to 1
            (1, 1, 1, 1, 2),      // each side rounded up separately
            (999, 0, 1, 0, 1),    // 0.999 -> 1
            (1001, 0, 1, 0, 2),   // 1.001 -> 2
            (1500, 500, 3, 7, 9), // ceil(4.5)=5 + ceil(3.5)=4
            (10_000, 0, 0, 0, 0),
            (123_456, 654_321, 150, 600, 18_519 + 392_593),
        ];
        for &(input, output, p_in, p_out, expected) in cases {
            assert_eq!(
                charged_micros(input, output, p_in, p_out),
                Ok(expected),
                "{input} in @ {p_in}, {output} out @ {p_out}"
            );
        }
    }

    #[test]
    fn charged_errors() {
        assert_eq!(charged_micros(1, 1, -1, 0), Err(MoneyError::NegativePrice));
        assert_eq!(charged_micros(1, 1, 0, -1), Err(MoneyError::NegativePrice));
        assert_eq!(
            charged_micros(0, 0, i64::MIN, 0),
            Err(MoneyError::NegativePrice)
        );
        assert_eq!(
            charged_micros(u64::MAX, 0, i64::MAX, 0),
            Err(MoneyError::Overflow)
        );
        assert_eq!(
            charged_micros(u64::MAX, u64::MAX, 1_000, 1_000),
            Err(MoneyError::Overflow)
        );
        // Just fits: i64::MAX µ€ exactly.
        assert_eq!(charged_micros(1000, 0, i64::MAX, 0), Ok(i64::MAX));
        assert_eq!(
            charged_micros(1000, 1, i64::MAX, 1),
            Err(MoneyError::Overflow)
        );
    }

    #[test]
    fn accrued_table() {
        let cases: &[(i64, i64, i64)] = &[
            (3_600_000, 3600, 3_600_000),
            (3_600_000, 1, 1_000),
            (1, 1, 1), // 1/3600 rounds up
            (1_000_000, 1800, 500_000),
            (1_000_000, 1, 278), // 277.7… -> 278
            (1_000_000, 0, 0),
            (1_000_000, -5, 0),
            (0, 10_000, 0),
        ];
        for &(hourly, seconds, expected) in cases {
            assert_eq!(
                accrued_cost_micros(hourly, seconds),
                Ok(expected),
                "{hourly}/h for {seconds}s"
            );
        }
        assert_eq!(accrued_cost_micros(-1, 10), Err(MoneyError::NegativePrice));
        assert_eq!(
            accrued_cost_micros(i64::MAX, i64::MAX),
            Err(MoneyError::Overflow)
        );
    }

    fn price() -> impl Strategy<Value = i64> {
        0..=10_000_000_i64
    }

    fn tokens() -> impl Strategy<Value = u64> {
        0..=100_000_000_u64
    }

    proptest! {
        #[test]
        fn charged_is_the_ceiling_of_each_side(
            input in tokens(), output in tokens(), p_in in price(), p_out in price()
        ) {
            let charged = charged_micros(input, output, p_in, p_out).unwrap();
            let exact_in = i128::from(input) * i128::from(p_in);
            let exact_out = i128::from(output) * i128::from(p_out);
            let c = i128::from(charged);
            // Never below the exact amount, less than one micro-EUR above it per side.
            prop_assert!(c * 1000 >= exact_in + exact_out);
            prop_assert!(c * 1000 < exact_in + exact_out + 2000);
        }

        #[test]
        fn charged_is_exact_when_divisible(
            thousands_in in 0..=100_000_u64, thousands_out in 0..=100_000_u64,
            p_in in price(), p_out in price()
        ) {
            let charged = charged_micros(thousands_in * 1000, thousands_out * 1000, p_in, p_out).unwrap();
            let expected = i128::from(thousands_in) * i128::from(p_in)
                + i128::from(thousands_out) * i128::from(p_out);
            prop_assert_eq!(i128::from(charged), expected);
        }

        #[test]
        fn charged_is_monotonic(
            input in tokens(), output in tokens(), p_in in price(), p_out in price(),
            more_in in 0..=1000_u64, more_out in 0..=1000_u64, more_price in 0..=1000_i64,
        ) {
            let base = charged_micros(input, output, p_in, p_out).unwrap();
            prop_assert!(charged_micros(input + more_in, output + more_out, p_in, p_out).unwrap() >= base);
            prop_assert!(charged_micros(input, output, p_in + more_price, p_out + more_price).unwrap() >= base);
        }

        #[test]
        fn accrued_is_a_monotonic_ceiling(
            hourly in 0..=100_000_000_i64, seconds in 0..=10_000_000_i64, more in 0..=10_000_i64
        ) {
            let cost = accrued_cost_micros(hourly, seconds).unwrap();
            let exact = i128::from(hourly) * i128::from(seconds);
            prop_assert!(i128::from(cost) * 3600 >= exact);
            prop_assert!(i128::from(cost) * 3600 < exact + 3600);
            prop_assert!(accrued_cost_micros(hourly, seconds + more).unwrap() >= cost);
            let hours = seconds / 3600;
            prop_assert_eq!(
                i128::from(accrued_cost_micros(hourly, hours * 3600).unwrap()),
                i128::from(hourly) * i128::from(hours)
            );
        }
    }
}
