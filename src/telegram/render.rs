//! Telegram's renderer of decision records and explanations: catalog text (English or Polish),
//! values escaped for HTML. It reads the same [`Explanation`] the decision log keeps; it never
//! attributes anything itself.

use super::catalog::{html, Catalog};
use super::handler::text;
use crate::domain::fmt_ts;
use crate::models::explain::{render::sig3, Explanation, Fact};
use crate::store::{Record, RecordKind};

/// A signed number for a reader: `+2.58`.
fn signed(x: f64) -> String {
    format!("{x:+.2}")
}

/// A figure rounded by its kind: counts whole, z-scores and % one decimal, ratios 3 digits.
fn figure(name: &str, v: f64) -> String {
    if name.ends_with("_25s") && !name.starts_with('z') && name != "quote_volume_25s" {
        format!("{v:.0}")
    } else if name.starts_with("z_") || name.ends_with("_pct") {
        format!("{v:+.1}")
    } else {
        sig3(v)
    }
}

/// A fact in the catalog's words: its label and its figures.
pub fn fact(cat: &Catalog, f: &Fact, quote: &str) -> (String, String) {
    let label = cat.get(&format!("fact_{}", f.fact)).to_string();
    let parts: Vec<String> = f
        .figures
        .iter()
        .map(|(k, &v)| {
            cat.fill(
                &format!("fig_{k}"),
                &[("v", &html(&figure(k, v))), ("quote", &html(quote))],
            )
        })
        .collect();
    (label, parts.join(", "))
}

/// One line per signal: id, time, instrument, probability or score, top facts.
pub fn signal_line(cat: &Catalog, r: &Record) -> String {
    let d = &r.detail;
    let e: Option<Explanation> = serde_json::from_value(d["explanation"].clone()).ok();
    let (score, drivers) = match &e {
        Some(e) => (
            format!("p {:.3}", e.probability),
            e.facts
                .iter()
                .take(3)
                .map(|f| {
                    format!(
                        "{} {}",
                        cat.get(&format!("fact_{}", f.fact)),
                        signed(f.contribution)
                    )
                })
                .collect::<Vec<_>>()
                .join(", "),
        ),
        None => (
            format!("{:.1}", d["score"].as_f64().unwrap_or(f64::NAN)),
            d["drivers"]
                .as_array()
                .into_iter()
                .flatten()
                .take(3)
                .map(|x| {
                    html(&format!(
                        "{} {}",
                        text(&x["name"]),
                        signed(x["contribution"].as_f64().unwrap_or(0.0))
                    ))
                })
                .collect::<Vec<_>>()
                .join(", "),
        ),
    };
    cat.fill(
        "signal",
        &[
            ("id", &html(&r.id)),
            ("time", &html(&fmt_ts(r.ts_ms))),
            ("instrument", &html(&r.instrument)),
            ("score", &html(&score)),
            ("drivers", &drivers),
        ],
    )
}

/// Fills listed by `/why` before the rest are counted.
const MAX_FILLS: usize = 2;

/// `/why`: the signal with its probability, level and top drivers, then the chain of records.
pub fn why(cat: &Catalog, chain: &[&Record]) -> String {
    let mut out = Vec::new();
    let fills = chain.iter().filter(|r| r.kind == RecordKind::Fill).count();
    let mut shown_fills = 0;
    for r in chain {
        // A few lines, not one per partial fill: the first ones and how many more.
        if r.kind == RecordKind::Fill {
            shown_fills += 1;
            if shown_fills > MAX_FILLS {
                if shown_fills == fills {
                    let more = (fills - MAX_FILLS).to_string();
                    out.push(cat.fill("why_more_fills", &[("count", &more)]));
                }
                continue;
            }
        }
        if r.kind == RecordKind::Signal {
            out.push(cat.fill(
                "why_header",
                &[
                    ("id", &html(&r.id)),
                    ("instrument", &html(&r.instrument)),
                    ("time", &html(&fmt_ts(r.ts_ms))),
                ],
            ));
            out.extend(signal_body(cat, r));
        } else {
            out.push(chain_line(cat, r));
        }
    }
    out.join("\n")
}

