//! Weighting, consensus and following on hand-made snapshots with known answers.

use super::config::WalletsConfig;
use super::follow::{consensus, random_matched, simulate, target_weights};
use super::score::{Dims, Exclusion, History, WalletScore};
use super::snapshot::{parse_snapshot, Snapshot, WalletPosition, WalletRow};
use rand::SeedableRng;
use serde_json::json;
use std::collections::BTreeMap;

const H: i64 = 3_600_000;

/// A position as the recording bot wrote it: floats, entry price as a string.
fn pos(coin: &str, long: bool, size: f64, value: f64) -> serde_json::Value {
    json!({"coin": coin, "direction": if long {"Long"} else {"Short"}, "size": size,
           "entryPx": "1.0", "leverage": 5.0, "positionValue": value,
           "unrealizedPnl": 0.0, "liquidationPx": null})
}

fn wallet(
    addr: &str,
    av: f64,
    pnl: f64,
    roi: f64,
    vlm: f64,
    ps: Vec<serde_json::Value>,
) -> serde_json::Value {
    json!({"address": addr, "displayName": null, "accountValue": av, "pnl": pnl, "roi": roi,
           "volume": vlm, "positions": ps})
}

/// A snapshot at `hours` with the same rows in the day list and (pnl × 2) in the week list.
fn snapshot(hours: i64, rows: Vec<serde_json::Value>) -> Snapshot {
    let week: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let mut w = r.clone();
            w["pnl"] = json!(r["pnl"].as_f64().unwrap() * 2.0);
            w["roi"] = json!(r["roi"].as_f64().unwrap() * 2.0);
            w["volume"] = json!(r["volume"].as_f64().unwrap() * 4.0);
            w
        })
        .collect();
    let ts = time::OffsetDateTime::from_unix_timestamp(1_770_000_000 + hours * 3600).unwrap();
    let updated = ts
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let doc = json!({"lastUpdated": updated,
                     "whaleTracker": {"daily": rows, "weekly": week, "biggestPositions": []}});
    parse_snapshot(&doc.to_string(), &format!("t{hours}")).unwrap()
}

/// Six wallets over three snapshots (0 h, 6 h, 54 h): a good trader who holds one BTC long
/// throughout, a losing one who changes his ETH short at 54 h, a vault, a high-volume market
/// maker, a hedged book, and a wallet first seen at 54 h. BTC 70 000 → 77 000 → 70 000,
/// ETH 2 000 → 2 200 → 2 200.
fn history() -> History {
    let (btc, eth) = ([70_000.0, 77_000.0, 70_000.0], [2_000.0, 2_200.0, 2_200.0]);
    let mut h = History::default();
    for (k, hours) in [0, 6, 54].into_iter().enumerate() {
        let eth_size = if k == 2 { 5.0 } else { 10.0 };
        let mut rows = vec![
            wallet(
                "0xaa",
                1e6,
                50e3,
                0.05,
                5e6,
                vec![pos("BTC", true, 1.0, btc[k])],
            ),
            wallet(
                "0xbb",
                1e6,
                -50e3,
                -0.05,
                5e6,
                vec![pos("ETH", false, eth_size, eth_size * eth[k])],
            ),
            wallet("0xcc", 5e8, 1e6, 0.002, 0.0, vec![]),
            wallet(
                "0xdd",
                1e6,
                10e3,
                0.01,
                1e8,
                vec![pos("BTC", true, 0.1, 0.1 * btc[k])],
            ),
            wallet(
                "0xee",
                2e6,
                1e3,
                0.001,
                1e6,
                vec![
                    pos("BTC", true, 1.0, btc[k]),
                    pos("ETH", false, 35.0, 35.0 * eth[k]),
                    pos("SOL", true, 100.0, 10_000.0),
                    pos("DOGE", false, 1e5, 10_000.0),
                ],
            ),
        ];
        if k == 2 {
            rows.push(wallet(
                "0xff",
                3e6,
                9e5,
                0.3,
                1e7,
                vec![pos("BTC", true, 2.0, 2.0 * btc[k])],
            ));
        }
        h.push(&snapshot(hours, rows));
    }
    h
}

