//! Why the ensemble alerted: one [`Explanation`] per signal, built once and read by every output
//! (the decision log and its JSONL export keep it whole; `log show` and Telegram's `/why`
//! render it; none of them attributes anything again).
//!
//! The explanation holds the exact split of the ensemble's log-odds by input ([`attribution`]),
//! the inputs grouped into market facts with their figures in plain units ([`facts`]), each
//! member's probability and stacker term, and the alert level with its calibration precision
//! ([`crate::models::levels`]). `base + Σ inputs + unattributed = logit` (to rounding).

pub mod attribution;
pub mod facts;
pub mod render;

use super::ensemble::{Ensemble, Scores, MEMBERS};
use crate::features::{feature_names, ChunkRow, FeatureSnapshot};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One member's part.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemberPart {
    pub name: String,
    /// The member's probability (rules: score / 100).
    pub probability: f64,
    /// Its stacker term, log-odds of the ensemble.
    pub term: f64,
    /// How its log-odds were split by input.
    pub method: String,
}

/// One market fact: its inputs' summed contribution and its figures in plain units.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fact {
    /// One of [`facts::FACTS`].
    pub fact: String,
    /// Log-odds of the ensemble.
    pub contribution: f64,
    /// Plain-unit figures by name (see [`facts::figures`]).
    pub figures: BTreeMap<String, f64>,
}

/// One model input: its raw value and contribution (total and by member, in
/// [`MEMBERS`] order).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputPart {
    pub name: String,
    /// Raw value; `None` where the input was not yet defined (NaN: a rolling window not full).
    pub value: Option<f64>,
    pub contribution: f64,
    pub by_member: [f64; 4],
}

/// The signal's alert level and what it meant on the calibration events.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Level {
    pub name: String,
    pub threshold: f64,
    /// Calibration alerts at this level, and how many of them were pumps.
    pub alerts: usize,
    pub true_alerts: usize,
    pub precision: Option<f64>,
}

/// Why the ensemble scored a row as it did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    pub model: String,
    pub probability: f64,
    pub threshold: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    /// The ensemble's log-odds (`ln(p / (1 − p))` before rounding).
    pub logit: f64,
    /// Log-odds of a row at every member's base (see [`attribution`]).
    pub base: f64,
    /// Log-odds no input is credited with (a model without GBM node covers), else 0.
    pub unattributed: f64,
    pub members: Vec<MemberPart>,
    /// Largest |contribution| first.
    pub facts: Vec<Fact>,
    /// Every input, in the model's order.
    pub inputs: Vec<InputPart>,
}

impl Explanation {
    /// `base + Σ inputs + unattributed − logit`: what the attribution misses (rounding only).
    pub fn residual(&self) -> f64 {
        let sum: f64 = self.inputs.iter().map(|i| i.contribution).sum();
        self.base + sum + self.unattributed - self.logit
    }
}

impl Ensemble {
    /// Explains a scored row: `rule_points` are the rule score's points by input name, `snap`
    /// the feature window at the row's buy (for the plain-unit figures), `threshold` the
    /// operating threshold the signal passed.
    pub fn explain(
        &self,
        row: &ChunkRow,
        snap: &FeatureSnapshot,
        rule_points: &[(String, f64)],
        scores: &Scores,
        threshold: f64,
    ) -> Explanation {
        let a = self.attribute(row, rule_points, scores);
        let names = feature_names();
        let inputs: Vec<InputPart> = (0..names.len())
            .map(|f| InputPart {
                name: names[f].clone(),
                value: row.x[f].is_finite().then_some(row.x[f]),
                contribution: a.input_total(f),
                by_member: a.by_input[f],
            })
            .collect();
        let mut by_fact: BTreeMap<&str, f64> = BTreeMap::new();
        for i in &inputs {
            *by_fact.entry(facts::fact_of(&i.name)).or_default() += i.contribution;
        }
        let mut fs: Vec<Fact> = facts::FACTS
            .iter()
            .filter_map(|&f| {
                by_fact.get(f).map(|&c| Fact {
                    fact: f.to_string(),
                    contribution: c,
                    figures: facts::figures(f, &row.x, snap),
                })
            })
            .collect();
        // Stable: ties keep the FACTS order.
        fs.sort_by(|x, y| y.contribution.abs().total_cmp(&x.contribution.abs()));
        let members = self
            .active_members()
            .into_iter()
            .map(|m| MemberPart {
                name: MEMBERS[m].to_string(),
                probability: scores.members[m],
                term: a.member_terms[m],
                method: match (m, self.gbm().is_some_and(|g| g.has_covers())) {
                    (3, false) => "not split: the model's gbm.json has no node covers".into(),
                    _ => attribution::METHODS[m].1.to_string(),
                },
            })
            .collect();
        let level = self.manifest.levels.as_deref().and_then(|l| {
            super::levels::level_of(l, scores.prob).map(|l| Level {
                name: l.name.clone(),
                threshold: l.threshold,
                alerts: l.alerts,
                true_alerts: l.true_alerts,
                precision: l.precision,
            })
        });
        Explanation {
            model: self.manifest.version.clone(),
            probability: scores.prob,
            threshold,
            level,
            logit: a.logit,
            base: a.base,
            unattributed: a.unattributed,
            members,
            facts: fs,
            inputs,
        }
    }
}
