//! Pump labels from an events file (`binance_pumps/events_index.csv` layout).
//!
//! Columns read: `file` (trade file, matched by base name), `pair`, `announced_ms`,
//! `label_chunk_start_5s` (La Morgia's hand-set start of the first pump chunk, UTC, 5 s grid; may
//! precede the announcement by up to 120 s) and `other_known_pumps_in_window` (`;`-separated UTC
//! times). The pump **start** follows [`StartRule`]: by default La Morgia's chunk start (the
//! announcement times are minute-rounded, so the first pump trade often comes 5–60 s after them);
//! other known pumps are starts too (their chunks are positives and never false alarms) but only
//! the primary event counts for recall.

use crate::domain::parse_ts;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// One labelled pump.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PumpEvent {
    /// Base name of the trade file, e.g. `ADX_2019-07-05_17.00.csv.gz`.
    pub file: String,
    /// `BASE/QUOTE`.
    pub pair: String,
    pub announced_ms: i64,
    /// La Morgia's hand-set 5 s pump chunk start, ms, when the event has one.
    pub lamorgia_ms: Option<i64>,
    /// Primary start, ms, by the [`StartRule`] the events were loaded with.
    pub start_ms: i64,
    /// Other labelled pumps of the coin inside the file's window, ms.
    pub others: Vec<i64>,
}

/// Which time is a pump's start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartRule {
    /// La Morgia's hand-set 5 s chunk start (the chunk holding the pump's first trades), else the
    /// announcement. What La Morgia et al.'s chunk recall is measured against.
    #[default]
    Lamorgia,
    /// The earlier of the announcement and La Morgia's chunk start (stricter: the announcement is
    /// minute-rounded, so some pumps trade only 10–60 s after this start).
    Earliest,
}

impl StartRule {
    pub fn name(self) -> &'static str {
        match self {
            StartRule::Lamorgia => "lamorgia",
            StartRule::Earliest => "earliest",
        }
    }

    /// The rule the report also measures from.
    pub fn other(self) -> Self {
        match self {
            StartRule::Lamorgia => StartRule::Earliest,
            StartRule::Earliest => StartRule::Lamorgia,
        }
    }

    fn start(self, announced_ms: i64, lamorgia_ms: Option<i64>) -> i64 {
        match (self, lamorgia_ms) {
            (_, None) => announced_ms,
            (StartRule::Lamorgia, Some(l)) => l,
            (StartRule::Earliest, Some(l)) => l.min(announced_ms),
        }
    }
}

impl PumpEvent {
    /// The same event with its start taken by another rule.
    pub fn with_start(&self, rule: StartRule) -> Self {
        Self {
            start_ms: rule.start(self.announced_ms, self.lamorgia_ms),
            ..self.clone()
        }
    }

    /// All starts (primary first).
    pub fn starts(&self) -> impl Iterator<Item = i64> + '_ {
        std::iter::once(self.start_ms).chain(self.others.iter().copied())
    }
}

/// Label of one 5 s chunk row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Label {
    /// The row lies in `[start, start + label_secs)` of a pump.
    Pump,
    /// Near a pump (`[start − pre_secs, start + post_secs]`) but not a positive: neither trained
    /// on nor counted as a false alarm.
    Ignore,
    /// Normal trading.
    Normal,
}

/// Label windows, `[train]` keys.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LabelConfig {
    /// Which time is the pump start (`"lamorgia"` or `"earliest"`). Default `"lamorgia"`.
    pub start: StartRule,
    /// Rows this many seconds from a start are positives. Default 30.
    pub label_secs: i64,
    /// Alerts up to this many seconds before a start count as (early) detections. Default 120.
    pub pre_secs: i64,
    /// Alerts up to this many seconds after a start are part of the pump, not false alarms.
    /// Default 600.
    pub post_secs: i64,
}

impl Default for LabelConfig {
    fn default() -> Self {
        Self {
            start: StartRule::Lamorgia,
            label_secs: 30,
            pre_secs: 120,
            post_secs: 600,
        }
    }
}

