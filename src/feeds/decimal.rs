//! Decimal parsing for venue numbers, including scientific notation (`5.26e-06`).

use rust_decimal::Decimal;
use std::str::FromStr;

/// Parses a plain or scientific decimal string. `None` when it is not a number.
pub fn parse_decimal(s: &str) -> Option<Decimal> {
    let s = s.trim();
    if s.bytes().any(|b| b == b'e' || b == b'E') {
        Decimal::from_scientific(s).ok().map(|d| d.normalize())
    } else {
        Decimal::from_str(s).ok().map(|d| d.normalize())
    }
}

/// Parses a strictly positive price or quantity, with a reason on failure.
pub fn parse_positive(s: &str, what: &str) -> Result<Decimal, String> {
    match parse_decimal(s) {
        Some(d) if d > Decimal::ZERO => Ok(d),
        Some(_) => Err(format!("{what} must be > 0, got {s:?}")),
        None => Err(format!("bad {what} {s:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn scientific_and_plain() {
        assert_eq!(parse_decimal("5.26e-06"), Some(dec!(0.00000526)));
        assert_eq!(parse_decimal("1.173E-05"), Some(dec!(0.00001173)));
        assert_eq!(parse_decimal("1670.0"), Some(dec!(1670)));
        assert_eq!(parse_decimal("0.35280000"), Some(dec!(0.3528)));
        assert_eq!(parse_decimal("abc"), None);
        assert!(parse_positive("0", "price").is_err());
        assert!(parse_positive("-1", "qty").is_err());
    }
}
