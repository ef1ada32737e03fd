//! Following the weighted consensus of the selected wallets, snapshot to snapshot.
//!
//! At each snapshot *i* the wallets are scored on history up to *i*; the selected wallets'
//! books at *i* give a per-coin consensus; the follower holds the target weights from the price at
//! snapshot *i + lag* to *i + lag + 1* (the price at a snapshot is what a follower reading it can
//! trade at, less `lag_slippage_bps`), paying taker fee and slippage on every change of exposure.

use super::config::WalletsConfig;
use super::score::{History, WalletScore};
use super::snapshot::{Snapshot, WalletRow};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// The weighted consensus on one coin: −1 (all short) to 1 (all long), and the distinct
/// followed wallets holding it on each side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Consensus {
    pub value: f64,
    pub wallets_long: usize,
    pub wallets_short: usize,
}

/// Per-coin consensus of `chosen` wallets (weight, book): Σ weight × signed share of the
/// wallet's book in the coin / Σ weight.
pub fn consensus(chosen: &[(f64, &WalletRow)]) -> BTreeMap<String, Consensus> {
    let total: f64 = chosen.iter().map(|(w, _)| w).sum();
    let mut out: BTreeMap<String, Consensus> = BTreeMap::new();
    if total <= 0.0 {
        return out;
    }
    for (weight, row) in chosen {
        let gross: f64 = row.positions.iter().map(|p| p.value).sum();
        if gross <= 0.0 {
            continue;
        }
        for p in &row.positions {
            let c = out.entry(p.coin.clone()).or_default();
            let sign = if p.long { 1.0 } else { -1.0 };
            c.value += weight * sign * p.value / gross / total;
            if p.long {
                c.wallets_long += 1;
            } else {
                c.wallets_short += 1;
            }
        }
    }
    out
}

/// Target weights (share of equity, short < 0) from a consensus: coins past `min_consensus` with
/// `min_wallets` on their side, in proportion to their consensus, each capped at
/// `max_coin_weight`, gross at most 1.
pub fn target_weights(
    cons: &BTreeMap<String, Consensus>,
    cfg: &WalletsConfig,
) -> BTreeMap<String, f64> {
    let strong: Vec<(&String, f64)> = cons
        .iter()
        .filter(|(_, c)| {
            let side = if c.value > 0.0 {
                c.wallets_long
            } else {
                c.wallets_short
            };
            c.value.abs() >= cfg.min_consensus && c.value != 0.0 && side >= cfg.min_wallets
        })
        .map(|(k, c)| (k, c.value))
        .collect();
    let sum: f64 = strong.iter().map(|(_, v)| v.abs()).sum();
    strong
        .into_iter()
        .map(|(k, v)| {
            let w = (v / sum).clamp(-cfg.max_coin_weight, cfg.max_coin_weight);
            (k.clone(), w)
        })
        .collect()
}

/// One holding period of a followed book.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Step {
    pub from_ms: i64,
    pub to_ms: i64,
    pub weights: BTreeMap<String, f64>,
    /// Σ weight × coin return, before costs.
    pub gross: f64,
    /// Fees and slippage on the exposure changed at the start (and the final exit).
    pub cost: f64,
    pub net: f64,
    /// Coin positions held this step and those that gained.
    pub positions: usize,
    pub positions_won: usize,
    /// Coins wanted but left out: no price at one end of the step.
    pub unpriced: usize,
}

/// The wallets each snapshot's scoring selects, as (weight, address).
pub type Selection = Vec<Vec<(f64, String)>>;

/// Scores at every snapshot, on history up to it.
pub fn score_all(snaps: &[Snapshot], cfg: &WalletsConfig) -> Vec<Vec<WalletScore>> {
    let mut h = History::default();
    snaps
        .iter()
        .map(|s| {
            h.push(s);
            h.score(cfg)
        })
        .collect()
}

/// The wallets followed among one snapshot's scores (best first): the best `top_n` not
/// excluded.
pub fn followed<'a>(
    scores: &'a [WalletScore],
    cfg: &WalletsConfig,
) -> impl Iterator<Item = &'a WalletScore> {
    let ok = scores.iter().filter(|s| s.excluded.is_none());
    ok.take(cfg.top_n)
}

/// The followed wallets of every snapshot, with their weights.
pub fn top_selection(scores: &[Vec<WalletScore>], cfg: &WalletsConfig) -> Selection {
    let pick = |sc: &[WalletScore]| {
        followed(sc, cfg)
            .map(|s| (s.weight, s.address.clone()))
            .collect()
    };
    scores.iter().map(|sc| pick(sc)).collect()
}

