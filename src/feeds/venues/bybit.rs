//! Bybit v5 public websocket: `publicTrade.{SYM}` and `orderbook.{depth}.{SYM}` (snapshot, then
//! deltas whose update id `u` increases by one; `u = 1` is a fresh snapshot after a service restart;
//! a gap re-subscribes the book, which makes Bybit send a new snapshot). Keep-alive: `{"op":"ping"}`.
//!
//! Trade fields: `T` time (ms), `s` symbol, `S` taker side (`Buy`/`Sell`), `v` size, `p` price,
//! `i` trade id. Book fields: `s`, `b`/`a` `[["price","size"]…]` (size 0 deletes), `u`, `seq`.

use super::{split_pair, take_trades, venue_instrument, Control, DepthSnapshot, Venue, VenueCodec};
use crate::domain::{FeedState, FeedStatus, Instrument, MarketEvent, Side, Trade};
use crate::feeds::book::{parse_levels, L2Book};
use crate::feeds::decimal::parse_positive_fast as parse_positive;
use rustc_hash::FxHashMap as HashMap;
use serde::Deserialize;
use std::borrow::Cow;

#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(borrow)]
    topic: Option<Cow<'a, str>>,
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "crate::feeds::de_opt_event_ms")]
    ts: Option<i64>,
    #[serde(borrow)]
    data: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    op: Option<Cow<'a, str>>,
    success: Option<bool>,
    #[serde(borrow)]
    ret_msg: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct TradeItem<'a> {
    #[serde(rename = "T")]
    time: i64,
    #[serde(rename = "s", borrow)]
    symbol: Cow<'a, str>,
    #[serde(rename = "S", borrow)]
    side: Cow<'a, str>,
    #[serde(rename = "v", borrow)]
    size: Cow<'a, str>,
    #[serde(rename = "p", borrow)]
    price: Cow<'a, str>,
    #[serde(rename = "i", borrow)]
    id: Option<Cow<'a, str>>,
}

/// Fast path: a `publicTrade` frame in one pass.
#[derive(Deserialize)]
struct TradeFrame<'a> {
    #[serde(borrow)]
    data: Vec<TradeItem<'a>>,
}

