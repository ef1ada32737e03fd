//! Command-line front end helpers (most argument types live in main.rs).

pub mod fuzz;
pub mod log;
pub mod models;
pub mod session;
pub mod wallets;
