//! Positions of the tracked wallets by REST polling (`clearinghouseState`, weight 2), heaviest
//! wallets first, round robin, inside the poll budget; each wallet at most once per interval.
//! A poll becomes [`UserPosition`] events for the coins whose size changed since the last poll
//! of that wallet (a vanished position is a size of 0).
//!
//! Answer: `{"assetPositions":[{"position":{"coin","szi","entryPx",…},"type":"oneWay"}],
//! "time": ms, …}` (numbers as decimal strings; `szi` signed coins).

use super::TrackerCounters;
use crate::domain::{MarketEvent, UserPosition};
use crate::feeds::hyperliquid_info::{InfoClient, WeightBudget};
use crate::feeds::venues::{venue_instrument, Venue};
use crate::feeds::ws::FeedBatch;
use rust_decimal::Decimal;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

#[derive(Deserialize)]
struct State {
    #[serde(rename = "assetPositions")]
    asset_positions: Vec<AssetPosition>,
    #[serde(default, deserialize_with = "crate::feeds::de_opt_event_ms")]
    time: Option<i64>,
}

#[derive(Deserialize)]
struct AssetPosition {
    position: Position,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Position {
    coin: String,
    szi: String,
    entry_px: Option<String>,
}

/// Which wallet to poll next and what each held at its last poll.
pub struct PositionPoller {
    wallets: Vec<String>,
    next: usize,
    known: Vec<Option<BTreeMap<String, Decimal>>>,
}

impl PositionPoller {
    /// Polls `wallets` in this order (heaviest first), round robin.
    pub fn new(wallets: &[String]) -> Self {
        Self {
            wallets: wallets.iter().map(|w| w.to_ascii_lowercase()).collect(),
            next: 0,
            known: vec![None; wallets.len()],
        }
    }

    /// The index and address of the next wallet to poll; `None` without wallets.
    pub fn next_wallet(&mut self) -> Option<(usize, String)> {
        if self.wallets.is_empty() {
            return None;
        }
        let i = self.next;
        self.next = (self.next + 1) % self.wallets.len();
        Some((i, self.wallets[i].clone()))
    }

    /// True when the next wallet starts a new round.
    pub fn round_starts(&self) -> bool {
        self.next == 0
    }

