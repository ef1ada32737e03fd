//! Whale-follow signals through the trading core: tracked wallets' fills in Hyperliquid's real
//! public trades stream (50 BTC trades with `users`, praanaavvv_liquidity_console) become a
//! weighted consensus, a long or short signal, an intent, a risk verdict and a paper order on the
//! perpetual — next to the pre-pump detector, in one decision log.

mod common;

use rust_decimal_macros::dec;
use smartflow::actors::builder::Core;
use smartflow::config::Config;
use smartflow::domain::spec::{InstrumentSpec, MarketKind};
use smartflow::domain::MarketEvent;
use smartflow::execution::{PaperBroker, PortfolioConfig};
use smartflow::risk::{RiskManager, TradingState};
use smartflow::store::{Record, RecordKind, Store};
use smartflow::strategies::detector::Detector;
use smartflow::strategies::ensemble_detector::DetectorKind;
use smartflow::strategies::prepump::PrePumpStrategy;
use smartflow::strategies::signal::{Both, Named, Route};
use smartflow::strategies::whale::WhaleSource;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

const BTC: &str = "hyperliquid:BTC/USDC";

fn trades(data: &Path) -> Vec<MarketEvent> {
    common::core::hyperliquid_btc_trades(data)
        .into_iter()
        .map(MarketEvent::Trade)
        .collect()
}

/// A USDC account trading Hyperliquid's BTC perpetual; whale signals on a 10 000 USD weighted
/// flow of two wallets within 60 s.
fn config(state: TradingState) -> Config {
    let mut c = Config {
        portfolio: PortfolioConfig {
            quote: "USDC".into(),
            starting_balance: dec!(10000),
            quote_equivalents: vec![],
        },
        ..Config::default()
    };
    c.risk.max_order_notional = dec!(1000);
    c.risk.max_position_notional = dec!(1000);
    c.risk.max_gross_exposure = dec!(5000);
    c.risk.min_order_notional = dec!(10);
    c.risk.daily_loss_limit = dec!(500);
    c.risk.qty_step = dec!(0.00001);
    c.risk.initial_state = state;
    c.whales.window_secs = 60;
    c.whales.min_net_notional = dec!(10000);
    c.whales.min_wallets = 2;
    c.instruments.insert(
        BTC.into(),
        InstrumentSpec {
            kind: MarketKind::Perpetual,
            tick_size: dec!(1),
            lot_size: dec!(0.00001),
            min_notional: dec!(10),
            max_leverage: dec!(40),
            max_sig_figs: Some(5),
        },
    );
    c.validate().expect("valid test config");
    c
}

/// Runs the 50 trades through pre-pump rules + whale source, the routed strategies, risk and
/// the paper broker; returns the decision log.
fn run(events: Vec<MarketEvent>, cfg: &Config, tracked: &[(&str, f64)]) -> Vec<Record> {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let tracked: BTreeMap<String, f64> = tracked.iter().map(|(a, w)| (a.to_string(), *w)).collect();
    let mut whale_strategy = PrePumpStrategy::new(cfg.whales.strategy.clone());
    whale_strategy.id_prefix = "w".into();
    let core = Core {
        features: cfg.features.clone(),
        detector: Both {
            first: DetectorKind::Rules(Detector::new(cfg.detector.clone())),
            second: WhaleSource::new(cfg.whales.clone(), tracked),
        },
        strategy: Route {
            first: PrePumpStrategy::new(cfg.strategy.clone()),
            second: whale_strategy,
            second_source: WhaleSource::NAME,
        },
        risk: RiskManager::new(cfg.risk.clone(), "USDC", cfg.portfolio.starting_balance),
        broker: PaperBroker::new(cfg.execution.clone(), &cfg.portfolio)
            .with_specs(&cfg.instruments),
    };
    common::core::run_core(core, events, 7, store.clone()).expect("the run completes");
    store.records().unwrap()
}

