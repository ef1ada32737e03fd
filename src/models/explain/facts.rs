//! The 45 model inputs grouped into the market facts a trader reads, with each fact's figures
//! in plain units.
//!
//! An input belongs to one fact: the same fact measured at several window lengths (5/15/25 s) or
//! by several statistics (La Morgia's rolling std and mean, our z-scores) is one fact. A fact's
//! contribution is the sum of its inputs'.

use crate::features::{feature_names, FeatureSnapshot};
use std::collections::BTreeMap;

/// Fact keys, in display order for ties.
pub const FACTS: [&str; 9] = [
    "trade_burst",
    "volume_burst",
    "rush_orders",
    "price_jump",
    "momentum",
    "buy_share",
    "trade_size",
    "quiet_before",
    "day_novelty",
];

/// The fact an input (a [`feature_names`] entry) belongs to.
pub fn fact_of(input: &str) -> &'static str {
    let f = |k: &str| input.contains(k);
    if f("day_max") || f("day_high") {
        "day_novelty"
    } else if f("rush") {
        "rush_orders"
    } else if f("trades") && !f("max_trade") {
        "trade_burst"
    } else if f("volume") {
        "volume_burst"
    } else if f("price") {
        // lm*.std_price, lm*.avg_price, lm*.avg_price_max, price_jump_*
        "price_jump"
    } else if f("ret_") || f("vwap") {
        "momentum"
    } else if f("buy_share") {
        "buy_share"
    } else if f("size_ratio") || f("max_trade_share") {
        "trade_size"
    } else if f("quiet") {
        "quiet_before"
    } else {
        "other"
    }
}

/// A fact's figures in plain units (counts, %, ratios, z-scores), from the row's inputs and the
/// feature window at the signal; non-finite figures are left out.
pub fn figures(fact: &str, x: &[f64], snap: &FeatureSnapshot) -> BTreeMap<String, f64> {
    let input = |name: &str| {
        feature_names()
            .iter()
            .position(|n| n == name)
            .map_or(f64::NAN, |i| x[i])
    };
    let pct = |name: &str| input(name) * 100.0;
    let c25 = &snap.chunks[2];
    let v: Vec<(&str, f64)> = match fact {
        "trade_burst" => vec![
            ("buys_25s", c25.trades),
            ("z_25s", input("z_trades_25s")),
            ("z_5s", input("z_trades_5s")),
        ],
        "volume_burst" => vec![
            ("quote_volume_25s", c25.quote_volume),
            ("z_25s", input("z_quote_volume_25s")),
            ("z_5s", input("z_quote_volume_5s")),
        ],
        "rush_orders" => vec![
            ("rush_orders_25s", c25.rush_orders),
            ("z_25s", input("z_rush_orders_25s")),
        ],
        "price_jump" => vec![
            ("jump_5s_pct", pct("price_jump_5s")),
            ("jump_25s_pct", pct("price_jump_25s")),
        ],
        "momentum" => vec![
            ("ret_1m_pct", pct("ret_1m")),
            ("ret_5m_pct", pct("ret_5m")),
            ("vwap_dev_pct", pct("vwap_dev")),
        ],
        "buy_share" => vec![("buy_share_pct", pct("buy_share_5s"))],
        "trade_size" => vec![
            ("mean_buy_vs_hour", input("size_ratio_5s")),
            ("largest_buy_pct", pct("max_trade_share_5s")),
        ],
        "quiet_before" => vec![("volume_15m_vs_hour", input("quiet_ratio"))],
        "day_novelty" => vec![
            ("buys_vs_day_max", input("trades_25s_day_max")),
            ("volume_vs_day_max", input("qv_25s_day_max")),
            ("high_vs_day_high_pct", input("high_25s_day_high")),
        ],
        _ => vec![],
    };
    v.into_iter()
        .filter(|(_, x)| x.is_finite())
        .map(|(k, x)| (k.to_string(), x))
        .collect()
}

/// The figure that stands for a fact in a driver's `value` (its first one present; NaN when the
/// fact has none).
pub fn headline(f: &super::Fact) -> f64 {
    let key = match f.fact.as_str() {
        "trade_burst" | "volume_burst" | "rush_orders" => "z_25s",
        "price_jump" => "jump_25s_pct",
        "momentum" => "ret_1m_pct",
        "buy_share" => "buy_share_pct",
        "trade_size" => "mean_buy_vs_hour",
        "quiet_before" => "volume_15m_vs_hour",
        "day_novelty" => "buys_vs_day_max",
        _ => "",
    };
    f.figures.get(key).copied().unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_input_belongs_to_a_named_fact() {
        for n in feature_names() {
            let f = fact_of(n);
            assert!(FACTS.contains(&f), "{n} → {f}");
        }
        assert_eq!(fact_of("lm25.std_trades"), "trade_burst");
        assert_eq!(fact_of("trades_25s_day_max"), "day_novelty");
        assert_eq!(fact_of("max_trade_share_5s"), "trade_size");
        assert_eq!(fact_of("lm5.avg_price_max"), "price_jump");
        assert_eq!(fact_of("lm15.avg_volume"), "volume_burst");
        assert_eq!(fact_of("z_rush_orders_5s"), "rush_orders");
        assert_eq!(fact_of("vwap_dev"), "momentum");
        // Every fact has at least one input.
        for f in FACTS {
            assert!(feature_names().iter().any(|n| fact_of(n) == f), "{f}");
        }
    }
}
