//! Readers and merge on the real recorded files.

mod common;

use flate2::write::GzEncoder;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use smartflow::domain::{Side, Trade};
use smartflow::feeds::merge::MergedStream;
use smartflow::feeds::{expand_paths, open_source, SourceItem};
use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::Path;

fn read_all(path: &Path) -> (Vec<Trade>, Vec<smartflow::feeds::Malformed>) {
    let mut src = open_source(path).unwrap();
    let (mut ok, mut bad) = (vec![], vec![]);
    while let Some(item) = src.next_item() {
        match item {
            SourceItem::Ok(e) => ok.push(e.as_trade().expect("trade files hold trades").clone()),
            SourceItem::Err(m) => bad.push(m),
        }
    }
    (ok, bad)
}

#[test]
fn binance_pump_csv_streams_every_row() {
    let data = require_data!();
    let (trades, bad) = read_all(&data.join("binance_pumps/trades/ADX_2019-07-05_17.00.csv.gz"));
    assert!(bad.is_empty(), "{bad:?}");
    // events_index.csv: n_trades 23135, n_buy 11570.
    assert_eq!(trades.len(), 23135);
    assert_eq!(
        trades.iter().filter(|t| t.aggressor == Side::Buy).count(),
        11570
    );
    // First row: ADX/BTC,1561741296383,…,sell,1.173e-05,1670.0,0.0195890999999999
    let t = &trades[0];
    assert_eq!(t.instrument.as_str(), "ADX/BTC");
    assert_eq!(t.ts_ms, 1561741296383);
    assert_eq!(t.aggressor, Side::Sell);
    assert_eq!(t.price, dec!(0.00001173));
    assert_eq!(t.qty, dec!(1670));
    assert_eq!(t.notional(), dec!(0.0195891));
    assert!(trades.windows(2).all(|w| w[0].ts_ms <= w[1].ts_ms));
    assert_eq!(trades.last().unwrap().ts_ms, 1562432359870);
}

#[test]
fn freqtrade_trades_json() {
    let data = require_data!();
    let (trades, bad) = read_all(&data.join("freqtrade/XRP_ETH-trades.json.gz"));
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(trades.len(), 12477);
    let (a, z) = (&trades[0], trades.last().unwrap());
    assert_eq!(a.instrument.as_str(), "XRP/ETH");
    assert_eq!(
        (a.ts_ms, a.trade_id, a.aggressor),
        (1570752011620, Some(13519807), Side::Sell)
    );
    assert_eq!((a.price, a.qty), (dec!(0.00141342), dec!(23)));
    assert_eq!(
        (z.ts_ms, z.price, z.qty),
        (1570965568844, dec!(0.00152787), dec!(130))
    );
}

#[test]
fn binance_websocket_captures() {
    let data = require_data!();
    let (spot, bad) = read_all(&data.join("cryptofeed_ws_captures/BINANCE.ws.1.0.txt.gz"));
    assert!(bad.is_empty(), "{bad:?}");
    // 267 lines of depth, bookTicker, kline and 2 aggTrade messages: only the trades come out.
    assert_eq!(spot.len(), 2);
    assert_eq!(spot[0].instrument.as_str(), "NKN/USDT");
    assert_eq!((spot[0].price, spot[0].qty), (dec!(0.3528), dec!(58)));
    assert_eq!(spot[0].aggressor, Side::Buy); // "m": false → the buyer took liquidity
    assert_eq!(spot[1].instrument.as_str(), "LRC/BTC");
    let (fut, bad) = read_all(&data.join("cryptofeed_ws_captures/BINANCE_FUTURES.ws.1.0.txt.gz"));
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(fut.len(), 91);
    assert!(fut
        .iter()
        .all(|t| t.trade_id.is_some() && t.instrument.quote() == "USDT"));
}

fn gz_write(path: &Path, text: &str) {
    let mut e = GzEncoder::new(
        std::fs::File::create(path).unwrap(),
        flate2::Compression::fast(),
    );
    e.write_all(text.as_bytes()).unwrap();
    e.finish().unwrap();
}

