//! Merges several trade sources into one stream in event-time order.
//!
//! Ties on `ts_ms` are broken by source order (sorted paths), then file order, so the merged stream
//! is deterministic. Files of one instrument may overlap in time (the pump set has such pairs): within
//! one millisecond of one instrument, a trade (side, price, qty, id) is emitted as many times as the
//! source holding it most often holds it — the multiset union — so no trade is counted twice while
//! genuine repeats inside one file survive.

use super::{Malformed, TradeSource};
use crate::domain::{Instrument, MarketEvent, Side, Trade};
use rust_decimal::Decimal;
use rustc_hash::FxHashMap;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// At most this many malformed lines are kept with their details; all are counted.
pub const MALFORMED_DETAILS_KEPT: usize = 100;

/// Counters of a merged stream.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct MergeStats {
    pub files: usize,
    pub trades_read: u64,
    pub trades_emitted: u64,
    /// Book tops and feed statuses (recordings).
    pub other_events: u64,
    pub duplicates_dropped: u64,
    pub malformed: u64,
    /// Trades older than the previous one of the same file (emitted, clock not moved back).
    pub out_of_order: u64,
    pub malformed_details: Vec<Malformed>,
}

type Key = (Side, Decimal, Decimal, Option<u64>);

#[derive(Default)]
struct MsGroup {
    ts_ms: i64,
    /// (source, key, emitted) of every row seen at `ts_ms` for this instrument.
    rows: Vec<(usize, Key, bool)>,
}

pub struct MergedStream {
    sources: Vec<Box<dyn TradeSource>>,
    heads: Vec<Option<MarketEvent>>,
    last_ts: Vec<i64>,
    heap: BinaryHeap<Reverse<(i64, usize)>>,
    /// Keyed by instrument (FxHash: SipHash was 1 % of a replay, keys are not adversarial).
    groups: FxHashMap<Instrument, MsGroup>,
    pub stats: MergeStats,
}

impl MergedStream {
    pub fn new(sources: Vec<Box<dyn TradeSource>>) -> Self {
        let n = sources.len();
        let mut s = Self {
            sources,
            heads: vec![None; n],
            last_ts: vec![i64::MIN; n],
            heap: BinaryHeap::with_capacity(n),
            groups: FxHashMap::default(),
            stats: MergeStats {
                files: n,
                ..Default::default()
            },
        };
        for i in 0..n {
            s.advance(i);
        }
        s
    }

    fn record_malformed(&mut self, m: Malformed) {
        self.stats.malformed += 1;
        if self.stats.malformed_details.len() < MALFORMED_DETAILS_KEPT {
            tracing::warn!(file = %m.file, line = m.line, reason = %m.reason, "malformed line skipped");
            self.stats.malformed_details.push(m);
        } else if self.stats.malformed == MALFORMED_DETAILS_KEPT as u64 + 1 {
            tracing::warn!("more malformed lines: counted in the summary, not logged one by one");
        }
    }

    /// Pulls the next valid trade of source `i` into its head slot and pushes it on the heap.
    fn advance(&mut self, i: usize) {
        if let Some(ts) = self.pull(i) {
            self.heap.push(Reverse((ts, i)));
        }
    }

    /// Pulls the next valid trade of source `i` into its head slot: its time, `None` at the end.
    fn pull(&mut self, i: usize) -> Option<i64> {
        loop {
            match self.sources[i].next_item() {
                None => {
                    self.heads[i] = None;
                    return None;
                }
                Some(Err(m)) => self.record_malformed(m),
                Some(Ok(e)) => {
                    let ts = e.ts_ms();
                    if e.as_trade().is_some() {
                        self.stats.trades_read += 1;
                    }
                    if ts < self.last_ts[i] {
                        self.stats.out_of_order += 1;
                    }
                    self.last_ts[i] = self.last_ts[i].max(ts);
                    self.heads[i] = Some(e);
                    return Some(ts);
                }
            }
        }
    }

