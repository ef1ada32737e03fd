//! Targets for what the venues send: websocket frames through each venue codec (with the state
//! a live session has: books synced, wallets subscribed), and the REST answers the session reads
//! (Binance depth snapshots, Hyperliquid `meta`, `clearinghouseState`, `userFillsByTime`).
//! Seeds are real captures from the shared data.

use super::{check, utf8, Harness, Outcome, Target};
use crate::domain::{Instrument, MarketEvent};
use crate::feeds::open_reader;
use crate::feeds::venues::{codec, hyperliquid::perp_specs, DepthSnapshot, Venue, VenueCodec};
use crate::wallets::tracker::positions::PositionPoller;
use crate::wallets::tracker::user_fills::UserFillsCodec;
use crate::wallets::tracker::TrackerCounters;
use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;

/// Receive time handed to the codecs (2026-01-01): inside every capture's plausible range.
const RECV_MS: i64 = 1_767_225_600_000;

const BINANCE_PAIRS: &[&str] = &["NKN/USDT", "BLZ/ETH", "LRC/BTC", "RUNE/EUR"];
const BYBIT_PAIRS: &[&str] = &["BTC/USDT", "ETH/USDT", "SOL/USDT", "DOGE/USDT"];
const HL_PAIRS: &[&str] = &["BTC/USDC", "ETH/USDC", "SOL/USDC"];

pub fn targets(data: &Path) -> Result<Vec<Target>> {
    let bin = binance_frames(data)?;
    let snaps = binance_snapshots(&bin);
    let hl = hyperliquid(data)?;
    let (fills, fill_bodies, user) = user_fills(data)?;
    let s2 = snaps.clone();
    Ok(vec![
        Target {
            name: "binance_ws",
            seeds: bytes(&bin),
            make: Box::new(move || Box::new(WsHarness::binance(&s2))),
        },
        Target {
            name: "binance_depth_snapshot",
            seeds: snaps.iter().map(|(_, s)| s.clone().into_bytes()).collect(),
            make: Box::new(|| Box::new(SnapshotHarness::new())),
        },
        Target {
            name: "bybit_ws",
            seeds: bytes(&bybit_frames(data)?),
            make: Box::new(|| Box::new(WsHarness::plain(Venue::Bybit, BYBIT_PAIRS))),
        },
        Target {
            name: "hyperliquid_ws",
            seeds: bytes(&hl),
            make: Box::new(|| Box::new(WsHarness::plain(Venue::Hyperliquid, HL_PAIRS))),
        },
        Target {
            name: "hyperliquid_user_fills_ws",
            seeds: bytes(&fills),
            make: Box::new({
                let user = user.clone();
                move || Box::new(UserFillsHarness::new(&user))
            }),
        },
        Target {
            name: "hyperliquid_user_fills_by_time",
            seeds: bytes(&fill_bodies),
            make: Box::new(move || Box::new(UserFillsHarness::new(&user))),
        },
        Target {
            name: "hyperliquid_clearinghouse_state",
            seeds: vec![read(
                data,
                "hyperliquid/bytex_live_payloads/info_clearinghouseState.json",
            )?],
            make: Box::new(|| Box::new(PositionsHarness(PositionPoller::new(&["0xabc".into()])))),
        },
        Target {
            name: "hyperliquid_meta",
            seeds: vec![read(
                data,
                "hyperliquid/bytex_live_payloads/info_meta_first6.json",
            )?],
            make: Box::new(|| Box::new(MetaHarness)),
        },
    ])
}

fn bytes(v: &[String]) -> Vec<Vec<u8>> {
    v.iter().map(|s| s.as_bytes().to_vec()).collect()
}

fn read(data: &Path, rel: &str) -> Result<Vec<u8>> {
    std::fs::read(data.join(rel)).with_context(|| format!("fuzz seeds: cannot read {rel}"))
}

fn lines(data: &Path, rel: &str) -> Result<Vec<String>> {
    let r = open_reader(&data.join(rel)).with_context(|| format!("fuzz seeds: {rel}"))?;
    Ok(r.lines().collect::<std::io::Result<_>>()?)
}

/// Frames of the Binance capture (`<recv_ts>: <json>` lines of `BINANCE.ws.1.0.txt.gz`).
pub fn binance_frames(data: &Path) -> Result<Vec<String>> {
    let l = lines(data, "cryptofeed_ws_captures/BINANCE.ws.1.0.txt.gz")?;
    Ok(l.iter()
        .filter(|l| !l.contains(" <-> ") && !l.contains(" <- "))
        .filter_map(|l| l.split_once(": ").map(|(_, j)| j.to_string()))
        .collect())
}

