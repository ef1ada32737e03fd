//! Targets for data files: every format `replay` reads (through the same format detection and
//! time check), gzip streams, and the JSON-array splitter under the JSON readers. Seeds are the
//! first rows of real files from the shared data.

use super::{check, Harness, Outcome, Target};
use crate::feeds::json_array::{Element, JsonArrayStream, MAX_ELEMENT};
use crate::feeds::recording::RecordingHeader;
use crate::feeds::{decoded, open_reader, source_from_reader};
use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::io::{BufRead, Write};
use std::path::Path;

/// Items a file may yield per input byte before the reader is said not to end (a recording
/// frame can hold many trades, so allow plenty).
const MAX_ITEMS_PER_BYTE: usize = 64;

pub fn targets(data: &Path) -> Result<Vec<Target>> {
    let csv = head_lines(data, "binance_pumps/trades/ADX_2019-07-05_17.00.csv.gz", 40)?;
    let capture = capture_trades(data)?;
    let freqtrade = head_array(data, "freqtrade/XRP_ETH-trades.json.gz", 40)?;
    let hl_trades = head_array(
        data,
        "hyperliquid/praanaavvv_liquidity_console/ws_trades_BTC.json",
        40,
    )?;
    let mut gz = Vec::new();
    for s in [&csv, &capture] {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(s)?;
        gz.push(e.finish()?);
    }
    let recording = recording(data)?;
    let file = |name, seeds: Vec<Vec<u8>>| Target {
        name,
        seeds,
        make: Box::new(|| Box::new(FileHarness)),
    };
    Ok(vec![
        file("file_binance_csv", vec![csv]),
        file("file_binance_ws_capture", vec![capture]),
        file("file_freqtrade_json", vec![freqtrade.clone()]),
        file("file_hyperliquid_trades", vec![hl_trades.clone()]),
        file("file_recording", vec![recording]),
        file("file_gzip", gz),
        Target {
            name: "json_array",
            seeds: vec![freqtrade, hl_trades],
            make: Box::new(|| Box::new(ArrayHarness)),
        },
    ])
}

fn head_lines(data: &Path, rel: &str, n: usize) -> Result<Vec<u8>> {
    let r = open_reader(&data.join(rel)).with_context(|| format!("fuzz seeds: {rel}"))?;
    let mut out = Vec::new();
    for l in r.lines().take(n) {
        out.extend_from_slice(l?.as_bytes());
        out.push(b'\n');
    }
    Ok(out)
}

/// The capture's header line and its first 30 trade frames.
fn capture_trades(data: &Path) -> Result<Vec<u8>> {
    let all = head_lines(
        data,
        "cryptofeed_ws_captures/BINANCE.ws.1.0.txt.gz",
        usize::MAX,
    )?;
    let text = String::from_utf8_lossy(&all);
    let mut lines = text.lines();
    let mut out: Vec<&str> = lines.next().into_iter().collect();
    out.extend(lines.filter(|l| l.contains("aggTrade\",")).take(30));
    Ok((out.join("\n") + "\n").into_bytes())
}

fn head_array(data: &Path, rel: &str, n: usize) -> Result<Vec<u8>> {
    let r = open_reader(&data.join(rel)).with_context(|| format!("fuzz seeds: {rel}"))?;
    let v: Vec<Value> = serde_json::from_reader(r)?;
    Ok(serde_json::to_vec(&v[..v.len().min(n)])?)
}