fn by_addr(scores: &[WalletScore]) -> BTreeMap<&str, &WalletScore> {
    scores.iter().map(|s| (s.address.as_str(), s)).collect()
}

#[test]
fn snapshots_merge_the_day_and_week_lists_and_price_coins_from_positions() {
    let s = snapshot(
        0,
        vec![wallet(
            "0xAA",
            1e6,
            5.0,
            0.5,
            7.0,
            vec![pos("BTC", true, 2.0, 140_000.0)],
        )],
    );
    let w = &s.wallets[0];
    assert_eq!(w.address, "0xaa", "addresses are lower-cased");
    assert_eq!(
        (
            w.day.unwrap().pnl,
            w.week.unwrap().pnl,
            w.week.unwrap().volume
        ),
        (5.0, 10.0, 28.0)
    );
    assert_eq!(s.prices["BTC"], 70_000.0);
    assert_eq!(s.ts_ms, 1_770_000_000_000);
}

#[test]
fn weighting_on_known_inputs() {
    let cfg = WalletsConfig::default();
    let scores = history().score(&cfg);
    let s = by_addr(&scores);
    let excluded = |a: &str| s[a].excluded;
    assert_eq!(excluded("0xaa"), None);
    assert_eq!(excluded("0xbb"), None);
    assert_eq!(
        excluded("0xcc"),
        Some(Exclusion::Vault),
        "no volume, 500 M account"
    );
    assert_eq!(
        excluded("0xdd"),
        Some(Exclusion::MarketMaker),
        "week volume 400× account"
    );
    assert_eq!(
        excluded("0xee"),
        Some(Exclusion::MarketMaker),
        "net 0 of a 4-position book"
    );
    assert_eq!(
        excluded("0xff"),
        Some(Exclusion::TooNew),
        "one snapshot of history"
    );
    // Lowest PnL and ROI in both windows, never in profit: performance 0. The good trader is
    // always in profit: half of his performance is consistency.
    assert_eq!(s["0xbb"].dims.performance, 0.0);
    assert!(
        s["0xaa"].dims.performance > 0.5 + 0.25,
        "{:?}",
        s["0xaa"].dims
    );
    // The vault has the largest account: size rank 1.
    assert_eq!(s["0xcc"].dims.size, 1.0);
    // Unchanged since 0 h, seen at 54 h: 54 h of decay at a 48 h half-life; 0xbb changed at 54 h.
    assert!((s["0xaa"].dims.recency - 0.5f64.powf(54.0 / 48.0)).abs() < 1e-12);
    assert_eq!(s["0xbb"].dims.recency, 1.0);
    // The long BTC book gained (+10 %, −9.1 %), the ETH short lost (−10 %, 0): regime fit.
    assert!(s["0xaa"].dims.regime_fit > s["0xbb"].dims.regime_fit);
    // Combined by the config weights; followed wallets first, best first, excluded ones last.
    let w = &cfg.weights;
    let d: &Dims = &s["0xaa"].dims;
    let want = (w.performance * d.performance
        + w.size * d.size
        + w.recency * d.recency
        + w.regime_fit * d.regime_fit)
        / (w.performance + w.size + w.recency + w.regime_fit);
    assert!((s["0xaa"].weight - want).abs() < 1e-12);
    let order: Vec<&str> = scores.iter().map(|s| s.address.as_str()).take(2).collect();
    assert_eq!(order, ["0xaa", "0xbb"]);
}

fn row(addr: &str, positions: &[(&str, bool, f64)]) -> WalletRow {
    WalletRow {
        address: addr.into(),
        name: None,
        account_value: 1e6,
        day: None,
        week: None,
        positions: positions
            .iter()
            .map(|(c, long, value)| WalletPosition {
                coin: c.to_string(),
                long: *long,
                size: 1.0,
                value: *value,
                leverage: 1.0,
            })
            .collect(),
    }
}

