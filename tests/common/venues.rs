//! Loopback venues replaying real captures (Binance spot with a REST book endpoint, Bybit spot
//! that drops its first connection, Hyperliquid trades and `meta`), the paper config that trades
//! on them, and a paper session on its own thread: shared by the paper and Telegram tests.

use super::fake::{self, After, Script};
use smartflow::config::Config;
use smartflow::paper::{run_paper, PaperOptions};
use smartflow::pipeline::Fault;
use std::time::Duration;

pub struct Venues {
    pub binance_ws: String,
    pub binance_rest: String,
    pub bybit_ws: String,
    pub hl_ws: String,
    pub hl_rest: String,
}

/// Fake venues on their own runtime thread (the paper run owns this thread's actix system).
pub fn start_venues(data: std::path::PathBuf) -> Venues {
    start_venues_paced(data, None)
}

/// Venues that send one frame per `pace` instead of bursts (a session that lasts).
pub fn start_venues_paced(data: std::path::PathBuf, pace: Option<Duration>) -> Venues {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            // Binance: the spot capture, books synced from a REST endpoint.
            let bn = fake::v1_frames(&data.join("cryptofeed_ws_captures/BINANCE.ws.1.0.txt.gz"));
            let mut first_u = std::collections::HashMap::new();
            for f in &bn {
                let v: serde_json::Value = serde_json::from_str(f).unwrap();
                if v["data"]["e"] == "depthUpdate" {
                    first_u
                        .entry(v["data"]["s"].as_str().unwrap().to_string())
                        .or_insert(v["data"]["U"].as_u64().unwrap());
                }
            }
            let app = axum::Router::new().route(
                "/api/v3/depth",
                axum::routing::get(
                    move |q: axum::extract::Query<std::collections::HashMap<String, String>>| {
                        let id = first_u[&q["symbol"]] - 1;
                        async move {
                            axum::Json(
                                serde_json::json!({"lastUpdateId": id, "bids": [], "asks": []}),
                            )
                        }
                    },
                ),
            );
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let binance_rest = format!("http://{}", l.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
            let n = bn.len();
            let binance = fake::start_ws(vec![Script {
                frames: bn,
                count: n,
                after: After::Idle,
                skip: vec![],
                junk_every: None,
                pace,
            }])
            .await;

            // Bybit spot: the first connection drops before any trade; on reconnect a few trades
            // arrive before the book snapshots (the instrument is still reconnecting).
            let by = fake::v3_frames(
                &data.join("cryptofeed_ws_captures/BYBIT_v3_2026.jsonl.gz"),
                "BYBIT.ws.3",
            );
            let first_trade = by
                .iter()
                .position(|f| f.contains("\"topic\":\"publicTrade"))
                .unwrap();
            let trades: Vec<usize> = by
                .iter()
                .enumerate()
                .filter(|(_, f)| f.contains("\"topic\":\"publicTrade"))
                .map(|(i, _)| i)
                .collect();
            let early: Vec<usize> = trades[..6].to_vec();
            let mut reordered: Vec<String> = early.iter().map(|i| by[*i].clone()).collect();
            reordered.extend(
                by.iter()
                    .enumerate()
                    .filter(|(i, _)| !early.contains(i))
                    .map(|(_, f)| f.clone()),
            );
            let m = reordered.len();
            let bybit = fake::start_ws(vec![
                Script {
                    frames: by.clone(),
                    count: first_trade,
                    after: After::Drop,
                    skip: vec![],
                    junk_every: None,
                    pace,
                },
                Script {
                    frames: reordered,
                    count: m,
                    after: After::Idle,
                    skip: vec![],
                    junk_every: None,
                    pace,
                },
            ])
            .await;

            // Hyperliquid: the recorded BTC trades with buyer and seller wallets.
            let hl = fake::hyperliquid_frames(&data);
            let k = hl.len();
            let hyper = fake::start_ws(vec![Script {
                frames: hl,
                count: k,
                after: After::Idle,
                skip: vec![],
                junk_every: None,
                pace,
            }])
            .await;
            // Hyperliquid `POST /info {"type":"meta"}`: the real captured answer (first 6 coins).
            let meta = std::fs::read_to_string(
                data.join("hyperliquid/bytex_live_payloads/info_meta_first6.json"),
            )
            .unwrap();
            let app = axum::Router::new().route(
                "/info",
                axum::routing::post(move || {
                    let m = meta.clone();
                    async move { ([("content-type", "application/json")], m) }
                }),
            );
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let hl_rest = format!("http://{}", l.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
            tx.send(Venues {
                binance_ws: format!("{}/stream", binance.url),
                binance_rest,
                bybit_ws: bybit.url,
                hl_ws: hyper.url,
                hl_rest,
            })
            .unwrap();
            std::future::pending::<()>().await;
        });
    });
    rx.recv().unwrap()
}

pub fn config(v: &Venues) -> Config {
    let toml = format!(
        r#"
[portfolio]
quote = "USDT"
quote_equivalents = ["USDC"]
starting_balance = "10000"
[features]
baseline_secs = 25
warmup_fraction = 0.0
[models]
# Plumbing tests: the rule detector with a zero threshold fires on every buy.
mode = "rules"
[detector]
# Every buy trade is a signal: the test is about the plumbing, not the detector.
threshold = 0.0
cooldown_secs = 0
min_buy_trades = 0.0
min_quote_volume = 0.0
[strategy]
entry_notional = "100"
qty_step = "0.00001"
max_hold_secs = 600
cooldown_secs = 0
[risk]
max_order_notional = "200"
max_position_notional = "200"
max_gross_exposure = "2000"
daily_loss_limit = "200"
max_open_positions = 10
instrument_cooldown_secs = 0
# The captures are weeks apart in event time; freshness here comes from the feeds' status.
stale_after_ms = 1000000000000
max_orders = 1000
min_order_notional = "1"
qty_step = "0.00001"
[feeds]
ping_interval_secs = 0.2
idle_timeout_secs = 2.0
stale_after_secs = 30.0
backoff_initial_ms = 50
backoff_max_ms = 200
status_every_secs = 0.5
[feeds.binance]
ws_url = "{}"
rest_url = "{}"
instruments = ["NKN/USDT", "BLZ/ETH", "LRC/BTC", "RUNE/EUR"]
[feeds.bybit]
ws_url = "{}"
rest_url = "http://127.0.0.1:9"
instruments = ["BTC/USDT", "ETH/USDT"]
[feeds.hyperliquid]
ws_url = "{}"
rest_url = "{}"
instruments = ["BTC/USDC"]
"#,
        v.binance_ws, v.binance_rest, v.bybit_ws, v.hl_ws, v.hl_rest
    );
    Config::from_toml(&toml, "test").unwrap()
}

/// Waits for a session's control API to come up; returns its token.
pub fn wait_for_api(state: &std::path::Path) -> String {
    for _ in 0..400 {
        if state.join("control.json").exists() {
            if let Ok(t) = std::fs::read_to_string(state.join("control.token")) {
                return t;
            }
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("the control API did not come up");
}

pub fn spawn_paper(
    cfg: Config,
    state: &std::path::Path,
    secs: f64,
    tape: Option<std::path::PathBuf>,
) -> std::thread::JoinHandle<smartflow::paper::PaperReport> {
    let state = state.to_path_buf();
    std::thread::spawn(move || {
        run_paper(PaperOptions {
            config: cfg,
            state_dir: state,
            duration: Some(Duration::from_secs_f64(secs)),
            print_status: false,
            fault: Fault::default(),
            tape,
        })
        .unwrap()
    })
}
