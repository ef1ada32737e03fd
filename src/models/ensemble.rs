//! The ensemble: four members and a stacked logistic meta-learner.
//!
//! Members, each a pump score in [0, 1] for one [`ChunkRow`]:
//! `rules` (the spine's transparent score / 100), `iforest` (Isolation Forest anomaly score),
//! `logistic` (linfa logistic regression), `gbm` (LightGBM's trees, evaluated natively from the
//! artifact's ONNX file). The stacker maps the members' log-odds to one probability, calibrated on
//! pumps the members never trained on.
//!
//! Replay and paper score every checkpoint row, ~940 k on the dev set, and almost all of them are
//! far below the alert threshold. [`Ensemble::score_above`] is a cascade for them: after the cheap
//! members it bounds what the Isolation Forest and the trees still to walk could add to the
//! stacker's log-odds, and stops as soon as even their best case stays below the floor. It never
//! drops a row that could reach the floor, and every row it scores is bit-identical to
//! [`Ensemble::score`].
//!
//! Why a row scored as it did: [`super::explain`] (exact contributions of every input through
//! every member).

use super::artifact::Manifest;
use super::gbm::Gbm;
use super::iforest::{IForestScorer, IForestWalk};
use super::linear::{logit, sigmoid, squash};
use crate::features::{ChunkRow, N_FEATURES};
use anyhow::{Context, Result};
use std::path::Path;

/// Member names, in score order.
pub const MEMBERS: [&str; 4] = ["rules", "iforest", "logistic", "gbm"];

/// Slack, in log-odds, of every bound the cascade uses: far above the rounding of the sums it
/// bounds (~1e-14), far below any score that matters.
const BOUND_SLACK: f64 = 1e-6;

/// Groups of isolation trees walked before the GBM (of 4 in v5). `score_cost` on the dev set's
/// rows, µs a row: 0 → 2.42, 1 → 2.17, 2 → 2.15–2.16, 3 → 2.22, all 4 first (before) → 2.25.
const ISOLATION_GROUPS_FIRST: usize = 2;

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
    x.iter().map(|&v| squash(v)).collect()
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
    iforest: IForestScorer,
    /// Highest stacker term the Isolation Forest and the GBM can reach (log-odds).
    iforest_term_max: f64,
    gbm_term_max: f64,
}

impl std::fmt::Debug for Ensemble {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ensemble({})", self.manifest.version)
    }
}

impl Ensemble {
    /// Loads an artifact folder (`models/<version>`). The GBM member's trees come from its ONNX
    /// file and must reproduce the probabilities LightGBM recorded in `gbm.json` (within
    /// [`super::gbm::CHECK_TOLERANCE`]), or the model is refused.
    pub fn load(dir: &Path) -> Result<Self> {
        let manifest = Manifest::read(dir)?;
        let gbm = match &manifest.gbm {
            Some(g) => Some(
                Gbm::load_checked(&dir.join(&g.file), &dir.join("gbm.json"), N_FEATURES)
                    .context("the GBM member")?,
            ),
            None => None,
        };
        Self::from_parts(manifest, gbm)
    }

    /// Errors when the manifest's Isolation Forest is malformed.
    pub fn from_parts(manifest: Manifest, gbm: Option<Gbm>) -> Result<Self> {
        let iforest = IForestScorer::new(&manifest.iforest).context("the isolation forest")?;
        let mut e = Self {
            manifest,
            gbm,
            iforest,
            iforest_term_max: f64::INFINITY,
            gbm_term_max: f64::INFINITY,
        };
        // Bounds only for a fitted stacker (`train` builds ensembles before fitting it).
        if e.manifest.stacker.coef.len() == e.active_members().len() {
            e.iforest_term_max = e.term_max(1, logit(e.iforest.max_score()));
            e.gbm_term_max = match &e.gbm {
                Some(g) => e.term_max(3, logit(sigmoid(g.raw_range().1))),
                None => 0.0,
            };
        }
        Ok(e)
    }

