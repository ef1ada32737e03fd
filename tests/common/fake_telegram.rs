//! A fake Telegram Bot API on 127.0.0.1 (axum): `getUpdates` serves the updates a test pushes
//! (long polling, by offset), `sendMessage` records every message with its arrival time. The
//! update and message JSON follow the Bot API's documented shapes (hand-written fixtures, not
//! recordings: no Bot API capture exists in ../shared/data).

use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One message the bot sent.
#[derive(Clone, Debug)]
pub struct Sent {
    pub chat: i64,
    pub text: String,
    pub parse_mode: Option<String>,
    pub at: Instant,
}

#[derive(Default)]
pub struct Inner {
    updates: Vec<Value>,
    pub sent: Vec<Sent>,
    /// Every request path (holds the token, as the real API's URLs do).
    pub paths: Vec<String>,
    next_update: i64,
}

#[derive(Clone, Default)]
pub struct FakeTelegram {
    pub inner: Arc<Mutex<Inner>>,
}

impl FakeTelegram {
    /// A text message from `user` in private chat `chat`, as Telegram sends it.
    pub fn push_text(&self, chat: i64, user: u64, text: &str) {
        let mut g = self.inner.lock().unwrap();
        g.next_update += 1;
        let n = g.next_update;
        let id = 800_000 + n;
        let cmd_len = text.split_whitespace().next().map_or(0, str::len);
        g.updates.push(json!({
            "update_id": id,
            "message": {
                "message_id": 1000 + n,
                "from": {"id": user, "is_bot": false, "first_name": "Ola", "language_code": "pl"},
                "chat": {"id": chat, "first_name": "Ola", "type": "private"},
                "date": 1_764_633_600 + n,
                "text": text,
                "entities": [{"offset": 0, "length": cmd_len, "type": "bot_command"}]
            }
        }));
    }

    pub fn sent(&self) -> Vec<Sent> {
        self.inner.lock().unwrap().sent.clone()
    }

    /// Waits until a message to `chat` satisfies `f` (up to `secs`); returns it.
    pub fn wait_for(&self, chat: i64, secs: f64, f: impl Fn(&str) -> bool) -> Option<Sent> {
        let until = Instant::now() + Duration::from_secs_f64(secs);
        while Instant::now() < until {
            if let Some(s) = self
                .sent()
                .into_iter()
                .find(|s| s.chat == chat && f(&s.text))
            {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

async fn method(
    State(t): State<FakeTelegram>,
    Path((bot, name)): Path<(String, String)>,
    body: Option<Json<Value>>,
) -> Json<Value> {
    let body = body.map(|b| b.0).unwrap_or(Value::Null);
    t.inner.lock().unwrap().paths.push(format!("/{bot}/{name}"));
    // Method names are case-insensitive (teloxide sends `GetUpdates`).
    match name.to_ascii_lowercase().as_str() {
        "getupdates" => {
            let offset = body["offset"].as_i64().unwrap_or(0);
            // Long polling, shortened: answer as soon as there is something, or after 300 ms.
            for _ in 0..15 {
                let got: Vec<Value> = {
                    let g = t.inner.lock().unwrap();
                    g.updates
                        .iter()
                        .filter(|u| u["update_id"].as_i64().unwrap_or(0) >= offset)
                        .cloned()
                        .collect()
                };
                if !got.is_empty() {
                    return Json(json!({"ok": true, "result": got}));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Json(json!({"ok": true, "result": []}))
        }
        "sendmessage" => {
            let chat = body["chat_id"].as_i64().unwrap_or(0);
            let text = body["text"].as_str().unwrap_or("").to_string();
            let mut g = t.inner.lock().unwrap();
            g.sent.push(Sent {
                chat,
                text: text.clone(),
                parse_mode: body["parse_mode"].as_str().map(String::from),
                at: Instant::now(),
            });
            let n = g.sent.len();
            Json(json!({"ok": true, "result": {
                "message_id": n,
                "date": 1_764_633_600,
                "chat": {"id": chat, "first_name": "Ola", "type": "private"},
                "text": text
            }}))
        }
        _ => Json(
            json!({"ok": false, "error_code": 404, "description": "Not Found: method not found"}),
        ),
    }
}

/// Serves on 127.0.0.1 on a runtime of its own thread; returns the API base URL.
pub fn start() -> (FakeTelegram, String) {
    let t = FakeTelegram::default();
    let (tx, rx) = std::sync::mpsc::channel();
    let state = t.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(l.local_addr().unwrap()).unwrap();
            let app = Router::new()
                .route("/{bot}/{name}", post(method))
                .with_state(state);
            axum::serve(l, app).await.unwrap();
        });
    });
    let addr = rx.recv().unwrap();
    (t, format!("http://{addr}"))
}
