//! Readers for recorded market data and (later) live venue parsers.
//!
//! Every reader streams: a file is decoded as it is read (gzip or plain), never loaded whole.
//! A malformed line becomes a [`Malformed`] record (file, line, reason) and the stream goes on.

pub mod binance_csv;
pub mod binance_ws;
pub mod book;
pub mod config;
pub mod decimal;
pub mod freqtrade;
pub mod hyperliquid_info;
pub mod hyperliquid_trades;
pub mod hyperliquid_user_fills;
pub mod json_array;
pub mod merge;
pub mod recording;
pub mod rest;
pub mod tape;
pub mod universe;
pub mod venues;
pub mod ws;

use crate::domain::MarketEvent;
use anyhow::{bail, Context, Result};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// A line that could not be parsed. `line` is 1-based; 0 when the position is unknown.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Malformed {
    pub file: String,
    pub line: u64,
    pub reason: String,
}

/// One item of a market-data stream.
pub type SourceItem = std::result::Result<MarketEvent, Malformed>;

/// Latest event time accepted (2100-01-01, Unix ms); the earliest is 0. Outside, a time is
/// malformed: event clocks take differences of times, and an extreme one would overflow them.
pub const MAX_EVENT_TS_MS: i64 = 4_102_444_800_000;

/// Whether `ts_ms` is a plausible event time (1970 ..= 2100).
pub fn ts_in_range(ts_ms: i64) -> bool {
    (0..=MAX_EVENT_TS_MS).contains(&ts_ms)
}

/// `ms` when it is a plausible venue event time, else an error saying why.
pub fn event_ms(ms: i64) -> std::result::Result<i64, String> {
    match ts_in_range(ms) {
        true => Ok(ms),
        false => Err(format!("event time {ms} ms is outside 1970..2100")),
    }
}

/// Serde `deserialize_with` for a venue event time (Unix ms), refused outside 1970..2100: one
/// absurd time would advance the event clocks for good.
pub fn de_event_ms<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<i64, D::Error> {
    event_ms(serde::Deserialize::deserialize(d)?).map_err(serde::de::Error::custom)
}

/// [`de_event_ms`] for an optional field (use with `#[serde(default)]`).
pub fn de_opt_event_ms<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<i64>, D::Error> {
    let ms: Option<i64> = serde::Deserialize::deserialize(d)?;
    ms.map(event_ms)
        .transpose()
        .map_err(serde::de::Error::custom)
}

/// A source whose events with an implausible time become malformed items.
struct TimeChecked(Box<dyn TradeSource>);

impl TradeSource for TimeChecked {
    fn next_item(&mut self) -> Option<SourceItem> {
        Some(match self.0.next_item()? {
            Ok(e) => match event_ms(e.ts_ms()) {
                Ok(_) => Ok(e),
                Err(reason) => Err(Malformed {
                    file: self.0.name().to_string(),
                    line: 0,
                    reason,
                }),
            },
            item => item,
        })
    }
    fn name(&self) -> &str {
        self.0.name()
    }
}

/// A streaming source of market events (trades; books and feed status for recordings), in file
/// order.
pub trait TradeSource: Send {
    /// Next event, a malformed record, or `None` at the end of the file.
    fn next_item(&mut self) -> Option<SourceItem>;
    /// Human-readable name (the path).
    fn name(&self) -> &str;
}

/// File formats the replay understands, detected from the file's first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// ccxt CSV `symbol,timestamp,datetime,side,price,amount,btc_volume` (La Morgia downloader).
    BinanceCsv,
    /// freqtrade `[[ts_ms, id, order, side, price, amount, cost], …]`.
    FreqtradeJson,
    /// cryptofeed capture `<recv_ts>: <json>` of Binance websocket messages (`aggTrade`, `trade`).
    BinanceWsCapture,
    /// A `smartflow record` session: JSONL of raw venue frames with receive times.
    Recording,
    /// Hyperliquid websocket `trades` items `[{"coin", "px", "sz", "time", "tid", "users"}, …]`.
    HyperliquidTrades,
    /// Hyperliquid `userFills` websocket frames, one per line (a wallet's own fills).
    HyperliquidUserFills,
}

const DATA_SUFFIXES: &[&str] = &[
    ".csv",
    ".csv.gz",
    ".json",
    ".json.gz",
    ".txt",
    ".txt.gz",
    ".jsonl",
    ".jsonl.gz",
];

