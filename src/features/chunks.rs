//! Model inputs: one row per instrument at checkpoint buys of each 5 s chunk (the 1st, 2nd, 3rd,
//! 4th, 6th, 8th, 12th, … buy; see [`is_checkpoint`]).
//!
//! A row holds the trades up to and including its buy, the open chunks taken as if they closed
//! then (past-only by construction; `tests/models.rs` checks it by rewriting later data), so a
//! detector sees a burst while it happens, not at the chunk's end. Columns, in [`feature_names`]
//! order:
//!
//! - La Morgia's 8 features (see [`super::lamorgia`]) of the open 5 s, 15 s and 25 s chunks
//!   (`lm5.*`, `lm15.*`, `lm25.*`);
//! - the spine's own window features at the buy: z-scores of buy trades, quote volume
//!   and rush orders per chunk size against a 1 h baseline, price jumps, 1/5-min returns, VWAP
//!   deviation;
//! - trade-flow shape of the open 5 s chunk so far: `buy_share_5s` (buy quote volume / all quote volume),
//!   `size_ratio_5s` (mean buy size / mean buy size of the last hour), `max_trade_share_5s`
//!   (largest buy / all buys), and `quiet_ratio` (buy quote volume of the 15 min before the chunk
//!   over a quarter of the 60 min before those: < 1 means a quiet spell before the storm);
//! - novelty against the instrument's own last 24 h (closed 25 s chunks, fewer while history is
//!   shorter): `trades_25s_day_max` (buys of the open 25 s chunk / the most buys of one earlier
//!   chunk), `qv_25s_day_max` (the same for buy quote volume) and `high_25s_day_high` (highest buy
//!   price of the open chunk over the highest earlier one − 1, %). A pump is usually the busiest
//!   burst in days, a thin coin's ordinary burst is not; both are scale-free.
//!
//! No hour/minute-of-day column: most pumps start on the hour, so such columns leak the label.

use super::lamorgia::{LaMorgiaChunks, LM_NAMES};
use super::num;
use super::window::{FeatureConfig, FeatureSnapshot, FeatureWindow};
use crate::domain::{Side, Trade};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::OnceLock;

/// Number of model inputs.
pub const N_FEATURES: usize = 24 + 21;

/// Own (non-La Morgia) column names, after the 24 `lm*` ones.
const OWN: [&str; 21] = [
    "z_trades_5s",
    "z_trades_15s",
    "z_trades_25s",
    "z_quote_volume_5s",
    "z_quote_volume_15s",
    "z_quote_volume_25s",
    "z_rush_orders_5s",
    "z_rush_orders_15s",
    "z_rush_orders_25s",
    "price_jump_5s",
    "price_jump_25s",
    "ret_1m",
    "ret_5m",
    "vwap_dev",
    "buy_share_5s",
    "size_ratio_5s",
    "max_trade_share_5s",
    "quiet_ratio",
    "trades_25s_day_max",
    "qv_25s_day_max",
    "high_25s_day_high",
];

/// Column names of [`ChunkRow::x`].
pub fn feature_names() -> &'static [String] {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let mut v = Vec::with_capacity(N_FEATURES);
        for s in [5, 15, 25] {
            for n in LM_NAMES {
                v.push(format!("lm{s}.{n}"));
            }
        }
        v.extend(OWN.iter().map(|s| s.to_string()));
        v
    })
}

/// `[features.chunks]`-like settings of the row builder (part of `[train]`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ChunkConfig {
    /// La Morgia's rolling window in non-empty 5 s chunks (their code: 700).
    pub lm_window_5s: usize,
    /// La Morgia's rolling window in non-empty 15 s and 25 s chunks (their code: 900).
    pub lm_window_15_25s: usize,
}

impl Default for ChunkConfig {
    fn default() -> Self {
        Self {
            lm_window_5s: 700,
            lm_window_15_25s: 900,
        }
    }
}

/// One model input row.
#[derive(Clone, Debug, PartialEq)]
pub struct ChunkRow {
    /// Time of the buy the row was built at, ms: the row holds trades up to and including it.
    pub ts_ms: i64,
    /// Price of that buy, quote per base.
    pub price: f64,
    /// True once the spine's 1 h baseline is warm.
    pub warm: bool,
    /// Inputs in [`feature_names`] order; NaN where a rolling window is not full yet.
    pub x: [f64; N_FEATURES],
}