/// A `smartflow record` file of real frames: Binance (with a snapshot derived from its first
/// diff), Bybit and Hyperliquid.
fn recording(data: &Path) -> Result<Vec<u8>> {
    let pairs = |p: &str| vec![p.to_string()];
    let header = RecordingHeader {
        smartflow_recording: 1,
        started_ms: 1_633_998_511_000,
        venues: [
            ("binance".to_string(), pairs("NKN/USDT")),
            ("bybit".to_string(), pairs("BTC/USDT")),
            ("hyperliquid".to_string(), pairs("BTC/USDC")),
        ]
        .into(),
        book_depth: [("bybit".to_string(), 50)].into(),
    };
    let mut lines = vec![serde_json::to_string(&header)?];
    let frame = |venue: &str, kind: &str, inst: Option<&str>, data: &str| {
        json!({"venue": venue, "recv_ms": 1_633_998_512_000i64, "kind": kind,
            "instrument": inst, "data": data})
        .to_string()
    };
    for v in ["binance", "bybit", "hyperliquid"] {
        lines.push(frame(v, "connect", None, ""));
    }
    let bin = super::codecs::binance_frames(data)?;
    let nkn: Vec<&String> = bin
        .iter()
        .filter(|f| f.contains("NKNUSDT"))
        .take(12)
        .collect();
    let nkn_book = crate::domain::Instrument::new("binance:NKN/USDT");
    let snaps = super::codecs::binance_snapshots(&bin);
    if let Some((i, snap)) = snaps.iter().find(|(i, _)| *i == nkn_book) {
        lines.push(frame("binance", "snapshot", Some(i.as_str()), snap));
    }
    for f in nkn {
        lines.push(frame("binance", "ws", None, f));
    }
    let hl =
        std::fs::read_to_string(data.join("hyperliquid/bytex_live_payloads/ws_trades_BTC.json"))?;
    lines.push(frame("hyperliquid", "ws", None, &hl));
    let status = r#"{"state":"reconnecting","reason":"socket closed"}"#;
    lines.push(frame("bybit", "status", None, status));
    Ok((lines.join("\n") + "\n").into_bytes())
}

/// One data file, read the way `replay` reads it, to the end. Its name is a freqtrade one (the
/// pair comes from it); the other formats ignore it.
struct FileHarness;

const FILE_NAME: &str = "XRP_ETH-trades.json";

impl Harness for FileHarness {
    fn feed(&mut self, input: &[u8]) -> Outcome {
        let reader = match decoded(Box::new(std::io::Cursor::new(input.to_vec()))) {
            Ok(r) => r,
            Err(e) => return Outcome::Rejected(format!("read error: {e}")),
        };
        let mut src = match source_from_reader(reader, FILE_NAME.into()) {
            Ok(s) => s,
            Err(e) => {
                let e = e.to_string();
                return Outcome::Rejected(
                    e.trim_start_matches(FILE_NAME)
                        .trim_start_matches(": ")
                        .into(),
                );
            }
        };
        let (mut events, mut first_bad) = (0, None);
        let limit = (input.len() + 1) * MAX_ITEMS_PER_BYTE;
        for n in 0.. {
            if n > limit {
                return Outcome::Violation(format!("reader still going after {n} items"));
            }
            match src.next_item() {
                None => break,
                Some(Ok(e)) => match check::event(&e) {
                    Ok(()) => events += 1,
                    Err(v) => return Outcome::Violation(v),
                },
                Some(Err(m)) => {
                    first_bad.get_or_insert(m.reason);
                }
            }
        }
        match first_bad {
            Some(r) => Outcome::Rejected(r),
            None => Outcome::Accepted { events },
        }
    }
}

/// The array splitter: it ends, keeps no element above its cap, and on a well-formed array
/// yields exactly the array's elements.
struct ArrayHarness;

impl Harness for ArrayHarness {
    fn feed(&mut self, input: &[u8]) -> Outcome {
        let mut s = JsonArrayStream::new(input);
        let (mut items, mut error) = (Vec::new(), None);
        while let Some(e) = s.next_element() {
            match e {
                Element::Item(b, _) if b.len() > MAX_ELEMENT => {
                    return Outcome::Violation(format!("element of {} bytes held", b.len()))
                }
                Element::Item(b, _) => items.push(b),
                Element::Error(r, _) => {
                    error.get_or_insert(r);
                }
            }
            if items.len() > input.len() + 1 {
                return Outcome::Violation("more elements than bytes".into());
            }
        }
        if let Ok(whole) = serde_json::from_slice::<Vec<&serde_json::value::RawValue>>(input) {
            let same = whole.len() == items.len()
                && whole
                    .iter()
                    .zip(&items)
                    .all(|(w, i)| w.get().as_bytes() == i.trim_ascii());
            if !same && whole.iter().all(|w| w.get().len() <= MAX_ELEMENT) {
                return Outcome::Violation(format!(
                    "a valid array of {} elements split into {} ({error:?})",
                    whole.len(),
                    items.len()
                ));
            }
        }
        match error {
            Some(r) => Outcome::Rejected(r),
            None => Outcome::Accepted {
                events: items.len(),
            },
        }
    }
}
