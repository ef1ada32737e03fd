//! `/exchange` actions as Hyperliquid signs and reads them: field names and order follow the
//! official SDKs' wire types (`a` asset, `b` is buy, `p` limit price, `s` size, `r` reduce-only,
//! `t` order type, `c` cloid), because the signature covers their MessagePack encoding.
//! Prices and sizes are decimal strings without trailing zeros, made from `Decimal`s that were
//! already rounded to the asset's rules ([`asset_spec`]).

use alloy_primitives::keccak256;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// An `/exchange` action (the subset smartflow sends).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Action {
    /// New orders; `grouping` "na" (independent) or "normalTpsl" (entry with its TP/SL).
    Order {
        orders: Vec<OrderWire>,
        grouping: String,
    },
    /// Cancels by venue order id.
    Cancel { cancels: Vec<CancelWire> },
    /// Cancels by client order id.
    CancelByCloid { cancels: Vec<CancelByCloidWire> },
}

impl Action {
    /// Orders or cancels in the action: its `exchange` weight is 1 + ⌊n / 40⌋.
    pub fn batch_len(&self) -> usize {
        match self {
            Action::Order { orders, .. } => orders.len(),
            Action::Cancel { cancels } => cancels.len(),
            Action::CancelByCloid { cancels } => cancels.len(),
        }
    }
}

/// One order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderWire {
    /// Asset index (perpetuals: position in `meta.universe`).
    pub a: u32,
    pub b: bool,
    /// Limit price (for a trigger order: the worst fill price once triggered).
    pub p: String,
    pub s: String,
    pub r: bool,
    pub t: OrderTypeWire,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub c: Option<String>,
}

/// `{"limit": {"tif": …}}` or `{"trigger": {"isMarket", "triggerPx", "tpsl"}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderTypeWire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<LimitWire>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<TriggerWire>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitWire {
    /// "Gtc", "Ioc" or "Alo".
    pub tif: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerWire {
    #[serde(rename = "isMarket")]
    pub is_market: bool,
    #[serde(rename = "triggerPx")]
    pub trigger_px: String,
    /// "tp" or "sl".
    pub tpsl: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelWire {
    pub a: u32,
    pub o: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelByCloidWire {
    pub asset: u32,
    pub cloid: String,
}

/// The body of `POST /exchange`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExchangeRequest {
    pub action: Action,
    pub nonce: u64,
    pub signature: super::signing::WireSignature,
    #[serde(rename = "vaultAddress")]
    pub vault_address: Option<String>,
    #[serde(rename = "expiresAfter")]
    pub expires_after: Option<u64>,
}

/// Why a number cannot go on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// More than 8 decimals (the venue's wire precision) or not positive.
    BadNumber(Decimal),
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireError::BadNumber(d) => write!(f, "{d} is not a positive number of ≤ 8 decimals"),
        }
    }
}

/// A price or size as the wire takes it: `1670.1`, `0.0147`, `100` (no exponent, no
/// trailing zeros). Errors: not positive, or more than 8 decimals.
pub fn decimal_to_wire(d: Decimal) -> Result<String, WireError> {
    let n = d.normalize();
    if n <= Decimal::ZERO || n.scale() > 8 {
        return Err(WireError::BadNumber(d));
    }
    Ok(n.to_string())
}

/// A client order id: `0x` and 32 hex digits, the first 16 bytes of keccak-256 of the account,
/// the session number and the order id, so that ids never repeat across sessions and a
/// restarted session can find its own orders.
pub fn cloid(account: &str, session: u64, order_id: &str) -> String {
    let h = keccak256(format!("{account}|{session}|{order_id}").as_bytes());
    format!("0x{}", alloy_primitives::hex::encode(&h[..16]))
}