#[derive(Clone, Debug, Default)]
struct Acc {
    buys: u32,
    buy_qv: f64,
    sell_qv: f64,
    max_buy_qv: f64,
}

/// Sums over the closed 5 s chunks before the open one (they change only when a chunk closes).
#[derive(Clone, Copy, Debug)]
struct HistSums {
    idx: i64,
    hour_qv: f64,
    hour_n: f64,
    recent: f64,
    before: f64,
}

/// Row builder of one instrument.
#[derive(Clone, Debug)]
pub struct ChunkEngine {
    window: FeatureWindow,
    lm: [LaMorgiaChunks; 3],
    current: Option<i64>,
    acc: Acc,
    /// The spine's snapshot at the last checkpoint buy.
    last_snap: Option<FeatureSnapshot>,
    /// Closed non-empty 5 s chunks of the last 75 min: (index, buy quote volume, buys).
    hist: VecDeque<(i64, f64, f64)>,
    sums: Option<HistSums>,
    day: DayExtremes,
}

/// Sliding maxima of closed 25 s chunks over the last 24 h (monotonic deques, O(1) amortised).
#[derive(Clone, Debug, Default)]
struct DayExtremes {
    idx: Option<i64>,
    /// Open chunk: buys, buy quote volume, highest buy price.
    open: [f64; 3],
    max: [VecDeque<(i64, f64)>; 3],
}

const DAY_CHUNK_MS: i64 = 25_000;
const DAY_CHUNKS: i64 = 86_400_000 / DAY_CHUNK_MS;

impl DayExtremes {
    fn add_buy(&mut self, ts_ms: i64, price: f64, qv: f64) {
        let idx = ts_ms.div_euclid(DAY_CHUNK_MS);
        if let Some(c) = self.idx.filter(|&c| idx > c) {
            for (q, v) in self.max.iter_mut().zip(self.open) {
                while q.back().is_some_and(|b| b.1 <= v) {
                    q.pop_back();
                }
                q.push_back((c, v));
            }
            self.open = [0.0; 3];
        }
        self.idx = Some(idx);
        for q in &mut self.max {
            while q.front().is_some_and(|f| f.0 < idx - DAY_CHUNKS) {
                q.pop_front();
            }
        }
        self.open[0] += 1.0;
        self.open[1] += qv;
        self.open[2] = self.open[2].max(price);
    }

    /// `[trades ratio, quote volume ratio, high − 1 in %]`; NaN without an earlier chunk.
    fn values(&self) -> [f64; 3] {
        let m = |i: usize| self.max[i].front().map_or(f64::NAN, |f| f.1);
        [
            self.open[0] / m(0),
            self.open[1] / m(1),
            (self.open[2] / m(2) - 1.0) * 100.0,
        ]
    }
}

const CHUNK_MS: i64 = 5000;
/// 75 min of 5 s chunks: 15 min "recent" + 60 min "before".
const HIST_CHUNKS: i64 = 900;
const RECENT_CHUNKS: i64 = 180;
const HOUR_CHUNKS: i64 = 720;

/// True for the buy counts within a 5 s chunk at which a row is built: 1, 2, 3, 4, then powers
/// of two and 1.5× them (6, 8, 12, 16, 24, …). Early in a burst rows come at nearly every buy;
/// a busy chunk costs O(log n) rows.
pub fn is_checkpoint(buys: u32) -> bool {
    if buys <= 4 {
        return buys >= 1;
    }
    let p = buys.next_power_of_two();
    buys == p || buys * 4 == p * 3
}

impl ChunkEngine {
    pub fn new(features: &FeatureConfig, cfg: &ChunkConfig) -> Self {
        Self {
            window: FeatureWindow::new(features),
            lm: [
                LaMorgiaChunks::new(5, cfg.lm_window_5s),
                LaMorgiaChunks::new(15, cfg.lm_window_15_25s),
                LaMorgiaChunks::new(25, cfg.lm_window_15_25s),
            ],
            current: None,
            acc: Acc::default(),
            last_snap: None,
            hist: VecDeque::new(),
            sums: None,
            day: DayExtremes::default(),
        }
    }

    /// The spine's snapshot at the last checkpoint buy, the last row's moment (what the rule
    /// score reads).
    pub fn last_snapshot(&self) -> Option<&FeatureSnapshot> {
        self.last_snap.as_ref()
    }

