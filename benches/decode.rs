//! Decoding real captured trade messages into market events (per core).
//! Run: `cargo bench --bench decode` (needs ../shared/data or SMARTFLOW_DATA).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use smartflow::feeds::venues::{codec, Venue};
use std::hint::black_box;
use std::io::BufRead;

fn lines(path: &std::path::Path) -> Vec<String> {
    smartflow::feeds::open_reader(path)
        .expect("shared data present")
        .lines()
        .map(|l| l.unwrap())
        .collect()
}

fn bench(c: &mut Criterion) {
    let data = smartflow::feeds::shared_data_dir();
    // Binance: the aggTrade messages of the futures capture (91 real trades, 4 symbols).
    let bn: Vec<String> = lines(&data.join("cryptofeed_ws_captures/BINANCE_FUTURES.ws.1.0.txt.gz"))
        .into_iter()
        .filter(|l| l.contains("\"e\":\"aggTrade\""))
        .filter_map(|l| l.split_once(": ").map(|(_, j)| j.to_string()))
        .collect();
    // Bybit v5: the publicTrade messages of the 2026 capture.
    let by: Vec<String> = lines(&data.join("cryptofeed_ws_captures/BYBIT_v3_2026.jsonl.gz"))
        .into_iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(&l).unwrap())
        .filter(|r| {
            r["t"] == "recv"
                && r["data"]
                    .as_str()
                    .unwrap_or("")
                    .contains("\"topic\":\"publicTrade")
        })
        .map(|r| r["data"].as_str().unwrap().to_string())
        .collect();
    // Hyperliquid: the recorded BTC trades, one trade per `trades` message.
    let raw = std::fs::read_to_string(
        data.join("hyperliquid/praanaavvv_liquidity_console/ws_trades_BTC.json"),
    )
    .unwrap();
    let items: Vec<serde_json::Value> = serde_json::from_str(&raw).unwrap();
    let hl: Vec<String> = items
        .iter()
        .map(|t| serde_json::json!({"channel": "trades", "data": [t]}).to_string())
        .collect();

    let mut g = c.benchmark_group("decode_trade_messages");
    for (name, venue, pairs, msgs) in [
        (
            "binance_aggTrade",
            Venue::Binance,
            vec!["SUSHI/USDT", "AKRO/USDT", "KEEP/USDT", "CTK/USDT"],
            &bn,
        ),
        (
            "bybit_publicTrade",
            Venue::Bybit,
            vec!["BTC/USDT", "ETH/USDT", "SOL/USDT", "DOGE/USDT"],
            &by,
        ),
        (
            "hyperliquid_trades",
            Venue::Hyperliquid,
            vec!["BTC/USDC"],
            &hl,
        ),
    ] {
        let pairs: Vec<String> = pairs.into_iter().map(String::from).collect();
        let mut cd = codec(venue, &pairs, 50).unwrap();
        let mut out = Vec::with_capacity(16);
        g.throughput(Throughput::Elements(msgs.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                for m in msgs.iter() {
                    out.clear();
                    let _ = black_box(cd.on_message(black_box(m), 0, &mut out));
                }
                black_box(out.len())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
