//! The second venue, Bybit spot through the official `ccxt` crate (feature `ccxt-bybit`,
//! off by default: `cargo test --features ccxt-bybit --test ccxt_bybit`), behind the same
//! venue seam as Hyperliquid, against a fake Bybit v5 on 127.0.0.1 that checks each private
//! request's HMAC-SHA256 signature (`X-BAPI-SIGN` over timestamp + key + recv window + body).
//! The answers are hand-written in Bybit v5's documented shapes (no Bybit REST capture exists
//! in ../shared/data).
#![cfg(feature = "ccxt-bybit")]

use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::routing::get;
use axum::{Json, Router};
use rust_decimal_macros::dec;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use smartflow::domain::intent::{BracketSpec, OrderIntent};
use smartflow::domain::{Instrument, MarketEvent, Side, Trade};
use smartflow::execution::ccxt_bybit::{CcxtBybitVenue, CcxtSettings};
use smartflow::execution::oms::OrderManager;
use smartflow::execution::{ApprovedOrder, BrokerEvent, Portfolio, PortfolioConfig};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET: &str = "fake-secret";

fn hmac_sha256(key: &[u8], msg: &[u8]) -> String {
    let mut k = [0u8; 64];
    k[..key.len()].copy_from_slice(key);
    let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(msg)
        .finalize();
    let outer = Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize();
    outer.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Default)]
struct Fake {
    orders: Vec<Value>,
    bad_signatures: usize,
    canceled: Vec<String>,
}

fn ok(result: Value) -> Json<Value> {
    Json(
        json!({"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": 1_700_000_000_000i64}),
    )
}

fn signed(h: &HeaderMap, payload: &str) -> bool {
    let g = |k: &str| {
        h.get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let msg = format!(
        "{}{}{}{}",
        g("x-bapi-timestamp"),
        g("x-bapi-api-key"),
        g("x-bapi-recv-window"),
        payload
    );
    g("x-bapi-api-key") == "fake-key"
        && g("x-bapi-sign") == hmac_sha256(SECRET.as_bytes(), msg.as_bytes())
}

async fn get_any(State(f): State<Arc<Mutex<Fake>>>, h: HeaderMap, uri: Uri) -> Json<Value> {
    let path = uri.path();
    let query = uri.query().unwrap_or_default();
    if path.ends_with("instruments-info") {
        let btc = json!({"symbol": "BTCUSDT", "baseCoin": "BTC", "quoteCoin": "USDT", "innovation": "0",
            "status": "Trading", "marginTrading": "both",
            "lotSizeFilter": {"basePrecision": "0.000001", "quotePrecision": "0.00000001",
                "minOrderQty": "0.000048", "maxOrderQty": "71.73956243", "minOrderAmt": "1", "maxOrderAmt": "2000000"},
            "priceFilter": {"tickSize": "0.01"}});
        return ok(json!({"category": "spot", "list": [btc], "nextPageCursor": ""}));
    }
    if path.ends_with("order/realtime") {
        if !signed(&h, query) {
            f.lock().unwrap().bad_signatures += 1;
        }
        let g = f.lock().unwrap();
        let o = &g.orders[0];
        return ok(
            json!({"list": [{"orderId": "1321003749386327552", "orderLinkId": o["orderLinkId"],
            "symbol": "BTCUSDT", "price": "0", "qty": o["qty"], "side": "Buy", "orderStatus": "Filled",
            "avgPrice": "50010.5", "cumExecQty": o["qty"], "cumExecValue": "50.0105", "cumExecFee": "0.05",
            "orderType": "Market", "timeInForce": "IOC", "createdTime": "1700000000000",
            "updatedTime": "1700000000100"}]}),
        );
    }
    ok(json!({"list": []}))
}

async fn post_any(
    State(f): State<Arc<Mutex<Fake>>>,
    h: HeaderMap,
    uri: Uri,
    body: String,
) -> Json<Value> {
    let mut g = f.lock().unwrap();
    if !signed(&h, &body) {
        g.bad_signatures += 1;
        return Json(json!({"retCode": 10004, "retMsg": "error sign!", "result": {}}));
    }
    let v: Value = serde_json::from_str(&body).unwrap_or_default();
    if uri.path().ends_with("order/create") {
        g.orders.push(v.clone());
        return ok(json!({"orderId": "1321003749386327552", "orderLinkId": v["orderLinkId"]}));
    }
    g.canceled
        .push(v["orderId"].as_str().unwrap_or_default().to_string());
    ok(json!({"orderId": v["orderId"], "orderLinkId": ""}))
}

fn start() -> (Arc<Mutex<Fake>>, String) {
    let fake = Arc::new(Mutex::new(Fake::default()));
    let (tx, rx) = std::sync::mpsc::channel();
    let state = fake.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(l.local_addr().unwrap()).unwrap();
            let app = Router::new()
                .route("/{*path}", get(get_any).post(post_any))
                .with_state(state);
            axum::serve(l, app).await.unwrap();
        });
    });
    (fake, format!("http://{}", rx.recv().unwrap()))
}