/// Expands `--data` arguments (files, folders, globs) into a sorted, de-duplicated list of files.
/// Folders are searched recursively for data suffixes (`.csv[.gz]`, `.json[.gz]`, `.txt[.gz]`,
/// `.jsonl[.gz]`). Errors when an argument matches nothing.
pub fn expand_paths(specs: &[String]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for spec in specs {
        let p = Path::new(spec);
        let before = out.len();
        if p.is_dir() {
            collect_dir(p, &mut out)?;
        } else if p.is_file() {
            out.push(p.to_path_buf());
        } else {
            for entry in glob::glob(spec).with_context(|| format!("bad glob pattern {spec:?}"))? {
                let e = entry?;
                if e.is_dir() {
                    collect_dir(&e, &mut out)?;
                } else {
                    out.push(e);
                }
            }
        }
        if out.len() == before {
            bail!("--data {spec:?} matches no data file");
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn collect_dir(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read folder {}", dir.display()))?
        .collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let path = e.path();
        if path.is_dir() {
            collect_dir(&path, out)?;
        } else {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if DATA_SUFFIXES.iter().any(|s| name.ends_with(s)) {
                out.push(path);
            }
        }
    }
    Ok(())
}

/// Opens a file as a buffered byte stream, gunzipping when it starts with the gzip magic.
pub fn open_reader(path: &Path) -> Result<Box<dyn BufRead + Send>> {
    let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(decoded(Box::new(f))?)
}

/// Bytes of decoded (gunzipped) input buffered at a time.
const DECODED_BUFFER: usize = 16 * 1024;

/// A buffered byte stream of `r`, gunzipped when it starts with the gzip magic. The stream
/// ends after its first read error (reported once by the reader on top).
pub fn decoded(r: Box<dyn Read + Send>) -> std::io::Result<Box<dyn BufRead + Send>> {
    let mut r = BufReader::with_capacity(128 * 1024, r);
    if r.fill_buf()?.starts_with(&[0x1f, 0x8b]) {
        let gz = flate2::read::MultiGzDecoder::new(r);
        // Small: the format check at open inflates one buffer of every file (a replay opens
        // them all before the first event; 128 KB each cost ~40 ms on the dev set's 136).
        Ok(Box::new(EndOnError::new(BufReader::with_capacity(
            DECODED_BUFFER,
            gz,
        ))))
    } else {
        Ok(Box::new(EndOnError::new(r)))
    }
}

/// A reader that reports its first I/O error and then ends: a corrupt gzip stream fails on
/// every read at the same place, and a reader that retried would loop for ever.
struct EndOnError<R> {
    inner: R,
    failed: bool,
}

impl<R> EndOnError<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            failed: false,
        }
    }
}

impl<R: BufRead> Read for EndOnError<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = {
            let avail = self.fill_buf()?;
            let n = avail.len().min(buf.len());
            buf[..n].copy_from_slice(&avail[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for EndOnError<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.failed {
            return Ok(&[]);
        }
        match self.inner.fill_buf() {
            // Asked twice: returning the first borrow from inside the match does not pass the
            // borrow checker; the second call only hands back the filled buffer.
            Ok(_) => self.inner.fill_buf(),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }
    fn consume(&mut self, n: usize) {
        if !self.failed {
            self.inner.consume(n);
        }
    }
}

/// Detects the format from the first bytes of the decoded stream (without consuming them).
pub fn detect_format(reader: &mut dyn BufRead, name: &str) -> Result<Format> {
    let head = reader.fill_buf()?;
    let head = String::from_utf8_lossy(&head[..head.len().min(512)]);
    let first_line = head.lines().next().unwrap_or("");
    if first_line.starts_with("{\"smartflow_recording\"") {
        Ok(Format::Recording)
    } else if first_line.starts_with("{\"channel\":\"userFills\"")
        || first_line.starts_with("{\"channel\":\"subscriptionResponse\"")
    {
        Ok(Format::HyperliquidUserFills)
    } else if first_line.starts_with("symbol,timestamp,datetime,side,price,amount") {
        Ok(Format::BinanceCsv)
    } else if head.trim_start().starts_with('[') {
        // `[[…` freqtrade rows, `[{…` Hyperliquid trade objects.
        let inner = head.trim_start()[1..].trim_start();
        Ok(match inner.starts_with('{') {
            true => Format::HyperliquidTrades,
            false => Format::FreqtradeJson,
        })
    } else if first_line.contains(" <-> ")
        || first_line
            .split_once(": {")
            .is_some_and(|(ts, _)| ts.parse::<f64>().is_ok())
    {
        Ok(Format::BinanceWsCapture)
    } else {
        bail!(
            "{name}: unknown data format (expected a Binance trades CSV, a freqtrade trades JSON, \
             Hyperliquid trades JSON, Hyperliquid userFills frames (JSONL), a cryptofeed Binance websocket capture or a smartflow \
             recording); first line: {:?}",
            first_line.chars().take(80).collect::<String>()
        )
    }
}

/// Opens one data file as a trade source, detecting its format; events timed outside
/// 1970..2100 come out as malformed items.
pub fn open_source(path: &Path) -> Result<Box<dyn TradeSource>> {
    source_from_reader(open_reader(path)?, path.display().to_string())
}

/// A trade source over a decoded stream named `name`, its format detected from the first
/// bytes; events timed outside 1970..2100 come out as malformed items.
pub fn source_from_reader(
    mut reader: Box<dyn BufRead + Send>,
    name: String,
) -> Result<Box<dyn TradeSource>> {
    let format = detect_format(&mut *reader, &name)?;
    let source: Box<dyn TradeSource> = match format {
        Format::BinanceCsv => Box::new(binance_csv::BinanceCsvSource::new(reader, name)?),
        Format::FreqtradeJson => Box::new(freqtrade::FreqtradeSource::new(reader, name)?),
        Format::BinanceWsCapture => Box::new(binance_ws::CaptureSource::new(reader, name)),
        Format::Recording => Box::new(recording::RecordingSource::new(reader, name)?),
        Format::HyperliquidTrades => Box::new(hyperliquid_trades::HyperliquidTradesSource::new(
            reader, name,
        )),
        Format::HyperliquidUserFills => {
            Box::new(hyperliquid_user_fills::UserFillsSource::new(reader, name))
        }
    };
    Ok(Box::new(TimeChecked(source)))
}

/// Folder of the shared data: `SMARTFLOW_DATA`, else `../shared/data` from the crate root.
pub fn shared_data_dir() -> PathBuf {
    std::env::var_os("SMARTFLOW_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"))
}
