//! The wallet tracker against a fake Hyperliquid on 127.0.0.1 that serves one real whale's
//! fills (datadigshawn_whale_0xb317, as `userFills` items) and a real `clearinghouseState`
//! (bytex_live_payloads), and counts the venue's per-IP limits: unique users across
//! user-specific subscriptions (10) and REST weight per minute (1200).

mod common;
#[path = "common/fake_hl.rs"]
mod fake_hl;

use fake_hl::{Conn, Hl};
use serde_json::{json, Value};
use smartflow::domain::MarketEvent;
use smartflow::feeds::hyperliquid_info::{InfoClient, WeightBudget};
use smartflow::feeds::ws::{FeedBatch, FeedCounters, WsFeed, WsSettings};
use smartflow::wallets::events::{WalletBook, WalletFill};
use smartflow::wallets::tracker::user_fills::UserFillsCodec;
use smartflow::wallets::tracker::{TrackerConfig, TrackerCounters};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

const WHALE: &str = "0xb317d2bc2d3d2df5fa441b5bae0ab9d8b07283ae";

/// The whale's 2,000 fills as the API's `userFills` items (derived from the recorded CSV:
/// de-duplicated by `tid`, oldest first in the API's order, `time` in ms).
fn whale_fills(data: &Path) -> Vec<Value> {
    common::whale_fill_rows(data)
        .into_iter()
        .map(|(r, time)| {
            json!({
                "coin": &r[0], "px": &r[1], "sz": &r[2], "side": &r[3], "time": time,
                "startPosition": &r[5], "dir": &r[6], "closedPnl": &r[7], "hash": &r[8],
                "oid": r[9].parse::<u64>().unwrap(), "crossed": &r[10] == "True", "fee": &r[11],
                "tid": r[12].parse::<u64>().unwrap(), "feeToken": &r[13],
            })
        })
        .collect()
}

fn clearinghouse_state(data: &Path) -> Value {
    let p = data.join("hyperliquid/bytex_live_payloads/info_clearinghouseState.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn settings(url: &str) -> WsSettings {
    WsSettings {
        url: url.to_string(),
        ping_interval: Duration::from_millis(500),
        idle_timeout: Duration::from_secs(5),
        stale_after: Duration::from_secs(30),
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(200),
        connect_timeout: Duration::from_secs(2),
        max_ahead: Some(Duration::from_secs(60)),
        max_age: None,
    }
}

fn tids(events: &[MarketEvent]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| match e {
            MarketEvent::UserFill(f) => Some(f.tid),
            _ => None,
        })
        .collect()
}

/// Collects events from `rx` until `done` holds (or 20 s pass).
async fn collect(
    rx: &mut mpsc::Receiver<FeedBatch>,
    done: impl Fn(&[MarketEvent]) -> bool,
) -> Vec<MarketEvent> {
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !done(&events) && tokio::time::Instant::now() < deadline {
        if let Ok(Some(mut b)) = tokio::time::timeout(Duration::from_millis(50), rx.recv()).await {
            events.append(&mut b.events);
        }
    }
    events
}

