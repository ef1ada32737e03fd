//! Decimal prices and sizes as floats, for the feature math.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

/// 10^k for k ≤ 19, the powers that fit a u64 (and are exact as f64).
const POW10: [u64; 20] = {
    let mut p = [1u64; 20];
    let mut k = 1;
    while k < 20 {
        p[k] = p[k - 1] * 10;
        k += 1;
    }
    p
};

/// `d` as f64, bit-identical to rust_decimal's `to_f64`: the same steps (integral part, fraction
/// over 10^scale, rounding back to `scale` digits), done in u64 instead of u128 arithmetic when the
/// mantissa fits 64 bits and the scale is ≤ 19, as every exchange price and size does. The 128-bit
/// division and conversions were 4 % of a replay's time, on the thread that builds the features.
pub fn to_f64(d: Decimal) -> f64 {
    let scale = d.scale() as usize;
    let abs = u64::try_from(d.mantissa().unsigned_abs()).ok();
    let Some(abs) = abs.filter(|_| scale < POW10.len()) else {
        return d.to_f64().unwrap_or(f64::NAN);
    };
    let neg = d.is_sign_negative();
    let sign = |v: f64| if neg { -v } else { v };
    if scale == 0 {
        return sign(abs as f64);
    }
    let precision = POW10[scale];
    let integral = (abs / precision) as f64;
    let frac = (abs % precision) as f64 / precision as f64;
    if frac == 0.0 {
        return sign(integral);
    }
    // rust_decimal rounds with `10f64.powi(scale)`: exact up to 10^22, like this table's value.
    let round_to = precision as f64;
    sign(((integral + frac) * round_to).round() / round_to)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::iforest::SplitMix64;

    #[test]
    fn gives_rust_decimals_bits_for_every_scale_and_size() {
        let mut rng = SplitMix64::new(5);
        let check = |m: i128, scale: u32| {
            let d = Decimal::from_i128_with_scale(m, scale);
            let want = d.to_f64().unwrap();
            assert_eq!(to_f64(d).to_bits(), want.to_bits(), "{d} (scale {scale})");
        };
        for scale in 0..=28 {
            for m in [0i128, 1, -1, 7, 10, 999_999, 1 << 53, (1 << 53) + 1] {
                check(m, scale);
            }
            for m in [u64::MAX as i128, u64::MAX as i128 + 1, -(u64::MAX as i128)] {
                check(m, scale);
            }
            for _ in 0..2000 {
                let bits = 1 + rng.below(90);
                let m = (rng.next_u64() as i128 | ((rng.next_u64() as i128) << 64)) >> (127 - bits);
                check(m, scale);
            }
        }
        for s in [
            "0.00001234",
            "43210.5",
            "1e-8",
            "-0.000",
            "12.30000000",
            "0.1",
            "0.3",
        ] {
            let d: Decimal = s.parse().or_else(|_| Decimal::from_scientific(s)).unwrap();
            assert_eq!(to_f64(d).to_bits(), d.to_f64().unwrap().to_bits(), "{s}");
        }
    }
}
