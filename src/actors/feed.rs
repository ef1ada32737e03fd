//! Feed actor for recorded data: a reader thread decodes and merges the files; the actor turns
//! its chunks into batches and sends them down the pipeline, at most `max_in_flight` at a time.

use super::BatchMsg;
use crate::domain::MarketEvent;
use crate::pipeline::Batch;
use actix::prelude::*;
use actix::ActorFutureExt;
use std::sync::Arc;
use tokio::sync::{mpsc, Semaphore};

/// What enters the pipeline: decoded market events, or an operator command between them.
pub enum Input {
    Events(Vec<MarketEvent>),
    Command(crate::control::CommandEvent),
}

/// One input for the pipeline; `None` ends the stream.
pub type Chunk = Option<Input>;

pub struct FeedActor {
    rx: Option<mpsc::Receiver<Chunk>>,
    next: Recipient<BatchMsg>,
    credits: Arc<Semaphore>,
    /// Live only: decode instants of each chunk's events, one message per chunk.
    stamps: Option<mpsc::UnboundedReceiver<Vec<std::time::Instant>>>,
}

impl FeedActor {
    pub fn new(rx: mpsc::Receiver<Chunk>, next: Recipient<BatchMsg>, max_in_flight: usize) -> Self {
        Self {
            rx: Some(rx),
            next,
            credits: Arc::new(Semaphore::new(max_in_flight)),
            stamps: None,
        }
    }

    pub fn with_stamps(mut self, rx: mpsc::UnboundedReceiver<Vec<std::time::Instant>>) -> Self {
        self.stamps = Some(rx);
        self
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
        let mut stamps = self.stamps.take();
        ctx.spawn(
            async move {
                let (mut seq, mut index) = (0u64, 0u64);
                loop {
                    let chunk = rx.recv().await.flatten();
                    let permit = credits.clone().acquire_owned().await.expect("never closed");
                    let last = chunk.is_none();
                    let (events, commands) = match chunk {
                        Some(Input::Events(e)) => (e, Vec::new()),
                        Some(Input::Command(c)) => (Vec::new(), vec![c]),
                        None => Default::default(),
                    };
                    let n = events.len() as u64;
                    let decoded_at = match (&mut stamps, events.is_empty()) {
                        (Some(s), false) => s.recv().await.unwrap_or_default(),
                        _ => Vec::new(),
                    };
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
