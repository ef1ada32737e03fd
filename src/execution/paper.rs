//! Paper broker: simulated fills against the public trades that follow an order.
//!
//! Fill model (event time only):
//! - an order can fill from `created + latency_ms`;
//! - **market** orders take liquidity from each following trade of the instrument, at most
//!   `max_volume_share` of that trade's quantity (so large orders fill partially over several
//!   trades), at the trade price worsened by `slippage_bps`, paying `taker_fee_bps`; what is not
//!   filled within `market_order_timeout_ms` expires;
//! - **limit** orders fill at their price when a trade goes through it (sell: trade price above
//!   the limit; buy: below), capped by the same volume share, paying `maker_fee_bps`;
//! - **stop** orders become market orders when a trade reaches the trigger.
//!
//! Entries carry a bracket ([`BracketSpec`]): once the entry is done the broker places the
//! take-profit ladder (limit sells), the stop-loss (stop sell) and arms the time stop; exits are
//! reduce-only, the stop-loss cancels the ladder (OCO) and is resized as rungs fill.

use super::portfolio::{Portfolio, PortfolioConfig, PortfolioView, RoundTrip};
use crate::domain::intent::{BracketSpec, OrderIntent};
use crate::domain::spec::InstrumentSpec;
use crate::domain::{
    Fill, Instrument, Liquidity, Order, OrderPurpose, OrderStatus, OrderType, Side, Trade,
};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `[execution]` config.
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

/// An intent the risk manager approved, with the approved quantity.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ApprovedOrder {
    pub intent: OrderIntent,
    pub verdict_id: String,
    pub qty: Decimal,
}

/// Ids that tie broker output back to the decision chain.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Links {
    pub signal_id: Option<String>,
    pub intent_id: Option<String>,
    pub verdict_id: Option<String>,
    pub entry_order_id: Option<String>,
}

/// What the broker did, for the decision log.
#[derive(Clone, Debug, PartialEq)]
pub enum BrokerEvent {
    OrderNew {
        order: Order,
        links: Links,
    },
    /// A stop reached its trigger and became a market order.
    OrderTriggered {
        order: Order,
        links: Links,
        trade_price: Decimal,
    },
    /// Canceled or expired; `reason` says why.
    OrderDone {
        order: Order,
        links: Links,
        reason: String,
    },
    Fill {
        fill: Fill,
        purpose: OrderPurpose,
        links: Links,
    },
    /// A position went flat.
    Exit {
        id: String,
        round_trip: RoundTrip,
        reason: OrderPurpose,
        links: Links,
    },
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
struct Bracket {
    entry_order_id: String,
    spec: BracketSpec,
    links: Links,
    ref_price: Decimal,
    entry_done: bool,
    armed: bool,
    first_fill_ts: Option<i64>,
    time_stop_at: Option<i64>,
    time_stopped: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PaperBroker {
    cfg: ExecConfig,
    pub portfolio: Portfolio,
    /// Live orders by creation sequence (deterministic iteration).
    orders: BTreeMap<u64, Order>,
    order_links: BTreeMap<String, Links>,
    brackets: BTreeMap<Instrument, Bracket>,
    next_order: u64,
    next_fill: u64,
    next_exit: u64,
    clock: i64,
    /// Set by a `halt` command: no order is placed (time stops and brackets wait) until resume.
    #[serde(default)]
    halted: bool,
    /// Venue trading rules applied to orders (lot, tick, minimum notional); none: unrounded.
    #[serde(default)]
    specs: BTreeMap<Instrument, InstrumentSpec>,
}

fn bps(x: Decimal) -> Decimal {
    x / dec!(10000)
}

/// Rounds a quantity down to 8 decimals (the finest Binance lot).
fn floor8(q: Decimal) -> Decimal {
    (q * dec!(100000000)).floor() / dec!(100000000)
}

impl PaperBroker {
    pub fn new(cfg: ExecConfig, pf: &PortfolioConfig) -> Self {
        Self {
            cfg,
            portfolio: Portfolio::new(pf),
            orders: BTreeMap::new(),
            order_links: BTreeMap::new(),
            brackets: BTreeMap::new(),
            next_order: 1,
            next_fill: 1,
            next_exit: 1,
            clock: i64::MIN,
            halted: false,
            specs: BTreeMap::new(),
        }
    }

