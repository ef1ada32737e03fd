//! A fake Hyperliquid for one trading account on 127.0.0.1 (axum): `POST /exchange` verifies
//! every signature against the account's address (testnet), checks each order against the
//! asset's rules (lot, 5 significant figures and 6 − szDecimals decimals, 10 USDC minimum),
//! fills IOC orders at the current price, rests GTC and trigger orders, cancels by cloid or
//! oid; `POST /info` answers `meta`, `clearinghouseState`, `frontendOpenOrders`,
//! `orderStatus` and `userFillsByTime` from its book. Answers and errors use the shapes and
//! messages of the real payloads in `../shared/data/hyperliquid/bytex_live_payloads` (bad
//! signature, duplicate nonce, resting order) and `ccxt_static_responses` (filled orders,
//! `waitingForTrigger`, `orderStatus`, `clearinghouseState`, fills).

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use smartflow::execution::hyperliquid::signing::{recover_l1, Network};
use smartflow::execution::hyperliquid::wire::{Action, ExchangeRequest, OrderWire};
use std::collections::BTreeSet;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The first 6 perpetuals of a real `meta` answer (bytex_live_payloads/info_meta_first6.json):
/// BTC is asset 0 with szDecimals 5, ETH asset 1 with 4.
pub const META: &str = r#"{"universe":[{"szDecimals":5,"name":"BTC","maxLeverage":40,"marginTableId":56},{"szDecimals":4,"name":"ETH","maxLeverage":25,"marginTableId":55},{"szDecimals":2,"name":"ATOM","maxLeverage":5,"marginTableId":5},{"szDecimals":1,"name":"MATIC","maxLeverage":20,"marginTableId":20,"isDelisted":true},{"szDecimals":1,"name":"DYDX","maxLeverage":5,"marginTableId":5},{"szDecimals":2,"name":"SOL","maxLeverage":20,"marginTableId":54}],"collateralToken":0}"#;

/// An order on the fake book.
#[derive(Clone, Debug)]
pub struct Resting {
    pub oid: u64,
    pub coin: String,
    pub wire: OrderWire,
    pub status: String,
}

#[derive(Debug)]
pub struct Book {
    pub account: String,
    /// Every order received with a valid signature, in arrival order.
    pub orders: Vec<OrderWire>,
    /// Every order and cancel action received (signature checked or not).
    pub actions: usize,
    pub info_requests: usize,
    /// The address's action budget (`userRateLimit`'s `nRequestsCap`).
    pub action_cap: u64,
    pub bad_signatures: usize,
    /// Orders by oid, with their status ("open", "filled", "canceled", "triggered").
    pub book: Vec<Resting>,
    pub fills: Vec<Value>,
    /// Signed position per coin and its entry price.
    pub positions: Vec<(String, Decimal, Decimal)>,
    pub price: Decimal,
    pub account_value: Decimal,
    /// The next order gets this per-order error instead of being placed.
    pub reject_next: Option<String>,
    /// Orders are placed but `/exchange` never answers (a crash before the acknowledgement).
    pub hold: bool,
    pub nonces: BTreeSet<u64>,
    /// Frames of the account's `orderUpdates` and `userFills` streams, in order.
    pub stream: Vec<String>,
    next_oid: u64,
    next_tid: u64,
    pub time_ms: i64,
}

impl Book {
    fn new(account: &str) -> Self {
        Self {
            account: account.to_ascii_lowercase(),
            orders: vec![],
            actions: 0,
            info_requests: 0,
            action_cap: 10_000,
            bad_signatures: 0,
            book: vec![],
            fills: vec![],
            positions: vec![],
            price: Decimal::from(83_712),
            account_value: Decimal::from(1_000),
            reject_next: None,
            hold: false,
            nonces: BTreeSet::new(),
            stream: vec![],
            next_oid: 556_696_349_186,
            next_tid: 246_814_713_305_894,
            time_ms: 1_790_360_256_851,
        }
    }

    fn coin(asset: u32) -> Option<(&'static str, u32)> {
        match asset {
            0 => Some(("BTC", 5)),
            1 => Some(("ETH", 4)),
            _ => None,
        }
    }

