//! A Bybit-like venue on 127.0.0.1 that serves the real recorded Bybit frames (trades and
//! `orderbook` snapshot + deltas of BTCUSDT and ETHUSDT, re-timed to now, update ids
//! renumbered) and misbehaves on a schedule: one fault after every `every` of normal frames,
//! cycling through [`FAULTS`]. Counts what it injected.

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// The faults, in the order they are injected.
pub const FAULTS: &[&str] = &[
    "garbage",
    "truncated",
    "duplicate_seq",
    "out_of_order_seq",
    "far_future_ts",
    "slow_bytes",
    "frame_50mb",
    "stall",
    "drop",
];

pub struct FaultVenue {
    pub url: String,
    /// Faults injected, by kind.
    pub injected: Arc<Mutex<BTreeMap<&'static str, u64>>>,
    pub connections: Arc<AtomicUsize>,
}

/// The recorded BTCUSDT/ETHUSDT trade and book frames of the Bybit capture, in order.
pub fn bybit_frames(data: &Path) -> Vec<Value> {
    let path = data.join("cryptofeed_ws_captures/BYBIT_v3_2026.jsonl.gz");
    let mut out = Vec::new();
    for conn in ["BYBIT.ws.3", "BYBIT.ws.2"] {
        for f in super::fake::v3_frames(&path, conn) {
            let v: Value = serde_json::from_str(&f).unwrap();
            let topic = v["topic"].as_str().unwrap_or("");
            let sym = topic.rsplit('.').next().unwrap_or("");
            let book = topic.starts_with("orderbook.") && conn == "BYBIT.ws.3";
            if (book || topic.starts_with("publicTrade.")) && ["BTCUSDT", "ETHUSDT"].contains(&sym)
            {
                out.push(v);
            }
        }
    }
    out
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Serving state of one connection: book sequence per symbol, the recorded snapshots.
struct Conn {
    frames: Arc<Vec<Value>>,
    next: usize,
    seq: HashMap<String, u64>,
    last_delta: Option<Value>,
    subscribed: bool,
    /// Books re-subscribed after a gap: their snapshot comes this much later (a real venue's
    /// snapshot takes time; trades go on meanwhile).
    due: Vec<(String, tokio::time::Instant)>,
}

impl Conn {
    fn snapshot(&mut self, sym: &str) -> Option<String> {
        let snap = self.frames.iter().find(|f| {
            f["type"] == "snapshot"
                && f["topic"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("orderbook.") && t.ends_with(sym))
        })?;
        let mut s = snap.clone();
        self.seq.insert(sym.to_string(), 1000);
        s["data"]["u"] = 1000.into();
        s["ts"] = now_ms().into();
        Some(s.to_string())
    }

    /// The next recorded trade or book delta, re-timed and renumbered.
    fn next_frame(&mut self) -> Value {
        loop {
            let mut f = self.frames[self.next % self.frames.len()].clone();
            self.next += 1;
            let now = now_ms();
            f["ts"] = now.into();
            let topic = f["topic"].as_str().unwrap_or("").to_string();
            if topic.starts_with("publicTrade.") {
                for t in f["data"].as_array_mut().unwrap() {
                    t["T"] = now.into();
                }
                return f;
            }
            if f["type"] == "delta" {
                let sym = topic.rsplit('.').next().unwrap().to_string();
                let Some(u) = self.seq.get_mut(&sym) else {
                    continue; // no snapshot sent yet
                };
                *u += 1;
                f["data"]["u"] = (*u).into();
                self.last_delta = Some(f.clone());
                return f;
            }
        }
    }
}

/// Starts the venue: after every `every` normal frames (one per `pace`), the next fault.
pub async fn start(data: &Path, every: usize, pace: Duration) -> FaultVenue {
    let frames = Arc::new(bybit_frames(data));
    assert!(frames.len() > 100, "bybit frames: {}", frames.len());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let injected = Arc::new(Mutex::new(BTreeMap::new()));
    let connections = Arc::new(AtomicUsize::new(0));
    let fault_no = Arc::new(AtomicUsize::new(0));
    let (inj, conns) = (injected.clone(), connections.clone());
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            conns.fetch_add(1, Ordering::Relaxed);
            let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else {
                continue;
            };
            let conn = Conn {
                frames: frames.clone(),
                next: 0,
                seq: HashMap::new(),
                last_delta: None,
                subscribed: false,
                due: Vec::new(),
            };
            tokio::spawn(serve(ws, conn, every, pace, fault_no.clone(), inj.clone()));
        }
    });
    FaultVenue {
        url,
        injected,
        connections,
    }
}

type Ws = WebSocketStream<tokio::net::TcpStream>;

