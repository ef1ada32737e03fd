//! smartflow: an autonomous crypto trading agent with a pure, deterministic core inside thin
//! supervised actors. See `README.md` and `../shared/DESIGN.md`.

pub mod actors;
pub mod cli;
pub mod config;
pub mod control;
pub mod decision;
pub mod domain;
pub mod execution;
pub mod fault;
pub mod features;
pub mod feeds;
pub mod fuzz;
pub mod live;
pub mod models;
pub mod paper;
pub mod pipeline;
pub mod plot;
pub mod record;
pub mod replay;
pub mod risk;
pub mod store;
pub mod strategies;
pub mod telegram;
pub mod wallets;
