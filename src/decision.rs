//! The typed decision log: one Rust type per record kind, built from what the stages decided.
//!
//! The store and the JSONL export keep one layout ([`Record`]: `id`, `kind`, `ts_ms`,
//! `instrument`, link ids, `refused`, `detail`); [`Decision::to_record`] writes a detail type
//! as that `detail` object (keys in alphabetical order, as before). Refusal reasons are enums
//! with stable SCREAMING_SNAKE codes ([`ReasonCode`], [`SkipReason`]).

use crate::domain::command::{Command, CommandEvent};
use crate::domain::intent::{BracketSpec, OrderIntent};
use crate::domain::{Liquidity, Order, OrderPurpose, OrderStatus, OrderType, Side};
use crate::execution::events::Links;
use crate::execution::BrokerEvent;
use crate::risk::{CommandOutcome, Reason, ReasonCode, TradingState, Verdict};
use crate::store::{Record, RecordKind};
use crate::strategies::prepump::SkipReason;
use crate::strategies::signal::{Driver, Signal, SignalContext};
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::BTreeMap;

/// A pre-pump signal: score, drivers and feature values; the ensemble's members and inputs.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SignalDetail {
    /// The source: `rules`, `ensemble`, or another [`crate::strategies::signal::SignalSource`].
    pub detector: &'static str,
    pub drivers: Vec<Driver>,
    /// An exit signal (close the position); absent for entries.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub exit: bool,
    /// The ensemble's explanation (inputs, exact contributions, facts, level).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<crate::models::explain::Explanation>,
    pub features: BTreeMap<String, f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members: Option<BTreeMap<String, f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Trigger trade price, quote per base.
    pub price: Decimal,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row_ms: Option<i64>,
    pub score: f64,
    /// The way the source expects the price to go: `buy` (long) or `sell` (short).
    pub side: Side,
    pub threshold: f64,
}

/// An entry the strategy asks for.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct IntentDetail {
    pub action: &'static str,
    pub bracket: BracketSpec,
    pub notional: Decimal,
    pub qty: Decimal,
    pub reduce_only: bool,
    pub ref_price: Decimal,
    pub side: Side,
}

/// A signal the strategy did not act on, and why.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SkipDetail {
    pub action: &'static str,
    pub reason: SkipReason,
}

/// The risk manager's verdict on an intent.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct VerdictDetail {
    /// `approved` or `refused`.
    pub decision: &'static str,
    pub notional: Decimal,
    pub qty: Decimal,
    /// Refusal reasons, or the limits that resized an approved order.
    pub reasons: Vec<Reason>,
    pub requested_qty: Decimal,
    pub resized: bool,
    pub trading_state: TradingState,
}

/// An order event: `new`, `triggered`, `canceled` or `expired`.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct OrderDetail {
    pub active_from_ms: i64,
    pub event: &'static str,
    pub filled_qty: Decimal,
    pub limit_price: Option<Decimal>,
    pub purpose: OrderPurpose,
    pub qty: Decimal,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub reduce_only: bool,
    pub side: Side,
    pub status: OrderStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trade_price: Option<Decimal>,
    pub trigger_price: Option<Decimal>,
    #[serde(rename = "type")]
    pub order_type: &'static str,
}

/// One paper execution.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FillDetail {
    pub fee: Decimal,
    pub liquidity: Liquidity,
    pub notional: Decimal,
    pub price: Decimal,
    pub purpose: OrderPurpose,
    pub qty: Decimal,
    pub side: Side,
}

/// A position went flat: the round trip's PnL after fees.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ExitDetail {
    pub avg_entry_price: Decimal,
    pub fees: Decimal,
    pub hold_ms: i64,
    pub opened_ts_ms: i64,
    pub pnl: Decimal,
    pub reason: OrderPurpose,
}

/// An operator command, who sent it and what it did.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct CommandDetail {
    #[serde(flatten)]
    pub command: Command,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_after: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_before: Option<String>,
    /// `applied` or `refused`.
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub source: String,
    pub trading_state: TradingState,
}

