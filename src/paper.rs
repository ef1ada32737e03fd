//! `smartflow paper`: live public market data → the replay's pipeline → paper broker → decision
//! log, under supervision, until Ctrl-C (or `--duration`). A restart resumes the open paper
//! positions and orders from the store.

use crate::actors::feed::{Chunk, FeedActor, Input, LiveFeedActor};
use crate::actors::journal::{JournalActor, LiveStatus, StatusReporter};
use crate::actors::run::RunControl;
use crate::actors::stage::StageActor;
use crate::actors::Wire;
use crate::config::Config;
use crate::control::hub::ControlHub;
use crate::control::CommandEvent;
use crate::domain::MarketEvent;
use crate::execution::PaperBroker;
use crate::feeds::rest::RestClient;
use crate::feeds::tape::{TapeHeader, TapeWriter};
use crate::feeds::venues::{codec, Venue};
use crate::feeds::ws::{FeedBatch, FeedCounters, RawFrame, WsFeed};
use crate::pipeline::{DetectorStage, ExecStage, Fault, FeatureStage, RiskStage, StrategyStage};
use crate::risk::RiskManager;
use crate::store::{Store, META_EXECUTOR, META_RISK, META_SESSION, META_STATUS, PAPER_STORE};
use crate::strategies::ensemble_detector::DetectorKind;
use crate::strategies::prepump::PrePumpStrategy;
use actix::prelude::*;
use anyhow::{bail, Context as _, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

pub struct PaperOptions {
    pub config: Config,
    pub state_dir: PathBuf,
    /// Stop after this long (default: run until Ctrl-C).
    pub duration: Option<Duration>,
    /// Print status lines on stderr.
    pub print_status: bool,
    pub fault: Fault,
    /// Write the session's input (events and commands, in pipeline order) to this tape, for
    /// `smartflow replay --data TAPE`.
    pub tape: Option<PathBuf>,
}

/// What a session did (also in the store: `smartflow status`).
#[derive(Clone, Debug, Serialize)]
pub struct PaperReport {
    pub session: u64,
    pub resumed_positions: usize,
    pub resumed_orders: usize,
    pub instruments: BTreeMap<String, Vec<String>>,
    pub status: Option<LiveStatus>,
    pub feed_restarts: BTreeMap<String, u64>,
    pub stage_restarts: BTreeMap<String, u64>,
}

/// Instruments of a venue: the configured list plus, with a universe rule, the venue's pairs.
pub async fn instruments_of(
    venue: Venue,
    cfg: &crate::feeds::config::VenueFeedConfig,
) -> Result<Vec<String>> {
    let mut v = cfg.instruments.clone();
    if cfg.uses_universe() {
        let rest = RestClient::new(&cfg.rest_url, cfg.rest_per_second);
        let found = crate::feeds::universe::fetch(venue, &rest, cfg)
            .await
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("universe of {}", venue.name()))?;
        v.extend(found);
    }
    v.sort();
    v.dedup();
    if v.is_empty() {
        bail!(
            "feeds.{}: no instruments (the universe rule matched none)",
            venue.name()
        );
    }
    Ok(v)
}

/// Venue → resolved pairs (configured plus universe), and the same keyed by venue name.
pub type VenuePairs = (BTreeMap<Venue, Vec<String>>, BTreeMap<String, Vec<String>>);

/// Resolves the pairs of every enabled venue.
pub async fn resolve_venues(cfg: &Config) -> Result<VenuePairs> {
    let mut venues = BTreeMap::new();
    for (v, vc) in cfg.feeds.venues() {
        venues.insert(v, instruments_of(v, vc).await?);
    }
    let names = venues
        .iter()
        .map(|(v, p)| (v.name().to_string(), p.clone()))
        .collect();
    Ok((venues, names))
}

/// Started feeds: their counters, supervised actors and restart counters, by venue.
pub type Feeds = (
    Vec<(String, Arc<FeedCounters>)>,
    Vec<Addr<LiveFeedActor>>,
    BTreeMap<String, Arc<AtomicU64>>,
);

type SessionOut = (
    Option<LiveStatus>,
    BTreeMap<String, Vec<String>>,
    BTreeMap<String, u64>,
);

