//! Feed actors. [`FeedActor`] turns what a [`ChunkSource`] yields into batches and sends them
//! down the pipeline, at most `max_in_flight` at a time: in replay a reader thread's merged files,
//! in `paper` the live feeds' batcher, polled in place (no task between it and the pipeline).
//! [`LiveFeedActor`] supervises one live connection.

use super::BatchMsg;
use crate::domain::MarketEvent;
use crate::pipeline::Batch;
use actix::prelude::*;
use actix::ActorFutureExt;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, Semaphore};

/// What enters the pipeline: decoded market events, or an operator command between them.
pub enum Input {
    Events(Vec<MarketEvent>),
    Command(crate::control::CommandEvent),
}

/// One input for the pipeline; `None` ends the stream.
pub type Chunk = Option<Input>;

/// Where a [`FeedActor`] takes its inputs from.
pub trait ChunkSource: Unpin + 'static {
    /// The next input, with (live runs) the decode instant of each of its events, or an empty
    /// list; `None` ends the stream (as does a closed source).
    fn next_chunk(&mut self) -> impl std::future::Future<Output = (Chunk, Vec<Instant>)>;
}

/// Replay: chunks from the reader thread, without decode instants.
impl ChunkSource for mpsc::Receiver<Chunk> {
    async fn next_chunk(&mut self) -> (Chunk, Vec<Instant>) {
        (self.recv().await.flatten(), Vec::new())
    }
}

pub struct FeedActor<S: ChunkSource = mpsc::Receiver<Chunk>> {
    source: Option<S>,
    next: Recipient<BatchMsg>,
    credits: Arc<Semaphore>,
}

impl<S: ChunkSource> FeedActor<S> {
    pub fn new(source: S, next: Recipient<BatchMsg>, max_in_flight: usize) -> Self {
        Self {
            source: Some(source),
            next,
            credits: Arc::new(Semaphore::new(max_in_flight)),
        }
    }
}

impl<S: ChunkSource> Actor for FeedActor<S> {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        let Some(mut source) = self.source.take() else {
            return;
        };
        let next = self.next.clone();
        let credits = self.credits.clone();
        ctx.spawn(
            async move {
                let (mut seq, mut index) = (0u64, 0u64);
                loop {
                    let (chunk, decoded_at) = source.next_chunk().await;
                    let permit = credits.clone().acquire_owned().await.expect("never closed");
                    let last = chunk.is_none();
                    let (events, commands) = match chunk {
                        Some(Input::Events(e)) => (e, Vec::new()),
                        Some(Input::Command(c)) => (Vec::new(), vec![c]),
                        None => Default::default(),
                    };
                    let n = events.len() as u64;
                    next.do_send(BatchMsg(Batch {
                        seq,
                        first_index: index,
                        events,
                        commands,
                        last,
                        guard: Some(Box::new(permit)),
                        decoded_at,
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

/// Builds a live task (a venue connection, the wallet tracker) that runs until the shutdown
/// signal turns true.
pub type TaskFactory = Box<
    dyn Fn(tokio::sync::watch::Receiver<bool>) -> futures_util::future::LocalBoxFuture<'static, ()>,
>;

/// One live task under supervision (a [`crate::feeds::ws::WsFeed`] connection, the wallet
/// tracker); if the task dies (a panic), the actor stops and its supervisor restarts it fresh.
pub struct LiveFeedActor {
    pub venue: &'static str,
    factory: TaskFactory,
    shutdown: tokio::sync::watch::Receiver<bool>,
    restarts: Arc<std::sync::atomic::AtomicU64>,
}

impl LiveFeedActor {
    pub fn new(
        venue: &'static str,
        factory: TaskFactory,
        shutdown: tokio::sync::watch::Receiver<bool>,
        restarts: Arc<std::sync::atomic::AtomicU64>,
    ) -> Self {
        Self {
            venue,
            factory,
            shutdown,
            restarts,
        }
    }
}

impl Actor for LiveFeedActor {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        let task = tokio::task::spawn_local((self.factory)(self.shutdown.clone()));
        ctx.spawn(actix::fut::wrap_future(task).map(
            |res, act: &mut Self, ctx: &mut Context<Self>| {
                match res {
                    Err(e) if e.is_panic() => {
                        tracing::error!(
                            venue = act.venue,
                            "feed task panicked; restarting the feed actor"
                        );
                        ctx.stop();
                    }
                    _ => {} // shutdown: the task ended normally
                }
            },
        ));
    }
}

impl Supervised for LiveFeedActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.restarts
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}
