//! Sans-IO codec of the wallet tracker's websocket: one `userFills` subscription per wallet
//! (at most 10: Hyperliquid's limit of unique users per IP), fills as [`UserFill`] events, each
//! `(wallet, tid)` once; after a reconnect, a `userFillsByTime` backfill from each wallet's last
//! fill (paged by 2000, the venue's cap per answer).
//!
//! Frames: `{"channel":"userFills","data":{"isSnapshot":true?,"user":"0x…","fills":[{coin, px,
//! sz, side, time, startPosition, tid, …}]}}`; the first frame after a subscription is a snapshot
//! of recent fills, which overlaps what was seen (dropped as duplicates).

use super::TrackerCounters;
use crate::domain::{Instrument, MarketEvent};
use crate::feeds::venues::hyperliquid::Frame;
use crate::feeds::venues::{venue_instrument, Control, DepthSnapshot, Venue, VenueCodec};
use crate::wallets::events::{SeenFills, WalletFill};
use rustc_hash::FxHashMap;
use serde::Deserialize;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Most fills one `userFillsByTime` answer holds; a full page asks for the next.
pub const PAGE: usize = 2000;
/// Fill keys remembered for de-duplication.
const MEMORY: usize = 200_000;
/// A wallet without a fill yet is backfilled from this long before the last frame received.
const MARGIN_MS: i64 = 60_000;

#[derive(Deserialize)]
struct UserFills {
    user: String,
    fills: Vec<serde_json::Value>,
}

pub struct UserFillsCodec {
    users: Vec<String>,
    index: FxHashMap<String, usize>,
    last_fill_ms: Vec<Option<i64>>,
    seen: SeenFills,
    instruments: FxHashMap<String, Instrument>,
    connects: u32,
    last_recv_ms: Option<i64>,
    counters: Arc<TrackerCounters>,
    /// Takes the fills of any wallet (reading a recording), not only those subscribed.
    any_user: bool,
}

impl UserFillsCodec {
    /// Subscribes to the fills of `users` (addresses; lower-cased).
    pub fn new(users: &[String], counters: Arc<TrackerCounters>) -> Self {
        let users: Vec<String> = users.iter().map(|u| u.to_ascii_lowercase()).collect();
        Self {
            index: users
                .iter()
                .enumerate()
                .map(|(i, u)| (u.clone(), i))
                .collect(),
            last_fill_ms: vec![None; users.len()],
            users,
            seen: SeenFills::new(i64::MAX, MEMORY),
            instruments: FxHashMap::default(),
            connects: 0,
            last_recv_ms: None,
            counters,
            any_user: false,
        }
    }

    /// A codec that takes every wallet's fills (reading recorded frames).
    pub fn any_user(counters: Arc<TrackerCounters>) -> Self {
        Self {
            any_user: true,
            ..Self::new(&[], counters)
        }
    }

    fn user(&mut self, user: &str) -> Result<usize, String> {
        let u = user.to_ascii_lowercase();
        if self.any_user && !self.index.contains_key(&u) {
            self.index.insert(u.clone(), self.users.len());
            self.users.push(u.clone());
            self.last_fill_ms.push(None);
        }
        self.index
            .get(&u)
            .copied()
            .ok_or_else(|| format!("fills of a wallet not subscribed: {user}"))
    }

    fn instrument(&mut self, coin: &str) -> Instrument {
        if let Some(i) = self.instruments.get(coin) {
            return i.clone();
        }
        let i = venue_instrument(Venue::Hyperliquid, coin, "USDC");
        self.instruments.insert(coin.to_string(), i.clone());
        i
    }

