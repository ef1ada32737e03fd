//! Exits: fills into the portfolio, brackets armed after the entry, the stop kept to the
//! position, time stops, and the operator's halt / resume / flatten.

use super::{OrderManager, Venue};
use crate::domain::{Fill, Instrument, Order, OrderPurpose, OrderStatus, OrderType, Side};
use crate::execution::events::{ApprovedOrder, BrokerEvent, Links};
use crate::execution::sim::floor8;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

/// The side that closes a position of signed size `qty`.
fn closing_side(qty: Decimal) -> Side {
    if qty > Decimal::ZERO {
        Side::Sell
    } else {
        Side::Buy
    }
}

impl<V: Venue> OrderManager<V> {
    pub(super) fn on_fill(&mut self, fill: Fill, order: Order, out: &mut Vec<BrokerEvent>) {
        let (purpose, inst) = (order.purpose, order.instrument.clone());
        let done = order.status == OrderStatus::Filled;
        let links = self.links(&order.id);
        let entry_id = links.entry_order_id.clone().unwrap_or(order.id.clone());
        let closed = if self.is_perp(&inst) {
            let lev = self
                .brackets
                .get(&inst)
                .map_or(Decimal::ONE, |b| b.leverage);
            self.portfolio.apply_perp_fill(&fill, lev, &entry_id)
        } else {
            self.portfolio.apply_fill(&fill, &entry_id)
        };
        let ts = fill.ts_ms;
        out.push(BrokerEvent::Fill {
            fill,
            purpose,
            links: links.clone(),
        });
        if purpose == OrderPurpose::Entry {
            if let Some(b) = self.brackets.get_mut(&inst) {
                b.first_fill_ts.get_or_insert(ts);
            }
        }
        if done {
            self.orders.retain(|o| o.id != order.id);
            self.order_links.remove(&order.id);
        } else {
            self.update_order(&order);
        }
        if let Some(round_trip) = closed {
            let reason = "canceled: position closed";
            let child = |o: &Order| o.instrument == inst && o.purpose != OrderPurpose::Entry;
            self.cancel_where(child, reason, out);
            let bracket = self.brackets.remove(&inst);
            let id = format!("exi-{}", self.next_exit);
            self.next_exit += 1;
            out.push(BrokerEvent::Exit {
                id,
                round_trip,
                reason: purpose,
                links: bracket.map_or(links, |b| b.links),
            });
        } else if done {
            self.after_order_end(&inst, purpose, out);
        } else if purpose != OrderPurpose::Entry {
            self.resize_stop(&inst);
        }
    }

    /// Keeps the stop-loss no larger than the position (reduce-only).
    fn resize_stop(&mut self, inst: &Instrument) {
        let held = self.position(inst).map_or(Decimal::ZERO, |(q, _)| q.abs());
        let mut amended = Vec::new();
        for o in self.orders.iter_mut() {
            if &o.instrument == inst && o.purpose == OrderPurpose::StopLoss {
                o.qty = o.filled_qty + held;
                amended.push((o.id.clone(), o.qty));
            }
        }
        for (id, qty) in amended {
            self.venue.amend_qty(&id, qty);
        }
    }

    /// An order left the book filled, or an entry expired: arm the bracket, resize the stop.
    pub(super) fn after_order_end(
        &mut self,
        inst: &Instrument,
        purpose: OrderPurpose,
        out: &mut Vec<BrokerEvent>,
    ) {
        match purpose {
            OrderPurpose::Entry => {
                let Some(b) = self.brackets.get_mut(inst) else {
                    return;
                };
                b.entry_done = true;
                match self.position(inst) {
                    Some((qty, avg)) if !qty.is_zero() => self.arm(inst, qty, avg, out),
                    // Nothing filled: no position, no bracket.
                    _ => {
                        self.brackets.remove(inst);
                    }
                }
            }
            OrderPurpose::TakeProfit => self.resize_stop(inst),
            OrderPurpose::StopLoss
            | OrderPurpose::TimeStop
            | OrderPurpose::Flatten
            | OrderPurpose::SignalExit => {}
        }
    }

    /// Places the take-profit ladder and the stop-loss of a position of signed size `qty`
    /// entered at `avg`, and sets its time stop.
    fn arm(&mut self, inst: &Instrument, qty: Decimal, avg: Decimal, out: &mut Vec<BrokerEvent>) {
        if self.halted {
            return;
        }
        let b = self.brackets.get(inst).expect("caller checked").clone();
        let (now, spec) = (self.clock, self.specs.get(inst).cloned());
        let (side, size, long) = (closing_side(qty), qty.abs(), qty > Decimal::ZERO);
        // Away from the entry in the position's favour (take-profit) or against it (stop).
        let away = |pct: Decimal, favour: bool| {
            let f = pct / dec!(100);
            let up = Decimal::ONE + f;
            let down = Decimal::ONE - f;
            (avg * if long == favour { up } else { down }).round_dp(12)
        };
        for step in &b.spec.take_profit {
            let q = match &spec {
                Some(s) => s.round_qty(size * step.fraction),
                None => floor8(size * step.fraction),
            };
            if q <= Decimal::ZERO {
                continue;
            }
            let mut price = away(step.gain_pct, true);
            if let Some(s) = &spec {
                price = s.round_limit(price, side);
            }
            let (kind, tp) = (OrderType::Limit { price }, OrderPurpose::TakeProfit);
            self.new_order(inst, side, q, kind, tp, b.links.clone(), None, now, out);
        }
        let mut trigger = away(b.spec.stop_loss_pct, false);
        if let Some(s) = &spec {
            trigger = s.round_trigger(trigger, side);
        }
        let (kind, sl) = (OrderType::Stop { trigger }, OrderPurpose::StopLoss);
        self.new_order(inst, side, size, kind, sl, b.links.clone(), None, now, out);
        let bm = self.brackets.get_mut(inst).expect("present");
        bm.armed = true;
        bm.time_stop_at = Some(bm.first_fill_ts.unwrap_or(now) + bm.spec.max_hold_ms);
    }

