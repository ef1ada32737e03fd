//! Per-instrument feature window: buy-side chunks of 5 s, 15 s and 25 s (La Morgia et al.), rolling
//! baselines of past chunks, z-scores, price returns over 1 and 5 minutes and a 5-minute VWAP.
//!
//! Everything runs on event time (`Trade::ts_ms`); each trade costs O(1) amortised: chunk close
//! pushes one slot into a ring buffer with running sums (re-summed every `len` pushes against float
//! drift), and the return/VWAP deques pop what falls out of their window.
//!
//! Definitions (all over **buy** trades, the aggressor side that pumps):
//! - chunk `k` of size `s` covers `[k·s, (k+1)·s)` seconds since the Unix epoch;
//! - `trades`, `base_volume` (base units), `quote_volume` (quote units), `mean_price`, `max_price`;
//! - `rush_orders`: milliseconds in which two or more buy trades share one timestamp (one aggressive
//!   order sweeping several price levels, after La Morgia et al.);
//! - baseline: mean and std over the last `baseline_secs / s` closed chunks, empty chunks included;
//! - `z_x = (x − mean) / max(std, floor)` with floor 1 for counts and `mean` for quote volume, so one
//!   trade in a dead market cannot look extreme;
//! - `price_jump = max_price / baseline mean price − 1` (baseline over chunks that had trades);
//! - `ret_1m`, `ret_5m`: last price over the last price at or before 1 / 5 minutes ago, minus 1;
//! - `vwap_5m`: Σ price·qty / Σ qty over all trades of the last 5 minutes; `vwap_dev = price/vwap − 1`.

use super::num;
use crate::domain::{Side, Trade};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Chunk sizes in seconds.
pub const CHUNK_SECS: [i64; 3] = [5, 15, 25];

/// `[features]` config.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FeatureConfig {
    /// Length of the rolling baseline of past chunks, seconds. Default 3600 (720 chunks of 5 s).
    pub baseline_secs: i64,
    /// Share of the baseline that must be history before the window is `warm`. Default 1.0.
    pub warmup_fraction: f64,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        Self {
            baseline_secs: 3600,
            warmup_fraction: 1.0,
        }
    }
}

/// Features of the current (in-progress) chunk of one size, against its baseline.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq)]
pub struct ChunkFeatures {
    pub trades: f64,
    pub base_volume: f64,
    pub quote_volume: f64,
    pub rush_orders: f64,
    pub mean_price: f64,
    pub max_price: f64,
    pub z_trades: f64,
    pub z_quote_volume: f64,
    pub z_rush_orders: f64,
    pub price_jump: f64,
}

/// All features of one instrument right after one buy trade.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct FeatureSnapshot {
    pub ts_ms: i64,
    pub price: f64,
    /// Indexed like [`CHUNK_SECS`].
    pub chunks: [ChunkFeatures; 3],
    pub ret_1m: f64,
    pub ret_5m: f64,
    pub vwap_5m: f64,
    pub vwap_dev: f64,
    /// True once the baseline covers `warmup_fraction` of `baseline_secs`.
    pub warm: bool,
}

impl FeatureSnapshot {
    /// Flat `(name, value)` list for logs and models, names like `5s.z_trades`, `ret_1m`.
    pub fn named(&self) -> Vec<(String, f64)> {
        let mut v = Vec::with_capacity(34);
        for (i, c) in self.chunks.iter().enumerate() {
            let s = CHUNK_SECS[i];
            for (n, x) in [
                ("trades", c.trades),
                ("base_volume", c.base_volume),
                ("quote_volume", c.quote_volume),
                ("rush_orders", c.rush_orders),
                ("mean_price", c.mean_price),
                ("max_price", c.max_price),
                ("z_trades", c.z_trades),
                ("z_quote_volume", c.z_quote_volume),
                ("z_rush_orders", c.z_rush_orders),
                ("price_jump", c.price_jump),
            ] {
                v.push((format!("{s}s.{n}"), x));
            }
        }
        v.push(("price".into(), self.price));
        v.push(("ret_1m".into(), self.ret_1m));
        v.push(("ret_5m".into(), self.ret_5m));
        v.push(("vwap_5m".into(), self.vwap_5m));
        v.push(("vwap_dev".into(), self.vwap_dev));
        v
    }
}