#[test]
fn consensus_and_target_weights_by_hand() {
    // Weight 2: 75 % of the book long BTC, 25 % short ETH; weight 1: all long BTC.
    let a = row("0x1", &[("BTC", true, 75.0), ("ETH", false, 25.0)]);
    let b = row("0x2", &[("BTC", true, 100.0)]);
    let c = consensus(&[(2.0, &a), (1.0, &b)]);
    assert!((c["BTC"].value - 2.5 / 3.0).abs() < 1e-12);
    assert!((c["ETH"].value + 0.5 / 3.0).abs() < 1e-12);
    assert_eq!((c["BTC"].wallets_long, c["ETH"].wallets_short), (2, 1));
    let mut cfg = WalletsConfig::default();
    // ETH has one wallet on its side (min 2): only BTC, capped at half the equity.
    assert_eq!(
        target_weights(&c, &cfg),
        BTreeMap::from([("BTC".to_string(), 0.5)])
    );
    cfg.min_wallets = 1;
    let t = target_weights(&c, &cfg);
    assert_eq!(t["BTC"], 0.5);
    assert!(
        (t["ETH"] + 1.0 / 6.0).abs() < 1e-12,
        "short in proportion to its consensus"
    );
}

fn priced(ts_ms: i64, btc: f64) -> Snapshot {
    Snapshot {
        ts_ms,
        source: String::new(),
        wallets: vec![],
        prices: BTreeMap::from([("BTC".to_string(), btc)]),
    }
}

#[test]
fn following_pays_returns_fees_and_slippage_by_hand() {
    let cfg = WalletsConfig::default(); // 4.5 + 5 bps on every change of exposure
    let snaps = [priced(0, 100.0), priced(6 * H, 110.0), priced(12 * H, 99.0)];
    let half_btc = BTreeMap::from([("BTC".to_string(), 0.5)]);
    let targets = vec![half_btc.clone(), half_btc.clone(), BTreeMap::new()];
    let steps = simulate(&snaps, &targets, 0, &cfg);
    let rate = 9.5 / 10_000.0;
    assert_eq!(steps.len(), 2);
    assert!((steps[0].gross - 0.05).abs() < 1e-12 && (steps[0].cost - 0.5 * rate).abs() < 1e-15);
    // Held on (no cost), then the closing trade at the end is paid in the last step.
    assert!((steps[1].gross - 0.5 * (99.0 / 110.0 - 1.0)).abs() < 1e-12);
    assert!((steps[1].cost - 0.5 * rate).abs() < 1e-15);
    assert_eq!((steps[0].positions_won, steps[1].positions_won), (1, 0));
    // One snapshot late: the first target is held from 6 h to 12 h only.
    let late = simulate(&snaps, &targets, 1, &cfg);
    assert_eq!(late.len(), 1);
    assert!((late[0].net - (0.5 * (99.0 / 110.0 - 1.0) - 2.0 * 0.5 * rate)).abs() < 1e-12);
}

fn scored(addr: &str, av: f64, lev: f64) -> WalletScore {
    WalletScore {
        address: addr.into(),
        name: None,
        account_value: av,
        dims: Dims::default(),
        weight: 0.7,
        excluded: None,
        leverage: lev,
    }
}

#[test]
fn random_wallets_are_matched_on_account_value_and_leverage() {
    let scores = vec![vec![
        scored("0xtop", 1e6, 5.0),
        scored("0xbig", 1e9, 5.0),
        scored("0xwild", 1.2e6, 40.0),
        scored("0xtwin", 2e6, 4.0),
    ]];
    let top = vec![vec![(0.7, "0xtop".to_string())]];
    for seed in 0..20 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let pick = random_matched(&scores, &top, &mut rng);
        assert_eq!(pick, vec![vec![(0.7, "0xtwin".to_string())]], "seed {seed}");
    }
}