/// Connection 1: a snapshot of fills 40–99, fills 100–299 live, then the server drops it; fills
/// 300–399 happen while the tracker is away; connection 2: a snapshot of 340–399, then 400–499
/// live. The backfill (`userFillsByTime` from the last fill seen) and the overlapping snapshot
/// leave every fill 40–499 exactly once, and the wallet's position where the venue's is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_is_backfilled_with_no_duplicated_fill() {
    let data = require_data!();
    let fills = whale_fills(&data);
    let conns = vec![
        Conn {
            happened_at_open: 100,
            live_until: 300,
            drop_after: true,
        },
        Conn {
            happened_at_open: 400,
            live_until: 500,
            drop_after: false,
        },
    ];
    let hl = Hl::new(
        BTreeMap::from([(WHALE.to_string(), fills.clone())]),
        conns,
        clearinghouse_state(&data),
    );
    let fake = fake_hl::start(hl).await;
    let counters = Arc::new(TrackerCounters::default());
    let codec = UserFillsCodec::new(&[WHALE.to_uppercase()], counters.clone());
    let info = InfoClient::new(&fake.info_url, Arc::new(WeightBudget::new(600)));
    let (tx, mut rx) = mpsc::channel(1024);
    let feed = WsFeed::new(
        Box::new(codec),
        settings(&fake.ws_url),
        None,
        tx,
        None,
        Arc::new(FeedCounters::default()),
    )
    .with_info(info);
    let (stop_tx, stop_rx) = watch::channel(false);
    let task = tokio::spawn(feed.run(stop_rx));
    let events = collect(&mut rx, |e| tids(e).len() >= 460).await;
    stop_tx.send(true).unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(2), task).await;

    let got = tids(&events);
    let unique: BTreeSet<u64> = got.iter().copied().collect();
    assert_eq!(unique.len(), got.len(), "a fill came twice");
    let want: BTreeSet<u64> = fills[40..500]
        .iter()
        .map(|f| f["tid"].as_u64().unwrap())
        .collect();
    assert_eq!(unique, want, "every fill 40–499, nothing else");
    let h = fake.hl.lock().unwrap();
    assert!(h.calls("userFillsByTime") >= 1, "no backfill was asked for");
    assert!(h.breaches.is_empty(), "{:?}", h.breaches);
    assert!(
        counters.duplicates.load(Ordering::Relaxed) > 0,
        "the overlaps were not dropped"
    );
    assert!(
        counters.backfilled.load(Ordering::Relaxed) >= 40,
        "fills 300–339 come only by backfill"
    );

    // The wallet's position from these events is the venue's after fill 499.
    let mut book = WalletBook::new(i64::MAX / 2);
    for e in &events {
        if let MarketEvent::UserFill(f) = e {
            let wf = WalletFill::from_event(f, "ETH");
            book.apply(&wf).expect("new fill");
        }
    }
    let last = WalletFill::from_user_fill(WHALE, &fills[499]).unwrap();
    assert_eq!(
        book.position(WHALE, "ETH"),
        last.start_position.unwrap() + last.delta()
    );
}

