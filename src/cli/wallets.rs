//! `smartflow evaluate-wallets` and `smartflow wallets`.

use crate::config::Config;
use crate::wallets::evaluate::evaluate_wallets as run_evaluation;
use crate::wallets::follow::score_all;
use crate::wallets::report::write_report;
use crate::wallets::select::load_leaderboard;
use crate::wallets::snapshot::load_snapshots;
use anyhow::Result;
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

pub fn wallets(cfg: &Config, a: WalletsArgs) -> Result<()> {
    let mut wcfg = cfg.wallets.clone();
    let snaps = match &a.leaderboard {
        Some(src) => {
            wcfg.min_observations = 1;
            let now = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
            let (snap, summary) = load_leaderboard(src, &wcfg, now)?;
            eprintln!("{summary}");
            vec![snap]
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
