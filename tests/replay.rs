//! End-to-end replays of real pump files through the supervised actors.

mod common;

use smartflow::cli::log::{export, Filter};
use smartflow::config::Config;
use smartflow::pipeline::{Fault, STAGES};
use smartflow::replay::{run_replay, ReplayOptions, ReplaySummary};
use smartflow::store::{Record, RecordKind, Store, META_FINGERPRINT, META_RUN};
use std::collections::{HashMap, HashSet};
use std::path::Path;

const FILES: &[&str] = common::FIVE_PUMPS;

/// The spine's rule detector (the ensemble has its own tests in tests/models.rs).
fn rules_config() -> Config {
    let mut config = Config::default();
    config.models.mode = smartflow::models::DetectorMode::Rules;
    config
}

fn replay(data: &Path, state: &Path, fault: Fault) -> ReplaySummary {
    run_replay(ReplayOptions {
        data: FILES.iter().map(|f| common::pump_file(data, f)).collect(),
        config: rules_config(),
        state_dir: state.to_path_buf(),
        fault,
        resume: false,
        progress: false,
    })
    .expect("replay runs")
}

fn export_bytes(state: &Path) -> Vec<u8> {
    let store = Store::open(state).unwrap();
    let mut out = Vec::new();
    export(&store, &Filter::default(), &mut out).unwrap();
    out
}

fn records(state: &Path) -> Vec<Record> {
    Store::open(state).unwrap().records().unwrap()
}

#[test]
fn signals_fire_at_the_announced_pumps_and_chains_are_complete() {
    let data = require_data!();
    let dir = tempfile::tempdir().unwrap();
    let s = replay(&data, dir.path(), Fault::default());
    let expected_events: u64 = [4073u64, 4874, 5844, 6765, 8327].iter().sum(); // events_index n_trades
    assert_eq!(s.events, expected_events);
    assert_eq!(s.malformed_lines, 0);
    let recs = records(dir.path());

    // Every pump is flagged between 3 minutes before and 2 minutes after its announcement.
    for f in FILES {
        let announced = common::announced_ms(&data, f);
        let pair = format!("{}/BTC", f.split('_').next().unwrap());
        let hit = recs.iter().any(|r| {
            r.kind == RecordKind::Signal
                && r.instrument == pair
                && (-180_000..=120_000).contains(&(r.ts_ms - announced))
        });
        assert!(hit, "no signal near the {pair} pump at {announced}");
    }
    assert!(s.signals >= 5 && s.signals <= 10, "signals {}", s.signals);

    // Ids are unique; the log is in event-time order.
    let ids: HashSet<&str> = recs.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), recs.len());
    assert!(
        recs.windows(2).all(|w| w[0].ts_ms <= w[1].ts_ms),
        "log in event-time order"
    );

    let by_kind = |k: RecordKind| recs.iter().filter(move |r| r.kind == k);
    let linked = |k: RecordKind, f: &dyn Fn(&Record) -> bool| by_kind(k).filter(|r| f(r)).count();
    // signal → exactly one intent (taken or skipped)
    for sig in by_kind(RecordKind::Signal) {
        assert!(sig.detail["score"].as_f64().unwrap() >= 70.0);
        assert_eq!(sig.detail["drivers"].as_array().unwrap().len(), 5);
        assert!(sig.detail["features"]["5s.z_trades"].is_number());
        let n = linked(RecordKind::Intent, &|r| {
            r.signal_id.as_deref() == Some(sig.id.as_str())
        });
        assert_eq!(n, 1, "{} has {n} intents", sig.id);
    }
    // intent → exactly one verdict; approved verdict → exactly one entry order
    for it in by_kind(RecordKind::Intent).filter(|r| !r.refused) {
        let n = linked(RecordKind::Verdict, &|r| {
            r.intent_id.as_deref() == Some(it.id.as_str())
        });
        assert_eq!(n, 1, "{} has {n} verdicts", it.id);
    }
    let orders: HashMap<&str, &Record> = by_kind(RecordKind::Order)
        .filter(|r| r.detail["event"] == "new")
        .map(|r| (r.id.as_str(), r))
        .collect();
    for v in by_kind(RecordKind::Verdict).filter(|r| !r.refused) {
        let entries: Vec<_> = orders
            .values()
            .filter(|o| {
                o.verdict_id.as_deref() == Some(v.id.as_str()) && o.detail["purpose"] == "entry"
            })
            .collect();
        assert_eq!(entries.len(), 1, "{} has {} entries", v.id, entries.len());
    }
    // every fill names a known order and carries the chain's ids
    for f in by_kind(RecordKind::Fill) {
        let o = orders
            .get(f.order_id.as_deref().unwrap())
            .expect("fill of a known order");
        assert_eq!(f.signal_id, o.signal_id);
        assert!(f.verdict_id.is_some() && f.intent_id.is_some());
    }
    // every filled entry ends in an exit (no position is left at the end of these files)
    assert_eq!(s.open_positions, 0);
    for (id, _) in orders
        .iter()
        .filter(|(_, o)| o.detail["purpose"] == "entry")
    {
        let filled = by_kind(RecordKind::Fill).any(|f| f.order_id.as_deref() == Some(*id));
        let exited = by_kind(RecordKind::Exit).any(|e| e.order_id.as_deref() == Some(*id));
        assert_eq!(
            filled, exited,
            "entry {id}: filled {filled}, exited {exited}"
        );
    }
    assert_eq!(s.round_trips as usize, by_kind(RecordKind::Exit).count());
    assert_eq!(s.fills as usize, by_kind(RecordKind::Fill).count());
    // money adds up: flat book → equity change = realized PnL after fees
    assert_eq!(s.pnl_after_fees, s.final_equity - s.starting_balance);
    assert_eq!(s.pnl_after_fees, s.realized_pnl);

    // summary files
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("replay-summary.json")).unwrap())
            .unwrap();
    assert_eq!(json["events"].as_u64(), Some(s.events));
    assert!(json["refusals_by_reason"].is_object());
    let md = std::fs::read_to_string(dir.path().join("replay-summary.md")).unwrap();
    assert!(md.contains("| PnL after fees |"));
}

