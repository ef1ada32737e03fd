//! `smartflow evaluate-wallets` and `smartflow wallets`.

use crate::config::Config;
use crate::wallets::evaluate::evaluate_wallets as run_evaluation;
use crate::wallets::follow::score_all;
use crate::wallets::leaderboard::{as_snapshot, read_leaderboard, AccountKind};
use crate::wallets::report::write_report;
use crate::wallets::snapshot::{load_snapshots, Snapshot};
use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;

fn default_snapshots() -> Vec<PathBuf> {
    vec![crate::feeds::shared_data_dir().join("hyperliquid/kittycapital_whales")]
}

#[derive(Args, Debug)]
pub struct EvaluateWalletsArgs {
    /// Snapshot JSON files, folders of them, or .tar.xz archives (default:
    /// $SMARTFLOW_DATA/hyperliquid/kittycapital_whales).
    #[arg(long, num_args = 1.., value_name = "PATHS")]
    pub data: Vec<PathBuf>,
    /// Report folder.
    #[arg(long, default_value = "state/wallet-evaluation", value_name = "DIR")]
    pub out: PathBuf,
    /// Random wallet selections to compare with.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub draws: u64,
    /// Seed of the random selections and the day resampling (same seed, same report).
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

#[derive(Args, Debug)]
pub struct WalletsArgs {
    /// Snapshot JSON files, folders of them, or .tar.xz archives (default:
    /// $SMARTFLOW_DATA/hyperliquid/kittycapital_whales).
    #[arg(long, num_args = 1.., value_name = "PATHS")]
    pub data: Vec<PathBuf>,
    /// Also list the wallets left out (vaults, market makers, too new) and those past top_n.
    #[arg(long)]
    pub all: bool,
    /// Score a Hyperliquid leaderboard instead of snapshots: a file, or an http(s) URL such as
    /// https://stats-data.hyperliquid.xyz/Mainnet/leaderboard (read as it streams in).
    #[arg(long, value_name = "FILE|URL", conflicts_with = "data")]
    pub leaderboard: Option<String>,
}

fn paths(given: Vec<PathBuf>) -> Vec<PathBuf> {
    if given.is_empty() {
        default_snapshots()
    } else {
        given
    }
}

pub fn evaluate_wallets(cfg: &Config, a: EvaluateWalletsArgs) -> Result<()> {
    let snaps = load_snapshots(&paths(a.data))?;
    eprintln!("{} wallet snapshots loaded; evaluating …", snaps.len());
    let e = run_evaluation(&snaps, &cfg.wallets, a.draws as usize, a.seed);
    let files = write_report(&e, &a.out)?;
    println!("{}", e.verdict);
    for f in files {
        println!("  {}", f.display());
    }
    Ok(())
}

/// A leaderboard as one snapshot (its four windows stand for the history snapshots give).
fn leaderboard_snapshot(src: &str, cfg: &crate::wallets::WalletsConfig) -> Result<Snapshot> {
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
    eprintln!(
        "leaderboard {src}: {n} rows in {:.2} s ({} vaults, {} market makers)",
        started.elapsed().as_secs_f64(),
        kinds(AccountKind::Vault),
        kinds(AccountKind::MarketMaker),
    );
    let now = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    Ok(as_snapshot(&rows, now, src))
}

pub fn wallets(cfg: &Config, a: WalletsArgs) -> Result<()> {
    let mut wcfg = cfg.wallets.clone();
    let snaps = match &a.leaderboard {
        Some(src) => {
            wcfg.min_observations = 1;
            vec![leaderboard_snapshot(src, &wcfg)?]
        }
        None => load_snapshots(&paths(a.data))?,
    };
    let scores = score_all(&snaps, &wcfg).pop().unwrap_or_default();
    let last = snaps.last().map(|s| s.source.clone()).unwrap_or_default();
    println!("wallets at {last} ({} scored)", scores.len());
    println!(
        "{:<44} {:>16} {:>6} {:>6} {:>6} {:>6} {:>7}  why",
        "address", "account USD", "perf", "size", "recent", "regime", "weight"
    );
    let mut followed = 0;
    for s in &scores {
        let why = match s.excluded {
            Some(x) => format!("left out: {}", serde_json::to_string(&x)?.trim_matches('"')),
            None if followed < wcfg.top_n => {
                followed += 1;
                format!("followed: #{followed} by weight")
            }
            None => "not in the top_n".to_string(),
        };
        if !a.all && !why.starts_with("followed") {
            continue;
        }
        let d = &s.dims;
        println!(
            "{:<44} {:>16.0} {:>6.2} {:>6.2} {:>6.2} {:>6.2} {:>7.3}  {why}",
            s.address, s.account_value, d.performance, d.size, d.recency, d.regime_fit, s.weight
        );
    }
    Ok(())
}
