//! `smartflow replay`: recorded trades → supervised actors → paper trades and a decision log.

use crate::actors::builder::{start_stages, Core, Wiring};
use crate::actors::feed::{Chunk, FeedActor, Input};
use crate::actors::journal::JournalActor;
use crate::config::Config;
use crate::domain::command::CommandEvent;
use crate::domain::MarketEvent;
use crate::execution::{PaperBroker, Portfolio};
use crate::feeds::merge::{MergeStats, MergedStream};
use crate::feeds::tape::{starts_like_tape, TapeItem, TapeReader};
use crate::feeds::{expand_paths, open_reader, source_from_reader, Malformed};
use crate::pipeline::Fault;
use crate::risk::RiskManager;
use crate::store::fingerprint::Fingerprint;
use crate::store::{Store, META_FINGERPRINT, META_RUN, META_SUMMARY};
use crate::strategies::signal::{SignalSource, Strategy};
use crate::strategies::sources::{self, Strategies};
use actix::prelude::*;
use anyhow::{bail, ensure, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

pub use crate::actors::run::{JournalCounters, Outcome, RunControl};

/// Options of one replay.
pub struct ReplayOptions {
    pub data: Vec<String>,
    pub config: Config,
    pub state_dir: PathBuf,
    pub fault: Fault,
    /// Continue an interrupted run in `state_dir`: the deterministic pipeline re-derives the
    /// prefix and the journal skips the records it already holds.
    pub resume: bool,
    pub progress: bool,
}

/// The replay's summary (also written as `replay-summary.json` / `.md` in the state folder).
#[derive(Clone, Debug, Serialize)]
pub struct ReplaySummary {
    pub files: usize,
    pub events: u64,
    /// Trades among the events (the rest: book tops and feed statuses from recordings).
    pub trades: u64,
    pub wall_secs: f64,
    pub events_per_sec: f64,
    pub malformed_lines: u64,
    pub malformed_examples: Vec<Malformed>,
    pub duplicates_dropped: u64,
    pub out_of_order: u64,
    pub signals: u64,
    pub signals_skipped_by_strategy: u64,
    pub intents: u64,
    pub approved: u64,
    pub refused: u64,
    pub refusals_by_reason: BTreeMap<String, u64>,
    pub orders: u64,
    pub fills: u64,
    pub round_trips: u64,
    pub wins: u64,
    /// Winning round trips / round trips; null without round trips.
    pub win_rate: Option<f64>,
    pub quote: String,
    pub starting_balance: Decimal,
    pub final_equity: Decimal,
    /// Final equity − starting balance (realized + unrealized, after all fees).
    pub pnl_after_fees: Decimal,
    pub realized_pnl: Decimal,
    pub unrealized_pnl: Decimal,
    pub fees: Decimal,
    pub max_drawdown_pct: Decimal,
    pub open_positions: usize,
    pub restarts: BTreeMap<String, u64>,
    pub records: u64,
    pub state: String,
}

impl ReplaySummary {
    pub fn to_markdown(&self) -> String {
        let mut s = String::from("# smartflow replay summary\n\n| metric | value |\n|---|---|\n");
        let mut row = |k: &str, v: String| s.push_str(&format!("| {k} | {v} |\n"));
        row("files", self.files.to_string());
        row("events", self.events.to_string());
        row("wall time", format!("{:.2} s", self.wall_secs));
        row("events/s", format!("{:.0}", self.events_per_sec));
        row("malformed lines", self.malformed_lines.to_string());
        row("duplicates dropped", self.duplicates_dropped.to_string());
        row("signals", self.signals.to_string());
        row(
            "signals skipped by strategy",
            self.signals_skipped_by_strategy.to_string(),
        );
        row("intents", self.intents.to_string());
        row(
            "approved / refused",
            format!("{} / {}", self.approved, self.refused),
        );
        row("orders", self.orders.to_string());
        row("fills", self.fills.to_string());
        row(
            "round trips (wins)",
            format!("{} ({})", self.round_trips, self.wins),
        );
        row(
            "win rate",
            self.win_rate
                .map(|w| format!("{:.1} %", w * 100.0))
                .unwrap_or_else(|| "n/a".into()),
        );
        row(
            "PnL after fees",
            format!("{} {}", self.pnl_after_fees, self.quote),
        );
        row("fees", format!("{} {}", self.fees, self.quote));
        row("max drawdown", format!("{} %", self.max_drawdown_pct));
        row(
            "final equity",
            format!("{} {}", self.final_equity, self.quote),
        );
        row("open positions", self.open_positions.to_string());
        for (k, v) in &self.refusals_by_reason {
            row(&format!("refused: {k}"), v.to_string());
        }
        for (k, v) in &self.restarts {
            if *v > 0 {
                row(&format!("restarts: {k}"), v.to_string());
            }
        }
        s
    }
}

/// Runs a replay to completion.
pub fn run_replay(opts: ReplayOptions) -> Result<ReplaySummary> {
    let cfg = opts.config.clone();
    let (input, start, detector, print) = prepare(&opts)?;
    let initial = leaderboard_command(&cfg, &input, &start.id_prefix)?;
    let (store, skip_records) = open_run_store(&opts.state_dir, opts.resume, &print)?;
    let progress = progress_bar(opts.progress);

    let started = Instant::now();
    let batch_size = cfg.replay.batch_size;
    let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(4);
    let reader = std::thread::Builder::new()
        .name("smartflow-reader".into())
        .spawn(move || input.read(batch_size, initial, tx))
        .context("cannot start the reader thread")?;

    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let control = Arc::new(RunControl::new(done_tx));
    let core = Core {
        features: cfg.features.clone(),
        detector,
        strategy: start.strat,
        risk: start.rm,
        broker: start.broker,
    };
    let (journal_store, pb, ctl) = (store.clone(), progress.clone(), control.clone());
    let system = System::new();
    let detector_thread = Arbiter::new();
    let wiring = Wiring {
        fault: opts.fault.clone(),
        control: control.clone(),
        signal_arbiter: Some(detector_thread.handle()),
        latency: None,
    };
    let stop_detector = detector_thread.handle();
    let outcome: Outcome = system.block_on(async move {
        let journal = JournalActor::new(
            journal_store,
            cfg.replay.journal_flush_records,
            skip_records,
            ctl,
            pb,
        )
        .start();
        let stages = start_stages(core, wiring, journal.clone().recipient());
        let _feed = FeedActor::new(rx, stages.head.clone(), cfg.replay.max_in_flight).start();
        let out = done_rx
            .await
            .unwrap_or_else(|_| Err("pipeline ended without a result".into()));
        drop((stages, journal));
        out
    });
    stop_detector.stop();
    let _ = detector_thread.join();
    progress.finish_and_clear();
    let (counters, portfolio) = match outcome {
        Ok(x) => x,
        Err(e) => bail!("replay failed: {e}"),
    };
    let stats = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the reader thread panicked"))??;
    let portfolio = portfolio.context("the executor reported no final state")?;
    let summary = summarize(
        &stats,
        &counters,
        &portfolio,
        started,
        &control,
        &opts.state_dir,
    );
    write_summary(&store, &opts.state_dir, &summary)?;
    Ok(summary)
}

/// Opens the inputs and loads the signal sources (the model) while another thread fingerprints
/// the data files (both read files: ~0.1 s of a 3 s replay of the dev set, in parallel).
fn prepare(opts: &ReplayOptions) -> Result<(ReplayInput, Start, sources::Sources, Fingerprint)> {
    let cfg = &opts.config;
    let paths = expand_paths(&opts.data)?;
    std::thread::scope(|s| {
        let data = s.spawn(|| Fingerprint::data_of(&paths));
        let input = open_input(&paths)?;
        let start = input.start(cfg)?;
        let detector = sources::sources(cfg, &start.id_prefix)?;
        (opts.fault)
            .check_stages(detector.uses_snapshots())
            .map_err(anyhow::Error::msg)?;
        let data = data
            .join()
            .map_err(|_| anyhow::anyhow!("the data fingerprint thread panicked"))??;
        let print = Fingerprint::with_data(cfg, data, detector.model_id())?;
        Ok((input, start, detector, print))
    })
}

/// Opens the run's store: cleared for a fresh run; for `--resume`, checked against the
/// interrupted run's inputs. Returns the store and the records it already holds.
fn open_run_store(dir: &Path, resume: bool, print: &Fingerprint) -> Result<(Arc<Store>, u64)> {
    let store = Arc::new(Store::open(dir)?);
    let skip = if resume {
        match store.meta(META_RUN)?.as_deref() {
            Some(b"running") => {
                let stored = store
                    .meta(META_FINGERPRINT)?
                    .and_then(|b| serde_json::from_slice::<Fingerprint>(&b).ok());
                match stored.map(|s| print.differs_from(&s)) {
                    Some(None) => store.len()?,
                    Some(Some(why)) => bail!(
                        "cannot resume the run in {}: {why}; run without --resume to start over",
                        dir.display()
                    ),
                    None => bail!(
                        "cannot resume the run in {}: it recorded no fingerprint of its inputs",
                        dir.display()
                    ),
                }
            }
            Some(_) => bail!(
                "nothing to resume in {}: the last run completed",
                dir.display()
            ),
            None => bail!("nothing to resume in {}: no run recorded", dir.display()),
        }
    } else {
        store.clear()?;
        0
    };
    store.append(
        &[],
        &[
            (META_RUN, b"running".to_vec()),
            (META_FINGERPRINT, serde_json::to_vec(print)?),
        ],
    )?;
    Ok((store, skip))
}

fn progress_bar(show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    pb.set_style(
        ProgressStyle::with_template("{spinner} {human_pos} events  {per_sec}  {elapsed}  {msg}")
            .expect("valid template"),
    );
    pb
}

fn summarize(
    stats: &MergeStats,
    counters: &JournalCounters,
    pf: &Portfolio,
    started: Instant,
    control: &RunControl,
    state_dir: &Path,
) -> ReplaySummary {
    let wall = started.elapsed().as_secs_f64();
    let final_equity = pf.equity();
    ReplaySummary {
        files: stats.files,
        events: counters.events,
        trades: stats.trades_emitted,
        wall_secs: wall,
        events_per_sec: counters.events as f64 / wall.max(1e-9),
        malformed_lines: stats.malformed,
        malformed_examples: stats.malformed_details.iter().take(10).cloned().collect(),
        duplicates_dropped: stats.duplicates_dropped,
        out_of_order: stats.out_of_order,
        signals: counters.signals,
        signals_skipped_by_strategy: counters.skipped_signals,
        intents: counters.intents,
        approved: counters.approved,
        refused: counters.refused,
        refusals_by_reason: counters.refusals_by_reason.clone(),
        orders: counters.orders,
        fills: counters.fills,
        round_trips: pf.round_trips,
        wins: pf.wins,
        win_rate: (pf.round_trips > 0).then(|| pf.wins as f64 / pf.round_trips as f64),
        quote: pf.quote.clone(),
        starting_balance: pf.starting_balance,
        final_equity,
        pnl_after_fees: final_equity - pf.starting_balance,
        realized_pnl: pf.realized_pnl,
        unrealized_pnl: pf.unrealized_pnl(),
        fees: pf.fees,
        max_drawdown_pct: (pf.max_drawdown * Decimal::ONE_HUNDRED).round_dp(4),
        open_positions: pf.open_positions(),
        restarts: control.restarts(),
        records: counters.records,
        state: state_dir.display().to_string(),
    }
}

/// Stores the summary (run complete) and writes `replay-summary.{json,md}`.
fn write_summary(store: &Store, dir: &Path, summary: &ReplaySummary) -> Result<()> {
    let json = serde_json::to_vec_pretty(summary)?;
    store.append(
        &[],
        &[
            (META_SUMMARY, json.clone()),
            (META_RUN, b"complete".to_vec()),
        ],
    )?;
    std::fs::write(dir.join("replay-summary.json"), &json)?;
    std::fs::write(dir.join("replay-summary.md"), summary.to_markdown())?;
    Ok(())
}

/// What a replay reads: recorded market data (merged in event time), or a `paper` session's
/// tape (its exact input, commands included, replayed in its own order).
/// With `[whales] leaderboard` (a file), a replay of data files follows the wallets it picks
/// from the start (at event time 0, so the pick does not depend on when the replay runs); a
/// tape carries its session's own `track_wallets` commands.
fn leaderboard_command(
    cfg: &Config,
    input: &ReplayInput,
    id_prefix: &str,
) -> Result<Option<CommandEvent>> {
    let (Some(src), true, ReplayInput::Merged(_)) =
        (&cfg.whales.leaderboard, cfg.whales.enabled, input)
    else {
        return Ok(None);
    };
    let (wallets, summary) =
        crate::wallets::select::pick_wallets(src, &cfg.wallets, 0).context("whales.leaderboard")?;
    tracing::info!("{summary}");
    Ok(Some(CommandEvent {
        id: format!("{id_prefix}cmd-leaderboard"),
        source: "leaderboard".into(),
        command: crate::domain::command::Command::TrackWallets { wallets },
    }))
}

enum ReplayInput {
    Merged(Vec<Box<dyn crate::feeds::TradeSource>>),
    Tape(Box<TapeReader>),
}

fn open_input(paths: &[PathBuf]) -> Result<ReplayInput> {
    let mut sources = Vec::with_capacity(paths.len());
    for p in paths {
        let mut reader = open_reader(p)?;
        let name = p.display().to_string();
        if starts_like_tape(&mut *reader)? {
            ensure!(
                paths.len() == 1,
                "{name} is a paper session tape: replay it on its own (--data {name})"
            );
            return Ok(ReplayInput::Tape(Box::new(TapeReader::from_reader(
                reader, name,
            )?)));
        }
        sources.push(source_from_reader(reader, name)?);
    }
    Ok(ReplayInput::Merged(sources))
}

/// The state a replay starts from: fresh, or a tape's resumed session.
struct Start {
    id_prefix: String,
    broker: PaperBroker,
    rm: RiskManager,
    strat: Strategies,
}

impl ReplayInput {
    fn start(&self, cfg: &Config) -> Result<Start> {
        let h = match self {
            ReplayInput::Tape(t) => Some(&t.header),
            ReplayInput::Merged(_) => None,
        };
        let broker = match h.and_then(|h| h.broker.clone()) {
            Some(b) => serde_json::from_value(b).context("the tape's broker state")?,
            None => PaperBroker::new(cfg.execution.clone(), &cfg.portfolio),
        };
        // A tape carries the specs its session traded with; else the config's.
        let specs = h
            .map(|h| h.specs.clone())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| cfg.instruments.clone());
        let broker = broker.with_specs(&specs);
        let mut rm = match h.and_then(|h| h.risk.as_ref()) {
            Some(r) => RiskManager::restored(r.to_string().as_bytes(), cfg.risk.clone())
                .map_err(anyhow::Error::msg)?,
            None => RiskManager::with_equivalents(
                cfg.risk.clone(),
                &cfg.portfolio.quote,
                &cfg.portfolio.quote_equivalents,
                cfg.portfolio.starting_balance,
            ),
        };
        let id_prefix = h.map(|h| h.id_prefix.clone()).unwrap_or_default();
        let mut strat = sources::strategies(cfg, &id_prefix);
        rm.id_prefix.clone_from(&id_prefix);
        if h.is_some() {
            // As the paper session did at its start.
            let view = broker.view(0);
            rm.on_feedback(&view);
            strat.on_feedback(&view);
        }
        Ok(Start {
            id_prefix,
            broker,
            rm,
            strat,
        })
    }

    /// Reader thread: sends chunks of at most `batch_size` events, commands on their own
    /// (`initial` first).
    fn read(
        self,
        batch_size: usize,
        initial: Option<CommandEvent>,
        tx: tokio::sync::mpsc::Sender<Chunk>,
    ) -> Result<MergeStats> {
        let send = |c: Input| tx.blocking_send(Some(c)).is_ok();
        if let Some(c) = initial {
            send(Input::Command(c));
        }
        let stats = match self {
            ReplayInput::Merged(sources) => {
                let mut merged = MergedStream::new(sources);
                loop {
                    let chunk: Vec<MarketEvent> = merged.by_ref().take(batch_size).collect();
                    let end = chunk.len() < batch_size;
                    if (!chunk.is_empty() && !send(Input::Events(chunk))) || end {
                        break;
                    }
                }
                merged.stats
            }
            ReplayInput::Tape(mut t) => {
                let mut stats = MergeStats {
                    files: 1,
                    ..Default::default()
                };
                let mut chunk = Vec::with_capacity(batch_size);
                while let Some(item) = t.next_item()? {
                    match item {
                        TapeItem::Event(e) => {
                            match &e {
                                MarketEvent::Trade(_) => stats.trades_emitted += 1,
                                _ => stats.other_events += 1,
                            }
                            chunk.push(e);
                            if chunk.len() == batch_size
                                && !send(Input::Events(std::mem::take(&mut chunk)))
                            {
                                return Ok(stats);
                            }
                        }
                        TapeItem::Command(c) => {
                            if !chunk.is_empty() && !send(Input::Events(std::mem::take(&mut chunk)))
                            {
                                return Ok(stats);
                            }
                            if !send(Input::Command(c)) {
                                return Ok(stats);
                            }
                        }
                    }
                }
                if !chunk.is_empty() {
                    send(Input::Events(chunk));
                }
                stats.trades_read = stats.trades_emitted;
                stats
            }
        };
        let _ = tx.blocking_send(None);
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each file is opened once: a tape is recognised from the reader that then reads it, and
    /// refused next to other files.
    #[test]
    fn a_tape_is_replayed_alone() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("a.csv");
        std::fs::write(
            &csv,
            "symbol,timestamp,datetime,side,price,amount,btc_volume\n\
             ADX/BTC,1561741296383,2019-06-28T17:01:36.383Z,sell,1.173e-05,1670.0,0.0195\n",
        )
        .unwrap();
        let tape = dir.path().join("b.jsonl");
        std::fs::write(&tape, "{\"smartflow_tape\":1}\n").unwrap();
        let err = open_input(&[csv.clone(), tape.clone()]).err().unwrap();
        assert!(
            err.to_string().contains("b.jsonl is a paper session tape"),
            "{err}"
        );
        // Alone, it is read as a tape (this one's header lacks fields: the tape reader says so).
        let err = open_input(std::slice::from_ref(&tape)).err().unwrap();
        assert!(err.to_string().contains("bad tape header"), "{err:#}");
        assert!(matches!(open_input(&[csv]), Ok(ReplayInput::Merged(s)) if s.len() == 1));
    }
}
