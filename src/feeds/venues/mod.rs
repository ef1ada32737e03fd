//! Sans-IO codecs for live venue websockets: subscription messages, parsing into market events,
//! and order-book sequencing. The websocket client (src/feeds/ws.rs) owns the I/O.

pub mod binance;
pub mod bybit;
pub mod hyperliquid;

use crate::domain::{Instrument, MarketEvent};
use serde::{Deserialize, Serialize};

/// Venues smartflow connects to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Venue {
    Binance,
    Bybit,
    Hyperliquid,
}

impl Venue {
    pub fn name(self) -> &'static str {
        match self {
            Venue::Binance => "binance",
            Venue::Bybit => "bybit",
            Venue::Hyperliquid => "hyperliquid",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "binance" => Some(Venue::Binance),
            "bybit" => Some(Venue::Bybit),
            "hyperliquid" => Some(Venue::Hyperliquid),
            _ => None,
        }
    }
}

/// Live instruments are named `venue:BASE/QUOTE` (e.g. `bybit:BTC/USDT`), so the same pair on
/// two venues keeps separate features, positions and limits.
pub fn venue_instrument(venue: Venue, base: &str, quote: &str) -> Instrument {
    Instrument::new(&format!("{}:{}/{}", venue.name(), base, quote))
}

/// What a frame meant besides its market events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Control {
    /// Nothing else to do.
    None,
    /// A pong (application-level keep-alive answer).
    Pong,
    /// A subscription was acknowledged.
    Subscribed,
    /// These books lost sequence: the client must resynchronise them (REST snapshot for Binance,
    /// re-subscription for Bybit). The codec has already emitted `Resyncing` status events.
    Resync(Vec<Instrument>),
}

/// A REST depth snapshot for one book (Binance `GET /api/v3/depth`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DepthSnapshot {
    #[serde(rename = "lastUpdateId")]
    pub last_update_id: u64,
    pub bids: Vec<[String; 2]>,
    pub asks: Vec<[String; 2]>,
}

/// A venue's protocol, without I/O.
pub trait VenueCodec: Send + Sync {
    fn venue(&self) -> Venue;
    fn instruments(&self) -> Vec<Instrument>;
    /// Text frames to send after every (re)connect.
    fn subscribe_messages(&self) -> Vec<String>;
    /// Text frames that re-subscribe the given books (Bybit); empty when a REST snapshot is used.
    fn resubscribe_messages(&self, books: &[Instrument]) -> Vec<String>;
    /// Application-level ping frame, if the venue wants one.
    fn ping_message(&self) -> Option<String>;
    /// Resets book state after a (re)connect; returns the books that need a REST snapshot.
    fn on_connect(&mut self) -> Vec<Instrument>;
    /// Applies a REST snapshot (Binance); may emit a book top and a `Live` status.
    fn apply_snapshot(
        &mut self,
        instrument: &Instrument,
        snap: &DepthSnapshot,
        ts_ms: i64,
        out: &mut Vec<MarketEvent>,
    ) -> Result<Control, String>;
    /// Parses one text frame received at `recv_ms` (wall clock, used only where the venue gives
    /// no event time). Errors name what was malformed; the frame is then counted and skipped.
    fn on_message(
        &mut self,
        text: &str,
        recv_ms: i64,
        out: &mut Vec<MarketEvent>,
    ) -> Result<Control, String>;
    /// REST symbols for books synced by snapshot (Binance); `None` for socket-synced venues.
    fn rest_symbols(&self) -> Option<&dyn RestSymbols> {
        None
    }
    /// Hyperliquid `/info` requests to make after a reconnect, to catch up on what the socket
    /// missed (the wallet tracker's `userFillsByTime` backfill); none by default.
    fn catch_up(&mut self) -> Vec<serde_json::Value> {
        Vec::new()
    }
    /// Applies the answer to one [`VenueCodec::catch_up`] request; returns follow-up requests
    /// (the next page). Errors name what was malformed.
    fn on_info(
        &mut self,
        _request: &serde_json::Value,
        _body: &str,
        _out: &mut Vec<MarketEvent>,
    ) -> Result<Vec<serde_json::Value>, String> {
        Err("this feed makes no info requests".into())
    }
}

/// Converts the trades of one frame: the good ones go to `out`, a bad one is skipped and the
/// first such error returned after the others are taken (one absurd item loses no neighbour).
pub fn take_trades<'a, T: 'a>(
    items: impl IntoIterator<Item = &'a T>,
    convert: impl Fn(&T) -> Result<crate::domain::Trade, String>,
    out: &mut Vec<MarketEvent>,
) -> Result<(), String> {
    let mut bad = None;
    for it in items {
        match convert(it) {
            Ok(t) => out.push(MarketEvent::Trade(t)),
            Err(e) => {
                bad.get_or_insert(e);
            }
        }
    }
    bad.map_or(Ok(()), Err)
}

/// Builds the codec of a venue for the given `BASE/QUOTE` pairs.
pub fn codec(
    venue: Venue,
    pairs: &[String],
    book_depth: usize,
) -> Result<Box<dyn VenueCodec>, String> {
    Ok(match venue {
        Venue::Binance => Box::new(binance::BinanceCodec::new(pairs)?),
        Venue::Bybit => Box::new(bybit::BybitCodec::new(pairs, book_depth)?),
        Venue::Hyperliquid => Box::new(hyperliquid::HyperliquidCodec::new(pairs)?),
    })
}

/// Splits `BASE/QUOTE`.
pub fn split_pair(pair: &str) -> Result<(String, String), String> {
    let (b, q) = pair
        .split_once('/')
        .ok_or_else(|| format!("instrument {pair:?}: want BASE/QUOTE, e.g. BTC/USDT"))?;
    if b.is_empty() || q.is_empty() {
        return Err(format!("instrument {pair:?}: want BASE/QUOTE"));
    }
    Ok((b.to_uppercase(), q.to_uppercase()))
}

/// Maps instruments to REST symbols.
pub trait RestSymbols {
    fn rest_symbol(&self, i: &crate::domain::Instrument) -> Option<String>;
}