    /// The events of wallet `i`'s `clearinghouseState` answer received at `recv_ms` (used when
    /// the answer has no `time`). Errors name what was malformed; nothing is changed then.
    pub fn on_answer(
        &mut self,
        i: usize,
        body: &str,
        recv_ms: i64,
    ) -> Result<Vec<MarketEvent>, String> {
        let s: State =
            serde_json::from_str(body).map_err(|e| format!("bad clearinghouseState: {e}"))?;
        let ts_ms = s.time.unwrap_or(recv_ms);
        let mut now = BTreeMap::new();
        let mut entry = BTreeMap::new();
        for p in s.asset_positions {
            let size = p
                .position
                .szi
                .parse::<Decimal>()
                .ok()
                .and_then(|d| crate::feeds::decimal::in_range(d, "szi").ok())
                .ok_or_else(|| {
                    format!(
                        "clearinghouseState: bad szi {:?} ({})",
                        p.position.szi, p.position.coin
                    )
                })?;
            // An entry price we cannot read or believe is left out, not guessed.
            let px = p
                .position
                .entry_px
                .and_then(|e| crate::feeds::decimal::parse_positive(&e, "entryPx").ok());
            entry.insert(p.position.coin.clone(), px);
            now.insert(p.position.coin, size);
        }
        let before = self.known[i].take().unwrap_or_default();
        let gone = before.keys().filter(|c| !now.contains_key(*c));
        let mut changed: Vec<(String, Decimal)> =
            gone.map(|c| (c.clone(), Decimal::ZERO)).collect();
        changed.extend(
            now.iter()
                .filter(|(c, s)| before.get(*c) != Some(s))
                .map(|(c, s)| (c.clone(), *s)),
        );
        changed.sort();
        let events = changed
            .into_iter()
            .map(|(coin, size)| {
                MarketEvent::UserPosition(Box::new(UserPosition {
                    ts_ms,
                    instrument: venue_instrument(Venue::Hyperliquid, &coin, "USDC"),
                    wallet: self.wallets[i].clone(),
                    size,
                    entry_price: entry.get(&coin).copied().flatten(),
                }))
            })
            .collect();
        self.known[i] = Some(now);
        Ok(events)
    }
}

/// The polling loop: budgets, pacing, events to `tx`; until `shutdown`.
pub struct PollLoop {
    pub poller: PositionPoller,
    pub info: InfoClient,
    /// The polls' own share of the tracker's REST budget.
    pub poll_budget: Arc<WeightBudget>,
    /// Least time between two polls of one wallet.
    pub min_interval: Duration,
    pub tx: mpsc::Sender<FeedBatch>,
    pub counters: Arc<TrackerCounters>,
}

impl PollLoop {
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut round_start = tokio::time::Instant::now();
        loop {
            if self.poller.round_starts() {
                // A short list of wallets is not polled faster than the interval.
                let due = round_start + self.min_interval;
                round_start = due.max(tokio::time::Instant::now());
                tokio::select! {
                    _ = tokio::time::sleep_until(due) => {}
                    _ = shutdown.changed() => return,
                }
            }
            let Some((i, wallet)) = self.poller.next_wallet() else {
                return;
            };
            tokio::select! {
                _ = self.poll(i, wallet) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    async fn poll(&mut self, i: usize, wallet: String) {
        self.poll_budget.spend(2).await;
        let req = serde_json::json!({"type": "clearinghouseState", "user": wallet});
        let answer = self.info.post(req).await;
        let recv_ms = crate::feeds::ws::now_ms();
        let events = answer.and_then(|body| self.poller.on_answer(i, &body, recv_ms));
        self.counters.polls.fetch_add(1, Ordering::Relaxed);
        match events {
            Ok(ev) if ev.is_empty() => {}
            Ok(ev) => {
                let n = ev.len() as u64;
                self.counters
                    .position_changes
                    .fetch_add(n, Ordering::Relaxed);
                let b = FeedBatch {
                    decoded_at: std::time::Instant::now(),
                    events: ev,
                };
                let _ = self.tx.send(b).await;
            }
            Err(e) => {
                let n = self.counters.poll_failures.fetch_add(1, Ordering::Relaxed);
                if n < 20 {
                    tracing::warn!(wallet, "position poll failed: {e}");
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    /// A real `clearinghouseState` answer (bytex_live_payloads, 2026-09), copied in part.
    const STATE: &str = r#"{"assetPositions":[{"type":"oneWay","position":{"coin":"BTC","szi":"4.5","leverage":{"type":"cross","value":10},"entryPx":"81285.0","positionValue":"377667.0"}}],"time":1790360864964}"#;

    fn sizes(ev: &[MarketEvent]) -> Vec<(String, Decimal)> {
        ev.iter()
            .map(|e| match e {
                MarketEvent::UserPosition(p) => (p.instrument.to_string(), p.size),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_poll_reports_only_what_changed_and_a_vanished_position_as_zero() {
        let mut p = PositionPoller::new(&["0xAB".into(), "0xcd".into()]);
        assert_eq!(p.next_wallet(), Some((0, "0xab".into())));
        let first = p.on_answer(0, STATE, 1).unwrap();
        assert_eq!(
            sizes(&first),
            vec![("hyperliquid:BTC/USDC".into(), dec!(4.5))]
        );
        let MarketEvent::UserPosition(u) = &first[0] else {
            unreachable!()
        };
        assert_eq!(
            (u.ts_ms, u.entry_price),
            (1790360864964, Some(dec!(81285.0)))
        );
        assert!(
            p.on_answer(0, STATE, 2).unwrap().is_empty(),
            "nothing changed"
        );
        let flat = r#"{"assetPositions":[],"time":5}"#;
        assert_eq!(
            sizes(&p.on_answer(0, flat, 6).unwrap()),
            vec![("hyperliquid:BTC/USDC".into(), dec!(0))]
        );
        assert_eq!(p.next_wallet().map(|w| w.0), Some(1));
        assert!(p.round_starts());
    }

    #[test]
    fn a_malformed_answer_changes_nothing() {
        let mut p = PositionPoller::new(&["0xab".into()]);
        p.on_answer(0, STATE, 1).unwrap();
        let bad = r#"{"assetPositions":[{"position":{"coin":"BTC","szi":"x"}}]}"#;
        assert!(p.on_answer(0, bad, 2).unwrap_err().contains("bad szi"));
        assert!(p.on_answer(0, "{", 2).is_err());
        let huge = r#"{"assetPositions":[{"position":{"coin":"BTC","szi":"1e20"}}]}"#;
        assert!(p.on_answer(0, huge, 2).unwrap_err().contains("bad szi"));
        assert!(
            p.on_answer(0, STATE, 3).unwrap().is_empty(),
            "the last good poll stands"
        );
    }

    /// Found by `smartflow fuzz`: an absurd `entryPx` was taken as the wallet's entry price.
    #[test]
    fn an_absurd_entry_price_is_left_out() {
        let mut p = PositionPoller::new(&["0xab".into()]);
        for (i, px) in ["79228162514264337593543950335", "-5", "0"]
            .iter()
            .enumerate()
        {
            let body = STATE
                .replace("81285.0", px)
                .replace("4.5", &format!("{}", i + 1));
            let ev = p.on_answer(0, &body, 1).unwrap();
            let MarketEvent::UserPosition(u) = &ev[0] else {
                unreachable!()
            };
            assert_eq!(u.entry_price, None, "{px}");
        }
        // And an answer timed outside 1970..2100 is malformed (it would move the clocks).
        let late = STATE.replace("1790360864964", "9223372036854775807");
        assert!(p.on_answer(0, &late, 1).is_err());
    }
}
