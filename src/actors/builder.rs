//! One place that wires the stage actors, for `replay`, `paper` and (later) `live`:
//! features (when the source reads snapshots) → detector (signal source) → strategy → risk →
//! executor → journal, with the executor's portfolio view fed back to strategy and risk.

use super::run::RunControl;
use super::stage::StageActor;
use super::{BatchMsg, Wire};
use crate::execution::{ExecutionClient, PaperBroker};
use crate::fault::Fault;
use crate::features::FeatureConfig;
use crate::pipeline::{DetectorStage, ExecStage, FeatureStage, RiskStage, StrategyStage};
use crate::risk::RiskManager;
use crate::strategies::signal::{SignalSource, Strategy};
use crate::strategies::sources::{Sources, Strategies};
use actix::prelude::*;
use std::sync::{Arc, Mutex};

/// The deterministic core a run starts from: a signal source, a strategy and an execution
/// client (today: the pre-pump detector, the pre-pump strategy, the paper simulator).
pub struct Core<S = Sources, T = Strategies, C = PaperBroker> {
    pub features: FeatureConfig,
    pub detector: S,
    pub strategy: T,
    pub risk: RiskManager,
    pub broker: C,
}

/// How the stage actors run.
pub struct Wiring {
    pub fault: Fault,
    pub control: Arc<RunControl>,
    /// Arbiter of the features and detector stages (replay: a thread of their own, so scoring
    /// overlaps the later stages); `None`: the current one (paper: a hop costs latency).
    pub signal_arbiter: Option<ArbiterHandle>,
    /// Live runs: decode → detector latency of every scored event, µs.
    pub latency: Option<Arc<Mutex<hdrhistogram::Histogram<u64>>>>,
}

/// The started stages. Keep it until the run ends: a supervisor restarts an actor only while
/// an address of it exists.
pub struct Stages {
    /// Where batches enter (the features stage).
    pub head: Recipient<BatchMsg>,
    _addrs: Vec<Box<dyn std::any::Any>>,
}

fn supervise<S: crate::pipeline::Stage>(
    stage: S,
    w: &Wiring,
    arbiter: Option<&ArbiterHandle>,
) -> Addr<StageActor<S>> {
    let (f, c, lat) = (w.fault.clone(), w.control.clone(), w.latency.clone());
    let make = move |_: &mut Context<StageActor<S>>| {
        let a = StageActor::new(stage, f, c);
        match (S::NAME, lat) {
            ("detector", Some(h)) => a.with_latency(h),
            _ => a,
        }
    };
    match arbiter {
        Some(arb) => Supervisor::start_in_arbiter(arb, make),
        None => Supervisor::start(make),
    }
}

/// Starts the stage actors, wired to each other and to `journal`. A source that keeps its own
/// feature windows (the ensemble) gets the batches first-hand: no features stage, whose
/// pass-through would cost `paper` a hop (a few µs) on every batch.
pub fn start_stages<S: SignalSource, T: Strategy, C: ExecutionClient>(
    core: Core<S, T, C>,
    w: Wiring,
    journal: Recipient<BatchMsg>,
) -> Stages {
    let arb = w.signal_arbiter.as_ref();
    let exec = supervise(ExecStage::new(core.broker), &w, None);
    let risk = supervise(RiskStage::new(core.risk), &w, None);
    let strat = supervise(StrategyStage::new(core.strategy), &w, None);
    let feat = core
        .detector
        .uses_snapshots()
        .then(|| supervise(FeatureStage::new(core.features), &w, arb));
    let det = supervise(DetectorStage::new(core.detector), &w, arb);
    let wire = |next: Recipient<BatchMsg>| Wire {
        next,
        feedback: vec![],
    };
    if let Some(f) = &feat {
        f.do_send(wire(det.clone().recipient()));
    }
    det.do_send(wire(strat.clone().recipient()));
    strat.do_send(wire(risk.clone().recipient()));
    risk.do_send(wire(exec.clone().recipient()));
    exec.do_send(Wire {
        next: journal,
        feedback: vec![strat.clone().recipient(), risk.clone().recipient()],
    });
    let head = match &feat {
        Some(f) => f.clone().recipient(),
        None => det.clone().recipient(),
    };
    let mut addrs: Vec<Box<dyn std::any::Any>> = vec![
        Box::new(det),
        Box::new(strat),
        Box::new(risk),
        Box::new(exec),
    ];
    if let Some(f) = feat {
        addrs.push(Box::new(f));
    }
    Stages {
        head,
        _addrs: addrs,
    }
}
