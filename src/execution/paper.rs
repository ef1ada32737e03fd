//! The paper broker: order management ([`OrderManager`]: brackets, take-profit ladder,
//! stop-loss with one-cancels-other, time stops, halt/flatten) over the fill simulator
//! ([`FillSimulator`]: latency, slippage, volume share, fees), keeping the portfolio.
//!
//! Entries carry a bracket ([`crate::domain::intent::BracketSpec`]): once the entry is done the
//! manager places the take-profit ladder (limit orders), the stop-loss (a stop order) and arms the
//! time stop; exits are reduce-only, the stop-loss cancels the ladder (OCO) and is resized as
//! rungs fill.

use super::oms::OrderManager;
use super::portfolio::{Portfolio, PortfolioConfig};
use super::sim::{ExecConfig, FillSimulator};

/// Order management over the fill simulator: what `replay` and `paper` trade with.
pub type PaperBroker = OrderManager<FillSimulator>;

impl PaperBroker {
    pub fn new(cfg: ExecConfig, pf: &PortfolioConfig) -> Self {
        OrderManager::with_venue(FillSimulator::new(cfg), Portfolio::new(pf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::intent::{BracketSpec, OrderIntent, TakeProfitStep};
    use crate::domain::{Instrument, MarketEvent, OrderPurpose, OrderType, Side, Trade};
    use crate::execution::events::{ApprovedOrder, BrokerEvent};
    use rust_decimal::Decimal;
    use rust_decimal_macros::dec;

    fn tr(ts: i64, px: Decimal, qty: Decimal) -> Trade {
        Trade {
            ts_ms: ts,
            instrument: Instrument::new("X/BTC"),
            price: px,
            qty,
            aggressor: Side::Buy,
            trade_id: None,
            users: None,
        }
    }
    fn trade(ts: i64, px: Decimal, qty: Decimal) -> MarketEvent {
        MarketEvent::Trade(tr(ts, px, qty))
    }
    fn approved(
        qty: Decimal,
        tp: Vec<(Decimal, Decimal)>,
        sl: Decimal,
        hold_ms: i64,
    ) -> ApprovedOrder {
        ApprovedOrder {
            intent: OrderIntent {
                id: "int-1".into(),
                signal_id: "sig-1".into(),
                ts_ms: 0,
                instrument: Instrument::new("X/BTC"),
                side: Side::Buy,
                qty,
                ref_price: dec!(1),
                reduce_only: false,
                bracket: BracketSpec {
                    take_profit: tp
                        .into_iter()
                        .map(|(g, f)| TakeProfitStep {
                            gain_pct: g,
                            fraction: f,
                        })
                        .collect(),
                    stop_loss_pct: sl,
                    max_hold_ms: hold_ms,
                },
                leverage: None,
            },
            verdict_id: "ver-1".into(),
            qty,
        }
    }
    fn fills(ev: &[BrokerEvent]) -> Vec<(Decimal, Decimal, Decimal)> {
        ev.iter()
            .filter_map(|e| match e {
                BrokerEvent::Fill { fill, .. } => Some((fill.price, fill.qty, fill.fee)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn market_fill_latency_slippage_fee_and_volume_cap() {
        let mut b = PaperBroker::new(ExecConfig::default(), &PortfolioConfig::default());
        let mut ev = vec![];
        b.place_entry(
            &approved(dec!(100), vec![], dec!(50), 1_000_000),
            0,
            &mut ev,
        );
        b.on_market(&trade(100, dec!(1), dec!(1000)), &mut ev); // before latency (200 ms): no fill
        assert!(fills(&ev).is_empty());
        b.on_market(&trade(200, dec!(2), dec!(200)), &mut ev); // 25 % of 200 = 50 units
        b.on_market(&trade(300, dec!(4), dec!(1000)), &mut ev); // the remaining 50
        let f = fills(&ev);
        // price × (1 + 5 bps); fee = notional × 10 bps.
        assert_eq!(f[0], (dec!(2.001), dec!(50), dec!(0.10005)));
        assert_eq!(f[1], (dec!(4.002), dec!(50), dec!(0.2001)));
        let p = &b.portfolio.positions[&Instrument::new("X/BTC")];
        assert_eq!(p.qty, dec!(100));
        assert_eq!(p.avg_entry_price, dec!(3.0015));
        assert_eq!(b.portfolio.cash, dec!(1) - dec!(300.15) - dec!(0.30015));
    }

    #[test]
    fn instrument_specs_round_orders_and_reject_small_ones_at_the_edge() {
        use crate::domain::spec::{InstrumentSpec, MarketKind};
        let specs = [(
            "X/BTC".to_string(),
            InstrumentSpec {
                kind: MarketKind::Spot,
                tick_size: dec!(0.01),
                lot_size: dec!(10),
                min_notional: dec!(25),
                max_leverage: dec!(1),
                max_sig_figs: None,
            },
        )]
        .into_iter()
        .collect();
        let mut b =
            PaperBroker::new(ExecConfig::default(), &PortfolioConfig::default()).with_specs(&specs);
        let mut ev = vec![];
        // 20 units at ref price 1: notional 20 < 25, rejected before it reaches the book.
        b.place_entry(&approved(dec!(20), vec![], dec!(50), 1_000_000), 0, &mut ev);
        assert!(matches!(&ev[0], BrokerEvent::OrderDone { reason, .. }
            if reason.starts_with("rejected: notional 20")));
        assert_eq!(b.live_orders().count(), 0);
        // 37 units round down to the lot: 30; the take-profit and stop prices to the tick.
        ev.clear();
        b.place_entry(
            &approved(
                dec!(37),
                vec![(dec!(3.333), dec!(1))],
                dec!(4.444),
                1_000_000,
            ),
            0,
            &mut ev,
        );
        assert!(matches!(&ev[0], BrokerEvent::OrderNew { order, .. } if order.qty == dec!(30)));
        b.on_market(&trade(300, dec!(1), dec!(1000)), &mut ev);
        let limits: Vec<OrderType> = b.live_orders().map(|o| o.order_type).collect();
        // Entry at 1 × 1.0005 (slippage) = 1.0005: take-profit 1.0005 × 1.03333 = 1.03384…
        // rounded up to 1.04; stop 1.0005 × 0.95556 = 0.95604… rounded down to 0.95.
        assert!(
            limits.contains(&OrderType::Limit { price: dec!(1.04) }),
            "{limits:?}"
        );
        assert!(
            limits.contains(&OrderType::Stop {
                trigger: dec!(0.95)
            }),
            "{limits:?}"
        );
    }

    #[test]
    fn ladder_then_stop_is_resized_and_closes() {
        let mut b = PaperBroker::new(ExecConfig::default(), &PortfolioConfig::default());
        let mut ev = vec![];
        let a = approved(dec!(10), vec![(dec!(10), dec!(0.5))], dec!(10), 1_000_000);
        b.place_entry(&a, 0, &mut ev);
        b.on_market(&trade(1_000, dec!(1), dec!(1000)), &mut ev);
        // Entry filled at 1.0005 → TP at 1.10055, SL trigger at 0.90045.
        let tp = b
            .live_orders()
            .find(|o| o.purpose == OrderPurpose::TakeProfit)
            .unwrap()
            .clone();
        assert_eq!(
            tp.order_type,
            OrderType::Limit {
                price: dec!(1.10055)
            }
        );
        assert_eq!(tp.qty, dec!(5));
        b.on_market(&trade(1_100, dec!(1.2), dec!(1000)), &mut ev); // before TP latency
        b.on_market(&trade(1_300, dec!(1.10055), dec!(1000)), &mut ev); // touch, not through
        assert_eq!(fills(&ev).len(), 1);
        b.on_market(&trade(1_400, dec!(1.2), dec!(1000)), &mut ev); // through → maker fill at limit
        assert_eq!(fills(&ev)[1], (dec!(1.10055), dec!(5), dec!(0.00550275)));
        let sl = b
            .live_orders()
            .find(|o| o.purpose == OrderPurpose::StopLoss)
            .unwrap();
        assert_eq!(sl.qty, dec!(5), "stop-loss resized to what is left");
        b.on_market(&trade(2_000, dec!(0.9), dec!(1000)), &mut ev); // trigger
        b.on_market(&trade(2_100, dec!(0.8), dec!(1000)), &mut ev); // within latency
        b.on_market(&trade(2_200, dec!(0.8), dec!(1000)), &mut ev); // market fill at 0.8 × (1 − 5 bps)
        assert_eq!(fills(&ev)[2].0, dec!(0.7996));
        let exit = ev.iter().find_map(|e| match e {
            BrokerEvent::Exit {
                round_trip, reason, ..
            } => Some((round_trip.clone(), *reason)),
            _ => None,
        });
        let (rt, reason) = exit.expect("position closed");
        assert_eq!(reason, OrderPurpose::StopLoss);
        let expected = (dec!(1.10055) - dec!(1.0005)) * dec!(5)
            + (dec!(0.7996) - dec!(1.0005)) * dec!(5)
            - dec!(0.010005)
            - dec!(0.00550275)
            - dec!(0.003998);
        assert_eq!(rt.pnl, expected);
        assert!(b.live_orders().next().is_none());
        assert!(b.view(1).busy.is_empty());
    }

    #[test]
    fn time_stop_sells_at_market() {
        let mut b = PaperBroker::new(ExecConfig::default(), &PortfolioConfig::default());
        let mut ev = vec![];
        b.place_entry(
            &approved(dec!(10), vec![(dec!(50), dec!(1))], dec!(50), 5_000),
            0,
            &mut ev,
        );
        b.on_market(&trade(1_000, dec!(1), dec!(1000)), &mut ev);
        b.on_market(&trade(6_000, dec!(1.01), dec!(1000)), &mut ev); // due: cancel ladder+SL, sell
        b.on_market(&trade(6_300, dec!(1.02), dec!(1000)), &mut ev);
        let reason = ev.iter().find_map(|e| match e {
            BrokerEvent::Exit { reason, .. } => Some(*reason),
            _ => None,
        });
        assert_eq!(reason, Some(OrderPurpose::TimeStop));
        assert!(b.portfolio.positions.is_empty());
    }

    #[test]
    fn unfilled_entry_expires_without_position() {
        let mut b = PaperBroker::new(ExecConfig::default(), &PortfolioConfig::default());
        let mut ev = vec![];
        b.place_entry(&approved(dec!(10), vec![], dec!(5), 5_000), 0, &mut ev);
        b.on_market(&trade(70_000, dec!(1), dec!(1)), &mut ev); // 25 % of 1 = 0.25 filled, then expiry
        let done = ev.iter().any(
            |e| matches!(e, BrokerEvent::OrderDone { reason, .. } if reason.starts_with("expired")),
        );
        assert!(done);
        // The partial fill still gets its bracket.
        assert_eq!(
            b.portfolio.positions[&Instrument::new("X/BTC")].qty,
            dec!(0.25)
        );
        assert!(b.live_orders().any(|o| o.purpose == OrderPurpose::StopLoss));
    }

    #[test]
    fn restored_state_continues_exactly_like_the_original() {
        let mut b = PaperBroker::new(ExecConfig::default(), &PortfolioConfig::default());
        let mut ev = vec![];
        b.place_entry(
            &approved(dec!(10), vec![(dec!(10), dec!(0.5))], dec!(10), 60_000),
            0,
            &mut ev,
        );
        b.on_market(&trade(1_000, dec!(1), dec!(1000)), &mut ev);
        assert_eq!(
            b.live_orders().count(),
            2,
            "take-profit and stop-loss resting"
        );
        // What the journal stores, and what a restart loads.
        let json = serde_json::to_vec(&b).unwrap();
        let mut restored: PaperBroker = serde_json::from_slice(&json).unwrap();
        assert_eq!(restored, b);
        let tail = [
            tr(2_000, dec!(1.2), dec!(1000)),
            tr(3_000, dec!(0.85), dec!(1000)),
            tr(3_500, dec!(0.8), dec!(1000)),
        ];
        let (mut e1, mut e2) = (vec![], vec![]);
        for t in &tail {
            b.on_market(&MarketEvent::Trade(t.clone()), &mut e1);
            restored.on_market(&MarketEvent::Trade(t.clone()), &mut e2);
        }
        assert_eq!(e1, e2);
        assert!(e1.iter().any(|e| matches!(e, BrokerEvent::Exit { .. })));
        assert_eq!(restored, b);
    }
}
