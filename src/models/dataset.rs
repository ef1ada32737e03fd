//! Model rows of trade files: one [`EpisodeRows`] per instrument per file, with labels.

use super::labels::{base_name, Label, LabelConfig, PumpEvent};
use super::metrics::Episode;
use crate::domain::MarketEvent;
use crate::features::{ChunkConfig, ChunkEngine, ChunkRow, FeatureConfig, N_FEATURES};
use crate::strategies::detector::{self, DetectorConfig};
use anyhow::Result;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Rows of one instrument in one file, warm rows only, time-ordered.
#[derive(Clone, Debug, Default)]
pub struct EpisodeRows {
    pub ep: Episode,
    pub x: Vec<[f64; N_FEATURES]>,
    /// The spine's rule score (0–100) at each row.
    pub rule: Vec<f64>,
    pub price: Vec<f64>,
}

impl EpisodeRows {
    /// Row `i` as the streaming detector builds it (warm: only warm rows are kept).
    pub fn chunk_row(&self, i: usize) -> ChunkRow {
        ChunkRow {
            ts_ms: self.ep.ts[i],
            price: self.price[i],
            warm: true,
            x: self.x[i],
        }
    }
}

/// Rows of one file, trades read, malformed records.
type FileResult = Result<(Vec<EpisodeRows>, u64, u64)>;

/// What the row builder needs.
#[derive(Clone, Debug)]
pub struct RowSettings {
    pub features: FeatureConfig,
    pub chunks: ChunkConfig,
    pub detector: DetectorConfig,
    pub labels: LabelConfig,
}

impl RowSettings {
    /// Rows as a model's recorded `inputs` build them, labelled by `labels`.
    pub fn new(inputs: crate::models::artifact::RowInputs, labels: LabelConfig) -> Self {
        Self {
            features: inputs.features,
            chunks: inputs.chunks,
            detector: inputs.detector,
            labels,
        }
    }
}

/// Totals of a build.
#[derive(Clone, Debug, Default)]
pub struct BuildStats {
    pub files: usize,
    pub trades: u64,
    pub malformed: u64,
    pub rows: usize,
}

fn build_one(
    path: &std::path::Path,
    event: Option<&PumpEvent>,
    st: &RowSettings,
) -> Result<(Vec<EpisodeRows>, u64, u64)> {
    let mut src = crate::feeds::open_source(path)?;
    let mut engines: BTreeMap<String, (ChunkEngine, EpisodeRows)> = BTreeMap::new();
    let (mut trades, mut malformed) = (0u64, 0u64);
    let file = base_name(&path.display().to_string());
    while let Some(item) = src.next_item() {
        let t = match item {
            Ok(MarketEvent::Trade(t)) => t,
            Ok(_) => continue,
            Err(m) => {
                malformed += 1;
                if malformed <= 10 {
                    tracing::warn!(file = %m.file, line = m.line, reason = %m.reason, "malformed record skipped");
                }
                continue;
            }
        };
        trades += 1;
        let key = t.instrument.as_str();
        if !engines.contains_key(key) {
            let ev = event
                .filter(|e| e.pair.is_empty() || e.pair == key)
                .cloned();
            let rows = EpisodeRows {
                ep: Episode {
                    name: format!("{file}#{key}"),
                    event: ev,
                    ..Default::default()
                },
                ..Default::default()
            };
            engines.insert(
                key.to_string(),
                (ChunkEngine::new(&st.features, &st.chunks), rows),
            );
        }
        let Some((eng, rows)) = engines.get_mut(key) else {
            continue;
        };
        if let Some(r) = eng.update(&t) {
            if !r.warm {
                continue;
            }
            let rule = eng
                .last_snapshot()
                .map(|s| detector::score(&st.detector, s).0)
                .unwrap_or(0.0);
            let label = match &rows.ep.event {
                Some(ev) => st.labels.label(ev, r.ts_ms),
                None => Label::Normal,
            };
            rows.ep.ts.push(r.ts_ms);
            rows.ep.labels.push(label);
            rows.x.push(r.x);
            rows.rule.push(rule);
            rows.price.push(r.price);
        }
    }
    Ok((
        engines.into_values().map(|(_, r)| r).collect(),
        trades,
        malformed,
    ))
}

/// Builds rows of every file, two files at a time; output in file order. `events` attaches the
/// event whose `file` matches a path's base name; `on_file` is called after each file.
pub fn build(
    paths: &[PathBuf],
    events: &HashMap<String, PumpEvent>,
    st: &RowSettings,
    on_file: &(dyn Fn(usize) + Sync),
) -> Result<(Vec<EpisodeRows>, BuildStats)> {
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<FileResult>>> =
        Mutex::new((0..paths.len()).map(|_| None).collect());
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 4);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= paths.len() {
                    break;
                }
                let ev = events.get(&base_name(&paths[i].display().to_string()));
                let r = build_one(&paths[i], ev, st);
                if let Ok(mut g) = results.lock() {
                    g[i] = Some(r);
                }
                on_file(done.fetch_add(1, Ordering::SeqCst) + 1);
            });
        }
    });
    let mut out = Vec::new();
    let mut stats = BuildStats::default();
    let results = results
        .into_inner()
        .map_err(|_| anyhow::anyhow!("row builder panicked"))?;
    for r in results.into_iter().flatten() {
        let (eps, trades, malformed) = r?;
        stats.files += 1;
        stats.trades += trades;
        stats.malformed += malformed;
        for e in eps {
            stats.rows += e.x.len();
            if !e.x.is_empty() {
                out.push(e);
            }
        }
    }
    Ok((out, stats))
}
