//! Exact attribution of the ensemble's log-odds to its 45 inputs, through every member.
//!
//! The stacker's log-odds are `z = b + Σ_m k_m · (L_m − μ_m)` with `k_m = coef_m / std_m` and
//! `L_m` the member's clamped log-odds. Each member's `L_m` is split as `B_m + Σ_f a_mf` (its
//! base `B_m` does not depend on the row), so `z = base + Σ_f Σ_m k_m · a_mf` with
//! `base = b + Σ_m k_m · (B_m − μ_m)`:
//!
//! - `rules`: its points per input (`B` = the log-odds of a score of 0);
//! - `logistic`: `coef_f ·` standardised input (`B` = the intercept);
//! - `iforest`: [`IsolationForest::path_attribution`](crate::models::iforest::IsolationForest::path_attribution)
//!   (`B` = the score of the expected path length);
//! - `gbm`: exact path-dependent TreeSHAP (`B` = the expected raw score).
//!
//! A member's log-odds is a monotone function of the quantity its parts add up to (a score, a
//! linear predictor, a path length, a raw score), not always the identity (the clamp of
//! [`logit`], the Isolation Forest's `2^(−h/c)`): the parts are scaled by the secant
//! `(L − B) / (q − q_base)`, which keeps their proportions and signs and makes them add up
//! exactly. For the logistic and the GBM inside the clamp the factor is 1.

use crate::features::{ChunkRow, N_FEATURES};
use crate::models::ensemble::{clean, squashed, Ensemble, Scores};
use crate::models::linear::{logit, sigmoid};

/// Named methods, as recorded with every explanation.
pub const METHODS: [(&str, &str); 4] = [
    ("rules", "points per input"),
    (
        "iforest",
        "expected-depth split credit (Saabas-style) of the path length",
    ),
    (
        "logistic",
        "coefficient × standardised deviation from the training mean",
    ),
    ("gbm", "exact path-dependent TreeSHAP"),
];

/// The ensemble's log-odds of one row split by input.
#[derive(Clone, Debug, PartialEq)]
pub struct Attribution {
    /// Log-odds of a row at every member's base.
    pub base: f64,
    /// The stacker's log-odds of the row: `base + Σ inputs + unattributed`.
    pub logit: f64,
    /// Per input (feature order), per member (order of [`crate::models::MEMBERS`]): log-odds.
    pub by_input: Vec<[f64; 4]>,
    /// Log-odds no input can be credited with: a GBM member whose artifact lacks node covers
    /// (its whole term), or rule points not given (0 in a signal's explanation).
    pub unattributed: f64,
    /// Each member's stacker term `k_m · (L_m − μ_m)`; 0 for an absent member.
    pub member_terms: [f64; 4],
}

impl Attribution {
    /// One input's contribution over all members.
    pub fn input_total(&self, f: usize) -> f64 {
        self.by_input[f].iter().sum()
    }
}

/// Scales `parts` so they sum to `target` (a secant of a monotone map); parts summing to less
/// than 1e-12 are left as they are (their target is as small).
fn scale_to(target: f64, parts: &mut [f64]) {
    let s: f64 = parts.iter().sum();
    if s.abs() > 1e-12 {
        let k = target / s;
        parts.iter_mut().for_each(|p| *p *= k);
    }
}

impl Ensemble {
    /// Splits the ensemble's log-odds of a scored row by input. `rule_points` are the rule
    /// score's points by input name (the spine's drivers), `scores` the row's
    /// [`Ensemble::score`].
    pub fn attribute(
        &self,
        row: &ChunkRow,
        rule_points: &[(String, f64)],
        scores: &Scores,
    ) -> Attribution {
        let st = &self.manifest.stacker;
        let (parts, bases) = self.member_parts(row, rule_points, scores);
        let mut out = Attribution {
            base: st.intercept,
            logit: st.logit(&self.stack_inputs(&scores.members)),
            by_input: vec![[0.0; 4]; N_FEATURES],
            unattributed: 0.0,
            member_terms: [0.0; 4],
        };
        for (j, m) in self.active_members().into_iter().enumerate() {
            let k = st.coef[j] / st.std[j];
            let l = logit(scores.members[m]);
            out.member_terms[m] = k * (l - st.mean[j]);
            // A member without a split (no GBM covers, no rule points given) keeps its whole
            // term; a split that does not add up keeps what it misses (more than rounding).
            let b = bases[m].unwrap_or(st.mean[j]);
            out.base += k * (b - st.mean[j]);
            let missed = l - b - parts[m].iter().sum::<f64>();
            if missed.abs() > 1e-9 {
                out.unattributed += k * missed;
            }
            for (f, by) in out.by_input.iter_mut().enumerate() {
                by[m] = k * parts[m][f];
            }
        }
        out
    }

    /// Each member's log-odds split by input, and its base; `None` for a member that cannot be
    /// split (a GBM without node covers) or is absent.
    fn member_parts(
        &self,
        row: &ChunkRow,
        rule_points: &[(String, f64)],
        scores: &Scores,
    ) -> ([[f64; N_FEATURES]; 4], [Option<f64>; 4]) {
        let names = crate::features::feature_names();
        let mut parts = [[0.0f64; N_FEATURES]; 4];
        let mut bases = [None; 4];
        for (name, pts) in rule_points {
            if let Some(f) = names.iter().position(|n| n == name) {
                parts[0][f] += pts;
            }
        }
        bases[0] = Some(logit(0.0));
        let forest = &self.manifest.iforest;
        let pa = forest.path_attribution(&squashed(&row.x));
        parts[1].copy_from_slice(&pa.by_feature);
        bases[1] = Some(logit(forest.score_of_path(pa.expected)));
        let lg = &self.manifest.logistic;
        parts[2].copy_from_slice(&lg.contributions(&row.x));
        bases[2] = Some(logit(sigmoid(lg.intercept)));
        if let Some((expected, phi)) = self.gbm().and_then(|g| g.shap(&clean(&row.x))) {
            parts[3].copy_from_slice(&phi);
            bases[3] = Some(logit(sigmoid(expected)));
        }
        for m in 0..4 {
            if let Some(b) = bases[m] {
                scale_to(logit(scores.members[m]) - b, &mut parts[m]);
            }
        }
        (parts, bases)
    }
}
