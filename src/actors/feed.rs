//! Feed actor for recorded data: a reader thread decodes and merges the files; the actor turns
//! its chunks into batches and sends them down the pipeline, at most `max_in_flight` at a time.

use super::BatchMsg;
use crate::domain::MarketEvent;
use crate::pipeline::Batch;
use actix::prelude::*;
use std::sync::Arc;
use tokio::sync::{mpsc, Semaphore};

/// Events decoded by the reader thread; `None` ends the stream.
pub type Chunk = Option<Vec<MarketEvent>>;

pub struct FeedActor {
    rx: Option<mpsc::Receiver<Chunk>>,
    next: Recipient<BatchMsg>,
    credits: Arc<Semaphore>,
}

impl FeedActor {
    pub fn new(rx: mpsc::Receiver<Chunk>, next: Recipient<BatchMsg>, max_in_flight: usize) -> Self {
        Self {
            rx: Some(rx),
            next,
            credits: Arc::new(Semaphore::new(max_in_flight)),
        }
    }
}

impl Actor for FeedActor {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        let Some(mut rx) = self.rx.take() else {
            return;
        };
        let next = self.next.clone();
        let credits = self.credits.clone();
        ctx.spawn(
            async move {
                let (mut seq, mut index) = (0u64, 0u64);
                loop {
                    let chunk = rx.recv().await.flatten();
                    let permit = credits.clone().acquire_owned().await.expect("never closed");
                    let last = chunk.is_none();
                    let events = chunk.unwrap_or_default();
                    let n = events.len() as u64;
                    next.do_send(BatchMsg(Batch {
                        seq,
                        first_index: index,
                        events,
                        last,
                        guard: Some(Box::new(permit)),
                        ..Default::default()
                    }));
                    seq += 1;
                    index += n;
                    if last {
                        break;
                    }
                }
            }
            .into_actor(self),
        );
    }
}
