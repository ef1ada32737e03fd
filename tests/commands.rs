//! Operator commands, in-band: a tape (a paper session's input format) with commands inserted
//! between real market events, replayed. Each command's effect on the decision log.

mod common;

use smartflow::cli::log::{export, Filter};
use smartflow::config::Config;
use smartflow::control::{Command, CommandEvent};
use smartflow::domain::MarketEvent;
use smartflow::feeds::merge::MergedStream;
use smartflow::feeds::open_source;
use smartflow::feeds::tape::{TapeHeader, TapeWriter};
use smartflow::pipeline::Fault;
use smartflow::replay::{run_replay, ReplayOptions};
use smartflow::store::{Record, RecordKind, Store};
use std::path::Path;

const FILE: &str = "BNT_2019-09-09_20.00.csv.gz";

fn config() -> Config {
    let mut c = Config::default();
    c.models.mode = smartflow::models::DetectorMode::Rules;
    c.replay.batch_size = 64;
    c
}

fn events(data: &Path) -> Vec<MarketEvent> {
    let src = open_source(Path::new(&common::pump_file(data, FILE))).unwrap();
    MergedStream::new(vec![src]).collect()
}

/// Writes `events` with `commands` inserted before the event at each index, replays the tape
/// and returns its decision log.
fn replay_with(dir: &Path, events: &[MarketEvent], commands: &[(usize, Command)]) -> Vec<Record> {
    std::fs::create_dir_all(dir).unwrap();
    let tape = dir.join("tape.jsonl");
    let header = TapeHeader {
        smartflow_tape: 1,
        session: 1,
        id_prefix: String::new(),
        broker: None,
        risk: None,
        specs: Default::default(),
    };
    let mut w = TapeWriter::create(&tape, &header).unwrap();
    let mut from = 0;
    for (n, (at, c)) in commands.iter().enumerate() {
        w.events(&events[from..*at]).unwrap();
        w.command(&CommandEvent {
            id: format!("cmd-{}", n + 1),
            source: "test".into(),
            command: c.clone(),
        })
        .unwrap();
        from = *at;
    }
    w.events(&events[from..]).unwrap();
    drop(w);
    let state = dir.join("state");
    run_replay(ReplayOptions {
        data: vec![tape.display().to_string()],
        config: config(),
        state_dir: state.clone(),
        fault: Fault::default(),
        resume: false,
        progress: false,
    })
    .expect("replay of the tape");
    Store::open(&state).unwrap().records().unwrap()
}

/// Index of the first event after event time `ts`.
fn index_after(events: &[MarketEvent], ts: i64) -> usize {
    events.iter().position(|e| e.ts_ms() > ts).unwrap()
}

fn first(recs: &[Record], f: impl Fn(&Record) -> bool) -> &Record {
    recs.iter().find(|r| f(r)).expect("record present")
}