    /// Feeds one trade (time order per instrument). At a buy whose count within the open 5 s
    /// chunk [is a checkpoint](is_checkpoint), returns the row of everything up to and including
    /// it: the open chunks scored as if they closed now, so a burst is seen while it happens.
    pub fn update(&mut self, t: &Trade) -> Option<ChunkRow> {
        let idx = t.ts_ms.div_euclid(CHUNK_MS);
        if let Some(c) = self.current {
            if idx > c {
                self.close(c);
            }
        }
        self.current = Some(idx);
        let (price, qty) = (num::to_f64(t.price), num::to_f64(t.qty));
        let qv = price * qty;
        match t.aggressor {
            Side::Buy => {
                self.window.record_values(t.ts_ms, price, qty, Side::Buy);
                for lm in &mut self.lm {
                    lm.add_buy(t.ts_ms, price, qv); // closes its previous chunk itself
                }
                self.acc.buys += 1;
                self.acc.buy_qv += qv;
                self.acc.max_buy_qv = self.acc.max_buy_qv.max(qv);
                self.day.add_buy(t.ts_ms, price, qv);
                if is_checkpoint(self.acc.buys) {
                    // Only a checkpoint's snapshot is read (most buys are not one).
                    self.last_snap = Some(self.window.snapshot_now());
                    return Some(self.row(idx, t.ts_ms, price));
                }
            }
            Side::Sell => {
                self.window.record_values(t.ts_ms, price, qty, Side::Sell);
                self.acc.sell_qv += qv;
            }
        }
        None
    }

    /// Closes the 5 s chunk `idx`: its buys join the history of quiet-ratio and size baselines.
    fn close(&mut self, idx: i64) {
        let acc = std::mem::take(&mut self.acc);
        if acc.buys > 0 {
            self.hist.push_back((idx, acc.buy_qv, acc.buys as f64));
        }
    }

    fn hist_sums(&mut self, idx: i64) -> HistSums {
        if let Some(s) = self.sums.filter(|s| s.idx == idx) {
            return s;
        }
        while self.hist.front().is_some_and(|h| h.0 < idx - HIST_CHUNKS) {
            self.hist.pop_front();
        }
        let mut s = HistSums {
            idx,
            hour_qv: 0.0,
            hour_n: 0.0,
            recent: 0.0,
            before: 0.0,
        };
        for &(i, qv, n) in &self.hist {
            if i >= idx - HOUR_CHUNKS {
                s.hour_qv += qv;
                s.hour_n += n;
            }
            if i >= idx - RECENT_CHUNKS {
                s.recent += qv;
            } else {
                s.before += qv;
            }
        }
        self.sums = Some(s);
        s
    }

