//! The wallet tracker: watches the tracked wallets on Hyperliquid within the venue's per-IP
//! limits, as one supervised task in `paper`.
//!
//! - Fills of every tracked wallet come from the public `trades` stream the Hyperliquid feed
//!   already reads (`users` names both sides); nothing to do here.
//! - The heaviest wallets (at most 10: the venue allows 10 unique users across user-specific
//!   subscriptions per IP) get a `userFills` subscription on a connection of their own: their
//!   fills on every coin, with `startPosition`; after a reconnect, a `userFillsByTime` backfill
//!   with no duplicate (key: wallet and `tid`). See [`user_fills`].
//! - Positions of all tracked wallets are polled (`clearinghouseState`) inside a REST weight
//!   budget with headroom under the venue's 1200 per minute. See [`positions`].
//!
//! Everything the tracker learns enters the pipeline as events (`UserFill`, `UserPosition`),
//! so a session's tape replays it and the decisions stay deterministic.

pub mod positions;
pub mod user_fills;

use crate::actors::feed::LiveFeedActor;
use crate::feeds::hyperliquid_info::{InfoClient, WeightBudget, VENUE_WEIGHT_PER_MINUTE};
use crate::feeds::ws::{FeedBatch, FeedCounters, WsFeed, WsSettings};
use actix::{Addr, Supervisor};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Hyperliquid's limit of unique users across user-specific websocket subscriptions, per IP.
pub const MAX_USERS: usize = 10;

/// `[whales.tracker]`: how `paper` watches the tracked wallets (URLs: `[feeds.hyperliquid]`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TrackerConfig {
    /// Watch the tracked wallets' own fills and positions (with `[whales] enabled`).
    pub enabled: bool,
    /// The heaviest wallets followed by a `userFills` subscription (at most 10, the venue's
    /// limit of unique users per IP; 0: none).
    pub user_subscriptions: usize,
    /// REST weight per minute the tracker spends (polls and backfills), of the venue's 1200
    /// per IP; at most 1000, so 10 % bursts and other calls keep headroom.
    pub rest_weight_per_minute: u32,
    /// Of it, the most position polls use (weight 2 each); the rest is kept for backfills.
    pub poll_weight_per_minute: u32,
    /// Least seconds between two position polls of one wallet.
    pub min_poll_interval_secs: f64,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            user_subscriptions: MAX_USERS,
            rest_weight_per_minute: 600,
            poll_weight_per_minute: 360,
            min_poll_interval_secs: 30.0,
        }
    }
}

impl TrackerConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.user_subscriptions > MAX_USERS {
            return Err(format!(
                "whales.tracker.user_subscriptions: at most {MAX_USERS} (Hyperliquid's limit of \
                 unique users per IP), got {}",
                self.user_subscriptions
            ));
        }
        let cap = VENUE_WEIGHT_PER_MINUTE * 5 / 6;
        if self.rest_weight_per_minute == 0 || self.rest_weight_per_minute > cap {
            return Err(format!(
                "whales.tracker.rest_weight_per_minute: within 1..={cap} (the venue allows \
                 {VENUE_WEIGHT_PER_MINUTE} per IP), got {}",
                self.rest_weight_per_minute
            ));
        }
        if self.poll_weight_per_minute < 2
            || self.poll_weight_per_minute > self.rest_weight_per_minute
        {
            return Err(format!(
                "whales.tracker.poll_weight_per_minute: within 2..=rest_weight_per_minute ({}), got {}",
                self.rest_weight_per_minute, self.poll_weight_per_minute
            ));
        }
        if !(self.min_poll_interval_secs.is_finite()
            && (0.0..=86_400.0).contains(&self.min_poll_interval_secs))
        {
            return Err("whales.tracker.min_poll_interval_secs: within 0..=86400".into());
        }
        Ok(())
    }
}

/// What the tracker did, for status and tests.
#[derive(Debug, Default)]
pub struct TrackerCounters {
    /// New fills from the wallets' own feed (socket and backfill).
    pub fills: AtomicU64,
    /// Fills dropped as already seen.
    pub duplicates: AtomicU64,
    pub backfill_requests: AtomicU64,
    /// New fills that came by backfill.
    pub backfilled: AtomicU64,
    pub skipped_spot: AtomicU64,
    pub polls: AtomicU64,
    pub poll_failures: AtomicU64,
    pub position_changes: AtomicU64,
}

impl TrackerCounters {
    /// A one-line summary.
    pub fn summary(&self) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "wallet tracker: {} fills ({} backfilled by {} requests, {} duplicates dropped), {} \
             position polls ({} failed, {} changes)",
            g(&self.fills),
            g(&self.backfilled),
            g(&self.backfill_requests),
            g(&self.duplicates),
            g(&self.polls),
            g(&self.poll_failures),
            g(&self.position_changes)
        )
    }
}

