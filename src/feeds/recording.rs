//! `smartflow record` files: raw venue frames with receive times, replayed through the same
//! venue codecs, so a live session can be replayed deterministically.
//!
//! JSONL (gzip when the name ends in `.gz`). Line 1 is a [`RecordingHeader`]; every further line
//! is a [`RawFrame`]: `ws` (a text frame), `snapshot` (a REST depth snapshot applied to a book),
//! `connect` (a (re)connection: books reset) or `status` (feed health: `{"state", "reason"}`).

use super::venues::{codec, DepthSnapshot, Venue, VenueCodec};
use super::ws::RawFrame;
use super::{Malformed, SourceItem, TradeSource};
use crate::domain::{FeedState, FeedStatus, Instrument, MarketEvent};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, Write};

/// First line of a recording.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RecordingHeader {
    /// Format version (1).
    pub smartflow_recording: u32,
    pub started_ms: i64,
    /// Venue → `BASE/QUOTE` pairs subscribed.
    pub venues: BTreeMap<String, Vec<String>>,
    /// Venue → book depth subscribed.
    pub book_depth: BTreeMap<String, usize>,
}

/// Writes a recording: the header, then one frame per line; flushes on drop.
pub struct RecordingWriter {
    out: Box<dyn Write + Send>,
    pub frames: u64,
}

impl RecordingWriter {
    pub fn create(path: &std::path::Path, header: &RecordingHeader) -> Result<Self> {
        let f = std::fs::File::create(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let buf = std::io::BufWriter::new(f);
        let mut out: Box<dyn Write + Send> = if path.extension().is_some_and(|e| e == "gz") {
            Box::new(flate2::write::GzEncoder::new(
                buf,
                flate2::Compression::default(),
            ))
        } else {
            Box::new(buf)
        };
        serde_json::to_writer(&mut out, header)?;
        out.write_all(b"\n")?;
        Ok(Self { out, frames: 0 })
    }
    pub fn write(&mut self, f: &RawFrame) -> Result<()> {
        serde_json::to_writer(&mut self.out, f)?;
        self.out.write_all(b"\n")?;
        self.frames += 1;
        Ok(())
    }
    /// Flushes and, for gzip, writes the trailer.
    pub fn finish(self) -> Result<()> {
        let mut out = self.out;
        out.flush()?;
        drop(out);
        Ok(())
    }
}

pub struct RecordingSource {
    reader: Box<dyn BufRead + Send>,
    name: String,
    line: u64,
    buf: String,
    codecs: BTreeMap<String, Box<dyn VenueCodec>>,
    pending: VecDeque<MarketEvent>,
}

impl RecordingSource {
    pub fn new(mut reader: Box<dyn BufRead + Send>, name: String) -> Result<Self> {
        let mut first = String::new();
        reader.read_line(&mut first)?;
        let h: RecordingHeader = serde_json::from_str(&first)
            .with_context(|| format!("{name}: bad recording header"))?;
        if h.smartflow_recording != 1 {
            bail!(
                "{name}: recording format {} is not supported",
                h.smartflow_recording
            );
        }
        let mut codecs = BTreeMap::new();
        for (v, pairs) in &h.venues {
            let venue = Venue::parse(v).with_context(|| format!("{name}: unknown venue {v:?}"))?;
            let depth = h.book_depth.get(v).copied().unwrap_or(50);
            codecs.insert(
                v.clone(),
                codec(venue, pairs, depth).map_err(anyhow::Error::msg)?,
            );
        }
        Ok(Self {
            reader,
            name,
            line: 1,
            buf: String::new(),
            codecs,
            pending: VecDeque::new(),
        })
    }

    fn frame(&mut self, f: RawFrame) -> Result<(), String> {
        let c = self
            .codecs
            .get_mut(&f.venue)
            .ok_or_else(|| format!("frame of venue {:?} not in the header", f.venue))?;
        let mut out = Vec::new();
        match f.kind.as_str() {
            "ws" => {
                c.on_message(&f.data, f.recv_ms, &mut out)?;
            }
            "snapshot" => {
                let i = Instrument::new(
                    f.instrument
                        .as_deref()
                        .ok_or("snapshot without instrument")?,
                );
                let snap: DepthSnapshot =
                    serde_json::from_str(&f.data).map_err(|e| format!("bad snapshot: {e}"))?;
                c.apply_snapshot(&i, &snap, f.recv_ms, &mut out)?;
            }
            "connect" => {
                c.on_connect();
            }
            "status" => {
                #[derive(Deserialize)]
                struct S {
                    state: FeedState,
                    reason: String,
                }
                let s: S = serde_json::from_str(&f.data).map_err(|e| format!("bad status: {e}"))?;
                let targets = match &f.instrument {
                    Some(i) => vec![Instrument::new(i)],
                    None => c.instruments(),
                };
                for i in targets {
                    out.push(MarketEvent::Status(FeedStatus {
                        ts_ms: f.recv_ms,
                        instrument: i,
                        state: s.state,
                        reason: s.reason.clone(),
                    }));
                }
            }
            k => return Err(format!("unknown frame kind {k:?}")),
        }
        self.pending.extend(out);
        Ok(())
    }
}

impl TradeSource for RecordingSource {
    fn next_item(&mut self) -> Option<SourceItem> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Some(Ok(e));
            }
            self.buf.clear();
            self.line += 1;
            match self.reader.read_line(&mut self.buf) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => {
                    return Some(Err(Malformed {
                        file: self.name.clone(),
                        line: self.line,
                        reason: format!("read error: {e}"),
                    }))
                }
            }
            if self.buf.trim().is_empty() {
                continue;
            }
            let r = serde_json::from_str::<RawFrame>(&self.buf)
                .map_err(|e| format!("bad frame: {e}"))
                .and_then(|f| self.frame(f));
            if let Err(reason) = r {
                return Some(Err(Malformed {
                    file: self.name.clone(),
                    line: self.line,
                    reason,
                }));
            }
        }
    }
    fn name(&self) -> &str {
        &self.name
    }
}
