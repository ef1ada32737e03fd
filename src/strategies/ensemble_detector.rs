//! Pre-pump signals from the learned ensemble, scored at checkpoint buys of each 5 s chunk.
//!
//! Each trade feeds the instrument's [`ChunkEngine`]; at a checkpoint buy (1st, 2nd, 3rd, 4th,
//! 6th, 8th, 12th, … of its 5 s chunk) with a warm baseline, the ensemble scores the row. A signal
//! fires when the probability reaches the artifact's operating threshold and the instrument's
//! alert gate is open (cooldown passed, or re-armed after a calm spell: [`AlertRule`](crate::models::metrics::AlertRule), the rule
//! `train` and `evaluate` measure with); it carries the member scores and the explanation: every
//! input's exact contribution, grouped into market facts, the top facts being its drivers.

use super::detector::{self, Detector, DetectorConfig, Driver, RuleScore, Signal};
use super::overlap;
use super::signal::{SignalContext, SignalSource, SourceInput};
use super::undo::{Mark, Undo};
use crate::config::Config;
use crate::domain::MarketEvent;
use crate::domain::{Instrument, Trade};
use crate::fault::Fault;
use crate::features::{ChunkConfig, ChunkEngine, ChunkRow, FeatureConfig, FeatureSnapshot};
use crate::models::explain::{facts, Explanation};
use crate::models::metrics::AlertGate;
use crate::models::{artifact, DetectorMode, Ensemble, Scores, MEMBERS};
use anyhow::Result;
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// What the ensemble saw behind a signal (goes to the decision log).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ModelDetail {
    pub version: String,
    pub probability: f64,
    pub threshold: f64,
    /// Time of the buy the scored row was built at, ms.
    pub row_ms: i64,
    pub members: BTreeMap<String, f64>,
    /// Why: every input's value and exact contribution, grouped into market facts.
    pub explanation: Explanation,
}

#[derive(Clone, Debug)]
pub struct EnsembleDetector {
    ens: Arc<Ensemble>,
    rules: DetectorConfig,
    features: FeatureConfig,
    chunks: ChunkConfig,
    top: usize,
    engines: FxHashMap<Instrument, ChunkEngine>,
    gates: FxHashMap<Instrument, AlertGate>,
    next_id: u64,
    pub id_prefix: String,
    /// The rule member, inputs resolved once.
    rule_score: RuleScore,
    /// Threads a large batch's rows are scored on (the machine's cores, at most 4).
    score_threads: usize,
    /// How the engines roll back after a failed batch.
    undo: Undo<ChunkEngine>,
}

/// A checkpoint row of a batch, waiting for its score.
struct Checkpoint {
    /// Index of its trade in the batch.
    at: u32,
    row: ChunkRow,
    /// The spine's 0–100 rule score of the same moment.
    rule: f64,
    snap: FeatureSnapshot,
}

/// Batches of fewer events have their rows scored on the calling thread: a thread costs tens of
/// µs to start, more than a paper session's few rows take to score.
const PARALLEL_MIN_EVENTS: usize = 512;

/// Checkpoint rows handed to a scoring thread at a time.
const SCORE_BLOCK: usize = 64;

/// State to roll back to after a failed batch: where the engines were ([`Undo`]), the alert
/// gates and the next signal id.
pub type EnsembleSaved = (Mark, FxHashMap<Instrument, AlertGate>, u64);

impl EnsembleDetector {
    /// Rows are built with the model's recorded settings (`[features]`, `[train.chunks]`,
    /// `[detector]` at training), so editing the config cannot silently change a model's inputs.
    pub fn new(ens: Arc<Ensemble>, cfg: &Config) -> Self {
        let inputs = ens.manifest.row_inputs(cfg.row_inputs());
        Self {
            ens,
            rules: inputs.detector.clone(),
            features: inputs.features,
            chunks: inputs.chunks,
            top: cfg.models.top_drivers,
            engines: FxHashMap::default(),
            gates: FxHashMap::default(),
            next_id: 1,
            id_prefix: String::new(),
            rule_score: RuleScore::new(&inputs.detector),
            score_threads: std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(4),
            undo: Undo::default(),
        }
    }

    pub fn threshold(&self) -> f64 {
        self.ens
            .manifest
            .thresholds
            .get("ensemble")
            .copied()
            .unwrap_or(1.0)
    }

    pub fn save(&self) -> EnsembleSaved {
        (self.undo.mark(), self.gates.clone(), self.next_id)
    }

    /// Puts the detector back as it was at `s` (engines, gates, next signal id).
    pub fn restore(&mut self, s: EnsembleSaved) {
        let (features, chunks) = (&self.features, &self.chunks);
        let rolled = self.undo.roll_back(s.0, &mut self.engines, |engines, t| {
            engines
                .entry(t.instrument.clone())
                .or_insert_with(|| ChunkEngine::new(features, chunks))
                .update(t);
        });
        if let Err(e) = rolled {
            tracing::error!("ensemble detector: {e}; feature windows kept as they are");
        }
        self.gates = s.1;
        self.next_id = s.2;
    }

