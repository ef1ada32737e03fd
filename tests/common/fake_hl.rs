//! A fake Hyperliquid on 127.0.0.1: `POST /info` (`userFillsByTime`, `clearinghouseState`) and
//! the websocket's `userFills` subscriptions, serving real recorded fills and positions. It
//! enforces the venue's per-IP limits the way the venue states them and records every breach:
//! at most 10 unique users across the user-specific subscriptions of open connections, at most
//! 1200 REST weight in any 60 s (request weight plus 1 per 20 items returned).

use axum::extract::State;
use axum::routing::post;
use axum::Json;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

/// What the k-th websocket connection does.
#[derive(Clone, Debug)]
pub struct Conn {
    /// Fills (per user, an index into its list) that have happened when it opens.
    pub happened_at_open: usize,
    /// It streams fills live up to this index, one frame each, then drops (or stays open).
    pub live_until: usize,
    pub drop_after: bool,
}

/// The fake venue's script and what it saw.
pub struct Hl {
    /// Fills of each user (`userFills` items), oldest first.
    pub fills: BTreeMap<String, Vec<Value>>,
    pub conns: Vec<Conn>,
    /// Fills in a subscription's snapshot (the most recent ones).
    pub snapshot_len: usize,
    /// `clearinghouseState` answer given to every user (its `szi` scaled per user).
    pub state: Value,
    /// Fills that have happened (index into each user's list).
    pub happened: usize,
    /// Users subscribed on each open connection.
    pub open: BTreeMap<usize, BTreeSet<String>>,
    /// Every user that was ever subscribed, in order.
    pub subscribed: Vec<String>,
    /// Most unique users at once across open connections.
    pub max_users: usize,
    /// `/info` calls: when, type, weight (request + items).
    pub info: Vec<(Instant, String, u32)>,
    pub breaches: Vec<String>,
    /// `meta` answer (paper asks for the trading rules).
    pub meta: Value,
}

impl Hl {
    pub fn new(fills: BTreeMap<String, Vec<Value>>, conns: Vec<Conn>, state: Value) -> Self {
        Self {
            fills,
            conns,
            snapshot_len: 60,
            state,
            happened: 0,
            open: BTreeMap::new(),
            subscribed: Vec::new(),
            max_users: 0,
            info: Vec::new(),
            breaches: Vec::new(),
            meta: Value::Null,
        }
    }

    /// Most weight in any 60 s.
    pub fn worst_minute(&self) -> u32 {
        let mut worst = 0;
        for (i, (t0, _, _)) in self.info.iter().enumerate() {
            let w = self.info[i..]
                .iter()
                .take_while(|(t, _, _)| t.duration_since(*t0) < Duration::from_secs(60))
                .map(|x| x.2)
                .sum();
            worst = worst.max(w);
        }
        worst
    }

    pub fn calls(&self, kind: &str) -> usize {
        self.info.iter().filter(|x| x.1 == kind).count()
    }

    fn happened_fills(&self, user: &str) -> &[Value] {
        let f = self.fills.get(user).map(Vec::as_slice).unwrap_or_default();
        &f[..self.happened.min(f.len())]
    }

    fn charge(&mut self, kind: &str, items: usize) {
        let per_item = matches!(kind, "userFills" | "userFillsByTime") as u32 * (items as u32 / 20);
        let w = if kind == "clearinghouseState" { 2 } else { 20 } + per_item;
        self.info.push((Instant::now(), kind.to_string(), w));
        let worst = self.worst_minute();
        if worst > 1200 {
            self.breaches
                .push(format!("{worst} REST weight within 60 s"));
        }
    }

    fn answer(&mut self, req: &Value) -> Value {
        let kind = req["type"].as_str().unwrap_or_default().to_string();
        let user = req["user"].as_str().unwrap_or_default().to_string();
        let out = match kind.as_str() {
            "userFillsByTime" => {
                let start = req["startTime"].as_i64().unwrap_or(0);
                let v: Vec<Value> = self
                    .happened_fills(&user)
                    .iter()
                    .filter(|f| f["time"].as_i64().unwrap_or(0) >= start)
                    .take(2000)
                    .cloned()
                    .collect();
                Value::from(v)
            }
            "clearinghouseState" => {
                let mut s = self.state.clone();
                let k = user.bytes().map(u32::from).sum::<u32>() % 7 + 1;
                if let Some(p) = s["assetPositions"][0]["position"].as_object_mut() {
                    p.insert("szi".into(), json!(format!("{k}.5")));
                }
                s
            }
            "meta" if !self.meta.is_null() => self.meta.clone(),
            other => {
                self.breaches.push(format!("unexpected info type {other}"));
                Value::Null
            }
        };
        self.charge(&kind, out.as_array().map_or(0, Vec::len));
        out
    }

