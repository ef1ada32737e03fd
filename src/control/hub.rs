//! What the control API shares with a running session: the command inlet, the status the
//! journal keeps current, and the Prometheus metrics.

use super::{Command, CommandEvent};
use crate::decision::Decision;
use crate::store::Record;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use tokio::sync::{mpsc, oneshot};

type Labels = Vec<(String, String)>;

/// The session's Prometheus metrics (exported by `GET /metrics`).
pub struct Metrics {
    pub registry: Registry,
    /// Decision records by kind (`signal`, `verdict`, `fill`, …).
    pub records: Family<Labels, Counter>,
    /// Refused verdicts by reason code.
    pub refusals: Family<Labels, Counter>,
    /// Market events through the pipeline.
    pub events: Counter,
    /// Portfolio equity, quote currency.
    pub equity: Gauge<f64, AtomicU64>,
    pub open_positions: Gauge,
    /// 0 active, 1 reducing (paused), 2 halted.
    pub trading_state: Gauge,
    /// Decode → signal latency, 99th percentile, µs.
    pub latency_p99_us: Gauge,
}

impl Metrics {
    fn new() -> Self {
        let mut m = Self {
            registry: Registry::with_prefix("smartflow"),
            records: Family::default(),
            refusals: Family::default(),
            events: Counter::default(),
            equity: Gauge::default(),
            open_positions: Gauge::default(),
            trading_state: Gauge::default(),
            latency_p99_us: Gauge::default(),
        };
        let r = &mut m.registry;
        r.register(
            "decision_records",
            "Decision records by kind",
            m.records.clone(),
        );
        r.register(
            "refusals",
            "Refused verdicts by reason code",
            m.refusals.clone(),
        );
        r.register(
            "market_events",
            "Market events through the pipeline",
            m.events.clone(),
        );
        r.register(
            "equity",
            "Portfolio equity in quote currency",
            m.equity.clone(),
        );
        r.register("open_positions", "Open positions", m.open_positions.clone());
        r.register(
            "trading_state",
            "Trading state: 0 active, 1 reducing, 2 halted",
            m.trading_state.clone(),
        );
        r.register(
            "latency_p99_us",
            "Decode to signal latency, 99th percentile, microseconds",
            m.latency_p99_us.clone(),
        );
        m
    }

    /// The metrics in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut s = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut s, &self.registry);
        s
    }
}

/// Shared by the HTTP server and the session's actors.
pub struct ControlHub {
    prefix: String,
    next_id: AtomicU64,
    inlet: mpsc::UnboundedSender<CommandEvent>,
    waiters: Mutex<HashMap<String, oneshot::Sender<Record>>>,
    status: Mutex<serde_json::Value>,
    positions: Mutex<serde_json::Value>,
    /// Every decision record as journaled, for listeners such as the Telegram alerts.
    records: tokio::sync::broadcast::Sender<Record>,
    pub metrics: Metrics,
}

impl ControlHub {
    /// Commands get ids `{prefix}cmd-N` and go to `inlet`, which feeds them into the event
    /// stream.
    pub fn new(prefix: &str, inlet: mpsc::UnboundedSender<CommandEvent>) -> Self {
        Self {
            prefix: prefix.to_string(),
            next_id: AtomicU64::new(1),
            inlet,
            waiters: Mutex::new(HashMap::new()),
            status: Mutex::new(serde_json::json!({})),
            positions: Mutex::new(serde_json::json!({"positions": [], "orders": []})),
            records: tokio::sync::broadcast::channel(4096).0,
            metrics: Metrics::new(),
        }
    }

    /// Sends `command` into the session; the receiver gets its decision record once journaled.
    /// Errors when the session is shutting down.
    pub fn submit(
        &self,
        command: Command,
        source: &str,
    ) -> Result<oneshot::Receiver<Record>, String> {
        let id = format!(
            "{}cmd-{}",
            self.prefix,
            self.next_id.fetch_add(1, Ordering::SeqCst)
        );
        let (tx, rx) = oneshot::channel();
        self.waiters
            .lock()
            .expect("not poisoned")
            .insert(id.clone(), tx);
        let ev = CommandEvent {
            id: id.clone(),
            source: source.to_string(),
            command,
        };
        self.inlet.send(ev).map_err(|_| {
            self.waiters.lock().expect("not poisoned").remove(&id);
            "the session is shutting down".to_string()
        })?;
        Ok(rx)
    }

    /// Decision records from now on (a slow listener loses the oldest, and is told so by the
    /// channel).
    pub fn subscribe_records(&self) -> tokio::sync::broadcast::Receiver<Record> {
        self.records.subscribe()
    }

    /// Called by the journal for every decision record (`r` is its stored form): metrics,
    /// listeners.
    pub fn on_record(&self, d: &Decision, r: &Record) {
        if self.records.receiver_count() > 0 {
            let _ = self.records.send(r.clone());
        }
        let kind = vec![("kind".to_string(), d.kind().as_str().to_string())];
        self.metrics.records.get_or_create(&kind).inc();
        for code in d.refusal_codes() {
            let l = vec![("code".to_string(), code.code())];
            self.metrics.refusals.get_or_create(&l).inc();
        }
    }

    /// Answers the API request that sent this command record's command (after it is durable).
    pub fn answer(&self, r: &Record) {
        if let Some(tx) = self.waiters.lock().expect("not poisoned").remove(&r.id) {
            let _ = tx.send(r.clone());
        }
    }

    pub fn set_status(&self, v: serde_json::Value) {
        *self.status.lock().expect("not poisoned") = v;
    }
    pub fn status(&self) -> serde_json::Value {
        self.status.lock().expect("not poisoned").clone()
    }
    pub fn set_positions(&self, v: serde_json::Value) {
        *self.positions.lock().expect("not poisoned") = v;
    }
    pub fn positions(&self) -> serde_json::Value {
        self.positions.lock().expect("not poisoned").clone()
    }
}
