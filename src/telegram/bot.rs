//! The bot's two tasks on the session's runtime: long polling (`getUpdates`, backing off on
//! network errors without touching the trading session) and the sender (replies first, then
//! alerts through the outbox), under Telegram's limits with `governor`: about one message per
//! second per chat and 30 per second overall.

use super::alerts::{is_entry, realized_pnl, Alert, AlertMaker, Outbox, Priority};
use super::catalog::html;
use super::config::TelegramConfig;
use super::handler::{text, Handler};
use super::port::SessionPort;
use crate::store::{Record, RecordKind};
use governor::{Quota, RateLimiter};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};
use teloxide::payloads::{GetUpdatesSetters, SendMessageSetters};
use teloxide::requests::Requester;
use teloxide::types::{ChatId, ParseMode, UpdateKind};
use teloxide::Bot;
use tokio::sync::{mpsc, watch};

/// Replaces the token wherever it appears (request errors carry the URL, which holds it).
pub fn redact(s: &str, token: &str) -> String {
    if token.is_empty() {
        s.to_string()
    } else {
        s.replace(token, "<token>")
    }
}

/// Starts both tasks; they end when `shutdown` turns true.
pub fn spawn(
    bot: Bot,
    token: String,
    cfg: TelegramConfig,
    handler: Arc<Handler>,
    port: Arc<dyn SessionPort>,
    shutdown: watch::Receiver<bool>,
) {
    let (reply_tx, reply_rx) = mpsc::unbounded_channel::<(i64, String)>();
    tokio::spawn(poll(
        bot.clone(),
        token.clone(),
        cfg.poll_timeout_secs,
        handler.clone(),
        reply_tx,
        shutdown.clone(),
    ));
    tokio::spawn(send(bot, token, cfg, handler, port, reply_rx, shutdown));
}

/// Long polling; every text message goes to the handler, its replies to the sender.
async fn poll(
    bot: Bot,
    token: String,
    timeout: u32,
    handler: Arc<Handler>,
    replies: mpsc::UnboundedSender<(i64, String)>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut offset: i32 = 0;
    let mut backoff = Duration::from_secs(1);
    loop {
        let req = bot.get_updates().offset(offset).timeout(timeout);
        let got = tokio::select! {
            r = req => r,
            _ = shutdown.changed() => return,
        };
        let updates = match got {
            Ok(u) => {
                backoff = Duration::from_secs(1);
                u
            }
            Err(e) => {
                let msg = redact(&e.to_string(), &token);
                tracing::warn!("telegram: getUpdates failed ({msg}); retrying in {backoff:?}");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        for u in updates {
            offset = offset.max(u.id.0 as i32 + 1);
            let UpdateKind::Message(m) = &u.kind else {
                continue;
            };
            let Some(t) = m.text() else {
                continue;
            };
            let user = m.from.as_ref().map(|u| u.id.0);
            for r in handler.on_text(m.chat.id.0, user, t).await {
                let _ = replies.send((m.chat.id.0, r));
            }
        }
    }
}

type Keyed = RateLimiter<
    i64,
    governor::state::keyed::DefaultKeyedStateStore<i64>,
    governor::clock::DefaultClock,
>;
type Direct = RateLimiter<
    governor::state::NotKeyed,
    governor::state::InMemoryState,
    governor::clock::DefaultClock,
>;

/// Sends under the per-chat and global limits.
struct Sender {
    bot: Bot,
    token: String,
    per_chat: Keyed,
    global: Direct,
}

impl Sender {
    async fn send(&self, chat: i64, text: &str) {
        self.per_chat.until_key_ready(&chat).await;
        self.global.until_ready().await;
        let r = self
            .bot
            .send_message(ChatId(chat), text)
            .parse_mode(ParseMode::Html)
            .await;
        if let Err(e) = r {
            tracing::warn!(
                "telegram: sendMessage to {chat} failed: {}",
                redact(&e.to_string(), &self.token)
            );
        }
    }
}

/// Replies to their chat; alerts from the decision records and the feeds' health to every
/// authorised chat, coalesced and rate-limited; the daily summary.
async fn send(
    bot: Bot,
    token: String,
    cfg: TelegramConfig,
    handler: Arc<Handler>,
    port: Arc<dyn SessionPort>,
    mut replies: mpsc::UnboundedReceiver<(i64, String)>,
    mut shutdown: watch::Receiver<bool>,
) {
    let nz = |n: u32| NonZeroU32::new(n.max(1)).expect("≥ 1");
    let sender = Sender {
        bot,
        token,
        // No bursts: messages evenly spaced, within the limits over any window.
        per_chat: RateLimiter::keyed(
            Quota::per_second(nz(cfg.per_chat_per_sec)).allow_burst(nz(1)),
        ),
        global: RateLimiter::direct(Quota::per_second(nz(cfg.global_per_sec)).allow_burst(nz(1))),
    };
    let cat = &handler.cat;
    let mut records = port.subscribe();
    let mut maker = AlertMaker::new(cfg.alert_refusals);
    let mut outbox = Outbox::new(
        cfg.queue_capacity,
        Duration::from_secs_f64(cfg.coalesce_secs),
    );
    let mut feeds = FeedWatch::new(&cfg);
    let mut summary_day: Option<i64> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut health = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            Some((chat, text)) = replies.recv() => sender.send(chat, &text).await,
            r = records.recv() => match r {
                Ok(r) => maker.on_record(cat, &r).into_iter().for_each(|a| outbox.push(a, Instant::now())),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!("telegram: {n} decision records passed while the bot was behind");
                }
                Err(_) => {}
            },
            _ = health.tick() => {
                for a in feeds.check(cat, &port.status()) {
                    outbox.push(a, Instant::now());
                }
                let now = time::OffsetDateTime::now_utc();
                if let Some(a) = daily_summary(&cfg, &handler, &*port, &mut summary_day, now) {
                    outbox.push(a, Instant::now());
                }
            }
            _ = tick.tick() => {
                if let Some(text) = outbox.pop(cat, Instant::now()) {
                    for &chat in &cfg.chats {
                        sender.send(chat, &text).await;
                    }
                }
            }
        }
    }
}

