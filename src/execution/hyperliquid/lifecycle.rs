//! One order's life on the venue, as a state machine driven by the venue's answers, fills and
//! status polls: submitted → resting (or waiting for its trigger) → partially filled → filled;
//! or cancelled, rejected, expired. Each step yields the [`VenueEvent`]s order management
//! sees; a step that makes no sense in the current state (a resting answer for a filled
//! order) changes nothing, and late fills after a cancel are still applied (they happened).

use super::api::OrderAnswer;
use crate::domain::{Fill, Liquidity, Order, OrderStatus};
use crate::execution::venue::VenueEvent;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Where an order is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LifeState {
    /// Sent (or about to be); no answer yet.
    Submitted,
    /// On the book, or a trigger order waiting for its price.
    Resting,
    PartiallyFilled,
    Filled,
    Cancelled,
    Rejected,
    Expired,
}

impl LifeState {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            LifeState::Filled | LifeState::Cancelled | LifeState::Rejected | LifeState::Expired
        )
    }
}

/// A smartflow order on the venue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tracked {
    pub order: Order,
    pub cloid: String,
    pub coin: String,
    pub asset: u32,
    pub oid: Option<u64>,
    pub state: LifeState,
    /// An IOC answer's filled size: once the fills add up to it, the rest is cancelled.
    pub ioc_total: Option<Decimal>,
    pub ioc: bool,
    /// Why smartflow asked to cancel it (the reason its end is journaled with).
    #[serde(default)]
    pub cancel_reason: Option<String>,
}

/// What moves an order.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    Answer(OrderAnswer),
    Fill(Fill),
    /// The venue says the order left the book: `status` as `orderStatus` writes it.
    Gone {
        status: String,
        reason: String,
    },
}

impl Tracked {
    /// Applies `step`; appends the events order management must see.
    pub fn apply(&mut self, step: Step, out: &mut Vec<VenueEvent>) {
        match step {
            Step::Answer(a) => self.on_answer(a, out),
            Step::Fill(f) => self.on_fill(f, out),
            Step::Gone { status, reason } => self.on_gone(&status, reason, out),
        }
        self.finish_ioc(out);
    }

    fn on_answer(&mut self, a: OrderAnswer, out: &mut Vec<VenueEvent>) {
        if self.state != LifeState::Submitted {
            return;
        }
        match a {
            OrderAnswer::Resting { oid } => {
                self.oid = Some(oid);
                self.accept(out);
            }
            OrderAnswer::WaitingForTrigger => self.accept(out),
            OrderAnswer::Filled { oid, total_sz, .. } => {
                self.oid = Some(oid);
                self.ioc_total = Some(total_sz);
                self.accept(out);
            }
            OrderAnswer::Error(e) => {
                let reason = format!("rejected: {e}");
                self.end(LifeState::Rejected, reason, out);
            }
        }
    }

    fn accept(&mut self, out: &mut Vec<VenueEvent>) {
        self.state = LifeState::Resting;
        out.push(VenueEvent::Accepted(self.order.clone()));
    }

    fn on_fill(&mut self, mut f: Fill, out: &mut Vec<VenueEvent>) {
        if self.state == LifeState::Submitted {
            self.accept(out);
        }
        // Never more than the order: a venue over-fill is capped (and the position check
        // of the next reconciliation sees the difference).
        f.qty = f.qty.min(self.order.remaining());
        if f.qty <= Decimal::ZERO {
            return;
        }
        self.order.filled_qty += f.qty;
        let full = self.order.remaining() <= Decimal::ZERO;
        if !self.state.is_terminal() {
            self.state = if full {
                LifeState::Filled
            } else {
                LifeState::PartiallyFilled
            };
        }
        self.order.status = if full {
            OrderStatus::Filled
        } else {
            OrderStatus::PartiallyFilled
        };
        f.order_id.clone_from(&self.order.id);
        out.push(VenueEvent::Fill {
            fill: f,
            order: self.order.clone(),
        });
    }

    fn on_gone(&mut self, status: &str, reason: String, out: &mut Vec<VenueEvent>) {
        let state = match status {
            "filled" => return,
            "rejected" => LifeState::Rejected,
            s if s.contains("xpire") => LifeState::Expired,
            _ => LifeState::Cancelled,
        };
        self.end(state, reason, out);
    }

    /// An IOC order whose fills reached its answer's filled size: the rest was cancelled.
    fn finish_ioc(&mut self, out: &mut Vec<VenueEvent>) {
        let (Some(total), true) = (self.ioc_total, self.ioc) else {
            return;
        };
        let live = matches!(self.state, LifeState::Resting | LifeState::PartiallyFilled);
        if live && self.order.filled_qty >= total && self.order.remaining() > Decimal::ZERO {
            self.end(
                LifeState::Cancelled,
                "canceled: IOC remainder found no liquidity".into(),
                out,
            );
        }
    }

    fn end(&mut self, state: LifeState, reason: String, out: &mut Vec<VenueEvent>) {
        if self.state.is_terminal() {
            return;
        }
        self.state = state;
        self.order.status = if state == LifeState::Expired {
            OrderStatus::Expired
        } else {
            OrderStatus::Canceled
        };
        out.push(VenueEvent::Done {
            order: self.order.clone(),
            reason,
        });
    }
}

