//! The seams between signal sources, strategies and the rest of the core.
//!
//! A [`SignalSource`] turns the event stream into [`Signal`]s (the pre-pump detector today; the
//! whale-follow source next); a [`Strategy`] turns a signal into an order intent or says why not.
//! The stages call them through these traits only, so a new source or strategy plugs in without
//! touching the pre-pump code.

use crate::domain::intent::{OrderIntent, SkipReason};
use crate::domain::{Instrument, Side};
use crate::execution::PortfolioView;
use crate::fault::Fault;
use crate::features::FeatureSnapshot;
use serde::{Deserialize, Serialize};

/// One input's part in a score.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Driver {
    pub name: String,
    /// The raw input (z-score, or a fraction for price moves).
    pub value: f64,
    /// Points of the 0–100 score it contributed.
    pub contribution: f64,
}

/// What the source saw behind a signal.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub enum SignalContext {
    /// The pre-pump detector: the feature window at the trigger and, for the ensemble, its
    /// member scores, inputs, threshold and model version.
    PrePump {
        features: Box<FeatureSnapshot>,
        model: Option<Box<super::ensemble_detector::ModelDetail>>,
    },
    /// Any other source: its name and the named values behind the signal (they go to the
    /// decision record's `features`).
    Named {
        source: &'static str,
        values: std::collections::BTreeMap<String, f64>,
    },
}

/// A trading signal at the event `ts_ms` of `instrument`, from any source.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Signal {
    pub id: String,
    pub ts_ms: i64,
    pub instrument: Instrument,
    /// The way the source expects the price to go: `Buy` (long) or `Sell` (short).
    pub side: Side,
    /// Price of the triggering trade (quote per base).
    pub price: rust_decimal::Decimal,
    /// Strength, 0–100.
    pub score: f64,
    pub drivers: Vec<Driver>,
    pub context: SignalContext,
    /// True: the source says close the instrument's position (e.g. the followed wallets
    /// exited); `side` is then the closing side.
    pub exit: bool,
}

/// What a source sees of one batch: its events (the first one is event `first_index` of the
/// stream) and the feature window's snapshots, by event index in the batch.
pub struct SourceInput<'a> {
    pub first_index: u64,
    pub events: &'a [crate::domain::MarketEvent],
    pub snapshots: &'a [(u32, FeatureSnapshot)],
}

/// Raises signals from the event stream. Deterministic: the same events give the same signals.
pub trait SignalSource: Send + Unpin + 'static {
    /// State a batch can be rolled back to after a panic.
    type Saved: Send + Unpin;
    /// Reads the feature window's snapshots (otherwise the window stage passes events through).
    fn uses_snapshots(&self) -> bool;
    /// The model a run depends on (for `replay --resume`).
    fn model_id(&self) -> String;
    /// Signals raised by the batch's events, with the index of the event that raised each.
    fn on_batch(&mut self, b: &SourceInput<'_>, fault: &Fault, out: &mut Vec<(u32, Signal)>);
    /// The score threshold of its signals (decision log).
    fn threshold(&self) -> f64;
    /// The threshold `s` passed (a source of several kinds of signal tells them apart).
    fn threshold_of(&self, s: &Signal) -> f64 {
        let _ = s;
        self.threshold()
    }
    /// Saves what a batch of `events` may change.
    fn save(&self, events: &[crate::domain::MarketEvent]) -> Self::Saved;
    fn restore(&mut self, s: Self::Saved);
    /// What reads the source's model into a core's cache, for `[feeds] keep_cores_awake`'s
    /// spinning threads to call while the session waits (none for a source without one).
    fn cache_warmer(&self) -> Option<CacheWarmer> {
        None
    }
    /// An operator or session command, in stream order (most sources ignore them; applying
    /// one twice must do no more than applying it once: a retried batch repeats it).
    fn on_command(&mut self, c: &crate::domain::command::Command) {
        let _ = c;
    }
}

/// Reads a model into the calling core's cache; called from other threads.
pub type CacheWarmer = std::sync::Arc<dyn Fn() + Send + Sync>;

/// Decides entries (size, exit plan) from signals and the portfolio.
pub trait Strategy: Clone + Send + Unpin + 'static {
    /// An entry intent, or why the signal is skipped.
    fn on_signal(&mut self, s: &Signal) -> Result<OrderIntent, SkipReason>;
    /// The portfolio as of the signal's event.
    fn on_feedback(&mut self, v: &PortfolioView);
}

/// Two signal sources on one stream (the pre-pump detector and the whale-follow source): their
/// signals in event order, the first source's first at the same event.
pub struct Both<A, B> {
    pub first: A,
    pub second: B,
}

/// Which source raised a signal, by its context: `second` names its signals `second_name`.
fn from_second(s: &Signal, second_name: &str) -> bool {
    matches!(&s.context, SignalContext::Named { source, .. } if *source == second_name)
}

impl<A: SignalSource, B: SignalSource + Named> SignalSource for Both<A, B> {
    type Saved = (A::Saved, B::Saved);
    fn uses_snapshots(&self) -> bool {
        self.first.uses_snapshots() || self.second.uses_snapshots()
    }
    /// The first's model, and the second's after a `+` when it has one.
    fn model_id(&self) -> String {
        match self.second.model_id() {
            s if s.is_empty() => self.first.model_id(),
            s => format!("{}+{s}", self.first.model_id()),
        }
    }
    fn on_batch(&mut self, b: &SourceInput<'_>, fault: &Fault, out: &mut Vec<(u32, Signal)>) {
        self.first.on_batch(b, fault, out);
        let n = out.len();
        self.second.on_batch(b, fault, out);
        if n > 0 && out.len() > n {
            out.sort_by_key(|(i, _)| *i); // stable: the first source's signal first
        }
    }
    fn threshold(&self) -> f64 {
        self.first.threshold()
    }
    fn threshold_of(&self, s: &Signal) -> f64 {
        if from_second(s, B::NAME) {
            self.second.threshold_of(s)
        } else {
            self.first.threshold_of(s)
        }
    }
    fn save(&self, events: &[crate::domain::MarketEvent]) -> Self::Saved {
        (self.first.save(events), self.second.save(events))
    }
    /// The first's (the pre-pump model), else the second's.
    fn cache_warmer(&self) -> Option<CacheWarmer> {
        self.first
            .cache_warmer()
            .or_else(|| self.second.cache_warmer())
    }
    fn restore(&mut self, s: Self::Saved) {
        self.first.restore(s.0);
        self.second.restore(s.1);
    }
    fn on_command(&mut self, c: &crate::domain::command::Command) {
        self.first.on_command(c);
        self.second.on_command(c);
    }
}

/// A source whose signals carry `SignalContext::Named { source: NAME, .. }`.
pub trait Named {
    const NAME: &'static str;
}

/// Two strategies: signals of source `second_source` go to `second`, all others to `first`;
/// both see every portfolio view.
#[derive(Clone)]
pub struct Route<A, B> {
    pub first: A,
    pub second: B,
    pub second_source: &'static str,
}

impl<A: Strategy, B: Strategy> Strategy for Route<A, B> {
    fn on_signal(&mut self, s: &Signal) -> Result<OrderIntent, SkipReason> {
        if from_second(s, self.second_source) {
            self.second.on_signal(s)
        } else {
            self.first.on_signal(s)
        }
    }
    fn on_feedback(&mut self, v: &PortfolioView) {
        self.first.on_feedback(v);
        self.second.on_feedback(v);
    }
}
