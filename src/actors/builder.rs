//! One place that wires the stage actors, for `replay`, `paper` and (later) `live`:
//! features → detector (signal source) → strategy → risk → executor → journal, with the
//! executor's portfolio view fed back to strategy and risk.

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

/// Starts the five stage actors, wired to each other and to `journal`.
pub fn start_stages<S: SignalSource, T: Strategy, C: ExecutionClient>(
    core: Core<S, T, C>,
    w: Wiring,
    journal: Recipient<BatchMsg>,
) -> Stages {
    let arb = w.signal_arbiter.as_ref();
    let exec = supervise(ExecStage::new(core.broker), &w, None);
    let risk = supervise(RiskStage::new(core.risk), &w, None);
    let strat = supervise(StrategyStage::new(core.strategy), &w, None);
    let feature_stage = FeatureStage::for_source(core.features, &core.detector);
    let feat = supervise(feature_stage, &w, arb);
    let det = supervise(DetectorStage::new(core.detector), &w, arb);
    let wire = |next: Recipient<BatchMsg>| Wire {
        next,
        feedback: vec![],
    };
    feat.do_send(wire(det.clone().recipient()));
    det.do_send(wire(strat.clone().recipient()));
    strat.do_send(wire(risk.clone().recipient()));
    risk.do_send(wire(exec.clone().recipient()));
    exec.do_send(Wire {
        next: journal,
        feedback: vec![strat.clone().recipient(), risk.clone().recipient()],
    });
    Stages {
        head: feat.clone().recipient(),
        _addrs: vec![
            Box::new(feat),
            Box::new(det),
            Box::new(strat),
            Box::new(risk),
            Box::new(exec),
        ],
    }
}