    /// The venue's price and size rules, with its messages.
    fn check(w: &OrderWire) -> Result<(String, Decimal, Decimal), String> {
        let (coin, szd) = Self::coin(w.a).ok_or("Asset not found")?;
        let px = Decimal::from_str(&w.p).map_err(|_| "Order has invalid price.")?;
        let sz = Decimal::from_str(&w.s).map_err(|_| "Order has invalid size.")?;
        if sz.normalize().scale() > szd || sz <= Decimal::ZERO {
            return Err("Order has invalid size.".into());
        }
        let sig = px
            .normalize()
            .mantissa()
            .abs()
            .to_string()
            .trim_end_matches('0')
            .len();
        let integer = px.fract().is_zero();
        if px.normalize().scale() > 6 - szd || (sig > 5 && !integer) {
            return Err(format!(
                "Price must be divisible by tick size. asset={}",
                w.a
            ));
        }
        if px * sz < Decimal::TEN && !w.r {
            return Err(format!(
                "Order must have minimum value of $10. asset={}",
                w.a
            ));
        }
        Ok((coin.to_string(), px, sz))
    }

    /// An `orderUpdates` frame (shape of bytex_live_payloads/ws_orderUpdates.json).
    fn push_status(&mut self, i: usize) {
        let o = &self.book[i];
        let f = json!({"channel": "orderUpdates", "data": [{"order": Self::order_json(o),
            "status": o.status, "statusTimestamp": self.time_ms}]});
        self.stream.push(f.to_string());
    }

    /// Applies a fill of `sz` of order `oid` at the current price.
    pub fn fill(&mut self, oid: u64, sz: Decimal) {
        let Some(o) = self.book.iter_mut().find(|o| o.oid == oid) else {
            return;
        };
        let left = Decimal::from_str(&o.wire.s).unwrap();
        o.wire.s = (left - sz).normalize().to_string();
        if left - sz <= Decimal::ZERO {
            o.status = "filled".into();
        }
        let (coin, buy, cloid) = (o.coin.clone(), o.wire.b, o.wire.c.clone());
        let filled = o.status == "filled";
        let i = self.book.iter().position(|o| o.oid == oid).unwrap();
        self.time_ms += 1_000;
        self.next_tid += 7;
        let px = self.price;
        let fee = (px * sz * Decimal::new(45, 5)).round_dp(6);
        self.fills.push(
            json!({"coin": coin, "px": px.to_string(), "sz": sz.to_string(),
            "side": if buy {"B"} else {"A"}, "time": self.time_ms, "startPosition": "0.0",
            "dir": if buy {"Open Long"} else {"Close Long"}, "closedPnl": "0.0",
            "hash": "0xaa843fb6a70b0a5dabfd044530cd4d020487009c420e292f4e4ceb09660ee448",
            "oid": oid, "crossed": true, "fee": fee.to_string(), "tid": self.next_tid,
            "cloid": cloid, "feeToken": "USDC", "twapId": null}),
        );
        let fill = self.fills.last().unwrap().clone();
        let user = self.account.clone();
        let frame = json!({"channel": "userFills", "data": {"user": user, "fills": [fill]}});
        self.stream.push(frame.to_string());
        if filled {
            self.push_status(i);
        }
        let signed = if buy { sz } else { -sz };
        match self.positions.iter_mut().find(|p| p.0 == coin) {
            Some(p) => p.1 += signed,
            None => self.positions.push((coin, signed, px)),
        }
        self.positions.retain(|p| !p.1.is_zero());
    }

    fn place(&mut self, w: &OrderWire) -> Value {
        self.orders.push(w.clone());
        if let Some(e) = self.reject_next.take() {
            return json!({"error": e});
        }
        let (coin, _px, sz) = match Self::check(w) {
            Ok(x) => x,
            Err(e) => return json!({"error": e}),
        };
        self.next_oid += 1;
        let oid = self.next_oid;
        let status = "open".to_string();
        let r = Resting {
            oid,
            coin,
            wire: w.clone(),
            status,
        };
        self.book.push(r);
        if w.t.trigger.is_some() {
            return json!("waitingForTrigger");
        }
        if w.t.limit.as_ref().is_some_and(|l| l.tif == "Ioc") {
            self.fill(oid, sz);
            let px = self.price.to_string();
            return json!({"filled": {"totalSz": sz.to_string(), "avgPx": px, "oid": oid}});
        }
        json!({"resting": {"oid": oid}})
    }

