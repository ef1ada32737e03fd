//! Measures decode → detector latency during a `paper` session in this build (use --release)
//! against a loopback Hyperliquid server replaying the recorded BTC trades (with wallets), over
//! and over, at a steady pace. Prints the status output with the latency histogram.
//!
//! `cargo run --release --example paper_latency -- [SECONDS] [ensemble|rules] [awake]` (default:
//! 20 s, the default detector, the ensemble; `rules` is the rule detector with a low activity
//! guard; `awake` sets `[feeds] keep_cores_awake`).
//! The looped trades keep every baseline flat, so neither detector fires here: the figure is
//! decode → detector only, without orders and fills.

#[path = "../tests/common/fake.rs"]
#[allow(dead_code)]
mod fake;

use smartflow::config::Config;
use smartflow::paper::{run_paper, PaperOptions};
use std::time::Duration;

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20.0);
    let mode = std::env::args().nth(2).unwrap_or_else(|| "ensemble".into());
    let awake = std::env::args().nth(3).is_some_and(|a| a == "awake");
    assert!(
        mode == "ensemble" || mode == "rules",
        "mode: ensemble or rules"
    );
    let data = smartflow::feeds::shared_data_dir();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let base = fake::hyperliquid_frames(&data);
            // The recorded trades again and again (event times shifted forward each round), one
            // frame (5 trades) per millisecond.
            let mut frames = base[..2].to_vec();
            for round in 0..4000i64 {
                for f in &base[2..] {
                    let mut v: serde_json::Value = serde_json::from_str(f).unwrap();
                    for t in v["data"].as_array_mut().unwrap() {
                        let ts = t["time"].as_i64().unwrap() + round * 30_000;
                        t["time"] = serde_json::json!(ts);
                    }
                    frames.push(v.to_string());
                }
            }
            let mut script = fake::Script::all(frames);
            script.pace = Some(Duration::from_millis(1));
            let srv = fake::start_ws(vec![script]).await;
            tx.send(srv.url.clone()).unwrap();
            std::future::pending::<()>().await;
        });
    });
    let url = rx.recv().unwrap();
    let toml = format!(
        r#"
[portfolio]
quote = "USDC"
starting_balance = "10000"
[models]
mode = "{mode}"
[detector]
min_quote_volume = 1.0
[strategy]
entry_notional = "100"
qty_step = "0.00001"
[risk]
max_order_notional = "200"
max_position_notional = "200"
max_gross_exposure = "600"
daily_loss_limit = "200"
min_order_notional = "10"
qty_step = "0.00001"
[feeds]
status_every_secs = 5.0
keep_cores_awake = {awake}
[feeds.binance]
enabled = false
[feeds.bybit]
enabled = false
[feeds.hyperliquid]
ws_url = "{url}"
rest_url = "http://127.0.0.1:9"
instruments = ["BTC/USDC"]
"#
    );
    let cfg = Config::from_toml(&toml, "paper_latency").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let r = run_paper(PaperOptions {
        config: cfg,
        state_dir: dir.path().to_path_buf(),
        duration: Some(Duration::from_secs_f64(secs)),
        print_status: true,
        fault: smartflow::pipeline::Fault::default(),
        tape: None,
    })
    .unwrap();
    let s = r.status.unwrap();
    println!("{}", smartflow::actors::journal::status_line(&s));
    println!(
        "decode→detector latency over {} trades: p50 {} µs, p99 {} µs, max {} µs",
        s.latency_samples, s.latency_p50_us, s.latency_p99_us, s.latency_max_us
    );
}
