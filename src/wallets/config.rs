//! `[wallets]` config: smart-money wallet selection and the following rules that
//! `smartflow evaluate-wallets` measures. Ratios and USD thresholds are plain numbers
//! (analytics on the recorded floats, not order amounts).

use serde::{Deserialize, Serialize};

/// Weights of the four dimensions in a wallet's combined weight (any scale, not all zero).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DimWeights {
    pub performance: f64,
    pub size: f64,
    pub recency: f64,
    pub regime_fit: f64,
}

impl Default for DimWeights {
    fn default() -> Self {
        Self {
            performance: 0.4,
            size: 0.2,
            recency: 0.2,
            regime_fit: 0.2,
        }
    }
}

impl DimWeights {
    /// Σ weight × dimension / Σ weights.
    pub fn combine(&self, d: &super::score::Dims) -> f64 {
        let w = [self.performance, self.size, self.recency, self.regime_fit];
        let x = [d.performance, d.size, d.recency, d.regime_fit];
        w.iter().zip(x).map(|(w, x)| w * x).sum::<f64>() / w.iter().sum::<f64>()
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WalletsConfig {
    /// Wallets followed: the best N by combined weight.
    pub top_n: usize,
    pub weights: DimWeights,
    /// Half-life of the recency dimension since a wallet last changed its positions, hours.
    pub recency_half_life_hours: f64,
    /// Snapshots of history a wallet needs before it may be followed.
    pub min_observations: usize,
    /// A wallet with no volume in any window and more than this account value (USD) is a vault.
    pub vault_min_account_value: f64,
    /// Window volume over this multiple of the account value marks a market maker.
    pub mm_volume_ratio: f64,
    /// A book of ≥ 4 positions whose net is under this share of its gross is hedged (market maker).
    pub mm_net_ratio: f64,
    /// Weighted consensus (−1..1: Σ weight × signed share of each wallet's book / Σ weight) a coin
    /// needs before it is followed.
    pub min_consensus: f64,
    /// Distinct followed wallets on the consensus side a coin needs.
    pub min_wallets: usize,
    /// Largest share of equity in one coin; the book's gross exposure is at most 1× equity.
    pub max_coin_weight: f64,
    /// Hyperliquid taker fee paid on every change of exposure, bps of the notional traded.
    pub taker_fee_bps: f64,
    /// Price lost to the follower's delay after a snapshot, bps of the notional traded.
    pub lag_slippage_bps: f64,
}

impl Default for WalletsConfig {
    fn default() -> Self {
        Self {
            top_n: 20,
            weights: DimWeights::default(),
            recency_half_life_hours: 48.0,
            min_observations: 2,
            vault_min_account_value: 10_000_000.0,
            mm_volume_ratio: 200.0,
            mm_net_ratio: 0.1,
            min_consensus: 0.05,
            min_wallets: 2,
            max_coin_weight: 0.5,
            taker_fee_bps: 4.5,
            lag_slippage_bps: 5.0,
        }
    }
}

impl WalletsConfig {
    /// Errors name the key: `wallets.top_n: must be ≥ 1`.
    pub fn validate(&self) -> Result<(), String> {
        let w = &self.weights;
        let ws = [w.performance, w.size, w.recency, w.regime_fit];
        if ws.iter().any(|x| !x.is_finite() || *x < 0.0) || ws.iter().sum::<f64>() <= 0.0 {
            return Err("wallets.weights: each ≥ 0 and not all 0".into());
        }
        let checks: [(&str, bool); 9] = [
            ("wallets.top_n: must be ≥ 1", self.top_n >= 1),
            (
                "wallets.recency_half_life_hours: must be > 0",
                self.recency_half_life_hours > 0.0,
            ),
            (
                "wallets.min_observations: must be ≥ 1",
                self.min_observations >= 1,
            ),
            (
                "wallets.vault_min_account_value: must be ≥ 0",
                self.vault_min_account_value >= 0.0,
            ),
            (
                "wallets.mm_volume_ratio: must be > 0",
                self.mm_volume_ratio > 0.0,
            ),
            (
                "wallets.mm_net_ratio: must be within [0, 1]",
                (0.0..=1.0).contains(&self.mm_net_ratio),
            ),
            (
                "wallets.min_consensus: must be within [0, 1]",
                (0.0..=1.0).contains(&self.min_consensus),
            ),
            (
                "wallets.max_coin_weight: must be within (0, 1]",
                self.max_coin_weight > 0.0 && self.max_coin_weight <= 1.0,
            ),
            (
                "wallets.taker_fee_bps and lag_slippage_bps: must be within [0, 10000)",
                (0.0..10000.0).contains(&self.taker_fee_bps)
                    && (0.0..10000.0).contains(&self.lag_slippage_bps),
            ),
        ];
        match checks.iter().find(|(_, ok)| !ok) {
            Some((msg, _)) => Err(msg.to_string()),
            None => Ok(()),
        }
    }
}
