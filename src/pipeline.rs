//! The pure stages of the trading pipeline and the batch they pass along.
//!
//! Each stage is synchronous, deterministic code on event time; actors (src/actors) only move
//! batches between stages, supervise them and persist the journal. A [`Batch`] collects what each
//! stage adds (feature snapshots, signals, approved orders, decision records), indexed by the
//! position of the event that caused it, so the executor sees market events and orders in one
//! exact order.

use crate::control::CommandEvent;
use crate::decision::Decision;
use crate::domain::Instrument;
use crate::domain::MarketEvent;
use crate::execution::{
    ApprovedOrder, BrokerEvent, ExecutionClient, PaperBroker, Portfolio, PortfolioView,
};
pub use crate::fault::{Fault, FAULT_TARGETS};
use crate::features::{FeatureConfig, FeatureSnapshot, FeatureWindow};
use crate::risk::RiskManager;
use crate::strategies::detector::Signal;
use crate::strategies::ensemble_detector::DetectorKind;
use crate::strategies::prepump::{OrderIntent, PrePumpStrategy};
use crate::strategies::signal::{SignalSource, SourceInput, Strategy};
use rustc_hash::FxHashMap;

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
    pub records: Vec<(u32, Decision)>,
    /// Operator commands, applied before `events[0]` (a command batch carries no events).
    pub commands: Vec<CommandEvent>,
    /// The broker's state after this batch (JSON), for the store.
    pub executor_state: Option<Vec<u8>>,
    /// The risk manager's state after this batch (JSON), when it changed.
    pub risk_state: Option<Vec<u8>>,
    /// Final portfolio, on the last batch only.
    pub final_portfolio: Option<Box<Portfolio>>,
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
            final_portfolio: None,
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
            self.final_portfolio = None;
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
}

impl FeatureStage {
    pub fn new(cfg: FeatureConfig) -> Self {
        Self {
            cfg,
            windows: FxHashMap::default(),
        }
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
            let MarketEvent::Trade(t) = e else {
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

/// The signal source's stage: signals and their decision records.
pub struct DetectorStage<S: SignalSource = DetectorKind> {
    source: S,
}

impl<S: SignalSource> DetectorStage<S> {
    pub fn new(source: S) -> Self {
        Self { source }
    }
}

impl<S: SignalSource> Stage for DetectorStage<S> {
    const NAME: &'static str = "detector";
    const SPLITS_AT_SIGNALS: bool = true;
    type Saved = S::Saved;
    fn save(&self, b: &Batch) -> S::Saved {
        self.source.save(&b.events)
    }
    fn restore(&mut self, s: S::Saved) {
        self.source.restore(s);
    }
    fn process(&mut self, b: &mut Batch, fault: &Fault) -> Option<PortfolioView> {
        for c in &b.commands {
            self.source.on_command(&c.command);
        }
        let mut out = Vec::new();
        let input = SourceInput {
            first_index: b.first_index,
            events: &b.events,
            snapshots: &b.snapshots,
        };
        self.source.on_batch(&input, fault, &mut out);
        for (i, sig) in out {
            let thr = self.source.threshold_of(&sig);
            b.records.push((i, Decision::signal(&sig, thr)));
            b.signals.push((i, sig));
        }
        None
    }
}

// ---------------------------------------------------------------- strategy

pub struct StrategyStage<T: Strategy = PrePumpStrategy> {
    strat: T,
}

impl<T: Strategy> StrategyStage<T> {
    pub fn new(strat: T) -> Self {
        Self { strat }
    }
}

impl<T: Strategy> Stage for StrategyStage<T> {
    const NAME: &'static str = "strategy";
    const GATED: bool = true;
    fn needs_view(&self, b: &Batch) -> bool {
        !b.signals.is_empty()
    }
    type Saved = T;
    fn save(&self, _: &Batch) -> T {
        self.strat.clone()
    }
    fn restore(&mut self, s: T) {
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
                    b.records.push((*i, Decision::intent(&it)));
                    b.intents.push((*i, it));
                }
                Err(reason) => b.records.push((*i, Decision::skip(sig, reason))),
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
            b.records.push((0, Decision::command(c, &outcome, ts)));
        }
        let mut changed = !b.commands.is_empty();
        let mut next = 0;
        for (i, e) in b.events.iter().enumerate() {
            self.rm.on_event(e);
            while next < b.intents.len() && b.intents[next].0 as usize == i {
                fault.check(Self::NAME, b.first_index + i as u64);
                let it = &b.intents[next].1;
                let v = self.rm.check(it);
                b.records.push((i as u32, Decision::verdict(&v, it)));
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
            b.risk_state = match serde_json::to_vec(&self.rm) {
                Ok(v) => Some(v),
                Err(e) => {
                    // Reported, not dropped: the journal then keeps the last saved state.
                    tracing::error!("risk state not serialisable, not saved: {e}");
                    None
                }
            };
        }
        None
    }
}

// ---------------------------------------------------------------- executor

pub struct ExecStage<C: ExecutionClient = PaperBroker> {
    broker: C,
    events: Vec<BrokerEvent>,
    /// Batches since the broker's state was last handed to the journal.
    unsaved: u32,
}

/// The broker's state goes to the store with every batch that changed orders or positions, and
/// at least every this many batches (fresher marks for `smartflow status`).
const SAVE_EVERY_BATCHES: u32 = 1024;

impl<C: ExecutionClient> ExecStage<C> {
    pub fn new(broker: C) -> Self {
        Self {
            broker,
            events: Vec::new(),
            unsaved: 0,
        }
    }
}

/// Turns broker events into decision records at event time `ts`, caused by event `index`.
fn broker_records(evs: &[BrokerEvent], ts: i64, index: u32, out: &mut Vec<(u32, Decision)>) {
    out.extend(evs.iter().map(|e| (index, Decision::from_broker(e, ts))));
}

impl<C: ExecutionClient> Stage for ExecStage<C> {
    const NAME: &'static str = "executor";
    type Saved = C;
    fn save(&self, _: &Batch) -> C {
        self.broker.clone()
    }
    fn restore(&mut self, s: C) {
        self.broker = s;
    }
    fn process(&mut self, b: &mut Batch, fault: &Fault) -> Option<PortfolioView> {
        let records_before = b.records.len();
        for c in &b.commands {
            self.events.clear();
            self.broker.on_command(&c.command, &mut self.events);
            let ts = self.broker.clock().max(0);
            broker_records(&self.events, ts, 0, &mut b.records);
        }
        let mut next = 0;
        for (i, e) in b.events.iter().enumerate() {
            fault.check(Self::NAME, b.first_index + i as u64);
            self.events.clear();
            self.broker.on_market(e, &mut self.events);
            while next < b.approved.len() && b.approved[next].0 as usize == i {
                self.broker
                    .submit(&b.approved[next].1, e.ts_ms(), &mut self.events);
                next += 1;
            }
            if !self.events.is_empty() {
                let ts = self.broker.clock();
                broker_records(&self.events, ts, i as u32, &mut b.records);
            }
        }
        self.unsaved += 1;
        if b.records.len() > records_before || b.last || self.unsaved >= SAVE_EVERY_BATCHES {
            b.executor_state = self.broker.state();
            self.unsaved = 0;
        }
        if b.last {
            b.final_portfolio = Some(Box::new(self.broker.portfolio().clone()));
        }
        Some(self.broker.view(b.seq))
    }
}
