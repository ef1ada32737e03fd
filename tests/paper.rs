//! `paper` end to end against loopback venues replaying real captures: signals, paper fills,
//! entries blocked while a feed reconnects and allowed after recovery, a complete decision log,
//! status, and a restart that resumes open positions.

mod common;

use common::venues::{config, spawn_paper, start_venues, start_venues_paced, wait_for_api};
use smartflow::paper::{run_paper, PaperOptions};
use smartflow::pipeline::Fault;
use smartflow::store::{RecordKind, Store, PAPER_STORE};
use std::collections::HashSet;
use std::time::Duration;

#[test]
fn paper_session_trades_heals_and_resumes() {
    let data = require_data!();
    let venues = start_venues(data);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&venues);
    let report = run_paper(PaperOptions {
        config: cfg.clone(),
        state_dir: dir.path().to_path_buf(),
        duration: Some(Duration::from_secs(4)),
        print_status: false,
        fault: Fault::default(),
        tape: Some(dir.path().join("tape1.jsonl")),
    })
    .unwrap();
    assert_eq!(report.session, 1);
    let status = report.status.clone().expect("status reported");
    let bybit = status.feeds.iter().find(|f| f.venue == "bybit").unwrap();
    assert_eq!(bybit.reconnects, 1, "{status:?}");
    assert!(
        status.latency_samples > 0,
        "decode→detector latency measured"
    );
    assert!(status.signals > 0 && status.fills > 0, "{status:?}");

    let store = Store::open_file(dir.path(), PAPER_STORE).unwrap();
    let recs = store.records().unwrap();
    let ids: HashSet<&str> = recs.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), recs.len(), "unique ids");
    // Entries on bybit:BTC/USDT were refused while it reconnected, then approved after recovery.
    let pos = |f: &dyn Fn(&smartflow::store::Record) -> bool| recs.iter().position(f);
    let unhealthy = pos(&|r| {
        r.kind == RecordKind::Verdict
            && r.refused
            && r.instrument.starts_with("bybit:")
            && r.detail["reasons"][0]["code"] == "FEED_UNHEALTHY"
    })
    .expect("an entry refused on the reconnecting feed");
    let inst = recs[unhealthy].instrument.clone();
    assert!(recs[unhealthy].detail["reasons"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("reconnecting"));
    let approved_after = recs[unhealthy..]
        .iter()
        .any(|r| r.kind == RecordKind::Verdict && !r.refused && r.instrument == inst);
    assert!(
        approved_after,
        "entries on {inst} allowed again after recovery"
    );
    // Paper fills on the live-fed instruments, with complete chains.
    let fills: Vec<_> = recs.iter().filter(|r| r.kind == RecordKind::Fill).collect();
    assert!(fills
        .iter()
        .any(|f| f.instrument.starts_with("hyperliquid:")));
    for f in &fills {
        assert!(
            f.signal_id.is_some()
                && f.intent_id.is_some()
                && f.verdict_id.is_some()
                && f.order_id.is_some()
        );
        assert!(ids.contains(f.signal_id.as_deref().unwrap()));
    }
    assert!(
        recs.iter().any(|r| r.kind == RecordKind::Verdict
            && r.refused
            && r.detail["reasons"][0]["code"] == "QUOTE_MISMATCH"),
        "BLZ/ETH is not in the USDT portfolio"
    );
    drop(store);
    let open_before = smartflow::paper::stored_status(dir.path())
        .unwrap()
        .1
        .unwrap();
    let n_open = open_before.portfolio.open_positions();
    // Hyperliquid's meta says its instruments are perpetuals: they are held as perps, not spot.
    let spot = &open_before.portfolio.positions;
    assert!(
        spot.keys()
            .all(|i| !i.to_string().starts_with("hyperliquid:")),
        "{spot:?}"
    );
    assert!(
        n_open > 0,
        "max_hold is long: positions stay open at the end"
    );

    // Hyperliquid's trading rules came from its metadata endpoint and went into the tape.
    let tape1 = std::fs::read_to_string(dir.path().join("tape1.jsonl")).unwrap();
    let header: serde_json::Value = serde_json::from_str(tape1.lines().next().unwrap()).unwrap();
    assert_eq!(
        header["specs"]["hyperliquid:BTC/USDC"]["lot_size"],
        "0.00001"
    );
    for o in recs.iter().filter(|r| {
        r.kind == RecordKind::Order
            && r.instrument == "hyperliquid:BTC/USDC"
            && r.detail["event"] == "new"
    }) {
        let q: rust_decimal::Decimal = o.detail["qty"].as_str().unwrap().parse().unwrap();
        assert_eq!(q, q.round_dp(5), "BTC quantities on the 0.00001 lot: {o:?}");
    }
    // The session's tape replays to its byte-identical decision log (fills included).
    let log1 = common::paper_log(dir.path());
    assert_eq!(
        common::replay_tape(&dir.path().join("tape1.jsonl"), &cfg, dir.path()),
        log1
    );

    // Restart: the open positions and live orders come back from the store.
    let report2 = run_paper(PaperOptions {
        config: cfg.clone(),
        state_dir: dir.path().to_path_buf(),
        duration: Some(Duration::from_secs(1)),
        print_status: false,
        fault: Fault::default(),
        tape: Some(dir.path().join("tape2.jsonl")),
    })
    .unwrap();
    // The second session's tape starts from the state it resumed: its replay gives exactly
    // the records the second session added.
    let log2 = common::paper_log(dir.path());
    assert!(log2.starts_with(&log1));
    let added = &log2[log1.len()..];
    assert_eq!(
        common::replay_tape(&dir.path().join("tape2.jsonl"), &cfg, dir.path()),
        added
    );
    assert_eq!(report2.session, 2);
    assert_eq!(report2.resumed_positions, n_open);
    assert_eq!(report2.resumed_orders, open_before.live_orders().count());
    let recs = Store::open_file(dir.path(), PAPER_STORE)
        .unwrap()
        .records()
        .unwrap();
    let ids: HashSet<&str> = recs.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), recs.len(), "ids stay unique across sessions");
    assert!(recs.iter().any(|r| r.id.starts_with("p2-sig-")));
}

