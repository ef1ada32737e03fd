//! Instrument specs: the venue's trading rules for one instrument (spot or perpetual, tick and
//! lot size, minimum notional, maximum leverage), from config (`[instruments."NAME"]`) or venue
//! metadata, applied at the execution edge: order quantities round down to the lot, prices to
//! the tick, orders under the minimum notional are rejected.

use super::Side;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Spot pair or perpetual future.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarketKind {
    Spot,
    Perpetual,
}

fn one() -> Decimal {
    Decimal::ONE
}

/// `[instruments."venue:BASE/QUOTE"]` config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstrumentSpec {
    pub kind: MarketKind,
    /// Price increment, quote per base.
    pub tick_size: Decimal,
    /// Quantity increment, base units.
    pub lot_size: Decimal,
    /// Smallest order notional the venue accepts, quote currency.
    #[serde(default)]
    pub min_notional: Decimal,
    /// Highest leverage (perpetuals; 1 for spot).
    #[serde(default = "one")]
    pub max_leverage: Decimal,
    /// At most this many significant figures in a price (Hyperliquid: 5), on top of the tick.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_sig_figs: Option<u32>,
}

impl InstrumentSpec {
    /// Errors name the key: `instruments."NAME".tick_size: must be > 0`.
    pub fn validate(&self, name: &str) -> Result<(), String> {
        let key = |k: &str| format!("instruments.{name:?}.{k}");
        if self.tick_size <= Decimal::ZERO {
            return Err(format!("{}: must be > 0", key("tick_size")));
        }
        if self.lot_size <= Decimal::ZERO {
            return Err(format!("{}: must be > 0", key("lot_size")));
        }
        if self.min_notional < Decimal::ZERO {
            return Err(format!("{}: must be ≥ 0", key("min_notional")));
        }
        if self.max_leverage < Decimal::ONE
            || (self.kind == MarketKind::Spot && self.max_leverage != Decimal::ONE)
        {
            return Err(format!(
                "{}: must be ≥ 1 (and 1 for spot)",
                key("max_leverage")
            ));
        }
        Ok(())
    }

    /// `qty` rounded down to the lot.
    pub fn round_qty(&self, qty: Decimal) -> Decimal {
        ((qty / self.lot_size).floor() * self.lot_size).normalize()
    }

    /// A limit price on the passive side of the tick (and of the significant-figure limit):
    /// buys round down, sells up.
    pub fn round_limit(&self, price: Decimal, side: Side) -> Decimal {
        let mut step = self.tick_size;
        if let Some(n) = self.max_sig_figs.filter(|_| price > Decimal::ZERO) {
            // The unit of the n-th significant figure of `price`, if coarser than the tick.
            let digits = price.trunc().to_string().trim_start_matches('0').len() as i64;
            let exp = digits - n as i64;
            let unit = if exp >= 0 {
                Decimal::from(10u64.pow(exp as u32))
            } else {
                Decimal::new(1, (-exp).min(28) as u32)
            };
            step = step.max(unit);
        }
        let t = price / step;
        let t = match side {
            Side::Buy => t.floor(),
            Side::Sell => t.ceil(),
        };
        (t * step).normalize()
    }

    /// A stop trigger rounded away from the market: a sell stop down, a buy stop up.
    pub fn round_trigger(&self, price: Decimal, side: Side) -> Decimal {
        self.round_limit(price, side.opposite())
    }

    /// The quantity an entry of `qty` at about `price` becomes, or why the venue would reject it.
    pub fn entry_qty(&self, qty: Decimal, price: Decimal) -> Result<Decimal, String> {
        let q = self.round_qty(qty);
        if q <= Decimal::ZERO {
            return Err(format!(
                "quantity {qty} is below the lot size {}",
                self.lot_size
            ));
        }
        if q * price < self.min_notional {
            return Err(format!(
                "notional {} is below the minimum {}",
                q * price,
                self.min_notional
            ));
        }
        Ok(q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn spec() -> InstrumentSpec {
        InstrumentSpec {
            kind: MarketKind::Perpetual,
            tick_size: dec!(0.5),
            lot_size: dec!(0.001),
            min_notional: dec!(10),
            max_leverage: dec!(20),
            max_sig_figs: None,
        }
    }

    #[test]
    fn rounding_and_minimum_notional() {
        let s = spec();
        assert_eq!(s.round_qty(dec!(0.0129)), dec!(0.012));
        assert_eq!(s.round_limit(dec!(100.3), Side::Buy), dec!(100));
        assert_eq!(s.round_limit(dec!(100.3), Side::Sell), dec!(100.5));
        assert_eq!(s.round_trigger(dec!(100.3), Side::Sell), dec!(100));
        assert_eq!(s.entry_qty(dec!(0.2345), dec!(100)), Ok(dec!(0.234)));
        assert!(s
            .entry_qty(dec!(0.05), dec!(100))
            .unwrap_err()
            .contains("minimum 10"));
        assert!(s
            .entry_qty(dec!(0.0004), dec!(100))
            .unwrap_err()
            .contains("lot size"));
    }

    #[test]
    fn significant_figures_coarsen_the_tick_for_large_prices() {
        let mut s = spec();
        s.tick_size = dec!(0.1);
        s.max_sig_figs = Some(5);
        // 83 712.37 has 5 integer digits: whole units; 1.234567 keeps the 0.1 tick.
        assert_eq!(s.round_limit(dec!(83712.37), Side::Sell), dec!(83713));
        assert_eq!(s.round_limit(dec!(183712.37), Side::Buy), dec!(183710));
        assert_eq!(s.round_limit(dec!(1.234567), Side::Buy), dec!(1.2));
    }

    #[test]
    fn validation_names_the_key() {
        let mut s = spec();
        s.tick_size = dec!(0);
        assert!(s
            .validate("X")
            .unwrap_err()
            .starts_with("instruments.\"X\".tick_size"));
        let mut s = spec();
        s.kind = MarketKind::Spot;
        assert!(s.validate("X").unwrap_err().contains("max_leverage"));
    }
}
