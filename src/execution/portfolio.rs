//! Cash, positions, realized and unrealized PnL, fees, equity and drawdown, in the quote currency
//! of the traded pairs (`portfolio.quote`, BTC for the pump set).

use crate::domain::{Fill, Instrument, Position, Side};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// `[portfolio]` config.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PortfolioConfig {
    /// Quote currency of the account; intents on other quotes are refused by risk.
    pub quote: String,
    /// Starting cash in `quote`.
    pub starting_balance: Decimal,
    /// Other quote currencies counted 1:1 as `quote` (stablecoins: USDC for USDT). An
    /// approximation: their depeg risk is not modelled.
    pub quote_equivalents: Vec<String>,
}

impl Default for PortfolioConfig {
    fn default() -> Self {
        Self {
            quote: "BTC".into(),
            starting_balance: dec!(1),
            quote_equivalents: vec![],
        }
    }
}

impl PortfolioConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.quote.is_empty() {
            return Err("portfolio.quote: must name a currency, e.g. \"BTC\"".into());
        }
        if self.starting_balance <= Decimal::ZERO {
            return Err("portfolio.starting_balance: must be > 0".into());
        }
        Ok(())
    }
}

/// What strategy and risk need to know of the portfolio, sent once per batch.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct PortfolioView {
    /// Sequence number of the batch after which this view was taken.
    pub batch_seq: u64,
    pub cash: Decimal,
    pub equity: Decimal,
    pub peak_equity: Decimal,
    /// Notional of each open position at its last price.
    pub positions: BTreeMap<Instrument, Decimal>,
    /// Σ position notionals plus the remaining notional of live entry orders.
    pub gross_exposure: Decimal,
    /// Instruments with a position or a live entry order.
    pub busy: BTreeSet<Instrument>,
    /// Event time at which each instrument's last position closed.
    pub last_exit_ts: BTreeMap<Instrument, i64>,
    /// Realized PnL after fees per UTC day (day = ts_ms / 86 400 000).
    pub realized_by_day: BTreeMap<i64, Decimal>,
}

/// One open position, spot or perpetual: `qty` in base units, signed (short < 0); prices quote
/// per base; `unrealized_pnl` in the quote currency.
#[derive(Clone, Debug, PartialEq)]
pub struct Holding<'a> {
    pub instrument: &'a Instrument,
    pub qty: Decimal,
    pub entry_price: Decimal,
    pub mark_price: Decimal,
    pub unrealized_pnl: Decimal,
    pub perpetual: bool,
}

/// A closed round trip (entry to flat).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RoundTrip {
    pub instrument: Instrument,
    pub entry_order_id: String,
    pub opened_ts_ms: i64,
    pub closed_ts_ms: i64,
    pub avg_entry_price: Decimal,
    /// Realized PnL after all fees of the round trip, quote currency.
    pub pnl: Decimal,
    pub fees: Decimal,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Portfolio {
    pub quote: String,
    pub starting_balance: Decimal,
    pub cash: Decimal,
    pub positions: BTreeMap<Instrument, Position>,
    pub realized_pnl: Decimal,
    pub fees: Decimal,
    pub peak_equity: Decimal,
    /// Largest drawdown from peak equity seen, as a fraction (0.05 = 5 %).
    pub max_drawdown: Decimal,
    pub realized_by_day: BTreeMap<i64, Decimal>,
    pub last_exit_ts: BTreeMap<Instrument, i64>,
    pub round_trips: u64,
    pub wins: u64,
    /// Open perpetual positions ([`super::perp`]).
    #[serde(default)]
    pub perps: BTreeMap<Instrument, super::perp::PerpPosition>,
    /// Funding received (> 0) or paid (< 0) on perpetuals, quote currency.
    #[serde(default)]
    pub funding: Decimal,
}

impl Portfolio {
    pub fn new(cfg: &PortfolioConfig) -> Self {
        Self {
            quote: cfg.quote.clone(),
            starting_balance: cfg.starting_balance,
            cash: cfg.starting_balance,
            positions: BTreeMap::new(),
            realized_pnl: Decimal::ZERO,
            fees: Decimal::ZERO,
            peak_equity: cfg.starting_balance,
            max_drawdown: Decimal::ZERO,
            realized_by_day: BTreeMap::new(),
            last_exit_ts: BTreeMap::new(),
            round_trips: 0,
            wins: 0,
            perps: BTreeMap::new(),
            funding: Decimal::ZERO,
        }
    }

