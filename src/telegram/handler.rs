//! What the bot answers to a message: authorisation, the commands, and the `/flatten`
//! confirmation. Every command that changes something goes into the session's command stream
//! (the same one the control API uses) with the sender named as its source, so it is a
//! decision-log record; so is an attempt from a chat that may not command the bot.

use super::catalog::{html, Catalog};
use super::config::TelegramConfig;
use super::port::SessionPort;
use super::render;
use crate::domain::command::Command;
use crate::store::{Record, RecordKind};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a command waits for its decision record before the bot says it failed.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(15);

/// A `/flatten` waiting for its `/confirm`.
struct Pending {
    code: String,
    instrument: Option<String>,
    deadline: Instant,
}

pub struct Handler {
    pub(super) cat: Catalog,
    cfg: TelegramConfig,
    port: Arc<dyn SessionPort>,
    mode: String,
    started: Instant,
    pending: Mutex<HashMap<i64, Pending>>,
    refused_chats: Mutex<HashSet<i64>>,
}

impl Handler {
    /// `mode` names the session (`paper`, `live testnet`, …) in `/status`.
    pub fn new(cfg: TelegramConfig, port: Arc<dyn SessionPort>, mode: &str) -> Self {
        Self {
            cat: Catalog::new(cfg.language),
            cfg,
            port,
            mode: mode.to_string(),
            started: Instant::now(),
            pending: Mutex::new(HashMap::new()),
            refused_chats: Mutex::new(HashSet::new()),
        }
    }

    /// Whether `chat` (and `user`, when users are listed) may command the bot.
    pub fn authorized(&self, chat: i64, user: Option<u64>) -> bool {
        self.cfg.chats.contains(&chat)
            && (self.cfg.users.is_empty() || user.is_some_and(|u| self.cfg.users.contains(&u)))
    }

    /// The replies to one text message (HTML), in order; empty when nothing is to be said.
    pub async fn on_text(&self, chat: i64, user: Option<u64>, text: &str) -> Vec<String> {
        let text = text.trim();
        if !text.starts_with('/') {
            return vec![];
        }
        if !self.authorized(chat, user) {
            return self.refuse(chat, user, text).await;
        }
        let mut words = text.split_whitespace();
        // `/cmd@botname` in groups.
        let cmd = words
            .next()
            .unwrap_or("")
            .split('@')
            .next()
            .unwrap_or("")
            .to_lowercase();
        let args: Vec<&str> = words.collect();
        let source = source_of(chat, user);
        let reply = match (cmd.as_str(), args.as_slice()) {
            ("/help" | "/start", _) => self.cat.get("help").to_string(),
            ("/status", _) => self.status(),
            ("/positions", _) => self.positions(),
            ("/pnl", a) => self.pnl(a.first().copied().unwrap_or("day")),
            ("/limits", _) => self.limits(),
            ("/signals", a) => self.signals(a.first().and_then(|n| n.parse().ok()).unwrap_or(5)),
            ("/why", [what]) => self.why(what),
            ("/why", _) => self.cat.get("usage_why").to_string(),
            ("/pause", []) => self.command(Command::Pause, "pause", &source).await,
            ("/resume", []) => self.command(Command::Resume, "resume", &source).await,
            ("/halt", []) => self.command(Command::Halt, "halt", &source).await,
            ("/flatten", a) => self.ask_flatten(chat, a.first().copied()),
            ("/confirm", [code]) => self.confirm(chat, code, &source).await,
            ("/set", [limit, value]) => {
                let c = Command::Set {
                    limit: limit.to_string(),
                    value: value.to_string(),
                };
                self.command(c, &format!("set {limit} {value}"), &source)
                    .await
            }
            ("/set", _) => self.cat.get("usage_set").to_string(),
            (other, _) => self.cat.fill("unknown", &[("command", &html(other))]),
        };
        vec![reply]
    }

    /// Logs the attempt through the command stream (refused there, changes nothing) and answers
    /// the chat once per session.
    async fn refuse(&self, chat: i64, user: Option<u64>, text: &str) -> Vec<String> {
        let c = Command::Unauthorized {
            text: text.chars().take(200).collect(),
        };
        match self.port.submit(c, &source_of(chat, user)) {
            Ok(rx) => {
                let _ = tokio::time::timeout(ANSWER_TIMEOUT, rx).await;
            }
            Err(e) => tracing::warn!("telegram: could not log an unauthorized attempt: {e}"),
        }
        tracing::warn!(chat, "telegram: command from a chat that is not authorised");
        if self
            .refused_chats
            .lock()
            .expect("not poisoned")
            .insert(chat)
        {
            vec![self.cat.get("unauthorized").to_string()]
        } else {
            vec![]
        }
    }

