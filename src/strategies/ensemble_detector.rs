//! Pre-pump signals from the learned ensemble, scored at checkpoint buys of each 5 s chunk.
//!
//! Each trade feeds the instrument's [`ChunkEngine`]; at a checkpoint buy (1st, 2nd, 3rd, 4th,
//! 6th, 8th, 12th, … of its 5 s chunk) with a warm baseline, the ensemble scores the row. A signal
//! fires when the probability reaches the artifact's operating threshold and the instrument's
//! alert gate is open (cooldown passed, or re-armed after a calm spell: [`AlertRule`](crate::models::metrics::AlertRule), the rule
//! `train` and `evaluate` measure with); it carries the member scores and the explanation: every
//! input's exact contribution, grouped into market facts, the top facts being its drivers.

use super::detector::{self, Detector, DetectorConfig, Driver, Signal};
use super::signal::{SignalContext, SignalSource, SourceInput};
use crate::config::Config;
use crate::domain::MarketEvent;
use crate::domain::{Instrument, Trade};
use crate::fault::Fault;
use crate::features::{ChunkConfig, ChunkEngine, FeatureConfig};
use crate::models::explain::{facts, Explanation};
use crate::models::metrics::AlertGate;
use crate::models::{artifact, DetectorMode, Ensemble, MEMBERS};
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
}

/// State to roll back after a failed batch: engines of the batch's instruments, the alert gates
/// and the next signal id.
pub type EnsembleSaved = (
    Vec<(Instrument, Option<ChunkEngine>)>,
    FxHashMap<Instrument, AlertGate>,
    u64,
);

impl EnsembleDetector {
    /// Rows are built with the model's recorded settings (`[features]`, `[train.chunks]`,
    /// `[detector]` at training), so editing the config cannot silently change a model's inputs.
    pub fn new(ens: Arc<Ensemble>, cfg: &Config) -> Self {
        let inputs = ens.manifest.row_inputs(cfg.row_inputs());
        Self {
            ens,
            rules: inputs.detector,
            features: inputs.features,
            chunks: inputs.chunks,
            top: cfg.models.top_drivers,
            engines: FxHashMap::default(),
            gates: FxHashMap::default(),
            next_id: 1,
            id_prefix: String::new(),
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

    pub fn save<'a>(&self, instruments: impl Iterator<Item = &'a Instrument>) -> EnsembleSaved {
        let mut seen: Vec<Instrument> = Vec::new();
        for i in instruments {
            if !seen.contains(i) {
                seen.push(i.clone());
            }
        }
        (
            seen.into_iter()
                .map(|i| {
                    let e = self.engines.get(&i).cloned();
                    (i, e)
                })
                .collect(),
            self.gates.clone(),
            self.next_id,
        )
    }

    pub fn restore(&mut self, s: EnsembleSaved) {
        for (i, e) in s.0 {
            match e {
                Some(e) => self.engines.insert(i, e),
                None => self.engines.remove(&i),
            };
        }
        self.gates = s.1;
        self.next_id = s.2;
    }

    /// Feeds one trade; returns a signal when the chunk it closes scores above the threshold.
    pub fn on_trade(&mut self, t: &Trade) -> Option<Signal> {
        let threshold = self.threshold();
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
        // The rule score's points come with it; a signal's explanation splits the rule member
        // by them.
        let (rule, rule_drivers) = detector::score(&self.rules, snap);
        // Every row goes through the gate, also in the cooldown: it re-arms after a calm spell.
        // A row the gate cannot tell from a zero score is not scored in full (the cascade).
        let alert_rule = self.ens.manifest.alert_rule();
        let floor = AlertGate::floor(alert_rule, threshold);
        let scored = self.ens.score_above(&row, rule, floor);
        let gate = self.gates.entry(t.instrument.clone()).or_default();
        let prob = scored.as_ref().map_or(f64::NEG_INFINITY, |s| s.prob);
        if !gate.step(alert_rule, row.ts_ms, prob, threshold) {
            return None;
        }
        let scores = scored?;
        // Cloned only for a signal: most chunks never get here.
        let snap = snap.clone();
        let points: Vec<(String, f64)> = rule_drivers
            .into_iter()
            .map(|d| (d.name, d.contribution))
            .collect();
        let explanation = self.ens.explain(&row, &snap, &points, &scores, threshold);
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
        Some(Signal {
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
        })
    }
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
            DetectorKind::Ensemble(det) => {
                for (i, e) in b.events.iter().enumerate() {
                    fault.check("detector", b.first_index + i as u64);
                    if let MarketEvent::Trade(t) = e {
                        if let Some(sig) = det.on_trade(t) {
                            out.push((i as u32, sig));
                        }
                    }
                }
            }
        }
    }
    fn save(&self, events: &[MarketEvent]) -> DetectorSaved {
        match self {
            DetectorKind::Rules(d) => DetectorSaved::Rules(d.clone()),
            DetectorKind::Ensemble(d) => {
                DetectorSaved::Ensemble(d.save(events.iter().map(|e| e.instrument())))
            }
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
