//! Binance trades as written by ccxt / La Morgia's downloader.
//!
//! Header `symbol,timestamp,datetime,side,price,amount,btc_volume`; `timestamp` Unix ms; `side` the
//! taker (aggressor) side; `price` quote per base unit, often in scientific notation (`5.26e-06`);
//! `amount` base units. Rows are Binance aggregate trades without trade id.

use super::decimal::parse_positive;
use super::{Malformed, SourceItem, TradeSource};
use crate::domain::{Instrument, MarketEvent, Side, Trade};
use anyhow::Result;
use std::io::BufRead;

pub struct BinanceCsvSource {
    rdr: csv::Reader<Box<dyn BufRead + Send>>,
    rec: csv::ByteRecord,
    name: String,
    // The files hold one symbol: reuse the interned instrument while the bytes match.
    last_symbol: Vec<u8>,
    last_instrument: Option<Instrument>,
}

impl BinanceCsvSource {
    pub fn new(reader: Box<dyn BufRead + Send>, name: String) -> Result<Self> {
        let rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .from_reader(reader);
        Ok(Self {
            rdr,
            rec: csv::ByteRecord::new(),
            name,
            last_symbol: Vec::new(),
            last_instrument: None,
        })
    }

    fn parse(&mut self) -> Result<Trade, String> {
        let r = &self.rec;
        if r.len() < 6 {
            return Err(format!("expected 7 fields, got {}", r.len()));
        }
        let field = |i: usize| std::str::from_utf8(&r[i]).map_err(|_| "not UTF-8".to_string());
        let sym = &r[0];
        if self.last_instrument.is_none() || self.last_symbol != sym {
            let s = field(0)?;
            if !s.contains('/') {
                return Err(format!("bad symbol {s:?} (want BASE/QUOTE)"));
            }
            self.last_symbol = sym.to_vec();
            self.last_instrument = Some(Instrument::new(s));
        }
        let ts_ms: i64 = field(1)?
            .parse()
            .map_err(|_| format!("bad timestamp {:?}", field(1).unwrap_or("")))?;
        let aggressor = match &r[3] {
            b"buy" => Side::Buy,
            b"sell" => Side::Sell,
            other => return Err(format!("bad side {:?}", String::from_utf8_lossy(other))),
        };
        let price = parse_positive(field(4)?, "price")?;
        let qty = parse_positive(field(5)?, "amount")?;
        Ok(Trade {
            ts_ms,
            instrument: self.last_instrument.clone().expect("set above"),
            price,
            qty,
            aggressor,
            trade_id: None,
            users: None,
        })
    }
}

impl TradeSource for BinanceCsvSource {
    fn next_item(&mut self) -> Option<SourceItem> {
        match self.rdr.read_byte_record(&mut self.rec) {
            Ok(false) => None,
            Ok(true) => {
                let line = self.rec.position().map(|p| p.line()).unwrap_or(0);
                Some(
                    self.parse()
                        .map(MarketEvent::Trade)
                        .map_err(|reason| Malformed {
                            file: self.name.clone(),
                            line,
                            reason,
                        }),
                )
            }
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                // An I/O error (e.g. truncated gzip) ends the file; a CSV error skips the row.
                let fatal = matches!(e.kind(), csv::ErrorKind::Io(_));
                let m = Malformed {
                    file: self.name.clone(),
                    line,
                    reason: e.to_string(),
                };
                if fatal {
                    self.last_instrument = None;
                    self.rdr = csv::Reader::from_reader(Box::new(std::io::empty()));
                }
                Some(Err(m))
            }
        }
    }
    fn name(&self) -> &str {
        &self.name
    }
}
