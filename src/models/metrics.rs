//! Detection metrics over episodes (one instrument's rows from one trade file).
//!
//! - **Alerts**: a row whose score reaches the threshold, at most one per `cooldown` per episode
//!   unless the episode re-armed after a calm spell ([`AlertRule`]); an alert's time is its row's
//!   time (the buy it was built at: when a streaming detector knows).
//! - **Flagged within X s**: the event has an alert in `[start − pre_secs, start + X]`.
//! - **False alarm**: an alert outside every pump window `[start − pre_secs, start + post_secs]`
//!   of the episode; per instrument-week of non-pump time (episode span minus pump windows).
//! - **Precision / recall / F1 at the threshold**: precision = alerts inside pump windows / all
//!   alerts; recall = events flagged within 60 s.
//! - **PR-AUC**: average precision over rows labelled pump vs normal (ignored rows left out); its
//!   95 % interval resamples whole episodes with replacement.

use super::iforest::SplitMix64;
use super::labels::{Label, LabelConfig, PumpEvent};
use serde::Serialize;

/// Horizons of the detection table, seconds.
pub const HORIZONS: [i64; 4] = [5, 15, 25, 60];
const WEEK_MS: f64 = 7.0 * 86_400_000.0;

/// One episode's rows, time-ordered.
#[derive(Clone, Debug, Default)]
pub struct Episode {
    pub name: String,
    pub event: Option<PumpEvent>,
    pub ts: Vec<i64>,
    pub labels: Vec<Label>,
}

impl Episode {
    /// Non-pump time covered, in weeks.
    pub fn normal_weeks(&self, lc: &LabelConfig) -> f64 {
        let (Some(&a), Some(&b)) = (self.ts.first(), self.ts.last()) else {
            return 0.0;
        };
        let mut windows: Vec<(i64, i64)> = self
            .event
            .iter()
            .flat_map(|e| e.starts())
            .map(|s| {
                (
                    (s - lc.pre_secs * 1000).max(a),
                    (s + lc.post_secs * 1000).min(b),
                )
            })
            .filter(|w| w.1 > w.0)
            .collect();
        windows.sort();
        let mut covered = 0i64;
        let mut end = i64::MIN;
        for (s, e) in windows {
            let s = s.max(end);
            if e > s {
                covered += e - s;
                end = e;
            }
        }
        ((b - a) - covered) as f64 / WEEK_MS
    }
}

/// When a row scoring at or above the threshold becomes an alert (per instrument).
///
/// At most one alert per `cooldown_ms`, so one burst is one alert, except that the instrument
/// re-arms once no row has scored at or above half the threshold for `rearm_ms`: a new burst after
/// a calm spell (a pump minutes after a false alarm) is alerted, not swallowed by the cooldown.
/// `rearm_ms = 0` keeps the plain cooldown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AlertRule {
    pub cooldown_ms: i64,
    pub rearm_ms: i64,
}

impl AlertRule {
    /// From the `cooldown_secs` / `rearm_secs` of `[train]` or a manifest.
    pub fn from_secs(cooldown_secs: i64, rearm_secs: i64) -> Self {
        Self {
            cooldown_ms: cooldown_secs * 1000,
            rearm_ms: rearm_secs * 1000,
        }
    }
}

/// One instrument's alert state under an [`AlertRule`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AlertGate {
    last_alert: Option<i64>,
    /// Time of the last row at or above half the threshold.
    last_high: Option<i64>,
}

impl AlertGate {
    /// The lowest score that can change the gate under `rule`: any score below it (or a row not
    /// scored at all, fed as `-inf`) leaves it exactly as a score of 0 would.
    pub fn floor(rule: AlertRule, threshold: f64) -> f64 {
        if rule.rearm_ms > 0 {
            threshold.min(threshold * 0.5)
        } else {
            threshold
        }
    }

    /// Feeds one scored row (time order); true when it is an alert.
    pub fn step(&mut self, rule: AlertRule, ts_ms: i64, score: f64, threshold: f64) -> bool {
        let armed = self
            .last_alert
            .is_none_or(|l| ts_ms - l >= rule.cooldown_ms)
            || (rule.rearm_ms > 0 && self.last_high.is_none_or(|h| ts_ms - h >= rule.rearm_ms));
        let alert = score >= threshold && armed;
        if alert {
            self.last_alert = Some(ts_ms);
        }
        if score >= threshold * 0.5 {
            self.last_high = Some(ts_ms);
        }
        alert
    }
}

