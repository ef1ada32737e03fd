//! Signal producers and trading strategies.

pub mod detector;
pub mod ensemble_detector;
pub mod overlap;
pub mod prepump;
pub mod signal;
pub mod sources;
pub mod undo;
pub mod whale;
