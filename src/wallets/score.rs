//! Wallet weighting in four dimensions, each in [0, 1] and shown separately, combined by the
//! config's weights: **performance** (PnL and ROI of the day and week windows, ranked, and their
//! consistency: the share of observed windows in profit), **size** (account value, ranked),
//! **recency** (half-life decay since the wallet last changed its positions) and **regime fit**
//! (the wallet's past position returns in steps of the current BTC-volatility regime). Vaults and
//! market makers are recognised and excluded.
//!
//! Only what is known at the scoring time is used: the history holds snapshots up to it.

use super::config::WalletsConfig;
use super::snapshot::{Snapshot, WalletRow};
use serde::Serialize;
use std::collections::BTreeMap;

/// Why a wallet is not followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Exclusion {
    /// No traded volume in any window seen and an account value over `vault_min_account_value`.
    Vault,
    /// Window volume over `mm_volume_ratio` × account value, or a book whose net is under
    /// `mm_net_ratio` of its gross (hedged both ways).
    MarketMaker,
    /// Fewer than `min_observations` snapshots of history.
    TooNew,
}

/// The four dimensions of a wallet's weight, each in [0, 1].
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Dims {
    pub performance: f64,
    pub size: f64,
    pub recency: f64,
    pub regime_fit: f64,
}

/// A scored wallet at one time.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WalletScore {
    pub address: String,
    pub name: Option<String>,
    pub account_value: f64,
    pub dims: Dims,
    /// Σ weight × dimension / Σ weights.
    pub weight: f64,
    pub excluded: Option<Exclusion>,
    /// Mean leverage of the open positions (1 with none).
    pub leverage: f64,
}

#[derive(Clone, Debug, Default)]
struct Track {
    obs: usize,
    pnl_sum: [f64; 2],
    roi_sum: [f64; 2],
    windows: [usize; 2],
    in_profit: usize,
    zero_volume_everywhere: bool,
    max_volume_ratio: f64,
    last_change_ms: i64,
    signature: Vec<(String, bool, i64)>,
    /// Σ and count of the wallet's position returns per regime (calm, volatile).
    regime_ret: [(f64, usize); 2],
}

/// What is known about every wallet up to the newest snapshot pushed.
#[derive(Clone, Debug, Default)]
pub struct History {
    tracks: BTreeMap<String, Track>,
    last: Option<Snapshot>,
    btc_vols: Vec<f64>,
}

/// A signature of a book: coins, sides and sizes to 3 significant figures.
fn signature(w: &WalletRow) -> Vec<(String, bool, i64)> {
    let mut s: Vec<_> = w
        .positions
        .iter()
        .map(|p| {
            let mag = 10f64.powi(2 - p.size.log10().floor() as i32);
            (p.coin.clone(), p.long, (p.size * mag).round() as i64)
        })
        .collect();
    s.sort();
    s
}

/// Signed return of a wallet's book from `a` to `b` prices, weighted by position value.
pub fn book_return(w: &WalletRow, a: &Snapshot, b: &Snapshot) -> Option<f64> {
    let (mut num, mut den) = (0.0, 0.0);
    for p in &w.positions {
        let (Some(pa), Some(pb)) = (a.prices.get(&p.coin), b.prices.get(&p.coin)) else {
            continue;
        };
        let sign = if p.long { 1.0 } else { -1.0 };
        num += p.value * sign * (pb / pa - 1.0);
        den += p.value;
    }
    (den > 0.0).then(|| num / den)
}

impl History {
    /// The regime of the newest step: 1 (volatile) when BTC's latest hourly-scaled move is above
    /// the median of the moves before it, else 0 (calm; also while fewer than 4 are known).
    pub fn regime(&self) -> usize {
        let Some((last, before)) = self.btc_vols.split_last() else {
            return 0;
        };
        if before.len() < 4 {
            return 0;
        }
        let mut b = before.to_vec();
        b.sort_by(f64::total_cmp);
        usize::from(*last > b[b.len() / 2])
    }

    /// Adds snapshot `s` (newer than every one before).
    pub fn push(&mut self, s: &Snapshot) {
        let regime = self.regime();
        if let Some(prev) = &self.last {
            if let (Some(a), Some(b)) = (prev.prices.get("BTC"), s.prices.get("BTC")) {
                let hours = ((s.ts_ms - prev.ts_ms) as f64 / 3.6e6).max(1.0 / 60.0);
                self.btc_vols.push((b / a).ln().abs() / hours.sqrt());
            }
            for w in &prev.wallets {
                if let (Some(r), Some(t)) =
                    (book_return(w, prev, s), self.tracks.get_mut(&w.address))
                {
                    t.regime_ret[regime].0 += r;
                    t.regime_ret[regime].1 += 1;
                }
            }
        }
        for w in &s.wallets {
            let t = self
                .tracks
                .entry(w.address.clone())
                .or_insert_with(|| Track {
                    zero_volume_everywhere: true,
                    last_change_ms: s.ts_ms,
                    ..Track::default()
                });
            t.obs += 1;
            for (k, win) in [w.day, w.week].iter().enumerate() {
                let Some(win) = win else { continue };
                t.pnl_sum[k] += win.pnl;
                t.roi_sum[k] += win.roi;
                t.windows[k] += 1;
                t.in_profit += usize::from(win.pnl > 0.0);
                t.zero_volume_everywhere &= win.volume == 0.0;
                let ratio = win.volume / w.account_value.max(1.0);
                t.max_volume_ratio = t.max_volume_ratio.max(ratio);
            }
            let sig = signature(w);
            if sig != t.signature {
                t.last_change_ms = s.ts_ms;
                t.signature = sig;
            }
        }
        self.last = Some(s.clone());
    }

