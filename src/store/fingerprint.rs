//! What an interrupted replay ran on, so `replay --resume` refuses to continue it with other
//! inputs: the config (minus transport settings), the data files and the model.

use crate::config::{Config, ReplayConfig};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Bytes hashed at each end of a data file (with its length: cheap, and catches any edit that
/// changes the length or touches either end).
const END_BYTES: u64 = 1 << 20;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// sha256 of the config as JSON, `[replay]` transport settings reset (they change no decision).
    pub config: String,
    /// File name, length and sha256 of both ends, per data file in replay order.
    pub data: Vec<(String, u64, String)>,
    /// Model version and artifact hash (ensemble detector), or `rules`.
    pub model: String,
}

fn hex(d: impl AsRef<[u8]>) -> String {
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn file_print(p: &Path) -> Result<(String, u64, String)> {
    let mut f = std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?;
    let len = f.metadata()?.len();
    let mut h = Sha256::new();
    let mut buf = Vec::new();
    (&mut f).take(END_BYTES).read_to_end(&mut buf)?;
    if len > END_BYTES {
        f.seek(SeekFrom::Start(
            len.saturating_sub(END_BYTES).max(END_BYTES),
        ))?;
        f.read_to_end(&mut buf)?;
    }
    h.update(&buf);
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok((name, len, hex(h.finalize())))
}

impl Fingerprint {
    /// The data files' part (name, length, hash of both ends), per file in replay order: what
    /// reads the files, so a replay computes it while it opens its inputs and loads its model.
    pub fn data_of(paths: &[PathBuf]) -> Result<Vec<(String, u64, String)>> {
        paths.iter().map(|p| file_print(p)).collect()
    }

    /// The fingerprint of a run of `cfg` and `model` on data printed by [`Self::data_of`].
    pub fn with_data(
        cfg: &Config,
        data: Vec<(String, u64, String)>,
        model: String,
    ) -> Result<Self> {
        let mut c = cfg.clone();
        c.replay = ReplayConfig::default();
        let config = hex(Sha256::digest(serde_json::to_vec(&c)?));
        Ok(Self {
            config,
            data,
            model,
        })
    }

    /// Says what differs from `stored` (the interrupted run's), or `None` when nothing does.
    pub fn differs_from(&self, stored: &Fingerprint) -> Option<String> {
        if self.model != stored.model {
            return Some(format!(
                "the model differs (interrupted run: {}, now: {})",
                stored.model, self.model
            ));
        }
        if self.config != stored.config {
            return Some("the config differs from the interrupted run's".into());
        }
        if self.data.len() != stored.data.len() {
            return Some(format!(
                "the data set differs: {} files now, {} in the interrupted run",
                self.data.len(),
                stored.data.len()
            ));
        }
        for (a, b) in self.data.iter().zip(&stored.data) {
            if a != b {
                return Some(format!(
                    "the data set differs: {} now where the interrupted run read {} ({} bytes)",
                    a.0, b.0, b.1
                ));
            }
        }
        None
    }
}
