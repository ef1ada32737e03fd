//! The whale source on the wallet tracker's events: own fills (fresh and backfilled), polled
//! positions, and the same fill from two streams.

use super::*;
use crate::domain::{Side, TradeUsers};
use crate::strategies::signal::SignalSource;
use rust_decimal_macros::dec;

const A: &str = "0xaaaa000000000000000000000000000000000001";
const B: &str = "0xbbbb000000000000000000000000000000000002";
const OTHER: &str = "0xcccc000000000000000000000000000000000003";

fn source() -> WhaleSource {
    let cfg = WhaleConfig {
        window_secs: 60,
        min_net_notional: dec!(10000),
        min_wallets: 2,
        ..WhaleConfig::default()
    };
    WhaleSource::new(cfg, BTreeMap::from([(A.into(), 0.9), (B.into(), 0.6)]))
}

fn btc() -> Instrument {
    Instrument::new("hyperliquid:BTC/USDC")
}

fn fill(wallet: &str, ts_ms: i64, tid: u64, side: Side, size: Decimal) -> MarketEvent {
    MarketEvent::UserFill(Box::new(UserFill {
        ts_ms,
        instrument: btc(),
        wallet: wallet.into(),
        side,
        price: dec!(100000),
        size,
        tid,
        start_position: None,
    }))
}

fn trade(ts_ms: i64, tid: u64, buyer: &str, seller: &str) -> MarketEvent {
    MarketEvent::Trade(Trade {
        ts_ms,
        instrument: btc(),
        price: dec!(100000),
        qty: dec!(0.01),
        aggressor: Side::Buy,
        trade_id: Some(tid),
        users: Some(Box::new(TradeUsers {
            buyer: buyer.into(),
            seller: seller.into(),
        })),
    })
}

fn position(wallet: &str, ts_ms: i64, size: Decimal) -> MarketEvent {
    MarketEvent::UserPosition(Box::new(UserPosition {
        ts_ms,
        instrument: btc(),
        wallet: wallet.into(),
        size,
        entry_price: None,
    }))
}

fn signals(s: &mut WhaleSource, events: &[MarketEvent]) -> Vec<Signal> {
    let input = SourceInput {
        first_index: 0,
        events,
        snapshots: &[],
    };
    let mut out = Vec::new();
    s.on_batch(&input, &Fault::default(), &mut out);
    out.into_iter().map(|(_, s)| s).collect()
}

#[test]
fn own_fills_of_two_wallets_raise_a_short_at_the_latest_event_time() {
    let mut s = source();
    let sigs = signals(
        &mut s,
        &[
            fill(A, 1_000, 1, Side::Sell, dec!(0.2)),
            fill(B, 2_000, 2, Side::Sell, dec!(0.1)),
        ],
    );
    assert_eq!(sigs.len(), 1, "{sigs:?}");
    assert_eq!(
        (sigs[0].side, sigs[0].ts_ms, sigs[0].exit),
        (Side::Sell, 2_000, false)
    );
    assert_eq!(s.position(A, "BTC"), dec!(-0.2));
}

#[test]
fn a_backfilled_fill_older_than_the_window_corrects_positions_but_raises_no_entry() {
    let mut s = source();
    // The stream has reached t = 600 s; the backfill brings fills from t = 10 s.
    assert!(signals(&mut s, &[trade(600_000, 9, OTHER, OTHER)]).is_empty());
    let sigs = signals(
        &mut s,
        &[
            fill(A, 10_000, 1, Side::Buy, dec!(0.2)),
            fill(B, 11_000, 2, Side::Buy, dec!(0.2)),
        ],
    );
    assert!(sigs.is_empty(), "{sigs:?}");
    assert_eq!(s.position(B, "BTC"), dec!(0.2));
}

#[test]
fn the_same_fill_from_the_public_stream_and_the_wallets_feed_counts_once() {
    let mut s = source();
    signals(&mut s, &[trade(1_000, 77, A, OTHER)]);
    signals(&mut s, &[fill(A, 1_000, 77, Side::Buy, dec!(0.01))]);
    assert_eq!(s.position(A, "BTC"), dec!(0.01));
    assert_eq!(s.book_counters().0, 1, "one duplicate dropped");
}

#[test]
fn a_poll_showing_the_followed_wallets_flat_exits_at_the_next_trade() {
    let mut s = source();
    let entry = signals(
        &mut s,
        &[
            fill(A, 1_000, 1, Side::Buy, dec!(0.2)),
            fill(B, 2_000, 2, Side::Buy, dec!(0.1)),
        ],
    );
    assert_eq!(entry.len(), 1);
    let polls = [position(A, 3_000, dec!(0)), position(B, 3_000, dec!(0))];
    assert!(signals(&mut s, &polls).is_empty(), "a poll has no price");
    assert_eq!(s.book_counters().1, 2, "two positions corrected");
    let exit = signals(&mut s, &[trade(4_000, 9, OTHER, OTHER)]);
    assert_eq!(exit.len(), 1, "{exit:?}");
    assert!(exit[0].exit);
    assert_eq!((exit[0].side, exit[0].ts_ms), (Side::Sell, 4_000));
}

#[test]
fn rollback_state_is_saved_only_for_events_that_can_change_the_source() {
    let s = source();
    assert!(s.save(&[trade(1, 1, OTHER, OTHER)]).is_none());
    assert!(s.save(&[position(OTHER, 1, dec!(1))]).is_none());
    assert!(s.save(&[position(A, 1, dec!(1))]).is_some());
    assert!(s.save(&[fill(B, 1, 1, Side::Buy, dec!(1))]).is_some());
}

#[test]
fn a_track_wallets_command_replaces_the_tracked_wallets_and_keeps_the_books() {
    use crate::domain::command::{Command, TrackedWallet};
    let mut s = source();
    signals(&mut s, &[fill(A, 1_000, 1, Side::Buy, dec!(0.2))]);
    let w = |a: &str| TrackedWallet {
        address: a.into(),
        weight: dec!(0.5),
        performance: dec!(0.5),
        size: dec!(0.5),
        recency: dec!(0.5),
        regime_fit: dec!(0.5),
        account_value: dec!(1000000),
    };
    s.on_command(&Command::TrackWallets {
        wallets: vec![w(OTHER), w(A)],
    });
    assert!(s.model_id().contains(OTHER) && !s.model_id().contains(B));
    // B is no longer tracked: its fills are ignored; A keeps its position.
    signals(&mut s, &[fill(B, 2_000, 2, Side::Buy, dec!(1))]);
    assert_eq!(s.position(B, "BTC"), dec!(0));
    assert_eq!(s.position(A, "BTC"), dec!(0.2));
    signals(&mut s, &[fill(OTHER, 3_000, 3, Side::Sell, dec!(1))]);
    assert_eq!(s.position(OTHER, "BTC"), dec!(-1));
}
