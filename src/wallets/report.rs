//! The `evaluate-wallets` report: `report.md`, `evaluation.json` and `equity.png`.

use super::evaluate::{CurveSummary, WalletEvaluation};
use anyhow::{Context, Result};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A signed percentage; a zero is +0.00 (never −0.00).
fn pct(x: f64) -> String {
    format!("{:+.2} %", 100.0 * x + 0.0)
}

fn share(x: Option<f64>) -> String {
    x.map_or("–".into(), |v| format!("{:.1} %", 100.0 * v))
}

fn row(c: &CurveSummary) -> String {
    format!(
        "| {} | {} | {} … {} | {} | {} | {}/{} | {:.2} % | {:.2} % |\n",
        c.name,
        pct(c.total_return),
        pct(c.ci95.0),
        pct(c.ci95.1),
        share(c.hit_rate_steps),
        share(c.hit_rate_positions),
        c.steps_exposed,
        c.steps,
        100.0 * c.costs + 0.0,
        100.0 * c.max_drawdown + 0.0,
    )
}

fn iso(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

/// The Markdown report.
pub fn markdown(e: &WalletEvaluation) -> String {
    let mut md = String::new();
    let c = &e.config;
    let _ = writeln!(md, "# Following Hyperliquid smart money: evaluation\n");
    let _ = writeln!(md, "{}\n", e.verdict);
    let _ = writeln!(
        md,
        "{} snapshots, {} → {}. At each snapshot the wallets are scored on the snapshots up to it \
         (weights: performance {}, size {}, recency {}, regime fit {}); vaults, market makers and wallets \
         with under {} snapshots of history are left out; the top {} give a per-coin weighted \
         consensus; coins past {:.2} with ≥ {} wallets on their side are held, in proportion to \
         their consensus (≤ {:.0} % each, gross ≤ 1× equity) from that snapshot's price to the \
         next. Costs: taker fee {} bps + {} bps for the follower's delay on every change of \
         exposure (drift between snapshots ignored). Prices: the median position value / size of \
         each coin in a snapshot; {} wanted positions had no price at one end and were left out.\n",
        e.snapshots,
        iso(e.first_ms),
        iso(e.last_ms),
        c.weights.performance,
        c.weights.size,
        c.weights.recency,
        c.weights.regime_fit,
        c.min_observations,
        c.top_n,
        c.min_consensus,
        c.min_wallets,
        100.0 * c.max_coin_weight,
        c.taker_fee_bps,
        c.lag_slippage_bps,
        e.unpriced_positions,
    );
    md.push_str("| book | return after costs | 95 % interval (days resampled) | steps in profit | positions in profit | steps exposed | costs | max drawdown |\n|---|---|---|---|---|---|---|---|\n");
    for curve in [
        &e.follow,
        &e.follow_one_snapshot_late,
        &e.btc_hold,
        &e.nothing,
    ] {
        md.push_str(&row(curve));
    }
    let r = &e.random;
    let _ = writeln!(
        md,
        "\nRandom wallets of similar account value and leverage ({} draws): median {}, 5–95 % {} … {}; \
         the followed book beats {:.0} % of them.\n",
        r.draws,
        pct(r.median_total_return),
        pct(r.p05_total_return),
        pct(r.p95_total_return),
        100.0 * r.follow_beats,
    );
    md.push_str("![equity](equity.png)\n\n## Followed at the last snapshot\n\n| wallet | account value (USD) | performance | size | recency | regime fit | weight |\n|---|---|---|---|---|---|---|\n");
    for w in &e.last_selection {
        let _ = writeln!(
            md,
            "| `{}` | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.3} |",
            w.address,
            w.account_value,
            w.dims.performance,
            w.dims.size,
            w.dims.recency,
            w.dims.regime_fit,
            w.weight
        );
    }
    md.push_str("\nThere is no peer-reviewed evidence that copying leaderboard wallets pays; this is one short sample.\n");
    md
}

fn plot(path: &Path, e: &WalletEvaluation) -> Result<()> {
    let days = |ms: i64| (ms - e.first_ms) as f64 / 86_400_000.0;
    let curve = |name: &str, pts: &[(i64, f64)]| {
        let line = std::iter::once((0.0, 1.0)).chain(pts.iter().map(|(t, y)| (days(*t), *y)));
        (name.to_string(), line.collect::<Vec<_>>())
    };
    let curves = [
        curve("follow top wallets", &e.follow.equity),
        curve(
            "follow, one snapshot late",
            &e.follow_one_snapshot_late.equity,
        ),
        curve("random wallets (median draw)", &e.random.median_equity),
        curve("hold BTC", &e.btc_hold.equity),
        curve("do nothing", &e.nothing.equity),
    ];
    let ys = curves.iter().flat_map(|(_, c)| c.iter().map(|p| p.1));
    let (lo, hi) = ys.fold((1.0f64, 1.0f64), |(l, h), y| (l.min(y), h.max(y)));
    let pad = (hi - lo).max(0.01) * 0.05;
    let axes = crate::plot::Axes {
        caption: "Equity of followed books (after fees)",
        x_desc: "days",
        y_desc: "equity (start = 1)",
        x: 0.0..days(e.last_ms).max(0.1),
        y: (lo - pad)..(hi + pad),
        size: (900, 550),
    };
    crate::plot::lines(path, &axes, &curves)
}

/// Writes the report files into `out` (created); returns their paths.
pub fn write_report(e: &WalletEvaluation, out: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let files = [
        out.join("report.md"),
        out.join("evaluation.json"),
        out.join("equity.png"),
    ];
    std::fs::write(&files[0], markdown(e))?;
    std::fs::write(&files[1], serde_json::to_vec_pretty(e)?)?;
    plot(&files[2], e).context("equity plot")?;
    Ok(files.to_vec())
}
