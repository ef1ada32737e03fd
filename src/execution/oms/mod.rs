//! Order management above any venue: entries with their brackets, the take-profit ladder,
//! the stop-loss (one-cancels-other with the ladder, kept to the position size), time stops,
//! reduce-only exits, halt/resume/flatten; the portfolio kept from the venue's fills.
//!
//! It talks to a [`Venue`] only through orders (submit, cancel, amend) and the
//! [`VenueEvent`]s that come back, so the same brackets work on the fill simulator and on a
//! live venue. Long positions exit with sells above/below the entry, shorts (perpetuals) with
//! buys. Instrument specs (lot, tick, minimum notional) are applied here, at the edge.

mod exits;

use super::events::{ApprovedOrder, BrokerEvent, Links};
use super::portfolio::{Portfolio, PortfolioView};
use super::venue::{Venue, VenueEvent};
use crate::domain::intent::BracketSpec;
use crate::domain::spec::{InstrumentSpec, MarketKind};
use crate::domain::{Instrument, MarketEvent, Order, OrderPurpose, OrderStatus, OrderType, Side};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The exit plan of one instrument's position, from its entry to flat.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
struct Bracket {
    entry_order_id: String,
    spec: BracketSpec,
    links: Links,
    ref_price: Decimal,
    /// Leverage of a perpetual position (1 when the intent gives none).
    #[serde(default = "one")]
    leverage: Decimal,
    entry_done: bool,
    armed: bool,
    first_fill_ts: Option<i64>,
    time_stop_at: Option<i64>,
    time_stopped: bool,
}

fn one() -> Decimal {
    Decimal::ONE
}

/// Order manager over venue `V`; [`super::PaperBroker`] is it over the fill simulator.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct OrderManager<V> {
    pub portfolio: Portfolio,
    /// Live orders in creation order (from submission), as the venue last reported them.
    orders: Vec<Order>,
    order_links: BTreeMap<String, Links>,
    brackets: BTreeMap<Instrument, Bracket>,
    next_order: u64,
    next_exit: u64,
    clock: i64,
    /// Set by a `halt` command: no order is placed (time stops and brackets wait) until resume.
    halted: bool,
    /// Venue trading rules applied to orders (lot, tick, minimum notional); none: unrounded.
    specs: BTreeMap<Instrument, InstrumentSpec>,
    /// Hourly funding of perpetual positions from the venue's marks.
    #[serde(default)]
    funding: super::funding::Funding,
    /// Orders whose cancel the manager asked for and the venue has not confirmed: any other
    /// end (expiry, a venue's rejection, an IOC remainder) lets the manager act on it.
    #[serde(skip)]
    cancelling: BTreeSet<String>,
    venue: V,
}

/// What any saved manager shows, whatever its venue (the journal reads saved states with
/// the venue left out: `OrderManager<serde::de::IgnoredAny>`).
impl<V> OrderManager<V> {
    /// True between a `halt` and the next `resume`.
    pub fn halted(&self) -> bool {
        self.halted
    }

    /// Live orders in creation order.
    pub fn live_orders(&self) -> impl Iterator<Item = &Order> {
        self.orders.iter()
    }

    /// The venue below (its own book and state).
    pub fn venue(&self) -> &V {
        &self.venue
    }

    /// The venue below, to change (reconciliation at start).
    pub fn venue_mut(&mut self) -> &mut V {
        &mut self.venue
    }
}

impl<V: Venue> OrderManager<V> {
    pub fn with_venue(venue: V, portfolio: Portfolio) -> Self {
        Self {
            portfolio,
            orders: Vec::new(),
            order_links: BTreeMap::new(),
            brackets: BTreeMap::new(),
            next_order: 1,
            next_exit: 1,
            clock: i64::MIN,
            halted: false,
            specs: BTreeMap::new(),
            funding: Default::default(),
            cancelling: BTreeSet::new(),
            venue,
        }
    }

    /// The manager with the config's instrument specs (replacing any it was saved with).
    pub fn with_specs(mut self, specs: &BTreeMap<String, InstrumentSpec>) -> Self {
        self.set_specs(specs);
        self
    }

    /// Replaces the instrument specs.
    pub fn set_specs(&mut self, specs: &BTreeMap<String, InstrumentSpec>) {
        self.specs = specs
            .iter()
            .map(|(k, v)| (Instrument::new(k), v.clone()))
            .collect();
    }

    /// Event time of the newest event seen, Unix ms.
    pub fn clock(&self) -> i64 {
        self.clock
    }

