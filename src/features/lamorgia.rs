//! La Morgia et al.'s chunk features ("Pump and Dump detection in cryptocurrencies", 2020/2023),
//! computed incrementally in event time, exactly as their published `features.py` defines them:
//!
//! - buy trades are grouped into chunks on a grid of `chunk_secs` (pandas `Grouper`, epoch-aligned);
//!   chunks without a buy are skipped (they are not part of any rolling window);
//! - per chunk: `rush` = number of distinct milliseconds holding ≥ 2 buy rows, `trades` = buy rows,
//!   `volume` = Σ price·amount of buys (quote currency), `price` = mean buy price, `price_max`;
//! - each feature is the relative change (`pct_change`) of a rolling statistic over the last `window`
//!   non-empty chunks: `std_rush_order`, `avg_rush_order`, `std_trades`, `std_volume`, `avg_volume`,
//!   `std_price` (sample std, ddof 1), and over the last 10 chunks `avg_price`, `avg_price_max`.
//!
//! A value is `NaN` until its window is full and has a previous value (pandas gives NaN there);
//! `x/0` gives ±inf as in pandas. Rows of a chunk exist only once the chunk has closed (past-only).

use std::collections::VecDeque;

/// Names of the 8 features, in [`LaMorgiaRow::values`] order.
pub const LM_NAMES: [&str; 8] = [
    "std_rush_order",
    "avg_rush_order",
    "std_trades",
    "std_volume",
    "avg_volume",
    "std_price",
    "avg_price",
    "avg_price_max",
];

/// Window of La Morgia's short price averages (`rolling(window=10)`).
const SHORT: usize = 10;

/// Rolling mean and sample std of the last `len` values, O(1) per push.
///
/// Sums are kept of `x − reference` and recomputed from the buffer every `len` pushes with the
/// reference at the window mean, so small prices (1e-6 BTC) keep their precision.
#[derive(Clone, Debug)]
struct Rolling {
    len: usize,
    buf: VecDeque<f64>,
    reference: f64,
    sum: f64,
    sumsq: f64,
    since_resum: usize,
}

impl Rolling {
    fn new(len: usize) -> Self {
        Self {
            len,
            buf: VecDeque::with_capacity(len + 1),
            reference: 0.0,
            sum: 0.0,
            sumsq: 0.0,
            since_resum: 0,
        }
    }

    fn push(&mut self, x: f64) {
        if self.buf.is_empty() {
            self.reference = x;
        }
        self.buf.push_back(x);
        let d = x - self.reference;
        self.sum += d;
        self.sumsq += d * d;
        if self.buf.len() > self.len {
            let old = self.buf.pop_front().unwrap_or(0.0) - self.reference;
            self.sum -= old;
            self.sumsq -= old * old;
        }
        self.since_resum += 1;
        if self.since_resum >= self.len {
            self.resum();
        }
    }

    fn resum(&mut self) {
        let n = self.buf.len() as f64;
        self.reference = self.buf.iter().sum::<f64>() / n;
        self.sum = 0.0;
        self.sumsq = 0.0;
        for &x in &self.buf {
            let d = x - self.reference;
            self.sum += d;
            self.sumsq += d * d;
        }
        self.since_resum = 0;
    }

    fn full(&self) -> bool {
        self.buf.len() == self.len
    }

    /// (mean, sample std) as if `x` were pushed, without pushing; NaN until the window would be
    /// full. Same sums as [`push`](Self::push), so equal to the pushed values up to rounding.
    fn peek(&self, x: f64) -> (f64, f64) {
        if self.buf.len() + 1 < self.len {
            return (f64::NAN, f64::NAN);
        }
        let reference = if self.buf.is_empty() {
            x
        } else {
            self.reference
        };
        let d = x - reference;
        let (mut sum, mut sumsq) = (self.sum + d, self.sumsq + d * d);
        if self.buf.len() + 1 > self.len {
            let old = self.buf.front().copied().unwrap_or(0.0) - reference;
            sum -= old;
            sumsq -= old * old;
        }
        let n = self.len as f64;
        let mean = reference + sum / n;
        let std = if self.len < 2 {
            f64::NAN
        } else {
            ((sumsq - sum * sum / n) / (n - 1.0)).max(0.0).sqrt()
        };
        (mean, std)
    }

    /// Mean, or NaN until the window is full.
    fn mean(&self) -> f64 {
        if !self.full() {
            return f64::NAN;
        }
        self.reference + self.sum / self.len as f64
    }

    /// Sample standard deviation (ddof 1), or NaN until the window is full.
    fn std(&self) -> f64 {
        if !self.full() || self.len < 2 {
            return f64::NAN;
        }
        let n = self.len as f64;
        let var = (self.sumsq - self.sum * self.sum / n) / (n - 1.0);
        var.max(0.0).sqrt()
    }
}

/// `pct_change` of a series: `cur / prev − 1` (NaN when either is NaN).
fn pct_change(prev: f64, cur: f64) -> f64 {
    cur / prev - 1.0
}

