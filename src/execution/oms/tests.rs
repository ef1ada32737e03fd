use super::*;
use crate::domain::intent::{OrderIntent, TakeProfitStep};
use crate::domain::Trade;
use crate::execution::portfolio::PortfolioConfig;
use crate::execution::sim::{ExecConfig, FillSimulator};
use rust_decimal_macros::dec;

const BTC: &str = "hyperliquid:BTC/USDC";

fn trade(ts: i64, price: Decimal) -> MarketEvent {
    MarketEvent::Trade(Trade {
        ts_ms: ts,
        instrument: Instrument::new(BTC),
        price,
        qty: dec!(10),
        aggressor: Side::Buy,
        trade_id: None,
        users: None,
    })
}

/// Hyperliquid-like fees (taker 4.5 bps, maker 1.5 bps), no latency or slippage, whole trades.
fn venue() -> FillSimulator {
    FillSimulator::new(ExecConfig {
        latency_ms: 0,
        taker_fee_bps: dec!(4.5),
        maker_fee_bps: dec!(1.5),
        slippage_bps: dec!(0),
        max_volume_share: dec!(1),
        market_order_timeout_ms: 60_000,
    })
}

fn perp_specs() -> BTreeMap<String, InstrumentSpec> {
    let spec = InstrumentSpec {
        kind: MarketKind::Perpetual,
        tick_size: dec!(0.1),
        lot_size: dec!(0.001),
        min_notional: dec!(10),
        max_leverage: dec!(20),
        max_sig_figs: None,
    };
    [(BTC.to_string(), spec)].into_iter().collect()
}

fn manager<V: Venue>(v: V) -> OrderManager<V> {
    let pf = PortfolioConfig {
        quote: "USDC".into(),
        starting_balance: dec!(100000),
        quote_equivalents: vec![],
    };
    OrderManager::with_venue(v, Portfolio::new(&pf)).with_specs(&perp_specs())
}

/// An entry of 2 BTC at about 100 000 on `side`, 5× leverage: half taken 2 % away, stop 3 %.
fn entry(side: Side) -> ApprovedOrder {
    let intent = OrderIntent {
        id: "int-1".into(),
        signal_id: "sig-1".into(),
        ts_ms: 0,
        instrument: Instrument::new(BTC),
        side,
        qty: dec!(2),
        ref_price: dec!(100000),
        reduce_only: false,
        bracket: BracketSpec {
            take_profit: vec![TakeProfitStep {
                gain_pct: dec!(2),
                fraction: dec!(0.5),
            }],
            stop_loss_pct: dec!(3),
            max_hold_ms: 3_600_000,
        },
        leverage: Some(dec!(5)),
    };
    ApprovedOrder {
        intent,
        verdict_id: "ver-1".into(),
        qty: dec!(2),
    }
}

