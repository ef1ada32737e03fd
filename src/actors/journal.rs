//! Journal actor: the end of the pipeline. Buffers decision records and commits them to the store
//! in batches (one durable transaction per flush), with the broker's state, so a crash loses at
//! most the unflushed tail and never leaves records without the state they came from.

use super::BatchMsg;
use crate::actors::run::{JournalCounters, RunControl};
use crate::control::hub::ControlHub;
use crate::decision::{Decision, Detail};
use crate::store::{Record, RecordKind, Store, META_EXECUTOR, META_RISK};
use actix::prelude::*;
use indicatif::ProgressBar;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A saved order manager of any venue, read for status (of the venue's own state, only why a
/// live venue blocks entries).
type SavedBroker = crate::execution::oms::OrderManager<VenueSummary>;

#[derive(serde::Deserialize)]
struct VenueSummary {
    #[serde(default)]
    blocked: Option<String>,
}

/// Live status: feed counters and latency, printed and stored every `every`.
pub struct StatusReporter {
    pub feeds: Vec<(String, Arc<crate::feeds::ws::FeedCounters>)>,
    pub latency: Arc<Mutex<hdrhistogram::Histogram<u64>>>,
    pub every: Duration,
    pub print: bool,
    pub quote: String,
}

/// What `smartflow status` shows, stored under `meta/status` by a paper session.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct LiveStatus {
    pub updated_ms: i64,
    pub feeds: Vec<crate::feeds::ws::FeedCountersView>,
    pub open_positions: Vec<(String, String, String)>,
    pub equity: String,
    pub quote: String,
    pub signals: u64,
    pub orders: u64,
    pub fills: u64,
    pub refused: u64,
    pub latency_samples: u64,
    pub latency_p50_us: u64,
    pub latency_p99_us: u64,
    pub latency_max_us: u64,
}

/// A durable write for the writer thread; `ack` answers once it is committed.
struct WriteJob {
    records: Vec<Record>,
    meta: Vec<(&'static str, Vec<u8>)>,
    ack: Option<std::sync::mpsc::Sender<()>>,
}

/// Commits on its own thread, so fsyncs never stall the actors (and live latency).
fn spawn_writer(
    store: Arc<Store>,
    control: Arc<RunControl>,
) -> (
    std::sync::mpsc::Sender<WriteJob>,
    std::thread::JoinHandle<()>,
) {
    let (tx, rx) = std::sync::mpsc::channel::<WriteJob>();
    let h = std::thread::Builder::new()
        .name("smartflow-journal".into())
        .spawn(move || {
            for job in rx {
                let meta: Vec<(&str, Vec<u8>)> = job.meta.into_iter().collect();
                if let Err(e) = store.append(&job.records, &meta) {
                    control.fail(format!(
                        "journal write to {} failed: {e:#}",
                        store.path().display()
                    ));
                }
                if let Some(a) = job.ack {
                    let _ = a.send(());
                }
            }
        })
        .expect("journal writer thread starts");
    (tx, h)
}

pub struct JournalActor {
    /// `None` once the stream ended and the writer thread was joined (the store is then closed
    /// by this run, so the caller can reopen it at once).
    writer: Option<(
        std::sync::mpsc::Sender<WriteJob>,
        std::thread::JoinHandle<()>,
    )>,
    buf: Vec<Record>,
    executor_state: Option<Vec<u8>>,
    risk_state: Option<Vec<u8>>,
    flush_records: usize,
    /// Records already in the store from an interrupted run (resume): skip this many.
    skip_records: u64,
    counters: JournalCounters,
    control: Arc<RunControl>,
    progress: ProgressBar,
    status: Option<StatusReporter>,
    last_state: Option<Vec<u8>>,
    last_risk: Option<Vec<u8>>,
    /// Live sessions: the control API's view of the session.
    hub: Option<Arc<ControlHub>>,
}

impl JournalActor {
    pub fn new(
        store: Arc<Store>,
        flush_records: usize,
        skip_records: u64,
        control: Arc<RunControl>,
        progress: ProgressBar,
    ) -> Self {
        let writer = Some(spawn_writer(store, control.clone()));
        Self {
            writer,
            buf: Vec::new(),
            executor_state: None,
            risk_state: None,
            flush_records,
            skip_records,
            counters: JournalCounters::default(),
            control,
            progress,
            status: None,
            last_state: None,
            last_risk: None,
            hub: None,
        }
    }

    /// Keeps the control API's status, positions and metrics current.
    pub fn with_hub(mut self, hub: Arc<ControlHub>) -> Self {
        self.hub = Some(hub);
        self
    }

    /// Starts from the state a restarted session resumed (status before the first change).
    pub fn with_resumed(mut self, broker: Option<Vec<u8>>, risk: Option<Vec<u8>>) -> Self {
        self.last_state = broker;
        self.last_risk = risk;
        self
    }

