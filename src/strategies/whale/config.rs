//! `[whales]`: which wallets the whale-follow source tracks and when their flow is a signal.

use super::super::prepump::StrategyConfig;
use crate::domain::intent::TakeProfitStep;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[whales]` config: which wallets to follow and when their flow is a signal.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WhaleConfig {
    /// Run the whale-follow source next to the pre-pump detector.
    pub enabled: bool,
    /// Wallet snapshot files, folders or .tar.xz archives; the wallets the `[wallets]` rules
    /// pick at the last snapshot are tracked, with their weights.
    pub snapshots: Vec<PathBuf>,
    /// Or a Hyperliquid leaderboard: a file, or the stats endpoint's URL
    /// (`https://stats-data.hyperliquid.xyz/Mainnet/leaderboard`). A session reads it at its
    /// start and every `leaderboard_refresh_secs`, and sends the picked wallets into its stream
    /// as a `track_wallets` command (journaled, on the tape); a replay of files reads a file
    /// leaderboard once at its start.
    pub leaderboard: Option<String>,
    /// Seconds between two reads of the leaderboard in a session (0: only at the start).
    pub leaderboard_refresh_secs: f64,
    /// A tracked wallet's single position change of at least this notional (USD) is a whale
    /// alert (logged and counted).
    pub alert_notional: Decimal,
    /// Flow window, seconds.
    pub window_secs: i64,
    /// Weighted net notional (Σ weight × signed USD) the window needs for a signal.
    pub min_net_notional: Decimal,
    /// Distinct tracked wallets netting on the signal's side in the window.
    pub min_wallets: usize,
    /// Weight of wallets on the other side, at most this share of the signal side's weight.
    pub max_opposite_share: f64,
    /// Seconds between two signals on one coin.
    pub cooldown_secs: i64,
    /// Exit signal when the wallets followed into a coin hold at most this share of what they
    /// held on the signal's side at the signal (0: only when they are flat).
    pub exit_fraction: f64,
    /// Entry size, exit plan, cooldown and leverage of whale-follow entries (USD-quoted perps).
    pub strategy: StrategyConfig,
    /// How `paper` watches the wallets' own fills and positions (off by default).
    pub tracker: crate::wallets::tracker::TrackerConfig,
}

impl Default for WhaleConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            snapshots: vec![],
            leaderboard: None,
            leaderboard_refresh_secs: 3600.0,
            alert_notional: dec!(100000),
            window_secs: 300,
            min_net_notional: dec!(250000),
            min_wallets: 2,
            max_opposite_share: 0.5,
            cooldown_secs: 900,
            exit_fraction: 0.5,
            strategy: StrategyConfig {
                entry_notional: dec!(100),
                qty_step: dec!(0.00001),
                stop_loss_pct: dec!(3),
                max_hold_secs: 4 * 3600,
                cooldown_secs: 3600,
                take_profit: vec![
                    TakeProfitStep {
                        gain_pct: dec!(3),
                        fraction: dec!(0.5),
                    },
                    TakeProfitStep {
                        gain_pct: dec!(6),
                        fraction: dec!(0.5),
                    },
                ],
                leverage: Some(dec!(3)),
            },
            tracker: Default::default(),
        }
    }
}

impl WhaleConfig {
    pub fn validate(&self) -> Result<(), String> {
        crate::config::secs_within("whales.window_secs", self.window_secs, 1)?;
        if self.alert_notional <= Decimal::ZERO || self.min_net_notional < Decimal::ZERO {
            return Err("whales.alert_notional: must be > 0 (min_net_notional ≥ 0)".into());
        }
        if self.min_wallets == 0 {
            return Err("whales.min_wallets: must be ≥ 1".into());
        }
        if !(0.0..=1.0).contains(&self.max_opposite_share) {
            return Err("whales.max_opposite_share: must be within [0, 1]".into());
        }
        crate::config::secs_within("whales.cooldown_secs", self.cooldown_secs, 0)?;
        if !(0.0..1.0).contains(&self.exit_fraction) {
            return Err("whales.exit_fraction: must be within [0, 1)".into());
        }
        if self.enabled && self.snapshots.is_empty() == self.leaderboard.is_none() {
            return Err(
                "whales.snapshots: name wallet snapshot files or (not and) a whales.leaderboard \
                 when enabled"
                    .into(),
            );
        }
        let r = self.leaderboard_refresh_secs;
        if !(r.is_finite() && (r == 0.0 || (0.1..=604_800.0).contains(&r))) {
            return Err(format!(
                "whales.leaderboard_refresh_secs: 0 (never) or within 0.1..=604800, got {r}"
            ));
        }
        if self.tracker.enabled && !self.enabled {
            return Err(
                "whales.tracker.enabled: needs whales.enabled (it watches the tracked wallets)"
                    .into(),
            );
        }
        self.tracker.validate()?;
        self.strategy.validate().map_err(|e| format!("whales.{e}"))
    }
}
