//! Rolling back per-instrument feature engines after a failed batch without copying them before
//! every batch: a copy of each engine as of a checkpoint, and the trades fed since, replayed onto
//! the copies on a rollback (the engines are deterministic).
//!
//! Copying an instrument's chunk engine (~300 KB of windows) before every batch was a third of a
//! `paper` session's decode → signal latency; a checkpoint now comes every [`CHECKPOINT_TRADES`]
//! trades and copies only the engines those trades touched.

use crate::domain::{Instrument, Side, Trade};
use rust_decimal::Decimal;
use rustc_hash::FxHashMap;

/// Trades fed between two checkpoints (at most one batch more).
pub const CHECKPOINT_TRADES: usize = 4096;

/// Where to roll back to: `trades` trades into checkpoint `generation`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    generation: u64,
    trades: usize,
}

#[derive(Clone, Debug)]
pub struct Undo<E> {
    /// Every engine as it was at the checkpoint (an instrument absent had none yet).
    checkpoint: FxHashMap<Instrument, E>,
    /// Trades fed since the checkpoint, in order (without their wallets: engines do not read
    /// them), each naming its instrument by a slot in `instruments`: a clone per trade would
    /// touch the instrument's shared reference count, whose cache line the reader's thread
    /// writes too (an atomic that moves between cores on every trade).
    since: Vec<Fed>,
    instruments: Vec<Instrument>,
    slots: FxHashMap<Instrument, u32>,
    generation: u64,
    /// The mark the current checkpoint was taken at (a rollback to it replays nothing).
    taken_at: Mark,
}

/// A fed trade, its instrument as a slot in [`Undo::instruments`].
#[derive(Clone, Copy, Debug)]
struct Fed {
    slot: u32,
    ts_ms: i64,
    price: Decimal,
    qty: Decimal,
    aggressor: Side,
    trade_id: Option<u64>,
}

impl<E: Clone> Default for Undo<E> {
    fn default() -> Self {
        Self {
            checkpoint: FxHashMap::default(),
            since: Vec::new(),
            instruments: Vec::new(),
            slots: FxHashMap::default(),
            generation: 0,
            taken_at: Mark {
                generation: 0,
                trades: 0,
            },
        }
    }
}

impl<E: Clone> Undo<E> {
    /// The current position, to roll back to later.
    pub fn mark(&self) -> Mark {
        Mark {
            generation: self.generation,
            trades: self.since.len(),
        }
    }

    /// Records a trade about to be fed to its engine.
    pub fn fed(&mut self, t: &Trade) {
        let slot = match self.since.last() {
            // Runs of one instrument are the rule; the comparison reads pointers, not counts.
            Some(f) if self.instruments[f.slot as usize] == t.instrument => f.slot,
            _ => self.slot_of(&t.instrument),
        };
        self.since.push(Fed {
            slot,
            ts_ms: t.ts_ms,
            price: t.price,
            qty: t.qty,
            aggressor: t.aggressor,
            trade_id: t.trade_id,
        });
    }

    fn slot_of(&mut self, i: &Instrument) -> u32 {
        if let Some(&s) = self.slots.get(i) {
            return s;
        }
        let s = u32::try_from(self.instruments.len()).expect("fewer than 2^32 instruments");
        self.instruments.push(i.clone());
        self.slots.insert(i.clone(), s);
        s
    }

    /// The trade `f` was made from (without wallets).
    fn trade(&self, f: &Fed) -> Trade {
        Trade {
            ts_ms: f.ts_ms,
            instrument: self.instruments[f.slot as usize].clone(),
            price: f.price,
            qty: f.qty,
            aggressor: f.aggressor,
            trade_id: f.trade_id,
            users: None,
        }
    }

    /// Takes a new checkpoint once enough trades were fed; call only between batches, while
    /// `engines` are as of [`Self::mark`].
    pub fn maybe_checkpoint(&mut self, engines: &FxHashMap<Instrument, E>) {
        if self.since.len() < CHECKPOINT_TRADES {
            return;
        }
        let at = self.mark();
        for i in self.touched() {
            if let Some(e) = engines.get(&i) {
                self.checkpoint.insert(i, e.clone());
            }
        }
        self.since.clear();
        self.generation += 1;
        self.taken_at = at;
    }

