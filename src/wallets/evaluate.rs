//! `smartflow evaluate-wallets`: does following the weighted smart-money consensus pay, on
//! recorded snapshots, against random wallets of similar account value and leverage, holding
//! BTC, and doing nothing — after Hyperliquid's taker fees, with a confidence interval from
//! resampling days.

use super::config::WalletsConfig;
use super::follow::{followed, random_matched, score_all, selection_targets, simulate};
use super::follow::{top_selection, Selection, Step};
use super::score::WalletScore;
use super::snapshot::Snapshot;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::collections::BTreeMap;

/// Figures of one followed book over the evaluation.
#[derive(Clone, Debug, Serialize)]
pub struct CurveSummary {
    pub name: String,
    /// Compounded return after fees and slippage (0.05 = +5 %).
    pub total_return: f64,
    pub steps: usize,
    pub steps_exposed: usize,
    /// Share of exposed steps whose net return was positive.
    pub hit_rate_steps: Option<f64>,
    /// Share of held coin positions (coin × step) that gained before costs.
    pub hit_rate_positions: Option<f64>,
    /// Σ fees and slippage, as a share of equity.
    pub costs: f64,
    pub max_drawdown: f64,
    /// 95 % interval of the total return when the days are resampled (2 000 draws).
    pub ci95: (f64, f64),
    /// Equity after each step, starting at 1: (step end, Unix ms; equity).
    pub equity: Vec<(i64, f64)>,
}

/// The whole evaluation (`evaluation.json`).
#[derive(Clone, Debug, Serialize)]
pub struct WalletEvaluation {
    pub snapshots: usize,
    pub first_ms: i64,
    pub last_ms: i64,
    pub config: WalletsConfig,
    pub follow: CurveSummary,
    pub follow_one_snapshot_late: CurveSummary,
    pub btc_hold: CurveSummary,
    pub nothing: CurveSummary,
    /// Random matched wallets: one summary per draw is too much; these are their figures.
    pub random: RandomSummary,
    /// The followed wallets at the last snapshot, best first.
    pub last_selection: Vec<WalletScore>,
    pub unpriced_positions: usize,
    pub verdict: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct RandomSummary {
    pub draws: usize,
    pub median_total_return: f64,
    pub p05_total_return: f64,
    pub p95_total_return: f64,
    /// Share of draws whose total return the followed book beat.
    pub follow_beats: f64,
    /// Equity of the median draw, for the plot.
    pub median_equity: Vec<(i64, f64)>,
}

fn compound(rets: impl Iterator<Item = f64>) -> f64 {
    rets.fold(1.0, |e, r| e * (1.0 + r)) - 1.0
}

fn quantile(mut xs: Vec<f64>, q: f64) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[((xs.len() - 1) as f64 * q).round() as usize]
}

/// 95 % interval of the compounded return over days drawn with replacement.
fn day_bootstrap(steps: &[Step], rng: &mut StdRng) -> (f64, f64) {
    let mut days: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for s in steps {
        days.entry(s.from_ms.div_euclid(86_400_000))
            .or_default()
            .push(s.net);
    }
    let days: Vec<Vec<f64>> = days.into_values().collect();
    if days.is_empty() {
        return (0.0, 0.0);
    }
    let draws: Vec<f64> = (0..2000)
        .map(|_| {
            let picked = (0..days.len()).map(|_| &days[rng.random_range(0..days.len())]);
            compound(picked.flat_map(|d| d.iter().copied()))
        })
        .collect();
    (quantile(draws.clone(), 0.025), quantile(draws, 0.975))
}

/// Summarises a curve's steps.
pub fn summarize(name: &str, steps: &[Step], rng: &mut StdRng) -> CurveSummary {
    let (mut eq, mut peak, mut dd) = (1.0f64, 1.0f64, 0.0f64);
    let mut equity = Vec::new();
    for s in steps {
        eq *= 1.0 + s.net;
        peak = peak.max(eq);
        dd = dd.max(1.0 - eq / peak);
        equity.push((s.to_ms, eq));
    }
    let exposed: Vec<&Step> = steps.iter().filter(|s| s.positions > 0).collect();
    let held: usize = exposed.iter().map(|s| s.positions).sum();
    let won: usize = exposed.iter().map(|s| s.positions_won).sum();
    let share = |a: usize, b: usize| (b > 0).then(|| a as f64 / b as f64);
    CurveSummary {
        name: name.to_string(),
        total_return: eq - 1.0,
        steps: steps.len(),
        steps_exposed: exposed.len(),
        hit_rate_steps: share(
            exposed.iter().filter(|s| s.net > 0.0).count(),
            exposed.len(),
        ),
        hit_rate_positions: share(won, held),
        costs: steps.iter().map(|s| s.cost).sum(),
        max_drawdown: dd,
        ci95: day_bootstrap(steps, rng),
        equity,
    }
}

