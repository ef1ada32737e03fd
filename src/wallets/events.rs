//! A tracked wallet's fills become position changes (open, add, reduce, close, flip) with signed
//! size and notional; a change past a notional threshold is a **whale alert**.
//!
//! Fills come from Hyperliquid's public `trades` stream (`users: [buyer, seller]` names both
//! sides: the buyer's fill is a buy, the seller's a sell) or from `userFills` /
//! `userFillsByTime` (which carry `startPosition`, the wallet's position before the fill). The
//! key of a fill is (wallet, `tid`): both sides of a trade share the `tid`, and the same fill
//! arriving twice (a backfill after a disconnect overlapping the stream) counts once.

use crate::domain::{Side, Trade};
use rust_decimal::Decimal;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;
use std::collections::VecDeque;

/// One fill of one wallet: `price` USD per coin, `size` coins (> 0), `ts_ms` Unix ms;
/// `start_position` (signed coins) when the source gives it (`userFills`).
#[derive(Clone, Debug, PartialEq)]
pub struct WalletFill {
    pub wallet: String,
    pub coin: String,
    pub side: Side,
    pub price: Decimal,
    pub size: Decimal,
    pub ts_ms: i64,
    pub tid: u64,
    pub start_position: Option<Decimal>,
}

/// Why a `userFills` row was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FillError {
    Missing(&'static str),
    BadNumber(&'static str),
    BadSide(String),
}

impl std::fmt::Display for FillError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FillError::Missing(k) => write!(f, "fill without {k}"),
            FillError::BadNumber(k) => write!(f, "fill with a malformed {k}"),
            FillError::BadSide(s) => write!(f, "fill with side {s:?} (want \"B\" or \"A\")"),
        }
    }
}

/// A decimal-string field, at most 10^14 in magnitude (so notionals cannot overflow).
fn dec(v: &serde_json::Value, key: &'static str) -> Result<Decimal, FillError> {
    let s = v[key].as_str().ok_or(FillError::Missing(key))?;
    let d: Decimal = s.parse().map_err(|_| FillError::BadNumber(key))?;
    crate::feeds::decimal::in_range(d, key).map_err(|_| FillError::BadNumber(key))
}

impl WalletFill {
    /// The fills of the two wallets a public trade names (buyer buys, seller sells); none when
    /// the trade names no wallets. `coin` is the venue's coin name (`BTC`).
    pub fn from_trade(t: &Trade, coin: &str) -> Option<[WalletFill; 2]> {
        let u = t.users.as_ref()?;
        let fill = |wallet: &str, side| WalletFill {
            wallet: wallet.to_ascii_lowercase(),
            coin: coin.to_string(),
            side,
            price: t.price,
            size: t.qty,
            ts_ms: t.ts_ms,
            tid: t.trade_id.unwrap_or_default(),
            start_position: None,
        };
        Some([fill(&u.buyer, Side::Buy), fill(&u.seller, Side::Sell)])
    }

    /// One `userFills` element (`{coin, px, sz, side: "B"|"A", time, startPosition, tid, …}`,
    /// numbers as decimal strings) of `wallet`.
    pub fn from_user_fill(wallet: &str, v: &serde_json::Value) -> Result<WalletFill, FillError> {
        let side = match v["side"].as_str().ok_or(FillError::Missing("side"))? {
            "B" => Side::Buy,
            "A" => Side::Sell,
            other => return Err(FillError::BadSide(other.to_string())),
        };
        let (size, price) = (dec(v, "sz")?, dec(v, "px")?);
        if size <= Decimal::ZERO {
            return Err(FillError::BadNumber("sz"));
        }
        if price <= Decimal::ZERO {
            return Err(FillError::BadNumber("px"));
        }
        Ok(WalletFill {
            wallet: wallet.to_ascii_lowercase(),
            coin: v["coin"]
                .as_str()
                .ok_or(FillError::Missing("coin"))?
                .to_string(),
            side,
            price,
            size,
            ts_ms: match v["time"].as_i64().ok_or(FillError::Missing("time"))? {
                // Event clocks take differences of times: an extreme one would overflow them.
                t if crate::feeds::ts_in_range(t) => t,
                _ => return Err(FillError::BadNumber("time")),
            },
            tid: v["tid"].as_u64().ok_or(FillError::Missing("tid"))?,
            start_position: v
                .get("startPosition")
                .map(|_| dec(v, "startPosition"))
                .transpose()?,
        })
    }

