//! The pure stages of the trading pipeline and the batch they pass along.
//!
//! Each stage is synchronous, deterministic code on event time; actors (src/actors) only move
//! batches between stages, supervise them and persist the journal. A [`Batch`] collects what each
//! stage adds (feature snapshots, signals, approved orders, decision records), indexed by the
//! position of the event that caused it, so the executor sees market events and orders in one
//! exact order.

use crate::control::{Command, CommandEvent};
use crate::domain::Instrument;
use crate::domain::{MarketEvent, Order, OrderType};
use crate::execution::{ApprovedOrder, BrokerEvent, PaperBroker, PortfolioView};
pub use crate::fault::{Fault, FAULT_TARGETS};
use crate::features::{FeatureConfig, FeatureSnapshot, FeatureWindow};
use crate::risk::{CommandOutcome, RiskManager};
use crate::store::{Record, RecordKind};
use crate::strategies::detector::{Detector, Signal};
use crate::strategies::ensemble_detector::{DetectorKind, EnsembleSaved};
use crate::strategies::prepump::{OrderIntent, PrePumpStrategy};
use rustc_hash::FxHashMap;
use serde_json::json;
use std::collections::BTreeMap;

/// A run of consecutive market events and everything the stages derived from them.
#[derive(Default)]
pub struct Batch {
    /// 0, 1, 2, … in stream order.
    pub seq: u64,
    /// Global index of `events[0]` in the merged stream.
    pub first_index: u64,
    pub events: Vec<MarketEvent>,
    pub snapshots: Vec<(u32, FeatureSnapshot)>,
    pub signals: Vec<(u32, Signal)>,
    pub intents: Vec<(u32, OrderIntent)>,
    pub approved: Vec<(u32, ApprovedOrder)>,
    /// Decision records with the index of the event that caused them; the journal orders them
    /// by that index (stable, so a stage's records follow the upstream ones of the same event).
    pub records: Vec<(u32, Record)>,
    /// Operator commands, applied before `events[0]` (a command batch carries no events).
    pub commands: Vec<CommandEvent>,
    /// The broker's state after this batch (JSON), for the store.
    pub executor_state: Option<Vec<u8>>,
    /// The risk manager's state after this batch (JSON), when it changed.
    pub risk_state: Option<Vec<u8>>,
    /// Final broker state, on the last batch only.
    pub final_broker: Option<Box<PaperBroker>>,
    /// True on the stream's last batch (possibly with no events).
    pub last: bool,
    /// Released when the batch is dropped (flow control between feed and journal).
    pub guard: Option<Box<dyn Send>>,
    /// Live only: when each event was decoded (parallel to `events`), for latency figures.
    /// Never read by the stages themselves.
    pub decoded_at: Vec<std::time::Instant>,
}

/// Lengths of a batch's outputs, to undo a stage's partial work after a panic.
#[derive(Clone, Copy)]
pub struct Mark {
    snapshots: usize,
    signals: usize,
    intents: usize,
    approved: usize,
    records: usize,
    has_state: bool,
    has_risk_state: bool,
}

impl Batch {
    pub fn mark(&self) -> Mark {
        Mark {
            snapshots: self.snapshots.len(),
            signals: self.signals.len(),
            intents: self.intents.len(),
            approved: self.approved.len(),
            records: self.records.len(),
            has_state: self.executor_state.is_some(),
            has_risk_state: self.risk_state.is_some(),
        }
    }
    /// Cuts the batch before every event that carries a signal, so each signal is the first
    /// event of its piece: strategy and risk then decide on it with the broker's view of the
    /// piece before, i.e. the portfolio as of the events before the signal, whatever the batch
    /// size. Pieces keep `seq` of the whole; the caller numbers them.
    pub fn split_at_signals(mut self) -> Vec<Batch> {
        let mut cuts: Vec<u32> = self.signals.iter().map(|(i, _)| *i).collect();
        cuts.dedup();
        cuts.retain(|&i| i > 0);
        if cuts.is_empty() {
            return vec![self];
        }
        let mut pieces = Vec::with_capacity(cuts.len() + 1);
        for &cut in cuts.iter().rev() {
            pieces.push(self.split_off(cut));
        }
        pieces.push(self);
        pieces.reverse();
        pieces
    }

