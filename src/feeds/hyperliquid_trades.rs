//! Recorded Hyperliquid trades: a JSON array of websocket `trades` items, `[{"coin", "side",
//! "px", "sz", "time", "hash", "tid", "users": [buyer, seller]}, …]`, as trades of
//! `hyperliquid:COIN/USDC` with their wallets (what the whale-follow source reads).

use super::json_array::JsonArrayStream;
use super::venues::hyperliquid::{HyperliquidCodec, WsTrade};
use super::{SourceItem, TradeSource};
use crate::domain::MarketEvent;
use anyhow::Result;
use std::io::BufRead;

pub struct HyperliquidTradesSource {
    stream: JsonArrayStream<Box<dyn BufRead + Send>>,
    name: String,
    /// Codecs by coin (each knows one `COIN/USDC` pair).
    codecs: std::collections::BTreeMap<String, HyperliquidCodec>,
}

impl HyperliquidTradesSource {
    pub fn new(reader: Box<dyn BufRead + Send>, name: String) -> Self {
        Self {
            stream: JsonArrayStream::new(reader),
            name,
            codecs: Default::default(),
        }
    }

    fn parse(&mut self, bytes: &[u8]) -> Result<MarketEvent, String> {
        let t: WsTrade = serde_json::from_slice(bytes).map_err(|e| format!("bad trade: {e}"))?;
        let codec = match self.codecs.get(t.coin.as_ref()) {
            Some(c) => c,
            None => {
                let c = HyperliquidCodec::new(&[format!("{}/USDC", t.coin)])?;
                self.codecs.entry(t.coin.to_string()).or_insert(c)
            }
        };
        codec.trade(&t).map(MarketEvent::Trade)
    }
}

impl TradeSource for HyperliquidTradesSource {
    fn next_item(&mut self) -> Option<SourceItem> {
        let el = self.stream.next_element()?;
        let name = self.name.clone();
        Some(el.into_item(&name, |b| self.parse(b)))
    }
    fn name(&self) -> &str {
        &self.name
    }
}
