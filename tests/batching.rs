//! What smartflow decides does not depend on how events were batched: every decision at event
//! *i* sees the portfolio, orders and fills as of event *i*.

mod common;

use smartflow::cli::log::{export, Filter};
use smartflow::config::Config;
use smartflow::pipeline::Fault;
use smartflow::replay::{run_replay, ReplayOptions, ReplaySummary};
use smartflow::store::Store;
use std::path::Path;

const FILES: &[&str] = common::FIVE_PUMPS;

/// Rules detector with short cooldowns and time stops, so one pump gives several signals, entries
/// and exits close together: decisions that read positions, exits and exposure made moments before.
fn busy_config(batch_size: usize) -> Config {
    let mut c = Config::default();
    c.models.mode = smartflow::models::DetectorMode::Rules;
    c.detector.cooldown_secs = 5;
    c.strategy.cooldown_secs = 10;
    c.strategy.max_hold_secs = 20;
    c.risk.instrument_cooldown_secs = 0;
    c.risk.max_open_positions = 1;
    c.replay.batch_size = batch_size;
    c.validate().expect("valid test config");
    c
}

fn replay(data: &Path, state: &Path, batch_size: usize) -> (ReplaySummary, Vec<u8>) {
    let s = run_replay(ReplayOptions {
        data: FILES.iter().map(|f| common::pump_file(data, f)).collect(),
        config: busy_config(batch_size),
        state_dir: state.to_path_buf(),
        fault: Fault::default(),
        resume: false,
        progress: false,
    })
    .expect("replay runs");
    let store = Store::open(state).unwrap();
    let mut out = Vec::new();
    export(&store, &Filter::default(), &mut out).unwrap();
    (s, out)
}

#[test]
fn batch_sizes_1_7_64_2048_and_the_default_give_byte_identical_decision_logs() {
    let data = require_data!();
    let dir = tempfile::tempdir().unwrap();
    let (base, log) = replay(&data, &dir.path().join("2048"), 2048);
    // The scenario exercises what batching could change: several entries, exits and skips.
    assert!(base.fills >= 4, "fills {}", base.fills);
    assert!(
        base.signals_skipped_by_strategy + base.refused >= 1,
        "{base:?}"
    );
    for size in [1usize, 7, 64, Config::default().replay.batch_size] {
        let (s, other) = replay(&data, &dir.path().join(size.to_string()), size);
        assert_eq!(s.events, base.events);
        if other != log {
            let a = String::from_utf8_lossy(&log);
            let b = String::from_utf8_lossy(&other);
            let first = a.lines().zip(b.lines()).position(|(x, y)| x != y);
            panic!(
                "batch size {size}: decision log differs from batch size 2048 at line {first:?}:\n{:?}\n{:?}",
                first.and_then(|i| a.lines().nth(i)),
                first.and_then(|i| b.lines().nth(i)),
            );
        }
    }
}
