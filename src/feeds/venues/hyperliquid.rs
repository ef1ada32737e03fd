//! Hyperliquid websocket: `trades` (with `users: [buyer, seller]`, which the wallet tracker needs)
//! and `l2Book` (a full top-of-book snapshot per message, so no sequence to lose). The server closes
//! a connection silent for 60 s: the client sends `{"method":"ping"}` and expects `{"channel":"pong"}`.
//!
//! Trade fields: `coin`, `side` (`B` buyer aggressor, `A` seller aggressor), `px`, `sz`, `time`
//! (ms), `tid`, `users`. Book: `coin`, `time`, `levels: [[bids…], [asks…]]` of `{px, sz, n}`.
//! Instruments are perpetuals quoted in USDC: `hyperliquid:BTC/USDC`.

use super::{split_pair, take_trades, venue_instrument, Control, DepthSnapshot, Venue, VenueCodec};
use crate::domain::spec::{InstrumentSpec, MarketKind};
use crate::domain::{
    BookTop, FeedState, FeedStatus, Instrument, MarkPrice, MarketEvent, Side, Trade, TradeUsers,
};
use crate::feeds::decimal::in_range;
use crate::feeds::decimal::parse_positive_fast as parse_positive;
use rust_decimal::Decimal;
use rustc_hash::FxHashMap as HashMap;
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};

/// Any frame of Hyperliquid's websocket: `{"channel": …, "data": …}`.
#[derive(Deserialize)]
pub(crate) struct Frame<'a> {
    #[serde(borrow)]
    pub channel: Cow<'a, str>,
    #[serde(borrow)]
    pub data: Option<&'a serde_json::value::RawValue>,
}