/// Alert times of one episode.
pub fn alerts(ts: &[i64], scores: &[f64], threshold: f64, rule: AlertRule) -> Vec<i64> {
    let mut gate = AlertGate::default();
    ts.iter()
        .zip(scores)
        .filter(|&(&t, &s)| gate.step(rule, t, s, threshold))
        .map(|(&t, _)| t)
        .collect()
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Detection {
    pub events: usize,
    /// Events flagged within each of [`HORIZONS`].
    pub flagged: [usize; 4],
    /// Delay of the first detection (alert − start, s; may be negative), per flagged event (60 s).
    pub delays: Vec<f64>,
    pub alerts: usize,
    pub true_alerts: usize,
    pub false_alarms: usize,
    pub normal_weeks: f64,
}

impl Detection {
    pub fn rate(&self, h: usize) -> f64 {
        if self.events == 0 {
            return f64::NAN;
        }
        self.flagged[h] as f64 / self.events as f64
    }
    pub fn fa_per_week(&self) -> f64 {
        if self.normal_weeks <= 0.0 {
            return f64::NAN;
        }
        self.false_alarms as f64 / self.normal_weeks
    }
    pub fn precision(&self) -> f64 {
        if self.alerts == 0 {
            return f64::NAN;
        }
        self.true_alerts as f64 / self.alerts as f64
    }
    pub fn recall(&self) -> f64 {
        self.rate(3)
    }
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r > 0.0 {
            2.0 * p * r / (p + r)
        } else {
            0.0
        }
    }
}

/// `[start − pre_secs, start + 60 s]` of an event: where an alert counts as its detection.
pub fn recall_window(ev: &PumpEvent, lc: &LabelConfig) -> (i64, i64) {
    (ev.start_ms - lc.pre_secs * 1000, ev.start_ms + 60_000)
}

/// The first of an episode's `alerts` inside its event's [`recall_window`]; `None` when the
/// event does not count for recall (no event, or its start lies outside the episode's rows).
pub fn first_hit(ep: &Episode, alerts: &[i64], lc: &LabelConfig) -> Option<Option<i64>> {
    let ev = ep.event.as_ref()?;
    let (&first, &last) = (ep.ts.first()?, ep.ts.last()?);
    if ev.start_ms < first || ev.start_ms > last {
        return None;
    }
    let (lo, hi) = recall_window(ev, lc);
    Some(alerts.iter().copied().find(|&a| a >= lo && a <= hi))
}

/// Detection statistics of `scores[e]` (aligned with `episodes[e].ts`).
pub fn detection(
    episodes: &[Episode],
    scores: &[Vec<f64>],
    threshold: f64,
    rule: AlertRule,
    lc: &LabelConfig,
) -> Detection {
    let mut d = Detection::default();
    for (ep, sc) in episodes.iter().zip(scores) {
        let al = alerts(&ep.ts, sc, threshold, rule);
        d.alerts += al.len();
        d.normal_weeks += ep.normal_weeks(lc);
        let Some(ev) = &ep.event else {
            d.false_alarms += al.len();
            continue;
        };
        for &a in &al {
            if lc.in_pump_window(ev, a) {
                d.true_alerts += 1;
            } else {
                d.false_alarms += 1;
            }
        }
        let Some(first_hit) = first_hit(ep, &al, lc) else {
            continue;
        };
        d.events += 1;
        for (h, &secs) in HORIZONS.iter().enumerate() {
            if first_hit.is_some_and(|a| a <= ev.start_ms + secs * 1000) {
                d.flagged[h] += 1;
            }
        }
        if let Some(a) = first_hit {
            d.delays.push((a - ev.start_ms) as f64 / 1000.0);
        }
    }
    d
}

/// Sorts `pairs` by score, highest first, and walks the distinct scores (ties form one step):
/// per step, the cumulative true and false positives at that threshold and the pumps it adds.
fn pr_steps(pairs: &mut [(f64, bool)]) -> Vec<(usize, usize, usize)> {
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut out = Vec::new();
    let mut i = 0;
    while i < pairs.len() {
        let mut j = i;
        let mut step_tp = 0;
        while j < pairs.len() && pairs[j].0 == pairs[i].0 {
            if pairs[j].1 {
                step_tp += 1;
            } else {
                fp += 1;
            }
            j += 1;
        }
        tp += step_tp;
        out.push((tp, fp, step_tp));
        i = j;
    }
    out
}