/// Starts the venue feeds: events go to `tx`, raw frames to `raw` (recording).
pub fn start_feeds(
    cfg: &Config,
    venues: &BTreeMap<Venue, Vec<String>>,
    tx: mpsc::Sender<FeedBatch>,
    raw: Option<mpsc::UnboundedSender<RawFrame>>,
    shutdown: watch::Receiver<bool>,
    fault: &Fault,
) -> Result<Feeds> {
    let mut counters = Vec::new();
    let mut addrs = Vec::new();
    let mut restarts = BTreeMap::new();
    for (venue, pairs) in venues {
        let vc = match venue {
            Venue::Binance => &cfg.feeds.binance,
            Venue::Bybit => &cfg.feeds.bybit,
            Venue::Hyperliquid => &cfg.feeds.hyperliquid,
        };
        // Fail at start on a bad instrument list, not inside the supervised task.
        codec(*venue, pairs, vc.book_depth).map_err(anyhow::Error::msg)?;
        let c = Arc::new(FeedCounters::default());
        counters.push((venue.name().to_string(), c.clone()));
        let r = Arc::new(AtomicU64::new(0));
        restarts.insert(venue.name().to_string(), r.clone());
        let settings = cfg.feeds.settings(&vc.ws_url);
        let rest =
            (*venue == Venue::Binance).then(|| RestClient::new(&vc.rest_url, vc.rest_per_second));
        let (venue, pairs, depth) = (*venue, pairs.clone(), vc.book_depth);
        let (tx, raw, fault) = (tx.clone(), raw.clone(), fault.clone());
        let factory = move || {
            let cd = codec(venue, &pairs, depth).expect("checked at start");
            WsFeed::new(
                cd,
                settings.clone(),
                rest.clone(),
                tx.clone(),
                raw.clone(),
                c.clone(),
            )
            .with_fault(fault.clone())
        };
        let sd = shutdown.clone();
        let name = venue.name();
        addrs.push(Supervisor::start(move |_| {
            LiveFeedActor::new(name, Box::new(factory), sd, r)
        }));
    }
    Ok((counters, addrs, restarts))
}