#[test]
fn malformed_lines_are_counted_with_file_and_line_and_the_run_goes_on() {
    let data = require_data!();
    // The first 40 real rows of a pump file with four broken lines put in.
    let src = data.join("binance_pumps/trades/GNT_2020-01-10_18.00.csv.gz");
    let rows: Vec<String> = smartflow::feeds::open_reader(&src)
        .unwrap()
        .lines()
        .take(41)
        .map(|l| l.unwrap())
        .collect();
    let mut text = rows[..11].join("\n");
    text.push_str("\nGNT/BTC,1578074000000,x,buy,not-a-price,5.0,0.1");
    text.push_str("\nGNT/BTC,1578074000001,x,hold,0.00001,5.0,0.1");
    text.push_str("\nGNT/BTC,oops,x,buy,0.00001,5.0,0.1");
    text.push_str("\nGNT/BTC,1578074000002");
    text.push('\n');
    text.push_str(&rows[11..].join("\n"));
    text.push('\n');
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.csv.gz");
    gz_write(&path, &text);

    let mut merged = MergedStream::new(vec![open_source(&path).unwrap()]);
    let n = merged.by_ref().count();
    assert_eq!(n, 40, "every good row survives");
    assert_eq!(merged.stats.malformed, 4);
    let lines: Vec<u64> = merged
        .stats
        .malformed_details
        .iter()
        .map(|m| m.line)
        .collect();
    assert_eq!(lines, vec![12, 13, 14, 15]);
    let reasons: Vec<&str> = merged
        .stats
        .malformed_details
        .iter()
        .map(|m| m.reason.as_str())
        .collect();
    assert!(reasons[0].contains("price"), "{reasons:?}");
    assert!(reasons[1].contains("side"), "{reasons:?}");
    assert!(reasons[2].contains("timestamp"), "{reasons:?}");
    assert!(merged.stats.malformed_details[0]
        .file
        .ends_with("broken.csv.gz"));

    // A truncated gzip ends that file with one malformed record, not a panic.
    let bytes = std::fs::read(&src).unwrap();
    let cut = dir.path().join("cut.csv.gz");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let mut merged = MergedStream::new(vec![open_source(&cut).unwrap()]);
    let n = merged.by_ref().count();
    assert!(n > 1000, "the readable part is used: {n}");
    assert_eq!(merged.stats.malformed, 1);
}

