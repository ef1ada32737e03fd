//! `smartflow status` and `smartflow control …`: clients of a running session's control API.

use crate::control::client::Client;
use crate::control::Command;
use anyhow::{bail, Result};
use serde_json::Value;
use std::path::Path;

/// Prints the running session's status (control API), else the last stored one.
pub fn status(state: &Path) -> Result<()> {
    if let Ok(c) = Client::find(state) {
        match print_live(&c) {
            Ok(()) => return Ok(()),
            Err(e) => {
                eprintln!("the session's control API did not answer ({e:#}); last stored status:")
            }
        }
    }
    print_stored(state)
}

/// Sends `words` as a command; errors (exit code 1) when it is refused.
pub fn control(state: &Path, words: &[String]) -> Result<()> {
    let cmd = Command::from_words(words).map_err(anyhow::Error::msg)?;
    let c = Client::find(state)?;
    let (code, body) = c.command(&cmd)?;
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let record = serde_json::from_value::<crate::store::Record>(v["record"].clone()).ok();
    match (code, record) {
        (200, Some(r)) => {
            println!("{} {}", r.id, crate::cli::log::summary_line(&r));
            Ok(())
        }
        (422, Some(r)) => bail!("{} {}", r.id, crate::cli::log::summary_line(&r)),
        _ => bail!(
            "the session answered {code}: {}",
            v["error"].as_str().unwrap_or(&body)
        ),
    }
}

fn get_json(c: &Client, path: &str) -> Result<Value> {
    let (code, body) = c.get(path)?;
    if code != 200 {
        bail!("GET {path}: HTTP {code}: {body}");
    }
    Ok(serde_json::from_str(&body)?)
}

fn print_live(c: &Client) -> Result<()> {
    let st = get_json(c, "/status")?;
    let pos = get_json(c, "/positions")?;
    let s = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        v => v.to_string(),
    };
    println!(
        "paper session (running), trading state {}",
        s(&st["trading_state"])
    );
    if let Some(why) = st["entries_blocked"].as_str() {
        println!("  ENTRIES BLOCKED by the venue's reconciliation: {why}");
    }
    if let Some(m) = st["limits_changed"].as_object().filter(|m| !m.is_empty()) {
        let changed: Vec<String> = m.iter().map(|(k, v)| format!("{k} = {}", s(v))).collect();
        println!("  limits changed at run time: {}", changed.join(", "));
    }
    for f in st["feeds"].as_array().into_iter().flatten() {
        println!(
            "  {:<12} {:<4} frames {}  events {}  reconnects {}  malformed {}",
            s(&f["venue"]),
            if f["connected"] == true { "up" } else { "DOWN" },
            s(&f["frames"]),
            s(&f["events"]),
            s(&f["reconnects"]),
            s(&f["malformed"])
        );
    }
    let k = &st["counters"];
    println!(
        "  equity {} {}   signals {}  orders {}  fills {}  refused {}  commands {}",
        s(&pos["equity"]),
        s(&pos["quote"]),
        s(&k["signals"]),
        s(&k["orders"]),
        s(&k["fills"]),
        s(&k["refused"]),
        s(&k["commands"])
    );
    println!(
        "  decode→detector latency: p50 {} µs  p99 {} µs (n={})",
        s(&st["latency_p50_us"]),
        s(&st["latency_p99_us"]),
        s(&st["latency_samples"])
    );
    let positions = pos["positions"].as_array().cloned().unwrap_or_default();
    println!("  open positions: {}", positions.len());
    for p in &positions {
        println!(
            "    {}: qty {} avg entry {} notional {}",
            s(&p["instrument"]),
            s(&p["qty"]),
            s(&p["avg_entry_price"]),
            s(&p["notional"])
        );
    }
    println!(
        "  live orders: {}",
        pos["orders"].as_array().map_or(0, Vec::len)
    );
    Ok(())
}

fn print_stored(state: &Path) -> Result<()> {
    let (st, broker) = crate::paper::stored_status(state)?;
    println!(
        "paper session status at {} (not running)",
        crate::domain::fmt_ts(st.updated_ms)
    );
    for f in &st.feeds {
        println!(
            "  {:<12} {:<4} frames {:>9}  events {:>9}  reconnects {}  malformed {}  gaps {}  stalls {}  stale marks {}  quarantined {}  last frame {}",
            f.venue,
            if f.connected { "up" } else { "DOWN" },
            f.frames, f.events, f.reconnects, f.malformed, f.gaps, f.stalls, f.stale_marks, f.quarantined,
            crate::domain::fmt_ts(f.last_frame_ms)
        );
    }
    println!(
        "  equity {} {}   signals {}  orders {}  fills {}  refused {}",
        st.equity, st.quote, st.signals, st.orders, st.fills, st.refused
    );
    println!(
        "  decode→detector latency: p50 {} µs  p99 {} µs  max {} µs  (n={})",
        st.latency_p50_us, st.latency_p99_us, st.latency_max_us, st.latency_samples
    );
    if let Some(b) = broker {
        println!("  open positions: {}", b.portfolio.open_positions());
        for h in b.portfolio.holdings() {
            let kind = if h.perpetual { " (perpetual)" } else { "" };
            println!(
                "    {}{kind}: qty {} avg entry {} last {} unrealized PnL {}",
                h.instrument,
                h.qty,
                h.entry_price,
                h.mark_price,
                h.unrealized_pnl.round_dp(8)
            );
        }
        println!("  live orders: {}", b.live_orders().count());
    }
    Ok(())
}