fn random_summary(
    snaps: &[Snapshot],
    scores: &[Vec<WalletScore>],
    top: &Selection,
    cfg: &WalletsConfig,
    follow_total: f64,
    draws: usize,
    rng: &mut StdRng,
) -> RandomSummary {
    let mut runs: Vec<(f64, Vec<(i64, f64)>)> = (0..draws)
        .map(|_| {
            let sel = random_matched(scores, top, rng);
            let steps = simulate(snaps, &selection_targets(snaps, &sel, cfg), 0, cfg);
            let mut e = 1.0;
            let curve = steps
                .iter()
                .map(|s| {
                    e *= 1.0 + s.net;
                    (s.to_ms, e)
                })
                .collect();
            (e - 1.0, curve)
        })
        .collect();
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let totals: Vec<f64> = runs.iter().map(|r| r.0).collect();
    RandomSummary {
        draws,
        median_total_return: quantile(totals.clone(), 0.5),
        p05_total_return: quantile(totals.clone(), 0.05),
        p95_total_return: quantile(totals.clone(), 0.95),
        follow_beats: totals.iter().filter(|t| follow_total > **t).count() as f64 / draws as f64,
        median_equity: runs.swap_remove(draws / 2).1,
    }
}

/// What the figures say, plainly.
fn verdict(e: &WalletEvaluation) -> String {
    let f = &e.follow;
    let pct = |x: f64| format!("{:+.2} %", 100.0 * x + 0.0);
    let ci_has_zero = f.ci95.0 <= 0.0 && f.ci95.1 >= 0.0;
    let edge = if f.total_return <= e.random.median_total_return || ci_has_zero {
        "no edge shown"
    } else if e.random.follow_beats >= 0.95 && f.total_return > e.btc_hold.total_return {
        "an edge over random wallets and over holding BTC on this period"
    } else {
        "better than the median random wallets, but not clearly (inside their spread or behind BTC)"
    };
    format!(
        "Following the top {} wallets returned {} after fees (95 % day-resampled interval {} to {}); \
         random wallets of similar size and leverage: median {} ({:.0} % of draws beaten); BTC {}; \
         one snapshot late: {}. Verdict: {edge}. {} snapshots over {:.1} days is a short sample.",
        e.config.top_n,
        pct(f.total_return),
        pct(f.ci95.0),
        pct(f.ci95.1),
        pct(e.random.median_total_return),
        100.0 * e.random.follow_beats,
        pct(e.btc_hold.total_return),
        pct(e.follow_one_snapshot_late.total_return),
        e.snapshots,
        (e.last_ms - e.first_ms) as f64 / 86_400_000.0,
    )
}

/// Runs the evaluation on snapshots in time order; `draws` random selections; `seed` fixes them.
pub fn evaluate_wallets(
    snaps: &[Snapshot],
    cfg: &WalletsConfig,
    draws: usize,
    seed: u64,
) -> WalletEvaluation {
    let mut rng = StdRng::seed_from_u64(seed);
    let scores = score_all(snaps, cfg);
    let top = top_selection(&scores, cfg);
    let targets = selection_targets(snaps, &top, cfg);
    let follow = simulate(snaps, &targets, 0, cfg);
    let late = simulate(snaps, &targets, 1, cfg);
    let btc: Vec<BTreeMap<String, f64>> = snaps
        .iter()
        .map(|_| [("BTC".to_string(), 1.0)].into())
        .collect();
    let none: Vec<BTreeMap<String, f64>> = vec![BTreeMap::new(); snaps.len()];
    let follow_sum = summarize("follow top wallets", &follow, &mut rng);
    let random = random_summary(
        snaps,
        &scores,
        &top,
        cfg,
        follow_sum.total_return,
        draws.max(1),
        &mut rng,
    );
    let mut e = WalletEvaluation {
        snapshots: snaps.len(),
        first_ms: snaps.first().map_or(0, |s| s.ts_ms),
        last_ms: snaps.last().map_or(0, |s| s.ts_ms),
        config: cfg.clone(),
        unpriced_positions: follow.iter().map(|s| s.unpriced).sum(),
        follow_one_snapshot_late: summarize("follow, one snapshot late", &late, &mut rng),
        btc_hold: summarize("hold BTC", &simulate(snaps, &btc, 0, cfg), &mut rng),
        nothing: summarize("do nothing", &simulate(snaps, &none, 0, cfg), &mut rng),
        follow: follow_sum,
        random,
        last_selection: scores
            .last()
            .map(|s| followed(s, cfg).cloned().collect())
            .unwrap_or_default(),
        verdict: String::new(),
    };
    e.verdict = verdict(&e);
    e
}
