//! Fill simulator: a paper venue that fills orders against the public trades that follow them.
//!
//! Fill model (event time only):
//! - an order can fill from `created + latency_ms`;
//! - **market** orders take liquidity from each following trade of the instrument, at most
//!   `max_volume_share` of that trade's quantity (so large orders fill partially over several
//!   trades), at the trade price worsened by `slippage_bps`, paying `taker_fee_bps`; a market
//!   order that opens or adds (not reduce-only) expires when not filled within
//!   `market_order_timeout_ms` (never chase a pump); reduce-only exits work until filled;
//! - **limit** orders fill at their price when a trade goes through it (sell: trade price above
//!   the limit; buy: below), capped by the same volume share, paying `maker_fee_bps`;
//! - **stop** orders become market orders when a trade reaches the trigger;
//! - reduce-only orders never take more than the position they reduce.

use super::venue::{Venue, VenueEvent};
use crate::domain::{Fill, Instrument, Liquidity, MarketEvent, Order, OrderStatus, OrderType};
use crate::domain::{Side, Trade};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `[execution]` config: the fill model of the simulator.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ExecConfig {
    /// Delay between an order's creation (or trigger) and the first trade it can fill on.
    pub latency_ms: i64,
    pub taker_fee_bps: Decimal,
    pub maker_fee_bps: Decimal,
    /// Price worsening applied to market fills, in bps of the trade price.
    pub slippage_bps: Decimal,
    /// Largest share (0–1] of one public trade's quantity an order may take.
    pub max_volume_share: Decimal,
    /// Unfilled market quantity expires after this long.
    pub market_order_timeout_ms: i64,
}

impl Default for ExecConfig {
    fn default() -> Self {
        Self {
            latency_ms: 200,
            taker_fee_bps: dec!(10),
            maker_fee_bps: dec!(10),
            slippage_bps: dec!(5),
            max_volume_share: dec!(0.25),
            market_order_timeout_ms: 60_000,
        }
    }
}

impl ExecConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.latency_ms < 0 {
            return Err("execution.latency_ms: must be ≥ 0".into());
        }
        for (k, v) in [
            ("execution.taker_fee_bps", self.taker_fee_bps),
            ("execution.maker_fee_bps", self.maker_fee_bps),
            ("execution.slippage_bps", self.slippage_bps),
        ] {
            if v < Decimal::ZERO || v >= dec!(10000) {
                return Err(format!("{k}: must be within [0, 10000)"));
            }
        }
        if self.max_volume_share <= Decimal::ZERO || self.max_volume_share > Decimal::ONE {
            return Err("execution.max_volume_share: must be within (0, 1]".into());
        }
        if self.market_order_timeout_ms <= 0 {
            return Err("execution.market_order_timeout_ms: must be > 0".into());
        }
        Ok(())
    }
}

pub(super) fn bps(x: Decimal) -> Decimal {
    x / dec!(10000)
}

/// Rounds a quantity down to 8 decimals (the finest Binance lot).
pub(super) fn floor8(q: Decimal) -> Decimal {
    (q * dec!(100000000)).floor() / dec!(100000000)
}

/// The paper venue: a book of resting orders matched against public trades.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FillSimulator {
    cfg: ExecConfig,
    /// Live orders by arrival (deterministic iteration).
    orders: BTreeMap<u64, Order>,
    next_seq: u64,
    /// Net position per instrument from this venue's fills, base units (long > 0, short < 0).
    positions: BTreeMap<Instrument, Decimal>,
    next_fill: u64,
    clock: i64,
}

impl FillSimulator {
    pub fn new(cfg: ExecConfig) -> Self {
        Self {
            cfg,
            orders: BTreeMap::new(),
            next_seq: 1,
            positions: BTreeMap::new(),
            next_fill: 1,
            clock: i64::MIN,
        }
    }

    fn seq_of(&self, order_id: &str) -> Option<u64> {
        self.orders
            .iter()
            .find(|(_, o)| o.id == order_id)
            .map(|(s, _)| *s)
    }

    fn finish(&mut self, seq: u64, status: OrderStatus, reason: &str, out: &mut Vec<VenueEvent>) {
        if let Some(mut order) = self.orders.remove(&seq) {
            order.status = status;
            let reason = reason.to_string();
            out.push(VenueEvent::Done { order, reason });
        }
    }

    /// What a reduce-only order on `side` may still take: the opposite position's size.
    fn reducible(&self, inst: &Instrument, side: Side) -> Decimal {
        let net = self.positions.get(inst).copied().unwrap_or_default();
        (-side.signed(net)).max(Decimal::ZERO)
    }

    fn expired(&self, o: &Order) -> bool {
        o.order_type == OrderType::Market
            && !o.reduce_only
            && self.clock >= o.active_from_ms + self.cfg.market_order_timeout_ms
    }

    fn expire_due(&mut self, seq: u64, out: &mut Vec<VenueEvent>) {
        if self.orders.get(&seq).is_some_and(|o| self.expired(o)) {
            self.finish(
                seq,
                OrderStatus::Expired,
                "expired: market order timeout",
                out,
            );
        }
    }

