//! Command-line front end helpers (argument types live in main.rs).

pub mod log;
pub mod models;
pub mod session;