    fn row(&mut self, idx: i64, ts_ms: i64, price: f64) -> ChunkRow {
        let mut x = [f64::NAN; N_FEATURES];
        for (g, lm) in self.lm.iter().enumerate() {
            if let Some(v) = lm.peek() {
                x[g * 8..g * 8 + 8].copy_from_slice(&v);
            }
        }
        let h = self.hist_sums(idx);
        let acc = &self.acc;
        let s = self.last_snap.as_ref();
        let c = |i: usize, f: fn(&crate::features::ChunkFeatures) -> f64| {
            s.map(|s| f(&s.chunks[i])).unwrap_or(f64::NAN)
        };
        let own = &mut x[24..];
        own[0] = c(0, |c| c.z_trades);
        own[1] = c(1, |c| c.z_trades);
        own[2] = c(2, |c| c.z_trades);
        own[3] = c(0, |c| c.z_quote_volume);
        own[4] = c(1, |c| c.z_quote_volume);
        own[5] = c(2, |c| c.z_quote_volume);
        own[6] = c(0, |c| c.z_rush_orders);
        own[7] = c(1, |c| c.z_rush_orders);
        own[8] = c(2, |c| c.z_rush_orders);
        own[9] = c(0, |c| c.price_jump);
        own[10] = c(2, |c| c.price_jump);
        own[11] = s.map(|s| s.ret_1m).unwrap_or(f64::NAN);
        own[12] = s.map(|s| s.ret_5m).unwrap_or(f64::NAN);
        own[13] = s.map(|s| s.vwap_dev).unwrap_or(f64::NAN);
        own[14] = acc.buy_qv / (acc.buy_qv + acc.sell_qv);
        let mean_size = acc.buy_qv / acc.buys as f64;
        own[15] = if h.hour_n > 0.0 {
            mean_size / (h.hour_qv / h.hour_n)
        } else {
            f64::NAN
        };
        own[16] = acc.max_buy_qv / acc.buy_qv;
        own[17] = if h.before > 0.0 {
            h.recent / (h.before / 4.0)
        } else {
            f64::NAN
        };
        own[18..21].copy_from_slice(&self.day.values());
        ChunkRow {
            ts_ms,
            price,
            warm: s.is_some_and(|s| s.warm),
            x,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::window::tests::tr;

    #[test]
    fn checkpoints_are_1_2_3_4_then_powers_of_two_and_one_and_a_half_times() {
        let cps: Vec<u32> = (0..=50).filter(|&n| is_checkpoint(n)).collect();
        assert_eq!(cps, vec![1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48]);
    }

    #[test]
    fn rows_come_at_checkpoint_buys_with_the_open_chunk_so_far() {
        let mut e = ChunkEngine::new(&FeatureConfig::default(), &ChunkConfig::default());
        let r = e.update(&tr(1000, "1", "2", Side::Buy)).unwrap();
        assert_eq!((r.ts_ms, r.price), (1000, 1.0));
        // Only buys so far: buy share 1, largest buy 2 of 2.
        assert_eq!(r.x[24 + 14], 1.0);
        assert_eq!(r.x[24 + 16], 1.0);
        assert!(e.update(&tr(2000, "2", "1", Side::Sell)).is_none());
        let r = e.update(&tr(3000, "1", "1", Side::Buy)).unwrap();
        assert_eq!(r.ts_ms, 3000);
        // Buy quote volume 3 of 5; largest buy 2 of 3.
        assert!((r.x[24 + 14] - 0.6).abs() < 1e-12);
        assert!((r.x[24 + 16] - 2.0 / 3.0).abs() < 1e-12);
        for k in 0..2 {
            assert!(
                e.update(&tr(3500, "1", "1", Side::Buy)).is_some(),
                "buy {}",
                k + 3
            );
        }
        // The 5th buy of the chunk is no checkpoint; the 6th is.
        assert!(e.update(&tr(3600, "1", "1", Side::Buy)).is_none());
        assert!(e.update(&tr(3700, "1", "1", Side::Buy)).is_some());
        // A new chunk starts counting again.
        assert!(e.update(&tr(6000, "1", "1", Side::Sell)).is_none());
        assert_eq!(
            e.update(&tr(11_000, "1", "1", Side::Buy)).unwrap().x[24 + 14],
            1.0
        );
        assert_eq!(feature_names().len(), N_FEATURES);
    }

    #[test]
    fn day_extremes_compare_the_open_25s_chunk_with_the_busiest_earlier_one() {
        let mut e = ChunkEngine::new(&FeatureConfig::default(), &ChunkConfig::default());
        let r = e.update(&tr(0, "10", "1", Side::Buy)).unwrap();
        assert!(r.x[24 + 18].is_nan(), "no earlier chunk yet");
        // Chunk 0 (0–25 s): 3 buys, quote volume 10 + 20 + 20 = 50, high 20.
        e.update(&tr(1000, "20", "1", Side::Buy));
        e.update(&tr(2000, "10", "2", Side::Buy));
        // Chunk 1: 1 buy of quote volume 5 at 5: a third of chunk 0's buys.
        let r = e.update(&tr(30_000, "5", "1", Side::Buy)).unwrap();
        assert!((r.x[24 + 18] - 1.0 / 3.0).abs() < 1e-12);
        assert!((r.x[24 + 19] - 0.1).abs() < 1e-12);
        assert!((r.x[24 + 20] - (5.0 / 20.0 - 1.0) * 100.0).abs() < 1e-9);
        // 24 h and one chunk later, chunk 0 has left the window; chunk 1 (1 buy, qv 5) is the max.
        let r = e
            .update(&tr(86_400_000 + 30_000, "6", "1", Side::Buy))
            .unwrap();
        assert_eq!(r.x[24 + 18], 1.0);
        assert!((r.x[24 + 19] - 6.0 / 5.0).abs() < 1e-12);
        assert!((r.x[24 + 20] - 20.0).abs() < 1e-9);
        assert_eq!(feature_names()[24 + 20], "high_25s_day_high");
    }
}
