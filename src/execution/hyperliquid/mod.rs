//! The Hyperliquid execution client: signed `/exchange` actions, `/info` queries within the
//! venue's limits, the order lifecycle, and reconciliation with the venue after a restart.

pub mod signing;
pub mod wire;