/// One record of a decision chain in the catalog's words (codes such as `buy`, `entry`,
/// `take_profit` stay as the decision log has them).
pub fn chain_line(cat: &Catalog, r: &Record) -> String {
    let d = &r.detail;
    let v = |k: &str| html(&text(&d[k]));
    let id = html(&r.id);
    match r.kind {
        RecordKind::Intent if r.refused => {
            cat.fill("chain_skip", &[("id", &id), ("reason", &v("reason"))])
        }
        RecordKind::Intent => cat.fill(
            "chain_intent",
            &[
                ("id", &id),
                ("action", &v("action")),
                ("side", &v("side")),
                ("qty", &v("qty")),
                ("notional", &v("notional")),
            ],
        ),
        RecordKind::Verdict if r.refused => {
            let codes: Vec<String> = d["reasons"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|x| text(&x["code"]))
                .collect();
            cat.fill(
                "chain_refused",
                &[("id", &id), ("codes", &html(&codes.join(", ")))],
            )
        }
        RecordKind::Verdict => cat.fill(
            "chain_approved",
            &[
                ("id", &id),
                ("qty", &v("qty")),
                ("notional", &v("notional")),
            ],
        ),
        RecordKind::Order => cat.fill(
            "chain_order",
            &[
                ("id", &id),
                ("event", &v("event")),
                ("purpose", &v("purpose")),
                ("type", &v("type")),
                ("side", &v("side")),
                ("qty", &v("qty")),
            ],
        ),
        RecordKind::Fill => cat.fill(
            "chain_fill",
            &[
                ("id", &id),
                ("purpose", &v("purpose")),
                ("side", &v("side")),
                ("qty", &v("qty")),
                ("price", &v("price")),
            ],
        ),
        RecordKind::Exit => cat.fill(
            "chain_exit",
            &[
                ("id", &id),
                ("reason", &v("reason")),
                ("pnl", &v("pnl")),
                ("fees", &v("fees")),
            ],
        ),
        _ => cat.fill("chain_other", &[("kind", r.kind.as_str()), ("id", &id)]),
    }
}

fn signal_body(cat: &Catalog, r: &Record) -> Vec<String> {
    let d = &r.detail;
    let Ok(e) = serde_json::from_value::<Explanation>(d["explanation"].clone()) else {
        return vec![cat.fill(
            "why_rules",
            &[
                (
                    "score",
                    &format!("{:.1}", d["score"].as_f64().unwrap_or(f64::NAN)),
                ),
                (
                    "threshold",
                    &format!("{:.1}", d["threshold"].as_f64().unwrap_or(f64::NAN)),
                ),
            ],
        )];
    };
    let level = match &e.level {
        Some(l) => cat.fill(
            "why_level_precision",
            &[
                ("name", &html(&l.name)),
                ("hits", &l.true_alerts.to_string()),
                ("alerts", &l.alerts.to_string()),
            ],
        ),
        None => cat.get("why_no_level").to_string(),
    };
    let quote = r.instrument.split('/').nth(1).unwrap_or("");
    let mut out = vec![
        cat.fill(
            "why_model",
            &[
                ("probability", &format!("{:.3}", e.probability)),
                ("threshold", &format!("{:.3}", e.threshold)),
                ("level", &level),
            ],
        ),
        cat.get("why_drivers").to_string(),
    ];
    for f in e.facts.iter().take(5) {
        let (label, figures) = fact(cat, f, quote);
        out.push(cat.fill(
            "why_driver",
            &[
                ("contribution", &signed(f.contribution)),
                ("label", &label),
                ("text", &figures),
            ],
        ));
    }
    out
}