/// Received frames of the Bybit v5 capture (`BYBIT_v3_2026.jsonl.gz`, every socket).
fn bybit_frames(data: &Path) -> Result<Vec<String>> {
    let l = lines(data, "cryptofeed_ws_captures/BYBIT_v3_2026.jsonl.gz")?;
    Ok(l.iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["t"] == "recv" && r["conn"].as_str().is_some_and(|c| c.contains(".ws.")))
        .filter_map(|r| r["data"].as_str().map(str::to_string))
        .collect())
}

/// For each Binance book, a depth snapshot just before its first diff in the capture (the
/// diff's own levels, `lastUpdateId` = its `U` − 1): derived from real data, so that the
/// capture's diffs apply on top of it.
pub fn binance_snapshots(frames: &[String]) -> Vec<(Instrument, String)> {
    let mut out: Vec<(Instrument, String)> = Vec::new();
    for f in frames {
        let Ok(v) = serde_json::from_str::<Value>(f) else {
            continue;
        };
        let d = &v["data"];
        let (Some(sym), Some(u)) = (d["s"].as_str(), d["U"].as_u64()) else {
            continue;
        };
        let Some(inst) = crate::feeds::binance_ws::split_symbol(sym) else {
            continue;
        };
        let inst = Instrument::new(&format!("binance:{}", inst.as_str()));
        if d["e"] == "depthUpdate" && !out.iter().any(|(i, _)| *i == inst) {
            let snap = json!({"lastUpdateId": u - 1, "bids": d["b"], "asks": d["a"]});
            out.push((inst, snap.to_string()));
        }
    }
    out
}