/// What a decision record holds, by kind.
#[derive(Clone, Debug, PartialEq)]
pub enum Detail {
    Signal(Box<SignalDetail>),
    Intent(IntentDetail),
    Skip(SkipDetail),
    Verdict(VerdictDetail),
    Order(OrderDetail),
    Fill(FillDetail),
    Exit(ExitDetail),
    Command(CommandDetail),
}

impl Detail {
    pub fn kind(&self) -> RecordKind {
        match self {
            Detail::Signal(_) => RecordKind::Signal,
            Detail::Intent(_) | Detail::Skip(_) => RecordKind::Intent,
            Detail::Verdict(_) => RecordKind::Verdict,
            Detail::Order(_) => RecordKind::Order,
            Detail::Fill(_) => RecordKind::Fill,
            Detail::Exit(_) => RecordKind::Exit,
            Detail::Command(_) => RecordKind::Command,
        }
    }

    fn to_json(&self) -> serde_json::Value {
        let v = match self {
            Detail::Signal(d) => serde_json::to_value(d),
            Detail::Intent(d) => serde_json::to_value(d),
            Detail::Skip(d) => serde_json::to_value(d),
            Detail::Verdict(d) => serde_json::to_value(d),
            Detail::Order(d) => serde_json::to_value(d),
            Detail::Fill(d) => serde_json::to_value(d),
            Detail::Exit(d) => serde_json::to_value(d),
            Detail::Command(d) => serde_json::to_value(d),
        };
        v.expect("decision details are plain data")
    }
}

/// One decision: its id, event time, instrument, links to the records it follows from.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub id: String,
    pub ts_ms: i64,
    pub instrument: String,
    pub signal_id: Option<String>,
    pub intent_id: Option<String>,
    pub verdict_id: Option<String>,
    pub order_id: Option<String>,
    pub parent_order_id: Option<String>,
    pub refused: bool,
    pub detail: Detail,
}

impl Decision {
    fn new(id: String, ts_ms: i64, instrument: &str, detail: Detail) -> Self {
        Self {
            id,
            ts_ms,
            instrument: instrument.to_string(),
            signal_id: None,
            intent_id: None,
            verdict_id: None,
            order_id: None,
            parent_order_id: None,
            refused: false,
            detail,
        }
    }

    pub fn kind(&self) -> RecordKind {
        self.detail.kind()
    }

