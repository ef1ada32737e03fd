//! Property tests of the hand-written parsers (against a reference: `rust_decimal`, the `time`
//! crate, serde) and of the portfolio's accounting. The mutation fuzzer (`tests/fuzz.rs`,
//! `simulations/fuzz.sh`) covers what no reference describes: no panic, no absurd event.

use proptest::prelude::*;
use rust_decimal::Decimal;
use smartflow::domain::{parse_ts, Fill, Instrument, Liquidity, MarketEvent, Side};
use smartflow::execution::portfolio::{Portfolio, PortfolioConfig};
use smartflow::feeds::decimal::{parse_decimal, parse_positive_fast, MAX_VENUE_NUMBER};
use smartflow::feeds::json_array::{Element, JsonArrayStream};
use smartflow::feeds::venues::{codec, Venue};

fn decimal() -> impl Strategy<Value = Decimal> {
    (1i64..i64::MAX, 0u32..=18).prop_map(|(m, s)| Decimal::new(m, s))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// Plain and scientific renderings of a decimal parse back to it; above the venue cap it
    /// is refused.
    #[test]
    fn decimals_parse_back_to_themselves(d in decimal()) {
        prop_assert_eq!(parse_decimal(&d.to_string()), Some(d));
        let sci = format!("{}e-{}", d.mantissa(), d.scale());
        prop_assert_eq!(parse_decimal(&sci), Some(d));
        match parse_positive_fast(&d.to_string(), "px") {
            Ok(x) => prop_assert!(x == d && d <= MAX_VENUE_NUMBER),
            Err(_) => prop_assert!(d > MAX_VENUE_NUMBER),
        }
    }

    /// `parse_ts` agrees with the `time` crate on every valid date and time, and refuses a
    /// month or day that does not exist.
    #[test]
    fn times_agree_with_the_time_crate(
        y in 1970i32..2100, mo in 1u8..=12, d in 1u8..=31, h in 0u8..24, mi in 0u8..60,
        s in 0u8..60, ms in 0u16..1000, bad_month in 13u32..100_000,
    ) {
        let text = format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{ms:03}");
        let month = time::Month::try_from(mo).unwrap();
        let want = time::Date::from_calendar_date(y, month, d).ok().map(|date| {
            let t = date.with_hms_milli(h, mi, s, ms).unwrap().assume_utc();
            (t.unix_timestamp_nanos() / 1_000_000) as i64
        });
        prop_assert_eq!(parse_ts(&text), want);
        prop_assert_eq!(parse_ts(&format!("{y}-{bad_month}-01")), None);
    }
}

/// A Bybit `publicTrade` item: valid or broken fields.
fn bybit_item() -> impl Strategy<Value = serde_json::Value> {
    let num = prop_oneof![
        (1u64..10_000_000, 0u32..8).prop_map(|(m, s)| Decimal::new(m as i64, s).to_string()),
        prop::sample::select(vec![
            "0",
            "-1",
            "1e400",
            "abc",
            "",
            "1e3",
            "100000000000001"
        ])
        .prop_map(String::from),
    ];
    let time = prop_oneof![
        1_600_000_000_000i64..1_800_000_000_000,
        prop::sample::select(vec![-1i64, 4_102_444_800_001]),
    ];
    (
        time,
        prop::sample::select(vec!["BTCUSDT", "ETHUSDT", "XYZUSDT"]),
        prop::sample::select(vec!["Buy", "Sell", "X"]),
        num.clone(),
        num,
    )
        .prop_map(|(t, s, side, v, p)| {
            serde_json::json!({"T": t, "s": s, "S": side, "v": v, "p": p, "L": "PlusTick",
                "i": "0a1b", "BT": false})
        })
}