    /// The fill as the tracker's event on `instrument`.
    pub fn into_event(self, instrument: crate::domain::Instrument) -> crate::domain::UserFill {
        crate::domain::UserFill {
            ts_ms: self.ts_ms,
            instrument,
            wallet: self.wallet,
            side: self.side,
            price: self.price,
            size: self.size,
            tid: self.tid,
            start_position: self.start_position,
        }
    }

    /// The tracker's event as a fill of `coin` (wallet lower-cased).
    pub fn from_event(u: &crate::domain::UserFill, coin: &str) -> WalletFill {
        WalletFill {
            wallet: u.wallet.to_ascii_lowercase(),
            coin: coin.to_string(),
            side: u.side,
            price: u.price,
            size: u.size,
            ts_ms: u.ts_ms,
            tid: u.tid,
            start_position: u.start_position,
        }
    }

    /// Signed size: buy > 0, sell < 0.
    pub fn delta(&self) -> Decimal {
        self.side.signed(self.size)
    }
}

/// What a fill did to the wallet's position.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Open,
    Add,
    Reduce,
    Close,
    /// Through zero: closed one side and opened the other.
    Flip,
}

/// A position change of a tracked wallet: positions in signed coins (long > 0), `notional`
/// = |delta| × price in USD.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PositionChange {
    pub wallet: String,
    pub coin: String,
    pub ts_ms: i64,
    pub tid: u64,
    pub kind: ChangeKind,
    pub before: Decimal,
    pub after: Decimal,
    pub delta: Decimal,
    pub price: Decimal,
    pub notional: Decimal,
}

fn kind(before: Decimal, after: Decimal) -> ChangeKind {
    if before.is_zero() {
        ChangeKind::Open
    } else if after.is_zero() {
        ChangeKind::Close
    } else if (before > Decimal::ZERO) != (after > Decimal::ZERO) {
        ChangeKind::Flip
    } else if after.abs() > before.abs() {
        ChangeKind::Add
    } else {
        ChangeKind::Reduce
    }
}

/// Small ids for names seen over and over (wallet addresses, coins): memory per position,
/// remembered fill and flow entry stays a few bytes at thousands of wallets.
#[derive(Clone, Debug, Default)]
pub struct Interner {
    ids: FxHashMap<String, u32>,
    names: Vec<String>,
}

impl Interner {
    /// The id of `name`, new or known.
    pub fn id(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.ids.get(name) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(name.to_string());
        self.ids.insert(name.to_string(), i);
        i
    }
    /// The id of a known name.
    pub fn get(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }
    pub fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }
}

/// Keys (wallet id, `tid`) of the fills seen, so a fill arriving twice counts once; a key is
/// forgotten once `memory_ms` of event time has passed since, or beyond `max_keys` keys.
#[derive(Clone, Debug)]
pub struct SeenFills {
    keys: FxHashSet<(u32, u64)>,
    /// (time, wallet id, tid) of the remembered fills, oldest first.
    order: VecDeque<(i64, u32, u64)>,
    memory_ms: i64,
    max_keys: usize,
}

impl SeenFills {
    pub fn new(memory_ms: i64, max_keys: usize) -> Self {
        Self {
            keys: FxHashSet::default(),
            order: VecDeque::new(),
            memory_ms,
            max_keys,
        }
    }

    /// Remembers the key of `wallet`'s fill `tid` at `ts_ms`; false when it was seen already.
    pub fn first_time(&mut self, wallet: u32, tid: u64, ts_ms: i64) -> bool {
        if !self.keys.insert((wallet, tid)) {
            return false;
        }
        self.order.push_back((ts_ms, wallet, tid));
        while let Some(&(ts, w, t)) = self.order.front() {
            if ts_ms.saturating_sub(ts) <= self.memory_ms && self.order.len() <= self.max_keys {
                break;
            }
            self.order.pop_front();
            self.keys.remove(&(w, t));
        }
        true
    }
}

