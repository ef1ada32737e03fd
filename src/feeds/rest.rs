//! REST calls to venues (depth snapshots, instrument metadata), rate limited with `governor`
//! within each venue's published limits, run off the async threads (blocking `ureq`).

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// A rate-limited HTTP client for one venue.
#[derive(Clone)]
pub struct RestClient {
    base: String,
    limiter: Arc<DefaultDirectRateLimiter>,
    agent: ureq::Agent,
}

impl RestClient {
    /// `per_second` requests at most (burst of the same size).
    pub fn new(base: &str, per_second: u32) -> Self {
        let q = Quota::per_second(NonZeroU32::new(per_second.max(1)).expect("≥ 1"));
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(true)
            .build()
            .into();
        Self {
            base: base.trim_end_matches('/').to_string(),
            limiter: Arc::new(RateLimiter::direct(q)),
            agent,
        }
    }

    /// GET `base + path` → body text. Waits for the rate limiter first.
    pub async fn get(&self, path: &str) -> Result<String, String> {
        self.limiter.until_ready().await;
        let (agent, url) = (self.agent.clone(), format!("{}{}", self.base, path));
        tokio::task::spawn_blocking(move || {
            agent
                .get(&url)
                .call()
                .map_err(|e| format!("GET {url}: {e}"))?
                .body_mut()
                .read_to_string()
                .map_err(|e| format!("GET {url}: {e}"))
        })
        .await
        .map_err(|e| format!("REST task failed: {e}"))?
    }

    /// POST JSON to `base + path` → body text (Hyperliquid `/info`).
    pub async fn post_json(&self, path: &str, body: serde_json::Value) -> Result<String, String> {
        self.limiter.until_ready().await;
        let (agent, url) = (self.agent.clone(), format!("{}{}", self.base, path));
        tokio::task::spawn_blocking(move || {
            agent
                .post(&url)
                .header("content-type", "application/json")
                .send(body.to_string())
                .map_err(|e| format!("POST {url}: {e}"))?
                .body_mut()
                .read_to_string()
                .map_err(|e| format!("POST {url}: {e}"))
        })
        .await
        .map_err(|e| format!("REST task failed: {e}"))?
    }
}