/// Twelve tracked wallets (the whale and eleven others), `user_subscriptions = 10`: the ten
/// heaviest are subscribed, never more than ten users at once (also across the reconnect after
/// the server drops the socket); position polls and backfills stay inside the tracker's budget
/// and the venue's 1200 per minute, and polled positions arrive as events.
#[test]
fn the_tracker_stays_within_the_venues_user_and_weight_limits() {
    let data = require_data!();
    let mut wallets = vec![WHALE.to_string()];
    wallets.extend((1..12).map(|i| format!("0x{i:040x}")));
    let conns = vec![
        Conn {
            happened_at_open: 20,
            live_until: 60,
            drop_after: true,
        },
        Conn {
            happened_at_open: 80,
            live_until: 80,
            drop_after: false,
        },
    ];
    let hl = Hl::new(
        BTreeMap::from([(WHALE.to_string(), whale_fills(&data))]),
        conns,
        clearinghouse_state(&data),
    );
    let cfg = TrackerConfig {
        enabled: true,
        user_subscriptions: 10,
        rest_weight_per_minute: 1000,
        poll_weight_per_minute: 300,
        min_poll_interval_secs: 0.0,
    };
    cfg.validate().unwrap();
    actix::System::new().block_on(async move {
        let fake = fake_hl::start(hl).await;
        let (tx, mut rx) = mpsc::channel(1024);
        let (stop_tx, stop_rx) = watch::channel(false);
        let started = std::time::Instant::now();
        let (_list_tx, list) = watch::channel(wallets.clone());
        let t = smartflow::wallets::tracker::start(
            &cfg,
            settings(&fake.ws_url),
            &fake.info_url,
            list,
            tx,
            stop_rx,
        );
        let hl = fake.hl.clone();
        let events = collect(&mut rx, |_| {
            hl.lock().unwrap().calls("userFillsByTime") >= 10
        })
        .await;
        // A little longer: polls keep going.
        let more = collect(&mut rx, |_| started.elapsed() > Duration::from_secs(4)).await;
        stop_tx.send(true).unwrap();
        let elapsed = started.elapsed().as_secs_f64();
        let h = fake.hl.lock().unwrap();
        assert!(h.breaches.is_empty(), "{:?}", h.breaches);
        assert!(
            h.max_users <= 10 && h.max_users == 10,
            "max users at once: {}",
            h.max_users
        );
        let subscribed: BTreeSet<&String> = h.subscribed.iter().collect();
        let heaviest: BTreeSet<&String> = wallets[..10].iter().collect();
        assert_eq!(subscribed, heaviest, "the ten heaviest, only them");
        assert_eq!(
            h.subscribed.len(),
            20,
            "ten users on each of two connections"
        );
        assert!(h.worst_minute() <= 1200);
        // Polls: at most the poll budget's burst (30) plus its rate (5 weight/s), 2 each.
        let polls = h.calls("clearinghouseState");
        let bound = (30.0 + 5.0 * elapsed) / 2.0 + 1.0;
        assert!(
            polls as f64 <= bound,
            "{polls} polls in {elapsed:.1} s (bound {bound:.0})"
        );
        assert!(polls >= 12, "every wallet polled at least once: {polls}");
        let spent = t.budget.spent.load(Ordering::Relaxed) as f64;
        assert!(
            spent <= 100.0 + 1000.0 / 60.0 * elapsed + 1.0,
            "spent {spent} in {elapsed:.1} s"
        );
        let polled: BTreeSet<String> = events
            .iter()
            .chain(&more)
            .filter_map(|e| match e {
                MarketEvent::UserPosition(p) => Some(p.wallet.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(polled.len(), 12, "a position event for every wallet");
        assert!(
            !tids(&events).is_empty(),
            "the whale's fills came through the socket"
        );
    });
}

/// Starts the fake venue on a thread of its own (a paper session runs its own runtime).
fn start_fake_thread(hl: Hl) -> fake_hl::FakeHl {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            tx.send(fake_hl::start(hl).await).unwrap();
            std::future::pending::<()>().await;
        });
    });
    rx.recv().unwrap()
}

/// The fake venue serving the whale's fills (100 at the first connection, 100 more live), a
/// real `clearinghouseState` and the real `meta` answer.
fn whale_venue(data: &Path) -> fake_hl::FakeHl {
    let mut hl = Hl::new(
        BTreeMap::from([(WHALE.to_string(), whale_fills(data))]),
        vec![Conn {
            happened_at_open: 100,
            live_until: 200,
            drop_after: false,
        }],
        clearinghouse_state(data),
    );
    let meta = data.join("hyperliquid/bytex_live_payloads/info_meta_first6.json");
    hl.meta = serde_json::from_str(&std::fs::read_to_string(meta).unwrap()).unwrap();
    start_fake_thread(hl)
}

/// A paper config on the fake venue only (Hyperliquid BTC), the tracker on, with `whales`
/// (the `[wallets]`/`[whales]` keys that pick the wallets) spliced in.
fn paper_config(whales: &str, fake: &fake_hl::FakeHl) -> smartflow::config::Config {
    let toml = format!(
        r#"
[models]
mode = "rules"
[portfolio]
quote = "USDC"
starting_balance = "10000"
[risk]
max_order_notional = "1000"
max_position_notional = "1000"
max_gross_exposure = "5000"
min_order_notional = "10"
daily_loss_limit = "500"
qty_step = "0.0001"
{whales}
min_wallets = 1
min_net_notional = "100"
[whales.tracker]
enabled = true
min_poll_interval_secs = 0.5
[feeds]
ping_interval_secs = 0.3
idle_timeout_secs = 3.0
backoff_initial_ms = 50
backoff_max_ms = 200
[feeds.binance]
enabled = false
[feeds.bybit]
enabled = false
[feeds.hyperliquid]
ws_url = "{}"
rest_url = "{}"
instruments = ["BTC/USDC"]
"#,
        fake.ws_url, fake.info_url
    );
    smartflow::config::Config::from_toml(&toml, "test").unwrap()
}

