//! Alerts pushed to the authorised chats: which decision records become one, and the outbox that
//! coalesces identical alerts ("×5") and, when it overflows, drops the least important first
//! (saying how many were dropped).

use super::catalog::{html, Catalog};
use super::handler::text;
use crate::store::{Record, RecordKind};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// An entry order as placed (its `new` order record).
pub(super) fn is_entry(r: &Record) -> bool {
    r.kind == RecordKind::Order && r.detail["event"] == "new" && r.detail["purpose"] == "entry"
}

/// Realized PnL after fees of the exits among `recs`, and how many there were.
pub(super) fn realized_pnl<'a>(
    recs: impl Iterator<Item = &'a Record>,
) -> (rust_decimal::Decimal, usize) {
    recs.filter(|r| r.kind == RecordKind::Exit)
        .filter_map(|r| {
            r.detail["pnl"]
                .as_str()?
                .parse::<rust_decimal::Decimal>()
                .ok()
        })
        .fold((rust_decimal::Decimal::ZERO, 0), |(sum, n), p| {
            (sum + p, n + 1)
        })
}

/// How much an alert matters: the outbox keeps the higher ones when it overflows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    Low,
    Normal,
    High,
}

/// One message to every authorised chat.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub priority: Priority,
    /// Identical keys within the coalescing window become one message.
    pub key: String,
    pub text: String,
}

/// Turns decision records into alerts; remembers the trading state to report its changes.
pub struct AlertMaker {
    pub refusals: bool,
    state: Option<String>,
}

impl AlertMaker {
    pub fn new(refusals: bool) -> Self {
        Self {
            refusals,
            state: None,
        }
    }

    /// The alerts one record raises (entries, exits, refusals, trading-state changes).
    pub fn on_record(&mut self, cat: &Catalog, r: &Record) -> Vec<Alert> {
        let d = &r.detail;
        let s = |k: &str| html(&text(&d[k]));
        let mut out = Vec::new();
        match r.kind {
            RecordKind::Order if is_entry(r) => {
                out.push(Alert {
                    priority: Priority::Normal,
                    key: format!("entry {}", r.id),
                    text: cat.fill(
                        "alert_entry",
                        &[
                            ("instrument", &html(&r.instrument)),
                            ("side", &s("side")),
                            ("qty", &s("qty")),
                            (
                                "price",
                                &html(&text(&d["limit_price"]).replace('-', "market")),
                            ),
                            ("signal", &html(r.signal_id.as_deref().unwrap_or("-"))),
                        ],
                    ),
                });
            }
            RecordKind::Exit => out.push(Alert {
                priority: Priority::Normal,
                key: format!("exit {}", r.id),
                text: cat.fill(
                    "alert_exit",
                    &[
                        ("instrument", &html(&r.instrument)),
                        ("reason", &s("reason")),
                        ("pnl", &s("pnl")),
                        ("quote", &html(r.instrument.split('/').nth(1).unwrap_or(""))),
                    ],
                ),
            }),
            RecordKind::Verdict if r.refused && self.refusals => {
                let reasons: Vec<String> = d["reasons"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|x| text(&x["code"]))
                    .collect();
                let reasons = html(&reasons.join(", "));
                out.push(Alert {
                    priority: Priority::Low,
                    // The same refusal of the same instrument is one alert ×N.
                    key: format!("refusal {} {reasons}", r.instrument),
                    text: cat.fill(
                        "alert_refusal",
                        &[("instrument", &html(&r.instrument)), ("reasons", &reasons)],
                    ),
                });
            }
            _ => {}
        }
        if let Some(state) = d["trading_state"].as_str() {
            let changed = self.state.as_deref().is_some_and(|old| old != state);
            if changed {
                let source = match r.kind {
                    RecordKind::Command => text(&d["source"]),
                    _ => "risk limits".to_string(),
                };
                out.push(Alert {
                    priority: Priority::High,
                    key: format!("state {state}"),
                    text: cat.fill(
                        "alert_state",
                        &[("state", &html(state)), ("source", &html(&source))],
                    ),
                });
            }
            self.state = Some(state.to_string());
        }
        out
    }
}