#[test]
fn a_recorded_session_replays_to_the_same_trades_deterministically() {
    let data = require_data!();
    let venues = start_venues(data);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("session.jsonl.gz");
    let r = smartflow::record::run_record(smartflow::record::RecordOptions {
        config: config(&venues),
        out: out.clone(),
        duration: Some(Duration::from_secs(3)),
    })
    .unwrap();
    assert!(r.frames > 500 && r.trades > 50, "{r:?}");
    let replay = |state: &str| {
        smartflow::replay::run_replay(smartflow::replay::ReplayOptions {
            data: vec![out.display().to_string()],
            config: config(&venues),
            state_dir: dir.path().join(state),
            fault: Fault::default(),
            resume: false,
            progress: false,
        })
        .unwrap()
    };
    let a = replay("a");
    assert_eq!(a.malformed_lines, 0);
    assert_eq!(
        a.trades, r.trades,
        "the recording replays every trade the feeds decoded"
    );
    assert_eq!(a.events, r.events, "and every book top and status");
    assert!(a.signals > 0 && a.fills > 0, "{a:?}");
    let b = replay("b");
    let export = |state: &str| {
        let mut v = Vec::new();
        let st = Store::open(&dir.path().join(state)).unwrap();
        smartflow::cli::log::export(&st, &Default::default(), &mut v).unwrap();
        v
    };
    assert_eq!(b.trades, a.trades);
    assert!(
        export("a") == export("b"),
        "replays of a recording are byte-identical"
    );
}

#[test]
fn a_feed_that_dies_is_restarted_by_its_supervisor() {
    let data = require_data!();
    let venues = start_venues(data);
    let dir = tempfile::tempdir().unwrap();
    let fault = Fault::parse("feed@20").unwrap();
    let report = run_paper(PaperOptions {
        config: config(&venues),
        state_dir: dir.path().to_path_buf(),
        duration: Some(Duration::from_secs(3)),
        print_status: false,
        fault: fault.clone(),
        tape: None,
    })
    .unwrap();
    assert!(fault.fired());
    assert_eq!(
        report.feed_restarts.values().sum::<u64>(),
        1,
        "{:?}",
        report.feed_restarts
    );
    let st = report.status.unwrap();
    let restarted = report
        .feed_restarts
        .iter()
        .find(|(_, n)| **n == 1)
        .unwrap()
        .0;
    let f = st.feeds.iter().find(|f| &f.venue == restarted).unwrap();
    assert!(f.connects >= 2, "the restarted feed connected again: {f:?}");
    assert!(st.fills > 0, "trading went on: {st:?}");
}