/// Hyperliquid frames: the recorded `trades` (with users), `l2Book`, `bbo`, `activeAssetCtx`
/// and candle messages, and the recorded BTC trades re-framed five at a time.
fn hyperliquid(data: &Path) -> Result<Vec<String>> {
    let dir = "hyperliquid/bytex_live_payloads";
    let mut frames = Vec::new();
    for f in [
        "ws_trades_BTC",
        "ws_bbo_BTC",
        "ws_activeAssetCtx_BTC",
        "ws_candle_BTC_1m",
    ] {
        frames.push(String::from_utf8_lossy(&read(data, &format!("{dir}/{f}.json"))?).into());
    }
    let trades: Vec<Value> = serde_json::from_slice(&read(
        data,
        "hyperliquid/praanaavvv_liquidity_console/ws_trades_BTC.json",
    )?)?;
    for c in trades.chunks(5).take(40) {
        frames.push(json!({"channel": "trades", "data": c}).to_string());
    }
    let l2: Value = serde_json::from_slice(&read(
        data,
        "hyperliquid/python_sdk_cassettes/json/test_get_l2_snapshot_1.json",
    )?)?;
    let mut book = l2["response"].clone();
    book["time"] = json!(1_790_231_124_000i64);
    book["coin"] = json!("BTC");
    frames.push(json!({"channel": "l2Book", "data": book}).to_string());
    frames.push(r#"{"channel":"subscriptionResponse","data":{"method":"subscribe"}}"#.into());
    frames.push(r#"{"channel":"pong"}"#.into());
    Ok(frames)
}

/// `userFills` frames and `userFillsByTime` answers of one wallet (the SDK's recorded fills;
/// those without a `tid` get their `oid` as one), and that wallet.
fn user_fills(data: &Path) -> Result<(Vec<String>, Vec<String>, String)> {
    let c: Value = serde_json::from_slice(&read(
        data,
        "hyperliquid/python_sdk_cassettes/json/test_get_user_fills.json",
    )?)?;
    let user = c["request"]["user"].as_str().unwrap_or("0x0").to_string();
    let mut fills: Vec<Value> = c["response"].as_array().cloned().unwrap_or_default();
    for f in &mut fills {
        if f.get("tid").is_none() {
            f["tid"] = f["oid"].clone();
        }
    }
    let mut frames = vec![json!({"channel": "userFills",
        "data": {"user": user, "isSnapshot": true, "fills": &fills[..fills.len().min(20)]}})
    .to_string()];
    for f in fills.iter().skip(20).take(60) {
        frames.push(
            json!({"channel": "userFills", "data": {"user": user, "fills": [f]}}).to_string(),
        );
    }
    let bodies = fills
        .chunks(10)
        .take(20)
        .map(|c| json!(c).to_string())
        .collect();
    Ok((frames, bodies, user))
}

/// One venue codec after a connect, fed frames as a live socket would.
struct WsHarness {
    codec: Box<dyn VenueCodec>,
    out: Vec<MarketEvent>,
}

impl WsHarness {
    fn plain(venue: Venue, pairs: &[&str]) -> Self {
        let pairs: Vec<String> = pairs.iter().map(|s| s.to_string()).collect();
        let mut codec = codec(venue, &pairs, 50).expect("fixed pairs");
        codec.on_connect();
        Self {
            codec,
            out: Vec::new(),
        }
    }

    /// Binance, its books synced from `snaps` as the REST snapshots would.
    fn binance(snaps: &[(Instrument, String)]) -> Self {
        let mut h = Self::plain(Venue::Binance, BINANCE_PAIRS);
        for (i, s) in snaps {
            if let Ok(snap) = serde_json::from_str::<DepthSnapshot>(s) {
                let _ = h.codec.apply_snapshot(i, &snap, RECV_MS, &mut h.out);
            }
        }
        h
    }
}

impl Harness for WsHarness {
    fn feed(&mut self, input: &[u8]) -> Outcome {
        // A text frame is UTF-8 by protocol: the socket layer refuses anything else.
        let text = match utf8(input) {
            Ok(t) => t,
            Err(o) => return o,
        };
        self.out.clear();
        let res = self.codec.on_message(text, RECV_MS, &mut self.out);
        check::outcome(res, &self.out)
    }
}

/// Binance depth snapshots (REST answers) applied to a connected codec.
struct SnapshotHarness(WsHarness);

impl SnapshotHarness {
    fn new() -> Self {
        Self(WsHarness::plain(Venue::Binance, BINANCE_PAIRS))
    }
}

impl Harness for SnapshotHarness {
    fn feed(&mut self, input: &[u8]) -> Outcome {
        let snap: DepthSnapshot = match serde_json::from_slice(input) {
            Ok(s) => s,
            Err(e) => return Outcome::Rejected(format!("bad snapshot: {e}")),
        };
        let h = &mut self.0;
        h.out.clear();
        let inst = Instrument::new("binance:NKN/USDT");
        let res = h.codec.apply_snapshot(&inst, &snap, RECV_MS, &mut h.out);
        check::outcome(res, &h.out)
    }
}

/// The wallet tracker's codec: frames of its socket, or a `userFillsByTime` answer (an input
/// that starts with `[`).
struct UserFillsHarness {
    codec: UserFillsCodec,
    user: String,
    out: Vec<MarketEvent>,
}

impl UserFillsHarness {
    fn new(user: &str) -> Self {
        let counters = Arc::new(TrackerCounters::default());
        let mut codec = UserFillsCodec::new(&[user.to_string()], counters);
        codec.on_connect();
        Self {
            codec,
            user: user.to_string(),
            out: Vec::new(),
        }
    }
}

impl Harness for UserFillsHarness {
    fn feed(&mut self, input: &[u8]) -> Outcome {
        let text = match utf8(input) {
            Ok(t) => t,
            Err(o) => return o,
        };
        self.out.clear();
        let res = match text.trim_start().starts_with('[') {
            true => {
                let req = json!({"type": "userFillsByTime", "user": self.user, "startTime": 0});
                self.codec.on_info(&req, text, &mut self.out).map(|_| ())
            }
            false => self
                .codec
                .on_message(text, RECV_MS, &mut self.out)
                .map(|_| ()),
        };
        check::outcome(res, &self.out)
    }
}

/// `clearinghouseState` answers of one polled wallet.
struct PositionsHarness(PositionPoller);

impl Harness for PositionsHarness {
    fn feed(&mut self, input: &[u8]) -> Outcome {
        let text = match utf8(input) {
            Ok(t) => t,
            Err(o) => return o,
        };
        match self.0.on_answer(0, text, RECV_MS) {
            Ok(ev) => check::outcome(Ok(()), &ev),
            Err(e) => Outcome::Rejected(e),
        }
    }
}

/// Hyperliquid `meta`: every instrument spec it yields must pass the spec's own validation.
struct MetaHarness;

impl Harness for MetaHarness {
    fn feed(&mut self, input: &[u8]) -> Outcome {
        let meta: Value = match serde_json::from_slice(input) {
            Ok(v) => v,
            Err(e) => return Outcome::Rejected(format!("bad JSON: {e}")),
        };
        match perp_specs(&meta) {
            Ok(specs) => match specs.iter().find_map(|(n, s)| s.validate(n).err()) {
                Some(e) => Outcome::Violation(format!("meta gave an invalid spec: {e}")),
                None => Outcome::Accepted {
                    events: specs.len(),
                },
            },
            Err(e) => Outcome::Rejected(e),
        }
    }
}
