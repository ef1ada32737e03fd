//! What the core may believe of an event that a reader or codec let through: a time inside
//! 1970..2100, prices and sizes inside the venue cap (positive where they must be), a named
//! instrument. Anything else is a violation: a parser accepted something false or absurd.

use super::Outcome;
use crate::domain::MarketEvent;
use crate::feeds::decimal::MAX_VENUE_NUMBER;
use crate::feeds::ts_in_range;
use rust_decimal::Decimal;

/// The outcome of a parser call that produced `out` (also checked when it failed: a codec's
/// events before its error are still forwarded).
pub fn outcome<T>(res: Result<T, String>, out: &[MarketEvent]) -> Outcome {
    if let Some(v) = out.iter().find_map(|e| event(e).err()) {
        return Outcome::Violation(v);
    }
    match res {
        Ok(_) => Outcome::Accepted { events: out.len() },
        Err(e) => Outcome::Rejected(e),
    }
}

/// Checks one event; the error says what is wrong.
pub fn event(e: &MarketEvent) -> Result<(), String> {
    if !ts_in_range(e.ts_ms()) {
        return Err(format!("event time {} outside 1970..2100", e.ts_ms()));
    }
    if e.instrument().as_str().is_empty() {
        return Err("event without instrument".into());
    }
    match e {
        MarketEvent::Trade(t) => {
            positive(t.price, "trade price")?;
            positive(t.qty, "trade qty")
        }
        MarketEvent::Book(b) => {
            positive(b.bid_price, "bid price")?;
            positive(b.ask_price, "ask price")?;
            capped(b.bid_qty, "bid qty")?;
            capped(b.ask_qty, "ask qty")
        }
        MarketEvent::Mark(m) => {
            positive(m.mark_price, "mark price")?;
            capped(m.oracle_price, "oracle price")?;
            capped(m.funding_rate, "funding rate")
        }
        MarketEvent::UserFill(f) => {
            positive(f.price, "fill price")?;
            positive(f.size, "fill size")?;
            f.start_position
                .map_or(Ok(()), |p| capped(p, "start position"))
        }
        MarketEvent::UserPosition(p) => {
            capped(p.size, "position size")?;
            p.entry_price.map_or(Ok(()), |x| capped(x, "entry price"))
        }
        MarketEvent::Status(_) => Ok(()),
    }
}

fn positive(d: Decimal, what: &str) -> Result<(), String> {
    match d > Decimal::ZERO {
        true => capped(d, what),
        false => Err(format!("{what} {d} is not positive")),
    }
}

fn capped(d: Decimal, what: &str) -> Result<(), String> {
    match d.abs() <= MAX_VENUE_NUMBER {
        true => Ok(()),
        false => Err(format!("{what} {d} is above the 1e14 venue cap")),
    }
}