/// Multiset union of two trade lists, computed the slow obvious way.
fn union_count(a: &[Trade], b: &[Trade]) -> usize {
    type K = (i64, Side, Decimal, Decimal);
    let count = |v: &[Trade]| {
        let mut m: HashMap<K, usize> = HashMap::new();
        for t in v {
            *m.entry((t.ts_ms, t.aggressor, t.price, t.qty)).or_default() += 1;
        }
        m
    };
    let (ma, mb) = (count(a), count(b));
    let mut keys: Vec<&K> = ma.keys().chain(mb.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.iter()
        .map(|k| {
            ma.get(*k)
                .copied()
                .unwrap_or(0)
                .max(mb.get(*k).copied().unwrap_or(0))
        })
        .sum()
}

#[test]
fn overlapping_files_of_one_pair_count_each_trade_once() {
    let data = require_data!();
    // The five pairs of the pump set whose files overlap in time.
    for (a, b) in [
        ("DNT_2019-06-26_17.00", "DNT_2019-06-29_16.01"),
        ("DNT_2020-02-27_16.00", "DNT_2020-03-04_19.00"),
        ("EDO_2019-12-08_21.01", "EDO_2019-12-16_16.00"),
        ("SNM_2019-08-04_18.00", "SNM_2019-08-07_16.59"),
        ("SNT_2019-08-16_16.59", "SNT_2019-08-22_20.00"),
    ] {
        let pa = data.join(format!("binance_pumps/trades/{a}.csv.gz"));
        let pb = data.join(format!("binance_pumps/trades/{b}.csv.gz"));
        let (ta, _) = read_all(&pa);
        let (tb, _) = read_all(&pb);
        let mut merged =
            MergedStream::new(vec![open_source(&pa).unwrap(), open_source(&pb).unwrap()]);
        let out: Vec<Trade> = merged
            .by_ref()
            .filter_map(|e| e.as_trade().cloned())
            .collect();
        let expected = union_count(&ta, &tb);
        assert_eq!(out.len(), expected, "{a} + {b}");
        assert!(merged.stats.duplicates_dropped > 0, "{a} + {b} overlap");
        assert_eq!(
            out.len() as u64 + merged.stats.duplicates_dropped,
            (ta.len() + tb.len()) as u64
        );
        assert!(
            out.windows(2).all(|w| w[0].ts_ms <= w[1].ts_ms),
            "time order"
        );
    }
}

#[test]
fn data_paths_take_files_folders_and_globs() {
    let data = require_data!();
    let dir = data.join("binance_pumps/trades");
    let all = expand_paths(&[dir.display().to_string()]).unwrap();
    assert_eq!(all.len(), 136);
    let glob = expand_paths(&[format!("{}/DNT_*.csv.gz", dir.display())]).unwrap();
    assert_eq!(glob.len(), 4);
    let one = expand_paths(&[format!("{}/DNT_2019-06-26_17.00.csv.gz", dir.display())]).unwrap();
    assert_eq!(one.len(), 1);
    let err = expand_paths(&["/nonexistent/*.csv".to_string()]).unwrap_err();
    assert!(err.to_string().contains("matches no data file"));
}

/// A real pump file with two absurd prints (28-digit price, 28-digit amount) spliced into its
/// middle: they are refused as malformed (out of range), so no notional, fee or sizing
/// arithmetic ever sees them (a product of two such numbers overflows `Decimal`, a panic), and
/// the replay's decision log is the same as without them.
#[test]
fn absurd_prints_are_refused_at_the_edge_and_change_nothing_else() {
    let data = require_data!();
    let dir = tempfile::tempdir().unwrap();
    let lines = ast_lines(&data);
    let mid = lines.len() / 2;
    let f: Vec<&str> = lines[mid].split(',').collect();
    let absurd_price = format!(
        "{},{},{},buy,9999999999999999999999999999,1.0,1.0",
        f[0], f[1], f[2]
    );
    let absurd_qty = format!(
        "{},{},{},sell,{},9999999999999999999999999999,1.0",
        f[0], f[1], f[2], f[4]
    );
    let mut spliced = lines.clone();
    spliced.insert(mid + 1, absurd_qty);
    spliced.insert(mid + 1, absurd_price);
    let clean = dir.path().join("clean.csv");
    let dirty = dir.path().join("dirty.csv");
    std::fs::write(&clean, lines.join("\n")).unwrap();
    std::fs::write(&dirty, spliced.join("\n")).unwrap();
    let (_, bad) = read_all(&dirty);
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(
        bad.iter().all(|m| m.reason.contains("out of range")),
        "{bad:?}"
    );

    // Every buy is a signal, so orders rest and fill around the absurd prints.
    let toml = "[models]\nmode = \"rules\"\n[features]\nwarmup_fraction = 0.0\n\
        [detector]\nthreshold = 0.0\ncooldown_secs = 0\nmin_buy_trades = 0.0\nmin_quote_volume = 0.0\n\
        [strategy]\ncooldown_secs = 0\n[risk]\ninstrument_cooldown_secs = 0\n";
    let cfg = smartflow::config::Config::from_toml(toml, "test").unwrap();
    let replay = |file: &Path, state: &str| replay_log(file, &cfg, &dir.path().join(state));
    let (s_clean, log_clean) = replay(&clean, "clean");
    let (s_dirty, log_dirty) = replay(&dirty, "dirty");
    assert!(s_clean.approved > 0, "orders were placed: {s_clean:?}");
    assert_eq!(s_dirty.malformed_lines, 2);
    assert_eq!(log_dirty, log_clean);
}

/// Two rows of a real pump file re-timed to year ~5 million and to before 1970: malformed
/// ("outside 1970..2100"), and the replay's decision log is that of the file without them.
#[test]
fn implausible_event_times_are_malformed_and_change_nothing_else() {
    let data = require_data!();
    let dir = tempfile::tempdir().unwrap();
    let lines = ast_lines(&data);
    let (a, b) = (lines.len() / 3, 2 * lines.len() / 3);
    let retime = |l: &str, ts: &str| {
        let mut f: Vec<&str> = l.split(',').collect();
        f[1] = ts;
        f.join(",")
    };
    let mut dirty = lines.clone();
    dirty[a] = retime(&lines[a], "99999999999999999");
    dirty[b] = retime(&lines[b], "-5");
    let clean: Vec<String> = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != a && *i != b)
        .map(|(_, l)| l.clone())
        .collect();
    let (clean_p, dirty_p) = (dir.path().join("clean.csv"), dir.path().join("dirty.csv"));
    std::fs::write(&clean_p, clean.join("\n")).unwrap();
    std::fs::write(&dirty_p, dirty.join("\n")).unwrap();
    let (_, bad) = read_all(&dirty_p);
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(
        bad.iter().all(|m| m.reason.contains("outside 1970..2100")),
        "{bad:?}"
    );
    let cfg = smartflow::config::Config::default();
    let replay = |file: &Path, state: &str| replay_log(file, &cfg, &dir.path().join(state)).1;
    assert_eq!(replay(&dirty_p, "dirty"), replay(&clean_p, "clean"));
}

