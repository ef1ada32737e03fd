//! Wallet fills into position changes and whale alerts, on real Hyperliquid recordings: one
//! whale's 2,000 `userFills` (datadigshawn_whale_0xb317), 50 websocket trades with `users`
//! (praanaavvv_liquidity_console) and a `user` channel payload (bytex_live_payloads).

mod common;

use rust_decimal::Decimal;
use smartflow::domain::Side;
use smartflow::wallets::events::{whale_alert, ChangeKind, FillError, WalletBook, WalletFill};
use std::path::Path;

const WHALE: &str = "0xb317d2bc2d3d2df5fa441b5bae0ab9d8b07283ae";

/// The whale's fills de-duplicated by `tid` (the file holds them 4×), oldest first in the API's
/// order (not re-sorted: same-millisecond fills are not in `tid` order), with each row's `dir`.
fn whale_fills(data: &Path) -> Vec<(WalletFill, String)> {
    common::whale_fill_rows(data)
        .into_iter()
        .map(|(r, ts_ms)| {
            let fill = WalletFill {
                wallet: WHALE.into(),
                coin: r[0].to_string(),
                side: if &r[3] == "B" { Side::Buy } else { Side::Sell },
                price: r[1].parse().unwrap(),
                size: r[2].parse().unwrap(),
                ts_ms,
                tid: r[12].parse().unwrap(),
                start_position: Some(r[5].parse().unwrap()),
            };
            (fill, r[6].to_string())
        })
        .collect()
}

#[test]
fn the_real_whales_fills_follow_the_start_position_chain() {
    let data = require_data!();
    let fills = whale_fills(&data);
    assert_eq!(fills.len(), 2000);
    let mut book = WalletBook::new(24 * 3_600_000);
    let mut changes = Vec::new();
    for (f, dir) in &fills {
        let c = book.apply(f).expect("a new fill");
        assert_eq!(Some(c.before), f.start_position, "tid {}", f.tid);
        let ok = match dir.as_str() {
            "Open Long" => {
                matches!(c.kind, ChangeKind::Open | ChangeKind::Add) && c.delta > Decimal::ZERO
            }
            "Close Long" => {
                matches!(c.kind, ChangeKind::Reduce | ChangeKind::Close) && c.delta < Decimal::ZERO
            }
            other => panic!("unexpected dir {other}"),
        };
        assert!(ok, "{dir} became {:?} (tid {})", c.kind, f.tid);
        changes.push(c);
    }
    // Each change ends where the next fill's startPosition begins: the book never had to resync
    // after taking the first fill's start.
    for w in changes.windows(2) {
        assert_eq!(w[0].after, w[1].before);
    }
    assert_eq!(book.resyncs, 1);
    assert_eq!(book.position(WHALE, "ETH"), changes.last().unwrap().after);
    // A backfill overlapping what was applied changes nothing.
    let again: Vec<_> = fills.iter().filter_map(|(f, _)| book.apply(f)).collect();
    assert!(again.is_empty());
    assert_eq!(book.duplicates, 2000);
    // Whale alerts fire at the threshold: exactly the fills of at least 100 000 USD.
    let threshold = Decimal::from(100_000);
    let alerts: Vec<_> = changes
        .iter()
        .filter_map(|c| whale_alert(c, 1.0, threshold))
        .collect();
    let big = fills
        .iter()
        .filter(|(f, _)| f.size * f.price >= threshold)
        .count();
    assert!(big > 0 && big < 2000, "{big}");
    assert_eq!(alerts.len(), big);
    assert!(alerts.iter().all(|a| a.change.notional >= threshold));
}

#[test]
fn fills_of_tracked_wallets_in_the_public_trades_stream_become_position_changes() {
    let data = require_data!();
    let trades = common::core::hyperliquid_btc_trades(&data);
    assert_eq!(trades.len(), 50);
    // Track the wallets of the first trade: one bought, one sold.
    let first = trades[0].users.as_ref().unwrap();
    let tracked = [first.buyer.clone(), first.seller.clone()];
    let mut book = WalletBook::new(3_600_000);
    let mut net = [Decimal::ZERO; 2];
    for t in &trades {
        for f in WalletFill::from_trade(t, "BTC").unwrap() {
            let Some(k) = tracked.iter().position(|w| *w == f.wallet) else {
                continue;
            };
            let c = book.apply(&f).unwrap();
            assert_eq!(c.delta, f.delta());
            assert_eq!(c.notional, t.qty * t.price);
            net[k] += f.delta();
        }
    }
    assert!(net[0] > Decimal::ZERO && net[1] < Decimal::ZERO, "{net:?}");
    assert_eq!(book.position(&tracked[0], "BTC"), net[0]);
    assert_eq!(book.position(&tracked[1], "BTC"), net[1]);
    assert_eq!(
        book.duplicates, 0,
        "buyer and seller share a tid but are two fills"
    );
}

#[test]
fn user_fill_payloads_parse_and_bad_ones_say_why() {
    let data = require_data!();
    let dir = data.join("hyperliquid");
    let ws: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("bytex_live_payloads/ws_user_fills_channel_user.json"))
            .unwrap(),
    )
    .unwrap();
    let f = WalletFill::from_user_fill("0xABC", &ws["data"]["fills"][0]).unwrap();
    assert_eq!(
        (f.wallet.as_str(), f.coin.as_str(), f.side),
        ("0xabc", "BTC", Side::Sell)
    );
    assert_eq!(f.tid, 246814713305894);
    assert_eq!(f.start_position, Some("1.5197585293".parse().unwrap()));
    let mut book = WalletBook::new(1000);
    let c = book.apply(&f).unwrap();
    assert_eq!(c.kind, ChangeKind::Reduce, "sold 0.31975 of a 1.52 long");
    // A 2023 `userFills` response (python SDK cassette) predates `tid`: refused, not guessed.
    let old: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("python_sdk_cassettes/json/test_get_user_fills.json"))
            .unwrap(),
    )
    .unwrap();
    let err = WalletFill::from_user_fill("0x1", &old["response"][0]).unwrap_err();
    assert_eq!(err, FillError::Missing("tid"));
    assert_eq!(err.to_string(), "fill without tid");
    let mut bad = ws["data"]["fills"][0].clone();
    bad["side"] = "X".into();
    assert_eq!(
        WalletFill::from_user_fill("0x1", &bad).unwrap_err(),
        FillError::BadSide("X".into())
    );
    // A 28-digit size parses as a Decimal, and its notional would overflow: refused.
    let mut huge = ws["data"]["fills"][0].clone();
    huge["sz"] = "9999999999999999999999999999".into();
    assert_eq!(
        WalletFill::from_user_fill("0x1", &huge).unwrap_err(),
        FillError::BadNumber("sz")
    );
    // So is a time outside 1970..2100 (the whale source's clock would overflow on it).
    let mut early = ws["data"]["fills"][0].clone();
    early["time"] = i64::MIN.into();
    assert_eq!(
        WalletFill::from_user_fill("0x1", &early).unwrap_err(),
        FillError::BadNumber("time")
    );
    // Found by `smartflow fuzz`: a fill at price 0 or below was taken as a fill.
    for px in ["0", "-1", "-88.384"] {
        let mut free = ws["data"]["fills"][0].clone();
        free["px"] = px.into();
        assert_eq!(
            WalletFill::from_user_fill("0x1", &free).unwrap_err(),
            FillError::BadNumber("px"),
            "{px}"
        );
    }
}
