//! The Hyperliquid execution client against a fake venue on 127.0.0.1 that verifies every
//! signature (tests/common/fake_exchange.rs): rounded, signed orders with cloids; brackets as
//! venue orders (reduce-only take-profit, trigger stop-loss); halt cancels them; typed
//! rejections; limits counting the venue's own positions; and, after a crash, reconciliation:
//! an order sent but never acknowledged is found by its cloid (not sent twice), a fill made
//! while smartflow was down is applied, and positions that cannot agree block entries.

mod common;

use common::fake_exchange::{self, FakeExchange};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use smartflow::config::Config;
use smartflow::domain::intent::{BracketSpec, OrderIntent, TakeProfitStep};
use smartflow::domain::{Instrument, MarketEvent, Side, Trade};
use smartflow::execution::hyperliquid::api::HlApi;
use smartflow::execution::hyperliquid::signing::{Network, Signer};
use smartflow::execution::{ApprovedOrder, BrokerEvent, ExecutionClient};
use smartflow::feeds::hyperliquid_info::WeightBudget;
use smartflow::live::{connect, Connected, LiveBroker};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The Python SDK's test key (its address: 0x14791697260e4c9a71f18484c9f997b308e59325).
const KEY: &str = "0x0123456789012345678901234567890123456789012345678901234567890123";
const BTC: &str = "hyperliquid:BTC/USDC";

fn signer() -> Signer {
    Signer::from_hex(KEY, "test key").unwrap()
}

fn config() -> Config {
    let mut c = Config::default();
    c.live.poll_secs = 0.2;
    c.live.positions_secs = 1.0;
    c.risk.max_order_notional = dec!(5000);
    c.risk.max_position_notional = dec!(2000);
    c.risk.max_gross_exposure = dec!(3000);
    c
}

fn api(fake: &FakeExchange, key: Signer) -> HlApi {
    let budget = Arc::new(WeightBudget::new(1200));
    HlApi::new(&fake.url, key, Network::Testnet, budget)
}

fn start(
    fake: &FakeExchange,
    cfg: &Config,
    dir: &Path,
    stored: Option<&[u8]>,
    session: u64,
) -> Connected {
    connect(
        &streamed(cfg, fake),
        api(fake, signer()),
        stored,
        session,
        dir,
    )
    .unwrap()
}

/// `cfg` with the account stream at the fake venue (never the real network).
fn streamed(cfg: &Config, fake: &FakeExchange) -> Config {
    let mut c = cfg.clone();
    c.live.ws_url.clone_from(&fake.ws_url);
    c
}

fn trade(ts: i64, px: Decimal) -> MarketEvent {
    MarketEvent::Trade(Trade {
        ts_ms: ts,
        instrument: Instrument::new(BTC),
        price: px,
        qty: dec!(0.5),
        aggressor: Side::Buy,
        trade_id: None,
        users: None,
    })
}

fn entry(qty: Decimal) -> ApprovedOrder {
    ApprovedOrder {
        intent: OrderIntent {
            id: "int-1".into(),
            signal_id: "sig-1".into(),
            ts_ms: 0,
            instrument: Instrument::new(BTC),
            side: Side::Buy,
            qty,
            ref_price: dec!(83712),
            reduce_only: false,
            bracket: BracketSpec {
                take_profit: vec![TakeProfitStep {
                    gain_pct: dec!(4),
                    fraction: dec!(1),
                }],
                stop_loss_pct: dec!(3),
                max_hold_ms: 86_400_000,
            },
            leverage: Some(dec!(2)),
        },
        verdict_id: "ver-1".into(),
        qty,
    }
}