/// The lines of a real pump file (AST, 2020-05-09), header first.
fn ast_lines(data: &Path) -> Vec<String> {
    let src = data.join("binance_pumps/trades/AST_2020-05-09_16.00.csv.gz");
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(src).unwrap()),
        &mut text,
    )
    .unwrap();
    text.lines().map(String::from).collect()
}

/// Replays `file` with `cfg` into `state`: its summary and exported decision log.
fn replay_log(
    file: &Path,
    cfg: &smartflow::config::Config,
    state: &Path,
) -> (smartflow::replay::ReplaySummary, String) {
    let s = smartflow::replay::run_replay(smartflow::replay::ReplayOptions {
        data: vec![file.display().to_string()],
        config: cfg.clone(),
        state_dir: state.to_path_buf(),
        fault: Default::default(),
        resume: false,
        progress: false,
    })
    .expect("the run completes");
    let mut log = Vec::new();
    let store = smartflow::store::Store::open(state).unwrap();
    smartflow::cli::log::export(&store, &Default::default(), &mut log).unwrap();
    (s, String::from_utf8(log).unwrap())
}

/// Found by `smartflow fuzz`: a damaged gzip stream fails on every read at the same place,
/// and the readers retried it for ever (a replay that never ends). Now the error is reported
/// once and the file ends; the rows before the damage are kept.
#[test]
fn a_truncated_gzip_file_is_reported_once_and_ends() {
    let data = require_data!();
    // Big enough that the damage lies past the first buffer the format detection reads.
    let text: String = ast_lines(&data).join("\n");
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in [("a.csv", text), ("b.txt", capture_text(&data))] {
        let path = dir.path().join(format!("{name}.gz"));
        gz_write(&path, &body);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() * 4 / 5]).unwrap(); // cut mid-block
        let mut src = open_source(&path).unwrap();
        let (mut ok, mut bad) = (0, vec![]);
        for _ in 0..1_000_000 {
            match src.next_item() {
                None => break,
                Some(SourceItem::Ok(_)) => ok += 1,
                Some(SourceItem::Err(m)) => bad.push(m.reason),
            }
        }
        assert!(src.next_item().is_none(), "{name}: the reader did not end");
        assert_eq!(bad.len(), 1, "{name}: {:?}", &bad[..bad.len().min(3)]);
        assert!(bad[0].contains("deflate"), "{name}: {bad:?}");
        assert!(ok > 0, "{name}: the rows before the damage are kept");
    }
}

/// The real Binance websocket capture, 40 times over.
fn capture_text(data: &Path) -> String {
    let path = data.join("cryptofeed_ws_captures/BINANCE.ws.1.0.txt.gz");
    let r = smartflow::feeds::open_reader(&path).unwrap();
    let once = r.lines().map(|l| l.unwrap()).collect::<Vec<_>>().join("\n");
    vec![once; 40].join("\n")
}