    fn cancel(&mut self, hit: impl Fn(&Resting) -> bool) -> Value {
        match self.book.iter().position(|o| hit(o) && o.status == "open") {
            Some(i) => {
                self.book[i].status = "canceled".into();
                self.push_status(i);
                json!("success")
            }
            None => json!({"error": "Order was never placed, already canceled, or filled."}),
        }
    }

    fn exchange(&mut self, req: &ExchangeRequest) -> Value {
        self.actions += 1;
        let signer = recover_l1(
            &req.action,
            &req.signature,
            None,
            req.nonce,
            None,
            Network::Testnet,
        );
        if signer.map(|a| format!("{a:#x}")) != Ok(self.account.clone()) {
            self.bad_signatures += 1;
            return json!({"status": "err", "response": "Unable to recover signer."});
        }
        if !self.nonces.insert(req.nonce) {
            let e = format!("Invalid nonce: duplicate nonce {}", req.nonce);
            return json!({"status": "err", "response": e});
        }
        let (kind, statuses): (&str, Vec<Value>) = match &req.action {
            Action::Order { orders, .. } => {
                ("order", orders.iter().map(|w| self.place(w)).collect())
            }
            Action::CancelByCloid { cancels } => (
                "cancel",
                cancels
                    .iter()
                    .map(|c| self.cancel(|o| o.wire.c.as_deref() == Some(c.cloid.as_str())))
                    .collect(),
            ),
            Action::Cancel { cancels } => (
                "cancel",
                cancels
                    .iter()
                    .map(|c| self.cancel(|o| o.oid == c.o))
                    .collect(),
            ),
        };
        json!({"status": "ok", "response": {"type": kind, "data": {"statuses": statuses}}})
    }

    fn order_json(o: &Resting) -> Value {
        json!({"coin": o.coin, "side": if o.wire.b {"B"} else {"A"}, "limitPx": o.wire.p,
            "sz": o.wire.s, "oid": o.oid, "timestamp": 1_790_360_256_851i64,
            "isTrigger": o.wire.t.trigger.is_some(), "reduceOnly": o.wire.r,
            "orderType": if o.wire.t.trigger.is_some() {"Stop Market"} else {"Limit"},
            "origSz": o.wire.s, "cloid": o.wire.c})
    }

    fn info(&self, req: &Value) -> Value {
        match req["type"].as_str().unwrap_or_default() {
            "meta" => serde_json::from_str(META).unwrap(),
            "clearinghouseState" => {
                let ps: Vec<Value> = self
                    .positions
                    .iter()
                    .map(|(c, q, e)| {
                        json!({"type": "oneWay",
                    "position": {"coin": c, "szi": q.to_string(), "entryPx": e.to_string(),
                    "positionValue": (q.abs() * self.price).to_string(), "unrealizedPnl": "0.0",
                    "leverage": {"type": "cross", "value": 10}}})
                    })
                    .collect();
                json!({"marginSummary": {"accountValue": self.account_value.to_string(),
                    "totalNtlPos": "0.0", "totalRawUsd": "0.0", "totalMarginUsed": "0.0"},
                    "assetPositions": ps, "time": self.time_ms})
            }
            "frontendOpenOrders" => Value::Array(
                self.book
                    .iter()
                    .filter(|o| o.status == "open")
                    .map(Self::order_json)
                    .collect(),
            ),
            "orderStatus" => {
                let key = &req["oid"];
                let hit = self.book.iter().find(|o| match key {
                    Value::String(c) => o.wire.c.as_deref() == Some(c.as_str()),
                    v => v.as_u64() == Some(o.oid),
                });
                match hit {
                    Some(o) => json!({"status": "order", "order": {"order": Self::order_json(o),
                        "status": o.status, "statusTimestamp": self.time_ms}}),
                    None => json!({"status": "unknownOid"}),
                }
            }
            // Shape of python_sdk_cassettes/json/test_user_rate_limit.json.
            "userRateLimit" => json!({"cumVlm": "0.0", "nRequestsUsed": self.actions,
                "nRequestsCap": self.action_cap}),
            "userFillsByTime" => {
                let start = req["startTime"].as_i64().unwrap_or(0);
                Value::Array(
                    self.fills
                        .iter()
                        .filter(|f| f["time"].as_i64() >= Some(start))
                        .cloned()
                        .collect(),
                )
            }
            _ => json!(null),
        }
    }