impl LabelConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.label_secs <= 0 {
            return Err("train.labels.label_secs: must be > 0".into());
        }
        if self.pre_secs < 0 || self.post_secs < self.label_secs {
            return Err("train.labels: pre_secs must be ≥ 0 and post_secs ≥ label_secs".into());
        }
        Ok(())
    }

    /// Label of the row built at `ts_ms` for an event.
    pub fn label(&self, ev: &PumpEvent, ts_ms: i64) -> Label {
        let mut near = false;
        for s in ev.starts() {
            if ts_ms >= s && ts_ms < s + self.label_secs * 1000 {
                return Label::Pump;
            }
            if ts_ms >= s - self.pre_secs * 1000 && ts_ms <= s + self.post_secs * 1000 {
                near = true;
            }
        }
        if near {
            Label::Ignore
        } else {
            Label::Normal
        }
    }

    /// True when an alert at `ts_ms` lies in a pump's window (no false alarm).
    pub fn in_pump_window(&self, ev: &PumpEvent, ts_ms: i64) -> bool {
        ev.starts()
            .any(|s| ts_ms >= s - self.pre_secs * 1000 && ts_ms <= s + self.post_secs * 1000)
    }
}

/// Base name of a path (`a/b/X.csv.gz` → `X.csv.gz`).
pub fn base_name(p: &str) -> String {
    Path::new(p)
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.to_string())
}

/// Reads an events file into a map from trade-file base name to event; `rule` picks the start.
///
/// Errors name the file and line: missing columns, unparsable times.
pub fn load_events(path: &Path, rule: StartRule) -> Result<HashMap<String, PumpEvent>> {
    let mut rd = csv::Reader::from_path(path)
        .with_context(|| format!("cannot read events file {}", path.display()))?;
    let headers = rd.headers()?.clone();
    let col = |name: &str| -> Result<usize> {
        headers
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("{}: no column `{name}`", path.display()))
    };
    let (c_file, c_pair, c_ann) = (col("file")?, col("pair")?, col("announced_ms")?);
    let c_lm = headers.iter().position(|h| h == "label_chunk_start_5s");
    let c_other = headers
        .iter()
        .position(|h| h == "other_known_pumps_in_window");
    let mut out = HashMap::new();
    for (i, rec) in rd.records().enumerate() {
        let rec = rec?;
        let line = i + 2;
        let get = |c: usize| rec.get(c).unwrap_or("").trim();
        let announced_ms: i64 = get(c_ann).parse().with_context(|| {
            format!(
                "{}:{line}: announced_ms `{}` is not ms",
                path.display(),
                get(c_ann)
            )
        })?;
        let mut lamorgia_ms = None;
        if let Some(c) = c_lm {
            let v = get(c);
            if !v.is_empty() {
                let Some(t) = parse_ts(v) else {
                    bail!(
                        "{}:{line}: label_chunk_start_5s `{v}` is not a time",
                        path.display()
                    );
                };
                lamorgia_ms = Some(t);
            }
        }
        let mut others = Vec::new();
        if let Some(c) = c_other {
            for v in get(c).split(';').map(str::trim).filter(|v| !v.is_empty()) {
                let Some(t) = parse_ts(v) else {
                    bail!(
                        "{}:{line}: other pump time `{v}` is not a time",
                        path.display()
                    );
                };
                others.push(t);
            }
        }
        let file = base_name(get(c_file));
        out.insert(
            file.clone(),
            PumpEvent {
                file,
                pair: get(c_pair).to_string(),
                announced_ms,
                lamorgia_ms,
                start_ms: rule.start(announced_ms, lamorgia_ms),
                others,
            },
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_the_windows() {
        let ev = PumpEvent {
            file: "f".into(),
            pair: "X/BTC".into(),
            announced_ms: 1_000_000,
            lamorgia_ms: None,
            start_ms: 1_000_000,
            others: vec![5_000_000],
        };
        let c = LabelConfig::default();
        assert_eq!(
            c.label(&ev, 999_999),
            Label::Ignore,
            "just before the start"
        );
        assert_eq!(c.label(&ev, 1_000_000), Label::Pump);
        assert_eq!(c.label(&ev, 1_029_999), Label::Pump);
        assert_eq!(c.label(&ev, 1_030_000), Label::Ignore, "start + 30 s");
        assert_eq!(c.label(&ev, 1_600_000), Label::Ignore);
        assert_eq!(c.label(&ev, 1_600_001), Label::Normal);
        assert_eq!(c.label(&ev, 5_010_000), Label::Pump, "other known pump");
        assert!(c.in_pump_window(&ev, 1_000_000 - 120_000));
        assert!(!c.in_pump_window(&ev, 1_000_000 - 120_001));
    }
}
