//! Run-time changes of `[risk]` limits (`set` commands), checked by the config file's rules.

use super::RiskConfig;

/// `[risk]` keys a `set` command may change.
pub const SETTABLE_LIMITS: &[&str] = &[
    "max_order_notional",
    "max_position_notional",
    "max_gross_exposure",
    "max_open_positions",
    "daily_loss_limit",
    "max_drawdown_pct",
    "instrument_cooldown_secs",
    "stale_after_ms",
    "max_orders",
    "rate_window_secs",
    "min_order_notional",
];

/// `cfg` with `limit` (a [`SETTABLE_LIMITS`] key, `risk.` prefix optional) set to `value`,
/// validated by the same rules as the config file. Errors name the key and the rule.
pub fn set_limit(cfg: &RiskConfig, limit: &str, value: &str) -> Result<RiskConfig, String> {
    let key = limit.strip_prefix("risk.").unwrap_or(limit);
    if !SETTABLE_LIMITS.contains(&key) {
        return Err(format!(
            "risk.{key}: not a limit that can be set; limits: {}",
            SETTABLE_LIMITS.join(", ")
        ));
    }
    let mut v = serde_json::to_value(cfg).map_err(|e| e.to_string())?;
    let slot = &mut v[key];
    *slot = match slot {
        // Decimals are strings: parse as one so "abc" is refused here, not later.
        serde_json::Value::String(_) => value
            .parse::<rust_decimal::Decimal>()
            .map(|d| serde_json::Value::String(d.to_string()))
            .map_err(|_| format!("risk.{key}: {value:?} is not a decimal number"))?,
        _ => value
            .parse::<i64>()
            .map(serde_json::Value::from)
            .map_err(|_| format!("risk.{key}: {value:?} is not a whole number"))?,
    };
    let next: RiskConfig =
        serde_json::from_value(v).map_err(|e| format!("risk.{key}: {value:?}: {e}"))?;
    next.validate()?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn set_limit_validates_like_the_config_file() {
        let c = RiskConfig::default();
        let n = set_limit(&c, "max_order_notional", "0.005").unwrap();
        assert_eq!(n.max_order_notional, dec!(0.005));
        assert_eq!(
            set_limit(&c, "risk.max_open_positions", "5")
                .unwrap()
                .max_open_positions,
            5
        );
        let e = set_limit(&c, "max_order_notional", "-1").unwrap_err();
        assert!(e.starts_with("risk.max_order_notional"), "{e}");
        let e = set_limit(&c, "max_open_positions", "0").unwrap_err();
        assert!(e.contains("max_open_positions"), "{e}");
        let e = set_limit(&c, "max_open_positions", "-2").unwrap_err();
        assert!(e.contains("max_open_positions"), "{e}");
        let e = set_limit(&c, "max_order_notional", "lots").unwrap_err();
        assert!(e.contains("not a decimal"), "{e}");
        let e = set_limit(&c, "initial_state", "halted").unwrap_err();
        assert!(e.contains("not a limit"), "{e}");
    }
}
