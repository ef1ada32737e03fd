//! Telegram: the owner steers a running session (status, pause, resume, halt, flatten, limits,
//! why) and is told what matters (entries, exits, refusals, trading-state changes, feed trouble,
//! a daily summary), in English or Polish. Nobody else can: only the chats (and users) listed in
//! `[telegram]` may command it.
//!
//! The bot ([teloxide](https://docs.rs/teloxide) 0.17) starts with `paper` when
//! `TELEGRAM_BOT_TOKEN` is set; the token is read from the environment only and never logged,
//! stored or shown in an error. Commands go through the session's command stream like the
//! control API's, so each is a decision-log record naming its sender.

pub mod alerts;
pub mod bot;
pub mod catalog;
pub mod config;
pub mod handler;
pub mod port;
pub mod render;

pub use config::{TelegramConfig, TOKEN_ENV};

use std::sync::Arc;
use tokio::sync::watch;

/// Starts the bot on the current runtime when the token is set; `mode` names the session in
/// `/status`. A bot that cannot start is a warning, never an error of the session: returns
/// whether it started.
pub fn start(
    cfg: &TelegramConfig,
    port: Arc<dyn port::SessionPort>,
    mode: &str,
    shutdown: watch::Receiver<bool>,
) -> bool {
    let Some(token) = std::env::var(TOKEN_ENV)
        .ok()
        .filter(|t| !t.trim().is_empty())
    else {
        return false;
    };
    let url = match reqwest_url(&cfg.api_url) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("warning: Telegram bot not started: telegram.api_url {e}");
            return false;
        }
    };
    if cfg.chats.is_empty() {
        eprintln!(
            "warning: Telegram bot started without telegram.chats: it will refuse every chat"
        );
    }
    let bot = teloxide::Bot::new(token.clone()).set_api_url(url);
    let handler = Arc::new(handler::Handler::new(cfg.clone(), port.clone(), mode));
    bot::spawn(bot, token, cfg.clone(), handler, port, shutdown);
    eprintln!(
        "Telegram bot started ({} authorised chats, language {:?})",
        cfg.chats.len(),
        cfg.language
    );
    true
}

fn reqwest_url(s: &str) -> Result<url::Url, String> {
    s.parse().map_err(|e| format!("{s:?}: {e}"))
}