/// The 8 features of one closed chunk.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LaMorgiaRow {
    /// Start of the chunk, ms since the epoch (La Morgia's `date` column).
    pub chunk_start_ms: i64,
    /// In [`LM_NAMES`] order.
    pub values: [f64; 8],
}

/// Statistics whose relative change is a feature: 6 over `window`, 2 over [`SHORT`].
const N_STATS: usize = 8;

/// Incremental La Morgia features of one instrument at one chunk size.
#[derive(Clone, Debug)]
pub struct LaMorgiaChunks {
    chunk_ms: i64,
    /// Current chunk index (`ts / chunk_ms`), None before the first buy.
    current: Option<i64>,
    trades: f64,
    volume: f64,
    price_sum: f64,
    price_max: f64,
    rush: f64,
    last_ms: i64,
    rows_at_ms: u32,
    rush_s: Rolling,
    trades_s: Rolling,
    volume_s: Rolling,
    price_s: Rolling,
    price_short: Rolling,
    price_max_short: Rolling,
    prev: [f64; N_STATS],
    last: Option<LaMorgiaRow>,
}

impl LaMorgiaChunks {
    /// `chunk_secs`: grid size (5, 15, 25); `window`: rolling window in non-empty chunks (La Morgia:
    /// 700 for 5 s, 900 for 15 s and 25 s).
    pub fn new(chunk_secs: i64, window: usize) -> Self {
        let window = window.max(2);
        Self {
            chunk_ms: chunk_secs * 1000,
            current: None,
            trades: 0.0,
            volume: 0.0,
            price_sum: 0.0,
            price_max: 0.0,
            rush: 0.0,
            last_ms: i64::MIN,
            rows_at_ms: 0,
            rush_s: Rolling::new(window),
            trades_s: Rolling::new(window),
            volume_s: Rolling::new(window),
            price_s: Rolling::new(window),
            price_short: Rolling::new(SHORT),
            price_max_short: Rolling::new(SHORT),
            prev: [f64::NAN; N_STATS],
            last: None,
        }
    }

    /// Chunk size, ms.
    pub fn chunk_ms(&self) -> i64 {
        self.chunk_ms
    }

    /// Closes the open chunk if `ts_ms` lies past it; returns the closed chunk's row.
    pub fn advance(&mut self, ts_ms: i64) -> Option<LaMorgiaRow> {
        let idx = ts_ms.div_euclid(self.chunk_ms);
        match self.current {
            Some(c) if idx > c => Some(self.close(c)),
            _ => None,
        }
    }

    /// Adds one buy (`price`: quote per base; `quote_volume` = price·amount). Call
    /// [`advance`](Self::advance) first; trades must come in time order.
    pub fn add_buy(&mut self, ts_ms: i64, price: f64, quote_volume: f64) {
        let idx = ts_ms.div_euclid(self.chunk_ms);
        if self.current != Some(idx) {
            if let Some(c) = self.current {
                if idx > c {
                    self.close(c);
                }
            }
            self.current = Some(idx);
        }
        self.trades += 1.0;
        self.volume += quote_volume;
        self.price_sum += price;
        self.price_max = if self.trades == 1.0 {
            price
        } else {
            self.price_max.max(price)
        };
        if ts_ms == self.last_ms {
            self.rows_at_ms += 1;
            if self.rows_at_ms == 2 {
                self.rush += 1.0;
            }
        } else {
            self.last_ms = ts_ms;
            self.rows_at_ms = 1;
        }
    }

    fn close(&mut self, idx: i64) -> LaMorgiaRow {
        let mean_price = self.price_sum / self.trades;
        self.rush_s.push(self.rush);
        self.trades_s.push(self.trades);
        self.volume_s.push(self.volume);
        self.price_s.push(mean_price);
        self.price_short.push(mean_price);
        self.price_max_short.push(self.price_max);
        let stats = [
            self.rush_s.std(),
            self.rush_s.mean(),
            self.trades_s.std(),
            self.volume_s.std(),
            self.volume_s.mean(),
            self.price_s.std(),
            self.price_short.mean(),
            self.price_max_short.mean(),
        ];
        let values = self.changes(&stats);
        self.prev = stats;
        self.current = None;
        self.trades = 0.0;
        self.volume = 0.0;
        self.price_sum = 0.0;
        self.price_max = 0.0;
        self.rush = 0.0;
        let row = LaMorgiaRow {
            chunk_start_ms: idx * self.chunk_ms,
            values,
        };
        self.last = Some(row);
        row
    }

    /// The 8 features of the open chunk as if it closed now (after the buys added so far), or
    /// `None` before the first buy. What a streaming detector can know mid-chunk; at a chunk's
    /// last buy it equals the row [`advance`](Self::advance) later returns (up to rounding).
    pub fn peek(&self) -> Option<[f64; 8]> {
        self.current?;
        let mean_price = self.price_sum / self.trades;
        let (rush_m, rush_s) = self.rush_s.peek(self.rush);
        let (_, trades_s) = self.trades_s.peek(self.trades);
        let (vol_m, vol_s) = self.volume_s.peek(self.volume);
        let (_, price_s) = self.price_s.peek(mean_price);
        let (short_m, _) = self.price_short.peek(mean_price);
        let (max_m, _) = self.price_max_short.peek(self.price_max);
        let stats = [
            rush_s, rush_m, trades_s, vol_s, vol_m, price_s, short_m, max_m,
        ];
        Some(self.changes(&stats))
    }