    /// Refusal codes of a refused verdict (empty otherwise).
    pub fn refusal_codes(&self) -> impl Iterator<Item = ReasonCode> + '_ {
        let reasons = match &self.detail {
            Detail::Verdict(v) if self.refused => v.reasons.as_slice(),
            _ => &[],
        };
        reasons.iter().map(|r| r.code)
    }

    /// The stored / exported form.
    pub fn to_record(&self) -> Record {
        let mut r = Record::new(self.id.clone(), self.kind(), self.ts_ms, &self.instrument);
        r.signal_id.clone_from(&self.signal_id);
        r.intent_id.clone_from(&self.intent_id);
        r.verdict_id.clone_from(&self.verdict_id);
        r.order_id.clone_from(&self.order_id);
        r.parent_order_id.clone_from(&self.parent_order_id);
        r.refused = self.refused;
        r.detail = self.detail.to_json();
        r
    }

    pub fn signal(s: &Signal, threshold: f64) -> Self {
        let (detector, features, m) = match &s.context {
            SignalContext::PrePump { features, model } => {
                let m = model.as_deref();
                let name = if m.is_some() { "ensemble" } else { "rules" };
                (name, features.named().into_iter().collect(), m)
            }
            SignalContext::Named { source, values } => (*source, values.clone(), None),
        };
        let d = SignalDetail {
            detector,
            drivers: s.drivers.clone(),
            exit: s.exit,
            explanation: m.map(|m| m.explanation.clone()),
            features,
            members: m.map(|m| m.members.clone()),
            model: m.map(|m| m.version.clone()),
            price: s.price,
            probability: m.map(|m| m.probability),
            row_ms: m.map(|m| m.row_ms),
            score: s.score,
            side: s.side,
            threshold: m.map_or(threshold, |m| m.threshold),
        };
        let mut r = Self::new(
            s.id.clone(),
            s.ts_ms,
            s.instrument.as_str(),
            Detail::Signal(Box::new(d)),
        );
        r.signal_id = Some(s.id.clone());
        r
    }

    pub fn intent(it: &OrderIntent) -> Self {
        let d = IntentDetail {
            action: if it.reduce_only { "exit" } else { "enter" },
            bracket: it.bracket.clone(),
            notional: it.notional(),
            qty: it.qty,
            reduce_only: it.reduce_only,
            ref_price: it.ref_price,
            side: it.side,
        };
        let mut r = Self::new(
            it.id.clone(),
            it.ts_ms,
            it.instrument.as_str(),
            Detail::Intent(d),
        );
        r.signal_id = Some(it.signal_id.clone());
        r.intent_id = Some(it.id.clone());
        r
    }

    pub fn skip(s: &Signal, reason: SkipReason) -> Self {
        let d = SkipDetail {
            action: "none",
            reason,
        };
        let id = format!("{}-skip", s.id);
        let mut r = Self::new(id, s.ts_ms, s.instrument.as_str(), Detail::Skip(d));
        r.signal_id = Some(s.id.clone());
        r.refused = true;
        r
    }

    pub fn verdict(v: &Verdict, it: &OrderIntent) -> Self {
        let d = VerdictDetail {
            decision: if v.approved { "approved" } else { "refused" },
            notional: v.notional,
            qty: v.qty,
            reasons: v.reasons.clone(),
            requested_qty: it.qty,
            resized: v.resized,
            trading_state: v.trading_state,
        };
        let mut r = Self::new(
            v.id.clone(),
            v.ts_ms,
            v.instrument.as_str(),
            Detail::Verdict(d),
        );
        r.signal_id = Some(it.signal_id.clone());
        r.intent_id = Some(it.id.clone());
        r.verdict_id = Some(v.id.clone());
        r.refused = !v.approved;
        r
    }

    /// An operator command at event time `ts`.
    pub fn command(c: &CommandEvent, o: &CommandOutcome, ts: i64) -> Self {
        let instrument = match &c.command {
            Command::Flatten {
                instrument: Some(i),
            } => i.as_str(),
            _ => "",
        };
        let (before, after) = match &o.limit {
            Some((_, old, new)) => (Some(old.clone()), Some(new.clone())),
            None => (None, None),
        };
        let d = CommandDetail {
            command: c.command.clone(),
            limit_after: after,
            limit_before: before,
            outcome: if o.applied { "applied" } else { "refused" },
            reason: o.reason.clone(),
            source: c.source.clone(),
            trading_state: o.trading_state,
        };
        let mut r = Self::new(c.id.clone(), ts, instrument, Detail::Command(d));
        r.refused = !o.applied;
        r
    }

    /// The records of what the broker did, at event time `ts` (orders: their creation time;
    /// fills: their own time).
    pub fn from_broker(e: &BrokerEvent, ts: i64) -> Self {
        let (mut r, links) = match e {
            BrokerEvent::OrderNew { order, links } => {
                let d = order_detail(order, "new", None, None);
                (
                    Self::order(order.id.clone(), order, d, order.created_ts_ms),
                    links,
                )
            }
            BrokerEvent::OrderTriggered {
                order,
                links,
                trade_price,
            } => {
                let d = order_detail(order, "triggered", Some(*trade_price), None);
                (
                    Self::order(format!("{}#triggered", order.id), order, d, ts),
                    links,
                )
            }
            BrokerEvent::OrderDone {
                order,
                links,
                reason,
            } => {
                let ev = match reason.split(':').next() {
                    Some("expired") => "expired",
                    Some("rejected") => "rejected",
                    _ => "canceled",
                };
                let d = order_detail(order, ev, None, Some(reason.clone()));
                (
                    Self::order(format!("{}#{ev}", order.id), order, d, ts),
                    links,
                )
            }
            BrokerEvent::Fill {
                fill,
                purpose,
                links,
            } => {
                let d = FillDetail {
                    fee: fill.fee,
                    liquidity: fill.liquidity,
                    notional: fill.price * fill.qty,
                    price: fill.price,
                    purpose: *purpose,
                    qty: fill.qty,
                    side: fill.side,
                };
                let mut r = Self::new(
                    fill.id.clone(),
                    fill.ts_ms,
                    fill.instrument.as_str(),
                    Detail::Fill(d),
                );
                r.order_id = Some(fill.order_id.clone());
                r.parent_order_id = links.entry_order_id.clone().filter(|e| *e != fill.order_id);
                (r, links)
            }
            BrokerEvent::Exit {
                id,
                round_trip: rt,
                reason,
                links,
            } => {
                let d = ExitDetail {
                    avg_entry_price: rt.avg_entry_price,
                    fees: rt.fees,
                    hold_ms: rt.closed_ts_ms - rt.opened_ts_ms,
                    opened_ts_ms: rt.opened_ts_ms,
                    pnl: rt.pnl,
                    reason: *reason,
                };
                let mut r = Self::new(id.clone(), ts, rt.instrument.as_str(), Detail::Exit(d));
                r.order_id = Some(rt.entry_order_id.clone());
                (r, links)
            }
        };
        r.link(links);
        r
    }

    fn order(id: String, o: &Order, d: OrderDetail, ts: i64) -> Self {
        let mut r = Self::new(id, ts, o.instrument.as_str(), Detail::Order(d));
        r.order_id = Some(o.id.clone());
        r.parent_order_id.clone_from(&o.parent_order_id);
        r
    }

    fn link(&mut self, l: &Links) {
        self.signal_id.clone_from(&l.signal_id);
        self.intent_id.clone_from(&l.intent_id);
        self.verdict_id.clone_from(&l.verdict_id);
    }
}