/// A JSON value with awkward strings (quotes, backslashes, brackets, unicode) and nesting.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        "[\\[\\]{}\",:\\\\a-zé ]{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map("[a-z\\[\"]{0,4}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn fill(i: &Instrument, side: Side, qty: Decimal, price: Decimal, fee: Decimal) -> Fill {
    Fill {
        id: "f".into(),
        order_id: "o".into(),
        instrument: i.clone(),
        side,
        ts_ms: 1,
        price,
        qty,
        fee,
        liquidity: Liquidity::Taker,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// The one-pass trade scanner gives what the serde path gives (the same frame with a
    /// leading space takes the serde path), errors included.
    #[test]
    fn the_bybit_trade_scanner_equals_the_serde_path(
        items in prop::collection::vec(bybit_item(), 1..6),
    ) {
        let frame = format!(
            r#"{{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1786310847618,"data":{}}}"#,
            serde_json::Value::from(items)
        );
        let scanned = frame.starts_with("{\"topic\":\"publicTrade.");
        prop_assert!(scanned, "the frame takes the scanner");
        let pairs = vec!["BTC/USDT".to_string(), "ETH/USDT".to_string()];
        let (mut fast, mut slow) = (Vec::new(), Vec::new());
        let mut c = codec(Venue::Bybit, &pairs, 50).unwrap();
        let a = c.on_message(&frame, 0, &mut fast);
        let b = c.on_message(&format!(" {frame}"), 0, &mut slow);
        prop_assert_eq!(a.is_ok(), b.is_ok(), "{:?} vs {:?}", a, b);
        prop_assert_eq!(fast, slow);
    }

    /// The streaming array splitter yields exactly the elements serde sees, whatever the
    /// whitespace between them.
    #[test]
    fn the_array_splitter_yields_the_elements_serde_sees(
        values in prop::collection::vec(json_value(), 0..8),
        ws in prop::sample::select(vec!["", " ", "\n", " \n\t "]),
    ) {
        let parts: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        let text = format!("[{ws}{}{ws}]", parts.join(&format!("{ws},{ws}")));
        let mut got = Vec::new();
        let mut s = JsonArrayStream::new(text.as_bytes());
        while let Some(e) = s.next_element() {
            match e {
                Element::Item(b, _) => got.push(String::from_utf8(b).unwrap().trim().to_string()),
                Element::Error(r, l) => prop_assert!(false, "error {} at {} in {}", r, l, text),
            }
        }
        prop_assert_eq!(got, parts);
    }

    /// A CSV row of the La Morgia layout reads back as the trade it describes.
    #[test]
    fn binance_csv_rows_read_back_as_their_trades(
        rows in prop::collection::vec(
            (1_500_000_000_000i64..1_700_000_000_000, any::<bool>(), decimal(), decimal()), 1..20),
    ) {
        let mut text = String::from("symbol,timestamp,datetime,side,price,amount,btc_volume\n");
        for (ts, buy, px, qty) in &rows {
            let side = if *buy { "buy" } else { "sell" };
            text += &format!("AST/BTC,{ts},{},{side},{px},{qty},0\n", smartflow::domain::fmt_ts(*ts));
        }
        let reader = smartflow::feeds::decoded(Box::new(std::io::Cursor::new(text))).unwrap();
        let mut src = smartflow::feeds::source_from_reader(reader, "x.csv".into()).unwrap();
        for (ts, buy, px, qty) in &rows {
            let item = src.next_item().unwrap();
            let capped = *px <= MAX_VENUE_NUMBER && *qty <= MAX_VENUE_NUMBER;
            match item {
                Ok(MarketEvent::Trade(t)) => {
                    prop_assert!(capped);
                    prop_assert_eq!((t.ts_ms, t.price, t.qty), (*ts, *px, *qty));
                    prop_assert_eq!(t.aggressor, if *buy { Side::Buy } else { Side::Sell });
                }
                Ok(other) => prop_assert!(false, "{:?}", other),
                Err(m) => prop_assert!(!capped, "{:?}", m),
            }
        }
        prop_assert!(src.next_item().is_none());
    }

    /// Whatever fills arrive (sells beyond what is held included), cash plus positions at
    /// cost equals the starting balance plus realized PnL (which is net of fees), fees add
    /// up, and no spot position goes negative.
    #[test]
    fn the_portfolio_accounts_for_every_fill(
        ops in prop::collection::vec(
            (0usize..2, any::<bool>(), 1i64..100_000, 1i64..10_000_000, 0i64..1_000), 1..60),
    ) {
        let cfg = PortfolioConfig::default();
        let mut p = Portfolio::new(&cfg);
        let insts = [Instrument::new("A/BTC"), Instrument::new("B/BTC")];
        let mut fees = Decimal::ZERO;
        for (k, buy, q, px, fee) in ops {
            let (qty, price, fee) = (Decimal::new(q, 2), Decimal::new(px, 8), Decimal::new(fee, 8));
            let side = if buy { Side::Buy } else { Side::Sell };
            if buy || p.positions.contains_key(&insts[k]) {
                fees += fee;
            }
            p.apply_fill(&fill(&insts[k], side, qty, price, fee), "e");
            let at_cost: Decimal = p.positions.values().map(|x| x.cost_basis).sum();
            prop_assert_eq!(p.cash + at_cost, cfg.starting_balance + p.realized_pnl);
            prop_assert_eq!(p.fees, fees);
            prop_assert!(p.positions.values().all(|x| x.qty > Decimal::ZERO && x.cost_basis >= Decimal::ZERO));
        }
    }
}
