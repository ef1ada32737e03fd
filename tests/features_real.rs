//! Feature values on real trades against a slow reference computed from scratch for each trade.

mod common;

use rust_decimal::prelude::ToPrimitive;
use smartflow::domain::{Side, Trade};
use smartflow::features::{FeatureConfig, FeatureWindow, CHUNK_SECS};
use smartflow::feeds::{open_source, SourceItem};
use std::collections::BTreeMap;

fn close(a: f64, b: f64, what: &str) {
    let tol = 1e-6 * a.abs().max(b.abs()).max(1.0);
    assert!((a - b).abs() <= tol, "{what}: window {a} vs reference {b}");
}

#[derive(Default, Clone, Copy)]
struct Agg {
    trades: f64,
    quote: f64,
    rush: f64,
    price_sum: f64,
}

#[test]
fn window_matches_reference_around_real_pumps() {
    let data = require_data!();
    for file in ["ADX_2019-07-05_17.00.csv.gz", "GNT_2020-04-10_16.00.csv.gz"] {
        let announced = common::announced_ms(&data, file);
        let mut src = open_source(&data.join("binance_pumps/trades").join(file)).unwrap();
        let mut trades: Vec<Trade> = vec![];
        while let Some(SourceItem::Ok(e)) = src.next_item() {
            trades.push(e.as_trade().unwrap().clone());
        }
        let cfg = FeatureConfig::default();
        let mut w = FeatureWindow::new(&cfg);
        let px = |t: &Trade| t.price.to_f64().unwrap();
        let qty = |t: &Trade| t.qty.to_f64().unwrap();
        let mut checked = 0;
        for k in 0..trades.len() {
            let snap = w.update(&trades[k]);
            let t = &trades[k];
            // Check every buy from 10 minutes before to 5 minutes after the announcement.
            if t.ts_ms < announced - 600_000 || t.ts_ms > announced + 300_000 {
                continue;
            }
            let Some(s) = snap else {
                assert_eq!(t.aggressor, Side::Sell);
                continue;
            };
            checked += 1;
            // Everything the features can see: the baseline (1 h) plus the 5-minute windows.
            let horizon = t.ts_ms - cfg.baseline_secs * 1000 - 360_000;
            let lo = trades.partition_point(|x| x.ts_ms < horizon);
            let upto = &trades[lo..=k];
            for (ci, secs) in CHUNK_SECS.iter().enumerate() {
                let width = secs * 1000;
                let c = t.ts_ms.div_euclid(width);
                let n_base = cfg.baseline_secs / secs;
                // Per-chunk aggregates of buys, from scratch.
                let mut chunks: BTreeMap<i64, Agg> = BTreeMap::new();
                let mut per_ms: BTreeMap<(i64, i64), u32> = BTreeMap::new();
                for x in upto.iter().filter(|x| x.aggressor == Side::Buy) {
                    let ck = x.ts_ms.div_euclid(width);
                    if ck < c - n_base {
                        continue;
                    }
                    let a = chunks.entry(ck).or_default();
                    a.trades += 1.0;
                    a.quote += px(x) * qty(x);
                    a.price_sum += px(x);
                    *per_ms.entry((ck, x.ts_ms)).or_default() += 1;
                }
                for ((ck, _), n) in &per_ms {
                    if *n >= 2 {
                        chunks.get_mut(ck).unwrap().rush += 1.0;
                    }
                }
                let cur = chunks.get(&c).copied().unwrap_or_default();
                let cur_max = upto
                    .iter()
                    .filter(|x| x.aggressor == Side::Buy && x.ts_ms.div_euclid(width) == c)
                    .map(px)
                    .fold(0.0, f64::max);
                let base: Vec<Agg> = (c - n_base..c)
                    .map(|i| chunks.get(&i).copied().unwrap_or_default())
                    .collect();
                let n = base.len() as f64;
                let ms = |f: &dyn Fn(&Agg) -> f64| {
                    let m = base.iter().map(f).sum::<f64>() / n;
                    let v = base.iter().map(|a| (f(a) - m).powi(2)).sum::<f64>() / n;
                    (m, v.sqrt())
                };
                let (mt, st) = ms(&|a| a.trades);
                let (mq, sq) = ms(&|a| a.quote);
                let (mr, sr) = ms(&|a| a.rush);
                let priced: Vec<f64> = base
                    .iter()
                    .filter(|a| a.trades > 0.0)
                    .map(|a| a.price_sum / a.trades)
                    .collect();
                let mp = priced.iter().sum::<f64>() / priced.len() as f64;
                let f = &s.chunks[ci];
                let tag = |n: &str| format!("{file} {secs}s {n} at trade {k}");
                close(f.trades, cur.trades, &tag("trades"));
                close(f.quote_volume, cur.quote, &tag("quote_volume"));
                close(f.rush_orders, cur.rush, &tag("rush_orders"));
                close(f.max_price, cur_max, &tag("max_price"));
                close(f.mean_price, cur.price_sum / cur.trades, &tag("mean_price"));
                close(
                    f.z_trades,
                    (cur.trades - mt) / st.max(1.0),
                    &tag("z_trades"),
                );
                close(
                    f.z_quote_volume,
                    (cur.quote - mq) / sq.max(mq),
                    &tag("z_quote_volume"),
                );
                close(
                    f.z_rush_orders,
                    (cur.rush - mr) / sr.max(1.0),
                    &tag("z_rush_orders"),
                );
                close(f.price_jump, cur_max / mp - 1.0, &tag("price_jump"));
            }
            // Returns: last price at or before 1 / 5 minutes ago; VWAP over the last 5 minutes.
            let before = |ago: i64| {
                upto.iter()
                    .rev()
                    .find(|x| x.ts_ms <= t.ts_ms - ago)
                    .map(px)
                    .unwrap()
            };
            close(s.ret_1m, px(t) / before(60_000) - 1.0, "ret_1m");
            close(s.ret_5m, px(t) / before(300_000) - 1.0, "ret_5m");
            let win: Vec<&Trade> = upto
                .iter()
                .filter(|x| x.ts_ms > t.ts_ms - 300_000)
                .collect();
            let vwap = win.iter().map(|x| px(x) * qty(x)).sum::<f64>()
                / win.iter().map(|x| qty(x)).sum::<f64>();
            close(s.vwap_5m, vwap, "vwap_5m");
            assert!(s.warm);
        }
        assert!(checked > 100, "{file}: only {checked} buys checked");
    }
}