    /// Adds an order of the account that smartflow did not send (no cloid).
    pub fn outside_order(&mut self, coin: &str, px: &str, sz: &str) -> u64 {
        self.next_oid += 1;
        let w = OrderWire {
            a: 0,
            b: true,
            p: px.into(),
            s: sz.into(),
            r: false,
            t: smartflow::execution::hyperliquid::wire::OrderTypeWire {
                limit: Some(smartflow::execution::hyperliquid::wire::LimitWire {
                    tif: "Gtc".into(),
                }),
                trigger: None,
            },
            c: None,
        };
        self.book.push(Resting {
            oid: self.next_oid,
            coin: coin.into(),
            wire: w,
            status: "open".into(),
        });
        self.next_oid
    }
}

#[derive(Clone)]
pub struct FakeExchange {
    pub book: Arc<Mutex<Book>>,
    pub url: String,
    /// The account's websocket (`orderUpdates`, `userFills`).
    pub ws_url: String,
}

/// One websocket connection: once both subscriptions are in, a `userFills` snapshot of the
/// fills so far, then every new frame.
async fn stream(tcp: tokio::net::TcpStream, book: Arc<Mutex<Book>>) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else {
        return;
    };
    let (mut tx, mut rx) = ws.split();
    let mut subs = 0;
    while subs < 2 {
        match rx.next().await {
            Some(Ok(Message::Text(t))) if t.contains("subscribe") => subs += 1,
            Some(Ok(_)) => {}
            _ => return,
        }
    }
    let (snapshot, mut cursor) = {
        let b = book.lock().unwrap();
        let data = json!({"isSnapshot": true, "user": b.account, "fills": b.fills});
        (
            json!({"channel": "userFills", "data": data}).to_string(),
            b.stream.len(),
        )
    };
    if tx.send(Message::text(snapshot)).await.is_err() {
        return;
    }
    loop {
        let frames: Vec<String> = book.lock().unwrap().stream[cursor..].to_vec();
        cursor += frames.len();
        for f in frames {
            if tx.send(Message::text(f)).await.is_err() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn exchange(State(b): State<Arc<Mutex<Book>>>, Json(req): Json<Value>) -> Json<Value> {
    let parsed: Result<ExchangeRequest, _> = serde_json::from_value(req);
    let (answer, hold) = {
        let mut g = b.lock().unwrap();
        let a = match parsed {
            Ok(r) => g.exchange(&r),
            Err(e) => json!({"status": "err", "response": format!("Failed to deserialize: {e}")}),
        };
        (a, g.hold)
    };
    if hold {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    Json(answer)
}

/// Serves the fake venue for `account` on its own thread's runtime.
pub fn start(account: &str) -> FakeExchange {
    let book = Arc::new(Mutex::new(Book::new(account)));
    let (tx, rx) = std::sync::mpsc::channel();
    let state = book.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let ws = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send((l.local_addr().unwrap(), ws.local_addr().unwrap()))
                .unwrap();
            let b = state.clone();
            tokio::spawn(async move {
                while let Ok((tcp, _)) = ws.accept().await {
                    tokio::spawn(stream(tcp, b.clone()));
                }
            });
            let app = Router::new()
                .route("/exchange", post(exchange))
                .route(
                    "/info",
                    post(
                        |State(b): State<Arc<Mutex<Book>>>, Json(req): Json<Value>| async move {
                            let mut g = b.lock().unwrap();
                            g.info_requests += 1;
                            Json(g.info(&req))
                        },
                    ),
                )
                .with_state(state);
            axum::serve(l, app).await.unwrap();
        });
    });
    let (addr, ws) = rx.recv().unwrap();
    FakeExchange {
        book,
        url: format!("http://{addr}"),
        ws_url: format!("ws://{ws}"),
    }
}