/// Runs a paper session until Ctrl-C or `duration`.
pub fn run_paper(opts: PaperOptions) -> Result<PaperReport> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cfg = opts.config.clone();
    let store = Arc::new(Store::open_file(&opts.state_dir, PAPER_STORE)?);
    let session = store
        .meta(META_SESSION)?
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0)
        + 1;
    store.append(&[], &[(META_SESSION, session.to_string().into_bytes())])?;
    let prefix = format!("p{session}-");

    // Resume the broker (positions, orders, brackets, cash) from the last session.
    let broker = match store.meta(META_EXECUTOR)? {
        Some(j) => serde_json::from_slice::<PaperBroker>(&j)
            .context("the stored paper broker state is unreadable")?,
        None => PaperBroker::new(cfg.execution.clone(), &cfg.portfolio),
    };
    let resumed_positions = broker.portfolio.positions.len();
    let resumed_orders = broker.live_orders().count();
    if resumed_positions + resumed_orders > 0 {
        eprintln!(
            "resuming {resumed_positions} open paper positions and {resumed_orders} live orders from {}",
            store.path().display()
        );
    }
    let view = broker.view(0);
    let stored_risk = store.meta(META_RISK)?;
    let mut rm = match &stored_risk {
        Some(j) => RiskManager::restored(j, cfg.risk.clone()).map_err(anyhow::Error::msg)?,
        None => RiskManager::with_equivalents(
            cfg.risk.clone(),
            &cfg.portfolio.quote,
            &cfg.portfolio.quote_equivalents,
            cfg.portfolio.starting_balance,
        ),
    };
    if stored_risk.is_some() {
        eprintln!(
            "resuming trading state {:?} with run-time limits {:?}",
            rm.state(),
            rm.overrides()
        );
    }
    rm.id_prefix = prefix.clone();
    let resumed_state = (store.meta(META_EXECUTOR)?, stored_risk);
    let mut tape = match &opts.tape {
        Some(p) => {
            let json =
                |b: &Option<Vec<u8>>| b.as_ref().and_then(|b| serde_json::from_slice(b).ok());
            let h = TapeHeader {
                smartflow_tape: 1,
                session,
                id_prefix: prefix.clone(),
                broker: json(&resumed_state.0),
                risk: json(&resumed_state.1),
            };
            Some(TapeWriter::create(p, &h)?)
        }
        None => None,
    };
    // What the control API shows before the first change.
    let initial_state = (
        serde_json::to_vec(&broker).ok(),
        serde_json::to_vec(&rm).ok(),
    );
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel::<CommandEvent>();
    let hub = Arc::new(ControlHub::new(&prefix, cmd_tx));
    rm.on_feedback(&view);
    let mut strat = PrePumpStrategy::new(cfg.strategy.clone());
    strat.id_prefix = prefix.clone();
    strat.on_feedback(&view);
    let det = DetectorKind::from_config(&cfg, &prefix)?;

    let latency = Arc::new(Mutex::new(
        hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"),
    ));
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let control = Arc::new(RunControl::new(done_tx));
    let fault = opts.fault.clone();
    let ctl = control.clone();
    let print_status = opts.print_status;
    let duration = opts.duration;
    let st = store.clone();
    let state_dir = opts.state_dir.clone();
    let out: Result<SessionOut> =
        System::new().block_on(async move {
            let (venues, names) = resolve_venues(&cfg).await?;
            let api = if cfg.control.enabled {
                let a = crate::control::api::serve(hub.clone(), &state_dir, cfg.control.port).await?;
                eprintln!(
                    "control API on {} (token in {}; try `smartflow status`)",
                    a.url,
                    state_dir.join(crate::control::api::TOKEN_FILE).display()
                );
                Some(a)
            } else {
                None
            };
            let (shutdown_tx, shutdown_rx) = watch::channel(false);
            let (tx, mut rx) = mpsc::channel::<FeedBatch>(8192);
            let (feeds, feed_addrs, feed_restarts) =
                start_feeds(&cfg, &venues, tx, None, shutdown_rx, &fault)?;

            let c = ctl;
            let status = StatusReporter {
                feeds,
                latency: latency.clone(),
                every: Duration::from_secs_f64(cfg.feeds.status_every_secs),
                print: print_status,
                quote: cfg.portfolio.quote.clone(),
            };
            let journal = JournalActor::new(
                st.clone(),
                cfg.replay.journal_flush_records,
                0,
                c.clone(),
                indicatif::ProgressBar::hidden(),
            )
            .with_status(status)
            .with_hub(hub.clone())
            .with_resumed(initial_state.0, initial_state.1)
            .start();
            let (f, cc) = (fault.clone(), c.clone());
            let exec = Supervisor::start(move |_| StageActor::new(ExecStage::new(broker), f, cc));
            let (f, cc) = (fault.clone(), c.clone());
            let risk = Supervisor::start(move |_| StageActor::new(RiskStage::new(rm), f, cc));
            let (f, cc) = (fault.clone(), c.clone());
            let strat = Supervisor::start(move |_| StageActor::new(StrategyStage::new(strat), f, cc));
            let (f, cc, fc) = (fault.clone(), c.clone(), cfg.features.clone());
            let feature_stage = FeatureStage::for_detector(fc, &det);
            // One thread for every stage: a hop to another arbiter costs more latency at a
            // paced load than it saves (measured with examples/paper_latency.rs).
            let feat = Supervisor::start(move |_| StageActor::new(feature_stage, f, cc));
            let (f, cc, lat) = (fault.clone(), c.clone(), latency.clone());
            let det = Supervisor::start(move |_| {
                StageActor::new(DetectorStage::new(det), f, cc).with_latency(lat)
            });
            feat.do_send(Wire { next: det.clone().recipient(), feedback: vec![] });
            det.do_send(Wire { next: strat.clone().recipient(), feedback: vec![] });
            strat.do_send(Wire { next: risk.clone().recipient(), feedback: vec![] });
            risk.do_send(Wire { next: exec.clone().recipient(), feedback: vec![] });
            exec.do_send(Wire {
                next: journal.clone().recipient(),
                feedback: vec![strat.clone().recipient(), risk.clone().recipient()],
            });

            // Batcher: whatever the feeds decoded goes on at once (no waiting to fill a batch),
            // through the same credit-limited feed actor as replay.
            let (chunk_tx, chunk_rx) = mpsc::channel::<Chunk>(64);
            let (stamp_tx, stamp_rx) = mpsc::unbounded_channel::<Vec<std::time::Instant>>();
            let max = cfg.feeds.batch_max_events;
            let mut batch_stop = shutdown_tx.subscribe();
            let mut cmd_rx = cmd_rx;
            let batcher = actix::spawn(async move {
                loop {
                    // The feed actors keep senders alive for restarts: stop on the signal instead.
                    // A command goes in between two batches of events: in-band, in event order.
                    let first = tokio::select! {
                        biased;
                        _ = batch_stop.changed() => break,
                        Some(c) = cmd_rx.recv() => {
                            if let Some(Err(e)) = tape.as_mut().map(|t| t.command(&c)) {
                                tracing::error!("tape write failed: {e:#}; tape stopped");
                                tape = None;
                            }
                            if chunk_tx.send(Some(Input::Command(c))).await.is_err() {
                                break;
                            }
                            continue;
                        }
                        b = rx.recv() => match b { Some(b) => b, None => break },
                    };
                    let mut events: Vec<MarketEvent> = Vec::with_capacity(first.events.len());
                    let mut stamps = Vec::with_capacity(first.events.len());
                    fn push(b: FeedBatch, ev: &mut Vec<MarketEvent>, st: &mut Vec<std::time::Instant>) {
                        st.extend(std::iter::repeat_n(b.decoded_at, b.events.len()));
                        ev.extend(b.events);
                    }
                    push(first, &mut events, &mut stamps);
                    while events.len() < max {
                        match rx.try_recv() {
                            Ok(b) => push(b, &mut events, &mut stamps),
                            Err(_) => break,
                        }
                    }
                    if let Some(Err(e)) = tape.as_mut().map(|t| t.events(&events)) {
                        tracing::error!("tape write failed: {e:#}; tape stopped");
                        tape = None;
                    }
                    let _ = stamp_tx.send(stamps);
                    if chunk_tx.send(Some(Input::Events(events))).await.is_err() {
                        break;
                    }
                }
                let _ = chunk_tx.send(None).await;
            });
            let _feed = FeedActor::new(chunk_rx, feat.clone().recipient(), cfg.replay.max_in_flight)
                .with_stamps(stamp_rx)
                .start();

            let stop = async {
                match duration {
                    Some(d) => tokio::time::sleep(d).await,
                    None => {
                        let _ = tokio::signal::ctrl_c().await;
                        eprintln!("stopping: flushing the journal…");
                    }
                }
            };
            let mut done_rx = done_rx;
            let res = tokio::select! {
                r = &mut done_rx => r.unwrap_or_else(|_| Err("pipeline ended without a result".into())).map(|_| ()),
                _ = stop => {
                    // Stop the feeds; the batcher then ends the stream with a last batch, which
                    // flushes the journal and the broker state when it reaches the journal.
                    let _ = shutdown_tx.send(true);
                    let _ = batcher.await;
                    match tokio::time::timeout(Duration::from_secs(60), done_rx).await {
                        Ok(Ok(r)) => r.map(|_| ()),
                        _ => Err("the pipeline did not drain within 60 s".into()),
                    }
                }
            };
            drop(feed_addrs);
            if let Some(a) = &api {
                a.close();
            }
            let status = journal.send(crate::actors::journal::Finish).await.ok().flatten();
            drop((feat, det, strat, risk, exec, journal));
            res.map_err(anyhow::Error::msg)?;
            let fr = feed_restarts
                .iter()
                .map(|(k, v)| (k.clone(), v.load(std::sync::atomic::Ordering::SeqCst)))
                .collect();
            Ok((status, names, fr))
        });
    let (status, instruments, feed_restarts) = out?;
    Ok(PaperReport {
        session,
        resumed_positions,
        resumed_orders,
        instruments,
        status,
        feed_restarts,
        stage_restarts: control.restarts(),
    })
}

/// `smartflow status`: the last stored status of the paper session in `state_dir`.
pub fn stored_status(state_dir: &std::path::Path) -> Result<(LiveStatus, Option<PaperBroker>)> {
    let path = state_dir.join(PAPER_STORE);
    if !path.exists() {
        bail!(
            "no paper session in {} (start one with `smartflow paper`)",
            state_dir.display()
        );
    }
    let store = Store::open_file(state_dir, PAPER_STORE)?;
    let status = store
        .meta(META_STATUS)?
        .context("the paper session has not reported a status yet")?;
    let broker = store
        .meta(META_EXECUTOR)?
        .and_then(|j| serde_json::from_slice(&j).ok());
    Ok((serde_json::from_slice(&status)?, broker))
}
