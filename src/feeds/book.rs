//! L2 order book: price levels per side, updated by snapshots and deltas.

use crate::domain::{BookTop, Instrument};
use rust_decimal::Decimal;
use std::collections::BTreeMap;

/// One side's levels: price → size (quote per base → base units). Size 0 removes a level.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct L2Book {
    bids: BTreeMap<Decimal, Decimal>,
    asks: BTreeMap<Decimal, Decimal>,
    /// Venue update id of the last applied update (Binance `u`, Bybit `u`).
    pub last_update_id: u64,
}

impl L2Book {
    pub fn clear(&mut self) {
        self.bids.clear();
        self.asks.clear();
        self.last_update_id = 0;
    }

    pub fn apply(&mut self, bids: &[(Decimal, Decimal)], asks: &[(Decimal, Decimal)]) {
        for (side, levels) in [(&mut self.bids, bids), (&mut self.asks, asks)] {
            for (px, qty) in levels {
                if qty.is_zero() {
                    side.remove(px);
                } else {
                    side.insert(*px, *qty);
                }
            }
        }
    }

    pub fn replace(&mut self, bids: &[(Decimal, Decimal)], asks: &[(Decimal, Decimal)]) {
        self.bids.clear();
        self.asks.clear();
        self.apply(bids, asks);
    }

    pub fn depth(&self) -> (usize, usize) {
        (self.bids.len(), self.asks.len())
    }

    /// Best bid and ask, when both sides have levels.
    pub fn top(&self, instrument: &Instrument, ts_ms: i64) -> Option<BookTop> {
        let (bp, bq) = self.bids.iter().next_back()?;
        let (ap, aq) = self.asks.iter().next()?;
        Some(BookTop {
            ts_ms,
            instrument: instrument.clone(),
            bid_price: *bp,
            bid_qty: *bq,
            ask_price: *ap,
            ask_qty: *aq,
        })
    }
}

/// Parses `[["price","qty"], …]` levels.
pub fn parse_levels(v: &[[&str; 2]]) -> Result<Vec<(Decimal, Decimal)>, String> {
    v.iter()
        .map(|[p, q]| {
            let px =
                super::decimal::parse_decimal(p).ok_or_else(|| format!("bad level price {p:?}"))?;
            let px = super::decimal::in_range(px, "level price")?;
            let qty =
                super::decimal::parse_decimal(q).ok_or_else(|| format!("bad level size {q:?}"))?;
            let qty = super::decimal::in_range(qty, "level size")?;
            if px <= Decimal::ZERO || qty < Decimal::ZERO {
                return Err(format!("bad level [{p}, {q}]"));
            }
            Ok((px, qty))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn deltas_update_and_remove_levels() {
        let mut b = L2Book::default();
        b.replace(
            &[(dec!(10), dec!(1)), (dec!(9), dec!(2))],
            &[(dec!(11), dec!(3))],
        );
        let i = Instrument::new("X/USDT");
        let t = b.top(&i, 1).unwrap();
        assert_eq!((t.bid_price, t.ask_price), (dec!(10), dec!(11)));
        b.apply(&[(dec!(10), dec!(0))], &[(dec!(10.5), dec!(1))]);
        let t = b.top(&i, 2).unwrap();
        assert_eq!(
            (t.bid_price, t.bid_qty, t.ask_price),
            (dec!(9), dec!(2), dec!(10.5))
        );
        assert_eq!(b.depth(), (1, 2));
    }
}