    /// Moves events from `at` on (and everything derived from them) into a new batch.
    fn split_off(&mut self, at: u32) -> Batch {
        fn tail<T>(v: &mut Vec<(u32, T)>, at: u32) -> Vec<(u32, T)> {
            let k = v.partition_point(|(i, _)| *i < at);
            v.split_off(k)
                .into_iter()
                .map(|(i, x)| (i - at, x))
                .collect()
        }
        self.records.sort_by_key(|(i, _)| *i);
        let decoded_at = if self.decoded_at.is_empty() {
            Vec::new()
        } else {
            self.decoded_at.split_off(at as usize)
        };
        Batch {
            seq: self.seq,
            first_index: self.first_index + at as u64,
            events: self.events.split_off(at as usize),
            snapshots: tail(&mut self.snapshots, at),
            signals: tail(&mut self.signals, at),
            intents: tail(&mut self.intents, at),
            approved: tail(&mut self.approved, at),
            records: tail(&mut self.records, at),
            commands: Vec::new(),
            executor_state: None,
            risk_state: None,
            final_broker: None,
            last: std::mem::take(&mut self.last),
            guard: self.guard.take(),
            decoded_at,
        }
    }

    pub fn rollback(&mut self, m: Mark) {
        self.snapshots.truncate(m.snapshots);
        self.signals.truncate(m.signals);
        self.intents.truncate(m.intents);
        self.approved.truncate(m.approved);
        self.records.truncate(m.records);
        if !m.has_state {
            self.executor_state = None;
            self.final_broker = None;
        }
        if !m.has_risk_state {
            self.risk_state = None;
        }
    }
}

/// Stage names, in pipeline order.
pub const STAGES: &[&str] = &["features", "detector", "strategy", "risk", "executor"];

/// A pure pipeline stage.
pub trait Stage: Send + Unpin + 'static {
    const NAME: &'static str;
    /// Gated stages process a batch that needs the portfolio ([`Stage::needs_view`]) only after
    /// the broker's view of the batch before it.
    const GATED: bool = false;
    /// The signal source cuts its output before every signal ([`Batch::split_at_signals`]).
    const SPLITS_AT_SIGNALS: bool = false;
    /// Whether this batch holds a decision that reads the portfolio (gated stages only).
    fn needs_view(&self, _b: &Batch) -> bool {
        true
    }
    type Saved: Send + Unpin;
    /// Saves what `process` may change, so a panic can be undone.
    fn save(&self, batch: &Batch) -> Self::Saved;
    fn restore(&mut self, saved: Self::Saved);
    /// Adds this stage's outputs to the batch; the executor returns the portfolio view.
    fn process(&mut self, batch: &mut Batch, fault: &Fault) -> Option<PortfolioView>;
    fn on_feedback(&mut self, _v: &PortfolioView) {}
}

// ---------------------------------------------------------------- features

pub struct FeatureStage {
    cfg: FeatureConfig,
    windows: FxHashMap<Instrument, FeatureWindow>,
    /// False when the detector builds its own windows (the ensemble: with the model's settings),
    /// so no snapshot of this stage would be read.
    enabled: bool,
}

impl FeatureStage {
    pub fn new(cfg: FeatureConfig) -> Self {
        Self {
            cfg,
            windows: FxHashMap::default(),
            enabled: true,
        }
    }

    /// The stage a run with `detector` needs: a pass-through for the ensemble, which keeps its
    /// own feature windows.
    pub fn for_detector(cfg: FeatureConfig, detector: &DetectorKind) -> Self {
        let mut s = Self::new(cfg);
        s.enabled = matches!(detector, DetectorKind::Rules(_));
        s
    }
}

impl Stage for FeatureStage {
    const NAME: &'static str = "features";
    /// Windows of the instruments in the batch (None: did not exist yet).
    type Saved = Vec<(Instrument, Option<FeatureWindow>)>;