/// Average precision of `(score, is_pump)` pairs (rows labelled ignore left out by the caller).
pub fn average_precision(pairs: &mut [(f64, bool)]) -> f64 {
    let total_pos = pairs.iter().filter(|p| p.1).count();
    if total_pos == 0 {
        return f64::NAN;
    }
    let mut ap = 0.0;
    for (tp, fp, step_tp) in pr_steps(pairs) {
        if step_tp > 0 {
            ap += (step_tp as f64 / total_pos as f64) * (tp as f64 / (tp + fp) as f64);
        }
    }
    ap
}

/// Precision–recall curve points `(recall, precision)`, one per distinct score.
pub fn pr_curve(pairs: &mut [(f64, bool)]) -> Vec<(f64, f64)> {
    let total_pos = pairs.iter().filter(|p| p.1).count().max(1);
    pr_steps(pairs)
        .into_iter()
        .map(|(tp, fp, _)| (tp as f64 / total_pos as f64, tp as f64 / (tp + fp) as f64))
        .collect()
}

/// `(score, is_pump)` of the pump and normal rows of the picked episodes (ignored rows left out).
pub fn pairs_of(episodes: &[Episode], scores: &[Vec<f64>], pick: &[usize]) -> Vec<(f64, bool)> {
    let mut out = Vec::new();
    for &e in pick {
        for (l, &s) in episodes[e].labels.iter().zip(&scores[e]) {
            match l {
                Label::Pump => out.push((s, true)),
                Label::Normal => out.push((s, false)),
                Label::Ignore => {}
            }
        }
    }
    out
}

/// PR-AUC over all rows, with a percentile 95 % interval from `resamples` bootstrap draws of whole
/// episodes (seeded).
pub fn pr_auc_ci(
    episodes: &[Episode],
    scores: &[Vec<f64>],
    resamples: usize,
    seed: u64,
) -> (f64, f64, f64) {
    let all: Vec<usize> = (0..episodes.len()).collect();
    let point = average_precision(&mut pairs_of(episodes, scores, &all));
    let mut rng = SplitMix64::new(seed);
    let mut draws = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        let pick: Vec<usize> = (0..episodes.len())
            .map(|_| rng.below(episodes.len().max(1)))
            .collect();
        let ap = average_precision(&mut pairs_of(episodes, scores, &pick));
        if ap.is_finite() {
            draws.push(ap);
        }
    }
    draws.sort_by(f64::total_cmp);
    let q = |p: f64| {
        if draws.is_empty() {
            f64::NAN
        } else {
            draws[((draws.len() - 1) as f64 * p).round() as usize]
        }
    };
    (point, q(0.025), q(0.975))
}

