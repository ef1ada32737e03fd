//! Binance spot websocket (combined streams): `aggTrade`/`trade`, `bookTicker`, and `depthUpdate`
//! diffs kept in sync with a REST snapshot (`GET /api/v3/depth`), following Binance's rules: buffer
//! diffs, drop those with `u ≤ lastUpdateId`, the first applied must straddle `lastUpdateId + 1`,
//! each next must start at the previous `u + 1`; otherwise the book is resynchronised.
//!
//! Fields: `s` symbol (`NKNUSDT`), `p`/`q` price and quantity strings, `T` trade time (ms), `m` buyer
//! is maker (aggressor = seller), `a`/`t` trade id; depth `U`/`u` first/last update id, `b`/`a`
//! `[["price","qty"]…]`; bookTicker `b`/`B`/`a`/`A` best bid/ask price/qty.

use super::{split_pair, venue_instrument, Control, DepthSnapshot, Venue, VenueCodec};
use crate::domain::{FeedState, FeedStatus, Instrument, MarketEvent, Side, Trade};
use crate::feeds::book::{parse_levels, L2Book};
use crate::feeds::decimal::parse_positive_fast as parse_positive;
use rustc_hash::FxHashMap as HashMap;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// Diffs buffered while waiting for a snapshot, at most.
const MAX_BUFFERED: usize = 10_000;

#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(borrow)]
    stream: Option<Cow<'a, str>>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    /// Subscription answers: `{"result":null,"id":1}`.
    id: Option<u64>,
}

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(rename = "e", borrow)]
    event: Option<Cow<'a, str>>,
    #[serde(
        rename = "E",
        default,
        deserialize_with = "crate::feeds::de_opt_event_ms"
    )]
    event_time: Option<i64>,
    #[serde(rename = "s", borrow)]
    symbol: Option<Cow<'a, str>>,
    #[serde(rename = "p", borrow)]
    price: Option<Cow<'a, str>>,
    #[serde(rename = "q", borrow)]
    qty: Option<Cow<'a, str>>,
    #[serde(
        rename = "T",
        default,
        deserialize_with = "crate::feeds::de_opt_event_ms"
    )]
    trade_time: Option<i64>,
    #[serde(rename = "m")]
    buyer_is_maker: Option<bool>,
    #[serde(rename = "t")]
    trade_id: Option<u64>,
    #[serde(rename = "U")]
    first_update: Option<u64>,
    #[serde(rename = "u")]
    last_update: Option<u64>,
    #[serde(rename = "b", borrow)]
    bids: Option<&'a RawValue>,
    #[serde(rename = "a", borrow)]
    asks: Option<&'a RawValue>,
    #[serde(rename = "B", borrow)]
    bid_qty: Option<Cow<'a, str>>,
    #[serde(rename = "A", borrow)]
    ask_qty: Option<Cow<'a, str>>,
}

/// Fast path: a combined-stream `aggTrade` frame, parsed in one pass with only the fields used.
#[derive(Deserialize)]
struct AggFrame<'a> {
    #[serde(borrow)]
    data: AggTrade<'a>,
}

#[derive(Deserialize)]
struct AggTrade<'a> {
    #[serde(rename = "s", borrow)]
    symbol: &'a str,
    #[serde(rename = "p", borrow)]
    price: &'a str,
    #[serde(rename = "q", borrow)]
    qty: &'a str,
    #[serde(rename = "T", deserialize_with = "crate::feeds::de_event_ms")]
    trade_time: i64,
    #[serde(rename = "m")]
    buyer_is_maker: bool,
    #[serde(rename = "a")]
    id: u64,
}

struct Diff {
    first: u64,
    last: u64,
    ts_ms: i64,
    bids: Vec<(rust_decimal::Decimal, rust_decimal::Decimal)>,
    asks: Vec<(rust_decimal::Decimal, rust_decimal::Decimal)>,
}

#[derive(Default)]
struct BookSync {
    book: L2Book,
    synced: bool,
    buffer: Vec<Diff>,
}

