//! `smartflow paper`: live public market data → the replay's pipeline → paper broker → decision
//! log, under supervision, until Ctrl-C (or `--duration`). A restart resumes the open paper
//! positions and orders from the store.

use crate::actors::builder::{start_stages, Core, Wiring};
use crate::actors::feed::{Chunk, ChunkSource, FeedActor, Input, LiveFeedActor};
use crate::actors::idle_spin::IdleSpin;
use crate::actors::journal::{JournalActor, LiveStatus, StatusReporter};
use crate::actors::run::RunControl;
use crate::config::Config;
use crate::control::hub::ControlHub;
use crate::control::CommandEvent;
use crate::domain::MarketEvent;
use crate::execution::{ExecutionClient, PaperBroker};
use crate::feeds::rest::RestClient;
use crate::feeds::tape::{TapeHeader, TapeWriter};
use crate::feeds::venues::{codec, Venue};
use crate::feeds::ws::{FeedBatch, FeedCounters, RawFrame, WsFeed};
use crate::pipeline::Fault;
use crate::risk::RiskManager;
use crate::store::{Store, META_EXECUTOR, META_RISK, META_SESSION, META_STATUS, PAPER_STORE};
use crate::strategies::signal::{SignalSource, Strategy};
use crate::strategies::sources;
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
    raw: Option<mpsc::Sender<RawFrame>>,
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
        let factory = move |sd| {
            let cd = codec(venue, &pairs, depth).expect("checked at start");
            let feed = WsFeed::new(
                cd,
                settings.clone(),
                rest.clone(),
                tx.clone(),
                raw.clone(),
                c.clone(),
            )
            .with_fault(fault.clone());
            futures_util::FutureExt::boxed_local(feed.run(sd))
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
    let make = |cfg: &Config, stored: Option<&[u8]>, _session: u64| -> Result<PaperBroker> {
        Ok(match stored {
            Some(j) => serde_json::from_slice::<PaperBroker>(j)
                .context("the stored paper broker state is unreadable")?,
            None => PaperBroker::new(cfg.execution.clone(), &cfg.portfolio),
        })
    };
    run_session_in(opts, "paper", PAPER_STORE, make)
}

/// Runs a session (`mode`: "paper" or "live", as Telegram names it) in store file `file` of
/// the state folder with the execution client `make` builds from the stored state (`None`: a
/// first start) and the session number.
pub fn run_session_in<C: ExecutionClient>(
    opts: PaperOptions,
    mode: &'static str,
    file: &str,
    make: impl FnOnce(&Config, Option<&[u8]>, u64) -> Result<C>,
) -> Result<PaperReport> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let store = Arc::new(Store::open_file(&opts.state_dir, file)?);
    let s = open_session(&store, &opts, make)?;
    // Once the session may start; dropped (spinners stopped) when it returns, however it ends.
    let _awake = keep_cores_awake(&opts.config, s.core.detector.cache_warmer())?;
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel::<CommandEvent>();
    let hub = Arc::new(ControlHub::new(&s.prefix, cmd_tx));
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let control = Arc::new(RunControl::new(done_tx));
    let (number, resumed_positions, resumed_orders) =
        (s.number, s.resumed_positions, s.resumed_orders);
    let live = Live {
        mode,
        store,
        hub,
        control: control.clone(),
        cmd_rx,
        done_rx,
    };
    let (status, instruments, feed_restarts) =
        System::new().block_on(run_session(opts, s, live))?;
    Ok(PaperReport {
        session: number,
        resumed_positions,
        resumed_orders,
        instruments,
        status,
        feed_restarts,
        stage_restarts: control.restarts(),
    })
}

/// `[feeds] keep_cores_awake`: one idle-class spinning thread per core while the session runs,
/// reading the signal source's model (`warm`) into its core's cache.
fn keep_cores_awake(
    cfg: &Config,
    warm: Option<crate::strategies::signal::CacheWarmer>,
) -> Result<Option<IdleSpin>> {
    if !cfg.feeds.keep_cores_awake {
        return Ok(None);
    }
    let spin = IdleSpin::start(warm)?;
    tracing::info!(
        threads = spin.threads(),
        "keep_cores_awake: idle-class spinners started"
    );
    Ok(Some(spin))
}

/// A session about to start: its number and id prefix, the core it resumes, its tape.
struct Session<C> {
    number: u64,
    prefix: String,
    core: Core<sources::Sources, sources::Strategies, C>,
    /// Where the tape goes and its header (the specs are added once the venues are known).
    tape: Option<(PathBuf, TapeHeader)>,
    /// Broker and risk state at the start (JSON), for the control API's first status.
    initial_state: (Option<Vec<u8>>, Option<Vec<u8>>),
    resumed_positions: usize,
    resumed_orders: usize,
}

