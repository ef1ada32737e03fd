//! `[feeds]` config: venue endpoints, instruments and connection timing for `paper` and `record`.

use super::venues::Venue;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// One venue connection.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct VenueFeedConfig {
    pub enabled: bool,
    /// Websocket endpoint (tests point it at 127.0.0.1).
    pub ws_url: String,
    /// REST base URL (depth snapshots, universe metadata).
    pub rest_url: String,
    /// REST requests per second at most (kept well inside the venue's published limits).
    pub rest_per_second: u32,
    /// `BASE/QUOTE` pairs to trade (Hyperliquid perps: `BTC/USDC`). Empty with a universe rule:
    /// fetched from the venue's metadata at start.
    pub instruments: Vec<String>,
    /// Order-book depth to subscribe where the venue takes one (Bybit `orderbook.{depth}`).
    pub book_depth: usize,
    /// Optional universe rule: every spot pair quoted in one of `universe_quotes` whose 24 h quote
    /// volume is below `universe_max_quote_volume` (small caps), at most `universe_max` pairs.
    pub universe_quotes: Vec<String>,
    pub universe_max_quote_volume: f64,
    pub universe_min_quote_volume: f64,
    pub universe_max: usize,
}

impl VenueFeedConfig {
    fn new(ws: &str, rest: &str, instruments: &[&str], rate: u32) -> Self {
        Self {
            enabled: true,
            ws_url: ws.into(),
            rest_url: rest.into(),
            rest_per_second: rate,
            instruments: instruments.iter().map(|s| s.to_string()).collect(),
            book_depth: 50,
            universe_quotes: vec![],
            universe_max_quote_volume: 0.0,
            universe_min_quote_volume: 0.0,
            universe_max: 0,
        }
    }
    pub fn uses_universe(&self) -> bool {
        !self.universe_quotes.is_empty()
    }
}

