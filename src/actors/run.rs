//! What the actors of one run share: completion, fatal errors, restart counters, and the
//! journal's counts.

use crate::execution::Portfolio;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// What the journal counted while the run went by.
#[derive(Clone, Debug, Default, Serialize)]
pub struct JournalCounters {
    pub events: u64,
    pub records: u64,
    pub signals: u64,
    pub skipped_signals: u64,
    pub intents: u64,
    pub approved: u64,
    pub refused: u64,
    pub orders: u64,
    pub fills: u64,
    pub exits: u64,
    pub commands: u64,
    pub refusals_by_reason: BTreeMap<String, u64>,
}

pub type Outcome = std::result::Result<(JournalCounters, Option<Box<Portfolio>>), String>;

/// Shared by the actors of one run: completion, fatal errors, restart counters.
pub struct RunControl {
    done: Mutex<Option<tokio::sync::oneshot::Sender<Outcome>>>,
    restarts: Mutex<BTreeMap<&'static str, Arc<AtomicU64>>>,
}

impl RunControl {
    pub fn new(tx: tokio::sync::oneshot::Sender<Outcome>) -> Self {
        Self {
            done: Mutex::new(Some(tx)),
            restarts: Mutex::new(BTreeMap::new()),
        }
    }
    pub fn finish(&self, c: JournalCounters, broker: Option<Box<Portfolio>>) {
        if let Some(tx) = self.done.lock().expect("not poisoned").take() {
            let _ = tx.send(Ok((c, broker)));
        }
    }
    pub fn fail(&self, msg: String) {
        tracing::error!("run failed: {msg}");
        if let Some(tx) = self.done.lock().expect("not poisoned").take() {
            let _ = tx.send(Err(msg));
        }
    }
    pub fn restart_counter(&self, name: &'static str) -> Arc<AtomicU64> {
        self.restarts
            .lock()
            .expect("not poisoned")
            .entry(name)
            .or_default()
            .clone()
    }
    pub fn restarts(&self) -> BTreeMap<String, u64> {
        self.restarts
            .lock()
            .expect("not poisoned")
            .iter()
            .map(|(k, v)| (k.to_string(), v.load(Ordering::SeqCst)))
            .collect()
    }
}
