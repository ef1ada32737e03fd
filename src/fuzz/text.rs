//! Targets for text a user or a venue hands us outside a frame: venue numbers (the ASCII decimal
//! parser), times (`parse_ts`, from `log --from` and label files), and config files.

use super::{utf8, Harness, Outcome, Target};
use crate::config::{Config, DEFAULT_TOML, PAPER_TOML};
use crate::domain::parse_ts;
use crate::feeds::decimal::{parse_decimal, parse_positive, parse_positive_fast};
use rust_decimal::Decimal;
use std::path::Path;
use std::str::FromStr;

pub fn targets(data: &Path) -> anyhow::Result<Vec<Target>> {
    Ok(vec![
        Target {
            name: "decimal",
            seeds: number_seeds(data)?,
            make: Box::new(|| Box::new(DecimalHarness)),
        },
        Target {
            name: "parse_ts",
            seeds: [
                "2019-07-05 17:00:00",
                "2019-07-05T17:00:00.250Z",
                "2019-07-05",
                "2020-02-29 23:59:59.999",
                "1562346000000",
                "2019-07-05 17:00",
            ]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect(),
            make: Box::new(|| Box::new(TsHarness)),
        },
        Target {
            name: "config",
            seeds: vec![DEFAULT_TOML.into(), PAPER_TOML.into()],
            make: Box::new(|| Box::new(ConfigHarness)),
        },
    ])
}

/// Numbers as the venues print them, from the first frames of the Binance capture.
fn number_seeds(data: &Path) -> anyhow::Result<Vec<Vec<u8>>> {
    let frames = super::codecs::binance_frames(data)?;
    let mut seeds: Vec<Vec<u8>> = ["5.26e-06", "1.173E-05", "1670.0", "0.00000638", "65114.20"]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
    for f in frames.iter().take(40) {
        for part in f.split('"') {
            if part.len() > 2 && part.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                seeds.push(part.as_bytes().to_vec());
            }
        }
    }
    seeds.sort();
    seeds.dedup();
    Ok(seeds)
}

/// The decimal parsers agree with each other and with `rust_decimal`'s own, and never hand out
/// a price above the venue cap.
struct DecimalHarness;

impl Harness for DecimalHarness {
    fn feed(&mut self, input: &[u8]) -> Outcome {
        let s = match utf8(input) {
            Ok(s) => s,
            Err(o) => return o,
        };
        let (fast, slow) = (parse_positive_fast(s, "price"), parse_positive(s, "price"));
        match (&fast, &slow) {
            (Ok(a), Ok(b)) if a != b => {
                return Outcome::Violation(format!("fast {a} and general {b} parsers differ"))
            }
            (Ok(_), Err(_)) | (Err(_), Ok(_)) => {
                return Outcome::Violation(format!("fast {fast:?} and general {slow:?} disagree"))
            }
            _ => {}
        }
        if let (Some(d), Ok(r)) = (parse_decimal(s), Decimal::from_str(s)) {
            if d != r {
                return Outcome::Violation(format!("{s:?} parsed as {d}, rust_decimal says {r}"));
            }
        }
        match fast {
            Ok(d) if d <= Decimal::ZERO => Outcome::Violation(format!("{d} accepted as positive")),
            Ok(_) => Outcome::Accepted { events: 1 },
            Err(e) => Outcome::Rejected(e),
        }
    }
}

use crate::domain::{TS_MAX_MS as TS_MAX, TS_MIN_MS as TS_MIN};

/// `parse_ts` returns a time inside years 0..=9999 or nothing.
struct TsHarness;

impl Harness for TsHarness {
    fn feed(&mut self, input: &[u8]) -> Outcome {
        let s = match utf8(input) {
            Ok(s) => s,
            Err(o) => return o,
        };
        match parse_ts(s) {
            Some(ms) if !(TS_MIN..=TS_MAX).contains(&ms) => {
                Outcome::Violation(format!("{s:?} parsed as {ms} ms, outside years 0..9999"))
            }
            Some(_) => Outcome::Accepted { events: 1 },
            None => Outcome::Rejected("not a time".into()),
        }
    }
}

/// A config file: refused with the field named, or accepted and usable to build the session's
/// strategy, risk manager and broker.
struct ConfigHarness;

impl Harness for ConfigHarness {
    fn feed(&mut self, input: &[u8]) -> Outcome {
        let s = match utf8(input) {
            Ok(s) => s,
            Err(o) => return o,
        };
        match Config::from_toml(s, "fuzz") {
            Ok(cfg) => {
                let _ = crate::strategies::sources::strategies(&cfg, "f");
                let _ = crate::execution::PaperBroker::new(cfg.execution.clone(), &cfg.portfolio);
                Outcome::Accepted { events: 1 }
            }
            Err(e) => Outcome::Rejected(
                e.to_string()
                    .trim_start_matches("invalid config fuzz: ")
                    .to_string(),
            ),
        }
    }
}