#[test]
fn commands_take_effect_at_their_place_in_the_event_order() {
    let data = require_data!();
    let ev = events(&data);
    let dir = tempfile::tempdir().unwrap();
    let base = replay_with(&dir.path().join("base"), &ev, &[]);
    // Once the entry filled, its bracket (take-profit ladder and stop) rests on the book.
    let bracket = first(&base, |r| {
        r.kind == RecordKind::Order && r.detail["purpose"] == "take_profit"
    });
    let after_entry = index_after(&ev, bracket.ts_ms);

    // pause before everything: the first signal's entry is refused with PAUSED, nothing trades.
    let recs = replay_with(&dir.path().join("pause"), &ev, &[(0, Command::Pause)]);
    let cmd = first(&recs, |r| r.kind == RecordKind::Command);
    assert_eq!(cmd.detail["command"], "pause");
    assert_eq!(cmd.detail["source"], "test");
    assert_eq!(cmd.detail["trading_state"], "reducing");
    let v = first(&recs, |r| r.kind == RecordKind::Verdict);
    assert!(v.refused);
    assert_eq!(v.detail["reasons"][0]["code"], "PAUSED", "{v:?}");
    assert!(!recs.iter().any(|r| r.kind == RecordKind::Fill));

    // halt after the entry filled: its take-profit and stop orders are canceled, nothing new.
    let recs = replay_with(
        &dir.path().join("halt"),
        &ev,
        &[(after_entry, Command::Halt)],
    );
    let at = recs
        .iter()
        .position(|r| r.kind == RecordKind::Command)
        .unwrap();
    let canceled: Vec<&Record> = recs[at..]
        .iter()
        .filter(|r| r.id.ends_with("#canceled") && r.detail["reason"] == "canceled: halt")
        .collect();
    assert!(canceled.len() >= 2, "bracket orders canceled: {canceled:?}");
    assert!(
        !recs[at..]
            .iter()
            .any(|r| r.kind == RecordKind::Order && r.detail["event"] == "new"),
        "no order after halt"
    );
    assert!(!recs[at..].iter().any(|r| r.kind == RecordKind::Fill));

    // flatten after the entry filled: a reduce-only market sell closes the position.
    let flat = Command::Flatten { instrument: None };
    let recs = replay_with(&dir.path().join("flatten"), &ev, &[(after_entry, flat)]);
    let at = recs
        .iter()
        .position(|r| r.kind == RecordKind::Command)
        .unwrap();
    let o = first(&recs[at..], |r| {
        r.kind == RecordKind::Order && r.detail["event"] == "new"
    });
    assert_eq!(o.detail["purpose"], "flatten");
    assert_eq!(o.detail["reduce_only"], true);
    assert_eq!(o.detail["side"], "sell");
    let exit = first(&recs[at..], |r| r.kind == RecordKind::Exit);
    assert_eq!(exit.detail["reason"], "flatten");

    // an invalid set is journaled as refused, says why, and changes nothing else.
    let bad = Command::Set {
        limit: "max_open_positions".into(),
        value: "0".into(),
    };
    let recs = replay_with(&dir.path().join("badset"), &ev, &[(0, bad)]);
    let cmd = first(&recs, |r| r.kind == RecordKind::Command);
    assert!(cmd.refused);
    assert!(
        cmd.detail["reason"]
            .as_str()
            .unwrap()
            .starts_with("risk.max_open_positions"),
        "{cmd:?}"
    );
    let rest: Vec<&Record> = recs
        .iter()
        .filter(|r| r.kind != RecordKind::Command)
        .collect();
    assert_eq!(rest, base.iter().collect::<Vec<_>>());

    // a valid set applies from its place on: a tiny max order notional refuses the entry.
    let set = Command::Set {
        limit: "max_order_notional".into(),
        value: "0.00000001".into(),
    };
    let recs = replay_with(&dir.path().join("set"), &ev, &[(0, set)]);
    let cmd = first(&recs, |r| r.kind == RecordKind::Command);
    assert_eq!(cmd.detail["limit_after"], "0.00000001");
    let v = first(&recs, |r| r.kind == RecordKind::Verdict);
    assert!(v.refused, "{v:?}");
}

#[test]
fn a_tape_replays_to_the_same_log_whatever_the_batch_size() {
    let data = require_data!();
    let ev = events(&data);
    let dir = tempfile::tempdir().unwrap();
    let cmds = [
        (ev.len() / 3, Command::Pause),
        (ev.len() / 2, Command::Resume),
    ];
    let a = replay_with(&dir.path().join("a"), &ev, &cmds);
    let b = {
        // Same tape, batch size 1.
        let tape = dir.path().join("a/tape.jsonl");
        let state = dir.path().join("b");
        let mut c = config();
        c.replay.batch_size = 1;
        run_replay(ReplayOptions {
            data: vec![tape.display().to_string()],
            config: c,
            state_dir: state.clone(),
            fault: Fault::default(),
            resume: false,
            progress: false,
        })
        .unwrap();
        Store::open(&state).unwrap().records().unwrap()
    };
    assert_eq!(
        a.iter().filter(|r| r.kind == RecordKind::Command).count(),
        2
    );
    let bytes = |state: &Path| {
        let mut out = Vec::new();
        export(&Store::open(state).unwrap(), &Filter::default(), &mut out).unwrap();
        out
    };
    assert_eq!(a, b);
    assert!(bytes(&dir.path().join("a/state")) == bytes(&dir.path().join("b")));
}
