//! Session tapes: the exact input of a `paper` session (decoded market events and operator
//! commands, in the order the pipeline took them), so `smartflow replay --data TAPE` reproduces
//! the session's decision log byte for byte.
//!
//! JSONL, one line per input, flushed after every batch (a `kill -9` loses at most the batch the
//! pipeline had not taken yet). Line 1 is a [`TapeHeader`] with the session's id prefix and the
//! broker and risk state it started from; then `{"e": MarketEvent}` or `{"c": CommandEvent}`.

use crate::control::CommandEvent;
use crate::domain::MarketEvent;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};
use std::path::Path;

/// First line of a tape.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TapeHeader {
    /// Format version (1).
    pub smartflow_tape: u32,
    pub session: u64,
    /// Prefix of the session's decision ids (`p1-`).
    pub id_prefix: String,
    /// Broker state (JSON) the session resumed, if any.
    #[serde(default)]
    pub broker: Option<serde_json::Value>,
    /// Risk manager state (JSON) the session resumed, if any.
    #[serde(default)]
    pub risk: Option<serde_json::Value>,
    /// Instrument specs the session traded with (config and venue metadata).
    #[serde(default)]
    pub specs: std::collections::BTreeMap<String, crate::domain::spec::InstrumentSpec>,
}

/// One input of the session.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum TapeItem {
    #[serde(rename = "e")]
    Event(MarketEvent),
    #[serde(rename = "c")]
    Command(CommandEvent),
}

pub struct TapeWriter {
    out: std::io::BufWriter<std::fs::File>,
}

impl TapeWriter {
    pub fn create(path: &Path, header: &TapeHeader) -> Result<Self> {
        let f = std::fs::File::create(path)
            .with_context(|| format!("cannot create the tape {}", path.display()))?;
        let mut w = Self {
            out: std::io::BufWriter::new(f),
        };
        serde_json::to_writer(&mut w.out, header)?;
        w.out.write_all(b"\n")?;
        w.out.flush()?;
        Ok(w)
    }

    /// Appends a batch of events and flushes.
    pub fn events(&mut self, events: &[MarketEvent]) -> Result<()> {
        for e in events {
            self.out.write_all(b"{\"e\":")?;
            serde_json::to_writer(&mut self.out, e)?;
            self.out.write_all(b"}\n")?;
        }
        Ok(self.out.flush()?)
    }

    pub fn command(&mut self, c: &CommandEvent) -> Result<()> {
        serde_json::to_writer(&mut self.out, &TapeItem::Command(c.clone()))?;
        self.out.write_all(b"\n")?;
        Ok(self.out.flush()?)
    }
}

/// The first bytes of a tape: its header's first key.
const TAPE_MAGIC: &[u8] = b"{\"smartflow_tape\"";

/// Whether a freshly opened reader ([`crate::feeds::open_reader`]) starts like a tape. Peeks at
/// the buffered head and consumes nothing, so the same reader goes on to
/// [`TapeReader::from_reader`] or a trade source (one open and one inflate per file).
pub fn starts_like_tape(r: &mut dyn BufRead) -> std::io::Result<bool> {
    Ok(r.fill_buf()?.starts_with(TAPE_MAGIC))
}

/// Reads a tape: the header, then the items. A torn last line (the session was killed while
/// writing it) ends the tape; any other bad line is an error naming the line.
pub struct TapeReader {
    reader: Box<dyn BufRead + Send>,
    name: String,
    line: u64,
    pub header: TapeHeader,
}

impl TapeReader {
    pub fn open(path: &Path) -> Result<Self> {
        let name = path.display().to_string();
        Self::from_reader(crate::feeds::open_reader(path)?, name)
    }

    /// [`Self::open`] of a reader already open (and not yet read) on the tape named `name`.
    pub fn from_reader(mut reader: Box<dyn BufRead + Send>, name: String) -> Result<Self> {
        let mut first = String::new();
        reader.read_line(&mut first)?;
        let header: TapeHeader =
            serde_json::from_str(&first).with_context(|| format!("{name}: bad tape header"))?;
        if header.smartflow_tape != 1 {
            bail!(
                "{name}: tape format {} is not supported",
                header.smartflow_tape
            );
        }
        Ok(Self {
            reader,
            name,
            line: 1,
            header,
        })
    }

    /// The next item; `None` at the end.
    pub fn next_item(&mut self) -> Result<Option<TapeItem>> {
        let mut buf = String::new();
        if self.reader.read_line(&mut buf)? == 0 {
            return Ok(None);
        }
        self.line += 1;
        if !buf.ends_with('\n') {
            tracing::warn!("{}: torn last line {} ignored", self.name, self.line);
            return Ok(None);
        }
        serde_json::from_str(&buf)
            .map(Some)
            .with_context(|| format!("{}: line {}: not a tape item", self.name, self.line))
    }
}
