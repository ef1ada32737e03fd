//! The venue worker: a thread that owns the REST connection, sends what the venue client
//! queued (orders, cancels) and polls what the venue did (fills, orders that left the book,
//! positions), and reports back over a channel. Blocking HTTP stays off the actor threads.
//!
//! Before an order is sent its cloid and order go to the outbox (a write-ahead file, fsynced),
//! so that after a crash at any moment the restart looks the order up by cloid instead of
//! sending it twice. Before an entry is sent the account's positions are read from the venue
//! (`clearinghouseState`): an entry that would pass a limit counting positions opened outside
//! smartflow is refused here.

use super::api::{HlApi, OrderAnswer, VenueFill, VenuePosition};
use super::errors::VenueError;
use super::wire::{Action, CancelByCloidWire, OrderWire};
use crate::domain::Order;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

/// What the venue client asks of the worker.
pub enum Job {
    Place {
        id: String,
        cloid: String,
        coin: String,
        wire: OrderWire,
        order: Box<Order>,
        /// Entries: the order's notional, checked against the venue's positions first.
        entry_notional: Option<Decimal>,
    },
    Cancel {
        id: String,
        cloid: String,
        asset: u32,
        reason: String,
    },
}

/// What the worker tells the venue client.
#[derive(Clone, Debug, PartialEq)]
pub enum Report {
    Answer {
        id: String,
        answer: OrderAnswer,
    },
    Fill(VenueFill),
    Gone {
        id: String,
        status: String,
        reason: String,
    },
    Positions(Vec<VenuePosition>),
    /// An order's status from the `orderUpdates` stream, by cloid.
    Status(super::stream::StatusUpdate),
    /// A poll failed (the venue or the way to it); trading goes on, the next poll retries.
    Trouble(String),
}

/// Limits the worker checks against the venue's own positions before each entry (USDC).
#[derive(Clone, Debug, PartialEq)]
pub struct VenueLimits {
    pub max_position_notional: Decimal,
    pub max_gross_exposure: Decimal,
}

/// Refuses an entry of `notional` on `coin` that would pass a limit, counting every position
/// the venue reports (opened by smartflow or not).
pub fn check_limits(
    limits: &VenueLimits,
    positions: &[VenuePosition],
    coin: &str,
    notional: Decimal,
) -> Result<(), VenueError> {
    let on_coin: Decimal = positions
        .iter()
        .filter(|p| p.coin == coin)
        .map(|p| p.position_value.abs())
        .sum();
    let gross: Decimal = positions.iter().map(|p| p.position_value.abs()).sum();
    if on_coin + notional > limits.max_position_notional {
        return Err(VenueError::LimitBreach(format!(
            "the venue reports {on_coin} USDC on {coin}; with this entry's {notional} that passes \
             max_position_notional {}",
            limits.max_position_notional
        )));
    }
    if gross + notional > limits.max_gross_exposure {
        return Err(VenueError::LimitBreach(format!(
            "the venue reports {gross} USDC of positions; with this entry's {notional} that \
             passes max_gross_exposure {}",
            limits.max_gross_exposure
        )));
    }
    Ok(())
}

/// One line of the outbox: an order about to be sent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub cloid: String,
    pub coin: String,
    pub asset: u32,
    pub order: Order,
}

/// The write-ahead file of orders sent (`hyperliquid-outbox.jsonl` in the state folder).
pub struct Outbox {
    path: PathBuf,
}

impl Outbox {
    pub fn new(state_dir: &Path) -> Self {
        Self {
            path: state_dir.join("hyperliquid-outbox.jsonl"),
        }
    }

    /// Appends `e` and waits until it is on disk.
    pub fn append(&self, e: &OutboxEntry) -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        let mut line = serde_json::to_vec(e).map_err(std::io::Error::other)?;
        line.push(b'\n');
        f.write_all(&line)?;
        f.sync_data()
    }

    /// Every entry written (a torn last line, from a crash mid-write, is skipped).
    pub fn entries(&self) -> std::io::Result<Vec<OutboxEntry>> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => Ok(text
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(vec![]),
            Err(e) => Err(e),
        }
    }
}