/// Feed health from the session's status: a feed that disconnects, goes stale (connected, but
/// no frame for `stale_feed_secs`) or recovers, and reconnect storms.
struct FeedWatch {
    health: HashMap<String, &'static str>,
    reconnects: HashMap<String, Vec<(Instant, u64)>>,
    storm: u64,
    window: Duration,
    stale_ms: i64,
}

impl FeedWatch {
    fn new(cfg: &TelegramConfig) -> Self {
        Self {
            health: HashMap::new(),
            reconnects: HashMap::new(),
            storm: cfg.reconnect_storm,
            window: Duration::from_secs(cfg.reconnect_window_secs),
            stale_ms: (cfg.stale_feed_secs * 1000.0) as i64,
        }
    }

    /// `health_connected`, `health_stale` or `health_disconnected` (catalog keys).
    fn health_of(&self, f: &serde_json::Value, now_ms: i64) -> &'static str {
        let last = f["last_frame_ms"].as_i64().unwrap_or(0);
        match f["connected"].as_bool().unwrap_or(false) {
            false => "health_disconnected",
            true if last > 0 && now_ms - last > self.stale_ms => "health_stale",
            true => "health_connected",
        }
    }

    fn check(&mut self, cat: &super::catalog::Catalog, status: &serde_json::Value) -> Vec<Alert> {
        let mut out = Vec::new();
        let now = Instant::now();
        let now_ms = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64 / 1_000_000;
        for f in status["feeds"].as_array().into_iter().flatten() {
            let name = text(&f["venue"]);
            let health = self.health_of(f, now_ms);
            if let Some(&was) = self.health.get(&name) {
                if was != health {
                    out.push(Alert {
                        priority: Priority::High,
                        key: format!("feed {name} {health}"),
                        text: cat.fill(
                            "alert_feed",
                            &[("name", &html(&name)), ("health", cat.get(health))],
                        ),
                    });
                }
            }
            self.health.insert(name.clone(), health);
            let n = f["reconnects"].as_u64().unwrap_or(0);
            let hist = self.reconnects.entry(name.clone()).or_default();
            hist.push((now, n));
            hist.retain(|(t, _)| now.duration_since(*t) <= self.window);
            let first = hist.first().map_or(n, |h| h.1);
            if n.saturating_sub(first) >= self.storm {
                out.push(Alert {
                    priority: Priority::High,
                    key: format!("storm {name}"),
                    text: cat.fill(
                        "alert_reconnects",
                        &[
                            ("name", &html(&name)),
                            ("count", &(n - first).to_string()),
                            ("secs", &self.window.as_secs().to_string()),
                        ],
                    ),
                });
                hist.clear();
            }
        }
        out
    }
}

