//! Configuration from TOML (`config/default.toml` documents every key).
//!
//! Unknown keys and wrong types are refused by the parser with the key and line named; values are
//! then checked by [`Config::validate`], whose errors start with the dotted key (`risk.max_orders`).

use crate::execution::{ExecConfig, PortfolioConfig};
use crate::features::FeatureConfig;
use crate::feeds::config::FeedsConfig;
use crate::models::{ModelsConfig, TrainConfig};
use crate::risk::RiskConfig;
use crate::strategies::detector::DetectorConfig;
use crate::strategies::prepump::StrategyConfig;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// `[replay]` config.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ReplayConfig {
    /// Events per batch passed between actors: a transport detail, the decision log is the same
    /// for every size (each decision sees the portfolio as of its own event). Large by default:
    /// each batch costs the ensemble detector ~0.2 ms of thread hand-offs, so the dev set's replay
    /// takes ~7 % less wall time at 32768 than at 2048 (peak memory 95 → 130 MB).
    pub batch_size: usize,
    /// Batches in flight between the feed and the journal (backpressure).
    pub max_in_flight: usize,
    /// Journal commit size: records buffered before a durable write (also flushed every 250 ms).
    pub journal_flush_records: usize,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        Self {
            batch_size: 32768,
            max_in_flight: 8,
            journal_flush_records: 5000,
        }
    }
}

/// `[control]` config: the local control API of `paper` sessions.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ControlConfig {
    /// Serve the API (status, positions, commands, metrics) on 127.0.0.1.
    pub enabled: bool,
    /// TCP port on 127.0.0.1; 0 takes any free port (the address is in `<state>/control.json`).
    pub port: u16,
}

impl Default for ControlConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            port: 0,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub features: FeatureConfig,
    pub detector: DetectorConfig,
    pub strategy: StrategyConfig,
    pub risk: RiskConfig,
    pub execution: ExecConfig,
    pub portfolio: PortfolioConfig,
    pub replay: ReplayConfig,
    pub feeds: FeedsConfig,
    pub models: ModelsConfig,
    pub train: TrainConfig,
    pub control: ControlConfig,
    /// Smart-money wallet selection and following (`evaluate-wallets`, `wallets`).
    pub wallets: crate::wallets::WalletsConfig,
    /// The whale-follow signal source (off by default).
    pub whales: crate::strategies::whale::WhaleConfig,
    /// The Telegram bot (started when `TELEGRAM_BOT_TOKEN` is set).
    pub telegram: crate::telegram::TelegramConfig,
    /// `smartflow live`: Hyperliquid network, key variable, polling, reconciliation.
    pub live: crate::live::LiveConfig,
    /// Trading rules by instrument name (`"hyperliquid:BTC/USDC"`), applied at the executor.
    pub instruments: std::collections::BTreeMap<String, crate::domain::spec::InstrumentSpec>,
}

impl Config {
    /// Parses TOML text; `origin` names the source in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self> {
        let mut cfg: Config =
            toml::from_str(text).map_err(|e| anyhow::anyhow!("invalid config {origin}: {e}"))?;
        cfg.feeds.fill_venue_defaults();
        cfg.validate()
            .map_err(|e| anyhow::anyhow!("invalid config {origin}: {e}"))?;
        Ok(cfg)
    }

    /// Loads a file, or the built-in paper-trading profile (`config/paper.toml`) when `None`.
    pub fn load_paper(path: Option<&Path>) -> Result<Self> {
        match path {
            Some(_) => Self::load(path),
            None => Self::from_toml(PAPER_TOML, "config/paper.toml (built in)"),
        }
    }

    /// Loads a file, or the built-in defaults (identical to `config/default.toml`) when `None`.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        match path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read config {}", p.display()))?;
                Self::from_toml(&text, &p.display().to_string())
            }
            None => Self::from_toml(DEFAULT_TOML, "config/default.toml (built in)"),
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if !(25..=30 * 86_400).contains(&self.features.baseline_secs) {
            return Err(
                "features.baseline_secs: must be within 25 (one 25 s chunk) ..= 2592000 (30 days)"
                    .into(),
            );
        }
        if !(0.0..=1.0).contains(&self.features.warmup_fraction) {
            return Err("features.warmup_fraction: must be within 0..=1".into());
        }
        self.detector.validate()?;
        self.strategy.validate()?;
        self.risk.validate()?;
        self.execution.validate()?;
        self.portfolio.validate()?;
        self.feeds.validate()?;
        self.models.validate()?;
        self.train.validate()?;
        self.wallets.validate()?;
        self.whales.validate()?;
        self.telegram.validate()?;
        self.live.validate()?;
        for (name, spec) in &self.instruments {
            spec.validate(name)?;
        }
        if self.replay.batch_size == 0 {
            return Err("replay.batch_size: must be ≥ 1".into());
        }
        if self.replay.max_in_flight == 0 {
            return Err("replay.max_in_flight: must be ≥ 1".into());
        }
        if self.replay.journal_flush_records == 0 {
            return Err("replay.journal_flush_records: must be ≥ 1".into());
        }
        Ok(())
    }
}

impl Config {
    /// The row settings of the config in effect (what `train` records with a model).
    pub fn row_inputs(&self) -> crate::models::artifact::RowInputs {
        crate::models::artifact::RowInputs {
            features: self.features.clone(),
            chunks: self.train.chunks.clone(),
            detector: self.detector.clone(),
        }
    }
}