/// What the running session shares with its actors and the control API.
struct Live {
    mode: &'static str,
    store: Arc<Store>,
    hub: Arc<ControlHub>,
    control: Arc<RunControl>,
    cmd_rx: mpsc::UnboundedReceiver<CommandEvent>,
    done_rx: tokio::sync::oneshot::Receiver<crate::actors::run::Outcome>,
}

/// The last session's number (0 before the first). An unreadable counter is an error: starting
/// again at 1 would repeat the decision ids (`p1-…`) already in the log.
fn session_counter(store: &Store) -> Result<u64> {
    let Some(b) = store.meta(META_SESSION)? else {
        return Ok(0);
    };
    let text = String::from_utf8_lossy(&b);
    text.parse::<u64>().with_context(|| {
        format!(
            "the stored session counter {text:?} in {} is unreadable; decision ids would repeat",
            store.path().display()
        )
    })
}

/// Numbers the session and resumes the broker (positions, orders, brackets, cash) and the risk
/// manager (trading state, run-time limits, cooldowns) from the last one.
fn open_session<C: ExecutionClient>(
    store: &Store,
    opts: &PaperOptions,
    make: impl FnOnce(&Config, Option<&[u8]>, u64) -> Result<C>,
) -> Result<Session<C>> {
    let cfg = &opts.config;
    let number = session_counter(store)? + 1;
    store.append(&[], &[(META_SESSION, number.to_string().into_bytes())])?;
    let prefix = format!("p{number}-");
    let (stored_broker, stored_risk) = (store.meta(META_EXECUTOR)?, store.meta(META_RISK)?);
    let mut broker = make(cfg, stored_broker.as_deref(), number)?;
    broker.set_specs(&cfg.instruments);
    let (resumed_positions, resumed_orders) = (
        broker.portfolio().open_positions(),
        broker.live_order_count(),
    );
    if resumed_positions + resumed_orders > 0 {
        eprintln!(
            "resuming {resumed_positions} open paper positions and {resumed_orders} live orders from {}",
            store.path().display()
        );
    }
    let mut risk = match &stored_risk {
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
            risk.state(),
            risk.overrides()
        );
    }
    risk.id_prefix.clone_from(&prefix);
    let tape = opts.tape.clone().map(|p| {
        let json = |b: &Option<Vec<u8>>| b.as_ref().and_then(|b| serde_json::from_slice(b).ok());
        let h = TapeHeader {
            smartflow_tape: 1,
            session: number,
            id_prefix: prefix.clone(),
            broker: json(&stored_broker),
            risk: json(&stored_risk),
            specs: Default::default(),
        };
        (p, h)
    });
    let initial_state = (broker.state(), serde_json::to_vec(&risk).ok());
    let view = broker.view(0);
    risk.on_feedback(&view);
    let mut strategy = sources::strategies(cfg, &prefix);
    strategy.on_feedback(&view);
    let detector = sources::sources(cfg, &prefix)?;
    (opts.fault)
        .check_stages(detector.uses_snapshots())
        .map_err(anyhow::Error::msg)?;
    let core = Core {
        features: cfg.features.clone(),
        detector,
        strategy,
        risk,
        broker,
    };
    Ok(Session {
        number,
        prefix,
        core,
        tape,
        initial_state,
        resumed_positions,
        resumed_orders,
    })
}

