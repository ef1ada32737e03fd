//! The whale-follow signal source: fills of tracked smart-money wallets, read from Hyperliquid's
//! public `trades` stream (its `users` name both sides), become position changes and per-coin
//! weighted flow; a strong weighted consensus in the flow window raises a long or short signal
//! on the coin's perpetual, carrying its drivers (which wallets, their weights and notional).
//! Entries then go through the same strategy rules (size, bracket, cooldown), risk, executor and
//! decision log as pre-pump signals.

use super::prepump::StrategyConfig;
use super::signal::{Driver, Named, Signal, SignalContext, SignalSource, SourceInput};
use crate::domain::intent::TakeProfitStep;
use crate::domain::{MarketEvent, Side, Trade};
use crate::fault::Fault;
use crate::wallets::events::{whale_alert, WalletBook, WalletFill, WalletFilter};
use crate::wallets::flow::Flow;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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
}

impl Default for WhaleConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            snapshots: vec![],
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
        }
    }
}

impl WhaleConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.window_secs <= 0 {
            return Err("whales.window_secs: must be > 0".into());
        }
        if self.alert_notional <= Decimal::ZERO || self.min_net_notional < Decimal::ZERO {
            return Err("whales.alert_notional: must be > 0 (min_net_notional ≥ 0)".into());
        }
        if self.min_wallets == 0 {
            return Err("whales.min_wallets: must be ≥ 1".into());
        }
        if !(0.0..=1.0).contains(&self.max_opposite_share) {
            return Err("whales.max_opposite_share: must be within [0, 1]".into());
        }
        if self.cooldown_secs < 0 {
            return Err("whales.cooldown_secs: must be ≥ 0".into());
        }
        if !(0.0..1.0).contains(&self.exit_fraction) {
            return Err("whales.exit_fraction: must be within [0, 1)".into());
        }
        if self.enabled && self.snapshots.is_empty() {
            return Err("whales.snapshots: name wallet snapshot files when enabled".into());
        }
        self.strategy.validate().map_err(|e| format!("whales.{e}"))
    }
}

/// The source: tracked wallets and their weights, their positions, the flow.
#[derive(Clone, Debug)]
pub struct WhaleSource {
    cfg: WhaleConfig,
    tracked: WalletFilter,
    book: WalletBook,
    flow: Flow,
    last_signal: BTreeMap<String, i64>,
    /// Coins followed into, by coin.
    following: BTreeMap<String, Followed>,
    next_id: u64,
    /// Prepended to signal ids (`p2-` for paper session 2).
    pub id_prefix: String,
    /// Whale alerts raised so far.
    pub alerts: u64,
}

/// A coin followed into: the side, the wallets on it, and what they held on it then (coins).
#[derive(Clone, Debug)]
struct Followed {
    side: Side,
    wallets: Vec<String>,
    held: Decimal,
}

impl Named for WhaleSource {
    const NAME: &'static str = "whale_follow";
}

/// The coin of a Hyperliquid instrument (`hyperliquid:BTC/USDC` → `BTC`), else `None`.
fn hyperliquid_coin(t: &Trade) -> Option<&str> {
    let name = t.instrument.as_str().strip_prefix("hyperliquid:")?;
    Some(name.split_once('/').map_or(name, |(b, _)| b))
}

impl WhaleSource {
    /// Follows `tracked` wallets (address → weight in 0..1).
    pub fn new(cfg: WhaleConfig, tracked: BTreeMap<String, f64>) -> Self {
        let window = cfg.window_secs * 1000;
        Self {
            tracked: WalletFilter::new(tracked),
            book: WalletBook::new(24 * 3_600_000),
            flow: Flow::new(vec![window]),
            last_signal: BTreeMap::new(),
            following: BTreeMap::new(),
            next_id: 1,
            id_prefix: String::new(),
            alerts: 0,
            cfg,
        }
    }

