//! Money and market types shared by every layer.
//!
//! Prices, quantities, notionals, fees and PnL are `rust_decimal::Decimal`; timestamps are event time
//! in Unix milliseconds (UTC), never the wall clock.

pub mod command;
pub mod intent;
pub mod spec;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// A spot instrument named `BASE/QUOTE` (e.g. `GNT/BTC`). Cheap to clone (shared string).
#[derive(Clone, Eq, PartialOrd, Ord)]
pub struct Instrument(Arc<str>);

/// The name's hash (what a derive gives), consistent with [`PartialEq`] below.
impl std::hash::Hash for Instrument {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

/// Equal names; clones of one instrument (a reader's trades, the maps keyed by them) compare by
/// pointer without reading the names.
impl PartialEq for Instrument {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

impl Instrument {
    /// Builds from a `BASE/QUOTE` name; no validation beyond what the readers do.
    pub fn new(name: &str) -> Self {
        Instrument(Arc::from(name))
    }
    /// Builds from separate base and quote asset codes.
    pub fn from_parts(base: &str, quote: &str) -> Self {
        Instrument(Arc::from(format!("{base}/{quote}").as_str()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Quote asset (after the `/`), the currency of prices and notionals.
    pub fn quote(&self) -> &str {
        self.0.rsplit_once('/').map(|(_, q)| q).unwrap_or("")
    }
}

impl fmt::Display for Instrument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for Instrument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
impl Serialize for Instrument {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}
impl<'de> Deserialize<'de> for Instrument {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(Instrument::new(&s))
    }
}

/// Side of an order, or the aggressor (taker) side of a trade.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn sign(self) -> Decimal {
        match self {
            Side::Buy => Decimal::ONE,
            Side::Sell => Decimal::NEGATIVE_ONE,
        }
    }
    /// `qty` base units signed by side: buy > 0, sell < 0.
    pub fn signed(self, qty: Decimal) -> Decimal {
        match self {
            Side::Buy => qty,
            Side::Sell => -qty,
        }
    }
    /// The other side.
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
}

/// One public trade.
///
/// `price`: quote currency per base unit; `qty`: base units; `aggressor`: the taker's side;
/// `trade_id`: the venue's id where the source has one (Binance `aggTrade` `a`, freqtrade `id`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trade {
    pub ts_ms: i64,
    pub instrument: Instrument,
    pub price: Decimal,
    pub qty: Decimal,
    pub aggressor: Side,
    pub trade_id: Option<u64>,
    /// Buyer and seller wallets, where the venue names them (Hyperliquid `users`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<Box<TradeUsers>>,
}

/// The two wallets of a trade (Hyperliquid: `users: [buyer, seller]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TradeUsers {
    pub buyer: String,
    pub seller: String,
}

/// Best bid and ask of an L2 book after an update. Prices quote per base, sizes base units.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookTop {
    pub ts_ms: i64,
    pub instrument: Instrument,
    pub bid_price: Decimal,
    pub bid_qty: Decimal,
    pub ask_price: Decimal,
    pub ask_qty: Decimal,
}

/// Health of one instrument's market data, as the feed sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedState {
    /// Data flowing; entries allowed.
    Live,
    /// No message within the feed's idle limit.
    Stale,
    /// Connection lost; reconnecting.
    Reconnecting,
    /// Order-book sequence gap; waiting for a fresh snapshot.
    Resyncing,
}

/// A change of an instrument's feed health; the risk manager blocks entries unless `Live`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedStatus {
    pub ts_ms: i64,
    pub instrument: Instrument,
    pub state: FeedState,
    pub reason: String,
}

/// A perpetual's mark, oracle price and current hourly funding rate, as the venue reported them
/// (Hyperliquid `activeAssetCtx`, which has no time: `ts_ms` is when it was received, an
/// observation like [`FeedStatus`]). Prices quote per base; `funding_rate` per hour (0.0000125
/// = 0.125 bp; longs pay shorts when > 0).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkPrice {
    pub ts_ms: i64,
    pub instrument: Instrument,
    pub mark_price: Decimal,
    pub oracle_price: Decimal,
    pub funding_rate: Decimal,
}

/// A fill of a tracked wallet from its own Hyperliquid feed (`userFills` websocket or a
/// `userFillsByTime` backfill): `ts_ms` the fill's time (Unix ms, may be older than events
/// before it: a backfill), `price` USDC per coin, `size` coins (> 0), `start_position` the
/// wallet's signed position before the fill (coins), `tid` the venue's fill key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserFill {
    pub ts_ms: i64,
    pub instrument: Instrument,
    pub wallet: String,
    pub side: Side,
    pub price: Decimal,
    pub size: Decimal,
    pub tid: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_position: Option<Decimal>,
}

/// A tracked wallet's position in one coin as polled (Hyperliquid `clearinghouseState`):
/// `size` signed coins (long > 0; 0 when the position is gone), `entry_price` USDC per coin;
/// `ts_ms` the answer's `time` (an observation, like [`MarkPrice`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserPosition {
    pub ts_ms: i64,
    pub instrument: Instrument,
    pub wallet: String,
    pub size: Decimal,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_price: Option<Decimal>,
}

