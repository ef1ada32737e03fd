//! Self-healing websocket client for one venue connection.
//!
//! Connects, sends the codec's subscriptions, keeps the socket alive (application pings where the
//! venue wants them; tungstenite answers protocol pings), and treats `idle_timeout` without any
//! frame as a stall. On a stall, a close or an error it marks every instrument `Reconnecting`,
//! waits an exponential backoff with jitter, reconnects and re-subscribes everything. Book gaps are
//! resynchronised (REST snapshot or re-subscription, as the codec says). An instrument with no data
//! for `stale_after` is marked `Stale` until data returns. Malformed frames are counted and skipped.
//!
//! Wall-clock time is used here, in the I/O layer only: for timers and for status event times.

use super::rest::RestClient;
use super::venues::{Control, DepthSnapshot, VenueCodec};
use crate::domain::{FeedState, FeedStatus, Instrument, MarketEvent};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

/// Timing of one connection.
#[derive(Clone, Debug)]
pub struct WsSettings {
    pub url: String,
    /// Application ping period.
    pub ping_interval: Duration,
    /// No frame at all for this long is a stall: reconnect.
    pub idle_timeout: Duration,
    /// An instrument with no event for this long is stale (entries blocked) until data returns.
    pub stale_after: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    pub connect_timeout: Duration,
    /// Trades and book updates timed further ahead of their receipt are quarantined.
    pub max_ahead: Option<Duration>,
    /// Likewise for those older than this at receipt.
    pub max_age: Option<Duration>,
}

/// The largest websocket frame or message accepted (4 MiB): the venues' largest messages (book
/// snapshots) are tens of KiB.
pub const MAX_FRAME: usize = 4 << 20;

/// Counters of one connection, shared with the status output.
#[derive(Debug, Default)]
pub struct FeedCounters {
    pub connects: AtomicU64,
    pub reconnects: AtomicU64,
    pub frames: AtomicU64,
    pub events: AtomicU64,
    pub malformed: AtomicU64,
    pub gaps: AtomicU64,
    pub resyncs: AtomicU64,
    pub stalls: AtomicU64,
    pub stale_marks: AtomicU64,
    /// Events dropped for a time too far from their receipt.
    pub quarantined: AtomicU64,
    /// Raw frames not recorded because the recorder's queue was full.
    pub raw_dropped: AtomicU64,
    pub last_frame_ms: AtomicI64,
    /// 1 while connected.
    pub connected: AtomicU64,
}

/// Plain copy of the counters, for printing and the store.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct FeedCountersView {
    pub venue: String,
    pub connected: bool,
    pub connects: u64,
    pub reconnects: u64,
    pub frames: u64,
    pub events: u64,
    pub malformed: u64,
    pub gaps: u64,
    pub resyncs: u64,
    pub stalls: u64,
    pub stale_marks: u64,
    #[serde(default)]
    pub quarantined: u64,
    pub last_frame_ms: i64,
}

impl FeedCounters {
    pub fn view(&self, venue: &str) -> FeedCountersView {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        FeedCountersView {
            venue: venue.to_string(),
            connected: g(&self.connected) == 1,
            connects: g(&self.connects),
            reconnects: g(&self.reconnects),
            frames: g(&self.frames),
            events: g(&self.events),
            malformed: g(&self.malformed),
            gaps: g(&self.gaps),
            resyncs: g(&self.resyncs),
            stalls: g(&self.stalls),
            stale_marks: g(&self.stale_marks),
            quarantined: g(&self.quarantined),
            last_frame_ms: self.last_frame_ms.load(Ordering::Relaxed),
        }
    }
}

/// Raw frames queued for the recorder at most (then they are dropped and counted).
pub const RAW_QUEUE: usize = 65_536;

/// A raw frame as received (for `smartflow record`), or a REST snapshot the codec applied.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct RawFrame {
    pub venue: String,
    pub recv_ms: i64,
    /// `ws` for a websocket text frame, `snapshot` for a REST depth snapshot, `status` for a
    /// connection event.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instrument: Option<String>,
    pub data: String,
}

/// Events decoded from one frame, with the instant they were decoded (for latency figures).
#[derive(Debug)]
pub struct FeedBatch {
    pub decoded_at: std::time::Instant,
    pub events: Vec<MarketEvent>,
}

/// Wall-clock now in Unix ms (I/O layer only).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Exponential backoff with ±25 % jitter: `initial · 2^attempt`, capped at `max`.
pub fn backoff(initial: Duration, max: Duration, attempt: u32) -> Duration {
    let base = initial.saturating_mul(1u32 << attempt.min(16)).min(max);
    let jitter = rand::random_range(0.75..1.25);
    base.mul_f64(jitter).min(max)
}

