//! Logistic regression fitted with `linfa-logistic` (L-BFGS, L2 penalty `alpha`), kept as plain
//! coefficients so scoring is a dot product and the artifact is readable JSON.
//!
//! Inputs are standardised with the training mean and std; with `log_inputs` each input first goes
//! through `sign(x)·ln(1 + |x|)` (heavy-tailed ratios and z-scores), NaN → 0, ±inf → ±ln(1 + 1e6).

use anyhow::{ensure, Context, Result};
use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

/// Bounded, finite version of a raw input.
pub fn squash(x: f64) -> f64 {
    if x == 0.0 {
        return x; // what the formula gives (±0), without a logarithm: many inputs are 0
    }
    let x = if x.is_nan() { 0.0 } else { x.clamp(-1e6, 1e6) };
    x.signum() * x.abs().ln_1p()
}

/// `[train.logistic]` hyper-parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogisticParams {
    /// L2 penalty.
    pub alpha: f64,
    pub max_iterations: u64,
}

impl Default for LogisticParams {
    fn default() -> Self {
        Self {
            alpha: 1.0,
            max_iterations: 200,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Logistic {
    pub log_inputs: bool,
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    pub coef: Vec<f64>,
    pub intercept: f64,
}

/// Input `v` before standardisation: squashed, or made finite (non-finite → 0).
fn transform(log_inputs: bool, v: f64) -> f64 {
    if log_inputs {
        squash(v)
    } else if v.is_finite() {
        v
    } else {
        0.0
    }
}

impl Logistic {
    /// Input `j` as the model sees it: transformed, then standardised with the training statistics.
    pub fn standardized(&self, j: usize, v: f64) -> f64 {
        (transform(self.log_inputs, v) - self.mean[j]) / self.std[j]
    }

    /// Fits `P(y = 1 | x)`. `rows` are raw inputs; `y` 0/1. Errors when one class is missing.
    pub fn fit(
        rows: &[Vec<f64>],
        y: &[bool],
        p: &LogisticParams,
        log_inputs: bool,
    ) -> Result<Self> {
        ensure!(!rows.is_empty(), "logistic regression: no rows");
        ensure!(
            y.iter().any(|&b| b) && y.iter().any(|&b| !b),
            "logistic regression needs both classes"
        );
        let nf = rows[0].len();
        let mut m = Logistic {
            log_inputs,
            mean: vec![0.0; nf],
            std: vec![1.0; nf],
            coef: vec![0.0; nf],
            intercept: 0.0,
        };
        let raw: Vec<Vec<f64>> = rows
            .iter()
            .map(|r| r.iter().map(|&v| transform(log_inputs, v)).collect())
            .collect();
        let n = raw.len() as f64;
        for j in 0..nf {
            let mean = raw.iter().map(|r| r[j]).sum::<f64>() / n;
            let var = raw.iter().map(|r| (r[j] - mean).powi(2)).sum::<f64>() / n;
            m.mean[j] = mean;
            m.std[j] = if var > 1e-18 { var.sqrt() } else { 1.0 };
        }
        let mut x = Array2::<f64>::zeros((raw.len(), nf));
        for (i, r) in raw.iter().enumerate() {
            for j in 0..nf {
                x[[i, j]] = (r[j] - m.mean[j]) / m.std[j];
            }
        }
        let t: Array1<usize> = y.iter().map(|&b| b as usize).collect();
        let ds = Dataset::new(x, t);
        let fitted = LogisticRegression::default()
            .alpha(p.alpha)
            .max_iterations(p.max_iterations)
            .fit(&ds)
            .context("logistic regression did not fit")?;
        // linfa picks which label is "positive" itself; flip to P(label 1) when it chose 0.
        let sign = if fitted.labels().pos.class == 1 {
            1.0
        } else {
            -1.0
        };
        m.coef = fitted.params().iter().map(|w| sign * w).collect();
        m.intercept = sign * fitted.intercept();
        Ok(m)
    }

    /// Log-odds of `x`.
    pub fn logit(&self, x: &[f64]) -> f64 {
        self.logit_transformed(x.iter().map(|&v| transform(self.log_inputs, v)))
    }

    /// Log-odds of inputs already passed through the input transform.
    fn logit_transformed(&self, t: impl Iterator<Item = f64>) -> f64 {
        let mut z = self.intercept;
        for (j, v) in t.enumerate() {
            z += self.coef[j] * ((v - self.mean[j]) / self.std[j]);
        }
        z
    }

    /// Per-input contribution to the log-odds (`coef_j · standardised x_j`).
    pub fn contributions(&self, x: &[f64]) -> Vec<f64> {
        x.iter()
            .enumerate()
            .map(|(j, &v)| self.coef[j] * self.standardized(j, v))
            .collect()
    }

    pub fn prob(&self, x: &[f64]) -> f64 {
        sigmoid(self.logit(x))
    }

    /// [`Self::prob`] of a row already passed through the input transform ([`squash`] when
    /// `log_inputs`, else finite values kept and the rest 0): bit-identical, without transforming
    /// again.
    pub fn prob_transformed(&self, t: &[f64]) -> f64 {
        sigmoid(self.logit_transformed(t.iter().copied()))
    }
}

pub fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Log-odds of a probability, clamped to ±13.8 (p in [1e-6, 1 − 1e-6]).
pub fn logit(p: f64) -> f64 {
    let p = if p.is_nan() {
        0.5
    } else {
        p.clamp(1e-6, 1.0 - 1e-6)
    };
    (p / (1.0 - p)).ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squash_skips_the_logarithm_only_where_it_gives_the_same_bits() {
        let formula = |x: f64| {
            let x = if x.is_nan() { 0.0 } else { x.clamp(-1e6, 1e6) };
            x.signum() * x.abs().ln_1p()
        };
        for x in [0.0, -0.0, 1e-300, -2.5, 7.0, 1e9, f64::NAN, f64::INFINITY] {
            assert_eq!(squash(x).to_bits(), formula(x).to_bits(), "{x}");
        }
    }

    #[test]
    fn separates_a_linear_boundary() {
        let rows: Vec<Vec<f64>> = (0..200).map(|i| vec![i as f64 / 10.0, 1.0]).collect();
        let y: Vec<bool> = (0..200).map(|i| i >= 120).collect();
        let m = Logistic::fit(&rows, &y, &LogisticParams::default(), false).unwrap();
        assert!(m.prob(&[15.0, 1.0]) > 0.9);
        assert!(m.prob(&[5.0, 1.0]) < 0.1);
        let c = m.contributions(&[15.0, 1.0]);
        assert!((c.iter().sum::<f64>() + m.intercept - m.logit(&[15.0, 1.0])).abs() < 1e-9);
        assert_eq!(c[1], 0.0, "a constant input contributes nothing");
    }
}