/// `(status, JSON body)` of a request to the session's control API.
fn api(
    state: &std::path::Path,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, serde_json::Value) {
    let addr: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.join("control.json")).unwrap()).unwrap();
    let url = format!("{}{path}", addr["url"].as_str().unwrap());
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let auth = token.map(|t| format!("Bearer {t}")).unwrap_or_default();
    let mut r = match (method, body) {
        ("GET", _) => agent.get(&url).header("Authorization", &auth).call(),
        (_, b) => agent
            .post(&url)
            .header("Authorization", &auth)
            .send(b.unwrap_or("").as_bytes()),
    }
    .unwrap();
    let text = r.body_mut().read_to_string().unwrap();
    let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    (r.status().as_u16(), json)
}

#[test]
fn control_api_commands_survive_a_restart_and_the_tape_replays_to_the_same_log() {
    use std::os::unix::fs::PermissionsExt;
    let data = require_data!();
    let venues = start_venues_paced(data, Some(Duration::from_millis(2)));
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let tape = dir.path().join("session.tape.jsonl");
    let run = spawn_paper(config(&venues), &state, 7.0, Some(tape.clone()));
    let token = wait_for_api(&state);
    let mode = std::fs::metadata(state.join("control.token"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "token file readable by its owner only");
    let tok = Some(token.as_str());

    // No token or a wrong one: 401, and nothing changes.
    let halt = r#"{"command":"halt"}"#;
    assert_eq!(api(&state, "GET", "/status", None, None).0, 401);
    assert_eq!(api(&state, "GET", "/positions", Some("wrong"), None).0, 401);
    assert_eq!(api(&state, "GET", "/metrics", None, None).0, 401);
    assert_eq!(api(&state, "POST", "/commands", None, Some(halt)).0, 401);
    assert_eq!(
        api(&state, "POST", "/commands", Some("wrong"), Some(halt)).0,
        401
    );
    let (code, st) = api(&state, "GET", "/status", tok, None);
    assert_eq!(code, 200);
    assert_eq!(st["trading_state"], "active", "{st}");

    // Paused while the venues' data streams in: entries refused with PAUSED; then resumed.
    let (code, r) = api(
        &state,
        "POST",
        "/commands",
        tok,
        Some(r#"{"command":"pause"}"#),
    );
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["record"]["detail"]["trading_state"], "reducing");
    assert_eq!(r["record"]["detail"]["source"], "api");
    std::thread::sleep(Duration::from_millis(400));
    let (code, r) = api(
        &state,
        "POST",
        "/commands",
        tok,
        Some(r#"{"command":"resume"}"#),
    );
    assert_eq!(code, 200, "{r}");
    std::thread::sleep(Duration::from_millis(2500));

    // An invalid limit: 422 with the reason, limits unchanged.
    let bad = r#"{"command":"set","limit":"max_open_positions","value":"0"}"#;
    let (code, r) = api(&state, "POST", "/commands", tok, Some(bad));
    assert_eq!(code, 422, "{r}");
    assert!(
        r["error"].as_str().unwrap().contains("max_open_positions"),
        "{r}"
    );
    let set = r#"{"command":"set","limit":"max_order_notional","value":"150"}"#;
    assert_eq!(api(&state, "POST", "/commands", tok, Some(set)).0, 200);
    let (_, st) = api(&state, "GET", "/status", tok, None);
    assert_eq!(st["limits"]["max_open_positions"], 10);
    assert_eq!(st["limits"]["max_order_notional"], "150");

    let (code, r) = api(&state, "POST", "/commands", tok, Some(halt));
    assert_eq!(code, 200, "{r}");
    let (_, pos) = api(&state, "GET", "/positions", tok, None);
    assert_eq!(
        pos["orders"].as_array().unwrap().len(),
        0,
        "halt cancels every order: {pos}"
    );
    let (code, m) = api(&state, "GET", "/metrics", tok, None);
    assert_eq!(code, 200);
    let m = m.as_str().unwrap().to_string();
    assert!(
        m.contains("smartflow_decision_records_total{kind=\"command\"} 5"),
        "{m}"
    );
    assert!(m.contains("smartflow_trading_state 2"), "{m}");
    assert!(m.contains("smartflow_latency_p99_us "), "{m}");
    assert!(m.contains("smartflow_market_events_total "), "{m}");
    let report = run.join().unwrap();
    assert_eq!(report.session, 1);
    assert!(
        !state.join("control.json").exists(),
        "address file removed at the end"
    );

    // The decision log: verdicts while paused are refused with PAUSED.
    let paper_log = {
        let st = Store::open_file(&state, PAPER_STORE).unwrap();
        let mut v = Vec::new();
        smartflow::cli::log::export(&st, &Default::default(), &mut v).unwrap();
        v
    };
    let recs = Store::open_file(&state, PAPER_STORE)
        .unwrap()
        .records()
        .unwrap();
    let cmd = |name: &str| {
        recs.iter()
            .position(|r| r.kind == RecordKind::Command && r.detail["command"] == name)
            .unwrap()
    };
    let (pause, resume) = (cmd("pause"), cmd("resume"));
    let after: Vec<_> = recs[pause..resume]
        .iter()
        .filter(|r| r.kind == RecordKind::Verdict)
        .collect();
    assert!(after.iter().all(|v| v.refused), "no approval while paused");
    assert!(
        after
            .iter()
            .any(|v| v.detail["reasons"][0]["code"] == "PAUSED"),
        "a signal refused with PAUSED"
    );
    assert!(
        recs[resume..].iter().any(|r| r.kind == RecordKind::Verdict),
        "decisions again after resume"
    );

    // The tape replays to the byte-identical decision log.
    let replayed = dir.path().join("replayed");
    smartflow::replay::run_replay(smartflow::replay::ReplayOptions {
        data: vec![tape.display().to_string()],
        config: config(&venues),
        state_dir: replayed.clone(),
        fault: Fault::default(),
        resume: false,
        progress: false,
    })
    .unwrap();
    let mut replay_log = Vec::new();
    smartflow::cli::log::export(
        &Store::open(&replayed).unwrap(),
        &Default::default(),
        &mut replay_log,
    )
    .unwrap();
    assert!(paper_log.len() > 1000);
    if replay_log != paper_log {
        let (a, b) = (
            String::from_utf8_lossy(&paper_log),
            String::from_utf8_lossy(&replay_log),
        );
        let i = a.lines().zip(b.lines()).position(|(x, y)| x != y);
        panic!(
            "tape replay differs at line {i:?}:\n{:?}\n{:?}",
            i.and_then(|i| a.lines().nth(i)),
            i.and_then(|i| b.lines().nth(i))
        );
    }

    // A restart resumes the halt and the changed limit.
    let run = spawn_paper(config(&venues), &state, 1.5, None);
    let token = wait_for_api(&state);
    let (_, st) = api(&state, "GET", "/status", Some(&token), None);
    assert_eq!(st["trading_state"], "halted", "{st}");
    assert_eq!(st["limits"]["max_order_notional"], "150", "{st}");
    assert_eq!(run.join().unwrap().session, 2);
}

/// Threads of this process whose name starts with `prefix`.
fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("comm")).ok())
                .filter(|c| c.starts_with(prefix))
                .count()
        })
        .unwrap_or(0)
}