impl Default for VenueFeedConfig {
    fn default() -> Self {
        Self::new("", "", &[], 5)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FeedsConfig {
    pub ping_interval_secs: f64,
    /// No frame at all for this long is a stall (Hyperliquid closes silent sockets after 60 s).
    pub idle_timeout_secs: f64,
    /// An instrument without data this long is stale: entries blocked until data returns.
    pub stale_after_secs: f64,
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    pub connect_timeout_secs: f64,
    /// Events per pipeline batch at most (live batches never wait for more).
    pub batch_max_events: usize,
    /// Seconds between status lines (0: none).
    pub status_every_secs: f64,
    /// A trade or book event timed more than this ahead of its receipt is quarantined (counted,
    /// not applied): one far-future timestamp would advance the event clocks for good. 0: off.
    pub max_event_ahead_secs: f64,
    /// Likewise for events older than this at receipt (0: off; recordings replayed by a fake
    /// venue are old).
    pub max_event_age_secs: f64,
    /// `paper` and `live`: one thread per core spins at the lowest scheduling class (Linux
    /// `SCHED_IDLE`) while the session runs and reads the model into its core's cache every
    /// 200 µs, so that the session wakes with warm caches (decode→detector p50 and p99 about
    /// 40 % lower on a 2-core VM; see `actors/idle_spin.rs`). Costs the cores' idle time; delays
    /// no work. Off by default.
    pub keep_cores_awake: bool,
    pub binance: VenueFeedConfig,
    pub bybit: VenueFeedConfig,
    pub hyperliquid: VenueFeedConfig,
}

impl Default for FeedsConfig {
    fn default() -> Self {
        Self {
            ping_interval_secs: 15.0,
            idle_timeout_secs: 45.0,
            stale_after_secs: 120.0,
            backoff_initial_ms: 500,
            backoff_max_ms: 30_000,
            connect_timeout_secs: 10.0,
            batch_max_events: 512,
            status_every_secs: 10.0,
            max_event_ahead_secs: 60.0,
            max_event_age_secs: 0.0,
            keep_cores_awake: false,
            binance: VenueFeedConfig::new(
                "wss://stream.binance.com:9443/stream",
                "https://api.binance.com",
                &["BTC/USDT", "ETH/USDT", "SOL/USDT", "DOGE/USDT"],
                5,
            ),
            bybit: VenueFeedConfig::new(
                "wss://stream.bybit.com/v5/public/spot",
                "https://api.bybit.com",
                &["BTC/USDT", "ETH/USDT", "SOL/USDT", "DOGE/USDT"],
                5,
            ),
            hyperliquid: VenueFeedConfig::new(
                "wss://api.hyperliquid.xyz/ws",
                "https://api.hyperliquid.xyz",
                &["BTC/USDC", "ETH/USDC", "SOL/USDC", "DOGE/USDC"],
                2,
            ),
        }
    }
}

impl FeedsConfig {
    /// A `[feeds.<venue>]` table that sets only some keys keeps the venue's defaults for the
    /// others (serde fills a missing key from the type's default, which knows no venue).
    pub fn fill_venue_defaults(&mut self) {
        let d = FeedsConfig::default();
        for (c, dc) in [
            (&mut self.binance, &d.binance),
            (&mut self.bybit, &d.bybit),
            (&mut self.hyperliquid, &d.hyperliquid),
        ] {
            if c.ws_url.is_empty() {
                c.ws_url.clone_from(&dc.ws_url);
            }
            if c.rest_url.is_empty() {
                c.rest_url.clone_from(&dc.rest_url);
            }
            if c.instruments.is_empty() && !c.uses_universe() {
                c.instruments.clone_from(&dc.instruments);
            }
        }
    }

    pub fn venues(&self) -> Vec<(Venue, &VenueFeedConfig)> {
        [
            (Venue::Binance, &self.binance),
            (Venue::Bybit, &self.bybit),
            (Venue::Hyperliquid, &self.hyperliquid),
        ]
        .into_iter()
        .filter(|(_, c)| c.enabled)
        .collect()
    }

    pub fn settings(&self, url: &str) -> super::ws::WsSettings {
        let s = Duration::from_secs_f64;
        super::ws::WsSettings {
            url: url.to_string(),
            ping_interval: s(self.ping_interval_secs),
            idle_timeout: s(self.idle_timeout_secs),
            stale_after: s(self.stale_after_secs),
            backoff_initial: Duration::from_millis(self.backoff_initial_ms),
            backoff_max: Duration::from_millis(self.backoff_max_ms),
            connect_timeout: s(self.connect_timeout_secs),
            max_ahead: (self.max_event_ahead_secs > 0.0).then(|| s(self.max_event_ahead_secs)),
            max_age: (self.max_event_age_secs > 0.0).then(|| s(self.max_event_age_secs)),
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        const MAX_SECS: f64 = 604_800.0;
        for (k, v) in [
            ("feeds.ping_interval_secs", self.ping_interval_secs),
            ("feeds.idle_timeout_secs", self.idle_timeout_secs),
            ("feeds.stale_after_secs", self.stale_after_secs),
            ("feeds.connect_timeout_secs", self.connect_timeout_secs),
        ] {
            // Capped: a huge value passes `> 0` and panics later as a `Duration`.
            if !(v.is_finite() && v > 0.0 && v <= MAX_SECS) {
                return Err(format!("{k}: must be > 0 and at most {MAX_SECS} (a week)"));
            }
        }
        if self.ping_interval_secs >= self.idle_timeout_secs {
            return Err("feeds.ping_interval_secs: must be below feeds.idle_timeout_secs".into());
        }
        if self.backoff_initial_ms == 0
            || self.backoff_max_ms < self.backoff_initial_ms
            || self.backoff_max_ms > 3_600_000
        {
            return Err(
                "feeds.backoff_initial_ms / backoff_max_ms: want 0 < initial ≤ max ≤ 3600000"
                    .into(),
            );
        }
        if self.batch_max_events == 0 {
            return Err("feeds.batch_max_events: must be ≥ 1".into());
        }
        for (k, v) in [
            ("feeds.max_event_ahead_secs", self.max_event_ahead_secs),
            ("feeds.max_event_age_secs", self.max_event_age_secs),
        ] {
            if !(v.is_finite() && (0.0..=MAX_SECS).contains(&v)) {
                return Err(format!("{k}: must be within 0..={MAX_SECS} (0: off)"));
            }
        }
        if !(self.status_every_secs.is_finite()
            && (0.0..=MAX_SECS).contains(&self.status_every_secs))
        {
            return Err(format!(
                "feeds.status_every_secs: must be within 0..={MAX_SECS}"
            ));
        }
        for (v, c) in self.venues() {
            let k = v.name();
            if !(c.ws_url.starts_with("ws://") || c.ws_url.starts_with("wss://")) {
                return Err(format!("feeds.{k}.ws_url: want a ws:// or wss:// URL"));
            }
            if !(c.rest_url.starts_with("http://") || c.rest_url.starts_with("https://")) {
                return Err(format!(
                    "feeds.{k}.rest_url: want an http:// or https:// URL"
                ));
            }
            if c.instruments.is_empty() && !c.uses_universe() {
                return Err(format!(
                    "feeds.{k}.instruments: empty, and no universe rule"
                ));
            }
            for i in &c.instruments {
                super::venues::split_pair(i).map_err(|e| format!("feeds.{k}.instruments: {e}"))?;
            }
            if c.rest_per_second == 0 {
                return Err(format!("feeds.{k}.rest_per_second: must be ≥ 1"));
            }
        }
        Ok(())
    }
}
