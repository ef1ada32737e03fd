//! Plain-text rendering of an [`Explanation`] (the console: `log`, `log show`). Figures are
//! rounded for a reader; the JSONL export keeps the raw numbers.

use super::{Explanation, Fact};

/// A fact's name for a reader.
pub fn fact_label(fact: &str) -> &str {
    match fact {
        "trade_burst" => "trade burst",
        "volume_burst" => "volume burst",
        "rush_orders" => "rush orders",
        "price_jump" => "price jump",
        "momentum" => "price trend",
        "buy_share" => "buy share",
        "trade_size" => "trade sizes",
        "quiet_before" => "quiet before the storm",
        "day_novelty" => "novelty vs the day",
        other => other,
    }
}

/// Three significant digits, without exponent for ordinary magnitudes (`1.23`, `0.0412`, `512`).
pub fn sig3(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let digits = (2 - x.abs().log10().floor() as i32).clamp(0, 12) as usize;
    format!("{x:.digits$}")
}

/// The fact's figures as one phrase, e.g. `buys in 25 s: 33, z +32.7 vs the last hour`;
/// `quote` names the quote currency of volumes.
pub fn fact_text(f: &Fact, quote: &str) -> String {
    let g = |k: &str| f.figures.get(k).copied();
    let mut parts: Vec<String> = Vec::new();
    let mut push = |v: Option<f64>, fmt: &dyn Fn(f64) -> String| {
        if let Some(v) = v {
            parts.push(fmt(v));
        }
    };
    match f.fact.as_str() {
        "trade_burst" => {
            push(g("buys_25s"), &|v| format!("buys in 25 s: {v:.0}"));
            push(g("z_25s"), &|v| format!("z {v:+.1} vs the last hour"));
            push(g("z_5s"), &|v| format!("5 s: z {v:+.1}"));
        }
        "volume_burst" => {
            push(g("quote_volume_25s"), &|v| {
                format!("buy volume in 25 s: {} {quote}", sig3(v))
            });
            push(g("z_25s"), &|v| format!("z {v:+.1} vs the last hour"));
            push(g("z_5s"), &|v| format!("5 s: z {v:+.1}"));
        }
        "rush_orders" => {
            push(g("rush_orders_25s"), &|v| {
                format!("rush orders (ms with several buys) in 25 s: {v:.0}")
            });
            push(g("z_25s"), &|v| format!("z {v:+.1} vs the last hour"));
        }
        "price_jump" => {
            push(g("jump_25s_pct"), &|v| {
                format!("top price {v:+.1} % over the hour's mean in 25 s")
            });
            push(g("jump_5s_pct"), &|v| format!("{v:+.1} % in 5 s"));
        }
        "momentum" => {
            push(g("ret_1m_pct"), &|v| format!("price {v:+.1} % in 1 min"));
            push(g("ret_5m_pct"), &|v| format!("{v:+.1} % in 5 min"));
            push(g("vwap_dev_pct"), &|v| {
                format!("{v:+.1} % vs the 5 min VWAP")
            });
        }
        "buy_share" => {
            push(g("buy_share_pct"), &|v| {
                format!("buys {v:.0} % of the 5 s volume")
            });
        }
        "trade_size" => {
            push(g("mean_buy_vs_hour"), &|v| {
                format!("mean buy {}× the hour's", sig3(v))
            });
            push(g("largest_buy_pct"), &|v| {
                format!("largest buy {v:.0} % of the 5 s buys")
            });
        }
        "quiet_before" => {
            push(g("volume_15m_vs_hour"), &|v| {
                format!(
                    "buy volume of the 15 min before: {}× the hour before",
                    sig3(v)
                )
            });
        }
        "day_novelty" => {
            push(g("buys_vs_day_max"), &|v| {
                format!("25 s buys {}× the day's busiest", sig3(v))
            });
            push(g("volume_vs_day_max"), &|v| {
                format!("volume {}× the day's top", sig3(v))
            });
            push(g("high_vs_day_high_pct"), &|v| {
                format!("high {v:+.1} % vs the day's high")
            });
        }
        _ => {}
    }
    if parts.is_empty() {
        "no figures (inputs not yet defined)".into()
    } else {
        parts.join(", ")
    }
}

/// One line for `log`: the top `k` facts with their contributions.
pub fn summary(e: &Explanation, k: usize) -> String {
    e.facts
        .iter()
        .take(k)
        .map(|f| format!("{} {:+.2}", fact_label(&f.fact), f.contribution))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The level with its calibration precision, e.g. `strong (9 of 10 calibration alerts at this
/// level were pumps)`.
fn level_text(e: &Explanation) -> String {
    match &e.level {
        None => "no alert levels in this model".into(),
        Some(l) => match l.precision {
            Some(_) => format!(
                "{} ({} of {} calibration alerts at this level were pumps)",
                l.name, l.true_alerts, l.alerts
            ),
            None => format!("{} (no calibration alert at this level)", l.name),
        },
    }
}

/// `log show`'s lines: probability, level, members, and the top `k` facts in plain units.
pub fn lines(e: &Explanation, quote: &str, k: usize) -> Vec<String> {
    let mut out = vec![
        format!(
            "ensemble {}: probability {:.4} (threshold {:.4}), level {}",
            e.model,
            e.probability,
            e.threshold,
            level_text(e)
        ),
        format!(
            "members: {}",
            e.members
                .iter()
                .map(|m| format!("{} {:.3} ({:+.2})", m.name, m.probability, m.term))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        format!(
            "drivers (log-odds; base {:+.2} + all facts = {:+.2}):",
            e.base,
            e.logit - e.unattributed
        ),
    ];
    for f in e.facts.iter().take(k) {
        out.push(format!(
            "  {:+6.2}  {}: {}",
            f.contribution,
            fact_label(&f.fact),
            fact_text(f, quote)
        ));
    }
    if e.unattributed != 0.0 {
        out.push(format!(
            "  {:+6.2}  not split by input (a model without GBM node covers: retrain for TreeSHAP)",
            e.unattributed
        ));
    }
    out
}

/// The full input table (`log show --inputs`): raw value, contribution, and by member.
pub fn input_lines(e: &Explanation) -> Vec<String> {
    let mut out = vec![format!(
        "  {:<22} {:>14} {:>8}   {}",
        "input",
        "value",
        "log-odds",
        e.members
            .iter()
            .map(|m| format!("{:>8}", m.name))
            .collect::<String>()
    )];
    let idx: Vec<usize> = e
        .members
        .iter()
        .filter_map(|m| super::MEMBERS.iter().position(|&n| n == m.name))
        .collect();
    for i in &e.inputs {
        out.push(format!(
            "  {:<22} {:>14} {:>+8.3}   {}",
            i.name,
            i.value.map_or("-".into(), sig3),
            i.contribution,
            idx.iter()
                .map(|&m| format!("{:>+8.3}", i.by_member[m]))
                .collect::<String>()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_rounded_for_a_reader() {
        assert_eq!(sig3(1.23456), "1.23");
        assert_eq!(sig3(0.0412345), "0.0412");
        assert_eq!(sig3(512.4), "512");
        assert_eq!(sig3(32.71), "32.7");
        let f = Fact {
            fact: "trade_burst".into(),
            contribution: 2.4,
            figures: [("buys_25s", 33.0), ("z_25s", 32.71)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        };
        assert_eq!(
            fact_text(&f, "BTC"),
            "buys in 25 s: 33, z +32.7 vs the last hour"
        );
    }
}
