//! The ensemble: four members and a stacked logistic meta-learner.
//!
//! Members, each a pump score in [0, 1] for one [`ChunkRow`]:
//! `rules` (the spine's transparent score / 100), `iforest` (Isolation Forest anomaly score),
//! `logistic` (linfa logistic regression), `gbm` (LightGBM through ONNX Runtime). The stacker maps
//! the members' log-odds to one probability, calibrated on pumps the members never trained on.
//!
//! Drivers of an alert, in log-odds of the final probability: each member's stacker term
//! `w_m · (logit(s_m) − mean_m)` and each input's logistic term scaled by the stacker's weight of
//! the logistic member; the 5 largest by magnitude, signed.

use super::artifact::Manifest;
use super::gbm::Gbm;
use super::linear::logit;
use crate::features::{feature_names, ChunkRow, N_FEATURES};
use crate::strategies::detector::Driver;
use anyhow::Result;
use std::path::Path;

/// Member names, in score order.
pub const MEMBERS: [&str; 4] = ["rules", "iforest", "logistic", "gbm"];

/// Raw input made finite for the tree models: NaN → 0, ±inf → ±1e6, as float32.
pub fn clean(x: &[f64]) -> Vec<f32> {
    x.iter()
        .map(|&v| {
            if v.is_nan() {
                0.0
            } else {
                v.clamp(-1e6, 1e6) as f32
            }
        })
        .collect()
}

/// Isolation-forest input: squashed like the logistic input.
pub fn squashed(x: &[f64]) -> Vec<f64> {
    x.iter().map(|&v| super::linear::squash(v)).collect()
}

/// Member scores (NaN for a member the artifact lacks) and the ensemble probability.
#[derive(Clone, Debug, PartialEq)]
pub struct Scores {
    pub members: [f64; 4],
    pub prob: f64,
}

pub struct Ensemble {
    pub manifest: Manifest,
    gbm: Option<Gbm>,
}

impl std::fmt::Debug for Ensemble {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ensemble({})", self.manifest.version)
    }
}

impl Ensemble {
    /// Loads an artifact folder (`models/<version>`); the GBM member needs ONNX Runtime.
    pub fn load(dir: &Path) -> Result<Self> {
        let manifest = Manifest::read(dir)?;
        let gbm = match &manifest.gbm {
            Some(g) => Some(Gbm::load(&dir.join(&g.file), N_FEATURES)?),
            None => None,
        };
        Ok(Self { manifest, gbm })
    }

    pub fn from_parts(manifest: Manifest, gbm: Option<Gbm>) -> Self {
        Self { manifest, gbm }
    }

    pub fn gbm(&self) -> Option<&Gbm> {
        self.gbm.as_ref()
    }

    /// Members that exist in this artifact, as indexes into [`MEMBERS`].
    pub fn active_members(&self) -> Vec<usize> {
        (0..4).filter(|&m| m != 3 || self.gbm.is_some()).collect()
    }

    /// Scores one row; `rule` is the spine's 0–100 score at the chunk's last buy.
    pub fn score(&self, row: &ChunkRow, rule: f64) -> Result<Scores> {
        let m = &self.manifest;
        let mut s = [f64::NAN; 4];
        s[0] = (rule / 100.0).clamp(0.0, 1.0);
        s[1] = m.iforest.score(&squashed(&row.x));
        s[2] = m.logistic.prob(&row.x);
        if let Some(g) = &self.gbm {
            s[3] = g.predict_one(&clean(&row.x))? as f64;
        }
        let prob = m.stacker.prob(&self.stack_inputs(&s));
        Ok(Scores { members: s, prob })
    }

    /// Stacker inputs: log-odds of the active members.
    pub fn stack_inputs(&self, s: &[f64; 4]) -> Vec<f64> {
        self.active_members().iter().map(|&i| logit(s[i])).collect()
    }

    /// Top `k` drivers of a scored row (log-odds units; see the module docs).
    pub fn drivers(&self, row: &ChunkRow, scores: &Scores, k: usize) -> Vec<Driver> {
        let m = &self.manifest;
        let st = &m.stacker;
        let active = self.active_members();
        let inputs = self.stack_inputs(&scores.members);
        let mut out: Vec<Driver> = Vec::new();
        let mut w_logistic = 0.0;
        for (j, &mi) in active.iter().enumerate() {
            let c = st.coef[j] * (inputs[j] - st.mean[j]) / st.std[j];
            if mi == 2 {
                w_logistic = st.coef[j] / st.std[j];
            }
            out.push(Driver {
                name: format!("member.{}", MEMBERS[mi]),
                value: scores.members[mi],
                contribution: c,
            });
        }
        let names = feature_names();
        for (j, c) in m.logistic.contributions(&row.x).into_iter().enumerate() {
            out.push(Driver {
                name: names[j].clone(),
                value: row.x[j],
                contribution: c * w_logistic,
            });
        }
        out.sort_by(|a, b| {
            b.contribution
                .abs()
                .total_cmp(&a.contribution.abs())
                .then_with(|| a.name.cmp(&b.name))
        });
        out.truncate(k);
        out
    }
}