    /// The portfolio as strategy and risk see it.
    pub fn view(&self, batch_seq: u64) -> PortfolioView {
        let pf = &self.portfolio;
        let mut positions = BTreeMap::new();
        let mut gross = Decimal::ZERO;
        let spot = pf.positions.iter().map(|(i, p)| (i, p.notional()));
        for (i, n) in spot.chain(pf.perps.iter().map(|(i, p)| (i, p.notional()))) {
            positions.insert(i.clone(), n);
            gross += n;
        }
        for o in self
            .orders
            .iter()
            .filter(|o| o.purpose == OrderPurpose::Entry)
        {
            let px = self.brackets.get(&o.instrument).map(|b| b.ref_price);
            gross += o.remaining() * px.unwrap_or_default();
        }
        let mut busy: BTreeSet<Instrument> = self.brackets.keys().cloned().collect();
        busy.extend(pf.positions.keys().cloned());
        busy.extend(pf.perps.keys().cloned());
        PortfolioView {
            batch_seq,
            cash: pf.cash,
            equity: pf.equity(),
            peak_equity: pf.peak_equity,
            positions,
            gross_exposure: gross,
            busy,
            last_exit_ts: pf.last_exit_ts.clone(),
            realized_by_day: pf.realized_by_day.clone(),
        }
    }

    /// The open position on `inst`: signed base quantity (long > 0) and average entry price,
    /// spot or perpetual.
    fn position(&self, inst: &Instrument) -> Option<(Decimal, Decimal)> {
        if let Some(p) = self.portfolio.positions.get(inst) {
            return Some((p.qty, p.avg_entry_price));
        }
        self.portfolio
            .perps
            .get(inst)
            .map(|p| (p.qty, p.entry_price))
    }

    fn is_perp(&self, inst: &Instrument) -> bool {
        self.specs
            .get(inst)
            .is_some_and(|s| s.kind == MarketKind::Perpetual)
    }

    /// Runs `f` on the venue and handles what it reported, in order.
    fn with_venue_do(
        &mut self,
        out: &mut Vec<BrokerEvent>,
        f: impl FnOnce(&mut V, &mut Vec<VenueEvent>),
    ) {
        let mut reported = Vec::new();
        f(&mut self.venue, &mut reported);
        for e in reported {
            self.on_venue(e, out);
        }
    }

