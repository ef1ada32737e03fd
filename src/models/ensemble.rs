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

/// Driver names of the members (`member.<name>`).
const MEMBER_DRIVER_NAMES: [&str; 4] = [
    "member.rules",
    "member.iforest",
    "member.logistic",
    "member.gbm",
];

/// Raw input made finite for the tree models: NaN → 0, ±inf → ±1e6, as float32.
pub fn clean(x: &[f64]) -> Vec<f32> {
    x.iter().map(|&v| clean_one(v)).collect()
}

fn clean_one(v: f64) -> f32 {
    if v.is_nan() {
        0.0
    } else {
        v.clamp(-1e6, 1e6) as f32
    }
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

    /// Whether member `m` (index into [`MEMBERS`]) exists in this artifact: all but the GBM,
    /// which is optional.
    fn is_active(&self, m: usize) -> bool {
        m != 3 || self.gbm.is_some()
    }

    /// Members that exist in this artifact, as indexes into [`MEMBERS`].
    pub fn active_members(&self) -> Vec<usize> {
        (0..4).filter(|&m| self.is_active(m)).collect()
    }

    /// Scores one row; `rule` is the spine's 0–100 score at the chunk's last buy. Works on stack
    /// arrays: it runs at every checkpoint buy of every instrument, and heap traffic shows in p99.
    pub fn score(&self, row: &ChunkRow, rule: f64) -> Result<Scores> {
        let m = &self.manifest;
        let mut s = [f64::NAN; 4];
        s[0] = (rule / 100.0).clamp(0.0, 1.0);
        let squashed: [f64; N_FEATURES] = row.x.map(super::linear::squash);
        s[1] = m.iforest.score(&squashed);
        s[2] = m.logistic.prob(&row.x);
        if let Some(g) = &self.gbm {
            let cleaned: [f32; N_FEATURES] = row.x.map(clean_one);
            s[3] = g.predict_one(&cleaned)? as f64;
        }
        let (inputs, n) = self.stack_array(&s);
        let prob = m.stacker.prob(&inputs[..n]);
        Ok(Scores { members: s, prob })
    }

    /// Stacker inputs: log-odds of the active members.
    pub fn stack_inputs(&self, s: &[f64; 4]) -> Vec<f64> {
        let (inputs, n) = self.stack_array(s);
        inputs[..n].to_vec()
    }

    /// [`Self::stack_inputs`] without allocating: the first `n` entries are used.
    fn stack_array(&self, s: &[f64; 4]) -> ([f64; 4], usize) {
        let mut out = [0.0; 4];
        let mut n = 0;
        for (i, &v) in s.iter().enumerate() {
            if self.is_active(i) {
                out[n] = logit(v);
                n += 1;
            }
        }
        (out, n)
    }

    /// Top `k` drivers of a scored row (log-odds units; see the module docs). Ranks plain numbers
    /// and names only the `k` kept (naming all 49 candidates cost more than the stacker).
    pub fn drivers(&self, row: &ChunkRow, scores: &Scores, k: usize) -> Vec<Driver> {
        let st = &self.manifest.stacker;
        let logistic = &self.manifest.logistic;
        let (inputs, n) = self.stack_array(&scores.members);
        // Candidates: (index, value, contribution); members are 0..4, input j is 4 + j.
        let mut cand: Vec<(usize, f64, f64)> = Vec::with_capacity(4 + N_FEATURES);
        let mut w_logistic = 0.0;
        let mut j = 0;
        for mi in (0..4).filter(|&m| self.is_active(m)) {
            if mi == 2 {
                w_logistic = st.coef[j] / st.std[j];
            }
            let c = st.coef[j] * (inputs[j] - st.mean[j]) / st.std[j];
            cand.push((mi, scores.members[mi], c));
            j += 1;
        }
        debug_assert_eq!(j, n);
        for (f, &v) in row.x.iter().enumerate() {
            let c = logistic.coef[f] * logistic.standardized(f, v);
            cand.push((4 + f, v, c * w_logistic));
        }
        let names = feature_names();
        // Largest magnitude first; ties by name, so the order is deterministic.
        let key = |i: usize| -> &str {
            if i < 4 {
                MEMBER_DRIVER_NAMES[i]
            } else {
                &names[i - 4]
            }
        };
        cand.sort_by(|a, b| {
            b.2.abs()
                .total_cmp(&a.2.abs())
                .then_with(|| key(a.0).cmp(key(b.0)))
        });
        cand.truncate(k);
        cand.into_iter()
            .map(|(i, value, contribution)| Driver {
                name: key(i).to_string(),
                value,
                contribution,
            })
            .collect()
    }
}