/// Everything the pipeline consumes, in event-time order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum MarketEvent {
    Trade(Trade),
    Book(BookTop),
    Status(FeedStatus),
    Mark(MarkPrice),
    /// From the wallet tracker; boxed: rare next to trades.
    UserFill(Box<UserFill>),
    UserPosition(Box<UserPosition>),
}

impl MarketEvent {
    pub fn ts_ms(&self) -> i64 {
        match self {
            MarketEvent::Trade(t) => t.ts_ms,
            MarketEvent::Book(b) => b.ts_ms,
            MarketEvent::Status(s) => s.ts_ms,
            MarketEvent::Mark(m) => m.ts_ms,
            MarketEvent::UserFill(f) => f.ts_ms,
            MarketEvent::UserPosition(p) => p.ts_ms,
        }
    }
    pub fn instrument(&self) -> &Instrument {
        match self {
            MarketEvent::Trade(t) => &t.instrument,
            MarketEvent::Book(b) => &b.instrument,
            MarketEvent::Status(s) => &s.instrument,
            MarketEvent::Mark(m) => &m.instrument,
            MarketEvent::UserFill(f) => &f.instrument,
            MarketEvent::UserPosition(p) => &p.instrument,
        }
    }
    /// A wallet tracker's event (observed on a wallet, not the market's own stream).
    pub fn is_wallet(&self) -> bool {
        matches!(
            self,
            MarketEvent::UserFill(_) | MarketEvent::UserPosition(_)
        )
    }
    pub fn as_trade(&self) -> Option<&Trade> {
        match self {
            MarketEvent::Trade(t) => Some(t),
            _ => None,
        }
    }
}

impl Trade {
    /// Quote notional `price × qty`.
    pub fn notional(&self) -> Decimal {
        self.price * self.qty
    }
}

/// How an order executes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OrderType {
    /// Takes liquidity from the trades that follow it (after the broker's latency).
    Market,
    /// Rests; fills when traded prices cross `price` (sell: above, buy: below).
    Limit { price: Decimal },
    /// Becomes a market order when a trade reaches `trigger` (sell: at or below, buy: at or above).
    Stop { trigger: Decimal },
}

/// Why an order exists; exits are reduce-only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderPurpose {
    Entry,
    TakeProfit,
    StopLoss,
    TimeStop,
    /// A reduce-only market exit asked for by a `flatten` command.
    Flatten,
    /// A reduce-only market exit asked for by a signal (the followed wallets exited).
    SignalExit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Open,
    PartiallyFilled,
    Filled,
    Canceled,
    Expired,
}

/// An order at the broker. `qty` in base units; `filled_qty` grows with fills.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: String,
    pub intent_id: Option<String>,
    pub parent_order_id: Option<String>,
    pub instrument: Instrument,
    pub side: Side,
    pub qty: Decimal,
    pub filled_qty: Decimal,
    pub order_type: OrderType,
    pub purpose: OrderPurpose,
    pub reduce_only: bool,
    pub created_ts_ms: i64,
    /// Event time from which the order can fill (created + latency, or trigger time + latency).
    pub active_from_ms: i64,
    pub status: OrderStatus,
    /// The instrument's lot (base units) when its spec is known: partial fills are multiples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lot_size: Option<Decimal>,
}

impl Order {
    pub fn remaining(&self) -> Decimal {
        self.qty - self.filled_qty
    }
    pub fn is_live(&self) -> bool {
        matches!(
            self.status,
            OrderStatus::Open | OrderStatus::PartiallyFilled
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Liquidity {
    Maker,
    Taker,
}

/// One execution. `fee` in quote currency; `price` includes slippage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fill {
    pub id: String,
    pub order_id: String,
    pub instrument: Instrument,
    pub side: Side,
    pub ts_ms: i64,
    pub price: Decimal,
    pub qty: Decimal,
    pub fee: Decimal,
    pub liquidity: Liquidity,
}

/// A long position (spot; this strategy does not short). Prices and cost exclude fees.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub instrument: Instrument,
    pub qty: Decimal,
    /// Quote spent on the quantity held, fees excluded; `avg_entry_price = cost_basis / qty`.
    pub cost_basis: Decimal,
    /// Display and bracket reference, rounded to 12 dp; PnL uses `cost_basis`.
    pub avg_entry_price: Decimal,
    pub opened_ts_ms: i64,
    pub entry_order_id: String,
    /// Realized PnL of this round trip so far, after fees (entry fees included).
    pub realized_pnl: Decimal,
    pub fees: Decimal,
    pub last_price: Decimal,
}

impl Position {
    pub fn notional(&self) -> Decimal {
        self.qty * self.last_price
    }
    pub fn unrealized_pnl(&self) -> Decimal {
        self.qty * self.last_price - self.cost_basis
    }
}

/// Formats event time (Unix ms) as ISO-8601 UTC for people; never used for decisions.
pub fn fmt_ts(ts_ms: i64) -> String {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp_nanos(ts_ms as i128 * 1_000_000) else {
        return ts_ms.to_string();
    };
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&f).unwrap_or_else(|_| ts_ms.to_string())
}