impl Frame<'_> {
    /// Parses `text`; errors say it is not JSON.
    pub fn parse(text: &str) -> Result<Frame<'_>, String> {
        serde_json::from_str(text).map_err(|e| format!("bad JSON: {e}"))
    }

    /// What a connection-level frame means (`pong`, `subscriptionResponse`, `error`); `None`
    /// for a data channel.
    pub fn control(&self) -> Option<Result<Control, String>> {
        match self.channel.as_ref() {
            "pong" => Some(Ok(Control::Pong)),
            "subscriptionResponse" => Some(Ok(Control::Subscribed)),
            "error" => Some(Err(format!(
                "hyperliquid error: {}",
                self.data.map(|d| d.get()).unwrap_or("")
            ))),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
pub struct WsTrade<'a> {
    #[serde(borrow)]
    pub coin: Cow<'a, str>,
    #[serde(borrow)]
    pub side: Cow<'a, str>,
    #[serde(borrow)]
    pub px: Cow<'a, str>,
    #[serde(borrow)]
    pub sz: Cow<'a, str>,
    pub time: i64,
    pub tid: Option<u64>,
    #[serde(default, borrow)]
    pub users: Option<[Cow<'a, str>; 2]>,
}

/// Fast path: a `trades` frame in one pass.
#[derive(Deserialize)]
struct TradesFrame<'a> {
    #[serde(borrow)]
    data: Vec<WsTrade<'a>>,
}

#[derive(Deserialize)]
struct Level<'a> {
    #[serde(borrow)]
    px: Cow<'a, str>,
    #[serde(borrow)]
    sz: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Book<'a> {
    #[serde(borrow)]
    coin: Cow<'a, str>,
    #[serde(deserialize_with = "crate::feeds::de_event_ms")]
    time: i64,
    #[serde(borrow)]
    levels: [Vec<Level<'a>>; 2],
}

/// `activeAssetCtx` data: `{coin, ctx: {funding, markPx, oraclePx, …}}` (decimal strings).
#[derive(Deserialize)]
struct AssetCtx<'a> {
    #[serde(borrow)]
    coin: Cow<'a, str>,
    #[serde(borrow)]
    ctx: Ctx<'a>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Ctx<'a> {
    #[serde(borrow)]
    funding: Cow<'a, str>,
    #[serde(borrow)]
    mark_px: Cow<'a, str>,
    #[serde(borrow)]
    oracle_px: Cow<'a, str>,
}

pub struct HyperliquidCodec {
    coins: HashMap<String, Instrument>,
    live: HashSet<Instrument>,
}

impl HyperliquidCodec {
    pub fn new(pairs: &[String]) -> Result<Self, String> {
        let mut coins = HashMap::default();
        for p in pairs {
            let (b, q) = split_pair(p)?;
            coins.insert(b.clone(), venue_instrument(Venue::Hyperliquid, &b, &q));
        }
        Ok(Self {
            coins,
            live: HashSet::new(),
        })
    }
    fn instrument(&self, coin: &str) -> Result<Instrument, String> {
        self.coins
            .get(coin)
            .cloned()
            .ok_or_else(|| format!("message for unsubscribed coin {coin:?}"))
    }

    /// Converts one `trades` item (also used for recorded samples).
    pub fn trade(&self, t: &WsTrade) -> Result<Trade, String> {
        Ok(Trade {
            ts_ms: crate::feeds::event_ms(t.time)?,
            instrument: self.instrument(&t.coin)?,
            price: parse_positive(&t.px, "px")?,
            qty: parse_positive(&t.sz, "sz")?,
            aggressor: match t.side.as_ref() {
                "B" => Side::Buy,
                "A" => Side::Sell,
                s => return Err(format!("bad side {s:?}")),
            },
            trade_id: t.tid,
            users: t.users.as_ref().map(|[b, s]| {
                Box::new(TradeUsers {
                    buyer: b.to_string(),
                    seller: s.to_string(),
                })
            }),
        })
    }
}

impl VenueCodec for HyperliquidCodec {
    fn venue(&self) -> Venue {
        Venue::Hyperliquid
    }
    fn instruments(&self) -> Vec<Instrument> {
        let mut v: Vec<_> = self.coins.values().cloned().collect();
        v.sort();
        v
    }
    fn subscribe_messages(&self) -> Vec<String> {
        let mut coins: Vec<&String> = self.coins.keys().collect();
        coins.sort();
        let mut v = Vec::new();
        for c in coins {
            // activeAssetCtx: mark, oracle price and funding rate (for perpetual funding).
            for kind in ["trades", "l2Book", "activeAssetCtx"] {
                v.push(
                    serde_json::json!({"method": "subscribe", "subscription": {"type": kind, "coin": c}})
                        .to_string(),
                );
            }
        }
        v
    }
    fn resubscribe_messages(&self, _: &[Instrument]) -> Vec<String> {
        Vec::new()
    }
    fn ping_message(&self) -> Option<String> {
        Some(r#"{"method":"ping"}"#.into())
    }
    fn on_connect(&mut self) -> Vec<Instrument> {
        self.live.clear();
        Vec::new()
    }
    fn apply_snapshot(
        &mut self,
        i: &Instrument,
        _: &DepthSnapshot,
        _: i64,
        _: &mut Vec<MarketEvent>,
    ) -> Result<Control, String> {
        Err(format!(
            "hyperliquid books come whole over the socket ({i})"
        ))
    }
    fn on_message(
        &mut self,
        text: &str,
        recv_ms: i64,
        out: &mut Vec<MarketEvent>,
    ) -> Result<Control, String> {
        // Hot path: trades, in one pass; anything else takes the general parser.
        if text.starts_with("{\"channel\":\"trades\"") {
            if let Ok(f) = serde_json::from_str::<TradesFrame>(text) {
                take_trades(&f.data, |t| self.trade(t), out)?;
                return Ok(Control::None);
            }
        }
        let f = Frame::parse(text)?;
        if let Some(c) = f.control() {
            return c;
        }
        match f.channel.as_ref() {
            "trades" => {
                let items: Vec<WsTrade> =
                    serde_json::from_str(f.data.ok_or("trades without data")?.get())
                        .map_err(|e| format!("bad trades: {e}"))?;
                take_trades(&items, |t| self.trade(t), out)?;
                Ok(Control::None)
            }
            "l2Book" => {
                let b: Book = serde_json::from_str(f.data.ok_or("l2Book without data")?.get())
                    .map_err(|e| format!("bad l2Book: {e}"))?;
                let inst = self.instrument(&b.coin)?;
                let (bid, ask) = (b.levels[0].first(), b.levels[1].first());
                if let (Some(bid), Some(ask)) = (bid, ask) {
                    out.push(MarketEvent::Book(BookTop {
                        ts_ms: b.time,
                        instrument: inst.clone(),
                        bid_price: parse_positive(&bid.px, "px")?,
                        bid_qty: parse_positive(&bid.sz, "sz")?,
                        ask_price: parse_positive(&ask.px, "px")?,
                        ask_qty: parse_positive(&ask.sz, "sz")?,
                    }));
                }
                if self.live.insert(inst.clone()) {
                    out.push(MarketEvent::Status(FeedStatus {
                        ts_ms: b.time,
                        instrument: inst,
                        state: FeedState::Live,
                        reason: "book snapshot".into(),
                    }));
                }
                Ok(Control::None)
            }
            "activeAssetCtx" => {
                let c: AssetCtx =
                    serde_json::from_str(f.data.ok_or("activeAssetCtx without data")?.get())
                        .map_err(|e| format!("bad activeAssetCtx: {e}"))?;
                out.push(MarketEvent::Mark(MarkPrice {
                    ts_ms: recv_ms,
                    instrument: self.instrument(&c.coin)?,
                    mark_price: parse_positive(&c.ctx.mark_px, "markPx")?,
                    oracle_price: parse_positive(&c.ctx.oracle_px, "oraclePx")?,
                    funding_rate: c
                        .ctx
                        .funding
                        .parse()
                        .map_err(|_| format!("bad funding {:?}", c.ctx.funding))
                        .and_then(|r| in_range(r, "funding"))?,
                }));
                Ok(Control::None)
            }
            _ => Ok(Control::None),
        }
    }
}

/// Hyperliquid's perpetual trading rules from `POST /info {"type":"meta"}` (or the first element
/// of `metaAndAssetCtxs`): per listed coin, `hyperliquid:COIN/USDC` with lot `10^-szDecimals`,
/// prices of at most 5 significant figures and `6 − szDecimals` decimals, a 10 USDC minimum order
/// value and `maxLeverage`. Delisted coins are left out. Errors on a payload without `universe`.
pub fn perp_specs(meta: &serde_json::Value) -> Result<BTreeMap<String, InstrumentSpec>, String> {
    let universe = meta["universe"]
        .as_array()
        .ok_or("meta: no universe array")?;
    let mut out = BTreeMap::new();
    for m in universe {
        let (Some(name), Some(sz)) = (m["name"].as_str(), m["szDecimals"].as_u64()) else {
            return Err(format!("meta: bad universe entry {m}"));
        };
        if m["isDelisted"] == true || sz > 6 {
            continue;
        }
        let lev = m["maxLeverage"].as_u64().unwrap_or(1).max(1);
        out.insert(
            format!("hyperliquid:{name}/USDC"),
            InstrumentSpec {
                kind: MarketKind::Perpetual,
                tick_size: Decimal::new(1, 6 - sz as u32),
                lot_size: Decimal::new(1, sz as u32),
                min_notional: Decimal::TEN,
                max_leverage: Decimal::from(lev),
                max_sig_figs: Some(5),
            },
        );
    }
    Ok(out)
}

#[cfg(test)]
mod spec_tests {
    use super::*;
    use rust_decimal_macros::dec;

    /// The first 6 coins of a real `meta` answer (captured 2026-09-25; see PROVENANCE.md of
    /// `hyperliquid/bytex_live_payloads`), copied here in part.
    const META: &str = r#"{"universe":[{"szDecimals":5,"name":"BTC","maxLeverage":40,"marginTableId":56},{"szDecimals":4,"name":"ETH","maxLeverage":25,"marginTableId":55},{"szDecimals":1,"name":"MATIC","maxLeverage":20,"marginTableId":20,"isDelisted":true},{"szDecimals":2,"name":"SOL","maxLeverage":20,"marginTableId":54}]}"#;

    #[test]
    fn specs_from_the_venue_metadata() {
        let s = perp_specs(&serde_json::from_str(META).unwrap()).unwrap();
        assert_eq!(s.len(), 3, "delisted MATIC left out");
        let btc = &s["hyperliquid:BTC/USDC"];
        assert_eq!(btc.kind, MarketKind::Perpetual);
        assert_eq!((btc.lot_size, btc.tick_size), (dec!(0.00001), dec!(0.1)));
        assert_eq!(btc.max_leverage, dec!(40));
        assert_eq!(btc.round_limit(dec!(83712.37), Side::Buy), dec!(83712));
        assert_eq!(s["hyperliquid:SOL/USDC"].lot_size, dec!(0.01));
        assert!(perp_specs(&serde_json::json!({"nope": 1})).is_err());
    }
}