/// The daily summary once a UTC day, at the configured hour of `now` (the wall clock: it is a
/// message to a person, not a decision), over the last 24 h of event time.
fn daily_summary(
    cfg: &TelegramConfig,
    handler: &Handler,
    port: &dyn SessionPort,
    sent: &mut Option<i64>,
    now: time::OffsetDateTime,
) -> Option<Alert> {
    let hour = cfg.daily_summary_hour?;
    let day = now.unix_timestamp() / 86_400;
    if now.hour() != hour || *sent == Some(day) {
        return None;
    }
    *sent = Some(day);
    let recs = port.records().unwrap_or_default();
    let newest = recs.iter().map(|r| r.ts_ms).max().unwrap_or(0);
    let recent: Vec<&Record> = recs
        .iter()
        .filter(|r| r.ts_ms >= newest - 86_400_000)
        .collect();
    let count = |k: RecordKind, refused: bool| {
        recent
            .iter()
            .filter(|r| r.kind == k && (!refused || r.refused))
            .count()
            .to_string()
    };
    let entries = recent.iter().filter(|r| is_entry(r)).count();
    let (pnl, _) = realized_pnl(recent.iter().copied());
    let pos = port.positions();
    Some(Alert {
        priority: Priority::Normal,
        key: format!("summary {day}"),
        text: handler.cat.fill(
            "alert_summary",
            &[
                ("day", &crate::domain::fmt_ts(day * 86_400_000)[..10]),
                ("equity", &html(&text(&pos["equity"]))),
                ("quote", &html(&text(&pos["quote"]))),
                ("pnl", &html(&pnl.normalize().to_string())),
                ("signals", &count(RecordKind::Signal, false)),
                ("entries", &entries.to_string()),
                ("exits", &count(RecordKind::Exit, false)),
                ("refusals", &count(RecordKind::Verdict, true)),
            ],
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telegram::catalog::{Catalog, Lang};
    use crate::telegram::port::FixedPort;

    #[test]
    fn feeds_that_drop_go_stale_or_storm_raise_alerts() {
        let cat = Catalog::new(Lang::En);
        let mut w = FeedWatch::new(&TelegramConfig::default());
        let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64 / 1_000_000;
        let status = |connected: bool, last: i64, reconnects: u64| {
            serde_json::json!({"feeds": [{"venue": "bybit", "connected": connected,
                "last_frame_ms": last, "reconnects": reconnects}]})
        };
        assert!(
            w.check(&cat, &status(true, now, 0)).is_empty(),
            "first sight: no change"
        );
        let a = w.check(&cat, &status(false, now, 1));
        assert_eq!(a.len(), 1);
        assert!(a[0].text.contains("bybit is disconnected"), "{}", a[0].text);
        let a = w.check(&cat, &status(true, now - 120_000, 1));
        assert!(a[0].text.contains("stale"), "{}", a[0].text);
        let a = w.check(&cat, &status(true, now, 1));
        assert!(a[0].text.contains("connected ✅"), "{}", a[0].text);
        let a = w.check(&cat, &status(true, now, 6));
        assert!(
            a.iter().any(|x| x.text.contains("reconnected 6 times")),
            "{a:?}"
        );
        let pl = Catalog::new(Lang::Pl);
        let a = w.check(&pl, &status(false, now, 6));
        assert!(a[0].text.contains("rozłączone"), "{}", a[0].text);
    }

    #[test]
    fn the_daily_summary_comes_once_at_its_hour() {
        let rec = |id: &str, kind: RecordKind, refused: bool, detail: serde_json::Value| {
            let mut r = Record::new(id.into(), kind, 1_000_000, "PEPE/USDT");
            r.refused = refused;
            r.detail = detail;
            r
        };
        let records = vec![
            rec("sig-1", RecordKind::Signal, false, serde_json::json!({})),
            rec(
                "ord-1",
                RecordKind::Order,
                false,
                serde_json::json!({"event": "new", "purpose": "entry"}),
            ),
            rec("ver-2", RecordKind::Verdict, true, serde_json::json!({})),
            rec(
                "exi-1",
                RecordKind::Exit,
                false,
                serde_json::json!({"pnl": "12.5"}),
            ),
        ];
        let port: Arc<dyn SessionPort> = Arc::new(FixedPort {
            status: serde_json::json!({}),
            positions: serde_json::json!({"equity": "10012.5", "quote": "USDT"}),
            records,
        });
        let cfg = TelegramConfig {
            daily_summary_hour: Some(20),
            ..Default::default()
        };
        let h = Handler::new(cfg.clone(), port.clone(), "paper");
        let at = |h: u8| {
            time::macros::datetime!(2026-12-02 00:00 UTC)
                .replace_hour(h)
                .unwrap()
        };
        let mut sent = None;
        assert!(daily_summary(&cfg, &h, &*port, &mut sent, at(19)).is_none());
        let a = daily_summary(&cfg, &h, &*port, &mut sent, at(20)).unwrap();
        for w in [
            "2026-12-02",
            "10012.5",
            "PnL 12.5",
            "signals 1",
            "entries 1",
            "exits 1",
            "refusals 1",
        ] {
            assert!(a.text.contains(w), "{w}: {}", a.text);
        }
        assert!(
            daily_summary(&cfg, &h, &*port, &mut sent, at(20)).is_none(),
            "once a day"
        );
    }
}
