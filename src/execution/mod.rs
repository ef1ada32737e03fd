//! Order execution: order management (brackets, exits, commands) over a venue — the fill
//! simulator today — and the portfolio it keeps (spot and perpetual positions).

#[cfg(feature = "ccxt-bybit")]
pub mod ccxt_bybit;
pub mod client;
pub mod events;
pub mod funding;
pub mod hyperliquid;
pub mod oms;
pub mod paper;
pub mod perp;
pub mod portfolio;
pub mod sim;
pub mod venue;

pub use client::ExecutionClient;
pub use events::{ApprovedOrder, BrokerEvent, Links};
pub use paper::PaperBroker;
pub use portfolio::{Holding, Portfolio, PortfolioConfig, PortfolioView};
pub use sim::ExecConfig;
