//! What the bot reads of, and sends to, a running session: the seam between the Telegram front
//! end and the session (the control hub and the decision log in production, fakes in tests).

use crate::control::hub::ControlHub;
use crate::domain::command::Command;
use crate::store::{Record, Store};
use std::sync::Arc;
use tokio::sync::{broadcast, oneshot};

/// A running session as the bot sees it.
pub trait SessionPort: Send + Sync + 'static {
    /// The control API's status (trading state, limits, feeds, equity, counters).
    fn status(&self) -> serde_json::Value;
    /// Open positions and live orders.
    fn positions(&self) -> serde_json::Value;
    /// Sends a command into the session's stream; the receiver gets its decision record.
    fn submit(&self, command: Command, source: &str) -> Result<oneshot::Receiver<Record>, String>;
    /// The decision log, oldest first.
    fn records(&self) -> anyhow::Result<Vec<Record>>;
    /// One record by id.
    fn record(&self, id: &str) -> anyhow::Result<Option<Record>>;
    /// Decision records as the session journals them (for alerts).
    fn subscribe(&self) -> broadcast::Receiver<Record>;
}

/// The production port: a paper (or live) session's control hub and store.
pub struct HubPort {
    pub hub: Arc<ControlHub>,
    pub store: Arc<Store>,
}

impl SessionPort for HubPort {
    fn status(&self) -> serde_json::Value {
        self.hub.status()
    }
    fn positions(&self) -> serde_json::Value {
        self.hub.positions()
    }
    fn submit(&self, command: Command, source: &str) -> Result<oneshot::Receiver<Record>, String> {
        self.hub.submit(command, source)
    }
    fn records(&self) -> anyhow::Result<Vec<Record>> {
        self.store.records()
    }
    fn record(&self, id: &str) -> anyhow::Result<Option<Record>> {
        self.store.record(id)
    }
    fn subscribe(&self) -> broadcast::Receiver<Record> {
        self.hub.subscribe_records()
    }
}

/// A session fixed at build time, for the bot's tests: its status, positions and decision log.
#[cfg(test)]
pub(crate) struct FixedPort {
    pub status: serde_json::Value,
    pub positions: serde_json::Value,
    pub records: Vec<Record>,
}

#[cfg(test)]
impl SessionPort for FixedPort {
    fn status(&self) -> serde_json::Value {
        self.status.clone()
    }
    fn positions(&self) -> serde_json::Value {
        self.positions.clone()
    }
    fn submit(&self, _: Command, _: &str) -> Result<oneshot::Receiver<Record>, String> {
        Err("none".into())
    }
    fn records(&self) -> anyhow::Result<Vec<Record>> {
        Ok(self.records.clone())
    }
    fn record(&self, _: &str) -> anyhow::Result<Option<Record>> {
        Ok(None)
    }
    fn subscribe(&self) -> broadcast::Receiver<Record> {
        broadcast::channel(1).1
    }
}