    /// The instruments of the trades fed since the checkpoint, each once.
    fn touched(&self) -> Vec<Instrument> {
        let mut seen = vec![false; self.instruments.len()];
        let mut out = Vec::new();
        for f in &self.since {
            if !std::mem::replace(&mut seen[f.slot as usize], true) {
                out.push(self.instruments[f.slot as usize].clone());
            }
        }
        out
    }

    /// Puts `engines` back as they were at `mark`: the engines touched since the checkpoint
    /// from their copies, then the trades up to `mark` fed again through `feed`. Errors when
    /// `mark` is from an older checkpoint than the last (the engines are then left as they are).
    pub fn roll_back(
        &mut self,
        mark: Mark,
        engines: &mut FxHashMap<Instrument, E>,
        mut feed: impl FnMut(&mut FxHashMap<Instrument, E>, &Trade),
    ) -> Result<(), String> {
        let keep = if mark.generation == self.generation {
            mark.trades.min(self.since.len())
        } else if mark == self.taken_at {
            0
        } else {
            return Err(format!(
                "rollback to {mark:?}, older than the last checkpoint {:?}",
                self.taken_at
            ));
        };
        for i in self.touched() {
            match self.checkpoint.get(&i) {
                Some(e) => engines.insert(i, e.clone()),
                None => engines.remove(&i),
            };
        }
        self.since.truncate(keep);
        for f in &self.since {
            feed(engines, &self.trade(f));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Side;
    use rust_decimal::Decimal;

    /// A stand-in engine: the list of (instrument, ts) it was fed.
    type Engines = FxHashMap<Instrument, Vec<i64>>;

    fn feed(e: &mut Engines, t: &Trade) {
        e.entry(t.instrument.clone()).or_default().push(t.ts_ms);
    }

    fn trade(i: &str, ts: i64) -> Trade {
        Trade {
            ts_ms: ts,
            instrument: Instrument::new(i),
            price: Decimal::ONE,
            qty: Decimal::ONE,
            aggressor: Side::Buy,
            trade_id: None,
            users: None,
        }
    }

    #[test]
    fn a_rollback_restores_the_engines_of_any_mark_since_the_last_checkpoint() {
        let (mut undo, mut engines) = (Undo::<Vec<i64>>::default(), Engines::default());
        let mut history: Vec<(Mark, Engines)> = Vec::new();
        for ts in 0..3 * CHECKPOINT_TRADES as i64 {
            if ts % 50 == 0 {
                // A batch boundary: checkpoint maybe, then remember the state to come back to.
                undo.maybe_checkpoint(&engines);
                history.push((undo.mark(), engines.clone()));
            }
            let t = trade(["A/B", "C/D", "E/F"][(ts % 7 % 3) as usize], ts);
            undo.fed(&t);
            feed(&mut engines, &t);
        }
        // The last batch boundary and the one before (the checkpoint may lie between them).
        for back in [1, 2] {
            let (mark, want) = history[history.len() - back].clone();
            let (mut u, mut e) = (undo.clone(), engines.clone());
            match u.roll_back(mark, &mut e, feed) {
                Ok(()) => assert_eq!(e, want, "back {back}"),
                Err(msg) => assert!(back == 2 && msg.contains("older"), "{msg}"),
            }
        }
        // A mark taken right before a checkpoint rolls back to the checkpoint itself.
        let mut u = Undo::<Vec<i64>>::default();
        let mut e = Engines::default();
        for ts in 0..CHECKPOINT_TRADES as i64 {
            let t = trade("A/B", ts);
            u.fed(&t);
            feed(&mut e, &t);
        }
        let (mark, want) = (u.mark(), e.clone());
        u.maybe_checkpoint(&e);
        let t = trade("X/Y", 1 << 40);
        u.fed(&t);
        feed(&mut e, &t);
        u.roll_back(mark, &mut e, feed).unwrap();
        assert_eq!(e, want);
        assert!(!e.contains_key(&Instrument::new("X/Y")));
    }
}
