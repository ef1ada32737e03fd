//! `[telegram]` config. The bot token never appears here: it comes from the environment only
//! ([`TOKEN_ENV`]).

use super::catalog::Lang;
use serde::{Deserialize, Serialize};

/// Environment variable holding the bot token; the bot starts only when it is set.
pub const TOKEN_ENV: &str = "TELEGRAM_BOT_TOKEN";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelegramConfig {
    /// Bot API base URL (tests point it at 127.0.0.1).
    pub api_url: String,
    /// Chat ids that may command the bot and receive alerts.
    pub chats: Vec<i64>,
    /// When not empty, only these user ids (inside the allowed chats) may command it.
    pub users: Vec<u64>,
    pub language: Lang,
    /// Push refused verdicts as alerts.
    pub alert_refusals: bool,
    /// UTC hour (0–23) of the daily summary; none when absent.
    pub daily_summary_hour: Option<u8>,
    /// Identical alerts within this many seconds become one message ("×N").
    pub coalesce_secs: f64,
    /// Alerts waiting to be sent; past it the least important are dropped (and counted).
    pub queue_capacity: usize,
    /// Seconds a `/flatten` waits for its `/confirm`.
    pub confirm_timeout_secs: u64,
    /// Long-polling timeout of `getUpdates`, seconds.
    pub poll_timeout_secs: u32,
    /// Messages per second to one chat, and overall (Telegram's limits: about 1 and 30).
    pub per_chat_per_sec: u32,
    pub global_per_sec: u32,
    /// A feed reconnecting this many times within `reconnect_window_secs` is a storm (alert).
    pub reconnect_storm: u64,
    pub reconnect_window_secs: u64,
    /// A connected feed without a frame for this many seconds is stale (alert).
    pub stale_feed_secs: f64,
}

impl Default for TelegramConfig {
    fn default() -> Self {
        Self {
            api_url: "https://api.telegram.org".into(),
            chats: vec![],
            users: vec![],
            language: Lang::En,
            alert_refusals: true,
            daily_summary_hour: None,
            coalesce_secs: 10.0,
            queue_capacity: 200,
            confirm_timeout_secs: 60,
            poll_timeout_secs: 25,
            per_chat_per_sec: 1,
            global_per_sec: 30,
            reconnect_storm: 5,
            reconnect_window_secs: 300,
            stale_feed_secs: 60.0,
        }
    }
}

impl TelegramConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(self.api_url.starts_with("http://") || self.api_url.starts_with("https://")) {
            return Err("telegram.api_url: must start with http:// or https://".into());
        }
        if self.daily_summary_hour.is_some_and(|h| h > 23) {
            return Err("telegram.daily_summary_hour: must be within 0..=23".into());
        }
        if !(self.coalesce_secs.is_finite() && (0.0..=3600.0).contains(&self.coalesce_secs)) {
            return Err("telegram.coalesce_secs: must be within 0..=3600".into());
        }
        if self.queue_capacity == 0 {
            return Err("telegram.queue_capacity: must be ≥ 1".into());
        }
        if !(1..=3600).contains(&self.confirm_timeout_secs) {
            return Err("telegram.confirm_timeout_secs: must be within 1..=3600".into());
        }
        if self.poll_timeout_secs > 50 {
            return Err("telegram.poll_timeout_secs: must be ≤ 50".into());
        }
        if !(self.stale_feed_secs.is_finite() && self.stale_feed_secs > 0.0) {
            return Err("telegram.stale_feed_secs: must be > 0".into());
        }
        if self.per_chat_per_sec == 0 || self.global_per_sec == 0 {
            return Err("telegram.per_chat_per_sec, global_per_sec: must be ≥ 1".into());
        }
        Ok(())
    }
}