    /// Applies the trade's fills of tracked wallets; true when one changed a position.
    fn track(&mut self, t: &Trade, coin: &str) -> bool {
        let weights = self.tracked.sides(t);
        if weights == [None, None] {
            return false;
        }
        let Some(fills) = WalletFill::from_trade(t, coin) else {
            return false;
        };
        let mut changed = false;
        for (f, w) in fills.iter().zip(weights) {
            let Some(w) = w else { continue };
            let Some(c) = self.book.apply(f) else {
                continue;
            };
            if let Some(a) = whale_alert(&c, w, self.cfg.alert_notional) {
                self.alerts += 1;
                tracing::info!(wallet = %a.change.wallet, coin, kind = ?a.change.kind,
                    notional = %a.change.notional, "whale alert");
            }
            self.flow.push(&c, w);
            changed = true;
        }
        changed
    }

    /// What `wallets` hold of `coin` on `side` (coins, ≥ 0 each).
    fn held(&self, wallets: &[String], coin: &str, side: Side) -> Decimal {
        wallets
            .iter()
            .map(|w| side.signed(self.book.position(w, coin)).max(Decimal::ZERO))
            .sum()
    }

    fn next_id(&mut self) -> String {
        let id = format!("{}whl-{}", self.id_prefix, self.next_id);
        self.next_id += 1;
        id
    }

    /// An exit signal when the wallets followed into the coin have mostly left it.
    fn exit(&mut self, t: &Trade, coin: &str) -> Option<Signal> {
        let f = self.following.get(coin)?;
        let now = self.held(&f.wallets, coin, f.side);
        let limit = f.held * Decimal::try_from(self.cfg.exit_fraction).ok()?;
        if now > limit {
            return None;
        }
        let f = self.following.remove(coin)?;
        let to_f64 = |d: Decimal| d.to_f64().unwrap_or(0.0);
        let drivers = f
            .wallets
            .iter()
            .map(|w| Driver {
                name: w.clone(),
                value: to_f64(self.book.position(w, coin)),
                contribution: 100.0 / f.wallets.len() as f64,
            })
            .collect();
        let values = BTreeMap::from([
            ("followed_held_at_signal".to_string(), to_f64(f.held)),
            ("followed_held_now".to_string(), to_f64(now)),
        ]);
        Some(Signal {
            id: self.next_id(),
            ts_ms: t.ts_ms,
            instrument: t.instrument.clone(),
            side: f.side.opposite(),
            price: t.price,
            score: 100.0,
            drivers,
            context: SignalContext::Named {
                source: Self::NAME,
                values,
            },
            exit: true,
        })
    }