/// How often the worker polls while orders are live, and reads positions.
#[derive(Clone, Debug)]
pub struct Cadence {
    pub poll: Duration,
    pub positions: Duration,
}

pub struct Worker {
    pub api: HlApi,
    pub outbox: Outbox,
    pub limits: VenueLimits,
    pub cadence: Cadence,
    /// Fills from this time on are fetched (ms).
    pub last_fill_ms: i64,
    /// Live orders: cloid → our order id.
    pub live: BTreeMap<String, String>,
}

impl Worker {
    /// Serves `jobs` until the venue client is dropped.
    pub fn run(mut self, jobs: Receiver<Job>, reports: Sender<Report>) {
        let mut last_positions = Instant::now();
        loop {
            match jobs.recv_timeout(self.cadence.poll) {
                Ok(Job::Place {
                    id,
                    cloid,
                    coin,
                    wire,
                    order,
                    entry_notional,
                }) => {
                    let e = OutboxEntry {
                        cloid: cloid.clone(),
                        coin: coin.clone(),
                        asset: wire.a,
                        order: *order,
                    };
                    let answer = self.place(&e, wire, entry_notional, &reports);
                    let _ = reports.send(Report::Answer { id, answer });
                }
                Ok(Job::Cancel {
                    id,
                    cloid,
                    asset,
                    reason,
                }) => self.cancel(id, cloid, asset, reason, &reports),
                Err(RecvTimeoutError::Timeout) => {
                    if !self.live.is_empty() {
                        self.poll(&reports);
                    }
                    if last_positions.elapsed() >= self.cadence.positions {
                        last_positions = Instant::now();
                        self.periodic(&reports);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// Every `positions` interval: the venue's positions (compared by the client) and the
    /// address's action budget.
    fn periodic(&mut self, reports: &Sender<Report>) {
        match self.api.account() {
            Ok(a) => drop(reports.send(Report::Positions(a.positions))),
            Err(e) => drop(reports.send(Report::Trouble(e.to_string()))),
        }
        if let Err(e) = self.api.refresh_action_budget() {
            let _ = reports.send(Report::Trouble(e.to_string()));
        }
    }

    fn place(
        &mut self,
        e: &OutboxEntry,
        wire: OrderWire,
        entry_notional: Option<Decimal>,
        reports: &Sender<Report>,
    ) -> OrderAnswer {
        if let Some(n) = entry_notional {
            let checked = self
                .api
                .account()
                .and_then(|a| check_limits(&self.limits, &a.positions, &e.coin, n));
            if let Err(err) = checked {
                return OrderAnswer::Error(err);
            }
        }
        if let Err(io) = self.outbox.append(e) {
            return OrderAnswer::Error(VenueError::Other(format!(
                "not sent: the outbox cannot be written ({io})"
            )));
        }
        let action = Action::Order {
            orders: vec![wire],
            grouping: "na".into(),
        };
        let answer = match self.api.exchange(&action) {
            Ok(statuses) => {
                statuses
                    .first()
                    .map(HlApi::order_answer)
                    .unwrap_or(OrderAnswer::Error(VenueError::BadAnswer(
                        "no status".into(),
                    )))
            }
            // The order may have arrived: ask by cloid rather than send it again.
            Err(err) if err.outcome_unknown() => match self.api.order_by_cloid(&e.cloid) {
                Ok(Some(s)) => OrderAnswer::Resting { oid: s.oid },
                _ => OrderAnswer::Error(err),
            },
            Err(err) => OrderAnswer::Error(err),
        };
        if !matches!(answer, OrderAnswer::Error(_)) {
            self.live.insert(e.cloid.clone(), e.order.id.clone());
        }
        if matches!(answer, OrderAnswer::Filled { .. }) {
            self.poll_fills(reports);
        }
        answer
    }

    fn cancel(
        &mut self,
        id: String,
        cloid: String,
        asset: u32,
        reason: String,
        reports: &Sender<Report>,
    ) {
        let action = Action::CancelByCloid {
            cancels: vec![CancelByCloidWire {
                asset,
                cloid: cloid.clone(),
            }],
        };
        let ok = matches!(self.api.exchange(&action), Ok(s) if s.first().is_some_and(|v| v == "success"));
        if ok {
            self.live.remove(&cloid);
            let status = "canceled".to_string();
            let _ = reports.send(Report::Gone { id, status, reason });
            return;
        }
        // Already filled or gone: the next poll says which.
        self.poll(reports);
    }

    fn poll_fills(&mut self, reports: &Sender<Report>) {
        match self.api.fills_since(self.last_fill_ms) {
            Ok(fills) => {
                for f in fills {
                    self.last_fill_ms = self.last_fill_ms.max(f.time_ms);
                    let _ = reports.send(Report::Fill(f));
                }
            }
            Err(e) => drop(reports.send(Report::Trouble(e.to_string()))),
        }
    }

    /// Fills since the last poll, then any live order no longer on the book: its final status.
    fn poll(&mut self, reports: &Sender<Report>) {
        self.poll_fills(reports);
        let open = match self.api.open_orders() {
            Ok(o) => o,
            Err(e) => return drop(reports.send(Report::Trouble(e.to_string()))),
        };
        let on_book: std::collections::BTreeSet<String> =
            open.into_iter().filter_map(|o| o.cloid).collect();
        let gone: Vec<(String, String)> = self
            .live
            .iter()
            .filter(|(c, _)| !on_book.contains(*c))
            .map(|(c, i)| (c.clone(), i.clone()))
            .collect();
        for (cloid, id) in gone {
            match self.api.order_by_cloid(&cloid) {
                Ok(Some(s)) if s.status == "open" || s.status == "triggered" => continue,
                Ok(Some(s)) if s.status == "filled" => {
                    self.live.remove(&cloid);
                    // Its last fills may have come after this poll's fills.
                    self.poll_fills(reports);
                }
                Ok(Some(s)) => {
                    self.live.remove(&cloid);
                    let reason = format!("{}: reported by the venue", status_reason(&s.status));
                    let _ = reports.send(Report::Gone {
                        id,
                        status: s.status,
                        reason,
                    });
                }
                Ok(None) => {
                    self.live.remove(&cloid);
                    let _ = reports.send(Report::Gone {
                        id,
                        status: "rejected".into(),
                        reason: "rejected: the venue does not know the order".into(),
                    });
                }
                Err(e) => drop(reports.send(Report::Trouble(e.to_string()))),
            }
        }
    }
}

/// "canceled", "expired" or "rejected" for the decision log's reason, from `orderStatus`.
pub fn status_reason(status: &str) -> &'static str {
    match status {
        "rejected" => "rejected",
        s if s.contains("xpire") => "expired",
        _ => "canceled",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn pos(coin: &str, value: Decimal) -> VenuePosition {
        VenuePosition {
            coin: coin.into(),
            szi: dec!(1),
            entry_px: dec!(1),
            position_value: value,
        }
    }

    #[test]
    fn limits_count_every_position_the_venue_reports() {
        let l = VenueLimits {
            max_position_notional: dec!(100),
            max_gross_exposure: dec!(150),
        };
        assert!(check_limits(&l, &[], "BTC", dec!(100)).is_ok());
        let p = [pos("BTC", dec!(60)), pos("ETH", dec!(-70))];
        let e = check_limits(&l, &p, "BTC", dec!(41)).unwrap_err();
        assert!(e.to_string().contains("max_position_notional 100"), "{e}");
        // ETH's short counts towards the gross: 60 + 70 + 21 > 150.
        let e = check_limits(&l, &p, "SOL", dec!(21)).unwrap_err();
        assert!(e.to_string().contains("max_gross_exposure 150"), "{e}");
        assert!(check_limits(&l, &p, "SOL", dec!(20)).is_ok());
    }
}
