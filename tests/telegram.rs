//! The Telegram bot against a fake Bot API on 127.0.0.1, steering a real paper session on
//! loopback venues: authorisation, pause/resume with PAUSED refusals in between, `/set` refused
//! and accepted (and in force after a restart), `/flatten` only after its confirmation and not
//! after the timeout, `/why` on a real decision, alerts under the rate limits and coalesced,
//! Polish messages, and the token in no request body, log record or error text.
//!
//! Its own test binary: the bot starts from `TELEGRAM_BOT_TOKEN`, which must not reach the
//! sessions of other tests.

mod common;

use common::fake_telegram::{self, FakeTelegram};
use common::venues::{config, spawn_paper, start_venues_paced, wait_for_api};
use smartflow::store::{Record, RecordKind, Store, PAPER_STORE};

use smartflow::telegram::catalog::check_html;
use std::time::Duration;

const TOKEN: &str = "7012345678:AAH-test_SECRET-token";
const OWNER: i64 = 4242;
const USER: u64 = 4242;
const STRANGER: i64 = 9999;

fn records(state: &std::path::Path) -> Vec<Record> {
    Store::open_file(state, PAPER_STORE)
        .unwrap()
        .records()
        .unwrap()
}

/// Sends `text` from the owner and waits for the reply satisfying `f`.
fn ask(tg: &FakeTelegram, text: &str, f: impl Fn(&str) -> bool) -> String {
    let before = tg.sent().len();
    tg.push_text(OWNER, USER, text);
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < until {
        if let Some(s) = tg.sent()[before.min(tg.sent().len())..]
            .iter()
            .find(|s| s.chat == OWNER && f(&s.text))
        {
            return s.text.clone();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let got: Vec<String> = tg.sent()[before..].iter().map(|s| s.text.clone()).collect();
    panic!("no reply to {text:?} as expected; got {got:#?}");
}

#[test]
fn the_owner_steers_a_paper_session_from_telegram_and_nobody_else_can() {
    let data = require_data!();
    // SAFETY of set_var: this binary's only test; nothing else reads the environment meanwhile.
    unsafe { std::env::set_var("TELEGRAM_BOT_TOKEN", TOKEN) };
    let (tg, url) = fake_telegram::start();
    let venues = start_venues_paced(data, Some(Duration::from_millis(2)));
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let mut cfg = config(&venues);
    cfg.telegram.api_url = url;
    cfg.telegram.chats = vec![OWNER];
    cfg.telegram.confirm_timeout_secs = 1;
    cfg.telegram.coalesce_secs = 0.3;
    cfg.telegram.per_chat_per_sec = 5;
    let run = spawn_paper(cfg.clone(), &state, 9.0, None);
    wait_for_api(&state);

    let st = ask(&tg, "/status", |t| t.contains("trading state"));
    assert!(st.contains("<b>active</b>") && st.contains("paper"), "{st}");

    // A stranger: one short refusal, nothing runs, every attempt logged.
    tg.push_text(STRANGER, 1, "/halt");
    tg.push_text(STRANGER, 1, "/flatten all");
    let refusal = tg
        .wait_for(STRANGER, 5.0, |t| t.contains("may not command"))
        .unwrap();
    assert!(refusal.text.len() < 80);

    let r = ask(&tg, "/pause", |t| t.starts_with("pause"));
    assert!(r.contains("reducing"), "{r}");
    std::thread::sleep(Duration::from_millis(800));
    let r = ask(&tg, "/resume", |t| t.starts_with("resume"));
    assert!(r.contains("active"), "{r}");

    let bad = ask(&tg, "/set max_position_notional abc", |t| {
        t.contains("refused")
    });
    assert!(bad.contains("max_position_notional"), "{bad}");
    let good = ask(&tg, "/set max_order_notional 150", |t| {
        t.contains("set max_order_notional")
    });
    assert!(good.contains("done"), "{good}");
    let limits = ask(&tg, "/limits", |t| t.contains("Risk limits"));
    assert!(limits.contains("max_order_notional = 150"), "{limits}");
    assert!(
        limits.contains("max_position_notional = 200"),
        "the bad value changed nothing: {limits}"
    );

    // Flatten: nothing before the confirmation, nothing after the timeout.
    let q = ask(&tg, "/flatten all", |t| t.contains("/confirm"));
    let code: String = q.split("/confirm ").nth(1).unwrap()[..6].to_string();
    std::thread::sleep(Duration::from_millis(1300));
    let late = ask(&tg, &format!("/confirm {code}"), |t| {
        t.contains("confirmation")
    });
    assert!(late.contains("No flatten"), "{late}");
    let q = ask(&tg, "/flatten all", |t| t.contains("/confirm"));
    let code: String = q.split("/confirm ").nth(1).unwrap()[..6].to_string();
    let wrong = ask(&tg, "/confirm 1234567", |t| t.contains("Wrong"));
    assert!(wrong.contains("Wrong"));
    let done = ask(&tg, &format!("/confirm {code}"), |t| {
        t.starts_with("flatten all")
    });
    assert!(done.contains("done"), "{done}");

    // Why: the chain of a signal of this session, found with /signals.
    let sigs = ask(&tg, "/signals 3", |t| t.contains("sig-"));
    assert!(sigs.lines().count() <= 3, "{sigs}");
    let id = sigs
        .split_whitespace()
        .find(|w| w.contains("sig-"))
        .unwrap()
        .to_string();
    let why = ask(&tg, &format!("/why {id}"), |t| {
        t.contains(&format!("<b>{id}</b>"))
    });
    assert!(why.contains("score") && why.contains("intent"), "{why}");
    assert!(
        !why.contains("REFUSED"),
        "chain lines in the catalog's words: {why}"
    );
    ask(&tg, "/pnl all", |t| t.contains("Realized PnL"));
    ask(&tg, "/positions", |t| {
        t.contains('@') || t.contains("No open positions")
    });
    ask(&tg, "/help", |t| t.contains("/flatten"));
    let report = run.join().unwrap();
    assert_eq!(report.session, 1);

    let recs = records(&state);
    let cmds: Vec<&Record> = recs
        .iter()
        .filter(|r| r.kind == RecordKind::Command)
        .collect();
    let from = |who: &str| {
        cmds.iter()
            .filter(|r| r.detail["source"].as_str().unwrap().contains(who))
            .count()
    };
    assert_eq!(
        from(&format!("telegram chat {STRANGER}")),
        2,
        "every attempt logged"
    );
    assert!(cmds
        .iter()
        .filter(|r| r.detail["command"] == "unauthorized")
        .all(|r| r.refused
            && r.detail["reason"]
                .as_str()
                .unwrap()
                .contains("unauthorized")));
    assert!(from(&format!("telegram chat {OWNER} user {USER}")) >= 5);
    // Between pause and resume, signals are refused with PAUSED.
    let at = |c: &str| {
        recs.iter()
            .position(|r| r.kind == RecordKind::Command && r.detail["command"] == c)
            .unwrap()
    };
    let (p, q) = (at("pause"), at("resume"));
    let paused: Vec<&Record> = recs[p..q]
        .iter()
        .filter(|r| r.kind == RecordKind::Verdict)
        .collect();
    assert!(!paused.is_empty(), "signals came while paused");
    assert!(paused
        .iter()
        .all(|v| v.detail["reasons"][0]["code"] == "PAUSED"));
    // Flatten ran once (the confirmed one).
    assert_eq!(
        cmds.iter()
            .filter(|r| r.detail["command"] == "flatten")
            .count(),
        1
    );

    // Every message the bot sent is valid HTML for Telegram, in HTML mode.
    for s in tg.sent() {
        check_html(&s.text).unwrap_or_else(|e| panic!("{e}: {}", s.text));
        assert_eq!(s.parse_mode.as_deref(), Some("HTML"));
    }
    // Alerts reached the owner (entries or refusals happened), never the stranger beyond one.
    assert_eq!(tg.sent().iter().filter(|s| s.chat == STRANGER).count(), 1);
    assert!(tg.sent().iter().any(|s| s.chat == OWNER
        && (s.text.contains("Entry")
            || s.text.contains("Refused")
            || s.text.contains("Trading state"))));

    // The token: only in request paths (as the real API wants), never in the store.
    let bytes = std::fs::read(state.join(PAPER_STORE)).unwrap();
    assert!(!bytes.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()));
    assert!(tg.sent().iter().all(|s| !s.text.contains(TOKEN)));

    // A restart: the limit set from Telegram is still in force, in Polish this time.
    let mut pl = cfg.clone();
    pl.telegram.language = smartflow::telegram::catalog::Lang::Pl;
    let run = spawn_paper(pl, &state, 4.0, None);
    wait_for_api(&state);
    let limits = ask(&tg, "/limits", |t| t.contains("Limity ryzyka"));
    assert!(limits.contains("max_order_notional = 150"), "{limits}");
    let st = ask(&tg, "/status", |t| t.contains("stan handlu"));
    check_html(&st).unwrap();
    run.join().unwrap();
}

/// A session as the bot sees it, for the sender alone: decision records pushed by the test.
struct FakePort {
    records: tokio::sync::broadcast::Sender<Record>,
}

impl smartflow::telegram::port::SessionPort for FakePort {
    fn status(&self) -> serde_json::Value {
        serde_json::json!({})
    }
    fn positions(&self) -> serde_json::Value {
        serde_json::json!({})
    }
    fn submit(
        &self,
        _: smartflow::control::Command,
        _: &str,
    ) -> Result<tokio::sync::oneshot::Receiver<Record>, String> {
        Err("no session".into())
    }
    fn records(&self) -> anyhow::Result<Vec<Record>> {
        Ok(vec![])
    }
    fn record(&self, _: &str) -> anyhow::Result<Option<Record>> {
        Ok(None)
    }
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Record> {
        self.records.subscribe()
    }
}

fn refusal(n: usize, instrument: &str) -> Record {
    let mut r = Record::new(
        format!("ver-{n}"),
        RecordKind::Verdict,
        n as i64,
        instrument,
    );
    r.refused = true;
    r.detail = serde_json::json!({
        "decision": "refused",
        "reasons": [{"code": "MAX_GROSS_EXPOSURE"}],
        "trading_state": "active"
    });
    r
}

/// 100 refusals at once (40 of different instruments, then 60 of one) into a queue of 10: the
/// identical ones become one message "×60", the overflow drops the oldest least important and
/// says so, and no chat nor the bot as a whole ever sends faster than its limit.
#[test]
fn a_burst_of_alerts_keeps_to_the_rate_limits_and_is_coalesced() {
    use smartflow::telegram::{bot, handler::Handler, TelegramConfig};
    let (tg, url) = fake_telegram::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (tx, _) = tokio::sync::broadcast::channel(1024);
    let port: std::sync::Arc<dyn smartflow::telegram::port::SessionPort> =
        std::sync::Arc::new(FakePort {
            records: tx.clone(),
        });
    let cfg = TelegramConfig {
        api_url: url.clone(),
        chats: vec![1, 2],
        coalesce_secs: 0.3,
        queue_capacity: 10,
        per_chat_per_sec: 4,
        global_per_sec: 6,
        ..Default::default()
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    rt.block_on(async {
        let b = teloxide::Bot::new(TOKEN).set_api_url(url.parse().unwrap());
        let h = std::sync::Arc::new(Handler::new(cfg.clone(), port.clone(), "test"));
        bot::spawn(b, TOKEN.into(), cfg, h, port, stop_rx);
        tokio::time::sleep(Duration::from_millis(200)).await;
        for n in 0..40 {
            tx.send(refusal(n, &format!("C{n}/USDT"))).unwrap();
        }
        for n in 40..100 {
            tx.send(refusal(n, "PEPE/USDT")).unwrap();
        }
        tokio::time::sleep(Duration::from_secs(6)).await;
        let _ = stop_tx.send(true);
    });
    let sent = tg.sent();
    for chat in [1, 2] {
        let mine: Vec<_> = sent.iter().filter(|s| s.chat == chat).collect();
        assert_eq!(mine.len(), 10, "the queue's 10 alerts, each once");
        for w in mine.windows(2) {
            let gap = w[1].at.duration_since(w[0].at);
            assert!(gap >= Duration::from_millis(220), "per-chat gap {gap:?}");
        }
        assert!(mine
            .iter()
            .any(|s| s.text.contains("PEPE/USDT") && s.text.contains("×60")));
        assert!(mine
            .iter()
            .any(|s| s.text.contains("31 less important alerts dropped")));
    }
    for w in sent.windows(2) {
        let gap = w[1].at.duration_since(w[0].at);
        assert!(gap >= Duration::from_millis(140), "global gap {gap:?}");
    }
}

/// What the bot logs of a failed request holds no token: teloxide drops the URL (which holds
/// it) from its errors, in both forms, and the bot's own redaction covers any text that would
/// still carry it.
#[test]
fn request_errors_are_logged_without_the_token() {
    use teloxide::requests::Requester;
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Nothing listens on port 9 of 127.0.0.1.
    let b = teloxide::Bot::new(TOKEN).set_api_url("http://127.0.0.1:9".parse().unwrap());
    let e = rt.block_on(async { b.get_me().await }).unwrap_err();
    for shown in [e.to_string(), format!("{e:?}")] {
        assert!(
            !shown.contains(TOKEN) && !shown.contains("SECRET"),
            "{shown}"
        );
    }
    let url = format!("error sending request for url (http://127.0.0.1:9/bot{TOKEN}/GetMe)");
    let shown = smartflow::telegram::bot::redact(&url, TOKEN);
    assert!(
        !shown.contains(TOKEN) && shown.contains("/bot<token>/GetMe"),
        "{shown}"
    );
}

/// A decision log as the bot reads it, from a store (a replay's).
struct StorePort(Store);

impl smartflow::telegram::port::SessionPort for StorePort {
    fn status(&self) -> serde_json::Value {
        serde_json::json!({})
    }
    fn positions(&self) -> serde_json::Value {
        serde_json::json!({"quote": "BTC"})
    }
    fn submit(
        &self,
        _: smartflow::control::Command,
        _: &str,
    ) -> Result<tokio::sync::oneshot::Receiver<Record>, String> {
        Err("a replay takes no commands".into())
    }
    fn records(&self) -> anyhow::Result<Vec<Record>> {
        self.0.records()
    }
    fn record(&self, id: &str) -> anyhow::Result<Option<Record>> {
        self.0.record(id)
    }
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Record> {
        tokio::sync::broadcast::channel(1).1
    }
}

/// `/why` on the ensemble's alert of a replayed pump (GVT/BTC, 2020-09-17): the probability,
/// the level with its calibration precision, the top market facts in plain units, then the
/// chain (intent, verdict, orders, fills, exit); the same in Polish; valid HTML throughout.
#[test]
fn why_explains_a_replayed_pump_alert_in_english_and_polish() {
    use smartflow::telegram::{catalog::Lang, handler::Handler, TelegramConfig};
    let data = require_data!();
    let dir = tempfile::tempdir().unwrap();
    smartflow::replay::run_replay(smartflow::replay::ReplayOptions {
        data: vec![common::pump_file(&data, "GVT_2020-09-17_17.59.csv.gz")],
        config: smartflow::config::Config::default(),
        state_dir: dir.path().to_path_buf(),
        fault: smartflow::pipeline::Fault::default(),
        resume: false,
        progress: false,
    })
    .unwrap();
    let port: std::sync::Arc<dyn smartflow::telegram::port::SessionPort> =
        std::sync::Arc::new(StorePort(Store::open(dir.path()).unwrap()));
    let rt = tokio::runtime::Runtime::new().unwrap();
    for (lang, words) in [
        (
            Lang::En,
            [
                "probability",
                "level watch",
                "price trend",
                "buys in 25 s",
                "exit",
            ],
        ),
        (
            Lang::Pl,
            [
                "prawdopodobieństwo",
                "poziom watch",
                "trend ceny",
                "kupna w 25 s",
                "wyjście",
            ],
        ),
    ] {
        let cfg = TelegramConfig {
            chats: vec![OWNER],
            language: lang,
            ..Default::default()
        };
        let h = Handler::new(cfg, port.clone(), "replay");
        for ask in ["/why sig-1", "/why gvt/btc"] {
            let r = rt.block_on(h.on_text(OWNER, Some(USER), ask));
            let why = &r[0];
            check_html(why).unwrap_or_else(|e| panic!("{e}: {why}"));
            for w in words {
                assert!(why.contains(w), "{lang:?} {ask}: no {w:?} in\n{why}");
            }
            assert!(why.lines().count() <= 20, "{why}");
        }
        let sigs = rt.block_on(h.on_text(OWNER, Some(USER), "/signals"));
        check_html(&sigs[0]).unwrap();
        assert!(sigs[0].contains("GVT/BTC"), "{}", sigs[0]);
        let nothing = rt.block_on(h.on_text(OWNER, Some(USER), "/why sig-999"));
        check_html(&nothing[0]).unwrap();
        let unknown = rt.block_on(h.on_text(OWNER, Some(USER), "/sell <everything> & more"));
        check_html(&unknown[0]).unwrap_or_else(|e| panic!("{e}: {}", unknown[0]));
    }
}