/// Aggregates of one chunk in progress.
#[derive(Clone, Copy, Debug, Default)]
struct ChunkAcc {
    trades: f64,
    base_volume: f64,
    quote_volume: f64,
    rush_orders: f64,
    price_sum: f64,
    max_price: f64,
}

/// Ring buffer of closed chunks: [trades, quote_volume, rush_orders, mean_price (0 = empty)].
#[derive(Clone, Debug)]
struct Baseline {
    slots: Vec<[f64; 4]>,
    head: usize,
    filled: usize,
    sum: [f64; 4],
    sumsq: [f64; 3],
    priced: usize,
    pushes_since_resum: usize,
}

impl Baseline {
    fn new(len: usize) -> Self {
        Self {
            slots: vec![[0.0; 4]; len.max(1)],
            head: 0,
            filled: 0,
            sum: [0.0; 4],
            sumsq: [0.0; 3],
            priced: 0,
            pushes_since_resum: 0,
        }
    }

    /// Adds (`sign` 1) or removes (`sign` −1) one chunk from the running sums.
    fn accumulate(&mut self, x: [f64; 4], sign: f64) {
        for (s, v) in self.sum.iter_mut().zip(x) {
            *s += sign * v;
        }
        for (s, v) in self.sumsq.iter_mut().zip(x) {
            *s += sign * v * v;
        }
        if x[3] > 0.0 {
            if sign > 0.0 {
                self.priced += 1;
            } else {
                self.priced -= 1;
            }
        }
    }

    fn push(&mut self, x: [f64; 4]) {
        let len = self.slots.len();
        let old = self.slots[self.head];
        if self.filled == len {
            self.accumulate(old, -1.0);
        } else {
            self.filled += 1;
        }
        self.slots[self.head] = x;
        self.advance();
        self.accumulate(x, 1.0);
        self.count_push();
    }

    fn advance(&mut self) {
        self.head += 1;
        if self.head == self.slots.len() {
            self.head = 0;
        }
    }

    #[inline]
    fn count_push(&mut self) {
        self.pushes_since_resum += 1;
        if self.pushes_since_resum >= self.slots.len() {
            self.resum();
        }
    }

    /// [`Self::push`] of an empty chunk without the float work that cannot change a sum: removing
    /// an empty slot subtracts ±0 and is skipped; adding the empty chunk adds +0, which only turns
    /// a −0 sum into +0 and commutes with every other addition, so [`Self::push_empty`] adds it
    /// once after a run. Thin coins have hours of empty chunks.
    fn push_one_empty(&mut self) {
        let old = self.slots[self.head];
        if self.filled == self.slots.len() {
            if old != [0.0; 4] {
                self.accumulate(old, -1.0);
            }
        } else {
            self.filled += 1;
        }
        self.slots[self.head] = [0.0; 4];
        self.advance();
        self.count_push();
    }

    /// Pushes `n` empty chunks; past the buffer length the result is all-empty, so cap the work.
    fn push_empty(&mut self, n: i64) {
        if n <= 0 {
            return;
        }
        if n as usize >= self.slots.len() {
            let len = self.slots.len();
            *self = Baseline::new(len);
            self.filled = len;
            return;
        }
        for _ in 0..n {
            self.push_one_empty();
        }
        // The +0 of the pushes since the last re-sum (a re-sum replaces the sums).
        if self.pushes_since_resum > 0 {
            for s in self.sum.iter_mut().chain(self.sumsq.iter_mut()) {
                *s += 0.0;
            }
        }
    }

