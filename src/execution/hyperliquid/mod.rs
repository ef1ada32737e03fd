//! The Hyperliquid execution client: signed `/exchange` actions, `/info` queries within the
//! venue's limits, the order lifecycle, and reconciliation with the venue after a restart.

pub mod api;
pub mod errors;
pub mod lifecycle;
pub mod reconcile;
pub mod signing;
pub mod stream;
pub mod venue;
pub mod wire;
pub mod worker;
