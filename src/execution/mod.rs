//! Order execution: the paper broker with its fill model, and the portfolio it keeps (spot and
//! perpetual positions).

pub mod client;
pub mod paper;
pub mod perp;
pub mod portfolio;

pub use client::ExecutionClient;
pub use paper::{ApprovedOrder, BrokerEvent, ExecConfig, PaperBroker};
pub use portfolio::{Portfolio, PortfolioConfig, PortfolioView};