    /// Sends a new order at the manager's clock; returns its id.
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
        let id = format!("ord-{}", self.next_order);
        self.next_order += 1;
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
            active_from_ms: now,
            status: OrderStatus::Open,
            lot_size: self.specs.get(instrument).map(|s| s.lot_size),
        };
        self.order_links.insert(id.clone(), links);
        // Tracked from submission: a venue that acks later still sees cancels and exposure.
        self.orders.push(order.clone());
        self.with_venue_do(out, |v, r| v.submit(order, r));
        id
    }

    fn cancel(&mut self, order_id: &str, reason: &str, out: &mut Vec<BrokerEvent>) {
        self.cancelling.insert(order_id.to_string());
        self.with_venue_do(out, |v, r| v.cancel(order_id, reason, r));
    }

    /// Places an approved entry (market order) with its bracket, at event time `now`.
    pub fn place_entry(&mut self, a: &ApprovedOrder, now: i64, out: &mut Vec<BrokerEvent>) {
        self.clock = self.clock.max(now);
        let it = &a.intent;
        let id = format!("ord-{}", self.next_order);
        let links = Links {
            signal_id: Some(it.signal_id.clone()),
            intent_id: Some(it.id.clone()),
            verdict_id: Some(a.verdict_id.clone()),
            entry_order_id: Some(id.clone()),
        };
        let qty = match self.specs.get(&it.instrument) {
            Some(spec) => spec.entry_qty(a.qty, it.ref_price),
            None => Ok(a.qty),
        };
        let spot_short = it.side == Side::Sell && !self.is_perp(&it.instrument);
        let qty = match (qty, self.brackets.contains_key(&it.instrument)) {
            (Err(why), _) => Err(format!("rejected: {why}")),
            // Spot is long only: a short needs the instrument's perpetual spec.
            _ if spot_short => {
                Err("rejected: a short entry needs a perpetual instrument spec".into())
            }
            // One position per instrument: refuse rather than stack brackets.
            (_, true) => Err("canceled: instrument already has an open bracket".to_string()),
            (Ok(q), false) => Ok(q),
        };
        let qty = match qty {
            Ok(q) => q,
            Err(reason) => return self.refuse_entry(a, id, links, now, reason, out),
        };
        let bracket = Bracket {
            entry_order_id: id,
            spec: it.bracket.clone(),
            links: links.clone(),
            ref_price: it.ref_price,
            leverage: it.leverage.unwrap_or(Decimal::ONE),
            entry_done: false,
            armed: false,
            first_fill_ts: None,
            time_stop_at: None,
            time_stopped: false,
        };
        self.brackets.insert(it.instrument.clone(), bracket);
        let (inst, intent_id) = (it.instrument.clone(), Some(it.id.clone()));
        let kind = OrderType::Market;
        let purpose = OrderPurpose::Entry;
        self.new_order(
            &inst, it.side, qty, kind, purpose, links, intent_id, now, out,
        );
    }

    /// An entry refused at the edge, before it reaches the venue: journaled as a done order.
    fn refuse_entry(
        &mut self,
        a: &ApprovedOrder,
        id: String,
        links: Links,
        now: i64,
        reason: String,
        out: &mut Vec<BrokerEvent>,
    ) {
        self.next_order += 1;
        let order = Order {
            id,
            intent_id: Some(a.intent.id.clone()),
            parent_order_id: None,
            instrument: a.intent.instrument.clone(),
            side: a.intent.side,
            qty: a.qty,
            filled_qty: Decimal::ZERO,
            order_type: OrderType::Market,
            purpose: OrderPurpose::Entry,
            reduce_only: false,
            created_ts_ms: now,
            active_from_ms: now,
            status: OrderStatus::Canceled,
            lot_size: None,
        };
        out.push(BrokerEvent::OrderDone {
            order,
            links,
            reason,
        });
    }

    /// A market event: marks the position, lets the venue match, manages brackets and time stops.
    pub fn on_market(&mut self, e: &MarketEvent, out: &mut Vec<BrokerEvent>) {
        match e {
            MarketEvent::Trade(t) => {
                self.clock = self.clock.max(t.ts_ms);
                self.portfolio.mark(&t.instrument, t.price);
                self.portfolio.mark_perp(&t.instrument, t.price);
            }
            MarketEvent::Book(b) => self.clock = self.clock.max(b.ts_ms),
            // Observation time, not market time: no clock move.
            MarketEvent::Status(_) | MarketEvent::UserFill(_) | MarketEvent::UserPosition(_) => {
                return
            }
            MarketEvent::Mark(m) => return self.funding.on_mark(m, &mut self.portfolio),
        }
        self.funding.settle(self.clock, &mut self.portfolio);
        self.with_venue_do(out, |v, r| v.on_market(e, r));
        self.check_time_stops(out);
    }

    fn on_venue(&mut self, e: VenueEvent, out: &mut Vec<BrokerEvent>) {
        match e {
            VenueEvent::Accepted(order) => {
                let links = self.links(&order.id);
                self.update_order(&order);
                out.push(BrokerEvent::OrderNew { order, links });
            }
            VenueEvent::Triggered { order, trade_price } => {
                let (links, inst) = (self.links(&order.id), order.instrument.clone());
                self.update_order(&order);
                out.push(BrokerEvent::OrderTriggered {
                    order,
                    links,
                    trade_price,
                });
                // One-cancels-other: the stop-loss is now closing, drop the ladder.
                let reason = "canceled: stop-loss triggered";
                self.cancel_where(
                    |o| o.instrument == inst && o.purpose == OrderPurpose::TakeProfit,
                    reason,
                    out,
                );
            }
            VenueEvent::Done { order, reason } => {
                self.orders.retain(|o| o.id != order.id);
                let links = self.order_links.remove(&order.id).unwrap_or_default();
                let requested = self.cancelling.remove(&order.id);
                let ended = (order.status == OrderStatus::Expired || !requested)
                    .then(|| (order.instrument.clone(), order.purpose));
                out.push(BrokerEvent::OrderDone {
                    order,
                    links,
                    reason,
                });
                if let Some((inst, purpose)) = ended {
                    self.after_order_end(&inst, purpose, out);
                }
            }
            VenueEvent::Fill { fill, order } => self.on_fill(fill, order, out),
        }
    }

    fn links(&self, order_id: &str) -> Links {
        self.order_links.get(order_id).cloned().unwrap_or_default()
    }

    /// Replaces the live copy of `order` (fills, trigger).
    fn update_order(&mut self, order: &Order) {
        if let Some(o) = self.orders.iter_mut().find(|o| o.id == order.id) {
            *o = order.clone();
        }
    }

    /// Cancels live orders matching `hit`, in creation order.
    fn cancel_where(
        &mut self,
        hit: impl Fn(&Order) -> bool,
        reason: &str,
        out: &mut Vec<BrokerEvent>,
    ) {
        let ids: Vec<String> = self
            .orders
            .iter()
            .filter(|o| hit(o))
            .map(|o| o.id.clone())
            .collect();
        for id in ids {
            self.cancel(&id, reason, out);
        }
    }
}

#[cfg(test)]
mod tests;