/// For every selected wallet, a random other eligible wallet of similar account value (within
/// ×/÷ 10^0.5) and leverage (within ×/÷ 2), else the nearest in account value; it takes the
/// replaced wallet's weight.
pub fn random_matched(scores: &[Vec<WalletScore>], top: &Selection, rng: &mut StdRng) -> Selection {
    scores
        .iter()
        .zip(top)
        .map(|(sc, chosen)| {
            let taken: BTreeSet<&String> = chosen.iter().map(|(_, a)| a).collect();
            let mut pool: Vec<&WalletScore> = sc
                .iter()
                .filter(|s| s.excluded.is_none() && !taken.contains(&s.address))
                .collect();
            pool.shuffle(rng);
            let by_addr: BTreeMap<&String, &WalletScore> =
                sc.iter().map(|s| (&s.address, s)).collect();
            let mut out = Vec::new();
            for (w, a) in chosen {
                let Some(me) = by_addr.get(a) else { continue };
                let lav = |s: &WalletScore| s.account_value.max(1.0).log10();
                let similar = pool.iter().position(|s| {
                    (lav(s) - lav(me)).abs() <= 0.5
                        && s.leverage <= me.leverage * 2.0
                        && s.leverage >= me.leverage / 2.0
                });
                let nearest = || {
                    (0..pool.len()).min_by(|&i, &j| {
                        (lav(pool[i]) - lav(me))
                            .abs()
                            .total_cmp(&(lav(pool[j]) - lav(me)).abs())
                    })
                };
                if let Some(k) = similar.or_else(nearest) {
                    out.push((*w, pool.swap_remove(k).address.clone()));
                }
            }
            out
        })
        .collect()
}

/// Target weights at each snapshot from a selection.
pub fn selection_targets(
    snaps: &[Snapshot],
    sel: &Selection,
    cfg: &WalletsConfig,
) -> Vec<BTreeMap<String, f64>> {
    snaps
        .iter()
        .zip(sel)
        .map(|(s, chosen)| {
            let rows: BTreeMap<&String, &WalletRow> =
                s.wallets.iter().map(|w| (&w.address, w)).collect();
            let picked: Vec<(f64, &WalletRow)> = chosen
                .iter()
                .filter_map(|(w, a)| rows.get(a).map(|r| (*w, *r)))
                .collect();
            target_weights(&consensus(&picked), cfg)
        })
        .collect()
}

/// Holds `targets[i]` from snapshot `i + lag` to `i + lag + 1`; the book is closed after the
/// last step (its cost counted there).
pub fn simulate(
    snaps: &[Snapshot],
    targets: &[BTreeMap<String, f64>],
    lag: usize,
    cfg: &WalletsConfig,
) -> Vec<Step> {
    let cost_rate = (cfg.taker_fee_bps + cfg.lag_slippage_bps) / 10_000.0;
    let mut held: BTreeMap<String, f64> = BTreeMap::new();
    let mut steps = Vec::new();
    for (i, want) in targets.iter().enumerate() {
        let (Some(a), Some(b)) = (snaps.get(i + lag), snaps.get(i + lag + 1)) else {
            break;
        };
        let priced = |c: &String| a.prices.contains_key(c) && b.prices.contains_key(c);
        let weights: BTreeMap<String, f64> = want
            .iter()
            .filter(|(c, _)| priced(c))
            .map(|(c, w)| (c.clone(), *w))
            .collect();
        let coins: BTreeSet<&String> = weights.keys().chain(held.keys()).collect();
        let turnover: f64 = coins
            .iter()
            .map(|c| (weights.get(*c).unwrap_or(&0.0) - held.get(*c).unwrap_or(&0.0)).abs())
            .sum();
        let rets: Vec<f64> = weights
            .iter()
            .map(|(c, w)| w * (b.prices[c] / a.prices[c] - 1.0))
            .collect();
        let gross: f64 = rets.iter().sum();
        let cost = turnover * cost_rate;
        steps.push(Step {
            from_ms: a.ts_ms,
            to_ms: b.ts_ms,
            positions: weights.len(),
            positions_won: rets.iter().filter(|r| **r > 0.0).count(),
            unpriced: want.len() - weights.len(),
            weights: weights.clone(),
            gross,
            cost,
            net: gross - cost,
        });
        held = weights;
    }
    if let Some(last) = steps.last_mut() {
        let exit = held.values().map(|w| w.abs()).sum::<f64>() * cost_rate;
        last.cost += exit;
        last.net -= exit;
    }
    steps
}