    /// Scores the wallets of the newest snapshot, best first (excluded ones last).
    pub fn score(&self, cfg: &WalletsConfig) -> Vec<WalletScore> {
        let Some(snap) = &self.last else {
            return vec![];
        };
        let regime = self.regime();
        let rows: Vec<(&WalletRow, &Track)> = snap
            .wallets
            .iter()
            .filter_map(|w| self.tracks.get(&w.address).map(|t| (w, t)))
            .collect();
        let mean = |t: &Track, k: usize, s: [f64; 2]| s[k] / t.windows[k].max(1) as f64;
        let ranks = |f: &dyn Fn(&WalletRow, &Track) -> f64| {
            pct_ranks(&rows.iter().map(|(w, t)| f(w, t)).collect::<Vec<_>>())
        };
        let perf_parts = [
            ranks(&|_, t| mean(t, 0, t.pnl_sum)),
            ranks(&|_, t| mean(t, 0, t.roi_sum)),
            ranks(&|_, t| mean(t, 1, t.pnl_sum)),
            ranks(&|_, t| mean(t, 1, t.roi_sum)),
        ];
        let size = ranks(&|w, _| w.account_value.max(1.0).ln());
        // Shrunk towards 0 with few observations (3 pseudo-observations at 0).
        let fit = ranks(&|_, t| t.regime_ret[regime].0 / (t.regime_ret[regime].1 as f64 + 3.0));
        let mut out: Vec<WalletScore> = rows
            .iter()
            .enumerate()
            .map(|(i, (w, t))| {
                let windows = (t.windows[0] + t.windows[1]).max(1) as f64;
                let consistency = t.in_profit as f64 / windows;
                let ranked = perf_parts.iter().map(|p| p[i]).sum::<f64>() / 4.0;
                let age_h = (snap.ts_ms - t.last_change_ms) as f64 / 3.6e6;
                let dims = Dims {
                    performance: 0.5 * ranked + 0.5 * consistency,
                    size: size[i],
                    recency: 0.5f64.powf(age_h / cfg.recency_half_life_hours),
                    regime_fit: fit[i],
                };
                WalletScore {
                    address: w.address.clone(),
                    name: w.name.clone(),
                    account_value: w.account_value,
                    weight: cfg.weights.combine(&dims),
                    dims,
                    excluded: exclusion(w, t, cfg),
                    leverage: mean_leverage(w),
                }
            })
            .collect();
        out.sort_by(|a, b| {
            (a.excluded.is_some(), -a.weight, &a.address)
                .partial_cmp(&(b.excluded.is_some(), -b.weight, &b.address))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        out
    }
}

fn mean_leverage(w: &WalletRow) -> f64 {
    if w.positions.is_empty() {
        return 1.0;
    }
    w.positions.iter().map(|p| p.leverage).sum::<f64>() / w.positions.len() as f64
}

fn exclusion(w: &WalletRow, t: &Track, cfg: &WalletsConfig) -> Option<Exclusion> {
    if t.zero_volume_everywhere && w.account_value > cfg.vault_min_account_value {
        return Some(Exclusion::Vault);
    }
    let gross: f64 = w.positions.iter().map(|p| p.value).sum();
    let net: f64 = w
        .positions
        .iter()
        .map(|p| if p.long { p.value } else { -p.value })
        .sum();
    let hedged = w.positions.len() >= 4 && net.abs() < cfg.mm_net_ratio * gross;
    if t.max_volume_ratio > cfg.mm_volume_ratio || hedged {
        return Some(Exclusion::MarketMaker);
    }
    (t.obs < cfg.min_observations).then_some(Exclusion::TooNew)
}

/// Percentile ranks in [0, 1] (ties share their mean rank; one value: 0.5).
pub fn pct_ranks(xs: &[f64]) -> Vec<f64> {
    let n = xs.len();
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|&a, &b| xs[a].total_cmp(&xs[b]));
    let mut out = vec![0.5; n];
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && xs[idx[j + 1]] == xs[idx[i]] {
            j += 1;
        }
        let r = if n > 1 {
            (i + j) as f64 / 2.0 / (n - 1) as f64
        } else {
            0.5
        };
        for k in &idx[i..=j] {
            out[*k] = r;
        }
        i = j + 1;
    }
    out
}