fn exits(ev: &[BrokerEvent]) -> Vec<(OrderPurpose, Decimal)> {
    ev.iter()
        .filter_map(|e| match e {
            BrokerEvent::Exit {
                round_trip, reason, ..
            } => Some((*reason, round_trip.pnl)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_short_perpetual_takes_profit_below_and_stops_out_above_by_hand_computed_pnl() {
    let mut m = manager(venue());
    let mut ev = vec![];
    m.place_entry(&entry(Side::Sell), 0, &mut ev);
    m.on_market(&trade(1_000, dec!(100000)), &mut ev);
    // Sold 2 @ 100 000 (taker fee 200 000 × 4.5 bps = 90): short −2, margin 2 × 100 000 / 5.
    let p = &m.portfolio.perps[&Instrument::new(BTC)];
    assert_eq!(
        (p.qty, p.entry_price, p.leverage),
        (dec!(-2), dec!(100000), dec!(5))
    );
    assert_eq!(m.portfolio.margin_used(), dec!(40000));
    // The bracket of a short: a buy limit 2 % below for half, a buy stop 3 % above for all.
    let exits_placed: Vec<(Side, OrderType, Decimal)> = m
        .live_orders()
        .map(|o| (o.side, o.order_type, o.qty))
        .collect();
    assert_eq!(
        exits_placed,
        [
            (Side::Buy, OrderType::Limit { price: dec!(98000) }, dec!(1)),
            (
                Side::Buy,
                OrderType::Stop {
                    trigger: dec!(103000)
                },
                dec!(2)
            ),
        ]
    );
    assert!(m.live_orders().all(|o| o.reduce_only));
    // Through the limit: bought 1 @ 98 000 as maker (fee 14.7), +2 000 realised; stop resized.
    m.on_market(&trade(2_000, dec!(97900)), &mut ev);
    let stop = m
        .live_orders()
        .find(|o| o.purpose == OrderPurpose::StopLoss);
    assert_eq!(stop.map(|o| o.qty), Some(dec!(1)));
    // Up through the trigger, then bought back 1 @ 103 200 as taker (fee 46.44), −3 200.
    m.on_market(&trade(3_000, dec!(103500)), &mut ev);
    m.on_market(&trade(3_100, dec!(103200)), &mut ev);
    let pnl = dec!(2000) - dec!(3200) - dec!(90) - dec!(14.7) - dec!(46.44);
    assert_eq!(exits(&ev), [(OrderPurpose::StopLoss, pnl)]);
    assert_eq!(pnl, dec!(-1351.14));
    assert_eq!(m.portfolio.cash, dec!(98648.86));
    assert!(m.portfolio.perps.is_empty() && m.live_orders().next().is_none());
    assert!(m.view(1).busy.is_empty());
}

#[test]
fn a_long_perpetual_is_flattened_with_a_reduce_only_sell() {
    let mut m = manager(venue());
    let mut ev = vec![];
    m.place_entry(&entry(Side::Buy), 0, &mut ev);
    m.on_market(&trade(1_000, dec!(100000)), &mut ev);
    ev.clear();
    m.flatten(None, &mut ev);
    let sent: Vec<(Side, OrderPurpose, Decimal, bool)> = ev
        .iter()
        .filter_map(|e| match e {
            BrokerEvent::OrderNew { order: o, .. } => {
                Some((o.side, o.purpose, o.qty, o.reduce_only))
            }
            _ => None,
        })
        .collect();
    assert_eq!(sent, [(Side::Sell, OrderPurpose::Flatten, dec!(2), true)]);
    m.on_market(&trade(1_100, dec!(101000)), &mut ev);
    // +2 × 1 000 − fees 90 (entry) − 202 000 × 4.5 bps (exit) = 2 000 − 90 − 90.9.
    assert_eq!(exits(&ev), [(OrderPurpose::Flatten, dec!(1819.1))]);
}

/// A venue that reports everything one market event late, as a live venue's acks and fills
/// arrive after the fact.
#[derive(Clone)]
struct Late<V> {
    inner: V,
    held: Vec<VenueEvent>,
}

impl<V: Venue> Venue for Late<V> {
    fn submit(&mut self, order: Order, _now: &mut Vec<VenueEvent>) {
        self.inner.submit(order, &mut self.held);
    }
    fn cancel(&mut self, order_id: &str, reason: &str, _now: &mut Vec<VenueEvent>) {
        self.inner.cancel(order_id, reason, &mut self.held);
    }
    fn amend_qty(&mut self, order_id: &str, qty: Decimal) {
        self.inner.amend_qty(order_id, qty);
    }
    fn on_market(&mut self, e: &MarketEvent, out: &mut Vec<VenueEvent>) {
        out.append(&mut self.held);
        self.inner.on_market(e, &mut self.held);
    }
}

#[test]
fn brackets_work_the_same_over_a_venue_whose_reports_arrive_late() {
    let prices = [100000, 100100, 100200, 101000, 102500, 102600, 102700];
    let run = |late: bool| {
        let mut ev = vec![];
        let mut feed = |m: &mut dyn FnMut(&MarketEvent, &mut Vec<BrokerEvent>)| {
            for (k, px) in prices.iter().enumerate() {
                m(&trade(1_000 * (k as i64 + 1), Decimal::from(*px)), &mut ev);
            }
        };
        if late {
            let mut m = manager(Late {
                inner: venue(),
                held: vec![],
            });
            m.place_entry(&entry(Side::Buy), 0, &mut vec![]);
            feed(&mut |e, out| m.on_market(e, out));
            assert!(m.live_orders().any(|o| o.purpose == OrderPurpose::StopLoss));
            (m.portfolio.perps.clone(), m.portfolio.cash)
        } else {
            let mut m = manager(venue());
            m.place_entry(&entry(Side::Buy), 0, &mut vec![]);
            feed(&mut |e, out| m.on_market(e, out));
            (m.portfolio.perps.clone(), m.portfolio.cash)
        }
    };
    let (sync_perps, sync_cash) = run(false);
    let (late_perps, late_cash) = run(true);
    // Half the long was taken at 102 000 in both; the rest is held with its stop resting.
    assert_eq!(sync_perps[&Instrument::new(BTC)].qty, dec!(1));
    assert_eq!((late_perps, late_cash), (sync_perps, sync_cash));
}

#[test]
fn a_short_entry_on_a_spot_instrument_is_rejected_at_the_edge() {
    let pf = PortfolioConfig::default();
    let mut m = OrderManager::with_venue(venue(), Portfolio::new(&pf));
    let mut ev = vec![];
    m.place_entry(&entry(Side::Sell), 0, &mut ev);
    assert!(
        matches!(&ev[..], [BrokerEvent::OrderDone { reason, .. }]
            if reason == "rejected: a short entry needs a perpetual instrument spec"),
        "{ev:?}"
    );
    assert!(m.live_orders().next().is_none() && m.view(1).busy.is_empty());
}

fn mark(ts: i64, oracle: Decimal, rate: Decimal) -> MarketEvent {
    MarketEvent::Mark(crate::domain::MarkPrice {
        ts_ms: ts,
        instrument: Instrument::new(BTC),
        mark_price: oracle,
        oracle_price: oracle,
        funding_rate: rate,
    })
}

#[test]
fn a_short_perpetual_receives_hourly_funding_at_each_hour_from_the_last_mark() {
    let mut m = manager(venue());
    let mut ev = vec![];
    let t0 = 1_790_000_000_000 - 1_790_000_000_000 % 3_600_000; // on the hour
    let mut short = entry(Side::Sell);
    short.intent.bracket.max_hold_ms = 10 * 3_600_000; // no time stop in this test
    m.place_entry(&short, t0, &mut ev);
    m.on_market(&trade(t0 + 1_000, dec!(100000)), &mut ev);
    let cash = m.portfolio.cash;
    // 0.125 bp per hour at an oracle price of 100 000: −(−2) × 100 000 × 0.0000125 = +2.5 each hour.
    m.on_market(&mark(t0 + 2_000, dec!(100000), dec!(0.0000125)), &mut ev);
    m.on_market(&trade(t0 + 3_599_000, dec!(100000)), &mut ev);
    assert_eq!(m.portfolio.cash, cash, "no hour passed yet");
    m.on_market(&trade(t0 + 3_601_000, dec!(100000)), &mut ev);
    assert_eq!(m.portfolio.cash, cash + dec!(2.5));
    // The rate turns negative (shorts pay); two hours pass before the next event: paid twice.
    m.on_market(&mark(t0 + 3_700_000, dec!(99000), dec!(-0.00002)), &mut ev);
    m.on_market(&trade(t0 + 3 * 3_600_000 + 5, dec!(99000)), &mut ev);
    let paid = dec!(2) * dec!(99000) * dec!(0.00002); // 3.96 per hour
    assert_eq!(m.portfolio.cash, cash + dec!(2.5) - dec!(2) * paid);
    assert_eq!(m.portfolio.funding, dec!(2.5) - dec!(2) * paid);
    assert_eq!(
        m.portfolio.perps[&Instrument::new(BTC)].funding,
        m.portfolio.funding
    );
}

/// A partial fill sized by the volume share is a whole number of the instrument's lots
/// (0.001 BTC here), not an 8-decimal cut: 30 % of a 0.0153 BTC print is 0.00459 → 0.004.
#[test]
fn partial_fills_are_whole_lots_of_the_instruments_spec() {
    let mut m = manager(FillSimulator::new(ExecConfig {
        latency_ms: 0,
        taker_fee_bps: dec!(4.5),
        maker_fee_bps: dec!(1.5),
        slippage_bps: dec!(0),
        max_volume_share: dec!(0.3),
        market_order_timeout_ms: 60_000,
    }));
    let mut ev = vec![];
    m.place_entry(&entry(Side::Buy), 0, &mut ev);
    let mut small = trade(1_000, dec!(100000));
    if let MarketEvent::Trade(t) = &mut small {
        t.qty = dec!(0.0153);
    }
    m.on_market(&small, &mut ev);
    let p = &m.portfolio.perps[&Instrument::new(BTC)];
    assert_eq!(p.qty, dec!(0.004));
    let left = m
        .live_orders()
        .find(|o| o.purpose == OrderPurpose::Entry)
        .unwrap();
    assert_eq!(left.remaining(), dec!(1.996));
}
