//! Smart money on Hyperliquid: wallet snapshots, wallet weighting, consensus following and its
//! evaluation (`smartflow evaluate-wallets`).

pub mod config;
pub mod evaluate;
pub mod events;
pub mod flow;
pub mod follow;
pub mod leaderboard;
pub mod report;
pub mod score;
pub mod select;
pub mod snapshot;
pub mod tracker;

pub use config::WalletsConfig;

#[cfg(test)]
mod tests;