/// A 3 s paper session in `dir/paper` with its tape at `dir/tape.jsonl`; its store.
fn paper_session(cfg: &smartflow::config::Config, dir: &Path) -> smartflow::store::Store {
    smartflow::paper::run_paper(smartflow::paper::PaperOptions {
        config: cfg.clone(),
        state_dir: dir.join("paper"),
        duration: Some(Duration::from_secs(3)),
        print_status: false,
        fault: Default::default(),
        tape: Some(dir.join("tape.jsonl")),
    })
    .unwrap();
    smartflow::store::Store::open_file(&dir.join("paper"), smartflow::store::PAPER_STORE).unwrap()
}

fn exported(store: &smartflow::store::Store) -> String {
    let mut v = Vec::new();
    smartflow::cli::log::export(store, &Default::default(), &mut v).unwrap();
    String::from_utf8(v).unwrap()
}

/// The decision log of a replay of `dir/tape.jsonl`.
fn tape_replay_log(cfg: &smartflow::config::Config, dir: &Path) -> String {
    let state = dir.join("replay");
    smartflow::replay::run_replay(smartflow::replay::ReplayOptions {
        data: vec![dir.join("tape.jsonl").display().to_string()],
        config: cfg.clone(),
        state_dir: state.clone(),
        fault: Default::default(),
        resume: false,
        progress: false,
    })
    .unwrap();
    exported(&smartflow::store::Store::open(&state).unwrap())
}

/// `paper` with `[whales.tracker]` on: the whale (tracked from a snapshot file written here)
/// buys ETH on its own feed; its fills and the polled positions enter the session as events,
/// raise a whale-follow signal with a risk verdict, and the session's tape replays to the
/// byte-identical decision log.
#[test]
fn paper_with_the_tracker_signals_from_the_wallets_feed_and_replays_from_its_tape() {
    let data = require_data!();
    let dir = tempfile::tempdir().unwrap();
    let fake = whale_venue(&data);
    let rows: Vec<Value> = [WHALE, "0x00000000000000000000000000000000000000aa"]
        .iter()
        .map(|a| {
            json!({"address": a, "displayName": null, "accountValue": 1e6, "pnl": 1000.0,
                "roi": 0.01, "volume": 1e6, "positions": []})
        })
        .collect();
    let snap = dir.path().join("snapshot.json");
    let doc = json!({"lastUpdated": "2026-02-16T00:00:00Z",
        "whaleTracker": {"daily": rows, "weekly": rows, "biggestPositions": []}});
    std::fs::write(&snap, doc.to_string()).unwrap();
    let whales = format!(
        "[wallets]\nmin_observations = 1\n[whales]\nenabled = true\nsnapshots = [{snap:?}]"
    );
    let cfg = paper_config(&whales, &fake);
    let store = paper_session(&cfg, dir.path());
    let tape = dir.path().join("tape.jsonl");
    let text = std::fs::read_to_string(&tape).unwrap();
    let count = |kind: &str| {
        text.lines()
            .filter(|l| l.contains(&format!("\"event\":\"{kind}\"")))
            .count()
    };
    assert!(
        count("user_fill") >= 100,
        "the whale's fills are on the tape"
    );
    assert!(
        count("user_position") >= 2,
        "polled positions are on the tape"
    );
    let h = fake.hl.lock().unwrap();
    assert!(h.breaches.is_empty(), "{:?}", h.breaches);
    drop(h);

    let (recs, log) = (store.records().unwrap(), exported(&store));
    let sig = recs
        .iter()
        .find(|r| r.kind == smartflow::store::RecordKind::Signal)
        .expect("a whale-follow signal");
    assert_eq!(sig.detail["detector"], "whale_follow");
    assert_eq!(
        (sig.instrument.as_str(), sig.detail["side"].as_str()),
        ("hyperliquid:ETH/USDC", Some("buy"))
    );
    // ETH has no market data in this session: risk refuses the entry and says why.
    let verdict = recs
        .iter()
        .find(|r| r.kind == smartflow::store::RecordKind::Verdict)
        .expect("the signal went through risk");
    assert!(verdict.refused);
    assert_eq!(verdict.detail["reasons"][0]["code"], "STALE_DATA");
    assert_eq!(
        tape_replay_log(&cfg, dir.path()),
        log,
        "the tape replays to the same decision log"
    );
}

