//! The binary's live commands against a loopback Hyperliquid venue: `paper` stopped with Ctrl-C
//! (SIGINT), `status`, `log --paper`, `record` → `replay`; and the universe rule over REST.

mod common;

use common::fake;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn config(dir: &std::path::Path, url: &str) -> std::path::PathBuf {
    let p = dir.join("live.toml");
    std::fs::write(
        &p,
        format!(
            r#"
[portfolio]
quote = "USDC"
starting_balance = "10000"
[features]
baseline_secs = 25
warmup_fraction = 0.0
[models]
# Plumbing tests: the rule detector with a zero threshold fires on every buy.
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
[feeds]
status_every_secs = 0.3
[feeds.binance]
enabled = false
[feeds.bybit]
enabled = false
[feeds.hyperliquid]
ws_url = "{url}"
# No metadata endpoint here: instrument specs are skipped with a warning.
rest_url = "http://127.0.0.1:9"
instruments = ["BTC/USDC"]
"#
        ),
    )
    .unwrap();
    p
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_smartflow"));
    c.env_remove("SMARTFLOW_CONFIG")
        .env_remove("SMARTFLOW_STATE");
    c
}

#[test]
fn paper_stops_cleanly_on_ctrl_c_then_status_and_log_show_the_session() {
    let data = require_data!();
    let url = fake::hyperliquid_feed(data);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &url);
    let st = dir.path().join("state");
    let child = bin()
        .args([
            "--config",
            cfg.to_str().unwrap(),
            "--state",
            st.to_str().unwrap(),
            "paper",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    // While it runs: `control` and `status` go through the session's control API.
    let run = |args: &[&str]| {
        let o = bin()
            .args(["--state", st.to_str().unwrap()])
            .args(args)
            .output()
            .unwrap();
        let text =
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
        (o.status.success(), text)
    };
    let (ok, text) = run(&["control", "pause"]);
    assert!(
        ok && text.contains("pause from cli: applied, trading state reducing"),
        "{text}"
    );
    let (ok, text) = run(&["control", "set", "max_orders", "0"]);
    assert!(!ok && text.contains("REFUSED risk.max_orders"), "{text}");
    let (ok, text) = run(&["control", "set", "max_orders", "7"]);
    assert!(ok && text.contains("max_orders 10 → 7"), "{text}");
    let (ok, text) = run(&["control", "buy", "everything"]);
    assert!(!ok && text.contains("unknown command"), "{text}");
    let (ok, text) = run(&["status"]);
    assert!(ok, "{text}");
    for w in [
        "(running)",
        "trading state reducing",
        "max_orders = 7",
        "equity",
    ] {
        assert!(text.contains(w), "live status lacks {w}: {text}");
    }
    std::thread::sleep(Duration::from_millis(1500));
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let t0 = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(30));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{:?} {stderr} {stdout}", out.status);
    assert!(stdout.contains("paper session 1 ended"), "{stdout}");
    assert!(
        stderr.contains("[status] hyperliquid up"),
        "status lines: {stderr}"
    );
    assert!(stderr.contains("flushing the journal"), "{stderr}");

    let s = bin()
        .args([
            "--config",
            cfg.to_str().unwrap(),
            "--state",
            st.to_str().unwrap(),
            "status",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&s.stdout);
    assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
    for w in [
        "hyperliquid",
        "frames",
        "equity",
        "decode→detector latency",
        "open positions",
    ] {
        assert!(text.contains(w), "status lacks {w}: {text}");
    }
    let log = bin()
        .args([
            "--state",
            st.to_str().unwrap(),
            "log",
            "--paper",
            "--kind",
            "signal",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&log.stderr).into_owned();
    let log = String::from_utf8_lossy(&log.stdout);
    assert!(
        log.lines().count() > 0 && log.contains("p1-sig-1"),
        "{log} {err}"
    );
}

#[test]
fn record_then_replay_the_recording() {
    let data = require_data!();
    let url = fake::hyperliquid_feed(data);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &url);
    let rec = dir.path().join("s.jsonl.gz");
    let o = bin()
        .args([
            "--config",
            cfg.to_str().unwrap(),
            "record",
            "--out",
            rec.to_str().unwrap(),
            "--duration",
            "2",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        stdout.contains("recorded") && stdout.contains("trades"),
        "{stdout}"
    );
    let st = dir.path().join("state");
    let o = bin()
        .args([
            "--config",
            cfg.to_str().unwrap(),
            "--state",
            st.to_str().unwrap(),
            "replay",
            "--quiet",
            "--data",
            rec.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        stdout.contains("replay finished") && stdout.contains("malformed lines 0"),
        "{stdout}"
    );
}

#[test]
fn universe_rule_picks_pairs_from_the_venue_metadata() {
    // A small fixture in Binance's `GET /api/v3/ticker/24hr` shape.
    let tickers = serde_json::json!([
        {"symbol": "GNTBTC", "quoteVolume": "12.5"},
        {"symbol": "ADXBTC", "quoteVolume": "80.0"},
        {"symbol": "ETHBTC", "quoteVolume": "5400.0"},
        {"symbol": "NKNUSDT", "quoteVolume": "20.0"},
        {"symbol": "EDOBTC", "quoteVolume": "0.5"}
    ]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let app = axum::Router::new().route(
            "/api/v3/ticker/24hr",
            axum::routing::get(move || {
                let t = tickers.clone();
                async move { axum::Json(t) }
            }),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        let cfg = smartflow::feeds::config::VenueFeedConfig {
            rest_url: url,
            instruments: vec!["BNB/BTC".into()],
            universe_quotes: vec!["BTC".into()],
            universe_min_quote_volume: 1.0,
            universe_max_quote_volume: 100.0,
            universe_max: 10,
            ..Default::default()
        };
        let got = smartflow::paper::instruments_of(smartflow::feeds::venues::Venue::Binance, &cfg)
            .await
            .unwrap();
        assert_eq!(got, vec!["ADX/BTC", "BNB/BTC", "GNT/BTC"]);
    });
}

/// The README's main job with the default detector (the ensemble: built-in model, trees walked
/// natively) where there is no Python and no ONNX Runtime: an empty PATH and no other variable.
/// Every trade reaches the detector; the session ends cleanly.
#[test]
fn paper_with_the_default_detector_needs_neither_python_nor_onnx_runtime() {
    let data = require_data!();
    let url = fake::hyperliquid_feed(data);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("default-detector.toml");
    let text = std::fs::read_to_string(config(dir.path(), &url)).unwrap();
    // The same venue and limits, with the detector sections removed: the defaults apply.
    let kept: Vec<&str> = text
        .split("\n[")
        .filter(|s| !s.starts_with("models]") && !s.starts_with("detector]"))
        .filter(|s| !s.starts_with("features]"))
        .collect();
    std::fs::write(&cfg, kept.join("\n[")).unwrap();
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_smartflow"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_clear()
        .env("PATH", empty.path())
        .arg("--config")
        .arg(&cfg)
        .arg("--state")
        .arg(dir.path().join("state"))
        .args(["paper", "--duration", "3"])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{:?} {stderr} {stdout}", out.status);
    assert!(stdout.contains("paper session 1 ended"), "{stdout}");
    let last = stderr
        .lines()
        .rfind(|l| l.contains("decode→detector"))
        .unwrap_or_else(|| panic!("no status line: {stderr}"));
    let n: u64 = last
        .split("(n=")
        .nth(1)
        .and_then(|s| s.trim_end_matches(')').parse().ok())
        .unwrap_or_else(|| panic!("no sample count in {last}"));
    assert!(n > 0, "no trade reached the detector: {last}");
}

/// Σ signed fill quantities per instrument in a decision log.
fn filled_positions(
    recs: &[smartflow::store::Record],
) -> std::collections::BTreeMap<String, rust_decimal::Decimal> {
    let mut m: std::collections::BTreeMap<String, rust_decimal::Decimal> = Default::default();
    for r in recs
        .iter()
        .filter(|r| r.kind == smartflow::store::RecordKind::Fill)
    {
        let q: rust_decimal::Decimal = r.detail["qty"].as_str().unwrap().parse().unwrap();
        let q = if r.detail["side"] == "buy" { q } else { -q };
        *m.entry(r.instrument.clone()).or_default() += q;
    }
    m.retain(|_, q| !q.is_zero());
    m
}

/// The journal, and positions by instrument from the stored broker state.
fn paper_state(
    st: &std::path::Path,
) -> (
    Vec<smartflow::store::Record>,
    std::collections::BTreeMap<String, rust_decimal::Decimal>,
    usize,
) {
    let store = smartflow::store::Store::open_file(st, smartflow::store::PAPER_STORE).unwrap();
    let recs = store.records().unwrap();
    let broker: Option<smartflow::execution::PaperBroker> = store
        .meta(smartflow::store::META_EXECUTOR)
        .unwrap()
        .map(|b| serde_json::from_slice(&b).unwrap());
    let (pos, orders) = broker
        .map(|b| {
            let pos = b
                .portfolio
                .holdings()
                .map(|h| (h.instrument.to_string(), h.qty))
                .collect();
            (pos, b.live_orders().count())
        })
        .unwrap_or_default();
    (recs, pos, orders)
}

#[test]
fn paper_killed_with_sigkill_loses_and_duplicates_nothing_journaled() {
    use rand::{Rng, SeedableRng};
    let data = require_data!();
    let url = fake::hyperliquid_feed(data);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &url);
    let st = dir.path().join("state");
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut before: Vec<smartflow::store::Record> = Vec::new();
    for session in 1..=3 {
        let mut child = bin()
            .args(["--config", cfg.to_str().unwrap()])
            .args(["--state", st.to_str().unwrap(), "paper", "--quiet"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.random_range(800..2500)));
        child.kill().unwrap(); // SIGKILL: no flush, no cleanup
        child.wait().unwrap();

        let (recs, positions, _) = paper_state(&st);
        assert!(
            recs.starts_with(&before),
            "session {session}: journaled records lost"
        );
        let ids: std::collections::HashSet<&str> = recs.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(
            ids.len(),
            recs.len(),
            "session {session}: duplicate records"
        );
        assert_eq!(
            filled_positions(&recs),
            positions,
            "session {session}: positions are not the sum of the journaled fills"
        );
        assert!(
            recs.len() > before.len(),
            "session {session} journaled nothing"
        );
        before = recs;
    }
    assert!(
        before
            .iter()
            .any(|r| r.kind == smartflow::store::RecordKind::Fill),
        "the sessions traded"
    );
    // `status` after a kill: the address file is stale, the stored status answers.
    let s = bin()
        .args(["--state", st.to_str().unwrap(), "status"])
        .output()
        .unwrap();
    assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
    // A clean restart resumes the open positions and orders it finds.
    let (_, positions, orders) = paper_state(&st);
    let out = bin()
        .args(["--config", cfg.to_str().unwrap()])
        .args([
            "--state",
            st.to_str().unwrap(),
            "paper",
            "--quiet",
            "--duration",
            "1",
        ])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("paper session 4 ended"), "{stdout}");
    if positions.len() + orders > 0 {
        let line = format!(
            "resuming {} open paper positions and {orders} live orders",
            positions.len()
        );
        assert!(stderr.contains(&line), "{stderr}");
    }
    let (recs, positions, _) = paper_state(&st);
    assert!(recs.starts_with(&before));
    assert_eq!(filled_positions(&recs), positions);
}