    /// A signal when the coin's flow window holds a strong weighted consensus.
    fn consensus(&mut self, t: &Trade, coin: &str) -> Option<Signal> {
        let window = self.cfg.window_secs * 1000;
        let f = self.flow.features(coin, t.ts_ms).pop()?;
        let (side, side_w, opp_w, wallets) = if f.net_notional > 0.0 {
            (Side::Buy, f.long_weight, f.short_weight, f.long_wallets)
        } else {
            (Side::Sell, f.short_weight, f.long_weight, f.short_wallets)
        };
        let strong = f.net_notional.abs() >= self.cfg.min_net_notional.to_f64()?
            && wallets >= self.cfg.min_wallets
            && opp_w <= self.cfg.max_opposite_share * side_w;
        let cooled = self
            .last_signal
            .get(coin)
            .is_none_or(|&last| t.ts_ms - last >= self.cfg.cooldown_secs * 1000);
        if !strong || !cooled {
            return None;
        }
        self.last_signal.insert(coin.to_string(), t.ts_ms);
        let parts = self.flow.wallets(coin, t.ts_ms, window);
        let on_side: Vec<String> = parts
            .iter()
            .filter(|p| (p.net_notional > 0.0) == (side == Side::Buy) && p.net_notional != 0.0)
            .map(|p| p.wallet.clone())
            .collect();
        let held = self.held(&on_side, coin, side);
        if held > Decimal::ZERO {
            let wallets = on_side;
            self.following.insert(
                coin.to_string(),
                Followed {
                    side,
                    wallets,
                    held,
                },
            );
        }
        let total: f64 = parts.iter().map(|p| p.weight * p.net_notional.abs()).sum();
        let drivers = parts
            .iter()
            .map(|p| Driver {
                name: format!("{} (weight {:.3})", p.wallet, p.weight),
                value: p.net_notional,
                contribution: 100.0 * p.weight * p.net_notional.abs()
                    / total.max(f64::MIN_POSITIVE),
            })
            .collect();
        let values = BTreeMap::from([
            ("net_notional".to_string(), f.net_notional),
            ("long_wallets".to_string(), f.long_wallets as f64),
            ("short_wallets".to_string(), f.short_wallets as f64),
            ("long_weight".to_string(), f.long_weight),
            ("short_weight".to_string(), f.short_weight),
            ("prev_net_notional".to_string(), f.prev_net_notional),
            ("window_secs".to_string(), self.cfg.window_secs as f64),
        ]);
        Some(Signal {
            id: self.next_id(),
            ts_ms: t.ts_ms,
            instrument: t.instrument.clone(),
            side,
            price: t.price,
            score: 100.0 * side_w / (side_w + opp_w).max(f64::MIN_POSITIVE),
            drivers,
            context: SignalContext::Named {
                source: Self::NAME,
                values,
            },
            exit: false,
        })
    }
}

impl SignalSource for WhaleSource {
    /// `None` when the batch names no tracked wallet: it cannot change the source.
    type Saved = Option<Box<WhaleSource>>;
    fn uses_snapshots(&self) -> bool {
        false
    }
    fn model_id(&self) -> String {
        let w = self.tracked.sorted();
        let parts: Vec<String> = w.iter().map(|(a, x)| format!("{a}={x:.6}")).collect();
        format!("whales:{}", parts.join(","))
    }
    fn on_batch(&mut self, b: &SourceInput<'_>, _: &Fault, out: &mut Vec<(u32, Signal)>) {
        for (i, e) in b.events.iter().enumerate() {
            let MarketEvent::Trade(t) = e else { continue };
            let Some(coin) = hyperliquid_coin(t) else {
                continue;
            };
            let coin = coin.to_string();
            if !self.track(t, &coin) {
                continue;
            }
            let sig = match self.exit(t, &coin) {
                Some(exit) => Some(exit),
                None => self.consensus(t, &coin),
            };
            if let Some(s) = sig {
                out.push((i as u32, s));
            }
        }
    }
    /// A signal's score is the signal side's share of the weight in the window (0–100); this is
    /// the least share a signal can have.
    fn threshold(&self) -> f64 {
        100.0 / (1.0 + self.cfg.max_opposite_share)
    }
    fn save(&self, events: &[MarketEvent]) -> Self::Saved {
        let tracked = |e: &MarketEvent| {
            e.as_trade()
                .is_some_and(|t| self.tracked.sides(t) != [None, None])
        };
        events.iter().any(tracked).then(|| Box::new(self.clone()))
    }
    fn restore(&mut self, s: Self::Saved) {
        if let Some(s) = s {
            *self = *s;
        }
    }
}

/// The wallets the `[wallets]` rules follow at the last of the snapshots in `paths`, with their
/// weights.
pub fn tracked_wallets(
    paths: &[PathBuf],
    cfg: &crate::wallets::WalletsConfig,
) -> anyhow::Result<BTreeMap<String, f64>> {
    let snaps = crate::wallets::snapshot::load_snapshots(paths)?;
    let scores = crate::wallets::follow::score_all(&snaps, cfg);
    let last = scores.last().map(Vec::as_slice).unwrap_or_default();
    let followed = crate::wallets::follow::followed(last, cfg);
    Ok(followed.map(|s| (s.address.clone(), s.weight)).collect())
}