/// Lowest threshold whose false alarms per instrument-week stay ≤ `target` (binary search over
/// score quantiles; false alarms fall as the threshold rises).
pub fn pick_threshold(
    episodes: &[Episode],
    scores: &[Vec<f64>],
    target: f64,
    rule: AlertRule,
    lc: &LabelConfig,
) -> f64 {
    let mut all: Vec<f64> = scores
        .iter()
        .flatten()
        .copied()
        .filter(|s| s.is_finite())
        .collect();
    if all.is_empty() {
        return 1.0;
    }
    all.sort_by(f64::total_cmp);
    // Candidates: the upper tail, densely (false alarms are rare events).
    let n = all.len();
    let mut cands: Vec<f64> = (0..=2000)
        .map(|k| {
            let q = 1.0 - (1.0 - 0.9) * (1.0 - k as f64 / 2000.0).powi(3);
            all[((n - 1) as f64 * q).round() as usize]
        })
        .collect();
    cands.push(all[n - 1] + 1e-9);
    cands.dedup();
    let ok = |t: f64| detection(episodes, scores, t, rule, lc).fa_per_week() <= target;
    let (mut lo, mut hi) = (0usize, cands.len() - 1);
    if ok(cands[0]) {
        return cands[0];
    }
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if ok(cands[mid]) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    cands[hi]
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOLDOWN: AlertRule = AlertRule {
        cooldown_ms: 600_000,
        rearm_ms: 0,
    };

    #[test]
    fn a_calm_spell_rearms_the_cooldown_but_a_sustained_burst_stays_one_alert() {
        let lc = LabelConfig::default();
        let start = 7 * 86_400_000;
        let e = ep(start);
        let at = |t: i64| (t / 5000 - 1) as usize;
        let mut s = vec![0.0; e.ts.len()];
        // A false alarm 5 min before the pump, then calm, then the pump at +5 s.
        s[at(start - 300_000)] = 0.9;
        s[at(start + 5000)] = 0.9;
        // Elsewhere a burst held above half the threshold for 3 minutes, peaking twice.
        let b = 3 * 86_400_000;
        for t in (b..b + 180_000).step_by(5000) {
            s[at(t)] = 0.6;
        }
        s[at(b)] = 0.9;
        s[at(b + 170_000)] = 0.9;
        let one = |s: &Vec<f64>, rule| {
            detection(
                std::slice::from_ref(&e),
                std::slice::from_ref(s),
                0.85,
                rule,
                &lc,
            )
        };
        let plain = one(&s, COOLDOWN);
        assert_eq!(
            plain.flagged,
            [0, 0, 0, 0],
            "the cooldown swallowed the pump"
        );
        assert_eq!(plain.false_alarms, 2);
        let rearm = AlertRule {
            cooldown_ms: 600_000,
            rearm_ms: 60_000,
        };
        let d = one(&s, rearm);
        assert_eq!(d.flagged, [1, 1, 1, 1]);
        assert_eq!(d.delays, vec![5.0]);
        // The burst's second peak never had a calm minute before it: still one alert.
        assert_eq!(d.false_alarms, 2);
        let ts = &e.ts;
        assert_eq!(
            alerts(ts, &s, 0.85, rearm),
            vec![b, start - 300_000, start + 5000]
        );
    }

    fn ep(start: i64) -> Episode {
        // One row per 5 s over 2 weeks.
        let ts: Vec<i64> = (1..=(14 * 17_280)).map(|i| i * 5000).collect();
        let ev = PumpEvent {
            file: "f".into(),
            pair: "X/BTC".into(),
            announced_ms: start,
            lamorgia_ms: None,
            start_ms: start,
            others: vec![],
        };
        let lc = LabelConfig::default();
        let labels = ts.iter().map(|&t| lc.label(&ev, t)).collect();
        Episode {
            name: "f".into(),
            event: Some(ev),
            ts,
            labels,
        }
    }

    #[test]
    fn hand_made_case_gives_known_answers() {
        let lc = LabelConfig::default();
        let start = 7 * 86_400_000;
        let e = ep(start);
        let mut s = vec![0.0; e.ts.len()];
        let at = |t: i64| (t / 5000 - 1) as usize;
        // Detection 10 s after the start, and two false alarms a day apart.
        s[at(start + 10_000)] = 0.9;
        s[at(start + 15_000)] = 0.9; // same alert (cooldown)
        s[at(86_400_000)] = 0.8;
        s[at(2 * 86_400_000)] = 0.95;
        let d = detection(
            std::slice::from_ref(&e),
            std::slice::from_ref(&s),
            0.85,
            COOLDOWN,
            &lc,
        );
        assert_eq!(d.events, 1);
        assert_eq!(d.flagged, [0, 1, 1, 1]);
        assert_eq!(d.delays, vec![10.0]);
        assert_eq!(d.alerts, 2);
        assert_eq!(d.false_alarms, 1);
        assert!((d.precision() - 0.5).abs() < 1e-12);
        assert!((d.f1() - 2.0 / 3.0).abs() < 1e-12);
        let weeks = (e.ts.last().unwrap() - e.ts[0] - 720_000) as f64 / WEEK_MS;
        assert!((d.normal_weeks - weeks).abs() < 1e-12);
        // Lower threshold: the 0.8 false alarm counts too.
        let d2 = detection(
            std::slice::from_ref(&e),
            std::slice::from_ref(&s),
            0.5,
            COOLDOWN,
            &lc,
        );
        assert_eq!(d2.false_alarms, 2);
        // Target 0.6 per week: one false alarm in ~2 weeks passes, two do not.
        let t = pick_threshold(std::slice::from_ref(&e), &[s], 0.6, COOLDOWN, &lc);
        assert!(t > 0.8 && t <= 0.9, "{t}");
    }

    #[test]
    fn average_precision_known_values() {
        // Ranking: P N P N → AP = (1/2)(1/1) + (1/2)(2/3) = 5/6.
        let mut p = vec![(0.9, true), (0.8, false), (0.7, true), (0.1, false)];
        assert!((average_precision(&mut p) - 5.0 / 6.0).abs() < 1e-12);
        let mut perfect = vec![(0.9, true), (0.8, true), (0.1, false)];
        assert_eq!(average_precision(&mut perfect), 1.0);
        let c = pr_curve(&mut p);
        assert_eq!(c[0], (0.5, 1.0));
        assert_eq!(*c.last().unwrap(), (1.0, 0.5));
    }
}
