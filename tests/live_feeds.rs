//! The self-healing websocket client against loopback servers replaying real captures.

mod common;

use common::fake::{self, After, Script};
use smartflow::domain::{FeedState, MarketEvent};
use smartflow::feeds::rest::RestClient;
use smartflow::feeds::venues::{codec, Venue};
use smartflow::feeds::ws::{FeedCounters, WsFeed, WsSettings};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

fn settings(url: &str) -> WsSettings {
    WsSettings {
        url: url.to_string(),
        ping_interval: Duration::from_millis(200),
        idle_timeout: Duration::from_millis(600),
        stale_after: Duration::from_secs(30),
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(200),
        connect_timeout: Duration::from_secs(2),
        max_ahead: Some(Duration::from_secs(60)),
        max_age: None,
    }
}

struct Run {
    events: Vec<MarketEvent>,
    counters: Arc<FeedCounters>,
}

/// Runs a feed until `until` says the events so far are enough (or 10 s pass).
async fn run_feed(
    venue: Venue,
    pairs: &[&str],
    s: WsSettings,
    rest: Option<RestClient>,
    until: impl Fn(&[MarketEvent], &FeedCounters) -> bool,
) -> Run {
    let pairs: Vec<String> = pairs.iter().map(|p| p.to_string()).collect();
    let (tx, mut rx) = mpsc::channel(1024);
    let counters = Arc::new(FeedCounters::default());
    let feed = WsFeed::new(
        codec(venue, &pairs, 200).unwrap(),
        s,
        rest,
        tx,
        None,
        counters.clone(),
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let task = tokio::spawn(feed.run(stop_rx));
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    // Re-check the condition at least every 50 ms: some conditions depend on counters only.
    while !until(&events, &counters) && tokio::time::Instant::now() < deadline {
        if let Ok(Some(mut evs)) = tokio::time::timeout(Duration::from_millis(50), rx.recv()).await
        {
            events.append(&mut evs.events);
        }
    }
    stop_tx.send(true).unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
    Run { events, counters }
}

fn statuses(evs: &[MarketEvent], state: FeedState) -> usize {
    evs.iter()
        .filter(|e| matches!(e, MarketEvent::Status(s) if s.state == state))
        .count()
}

fn trades(evs: &[MarketEvent]) -> usize {
    evs.iter().filter(|e| e.as_trade().is_some()).count()
}

#[tokio::test]
async fn reconnects_and_resubscribes_after_the_server_drops_mid_stream() {
    let data = require_data!();
    let frames = fake::v3_frames(
        &data.join("cryptofeed_ws_captures/BYBIT_v3_2026.jsonl.gz"),
        "BYBIT.ws.3",
    );
    let n = frames.len();
    let srv = fake::start_ws(vec![
        Script {
            frames: frames.clone(),
            count: n / 3,
            after: After::Drop,
            skip: vec![],
            junk_every: None,
            pace: None,
        },
        Script {
            frames,
            count: n,
            after: After::Idle,
            skip: vec![],
            junk_every: None,
            pace: None,
        },
    ])
    .await;
    let r = run_feed(
        Venue::Bybit,
        &["BTC/USDT", "ETH/USDT"],
        settings(&srv.url),
        None,
        |e, c| c.connects.load(Ordering::Relaxed) >= 2 && statuses(e, FeedState::Live) >= 4,
    )
    .await;
    assert_eq!(r.counters.connects.load(Ordering::Relaxed), 2);
    assert_eq!(r.counters.reconnects.load(Ordering::Relaxed), 1);
    assert_eq!(
        r.counters.stalls.load(Ordering::Relaxed),
        0,
        "a dropped socket, not a stall"
    );
    // Both instruments: live, reconnecting, live again.
    assert_eq!(statuses(&r.events, FeedState::Reconnecting), 2);
    assert_eq!(statuses(&r.events, FeedState::Live), 4);
    let seen = srv.seen.lock().unwrap();
    let subs = |k: usize| -> Vec<&String> {
        seen.received[k]
            .iter()
            .filter(|m| m.contains("subscribe"))
            .collect()
    };
    assert!(!subs(0).is_empty());
    assert_eq!(
        subs(0),
        subs(1),
        "everything re-subscribed after the reconnect"
    );
}

#[tokio::test]
async fn recovers_from_a_stall_without_close() {
    let data = require_data!();
    let frames = fake::v3_frames(
        &data.join("cryptofeed_ws_captures/BYBIT_v3_2026.jsonl.gz"),
        "BYBIT.ws.3",
    );
    let n = frames.len();
    let srv = fake::start_ws(vec![
        Script {
            frames: frames.clone(),
            count: 200,
            after: After::Stall,
            skip: vec![],
            junk_every: None,
            pace: None,
        },
        Script {
            frames,
            count: n,
            after: After::Idle,
            skip: vec![],
            junk_every: None,
            pace: None,
        },
    ])
    .await;
    let r = run_feed(
        Venue::Bybit,
        &["BTC/USDT", "ETH/USDT"],
        settings(&srv.url),
        None,
        |e, _| statuses(e, FeedState::Live) >= 4,
    )
    .await;
    assert_eq!(r.counters.stalls.load(Ordering::Relaxed), 1);
    assert_eq!(r.counters.connects.load(Ordering::Relaxed), 2);
    let order: Vec<FeedState> = r
        .events
        .iter()
        .filter_map(|e| match e {
            MarketEvent::Status(s) if s.instrument.as_str() == "bybit:BTC/USDT" => Some(s.state),
            _ => None,
        })
        .collect();
    assert_eq!(
        order,
        vec![
            FeedState::Live,
            FeedState::Stale,
            FeedState::Reconnecting,
            FeedState::Live
        ]
    );
}

#[tokio::test]
async fn malformed_frames_are_counted_and_skipped() {
    let data = require_data!();
    let frames = fake::v3_frames(
        &data.join("cryptofeed_ws_captures/BYBIT_v3_2026.jsonl.gz"),
        "BYBIT.ws.3",
    );
    let n = frames.len();
    let expected: usize = frames
        .iter()
        .filter(|f| f.contains("\"topic\":\"publicTrade"))
        .map(|f| {
            serde_json::from_str::<serde_json::Value>(f).unwrap()["data"]
                .as_array()
                .unwrap()
                .len()
        })
        .sum();
    let dirty = fake::start_ws(vec![Script {
        frames,
        count: n,
        after: After::Idle,
        skip: vec![],
        junk_every: Some(25),
        pace: None,
    }])
    .await;
    let junk_total = n / 25;
    let r = run_feed(
        Venue::Bybit,
        &["BTC/USDT", "ETH/USDT"],
        settings(&dirty.url),
        None,
        |e, c| c.frames.load(Ordering::Relaxed) as usize >= n + junk_total && trades(e) >= expected,
    )
    .await;
    assert_eq!(dirty.seen.lock().unwrap().junk_sent, junk_total);
    assert_eq!(
        r.counters.malformed.load(Ordering::Relaxed) as usize,
        junk_total
    );
    assert_eq!(trades(&r.events), expected, "junk costs no real trade");
    assert_eq!(r.counters.connects.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn binance_books_resync_from_rest_after_a_gap() {
    let data = require_data!();
    let frames = fake::v1_frames(&data.join("cryptofeed_ws_captures/BINANCE.ws.1.0.txt.gz"));
    // A REST depth endpoint whose snapshot precedes the first captured diff of each symbol.
    let mut first_u = std::collections::HashMap::new();
    for f in &frames {
        let v: serde_json::Value = serde_json::from_str(f).unwrap();
        if v["data"]["e"] == "depthUpdate" {
            first_u
                .entry(v["data"]["s"].as_str().unwrap().to_string())
                .or_insert(v["data"]["U"].as_u64().unwrap());
        }
    }
    // Skip one NKNUSDT depth diff in the middle: a gap.
    let nkn: Vec<usize> = frames
        .iter()
        .enumerate()
        .filter(|(_, f)| f.contains("nknusdt@depth"))
        .map(|(i, _)| i)
        .collect();
    let skip = nkn[nkn.len() / 2];
    let after: serde_json::Value = serde_json::from_str(&frames[nkn[nkn.len() / 2 + 1]]).unwrap();
    let after_gap_u = after["data"]["U"].as_u64().unwrap();
    let hits = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let h2 = hits.clone();
    let app = axum::Router::new().route(
        "/api/v3/depth",
        axum::routing::get(move |q: axum::extract::Query<std::collections::HashMap<String, String>>| {
            let sym = q["symbol"].clone();
            h2.lock().unwrap().push(sym.clone());
            // First call: just before the first captured diff; later calls: a fresh snapshot
            // just before the diff that follows the skipped one.
            let calls = h2.lock().unwrap().iter().filter(|s| **s == sym).count();
            let id = if calls > 1 { after_gap_u - 1 } else { first_u[&sym] - 1 };
            async move { axum::Json(serde_json::json!({"lastUpdateId": id, "bids": [["0.00000001", "1"]], "asks": [["1000000", "1"]]})) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rest_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let n = frames.len();
    let srv = fake::start_ws(vec![Script {
        frames,
        count: n,
        after: After::Idle,
        skip: vec![skip],
        junk_every: None,
        pace: None,
    }])
    .await;
    // Delay frames a little so the snapshot (REST) lands before most diffs; the codec buffers anyway.
    let r = run_feed(
        Venue::Binance,
        &["NKN/USDT", "BLZ/ETH", "LRC/BTC", "RUNE/EUR"],
        settings(&format!("{}/stream", srv.url)),
        Some(RestClient::new(&rest_url, 20)),
        |e, c| c.gaps.load(Ordering::Relaxed) >= 1 && statuses(e, FeedState::Live) >= 5,
    )
    .await;
    assert_eq!(r.counters.gaps.load(Ordering::Relaxed), 1);
    assert!(statuses(&r.events, FeedState::Resyncing) == 1);
    let hits = hits.lock().unwrap();
    assert_eq!(
        hits.iter().filter(|s| *s == "NKNUSDT").count(),
        2,
        "{hits:?}"
    );
    assert_eq!(
        hits.len(),
        5,
        "one snapshot per book, one more after the gap: {hits:?}"
    );
    assert!(r
        .events
        .iter()
        .any(|e| matches!(e, MarketEvent::Book(b) if b.instrument.as_str() == "binance:NKN/USDT")));
}

#[tokio::test]
async fn hyperliquid_keeps_alive_with_pings_and_passes_wallets() {
    let data = require_data!();
    let frames = fake::hyperliquid_frames(&data);
    let n = frames.len();
    let srv = fake::start_ws(vec![Script {
        frames,
        count: n,
        after: After::Idle,
        skip: vec![],
        junk_every: None,
        pace: None,
    }])
    .await;
    let r = run_feed(
        Venue::Hyperliquid,
        &["BTC/USDC"],
        settings(&srv.url),
        None,
        |e, c| trades(e) == 50 && c.frames.load(Ordering::Relaxed) as usize >= n + 3,
    )
    .await;
    assert_eq!(trades(&r.events), 50);
    assert!(r
        .events
        .iter()
        .filter_map(|e| e.as_trade())
        .all(|t| t.users.is_some()));
    // Idle after the frames: the client's pings are answered, so no stall and no reconnect.
    let pings = srv.seen.lock().unwrap().received[0]
        .iter()
        .filter(|m| m.contains("ping"))
        .count();
    assert!(pings >= 3, "{pings}");
    assert_eq!(r.counters.stalls.load(Ordering::Relaxed), 0);
    assert_eq!(r.counters.connects.load(Ordering::Relaxed), 1);
}

/// One recorded Hyperliquid trade re-timed a day into the future, one a year back, one to
/// i64::MIN: with a 60 s limit ahead and a 30-day limit back, the first two are quarantined and
/// the third is malformed (counted, not forwarded), so none can move an event clock; the other
/// 47 trades pass, those of the malformed frame included.
#[tokio::test]
async fn trades_timed_far_from_their_receipt_are_quarantined() {
    let data = require_data!();
    let now = smartflow::feeds::ws::now_ms();
    let mut frames = fake::hyperliquid_frames(&data);
    // Re-time the book and every trade to "now" (the recording is older than the age limit), two
    // trades far off.
    for (k, f) in frames.iter_mut().enumerate() {
        let mut v: serde_json::Value = serde_json::from_str(f).unwrap();
        if v["channel"] == "l2Book" {
            v["data"]["time"] = serde_json::json!(now);
        }
        if v["channel"] != "trades" {
            *f = v.to_string();
            continue;
        }
        for (j, t) in v["data"].as_array_mut().unwrap().iter_mut().enumerate() {
            t["time"] = serde_json::json!(match (k, j) {
                (2, 0) => now + 86_400_000,
                (3, 1) => now - 365 * 86_400_000,
                (4, 2) => i64::MIN,
                _ => now,
            });
        }
        *f = v.to_string();
    }
    let n = frames.len();
    let srv = fake::start_ws(vec![Script::all(frames)]).await;
    let mut s = settings(&srv.url);
    s.max_age = Some(Duration::from_secs(30 * 86_400));
    let r = run_feed(Venue::Hyperliquid, &["BTC/USDC"], s, None, |e, c| {
        trades(e) == 47 && c.frames.load(Ordering::Relaxed) as usize >= n
    })
    .await;
    assert_eq!(trades(&r.events), 47);
    // i64::MIN is no event time at all: the codec refuses that item (the frame counts as
    // malformed; its other trades pass). The two plausible but distant ones are quarantined.
    assert_eq!(r.counters.quarantined.load(Ordering::Relaxed), 2);
    assert_eq!(r.counters.malformed.load(Ordering::Relaxed), 1);
    let latest = r
        .events
        .iter()
        .filter_map(|e| e.as_trade())
        .map(|t| t.ts_ms)
        .max();
    assert!(
        latest.unwrap() < now + 60_000,
        "no far-future time got through"
    );
}

/// A recorder that never reads its queue (capacity 4 here): the feed keeps decoding and
/// forwarding, and the frames the queue cannot take are dropped and counted, not held.
#[tokio::test]
async fn a_stuck_recorder_costs_counted_frames_not_memory() {
    let data = require_data!();
    let frames = fake::hyperliquid_frames(&data);
    let n = frames.len();
    let srv = fake::start_ws(vec![Script::all(frames)]).await;
    let (tx, mut rx) = mpsc::channel(1024);
    let (raw_tx, _raw_rx) = mpsc::channel(4);
    let counters = Arc::new(FeedCounters::default());
    let pairs = vec!["BTC/USDC".to_string()];
    let feed = WsFeed::new(
        codec(Venue::Hyperliquid, &pairs, 5).unwrap(),
        settings(&srv.url),
        None,
        tx,
        Some(raw_tx),
        counters.clone(),
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let task = tokio::spawn(feed.run(stop_rx));
    let mut got = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while got < 50 && tokio::time::Instant::now() < deadline {
        if let Ok(Some(b)) = tokio::time::timeout(Duration::from_millis(50), rx.recv()).await {
            got += b.events.iter().filter(|e| e.as_trade().is_some()).count();
        }
    }
    stop_tx.send(true).unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
    assert_eq!(got, 50, "every trade forwarded");
    // A connect frame and n websocket frames were offered; 4 fit.
    let dropped = counters.raw_dropped.load(Ordering::Relaxed) as usize;
    assert!(dropped >= n + 1 - 4, "{dropped} of {} dropped", n + 1);
}