/// Positions of the tracked wallets, from their fills, with duplicate fills dropped.
#[derive(Clone, Debug)]
pub struct WalletBook {
    names: Interner,
    /// (wallet id, coin id) → signed coins.
    positions: FxHashMap<(u32, u32), Decimal>,
    seen: SeenFills,
    /// Fills whose `start_position` disagreed with the book (missed fills), and positions a
    /// poll corrected; the book took the venue's figure.
    pub resyncs: u64,
    pub duplicates: u64,
}

impl WalletBook {
    /// A book that remembers fill keys for `memory_ms` of event time (a backfill reaches back
    /// at most that far).
    pub fn new(memory_ms: i64) -> Self {
        Self {
            names: Interner::default(),
            positions: FxHashMap::default(),
            seen: SeenFills::new(memory_ms, usize::MAX),
            resyncs: 0,
            duplicates: 0,
        }
    }

    /// The wallet's position in `coin` (signed coins; 0 when unknown).
    pub fn position(&self, wallet: &str, coin: &str) -> Decimal {
        let key = self.names.get(wallet).zip(self.names.get(coin));
        key.and_then(|k| self.positions.get(&k).copied())
            .unwrap_or_default()
    }

    /// Sets a position from a `clearinghouseState` poll; a figure that differs from the book's
    /// counts as a resync.
    pub fn set_position(&mut self, wallet: &str, coin: &str, signed: Decimal) {
        let key = (self.names.id(wallet), self.names.id(coin));
        if self.positions.insert(key, signed).unwrap_or_default() != signed {
            self.resyncs += 1;
        }
    }

    /// Applies a fill; `None` for a fill already applied (same wallet and `tid`).
    pub fn apply(&mut self, f: &WalletFill) -> Option<PositionChange> {
        let wallet = self.names.id(&f.wallet);
        if !self.seen.first_time(wallet, f.tid, f.ts_ms) {
            self.duplicates += 1;
            return None;
        }
        let coin = self.names.id(&f.coin);
        let slot = self.positions.entry((wallet, coin)).or_default();
        let before = match f.start_position {
            Some(start) if start != *slot => {
                self.resyncs += 1;
                start
            }
            _ => *slot,
        };
        let after = before + f.delta();
        *slot = after;
        Some(PositionChange {
            wallet: f.wallet.clone(),
            coin: f.coin.clone(),
            ts_ms: f.ts_ms,
            tid: f.tid,
            kind: kind(before, after),
            before,
            after,
            delta: f.delta(),
            price: f.price,
            notional: f.size * f.price,
        })
    }
}

/// A position change whose notional reached the alert threshold, with the wallet's weight.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WhaleAlert {
    pub change: PositionChange,
    pub weight: f64,
}

/// The alert for `change` when its notional is at least `threshold` USD.
pub fn whale_alert(change: &PositionChange, weight: f64, threshold: Decimal) -> Option<WhaleAlert> {
    (change.notional >= threshold).then(|| WhaleAlert {
        change: change.clone(),
        weight,
    })
}

/// The tracked wallets, for the hot path: which sides of a public trade are tracked, without
/// allocating (addresses lower-case, as Hyperliquid sends them).
#[derive(Clone, Debug, Default)]
pub struct WalletFilter {
    weights: FxHashMap<String, f64>,
}

impl WalletFilter {
    /// Tracks `wallets` (address → weight).
    pub fn new(wallets: impl IntoIterator<Item = (String, f64)>) -> Self {
        let weights = wallets
            .into_iter()
            .map(|(a, w)| (a.to_ascii_lowercase(), w))
            .collect();
        Self { weights }
    }

    pub fn len(&self) -> usize {
        self.weights.len()
    }

    pub fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }

    /// The wallet's weight when tracked.
    pub fn weight(&self, wallet: &str) -> Option<f64> {
        self.weights.get(wallet).copied()
    }

    /// Tracked buyer and seller of `t` (either may be `None`).
    pub fn sides(&self, t: &Trade) -> [Option<f64>; 2] {
        match &t.users {
            Some(u) => [self.weight(&u.buyer), self.weight(&u.seller)],
            None => [None, None],
        }
    }

    /// Addresses and weights, sorted (for a stable model id).
    pub fn sorted(&self) -> Vec<(&String, &f64)> {
        let mut v: Vec<_> = self.weights.iter().collect();
        v.sort_by(|a, b| a.0.cmp(b.0));
        v
    }
}
