//! Order execution: the paper broker with its fill model, and the portfolio it keeps.

pub mod paper;
pub mod portfolio;

pub use paper::{ApprovedOrder, BrokerEvent, ExecConfig, PaperBroker};
pub use portfolio::{Portfolio, PortfolioConfig, PortfolioView};