/// Earliest time [`parse_ts`] returns: 0000-01-01 (Unix ms).
pub const TS_MIN_MS: i64 = -62_167_219_200_000;
/// Latest time [`parse_ts`] returns: 9999-12-31 23:59:59.999 (Unix ms).
pub const TS_MAX_MS: i64 = 253_402_300_799_999;

/// Parses `YYYY-MM-DD`, `YYYY-MM-DD HH:MM[:SS]`, ISO `...T...Z` or Unix ms into Unix ms (UTC),
/// within years 0..=9999 ([`TS_MIN_MS`]..=[`TS_MAX_MS`]); `None` otherwise.
pub fn parse_ts(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(ms) = s.parse::<i64>() {
        return (TS_MIN_MS..=TS_MAX_MS).contains(&ms).then_some(ms);
    }
    let s = s.trim_end_matches('Z').replace('T', " ");
    let (date, time_part) = match s.split_once(' ') {
        Some((d, t)) => (d.to_string(), t.to_string()),
        None => (s.clone(), "00:00:00".to_string()),
    };
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, mo, da) = (d.next()??, d.next()??, d.next()??);
    let mut t = time_part.split(':');
    let h: i64 = t.next()?.parse().ok()?;
    let mi: i64 = t.next().unwrap_or("0").parse().ok()?;
    let sec: f64 = t.next().unwrap_or("0").parse().ok()?;
    // Out-of-range parts are refused, not wrapped (month 257 is not January).
    let in_range = (0..=9999).contains(&y)
        && (0..24).contains(&h)
        && (0..60).contains(&mi)
        && sec.is_finite()
        && (0.0..60.0).contains(&sec)
        && d.next().is_none()
        && t.next().is_none();
    if !in_range {
        return None;
    }
    let month = time::Month::try_from(u8::try_from(mo).ok()?).ok()?;
    let date = time::Date::from_calendar_date(y as i32, month, u8::try_from(da).ok()?).ok()?;
    let days = (date.to_julian_day() - time::macros::date!(1970 - 01 - 01).to_julian_day()) as i64;
    let ms = days * 86_400_000 + h * 3_600_000 + mi * 60_000 + (sec * 1000.0).round() as i64;
    (TS_MIN_MS..=TS_MAX_MS).contains(&ms).then_some(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instruments_are_equal_by_name_whether_shared_or_built_apart() {
        let a = Instrument::new("GNT/BTC");
        let (shared, apart) = (a.clone(), Instrument::from_parts("GNT", "BTC"));
        assert!(Arc::ptr_eq(&a.0, &shared.0) && !Arc::ptr_eq(&a.0, &apart.0));
        assert_eq!(a, shared);
        assert_eq!(a, apart);
        assert_ne!(a, Instrument::new("GNT/ETH"));
        let map: std::collections::HashMap<Instrument, u8> = [(apart, 7)].into();
        assert_eq!(map.get(&a), Some(&7));
    }

    #[test]
    fn ts_round_trip() {
        let ms = parse_ts("2019-07-05 17:00:00").unwrap();
        assert_eq!(ms, 1_562_346_000_000);
        assert_eq!(fmt_ts(ms), "2019-07-05T17:00:00.000Z");
        assert_eq!(parse_ts("2019-07-05T17:00:00.250Z"), Some(ms + 250));
        assert_eq!(parse_ts("2019-07-05"), Some(ms - 17 * 3_600_000));
        assert_eq!(parse_ts("nonsense"), None);
    }

    #[test]
    fn out_of_range_date_parts_are_refused_not_wrapped() {
        for bad in [
            "2019-257-05",
            "2019-13-05",
            "2019-07-32",
            "2019-07-05 24:00",
            "2019-07-05 23:60",
            "2019-07-05 23:00:61",
            "2019-07-05 99999999999999999:00",
            "2019-07-05 10:00:nan",
            "2019-07-05-01",
            "2019-07-05 10:00:00:00",
            "-5-07-05",
        ] {
            assert_eq!(parse_ts(bad), None, "{bad}");
        }
        assert!(parse_ts("2019-07-05 23:59:59.999").is_some());
    }

    /// Found by `smartflow fuzz`: any integer passed as Unix ms, so `log --from` or a label
    /// file could hand the clocks i64::MAX.
    #[test]
    fn unix_ms_outside_years_0_to_9999_is_refused() {
        for bad in [
            "9223372036854775807",
            "-9223372036854775808",
            "253402300800000",
        ] {
            assert_eq!(parse_ts(bad), None, "{bad}");
        }
        assert_eq!(parse_ts("253402300799999"), Some(TS_MAX_MS));
        assert_eq!(parse_ts("1562346000000"), Some(1_562_346_000_000));
        assert_eq!(
            parse_ts("9999-12-31 23:59:59.9996"),
            None,
            "rounds past 9999"
        );
    }

    #[test]
    fn instrument_quote() {
        assert_eq!(Instrument::new("GNT/BTC").quote(), "BTC");
        assert_eq!(Instrument::from_parts("LRC", "BTC").as_str(), "LRC/BTC");
    }
}