    fn save(&self, batch: &Batch) -> Self::Saved {
        let mut seen: Vec<Instrument> = Vec::new();
        for e in &batch.events {
            if !seen.contains(e.instrument()) {
                seen.push(e.instrument().clone());
            }
        }
        seen.into_iter()
            .map(|i| {
                let w = self.windows.get(&i).cloned();
                (i, w)
            })
            .collect()
    }
    fn restore(&mut self, saved: Self::Saved) {
        for (i, w) in saved {
            match w {
                Some(w) => self.windows.insert(i, w),
                None => self.windows.remove(&i),
            };
        }
    }
    fn process(&mut self, b: &mut Batch, fault: &Fault) -> Option<PortfolioView> {
        for (i, e) in b.events.iter().enumerate() {
            fault.check(Self::NAME, b.first_index + i as u64);
            let (MarketEvent::Trade(t), true) = (e, self.enabled) else {
                continue;
            };
            let w = match self.windows.get_mut(&t.instrument) {
                Some(w) => w,
                None => self
                    .windows
                    .entry(t.instrument.clone())
                    .or_insert_with(|| FeatureWindow::new(&self.cfg)),
            };
            if let Some(s) = w.update(t) {
                b.snapshots.push((i as u32, s));
            }
        }
        None
    }
}

// ---------------------------------------------------------------- detector

pub struct DetectorStage {
    det: DetectorKind,
}

impl DetectorStage {
    pub fn new(det: DetectorKind) -> Self {
        Self { det }
    }
}

/// State a detector batch rolls back to.
pub enum DetectorSaved {
    Rules(Detector),
    Ensemble(EnsembleSaved),
}

fn signal_record(s: &Signal, threshold: f64) -> Record {
    let features: BTreeMap<String, f64> = s.features.named().into_iter().collect();
    let mut r = Record::new(
        s.id.clone(),
        RecordKind::Signal,
        s.ts_ms,
        s.instrument.as_str(),
    );
    r.signal_id = Some(s.id.clone());
    r.detail = match &s.model {
        None => json!({
            "detector": "rules",
            "score": s.score,
            "threshold": threshold,
            "price": s.price,
            "drivers": s.drivers,
            "features": features,
        }),
        Some(m) => json!({
            "detector": "ensemble",
            "model": m.version,
            "score": s.score,
            "probability": m.probability,
            "threshold": m.threshold,
            "row_ms": m.row_ms,
            "price": s.price,
            "drivers": s.drivers,
            "members": m.members,
            "inputs": m.inputs,
            "features": features,
        }),
    };
    r
}

impl Stage for DetectorStage {
    const NAME: &'static str = "detector";
    const SPLITS_AT_SIGNALS: bool = true;
    type Saved = DetectorSaved;
    fn save(&self, b: &Batch) -> DetectorSaved {
        match &self.det {
            DetectorKind::Rules(d) => DetectorSaved::Rules(d.clone()),
            DetectorKind::Ensemble(d) => {
                DetectorSaved::Ensemble(d.save(b.events.iter().map(|e| e.instrument())))
            }
        }
    }
    fn restore(&mut self, s: DetectorSaved) {
        match (&mut self.det, s) {
            (DetectorKind::Rules(d), DetectorSaved::Rules(s)) => *d = s,
            (DetectorKind::Ensemble(d), DetectorSaved::Ensemble(s)) => d.restore(s),
            _ => {}
        }
    }
    fn process(&mut self, b: &mut Batch, fault: &Fault) -> Option<PortfolioView> {
        match &mut self.det {
            DetectorKind::Rules(det) => {
                for (i, s) in &b.snapshots {
                    fault.check(Self::NAME, b.first_index + *i as u64);
                    let Some(trade) = b.events[*i as usize].as_trade() else {
                        continue;
                    };
                    if let Some(sig) = det.on_snapshot(trade, s) {
                        b.records.push((*i, signal_record(&sig, det.cfg.threshold)));
                        b.signals.push((*i, sig));
                    }
                }
            }
            DetectorKind::Ensemble(det) => {
                for (i, e) in b.events.iter().enumerate() {
                    fault.check(Self::NAME, b.first_index + i as u64);
                    let MarketEvent::Trade(t) = e else {
                        continue;
                    };
                    if let Some(sig) = det.on_trade(t) {
                        let thr = det.threshold();
                        b.records.push((i as u32, signal_record(&sig, thr)));
                        b.signals.push((i as u32, sig));
                    }
                }
            }
        }
        None
    }
}