/// The session on the actix system: control API, feeds, stages, journal, batcher; until the
/// stop (duration or Ctrl-C) has drained the pipeline.
async fn run_session<C: ExecutionClient>(
    opts: PaperOptions,
    s: Session<C>,
    live: Live,
) -> Result<SessionOut> {
    let cfg = &opts.config;
    let (venues, names) = resolve_venues(cfg).await?;
    check_subscriptions(cfg, &venues)?;
    let mut s = s;
    let specs = instrument_specs(cfg, &venues).await;
    s.core.broker.set_specs(&specs);
    let tape = match s.tape.take() {
        Some((path, mut header)) => {
            header.specs = specs;
            Some(TapeWriter::create(&path, &header)?)
        }
        None => None,
    };
    let api = match cfg.control.enabled {
        true => Some(serve_api(&live.hub, &opts.state_dir, cfg.control.port).await?),
        false => None,
    };
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let port = crate::telegram::port::HubPort {
        hub: live.hub.clone(),
        store: live.store.clone(),
    };
    crate::telegram::start(
        &cfg.telegram,
        Arc::new(port),
        live.mode,
        shutdown_rx.clone(),
    );
    let (tx, rx) = mpsc::channel::<FeedBatch>(8192);
    let (list_tx, list_rx) = watch::channel(tracked_list(&s.core));
    let tracker = start_tracker(cfg, list_rx, tx.clone(), shutdown_rx.clone());
    start_leaderboard(cfg, live.hub.clone(), list_tx, shutdown_rx.clone());
    let (mut feeds, feed_addrs, mut feed_restarts) =
        start_feeds(cfg, &venues, tx, None, shutdown_rx, &opts.fault)?;
    if let Some(t) = &tracker {
        feeds.push(("hyperliquid-wallets".into(), t.feed.clone()));
        feed_restarts.insert("hyperliquid-wallets".into(), t.restarts.clone());
    }
    let latency = Arc::new(Mutex::new(
        hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"),
    ));
    let status = StatusReporter {
        feeds,
        latency: latency.clone(),
        every: Duration::from_secs_f64(cfg.feeds.status_every_secs),
        print: opts.print_status,
        quote: cfg.portfolio.quote.clone(),
    };
    let journal = JournalActor::new(
        live.store.clone(),
        cfg.replay.journal_flush_records,
        0,
        live.control.clone(),
        indicatif::ProgressBar::hidden(),
    )
    .with_status(status)
    .with_hub(live.hub.clone())
    .with_resumed(s.initial_state.0, s.initial_state.1)
    .start();
    // One thread for every stage: a hop to another arbiter costs more latency at a paced load
    // than it saves (measured with examples/paper_latency.rs).
    let wiring = Wiring {
        fault: opts.fault.clone(),
        control: live.control.clone(),
        signal_arbiter: None,
        latency: Some(latency),
    };
    let stages = start_stages(s.core, wiring, journal.clone().recipient());
    let batcher = Batcher {
        rx,
        commands: live.cmd_rx,
        max: cfg.feeds.batch_max_events,
        stop: shutdown_tx.subscribe(),
        tape,
        ended: false,
    };
    let _feed = FeedActor::new(batcher, stages.head.clone(), cfg.replay.max_in_flight).start();
    let res = until_stopped(opts.duration, live.done_rx, shutdown_tx).await;
    drop(feed_addrs);
    if let Some(t) = tracker {
        eprintln!("{}", t.counters.summary());
    }
    if let Some(a) = &api {
        a.close();
    }
    let status = journal
        .send(crate::actors::journal::Finish)
        .await
        .ok()
        .flatten();
    drop((stages, journal));
    res.map_err(anyhow::Error::msg)?;
    let fr = feed_restarts
        .iter()
        .map(|(k, v)| (k.clone(), v.load(std::sync::atomic::Ordering::SeqCst)))
        .collect();
    Ok((status, names, fr))
}

/// Hyperliquid allows 1000 websocket subscriptions per IP: the feed takes 3 per coin (trades,
/// book, asset context), the wallet tracker one per subscribed wallet.
fn check_subscriptions(cfg: &Config, venues: &BTreeMap<Venue, Vec<String>>) -> Result<()> {
    let coins = venues.get(&Venue::Hyperliquid).map_or(0, Vec::len);
    let tracker = cfg.whales.enabled && cfg.whales.tracker.enabled;
    let users = if tracker {
        cfg.whales.tracker.user_subscriptions
    } else {
        0
    };
    if 3 * coins + users > 1000 {
        bail!(
            "feeds.hyperliquid: {coins} coins × 3 subscriptions + {users} wallet subscriptions \
             pass Hyperliquid's 1000 per IP; list fewer instruments (or a tighter universe rule)"
        );
    }
    Ok(())
}

/// The whale source's wallets (heaviest first); none without it.
fn tracked_list<C>(core: &Core<sources::Sources, sources::Strategies, C>) -> Vec<String> {
    let whales = core.detector.second.as_ref();
    whales.map_or_else(Vec::new, |w| {
        w.by_weight().into_iter().map(|(a, _)| a).collect()
    })
}