#[test]
fn same_input_gives_the_same_bytes() {
    let data = require_data!();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    replay(&data, a.path(), Fault::default());
    replay(&data, b.path(), Fault::default());
    let (ea, eb) = (export_bytes(a.path()), export_bytes(b.path()));
    assert!(ea.len() > 1000);
    assert!(ea == eb, "exports differ between two identical runs");
}

#[test]
fn a_panic_in_any_stage_changes_neither_the_events_nor_the_log() {
    let data = require_data!();
    let clean_dir = tempfile::tempdir().unwrap();
    let clean = replay(&data, clean_dir.path(), Fault::default());
    let clean_log = export_bytes(clean_dir.path());
    for stage in STAGES {
        // Mid-run; strategy and risk fire at the first signal/intent at or after that event.
        let at = if matches!(*stage, "strategy" | "risk") {
            0
        } else {
            clean.events / 2
        };
        let fault = Fault::new(stage, at);
        let dir = tempfile::tempdir().unwrap();
        let s = replay(&data, dir.path(), fault.clone());
        assert!(fault.fired(), "{stage}: the fault did not fire");
        assert_eq!(
            s.restarts.get(*stage).copied(),
            Some(1),
            "{stage}: restarts {:?}",
            s.restarts
        );
        assert_eq!(s.events, clean.events, "{stage}: event count changed");
        assert!(
            export_bytes(dir.path()) == clean_log,
            "{stage}: decision log changed"
        );
    }
}

#[test]
fn resume_continues_an_interrupted_run_to_the_same_log() {
    let data = require_data!();
    let full = tempfile::tempdir().unwrap();
    replay(&data, full.path(), Fault::default());
    let all = records(full.path());
    // An interrupted run: a third of the records committed, run status still `running`.
    let print = Store::open(full.path())
        .unwrap()
        .meta(META_FINGERPRINT)
        .unwrap()
        .expect("a run stores the fingerprint of its inputs");
    let cut = tempfile::tempdir().unwrap();
    {
        let st = Store::open(cut.path()).unwrap();
        st.append(
            &all[..all.len() / 3],
            &[
                (META_RUN, b"running".to_vec()),
                (META_FINGERPRINT, print.clone()),
            ],
        )
        .unwrap();
    }
    // Other inputs than the interrupted run's: refused, saying which.
    let resume_with = |files: &[&str], config: Config| {
        run_replay(ReplayOptions {
            data: files.iter().map(|f| common::pump_file(&data, f)).collect(),
            config,
            state_dir: cut.path().to_path_buf(),
            fault: Fault::default(),
            resume: true,
            progress: false,
        })
        .map(|_| ())
        .unwrap_err()
        .to_string()
    };
    let mut other = rules_config();
    other.risk.max_orders += 1;
    let e = resume_with(FILES, other);
    assert!(e.contains("the config differs"), "{e}");
    let e = resume_with(&FILES[..4], rules_config());
    assert!(e.contains("the data set differs"), "{e}");
    let e = resume_with(FILES, Config::default());
    assert!(e.contains("the model differs"), "{e}");
    // The transport settings change no decision: a resume with another batch size is fine.
    let mut batched = rules_config();
    batched.replay.batch_size = 100;
    let s = run_replay(ReplayOptions {
        data: FILES.iter().map(|f| common::pump_file(&data, f)).collect(),
        config: batched,
        state_dir: cut.path().to_path_buf(),
        fault: Fault::default(),
        resume: true,
        progress: false,
    })
    .unwrap();
    assert_eq!(s.records as usize, all.len());
    assert!(export_bytes(cut.path()) == export_bytes(full.path()));
    // A completed run has nothing to resume.
    let err = run_replay(ReplayOptions {
        data: vec![common::pump_file(&data, FILES[0])],
        config: rules_config(),
        state_dir: full.path().to_path_buf(),
        fault: Fault::default(),
        resume: true,
        progress: false,
    })
    .unwrap_err();
    assert!(err.to_string().contains("nothing to resume"), "{err}");
}