enum Ended {
    Shutdown,
    Lost(String),
}

pub struct WsFeed {
    codec: Box<dyn VenueCodec>,
    settings: WsSettings,
    rest: Option<RestClient>,
    tx: mpsc::Sender<FeedBatch>,
    raw: Option<mpsc::Sender<RawFrame>>,
    pub counters: Arc<FeedCounters>,
    health: HashMap<Instrument, FeedState>,
    last_seen: HashMap<Instrument, tokio::time::Instant>,
    fault: crate::fault::Fault,
    /// Hyperliquid `/info` client for the codec's catch-up requests.
    info: Option<super::hyperliquid_info::InfoClient>,
}

/// A catch-up request, its attempt number and its answer.
type InfoResult = (serde_json::Value, u32, Result<String, String>);
type InfoTx = mpsc::UnboundedSender<InfoResult>;

impl WsFeed {
    pub fn new(
        codec: Box<dyn VenueCodec>,
        settings: WsSettings,
        rest: Option<RestClient>,
        tx: mpsc::Sender<FeedBatch>,
        raw: Option<mpsc::Sender<RawFrame>>,
        counters: Arc<FeedCounters>,
    ) -> Self {
        Self {
            codec,
            settings,
            rest,
            tx,
            raw,
            counters,
            health: HashMap::new(),
            last_seen: HashMap::new(),
            fault: crate::fault::Fault::default(),
            info: None,
        }
    }

    /// Makes the codec's catch-up requests after each reconnect with `info`.
    pub fn with_info(mut self, info: super::hyperliquid_info::InfoClient) -> Self {
        self.info = Some(info);
        self
    }

    /// Fault injection (`feed@N`): panic once at the N-th frame, to exercise supervision.
    pub fn with_fault(mut self, f: crate::fault::Fault) -> Self {
        self.fault = f;
        self
    }

    async fn send(&self, events: Vec<MarketEvent>) -> Result<(), ()> {
        let b = FeedBatch {
            decoded_at: std::time::Instant::now(),
            events,
        };
        self.tx.send(b).await.map_err(|_| ())
    }