/// A leaderboard in Hyperliquid's layout (written here, not derived from data): `wallets` with
/// day and week windows, the first the most profitable.
fn leaderboard(wallets: &[&str]) -> String {
    let rows: Vec<Value> = wallets
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let pnl = format!("{}", 90000 - 10000 * i as i64);
            let w = json!({"pnl": pnl, "roi": "0.05", "vlm": "5000000"});
            json!({"ethAddress": a, "accountValue": "1000000", "displayName": null, "prize": 0,
                "windowPerformances": [["day", w], ["week", w]]})
        })
        .collect();
    json!({"leaderboardRows": rows}).to_string()
}

/// `paper` with `[whales] leaderboard` (a file, re-read every 0.5 s) and the tracker: the
/// session sends the picked wallets into its stream as `track_wallets` commands (their
/// weights and dimensions in the decision log); when the leaderboard changes mid-session the
/// tracker subscribes to the new wallet; the whale's fills raise a signal, and the tape
/// replays to the same decision log.
#[test]
fn a_leaderboard_refresh_changes_the_tracked_wallets_mid_session_and_replays() {
    let data = require_data!();
    let dir = tempfile::tempdir().unwrap();
    let fake = whale_venue(&data);
    const A: &str = "0x00000000000000000000000000000000000000aa";
    const B: &str = "0x00000000000000000000000000000000000000bb";
    let lb = dir.path().join("leaderboard.json");
    std::fs::write(&lb, leaderboard(&[WHALE, A])).unwrap();
    let whales =
        format!("[whales]\nenabled = true\nleaderboard = {lb:?}\nleaderboard_refresh_secs = 0.5");
    let cfg = paper_config(&whales, &fake);
    let lb2 = lb.clone();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        std::fs::write(&lb2, leaderboard(&[B, WHALE, A])).unwrap();
    });
    let store = paper_session(&cfg, dir.path());
    writer.join().unwrap();
    let recs = store.records().unwrap();
    let picks: Vec<BTreeSet<String>> = recs
        .iter()
        .filter(|r| r.kind == smartflow::store::RecordKind::Command)
        .map(|r| {
            assert_eq!(r.detail["source"], "leaderboard");
            assert_eq!(r.detail["command"], "track_wallets");
            let w = r.detail["wallets"].as_array().unwrap();
            assert!(w
                .iter()
                .all(|w| w["weight"].is_string() && w["performance"].is_string()));
            w.iter()
                .map(|w| w["address"].as_str().unwrap().to_string())
                .collect()
        })
        .collect();
    assert!(
        picks.len() >= 3,
        "read at the start and every 0.5 s: {}",
        picks.len()
    );
    assert_eq!(picks[0], BTreeSet::from([WHALE.to_string(), A.to_string()]));
    assert!(
        picks.last().unwrap().contains(B),
        "the refresh picked up the new wallet"
    );
    let h = fake.hl.lock().unwrap();
    assert!(
        h.subscribed.iter().any(|u| u == B),
        "the tracker subscribed to it"
    );
    assert!(h.breaches.is_empty(), "{:?}", h.breaches);
    drop(h);
    assert!(
        recs.iter()
            .any(|r| r.kind == smartflow::store::RecordKind::Signal
                && r.detail["detector"] == "whale_follow"),
        "the whale's fills raised a signal"
    );
    assert_eq!(tape_replay_log(&cfg, dir.path()), exported(&store));
}

