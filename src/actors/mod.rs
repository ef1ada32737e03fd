//! Thin actors around the pure pipeline stages: they move batches, supervise, and persist.
//!
//! Supervision: actix's `Supervisor` restarts an actor that *stopped*; a panicking handler would
//! instead unwind through the arbiter. So each stage actor catches panics at the handler boundary,
//! restores the stage's state saved before the batch, puts the batch back at the head of its queue
//! and stops itself; the supervisor restarts it (`restarting`), and `started` drains the queue
//! again. Nothing is lost or reordered: the mailbox is kept across restarts and the failed batch is
//! retried first.

pub mod builder;
pub mod feed;
pub mod idle_spin;
pub mod journal;
pub mod run;
pub mod stage;

use crate::execution::PortfolioView;
use crate::pipeline::Batch;
use actix::prelude::*;
use std::sync::Arc;

/// A batch moving down the pipeline.
pub struct BatchMsg(pub Batch);
impl Message for BatchMsg {
    type Result = ();
}

/// The broker's portfolio after batch `view.batch_seq`, for strategy and risk.
#[derive(Clone)]
pub struct FeedbackMsg(pub Arc<PortfolioView>);
impl Message for FeedbackMsg {
    type Result = ();
}

/// Connects a stage to the next one and to the stages that take its feedback.
pub struct Wire {
    pub next: Recipient<BatchMsg>,
    pub feedback: Vec<Recipient<FeedbackMsg>>,
}
impl Message for Wire {
    type Result = ();
}
