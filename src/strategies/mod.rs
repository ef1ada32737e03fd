//! Signal producers and trading strategies.

pub mod detector;
pub mod prepump;