    fn venue(&self) -> &'static str {
        self.codec.venue().name()
    }

    fn tap(&self, kind: &str, instrument: Option<&Instrument>, data: &str) {
        if let Some(r) = &self.raw {
            let f = RawFrame {
                venue: self.venue().into(),
                recv_ms: now_ms(),
                kind: kind.into(),
                instrument: instrument.map(|i| i.to_string()),
                data: data.into(),
            };
            // Bounded: a writer that falls behind loses frames, counted, not memory.
            if let Err(mpsc::error::TrySendError::Full(_)) = r.try_send(f) {
                self.counters.raw_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Marks every instrument with `state` (once per change) and forwards the status events.
    async fn mark_all(&mut self, state: FeedState, reason: &str) {
        let ts = now_ms();
        let mut evs = Vec::new();
        for i in self.codec.instruments() {
            if self.health.get(&i) != Some(&state) {
                self.health.insert(i.clone(), state);
                evs.push(MarketEvent::Status(FeedStatus {
                    ts_ms: ts,
                    instrument: i,
                    state,
                    reason: reason.into(),
                }));
            }
        }
        if !evs.is_empty() {
            let st = serde_json::json!({"state": state, "reason": reason}).to_string();
            self.tap("status", None, &st);
            let _ = self.send(evs).await;
        }
    }

    /// Tracks health from the events: codec statuses, data returning to a stale instrument.
    fn track(&mut self, evs: &mut Vec<MarketEvent>) {
        let now = tokio::time::Instant::now();
        let mut extra = Vec::new();
        for e in evs.iter() {
            let i = e.instrument();
            self.last_seen.insert(i.clone(), now);
            match e {
                MarketEvent::Status(s) => {
                    self.health.insert(s.instrument.clone(), s.state);
                }
                _ => {
                    if self.health.get(i) == Some(&FeedState::Stale) {
                        self.health.insert(i.clone(), FeedState::Live);
                        let st =
                            serde_json::json!({"state": FeedState::Live, "reason": "data resumed"});
                        self.tap("status", Some(i), &st.to_string());
                        extra.push(MarketEvent::Status(FeedStatus {
                            ts_ms: e.ts_ms(),
                            instrument: i.clone(),
                            state: FeedState::Live,
                            reason: "data resumed".into(),
                        }));
                    }
                }
            }
        }
        // The Live status goes first so the data after it is not blocked.
        if !extra.is_empty() {
            extra.append(evs);
            *evs = extra;
        }
    }

    async fn check_stale(&mut self) {
        let now = tokio::time::Instant::now();
        let ts = now_ms();
        let mut evs = Vec::new();
        for i in self.codec.instruments() {
            let seen = self.last_seen.get(&i).copied();
            let silent = seen.is_none_or(|t| now.duration_since(t) >= self.settings.stale_after);
            if silent && self.health.get(&i) == Some(&FeedState::Live) {
                self.health.insert(i.clone(), FeedState::Stale);
                self.counters.stale_marks.fetch_add(1, Ordering::Relaxed);
                let reason = format!("no data for {} s", self.settings.stale_after.as_secs());
                let st = serde_json::json!({"state": FeedState::Stale, "reason": reason});
                self.tap("status", Some(&i), &st.to_string());
                evs.push(MarketEvent::Status(FeedStatus {
                    ts_ms: ts,
                    instrument: i,
                    state: FeedState::Stale,
                    reason: format!("no data for {} s", self.settings.stale_after.as_secs()),
                }));
            }
        }
        if !evs.is_empty() {
            let _ = self.send(evs).await;
        }
    }

    async fn fetch_snapshot(
        rest: RestClient,
        symbol: String,
    ) -> Result<(String, DepthSnapshot), String> {
        let body = rest
            .get(&format!("/api/v3/depth?symbol={symbol}&limit=1000"))
            .await?;
        let snap = serde_json::from_str(&body).map_err(|e| format!("bad depth snapshot: {e}"))?;
        Ok((body, snap))
    }

    /// Runs until `shutdown` turns true. Never returns an error: it heals.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut attempt: u32 = 0;
        loop {
            if *shutdown.borrow() {
                return;
            }
            match self.session(&mut shutdown, &mut attempt).await {
                Ended::Shutdown => return,
                Ended::Lost(why) => {
                    self.counters.connected.store(0, Ordering::Relaxed);
                    tracing::warn!(venue = self.venue(), "connection lost: {why}; reconnecting");
                    self.mark_all(FeedState::Reconnecting, &why).await;
                    let wait = backoff(
                        self.settings.backoff_initial,
                        self.settings.backoff_max,
                        attempt,
                    );
                    attempt = attempt.saturating_add(1);
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = shutdown.changed() => return,
                    }
                    self.counters.reconnects.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    async fn session(&mut self, shutdown: &mut watch::Receiver<bool>, attempt: &mut u32) -> Ended {
        // A frame or message above MAX_FRAME ends the connection as soon as its header says so
        // (tungstenite's defaults allow 16 MiB frames, 64 MiB messages held whole).
        let limits = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .max_frame_size(Some(MAX_FRAME))
            .max_message_size(Some(MAX_FRAME));
        let connect = tokio_tungstenite::connect_async_with_config(
            self.settings.url.as_str(),
            Some(limits),
            false,
        );
        let ws = match tokio::time::timeout(self.settings.connect_timeout, connect).await {
            Ok(Ok((ws, _))) => ws,
            Ok(Err(e)) => return Ended::Lost(format!("connect {}: {e}", self.settings.url)),
            Err(_) => return Ended::Lost(format!("connect {}: timed out", self.settings.url)),
        };
        self.counters.connects.fetch_add(1, Ordering::Relaxed);
        self.counters.connected.store(1, Ordering::Relaxed);
        self.tap("connect", None, &self.settings.url);
        let (mut sink, mut stream) = ws.split();
        let need_snapshot = self.codec.on_connect();
        for m in self.codec.subscribe_messages() {
            if let Err(e) = sink.send(Message::text(m)).await {
                return Ended::Lost(format!("subscribe: {e}"));
            }
        }
        let (snap_tx, mut snap_rx) = mpsc::unbounded_channel::<SnapshotResult>();
        spawn_snapshots(&self.rest, self.codec.as_ref(), &snap_tx, need_snapshot);
        let (info_tx, mut info_rx) = mpsc::unbounded_channel::<InfoResult>();
        let calls = self.codec.catch_up().into_iter().map(|r| (r, 0)).collect();
        spawn_info(&self.info, calls, &info_tx, Duration::ZERO);
        let mut ping = tokio::time::interval(self.settings.ping_interval);
        ping.tick().await;
        let mut stale_tick = tokio::time::interval(Duration::from_millis(500));
        let mut got_data = false;
        // Idle time counts from the last frame received, whatever else the loop does.
        let mut last_frame = tokio::time::Instant::now();
        loop {
            let idle_deadline = last_frame + self.settings.idle_timeout;
            tokio::select! {
                _ = shutdown.changed() => {
                    let _ = sink.send(Message::Close(None)).await;
                    return Ended::Shutdown;
                }
                _ = ping.tick() => {
                    let msg = match self.codec.ping_message() {
                        Some(p) => Message::text(p),
                        None => Message::Ping(Vec::new().into()),
                    };
                    if let Err(e) = sink.send(msg).await {
                        return Ended::Lost(format!("ping: {e}"));
                    }
                }
                _ = stale_tick.tick() => self.check_stale().await,
                Some((req, attempt, res)) = info_rx.recv() => {
                    self.on_info_answer(req, attempt, res, &info_tx).await;
                }
                Some((inst, res)) = snap_rx.recv() => {
                    match res {
                        Ok((body, snap)) => {
                            self.tap("snapshot", Some(&inst), &body);
                            let mut out = Vec::new();
                            match self.codec.apply_snapshot(&inst, &snap, now_ms(), &mut out) {
                                Ok(Control::Resync(b)) => {
                                    self.counters.gaps.fetch_add(1, Ordering::Relaxed);
                                    self.counters.resyncs.fetch_add(1, Ordering::Relaxed);
                                    spawn_snapshots(&self.rest, self.codec.as_ref(), &snap_tx, b);
                                }
                                Ok(_) => {}
                                Err(e) => tracing::warn!(venue = self.venue(), "snapshot rejected: {e}"),
                            }
                            self.forward(out).await;
                        }
                        Err(e) => {
                            tracing::warn!(venue = self.venue(), "depth snapshot for {inst} failed: {e}; retrying");
                            let (rest_ok, b) = (self.rest.is_some(), vec![inst]);
                            if rest_ok {
                                tokio::time::sleep(Duration::from_secs(1)).await;
                                spawn_snapshots(&self.rest, self.codec.as_ref(), &snap_tx, b);
                            }
                        }
                    }
                }
                _ = tokio::time::sleep_until(idle_deadline) => {
                    self.counters.stalls.fetch_add(1, Ordering::Relaxed);
                    self.mark_all(FeedState::Stale, "socket silent").await;
                    return Ended::Lost(format!(
                        "no frame for {:.1} s (stall)",
                        self.settings.idle_timeout.as_secs_f64()
                    ));
                }
                frame = stream.next() => {
                    let msg = match frame {
                        None => return Ended::Lost("closed by the server".into()),
                        Some(Err(e)) => return Ended::Lost(format!("read: {e}")),
                        Some(Ok(m)) => m,
                    };
                    last_frame = tokio::time::Instant::now();
                    let n = self.counters.frames.fetch_add(1, Ordering::Relaxed);
                    self.fault.check("feed", n);
                    self.counters.last_frame_ms.store(now_ms(), Ordering::Relaxed);
                    let text = match msg {
                        Message::Text(t) => t,
                        Message::Binary(b) => match String::from_utf8(b.to_vec()) {
                            Ok(t) => t.into(),
                            Err(_) => { self.counters.malformed.fetch_add(1, Ordering::Relaxed); continue; }
                        },
                        Message::Close(_) => return Ended::Lost("close frame from the server".into()),
                        _ => continue, // ping/pong frames
                    };
                    self.tap("ws", None, &text);
                    let mut out = Vec::new();
                    match self.codec.on_message(&text, now_ms(), &mut out) {
                        Ok(Control::Resync(books)) => {
                            self.counters.gaps.fetch_add(1, Ordering::Relaxed);
                            self.counters.resyncs.fetch_add(1, Ordering::Relaxed);
                            for m in self.codec.resubscribe_messages(&books) {
                                if let Err(e) = sink.send(Message::text(m)).await {
                                    return Ended::Lost(format!("resubscribe: {e}"));
                                }
                            }
                            spawn_snapshots(&self.rest, self.codec.as_ref(), &snap_tx, books);
                        }
                        Ok(_) => {}
                        Err(e) => {
                            let n = self.counters.malformed.fetch_add(1, Ordering::Relaxed);
                            if n < 20 {
                                tracing::warn!(venue = self.venue(), "malformed frame skipped: {e}");
                            }
                        }
                    }
                    if !out.is_empty() && !got_data {
                        got_data = true;
                        *attempt = 0; // a working connection resets the backoff
                    }
                    self.forward(out).await;
                }
            }
        }
    }

    /// Applies a catch-up answer (and makes its follow-up requests); a failed request is tried
    /// again a second later, three times at most.
    async fn on_info_answer(
        &mut self,
        req: serde_json::Value,
        attempt: u32,
        res: Result<String, String>,
        tx: &InfoTx,
    ) {
        let body = match res {
            Ok(b) => b,
            Err(e) if attempt < 2 => {
                tracing::warn!(
                    venue = self.venue(),
                    "catch-up request failed: {e}; retrying"
                );
                spawn_info(
                    &self.info,
                    vec![(req, attempt + 1)],
                    tx,
                    Duration::from_secs(1),
                );
                return;
            }
            Err(e) => {
                tracing::error!(venue = self.venue(), "catch-up request failed 3 times: {e}");
                return;
            }
        };
        self.tap("info", None, &body);
        let mut out = Vec::new();
        match self.codec.on_info(&req, &body, &mut out) {
            Ok(more) => {
                let more = more.into_iter().map(|r| (r, 0)).collect();
                spawn_info(&self.info, more, tx, Duration::ZERO);
            }
            Err(e) => {
                self.counters.malformed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(venue = self.venue(), "catch-up answer rejected: {e}");
            }
        }
        self.forward(out).await;
    }

    /// Drops (counts, logs the first few) trades and book updates whose venue time is outside
    /// 1970..2100 or too far from `recv_ms`; statuses, marks and wallet events carry receipt or
    /// answer times.
    fn quarantine(&self, out: &mut Vec<MarketEvent>, recv_ms: i64) {
        let (ahead, age) = (self.settings.max_ahead, self.settings.max_age);
        let ms = |d: Option<Duration>| d.map_or(i64::MAX, |d| d.as_millis() as i64);
        let (ahead, age) = (ms(ahead), ms(age));
        out.retain(|e| {
            let ts = match e {
                MarketEvent::Trade(t) => t.ts_ms,
                MarketEvent::Book(b) => b.ts_ms,
                _ => return true,
            };
            // Outside 1970..2100 always: event clocks take differences of times.
            let ok = super::ts_in_range(ts)
                && ts.saturating_sub(recv_ms) <= ahead
                && recv_ms.saturating_sub(ts) <= age;
            if !ok {
                let n = self.counters.quarantined.fetch_add(1, Ordering::Relaxed);
                if n < 20 {
                    tracing::warn!(venue = self.venue(), instrument = %e.instrument(), ts_ms = ts,
                        recv_ms, "event time too far from its receipt: quarantined");
                }
            }
            ok
        });
    }

    async fn forward(&mut self, mut out: Vec<MarketEvent>) {
        self.quarantine(&mut out, now_ms());
        if out.is_empty() {
            return;
        }
        self.track(&mut out);
        self.counters
            .events
            .fetch_add(out.len() as u64, Ordering::Relaxed);
        let _ = self.send(out).await;
    }
}

type SnapshotResult = (Instrument, Result<(String, DepthSnapshot), String>);

/// Sends `calls` (request, attempt) through the info client after `delay`, one at a time in
/// order (the budget paces them); answers come back on `tx`.
fn spawn_info(
    info: &Option<super::hyperliquid_info::InfoClient>,
    calls: Vec<(serde_json::Value, u32)>,
    tx: &InfoTx,
    delay: Duration,
) {
    let Some(info) = info.clone() else { return };
    if calls.is_empty() {
        return;
    }
    let tx = tx.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        for (req, attempt) in calls {
            let res = info.post(req.clone()).await;
            if tx.send((req, attempt, res)).is_err() {
                return; // the connection ended
            }
        }
    });
}

/// Fetches REST depth snapshots for `books`, where the codec syncs books over REST (Binance).
fn spawn_snapshots(
    rest: &Option<RestClient>,
    codec: &dyn VenueCodec,
    tx: &mpsc::UnboundedSender<SnapshotResult>,
    books: Vec<Instrument>,
) {
    let (Some(rest), Some(syms)) = (rest, codec.rest_symbols()) else {
        return;
    };
    for i in books {
        if let Some(sym) = syms.rest_symbol(&i) {
            let (rest, tx) = (rest.clone(), tx.clone());
            tokio::spawn(async move {
                let r = WsFeed::fetch_snapshot(rest, sym).await;
                let _ = tx.send((i, r));
            });
        }
    }
}

pub use super::venues::RestSymbols;