#[derive(Deserialize)]
struct BookData<'a> {
    #[serde(rename = "s", borrow)]
    symbol: Cow<'a, str>,
    #[serde(rename = "b", borrow)]
    bids: Vec<[&'a str; 2]>,
    #[serde(rename = "a", borrow)]
    asks: Vec<[&'a str; 2]>,
    u: u64,
}

pub struct BybitCodec {
    symbols: HashMap<String, Instrument>,
    books: HashMap<Instrument, (L2Book, bool)>,
    depth: usize,
}

impl BybitCodec {
    pub fn new(pairs: &[String], depth: usize) -> Result<Self, String> {
        let mut symbols = HashMap::default();
        let mut books = HashMap::default();
        for p in pairs {
            let (b, q) = split_pair(p)?;
            let inst = venue_instrument(Venue::Bybit, &b, &q);
            books.insert(inst.clone(), (L2Book::default(), false));
            symbols.insert(format!("{b}{q}"), inst);
        }
        Ok(Self {
            symbols,
            books,
            depth,
        })
    }

    fn instrument(&self, sym: &str) -> Result<Instrument, String> {
        self.symbols
            .get(sym)
            .cloned()
            .ok_or_else(|| format!("message for unsubscribed symbol {sym:?}"))
    }

    fn topics(&self, books: Option<&[Instrument]>) -> Vec<String> {
        let mut syms: Vec<&String> = self.symbols.keys().collect();
        syms.sort();
        let mut t = Vec::new();
        for s in syms {
            let inst = &self.symbols[s];
            match books {
                None => {
                    t.push(format!("publicTrade.{s}"));
                    t.push(format!("orderbook.{}.{s}", self.depth));
                }
                Some(b) if b.contains(inst) => t.push(format!("orderbook.{}.{s}", self.depth)),
                Some(_) => {}
            }
        }
        t
    }
}

fn op(op: &str, args: &[String]) -> Vec<String> {
    // Bybit spot takes at most 10 args per request.
    args.chunks(10)
        .map(|c| serde_json::json!({"op": op, "args": c}).to_string())
        .collect()
}

impl VenueCodec for BybitCodec {
    fn venue(&self) -> Venue {
        Venue::Bybit
    }
    fn instruments(&self) -> Vec<Instrument> {
        let mut v: Vec<_> = self.symbols.values().cloned().collect();
        v.sort();
        v
    }
    fn subscribe_messages(&self) -> Vec<String> {
        op("subscribe", &self.topics(None))
    }
    fn resubscribe_messages(&self, books: &[Instrument]) -> Vec<String> {
        let t = self.topics(Some(books));
        let mut v = op("unsubscribe", &t);
        v.extend(op("subscribe", &t));
        v
    }
    fn ping_message(&self) -> Option<String> {
        Some(r#"{"op":"ping"}"#.into())
    }
    fn on_connect(&mut self) -> Vec<Instrument> {
        for (b, synced) in self.books.values_mut() {
            b.clear();
            *synced = false;
        }
        Vec::new() // snapshots arrive on the socket after subscribing
    }
    fn apply_snapshot(
        &mut self,
        i: &Instrument,
        _: &DepthSnapshot,
        _: i64,
        _: &mut Vec<MarketEvent>,
    ) -> Result<Control, String> {
        Err(format!("bybit books sync over the socket, not REST ({i})"))
    }
    fn on_message(
        &mut self,
        text: &str,
        _recv_ms: i64,
        out: &mut Vec<MarketEvent>,
    ) -> Result<Control, String> {
        // Hot path: trades, in one pass; anything else takes the general parser.
        if text.starts_with("{\"topic\":\"publicTrade.") {
            let before = out.len();
            match self.scan_trades(text, out) {
                Some(Ok(())) => return Ok(Control::None),
                Some(Err(e)) => return Err(e),
                None => out.truncate(before), // unusual shape: the serde path decides
            }
            if let Ok(f) = serde_json::from_str::<TradeFrame>(text) {
                take_trades(&f.data, |it| self.trade(it), out)?;
                return Ok(Control::None);
            }
        }
        let f: Frame = serde_json::from_str(text).map_err(|e| format!("bad JSON: {e}"))?;
        if let Some(op) = f.op.as_deref() {
            if f.ret_msg.as_deref() == Some("pong") || op == "pong" {
                return Ok(Control::Pong);
            }
            if op == "subscribe" || op == "unsubscribe" {
                return if f.success == Some(false) {
                    Err(format!(
                        "bybit refused {op}: {}",
                        f.ret_msg.as_deref().unwrap_or("")
                    ))
                } else {
                    Ok(Control::Subscribed)
                };
            }
            return Ok(Control::None);
        }
        let topic = f.topic.as_deref().ok_or("frame without topic or op")?;
        let data = f.data.ok_or("frame without data")?;
        if topic.starts_with("publicTrade.") {
            let items: Vec<TradeItem> =
                serde_json::from_str(data.get()).map_err(|e| format!("bad publicTrade: {e}"))?;
            take_trades(&items, |it| self.trade(it), out)?;
            return Ok(Control::None);
        }
        if topic.starts_with("orderbook.") {
            let d: BookData =
                serde_json::from_str(data.get()).map_err(|e| format!("bad orderbook: {e}"))?;
            let inst = self.instrument(&d.symbol)?;
            let ts = f.ts.ok_or("orderbook without ts")?;
            let (bids, asks) = (parse_levels(&d.bids)?, parse_levels(&d.asks)?);
            let snapshot = f.kind.as_deref() == Some("snapshot") || d.u == 1;
            let (book, synced) = self.books.get_mut(&inst).expect("known book");
            if snapshot {
                book.replace(&bids, &asks);
                book.last_update_id = d.u;
                let was = *synced;
                *synced = true;
                if let Some(top) = book.top(&inst, ts) {
                    out.push(MarketEvent::Book(top));
                }
                if !was {
                    out.push(MarketEvent::Status(FeedStatus {
                        ts_ms: ts,
                        instrument: inst,
                        state: FeedState::Live,
                        reason: "book snapshot".into(),
                    }));
                }
                return Ok(Control::None);
            }
            if !*synced {
                return Ok(Control::None); // deltas before the snapshot: wait for it
            }
            if Some(d.u) != book.last_update_id.checked_add(1) {
                book.clear();
                *synced = false;
                out.push(MarketEvent::Status(FeedStatus {
                    ts_ms: ts,
                    instrument: inst.clone(),
                    state: FeedState::Resyncing,
                    reason: format!(
                        "orderbook gap: update {} after {}",
                        d.u, book.last_update_id
                    ),
                }));
                return Ok(Control::Resync(vec![inst]));
            }
            book.apply(&bids, &asks);
            book.last_update_id = d.u;
            if let Some(top) = book.top(&inst, ts) {
                out.push(MarketEvent::Book(top));
            }
            return Ok(Control::None);
        }
        Ok(Control::None) // tickers, kline, liquidations: not used
    }
}

/// Reads one JSON string value starting after its opening quote; `None` on escapes (rare; the
/// serde path handles them). Returns the string and the index after the closing quote. Slicing
/// `text` at ASCII quotes keeps it valid UTF-8 without re-checking.
fn scan_str(text: &str, i: usize) -> Option<(&str, usize)> {
    let b = text.as_bytes();
    let end = find2(b, i, b'"', b'\\')?;
    if b[end] == b'\\' {
        return None;
    }
    Some((text.get(i..end)?, end + 1))
}

/// Index of the first `x` or `y` at or after `i`: a plain loop over the first bytes (keys and
/// numbers are short), memchr beyond.
fn find2(b: &[u8], i: usize, x: u8, y: u8) -> Option<usize> {
    let head = b.get(i..(i + 16).min(b.len()))?;
    if let Some(k) = head.iter().position(|&c| c == x || c == y) {
        return Some(i + k);
    }
    let from = i + head.len();
    memchr::memchr2(x, y, b.get(from..)?).map(|k| from + k)
}

impl BybitCodec {
    /// Fast scanner for `publicTrade` frames: the `data` array of flat objects whose values are
    /// strings, numbers or booleans. `None` when the frame has another shape or an escape (the
    /// serde path then parses it); proven equal to the serde path on the real capture by a test.
    pub fn scan_trades(
        &self,
        text: &str,
        out: &mut Vec<MarketEvent>,
    ) -> Option<Result<(), String>> {
        static DATA: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
            std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"data\":["));
        let b = text.as_bytes();
        let mut i = DATA.find(b)? + 8;
        let mut bad = None;
        loop {
            while i < b.len() && matches!(b[i], b' ' | b'\n' | b',') {
                i += 1;
            }
            match b.get(i)? {
                b']' => return Some(bad.map_or(Ok(()), Err)),
                b'{' => i += 1,
                _ => return None,
            }
            let (mut t, mut sym, mut side, mut v, mut px, mut id) =
                (None, None, None, None, None, None);
            loop {
                while i < b.len() && matches!(b[i], b' ' | b',') {
                    i += 1;
                }
                if *b.get(i)? == b'}' {
                    i += 1;
                    break;
                }
                if b[i] != b'"' {
                    return None;
                }
                let (k, j) = scan_str(text, i + 1)?;
                i = j;
                if *b.get(i)? != b':' {
                    return None;
                }
                i += 1;
                let val = if *b.get(i)? == b'"' {
                    let (v, j) = scan_str(text, i + 1)?;
                    i = j;
                    v
                } else {
                    let start = i;
                    i = find2(b, i, b',', b'}')?;
                    text.get(start..i)?
                };
                match k {
                    "T" => t = Some(val),
                    "s" => sym = Some(val),
                    "S" => side = Some(val),
                    "v" => v = Some(val),
                    "p" => px = Some(val),
                    "i" => id = Some(val),
                    _ => {}
                }
            }
            let (Some(t), Some(sym), Some(side), Some(v), Some(px)) = (t, sym, side, v, px) else {
                return None;
            };
            let item = TradeItem {
                time: t.parse().ok()?,
                symbol: std::borrow::Cow::Borrowed(sym),
                side: std::borrow::Cow::Borrowed(side),
                size: std::borrow::Cow::Borrowed(v),
                price: std::borrow::Cow::Borrowed(px),
                id: id.map(std::borrow::Cow::Borrowed),
            };
            // A bad item is skipped, reported after the others (as `take_trades` does).
            match self.trade(&item) {
                Ok(tr) => out.push(MarketEvent::Trade(tr)),
                Err(e) => {
                    bad.get_or_insert(e);
                }
            }
        }
    }

    fn trade(&self, it: &TradeItem) -> Result<Trade, String> {
        Ok(Trade {
            ts_ms: crate::feeds::event_ms(it.time)?,
            instrument: self.instrument(&it.symbol)?,
            price: parse_positive(&it.price, "price")?,
            qty: parse_positive(&it.size, "size")?,
            aggressor: match it.side.as_ref() {
                "Buy" => Side::Buy,
                "Sell" => Side::Sell,
                s => return Err(format!("bad side {s:?}")),
            },
            trade_id: it.id.as_ref().and_then(|i| i.parse().ok()),
            users: None,
        })
    }
}