// ---------------------------------------------------------------- strategy

pub struct StrategyStage {
    strat: PrePumpStrategy,
}

impl StrategyStage {
    pub fn new(strat: PrePumpStrategy) -> Self {
        Self { strat }
    }
}

impl Stage for StrategyStage {
    const NAME: &'static str = "strategy";
    const GATED: bool = true;
    fn needs_view(&self, b: &Batch) -> bool {
        !b.signals.is_empty()
    }
    type Saved = PrePumpStrategy;
    fn save(&self, _: &Batch) -> PrePumpStrategy {
        self.strat.clone()
    }
    fn restore(&mut self, s: PrePumpStrategy) {
        self.strat = s;
    }
    fn on_feedback(&mut self, v: &PortfolioView) {
        self.strat.on_feedback(v);
    }
    fn process(&mut self, b: &mut Batch, fault: &Fault) -> Option<PortfolioView> {
        for (i, sig) in &b.signals {
            fault.check(Self::NAME, b.first_index + *i as u64);
            match self.strat.on_signal(sig) {
                Ok(it) => {
                    let mut r = Record::new(
                        it.id.clone(),
                        RecordKind::Intent,
                        it.ts_ms,
                        it.instrument.as_str(),
                    );
                    r.signal_id = Some(sig.id.clone());
                    r.intent_id = Some(it.id.clone());
                    r.detail = json!({
                        "action": "enter",
                        "side": it.side,
                        "qty": it.qty,
                        "ref_price": it.ref_price,
                        "notional": it.notional(),
                        "reduce_only": it.reduce_only,
                        "bracket": it.bracket,
                    });
                    b.records.push((*i, r));
                    b.intents.push((*i, it));
                }
                Err(reason) => {
                    let id = format!("{}-skip", sig.id);
                    let mut r =
                        Record::new(id, RecordKind::Intent, sig.ts_ms, sig.instrument.as_str());
                    r.signal_id = Some(sig.id.clone());
                    r.refused = true;
                    r.detail = json!({ "action": "none", "reason": reason });
                    b.records.push((*i, r));
                }
            }
        }
        None
    }
}

// ---------------------------------------------------------------- risk

pub struct RiskStage {
    rm: RiskManager,
}

impl RiskStage {
    pub fn new(rm: RiskManager) -> Self {
        Self { rm }
    }
}

impl Stage for RiskStage {
    const NAME: &'static str = "risk";
    const GATED: bool = true;
    fn needs_view(&self, b: &Batch) -> bool {
        !b.intents.is_empty()
    }
    type Saved = RiskManager;
    fn save(&self, _: &Batch) -> RiskManager {
        self.rm.clone()
    }
    fn restore(&mut self, s: RiskManager) {
        self.rm = s;
    }
    fn on_feedback(&mut self, v: &PortfolioView) {
        self.rm.on_feedback(v);
    }
    fn process(&mut self, b: &mut Batch, fault: &Fault) -> Option<PortfolioView> {
        for c in &b.commands {
            let outcome = self.rm.apply(c);
            let ts = self.rm.clock().max(0);
            b.records.push((0, command_record(c, &outcome, ts)));
        }
        let mut changed = !b.commands.is_empty();
        let mut next = 0;
        for (i, e) in b.events.iter().enumerate() {
            self.rm.on_event(e);
            while next < b.intents.len() && b.intents[next].0 as usize == i {
                fault.check(Self::NAME, b.first_index + i as u64);
                let it = &b.intents[next].1;
                let v = self.rm.check(it);
                let mut r = Record::new(
                    v.id.clone(),
                    RecordKind::Verdict,
                    v.ts_ms,
                    v.instrument.as_str(),
                );
                r.signal_id = Some(it.signal_id.clone());
                r.intent_id = Some(it.id.clone());
                r.verdict_id = Some(v.id.clone());
                r.refused = !v.approved;
                r.detail = json!({
                    "decision": if v.approved { "approved" } else { "refused" },
                    "qty": v.qty,
                    "notional": v.notional,
                    "requested_qty": it.qty,
                    "resized": v.resized,
                    "reasons": v.reasons,
                    "trading_state": v.trading_state,
                });
                b.records.push((i as u32, r));
                changed = true;
                if v.approved {
                    b.approved.push((
                        i as u32,
                        ApprovedOrder {
                            intent: it.clone(),
                            verdict_id: v.id.clone(),
                            qty: v.qty,
                        },
                    ));
                }
                next += 1;
            }
        }
        if changed || b.last {
            b.risk_state = serde_json::to_vec(&self.rm).ok();
        }
        None
    }
}