fn first(recs: &[Record], kind: RecordKind) -> &Record {
    recs.iter()
        .find(|r| r.kind == kind)
        .unwrap_or_else(|| panic!("no {kind:?} record"))
}

/// The three wallets that bought most in the recording, and the three that sold most.
const BUYERS: [(&str, f64); 3] = [
    ("0x9aa589355bf745db9784c8ef3c646360f11b58af", 0.9),
    ("0x936cf4fb95c30ce83f658b5bbb247e4bb381bb0f", 0.8),
    ("0x8a9683697f7e534d86d9e5e433ed725047991954", 0.7),
];
const SELLERS: [(&str, f64); 3] = [
    ("0xf5d81a135f756ca16544e53c20fc20643ec3ad53", 0.9),
    ("0x6df636c93b1a3f33fe1c4a21b45f82173b6238f3", 0.8),
    ("0x2ca4927174ba283d8a57f60ef3589844035a2930", 0.7),
];

#[test]
fn buying_whales_give_a_long_paper_order_with_its_drivers() {
    let data = require_data!();
    let recs = run(trades(&data), &config(TradingState::Active), &BUYERS);
    let sig = first(&recs, RecordKind::Signal);
    assert_eq!(sig.detail["detector"], "whale_follow");
    assert_eq!(sig.detail["side"], "buy");
    assert_eq!(sig.instrument, BTC);
    assert!(sig.detail["features"]["net_notional"].as_f64().unwrap() >= 10_000.0);
    assert!(sig.detail["features"]["long_wallets"].as_f64().unwrap() >= 2.0);
    // Drivers name the wallets with their weights and notional.
    let drivers = sig.detail["drivers"].as_array().unwrap();
    assert!(drivers
        .iter()
        .any(|d| d["name"].as_str().unwrap().starts_with(BUYERS[0].0)));
    let intent = first(&recs, RecordKind::Intent);
    assert_eq!(
        (intent.detail["side"].as_str(), intent.signal_id.as_deref()),
        (Some("buy"), Some(sig.id.as_str()))
    );
    let verdict = first(&recs, RecordKind::Verdict);
    assert!(!verdict.refused, "{verdict:?}");
    let order = first(&recs, RecordKind::Order);
    assert_eq!(order.detail["side"], "buy");
    assert_eq!(order.detail["purpose"], "entry");
}

#[test]
fn selling_whales_give_a_short_paper_order_on_the_perpetual() {
    let data = require_data!();
    let recs = run(trades(&data), &config(TradingState::Active), &SELLERS);
    let sig = first(&recs, RecordKind::Signal);
    assert_eq!(
        (sig.detail["detector"].as_str(), sig.detail["side"].as_str()),
        (Some("whale_follow"), Some("sell"))
    );
    assert!(sig.detail["features"]["short_wallets"].as_f64().unwrap() >= 2.0);
    assert!(!first(&recs, RecordKind::Verdict).refused);
    let order = first(&recs, RecordKind::Order);
    assert_eq!(
        (
            order.detail["side"].as_str(),
            order.detail["purpose"].as_str()
        ),
        (Some("sell"), Some("entry"))
    );
    // 100 USD at ~84 100 USD/BTC: 0.00118 BTC at the 0.00001 lot, short.
    let fills: Vec<&Record> = recs.iter().filter(|r| r.kind == RecordKind::Fill).collect();
    assert!(
        !fills.is_empty(),
        "the short entry filled on the trades after it"
    );
    assert!(fills.iter().all(|f| f.detail["side"] == "sell"));
}

#[test]
fn a_refusal_by_risk_is_logged_with_its_reason() {
    let data = require_data!();
    let recs = run(trades(&data), &config(TradingState::Reducing), &BUYERS);
    assert_eq!(
        first(&recs, RecordKind::Signal).detail["detector"],
        "whale_follow"
    );
    let verdict = first(&recs, RecordKind::Verdict);
    assert!(verdict.refused);
    assert_eq!(verdict.detail["reasons"][0]["code"], "TRADING_REDUCING");
    assert!(recs.iter().all(|r| r.kind != RecordKind::Order));
}