#[cfg(target_os = "linux")]
#[test]
fn keep_cores_awake_spins_one_idle_thread_per_core_only_while_the_session_runs() {
    let data = require_data!();
    let venues = start_venues(data);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&venues);
    cfg.feeds.keep_cores_awake = true;
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let watcher = std::thread::spawn(move || {
        let mut most = 0;
        while stop_rx.recv_timeout(Duration::from_millis(50)).is_err() {
            most = most.max(threads_named("smartflow-idle"));
        }
        most
    });
    let report = run_paper(PaperOptions {
        config: cfg,
        state_dir: dir.path().to_path_buf(),
        duration: Some(Duration::from_secs(2)),
        print_status: false,
        fault: Fault::default(),
        tape: None,
    })
    .unwrap();
    stop_tx.send(()).unwrap();
    let most = watcher.join().unwrap();
    let cores = std::thread::available_parallelism().unwrap().get();
    assert_eq!(most, cores, "one spinner per core while the session ran");
    // A joined thread leaves /proc a moment after `join` returns.
    let t0 = std::time::Instant::now();
    while threads_named("smartflow-idle") > 0 {
        assert!(
            t0.elapsed().as_secs() < 5,
            "spinners still there after the session"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let st = report.status.unwrap();
    assert!(st.fills > 0, "the session traded as usual: {st:?}");
}