    /// The broker with the config's instrument specs (replacing any it was saved with).
    pub fn with_specs(mut self, specs: &BTreeMap<String, InstrumentSpec>) -> Self {
        self.specs = specs
            .iter()
            .map(|(k, v)| (Instrument::new(k), v.clone()))
            .collect();
        self
    }

    /// `halt`: cancels every live order (entries and bracket exits); places none until
    /// [`PaperBroker::resume`]. Positions stay as they are.
    pub fn halt(&mut self, out: &mut Vec<BrokerEvent>) {
        self.halted = true;
        let seqs: Vec<u64> = self.orders.keys().copied().collect();
        for s in seqs {
            self.finish_order(s, OrderStatus::Canceled, "canceled: halt", out);
        }
        // Unfilled entries leave no bracket; filled ones wait, disarmed, for resume.
        let held = &self.portfolio.positions;
        self.brackets.retain(|i, _| held.contains_key(i));
        for b in self.brackets.values_mut() {
            b.entry_done = true;
            b.armed = false;
        }
    }

    /// `resume` after a halt: re-arms the take-profit ladder and stop of every open position
    /// (time stop from its first fill, as before).
    pub fn resume(&mut self, out: &mut Vec<BrokerEvent>) {
        if !std::mem::take(&mut self.halted) {
            return;
        }
        let disarmed: Vec<Instrument> = self
            .brackets
            .iter()
            .filter(|(_, b)| !b.armed && !b.time_stopped)
            .map(|(i, _)| i.clone())
            .collect();
        for inst in disarmed {
            if let Some((qty, avg)) = self
                .portfolio
                .positions
                .get(&inst)
                .map(|p| (p.qty, p.avg_entry_price))
            {
                self.arm(&inst, qty, avg, out);
            }
        }
    }

    /// `flatten`: for `instrument` (all when `None`) cancels live orders and sends a reduce-only
    /// market sell of the whole position. Works while halted (it is the operator's own order).
    pub fn flatten(&mut self, instrument: Option<&Instrument>, out: &mut Vec<BrokerEvent>) {
        let hit = |i: &Instrument| instrument.is_none_or(|x| x == i);
        let seqs: Vec<u64> = self
            .orders
            .iter()
            .filter(|(_, o)| hit(&o.instrument))
            .map(|(s, _)| *s)
            .collect();
        for s in seqs {
            self.finish_order(s, OrderStatus::Canceled, "canceled: flatten", out);
        }
        let held: Vec<(Instrument, Decimal)> = self
            .portfolio
            .positions
            .iter()
            .filter(|(i, _)| hit(i))
            .map(|(i, p)| (i.clone(), p.qty))
            .collect();
        self.brackets
            .retain(|i, _| !hit(i) || held.iter().any(|(h, _)| h == i));
        for (inst, qty) in held {
            let links = match self.brackets.get_mut(&inst) {
                Some(b) => {
                    b.time_stopped = true;
                    b.armed = true;
                    b.links.clone()
                }
                None => Links::default(),
            };
            self.sell_at_market(&inst, qty, OrderPurpose::Flatten, links, out);
        }
    }

    /// A reduce-only market sell of `qty` (time stop, flatten) at the broker's clock.
    fn sell_at_market(
        &mut self,
        inst: &Instrument,
        qty: Decimal,
        purpose: OrderPurpose,
        links: Links,
        out: &mut Vec<BrokerEvent>,
    ) {
        let now = self.clock;
        let (kind, side) = (OrderType::Market, Side::Sell);
        self.new_order(inst, side, qty, kind, purpose, links, None, now, out);
    }

    /// True between a `halt` and the next `resume`.
    pub fn halted(&self) -> bool {
        self.halted
    }

    /// Live orders in creation order.
    pub fn live_orders(&self) -> impl Iterator<Item = &Order> {
        self.orders.values()
    }

    pub fn clock(&self) -> i64 {
        self.clock
    }

