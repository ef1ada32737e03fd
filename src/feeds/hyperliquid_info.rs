//! Hyperliquid's `POST /info` inside its per-IP REST budget (docs, "Rate limits and user
//! limits"): 1200 weight per minute; `l2Book`, `allMids`, `clearinghouseState`, `orderStatus`,
//! `spotClearinghouseState` and `exchangeStatus` weigh 2, `userRole` 60, every other request 20;
//! `userFills`, `userFillsByTime`, `recentTrades`, `historicalOrders`, `fundingHistory`,
//! `userFunding` and `candleSnapshot` add 1 per 20 items returned (candles: per 60).
//!
//! A [`WeightBudget`] (a `governor` limiter counting weight, not requests) spends a request's
//! weight before it is sent and the per-item weight after the answer; its burst is a tenth of the
//! per-minute budget, so any 60 s holds at most 1.1 × the budget plus the last answer's items.

use super::rest::RestClient;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The venue's REST limit per IP, weight per minute.
pub const VENUE_WEIGHT_PER_MINUTE: u32 = 1200;

/// Weight of an `/info` request of type `kind`, before its items.
pub fn request_weight(kind: &str) -> u32 {
    match kind {
        "l2Book"
        | "allMids"
        | "clearinghouseState"
        | "orderStatus"
        | "spotClearinghouseState"
        | "exchangeStatus" => 2,
        "userRole" => 60,
        _ => 20,
    }
}

/// Extra weight of an answer of `items` items to a request of type `kind`.
pub fn answer_weight(kind: &str, items: usize) -> u32 {
    let per = match kind {
        "userFills" | "userFillsByTime" | "recentTrades" | "historicalOrders"
        | "fundingHistory" | "userFunding" => 20,
        "candleSnapshot" => 60,
        _ => return 0,
    };
    (items / per) as u32
}

type Limiter<C> = RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// Weight per minute, spent before each request (see the module docs for the bound).
pub struct WeightBudget<C: Clock = DefaultClock> {
    limiter: Limiter<C>,
    clock: C,
    burst: u32,
    per_minute: u32,
    /// Weight spent so far.
    pub spent: AtomicU64,
}

impl WeightBudget<DefaultClock> {
    /// `per_minute` weight (≥ 1).
    pub fn new(per_minute: u32) -> Self {
        Self::with_clock(per_minute, DefaultClock::default())
    }

    /// Waits until `weight` can be spent, then spends it (in burst-sized parts when larger).
    pub async fn spend(&self, weight: u32) {
        let mut left = weight;
        while left > 0 {
            let part = left.min(self.burst);
            match self.try_spend(part) {
                Ok(()) => left -= part,
                Err(wait) => tokio::time::sleep(wait).await,
            }
        }
    }
}

impl<C: Clock + Clone> WeightBudget<C> {
    /// A budget on `clock` (a fake clock in tests).
    pub fn with_clock(per_minute: u32, clock: C) -> Self {
        let per_minute = per_minute.max(1);
        let burst = (per_minute / 10).max(1);
        let nz = |n: u32| NonZeroU32::new(n).expect("≥ 1");
        let quota = Quota::per_minute(nz(per_minute)).allow_burst(nz(burst));
        Self {
            limiter: RateLimiter::direct_with_clock(quota, clock.clone()),
            clock,
            burst,
            per_minute,
            spent: AtomicU64::new(0),
        }
    }

    /// The largest weight spent at once.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    pub fn per_minute(&self) -> u32 {
        self.per_minute
    }

    /// Spends `weight` (1..=burst) now, or says how long to wait. A weight above the burst
    /// waits for ever: split it (as [`WeightBudget::spend`] does).
    pub fn try_spend(&self, weight: u32) -> Result<(), Duration> {
        let Some(n) = NonZeroU32::new(weight) else {
            return Ok(());
        };
        match self.limiter.check_n(n) {
            Ok(Ok(())) => {
                self.spent.fetch_add(weight as u64, Ordering::Relaxed);
                Ok(())
            }
            Ok(Err(not_until)) => Err(not_until.wait_time_from(self.clock.now())),
            Err(_) => Err(Duration::MAX),
        }
    }
}

