//! Funding of perpetual positions, paid every hour on the hour as on Hyperliquid: the position
//! size × the oracle price × the hourly rate last reported before the hour (longs pay shorts when
//! the rate is positive). Rates and prices come from the venue's marks ([`MarkPrice`]); the
//! hour is event time, so a replay pays the same funding at the same points.

use super::portfolio::Portfolio;
use crate::domain::{Instrument, MarkPrice};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const HOUR_MS: i64 = 3_600_000;

/// The last mark of each perpetual and the last hour settled.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Funding {
    /// (oracle price, hourly rate) by instrument.
    rates: BTreeMap<Instrument, (Decimal, Decimal)>,
    /// Hours since the epoch of the last settlement; `None` before the first event.
    settled_hour: Option<i64>,
}

impl Funding {
    /// Takes a mark: the position is marked at it, its rate is used at the next hour.
    pub fn on_mark(&mut self, m: &MarkPrice, pf: &mut Portfolio) {
        pf.mark_perp(&m.instrument, m.mark_price);
        let rate = (m.oracle_price, m.funding_rate);
        self.rates.insert(m.instrument.clone(), rate);
    }

    /// At event time `now`: pays the funding of every hour boundary passed since the last
    /// settlement (once per boundary and open perpetual with a known rate).
    pub fn settle(&mut self, now: i64, pf: &mut Portfolio) {
        let hour = now.div_euclid(HOUR_MS);
        let Some(last) = self.settled_hour.replace(hour) else {
            return;
        };
        for h in (last + 1)..=hour {
            let open: Vec<Instrument> = pf.perps.keys().cloned().collect();
            for inst in open {
                if let Some(&(oracle, rate)) = self.rates.get(&inst) {
                    pf.apply_funding(&inst, rate, oracle, h * HOUR_MS);
                }
            }
        }
    }
}