    /// `pct_change` of each statistic against the previous closed chunk's.
    fn changes(&self, stats: &[f64; N_STATS]) -> [f64; 8] {
        std::array::from_fn(|k| pct_change(self.prev[k], stats[k]))
    }

    /// The most recently closed chunk's row.
    pub fn last(&self) -> Option<&LaMorgiaRow> {
        self.last.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference: pandas-style rolling std/mean recomputed from scratch.
    fn naive(xs: &[f64], w: usize) -> (Vec<f64>, Vec<f64>) {
        let mut means = vec![];
        let mut stds = vec![];
        for i in 0..xs.len() {
            if i + 1 < w {
                means.push(f64::NAN);
                stds.push(f64::NAN);
                continue;
            }
            let s = &xs[i + 1 - w..=i];
            let m = s.iter().sum::<f64>() / w as f64;
            let v = s.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (w as f64 - 1.0);
            means.push(m);
            stds.push(v.sqrt());
        }
        (means, stds)
    }

    #[test]
    fn rolling_matches_naive_on_tiny_prices() {
        let xs: Vec<f64> = (0..500)
            .map(|i| 3.1e-6 + 1e-9 * ((i * 7919) % 13) as f64)
            .collect();
        let mut r = Rolling::new(37);
        let (m, s) = naive(&xs, 37);
        for (i, &x) in xs.iter().enumerate() {
            r.push(x);
            if i >= 36 {
                assert!((r.mean() - m[i]).abs() <= 1e-18, "mean at {i}");
                assert!(
                    (r.std() - s[i]).abs() <= 1e-15 * s[i].max(1e-12),
                    "std at {i}"
                );
            } else {
                assert!(r.mean().is_nan());
            }
        }
    }

    #[test]
    fn chunks_rush_and_pct_change() {
        // Window 2, 5 s chunks. Chunk 0: buys at ms 1000 ×2 (one rush ms), 2000. Chunk 1: one buy.
        // Chunk 2: none (skipped). Chunk 3: three buys at one ms (one rush ms).
        let mut lm = LaMorgiaChunks::new(5, 2);
        lm.add_buy(1000, 1.0, 1.0);
        lm.add_buy(1000, 3.0, 3.0);
        lm.add_buy(2000, 2.0, 2.0);
        assert!(lm.advance(4999).is_none());
        let r0 = lm.advance(5000).unwrap();
        assert_eq!(r0.chunk_start_ms, 0);
        assert!(r0.values.iter().all(|v| v.is_nan()));
        lm.add_buy(6000, 4.0, 8.0);
        let r1 = lm.advance(15_000).unwrap();
        assert_eq!(r1.chunk_start_ms, 5000);
        // First full window, no previous stat: still NaN.
        assert!(r1.values[0].is_nan());
        lm.add_buy(16_000, 5.0, 5.0);
        lm.add_buy(16_000, 5.0, 5.0);
        lm.add_buy(16_000, 5.0, 5.0);
        let r2 = lm.advance(20_000).unwrap();
        assert_eq!(r2.chunk_start_ms, 15_000);
        // rush series 1, 0, 1: std(1,0)=0.7071, std(0,1)=0.7071 → 0; mean 0.5 → 0.5 → 0.
        assert!((r2.values[0]).abs() < 1e-12);
        // trades 3, 1, 3: std same → 0. volume 6, 8, 15: std(6,8)=1.414, std(8,15)=4.95.
        let s1 = (2.0f64).sqrt();
        let s2 = (24.5f64).sqrt();
        assert!((r2.values[3] - (s2 / s1 - 1.0)).abs() < 1e-12);
        // avg_volume: mean 7 → 11.5.
        assert!((r2.values[4] - (11.5 / 7.0 - 1.0)).abs() < 1e-12);
    }

    #[test]
    fn peek_equals_the_row_the_chunk_closes_with() {
        let mut lm = LaMorgiaChunks::new(5, 3);
        let mut t = 0;
        for c in 0..40i64 {
            for k in 0..(c % 4 + 1) {
                let px = 1e-6 * (1.0 + 0.01 * ((c * 7 + k) % 5) as f64);
                t = c * 5000 + 100 * k + if k == 2 { 0 } else { 1 };
                lm.add_buy(t, px, px * 10.0 * (k + 1) as f64);
            }
            let peek = lm.peek().unwrap();
            let row = lm.advance(t + 5000).unwrap();
            for (k, (&p, &r)) in peek.iter().zip(&row.values).enumerate() {
                assert!(
                    (p.is_nan() && r.is_nan())
                        || p == r
                        || (p - r).abs() <= 1e-9 * r.abs().max(1.0),
                    "chunk {c} feature {k}: peek {p} row {r}"
                );
            }
        }
        assert!(lm.last().unwrap().values[4].is_finite());
        assert!(LaMorgiaChunks::new(5, 3).peek().is_none());
    }
}
