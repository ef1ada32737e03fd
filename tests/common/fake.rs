//! Fake venue servers on 127.0.0.1 that replay real captured frames.

use futures_util::{SinkExt, StreamExt};
use std::io::BufRead;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

/// What one connection does after its frames.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum After {
    /// Keep the socket open and answer pings (the normal case).
    Idle,
    /// Drop the TCP connection without a close frame.
    Drop,
    /// Keep the socket open but send nothing, not even pongs (a stall).
    Stall,
}

/// Script for each successive connection (the last one repeats).
#[derive(Clone, Debug)]
pub struct Script {
    pub frames: Vec<String>,
    /// How many frames this connection sends (from the start of `frames`).
    pub count: usize,
    pub after: After,
    /// Frame indexes not to send (to make a sequence gap).
    pub skip: Vec<usize>,
    /// Junk frames sent after every `junk_every` frames.
    pub junk_every: Option<usize>,
    /// Pause between frames (default: bursts of 50 frames per millisecond).
    pub pace: Option<Duration>,
}

impl Script {
    /// Sends `frames` once, then stays open answering pings.
    pub fn all(frames: Vec<String>) -> Self {
        let count = frames.len();
        Script {
            frames,
            count,
            after: After::Idle,
            skip: vec![],
            junk_every: None,
            pace: None,
        }
    }
}

#[derive(Default)]
pub struct Seen {
    /// Text frames received, per connection.
    pub received: Vec<Vec<String>>,
    pub junk_sent: usize,
}

pub struct FakeWs {
    pub url: String,
    pub seen: Arc<Mutex<Seen>>,
}

pub const JUNK: &[&str] = &[
    "{not json",
    "[]",
    "{\"topic\":\"publicTrade.BTCUSDT\",\"data\":[{\"T\":\"x\"}]}",
];

/// Starts a websocket server following `scripts` (connection k uses scripts[min(k, len-1)]).
pub async fn start_ws(scripts: Vec<Script>) -> FakeWs {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Seen::default()));
    let s2 = seen.clone();
    tokio::spawn(async move {
        let mut k = 0;
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let script = scripts[k.min(scripts.len() - 1)].clone();
            let conn = {
                let mut s = s2.lock().unwrap();
                s.received.push(Vec::new());
                s.received.len() - 1
            };
            k += 1;
            let seen = s2.clone();
            tokio::spawn(async move {
                let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                let (mut tx, mut rx) = ws.split();
                // Wait for the subscriptions first, like a venue.
                let first = tokio::time::timeout(Duration::from_secs(2), rx.next()).await;
                if let Ok(Some(Ok(Message::Text(t)))) = first {
                    seen.lock().unwrap().received[conn].push(t.to_string());
                }
                let (ping_tx, mut ping_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
                let seen_r = seen.clone();
                let stall = script.after == After::Stall;
                let reader = tokio::spawn(async move {
                    while let Some(Ok(m)) = rx.next().await {
                        if let Message::Text(t) = m {
                            let t = t.to_string();
                            seen_r.lock().unwrap().received[conn].push(t.clone());
                            if !stall {
                                if t.contains("\"method\":\"ping\"") {
                                    let _ = ping_tx.send("{\"channel\":\"pong\"}".into());
                                } else if t.contains("\"op\":\"ping\"") {
                                    let _ = ping_tx.send(
                                        "{\"success\":true,\"ret_msg\":\"pong\",\"op\":\"ping\"}"
                                            .into(),
                                    );
                                }
                            }
                        }
                    }
                });
                for (i, f) in script.frames.iter().take(script.count).enumerate() {
                    if script.skip.contains(&i) {
                        continue;
                    }
                    if tx.send(Message::text(f.clone())).await.is_err() {
                        return;
                    }
                    if let Some(n) = script.junk_every {
                        if i % n == n - 1 {
                            let j = JUNK[(i / n) % JUNK.len()];
                            seen.lock().unwrap().junk_sent += 1;
                            let _ = tx.send(Message::text(j)).await;
                        }
                    }
                    match script.pace {
                        Some(p) => tokio::time::sleep(p).await,
                        None if i % 50 == 49 => tokio::time::sleep(Duration::from_millis(1)).await,
                        None => {}
                    }
                }
                match script.after {
                    After::Drop => {
                        // Drop both halves: the TCP connection closes without a close frame.
                        reader.abort();
                        let _ = reader.await;
                        drop(tx);
                    }
                    After::Stall => tokio::time::sleep(Duration::from_secs(3600)).await,
                    After::Idle => {
                        while let Some(p) = ping_rx.recv().await {
                            if tx.send(Message::text(p)).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    FakeWs { url, seen }
}

/// Received frames of one connection of a cryptofeed v3 capture (`BYBIT_v3_2026.jsonl.gz`).
pub fn v3_frames(path: &Path, conn: &str) -> Vec<String> {
    smartflow::feeds::open_reader(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(&l.unwrap()).unwrap())
        .filter(|r| r["t"] == "recv" && r["conn"] == conn)
        .map(|r| r["data"].as_str().unwrap().to_string())
        .collect()
}

/// Received frames of a cryptofeed v1 capture (`BINANCE.ws.1.0.txt.gz`).
pub fn v1_frames(path: &Path) -> Vec<String> {
    smartflow::feeds::open_reader(path)
        .unwrap()
        .lines()
        .map(|l| l.unwrap())
        .filter(|l| !l.contains(" <-> ") && !l.contains(" <- "))
        .filter_map(|l| l.split_once(": ").map(|(_, j)| j.to_string()))
        .collect()
}

/// Hyperliquid frames: the recorded BTC trades (with users) as `trades` messages, and the
/// recorded DYDX `l2Book` as a book message.
pub fn hyperliquid_frames(data: &Path) -> Vec<String> {
    let raw = std::fs::read_to_string(
        data.join("hyperliquid/praanaavvv_liquidity_console/ws_trades_BTC.json"),
    )
    .unwrap();
    let items: Vec<serde_json::Value> = serde_json::from_str(&raw).unwrap();
    let l2: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            data.join("hyperliquid/python_sdk_cassettes/json/test_get_l2_snapshot_1.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut book = l2["response"].clone();
    book["time"] = serde_json::json!(1790231124000i64);
    book["coin"] = serde_json::json!("BTC");
    let mut frames = vec![
        serde_json::json!({"channel": "subscriptionResponse", "data": {"method": "subscribe"}})
            .to_string(),
        serde_json::json!({"channel": "l2Book", "data": book}).to_string(),
    ];
    for c in items.chunks(5) {
        frames.push(serde_json::json!({"channel": "trades", "data": c}).to_string());
    }
    frames
}

/// The recorded Hyperliquid trades served as a websocket feed (20 ms a frame) from a thread of
/// its own; returns the feed's URL.
pub fn hyperliquid_feed(data: std::path::PathBuf) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut s = Script::all(hyperliquid_frames(&data));
            s.pace = Some(Duration::from_millis(20));
            let srv = start_ws(vec![s]).await;
            tx.send(srv.url.clone()).unwrap();
            std::future::pending::<()>().await;
        });
    });
    rx.recv().unwrap()
}