/// The decision record of an operator command: what was asked, by whom, and what it did.
fn command_record(c: &CommandEvent, o: &CommandOutcome, ts: i64) -> Record {
    let instrument = match &c.command {
        Command::Flatten {
            instrument: Some(i),
        } => i.as_str(),
        _ => "",
    };
    let mut r = Record::new(c.id.clone(), RecordKind::Command, ts, instrument);
    r.refused = !o.applied;
    let mut d = serde_json::to_value(&c.command).unwrap_or_default();
    d["source"] = json!(c.source);
    d["outcome"] = json!(if o.applied { "applied" } else { "refused" });
    if let Some(why) = &o.reason {
        d["reason"] = json!(why);
    }
    if let Some((name, old, new)) = &o.limit {
        d["limit_before"] = json!(old);
        d["limit_after"] = json!(new);
        d["limit"] = json!(name);
    }
    d["trading_state"] = json!(o.trading_state);
    r.detail = d;
    r
}

// ---------------------------------------------------------------- executor

pub struct ExecStage {
    broker: PaperBroker,
    events: Vec<BrokerEvent>,
    /// Batches since the broker's state was last handed to the journal.
    unsaved: u32,
}

/// The broker's state goes to the store with every batch that changed orders or positions, and
/// at least every this many batches (fresher marks for `smartflow status`).
const SAVE_EVERY_BATCHES: u32 = 64;

impl ExecStage {
    pub fn new(broker: PaperBroker) -> Self {
        Self {
            broker,
            events: Vec::new(),
            unsaved: 0,
        }
    }
}

fn order_detail(o: &Order, event: &str) -> serde_json::Value {
    let (limit, trigger) = match o.order_type {
        OrderType::Limit { price } => (Some(price), None),
        OrderType::Stop { trigger } => (None, Some(trigger)),
        OrderType::Market => (None, None),
    };
    json!({
        "event": event,
        "side": o.side,
        "type": match o.order_type { OrderType::Market => "market", OrderType::Limit { .. } => "limit", OrderType::Stop { .. } => "stop" },
        "limit_price": limit,
        "trigger_price": trigger,
        "qty": o.qty,
        "filled_qty": o.filled_qty,
        "purpose": o.purpose,
        "reduce_only": o.reduce_only,
        "status": o.status,
        "active_from_ms": o.active_from_ms,
    })
}

