//! freqtrade trade files: a JSON array of `[ts_ms, id, order, side, price, amount, cost]`
//! (`side` = taker side, `price` quote per base, `amount` base units). The instrument comes from
//! the file name, freqtrade style `XRP_ETH-trades.json.gz` → `XRP/ETH`.

use super::decimal::parse_positive;
use super::json_array::JsonArrayStream;
use super::{SourceItem, TradeSource};
use crate::domain::{Instrument, MarketEvent, Side, Trade};
use anyhow::{bail, Result};
use serde_json::Value;
use std::io::BufRead;

pub struct FreqtradeSource {
    stream: JsonArrayStream<Box<dyn BufRead + Send>>,
    name: String,
    instrument: Instrument,
}

/// `XRP_ETH-trades.json.gz` → `XRP/ETH`.
pub fn instrument_from_file_name(name: &str) -> Option<Instrument> {
    let base = std::path::Path::new(name).file_name()?.to_str()?;
    let pair = base.split("-trades").next()?;
    let (b, q) = pair.split_once('_')?;
    if b.is_empty() || q.is_empty() {
        return None;
    }
    Some(Instrument::from_parts(b, q.split('_').next()?))
}

impl FreqtradeSource {
    pub fn new(reader: Box<dyn BufRead + Send>, name: String) -> Result<Self> {
        let Some(instrument) = instrument_from_file_name(&name) else {
            bail!("{name}: cannot tell the pair from the file name (want BASE_QUOTE-trades.json)");
        };
        Ok(Self {
            stream: JsonArrayStream::new(reader),
            name,
            instrument,
        })
    }

    fn parse(&self, bytes: &[u8]) -> Result<Trade, String> {
        let v: Vec<Value> = serde_json::from_slice(bytes).map_err(|e| format!("bad JSON: {e}"))?;
        if v.len() < 6 {
            return Err(format!("expected 7 fields, got {}", v.len()));
        }
        let ts_ms = v[0].as_i64().ok_or("bad timestamp")?;
        let trade_id = match &v[1] {
            Value::String(s) => s.parse().ok(),
            Value::Number(n) => n.as_u64(),
            _ => None,
        };
        let aggressor = match v[3].as_str() {
            Some("buy") => Side::Buy,
            Some("sell") => Side::Sell,
            _ => return Err(format!("bad side {}", v[3])),
        };
        // serde_json prints floats in shortest round-trip form, so the decimal text is exact.
        let price = parse_positive(&v[4].to_string(), "price")?;
        let qty = parse_positive(&v[5].to_string(), "amount")?;
        Ok(Trade {
            ts_ms,
            instrument: self.instrument.clone(),
            price,
            qty,
            aggressor,
            trade_id,
            users: None,
        })
    }
}

impl TradeSource for FreqtradeSource {
    fn next_item(&mut self) -> Option<SourceItem> {
        let el = self.stream.next_element()?;
        Some(el.into_item(&self.name, |b| self.parse(b).map(MarketEvent::Trade)))
    }
    fn name(&self) -> &str {
        &self.name
    }
}