    /// Publishes positions, orders, trading state and limits to the control API.
    fn publish(&self) {
        let Some(hub) = &self.hub else {
            return;
        };
        let broker = self
            .last_state
            .as_ref()
            .and_then(|j| serde_json::from_slice::<SavedBroker>(j).ok());
        let risk = self
            .last_risk
            .as_ref()
            .and_then(|j| serde_json::from_slice::<crate::risk::RiskManager>(j).ok());
        let m = &hub.metrics;
        let live = self.live_status();
        if let Some(l) = &live {
            m.latency_p99_us.set(l.latency_p99_us as i64);
        }
        let mut status = serde_json::to_value(live).unwrap_or_default();
        if let Some(rm) = &risk {
            m.trading_state.set(rm.state() as i64);
            status["trading_state"] = serde_json::json!(rm.state());
            status["limits"] = serde_json::to_value(&rm.cfg).unwrap_or_default();
            status["limits_changed"] = serde_json::json!(rm.overrides());
        }
        status["counters"] = serde_json::to_value(&self.counters).unwrap_or_default();
        if let Some(b) = &broker {
            let pf = &b.portfolio;
            m.equity.set(pf.equity().try_into().unwrap_or(f64::NAN));
            m.open_positions.set(pf.open_positions() as i64);
            status["halted_orders"] = serde_json::json!(b.halted());
            if let Some(why) = &b.venue().blocked {
                status["entries_blocked"] = serde_json::json!(why);
            }
            hub.set_positions(serde_json::json!({
                "quote": pf.quote,
                "cash": pf.cash,
                "equity": pf.equity(),
                "realized_pnl": pf.realized_pnl,
                "unrealized_pnl": pf.unrealized_pnl(),
                "positions": pf.positions.iter().map(|(i, p)| serde_json::json!({
                    "instrument": i,
                    "qty": p.qty,
                    "avg_entry_price": p.avg_entry_price,
                    "notional": p.notional(),
                })).collect::<Vec<_>>(),
                "perps": pf.perps.values().map(|p| serde_json::json!({
                    "instrument": p.instrument,
                    "qty": p.qty,
                    "entry_price": p.entry_price,
                    "mark_price": p.mark_price,
                    "leverage": p.leverage,
                    "margin_used": p.margin_used(),
                    "unrealized_pnl": p.unrealized_pnl(),
                    "funding": p.funding,
                })).collect::<Vec<_>>(),
                "margin_used": pf.margin_used(),
                "orders": b.live_orders().collect::<Vec<_>>(),
            }));
        }
        hub.set_status(status);
    }

    pub fn with_status(mut self, s: StatusReporter) -> Self {
        self.status = Some(s);
        self
    }

    /// The live status from the counters, the latency histogram and the broker's last state.
    pub fn live_status(&self) -> Option<LiveStatus> {
        let st = self.status.as_ref()?;
        let h = st.latency.lock().expect("not poisoned").clone();
        let (mut positions, mut equity) = (Vec::new(), String::from("-"));
        if let Some(b) = self
            .last_state
            .as_ref()
            .and_then(|j| serde_json::from_slice::<SavedBroker>(j).ok())
        {
            equity = b.portfolio.equity().round_dp(4).to_string();
            for h in b.portfolio.holdings() {
                let (qty, entry) = (h.qty.to_string(), h.entry_price.to_string());
                positions.push((h.instrument.to_string(), qty, entry));
            }
        }
        Some(LiveStatus {
            updated_ms: crate::feeds::ws::now_ms(),
            feeds: st.feeds.iter().map(|(v, c)| c.view(v)).collect(),
            open_positions: positions,
            equity,
            quote: st.quote.clone(),
            signals: self.counters.signals,
            orders: self.counters.orders,
            fills: self.counters.fills,
            refused: self.counters.refused,
            latency_samples: h.len(),
            latency_p50_us: h.value_at_quantile(0.5),
            latency_p99_us: h.value_at_quantile(0.99),
            latency_max_us: h.max(),
        })
    }

    fn report(&mut self) {
        self.publish();
        let Some(s) = self.live_status() else {
            return;
        };
        if self.status.as_ref().is_some_and(|r| r.print) {
            eprintln!("{}", status_line(&s));
        }
        if let Ok(j) = serde_json::to_vec(&s) {
            let job = WriteJob {
                records: Vec::new(),
                meta: vec![(crate::store::META_STATUS, j)],
                ack: None,
            };
            if let Some((w, _)) = &self.writer {
                let _ = w.send(job);
            }
        }
    }

    fn flush(&mut self) {
        self.write(false);
    }