    /// Reads the Isolation Forest's and the GBM's trees (~260 KB for v5) into the calling
    /// core's cache: what a checkpoint row walks. For `[feeds] keep_cores_awake`.
    pub fn warm(&self) -> u64 {
        self.iforest
            .warm()
            .wrapping_add(self.gbm.as_ref().map_or(0, |g| g.warm()))
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

    /// Member `m`'s term in the stacker's log-odds, as [`super::linear::Logistic::logit`] adds
    /// it. The stacker's input `m` is member `m`: only the GBM, the last, can be absent.
    fn stacker_term(&self, m: usize, member_logit: f64) -> f64 {
        let st = &self.manifest.stacker;
        st.coef[m] * st.standardized(m, member_logit)
    }

    /// Highest stacker term of member `m` over member log-odds up to `hi`, plus slack.
    fn term_max(&self, m: usize, hi: f64) -> f64 {
        let lo = logit(0.0);
        self.stacker_term(m, lo).max(self.stacker_term(m, hi)) + BOUND_SLACK
    }

    /// Scores one row; `rule` is the spine's 0–100 score at the chunk's last buy. Works on stack
    /// arrays: it runs at every checkpoint buy of every instrument, and heap traffic shows in p99.
    pub fn score(&self, row: &ChunkRow, rule: f64) -> Scores {
        self.score_above(row, rule, 0.0)
            .expect("a floor of 0 scores every row")
    }

    /// [`Self::score`], or `None` when the row provably scores below `floor` (a probability);
    /// then it skips what it can: the Isolation Forest, and the trees left once they cannot lift
    /// the score to the floor. With `floor` ≤ 0 (or ≥ 1, or NaN) every row is scored.
    pub fn score_above(&self, row: &ChunkRow, rule: f64, floor: f64) -> Option<Scores> {
        let m = &self.manifest;
        let cascade = floor > 0.0 && floor < 1.0 && self.iforest_term_max.is_finite();
        // Stacker log-odds the row must reach, less slack for the order of the sums.
        let z_cut = (floor / (1.0 - floor)).ln() - BOUND_SLACK;
        let mut s = [f64::NAN; 4];
        s[0] = (rule / 100.0).clamp(0.0, 1.0);
        let squashed: [f64; N_FEATURES] = row.x.map(squash);
        s[2] = if m.logistic.log_inputs {
            m.logistic.prob_transformed(&squashed)
        } else {
            m.logistic.prob(&row.x)
        };
        let mut z = f64::INFINITY;
        if cascade {
            z = m.stacker.intercept
                + self.stacker_term(0, logit(s[0]))
                + self.stacker_term(2, logit(s[2]));
            if z + self.iforest_term_max + self.gbm_term_max < z_cut {
                return None;
            }
        }
        let mut walk = self.iforest.walk(&squashed);
        if cascade {
            if let Some(raw) = self.gbm_before_iforest(row, &mut walk, &mut z, z_cut) {
                s[3] = sigmoid(raw?);
                s[1] = walk.finish();
                let (inputs, n) = self.stack_array(&s);
                let prob = m.stacker.prob(&inputs[..n]);
                return Some(Scores { members: s, prob });
            }
        }
        s[1] = walk.finish();
        if cascade {
            z += self.stacker_term(1, logit(s[1]));
        }
        if let Some(g) = &self.gbm {
            let cleaned: [f32; N_FEATURES] = row.x.map(clean_one);
            let raw = match self.gbm_logit_needed(z, z_cut).filter(|_| cascade) {
                Some(target) => g.raw_reaching(&cleaned, target)?,
                None => g.raw(&cleaned),
            };
            s[3] = sigmoid(raw);
        }
        let (inputs, n) = self.stack_array(&s);
        let prob = m.stacker.prob(&inputs[..n]);
        Some(Scores { members: s, prob })
    }

    /// The cascade's second stage, most rows' last: the first groups of isolation trees bound
    /// that member's term, which gives the GBM a lower target than the exact term would; ~98 % of
    /// the dev set's rows cannot reach even that one, so the rest of the isolation forest is never
    /// walked for them (`score_cost`: 2251 → ~2155 ns a row; the GBM walks ~15 % more trees, the
    /// forest half its trees). A row the GBM walks in full
    /// gets its exact isolation score and term (`z` gains it), and is dropped exactly when the
    /// exact target would have dropped it, so the result is [`Self::score_above`]'s, bit for bit.
    /// `Some(None)`: below the floor; `Some(Some(raw))`: the GBM's raw score, the forest walked
    /// in full; `None`: this stage does not apply (no GBM, no target, a NaN input).
    fn gbm_before_iforest(
        &self,
        row: &ChunkRow,
        walk: &mut IForestWalk<'_>,
        z: &mut f64,
        z_cut: f64,
    ) -> Option<Option<f64>> {
        let g = self.gbm.as_ref()?;
        for _ in 0..ISOLATION_GROUPS_FIRST {
            walk.step();
        }
        // The term is monotone in the score: its bound is at the end it rises towards.
        let rises = self.stacker_term(1, 1.0) >= self.stacker_term(1, -1.0);
        let term = self.stacker_term(1, logit(walk.bound(rises)));
        let loose = self.gbm_logit_needed(*z + term + BOUND_SLACK, z_cut)?;
        let cleaned: [f32; N_FEATURES] = row.x.map(clean_one);
        let Some((raw, lowest)) = g.raw_and_lowest_bound(&cleaned, loose)? else {
            return Some(None);
        };
        let s1 = walk.finish();
        *z += self.stacker_term(1, logit(s1));
        match self.gbm_logit_needed(*z, z_cut) {
            Some(target) if lowest < target => Some(None),
            _ => Some(Some(raw)),
        }
    }

    /// The GBM log-odds below which a row whose other terms sum to `z` stays under `z_cut`, as a
    /// raw-score target for [`Gbm::raw_reaching`]; `None` when no raw score can be ruled out (a
    /// non-positive stacker weight, or a target inside the clamp of [`logit`]).
    fn gbm_logit_needed(&self, z: f64, z_cut: f64) -> Option<f64> {
        let st = &self.manifest.stacker;
        let (w, mean, std) = (*st.coef.get(3)?, st.mean[3], st.std[3]);
        if w <= 0.0 {
            return None;
        }
        let needed = mean + (z_cut - z) * std / w - BOUND_SLACK;
        (needed > logit(0.0) + BOUND_SLACK).then_some(needed)
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
}
