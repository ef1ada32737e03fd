//! Journal actor: the end of the pipeline. Buffers decision records and commits them to the store
//! in batches (one durable transaction per flush), with the broker's state, so a crash loses at
//! most the unflushed tail and never leaves records without the state they came from.

use super::BatchMsg;
use crate::replay::{JournalCounters, RunControl};
use crate::store::{Record, RecordKind, Store, META_EXECUTOR};
use actix::prelude::*;
use indicatif::ProgressBar;
use std::sync::Arc;
use std::time::Duration;

pub struct JournalActor {
    store: Arc<Store>,
    buf: Vec<Record>,
    executor_state: Option<Vec<u8>>,
    flush_records: usize,
    /// Records already in the store from an interrupted run (resume): skip this many.
    skip_records: u64,
    counters: JournalCounters,
    control: Arc<RunControl>,
    progress: ProgressBar,
}

impl JournalActor {
    pub fn new(
        store: Arc<Store>,
        flush_records: usize,
        skip_records: u64,
        control: Arc<RunControl>,
        progress: ProgressBar,
    ) -> Self {
        Self {
            store,
            buf: Vec::new(),
            executor_state: None,
            flush_records,
            skip_records,
            counters: JournalCounters::default(),
            control,
            progress,
        }
    }

    fn flush(&mut self) {
        if self.buf.is_empty() && self.executor_state.is_none() {
            return;
        }
        let mut meta = Vec::new();
        if let Some(s) = self.executor_state.take() {
            meta.push((META_EXECUTOR, s));
        }
        if let Err(e) = self.store.append(&self.buf, &meta) {
            self.control.fail(format!(
                "journal write to {} failed: {e:#}",
                self.store.path().display()
            ));
        }
        self.buf.clear();
    }

    fn count(&mut self, r: &Record) {
        let c = &mut self.counters;
        match r.kind {
            RecordKind::Signal => c.signals += 1,
            RecordKind::Intent if r.refused => c.skipped_signals += 1,
            RecordKind::Intent => c.intents += 1,
            RecordKind::Verdict => {
                if r.refused {
                    c.refused += 1;
                    if let Some(rs) = r.detail["reasons"].as_array() {
                        for x in rs {
                            if let Some(code) = x["code"].as_str() {
                                *c.refusals_by_reason.entry(code.to_string()).or_default() += 1;
                            }
                        }
                    }
                } else {
                    c.approved += 1;
                }
            }
            RecordKind::Order if r.detail["event"] == "new" => c.orders += 1,
            RecordKind::Order => {}
            RecordKind::Fill => c.fills += 1,
            RecordKind::Exit => c.exits += 1,
        }
        c.records += 1;
    }
}

impl Actor for JournalActor {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        // Wall-clock flushes only decide *when* records land, never what they say.
        ctx.run_interval(Duration::from_millis(250), |a, _| a.flush());
    }
}

impl Handler<BatchMsg> for JournalActor {
    type Result = ();
    fn handle(&mut self, msg: BatchMsg, _: &mut Context<Self>) {
        let mut b = msg.0;
        self.counters.events += b.events.len() as u64;
        self.progress.inc(b.events.len() as u64);
        if let Some(e) = b.events.last() {
            self.progress
                .set_message(format!("event time {}", crate::domain::fmt_ts(e.ts_ms())));
        }
        b.records.sort_by_key(|(i, _)| *i);
        for (_, r) in b.records.drain(..) {
            self.count(&r);
            if self.skip_records > 0 {
                self.skip_records -= 1;
                continue;
            }
            self.buf.push(r);
        }
        if b.executor_state.is_some() {
            self.executor_state = b.executor_state.take();
        }
        if self.buf.len() >= self.flush_records {
            self.flush();
        }
        if b.last {
            self.flush();
            self.control
                .finish(self.counters.clone(), b.final_broker.take());
        }
    }
}