/// The shipped default config, compiled in so that `smartflow` runs without `--config`.
/// The longest duration a config value may give, seconds (ten years): times it by 1000 (ms)
/// or add it to an event time and it still fits an `i64`.
pub const MAX_SECS: i64 = 315_360_000;

/// `Ok` when `v` (seconds) is within `min..=MAX_SECS`; else the error names `key`.
pub fn secs_within(key: &str, v: i64, min: i64) -> Result<(), String> {
    match (min..=MAX_SECS).contains(&v) {
        true => Ok(()),
        false => Err(format!(
            "{key}: must be within {min}..={MAX_SECS} seconds, got {v}"
        )),
    }
}

pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// The live paper-trading profile (USDT portfolio, live venues), used by `paper` and `record`
/// when no `--config` is given.
pub const PAPER_TOML: &str = include_str!("../config/paper.toml");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_file_equals_built_in_defaults() {
        let parsed = Config::from_toml(DEFAULT_TOML, "default").unwrap();
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn paper_profile_is_valid() {
        let p = Config::from_toml(PAPER_TOML, "paper").unwrap();
        assert_eq!(p.portfolio.quote, "USDT");
        assert_eq!(p.feeds.venues().len(), 3);
    }

    #[test]
    fn a_venue_table_keeps_the_venue_defaults_it_does_not_set() {
        let c =
            Config::from_toml("[feeds.hyperliquid]\nws_url = \"ws://127.0.0.1:1\"\n", "t").unwrap();
        assert_eq!(c.feeds.hyperliquid.ws_url, "ws://127.0.0.1:1");
        assert_eq!(c.feeds.hyperliquid.rest_url, "https://api.hyperliquid.xyz");
        assert!(c
            .feeds
            .hyperliquid
            .instruments
            .contains(&"BTC/USDC".to_string()));
        let e = Config::from_toml("[feeds.bybit]\nws_url = \"http://x\"\n", "t").unwrap_err();
        assert!(format!("{e:#}").contains("feeds.bybit.ws_url"));
    }

    #[test]
    fn unknown_key_is_named() {
        let e = Config::from_toml("[risk]\nmax_order_notionl = \"1\"\n", "t").unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains("max_order_notionl"), "{msg}");
        let e = Config::from_toml("[riskk]\n", "t").unwrap_err();
        assert!(format!("{e:#}").contains("riskk"));
    }

    #[test]
    fn invalid_value_is_named() {
        let e = Config::from_toml("[risk]\nmax_open_positions = 0\n", "t").unwrap_err();
        assert!(format!("{e:#}").contains("risk.max_open_positions"));
        let e = Config::from_toml("[execution]\nmax_volume_share = \"1.5\"\n", "t").unwrap_err();
        assert!(format!("{e:#}").contains("execution.max_volume_share"));
        let e = Config::from_toml("[risk]\nmax_open_positions = \"x\"\n", "t").unwrap_err();
        assert!(format!("{e:#}").contains("max_open_positions"));
    }

    /// Values that pass a plain `> 0` and panic later as a `Duration` are refused at load.
    #[test]
    fn infinite_or_huge_durations_are_refused_with_the_field_named() {
        for (toml, key) in [
            (
                "[feeds]\nstatus_every_secs = inf\n",
                "feeds.status_every_secs",
            ),
            (
                "[feeds]\nstatus_every_secs = nan\n",
                "feeds.status_every_secs",
            ),
            (
                "[feeds]\nidle_timeout_secs = 1e20\n",
                "feeds.idle_timeout_secs",
            ),
            (
                "[feeds]\nstale_after_secs = inf\n",
                "feeds.stale_after_secs",
            ),
            (
                "[feeds]\nbackoff_max_ms = 18446744073709551615\n",
                "feeds.backoff_initial_ms",
            ),
            (
                "[whales]\nleaderboard_refresh_secs = inf\n",
                "whales.leaderboard_refresh_secs",
            ),
            (
                "[strategy]\ncooldown_secs = 9223372036854775807\n",
                "strategy.cooldown_secs",
            ),
            (
                "[strategy]\nmax_hold_secs = 9223372036854775807\n",
                "strategy.max_hold_secs",
            ),
            (
                "[risk]\ninstrument_cooldown_secs = 9223372036854775807\n",
                "risk.instrument_cooldown_secs",
            ),
            (
                "[risk]\nrate_window_secs = 9223372036854775807\n",
                "risk.rate_window_secs",
            ),
            (
                "[risk]\nstale_after_ms = 9223372036854775807\n",
                "risk.stale_after_ms",
            ),
            (
                "[detector]\ncooldown_secs = 9223372036854775807\n",
                "detector.cooldown_secs",
            ),
            (
                "[whales]\nwindow_secs = 9223372036854775807\n",
                "whales.window_secs",
            ),
            (
                "[features]\nbaseline_secs = 9223372036854775807\n",
                "features.baseline_secs",
            ),
            (
                "[whales.tracker]\nmin_poll_interval_secs = 1e300\n",
                "whales.tracker.min_poll_interval_secs",
            ),
        ] {
            let e = Config::from_toml(toml, "t").unwrap_err();
            assert!(format!("{e:#}").contains(key), "{toml}: {e:#}");
        }
    }
}