/// Feeds trades to the broker until `done` holds over what it reported (10 s at most).
fn pump(b: &mut LiveBroker, out: &mut Vec<BrokerEvent>, done: impl Fn(&[BrokerEvent]) -> bool) {
    let t0 = Instant::now();
    let mut ts = 1_790_000_000_000;
    while !done(out) {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "timed out; events: {out:#?}"
        );
        ts += 100;
        b.on_market(&trade(ts, dec!(83712)), out);
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn fills(ev: &[BrokerEvent]) -> Vec<(Decimal, Decimal)> {
    ev.iter()
        .filter_map(|e| match e {
            BrokerEvent::Fill { fill, .. } => Some((fill.price, fill.qty)),
            _ => None,
        })
        .collect()
}

fn done_reasons(ev: &[BrokerEvent]) -> Vec<String> {
    ev.iter()
        .filter_map(|e| match e {
            BrokerEvent::OrderDone { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

fn btc_position(b: &LiveBroker) -> Decimal {
    b.portfolio()
        .perps
        .get(&Instrument::new(BTC))
        .map_or(Decimal::ZERO, |p| p.qty)
}

/// An entry and its bracket: the entry is an IOC buy of 0.01234 (lot 10^-5) at the last trade
/// plus 50 bps to 5 significant figures (84131), signed (the fake verified every signature), with
/// a cloid; the fill comes back with its fee; then a reduce-only take-profit at +4 % and a
/// reduce-only stop-loss trigger at −3 %. `halt` cancels both on the venue.
#[test]
fn an_entry_is_a_rounded_signed_order_with_a_cloid_and_halt_cancels_its_bracket() {
    let fake = venue();
    let dir = tempfile::tempdir().unwrap();
    let Connected {
        mut broker,
        reconciled,
    } = start(&fake, &config(), dir.path(), None, 1);
    assert_eq!(reconciled.account_value, dec!(1000));
    assert_eq!(
        broker.portfolio().cash,
        dec!(1000),
        "cash starts at the account value"
    );
    let mut out = vec![];
    broker.on_market(&trade(1_790_000_000_000, dec!(83712)), &mut out);
    broker.submit(&entry(dec!(0.0123456)), 1_790_000_000_000, &mut out);
    pump(&mut broker, &mut out, |e| {
        fills(e).len() == 1 && broker_orders(e) >= 3
    });
    let b = fake.book.lock().unwrap();
    assert_eq!(b.bad_signatures, 0);
    let o = &b.orders[0];
    assert_eq!((o.a, o.b, o.r), (0, true, false));
    assert_eq!((o.p.as_str(), o.s.as_str()), ("84131", "0.01234"));
    assert_eq!(o.t.limit.as_ref().unwrap().tif, "Ioc");
    let cloid = o.c.clone().expect("a cloid on every order");
    assert!(cloid.starts_with("0x") && cloid.len() == 34, "{cloid}");
    assert_eq!(fills(&out), vec![(dec!(83712), dec!(0.01234))]);
    let (tp, sl) = (&b.orders[1], &b.orders[2]);
    assert!(
        tp.r && sl.r && !tp.b && !sl.b,
        "exits are reduce-only sells"
    );
    assert_eq!(tp.t.limit.as_ref().unwrap().tif, "Gtc");
    let trig =
        sl.t.trigger
            .as_ref()
            .expect("the stop-loss is a venue trigger order");
    assert_eq!((trig.tpsl.as_str(), trig.is_market), ("sl", true));
    assert_eq!(trig.trigger_px, "81200"); // 83712 × 0.97 = 81200.64, rounded away from the market
    assert_eq!(tp.p, "87061"); // 83712 × 1.04 = 87060.48, a sell limit rounds up
    let cloids: std::collections::BTreeSet<_> = b.orders.iter().map(|o| o.c.clone()).collect();
    assert_eq!(cloids.len(), 3, "one cloid per order");
    drop(b);
    assert_eq!(btc_position(&broker), dec!(0.01234));
    out.clear();
    broker.on_command(&smartflow::domain::command::Command::Halt, &mut out);
    pump(&mut broker, &mut out, |e| done_reasons(e).len() == 2);
    assert!(
        done_reasons(&out).iter().all(|r| r == "canceled: halt"),
        "{out:?}"
    );
    let b = fake.book.lock().unwrap();
    assert_eq!(
        b.book.iter().filter(|o| o.status == "open").count(),
        0,
        "nothing rests"
    );
    assert_eq!(broker.live_orders().count(), 0);
}

fn broker_orders(ev: &[BrokerEvent]) -> usize {
    ev.iter()
        .filter(|e| matches!(e, BrokerEvent::OrderNew { .. }))
        .count()
}

/// Venue rejections are typed refusals with a stable code in the order's done reason.
#[test]
fn rejected_orders_are_typed_refusals() {
    let fake = venue();
    let dir = tempfile::tempdir().unwrap();
    let mut broker = start(&fake, &config(), dir.path(), None, 1).broker;
    let mut out = vec![];
    broker.on_market(&trade(1_790_000_000_000, dec!(83712)), &mut out);
    let cases = [
        (
            "Insufficient margin to place order. asset=0",
            "VENUE_INSUFFICIENT_MARGIN",
        ),
        (
            "Price must be divisible by tick size. asset=0",
            "VENUE_TICK_SIZE",
        ),
    ];
    for (msg, code) in cases {
        fake.book.lock().unwrap().reject_next = Some(msg.into());
        out.clear();
        broker.submit(&entry(dec!(0.01)), 1_790_000_000_000, &mut out);
        pump(&mut broker, &mut out, |e| !done_reasons(e).is_empty());
        let r = &done_reasons(&out)[0];
        assert!(r.starts_with(&format!("rejected: {code}: {msg}")), "{r}");
        assert_eq!(btc_position(&broker), Decimal::ZERO);
    }
}

/// A key that is not the account's: the venue refuses the signature, a typed refusal.
#[test]
fn a_wrong_key_is_refused_by_the_venue() {
    let fake = fake_exchange::start("0x14791697260e4c9a71f18484c9f997b308e59325");
    let dir = tempfile::tempdir().unwrap();
    let other = Signer::from_hex(&format!("0x{}", "11".repeat(32)), "other").unwrap();
    let api = api(&fake, other).with_account("0x14791697260e4c9a71f18484c9f997b308e59325");
    let cfg = streamed(&config(), &fake);
    let mut broker = connect(&cfg, api, None, 1, dir.path()).unwrap().broker;
    let mut out = vec![];
    broker.on_market(&trade(1_790_000_000_000, dec!(83712)), &mut out);
    broker.submit(&entry(dec!(0.01)), 1_790_000_000_000, &mut out);
    pump(&mut broker, &mut out, |e| !done_reasons(e).is_empty());
    assert!(
        done_reasons(&out)[0].starts_with("rejected: VENUE_SIGNATURE"),
        "{out:?}"
    );
    assert_eq!(fake.book.lock().unwrap().bad_signatures, 1);
}

/// A position opened outside smartflow counts: with 0.02 BTC (≈ 1674 USDC) already held on
/// the venue and max_position_notional 2000, an entry of ≈ 845 USDC is refused before it is
/// sent; a smaller one passes.
#[test]
fn position_limits_count_the_venues_own_positions() {
    let fake = venue();
    fake.book
        .lock()
        .unwrap()
        .positions
        .push(("BTC".into(), dec!(0.02), dec!(80000)));
    let dir = tempfile::tempdir().unwrap();
    let mut broker = start(&fake, &config(), dir.path(), None, 1).broker;
    let mut out = vec![];
    broker.on_market(&trade(1_790_000_000_000, dec!(83712)), &mut out);
    broker.submit(&entry(dec!(0.01)), 1_790_000_000_000, &mut out);
    pump(&mut broker, &mut out, |e| !done_reasons(e).is_empty());
    let r = &done_reasons(&out)[0];
    assert!(r.starts_with("rejected: VENUE_LIMIT_BREACH"), "{r}");
    assert!(r.contains("max_position_notional 2000"), "{r}");
    assert!(
        fake.book.lock().unwrap().orders.is_empty(),
        "the refusal never reached the venue"
    );
    out.clear();
    broker.submit(&entry(dec!(0.0035)), 1_790_000_000_100, &mut out);
    pump(&mut broker, &mut out, |e| fills(e).len() == 1);
    assert_eq!(fake.book.lock().unwrap().orders[0].s, "0.0035");
}

/// `kill -9` between submit and acknowledgement: the venue has the order (and filled it), the
/// store does not know the answer. The restart finds the order by its cloid, never sends it
/// again, and applies its fill. Both crash points: after the state with the submitted order
/// was saved, and before (the order only in the outbox).
#[test]
fn a_crash_before_the_acknowledgement_finds_the_order_by_cloid() {
    for saved_after_submit in [true, false] {
        let fake = venue();
        let dir = tempfile::tempdir().unwrap();
        let cfg = config();
        let mut broker = start(&fake, &cfg, dir.path(), None, 1).broker;
        let mut out = vec![];
        broker.on_market(&trade(1_790_000_000_000, dec!(83712)), &mut out);
        let before = broker.state().unwrap();
        fake.book.lock().unwrap().hold = true;
        broker.submit(&entry(dec!(0.01)), 1_790_000_000_000, &mut out);
        let t0 = Instant::now();
        while fake.book.lock().unwrap().orders.is_empty() {
            assert!(t0.elapsed() < Duration::from_secs(5));
            std::thread::sleep(Duration::from_millis(10));
        }
        let saved = if saved_after_submit {
            broker.state().unwrap()
        } else {
            before
        };
        drop(broker); // the crash: no answer was ever read
        fake.book.lock().unwrap().hold = false;
        let c = start(&fake, &cfg, dir.path(), Some(&saved), 2);
        let mut broker = c.broker;
        let found = c.reconciled.found_by_cloid.len();
        assert_eq!(
            found,
            usize::from(!saved_after_submit),
            "{:?}",
            c.reconciled
        );
        assert_eq!(c.reconciled.missing_fills, 1, "{:?}", c.reconciled);
        // Found by cloid, its exit plan was never saved: entries wait for the owner.
        match saved_after_submit {
            true => assert!(c.reconciled.blocked.is_none(), "{:?}", c.reconciled),
            false => {
                let why = c.reconciled.blocked.clone().unwrap_or_default();
                assert!(
                    why.starts_with("BTC (ord-1): an entry sent just before a crash"),
                    "{why}"
                );
            }
        }
        let mut out = vec![];
        pump(&mut broker, &mut out, |e| fills(e).len() == 1);
        assert_eq!(btc_position(&broker), dec!(0.01));
        std::thread::sleep(Duration::from_millis(500));
        let b = fake.book.lock().unwrap();
        let entries = b.orders.iter().filter(|o| !o.r).count();
        assert_eq!(entries, 1, "the entry was sent once, never again");
    }
}

fn venue() -> FakeExchange {
    fake_exchange::start(&format!("{:#x}", signer().address()))
}

/// A session that entered 0.01 BTC with its bracket on the venue, then stopped: its saved state.
fn bracketed_then_down(fake: &FakeExchange, cfg: &Config, dir: &Path) -> Vec<u8> {
    let mut broker = start(fake, cfg, dir, None, 1).broker;
    let mut out = vec![];
    broker.on_market(&trade(1_790_000_000_000, dec!(83712)), &mut out);
    broker.submit(&entry(dec!(0.01)), 1_790_000_000_000, &mut out);
    pump(&mut broker, &mut out, |e| broker_orders(e) >= 3);
    broker.state().unwrap()
}

/// The venue fills the resting take-profit (0.01 at 87061).
fn fill_take_profit(fake: &FakeExchange) {
    let mut b = fake.book.lock().unwrap();
    b.price = dec!(87061);
    let tp = b.book.iter().find(|o| o.wire.r && o.wire.t.limit.is_some());
    let oid = tp.expect("a resting take-profit").oid;
    b.fill(oid, dec!(0.01));
}

/// A take-profit filled while smartflow was down: the restart applies the fill (the position
/// goes flat, the round trip is journaled) and cancels the stop that is left.
#[test]
fn a_fill_while_down_is_applied_on_restart() {
    let (fake, dir, cfg) = (venue(), tempfile::tempdir().unwrap(), config());
    let saved = bracketed_then_down(&fake, &cfg, dir.path());
    fill_take_profit(&fake);
    let c = start(&fake, &cfg, dir.path(), Some(&saved), 2);
    assert_eq!(c.reconciled.missing_fills, 1, "{:?}", c.reconciled);
    let mut broker = c.broker;
    let mut out = vec![];
    pump(&mut broker, &mut out, |e| {
        e.iter().any(|x| matches!(x, BrokerEvent::Exit { .. }))
    });
    assert_eq!(fills(&out), vec![(dec!(87061), dec!(0.01))]);
    assert_eq!(btc_position(&broker), Decimal::ZERO);
    pump(&mut broker, &mut out, |e| {
        done_reasons(e)
            .iter()
            .any(|r| r.contains("position closed"))
    });
    let b = fake.book.lock().unwrap();
    assert_eq!(
        b.book.iter().filter(|o| o.status == "open").count(),
        0,
        "the stop is gone"
    );
}

/// The venue no longer holds the position smartflow's fills add up to (closed outside, or
/// liquidated): entries are blocked with the reason until the owner resumes; exits still go.
/// An open order smartflow did not send is cancelled at start.
#[test]
fn an_irreconcilable_state_blocks_entries_until_resume() {
    let (fake, dir, cfg) = (venue(), tempfile::tempdir().unwrap(), config());
    let saved = bracketed_then_down(&fake, &cfg, dir.path());
    let outside = {
        let mut b = fake.book.lock().unwrap();
        b.positions.clear(); // liquidated
        b.outside_order("BTC", "50000", "0.001")
    };
    let c = start(&fake, &cfg, dir.path(), Some(&saved), 2);
    let why = c.reconciled.blocked.clone().expect("blocked");
    assert!(
        why.contains("BTC: smartflow's fills add up to 0.01, the venue reports 0"),
        "{why}"
    );
    assert_eq!(c.reconciled.unknown_orders, vec![outside]);
    assert_eq!(c.reconciled.cancelled_unknown, 1);
    assert!(c.reconciled.summary().contains("ENTRIES BLOCKED"));
    let mut broker = c.broker;
    let sent = fake.book.lock().unwrap().orders.len();
    let mut out = vec![];
    broker.on_market(&trade(1_790_000_001_000, dec!(83712)), &mut out);
    let mut other = entry(dec!(0.01));
    other.intent.instrument = Instrument::new("hyperliquid:ETH/USDC");
    broker.submit(&other, 1_790_000_001_000, &mut out);
    let r = done_reasons(&out);
    assert!(
        r.iter()
            .any(|r| r.starts_with("rejected: VENUE_UNRECONCILED: BTC")),
        "{r:?}"
    );
    assert_eq!(fake.book.lock().unwrap().orders.len(), sent, "nothing sent");
    broker.on_command(&smartflow::domain::command::Command::Resume, &mut out);
    assert!(
        broker.venue_mut().blocked.is_none(),
        "the owner's resume lifts the block"
    );
}

/// The address's action budget (`userRateLimit`) used up: past it the venue takes one action
/// per 10 s, so the entry goes and the bracket's next order is a typed refusal, never sent.
#[test]
fn a_used_up_action_budget_is_a_typed_refusal() {
    let fake = venue();
    fake.book.lock().unwrap().action_cap = 0;
    let dir = tempfile::tempdir().unwrap();
    let mut broker = start(&fake, &config(), dir.path(), None, 1).broker;
    let mut out = vec![];
    broker.on_market(&trade(1_790_000_000_000, dec!(83712)), &mut out);
    broker.submit(&entry(dec!(0.01)), 1_790_000_000_000, &mut out);
    pump(&mut broker, &mut out, |e| {
        done_reasons(e)
            .iter()
            .any(|r| r.starts_with("rejected: VENUE_RATE_LIMITED"))
    });
    assert_eq!(fills(&out).len(), 1, "the entry went through");
    assert_eq!(
        fake.book.lock().unwrap().orders.len(),
        1,
        "nothing else was sent"
    );
}

/// With polling off (`poll_secs` 600), a take-profit filled on the venue reaches smartflow
/// through the `userFills` and `orderUpdates` streams alone: the fill is applied, the position
/// closes, and the stop left over is cancelled.
#[test]
fn the_streams_drive_the_order_lifecycle() {
    let fake = venue();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config();
    (cfg.live.poll_secs, cfg.live.positions_secs) = (600.0, 3600.0);
    let mut broker = start(&fake, &cfg, dir.path(), None, 1).broker;
    let mut out = vec![];
    broker.on_market(&trade(1_790_000_000_000, dec!(83712)), &mut out);
    broker.submit(&entry(dec!(0.01)), 1_790_000_000_000, &mut out);
    pump(&mut broker, &mut out, |e| broker_orders(e) >= 3);
    let info_before = fake.book.lock().unwrap().info_requests;
    fill_take_profit(&fake);
    out.clear();
    pump(&mut broker, &mut out, |e| {
        e.iter().any(|x| matches!(x, BrokerEvent::Exit { .. }))
    });
    assert_eq!(fills(&out), vec![(dec!(87061), dec!(0.01))]);
    assert_eq!(btc_position(&broker), Decimal::ZERO);
    assert_eq!(
        fake.book.lock().unwrap().info_requests,
        info_before,
        "no poll: the stream brought the fill"
    );
    pump(&mut broker, &mut out, |e| {
        done_reasons(e)
            .iter()
            .any(|r| r == "canceled: position closed")
    });
}
