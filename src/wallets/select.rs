//! The wallets to follow from a Hyperliquid leaderboard (a file, or the stats endpoint's URL),
//! for the `track_wallets` command a session sends into its stream when it (re)reads it.

use super::config::WalletsConfig;
use super::follow::{followed, score_all};
use super::leaderboard::{as_snapshot, read_leaderboard, AccountKind};
use super::score::WalletScore;
use super::snapshot::Snapshot;
use crate::domain::command::TrackedWallet;
use anyhow::{Context, Result};
use rust_decimal::Decimal;

/// A leaderboard (file or http(s) URL, read as it streams in) as one snapshot at `now_ms` (its
/// windows stand for the history snapshots give), with a one-line summary (rows, vaults,
/// market makers, seconds).
pub fn load_leaderboard(src: &str, cfg: &WalletsConfig, now_ms: i64) -> Result<(Snapshot, String)> {
    let started = std::time::Instant::now();
    let mut rows = Vec::new();
    let n = if src.starts_with("http://") || src.starts_with("https://") {
        let resp = ureq::get(src)
            .call()
            .with_context(|| format!("GET {src}"))?;
        read_leaderboard(resp.into_body().into_reader(), cfg, |r| rows.push(r))?
    } else {
        let f = std::fs::File::open(src).with_context(|| format!("cannot open {src}"))?;
        read_leaderboard(f, cfg, |r| rows.push(r))?
    };
    let kinds = |k| rows.iter().filter(|r| r.kind == k).count();
    let summary = format!(
        "leaderboard {src}: {n} rows in {:.2} s ({} vaults, {} market makers)",
        started.elapsed().as_secs_f64(),
        kinds(AccountKind::Vault),
        kinds(AccountKind::MarketMaker),
    );
    Ok((as_snapshot(&rows, now_ms, src), summary))
}

/// Scores of one leaderboard snapshot (one observation is enough: the windows are its history).
pub fn leaderboard_scores(snap: Snapshot, cfg: &WalletsConfig) -> Vec<WalletScore> {
    let cfg = WalletsConfig {
        min_observations: 1,
        ..cfg.clone()
    };
    score_all(&[snap], &cfg).pop().unwrap_or_default()
}

fn dec6(x: f64) -> Decimal {
    Decimal::from_f64_retain(x).unwrap_or_default().round_dp(6)
}

/// The followed wallets among `scores` (best `top_n` not excluded), heaviest first.
pub fn tracked(scores: &[WalletScore], cfg: &WalletsConfig) -> Vec<TrackedWallet> {
    followed(scores, cfg)
        .map(|s| TrackedWallet {
            address: s.address.to_ascii_lowercase(),
            weight: dec6(s.weight),
            performance: dec6(s.dims.performance),
            size: dec6(s.dims.size),
            recency: dec6(s.dims.recency),
            regime_fit: dec6(s.dims.regime_fit),
            account_value: dec6(s.account_value).round_dp(2),
        })
        .collect()
}

/// Reads the leaderboard at `src` and picks the wallets to follow (heaviest first), with the
/// leaderboard's summary line.
pub fn pick_wallets(
    src: &str,
    cfg: &WalletsConfig,
    now_ms: i64,
) -> Result<(Vec<TrackedWallet>, String)> {
    let (snap, summary) = load_leaderboard(src, cfg, now_ms)?;
    Ok((tracked(&leaderboard_scores(snap, cfg), cfg), summary))
}