    /// Multiset-union rule: emit iff this source now holds the key more often than was emitted.
    fn is_duplicate(&mut self, src: usize, t: &Trade) -> bool {
        let g = match self.groups.get_mut(&t.instrument) {
            Some(g) => g,
            None => self.groups.entry(t.instrument.clone()).or_default(),
        };
        if g.ts_ms != t.ts_ms {
            g.ts_ms = t.ts_ms;
            g.rows.clear();
        }
        let key: Key = (t.aggressor, t.price, t.qty, t.trade_id);
        let only_this_source = g.rows.iter().all(|(s, _, _)| *s == src);
        let emit = only_this_source || {
            let held = 1 + g
                .rows
                .iter()
                .filter(|(s, k, _)| *s == src && *k == key)
                .count();
            let emitted = g.rows.iter().filter(|(_, k, e)| *e && *k == key).count();
            held > emitted
        };
        g.rows.push((src, key, emit));
        !emit
    }
}

impl Iterator for MergedStream {
    type Item = MarketEvent;
    fn next(&mut self) -> Option<MarketEvent> {
        loop {
            let Reverse((_, i)) = *self.heap.peek()?;
            let e = self.heads[i].take().expect("heap entry has a head");
            // The source's next trade replaces its entry in place: one sift instead of a pop and
            // a push. Entries are unique (one per source), so the order is the same.
            match self.pull(i) {
                Some(ts) => {
                    *self.heap.peek_mut().expect("peeked") = Reverse((ts, i));
                }
                None => {
                    self.heap.pop();
                }
            }
            if let MarketEvent::Trade(t) = &e {
                if self.is_duplicate(i, t) {
                    self.stats.duplicates_dropped += 1;
                    continue;
                }
                self.stats.trades_emitted += 1;
            } else {
                self.stats.other_events += 1;
            }
            return Some(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feeds::SourceItem;
    use rust_decimal_macros::dec;

    struct VecSource(std::vec::IntoIter<SourceItem>, String);
    impl TradeSource for VecSource {
        fn next_item(&mut self) -> Option<SourceItem> {
            self.0.next()
        }
        fn name(&self) -> &str {
            &self.1
        }
    }
    fn t(ts: i64, px: Decimal, qty: Decimal) -> SourceItem {
        Ok(MarketEvent::Trade(Trade {
            ts_ms: ts,
            instrument: Instrument::new("X/BTC"),
            price: px,
            qty,
            aggressor: Side::Buy,
            trade_id: None,
            users: None,
        }))
    }
    fn src(items: Vec<SourceItem>) -> Box<dyn TradeSource> {
        Box::new(VecSource(items.into_iter(), "mem".into()))
    }

    #[test]
    fn overlapping_sources_keep_each_trade_once() {
        // A repeats a trade genuinely (two identical rows at ts 2); B overlaps A on ts 2..3.
        let a = src(vec![
            t(1, dec!(1), dec!(1)),
            t(2, dec!(1), dec!(5)),
            t(2, dec!(1), dec!(5)),
            t(3, dec!(2), dec!(1)),
        ]);
        let b = src(vec![
            t(2, dec!(1), dec!(5)),
            t(2, dec!(1), dec!(5)),
            t(3, dec!(2), dec!(1)),
            t(4, dec!(3), dec!(1)),
        ]);
        let mut m = MergedStream::new(vec![a, b]);
        let out: Vec<_> = m
            .by_ref()
            .filter_map(|e| e.as_trade().map(|t| (t.ts_ms, t.qty)))
            .collect();
        assert_eq!(
            out,
            vec![
                (1, dec!(1)),
                (2, dec!(5)),
                (2, dec!(5)),
                (3, dec!(1)),
                (4, dec!(1))
            ]
        );
        assert_eq!(m.stats.duplicates_dropped, 3);
        assert_eq!(m.stats.trades_read, 8);
    }

    #[test]
    fn merges_in_time_order_and_counts_malformed() {
        let bad = Err(Malformed {
            file: "a".into(),
            line: 3,
            reason: "bad price".into(),
        });
        let a = src(vec![t(1, dec!(1), dec!(1)), bad, t(5, dec!(1), dec!(2))]);
        let b = src(vec![t(3, dec!(1), dec!(3)), t(4, dec!(1), dec!(4))]);
        let mut m = MergedStream::new(vec![a, b]);
        let ts: Vec<_> = m.by_ref().map(|e| e.ts_ms()).collect();
        assert_eq!(ts, vec![1, 3, 4, 5]);
        assert_eq!(m.stats.malformed, 1);
        assert_eq!(m.stats.malformed_details[0].line, 3);
    }
}