    /// A reduce-only market order closing a position of signed size `qty` (time stop,
    /// flatten), at the manager's clock.
    fn close_at_market(
        &mut self,
        inst: &Instrument,
        qty: Decimal,
        purpose: OrderPurpose,
        links: Links,
        out: &mut Vec<BrokerEvent>,
    ) {
        let (side, now) = (closing_side(qty), self.clock);
        let kind = OrderType::Market;
        self.new_order(inst, side, qty.abs(), kind, purpose, links, None, now, out);
    }

    pub(super) fn check_time_stops(&mut self, out: &mut Vec<BrokerEvent>) {
        if self.halted {
            return;
        }
        let clock = self.clock;
        let due: Vec<Instrument> = self
            .brackets
            .iter()
            .filter(|(_, b)| {
                b.armed && !b.time_stopped && b.time_stop_at.is_some_and(|t| clock >= t)
            })
            .map(|(i, _)| i.clone())
            .collect();
        for inst in due {
            let child = |o: &Order| o.instrument == inst && o.purpose != OrderPurpose::Entry;
            self.cancel_where(child, "canceled: time stop", out);
            let b = self.brackets.get_mut(&inst).expect("present");
            b.time_stopped = true;
            let links = b.links.clone();
            if let Some((qty, _)) = self.position(&inst) {
                self.close_at_market(&inst, qty, OrderPurpose::TimeStop, links, out);
            }
        }
    }

    /// `halt`: cancels every live order (entries and bracket exits); places none until
    /// [`OrderManager::resume`]. Positions stay as they are.
    pub fn halt(&mut self, out: &mut Vec<BrokerEvent>) {
        self.halted = true;
        self.cancel_where(|_| true, "canceled: halt", out);
        // Unfilled entries leave no bracket; filled ones wait, disarmed, for resume.
        let pf = &self.portfolio;
        let held = |i: &Instrument| pf.positions.contains_key(i) || pf.perps.contains_key(i);
        self.brackets.retain(|i, _| held(i));
        for b in self.brackets.values_mut() {
            b.entry_done = true;
            b.armed = false;
        }
    }

    /// `resume` after a halt: re-arms the take-profit ladder and stop of every open position
    /// (time stop from its first fill, as before).
    pub fn resume(&mut self, out: &mut Vec<BrokerEvent>) {
        self.venue.on_resume();
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
            if let Some((qty, avg)) = self.position(&inst) {
                self.arm(&inst, qty, avg, out);
            }
        }
    }

    /// An approved reduce-only exit: cancels the instrument's bracket orders and closes the
    /// whole position at market (purpose `signal_exit`); nothing when there is no position.
    pub fn exit_position(&mut self, a: &ApprovedOrder, now: i64, out: &mut Vec<BrokerEvent>) {
        self.clock = self.clock.max(now);
        let inst = a.intent.instrument.clone();
        let Some((qty, _)) = self.position(&inst) else {
            return;
        };
        let child = |o: &Order| o.instrument == inst && o.purpose != OrderPurpose::Entry;
        self.cancel_where(child, "canceled: signal exit", out);
        let mut links = Links {
            signal_id: Some(a.intent.signal_id.clone()),
            intent_id: Some(a.intent.id.clone()),
            verdict_id: Some(a.verdict_id.clone()),
            entry_order_id: None,
        };
        if let Some(b) = self.brackets.get_mut(&inst) {
            b.time_stopped = true;
            b.armed = true;
            links.entry_order_id = b.links.entry_order_id.clone();
        }
        self.close_at_market(&inst, qty, OrderPurpose::SignalExit, links, out);
    }

    /// `flatten`: for `instrument` (all when `None`) cancels live orders and sends a reduce-only
    /// market order closing the whole position. Works while halted (the operator's own order).
    pub fn flatten(&mut self, instrument: Option<&Instrument>, out: &mut Vec<BrokerEvent>) {
        let hit = |i: &Instrument| instrument.is_none_or(|x| x == i);
        self.cancel_where(|o| hit(&o.instrument), "canceled: flatten", out);
        let held: Vec<(Instrument, Decimal)> = (self.portfolio.holdings())
            .filter(|h| hit(h.instrument))
            .map(|h| (h.instrument.clone(), h.qty))
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
            self.close_at_market(&inst, qty, OrderPurpose::Flatten, links, out);
        }
    }
}