    /// Turns `fills` of `user` (either time order; same-millisecond fills keep the API's
    /// order) into events, oldest first, dropping those seen. Returns how many were new; a
    /// malformed fill is skipped and reported after the others are taken.
    fn take(
        &mut self,
        user: usize,
        fills: &[serde_json::Value],
        out: &mut Vec<MarketEvent>,
    ) -> Result<usize, String> {
        let newest_first =
            fills.len() > 1 && fills[0]["time"].as_i64() > fills[fills.len() - 1]["time"].as_i64();
        let (mut new, mut bad) = (0, None);
        let ordered: Box<dyn Iterator<Item = &serde_json::Value>> = match newest_first {
            true => Box::new(fills.iter().rev()),
            false => Box::new(fills.iter()),
        };
        for v in ordered {
            let f = match WalletFill::from_user_fill(&self.users[user], v) {
                Ok(f) => f,
                Err(e) => {
                    bad = Some(e.to_string());
                    continue;
                }
            };
            // Spot fills (`@107`) are not perpetual positions.
            if f.coin.starts_with('@') {
                self.counters.skipped_spot.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if !self.seen.first_time(user as u32, f.tid, f.ts_ms) {
                self.counters.duplicates.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let last = &mut self.last_fill_ms[user];
            *last = Some(last.map_or(f.ts_ms, |t| t.max(f.ts_ms)));
            let instrument = self.instrument(&f.coin);
            out.push(MarketEvent::UserFill(Box::new(f.into_event(instrument))));
            new += 1;
        }
        self.counters.fills.fetch_add(new as u64, Ordering::Relaxed);
        match bad {
            Some(e) => Err(e),
            None => Ok(new),
        }
    }

    fn backfill_request(&self, user: usize, start_ms: i64) -> serde_json::Value {
        serde_json::json!({"type": "userFillsByTime", "user": self.users[user], "startTime": start_ms})
    }
}

impl VenueCodec for UserFillsCodec {
    fn venue(&self) -> Venue {
        Venue::Hyperliquid
    }
    fn instruments(&self) -> Vec<Instrument> {
        Vec::new()
    }
    fn subscribe_messages(&self) -> Vec<String> {
        self.users
            .iter()
            .map(|u| {
                serde_json::json!({"method": "subscribe", "subscription": {"type": "userFills", "user": u}})
                    .to_string()
            })
            .collect()
    }
    fn resubscribe_messages(&self, _: &[Instrument]) -> Vec<String> {
        Vec::new()
    }
    fn ping_message(&self) -> Option<String> {
        Some(r#"{"method":"ping"}"#.into())
    }
    fn on_connect(&mut self) -> Vec<Instrument> {
        self.connects += 1;
        Vec::new()
    }
    fn apply_snapshot(
        &mut self,
        _: &Instrument,
        _: &DepthSnapshot,
        _: i64,
        _: &mut Vec<MarketEvent>,
    ) -> Result<Control, String> {
        Err("the wallet tracker has no books".into())
    }
    fn on_message(
        &mut self,
        text: &str,
        recv_ms: i64,
        out: &mut Vec<MarketEvent>,
    ) -> Result<Control, String> {
        self.last_recv_ms = Some(recv_ms);
        let f = Frame::parse(text)?;
        if let Some(c) = f.control() {
            return c;
        }
        match f.channel.as_ref() {
            "userFills" => {
                let d: UserFills =
                    serde_json::from_str(f.data.ok_or("userFills without data")?.get())
                        .map_err(|e| format!("bad userFills: {e}"))?;
                let u = self.user(&d.user)?;
                self.take(u, &d.fills, out)?;
                Ok(Control::None)
            }
            _ => Ok(Control::None),
        }
    }
    /// After a reconnect (not the first connect: its snapshot is the start), every wallet's
    /// fills since its last one (or since shortly before the connection was lost).
    fn catch_up(&mut self) -> Vec<serde_json::Value> {
        if self.connects <= 1 {
            return Vec::new();
        }
        let lost = self.last_recv_ms.map(|t| t - MARGIN_MS);
        (0..self.users.len())
            .filter_map(|u| Some(self.backfill_request(u, self.last_fill_ms[u].or(lost)?)))
            .collect()
    }
    fn on_info(
        &mut self,
        request: &serde_json::Value,
        body: &str,
        out: &mut Vec<MarketEvent>,
    ) -> Result<Vec<serde_json::Value>, String> {
        let user = self.user(request["user"].as_str().unwrap_or_default())?;
        let fills: Vec<serde_json::Value> =
            serde_json::from_str(body).map_err(|e| format!("bad userFillsByTime answer: {e}"))?;
        self.counters
            .backfill_requests
            .fetch_add(1, Ordering::Relaxed);
        let new = self.take(user, &fills, out)?;
        self.counters
            .backfilled
            .fetch_add(new as u64, Ordering::Relaxed);
        // A full page: the next one starts at its newest fill (the overlap is de-duplicated).
        let start = request["startTime"].as_i64().unwrap_or_default();
        let newest = fills.iter().filter_map(|f| f["time"].as_i64()).max();
        Ok(match newest {
            Some(t) if fills.len() >= PAGE && t > start => vec![self.backfill_request(user, t)],
            _ => Vec::new(),
        })
    }
}