/// Counters of an [`InfoClient`].
#[derive(Debug, Default)]
pub struct InfoCounters {
    pub requests: AtomicU64,
    pub failures: AtomicU64,
}

/// `POST {base}/info` within a shared weight budget.
#[derive(Clone)]
pub struct InfoClient {
    rest: RestClient,
    budget: Arc<WeightBudget>,
    pub counters: Arc<InfoCounters>,
}

impl InfoClient {
    /// `base`: the REST root (`https://api.hyperliquid.xyz`); `budget` shared by every caller.
    pub fn new(base: &str, budget: Arc<WeightBudget>) -> Self {
        Self {
            rest: RestClient::new(base, 100),
            budget,
            counters: Arc::default(),
        }
    }

    pub fn budget(&self) -> &WeightBudget {
        &self.budget
    }

    /// Posts `body` (`{"type": …, …}`) once its weight is spent; spends the per-item weight of
    /// an array answer. Errors: transport, HTTP status, or a body that is not JSON.
    pub async fn post(&self, body: serde_json::Value) -> Result<String, String> {
        let kind = body["type"].as_str().unwrap_or_default().to_string();
        self.budget.spend(request_weight(&kind)).await;
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let text = match self.rest.post_json("/info", body).await {
            Ok(t) => t,
            Err(e) => {
                self.counters.failures.fetch_add(1, Ordering::Relaxed);
                return Err(e);
            }
        };
        let items =
            serde_json::from_str::<Vec<serde::de::IgnoredAny>>(&text).map_or(0, |v| v.len());
        self.budget.spend(answer_weight(&kind, items)).await;
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    #[test]
    fn weights_follow_the_venue_table() {
        assert_eq!(request_weight("clearinghouseState"), 2);
        assert_eq!(request_weight("userFillsByTime"), 20);
        assert_eq!(request_weight("userRole"), 60);
        assert_eq!(answer_weight("userFillsByTime", 19), 0);
        assert_eq!(answer_weight("userFillsByTime", 2000), 100);
        assert_eq!(answer_weight("clearinghouseState", 2000), 0);
    }

    /// Ten simulated minutes of a poller that always wants more (weight 2 every 10 ms) and a
    /// backfill of 20 + 1 per 20 of 500 items every 30 s: no 60 s window ever holds more than
    /// the venue's 1200, and the budget is used (not idle).
    #[test]
    fn a_saturated_budget_never_passes_the_venues_limit_in_any_minute() {
        let clock = FakeRelativeClock::default();
        let budget = WeightBudget::with_clock(600, clock.clone());
        let mut spent: Vec<(u64, u32)> = Vec::new(); // (ms, weight)
        let mut pending_extra = 0;
        for ms in (0..600_000u64).step_by(10) {
            if ms % 30_000 == 0 && budget.try_spend(20).is_ok() {
                spent.push((ms, 20));
                pending_extra += answer_weight("userFillsByTime", 500);
            }
            if pending_extra > 0 && budget.try_spend(pending_extra).is_ok() {
                spent.push((ms, pending_extra));
                pending_extra = 0;
            }
            if budget.try_spend(2).is_ok() {
                spent.push((ms, 2));
            }
            clock.advance(Duration::from_millis(10));
        }
        let mut worst = 0;
        for (i, &(start, _)) in spent.iter().enumerate() {
            let w: u32 = spent[i..]
                .iter()
                .take_while(|(t, _)| *t < start + 60_000)
                .map(|x| x.1)
                .sum();
            worst = worst.max(w);
        }
        assert!(worst <= 660, "a minute held {worst} weight");
        assert!(worst >= 590, "budget left idle: best minute {worst}");
        assert!(worst <= VENUE_WEIGHT_PER_MINUTE);
        let total: u32 = spent.iter().map(|x| x.1).sum();
        assert_eq!(total as u64, budget.spent.load(Ordering::Relaxed));
    }

    #[test]
    fn a_weight_above_the_burst_never_passes_at_once() {
        let b = WeightBudget::with_clock(600, FakeRelativeClock::default());
        assert_eq!(b.burst(), 60);
        assert_eq!(b.try_spend(61), Err(Duration::MAX));
        assert!(b.try_spend(60).is_ok());
        assert!(b.try_spend(2).is_err(), "burst used up");
    }
}