    #[inline(never)]
    fn resum(&mut self) {
        self.pushes_since_resum = 0;
        self.sum = [0.0; 4];
        self.sumsq = [0.0; 3];
        self.priced = 0;
        // Newest first, as `(head - 1 - i) mod len` for i in 0..filled, without a division each.
        let len = self.slots.len();
        let newest_first = (0..self.head).rev().chain((self.head..len).rev());
        for i in newest_first.take(self.filled) {
            let x = self.slots[i];
            // An empty chunk adds ±0, which changes no bit of a sum that is not −0, and a sum that
            // starts at +0 never becomes −0 (exact cancellation rounds to +0): skipped, as thin
            // coins' baselines are mostly empty chunks.
            if x != [0.0; 4] {
                self.accumulate(x, 1.0);
            }
        }
    }

    fn mean_std(&self, k: usize) -> (f64, f64) {
        if self.filled == 0 {
            return (0.0, 0.0);
        }
        let n = self.filled as f64;
        let mean = self.sum[k] / n;
        let var = (self.sumsq[k] / n - mean * mean).max(0.0);
        (mean, var.sqrt())
    }

    fn mean_price(&self) -> f64 {
        if self.priced == 0 {
            0.0
        } else {
            self.sum[3] / self.priced as f64
        }
    }
}

#[derive(Clone, Debug)]
struct ChunkSeries {
    secs: i64,
    index: i64,
    acc: ChunkAcc,
    baseline: Baseline,
    history: i64,
    /// Start of chunk `index + 1`, ms (`i64::MIN` before the first trade).
    next_ms: i64,
}

/// Rolling state of one instrument. Feed trades in event-time order with [`FeatureWindow::update`].
#[derive(Clone, Debug)]
pub struct FeatureWindow {
    cfg: FeatureConfig,
    series: [ChunkSeries; 3],
    now_ms: i64,
    last_buy_ms: i64,
    buys_at_last_ms: u32,
    last_price: f64,
    /// (ts, price) of the last 60 s, plus the reference price at or before the window start.
    ret1: VecDeque<(i64, f64)>,
    ref1: Option<f64>,
    /// (ts, price, qty) of the last 300 s, with running Σpq and Σq for the VWAP.
    ret5: VecDeque<(i64, f64, f64)>,
    ref5: Option<f64>,
    pq: f64,
    q: f64,
}

fn zscore(x: f64, mean: f64, std: f64, floor: f64) -> f64 {
    let d = std.max(floor);
    if d <= 0.0 {
        0.0
    } else {
        (x - mean) / d
    }
}

impl FeatureWindow {
    pub fn new(cfg: &FeatureConfig) -> Self {
        let mk = |secs: i64| ChunkSeries {
            secs,
            index: i64::MIN,
            acc: ChunkAcc::default(),
            baseline: Baseline::new((cfg.baseline_secs / secs).max(1) as usize),
            history: 0,
            next_ms: i64::MIN,
        };
        Self {
            cfg: cfg.clone(),
            series: [mk(CHUNK_SECS[0]), mk(CHUNK_SECS[1]), mk(CHUNK_SECS[2])],
            now_ms: i64::MIN,
            last_buy_ms: i64::MIN,
            buys_at_last_ms: 0,
            last_price: 0.0,
            ret1: VecDeque::new(),
            ref1: None,
            ret5: VecDeque::new(),
            ref5: None,
            pq: 0.0,
            q: 0.0,
        }
    }

    /// Adds one trade; returns the snapshot after it when it is a buy (the side that pumps).
    /// A trade older than the window's clock is counted in its own chunk only if that chunk is
    /// still open; the clock never moves back.
    pub fn update(&mut self, t: &Trade) -> Option<FeatureSnapshot> {
        let (price, qty) = (num::to_f64(t.price), num::to_f64(t.qty));
        self.update_values(t.ts_ms, price, qty, t.aggressor)
    }