    /// Sends `c` and answers from its decision record.
    async fn command(&self, c: Command, label: &str, source: &str) -> String {
        let label = html(label);
        let rx = match self.port.submit(c, source) {
            Ok(rx) => rx,
            Err(e) => {
                return self
                    .cat
                    .fill("failed", &[("command", &label), ("reason", &html(&e))])
            }
        };
        let r = match tokio::time::timeout(ANSWER_TIMEOUT, rx).await {
            Ok(Ok(r)) => r,
            _ => {
                let why = "no answer from the session";
                return self
                    .cat
                    .fill("failed", &[("command", &label), ("reason", why)]);
            }
        };
        let d = &r.detail;
        let s = |k: &str| d[k].as_str().unwrap_or("").to_string();
        if r.refused {
            self.cat.fill(
                "refused",
                &[("command", &label), ("reason", &html(&s("reason")))],
            )
        } else {
            self.cat.fill(
                "applied",
                &[("command", &label), ("state", &html(&s("trading_state")))],
            )
        }
    }

    fn ask_flatten(&self, chat: i64, what: Option<&str>) -> String {
        let instrument = what
            .filter(|w| !w.eq_ignore_ascii_case("all"))
            .map(str::to_uppercase);
        let code = format!("{:06}", rand::random::<u32>() % 1_000_000);
        let secs = self.cfg.confirm_timeout_secs;
        let what = match &instrument {
            Some(i) => html(i),
            None => self.cat.get("flatten_all").to_string(),
        };
        self.pending.lock().expect("not poisoned").insert(
            chat,
            Pending {
                code: code.clone(),
                instrument,
                deadline: Instant::now() + Duration::from_secs(secs),
            },
        );
        self.cat.fill(
            "confirm_flatten",
            &[
                ("what", &what),
                ("code", &code),
                ("secs", &secs.to_string()),
            ],
        )
    }

    async fn confirm(&self, chat: i64, code: &str, source: &str) -> String {
        let p = {
            let mut pending = self.pending.lock().expect("not poisoned");
            match pending.get(&chat) {
                Some(p) if p.deadline < Instant::now() => {
                    pending.remove(&chat);
                    None
                }
                Some(p) if p.code != code => return self.cat.get("confirm_wrong").to_string(),
                Some(_) => pending.remove(&chat),
                None => None,
            }
        };
        let Some(p) = p else {
            return self.cat.get("confirm_expired").to_string();
        };
        let label = format!("flatten {}", p.instrument.as_deref().unwrap_or("all"));
        let c = Command::Flatten {
            instrument: p.instrument,
        };
        self.command(c, &label, source).await
    }

    fn status(&self) -> String {
        let st = self.port.status();
        if st.get("trading_state").is_none() {
            return self.cat.get("no_status").to_string();
        }
        let pos = self.port.positions();
        let positions = pos["positions"].as_array().map_or(0, Vec::len)
            + pos["perps"].as_array().map_or(0, Vec::len);
        let feeds: Vec<String> = st["feeds"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| {
                let health = if f["connected"].as_bool().unwrap_or(false) {
                    "✅"
                } else {
                    "❌"
                };
                self.cat.fill(
                    "feed",
                    &[
                        ("name", &html(f["venue"].as_str().unwrap_or("?"))),
                        ("health", health),
                    ],
                )
            })
            .collect();
        let up = self.started.elapsed().as_secs();
        let blocked = st["entries_blocked"].as_str().map(|why| {
            let line = self.cat.fill("entries_blocked", &[("why", &html(why))]);
            format!("\n{line}")
        });
        let status = self.cat.fill(
            "status",
            &[
                ("mode", &html(&self.mode)),
                ("state", &html(&text(&st["trading_state"]))),
                ("equity", &html(&text(&pos["equity"]))),
                ("quote", &html(&text(&pos["quote"]))),
                ("positions", &positions.to_string()),
                ("feeds", &feeds.join(", ")),
                ("uptime", &format!("{}h{:02}m", up / 3600, up / 60 % 60)),
            ],
        );
        status + &blocked.unwrap_or_default()
    }

