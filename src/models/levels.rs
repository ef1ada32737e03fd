//! Alert levels (the pre-pump scanner's "multi-level alerting"): `watch`, `alert`, `strong`.
//!
//! A signal's ensemble probability maps to the highest level whose threshold it reaches. The
//! thresholds are picked on the calibration events at training and stored in the manifest, from
//! the calibration alerts (fired at the operating threshold, as a live session fires them):
//! `watch` is the operating threshold (every signal is at least a watch); `alert` and `strong`
//! the lowest probabilities above which at least [`MIN_ALERTS`] alerts were pumps in at least
//! 75 % and 90 % of cases. A level no threshold qualifies for is left out. Each level carries its
//! expected precision: of the calibration alerts whose probability falls in the level's band,
//! the share inside a pump window, with the counts behind it.

use super::labels::LabelConfig;
use super::metrics::{AlertGate, AlertRule, Episode};
use serde::{Deserialize, Serialize};

/// Level names, lowest first.
pub const LEVELS: [&str; 3] = ["watch", "alert", "strong"];

/// Precision the alerts at or above `alert` and `strong` reached on the calibration events.
const PRECISION: [f64; 2] = [0.75, 0.9];

/// Fewest calibration alerts a level's threshold may rest on.
pub const MIN_ALERTS: usize = 5;

/// One level: its threshold (probability) and what it meant on the calibration events.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertLevel {
    pub name: String,
    /// Lowest ensemble probability of the level.
    pub threshold: f64,
    /// Calibration alerts whose probability fell in this level's band.
    pub alerts: usize,
    /// Of those, alerts inside a pump window.
    pub true_alerts: usize,
    /// `true_alerts / alerts`; `None` when the band held no alert.
    pub precision: Option<f64>,
}

/// Picks the levels on calibration `episodes` and their ensemble `scores` (aligned with each
/// episode's rows); `operating` is the model's operating threshold.
pub fn pick(
    episodes: &[Episode],
    scores: &[Vec<f64>],
    operating: f64,
    rule: AlertRule,
    lc: &LabelConfig,
) -> Vec<AlertLevel> {
    // Calibration alerts: (probability, inside a pump window), highest first.
    let mut alerts: Vec<(f64, bool)> = Vec::new();
    for (ep, sc) in episodes.iter().zip(scores) {
        let mut gate = AlertGate::default();
        for (&ts, &s) in ep.ts.iter().zip(sc) {
            if gate.step(rule, ts, s, operating) {
                let pump = ep.event.as_ref().is_some_and(|e| lc.in_pump_window(e, ts));
                alerts.push((s, pump));
            }
        }
    }
    alerts.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut thresholds = vec![operating];
    for q in PRECISION {
        // The lowest probability whose alerts at or above it reach precision q.
        let (mut n, mut hits, mut best) = (0usize, 0usize, None);
        for (i, &(p, pump)) in alerts.iter().enumerate() {
            n += 1;
            hits += pump as usize;
            let last_of_tie = alerts.get(i + 1).is_none_or(|x| x.0 < p);
            if last_of_tie && n >= MIN_ALERTS && hits as f64 >= q * n as f64 {
                best = Some(p);
            }
        }
        match best {
            Some(t) => thresholds.push(t.max(*thresholds.last().unwrap_or(&operating))),
            None => break,
        }
    }
    (0..thresholds.len())
        .map(|k| {
            let band = |p: f64| level_index(&thresholds, p) == Some(k);
            let n = alerts.iter().filter(|a| band(a.0)).count();
            let hits = alerts.iter().filter(|a| band(a.0) && a.1).count();
            AlertLevel {
                name: LEVELS[k].to_string(),
                threshold: thresholds[k],
                alerts: n,
                true_alerts: hits,
                precision: (n > 0).then(|| hits as f64 / n as f64),
            }
        })
        .collect()
}

/// Index of the highest threshold `p` reaches (thresholds ascending); `None` below the first.
fn level_index(thresholds: &[f64], p: f64) -> Option<usize> {
    thresholds.iter().rposition(|&t| p >= t)
}

/// The level of probability `p`: the highest one it reaches, `None` below all of them.
pub fn level_of(levels: &[AlertLevel], p: f64) -> Option<&AlertLevel> {
    levels.iter().rev().find(|l| p >= l.threshold)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::labels::{Label, PumpEvent};

    fn episode(name: &str, event: Option<PumpEvent>, n: usize) -> Episode {
        Episode {
            name: name.into(),
            event,
            ts: (0..n as i64).map(|i| i * 3_600_000).collect(),
            labels: vec![Label::Normal; n],
        }
    }

    #[test]
    fn levels_rest_on_the_precision_of_the_calibration_alerts() {
        let lc = LabelConfig::default();
        let rule = AlertRule::from_secs(900, 0);
        // Ten pump episodes (pump at row 10) and one calm one; rows 1 h apart.
        let ev = |k: usize| PumpEvent {
            file: format!("p{k}"),
            pair: "P/BTC".into(),
            announced_ms: 10 * 3_600_000,
            lamorgia_ms: None,
            start_ms: 10 * 3_600_000,
            others: vec![],
        };
        let mut eps: Vec<Episode> = (0..10).map(|k| episode("p", Some(ev(k)), 50)).collect();
        eps.push(episode("calm", None, 50));
        // Pumps score 0.55 + 0.04 k (0.55 … 0.91); false alarms at 0.5, 0.52, 0.56 and 0.6.
        let mut scores: Vec<Vec<f64>> = (0..10)
            .map(|k| {
                let mut s = vec![0.01; 50];
                s[10] = 0.55 + 0.04 * k as f64;
                s
            })
            .collect();
        let mut calm = vec![0.01; 50];
        for (i, p) in [(5, 0.5), (15, 0.52), (25, 0.56), (35, 0.6)] {
            calm[i] = p;
        }
        scores.push(calm);
        let lv = pick(&eps, &scores, 0.45, rule, &lc);
        let names: Vec<&str> = lv.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["watch", "alert", "strong"], "{lv:?}");
        // At or above 0.52: 10 pumps of 13 alerts (76.9 %, ≥ 75 %); at 0.5, 10 of 14 (71 %).
        // At or above 0.59: 9 of 10 (90 %); at 0.56, 9 of 11.
        let t: Vec<f64> = lv.iter().map(|l| l.threshold).collect();
        assert!(
            (t[0] - 0.45).abs() < 1e-12 && (t[1] - 0.52).abs() < 1e-9,
            "{lv:?}"
        );
        assert!((t[2] - 0.59).abs() < 1e-9, "{lv:?}");
        // Band counts: watch [0.45, 0.52) holds the 0.5 false alarm; alert [0.52, 0.59) two
        // false alarms and the 0.55 pump; strong the rest.
        let counts: Vec<(usize, usize)> = lv.iter().map(|l| (l.alerts, l.true_alerts)).collect();
        assert_eq!(counts, [(1, 0), (3, 1), (10, 9)]);
        assert_eq!(lv[2].precision, Some(0.9));
        // Every calibration alert lands in exactly one band: 10 pumps + 4 false alarms.
        assert_eq!(lv.iter().map(|l| l.alerts).sum::<usize>(), 14);
        assert_eq!(lv.iter().map(|l| l.true_alerts).sum::<usize>(), 10);
        assert_eq!(level_of(&lv, 0.3), None);
        assert_eq!(level_of(&lv, 0.5).unwrap().name, "watch");
        // With too few alerts no upper level is claimed.
        let few = pick(&eps[..2], &scores[..2], 0.45, rule, &lc);
        assert_eq!(few.len(), 1, "{few:?}");
    }
}
