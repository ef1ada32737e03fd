//! The signal sources and strategies a run uses: the pre-pump detector (rules or ensemble) with
//! the pre-pump strategy, and, when `[whales] enabled`, the whale-follow source with its own
//! strategy rules (`[whales.strategy]`).

use super::ensemble_detector::DetectorKind;
use super::prepump::PrePumpStrategy;
use super::signal::{Both, Named, Route, Signal, SignalSource, SourceInput};
use super::whale::{tracked_wallets, WhaleSource};
use crate::config::Config;
use crate::domain::MarketEvent;
use crate::fault::Fault;
use anyhow::{Context, Result};

/// The sources of a run: pre-pump always, whale-follow when enabled.
pub type Sources = Both<DetectorKind, Option<WhaleSource>>;
/// Pre-pump signals to the pre-pump strategy, whale-follow signals to the whale rules.
pub type Strategies = Route<PrePumpStrategy, PrePumpStrategy>;

/// Builds the sources; the whale-follow one loads its wallets from `[whales] snapshots`.
pub fn sources(cfg: &Config, id_prefix: &str) -> Result<Sources> {
    let whales = if cfg.whales.enabled {
        // A leaderboard's wallets come later, as a `track_wallets` command in the stream.
        let tracked = match cfg.whales.leaderboard {
            Some(_) => Default::default(),
            None => tracked_wallets(&cfg.whales.snapshots, &cfg.wallets)
                .context("whales.snapshots: cannot pick the wallets to follow")?,
        };
        let mut w = WhaleSource::new(cfg.whales.clone(), tracked);
        w.id_prefix = id_prefix.to_string();
        Some(w)
    } else {
        None
    };
    Ok(Both {
        first: DetectorKind::from_config(cfg, id_prefix)?,
        second: whales,
    })
}

/// Builds the strategies (whale intents are numbered `{prefix}wint-N`).
pub fn strategies(cfg: &Config, id_prefix: &str) -> Strategies {
    let mut first = PrePumpStrategy::new(cfg.strategy.clone());
    first.id_prefix = id_prefix.to_string();
    let mut second = PrePumpStrategy::new(cfg.whales.strategy.clone());
    second.id_prefix = format!("{id_prefix}w");
    Route {
        first,
        second,
        second_source: WhaleSource::NAME,
    }
}

impl<S: Named> Named for Option<S> {
    const NAME: &'static str = S::NAME;
}

/// An optional source: none raises nothing and depends on no model.
impl<S: SignalSource> SignalSource for Option<S> {
    type Saved = Option<S::Saved>;
    fn uses_snapshots(&self) -> bool {
        self.as_ref().is_some_and(|s| s.uses_snapshots())
    }
    fn model_id(&self) -> String {
        self.as_ref().map(|s| s.model_id()).unwrap_or_default()
    }
    fn on_batch(&mut self, b: &SourceInput<'_>, fault: &Fault, out: &mut Vec<(u32, Signal)>) {
        if let Some(s) = self {
            s.on_batch(b, fault, out);
        }
    }
    fn threshold(&self) -> f64 {
        self.as_ref().map_or(0.0, |s| s.threshold())
    }
    fn threshold_of(&self, sig: &Signal) -> f64 {
        self.as_ref().map_or(0.0, |s| s.threshold_of(sig))
    }
    fn save(&self, events: &[MarketEvent]) -> Self::Saved {
        self.as_ref().map(|s| s.save(events))
    }
    fn cache_warmer(&self) -> Option<super::signal::CacheWarmer> {
        self.as_ref().and_then(|s| s.cache_warmer())
    }
    fn restore(&mut self, saved: Self::Saved) {
        if let (Some(s), Some(v)) = (self.as_mut(), saved) {
            s.restore(v);
        }
    }
    fn on_command(&mut self, c: &crate::domain::command::Command) {
        if let Some(s) = self {
            s.on_command(c);
        }
    }
}
