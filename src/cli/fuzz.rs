//! `smartflow fuzz`: mutation fuzzing of every parser of outside input (see [`crate::fuzz`]).

use crate::fuzz::{run_all, targets, TargetReport};
use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct FuzzArgs {
    /// Inputs in all, shared equally by the targets (each starts with its real seeds).
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000_000))]
    pub inputs: u64,
    /// Seed of the mutations (same seed, same inputs).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Worker threads (default: the machine's cores).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub threads: Option<u64>,
    /// Only targets whose name contains this (repeatable).
    #[arg(long, value_name = "NAME")]
    pub target: Vec<String>,
    /// Shared data folder with the captures the seeds come from (default: $SMARTFLOW_DATA or
    /// ../shared/data).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Print the reports as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs the fuzzer; fails when any input panicked or broke an invariant.
pub fn fuzz(a: FuzzArgs) -> Result<()> {
    let data = a.data.unwrap_or_else(crate::feeds::shared_data_dir);
    let mut all = targets(&data)?;
    if !a.target.is_empty() {
        all.retain(|t| a.target.iter().any(|f| t.name.contains(f.as_str())));
    }
    if all.is_empty() {
        bail!("--target matches no fuzz target");
    }
    let per = (a.inputs / all.len() as u64).max(1);
    let threads = a
        .threads
        .map(|t| t as usize)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    eprintln!(
        "fuzzing {} targets × {per} inputs on {threads} threads (seed {})",
        all.len(),
        a.seed
    );
    let started = Instant::now();
    let quiet = a.json;
    let reports = run_all(&all, per, a.seed, threads, &|r| {
        if !quiet {
            eprintln!(
                "  {:<34} {:>9} inputs  {:>5} panics  {:>5} violations  {:>7.1} s",
                r.target, r.inputs, r.panics, r.violations, r.secs
            );
        }
    });
    let secs = started.elapsed().as_secs_f64();
    match a.json {
        true => println!("{}", serde_json::to_string_pretty(&reports)?),
        false => print!("{}", table(&reports, secs)),
    }
    let bad: u64 = reports.iter().map(|r| r.panics + r.violations).sum();
    if bad > 0 {
        bail!("{bad} inputs panicked or broke an invariant (see the findings above)");
    }
    Ok(())
}

/// The figures: per target, then totals and the rejections by reason.
pub fn table(reports: &[TargetReport], secs: f64) -> String {
    let mut s = format!(
        "{:<34} {:>10} {:>10} {:>10} {:>10} {:>7} {:>10}\n",
        "target", "inputs", "accepted", "rejected", "events", "panics", "violations"
    );
    for r in reports {
        s += &format!(
            "{:<34} {:>10} {:>10} {:>10} {:>10} {:>7} {:>10}\n",
            r.target, r.inputs, r.accepted, r.rejected, r.events, r.panics, r.violations
        );
    }
    let sum = |f: fn(&TargetReport) -> u64| reports.iter().map(f).sum::<u64>();
    let inputs = sum(|r| r.inputs);
    s += &format!(
        "total: {inputs} inputs in {secs:.1} s ({:.0}/s), {} accepted, {} rejected, {} panics, {} violations\n",
        inputs as f64 / secs.max(1e-9),
        sum(|r| r.accepted),
        sum(|r| r.rejected),
        sum(|r| r.panics),
        sum(|r| r.violations)
    );
    s += "rejections by reason (top 5 per target):\n";
    for r in reports {
        let mut top: Vec<_> = r.rejects.iter().collect();
        top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (why, n) in top.into_iter().take(5) {
            s += &format!("  {:<34} {n:>10}  {why}\n", r.target);
        }
    }
    for r in reports {
        for f in &r.findings {
            s += &format!(
                "{} in {}: {}\n  input: {:?}\n",
                f.kind,
                r.target,
                f.message,
                f.input.chars().take(300).collect::<String>()
            );
        }
    }
    s
}