/// A started tracker: its socket's and its own counters, its REST budget, the supervised task.
pub struct Tracker {
    pub feed: Arc<FeedCounters>,
    pub counters: Arc<TrackerCounters>,
    pub budget: Arc<WeightBudget>,
    pub restarts: Arc<AtomicU64>,
    pub addr: Addr<LiveFeedActor>,
}

/// What one run of the tracker is made of (shared across restarts and wallet changes).
#[derive(Clone)]
struct Parts {
    settings: WsSettings,
    info: InfoClient,
    poll_budget: Arc<WeightBudget>,
    min_interval: Duration,
    user_subscriptions: usize,
    tx: mpsc::Sender<FeedBatch>,
    counters: Arc<TrackerCounters>,
    feed: Arc<FeedCounters>,
}

impl Parts {
    /// The socket (`userFills` of the heaviest) and the polls (all), for `wallets`, until
    /// `sd`; done at once without wallets.
    async fn run(self, wallets: Vec<String>, sd: watch::Receiver<bool>) {
        let users: Vec<String> = wallets
            .iter()
            .take(self.user_subscriptions)
            .cloned()
            .collect();
        let polls = positions::PollLoop {
            poller: positions::PositionPoller::new(&wallets),
            info: self.info.clone(),
            poll_budget: self.poll_budget.clone(),
            min_interval: self.min_interval,
            tx: self.tx.clone(),
            counters: self.counters.clone(),
        };
        if users.is_empty() {
            return polls.run(sd).await;
        }
        let codec = user_fills::UserFillsCodec::new(&users, self.counters.clone());
        let socket = WsFeed::new(
            Box::new(codec),
            self.settings,
            None,
            self.tx,
            None,
            self.feed,
        )
        .with_info(self.info);
        tokio::join!(socket.run(sd.clone()), polls.run(sd));
    }

    /// Runs for the latest wallet list; a new list restarts the socket and the polls with it
    /// (a list that no longer changes keeps the run going until `sd`).
    async fn follow(self, mut list: watch::Receiver<Vec<String>>, mut sd: watch::Receiver<bool>) {
        loop {
            let wallets = list.borrow_and_update().clone();
            let run = self.clone().run(wallets, sd.clone());
            tokio::pin!(run);
            let (mut run_done, mut list_open) = (false, true);
            loop {
                tokio::select! {
                    _ = &mut run, if !run_done => run_done = true,
                    r = list.changed(), if list_open => match r {
                        Ok(()) => break,
                        Err(_) => list_open = false,
                    },
                    _ = sd.changed() => return,
                }
            }
        }
    }
}

/// Starts the tracker for the wallets `list` holds (addresses, heaviest first; a new list
/// replaces them): the `userFills` socket at `settings.url` for the first
/// `cfg.user_subscriptions`, polls of all of them at `rest_url`; events to `tx` until
/// `shutdown`. Call inside the actix system.
pub fn start(
    cfg: &TrackerConfig,
    settings: WsSettings,
    rest_url: &str,
    list: watch::Receiver<Vec<String>>,
    tx: mpsc::Sender<FeedBatch>,
    shutdown: watch::Receiver<bool>,
) -> Tracker {
    let budget = Arc::new(WeightBudget::new(cfg.rest_weight_per_minute));
    let parts = Parts {
        settings,
        info: InfoClient::new(rest_url, budget.clone()),
        poll_budget: Arc::new(WeightBudget::new(cfg.poll_weight_per_minute)),
        min_interval: Duration::from_secs_f64(cfg.min_poll_interval_secs),
        user_subscriptions: cfg.user_subscriptions,
        tx,
        counters: Arc::new(TrackerCounters::default()),
        feed: Arc::new(FeedCounters::default()),
    };
    let (counters, feed) = (parts.counters.clone(), parts.feed.clone());
    let factory = move |sd: watch::Receiver<bool>| {
        futures_util::FutureExt::boxed_local(parts.clone().follow(list.clone(), sd))
    };
    let restarts = Arc::new(AtomicU64::new(0));
    let r = restarts.clone();
    let addr = Supervisor::start(move |_| {
        LiveFeedActor::new("hyperliquid-wallets", Box::new(factory), shutdown, r)
    });
    Tracker {
        feed,
        counters,
        budget,
        restarts,
        addr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_beyond_the_venues_are_refused_with_the_field_named() {
        assert!(TrackerConfig::default().validate().is_ok());
        let bad = |f: fn(&mut TrackerConfig)| {
            let mut c = TrackerConfig::default();
            f(&mut c);
            c.validate().unwrap_err()
        };
        assert!(bad(|c| c.user_subscriptions = 11).contains("user_subscriptions"));
        assert!(bad(|c| c.rest_weight_per_minute = 1200).contains("rest_weight_per_minute"));
        assert!(bad(|c| c.poll_weight_per_minute = 700).contains("poll_weight_per_minute"));
        assert!(bad(|c| c.min_poll_interval_secs = f64::NAN).contains("min_poll_interval_secs"));
    }
}