/// The real trades, then (synthetic, derived) each tracked buyer selling back what it bought,
/// then untracked trades for the exit to fill on.
fn trades_then_buyers_leave(data: &Path) -> Vec<MarketEvent> {
    use smartflow::domain::{Side, Trade, TradeUsers};
    let real = common::core::hyperliquid_btc_trades(data);
    let last = real.last().unwrap().clone();
    let mut bought = std::collections::BTreeMap::new();
    for t in &real {
        let u = t.users.as_ref().unwrap();
        *bought
            .entry(u.buyer.clone())
            .or_insert(rust_decimal::Decimal::ZERO) += t.qty;
        *bought
            .entry(u.seller.clone())
            .or_insert(rust_decimal::Decimal::ZERO) -= t.qty;
    }
    let trade = |k: i64, qty, buyer: &str, seller: &str| Trade {
        ts_ms: last.ts_ms + 1_000 * k,
        qty,
        trade_id: Some(last.trade_id.unwrap() + k as u64),
        aggressor: Side::Sell,
        users: Some(Box::new(TradeUsers {
            buyer: buyer.into(),
            seller: seller.into(),
        })),
        ..last.clone()
    };
    let mut out = real.clone();
    for (k, (w, _)) in BUYERS.iter().enumerate() {
        out.push(trade(1 + k as i64, bought[*w], "0xmarketmaker", w));
    }
    for k in 0..5 {
        out.push(trade(10 + k, dec!(0.05), "0xsomeone", "0xelse"));
    }
    out.into_iter().map(MarketEvent::Trade).collect()
}

#[test]
fn when_the_followed_wallets_leave_the_position_is_closed_reduce_only() {
    let data = require_data!();
    let recs = run(
        trades_then_buyers_leave(&data),
        &config(TradingState::Active),
        &BUYERS,
    );
    let signals: Vec<&Record> = recs
        .iter()
        .filter(|r| r.kind == RecordKind::Signal)
        .collect();
    let exit = signals
        .iter()
        .find(|s| s.detail["exit"] == true)
        .expect("an exit signal");
    assert_eq!(exit.detail["side"], "sell");
    assert!(
        exit.detail["features"]["followed_held_now"]
            .as_f64()
            .unwrap()
            <= 0.5
                * exit.detail["features"]["followed_held_at_signal"]
                    .as_f64()
                    .unwrap()
    );
    let intent = recs
        .iter()
        .find(|r| r.kind == RecordKind::Intent && r.signal_id.as_deref() == Some(exit.id.as_str()))
        .expect("an exit intent");
    assert_eq!(
        (
            intent.detail["action"].as_str(),
            intent.detail["reduce_only"].as_bool()
        ),
        (Some("exit"), Some(true))
    );
    let order = recs
        .iter()
        .find(|r| r.kind == RecordKind::Order && r.detail["purpose"] == "signal_exit")
        .expect("a signal_exit order");
    assert_eq!(
        (
            order.detail["side"].as_str(),
            order.detail["reduce_only"].as_bool()
        ),
        (Some("sell"), Some(true))
    );
    let closed = first(&recs, RecordKind::Exit);
    assert_eq!(closed.detail["reason"], "signal_exit");
}

