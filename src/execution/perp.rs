//! Perpetual futures positions (linear, quote-margined, as on Hyperliquid): long or short,
//! with leverage, margin used, realized and unrealized PnL and funding payments.
//!
//! Accounting: no notional changes hands; the account's cash moves by fees, realized PnL
//! (`closed qty × (exit − entry)`, sign by side) and funding. Equity adds the unrealized PnL
//! `qty × (mark − entry)` (qty signed: long > 0, short < 0). Margin used is
//! `|qty| × entry / leverage`.

use super::portfolio::{Portfolio, RoundTrip};
use crate::domain::{Fill, Instrument};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// An open perpetual position.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PerpPosition {
    pub instrument: Instrument,
    /// Base units, signed: long > 0, short < 0.
    pub qty: Decimal,
    /// Average entry price, quote per base.
    pub entry_price: Decimal,
    /// Leverage the position was opened with (≥ 1).
    pub leverage: Decimal,
    pub mark_price: Decimal,
    pub opened_ts_ms: i64,
    pub entry_order_id: String,
    /// Realized PnL of this position so far: closed PnL − fees + funding.
    pub realized_pnl: Decimal,
    pub fees: Decimal,
    /// Funding received (> 0) or paid (< 0) while open.
    pub funding: Decimal,
}

impl PerpPosition {
    pub fn unrealized_pnl(&self) -> Decimal {
        self.qty * (self.mark_price - self.entry_price)
    }
    /// |qty| × mark, quote currency.
    pub fn notional(&self) -> Decimal {
        self.qty.abs() * self.mark_price
    }
    /// Margin the position ties up: |qty| × entry / leverage.
    pub fn margin_used(&self) -> Decimal {
        self.qty.abs() * self.entry_price / self.leverage
    }
}

/// +1 for a long quantity, −1 for a short one.
fn sign(q: Decimal) -> Decimal {
    if q < Decimal::ZERO {
        -Decimal::ONE
    } else {
        Decimal::ONE
    }
}

impl Portfolio {
    /// Σ unrealized PnL of the perpetual positions.
    pub fn perp_unrealized_pnl(&self) -> Decimal {
        self.perps.values().map(|p| p.unrealized_pnl()).sum()
    }

    /// Σ margin used by the perpetual positions.
    pub fn margin_used(&self) -> Decimal {
        self.perps.values().map(|p| p.margin_used()).sum()
    }

    /// Applies a fill on a perpetual: opens, adds to, reduces, closes or flips the position
    /// (a flip closes at the fill price and opens the rest). Returns the round trip when the
    /// position went flat. `leverage` applies to a new position.
    pub fn apply_perp_fill(
        &mut self,
        f: &Fill,
        leverage: Decimal,
        entry_order_id: &str,
    ) -> Option<RoundTrip> {
        self.fees += f.fee;
        self.cash -= f.fee;
        self.add_realized(f.ts_ms, -f.fee);
        let delta = f.side.signed(f.qty);
        let p = self
            .perps
            .entry(f.instrument.clone())
            .or_insert_with(|| PerpPosition {
                instrument: f.instrument.clone(),
                qty: Decimal::ZERO,
                entry_price: f.price,
                leverage: leverage.max(Decimal::ONE),
                mark_price: f.price,
                opened_ts_ms: f.ts_ms,
                entry_order_id: entry_order_id.to_string(),
                realized_pnl: Decimal::ZERO,
                fees: Decimal::ZERO,
                funding: Decimal::ZERO,
            });
        p.fees += f.fee;
        p.realized_pnl -= f.fee;
        p.mark_price = f.price;
        let same_side = p.qty.is_zero() || (p.qty > Decimal::ZERO) == (delta > Decimal::ZERO);
        if same_side {
            let new_qty = p.qty + delta;
            p.entry_price =
                ((p.qty.abs() * p.entry_price + f.qty * f.price) / new_qty.abs()).round_dp(12);
            p.qty = new_qty;
            self.update_drawdown();
            return None;
        }
        // Reduces (or closes, or flips): realize PnL on the closed part.
        let closed = delta.abs().min(p.qty.abs());
        let pnl = closed * (f.price - p.entry_price) * sign(p.qty);
        p.qty += closed * sign(delta);
        p.realized_pnl += pnl;
        let flat = p.qty.is_zero();
        self.cash += pnl;
        self.add_realized(f.ts_ms, pnl);
        let rest = delta.abs() - closed;
        let rt = if flat {
            self.close_perp(&f.instrument, f.ts_ms)
        } else {
            None
        };
        if rest > Decimal::ZERO {
            // The flip's new side: the rest of the fill opens at its price (no fee twice).
            let open = Fill {
                qty: rest,
                fee: Decimal::ZERO,
                ..f.clone()
            };
            self.apply_perp_fill(&open, leverage, entry_order_id);
        }
        self.update_drawdown();
        rt
    }

    fn close_perp(&mut self, i: &Instrument, ts_ms: i64) -> Option<RoundTrip> {
        let p = self.perps.remove(i)?;
        Some(self.round_trip_closed(RoundTrip {
            instrument: p.instrument,
            entry_order_id: p.entry_order_id,
            opened_ts_ms: p.opened_ts_ms,
            closed_ts_ms: ts_ms,
            avg_entry_price: p.entry_price,
            pnl: p.realized_pnl,
            fees: p.fees,
        }))
    }

