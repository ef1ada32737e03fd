//! `[train]` and `[models]` config.

use super::iforest::IForestParams;
use super::labels::LabelConfig;
use super::linear::LogisticParams;
use super::metrics::AlertRule;
use crate::features::ChunkConfig;
use serde::{Deserialize, Serialize};

/// Default `train.script`.
pub const DEFAULT_GBM_SCRIPT: &str = "scripts/train_gbm.py";

/// `[train.gbm]`: LightGBM parameters passed to `scripts/train_gbm.py`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GbmParams {
    /// Train the GBM member (needs Python with lightgbm and onnxmltools).
    pub enabled: bool,
    pub n_estimators: u32,
    pub num_leaves: u32,
    pub learning_rate: f64,
    pub min_child_samples: u32,
    pub colsample_bytree: f64,
    pub reg_lambda: f64,
}

impl Default for GbmParams {
    fn default() -> Self {
        Self {
            enabled: true,
            n_estimators: 200,
            num_leaves: 31,
            learning_rate: 0.05,
            min_child_samples: 20,
            colsample_bytree: 0.8,
            reg_lambda: 1.0,
        }
    }
}

/// `[train]` config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub seed: u64,
    /// Shares of events (ordered by pump time) that train the members, calibrate the stacker and
    /// thresholds, and validate. Must sum to 1.
    pub split: [f64; 3],
    /// Normal rows kept per pump row when fitting members (every k-th normal row).
    pub neg_per_pos: f64,
    /// Operating thresholds are the lowest giving at most this many false alarms per
    /// instrument-week on the calibration events.
    pub target_fa_per_week: f64,
    /// Minimum seconds between two alerts of one instrument.
    pub cooldown_secs: i64,
    /// Seconds without a row at half the threshold after which the cooldown is lifted (0 = never).
    pub rearm_secs: i64,
    /// Python interpreter for the GBM script.
    pub python: String,
    /// The GBM training script. The default, [`DEFAULT_GBM_SCRIPT`], is relative to the
    /// repository root; from another folder `train` runs the copy built into the binary.
    pub script: String,
    /// Bootstrap draws for PR-AUC intervals.
    pub bootstrap: usize,
    pub labels: LabelConfig,
    pub chunks: ChunkConfig,
    pub iforest: IForestParams,
    pub logistic: LogisticParams,
    pub stacker: LogisticParams,
    pub gbm: GbmParams,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            split: [0.6, 0.2, 0.2],
            neg_per_pos: 50.0,
            target_fa_per_week: 0.5,
            cooldown_secs: 900,
            rearm_secs: 60,
            python: "python3".into(),
            script: DEFAULT_GBM_SCRIPT.into(),
            bootstrap: 200,
            labels: LabelConfig::default(),
            chunks: ChunkConfig::default(),
            iforest: IForestParams::default(),
            logistic: LogisticParams::default(),
            stacker: LogisticParams {
                alpha: 0.01,
                max_iterations: 200,
            },
            gbm: GbmParams::default(),
        }
    }
}

impl TrainConfig {
    /// The alert rule this config trains and validates with.
    pub fn alert_rule(&self) -> AlertRule {
        AlertRule::from_secs(self.cooldown_secs, self.rearm_secs)
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.split.iter().any(|s| !(0.0..=1.0).contains(s))
            || (self.split.iter().sum::<f64>() - 1.0).abs() > 1e-9
            || self.split[0] <= 0.0
            || self.split[1] <= 0.0
        {
            return Err(
                "train.split: three shares ≥ 0 summing to 1, train and calibrate > 0".into(),
            );
        }
        if self.neg_per_pos.is_nan() || self.neg_per_pos <= 0.0 {
            return Err("train.neg_per_pos: must be > 0".into());
        }
        if self.target_fa_per_week.is_nan() || self.target_fa_per_week < 0.0 {
            return Err("train.target_fa_per_week: must be ≥ 0".into());
        }
        if self.cooldown_secs < 0 {
            return Err("train.cooldown_secs: must be ≥ 0".into());
        }
        if self.rearm_secs < 0 {
            return Err("train.rearm_secs: must be ≥ 0 (0 = plain cooldown)".into());
        }
        if self.iforest.trees == 0 || self.iforest.sample < 2 {
            return Err("train.iforest: trees ≥ 1 and sample ≥ 2".into());
        }
        if self.chunks.lm_window_5s < 2 || self.chunks.lm_window_15_25s < 2 {
            return Err("train.chunks: La Morgia windows must be ≥ 2".into());
        }
        for (k, p) in [("logistic", &self.logistic), ("stacker", &self.stacker)] {
            if p.alpha.is_nan() || p.alpha < 0.0 || p.max_iterations == 0 {
                return Err(format!("train.{k}: alpha ≥ 0 and max_iterations ≥ 1"));
            }
        }
        let g = &self.gbm;
        if g.n_estimators == 0
            || g.num_leaves < 2
            || g.learning_rate.is_nan()
            || g.learning_rate <= 0.0
        {
            return Err("train.gbm: n_estimators ≥ 1, num_leaves ≥ 2, learning_rate > 0".into());
        }
        self.labels.validate()
    }
}

/// Which detector feeds the strategy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DetectorMode {
    /// The learned ensemble (rules are one member).
    #[default]
    Ensemble,
    /// The transparent rule score alone.
    Rules,
}

/// `[models]` config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelsConfig {
    /// `ensemble` or `rules`.
    pub mode: DetectorMode,
    /// Folder of versioned artifacts (relative to the working directory).
    pub dir: String,
    /// Version to use: `latest` or e.g. `v2` (rollback = an older version).
    pub active: String,
    /// Drivers attached to every alert.
    pub top_drivers: usize,
}

impl Default for ModelsConfig {
    fn default() -> Self {
        Self {
            mode: DetectorMode::Ensemble,
            dir: "models".into(),
            active: "latest".into(),
            top_drivers: 5,
        }
    }
}

impl ModelsConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.active != "latest"
            && !(self.active.starts_with('v') && self.active[1..].parse::<u32>().is_ok())
        {
            return Err(format!(
                "models.active: {:?} is neither \"latest\" nor a version like \"v2\"",
                self.active
            ));
        }
        Ok(())
    }
}
