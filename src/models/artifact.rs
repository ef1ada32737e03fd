//! Versioned model artifacts: `<models dir>/<version>/manifest.json` (+ `gbm.onnx`, `gbm.json`).
//!
//! Versions are `v1`, `v2`, … in training order. The manifest records the hash of the training
//! rows (`data_hash`), of the training config (`config_hash`), the split (which event files trained
//! the members, calibrated the stacker, validated), every member's parameters, the operating
//! thresholds and the validation metrics; `artifact_hash` covers the model content (members,
//! stacker, thresholds, ONNX bytes), so two trainings on the same data and seed give the same hash.

use super::iforest::IsolationForest;
use super::linear::Logistic;
use super::metrics::AlertRule;
use crate::features::{ChunkConfig, FeatureConfig};
use crate::strategies::detector::DetectorConfig;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const MANIFEST: &str = "manifest.json";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GbmRef {
    /// File name inside the version folder.
    pub file: String,
    /// sha256 of the ONNX bytes.
    pub sha256: String,
    /// LightGBM parameters the script used.
    pub params: serde_json::Value,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Split {
    pub train: Vec<String>,
    pub calibrate: Vec<String>,
    pub validate: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: String,
    pub artifact_hash: String,
    pub data_hash: String,
    pub config_hash: String,
    pub features: Vec<String>,
    /// When rows are built (see [`ROWS`]); manifests without it predate checkpoint rows.
    #[serde(default = "rows_before_checkpoints")]
    pub rows: String,
    pub split: Split,
    /// Training config as used (JSON of `[train]`).
    pub config: serde_json::Value,
    /// Operating threshold per member and for `ensemble` (probability / score in [0, 1]).
    pub thresholds: BTreeMap<String, f64>,
    /// Alert cooldown per instrument, seconds.
    pub cooldown_secs: i64,
    /// Calm seconds that lift the cooldown ([`AlertRule`]); 0 in manifests before it existed.
    #[serde(default)]
    pub rearm_secs: i64,
    /// Settings the input rows were built with; scoring rebuilds rows the same way whatever the
    /// config in effect says. `None` in manifests before it existed (the config's are used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<RowInputs>,
    pub iforest: IsolationForest,
    pub logistic: Logistic,
    pub gbm: Option<GbmRef>,
    pub stacker: Logistic,
    /// Alert levels of the ensemble probability, picked on the calibration events; `None` in
    /// manifests before them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub levels: Option<Vec<super::levels::AlertLevel>>,
    /// Validation metrics (time-split, events after the training ones).
    pub validation: serde_json::Value,
}

/// What the rows a model scores depend on besides its own parameters: the spine's `[features]`
/// window, La Morgia's `[train.chunks]` windows and the `[detector]` rule score (a member).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RowInputs {
    pub features: FeatureConfig,
    pub chunks: ChunkConfig,
    pub detector: DetectorConfig,
}

/// Row timing of this build: rows at checkpoint buys of each 5 s chunk
/// ([`crate::features::chunks::is_checkpoint`]).
pub const ROWS: &str = "checkpoint-buys";

fn rows_before_checkpoints() -> String {
    "chunk-close".into()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

impl Manifest {
    /// The row settings to score this model with: its own, or `current` (the config's) for an
    /// old manifest.
    pub fn row_inputs(&self, current: RowInputs) -> RowInputs {
        self.inputs.clone().unwrap_or(current)
    }

    /// The alert rule the thresholds were picked with.
    pub fn alert_rule(&self) -> AlertRule {
        AlertRule::from_secs(self.cooldown_secs, self.rearm_secs)
    }

    /// Hash of the model content (everything a score depends on).
    pub fn content_hash(&self) -> String {
        let mut content = serde_json::json!({
            "features": self.features,
            "rows": self.rows,
            "thresholds": self.thresholds,
            "cooldown_secs": self.cooldown_secs,
            "rearm_secs": self.rearm_secs,
            "iforest": self.iforest,
            "logistic": self.logistic,
            "gbm": self.gbm.as_ref().map(|g| &g.sha256),
            "stacker": self.stacker,
        });
        if let Some(i) = &self.inputs {
            content["inputs"] = serde_json::json!(i);
        }
        if let Some(l) = &self.levels {
            content["levels"] = serde_json::json!(l);
        }
        sha256_hex(content.to_string().as_bytes())
    }

    pub fn read(dir: &Path) -> Result<Self> {
        let p = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&p)
            .with_context(|| format!("cannot read model manifest {}", p.display()))?;
        let m: Manifest = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a smartflow model manifest", p.display()))?;
        if m.rows != ROWS {
            bail!(
                "{}: model {} was trained on rows built at `{}`, this build scores rows at `{ROWS}`; \
                 pick a newer version ([models] active) or retrain with `smartflow train`",
                p.display(),
                m.version,
                m.rows
            );
        }
        if m.features != crate::features::feature_names() {
            bail!(
                "{}: model inputs differ from this build's features; retrain with `smartflow train`",
                p.display()
            );
        }
        Ok(m)
    }

    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)?;
        let p = dir.join(MANIFEST);
        std::fs::write(&p, serde_json::to_string_pretty(self)? + "\n")
            .with_context(|| format!("cannot write {}", p.display()))
    }
}

/// Versions in a models folder, oldest first: `(version, folder)`.
pub fn list_versions(models_dir: &Path) -> Result<Vec<(u32, PathBuf)>> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(models_dir) else {
        return Ok(out);
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(n) = name.strip_prefix('v').and_then(|n| n.parse::<u32>().ok()) {
            if e.path().join(MANIFEST).is_file() {
                out.push((n, e.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Folder of the version `active` names (`latest` = highest number).
pub fn resolve(models_dir: &Path, active: &str) -> Result<PathBuf> {
    let versions = list_versions(models_dir)?;
    if versions.is_empty() {
        bail!(
            "no trained model in {} (run `smartflow train`, or set detector.mode = \"rules\")",
            models_dir.display()
        );
    }
    if active == "latest" {
        return Ok(versions.last().map(|v| v.1.clone()).unwrap_or_default());
    }
    versions
        .iter()
        .find(|(n, _)| format!("v{n}") == active)
        .map(|v| v.1.clone())
        .with_context(|| {
            let known: Vec<String> = versions.iter().map(|(n, _)| format!("v{n}")).collect();
            format!(
                "models.active = {active:?}: no such version in {} (have: {})",
                models_dir.display(),
                known.join(", ")
            )
        })
}

/// Next free version name.
pub fn next_version(models_dir: &Path) -> Result<String> {
    let n = list_versions(models_dir)?.last().map(|v| v.0).unwrap_or(0);
    Ok(format!("v{}", n + 1))
}