    /// Marks a perpetual position at `price` (mark price).
    pub fn mark_perp(&mut self, i: &Instrument, price: Decimal) {
        if let Some(p) = self.perps.get_mut(i) {
            p.mark_price = price;
            self.update_drawdown();
        }
    }

    /// A funding payment at `rate` (per funding interval, e.g. 0.0001 = 1 bp) and `mark`:
    /// longs pay shorts when the rate is positive. Returns the amount credited (< 0: paid).
    pub fn apply_funding(
        &mut self,
        i: &Instrument,
        rate: Decimal,
        mark: Decimal,
        ts_ms: i64,
    ) -> Decimal {
        let Some(p) = self.perps.get_mut(i) else {
            return Decimal::ZERO;
        };
        let amount = -p.qty * mark * rate;
        p.funding += amount;
        p.realized_pnl += amount;
        p.mark_price = mark;
        self.cash += amount;
        self.funding += amount;
        self.add_realized(ts_ms, amount);
        self.update_drawdown();
        amount
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Liquidity, Side};
    use crate::execution::PortfolioConfig;
    use rust_decimal_macros::dec;

    fn fill(side: Side, px: Decimal, qty: Decimal, fee: Decimal, ts: i64) -> Fill {
        Fill {
            id: "f".into(),
            order_id: "o".into(),
            instrument: Instrument::new("hyperliquid:BTC/USDC"),
            side,
            ts_ms: ts,
            price: px,
            qty,
            fee,
            liquidity: Liquidity::Taker,
        }
    }

    fn account() -> Portfolio {
        Portfolio::new(&PortfolioConfig {
            quote: "USDC".into(),
            starting_balance: dec!(100000),
            quote_equivalents: vec![],
        })
    }

    /// Short 2 BTC at 100 000 (5×, taker fee 3.5 bp), marked at 98 000, one funding of 1 bp,
    /// closed at 97 000. By hand:
    /// - entry fee 2 × 100 000 × 0.00035 = 70; margin used 200 000 / 5 = 40 000;
    /// - at mark 98 000: unrealized −2 × (98 000 − 100 000) = +4 000, equity 103 930;
    /// - funding −(−2) × 98 000 × 0.0001 = +19.6 (the short receives);
    /// - exit fee 2 × 97 000 × 0.00035 = 67.9; closed PnL −2 × (97 000 − 100 000) = +6 000;
    /// - round trip 6 000 − 70 − 67.9 + 19.6 = 5 881.7; cash 105 881.7.
    #[test]
    fn a_short_perpetual_by_hand() {
        let i = Instrument::new("hyperliquid:BTC/USDC");
        let mut a = account();
        assert!(a
            .apply_perp_fill(
                &fill(Side::Sell, dec!(100000), dec!(2), dec!(70), 1),
                dec!(5),
                "o1"
            )
            .is_none());
        assert_eq!(a.perps[&i].qty, dec!(-2));
        assert_eq!(a.margin_used(), dec!(40000));
        a.mark_perp(&i, dec!(98000));
        assert_eq!(a.perp_unrealized_pnl(), dec!(4000));
        assert_eq!(a.equity(), dec!(103930));
        assert_eq!(
            a.apply_funding(&i, dec!(0.0001), dec!(98000), 2),
            dec!(19.6)
        );
        let rt = a
            .apply_perp_fill(
                &fill(Side::Buy, dec!(97000), dec!(2), dec!(67.9), 3),
                dec!(5),
                "o2",
            )
            .expect("flat");
        assert_eq!(rt.pnl, dec!(5881.7));
        assert_eq!(rt.fees, dec!(137.9));
        assert_eq!(a.cash, dec!(105881.7));
        assert_eq!(a.equity(), dec!(105881.7));
        assert_eq!(a.realized_pnl, dec!(5881.7));
        assert_eq!(a.funding, dec!(19.6));
        assert!(a.perps.is_empty());
    }

    /// Long 1 at 100, sell 3 at 110: closes the long (+10) and opens a short of 2 at 110.
    #[test]
    fn a_flip_closes_then_opens_the_rest() {
        let i = Instrument::new("hyperliquid:BTC/USDC");
        let mut a = account();
        a.apply_perp_fill(
            &fill(Side::Buy, dec!(100), dec!(1), dec!(0), 1),
            dec!(2),
            "o1",
        );
        let rt = a
            .apply_perp_fill(
                &fill(Side::Sell, dec!(110), dec!(3), dec!(0), 2),
                dec!(2),
                "o2",
            )
            .expect("the long closed");
        assert_eq!(rt.pnl, dec!(10));
        let p = &a.perps[&i];
        assert_eq!((p.qty, p.entry_price), (dec!(-2), dec!(110)));
        assert_eq!(a.margin_used(), dec!(110));
        // A long pays funding at a positive rate; the short here receives it.
        assert_eq!(a.apply_funding(&i, dec!(0.001), dec!(100), 3), dec!(0.2));
    }
}