pub struct BinanceCodec {
    /// `NKNUSDT` → instrument.
    symbols: HashMap<String, Instrument>,
    books: HashMap<Instrument, BookSync>,
    /// Stream names, lowercase symbol first (`nknusdt`).
    streams: Vec<String>,
    /// Latest venue event time seen (ms): the time of a book rebuilt from a REST snapshot,
    /// which carries none.
    last_event_ms: Option<i64>,
}

impl BinanceCodec {
    pub fn new(pairs: &[String]) -> Result<Self, String> {
        let mut symbols = HashMap::default();
        let mut streams = Vec::new();
        let mut books = HashMap::default();
        for p in pairs {
            let (b, q) = split_pair(p)?;
            let sym = format!("{b}{q}");
            let inst = venue_instrument(Venue::Binance, &b, &q);
            let lower = sym.to_lowercase();
            streams.push(format!("{lower}@aggTrade"));
            streams.push(format!("{lower}@depth@100ms"));
            books.insert(inst.clone(), BookSync::default());
            symbols.insert(sym, inst);
        }
        Ok(Self {
            symbols,
            books,
            streams,
            last_event_ms: None,
        })
    }

    fn instrument(&self, sym: &str) -> Result<Instrument, String> {
        self.symbols
            .get(sym)
            .cloned()
            .ok_or_else(|| format!("message for unsubscribed symbol {sym:?}"))
    }

    fn status(inst: &Instrument, ts: i64, state: FeedState, reason: &str) -> MarketEvent {
        MarketEvent::Status(FeedStatus {
            ts_ms: ts,
            instrument: inst.clone(),
            state,
            reason: reason.to_string(),
        })
    }

    /// Applies synced diffs; returns false on a sequence gap.
    fn apply_diff(bs: &mut BookSync, d: &Diff) -> bool {
        if d.last <= bs.book.last_update_id {
            return true; // older than the book: already included
        }
        // Saturating: a hostile `lastUpdateId` of u64::MAX is a gap (resync), not an overflow.
        let next = bs.book.last_update_id.saturating_add(1);
        if d.first != next && !(d.first <= next && d.last > bs.book.last_update_id) {
            return false;
        }
        bs.book.apply(&d.bids, &d.asks);
        bs.book.last_update_id = d.last;
        true
    }

    /// A sequence gap: drop the book, keep `pending` (the diff that showed the gap, and any
    /// after it) for the next snapshot, and ask for one.
    fn gap(
        &mut self,
        inst: &Instrument,
        ts: i64,
        pending: Vec<Diff>,
        out: &mut Vec<MarketEvent>,
    ) -> Control {
        let bs = self.books.get_mut(inst).expect("known book");
        bs.synced = false;
        bs.buffer = pending;
        bs.book.clear();
        out.push(Self::status(
            inst,
            ts,
            FeedState::Resyncing,
            "depth sequence gap",
        ));
        Control::Resync(vec![inst.clone()])
    }

    fn on_depth(&mut self, ev: &Event, out: &mut Vec<MarketEvent>) -> Result<Control, String> {
        let inst = self.instrument(ev.symbol.as_deref().ok_or("depth without symbol")?)?;
        let levels = |raw: Option<&RawValue>, what: &str| -> Result<Vec<_>, String> {
            let v: Vec<[&str; 2]> =
                serde_json::from_str(raw.ok_or(format!("depth without {what}"))?.get())
                    .map_err(|e| format!("bad depth {what}: {e}"))?;
            parse_levels(&v)
        };
        let d = Diff {
            first: ev.first_update.ok_or("depth without U")?,
            last: ev.last_update.ok_or("depth without u")?,
            ts_ms: ev.event_time.ok_or("depth without E")?,
            bids: levels(ev.bids, "bids")?,
            asks: levels(ev.asks, "asks")?,
        };
        let bs = self.books.get_mut(&inst).expect("known book");
        if !bs.synced {
            if bs.buffer.len() < MAX_BUFFERED {
                bs.buffer.push(d);
            }
            return Ok(Control::None);
        }
        if !Self::apply_diff(bs, &d) {
            let ts = d.ts_ms;
            return Ok(self.gap(&inst, ts, vec![d], out));
        }
        if let Some(top) = bs.book.top(&inst, d.ts_ms) {
            out.push(MarketEvent::Book(top));
        }
        Ok(Control::None)
    }
}