    /// [`Self::update`] with the trade's price and size already as floats
    /// ([`num::to_f64`]), for a caller that needs them too.
    pub fn update_values(
        &mut self,
        ts_ms: i64,
        price: f64,
        qty: f64,
        aggressor: Side,
    ) -> Option<FeatureSnapshot> {
        self.record_values(ts_ms, price, qty, aggressor)
            .then(|| self.snapshot_now())
    }

    /// The snapshot as of the last trade recorded: what [`Self::update_values`] returns after a
    /// buy (the same values, bit for bit).
    pub fn snapshot_now(&self) -> FeatureSnapshot {
        self.snapshot(self.now_ms)
    }

    /// [`Self::update_values`] without building the snapshot (a caller that needs it at some
    /// buys only, [`crate::features::ChunkEngine`]); true for a buy.
    pub fn record_values(&mut self, ts_ms: i64, price: f64, qty: f64, aggressor: Side) -> bool {
        let ts = ts_ms.max(self.now_ms);
        self.now_ms = ts;
        self.last_price = price;

        for s in self.series.iter_mut() {
            if ts < s.next_ms {
                continue; // still in chunk `s.index` (time never moves back here)
            }
            let k = ts.div_euclid(s.secs * 1000);
            s.next_ms = (k + 1).saturating_mul(s.secs * 1000);
            if s.index == i64::MIN {
                s.index = k;
            } else if k > s.index {
                let a = s.acc;
                let mean_p = if a.trades > 0.0 {
                    a.price_sum / a.trades
                } else {
                    0.0
                };
                s.baseline
                    .push([a.trades, a.quote_volume, a.rush_orders, mean_p]);
                s.baseline.push_empty(k - s.index - 1);
                s.history += k - s.index;
                s.acc = ChunkAcc::default();
                s.index = k;
            }
        }

        // Returns and VWAP over all trades (both sides).
        self.ret1.push_back((ts, price));
        while self.ret1.front().is_some_and(|&(t0, _)| t0 <= ts - 60_000) {
            self.ref1 = self.ret1.pop_front().map(|x| x.1);
        }
        self.ret5.push_back((ts, price, qty));
        self.pq += price * qty;
        self.q += qty;
        while self
            .ret5
            .front()
            .is_some_and(|&(t0, _, _)| t0 <= ts - 300_000)
        {
            let (_, p, q) = self.ret5.pop_front().expect("checked");
            self.pq -= p * q;
            self.q -= q;
            self.ref5 = Some(p);
        }
        if self.ret5.len() == 1 {
            // Re-anchor the running sums whenever the window restarts, against drift.
            self.pq = price * qty;
            self.q = qty;
        }

        if aggressor != Side::Buy {
            return false;
        }
        let rush = if ts_ms == self.last_buy_ms {
            self.buys_at_last_ms += 1;
            self.buys_at_last_ms == 2
        } else {
            self.last_buy_ms = ts_ms;
            self.buys_at_last_ms = 1;
            false
        };
        for s in self.series.iter_mut() {
            let a = &mut s.acc;
            a.trades += 1.0;
            a.base_volume += qty;
            a.quote_volume += price * qty;
            a.price_sum += price;
            a.max_price = a.max_price.max(price);
            if rush {
                a.rush_orders += 1.0;
            }
        }
        true
    }

