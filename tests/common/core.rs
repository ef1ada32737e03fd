//! Running a hand-built trading core on a list of events, as `replay` would.

use actix::prelude::*;
use smartflow::actors::builder::{start_stages, Core, Wiring};
use smartflow::actors::feed::{FeedActor, Input};
use smartflow::actors::journal::JournalActor;
use smartflow::actors::run::{Outcome, RunControl};
use smartflow::domain::MarketEvent;
use smartflow::execution::ExecutionClient;
use smartflow::fault::Fault;
use smartflow::store::Store;
use smartflow::strategies::signal::{SignalSource, Strategy};
use std::sync::Arc;

/// Runs `core` on `events` in batches of `chunk` into `store`; returns the run's outcome.
pub fn run_core<S: SignalSource, T: Strategy, C: ExecutionClient>(
    core: Core<S, T, C>,
    events: Vec<MarketEvent>,
    chunk: usize,
    store: Arc<Store>,
) -> Outcome {
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let control = Arc::new(RunControl::new(done_tx));
    System::new().block_on(async move {
        let journal = JournalActor::new(
            store,
            100,
            0,
            control.clone(),
            indicatif::ProgressBar::hidden(),
        )
        .start();
        let wiring = Wiring {
            fault: Fault::default(),
            control,
            signal_arbiter: None,
            latency: None,
        };
        let stages = start_stages(core, wiring, journal.clone().recipient());
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let _feed = FeedActor::new(rx, stages.head.clone(), 4).start();
        for c in events.chunks(chunk) {
            tx.send(Some(Input::Events(c.to_vec()))).await.unwrap();
        }
        tx.send(None).await.unwrap();
        let out = done_rx.await.unwrap();
        drop((stages, journal));
        out
    })
}

/// Hyperliquid's 50 real BTC websocket trades with `users` (praanaavvv_liquidity_console) as
/// trades of `hyperliquid:BTC/USDC`.
pub fn hyperliquid_btc_trades(data: &std::path::Path) -> Vec<smartflow::domain::Trade> {
    use smartflow::domain::{Instrument, Side, Trade, TradeUsers};
    let path = data.join("hyperliquid/praanaavvv_liquidity_console/ws_trades_BTC.json");
    let raw: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    raw.iter()
        .map(|t| {
            let u = t["users"].as_array().unwrap();
            Trade {
                ts_ms: t["time"].as_i64().unwrap(),
                instrument: Instrument::new("hyperliquid:BTC/USDC"),
                price: t["px"].as_str().unwrap().parse().unwrap(),
                qty: t["sz"].as_str().unwrap().parse().unwrap(),
                aggressor: if t["side"] == "B" {
                    Side::Buy
                } else {
                    Side::Sell
                },
                trade_id: t["tid"].as_u64(),
                users: Some(Box::new(TradeUsers {
                    buyer: u[0].as_str().unwrap().into(),
                    seller: u[1].as_str().unwrap().into(),
                })),
            }
        })
        .collect()
}