    /// The portfolio as strategy and risk see it.
    pub fn view(&self, batch_seq: u64) -> PortfolioView {
        let mut positions = BTreeMap::new();
        let mut gross = Decimal::ZERO;
        for (i, p) in &self.portfolio.positions {
            positions.insert(i.clone(), p.notional());
            gross += p.notional();
        }
        for (i, p) in &self.portfolio.perps {
            positions.insert(i.clone(), p.notional());
            gross += p.notional();
        }
        for o in self.orders.values() {
            if o.purpose == OrderPurpose::Entry {
                let px = self
                    .brackets
                    .get(&o.instrument)
                    .map(|b| b.ref_price)
                    .unwrap_or_default();
                gross += o.remaining() * px;
            }
        }
        let mut busy: std::collections::BTreeSet<Instrument> =
            self.brackets.keys().cloned().collect();
        busy.extend(self.portfolio.positions.keys().cloned());
        busy.extend(self.portfolio.perps.keys().cloned());
        PortfolioView {
            batch_seq,
            cash: self.portfolio.cash,
            equity: self.portfolio.equity(),
            peak_equity: self.portfolio.peak_equity,
            positions,
            gross_exposure: gross,
            busy,
            last_exit_ts: self.portfolio.last_exit_ts.clone(),
            realized_by_day: self.portfolio.realized_by_day.clone(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn new_order(
        &mut self,
        instrument: &Instrument,
        side: Side,
        qty: Decimal,
        order_type: OrderType,
        purpose: OrderPurpose,
        links: Links,
        intent_id: Option<String>,
        now: i64,
        out: &mut Vec<BrokerEvent>,
    ) -> String {
        let seq = self.next_order;
        self.next_order += 1;
        let id = format!("ord-{seq}");
        let order = Order {
            id: id.clone(),
            intent_id,
            parent_order_id: links.entry_order_id.clone().filter(|e| *e != id),
            instrument: instrument.clone(),
            side,
            qty,
            filled_qty: Decimal::ZERO,
            order_type,
            purpose,
            reduce_only: purpose != OrderPurpose::Entry,
            created_ts_ms: now,
            active_from_ms: now + self.cfg.latency_ms,
            status: OrderStatus::Open,
        };
        out.push(BrokerEvent::OrderNew {
            order: order.clone(),
            links: links.clone(),
        });
        self.order_links.insert(id.clone(), links);
        self.orders.insert(seq, order);
        id
    }

    /// Places an approved entry (market buy) with its bracket, at event time `now`.
    pub fn place_entry(&mut self, a: &ApprovedOrder, now: i64, out: &mut Vec<BrokerEvent>) {
        self.clock = self.clock.max(now);
        let it = &a.intent;
        let mut links = Links {
            signal_id: Some(it.signal_id.clone()),
            intent_id: Some(it.id.clone()),
            verdict_id: Some(a.verdict_id.clone()),
            entry_order_id: None,
        };
        let id = format!("ord-{}", self.next_order);
        links.entry_order_id = Some(id.clone());
        let qty = match self.specs.get(&it.instrument) {
            Some(spec) => spec.entry_qty(a.qty, it.ref_price),
            None => Ok(a.qty),
        };
        let refusal = match (&qty, self.brackets.contains_key(&it.instrument)) {
            (Err(why), _) => Some(format!("rejected: {why}")),
            // The strategy keeps one position per instrument; refuse rather than stack brackets.
            (_, true) => Some("canceled: instrument already has an open bracket".to_string()),
            _ => None,
        };
        if let Some(reason) = refusal {
            self.next_order += 1;
            let order = Order {
                id,
                intent_id: Some(it.id.clone()),
                parent_order_id: None,
                instrument: it.instrument.clone(),
                side: it.side,
                qty: a.qty,
                filled_qty: Decimal::ZERO,
                order_type: OrderType::Market,
                purpose: OrderPurpose::Entry,
                reduce_only: false,
                created_ts_ms: now,
                active_from_ms: now,
                status: OrderStatus::Canceled,
            };
            out.push(BrokerEvent::OrderDone {
                order,
                links,
                reason,
            });
            return;
        }
        let qty = qty.unwrap_or(a.qty);
        self.brackets.insert(
            it.instrument.clone(),
            Bracket {
                entry_order_id: id.clone(),
                spec: it.bracket.clone(),
                links: links.clone(),
                ref_price: it.ref_price,
                entry_done: false,
                armed: false,
                first_fill_ts: None,
                time_stop_at: None,
                time_stopped: false,
            },
        );
        self.new_order(
            &it.instrument,
            it.side,
            qty,
            OrderType::Market,
            OrderPurpose::Entry,
            links,
            Some(it.id.clone()),
            now,
            out,
        );
    }

    fn finish_order(
        &mut self,
        seq: u64,
        status: OrderStatus,
        reason: &str,
        out: &mut Vec<BrokerEvent>,
    ) {
        if let Some(mut o) = self.orders.remove(&seq) {
            o.status = status;
            let links = self.order_links.remove(&o.id).unwrap_or_default();
            out.push(BrokerEvent::OrderDone {
                order: o,
                links,
                reason: reason.to_string(),
            });
        }
    }

    fn cancel_bracket_children(
        &mut self,
        instrument: &Instrument,
        reason: &str,
        out: &mut Vec<BrokerEvent>,
    ) {
        let seqs: Vec<u64> = self
            .orders
            .iter()
            .filter(|(_, o)| &o.instrument == instrument && o.purpose != OrderPurpose::Entry)
            .map(|(s, _)| *s)
            .collect();
        for s in seqs {
            self.finish_order(s, OrderStatus::Canceled, reason, out);
        }
    }

    /// Advances event time without a trade (book updates, feed status): expiries and time stops.
    pub fn on_clock(&mut self, ts_ms: i64, out: &mut Vec<BrokerEvent>) {
        self.clock = self.clock.max(ts_ms);
        let expired: Vec<u64> = self
            .orders
            .iter()
            .filter(|(_, o)| {
                o.order_type == OrderType::Market
                    && o.purpose == OrderPurpose::Entry
                    && self.clock >= o.active_from_ms + self.cfg.market_order_timeout_ms
            })
            .map(|(s, _)| *s)
            .collect();
        for seq in expired {
            let inst = self.orders[&seq].instrument.clone();
            self.finish_order(
                seq,
                OrderStatus::Expired,
                "expired: market order timeout",
                out,
            );
            self.after_order_end(&inst, OrderPurpose::Entry, out);
        }
        self.check_time_stops(out);
    }

    /// Processes one public trade: fills, triggers, expiries, bracket management, time stops.
    pub fn on_trade(&mut self, t: &Trade, out: &mut Vec<BrokerEvent>) {
        self.clock = self.clock.max(t.ts_ms);
        self.portfolio.mark(&t.instrument, t.price);
        let seqs: Vec<u64> = self.orders.keys().copied().collect();
        for seq in seqs {
            let Some(o) = self.orders.get(&seq) else {
                continue;
            };
            if o.instrument == t.instrument && t.ts_ms >= o.active_from_ms {
                self.match_order(seq, t, out);
            }
            if let Some(o) = self.orders.get(&seq) {
                // Only entries expire (never chase a pump); exits keep working until filled.
                if o.order_type == OrderType::Market
                    && o.purpose == OrderPurpose::Entry
                    && self.clock >= o.active_from_ms + self.cfg.market_order_timeout_ms
                {
                    let (purpose, inst) = (o.purpose, o.instrument.clone());
                    self.finish_order(
                        seq,
                        OrderStatus::Expired,
                        "expired: market order timeout",
                        out,
                    );
                    self.after_order_end(&inst, purpose, out);
                }
            }
        }
        self.check_time_stops(out);
    }

    fn match_order(&mut self, seq: u64, t: &Trade, out: &mut Vec<BrokerEvent>) {
        let o = self.orders.get(&seq).expect("caller checked");
        let held = self
            .portfolio
            .positions
            .get(&o.instrument)
            .map(|p| p.qty)
            .unwrap_or_default();
        let cap = |o: &Order, share: Decimal| {
            let mut q = o.remaining().min(floor8(t.qty * share));
            if o.reduce_only {
                q = q.min(held);
            }
            q
        };
        let (qty, price, liq) = match o.order_type {
            OrderType::Market => {
                let slip = bps(self.cfg.slippage_bps);
                let px = match o.side {
                    Side::Buy => t.price * (Decimal::ONE + slip),
                    Side::Sell => t.price * (Decimal::ONE - slip),
                };
                (cap(o, self.cfg.max_volume_share), px, Liquidity::Taker)
            }
            OrderType::Limit { price } => {
                let through = match o.side {
                    Side::Sell => t.price > price,
                    Side::Buy => t.price < price,
                };
                if !through {
                    return;
                }
                (cap(o, self.cfg.max_volume_share), price, Liquidity::Maker)
            }
            OrderType::Stop { trigger } => {
                let hit = match o.side {
                    Side::Sell => t.price <= trigger,
                    Side::Buy => t.price >= trigger,
                };
                if hit {
                    let latency = self.cfg.latency_ms;
                    let o = self.orders.get_mut(&seq).expect("present");
                    o.order_type = OrderType::Market;
                    o.active_from_ms = t.ts_ms + latency;
                    let (order, inst) = (o.clone(), o.instrument.clone());
                    let links = self.order_links.get(&order.id).cloned().unwrap_or_default();
                    out.push(BrokerEvent::OrderTriggered {
                        order,
                        links,
                        trade_price: t.price,
                    });
                    // One-cancels-other: the stop-loss is now selling, drop the ladder.
                    let ladder: Vec<u64> = self
                        .orders
                        .iter()
                        .filter(|(_, x)| {
                            x.instrument == inst && x.purpose == OrderPurpose::TakeProfit
                        })
                        .map(|(s, _)| *s)
                        .collect();
                    for s in ladder {
                        self.finish_order(
                            s,
                            OrderStatus::Canceled,
                            "canceled: stop-loss triggered",
                            out,
                        );
                    }
                }
                return;
            }
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
        let purpose = o.purpose;
        let done = o.status == OrderStatus::Filled;
        let inst = o.instrument.clone();
        let links = self.order_links.get(&o.id).cloned().unwrap_or_default();
        let entry_id = links.entry_order_id.clone().unwrap_or_else(|| o.id.clone());
        let closed = self.portfolio.apply_fill(&fill, &entry_id);
        out.push(BrokerEvent::Fill {
            fill,
            purpose,
            links: links.clone(),
        });
        if purpose == OrderPurpose::Entry {
            if let Some(b) = self.brackets.get_mut(&inst) {
                b.first_fill_ts.get_or_insert(t.ts_ms);
            }
        }
        if done {
            if let Some(mut o) = self.orders.remove(&seq) {
                o.status = OrderStatus::Filled;
                self.order_links.remove(&o.id);
            }
        }
        if let Some(rt) = closed {
            self.cancel_bracket_children(&inst, "canceled: position closed", out);
            let bracket_links = self
                .brackets
                .remove(&inst)
                .map(|b| b.links)
                .unwrap_or(links);
            let id = format!("exi-{}", self.next_exit);
            self.next_exit += 1;
            out.push(BrokerEvent::Exit {
                id,
                round_trip: rt,
                reason: purpose,
                links: bracket_links,
            });
            return;
        }
        if done {
            self.after_order_end(&inst, purpose, out);
        } else if purpose != OrderPurpose::Entry {
            self.resize_stop(&inst);
        }
    }

    /// Keeps the stop-loss no larger than the position (reduce-only).
    fn resize_stop(&mut self, inst: &Instrument) {
        let held = self
            .portfolio
            .positions
            .get(inst)
            .map(|p| p.qty)
            .unwrap_or_default();
        for o in self.orders.values_mut() {
            if &o.instrument == inst && o.purpose == OrderPurpose::StopLoss {
                o.qty = o.filled_qty + held;
            }
        }
    }

    /// An order left the book (filled, or an entry expired): arm the bracket, resize the stop.
    fn after_order_end(
        &mut self,
        inst: &Instrument,
        purpose: OrderPurpose,
        out: &mut Vec<BrokerEvent>,
    ) {
        let held = self
            .portfolio
            .positions
            .get(inst)
            .map(|p| (p.qty, p.avg_entry_price));
        match purpose {
            OrderPurpose::Entry => {
                let Some(b) = self.brackets.get_mut(inst) else {
                    return;
                };
                b.entry_done = true;
                match held {
                    Some((qty, avg)) if qty > Decimal::ZERO => self.arm(inst, qty, avg, out),
                    _ => {
                        // Nothing filled: no position, no bracket.
                        self.brackets.remove(inst);
                    }
                }
            }
            OrderPurpose::TakeProfit => self.resize_stop(inst),
            OrderPurpose::StopLoss | OrderPurpose::TimeStop | OrderPurpose::Flatten => {}
        }
    }

    fn arm(&mut self, inst: &Instrument, qty: Decimal, avg: Decimal, out: &mut Vec<BrokerEvent>) {
        if self.halted {
            return;
        }
        let b = self.brackets.get(inst).expect("caller checked").clone();
        let now = self.clock;
        let spec = self.specs.get(inst).cloned();
        for step in &b.spec.take_profit {
            let q = match &spec {
                Some(s) => s.round_qty(qty * step.fraction),
                None => floor8(qty * step.fraction),
            };
            if q <= Decimal::ZERO {
                continue;
            }
            let mut price = (avg * (Decimal::ONE + step.gain_pct / dec!(100))).round_dp(12);
            if let Some(s) = &spec {
                price = s.round_limit(price, Side::Sell);
            }
            self.new_order(
                inst,
                Side::Sell,
                q,
                OrderType::Limit { price },
                OrderPurpose::TakeProfit,
                b.links.clone(),
                None,
                now,
                out,
            );
        }
        let mut trigger = (avg * (Decimal::ONE - b.spec.stop_loss_pct / dec!(100))).round_dp(12);
        if let Some(s) = &spec {
            trigger = s.round_trigger(trigger, Side::Sell);
        }
        self.new_order(
            inst,
            Side::Sell,
            qty,
            OrderType::Stop { trigger },
            OrderPurpose::StopLoss,
            b.links.clone(),
            None,
            now,
            out,
        );
        let bm = self.brackets.get_mut(inst).expect("present");
        bm.armed = true;
        bm.time_stop_at = Some(bm.first_fill_ts.unwrap_or(now) + bm.spec.max_hold_ms);
    }

    fn check_time_stops(&mut self, out: &mut Vec<BrokerEvent>) {
        if self.halted {
            return;
        }
        let due: Vec<Instrument> = self
            .brackets
            .iter()
            .filter(|(_, b)| {
                b.armed && !b.time_stopped && b.time_stop_at.is_some_and(|t| self.clock >= t)
            })
            .map(|(i, _)| i.clone())
            .collect();
        for inst in due {
            self.cancel_bracket_children(&inst, "canceled: time stop", out);
            let b = self.brackets.get_mut(&inst).expect("present");
            b.time_stopped = true;
            let links = b.links.clone();
            if let Some(qty) = self.portfolio.positions.get(&inst).map(|p| p.qty) {
                self.sell_at_market(&inst, qty, OrderPurpose::TimeStop, links, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::intent::TakeProfitStep;

    fn tr(ts: i64, px: Decimal, qty: Decimal) -> Trade {
        Trade {
            ts_ms: ts,
            instrument: Instrument::new("X/BTC"),
            price: px,
            qty,
            aggressor: Side::Buy,
            trade_id: None,
            users: None,
        }
    }
    fn approved(
        qty: Decimal,
        tp: Vec<(Decimal, Decimal)>,
        sl: Decimal,
        hold_ms: i64,
    ) -> ApprovedOrder {
        ApprovedOrder {
            intent: OrderIntent {
                id: "int-1".into(),
                signal_id: "sig-1".into(),
                ts_ms: 0,
                instrument: Instrument::new("X/BTC"),
                side: Side::Buy,
                qty,
                ref_price: dec!(1),
                reduce_only: false,
                bracket: BracketSpec {
                    take_profit: tp
                        .into_iter()
                        .map(|(g, f)| TakeProfitStep {
                            gain_pct: g,
                            fraction: f,
                        })
                        .collect(),
                    stop_loss_pct: sl,
                    max_hold_ms: hold_ms,
                },
            },
            verdict_id: "ver-1".into(),
            qty,
        }
    }
    fn fills(ev: &[BrokerEvent]) -> Vec<(Decimal, Decimal, Decimal)> {
        ev.iter()
            .filter_map(|e| match e {
                BrokerEvent::Fill { fill, .. } => Some((fill.price, fill.qty, fill.fee)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn market_fill_latency_slippage_fee_and_volume_cap() {
        let mut b = PaperBroker::new(ExecConfig::default(), &PortfolioConfig::default());
        let mut ev = vec![];
        b.place_entry(
            &approved(dec!(100), vec![], dec!(50), 1_000_000),
            0,
            &mut ev,
        );
        b.on_trade(&tr(100, dec!(1), dec!(1000)), &mut ev); // before latency (200 ms): no fill
        assert!(fills(&ev).is_empty());
        b.on_trade(&tr(200, dec!(2), dec!(200)), &mut ev); // 25 % of 200 = 50 units
        b.on_trade(&tr(300, dec!(4), dec!(1000)), &mut ev); // the remaining 50
        let f = fills(&ev);
        // price × (1 + 5 bps); fee = notional × 10 bps.
        assert_eq!(f[0], (dec!(2.001), dec!(50), dec!(0.10005)));
        assert_eq!(f[1], (dec!(4.002), dec!(50), dec!(0.2001)));
        let p = &b.portfolio.positions[&Instrument::new("X/BTC")];
        assert_eq!(p.qty, dec!(100));
        assert_eq!(p.avg_entry_price, dec!(3.0015));
        assert_eq!(b.portfolio.cash, dec!(1) - dec!(300.15) - dec!(0.30015));
    }

    #[test]
    fn instrument_specs_round_orders_and_reject_small_ones_at_the_edge() {
        use crate::domain::spec::{InstrumentSpec, MarketKind};
        let specs = [(
            "X/BTC".to_string(),
            InstrumentSpec {
                kind: MarketKind::Spot,
                tick_size: dec!(0.01),
                lot_size: dec!(10),
                min_notional: dec!(25),
                max_leverage: dec!(1),
                max_sig_figs: None,
            },
        )]
        .into_iter()
        .collect();
        let mut b =
            PaperBroker::new(ExecConfig::default(), &PortfolioConfig::default()).with_specs(&specs);
        let mut ev = vec![];
        // 20 units at ref price 1: notional 20 < 25, rejected before it reaches the book.
        b.place_entry(&approved(dec!(20), vec![], dec!(50), 1_000_000), 0, &mut ev);
        assert!(matches!(&ev[0], BrokerEvent::OrderDone { reason, .. }
            if reason.starts_with("rejected: notional 20")));
        assert_eq!(b.live_orders().count(), 0);
        // 37 units round down to the lot: 30; the take-profit and stop prices to the tick.
        ev.clear();
        b.place_entry(
            &approved(
                dec!(37),
                vec![(dec!(3.333), dec!(1))],
                dec!(4.444),
                1_000_000,
            ),
            0,
            &mut ev,
        );
        assert!(matches!(&ev[0], BrokerEvent::OrderNew { order, .. } if order.qty == dec!(30)));
        b.on_trade(&tr(300, dec!(1), dec!(1000)), &mut ev);
        let limits: Vec<OrderType> = b.live_orders().map(|o| o.order_type).collect();
        // Entry at 1 × 1.0005 (slippage) = 1.0005: take-profit 1.0005 × 1.03333 = 1.03384…
        // rounded up to 1.04; stop 1.0005 × 0.95556 = 0.95604… rounded down to 0.95.
        assert!(
            limits.contains(&OrderType::Limit { price: dec!(1.04) }),
            "{limits:?}"
        );
        assert!(
            limits.contains(&OrderType::Stop {
                trigger: dec!(0.95)
            }),
            "{limits:?}"
        );
    }

    #[test]
    fn ladder_then_stop_is_resized_and_closes() {
        let mut b = PaperBroker::new(ExecConfig::default(), &PortfolioConfig::default());
        let mut ev = vec![];
        let a = approved(dec!(10), vec![(dec!(10), dec!(0.5))], dec!(10), 1_000_000);
        b.place_entry(&a, 0, &mut ev);
        b.on_trade(&tr(1_000, dec!(1), dec!(1000)), &mut ev);
        // Entry filled at 1.0005 → TP at 1.10055, SL trigger at 0.90045.
        let tp = b
            .live_orders()
            .find(|o| o.purpose == OrderPurpose::TakeProfit)
            .unwrap()
            .clone();
        assert_eq!(
            tp.order_type,
            OrderType::Limit {
                price: dec!(1.10055)
            }
        );
        assert_eq!(tp.qty, dec!(5));
        b.on_trade(&tr(1_100, dec!(1.2), dec!(1000)), &mut ev); // before TP latency
        b.on_trade(&tr(1_300, dec!(1.10055), dec!(1000)), &mut ev); // touch, not through
        assert_eq!(fills(&ev).len(), 1);
        b.on_trade(&tr(1_400, dec!(1.2), dec!(1000)), &mut ev); // through → maker fill at limit
        assert_eq!(fills(&ev)[1], (dec!(1.10055), dec!(5), dec!(0.00550275)));
        let sl = b
            .live_orders()
            .find(|o| o.purpose == OrderPurpose::StopLoss)
            .unwrap();
        assert_eq!(sl.qty, dec!(5), "stop-loss resized to what is left");
        b.on_trade(&tr(2_000, dec!(0.9), dec!(1000)), &mut ev); // trigger
        b.on_trade(&tr(2_100, dec!(0.8), dec!(1000)), &mut ev); // within latency
        b.on_trade(&tr(2_200, dec!(0.8), dec!(1000)), &mut ev); // market fill at 0.8 × (1 − 5 bps)
        assert_eq!(fills(&ev)[2].0, dec!(0.7996));
        let exit = ev.iter().find_map(|e| match e {
            BrokerEvent::Exit {
                round_trip, reason, ..
            } => Some((round_trip.clone(), *reason)),
            _ => None,
        });
        let (rt, reason) = exit.expect("position closed");
        assert_eq!(reason, OrderPurpose::StopLoss);
        let expected = (dec!(1.10055) - dec!(1.0005)) * dec!(5)
            + (dec!(0.7996) - dec!(1.0005)) * dec!(5)
            - dec!(0.010005)
            - dec!(0.00550275)
            - dec!(0.003998);
        assert_eq!(rt.pnl, expected);
        assert!(b.live_orders().next().is_none());
        assert!(b.view(1).busy.is_empty());
    }

    #[test]
    fn time_stop_sells_at_market() {
        let mut b = PaperBroker::new(ExecConfig::default(), &PortfolioConfig::default());
        let mut ev = vec![];
        b.place_entry(
            &approved(dec!(10), vec![(dec!(50), dec!(1))], dec!(50), 5_000),
            0,
            &mut ev,
        );
        b.on_trade(&tr(1_000, dec!(1), dec!(1000)), &mut ev);
        b.on_trade(&tr(6_000, dec!(1.01), dec!(1000)), &mut ev); // due: cancel ladder+SL, sell
        b.on_trade(&tr(6_300, dec!(1.02), dec!(1000)), &mut ev);
        let reason = ev.iter().find_map(|e| match e {
            BrokerEvent::Exit { reason, .. } => Some(*reason),
            _ => None,
        });
        assert_eq!(reason, Some(OrderPurpose::TimeStop));
        assert!(b.portfolio.positions.is_empty());
    }

    #[test]
    fn unfilled_entry_expires_without_position() {
        let mut b = PaperBroker::new(ExecConfig::default(), &PortfolioConfig::default());
        let mut ev = vec![];
        b.place_entry(&approved(dec!(10), vec![], dec!(5), 5_000), 0, &mut ev);
        b.on_trade(&tr(70_000, dec!(1), dec!(1)), &mut ev); // 25 % of 1 = 0.25 filled, then expiry
        let done = ev.iter().any(
            |e| matches!(e, BrokerEvent::OrderDone { reason, .. } if reason.starts_with("expired")),
        );
        assert!(done);
        // The partial fill still gets its bracket.
        assert_eq!(
            b.portfolio.positions[&Instrument::new("X/BTC")].qty,
            dec!(0.25)
        );
        assert!(b.live_orders().any(|o| o.purpose == OrderPurpose::StopLoss));
    }

    #[test]
    fn restored_state_continues_exactly_like_the_original() {
        let mut b = PaperBroker::new(ExecConfig::default(), &PortfolioConfig::default());
        let mut ev = vec![];
        b.place_entry(
            &approved(dec!(10), vec![(dec!(10), dec!(0.5))], dec!(10), 60_000),
            0,
            &mut ev,
        );
        b.on_trade(&tr(1_000, dec!(1), dec!(1000)), &mut ev);
        assert_eq!(
            b.live_orders().count(),
            2,
            "take-profit and stop-loss resting"
        );
        // What the journal stores, and what a restart loads.
        let json = serde_json::to_vec(&b).unwrap();
        let mut restored: PaperBroker = serde_json::from_slice(&json).unwrap();
        assert_eq!(restored, b);
        let tail = [
            tr(2_000, dec!(1.2), dec!(1000)),
            tr(3_000, dec!(0.85), dec!(1000)),
            tr(3_500, dec!(0.8), dec!(1000)),
        ];
        let (mut e1, mut e2) = (vec![], vec![]);
        for t in &tail {
            b.on_trade(t, &mut e1);
            restored.on_trade(t, &mut e2);
        }
        assert_eq!(e1, e2);
        assert!(e1.iter().any(|e| matches!(e, BrokerEvent::Exit { .. })));
        assert_eq!(restored, b);
    }
}