/// Answers pings and subscriptions (with a fresh book snapshot per `orderbook` topic).
async fn answer(ws: &mut Ws, conn: &mut Conn, text: &str) -> bool {
    let v: Value = serde_json::from_str(text).unwrap_or_default();
    let mut out = Vec::new();
    match v["op"].as_str() {
        Some("ping") => out.push(r#"{"success":true,"ret_msg":"pong","op":"ping"}"#.to_string()),
        Some("subscribe") => {
            out.push(r#"{"success":true,"ret_msg":"","op":"subscribe"}"#.to_string());
            for t in v["args"].as_array().into_iter().flatten() {
                let t = t.as_str().unwrap_or("");
                let sym = t.rsplit('.').next().unwrap().to_string();
                match (t.starts_with("orderbook."), conn.subscribed) {
                    (true, false) => out.extend(conn.snapshot(&sym)),
                    (true, true) => {
                        conn.seq.remove(&sym);
                        let at = tokio::time::Instant::now() + Duration::from_millis(400);
                        conn.due.push((sym, at));
                    }
                    _ => {}
                }
            }
            conn.subscribed = true;
        }
        _ => {}
    }
    for m in out {
        if ws.send(Message::text(m)).await.is_err() {
            return false;
        }
    }
    true
}

async fn serve(
    mut ws: Ws,
    mut conn: Conn,
    every: usize,
    pace: Duration,
    fault_no: Arc<AtomicUsize>,
    injected: Arc<Mutex<BTreeMap<&'static str, u64>>>,
) {
    let mut sent = 0usize;
    let mut tick = tokio::time::interval(pace);
    loop {
        tokio::select! {
            m = ws.next() => match m {
                Some(Ok(Message::Text(t))) => if !answer(&mut ws, &mut conn, &t).await { return },
                Some(Ok(_)) => {}
                _ => return,
            },
            _ = tick.tick() => {
                let now = tokio::time::Instant::now();
                let due: Vec<String> = conn.due.iter().filter(|d| d.1 <= now).map(|d| d.0.clone()).collect();
                conn.due.retain(|d| d.1 > now);
                for sym in due {
                    if let Some(snap) = conn.snapshot(&sym) {
                        if !send_text(&mut ws, snap).await { return }
                    }
                }
                sent += 1;
                if !sent.is_multiple_of(every) {
                    let f = conn.next_frame().to_string();
                    if ws.send(Message::text(f)).await.is_err() { return }
                    continue;
                }
                let kind = FAULTS[fault_no.fetch_add(1, Ordering::Relaxed) % FAULTS.len()];
                *injected.lock().unwrap().entry(kind).or_default() += 1;
                if !inject(&mut ws, &mut conn, kind).await {
                    return;
                }
            }
        }
    }
}

async fn send_text(ws: &mut Ws, s: String) -> bool {
    ws.send(Message::text(s)).await.is_ok()
}

/// Injects one fault; false when the connection is over.
async fn inject(ws: &mut Ws, conn: &mut Conn, kind: &str) -> bool {
    match kind {
        "garbage" => {
            send_text(ws, "{not json ]]".into()).await
                && ws
                    .send(Message::binary(vec![0xde, 0xad, 0xbe, 0xef]))
                    .await
                    .is_ok()
        }
        "truncated" => {
            let f = conn.next_frame().to_string();
            send_text(ws, f[..f.len() / 2].to_string()).await
        }
        "duplicate_seq" => match conn.last_delta.clone() {
            Some(d) => send_text(ws, d.to_string()).await,
            None => true,
        },
        "out_of_order_seq" => {
            let (a, b) = (conn.next_frame(), conn.next_frame());
            send_text(ws, b.to_string()).await && send_text(ws, a.to_string()).await
        }
        "far_future_ts" => {
            let mut f = conn.next_frame();
            while !f["topic"]
                .as_str()
                .unwrap_or("")
                .starts_with("publicTrade.")
            {
                f = conn.next_frame();
            }
            let year = 365 * 86_400_000i64;
            for t in f["data"].as_array_mut().unwrap() {
                t["T"] = (now_ms() + year).into();
            }
            send_text(ws, f.to_string()).await
        }
        "slow_bytes" => {
            // One real frame, a byte every 5 ms, written under the websocket layer.
            let payload = conn.next_frame().to_string().into_bytes();
            let mut raw = vec![0x81u8];
            match payload.len() {
                n if n < 126 => raw.push(n as u8),
                n if n < 65_536 => {
                    raw.push(126);
                    raw.extend_from_slice(&(n as u16).to_be_bytes());
                }
                n => {
                    raw.push(127);
                    raw.extend_from_slice(&(n as u64).to_be_bytes());
                }
            }
            raw.extend_from_slice(&payload);
            if ws.flush().await.is_err() {
                return false;
            }
            for b in raw {
                if ws.get_mut().write_all(&[b]).await.is_err() {
                    return false;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            true
        }
        "frame_50mb" => {
            // The header of a 50 MB text frame, then its bytes in 64 KiB chunks until the
            // client hangs up (it refuses such a frame from the header on).
            let _ = ws.flush().await;
            let mut head = vec![0x81u8, 127];
            head.extend_from_slice(&(50u64 << 20).to_be_bytes());
            let tcp = ws.get_mut();
            if tcp.write_all(&head).await.is_err() {
                return false;
            }
            let chunk = vec![b'x'; 64 << 10];
            for _ in 0..800 {
                if tcp.write_all(&chunk).await.is_err() {
                    return false;
                }
            }
            false
        }
        "stall" => {
            // Silence, pongs included, until the client gives up on the socket.
            let _ = tokio::time::timeout(Duration::from_secs(30), async {
                while let Some(Ok(_)) = ws.next().await {}
            })
            .await;
            false
        }
        _ => false, // "drop": the TCP connection closes without a close frame
    }
}
