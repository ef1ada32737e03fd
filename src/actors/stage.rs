//! Generic supervised actor around one [`Stage`].

use super::{BatchMsg, FeedbackMsg, Wire};
use crate::actors::run::RunControl;
use crate::pipeline::{Batch, Fault, Stage};
use actix::prelude::*;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A batch that panics this many times in a row is a bug, not a fault: the run stops with an error.
pub const MAX_RETRIES: u32 = 3;

pub struct StageActor<S: Stage> {
    stage: S,
    next: Option<Recipient<BatchMsg>>,
    feedback: Vec<Recipient<FeedbackMsg>>,
    fault: Fault,
    last_feedback: Option<u64>,
    queue: VecDeque<Batch>,
    /// Sequence number of the next batch sent on (batches are renumbered after a split).
    out_seq: u64,
    failures: u32,
    restarts: Arc<AtomicU64>,
    control: Arc<RunControl>,
    /// Live runs: decode → this stage's output latency of every snapshot, in µs.
    latency: Option<Arc<std::sync::Mutex<hdrhistogram::Histogram<u64>>>>,
}

impl<S: Stage> StageActor<S> {
    pub fn new(stage: S, fault: Fault, control: Arc<RunControl>) -> Self {
        let restarts = control.restart_counter(S::NAME);
        Self {
            stage,
            next: None,
            feedback: Vec::new(),
            fault,
            last_feedback: None,
            queue: VecDeque::new(),
            out_seq: 0,
            failures: 0,
            restarts,
            control,
            latency: None,
        }
    }

    /// Records, after each batch, the time from decode to this stage's output per snapshot (per
    /// trade when the batch carries no snapshots).
    pub fn with_latency(mut self, h: Arc<std::sync::Mutex<hdrhistogram::Histogram<u64>>>) -> Self {
        self.latency = Some(h);
        self
    }

    fn record_latency(&self, b: &Batch) {
        let (Some(h), false) = (&self.latency, b.decoded_at.is_empty()) else {
            return;
        };
        let now = std::time::Instant::now();
        let mut h = h.lock().expect("not poisoned");
        let mut record = |i: usize| {
            if let Some(t) = b.decoded_at.get(i) {
                let _ = h.record(now.duration_since(*t).as_micros() as u64);
            }
        };
        if b.snapshots.is_empty() {
            // The ensemble keeps its own windows: every trade went through it.
            (0..b.events.len())
                .filter(|&i| b.events[i].as_trade().is_some())
                .for_each(&mut record);
        } else {
            b.snapshots.iter().for_each(|(i, _)| record(*i as usize));
        }
    }

    fn ready(&self, b: &Batch) -> bool {
        self.next.is_some()
            && (!S::GATED
                || b.seq == 0
                || self.last_feedback.is_some_and(|s| s + 1 >= b.seq)
                || !self.stage.needs_view(b))
    }

    fn drain(&mut self, ctx: &mut Context<Self>) {
        while self.queue.front().is_some_and(|b| self.ready(b)) {
            let b = self.queue.pop_front().expect("checked");
            if !self.run_batch(b, ctx) {
                return;
            }
        }
    }

    fn send_on(&mut self, b: Batch) {
        let Some(next) = &self.next else {
            tracing::error!(stage = S::NAME, "stage not wired; batch dropped");
            return;
        };
        let pieces = if S::SPLITS_AT_SIGNALS {
            b.split_at_signals()
        } else {
            vec![b]
        };
        for mut p in pieces {
            if S::SPLITS_AT_SIGNALS {
                p.seq = self.out_seq;
                self.out_seq += 1;
            }
            next.do_send(BatchMsg(p));
        }
    }

    /// Processes one batch; false when it panicked (the actor is then stopping for a restart).
    fn run_batch(&mut self, mut b: Batch, ctx: &mut Context<Self>) -> bool {
        let mark = b.mark();
        let saved = self.stage.save(&b);
        let stage = &mut self.stage;
        let fault = &self.fault;
        match catch_unwind(AssertUnwindSafe(|| stage.process(&mut b, fault))) {
            Ok(view) => {
                self.failures = 0;
                self.record_latency(&b);
                if let Some(v) = view {
                    let v = Arc::new(v);
                    for r in &self.feedback {
                        r.do_send(FeedbackMsg(v.clone()));
                    }
                }
                self.send_on(b);
                true
            }
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "unknown panic".into());
                self.stage.restore(saved);
                b.rollback(mark);
                self.failures += 1;
                tracing::error!(
                    stage = S::NAME,
                    batch = b.seq,
                    failures = self.failures,
                    "stage panicked: {msg}; restarting"
                );
                if self.failures >= MAX_RETRIES {
                    self.control.fail(format!(
                        "stage {} panicked {} times on batch {} (events from #{}): {msg}",
                        S::NAME,
                        self.failures,
                        b.seq,
                        b.first_index
                    ));
                    return false;
                }
                self.queue.push_front(b);
                ctx.stop();
                false
            }
        }
    }
}

impl<S: Stage> Actor for StageActor<S> {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        self.drain(ctx);
    }
}

impl<S: Stage> Supervised for StageActor<S> {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.restarts.fetch_add(1, Ordering::SeqCst);
        tracing::warn!(stage = S::NAME, "actor restarted by its supervisor");
    }
}

impl<S: Stage> Handler<BatchMsg> for StageActor<S> {
    type Result = ();
    fn handle(&mut self, msg: BatchMsg, ctx: &mut Context<Self>) {
        self.queue.push_back(msg.0);
        self.drain(ctx);
    }
}

impl<S: Stage> Handler<FeedbackMsg> for StageActor<S> {
    type Result = ();
    fn handle(&mut self, msg: FeedbackMsg, ctx: &mut Context<Self>) {
        self.stage.on_feedback(&msg.0);
        self.last_feedback = Some(msg.0.batch_seq);
        self.drain(ctx);
    }
}

impl<S: Stage> Handler<Wire> for StageActor<S> {
    type Result = ();
    fn handle(&mut self, msg: Wire, ctx: &mut Context<Self>) {
        self.next = Some(msg.next);
        self.feedback = msg.feedback;
        self.drain(ctx);
    }
}