    /// Signals of a batch's events, with the index of the event that raised each: the chunk
    /// features of every trade in event order on this thread; the checkpoint rows' scores, each
    /// independent of the others, on helper threads meanwhile (a large batch; see
    /// [`overlap::produce_map`]); then the alert gates in event order. The result does not depend
    /// on the batch's size or the number of threads.
    pub fn on_events(&mut self, b: &SourceInput<'_>, fault: &Fault, out: &mut Vec<(u32, Signal)>) {
        // Between batches (the state a rollback of this batch returns to is the current one).
        self.undo.maybe_checkpoint(&self.engines);
        let threshold = self.threshold();
        let floor = AlertGate::floor(self.ens.manifest.alert_rule(), threshold);
        let threads = if b.events.len() >= PARALLEL_MIN_EVENTS {
            self.score_threads
        } else {
            1
        };
        let ens = self.ens.clone();
        let scored = overlap::produce_map(
            threads,
            SCORE_BLOCK,
            |emit| {
                for (i, e) in b.events.iter().enumerate() {
                    fault.check("detector", b.first_index + i as u64);
                    if let MarketEvent::Trade(t) = e {
                        if let Some(r) = self.checkpoint(i as u32, t) {
                            emit(r);
                        }
                    }
                }
            },
            |r: &Checkpoint| ens.score_above(&r.row, r.rule, floor),
        );
        let mut alerts = Vec::new();
        for (r, scored) in scored.iter() {
            let Some(MarketEvent::Trade(t)) = b.events.get(r.at as usize) else {
                continue;
            };
            if let Some(s) = self.step_gate(t, r, scored.as_ref(), threshold) {
                alerts.push((t, r, s));
            }
        }
        if alerts.is_empty() {
            return; // most batches (paper's are a few trades each)
        }
        // A signal's explanation (TreeSHAP, ~1 ms) depends on its row alone: the batch's are
        // computed side by side (~10 % of a replay's wall time when done one after the other).
        let threads = if alerts.len() > 1 {
            self.score_threads
        } else {
            1
        };
        let (ens, rules) = (&self.ens, &self.rules);
        let explained = overlap::produce_map(
            threads,
            1,
            |emit| alerts.iter().for_each(emit),
            |(_, r, s)| explain(ens, rules, r, s, threshold),
        );
        for (&(t, r, s), explanation) in explained.into_pairs() {
            let sig = self.signal(t, r, s, explanation, threshold);
            out.push((r.at, sig));
        }
    }

    /// Feeds one trade to its instrument's engine: the row to score when the trade is a
    /// checkpoint buy with a warm baseline.
    fn checkpoint(&mut self, at: u32, t: &Trade) -> Option<Checkpoint> {
        self.undo.fed(t);
        // One lookup for the common case (an instrument seen before), no clone of its name.
        let eng = match self.engines.get_mut(&t.instrument) {
            Some(e) => e,
            None => self
                .engines
                .entry(t.instrument.clone())
                .or_insert_with(|| ChunkEngine::new(&self.features, &self.chunks)),
        };
        let row = eng.update(t)?;
        if !row.warm {
            return None;
        }
        let snap = eng.last_snapshot()?;
        Some(Checkpoint {
            at,
            rule: self.rule_score.value(snap),
            snap: snap.clone(),
            row,
        })
    }

    /// Steps the instrument's alert gate with a scored row (every row goes through it, also in
    /// the cooldown: it re-arms after a calm spell; a row the cascade cut counts as no score);
    /// the row's scores when it alerts.
    fn step_gate<'a>(
        &mut self,
        t: &Trade,
        r: &Checkpoint,
        scored: Option<&'a Scores>,
        threshold: f64,
    ) -> Option<&'a Scores> {
        let alert_rule = self.ens.manifest.alert_rule();
        let gate = match self.gates.get_mut(&t.instrument) {
            Some(g) => g,
            None => self.gates.entry(t.instrument.clone()).or_default(),
        };
        let prob = scored.map_or(f64::NEG_INFINITY, |s| s.prob);
        if gate.step(alert_rule, r.row.ts_ms, prob, threshold) {
            scored
        } else {
            None
        }
    }

    /// The signal of an alerting row, numbered in event order.
    fn signal(
        &mut self,
        t: &Trade,
        r: &Checkpoint,
        scores: &Scores,
        explanation: Explanation,
        threshold: f64,
    ) -> Signal {
        let (row, snap) = (&r.row, r.snap.clone());
        let drivers = explanation
            .facts
            .iter()
            .take(self.top)
            .map(|f| Driver {
                name: f.fact.clone(),
                value: facts::headline(f),
                contribution: f.contribution,
            })
            .collect();
        let id = format!("{}sig-{}", self.id_prefix, self.next_id);
        self.next_id += 1;
        let members = self
            .ens
            .active_members()
            .into_iter()
            .map(|m| (MEMBERS[m].to_string(), scores.members[m]))
            .collect();
        Signal {
            id,
            ts_ms: t.ts_ms,
            instrument: t.instrument.clone(),
            price: t.price,
            side: crate::domain::Side::Buy,
            score: 100.0 * scores.prob,
            drivers,
            context: SignalContext::PrePump {
                features: Box::new(snap),
                model: Some(Box::new(ModelDetail {
                    version: self.ens.manifest.version.clone(),
                    probability: scores.prob,
                    threshold,
                    row_ms: row.ts_ms,
                    members,
                    explanation,
                })),
            },
            exit: false,
        }
    }
}