    /// Hands the buffer to the writer thread; `wait`: until it is committed.
    fn write(&mut self, wait: bool) {
        if self.buf.is_empty()
            && self.executor_state.is_none()
            && self.risk_state.is_none()
            && !wait
        {
            return;
        }
        let mut meta = Vec::new();
        if let Some(s) = self.executor_state.take() {
            meta.push((META_EXECUTOR, s));
        }
        if let Some(s) = self.risk_state.take() {
            meta.push((META_RISK, s));
        }
        let (ack, done) = if wait {
            let (a, d) = std::sync::mpsc::channel();
            (Some(a), Some(d))
        } else {
            (None, None)
        };
        let job = WriteJob {
            records: std::mem::take(&mut self.buf),
            meta,
            ack,
        };
        let Some((w, _)) = &self.writer else {
            return; // closed: the stream has ended
        };
        if w.send(job).is_err() {
            self.control
                .fail("the journal writer thread is gone".into());
        }
        if let Some(d) = done {
            let _ = d.recv();
        }
    }

    /// Commits what is left, stops the writer thread and waits for it.
    fn close(&mut self) {
        self.write(true);
        if let Some((w, h)) = self.writer.take() {
            drop(w);
            let _ = h.join();
        }
    }

    fn count(&mut self, d: &Decision) {
        let c = &mut self.counters;
        match &d.detail {
            Detail::Signal(_) => c.signals += 1,
            Detail::Skip(_) => c.skipped_signals += 1,
            Detail::Intent(_) => c.intents += 1,
            Detail::Verdict(_) if d.refused => {
                c.refused += 1;
                for code in d.refusal_codes() {
                    *c.refusals_by_reason.entry(code.code()).or_default() += 1;
                }
            }
            Detail::Verdict(_) => c.approved += 1,
            Detail::Order(o) if o.event == "new" => c.orders += 1,
            Detail::Order(_) => {}
            Detail::Fill(_) => c.fills += 1,
            Detail::Exit(_) => c.exits += 1,
            Detail::Command(_) => c.commands += 1,
        }
        c.records += 1;
    }
}

impl Actor for JournalActor {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        self.publish();
        // Wall-clock flushes only decide *when* records land, never what they say.
        ctx.run_interval(Duration::from_millis(250), |a, _| a.flush());
        if let Some(every) = self.status.as_ref().map(|s| s.every) {
            if !every.is_zero() {
                ctx.run_interval(every, |a, _| a.report());
            }
        }
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
        let mut changed = false;
        if b.executor_state.is_some() {
            self.executor_state = b.executor_state.take();
            self.last_state.clone_from(&self.executor_state);
            changed = true;
        }
        if b.risk_state.is_some() {
            self.risk_state = b.risk_state.take();
            self.last_risk.clone_from(&self.risk_state);
            changed = true;
        }
        if let Some(h) = &self.hub {
            h.metrics.events.inc_by(b.events.len() as u64);
        }
        // A command is answered once its record is durable, with the status after it.
        let had_records = !b.records.is_empty();
        let mut commands = Vec::new();
        for (_, d) in b.records.drain(..) {
            self.count(&d);
            let r = d.to_record();
            if let Some(h) = &self.hub {
                h.on_record(&d, &r);
                if d.kind() == RecordKind::Command {
                    commands.push(r.clone());
                }
            }
            if self.skip_records > 0 {
                self.skip_records -= 1;
                continue;
            }
            self.buf.push(r);
        }
        if !commands.is_empty() {
            self.write(true);
        }
        // Parsing the state for the API is not free: at once when decisions were made, else at
        // the next status tick (the periodic broker save only refreshes marks).
        if changed && had_records {
            self.publish();
        }
        if let Some(h) = &self.hub {
            commands.iter().for_each(|r| h.answer(r));
        }
        if self.buf.len() >= self.flush_records {
            self.flush();
        }
        if b.last {
            self.report();
            self.close();
            self.control
                .finish(self.counters.clone(), b.final_portfolio.take());
        }
    }
}

/// One status line: feeds, positions, equity, decisions, latency.
pub fn status_line(s: &LiveStatus) -> String {
    let feeds: Vec<String> = s
        .feeds
        .iter()
        .map(|f| {
            let mut line = format!(
                "{} {} {} frames, {} reconnects, {} malformed, {} gaps, {} stalls",
                f.venue,
                if f.connected { "up" } else { "DOWN" },
                f.frames,
                f.reconnects,
                f.malformed,
                f.gaps,
                f.stalls
            );
            if f.quarantined > 0 {
                line += &format!(", {} quarantined (bad time)", f.quarantined);
            }
            line
        })
        .collect();
    format!(
        "[status] {} | positions {} | equity {} {} | signals {} orders {} fills {} refused {} | decode→detector p50 {} µs p99 {} µs (n={})",
        feeds.join(" | "),
        s.open_positions.len(),
        s.equity,
        s.quote,
        s.signals,
        s.orders,
        s.fills,
        s.refused,
        s.latency_p50_us,
        s.latency_p99_us,
        s.latency_samples
    )
}

/// Flushes the journal and returns the final live status (paper sessions).
pub struct Finish;
impl Message for Finish {
    type Result = Option<LiveStatus>;
}

impl Handler<Finish> for JournalActor {
    type Result = MessageResult<Finish>;
    fn handle(&mut self, _: Finish, _: &mut Context<Self>) -> Self::Result {
        self.report();
        self.close();
        MessageResult(self.live_status())
    }
}