/// An approved entry on `bybit:BTC/USDT` goes out through ccxt as a signed market order with
/// smartflow's order id as `orderLinkId`; its fill comes back from a poll and enters the
/// portfolio.
#[test]
fn an_entry_goes_through_ccxt_to_a_fake_bybit_and_its_fill_comes_back() {
    let (fake, url) = start();
    let settings = CcxtSettings {
        api_url: Some(url),
        api_key: "fake-key".into(),
        secret: SECRET.into(),
        poll: Duration::from_millis(200),
    };
    let venue = CcxtBybitVenue::start(settings).unwrap();
    let mut pf = PortfolioConfig::default();
    (pf.quote, pf.starting_balance) = ("USDT".into(), dec!(1000));
    let mut b = OrderManager::with_venue(venue, Portfolio::new(&pf));
    let inst = Instrument::new("bybit:BTC/USDT");
    let a = ApprovedOrder {
        intent: OrderIntent {
            id: "int-1".into(),
            signal_id: "sig-1".into(),
            ts_ms: 0,
            instrument: inst.clone(),
            side: Side::Buy,
            qty: dec!(0.001),
            ref_price: dec!(50000),
            reduce_only: false,
            bracket: BracketSpec {
                take_profit: vec![],
                stop_loss_pct: dec!(50),
                max_hold_ms: 86_400_000,
            },
            leverage: None,
        },
        verdict_id: "ver-1".into(),
        qty: dec!(0.001),
    };
    let mut out = vec![];
    b.place_entry(&a, 1_700_000_000_000, &mut out);
    let t0 = Instant::now();
    let mut ts = 1_700_000_000_000;
    while !out.iter().any(|e| matches!(e, BrokerEvent::Fill { .. })) {
        assert!(t0.elapsed() < Duration::from_secs(20), "{out:?}");
        ts += 100;
        let t = Trade {
            ts_ms: ts,
            instrument: inst.clone(),
            price: dec!(50000),
            qty: dec!(1),
            aggressor: Side::Buy,
            trade_id: None,
            users: None,
        };
        b.on_market(&MarketEvent::Trade(t), &mut out);
        std::thread::sleep(Duration::from_millis(50));
    }
    let g = fake.lock().unwrap();
    assert_eq!(g.bad_signatures, 0);
    let o = &g.orders[0];
    assert_eq!(
        (
            o["symbol"].as_str(),
            o["side"].as_str(),
            o["orderType"].as_str()
        ),
        (Some("BTCUSDT"), Some("Buy"), Some("Market"))
    );
    assert_eq!(
        o["orderLinkId"], "ord-1",
        "smartflow's order id is the client order id"
    );
    assert_eq!(b.portfolio.positions[&inst].qty, dec!(0.001));
}
