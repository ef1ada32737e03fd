//! `smartflow live` as a user runs it, against a loopback Hyperliquid market feed (real
//! recorded BTC trades) and a fake Hyperliquid exchange that verifies every signature
//! (tests/common/fake_exchange.rs): safety at start (the key, mainnet asked twice, the first
//! lines), real signed orders, a refusal that never reaches the venue, and `kill -9` between
//! submit and acknowledgement followed by a restart that finds the order by its cloid.

mod common;

use common::fake;
use common::fake_exchange::{self, FakeExchange};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const KEY: &str = "0x0123456789012345678901234567890123456789012345678901234567890123";
const ACCOUNT: &str = "0x14791697260e4c9a71f18484c9f997b308e59325";

/// The rule detector with a zero threshold: every buy is a signal (plumbing, not alpha).
fn config(dir: &std::path::Path, ws: &str, ex: &FakeExchange, extra: &str) -> std::path::PathBuf {
    let p = dir.join("live.toml");
    let text = format!(
        r#"
[portfolio]
quote = "USDC"
starting_balance = "1000"
[features]
baseline_secs = 25
warmup_fraction = 0.0
[models]
mode = "rules"
[detector]
threshold = 0.0
min_buy_trades = 0.0
min_quote_volume = 0.0
[strategy]
entry_notional = "100"
qty_step = "0.00001"
[risk]
max_order_notional = "200"
max_position_notional = "200"
max_gross_exposure = "2000"
daily_loss_limit = "200"
min_order_notional = "10"
qty_step = "0.00001"
{extra}
[feeds]
status_every_secs = 0
[feeds.binance]
enabled = false
[feeds.bybit]
enabled = false
[feeds.hyperliquid]
ws_url = "{ws}"
rest_url = "{url}"
instruments = ["BTC/USDC"]
[live]
api_url = "{url}"
ws_url = "{stream}"
poll_secs = 0.3
"#,
        url = ex.url,
        stream = ex.ws_url
    );
    std::fs::write(&p, text).unwrap();
    p
}

fn live(
    cfg: &std::path::Path,
    state: &std::path::Path,
    args: &[&str],
    key: Option<&str>,
) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_smartflow"));
    c.env_remove("SMARTFLOW_CONFIG")
        .env_remove("SMARTFLOW_STATE")
        .env_remove("HYPERLIQUID_PRIVATE_KEY")
        .args([
            "--config",
            cfg.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
            "live",
        ])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(k) = key {
        c.env("HYPERLIQUID_PRIVATE_KEY", k);
    }
    c
}

fn output(c: Child) -> (bool, String) {
    let o = c.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&o.stderr).into_owned() + &String::from_utf8_lossy(&o.stdout);
    (o.status.success(), text)
}

#[test]
fn live_refuses_to_start_without_a_key_or_with_mainnet_asked_once() {
    let ex = fake_exchange::start(ACCOUNT);
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("state");
    let cfg = config(dir.path(), "ws://127.0.0.1:9", &ex, "");
    let (ok, text) = output(live(&cfg, &st, &["--duration", "1"], None).spawn().unwrap());
    assert!(
        !ok && text.contains("HYPERLIQUID_PRIVATE_KEY is not set"),
        "{text}"
    );
    let (ok, text) = output(live(&cfg, &st, &["--mainnet"], Some(KEY)).spawn().unwrap());
    assert!(
        !ok && text.contains("--mainnet given but [live] network is \"testnet\""),
        "{text}"
    );
    let main = config(dir.path(), "ws://127.0.0.1:9", &ex, "");
    let t = std::fs::read_to_string(&main)
        .unwrap()
        .replace("[live]\n", "[live]\nnetwork = \"mainnet\"\n");
    std::fs::write(&main, t).unwrap();
    let (ok, text) = output(live(&main, &st, &[], Some(KEY)).spawn().unwrap());
    assert!(!ok && text.contains("refusing mainnet"), "{text}");
    assert!(!text.contains(&KEY[2..]), "the key never shows");
    let b = ex.book.lock().unwrap();
    assert_eq!((b.info_requests, b.actions), (0, 0), "nothing connected");
}

/// `smartflow log --live ARGS` of the state folder `st`.
fn live_log(st: &std::path::Path, args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_smartflow"))
        .args(["--state", st.to_str().unwrap(), "log", "--live"])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn wait_for(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(
            t0.elapsed() < Duration::from_secs(secs),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Reducing from the start (`initial_state = "reducing"`): every signal is refused by risk and
/// the venue never sees an order.
#[test]
fn a_refused_signal_never_reaches_the_venue() {
    let data = require_data!();
    let ws = fake::hyperliquid_feed(data);
    let ex = fake_exchange::start(ACCOUNT);
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("state");
    let cfg = config(dir.path(), &ws, &ex, "initial_state = \"reducing\"");
    let (ok, text) = output(
        live(&cfg, &st, &["--duration", "4", "--quiet"], Some(KEY))
            .spawn()
            .unwrap(),
    );
    assert!(ok, "{text}");
    let log = live_log(&st, &["--refused"]);
    assert!(
        log.contains("REFUSED TRADING_REDUCING"),
        "refusals in the log: {log}"
    );
    assert!(ex.book.lock().unwrap().orders.is_empty());
}

/// The first lines name the venue, network, account and limits; a signal becomes a signed
/// order with a cloid on the venue; `kill -9` while the venue has not answered; the restart
/// reconciles (the order found by cloid or from the saved state, its fill applied) and never
/// sends that order again.
#[test]
fn live_orders_and_a_kill_between_submit_and_ack_sends_nothing_twice() {
    let data = require_data!();
    let ws = fake::hyperliquid_feed(data);
    let ex = fake_exchange::start(ACCOUNT);
    ex.book.lock().unwrap().hold = true;
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("state");
    let cfg = config(dir.path(), &ws, &ex, "");
    let mut child = live(&cfg, &st, &["--quiet"], Some(KEY)).spawn().unwrap();
    wait_for("the first order", 30, || {
        !ex.book.lock().unwrap().orders.is_empty()
    });
    std::thread::sleep(Duration::from_millis(300));
    Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status()
        .unwrap();
    let _ = child.wait();
    let (first, sent_before) = {
        let mut b = ex.book.lock().unwrap();
        b.hold = false;
        (b.orders[0].clone(), b.orders.len())
    };
    assert_eq!(sent_before, 1, "one order before the venue answered");
    assert_eq!((first.a, first.b, first.r), (0, true, false));
    let cloid = first.c.clone().expect("cloid");
    let (ok, text) = output(
        live(&cfg, &st, &["--duration", "3", "--quiet"], Some(KEY))
            .spawn()
            .unwrap(),
    );
    assert!(ok, "{text}");
    for w in [
        format!("smartflow live: Hyperliquid testnet at {}", ex.url),
        format!("account {ACCOUNT}"),
        "limits (USDC): order 200, position 200, gross 2000".to_string(),
        "reconciled with the venue: 1 missing fills applied".to_string(),
    ] {
        assert!(text.contains(&w), "lacks {w:?}: {text}");
    }
    let b = ex.book.lock().unwrap();
    assert_eq!(b.bad_signatures, 0);
    let again = b
        .orders
        .iter()
        .filter(|o| o.c.as_deref() == Some(cloid.as_str()))
        .count();
    assert_eq!(again, 1, "the order was never sent twice");
    drop(b);
    let log = live_log(&st, &["--kind", "fill"]);
    assert!(
        log.lines().count() >= 1,
        "the fill made while down is in the log: {log}"
    );
}
