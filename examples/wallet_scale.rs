//! Scale of the smart-money path (use --release), against issue 13's goals:
//! - Hyperliquid `trades` messages through decode + the wallet filter on one core (≥ 500 k/s);
//! - 5 000 tracked wallets × 200 coins of positions and flow in memory (< 300 MB);
//! - a 40 MB leaderboard read row by row (< 2 s).
//!
//! `cargo run --release --example wallet_scale -- [RUNS]` prints the median of RUNS (default 3).
//! Messages and the leaderboard are synthetic, shaped like the real ones (one trade per frame,
//! 42-character addresses, 4 windows of decimal strings per leaderboard row).

use rust_decimal::Decimal;
use smartflow::domain::{MarketEvent, Side};
use smartflow::feeds::venues::hyperliquid::HyperliquidCodec;
use smartflow::feeds::venues::VenueCodec;
use smartflow::wallets::events::{WalletBook, WalletFill, WalletFilter};
use smartflow::wallets::flow::Flow;
use smartflow::wallets::leaderboard::read_leaderboard;
use smartflow::wallets::WalletsConfig;
use std::time::Instant;

fn addr(i: u64) -> String {
    format!("0x{:040x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn rss_mb() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = s
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|x| x.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

/// 1 M trade frames of 200 coins between 50 000 wallets; every 10th wallet is tracked.
fn filter_rate(runs: usize) -> (f64, u64) {
    let coins: Vec<String> = (0..200).map(|i| format!("C{i}")).collect();
    let pairs: Vec<String> = coins.iter().map(|c| format!("{c}/USDC")).collect();
    let frames: Vec<String> = (0..1_000_000u64)
        .map(|i| {
            let (b, s) = (addr(i * 7 % 50_000), addr(i * 13 % 50_000));
            format!(
                r#"{{"channel":"trades","data":[{{"coin":"{}","side":"B","px":"84133.0","sz":"0.02279","time":{},"hash":"0x0","tid":{},"users":["{b}","{s}"]}}]}}"#,
                coins[(i % 200) as usize],
                1_790_231_124_037 + i as i64,
                140_238_147_810_435 + i
            )
        })
        .collect();
    let filter = WalletFilter::new((0..50_000).step_by(10).map(|i| (addr(i), 1.0)));
    let mut rates = Vec::new();
    let mut hits = 0;
    for _ in 0..runs {
        let mut codec = HyperliquidCodec::new(&pairs).unwrap();
        let mut out = Vec::with_capacity(4);
        hits = 0u64;
        let t0 = Instant::now();
        for f in &frames {
            out.clear();
            codec.on_message(f, 0, &mut out).unwrap();
            for e in &out {
                if let MarketEvent::Trade(t) = e {
                    hits += filter.sides(t).iter().flatten().count() as u64;
                }
            }
        }
        rates.push(frames.len() as f64 / t0.elapsed().as_secs_f64());
    }
    (median(rates), hits)
}

/// Positions of 5 000 wallets in 200 coins each, and 1 M changes in the flow window.
fn memory() -> f64 {
    let before = rss_mb();
    let mut book = WalletBook::new(3_600_000);
    let mut flow = Flow::new(vec![300_000, 3_600_000]);
    let mut tid = 0;
    for w in 0..5_000u64 {
        let wallet = addr(w);
        for c in 0..200 {
            tid += 1;
            let f = WalletFill {
                wallet: wallet.clone(),
                coin: format!("C{c}"),
                side: if tid % 2 == 0 { Side::Buy } else { Side::Sell },
                price: Decimal::new(84133, 0),
                size: Decimal::new(2279, 5),
                ts_ms: 1_790_231_124_037 + (tid as i64 % 3_000_000),
                tid,
                start_position: None,
            };
            if let Some(c) = book.apply(&f) {
                flow.push(&c, 0.5);
            }
        }
    }
    let used = rss_mb() - before;
    std::hint::black_box((&book, &flow));
    used
}

/// A leaderboard of at least 40 MB: rows with the real layout's 4 windows of decimal strings.
fn leaderboard(runs: usize) -> (f64, f64, usize) {
    let win = |name: &str, k: u64| {
        format!(
            r#"["{name}",{{"pnl":"{}.123456789012","roi":"0.{:016}","vlm":"{}.98765432109"}}]"#,
            k * 37 % 1_000_000,
            k * 7919 % 10_000_000_000_000_000,
            k * 101 % 90_000_000
        )
    };
    let mut doc = String::from(r#"{"leaderboardRows":["#);
    let mut k = 0u64;
    while doc.len() < 40 * 1024 * 1024 {
        if k > 0 {
            doc.push(',');
        }
        doc.push_str(&format!(
            r#"{{"ethAddress":"{}","accountValue":"{}.5","windowPerformances":[{},{},{},{}],"prize":0,"displayName":null}}"#,
            addr(k),
            k * 1_234 % 50_000_000,
            win("day", k),
            win("week", k + 1),
            win("month", k + 2),
            win("allTime", k + 3),
        ));
        k += 1;
    }
    doc.push_str("]}");
    let cfg = WalletsConfig::default();
    let mut secs = Vec::new();
    let mut n = 0;
    for _ in 0..runs {
        let t0 = Instant::now();
        n = read_leaderboard(doc.as_bytes(), &cfg, |r| {
            std::hint::black_box(r);
        })
        .unwrap();
        secs.push(t0.elapsed().as_secs_f64());
    }
    (median(secs), doc.len() as f64 / 1e6, n)
}

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    // Memory first: a fresh process, before the other runs leave freed pages behind.
    println!(
        "5 000 wallets × 200 coins positions + 1 M flow entries: {:.0} MB RSS (goal < 300 MB)",
        memory()
    );
    let (rate, hits) = filter_rate(runs);
    println!(
        "trades frames through decode + wallet filter (5 000 of 50 000 wallets tracked): {:.0} k msg/s median of {runs} (goal ≥ 500 k/s; {hits} tracked sides)",
        rate / 1e3
    );
    let (secs, mb, rows) = leaderboard(runs);
    println!(
        "leaderboard {mb:.1} MB, {rows} rows read row by row: {secs:.2} s median of {runs} (goal < 2 s)"
    );
}