/// Turns broker events into decision records at event time `ts`.
pub fn broker_records(evs: &[BrokerEvent], ts: i64, index: u32, out: &mut Vec<(u32, Record)>) {
    for e in evs {
        let (id, kind, instrument, links, order_id, parent, detail) = match e {
            BrokerEvent::OrderNew { order, links } => (
                order.id.clone(),
                RecordKind::Order,
                &order.instrument,
                links,
                Some(order.id.clone()),
                order.parent_order_id.clone(),
                order_detail(order, "new"),
            ),
            BrokerEvent::OrderTriggered {
                order,
                links,
                trade_price,
            } => {
                let mut d = order_detail(order, "triggered");
                d["trade_price"] = json!(trade_price);
                (
                    format!("{}#triggered", order.id),
                    RecordKind::Order,
                    &order.instrument,
                    links,
                    Some(order.id.clone()),
                    order.parent_order_id.clone(),
                    d,
                )
            }
            BrokerEvent::OrderDone {
                order,
                links,
                reason,
            } => {
                let ev = if reason.starts_with("expired") {
                    "expired"
                } else {
                    "canceled"
                };
                let mut d = order_detail(order, ev);
                d["reason"] = json!(reason);
                (
                    format!("{}#{ev}", order.id),
                    RecordKind::Order,
                    &order.instrument,
                    links,
                    Some(order.id.clone()),
                    order.parent_order_id.clone(),
                    d,
                )
            }
            BrokerEvent::Fill {
                fill,
                purpose,
                links,
            } => (
                fill.id.clone(),
                RecordKind::Fill,
                &fill.instrument,
                links,
                Some(fill.order_id.clone()),
                links.entry_order_id.clone().filter(|e| *e != fill.order_id),
                json!({
                    "side": fill.side,
                    "price": fill.price,
                    "qty": fill.qty,
                    "notional": fill.price * fill.qty,
                    "fee": fill.fee,
                    "liquidity": fill.liquidity,
                    "purpose": purpose,
                }),
            ),
            BrokerEvent::Exit {
                id,
                round_trip: rt,
                reason,
                links,
            } => (
                id.clone(),
                RecordKind::Exit,
                &rt.instrument,
                links,
                Some(rt.entry_order_id.clone()),
                None,
                json!({
                    "reason": reason,
                    "pnl": rt.pnl,
                    "fees": rt.fees,
                    "avg_entry_price": rt.avg_entry_price,
                    "opened_ts_ms": rt.opened_ts_ms,
                    "hold_ms": rt.closed_ts_ms - rt.opened_ts_ms,
                }),
            ),
        };
        let mut r = Record::new(id, kind, ts, instrument.as_str());
        if let BrokerEvent::OrderNew { order, .. } = e {
            r.ts_ms = order.created_ts_ms;
        }
        if let BrokerEvent::Fill { fill, .. } = e {
            r.ts_ms = fill.ts_ms;
        }
        r.signal_id = links.signal_id.clone();
        r.intent_id = links.intent_id.clone();
        r.verdict_id = links.verdict_id.clone();
        r.order_id = order_id;
        r.parent_order_id = parent;
        r.detail = detail;
        out.push((index, r));
    }
}

impl Stage for ExecStage {
    const NAME: &'static str = "executor";
    type Saved = PaperBroker;
    fn save(&self, _: &Batch) -> PaperBroker {
        self.broker.clone()
    }
    fn restore(&mut self, s: PaperBroker) {
        self.broker = s;
    }
    fn process(&mut self, b: &mut Batch, fault: &Fault) -> Option<PortfolioView> {
        let records_before = b.records.len();
        for c in &b.commands {
            self.events.clear();
            match &c.command {
                Command::Halt => self.broker.halt(&mut self.events),
                Command::Resume => self.broker.resume(&mut self.events),
                Command::Flatten { instrument } => {
                    let i = instrument.as_deref().map(Instrument::new);
                    self.broker.flatten(i.as_ref(), &mut self.events)
                }
                Command::Pause | Command::Set { .. } => {}
            }
            let ts = self.broker.clock().max(0);
            broker_records(&self.events, ts, 0, &mut b.records);
        }
        let mut next = 0;
        for (i, e) in b.events.iter().enumerate() {
            fault.check(Self::NAME, b.first_index + i as u64);
            self.events.clear();
            match e {
                MarketEvent::Trade(t) => self.broker.on_trade(t, &mut self.events),
                MarketEvent::Book(b) => self.broker.on_clock(b.ts_ms, &mut self.events),
                // Feed health is observation time, not market time: no clock move.
                MarketEvent::Status(_) => {}
            }
            while next < b.approved.len() && b.approved[next].0 as usize == i {
                self.broker
                    .place_entry(&b.approved[next].1, e.ts_ms(), &mut self.events);
                next += 1;
            }
            if !self.events.is_empty() {
                let ts = self.broker.clock();
                broker_records(&self.events, ts, i as u32, &mut b.records);
            }
        }
        self.unsaved += 1;
        if b.records.len() > records_before || b.last || self.unsaved >= SAVE_EVERY_BATCHES {
            b.executor_state = serde_json::to_vec(&self.broker).ok();
            self.unsaved = 0;
        }
        if b.last {
            b.final_broker = Some(Box::new(self.broker.clone()));
        }
        Some(self.broker.view(b.seq))
    }
}
