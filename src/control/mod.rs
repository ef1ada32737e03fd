//! Commands to a running session (pause, resume, halt, flatten, set) and the local control API
//! that takes them.
//!
//! A command enters the pipeline in-band, as a batch of its own between two market events, so
//! every stage applies it at the same point of the event order and a replay of the session's
//! recording applies it there too. The risk stage journals it (a `command` record with its source
//! and outcome); the executor acts on halt (cancel every order), resume (re-arm brackets) and
//! flatten (reduce-only market exits).

pub mod api;
pub mod client;
pub mod hub;

pub use crate::domain::command::{Command, CommandEvent};
pub use crate::risk::limits::{set_limit, SETTABLE_LIMITS};
