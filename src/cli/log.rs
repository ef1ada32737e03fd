//! `smartflow log`: list, show and export decision records from the store.

use crate::domain::{fmt_ts, parse_ts};
use crate::models::explain::{render, Explanation};
use crate::store::{Record, RecordKind, Store};
use anyhow::{bail, Context, Result};
use std::io::Write;

/// Filters shared by `log` and `log export`.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub instrument: Option<String>,
    pub kinds: Vec<RecordKind>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub refused_only: bool,
}

impl Filter {
    pub fn parse(
        instrument: Option<String>,
        kinds: &[String],
        from: Option<&str>,
        to: Option<&str>,
        refused_only: bool,
    ) -> Result<Self> {
        let kinds = kinds
            .iter()
            .flat_map(|k| k.split(','))
            .map(|k| {
                RecordKind::parse(k.trim()).with_context(|| {
                    format!("--kind {k:?}: want signal, intent, verdict, order, fill or exit")
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let ts = |s: Option<&str>, flag: &str| -> Result<Option<i64>> {
            s.map(|s| {
                parse_ts(s).with_context(|| {
                    format!("{flag} {s:?}: want Unix ms, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ")
                })
            })
            .transpose()
        };
        Ok(Self {
            instrument: instrument.map(|i| i.to_uppercase()),
            kinds,
            from_ms: ts(from, "--from")?,
            to_ms: ts(to, "--to")?,
            refused_only,
        })
    }

    pub fn matches(&self, r: &Record) -> bool {
        self.instrument.as_ref().is_none_or(|i| &r.instrument == i)
            && (self.kinds.is_empty() || self.kinds.contains(&r.kind))
            && self.from_ms.is_none_or(|t| r.ts_ms >= t)
            && self.to_ms.is_none_or(|t| r.ts_ms < t)
            && (!self.refused_only || r.refused)
    }
}

/// `; N wallets: 0xabcd…1234 0.700 (perf 0.75 size 0.5 recency 1 regime 0.5), …` (first 3).
fn tracked_wallets(w: &[serde_json::Value]) -> String {
    let s = |x: &serde_json::Value, k: &str| x[k].as_str().unwrap_or("?").to_string();
    let shown: Vec<String> = w
        .iter()
        .take(3)
        .map(|x| {
            // By characters: an address read from a leaderboard is outside text.
            let a: Vec<char> = s(x, "address").chars().collect();
            let short: String = match a.len() > 12 {
                true => a[..6]
                    .iter()
                    .chain(['…'].iter())
                    .chain(&a[a.len() - 4..])
                    .collect(),
                false => a.iter().collect(),
            };
            format!(
                "{short} {} (perf {} size {} recency {} regime {})",
                s(x, "weight"),
                s(x, "performance"),
                s(x, "size"),
                s(x, "recency"),
                s(x, "regime_fit")
            )
        })
        .collect();
    let more = if w.len() > 3 { ", …" } else { "" };
    format!("; {} wallets: {}{more}", w.len(), shown.join(", "))
}

/// One-line description of a record for listings.
pub fn summary_line(r: &Record) -> String {
    let d = &r.detail;
    let s = |k: &str| match &d[k] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".into(),
        v => v.to_string(),
    };
    match r.kind {
        RecordKind::Signal if d.get("explanation").is_some() => {
            let e: Option<Explanation> = serde_json::from_value(d["explanation"].clone()).ok();
            format!(
                "probability {:.3}{} at {}; drivers: {}",
                d["probability"].as_f64().unwrap_or(f64::NAN),
                e.as_ref()
                    .and_then(|e| e.level.as_ref())
                    .map(|l| format!(" ({})", l.name))
                    .unwrap_or_default(),
                s("price"),
                e.map(|e| render::summary(&e, 3)).unwrap_or_default()
            )
        }
        RecordKind::Signal => {
            let drivers: Vec<String> = d["drivers"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .take(3)
                        .map(|x| {
                            format!(
                                "{} {:+.1}",
                                x["name"].as_str().unwrap_or("?"),
                                x["contribution"].as_f64().unwrap_or(0.0)
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            format!(
                "score {:.1} at {}; drivers: {}",
                d["score"].as_f64().unwrap_or(0.0),
                s("price"),
                drivers.join(", ")
            )
        }
        RecordKind::Command if r.refused => format!(
            "{} from {}: REFUSED {}",
            s("command"),
            s("source"),
            s("reason")
        ),
        RecordKind::Command => {
            let mut line = format!(
                "{} from {}: {}, trading state {}",
                s("command"),
                s("source"),
                s("outcome"),
                s("trading_state")
            );
            if d.get("limit").is_some() {
                line += &format!(
                    "; {} {} → {}",
                    s("limit"),
                    s("limit_before"),
                    s("limit_after")
                );
            }
            if let Some(w) = d["wallets"].as_array() {
                line += &tracked_wallets(w);
            }
            line
        }
        RecordKind::Intent if r.refused => format!("no entry: {}", s("reason")),
        RecordKind::Intent => format!(
            "{} {} {} (notional {})",
            s("action"),
            s("side"),
            s("qty"),
            s("notional")
        ),
        RecordKind::Verdict => {
            let codes: Vec<String> = d["reasons"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x["code"].as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            if r.refused {
                format!("REFUSED {}", codes.join(", "))
            } else if codes.is_empty() {
                format!("approved qty {} (notional {})", s("qty"), s("notional"))
            } else {
                format!(
                    "approved, resized to qty {} by {}",
                    s("qty"),
                    codes.join(", ")
                )
            }
        }
        RecordKind::Order => {
            let px = match (s("limit_price").as_str(), s("trigger_price").as_str()) {
                ("-", "-") => String::new(),
                (l, "-") => format!(" @ {l}"),
                (_, t) => format!(" trigger {t}"),
            };
            let mut line = format!(
                "{} {} {} {} {}{}",
                s("event"),
                s("purpose"),
                s("type"),
                s("side"),
                s("qty"),
                px
            );
            if d["reason"].is_string() {
                line.push_str(&format!(" ({})", s("reason")));
            }
            line
        }
        RecordKind::Fill => format!(
            "{} {} {} @ {} fee {} ({})",
            s("purpose"),
            s("side"),
            s("qty"),
            s("price"),
            s("fee"),
            s("liquidity")
        ),
        RecordKind::Exit => format!(
            "closed by {}: PnL {} after fees {}, held {} s",
            s("reason"),
            s("pnl"),
            s("fees"),
            d["hold_ms"].as_i64().unwrap_or(0) / 1000
        ),
    }
}

/// `smartflow log`: one line per matching record, oldest first; `limit` keeps the newest.
pub fn list(store: &Store, f: &Filter, limit: Option<usize>, out: &mut dyn Write) -> Result<usize> {
    let recs: Vec<Record> = store
        .records()?
        .into_iter()
        .filter(|r| f.matches(r))
        .collect();
    let skip = limit.map(|l| recs.len().saturating_sub(l)).unwrap_or(0);
    for r in &recs[skip..] {
        writeln!(
            out,
            "{:<14} {:<7} {} {:<11} {}",
            r.id,
            r.kind.as_str(),
            fmt_ts(r.ts_ms),
            r.instrument,
            summary_line(r)
        )?;
    }
    Ok(recs.len() - skip)
}

/// `smartflow log export`: JSONL, one record per line, in journal order.
pub fn export(store: &Store, f: &Filter, out: &mut dyn Write) -> Result<usize> {
    let mut n = 0;
    for r in store.records()?.into_iter().filter(|r| f.matches(r)) {
        serde_json::to_writer(&mut *out, &r)?;
        out.write_all(b"\n")?;
        n += 1;
    }
    Ok(n)
}

/// Every record of the decision chain that `id` belongs to (signal → intent → verdict → orders
/// → fills → exit), in journal order.
pub fn chain(store: &Store, id: &str) -> Result<Vec<Record>> {
    let Some(r) = store.record(id)? else {
        bail!("no record with id {id:?} (see `smartflow log` for ids)");
    };
    let root = r.signal_id.clone();
    Ok(match root {
        Some(root) => store
            .records()?
            .into_iter()
            .filter(|x| x.signal_id.as_deref() == Some(root.as_str()))
            .collect(),
        None => vec![r],
    })
}

/// A signal's why: an ensemble's explanation (probability, level, members, the top five market
/// facts in plain units; every input and window feature with `inputs`), or the rule score's
/// drivers and features.
fn show_signal(r: &Record, inputs: bool, out: &mut dyn Write) -> Result<()> {
    let quote = r.instrument.split('/').nth(1).unwrap_or("quote");
    let explanation = r
        .detail
        .get("explanation")
        .map(|e| serde_json::from_value::<Explanation>(e.clone()))
        .transpose()
        .context("the signal's explanation is not readable by this build")?;
    if let Some(e) = &explanation {
        for l in render::lines(e, quote, 5) {
            writeln!(out, "  {l}")?;
        }
        if inputs {
            writeln!(
                out,
                "  model inputs (row at the buy of {}), log-odds by member:",
                r.detail["row_ms"]
                    .as_i64()
                    .map(crate::domain::fmt_ts)
                    .unwrap_or_else(|| "?".into())
            )?;
            for l in render::input_lines(e) {
                writeln!(out, "  {l}")?;
            }
        }
    } else {
        writeln!(out, "  drivers (points of the 0-100 score):")?;
        for d in r.detail["drivers"].as_array().into_iter().flatten() {
            writeln!(
                out,
                "    {:<22} value {:>10.4}  {:+6.2}",
                d["name"].as_str().unwrap_or("?"),
                d["value"].as_f64().unwrap_or(f64::NAN),
                d["contribution"].as_f64().unwrap_or(0.0)
            )?;
        }
    }
    if inputs || explanation.is_none() {
        writeln!(out, "  features at decision time:")?;
        for (k, v) in r.detail["features"].as_object().into_iter().flatten() {
            writeln!(out, "    {k:<22} {v}")?;
        }
    } else {
        writeln!(
            out,
            "  (every input and feature: log show {} --inputs)",
            r.id
        )?;
    }
    Ok(())
}

/// `smartflow log show ID`; `inputs` adds a signal's full input table and window features.
pub fn show(store: &Store, id: &str, inputs: bool, out: &mut dyn Write) -> Result<()> {
    let recs = chain(store, id)?;
    for r in &recs {
        writeln!(
            out,
            "{} {} {} {}",
            r.kind.as_str().to_uppercase(),
            r.id,
            fmt_ts(r.ts_ms),
            r.instrument
        )?;
        writeln!(out, "  {}", summary_line(r))?;
        let mut links = vec![];
        for (k, v) in [
            ("signal", &r.signal_id),
            ("intent", &r.intent_id),
            ("verdict", &r.verdict_id),
            ("order", &r.order_id),
            ("parent order", &r.parent_order_id),
        ] {
            if let Some(v) = v {
                if v != &r.id {
                    links.push(format!("{k} {v}"));
                }
            }
        }
        if !links.is_empty() {
            writeln!(out, "  links: {}", links.join(", "))?;
        }
        match r.kind {
            RecordKind::Signal => show_signal(r, inputs, out)?,
            _ => {
                writeln!(out, "  {}", serde_json::to_string(&r.detail)?)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Addresses come from a leaderboard (outside text): shortened by characters, never by
    /// bytes (a multi-byte character at the cut panicked).
    #[test]
    fn tracked_wallet_summaries_shorten_addresses_by_characters() {
        let w = |a: &str| {
            serde_json::json!({"address": a, "weight": "0.5", "performance": "1",
            "size": "0.5", "recency": "1", "regime_fit": "0.5"})
        };
        let line = tracked_wallets(&[w("0x9aa589355bf745db9784c8ef3c646360f11b58af")]);
        assert!(
            line.starts_with("; 1 wallets: 0x9aa5…58af 0.5 (perf 1"),
            "{line}"
        );
        let odd = tracked_wallets(&[w("0x9aéééééééééééééééé€")]);
        assert!(odd.contains("0x9aéé…ééé€"), "{odd}");
        assert!(tracked_wallets(&[w("0xab")]).contains("0xab 0.5"));
    }
}