/// Starts the wallet tracker when `[whales.tracker] enabled`, for the wallets `list` holds,
/// at `[feeds.hyperliquid]`'s URLs.
fn start_tracker(
    cfg: &Config,
    list: watch::Receiver<Vec<String>>,
    tx: mpsc::Sender<FeedBatch>,
    shutdown: watch::Receiver<bool>,
) -> Option<crate::wallets::tracker::Tracker> {
    if !(cfg.whales.enabled && cfg.whales.tracker.enabled) {
        return None;
    }
    let hl = &cfg.feeds.hyperliquid;
    Some(crate::wallets::tracker::start(
        &cfg.whales.tracker,
        cfg.feeds.settings(&hl.ws_url),
        &hl.rest_url,
        list,
        tx,
        shutdown,
    ))
}

/// With `[whales] leaderboard`: reads it now and every `leaderboard_refresh_secs`, sends the
/// picked wallets into the stream as a `track_wallets` command (so the decision log keeps the
/// history of their scores, and the tape replays them) and to the tracker. A failed read keeps
/// the wallets followed so far.
fn start_leaderboard(
    cfg: &Config,
    hub: Arc<ControlHub>,
    list: watch::Sender<Vec<String>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let (Some(src), true) = (cfg.whales.leaderboard.clone(), cfg.whales.enabled) else {
        return;
    };
    let (wcfg, every) = (cfg.wallets.clone(), cfg.whales.leaderboard_refresh_secs);
    actix::spawn(async move {
        loop {
            let (src, wcfg, now) = (src.clone(), wcfg.clone(), crate::feeds::ws::now_ms());
            let read = tokio::task::spawn_blocking(move || {
                crate::wallets::select::pick_wallets(&src, &wcfg, now)
            });
            match read.await.map_err(anyhow::Error::from).and_then(|r| r) {
                Ok((wallets, summary)) => {
                    let addresses: Vec<String> =
                        wallets.iter().map(|w| w.address.clone()).collect();
                    eprintln!("{summary}: following {} wallets", addresses.len());
                    // The command first: the wallets' events the tracker sends come after it.
                    let cmd = crate::domain::command::Command::TrackWallets { wallets };
                    if hub.submit(cmd, "leaderboard").is_err() {
                        return;
                    }
                    list.send_if_modified(|l| replace(l, addresses));
                }
                Err(e) => tracing::warn!("leaderboard read failed: {e:#}; keeping the wallets"),
            }
            if every == 0.0 {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs_f64(every)) => {}
                _ = shutdown.changed() => return,
            }
        }
    });
}

/// Replaces `l` with `new`; true when it changed.
fn replace(l: &mut Vec<String>, new: Vec<String>) -> bool {
    let changed = *l != new;
    *l = new;
    changed
}

/// The trading rules of the session's instruments: Hyperliquid's from its `meta` endpoint when
/// that venue is on (a failure is a warning: orders then go unrounded), under the config's
/// `[instruments]`, which win.
async fn instrument_specs(
    cfg: &Config,
    venues: &BTreeMap<Venue, Vec<String>>,
) -> BTreeMap<String, crate::domain::spec::InstrumentSpec> {
    let mut specs = BTreeMap::new();
    if venues.contains_key(&Venue::Hyperliquid) {
        let vc = &cfg.feeds.hyperliquid;
        let rest = RestClient::new(&vc.rest_url, vc.rest_per_second);
        let meta = rest
            .post_json("/info", serde_json::json!({"type": "meta"}))
            .await
            .and_then(|b| serde_json::from_str(&b).map_err(|e| e.to_string()))
            .and_then(|v| crate::feeds::venues::hyperliquid::perp_specs(&v));
        match meta {
            Ok(m) => specs.extend(m),
            Err(e) => tracing::warn!("hyperliquid meta unavailable ({e}); its orders go unrounded"),
        }
    }
    specs.extend(cfg.instruments.clone());
    specs
}

async fn serve_api(
    hub: &Arc<ControlHub>,
    state_dir: &std::path::Path,
    port: u16,
) -> Result<crate::control::api::Served> {
    let a = crate::control::api::serve(hub.clone(), state_dir, port).await?;
    eprintln!(
        "control API on {} (token in {}; try `smartflow status`)",
        a.url,
        state_dir.join(crate::control::api::TOKEN_FILE).display()
    );
    Ok(a)
}