fn order_detail(
    o: &Order,
    event: &'static str,
    trade_price: Option<Decimal>,
    reason: Option<String>,
) -> OrderDetail {
    let (limit, trigger, kind) = match o.order_type {
        OrderType::Limit { price } => (Some(price), None, "limit"),
        OrderType::Stop { trigger } => (None, Some(trigger), "stop"),
        OrderType::Market => (None, None, "market"),
    };
    OrderDetail {
        active_from_ms: o.active_from_ms,
        event,
        filled_qty: o.filled_qty,
        limit_price: limit,
        purpose: o.purpose,
        qty: o.qty,
        reason,
        reduce_only: o.reduce_only,
        side: o.side,
        status: o.status,
        trade_price,
        trigger_price: trigger,
        order_type: kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::command::Command;
    use crate::domain::{Instrument, Side};
    use crate::risk::{RiskConfig, RiskManager};
    use rust_decimal_macros::dec;

    fn intent() -> OrderIntent {
        OrderIntent {
            id: "int-1".into(),
            signal_id: "sig-1".into(),
            ts_ms: 5,
            instrument: Instrument::new("A/BTC"),
            side: Side::Buy,
            qty: dec!(10),
            ref_price: dec!(0.0001),
            reduce_only: false,
            bracket: BracketSpec {
                take_profit: vec![],
                stop_loss_pct: dec!(5),
                max_hold_ms: 1,
            },
            leverage: None,
        }
    }

    #[test]
    fn a_paused_refusal_is_typed_and_keeps_the_export_layout() {
        let mut rm = RiskManager::new(RiskConfig::default(), "BTC", dec!(1));
        let pause = CommandEvent {
            id: "cmd-1".into(),
            source: "test".into(),
            command: Command::Pause,
        };
        let outcome = rm.apply(&pause);
        let c = Decision::command(&pause, &outcome, 4).to_record();
        assert_eq!(c.kind, RecordKind::Command);
        assert_eq!(c.detail["command"], "pause");
        assert_eq!(c.detail["trading_state"], "reducing");
        let v = rm.check(&intent());
        let d = Decision::verdict(&v, &intent());
        assert!(d.refused);
        assert!(d.refusal_codes().any(|c| c == ReasonCode::Paused));
        let r = d.to_record();
        assert_eq!(r.kind, RecordKind::Verdict);
        assert_eq!(
            (r.signal_id.as_deref(), r.intent_id.as_deref()),
            (Some("sig-1"), Some("int-1"))
        );
        let keys: Vec<&String> = r.detail.as_object().unwrap().keys().collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted, "detail keys in alphabetical order, as before");
        assert_eq!(r.detail["decision"], "refused");
        assert!(r.detail["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["code"] == "PAUSED"));
    }
}
