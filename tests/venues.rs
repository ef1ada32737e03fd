//! Venue codecs on real captured websocket messages.

mod common;

use smartflow::domain::{FeedState, MarketEvent, Side};
use smartflow::feeds::open_reader;
use smartflow::feeds::venues::{codec, Control, DepthSnapshot, Venue};
use std::io::BufRead;
use std::path::Path;

/// `(recv_ms, json)` of the received frames of a cryptofeed v1 capture (`<ts>: <json>` lines).
fn v1_frames(path: &Path) -> Vec<(i64, String)> {
    open_reader(path)
        .unwrap()
        .lines()
        .map(|l| l.unwrap())
        .filter(|l| !l.contains(" <-> ") && !l.contains(" <- "))
        .filter_map(|l| {
            let (ts, json) = l.split_once(": ")?;
            Some(((ts.parse::<f64>().ok()? * 1000.0) as i64, json.to_string()))
        })
        .collect()
}

/// Received frames of one connection of a cryptofeed v3 JSONL capture.
fn v3_frames(path: &Path, conn: &str) -> Vec<(i64, String)> {
    open_reader(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(&l.unwrap()).unwrap())
        .filter(|r| r["t"] == "recv" && r["conn"] == conn)
        .map(|r| {
            (
                (r["ts"].as_f64().unwrap() * 1000.0) as i64,
                r["data"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn pairs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn binance_trades_book_ticker_and_depth_sync_on_a_real_capture() {
    let data = require_data!();
    let frames = v1_frames(&data.join("cryptofeed_ws_captures/BINANCE.ws.1.0.txt.gz"));
    let mut c = codec(
        Venue::Binance,
        &pairs(&["NKN/USDT", "BLZ/ETH", "LRC/BTC", "RUNE/EUR"]),
        50,
    )
    .unwrap();
    assert_eq!(c.on_connect().len(), 4, "every book wants a snapshot");
    let mut out = vec![];
    // First pass: depth diffs are buffered until a snapshot arrives.
    let mut first_u = std::collections::HashMap::new();
    for (ts, f) in &frames {
        let v: serde_json::Value = serde_json::from_str(f).unwrap();
        if v["data"]["e"] == "depthUpdate" {
            first_u
                .entry(v["data"]["s"].as_str().unwrap().to_string())
                .or_insert(v["data"]["U"].as_u64().unwrap());
        }
        assert_eq!(c.on_message(f, *ts, &mut out).unwrap(), Control::None);
    }
    let trades: Vec<_> = out.iter().filter_map(|e| e.as_trade()).collect();
    assert_eq!(trades.len(), 2);
    assert_eq!(trades[0].instrument.as_str(), "binance:NKN/USDT");
    assert_eq!(trades[0].aggressor, Side::Buy);
    let tickers = out
        .iter()
        .filter(|e| matches!(e, MarketEvent::Book(_)))
        .count();
    assert_eq!(tickers, 84, "bookTicker frames give book tops");

    // Second pass with snapshots just before each book's first diff: every real diff must then
    // chain (U = previous u + 1) without a gap.
    let mut c = codec(
        Venue::Binance,
        &pairs(&["NKN/USDT", "BLZ/ETH", "LRC/BTC", "RUNE/EUR"]),
        50,
    )
    .unwrap();
    c.on_connect();
    let mut out = vec![];
    for (sym, inst) in [
        ("NKNUSDT", "NKN/USDT"),
        ("BLZETH", "BLZ/ETH"),
        ("LRCBTC", "LRC/BTC"),
        ("RUNEEUR", "RUNE/EUR"),
    ] {
        let snap = DepthSnapshot {
            last_update_id: first_u[sym] - 1,
            bids: vec![["0.00000001".into(), "1".into()]],
            asks: vec![["100000".into(), "1".into()]],
        };
        let i = smartflow::domain::Instrument::new(&format!("binance:{inst}"));
        c.apply_snapshot(&i, &snap, 0, &mut out).unwrap();
    }
    let lives = out
        .iter()
        .filter(|e| matches!(e, MarketEvent::Status(s) if s.state == FeedState::Live))
        .count();
    assert_eq!(lives, 4);
    out.clear();
    let mut diffs = 0;
    for (ts, f) in &frames {
        assert_eq!(
            c.on_message(f, *ts, &mut out).unwrap(),
            Control::None,
            "gap in real data at {f}"
        );
        diffs += f.contains("depthUpdate") as usize;
    }
    assert_eq!(diffs, 177);
    for e in &out {
        if let MarketEvent::Book(b) = e {
            assert!(b.bid_price < b.ask_price, "crossed book {b:?}");
        }
    }

    // Drop one diff: the next one no longer chains → resync.
    let mut c = codec(Venue::Binance, &pairs(&["NKN/USDT"]), 50).unwrap();
    c.on_connect();
    let nkn: Vec<_> = frames
        .iter()
        .filter(|(_, f)| f.contains("nknusdt@depth"))
        .collect();
    let i = smartflow::domain::Instrument::new("binance:NKN/USDT");
    let snap = DepthSnapshot {
        last_update_id: first_u["NKNUSDT"] - 1,
        bids: vec![],
        asks: vec![],
    };
    c.apply_snapshot(&i, &snap, 0, &mut out).unwrap();
    c.on_message(&nkn[0].1, 0, &mut out).unwrap();
    out.clear();
    let ctl = c.on_message(&nkn[2].1, 0, &mut out).unwrap();
    assert_eq!(ctl, Control::Resync(vec![i.clone()]));
    assert!(matches!(&out[0], MarketEvent::Status(s) if s.state == FeedState::Resyncing));
}

#[test]
fn bybit_v5_spot_trades_and_orderbook() {
    let data = require_data!();
    let frames = v3_frames(
        &data.join("cryptofeed_ws_captures/BYBIT_v3_2026.jsonl.gz"),
        "BYBIT.ws.3",
    );
    let mut c = codec(Venue::Bybit, &pairs(&["BTC/USDT", "ETH/USDT"]), 200).unwrap();
    assert!(c.subscribe_messages()[0].contains("publicTrade.BTCUSDT"));
    c.on_connect();
    let mut out = vec![];
    let mut acks = 0;
    for (ts, f) in &frames {
        match c.on_message(f, *ts, &mut out).unwrap() {
            Control::Subscribed => acks += 1,
            Control::None => {}
            other => panic!("unexpected {other:?} on {f}"),
        }
    }
    assert!(acks > 0);
    let expected_trades: usize = frames
        .iter()
        .filter(|(_, f)| f.contains("\"topic\":\"publicTrade"))
        .map(|(_, f)| {
            serde_json::from_str::<serde_json::Value>(f).unwrap()["data"]
                .as_array()
                .unwrap()
                .len()
        })
        .sum();
    let trades: Vec<_> = out.iter().filter_map(|e| e.as_trade()).collect();
    assert_eq!(trades.len(), expected_trades);
    assert!(trades
        .iter()
        .all(|t| t.instrument.as_str().starts_with("bybit:")));
    let books: Vec<_> = out
        .iter()
        .filter_map(|e| {
            if let MarketEvent::Book(b) = e {
                Some(b)
            } else {
                None
            }
        })
        .collect();
    assert!(books.len() > 500, "{}", books.len());
    assert!(books.iter().all(|b| b.bid_price < b.ask_price));
    let lives = out
        .iter()
        .filter(|e| matches!(e, MarketEvent::Status(s) if s.state == FeedState::Live))
        .count();
    assert_eq!(lives, 2);

    // A lost delta is a gap: Resyncing, then a re-subscription brings a new snapshot.
    let mut c = codec(Venue::Bybit, &pairs(&["BTC/USDT", "ETH/USDT"]), 200).unwrap();
    c.on_connect();
    let mut out = vec![];
    let mut skipped = false;
    let mut resync = None;
    for (ts, f) in &frames {
        if !skipped && f.contains("orderbook.200.BTCUSDT") && f.contains("\"delta\"") {
            skipped = true;
            continue;
        }
        if let Control::Resync(b) = c.on_message(f, *ts, &mut out).unwrap() {
            resync = Some(b);
            break;
        }
    }
    let b = resync.expect("gap detected");
    assert_eq!(b[0].as_str(), "bybit:BTC/USDT");
    let re = c.resubscribe_messages(&b);
    assert!(re[0].contains("unsubscribe") && re[1].contains("\"subscribe\""));
    assert!(re[1].contains("orderbook.200.BTCUSDT") && !re[1].contains("publicTrade"));
}

#[test]
fn hyperliquid_trades_keep_buyer_and_seller() {
    let data = require_data!();
    let raw = std::fs::read_to_string(
        data.join("hyperliquid/praanaavvv_liquidity_console/ws_trades_BTC.json"),
    )
    .unwrap();
    let items: Vec<serde_json::Value> = serde_json::from_str(&raw).unwrap();
    let mut c = codec(Venue::Hyperliquid, &pairs(&["BTC/USDC", "DYDX/USDC"]), 20).unwrap();
    let mut out = vec![];
    for chunk in items.chunks(7) {
        let frame = serde_json::json!({"channel": "trades", "data": chunk}).to_string();
        c.on_message(&frame, 0, &mut out).unwrap();
    }
    let trades: Vec<_> = out.iter().filter_map(|e| e.as_trade()).collect();
    assert_eq!(trades.len(), 50);
    let t = trades[0];
    assert_eq!(t.instrument.as_str(), "hyperliquid:BTC/USDC");
    assert_eq!(t.aggressor, Side::Sell); // side "A"
    assert_eq!(t.price, rust_decimal::Decimal::from(84133));
    let u = t.users.as_ref().unwrap();
    assert_eq!(u.buyer, "0xbb160cb61e694570f9d570f9fcde7c61dd2143ad");
    assert_eq!(u.seller, "0x48314750d70312eddf7e6b6b7c2852773727839a");
    let wallets: std::collections::HashSet<&str> = trades
        .iter()
        .flat_map(|t| {
            let u = t.users.as_ref().unwrap();
            [u.buyer.as_str(), u.seller.as_str()]
        })
        .collect();
    assert_eq!(wallets.len(), 57, "README: 57 distinct wallets");

    let l2: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            data.join("hyperliquid/python_sdk_cassettes/json/test_get_l2_snapshot_1.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut book = l2["response"].clone();
    book["time"] = serde_json::json!(1689630204000i64);
    let frame = serde_json::json!({"channel": "l2Book", "data": book}).to_string();
    out.clear();
    c.on_message(&frame, 0, &mut out).unwrap();
    let MarketEvent::Book(top) = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!(top.instrument.as_str(), "hyperliquid:DYDX/USDC");
    assert_eq!(
        top.bid_price.to_string(),
        l2["response"]["levels"][0][0]["px"].as_str().unwrap()
    );
    assert_eq!(
        top.ask_price.to_string(),
        l2["response"]["levels"][1][0]["px"].as_str().unwrap()
    );
    assert!(matches!(&out[1], MarketEvent::Status(s) if s.state == FeedState::Live));
    assert_eq!(
        c.on_message(r#"{"channel":"pong"}"#, 0, &mut out).unwrap(),
        Control::Pong
    );
}

#[test]
fn malformed_frames_are_errors_not_panics() {
    for venue in [Venue::Binance, Venue::Bybit, Venue::Hyperliquid] {
        let mut c = codec(venue, &pairs(&["BTC/USDT"]), 50).unwrap();
        let mut out = vec![];
        for junk in ["", "not json", "{", "[1,2]", "{\"data\":{\"e\":\"aggTrade\",\"s\":\"BTCUSDT\"}}",
            "{\"topic\":\"publicTrade.BTCUSDT\",\"data\":[{\"T\":1}]}", "{\"channel\":\"trades\",\"data\":[{}]}",
            "{\"stream\":\"btcusdt@aggTrade\",\"data\":{\"e\":\"aggTrade\",\"s\":\"BTCUSDT\",\"p\":\"-1\",\"q\":\"1\",\"T\":1,\"m\":true}}"] {
            let r = c.on_message(junk, 0, &mut out);
            assert!(r.is_err() || r == Ok(Control::None), "{venue:?} {junk:?} → {r:?}");
        }
        assert!(out.is_empty(), "{venue:?}: junk produced events {out:?}");
    }
}

#[test]
fn bybit_trade_scanner_equals_the_serde_path_on_every_real_message() {
    let data = require_data!();
    let mut frames = v3_frames(
        &data.join("cryptofeed_ws_captures/BYBIT_v3_2026.jsonl.gz"),
        "BYBIT.ws.2",
    );
    frames.extend(v3_frames(
        &data.join("cryptofeed_ws_captures/BYBIT_v3_2026.jsonl.gz"),
        "BYBIT.ws.3",
    ));
    let pairs = pairs(&["BTC/USDT", "ETH/USDT", "SOL/USDT", "DOGE/USDT"]);
    let c = smartflow::feeds::venues::bybit::BybitCodec::new(&pairs, 50).unwrap();
    let mut n = 0;
    for (_, f) in frames
        .iter()
        .filter(|(_, f)| f.starts_with("{\"topic\":\"publicTrade."))
    {
        let mut fast = vec![];
        assert_eq!(
            c.scan_trades(f, &mut fast),
            Some(Ok(())),
            "scanner refused {f}"
        );
        // The general path: the same frame with a key order the scanner's caller never sees first.
        let v: serde_json::Value = serde_json::from_str(f).unwrap();
        let mut slow = vec![];
        let mut c2 = smartflow::feeds::venues::bybit::BybitCodec::new(&pairs, 50).unwrap();
        use smartflow::feeds::venues::VenueCodec;
        let reordered = serde_json::json!({"ts": v["ts"], "type": v["type"], "topic": v["topic"], "data": v["data"]}).to_string();
        c2.on_message(&reordered, 0, &mut slow).unwrap();
        assert_eq!(fast, slow, "{f}");
        n += fast.len();
    }
    assert_eq!(n, 347, "every real trade");
    // Escapes or odd shapes make the scanner step aside, never guess.
    let mut out = vec![];
    assert_eq!(
        c.scan_trades(
            r#"{"topic":"publicTrade.BTCUSDT","data":[{"T":1,"s":"BTC\u0055SDT"}]}"#,
            &mut out
        ),
        None
    );
    assert_eq!(
        c.scan_trades(r#"{"topic":"publicTrade.BTCUSDT","data":{}}"#, &mut out),
        None
    );
}

#[test]
fn hyperliquid_asset_contexts_give_marks_and_funding_at_receive_time() {
    let data = require_data!();
    let frame = std::fs::read_to_string(
        data.join("hyperliquid/bytex_live_payloads/ws_activeAssetCtx_BTC.json"),
    )
    .unwrap();
    let mut c = codec(Venue::Hyperliquid, &pairs(&["BTC/USDC"]), 20).unwrap();
    assert!(c
        .subscribe_messages()
        .iter()
        .any(|m| m.contains("\"activeAssetCtx\"")));
    let mut out = vec![];
    c.on_message(frame.trim(), 1_790_000_000_123, &mut out)
        .unwrap();
    let [MarketEvent::Mark(m)] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(m.instrument.as_str(), "hyperliquid:BTC/USDC");
    assert_eq!(
        m.ts_ms, 1_790_000_000_123,
        "the payload has no time: receive time"
    );
    assert_eq!(m.mark_price.to_string(), "83757.0");
    assert_eq!(m.oracle_price.to_string(), "83778.1");
    assert_eq!(m.funding_rate.to_string(), "0.0000125");
}

/// A hostile Bybit book snapshot with `u` = u64::MAX: the next delta is a gap (resync), not an
/// integer overflow (a panic in debug builds, a wrap that could accept any delta in release).
#[test]
fn a_maximal_update_id_is_a_gap_not_an_overflow() {
    let mut c = codec(Venue::Bybit, &pairs(&["BTC/USDT"]), 50).unwrap();
    c.on_connect();
    let mut out = Vec::new();
    let frame = |kind: &str, u: u64| {
        serde_json::json!({"topic": "orderbook.50.BTCUSDT", "type": kind, "ts": 1,
            "data": {"s": "BTCUSDT", "b": [["100", "1"]], "a": [["101", "1"]], "u": u, "seq": 1}})
        .to_string()
    };
    c.on_message(&frame("snapshot", u64::MAX), 1, &mut out)
        .unwrap();
    out.clear();
    let ctl = c.on_message(&frame("delta", 5), 2, &mut out).unwrap();
    assert!(matches!(ctl, Control::Resync(_)), "{ctl:?}");
    assert!(matches!(&out[0], MarketEvent::Status(s) if s.state == FeedState::Resyncing));
}

/// Found by `smartflow fuzz`: venue event times outside 1970..2100 (and a funding rate beyond the
/// venue cap) passed the codecs and would have moved the event clocks for good.
#[test]
fn absurd_event_times_and_funding_are_malformed_in_every_codec() {
    let cases = [
        (
            Venue::Binance,
            "NKN/USDT",
            r#"{"stream":"nknusdt@aggTrade","data":{"e":"aggTrade","E":1,"s":"NKNUSDT","a":1,"p":"0.35","q":"1","f":1,"l":1,"T":-1,"m":true}}"#,
        ),
        (
            Venue::Binance,
            "NKN/USDT",
            r#"{"stream":"nknusdt@trade","data":{"e":"trade","E":4102444800001,"s":"NKNUSDT","t":1,"p":"0.35","q":"1","T":1633998512068,"m":true}}"#,
        ),
        (
            Venue::Bybit,
            "BTC/USDT",
            r#"{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1786310847618,"data":[{"T":4102444800001,"s":"BTCUSDT","S":"Sell","v":"1","p":"77.2","i":"x","BT":false}]}"#,
        ),
        (
            Venue::Bybit,
            "BTC/USDT",
            r#"{"topic":"orderbook.50.BTCUSDT","type":"snapshot","ts":-5,"data":{"s":"BTCUSDT","b":[["1","1"]],"a":[["2","1"]],"u":1}}"#,
        ),
        (
            Venue::Hyperliquid,
            "BTC/USDC",
            r#"{"channel":"trades","data":[{"coin":"BTC","side":"B","px":"1","sz":"1","time":-9223372036854775808,"tid":1}]}"#,
        ),
        (
            Venue::Hyperliquid,
            "BTC/USDC",
            r#"{"channel":"l2Book","data":{"coin":"BTC","time":253402300800000,"levels":[[{"px":"1","sz":"1","n":1}],[{"px":"2","sz":"1","n":1}]]}}"#,
        ),
        (
            Venue::Hyperliquid,
            "BTC/USDC",
            r#"{"channel":"activeAssetCtx","data":{"coin":"BTC","ctx":{"funding":"18446744073709551616","markPx":"1","oraclePx":"1"}}}"#,
        ),
    ];
    for (venue, pair, frame) in cases {
        let mut c = codec(venue, &pairs(&[pair]), 50).unwrap();
        c.on_connect();
        let mut out = Vec::new();
        let r = c.on_message(frame, 1_700_000_000_000, &mut out);
        assert!(
            r.is_err() && out.is_empty(),
            "{venue:?} took {frame}: {r:?} {out:?}"
        );
    }
}
