//! A new signal source plugs into the core through the `SignalSource` seam alone: the builder
//! wires it with the pre-pump strategy, risk, the paper execution client and the journal, and
//! its signals go through the same decisions into the same decision log.

mod common;

use smartflow::actors::builder::Core;
use smartflow::config::Config;
use smartflow::domain::{MarketEvent, Side};
use smartflow::execution::PaperBroker;
use smartflow::fault::Fault;
use smartflow::feeds::merge::MergedStream;
use smartflow::feeds::open_source;
use smartflow::risk::RiskManager;
use smartflow::store::{RecordKind, Store};
use smartflow::strategies::prepump::PrePumpStrategy;
use smartflow::strategies::signal::{Signal, SignalContext, SignalSource, SourceInput};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// A toy source: a long signal on every `n`-th trade.
struct EveryNth {
    n: u64,
    seen: u64,
}

impl SignalSource for EveryNth {
    type Saved = u64;
    fn uses_snapshots(&self) -> bool {
        false
    }
    fn model_id(&self) -> String {
        "none".into()
    }
    fn threshold(&self) -> f64 {
        0.0
    }
    fn on_batch(&mut self, b: &SourceInput<'_>, _: &Fault, out: &mut Vec<(u32, Signal)>) {
        for (i, e) in b.events.iter().enumerate() {
            let MarketEvent::Trade(t) = e else { continue };
            self.seen += 1;
            if self.seen.is_multiple_of(self.n) {
                let values = BTreeMap::from([("trades_seen".to_string(), self.seen as f64)]);
                out.push((
                    i as u32,
                    Signal {
                        id: format!("nth-{}", self.seen / self.n),
                        ts_ms: t.ts_ms,
                        instrument: t.instrument.clone(),
                        side: Side::Buy,
                        price: t.price,
                        score: 100.0,
                        drivers: vec![],
                        context: SignalContext::Named {
                            source: "every-nth",
                            values,
                        },
                        exit: false,
                    },
                ));
            }
        }
    }
    fn save(&self, _: &[MarketEvent]) -> u64 {
        self.seen
    }
    fn restore(&mut self, s: u64) {
        self.seen = s;
    }
}

#[test]
fn a_new_signal_source_runs_through_strategy_risk_execution_and_the_log() {
    let data = require_data!();
    let file = common::pump_file(&data, "BNT_2019-09-09_20.00.csv.gz");
    let events: Vec<MarketEvent> =
        MergedStream::new(vec![open_source(Path::new(&file)).unwrap()]).collect();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let cfg = Config::default();
    let core = Core {
        features: cfg.features.clone(),
        detector: EveryNth { n: 1000, seen: 0 },
        strategy: PrePumpStrategy::new(cfg.strategy.clone()),
        risk: RiskManager::new(cfg.risk.clone(), "BTC", cfg.portfolio.starting_balance),
        broker: PaperBroker::new(cfg.execution.clone(), &cfg.portfolio),
    };
    let outcome = common::core::run_core(core, events, 500, store.clone());
    let (counters, portfolio) = outcome.expect("the run completes");
    let n_trades = 6765; // BNT file
    assert_eq!(counters.signals, n_trades / 1000);
    let recs = store.records().unwrap();
    let sig = recs.iter().find(|r| r.kind == RecordKind::Signal).unwrap();
    assert_eq!(sig.id, "nth-1");
    assert_eq!(sig.detail["detector"], "every-nth");
    assert_eq!(sig.detail["features"]["trades_seen"], 1000.0);
    // The pre-pump strategy and the risk manager decided on it; the paper client filled it.
    let verdict = recs
        .iter()
        .find(|r| r.kind == RecordKind::Verdict && r.signal_id.as_deref() == Some("nth-1"))
        .expect("a verdict on the new source's signal");
    assert!(!verdict.refused, "{verdict:?}");
    assert!(recs
        .iter()
        .any(|r| r.kind == RecordKind::Fill && r.signal_id.as_deref() == Some("nth-1")));
    assert!(portfolio.is_some());
}
