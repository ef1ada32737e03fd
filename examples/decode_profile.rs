//! Decode loop for profiling (`valgrind --tool=callgrind`): Bybit publicTrade frames.
use smartflow::feeds::venues::{codec, Venue};
use std::io::BufRead;

fn main() {
    let data = smartflow::feeds::shared_data_dir();
    let frames: Vec<String> =
        smartflow::feeds::open_reader(&data.join("cryptofeed_ws_captures/BYBIT_v3_2026.jsonl.gz"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(&l.unwrap()).unwrap())
            .filter(|r| {
                r["t"] == "recv"
                    && r["data"]
                        .as_str()
                        .unwrap_or("")
                        .contains("\"topic\":\"publicTrade")
            })
            .map(|r| r["data"].as_str().unwrap().to_string())
            .collect();
    let pairs: Vec<String> = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "DOGE/USDT"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut c = codec(Venue::Bybit, &pairs, 50).unwrap();
    let mut out = Vec::new();
    let mut n = 0;
    let iters: usize = std::env::var("ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    for _ in 0..iters {
        for f in &frames {
            out.clear();
            c.on_message(f, 0, &mut out).unwrap();
            n += out.len();
        }
    }
    println!("{n}");
}
