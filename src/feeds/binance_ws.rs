//! Binance websocket trade messages (`aggTrade`, `trade`), raw or wrapped by a combined stream
//! (`{"stream":…, "data":{…}}`), and the cryptofeed capture files that hold them
//! (`<recv_ts_seconds>: <json>` per line; first line `<url> <-> <connect_ts>`).
//!
//! Fields used: `s` symbol (`LRCBTC`), `p` price and `q` quantity (decimal strings), `T` trade time
//! (Unix ms), `m` buyer is maker (so the aggressor is the seller), `a`/`t` trade id.

use super::decimal::parse_positive;
use super::{Malformed, SourceItem, TradeSource};
use crate::domain::{Instrument, MarketEvent, Side, Trade};
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::HashMap;
use std::io::BufRead;

/// Quote assets tried, longest first, to split Binance symbols such as `LRCBTC`.
const QUOTES: &[&str] = &[
    "FDUSD", "USDT", "USDC", "BUSD", "TUSD", "DAI", "BTC", "ETH", "BNB", "EUR", "TRY", "GBP",
    "BRL", "AUD", "XRP", "TRX",
];

/// Splits a Binance symbol (`NKNUSDT`) into `NKN/USDT`. `None` when no known quote asset matches.
pub fn split_symbol(sym: &str) -> Option<Instrument> {
    let up = sym.to_ascii_uppercase();
    QUOTES
        .iter()
        .find(|q| up.len() > q.len() && up.ends_with(*q))
        .map(|q| Instrument::from_parts(&up[..up.len() - q.len()], q))
}

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(rename = "e", borrow)]
    event: Option<Cow<'a, str>>,
    #[serde(rename = "s", borrow)]
    symbol: Option<Cow<'a, str>>,
    #[serde(rename = "p", borrow)]
    price: Option<Cow<'a, str>>,
    #[serde(rename = "q", borrow)]
    qty: Option<Cow<'a, str>>,
    #[serde(rename = "T")]
    trade_time: Option<i64>,
    #[serde(rename = "m")]
    buyer_is_maker: Option<bool>,
    /// `a` is the aggregate trade id in `aggTrade` but the ask levels in `depthUpdate`.
    #[serde(rename = "a")]
    agg_id: Option<serde_json::Value>,
    #[serde(rename = "t")]
    trade_id: Option<u64>,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    data: Event<'a>,
}

/// Symbol → instrument cache so that a hot stream does not allocate per message.
#[derive(Default)]
pub struct SymbolCache(HashMap<String, Instrument>);

impl SymbolCache {
    fn get(&mut self, sym: &str) -> Option<Instrument> {
        if let Some(i) = self.0.get(sym) {
            return Some(i.clone());
        }
        let i = split_symbol(sym)?;
        self.0.insert(sym.to_string(), i.clone());
        Some(i)
    }
}

/// Parses one Binance websocket message. `Ok(None)` for messages that are not trades
/// (depth, bookTicker, kline, subscription answers); `Err` with a reason for malformed ones.
pub fn parse_trade_message(json: &str, cache: &mut SymbolCache) -> Result<Option<Trade>, String> {
    let ev: Event = if json.trim_start().starts_with("{\"stream\"") {
        serde_json::from_str::<Envelope>(json)
            .map_err(|e| format!("bad JSON: {e}"))?
            .data
    } else {
        serde_json::from_str(json).map_err(|e| format!("bad JSON: {e}"))?
    };
    match ev.event.as_deref() {
        Some("aggTrade") | Some("trade") => {}
        _ => return Ok(None),
    }
    let sym = ev.symbol.ok_or("trade without symbol `s`")?;
    let instrument = cache
        .get(&sym)
        .ok_or_else(|| format!("unknown quote asset in symbol {sym:?}"))?;
    let price = parse_positive(ev.price.as_deref().ok_or("missing price `p`")?, "price")?;
    let qty = parse_positive(ev.qty.as_deref().ok_or("missing quantity `q`")?, "quantity")?;
    let ts_ms = ev.trade_time.ok_or("missing trade time `T`")?;
    let m = ev.buyer_is_maker.ok_or("missing maker flag `m`")?;
    Ok(Some(Trade {
        ts_ms,
        instrument,
        price,
        qty,
        aggressor: if m { Side::Sell } else { Side::Buy },
        trade_id: ev.agg_id.and_then(|v| v.as_u64()).or(ev.trade_id),
        users: None,
    }))
}

/// A cryptofeed capture file of Binance messages; non-trade messages are skipped silently.
pub struct CaptureSource {
    reader: Box<dyn BufRead + Send>,
    name: String,
    line: u64,
    buf: String,
    cache: SymbolCache,
}

impl CaptureSource {
    pub fn new(reader: Box<dyn BufRead + Send>, name: String) -> Self {
        Self {
            reader,
            name,
            line: 0,
            buf: String::new(),
            cache: SymbolCache::default(),
        }
    }
    fn malformed(&self, reason: String) -> Malformed {
        Malformed {
            file: self.name.clone(),
            line: self.line,
            reason,
        }
    }
}

impl TradeSource for CaptureSource {
    fn next_item(&mut self) -> Option<SourceItem> {
        loop {
            self.buf.clear();
            self.line += 1;
            match self.reader.read_line(&mut self.buf) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => return Some(Err(self.malformed(format!("read error: {e}")))),
            }
            let line = self.buf.trim_end();
            if line.is_empty() || line.contains(" <-> ") || line.contains(" <- ") {
                continue; // header or a frame we sent
            }
            let Some((ts, json)) = line.split_once(": ") else {
                return Some(Err(self.malformed("expected `<recv_ts>: <json>`".into())));
            };
            if ts.parse::<f64>().is_err() {
                return Some(Err(self.malformed(format!("bad receive timestamp {ts:?}"))));
            }
            match parse_trade_message(json, &mut self.cache) {
                Ok(Some(t)) => return Some(Ok(MarketEvent::Trade(t))),
                Ok(None) => continue,
                Err(reason) => return Some(Err(self.malformed(reason))),
            }
        }
    }
    fn name(&self) -> &str {
        &self.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn parses_combined_agg_trade() {
        let msg = r#"{"stream":"lrcbtc@aggTrade","data":{"e":"aggTrade","E":1633998534486,"s":"LRCBTC","a":9213679,"p":"0.00000638","q":"177.00000000","f":12368013,"l":12368013,"T":1633998534486,"m":false,"M":true}}"#;
        let t = parse_trade_message(msg, &mut SymbolCache::default())
            .unwrap()
            .unwrap();
        assert_eq!(t.instrument.as_str(), "LRC/BTC");
        assert_eq!(t.price, dec!(0.00000638));
        assert_eq!(t.qty, dec!(177));
        assert_eq!(t.aggressor, Side::Buy);
        assert_eq!(t.trade_id, Some(9213679));
        assert_eq!(t.ts_ms, 1633998534486);
    }

    #[test]
    fn non_trades_are_skipped_and_garbage_is_an_error() {
        let mut c = SymbolCache::default();
        let depth =
            r#"{"stream":"x@depth","data":{"e":"depthUpdate","E":1,"s":"NKNUSDT","b":[],"a":[]}}"#;
        assert_eq!(parse_trade_message(depth, &mut c), Ok(None));
        assert!(parse_trade_message("{not json", &mut c).is_err());
        let no_price = r#"{"e":"aggTrade","s":"NKNUSDT","q":"1","T":1,"m":true}"#;
        assert!(parse_trade_message(no_price, &mut c)
            .unwrap_err()
            .contains("price"));
    }
}
