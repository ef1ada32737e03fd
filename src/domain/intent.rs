//! What a strategy asks for: an order intent with its exit plan. Shared by strategies (which
//! make them), risk (which decides) and execution (which places them).

use super::{Instrument, Side};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// One rung of the take-profit ladder.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TakeProfitStep {
    /// Gain over the average entry price, in % (limit price = entry × (1 + gain_pct/100)).
    pub gain_pct: Decimal,
    /// Share of the entry quantity sold at this rung (0–1).
    pub fraction: Decimal,
}

/// Exit plan handed to the broker with the entry; prices are set from the actual entry fills.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BracketSpec {
    pub take_profit: Vec<TakeProfitStep>,
    pub stop_loss_pct: Decimal,
    pub max_hold_ms: i64,
}

/// What the strategy wants to do; the risk manager decides.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct OrderIntent {
    pub id: String,
    pub signal_id: String,
    pub ts_ms: i64,
    pub instrument: Instrument,
    pub side: Side,
    /// Base units.
    pub qty: Decimal,
    /// Price of the signal's trade, quote per base; the notional is `qty × ref_price`.
    pub ref_price: Decimal,
    pub reduce_only: bool,
    pub bracket: BracketSpec,
    /// Leverage for a perpetual position (≥ 1); `None`: 1. Ignored on spot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leverage: Option<Decimal>,
}

impl OrderIntent {
    pub fn notional(&self) -> Decimal {
        self.qty * self.ref_price
    }
}

/// Rounds `qty` down to a multiple of `step`.
pub fn round_down(qty: Decimal, step: Decimal) -> Decimal {
    ((qty / step).floor() * step).normalize()
}

/// Why a signal produced no intent (stable codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SkipReason {
    /// A position or entry order on this instrument is already open.
    InPosition,
    /// The instrument's position closed less than `cooldown_secs` ago.
    Cooldown,
    /// `entry_notional / price` rounds down to zero quantity.
    QtyTooSmall,
    /// An exit signal on an instrument without a position.
    NoPosition,
}
