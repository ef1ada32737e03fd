//! Decimal parsing for venue numbers, including scientific notation (`5.26e-06`).

use rust_decimal::Decimal;
use std::str::FromStr;

/// Fast path for plain venue numbers (`65114.20`, `0.00000638`) and their scientific form
/// (`5.26e-06`, nine in ten prices of the Binance CSVs): digits with at most one dot, up to 28
/// significant digits, then optionally `e` or `E`, an optional `-` and one or two digits, when the
/// result needs no more than 28 decimal places and no multiplication. `None` for anything else
/// (then [`parse_general`] decides); a `Some` equals [`parse_general`]'s value, with whether an
/// exponent was applied.
fn parse_fast(s: &str) -> Option<(Decimal, bool)> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 40 {
        return None;
    }
    // u64 holds 19 digits; venue numbers rarely have more (then i128 below).
    let (mut mantissa, mut scale, mut seen_dot, mut digits) = (0u64, 0u32, false, 0u32);
    let mut wide: i128 = 0;
    let mut exponent = None;
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'0'..=b'9' => {
                // Past 28 digits it is no Decimal; stop before the i128 overflows.
                if digits == 28 {
                    return None;
                }
                if digits < 19 {
                    mantissa = mantissa * 10 + (c - b'0') as u64;
                } else {
                    if digits == 19 {
                        wide = mantissa as i128;
                    }
                    wide = wide * 10 + (c - b'0') as i128;
                }
                digits += 1;
                if seen_dot {
                    scale += 1;
                }
            }
            b'.' if !seen_dot => seen_dot = true,
            // Only after a digit, and with one before the number, as `Decimal::from_str` wants.
            b'e' | b'E' if b[0].is_ascii_digit() && b[i - 1].is_ascii_digit() => {
                exponent = Some(&b[i + 1..]);
                break;
            }
            _ => return None,
        }
    }
    if digits == 0 || digits > 28 || scale > 28 {
        return None;
    }
    if let Some(e) = exponent {
        scale = rescaled(scale, e)?;
    }
    let m = if digits <= 19 { mantissa as i128 } else { wide };
    let d = Decimal::try_from_i128_with_scale(m, scale).ok()?;
    Some((d, exponent.is_some()))
}

/// The scale of a mantissa of scale `scale` times 10^`exponent` (`-6`, `06`, `2`), when it is
/// one or two digits and the result keeps 0..=28 decimal places; `None` otherwise.
fn rescaled(scale: u32, exponent: &[u8]) -> Option<u32> {
    let (negative, digits) = match exponent.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, exponent),
    };
    if digits.is_empty() || digits.len() > 2 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let e = digits
        .iter()
        .fold(0u32, |a, d| a * 10 + u32::from(d - b'0'));
    match negative {
        true => Some(scale + e).filter(|&s| s <= 28),
        false => scale.checked_sub(e),
    }
}

/// The general parser: `Decimal::from_scientific` or `from_str` of the trimmed string.
fn parse_general(s: &str) -> Option<Decimal> {
    let s = s.trim();
    if s.bytes().any(|b| b == b'e' || b == b'E') {
        Decimal::from_scientific(s).ok().map(|d| d.normalize())
    } else {
        Decimal::from_str(s).ok().map(|d| d.normalize())
    }
}

/// Parses a plain or scientific decimal string. `None` when it is not a number.
pub fn parse_decimal(s: &str) -> Option<Decimal> {
    match parse_fast(s) {
        Some((d, _)) => Some(d.normalize()),
        None => parse_general(s),
    }
}

/// The largest price or quantity a venue number may have (10^14). Any product of two stays far
/// inside `Decimal`'s range (~7.9 × 10^28), so one absurd print cannot make notional, fee or
/// sizing arithmetic overflow (a panic) downstream: it is refused here as malformed.
pub const MAX_VENUE_NUMBER: Decimal = Decimal::from_parts(276447232, 23283, 0, false, 0);

/// `d` when its magnitude is at most [`MAX_VENUE_NUMBER`], else an error naming `what`.
pub fn in_range(d: Decimal, what: &str) -> Result<Decimal, String> {
    match d.abs() <= MAX_VENUE_NUMBER {
        true => Ok(d),
        false => Err(format!("{what} {d} is out of range (above 1e14)")),
    }
}

/// Like [`parse_positive`], for live venue frames: plain numbers keep their venue scale
/// (`0.35280000` stays 8 dp, equal in value), skipping normalisation on the hot path.
pub fn parse_positive_fast(s: &str, what: &str) -> Result<Decimal, String> {
    let fast = parse_fast(s).map(|(d, scientific)| if scientific { d.normalize() } else { d });
    match fast {
        Some(d) if d > Decimal::ZERO => in_range(d, what),
        Some(_) => Err(format!("{what} must be > 0, got {s:?}")),
        None => parse_positive(s, what),
    }
}