/// Why a row alerted: the ensemble's explanation, with the rule member's points named.
fn explain(
    ens: &Ensemble,
    rules: &DetectorConfig,
    r: &Checkpoint,
    scores: &Scores,
    threshold: f64,
) -> Explanation {
    let (_, rule_drivers) = detector::score(rules, &r.snap);
    let points: Vec<(String, f64)> = rule_drivers
        .into_iter()
        .map(|d| (d.name, d.contribution))
        .collect();
    ens.explain(&r.row, &r.snap, &points, scores, threshold)
}

/// The detector a run uses: the rule score alone or the ensemble.
#[derive(Clone, Debug)]
pub enum DetectorKind {
    Rules(Detector),
    Ensemble(Box<EnsembleDetector>),
}

impl DetectorKind {
    /// Builds the configured detector; the ensemble loads `models.dir`/`models.active` (errors say
    /// how to train one).
    pub fn from_config(cfg: &Config, id_prefix: &str) -> Result<Self> {
        Ok(match cfg.models.mode {
            DetectorMode::Rules => {
                let mut d = Detector::new(cfg.detector.clone());
                d.id_prefix = id_prefix.to_string();
                DetectorKind::Rules(d)
            }
            DetectorMode::Ensemble => {
                let dir = artifact::resolve(Path::new(&cfg.models.dir), &cfg.models.active)?;
                let ens = Ensemble::load(&dir)?;
                tracing::info!(version = %ens.manifest.version, "ensemble detector loaded");
                let mut d = EnsembleDetector::new(Arc::new(ens), cfg);
                d.id_prefix = id_prefix.to_string();
                DetectorKind::Ensemble(Box::new(d))
            }
        })
    }

    /// The model a run depends on: `rules`, or the ensemble's version and artifact hash.
    pub fn model_id(&self) -> String {
        match self {
            DetectorKind::Rules(_) => "rules".into(),
            DetectorKind::Ensemble(d) => {
                let m = &d.ens.manifest;
                format!("{} {}", m.version, m.artifact_hash)
            }
        }
    }
}

/// State a detector batch rolls back to.
pub enum DetectorSaved {
    Rules(Detector),
    Ensemble(EnsembleSaved),
}

/// The pre-pump detector as a signal source: the rule score on the feature window's snapshots,
/// or the ensemble on every trade (with its own chunk windows).
impl SignalSource for DetectorKind {
    type Saved = DetectorSaved;

    fn uses_snapshots(&self) -> bool {
        matches!(self, DetectorKind::Rules(_))
    }
    fn model_id(&self) -> String {
        DetectorKind::model_id(self)
    }
    fn threshold(&self) -> f64 {
        match self {
            DetectorKind::Rules(d) => d.cfg.threshold,
            DetectorKind::Ensemble(d) => d.threshold(),
        }
    }
    fn on_batch(&mut self, b: &SourceInput<'_>, fault: &Fault, out: &mut Vec<(u32, Signal)>) {
        match self {
            DetectorKind::Rules(det) => {
                for (i, s) in b.snapshots {
                    fault.check("detector", b.first_index + *i as u64);
                    let Some(trade) = b.events[*i as usize].as_trade() else {
                        continue;
                    };
                    if let Some(sig) = det.on_snapshot(trade, s) {
                        out.push((*i, sig));
                    }
                }
            }
            DetectorKind::Ensemble(det) => det.on_events(b, fault, out),
        }
    }
    /// The ensemble's trees (the rule detector's state is small and per instrument).
    fn cache_warmer(&self) -> Option<super::signal::CacheWarmer> {
        match self {
            DetectorKind::Rules(_) => None,
            DetectorKind::Ensemble(d) => {
                let ens = d.ens.clone();
                Some(Arc::new(move || {
                    ens.warm();
                }))
            }
        }
    }
    fn save(&self, _events: &[MarketEvent]) -> DetectorSaved {
        match self {
            DetectorKind::Rules(d) => DetectorSaved::Rules(d.clone()),
            DetectorKind::Ensemble(d) => DetectorSaved::Ensemble(d.save()),
        }
    }
    fn restore(&mut self, s: DetectorSaved) {
        match (self, s) {
            (DetectorKind::Rules(d), DetectorSaved::Rules(s)) => *d = s,
            (DetectorKind::Ensemble(d), DetectorSaved::Ensemble(s)) => d.restore(s),
            _ => {}
        }
    }
}