/// `smartflow replay` of the recorded Hyperliquid trades (a JSON array of websocket items) with
/// `[whales]` on: the tracked wallets come from a snapshot file in the recorded bots' layout
/// (written here: the three buyers, nothing else), and the whale signal, its order and fills land
/// in the decision log, the same on a second run.
#[test]
fn replay_of_recorded_hyperliquid_trades_raises_whale_signals_from_snapshot_files() {
    let data = require_data!();
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<serde_json::Value> = BUYERS
        .iter()
        .map(|(a, _)| {
            serde_json::json!({"address": a, "displayName": null, "accountValue": 1e6,
                "pnl": 1000.0, "roi": 0.01, "volume": 1e6, "positions": []})
        })
        .collect();
    let snap = dir.path().join("snapshot.json");
    let doc = serde_json::json!({"lastUpdated": "2026-02-16T00:00:00Z",
        "whaleTracker": {"daily": rows, "weekly": rows, "biggestPositions": []}});
    std::fs::write(&snap, doc.to_string()).unwrap();
    let cfg = dir.path().join("whales.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[models]
mode = "rules"
[portfolio]
quote = "USDC"
starting_balance = "10000"
[risk]
max_order_notional = "1000"
max_position_notional = "1000"
max_gross_exposure = "5000"
min_order_notional = "10"
daily_loss_limit = "500"
qty_step = "0.00001"
[wallets]
min_observations = 1
[whales]
enabled = true
snapshots = [{snap:?}]
window_secs = 60
min_net_notional = "10000"
[instruments."hyperliquid:BTC/USDC"]
kind = "perpetual"
tick_size = "1"
lot_size = "0.00001"
min_notional = "10"
max_leverage = "40"
"#
        ),
    )
    .unwrap();
    let trades = data.join("hyperliquid/praanaavvv_liquidity_console/ws_trades_BTC.json");
    let replay = |state: &str| {
        let state = dir.path().join(state);
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_smartflow"))
            .args([
                "--config",
                cfg.to_str().unwrap(),
                "--state",
                state.to_str().unwrap(),
            ])
            .args(["replay", "--quiet", "--data", trades.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let store = Store::open(&state).unwrap();
        let mut out = Vec::new();
        let filter = smartflow::cli::log::Filter::default();
        smartflow::cli::log::export(&store, &filter, &mut out).unwrap();
        (store.records().unwrap(), out)
    };
    let (recs, log) = replay("a");
    let sig = first(&recs, RecordKind::Signal);
    assert_eq!(
        (sig.detail["detector"].as_str(), sig.detail["side"].as_str()),
        (Some("whale_follow"), Some("buy"))
    );
    assert_eq!(first(&recs, RecordKind::Order).detail["side"], "buy");
    assert!(recs.iter().any(|r| r.kind == RecordKind::Fill));
    assert_eq!(replay("b").1, log, "deterministic");

    // The same wallets from a leaderboard file (Hyperliquid's layout, written here): the replay
    // follows them from its start, by a `track_wallets` command at the head of the log.
    let rows: Vec<serde_json::Value> = BUYERS
        .iter()
        .map(|(a, _)| {
            let w = serde_json::json!({"pnl": "1000", "roi": "0.01", "vlm": "1000000"});
            serde_json::json!({"ethAddress": a, "accountValue": "1000000", "displayName": null,
                "prize": 0, "windowPerformances": [["day", w], ["week", w]]})
        })
        .collect();
    let lb = dir.path().join("leaderboard.json");
    std::fs::write(
        &lb,
        serde_json::json!({"leaderboardRows": rows}).to_string(),
    )
    .unwrap();
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        &format!("snapshots = [{snap:?}]"),
        &format!("leaderboard = {lb:?}"),
    );
    std::fs::write(&cfg, text).unwrap();
    let (recs, _) = replay("c");
    assert_eq!(recs[0].kind, RecordKind::Command);
    assert_eq!(recs[0].detail["command"], "track_wallets");
    assert_eq!(recs[0].detail["wallets"].as_array().unwrap().len(), 3);
    let line = smartflow::cli::log::summary_line(&recs[0]);
    assert!(
        line.contains("3 wallets: 0x") && line.contains("(perf "),
        "{line}"
    );
    let sig = first(&recs, RecordKind::Signal);
    assert_eq!(
        (sig.detail["detector"].as_str(), sig.detail["side"].as_str()),
        (Some("whale_follow"), Some("buy"))
    );
}