    fn on_trade(&mut self, t: &Trade, out: &mut Vec<VenueEvent>) {
        let seqs: Vec<u64> = self.orders.keys().copied().collect();
        for seq in seqs {
            let Some(o) = self.orders.get(&seq) else {
                continue;
            };
            if o.instrument == t.instrument && t.ts_ms >= o.active_from_ms {
                self.match_order(seq, t, out);
            }
            self.expire_due(seq, out);
        }
    }

    /// Quantity, price and liquidity of a fill of order `o` on trade `t`; `None` when the
    /// trade does not reach it.
    fn fill_terms(&self, o: &Order, t: &Trade) -> Option<(Decimal, Decimal, Liquidity)> {
        // A partial fill is a whole number of lots (8 decimals without a spec).
        let share = t.qty * self.cfg.max_volume_share;
        let share = match o.lot_size {
            Some(lot) if lot > Decimal::ZERO => (share / lot).floor() * lot,
            _ => floor8(share),
        };
        let mut qty = o.remaining().min(share);
        if o.reduce_only {
            qty = qty.min(self.reducible(&o.instrument, o.side));
        }
        match o.order_type {
            OrderType::Market => {
                let slip = bps(self.cfg.slippage_bps);
                let px = match o.side {
                    Side::Buy => t.price * (Decimal::ONE + slip),
                    Side::Sell => t.price * (Decimal::ONE - slip),
                };
                Some((qty, px, Liquidity::Taker))
            }
            OrderType::Limit { price } => {
                let through = match o.side {
                    Side::Sell => t.price > price,
                    Side::Buy => t.price < price,
                };
                through.then_some((qty, price, Liquidity::Maker))
            }
            OrderType::Stop { .. } => None,
        }
    }

    fn match_order(&mut self, seq: u64, t: &Trade, out: &mut Vec<VenueEvent>) {
        let o = &self.orders[&seq];
        if let OrderType::Stop { trigger } = o.order_type {
            let hit = match o.side {
                Side::Sell => t.price <= trigger,
                Side::Buy => t.price >= trigger,
            };
            if hit {
                let o = self.orders.get_mut(&seq).expect("present");
                o.order_type = OrderType::Market;
                o.active_from_ms = t.ts_ms + self.cfg.latency_ms;
                let order = o.clone();
                out.push(VenueEvent::Triggered {
                    order,
                    trade_price: t.price,
                });
            }
            return;
        }
        let Some((qty, price, liq)) = self.fill_terms(o, t) else {
            return;
        };
        if qty <= Decimal::ZERO {
            return;
        }
        let fee_bps = match liq {
            Liquidity::Taker => self.cfg.taker_fee_bps,
            Liquidity::Maker => self.cfg.maker_fee_bps,
        };
        let price = price.round_dp(12);
        let fee = (price * qty * bps(fee_bps)).round_dp(12);
        let o = self.orders.get_mut(&seq).expect("present");
        o.filled_qty += qty;
        o.status = if o.remaining().is_zero() {
            OrderStatus::Filled
        } else {
            OrderStatus::PartiallyFilled
        };
        let fill = Fill {
            id: format!("fil-{}", self.next_fill),
            order_id: o.id.clone(),
            instrument: o.instrument.clone(),
            side: o.side,
            ts_ms: t.ts_ms,
            price,
            qty,
            fee,
            liquidity: liq,
        };
        self.next_fill += 1;
        let order = if o.status == OrderStatus::Filled {
            self.orders.remove(&seq).expect("present")
        } else {
            o.clone()
        };
        let net = self.positions.entry(order.instrument.clone()).or_default();
        *net += order.side.signed(qty);
        if net.is_zero() {
            self.positions.remove(&order.instrument);
        }
        out.push(VenueEvent::Fill { fill, order });
    }
}

impl Venue for FillSimulator {
    fn submit(&mut self, mut order: Order, out: &mut Vec<VenueEvent>) {
        self.clock = self.clock.max(order.created_ts_ms);
        order.active_from_ms = order.created_ts_ms + self.cfg.latency_ms;
        order.status = OrderStatus::Open;
        self.orders.insert(self.next_seq, order.clone());
        self.next_seq += 1;
        out.push(VenueEvent::Accepted(order));
    }

    fn cancel(&mut self, order_id: &str, reason: &str, out: &mut Vec<VenueEvent>) {
        if let Some(seq) = self.seq_of(order_id) {
            self.finish(seq, OrderStatus::Canceled, reason, out);
        }
    }

    fn amend_qty(&mut self, order_id: &str, qty: Decimal) {
        if let Some(seq) = self.seq_of(order_id) {
            self.orders.get_mut(&seq).expect("present").qty = qty;
        }
    }

    fn on_market(&mut self, e: &MarketEvent, out: &mut Vec<VenueEvent>) {
        match e {
            MarketEvent::Trade(t) => {
                self.clock = self.clock.max(t.ts_ms);
                self.on_trade(t, out);
            }
            MarketEvent::Book(b) => {
                self.clock = self.clock.max(b.ts_ms);
                let seqs: Vec<u64> = self.orders.keys().copied().collect();
                for seq in seqs {
                    self.expire_due(seq, out);
                }
            }
            // Feed health and marks are observation time, not market time: no clock move.
            MarketEvent::Status(_)
            | MarketEvent::Mark(_)
            | MarketEvent::UserFill(_)
            | MarketEvent::UserPosition(_) => {}
        }
    }
}