/// Parses a strictly positive price or quantity, with a reason on failure.
pub fn parse_positive(s: &str, what: &str) -> Result<Decimal, String> {
    match parse_decimal(s) {
        Some(d) if d > Decimal::ZERO => in_range(d, what),
        Some(_) => Err(format!("{what} must be > 0, got {s:?}")),
        None => Err(format!("bad {what} {s:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    /// Found by `smartflow fuzz` (debug build): 39 or 40 digits overflowed the i128
    /// accumulator (a panic with overflow checks, a wrapped number without).
    #[test]
    fn forty_digits_are_not_a_number_and_do_not_overflow() {
        for s in [
            "184467484467440737095516154073709551615",
            &"9".repeat(40),
            &"9".repeat(29),
        ] {
            assert_eq!(parse_decimal(s), None, "{s}");
            assert!(parse_positive_fast(s, "px").is_err());
        }
        let d28 = "9".repeat(28);
        assert_eq!(parse_decimal(&d28), Decimal::from_str(&d28).ok());
    }

    #[test]
    fn scientific_and_plain() {
        assert_eq!(parse_decimal("5.26e-06"), Some(dec!(0.00000526)));
        assert_eq!(parse_decimal("1.173E-05"), Some(dec!(0.00001173)));
        assert_eq!(parse_decimal("1670.0"), Some(dec!(1670)));
        assert_eq!(parse_decimal("0.35280000"), Some(dec!(0.3528)));
        assert_eq!(parse_decimal("abc"), None);
        assert!(parse_positive("0", "price").is_err());
        assert!(parse_positive("-1", "qty").is_err());
        assert_eq!(parse_positive_fast("65114.20", "p"), Ok(dec!(65114.2)));
        assert_eq!(parse_positive_fast("0.00000638", "p"), Ok(dec!(0.00000638)));
        assert_eq!(parse_positive_fast("5.26e-06", "p"), Ok(dec!(0.00000526)));
        // An exponent's result is normalised, as the general parser's was (not 0.0000010).
        assert_eq!(
            parse_positive_fast("1.0e-06", "p").map(|d| d.scale()),
            Ok(6)
        );
        assert!(parse_positive_fast("0.000", "q").is_err());
        assert!(parse_positive_fast("1.2.3", "q").is_err());
        assert!(parse_positive_fast("", "q").is_err());
        assert_eq!(parse_decimal("12"), Some(dec!(12)));
        assert_eq!(
            parse_decimal("1234567890.1234567890123"),
            Some(dec!(1234567890.1234567890123))
        );
    }

    /// The fast path agrees with the general parser, scientific notation included; the real
    /// strings are from the Binance CSVs (`1.173e-05`) and venue frames.
    #[test]
    fn the_fast_path_equals_the_general_parser() {
        let cases = [
            "1.173e-05",
            "5.26e-06",
            "1.2E-7",
            "7e-08",
            "1.0e-06",
            "12.5e1",
            "1.25e2",
            "125e-0",
            "1e-28",
            "1e-29",
            "0.1e-27",
            "0.1e-28",
            "1e2",
            "1.5e+3",
            "1e",
            "1e-",
            "e5",
            ".5e-3",
            "5.e-3",
            "1e-123",
            "1e-5e",
            "1e--5",
            "0e-5",
            "0.00000638",
            "65114.20",
            "1.2.3",
            "-1e-5",
            " 1e-5",
            "9999999999999999999999999999e-28",
            "99999999999999999999e-10",
        ];
        for s in cases {
            assert_eq!(parse_decimal(s), parse_general(s), "{s:?}");
            let fast = parse_fast(s).map(|(d, _)| d.normalize());
            assert!(fast.is_none() || fast == parse_general(s), "{s:?}");
        }
        // The exponent is applied by the fast path, not handed on.
        for s in ["1.173e-05", "12.5e1", "1e-28", "0e-5"] {
            assert!(parse_fast(s).is_some(), "{s:?}");
        }
        for s in ["1e2", "1e-29", "1.5e+3", "1e-123", ".5e-3", "5.e-3"] {
            assert!(parse_fast(s).is_none(), "{s:?}");
        }
    }

    /// 28-digit prints parse as `Decimal`s, and their products overflow (a panic in `*`).
    #[test]
    fn absurd_magnitudes_are_refused_at_the_edge() {
        assert_eq!(MAX_VENUE_NUMBER, dec!(100000000000000));
        let huge = "9999999999999999999999999999";
        assert!(parse_positive_fast(huge, "price")
            .unwrap_err()
            .contains("out of range"));
        assert!(parse_positive("1e20", "qty")
            .unwrap_err()
            .contains("out of range"));
        assert!(parse_positive_fast("100000000000000", "qty").is_ok());
        assert!(parse_positive_fast("100000000000000.1", "qty").is_err());
        let p = parse_positive_fast("99999999999999", "p").unwrap();
        assert!(
            p.checked_mul(p).is_some(),
            "the largest product stays in range"
        );
    }
}