    /// Cash plus spot positions at their last prices plus the unrealized PnL of perpetuals.
    pub fn equity(&self) -> Decimal {
        self.cash
            + self
                .positions
                .values()
                .map(|p| p.notional())
                .sum::<Decimal>()
            + self.perp_unrealized_pnl()
    }

    /// Unrealized PnL of spot and perpetual positions at their last prices.
    pub fn unrealized_pnl(&self) -> Decimal {
        self.positions
            .values()
            .map(|p| p.unrealized_pnl())
            .sum::<Decimal>()
            + self.perp_unrealized_pnl()
    }

    /// Number of open positions, spot and perpetual.
    pub fn open_positions(&self) -> usize {
        self.positions.len() + self.perps.len()
    }

    /// Open positions, spot then perpetual, for display.
    pub fn holdings(&self) -> impl Iterator<Item = Holding<'_>> {
        let spot = self.positions.values().map(|p| Holding {
            instrument: &p.instrument,
            qty: p.qty,
            entry_price: p.avg_entry_price,
            mark_price: p.last_price,
            unrealized_pnl: p.unrealized_pnl(),
            perpetual: false,
        });
        spot.chain(self.perps.values().map(|p| Holding {
            instrument: &p.instrument,
            qty: p.qty,
            entry_price: p.entry_price,
            mark_price: p.mark_price,
            unrealized_pnl: p.unrealized_pnl(),
            perpetual: true,
        }))
    }

    /// Marks the instrument's position at `price` and updates peak equity and drawdown.
    pub fn mark(&mut self, instrument: &Instrument, price: Decimal) {
        if let Some(p) = self.positions.get_mut(instrument) {
            p.last_price = price;
            self.update_drawdown();
        }
    }

    pub(super) fn update_drawdown(&mut self) {
        let eq = self.equity();
        if eq > self.peak_equity {
            self.peak_equity = eq;
        } else if self.peak_equity > Decimal::ZERO {
            let dd = (self.peak_equity - eq) / self.peak_equity;
            if dd > self.max_drawdown {
                self.max_drawdown = dd;
            }
        }
    }

    /// Counts a closed round trip (spot or perpetual) and notes the instrument's exit time.
    pub(super) fn round_trip_closed(&mut self, rt: RoundTrip) -> RoundTrip {
        self.last_exit_ts
            .insert(rt.instrument.clone(), rt.closed_ts_ms);
        self.round_trips += 1;
        if rt.pnl > Decimal::ZERO {
            self.wins += 1;
        }
        rt
    }

    pub(super) fn add_realized(&mut self, ts_ms: i64, pnl: Decimal) {
        self.realized_pnl += pnl;
        *self
            .realized_by_day
            .entry(ts_ms.div_euclid(86_400_000))
            .or_default() += pnl;
    }

    /// Applies a fill; returns the closed round trip when the position went flat.
    /// Sells beyond the held quantity are a caller bug and are clipped (spot, long only).
    pub fn apply_fill(&mut self, f: &Fill, entry_order_id: &str) -> Option<RoundTrip> {
        match f.side {
            Side::Buy => {
                self.fees += f.fee;
                self.cash -= f.price * f.qty + f.fee;
                let p = self
                    .positions
                    .entry(f.instrument.clone())
                    .or_insert_with(|| Position {
                        instrument: f.instrument.clone(),
                        qty: Decimal::ZERO,
                        cost_basis: Decimal::ZERO,
                        avg_entry_price: Decimal::ZERO,
                        opened_ts_ms: f.ts_ms,
                        entry_order_id: entry_order_id.to_string(),
                        realized_pnl: Decimal::ZERO,
                        fees: Decimal::ZERO,
                        last_price: f.price,
                    });
                let new_qty = p.qty + f.qty;
                p.cost_basis += f.price * f.qty;
                p.avg_entry_price = (p.cost_basis / new_qty).round_dp(12);
                p.qty = new_qty;
                p.fees += f.fee;
                p.realized_pnl -= f.fee;
                p.last_price = f.price;
                self.add_realized(f.ts_ms, -f.fee);
                self.update_drawdown();
                None
            }
            Side::Sell => {
                // A sell with nothing held changes nothing (no fee booked either).
                let p = self.positions.get_mut(&f.instrument)?;
                self.fees += f.fee;
                let qty = f.qty.min(p.qty);
                // Closing removes the whole remaining cost, so a round trip's PnL is exact.
                let cost = if qty == p.qty {
                    p.cost_basis
                } else {
                    (p.cost_basis * qty / p.qty).round_dp(16)
                };
                p.cost_basis -= cost;
                let pnl = f.price * qty - cost - f.fee;
                self.cash += f.price * qty - f.fee;
                p.qty -= qty;
                p.fees += f.fee;
                p.realized_pnl += pnl;
                p.last_price = f.price;
                let flat = p.qty.is_zero();
                self.add_realized(f.ts_ms, pnl);
                if flat {
                    let p = self.positions.remove(&f.instrument).expect("present");
                    self.update_drawdown();
                    return Some(self.round_trip_closed(RoundTrip {
                        instrument: p.instrument,
                        entry_order_id: p.entry_order_id,
                        opened_ts_ms: p.opened_ts_ms,
                        closed_ts_ms: f.ts_ms,
                        avg_entry_price: p.avg_entry_price,
                        pnl: p.realized_pnl,
                        fees: p.fees,
                    }));
                }
                self.update_drawdown();
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Liquidity;

    fn fill(side: Side, ts: i64, px: Decimal, qty: Decimal, fee: Decimal) -> Fill {
        Fill {
            id: "f".into(),
            order_id: "o".into(),
            instrument: Instrument::new("X/BTC"),
            side,
            ts_ms: ts,
            price: px,
            qty,
            fee,
            liquidity: Liquidity::Taker,
        }
    }

    #[test]
    fn a_sell_with_nothing_held_books_no_fee() {
        let mut p = Portfolio::new(&PortfolioConfig::default());
        let before = (p.cash, p.fees, p.realized_pnl);
        assert!(p
            .apply_fill(&fill(Side::Sell, 1, dec!(2), dec!(1), dec!(0.001)), "e")
            .is_none());
        assert_eq!((p.cash, p.fees, p.realized_pnl), before);
    }

    #[test]
    fn round_trip_pnl_fees_and_drawdown() {
        let mut p = Portfolio::new(&PortfolioConfig::default());
        p.apply_fill(
            &fill(Side::Buy, 0, dec!(0.001), dec!(10), dec!(0.00001)),
            "o1",
        );
        p.apply_fill(
            &fill(Side::Buy, 1, dec!(0.003), dec!(10), dec!(0.00003)),
            "o1",
        );
        let pos = &p.positions[&Instrument::new("X/BTC")];
        assert_eq!(pos.avg_entry_price, dec!(0.002));
        assert_eq!(p.cash, dec!(1) - dec!(0.04) - dec!(0.00004));
        p.mark(&Instrument::new("X/BTC"), dec!(0.001));
        // Equity 1 − 0.04004 + 0.02 = 0.97996; peak was 1 − 0.00004 (after the first fees).
        assert_eq!(p.equity(), dec!(0.97996));
        assert!(p.max_drawdown > dec!(0.02));
        assert!(p
            .apply_fill(
                &fill(Side::Sell, 2, dec!(0.0025), dec!(5), dec!(0.00002)),
                "o1"
            )
            .is_none());
        let rt = p
            .apply_fill(
                &fill(Side::Sell, 3, dec!(0.0015), dec!(15), dec!(0.00003)),
                "o1",
            )
            .expect("flat");
        // (0.0025−0.002)·5 + (0.0015−0.002)·15 − fees (1+3+2+3)e-5 = 0.0025 − 0.0075 − 0.00009
        assert_eq!(rt.pnl, dec!(-0.00509));
        assert_eq!(rt.fees, dec!(0.00009));
        assert_eq!(p.realized_pnl, dec!(-0.00509));
        assert_eq!(p.cash, dec!(1) + dec!(-0.00509));
        assert_eq!(p.round_trips, 1);
        assert_eq!(p.wins, 0);
        assert_eq!(p.last_exit_ts[&Instrument::new("X/BTC")], 3);
        assert_eq!(p.realized_by_day[&0], dec!(-0.00509));
        assert_eq!(
            p.equity() - p.starting_balance,
            p.realized_pnl,
            "flat: equity change = realized"
        );
    }
}