/// A venue fill as order management's [`Fill`] (id `hl-{tid}`, fee in USDC).
pub fn domain_fill(f: &super::api::VenueFill, t: &Tracked) -> Fill {
    Fill {
        id: format!("hl-{}", f.tid),
        order_id: t.order.id.clone(),
        instrument: t.order.instrument.clone(),
        side: t.order.side,
        ts_ms: f.time_ms,
        price: f.px,
        qty: f.sz,
        fee: f.fee,
        liquidity: if f.crossed {
            Liquidity::Taker
        } else {
            Liquidity::Maker
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Instrument, OrderPurpose, OrderType, Side};
    use crate::execution::hyperliquid::errors::VenueError;
    use rust_decimal_macros::dec;

    fn tracked(ioc: bool) -> Tracked {
        let order = Order {
            id: "ord-1".into(),
            intent_id: None,
            parent_order_id: None,
            instrument: Instrument::new("hyperliquid:BTC/USDC"),
            side: Side::Buy,
            qty: dec!(0.03),
            filled_qty: Decimal::ZERO,
            order_type: OrderType::Market,
            purpose: OrderPurpose::Entry,
            reduce_only: false,
            created_ts_ms: 0,
            active_from_ms: 0,
            status: OrderStatus::Open,
            lot_size: None,
        };
        Tracked {
            order,
            cloid: "0x01".into(),
            coin: "BTC".into(),
            asset: 0,
            oid: None,
            state: LifeState::Submitted,
            ioc_total: None,
            ioc,
            cancel_reason: None,
        }
    }

    fn fill(qty: Decimal) -> Fill {
        Fill {
            id: "hl-1".into(),
            order_id: String::new(),
            instrument: Instrument::new("hyperliquid:BTC/USDC"),
            side: Side::Buy,
            ts_ms: 1,
            price: dec!(100),
            qty,
            fee: dec!(0.01),
            liquidity: Liquidity::Taker,
        }
    }

    fn kinds(ev: &[VenueEvent]) -> Vec<&'static str> {
        ev.iter()
            .map(|e| match e {
                VenueEvent::Accepted(_) => "accepted",
                VenueEvent::Triggered { .. } => "triggered",
                VenueEvent::Fill { .. } => "fill",
                VenueEvent::Done { .. } => "done",
            })
            .collect()
    }

    #[test]
    fn resting_then_partial_then_filled() {
        let (mut t, mut out) = (tracked(false), vec![]);
        t.apply(Step::Answer(OrderAnswer::Resting { oid: 7 }), &mut out);
        assert_eq!((t.state, t.oid), (LifeState::Resting, Some(7)));
        t.apply(Step::Fill(fill(dec!(0.01))), &mut out);
        assert_eq!(t.state, LifeState::PartiallyFilled);
        t.apply(Step::Fill(fill(dec!(0.05))), &mut out); // capped at what is left
        assert_eq!(t.state, LifeState::Filled);
        assert_eq!(t.order.filled_qty, dec!(0.03));
        assert_eq!(kinds(&out), ["accepted", "fill", "fill"]);
        // A late answer changes nothing; a cancel of a filled order is no end.
        t.apply(Step::Answer(OrderAnswer::Resting { oid: 8 }), &mut out);
        t.apply(
            Step::Gone {
                status: "canceled".into(),
                reason: "x".into(),
            },
            &mut out,
        );
        assert_eq!(kinds(&out).len(), 3);
    }

    #[test]
    fn an_ioc_remainder_is_cancelled_once_its_fills_are_in() {
        let (mut t, mut out) = (tracked(true), vec![]);
        let answer = OrderAnswer::Filled {
            oid: 9,
            total_sz: dec!(0.02),
            avg_px: dec!(100),
        };
        t.apply(Step::Answer(answer), &mut out);
        assert_eq!(
            kinds(&out),
            ["accepted"],
            "no fill until the venue's fill arrives"
        );
        t.apply(Step::Fill(fill(dec!(0.02))), &mut out);
        assert_eq!(kinds(&out), ["accepted", "fill", "done"]);
        assert_eq!(t.state, LifeState::Cancelled);
        assert!(matches!(&out[2], VenueEvent::Done { reason, order }
            if reason.contains("IOC remainder") && order.filled_qty == dec!(0.02)));
    }

    #[test]
    fn a_rejection_ends_the_order_with_its_code_and_late_fills_still_count() {
        let (mut t, mut out) = (tracked(false), vec![]);
        let e = VenueError::from_message("Insufficient margin to place order. asset=0");
        t.apply(Step::Answer(OrderAnswer::Error(e)), &mut out);
        assert_eq!(t.state, LifeState::Rejected);
        assert!(matches!(&out[0], VenueEvent::Done { reason, .. }
            if reason == "rejected: VENUE_INSUFFICIENT_MARGIN: Insufficient margin to place order. asset=0"));
        let (mut t, mut out) = (tracked(false), vec![]);
        t.apply(Step::Answer(OrderAnswer::Resting { oid: 1 }), &mut out);
        t.apply(
            Step::Gone {
                status: "canceled".into(),
                reason: "canceled: halt".into(),
            },
            &mut out,
        );
        t.apply(Step::Fill(fill(dec!(0.01))), &mut out);
        assert_eq!(kinds(&out), ["accepted", "done", "fill"]);
        assert_eq!(
            t.state,
            LifeState::Cancelled,
            "a late fill does not revive the order"
        );
    }
}