/// An alert waiting to be sent, with how many identical ones it stands for.
#[derive(Clone, Debug)]
struct Queued {
    alert: Alert,
    count: u32,
    since: Instant,
}

/// Alerts waiting for the rate limiter.
pub struct Outbox {
    queue: VecDeque<Queued>,
    capacity: usize,
    window: Duration,
    dropped: u64,
}

impl Outbox {
    pub fn new(capacity: usize, window: Duration) -> Self {
        Self {
            queue: VecDeque::new(),
            capacity,
            window,
            dropped: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Queues `a`, or counts it into a queued identical one; on overflow drops the least
    /// important, oldest first (it may be `a` itself).
    pub fn push(&mut self, a: Alert, now: Instant) {
        if let Some(q) = self.queue.iter_mut().find(|q| q.alert.key == a.key) {
            q.count += 1;
            return;
        }
        self.queue.push_back(Queued {
            alert: a,
            count: 1,
            since: now,
        });
        if self.queue.len() > self.capacity {
            let lowest = self.queue.iter().map(|q| q.alert.priority).min();
            if let Some(i) = self
                .queue
                .iter()
                .position(|q| Some(q.alert.priority) == lowest)
            {
                self.queue.remove(i);
                self.dropped += 1;
            }
        }
    }

    /// The next message to send at `now`: the most important alert whose coalescing window has
    /// passed (oldest first among equals), with its count and the number dropped since the last
    /// message. `None` while every queued alert is still gathering duplicates.
    pub fn pop(&mut self, cat: &Catalog, now: Instant) -> Option<String> {
        let ready = |q: &Queued| now.duration_since(q.since) >= self.window;
        let best = self
            .queue
            .iter()
            .enumerate()
            .filter(|(_, q)| ready(q))
            .max_by(|(i, a), (j, b)| a.alert.priority.cmp(&b.alert.priority).then(j.cmp(i)))
            .map(|(i, _)| i)?;
        let q = self.queue.remove(best)?;
        let mut text = match q.count {
            1 => q.alert.text,
            n => cat.fill(
                "repeated",
                &[("text", &q.alert.text), ("count", &n.to_string())],
            ),
        };
        if self.dropped > 0 {
            text.push('\n');
            text.push_str(&cat.fill("dropped", &[("count", &self.dropped.to_string())]));
            self.dropped = 0;
        }
        Some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telegram::catalog::Lang;

    fn alert(p: Priority, key: &str) -> Alert {
        Alert {
            priority: p,
            key: key.into(),
            text: key.into(),
        }
    }

    #[test]
    fn identical_alerts_coalesce_and_overflow_drops_the_least_important() {
        let cat = Catalog::new(Lang::En);
        let t0 = Instant::now();
        let mut o = Outbox::new(3, Duration::from_secs(2));
        for _ in 0..5 {
            o.push(alert(Priority::Low, "refusal X"), t0);
        }
        assert_eq!(o.len(), 1);
        assert_eq!(o.pop(&cat, t0), None, "still gathering duplicates");
        o.push(alert(Priority::High, "state halted"), t0);
        o.push(alert(Priority::Normal, "exit 1"), t0);
        o.push(alert(Priority::Normal, "exit 2"), t0); // overflow: the low one goes
        assert_eq!(o.len(), 3);
        let later = t0 + Duration::from_secs(3);
        let first = o.pop(&cat, later).unwrap();
        assert!(first.starts_with("state halted"), "{first}");
        assert!(first.contains("1 less important"), "{first}");
        assert_eq!(o.pop(&cat, later).unwrap(), "exit 1");
        assert_eq!(o.pop(&cat, later).unwrap(), "exit 2");
        assert_eq!(o.pop(&cat, later), None);
        let mut o = Outbox::new(10, Duration::ZERO);
        for _ in 0..5 {
            o.push(alert(Priority::Low, "refusal X"), t0);
        }
        assert_eq!(o.pop(&cat, t0).unwrap(), "refusal X ×5");
    }
}