    fn positions(&self) -> String {
        let pos = self.port.positions();
        let mut lines = Vec::new();
        for p in pos["positions"].as_array().into_iter().flatten() {
            lines.push(self.cat.fill(
                "position",
                &[
                    ("instrument", &html(&text(&p["instrument"]))),
                    ("side", "long"),
                    ("qty", &html(&text(&p["qty"]))),
                    ("entry", &html(&text(&p["avg_entry_price"]))),
                    ("upnl", "-"),
                ],
            ));
        }
        for p in pos["perps"].as_array().into_iter().flatten() {
            let long = !text(&p["qty"]).starts_with('-');
            lines.push(self.cat.fill(
                "position",
                &[
                    ("instrument", &html(&text(&p["instrument"]))),
                    ("side", if long { "long" } else { "short" }),
                    ("qty", &html(&text(&p["qty"]))),
                    ("entry", &html(&text(&p["entry_price"]))),
                    ("upnl", &html(&text(&p["unrealized_pnl"]))),
                ],
            ));
        }
        if lines.is_empty() {
            return self.cat.get("positions_none").to_string();
        }
        lines.join("\n")
    }

    /// Realized PnL of the exits in the period, ending at the newest record's event time (the
    /// session's clock).
    fn pnl(&self, period: &str) -> String {
        let recs = self.port.records().unwrap_or_default();
        let now = recs.iter().map(|r| r.ts_ms).max().unwrap_or(0);
        let (key, from) = match period {
            "week" => ("period_week", now - 7 * 86_400_000),
            "all" => ("period_all", i64::MIN),
            _ => ("period_day", now - 86_400_000),
        };
        let (pnl, trades) = super::alerts::realized_pnl(recs.iter().filter(|r| r.ts_ms >= from));
        let quote = text(&self.port.positions()["quote"]);
        self.cat.fill(
            "pnl",
            &[
                ("period", self.cat.get(key)),
                ("pnl", &html(&pnl.normalize().to_string())),
                ("quote", &html(&quote)),
                ("trades", &trades.to_string()),
            ],
        )
    }

    fn limits(&self) -> String {
        let st = self.port.status();
        let mut lines = vec![self.cat.get("limits_header").to_string()];
        for (k, v) in st["limits"].as_object().into_iter().flatten() {
            lines.push(
                self.cat
                    .fill("limit", &[("name", &html(k)), ("value", &html(&text(v)))]),
            );
        }
        lines.join("\n")
    }

    fn signals(&self, n: usize) -> String {
        let recs = self.port.records().unwrap_or_default();
        let sigs: Vec<&Record> = recs
            .iter()
            .filter(|r| r.kind == RecordKind::Signal)
            .collect();
        if sigs.is_empty() {
            return self.cat.get("signals_none").to_string();
        }
        sigs[sigs.len().saturating_sub(n.clamp(1, 50))..]
            .iter()
            .map(|r| render::signal_line(&self.cat, r))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The decision chain of a record id, or of an instrument's latest signal.
    fn why(&self, what: &str) -> String {
        let recs = self.port.records().unwrap_or_default();
        let root = match self.port.record(what).ok().flatten() {
            Some(r) => r.signal_id.clone().or(Some(r.id)),
            None => recs
                .iter()
                .rev()
                .find(|r| r.kind == RecordKind::Signal && r.instrument.eq_ignore_ascii_case(what))
                .map(|r| r.id.clone()),
        };
        let Some(root) = root else {
            return self.cat.fill("why_none", &[("what", &html(what))]);
        };
        let chain: Vec<&Record> = recs
            .iter()
            .filter(|r| r.signal_id.as_deref() == Some(root.as_str()) || r.id == root)
            .collect();
        render::why(&self.cat, &chain)
    }
}

/// Who sent a command, as its decision record names it.
pub fn source_of(chat: i64, user: Option<u64>) -> String {
    match user {
        Some(u) => format!("telegram chat {chat} user {u}"),
        None => format!("telegram chat {chat}"),
    }
}

/// A JSON value as plain text (strings without quotes).
pub(super) fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".into(),
        v => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telegram::port::FixedPort;

    #[tokio::test]
    async fn status_says_why_entries_are_blocked() {
        let cfg = TelegramConfig {
            chats: vec![7],
            ..Default::default()
        };
        // A live session whose venue reconciliation blocks entries.
        let blocked = FixedPort {
            status: serde_json::json!({"trading_state": "active", "feeds": [],
                "entries_blocked": "BTC: smartflow's fills add up to 0.01, the venue reports 0 <x>"}),
            positions: serde_json::json!({"equity": "1000", "quote": "USDC"}),
            records: vec![],
        };
        let h = Handler::new(cfg, Arc::new(blocked), "live testnet");
        let r = h.on_text(7, Some(1), "/status").await;
        assert!(r[0].contains("<b>live testnet</b>"), "{}", r[0]);
        assert!(
            r[0].contains("⛔ entries blocked: BTC: smartflow's fills add up to 0.01, the venue reports 0 &lt;x&gt;"),
            "{}",
            r[0]
        );
        crate::telegram::catalog::check_html(&r[0]).unwrap();
    }
}