    fn snapshot(&self, ts: i64) -> FeatureSnapshot {
        let mut chunks = [ChunkFeatures::default(); 3];
        for (c, s) in chunks.iter_mut().zip(self.series.iter()) {
            let a = &s.acc;
            let b = &s.baseline;
            let (mt, st) = b.mean_std(0);
            let (mq, sq) = b.mean_std(1);
            let (mr, sr) = b.mean_std(2);
            let mp = b.mean_price();
            *c = ChunkFeatures {
                trades: a.trades,
                base_volume: a.base_volume,
                quote_volume: a.quote_volume,
                rush_orders: a.rush_orders,
                mean_price: if a.trades > 0.0 {
                    a.price_sum / a.trades
                } else {
                    0.0
                },
                max_price: a.max_price,
                z_trades: zscore(a.trades, mt, st, 1.0),
                z_quote_volume: zscore(a.quote_volume, mq, sq, mq),
                z_rush_orders: zscore(a.rush_orders, mr, sr, 1.0),
                price_jump: if mp > 0.0 {
                    a.max_price / mp - 1.0
                } else {
                    0.0
                },
            };
        }
        let ret = |r: Option<f64>, oldest: Option<f64>| {
            let base = r.or(oldest).unwrap_or(self.last_price);
            if base > 0.0 {
                self.last_price / base - 1.0
            } else {
                0.0
            }
        };
        let vwap = if self.q > 0.0 {
            self.pq / self.q
        } else {
            self.last_price
        };
        let s25 = &self.series[2];
        let need = (self.cfg.warmup_fraction * self.cfg.baseline_secs as f64 / s25.secs as f64)
            .ceil() as i64;
        FeatureSnapshot {
            ts_ms: ts,
            price: self.last_price,
            chunks,
            ret_1m: ret(self.ref1, self.ret1.front().map(|x| x.1)),
            ret_5m: ret(self.ref5, self.ret5.front().map(|x| x.1)),
            vwap_5m: vwap,
            vwap_dev: if vwap > 0.0 {
                self.last_price / vwap - 1.0
            } else {
                0.0
            },
            warm: s25.history >= need,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::Instrument;
    use rust_decimal::Decimal;
    use std::str::FromStr;

    /// The re-sum skips empty chunks; its sums must be the bits of a re-sum over every chunk.
    #[test]
    fn a_resum_skipping_empty_chunks_gives_the_same_bits() {
        let mut rng = crate::models::iforest::SplitMix64::new(5);
        let mut b = Baseline::new(50);
        for step in 0..2000 {
            match rng.next_f64() {
                r if r < 0.5 => b.push_empty(1 + (r * 20.0) as i64),
                r if r < 0.6 => b.push([-0.0, 0.0, -0.0, 0.0]),
                r if r < 0.7 => b.push([0.0, 2.0 * rng.next_f64(), 0.0, 0.0]),
                _ => b.push([0.0, 3.0, 1.5, 7.0].map(|v| v * rng.next_f64())),
            }
            b.resum();
            let (mut sum, mut sumsq) = ([0.0f64; 4], [0.0f64; 3]);
            let len = b.slots.len();
            for i in 0..b.filled {
                let x = b.slots[(b.head + len - 1 - i) % len];
                sum.iter_mut().zip(x).for_each(|(s, v)| *s += v);
                sumsq.iter_mut().zip(x).for_each(|(s, v)| *s += v * v);
            }
            assert_eq!(
                b.sum.map(f64::to_bits),
                sum.map(f64::to_bits),
                "step {step}"
            );
            assert_eq!(
                b.sumsq.map(f64::to_bits),
                sumsq.map(f64::to_bits),
                "step {step}"
            );
        }
    }

    /// A trade of `X/BTC` (also used by the chunk row tests).
    pub(crate) fn tr(ts: i64, px: &str, qty: &str, side: Side) -> Trade {
        Trade {
            ts_ms: ts,
            instrument: Instrument::new("X/BTC"),
            price: Decimal::from_str(px).unwrap(),
            qty: Decimal::from_str(qty).unwrap(),
            aggressor: side,
            trade_id: None,
            users: None,
        }
    }

    #[test]
    fn chunks_rush_orders_and_zscores() {
        let cfg = FeatureConfig {
            baseline_secs: 50, // 10 chunks of 5 s
            warmup_fraction: 1.0,
        };
        let mut w = FeatureWindow::new(&cfg);
        // One buy in chunk 0 of the 5 s grid, then 9 empty chunks, then a burst at 50 s.
        w.update(&tr(1_000, "1", "1", Side::Buy));
        w.update(&tr(50_000, "1", "1", Side::Sell));
        let a = w.update(&tr(51_000, "1.1", "2", Side::Buy)).unwrap();
        let b = w.update(&tr(51_000, "1.2", "3", Side::Buy)).unwrap();
        let c = w.update(&tr(51_000, "1.3", "1", Side::Buy)).unwrap();
        assert!(w.update(&tr(52_000, "1.3", "1", Side::Sell)).is_none());
        let c5 = c.chunks[0];
        assert_eq!(c5.trades, 3.0);
        assert_eq!(
            c5.rush_orders, 1.0,
            "three buys in one ms are one rush order"
        );
        assert_eq!(a.chunks[0].rush_orders, 0.0);
        assert_eq!(b.chunks[0].rush_orders, 1.0);
        assert!((c5.base_volume - 6.0).abs() < 1e-12);
        assert!((c5.quote_volume - (2.2 + 3.6 + 1.3)).abs() < 1e-12);
        assert!((c5.max_price - 1.3).abs() < 1e-12);
        // Baseline of the 5 s grid: chunks 0..9 = [1 trade, 0 × 9] → mean 0.1, std 0.3 (floor 1).
        assert!((c5.z_trades - (3.0 - 0.1) / 1.0).abs() < 1e-9);
        // Baseline mean price: only chunk 0 had trades, at price 1 → jump = 1.3 / 1 − 1.
        assert!((c5.price_jump - 0.3).abs() < 1e-9);
        // 25 s grid: chunks 0 and 1 closed → 2 < 50/25 = 2 needed? 2 ≥ 2 → warm.
        assert!(c.warm);
    }

    #[test]
    fn returns_and_vwap() {
        let mut w = FeatureWindow::new(&FeatureConfig::default());
        w.update(&tr(0, "1.0", "1", Side::Sell));
        w.update(&tr(30_000, "2.0", "1", Side::Sell));
        w.update(&tr(200_000, "4.0", "2", Side::Sell));
        let s = w.update(&tr(250_000, "5.0", "1", Side::Buy)).unwrap();
        // 1 min ago (190 s): last price at or before it is 2.0.
        assert!((s.ret_1m - (5.0 / 2.0 - 1.0)).abs() < 1e-12);
        // 5 min ago: nothing old enough yet → oldest in window (1.0).
        assert!((s.ret_5m - 4.0).abs() < 1e-12);
        let vwap = (1.0 + 2.0 + 8.0 + 5.0) / 5.0;
        assert!((s.vwap_5m - vwap).abs() < 1e-12);
        let s = w.update(&tr(320_000, "5.0", "1", Side::Buy)).unwrap();
        // Trade at 0 and 30 s... 0 dropped (≤ 20 s), so ref5 = 1.0; the 30 s one stays.
        assert!((s.ret_5m - 4.0).abs() < 1e-12);
        assert!((s.vwap_5m - (2.0 + 8.0 + 5.0 + 5.0) / 5.0).abs() < 1e-12);
    }

    #[test]
    fn empty_chunks_leave_the_same_sums_as_pushing_zeros() {
        let mut rng = crate::models::iforest::SplitMix64::new(21);
        let (mut fast, mut slow) = (Baseline::new(37), Baseline::new(37));
        for step in 0..5000 {
            if rng.next_f64() < 0.4 {
                let n = rng.below(12) as i64;
                fast.push_empty(n);
                for _ in 0..n {
                    slow.push([0.0; 4]);
                }
            } else {
                let busy = rng.next_f64() < 0.7;
                let x = if busy {
                    let t = (1 + rng.below(9)) as f64;
                    [
                        t,
                        t * rng.next_f64() * 3.1,
                        rng.below(3) as f64,
                        rng.next_f64(),
                    ]
                } else {
                    [0.0; 4]
                };
                fast.push(x);
                slow.push(x);
            }
            let bits = |b: &Baseline| {
                let v: Vec<u64> = b.sum.iter().chain(&b.sumsq).map(|v| v.to_bits()).collect();
                (v, b.priced, b.head, b.filled, b.pushes_since_resum)
            };
            assert_eq!(bits(&fast), bits(&slow), "step {step}");
        }
    }
}