    /// A subscription on connection `conn`: its answer frames (response, snapshot) or an error.
    fn subscribe(&mut self, conn: usize, text: &str) -> Vec<String> {
        let v: Value = serde_json::from_str(text).unwrap_or_default();
        let sub = &v["subscription"];
        if v["method"] != "subscribe" || sub["type"] != "userFills" {
            return vec![];
        }
        let user = sub["user"].as_str().unwrap_or_default().to_string();
        self.open.entry(conn).or_default().insert(user.clone());
        self.subscribed.push(user.clone());
        let users: BTreeSet<&String> = self.open.values().flatten().collect();
        self.max_users = self.max_users.max(users.len());
        if users.len() > 10 {
            self.breaches
                .push(format!("{} unique users subscribed", users.len()));
            return vec![
                json!({"channel": "error", "data": "Cannot track more than 10 total users."})
                    .to_string(),
            ];
        }
        let fills = self.happened_fills(&user);
        let snap = &fills[fills.len().saturating_sub(self.snapshot_len)..];
        vec![
            json!({"channel": "subscriptionResponse", "data": v}).to_string(),
            json!({"channel": "userFills", "data": {"isSnapshot": true, "user": user, "fills": snap}})
                .to_string(),
        ]
    }

    /// The next live frame of connection `conn` (a fill of every subscribed user), if any.
    fn next_live(&mut self, conn: usize) -> Option<Vec<String>> {
        let c = self.conns[conn.min(self.conns.len() - 1)].clone();
        if self.happened >= c.live_until {
            return None;
        }
        // A connection without userFills (a market-data feed) gets none and moves no fill on.
        let users: Vec<String> = match self.open.get(&conn) {
            Some(u) => u.iter().cloned().collect(),
            None => return Some(vec![]),
        };
        let i = self.happened;
        self.happened += 1;
        let frames = users
            .iter()
            .filter_map(|u| {
                let f = self.fills.get(u)?.get(i)?;
                Some(json!({"channel": "userFills", "data": {"user": u, "fills": [f]}}).to_string())
            })
            .collect();
        Some(frames)
    }
}

pub struct FakeHl {
    pub ws_url: String,
    pub info_url: String,
    pub hl: Arc<Mutex<Hl>>,
}

/// Starts the fake venue.
pub async fn start(hl: Hl) -> FakeHl {
    let hl = Arc::new(Mutex::new(hl));
    let app = axum::Router::new()
        .route(
            "/info",
            post(
                |State(hl): State<Arc<Mutex<Hl>>>, Json(req): Json<Value>| async move {
                    Json(hl.lock().unwrap().answer(&req))
                },
            ),
        )
        .with_state(hl.clone());
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let info_url = format!("http://{}", http.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(http, app).await.unwrap() });
    let ws = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ws_url = format!("ws://{}", ws.local_addr().unwrap());
    let h = hl.clone();
    tokio::spawn(async move {
        for k in 0.. {
            let Ok((tcp, _)) = ws.accept().await else {
                return;
            };
            tokio::spawn(connection(tcp, k, h.clone()));
        }
    });
    FakeHl {
        ws_url,
        info_url,
        hl,
    }
}

async fn connection(tcp: tokio::net::TcpStream, k: usize, hl: Arc<Mutex<Hl>>) {
    let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else {
        return;
    };
    let (mut tx, mut rx) = ws.split();
    let conn = {
        let mut h = hl.lock().unwrap();
        let c = h.conns[k.min(h.conns.len() - 1)].clone();
        h.happened = h.happened.max(c.happened_at_open);
        c
    };
    let mut live = tokio::time::interval(Duration::from_millis(5));
    let opened = Instant::now();
    loop {
        let frames: Vec<String> = tokio::select! {
            m = rx.next() => match m {
                Some(Ok(Message::Text(t))) if t.contains("\"ping\"") => vec![r#"{"channel":"pong"}"#.into()],
                Some(Ok(Message::Text(t))) => hl.lock().unwrap().subscribe(k, &t),
                Some(Ok(_)) => vec![],
                _ => break,
            },
            // Live fills start once the subscriptions are in.
            _ = live.tick(), if opened.elapsed() > Duration::from_millis(300) => {
                match hl.lock().unwrap().next_live(k) {
                    Some(f) => f,
                    None if conn.drop_after => break,
                    None => vec![],
                }
            }
        };
        for f in frames {
            if tx.send(Message::text(f)).await.is_err() {
                break;
            }
        }
    }
    hl.lock().unwrap().open.remove(&k);
    // Dropping both halves closes the TCP connection without a close frame.
}
