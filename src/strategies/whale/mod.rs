//! The whale-follow signal source: fills of tracked smart-money wallets, read from Hyperliquid's
//! public `trades` stream (its `users` name both sides), become position changes and per-coin
//! weighted flow; a strong weighted consensus in the flow window raises a long or short signal
//! on the coin's perpetual, carrying its drivers (which wallets, their weights and notional).
//! Entries then go through the same strategy rules (size, bracket, cooldown), risk, executor and
//! decision log as pre-pump signals.
//!
//! The wallet tracker adds the wallets' own fills (`UserFill`, also backfilled ones, older than
//! the stream) and polled positions (`UserPosition`): both correct the wallets' positions; only
//! a fill that is not older than the flow window can raise an entry.

mod config;
#[cfg(test)]
mod tests;

pub use config::WhaleConfig;

use super::signal::{Driver, Named, Signal, SignalContext, SignalSource, SourceInput};
use crate::domain::{Instrument, MarketEvent, Side, Trade, UserFill, UserPosition};
use crate::fault::Fault;
use crate::wallets::events::{whale_alert, WalletBook, WalletFill, WalletFilter};
use crate::wallets::flow::Flow;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::path::PathBuf;

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
    /// Latest event time seen (ms): backfilled fills are older.
    clock: i64,
}

/// Where a signal is evaluated: the event's time, instrument and price.
struct At<'a> {
    ts_ms: i64,
    instrument: &'a Instrument,
    price: Decimal,
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
fn hyperliquid_coin(i: &Instrument) -> Option<&str> {
    let name = i.as_str().strip_prefix("hyperliquid:")?;
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
            clock: i64::MIN,
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
            changed |= w.is_some_and(|w| self.apply(f, w));
        }
        changed
    }

    /// Applies one fill of a tracked wallet (weight `w`): position, alert, flow. False for a
    /// fill seen before (same wallet and `tid`).
    fn apply(&mut self, f: &WalletFill, w: f64) -> bool {
        let Some(c) = self.book.apply(f) else {
            return false;
        };
        if let Some(a) = whale_alert(&c, w, self.cfg.alert_notional) {
            self.alerts += 1;
            tracing::info!(wallet = %a.change.wallet, coin = %a.change.coin, kind = ?a.change.kind,
                notional = %a.change.notional, "whale alert");
        }
        self.flow.push(&c, w);
        true
    }

    /// A trade on Hyperliquid: the tracked wallets it names; an exit when the wallets followed
    /// into its coin have left (also by fills or polls seen before), else a consensus entry.
    fn on_trade(&mut self, t: &Trade) -> Option<Signal> {
        // Borrowed: the hot path (every Hyperliquid trade) allocates nothing for untracked ones.
        let coin = hyperliquid_coin(&t.instrument)?;
        self.clock = self.clock.max(t.ts_ms);
        let changed = self.track(t, coin);
        if !changed && !self.following.contains_key(coin) {
            return None;
        }
        let at = At {
            ts_ms: t.ts_ms,
            instrument: &t.instrument,
            price: t.price,
        };
        self.exit(&at, coin)
            .or_else(|| changed.then(|| self.consensus(&at, coin)).flatten())
    }

    /// A tracked wallet's own fill: evaluated now (the latest event time); an entry only when
    /// the fill is inside the flow window (a backfill reaching further back corrects positions).
    fn on_user_fill(&mut self, u: &UserFill) -> Option<Signal> {
        let coin = hyperliquid_coin(&u.instrument)?;
        let f = WalletFill::from_event(u, coin);
        let w = self.tracked.weight(&f.wallet)?;
        if !self.apply(&f, w) {
            return None;
        }
        self.clock = self.clock.max(u.ts_ms);
        let at = At {
            ts_ms: self.clock,
            instrument: &u.instrument,
            price: u.price,
        };
        let fresh = u.ts_ms >= self.clock - self.cfg.window_secs * 1000;
        self.exit(&at, coin)
            .or_else(|| fresh.then(|| self.consensus(&at, coin)).flatten())
    }

    /// A polled position of a tracked wallet replaces what its fills said.
    fn on_position(&mut self, p: &UserPosition) {
        let Some(coin) = hyperliquid_coin(&p.instrument) else {
            return;
        };
        let wallet = p.wallet.to_ascii_lowercase();
        if self.tracked.weight(&wallet).is_some() {
            self.book.set_position(&wallet, coin, p.size);
        }
    }

    /// Whether `e` can change the source (for rollback snapshots).
    fn touches(&self, e: &MarketEvent) -> bool {
        let tracked = |w: &str| self.tracked.weight(&w.to_ascii_lowercase()).is_some();
        match e {
            MarketEvent::Trade(t) => {
                self.tracked.sides(t) != [None, None]
                    || hyperliquid_coin(&t.instrument)
                        .is_some_and(|c| self.following.contains_key(c))
            }
            MarketEvent::UserFill(f) => tracked(&f.wallet),
            MarketEvent::UserPosition(p) => tracked(&p.wallet),
            _ => false,
        }
    }

    /// The wallet book's counters: (fills dropped as seen before, positions corrected).
    pub fn book_counters(&self) -> (u64, u64) {
        (self.book.duplicates, self.book.resyncs)
    }

    /// A wallet's position in `coin` as the source knows it (signed coins).
    pub fn position(&self, wallet: &str, coin: &str) -> Decimal {
        self.book.position(&wallet.to_ascii_lowercase(), coin)
    }

    /// Tracked wallets by weight, heaviest first (ties by address).
    pub fn by_weight(&self) -> Vec<(String, f64)> {
        let mut v: Vec<(String, f64)> = self
            .tracked
            .sorted()
            .into_iter()
            .map(|(a, w)| (a.clone(), *w))
            .collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
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
    fn exit(&mut self, t: &At, coin: &str) -> Option<Signal> {
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
    fn consensus(&mut self, t: &At, coin: &str) -> Option<Signal> {
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
            let sig = match e {
                MarketEvent::Trade(t) => self.on_trade(t),
                MarketEvent::UserFill(f) => self.on_user_fill(f),
                MarketEvent::UserPosition(p) => {
                    self.on_position(p);
                    None
                }
                _ => None,
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
        let touched = events.iter().any(|e| self.touches(e));
        touched.then(|| Box::new(self.clone()))
    }
    fn restore(&mut self, s: Self::Saved) {
        if let Some(s) = s {
            *self = *s;
        }
    }
    /// `track_wallets` replaces the tracked wallets and their weights; positions and flow seen
    /// so far stay (a wallet tracked again keeps its book).
    fn on_command(&mut self, c: &crate::domain::command::Command) {
        if let crate::domain::command::Command::TrackWallets { wallets } = c {
            let w = wallets
                .iter()
                .map(|t| (t.address.clone(), t.weight.to_f64().unwrap_or(0.0)));
            self.tracked = WalletFilter::new(w);
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
