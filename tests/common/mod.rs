//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod core;
pub mod fake;
pub mod fake_exchange;
pub mod fake_telegram;
pub mod fault_venue;
pub mod venues;

use std::path::PathBuf;

/// The shared data folder, or `None` (with a message) when it is absent. With
/// `SMARTFLOW_REQUIRE_DATA` set (CI), absence is a failure, not a skip.
pub fn data_dir() -> Option<PathBuf> {
    let dir = smartflow::feeds::shared_data_dir();
    if dir.join("binance_pumps/events_index.csv").exists() {
        return Some(dir);
    }
    if std::env::var_os("SMARTFLOW_REQUIRE_DATA").is_some() {
        panic!(
            "shared data not found at {} and SMARTFLOW_REQUIRE_DATA is set",
            dir.display()
        );
    }
    eprintln!(
        "SKIPPED: shared data not found at {} (set SMARTFLOW_DATA)",
        dir.display()
    );
    None
}

/// Returns early from a test when the shared data is absent (outside CI).
#[macro_export]
macro_rules! require_data {
    () => {
        match common::data_dir() {
            Some(d) => d,
            None => return,
        }
    };
}

pub fn pump_file(data: &std::path::Path, name: &str) -> String {
    data.join("binance_pumps/trades")
        .join(name)
        .display()
        .to_string()
}

/// `announced_ms` of a pump file from events_index.csv.
pub fn announced_ms(data: &std::path::Path, file: &str) -> i64 {
    let text = std::fs::read_to_string(data.join("binance_pumps/events_index.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |n: &str| header.iter().position(|h| *h == n).unwrap();
    for l in lines {
        let f: Vec<&str> = l.split(',').collect();
        if f[col("file")].ends_with(file) {
            return f[col("announced_ms")].parse().unwrap();
        }
    }
    panic!("{file} not in events_index.csv")
}

/// Five small pump files of different coins and dates (replay, batching and crash tests).
pub const FIVE_PUMPS: &[&str] = &[
    "AST_2020-05-09_16.00.csv.gz",
    "YOYOW_2020-05-14_16.00.csv.gz",
    "QLC_2020-03-12_16.00.csv.gz",
    "BNT_2019-09-09_20.00.csv.gz",
    "FUEL_2020-03-27_21.00.csv.gz",
];

/// The real whale's `userFills` rows (datadigshawn_whale_0xb317 CSV; the file holds each 4×)
/// de-duplicated by `tid`, oldest first in the API's order (same-millisecond fills are not in
/// `tid` order), each with its time in Unix ms. Columns: coin, px, sz, side, time,
/// startPosition, dir, closedPnl, hash, oid, crossed, fee, tid, feeToken, twapId, usd.
pub fn whale_fill_rows(data: &std::path::Path) -> Vec<(csv::StringRecord, i64)> {
    use std::io::Read;
    let path = data.join("hyperliquid/datadigshawn_whale_0xb317/hyperliquid_0xb317_trades.csv.gz");
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second].[subsecond]"
    );
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for r in csv::Reader::from_reader(text.as_bytes()).records() {
        let r = r.unwrap();
        if !seen.insert(r[12].to_string()) {
            continue;
        }
        let t = time::PrimitiveDateTime::parse(&r[4], &fmt)
            .unwrap()
            .assume_utc();
        out.push((r, (t.unix_timestamp_nanos() / 1_000_000) as i64));
    }
    out.reverse();
    out
}

/// The exported decision log of the paper session in `state`.
pub fn paper_log(state: &std::path::Path) -> String {
    let st = smartflow::store::Store::open_file(state, smartflow::store::PAPER_STORE).unwrap();
    let mut v = Vec::new();
    smartflow::cli::log::export(&st, &Default::default(), &mut v).unwrap();
    String::from_utf8(v).unwrap()
}

/// The exported decision log of a replay of `tape`.
pub fn replay_tape(
    tape: &std::path::Path,
    cfg: &smartflow::config::Config,
    dir: &std::path::Path,
) -> String {
    let state = dir.join(format!(
        "replay-of-{}",
        tape.file_name().unwrap().to_string_lossy()
    ));
    smartflow::replay::run_replay(smartflow::replay::ReplayOptions {
        data: vec![tape.display().to_string()],
        config: cfg.clone(),
        state_dir: state.clone(),
        fault: smartflow::fault::Fault::default(),
        resume: false,
        progress: false,
    })
    .unwrap();
    let mut v = Vec::new();
    smartflow::cli::log::export(
        &smartflow::store::Store::open(&state).unwrap(),
        &Default::default(),
        &mut v,
    )
    .unwrap();
    String::from_utf8(v).unwrap()
}
