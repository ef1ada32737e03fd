//! Per-coin smart-money flow over rolling windows of event time: the weighted net notional of
//! the tracked wallets' position changes, the distinct wallets (and their weight) on each side,
//! and the same figures for the window before, so their change shows.

use super::events::{Interner, PositionChange};
use rust_decimal::prelude::ToPrimitive;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};

/// Flow of one coin over one window ending at `now`; `prev_*`: the window before it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FlowFeatures {
    pub window_ms: i64,
    /// Σ weight × signed notional (buys > 0), USD.
    pub net_notional: f64,
    /// Wallets whose changes in the window net long / short, and Σ of their weights.
    pub long_wallets: usize,
    pub short_wallets: usize,
    pub long_weight: f64,
    pub short_weight: f64,
    pub prev_net_notional: f64,
    pub prev_long_wallets: usize,
    pub prev_short_wallets: usize,
}

#[derive(Clone, Debug)]
struct Entry {
    ts_ms: i64,
    /// Id in the flow's [`Interner`].
    wallet: u32,
    weight: f64,
    signed_notional: f64,
}

/// Rolling flow of every coin, for windows `windows_ms` (kept for twice the longest).
#[derive(Clone, Debug, Default)]
pub struct Flow {
    windows_ms: Vec<i64>,
    by_coin: BTreeMap<String, VecDeque<Entry>>,
    wallets: Interner,
}

impl Flow {
    pub fn new(windows_ms: Vec<i64>) -> Self {
        Self {
            windows_ms,
            by_coin: BTreeMap::new(),
            wallets: Interner::default(),
        }
    }

    /// Adds a tracked wallet's change with its weight.
    pub fn push(&mut self, c: &PositionChange, weight: f64) {
        let keep = 2 * self.windows_ms.iter().max().copied().unwrap_or(0);
        let wallet = self.wallets.id(&c.wallet);
        let q = match self.by_coin.get_mut(&c.coin) {
            Some(q) => q,
            None => self.by_coin.entry(c.coin.clone()).or_default(),
        };
        q.push_back(Entry {
            ts_ms: c.ts_ms,
            wallet,
            weight,
            signed_notional: (c.delta * c.price).to_f64().unwrap_or(0.0),
        });
        while q.front().is_some_and(|e| c.ts_ms - e.ts_ms > keep) {
            q.pop_front();
        }
    }

    /// The coin's flow in each window ending at `now_ms`.
    pub fn features(&self, coin: &str, now_ms: i64) -> Vec<FlowFeatures> {
        let empty = VecDeque::new();
        let q = self.by_coin.get(coin).unwrap_or(&empty);
        self.windows_ms
            .iter()
            .map(|&w| {
                let (net, lw, sw, lwt, swt) = tally(&self.wallets, q, now_ms - w, now_ms);
                let (pnet, plw, psw, _, _) = tally(&self.wallets, q, now_ms - 2 * w, now_ms - w);
                FlowFeatures {
                    window_ms: w,
                    net_notional: net,
                    long_wallets: lw,
                    short_wallets: sw,
                    long_weight: lwt,
                    short_weight: swt,
                    prev_net_notional: pnet,
                    prev_long_wallets: plw,
                    prev_short_wallets: psw,
                }
            })
            .collect()
    }
}

/// One wallet's part in a coin's flow over a window: its weight and net signed notional (USD).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WalletFlow {
    pub wallet: String,
    pub weight: f64,
    pub net_notional: f64,
}

/// Over (from, to]: each wallet's net, by address.
fn per_wallet(names: &Interner, q: &VecDeque<Entry>, from: i64, to: i64) -> Vec<WalletFlow> {
    let mut m: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    for e in q.iter().filter(|e| e.ts_ms > from && e.ts_ms <= to) {
        let w = m.entry(names.name(e.wallet));
        w.or_insert((0.0, e.weight)).0 += e.signed_notional;
    }
    m.into_iter()
        .map(|(w, (net, weight))| WalletFlow {
            wallet: w.to_string(),
            weight,
            net_notional: net,
        })
        .collect()
}

/// Over (from, to]: weighted net notional, wallets long and short (by their net), their weights.
fn tally(
    names: &Interner,
    q: &VecDeque<Entry>,
    from: i64,
    to: i64,
) -> (f64, usize, usize, f64, f64) {
    let mut t = (0.0, 0, 0, 0.0, 0.0);
    for w in per_wallet(names, q, from, to) {
        t.0 += w.weight * w.net_notional;
        if w.net_notional > 0.0 {
            t.1 += 1;
            t.3 += w.weight;
        } else if w.net_notional < 0.0 {
            t.2 += 1;
            t.4 += w.weight;
        }
    }
    t
}

impl Flow {
    /// Each wallet's part in the coin's flow over the `window_ms` ending at `now_ms`.
    pub fn wallets(&self, coin: &str, now_ms: i64, window_ms: i64) -> Vec<WalletFlow> {
        match self.by_coin.get(coin) {
            Some(q) => per_wallet(&self.wallets, q, now_ms - window_ms, now_ms),
            None => vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wallets::events::ChangeKind;
    use rust_decimal::Decimal;

    fn change(wallet: &str, ts_ms: i64, delta: i64, price: i64) -> PositionChange {
        let (delta, price) = (Decimal::from(delta), Decimal::from(price));
        PositionChange {
            wallet: wallet.into(),
            coin: "ETH".into(),
            ts_ms,
            tid: ts_ms as u64,
            kind: ChangeKind::Open,
            before: Decimal::ZERO,
            after: delta,
            delta,
            price,
            notional: delta.abs() * price,
        }
    }

    #[test]
    fn weighted_net_notional_and_wallets_per_side_with_the_window_before() {
        let mut f = Flow::new(vec![60_000]);
        // Window before (0, 60 s]: a sells 1 ETH @ 3 000 (weight 0.5).
        f.push(&change("a", 10_000, -1, 3000), 0.5);
        // Window (60, 120 s]: b buys 2 @ 3 000 (weight 1), c buys 1 @ 3 100 (0.25), a buys
        // 1 @ 3 000 then sells 3 @ 3 000 (nets short).
        f.push(&change("b", 70_000, 2, 3000), 1.0);
        f.push(&change("c", 80_000, 1, 3100), 0.25);
        f.push(&change("a", 90_000, 1, 3000), 0.5);
        f.push(&change("a", 100_000, -3, 3000), 0.5);
        let x = &f.features("ETH", 120_000)[0];
        assert_eq!(x.net_notional, 6000.0 + 775.0 + 1500.0 - 4500.0);
        assert_eq!((x.long_wallets, x.short_wallets), (2, 1));
        assert_eq!((x.long_weight, x.short_weight), (1.25, 0.5));
        assert_eq!(x.prev_net_notional, -1500.0);
        assert_eq!((x.prev_long_wallets, x.prev_short_wallets), (0, 1));
        assert_eq!(
            f.features("BTC", 120_000)[0],
            FlowFeatures {
                window_ms: 60_000,
                ..Default::default()
            }
        );
    }
}