/// Waits for `duration` (or Ctrl-C), then stops the feeds and lets the pipeline drain: the
/// batcher ends the stream with a last batch, which flushes the journal and the broker state.
async fn until_stopped(
    duration: Option<Duration>,
    mut done_rx: tokio::sync::oneshot::Receiver<crate::actors::run::Outcome>,
    shutdown_tx: watch::Sender<bool>,
) -> std::result::Result<(), String> {
    let stop = async {
        match duration {
            Some(d) => tokio::time::sleep(d).await,
            None => {
                let _ = tokio::signal::ctrl_c().await;
                eprintln!("stopping: flushing the journal…");
            }
        }
    };
    tokio::select! {
        r = &mut done_rx => r
            .unwrap_or_else(|_| Err("pipeline ended without a result".into()))
            .map(|_| ()),
        _ = stop => {
            let _ = shutdown_tx.send(true);
            match tokio::time::timeout(Duration::from_secs(60), done_rx).await {
                Ok(Ok(r)) => r.map(|_| ()),
                _ => Err("the pipeline did not drain within 60 s".into()),
            }
        }
    }
}

/// Feeds → pipeline: whatever the feeds decoded goes on at once (no waiting to fill a batch);
/// an operator command goes in between two batches (in-band, in event order). Everything is
/// written to the tape before the pipeline gets it. The feed actor polls it in place: no task
/// hop between the feeds' channel and the pipeline.
struct Batcher {
    rx: mpsc::Receiver<FeedBatch>,
    commands: mpsc::UnboundedReceiver<CommandEvent>,
    max: usize,
    stop: watch::Receiver<bool>,
    tape: Option<TapeWriter>,
    /// The stop signal came (or the feeds closed): the stream has ended.
    ended: bool,
}

impl Batcher {
    fn tape(&mut self, w: impl FnOnce(&mut TapeWriter) -> Result<()>) {
        if let Some(Err(e)) = self.tape.as_mut().map(w) {
            tracing::error!("tape write failed: {e:#}; tape stopped");
            self.tape = None;
        }
    }

    /// The first feed batch and whatever else is already decoded, up to `max` events.
    fn take_events(&mut self, first: FeedBatch) -> (Vec<MarketEvent>, Vec<std::time::Instant>) {
        let mut events: Vec<MarketEvent> = Vec::with_capacity(first.events.len());
        let mut stamps = Vec::with_capacity(first.events.len());
        let mut next = Some(first);
        while let Some(b) = next.take() {
            stamps.extend(std::iter::repeat_n(b.decoded_at, b.events.len()));
            events.extend(b.events);
            if events.len() < self.max {
                next = self.rx.try_recv().ok();
            }
        }
        (events, stamps)
    }
}

/// Runs until the stop signal (the feed actors keep their senders for restarts), then ends the
/// stream; the tape is closed before the last batch.
impl ChunkSource for Batcher {
    async fn next_chunk(&mut self) -> (Chunk, Vec<std::time::Instant>) {
        if self.ended {
            return (None, Vec::new());
        }
        let first = tokio::select! {
            biased;
            _ = self.stop.changed() => None,
            Some(c) = self.commands.recv() => {
                self.tape(|t| t.command(&c));
                return (Some(Input::Command(c)), Vec::new());
            }
            f = self.rx.recv() => f,
        };
        let Some(first) = first else {
            self.ended = true;
            self.tape = None;
            return (None, Vec::new());
        };
        let (events, stamps) = self.take_events(first);
        self.tape(|t| t.events(&events));
        (Some(Input::Events(events)), stamps)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_session_counter_is_an_error_not_a_restart_at_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_file(dir.path(), PAPER_STORE).unwrap();
        assert_eq!(session_counter(&store).unwrap(), 0);
        store
            .append(&[], &[(META_SESSION, b"41".to_vec())])
            .unwrap();
        assert_eq!(session_counter(&store).unwrap(), 41);
        store
            .append(&[], &[(META_SESSION, b"4x".to_vec())])
            .unwrap();
        let e = format!("{:#}", session_counter(&store).unwrap_err());
        assert!(e.contains("session counter") && e.contains("4x"), "{e}");
    }

    #[test]
    fn more_hyperliquid_subscriptions_than_the_venue_allows_are_refused_at_start() {
        let mut cfg = Config::default();
        cfg.whales.enabled = true;
        cfg.whales.tracker.enabled = true;
        let coins = |n: usize| {
            let pairs = (0..n).map(|i| format!("C{i}/USDC")).collect();
            BTreeMap::from([(Venue::Hyperliquid, pairs)])
        };
        assert!(check_subscriptions(&cfg, &coins(330)).is_ok(), "990 + 10");
        let e = check_subscriptions(&cfg, &coins(331))
            .unwrap_err()
            .to_string();
        assert!(e.contains("feeds.hyperliquid") && e.contains("1000"), "{e}");
        cfg.whales.tracker.enabled = false;
        assert!(check_subscriptions(&cfg, &coins(333)).is_ok());
    }
}