/// `smartflow replay` of recorded `userFills` frames (JSONL, written here from the whale's real
/// fills: a snapshot of fills 0–59, then 40–119 live, overlapping, and one junk line): each
/// fill once as the wallet's own fill, the junk line reported with its line number, and with
/// the whale tracked, a whale-follow signal on the coin it bought.
#[test]
fn replay_reads_recorded_user_fills_frames() {
    let data = require_data!();
    let dir = tempfile::tempdir().unwrap();
    let fills = whale_fills(&data);
    let frame = |fs: &[Value], snap: bool| {
        let mut d = json!({"user": WHALE, "fills": fs});
        if snap {
            d["isSnapshot"] = json!(true);
        }
        json!({"channel": "userFills", "data": d}).to_string()
    };
    let mut lines = vec![
        json!({"channel": "subscriptionResponse", "data": {"method": "subscribe"}}).to_string(),
        frame(&fills[..60], true),
    ];
    lines.extend(
        fills[40..120]
            .iter()
            .map(|f| frame(std::slice::from_ref(f), false)),
    );
    lines.insert(5, "{not json".into());
    let path = dir.path().join("user_fills.jsonl");
    std::fs::write(&path, lines.join("\n")).unwrap();

    let mut src = smartflow::feeds::open_source(&path).unwrap();
    let (mut tids, mut bad) = (Vec::new(), Vec::new());
    while let Some(item) = src.next_item() {
        match item {
            Ok(MarketEvent::UserFill(f)) => tids.push(f.tid),
            Ok(other) => panic!("{other:?}"),
            Err(m) => bad.push(m.line),
        }
    }
    let want: Vec<u64> = fills[..120]
        .iter()
        .map(|f| f["tid"].as_u64().unwrap())
        .collect();
    assert_eq!(tids, want, "every fill once, in order");
    assert_eq!(bad, vec![6]);

    let rows = json!([{"address": WHALE, "displayName": null, "accountValue": 1e6, "pnl": 1000.0,
        "roi": 0.01, "volume": 1e6, "positions": []}]);
    let snap = dir.path().join("snapshot.json");
    let doc = json!({"lastUpdated": "2026-02-16T00:00:00Z",
        "whaleTracker": {"daily": rows, "weekly": rows, "biggestPositions": []}});
    std::fs::write(&snap, doc.to_string()).unwrap();
    let toml = format!(
        r#"
[models]
mode = "rules"
[portfolio]
quote = "USDC"
[wallets]
min_observations = 1
[whales]
enabled = true
snapshots = [{snap:?}]
min_wallets = 1
min_net_notional = "100"
"#
    );
    let cfg = smartflow::config::Config::from_toml(&toml, "test").unwrap();
    let state = dir.path().join("replay");
    smartflow::replay::run_replay(smartflow::replay::ReplayOptions {
        data: vec![path.display().to_string()],
        config: cfg,
        state_dir: state.clone(),
        fault: Default::default(),
        resume: false,
        progress: false,
    })
    .unwrap();
    let recs = smartflow::store::Store::open(&state)
        .unwrap()
        .records()
        .unwrap();
    let sig = recs
        .iter()
        .find(|r| r.kind == smartflow::store::RecordKind::Signal)
        .expect("a whale-follow signal");
    assert_eq!(sig.detail["detector"], "whale_follow");
    assert_eq!(sig.instrument, "hyperliquid:ETH/USDC");
}