impl super::RestSymbols for BinanceCodec {
    /// REST symbol of an instrument (`binance:NKN/USDT` → `NKNUSDT`).
    fn rest_symbol(&self, i: &Instrument) -> Option<String> {
        self.symbols
            .iter()
            .find(|(_, v)| *v == i)
            .map(|(k, _)| k.clone())
    }
}

impl VenueCodec for BinanceCodec {
    fn rest_symbols(&self) -> Option<&dyn super::RestSymbols> {
        Some(self)
    }
    fn venue(&self) -> Venue {
        Venue::Binance
    }
    fn instruments(&self) -> Vec<Instrument> {
        let mut v: Vec<_> = self.symbols.values().cloned().collect();
        v.sort();
        v
    }
    fn subscribe_messages(&self) -> Vec<String> {
        // Binance allows up to 200 streams per SUBSCRIBE; keep messages small.
        self.streams
            .chunks(100)
            .enumerate()
            .map(|(i, c)| {
                serde_json::json!({"method": "SUBSCRIBE", "params": c, "id": i + 1}).to_string()
            })
            .collect()
    }
    fn resubscribe_messages(&self, _: &[Instrument]) -> Vec<String> {
        Vec::new()
    }
    fn ping_message(&self) -> Option<String> {
        None // Binance pings at the protocol level; tungstenite answers.
    }
    fn on_connect(&mut self) -> Vec<Instrument> {
        for bs in self.books.values_mut() {
            *bs = BookSync::default();
        }
        self.instruments()
    }
    fn apply_snapshot(
        &mut self,
        inst: &Instrument,
        snap: &DepthSnapshot,
        ts_ms: i64,
        out: &mut Vec<MarketEvent>,
    ) -> Result<Control, String> {
        let conv = |v: &[[String; 2]]| -> Result<Vec<_>, String> {
            let r: Vec<[&str; 2]> = v.iter().map(|[a, b]| [a.as_str(), b.as_str()]).collect();
            parse_levels(&r)
        };
        let (bids, asks) = (conv(&snap.bids)?, conv(&snap.asks)?);
        let bs = self
            .books
            .get_mut(inst)
            .ok_or_else(|| format!("snapshot for unknown book {inst}"))?;
        bs.book.replace(&bids, &asks);
        bs.book.last_update_id = snap.last_update_id;
        bs.synced = true;
        let buffered = std::mem::take(&mut bs.buffer);
        let mut last_ts = self.last_event_ms;
        let mut rest = buffered
            .into_iter()
            .filter(|d| d.last > snap.last_update_id);
        while let Some(d) = rest.next() {
            if !Self::apply_diff(bs, &d) {
                // The snapshot is older than the buffered diffs: keep them, fetch a newer one.
                let ts = d.ts_ms;
                let mut pending = vec![d];
                pending.extend(rest);
                return Ok(self.gap(inst, ts, pending, out));
            }
            last_ts = Some(d.ts_ms);
        }
        if let Some(top) = last_ts.and_then(|ts| bs.book.top(inst, ts)) {
            out.push(MarketEvent::Book(top));
        }
        out.push(Self::status(
            inst,
            last_ts.unwrap_or(ts_ms),
            FeedState::Live,
            "book synchronised",
        ));
        Ok(Control::None)
    }
    fn on_message(
        &mut self,
        text: &str,
        recv_ms: i64,
        out: &mut Vec<MarketEvent>,
    ) -> Result<Control, String> {
        // Hot path: trades, in one pass. Anything unusual falls through to the general parser.
        if text
            .as_bytes()
            .get(..60)
            .is_some_and(|h| memfind(h, b"@aggTrade\""))
        {
            if let Ok(f) = serde_json::from_str::<AggFrame>(text) {
                let t = f.data;
                let inst = self.instrument(t.symbol)?;
                self.last_event_ms = Some(
                    self.last_event_ms
                        .map_or(t.trade_time, |x| x.max(t.trade_time)),
                );
                out.push(MarketEvent::Trade(Trade {
                    ts_ms: t.trade_time,
                    instrument: inst,
                    price: parse_positive(t.price, "price")?,
                    qty: parse_positive(t.qty, "quantity")?,
                    aggressor: if t.buyer_is_maker {
                        Side::Sell
                    } else {
                        Side::Buy
                    },
                    trade_id: Some(t.id),
                    users: None,
                }));
                return Ok(Control::None);
            }
        }
        let frame: Frame = serde_json::from_str(text).map_err(|e| format!("bad JSON: {e}"))?;
        let Some(raw) = frame.data else {
            if frame.id.is_some() {
                return Ok(Control::Subscribed);
            }
            return Err("frame without data".into());
        };
        let ev: Event = serde_json::from_str(raw.get()).map_err(|e| format!("bad JSON: {e}"))?;
        if let Some(t) = ev.event_time.or(ev.trade_time) {
            self.last_event_ms = Some(self.last_event_ms.map_or(t, |x| x.max(t)));
        }
        match ev.event.as_deref() {
            Some("aggTrade") | Some("trade") => {
                let inst = self.instrument(ev.symbol.as_deref().ok_or("trade without symbol")?)?;
                let price =
                    parse_positive(ev.price.as_deref().ok_or("missing price `p`")?, "price")?;
                let qty =
                    parse_positive(ev.qty.as_deref().ok_or("missing quantity `q`")?, "quantity")?;
                let m = ev.buyer_is_maker.ok_or("missing maker flag `m`")?;
                let id = match ev.event.as_deref() {
                    Some("aggTrade") => ev.asks.and_then(|a| a.get().parse().ok()),
                    _ => ev.trade_id,
                };
                out.push(MarketEvent::Trade(Trade {
                    ts_ms: ev.trade_time.ok_or("missing trade time `T`")?,
                    instrument: inst,
                    price,
                    qty,
                    aggressor: if m { Side::Sell } else { Side::Buy },
                    trade_id: id,
                    users: None,
                }));
                Ok(Control::None)
            }
            Some("depthUpdate") => self.on_depth(&ev, out),
            Some(_) => Ok(Control::None), // kline etc.: not used
            None if frame
                .stream
                .as_deref()
                .is_some_and(|s| s.ends_with("@bookTicker")) =>
            {
                let inst =
                    self.instrument(ev.symbol.as_deref().ok_or("bookTicker without symbol")?)?;
                let s = |r: Option<&RawValue>| r.map(|r| r.get().trim_matches('"').to_string());
                let px = |v: Option<String>, what: &str| {
                    parse_positive(&v.ok_or(format!("bookTicker without {what}"))?, what)
                };
                // Spot bookTicker has no event time: the latest venue time seen, else receive time.
                let ts = ev.event_time.or(self.last_event_ms).unwrap_or(recv_ms);
                let top = crate::domain::BookTop {
                    ts_ms: ts,
                    instrument: inst,
                    bid_price: px(s(ev.bids), "b")?,
                    bid_qty: px(ev.bid_qty.map(|c| c.into_owned()), "B")?,
                    ask_price: px(s(ev.asks), "a")?,
                    ask_qty: px(ev.ask_qty.map(|c| c.into_owned()), "A")?,
                };
                out.push(MarketEvent::Book(top));
                Ok(Control::None)
            }
            None => Err("message without event type `e`".into()),
        }
    }
}

/// True when `needle` occurs in `hay` (short haystacks: the frame's first bytes).
fn memfind(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
