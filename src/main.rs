//! smartflow command line.

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use smartflow::cli::log as logcmd;
use smartflow::config::Config;
use smartflow::pipeline::Fault;
use smartflow::replay::{run_replay, ReplayOptions, ReplaySummary};
use smartflow::store::Store;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;

/// Autonomous crypto trading agent: detects pre-pump moves, runs them through risk controls into
/// paper orders, and keeps a decision log of why every signal was taken or refused.
///
/// Money is exact decimal in the quote currency of the pairs; the core runs on event time, so the
/// same data and config always give the same decision log.
#[derive(Parser)]
#[command(name = "smartflow", version, propagate_version = true)]
struct Cli {
    /// Config file (TOML); defaults to the built-in copy of config/default.toml.
    #[arg(long, global = true, env = "SMARTFLOW_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// State folder holding the store (decision log, positions) and run summaries.
    #[arg(
        long,
        global = true,
        env = "SMARTFLOW_STATE",
        default_value = "state",
        value_name = "DIR"
    )]
    state: PathBuf,
    /// Log level filter for diagnostics on stderr (e.g. info, debug, smartflow=debug).
    #[arg(long, global = true, env = "SMARTFLOW_LOG", default_value = "warn")]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct ControlArgs {
    /// The command and its arguments, e.g. `pause` or `set max_orders 3`.
    #[arg(required = true, num_args = 1.., value_name = "COMMAND")]
    words: Vec<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Replay recorded trades through the pipeline into paper trades and a decision log.
    ///
    /// Reads Binance trade CSVs (ccxt layout), freqtrade trade JSON and cryptofeed Binance
    /// websocket captures, gzip or plain, merged in event-time order. Replaces the decision log in
    /// the state folder (or continues an interrupted run with --resume), then prints a summary and
    /// writes it to <state>/replay-summary.{json,md}.
    Replay(ReplayArgs),
    /// Paper-trade live public market data (Binance, Bybit, Hyperliquid; no keys) until Ctrl-C.
    ///
    /// Feeds reconnect by themselves (backoff with jitter, re-subscription, book resync); entries
    /// on an instrument with stale or reconnecting data are refused. Orders fill on the paper
    /// broker; every decision goes to the decision log in <state>/paper.redb. A restart resumes
    /// the open paper positions and orders. Without --config, the built-in config/paper.toml.
    /// With TELEGRAM_BOT_TOKEN set and your chat id in [telegram] chats, a Telegram bot answers
    /// /status, /pause, /why … and pushes alerts (see README).
    Paper(PaperArgs),
    /// Trade for real on Hyperliquid (testnet unless asked twice for mainnet) with the paper
    /// session's pipeline.
    ///
    /// The API (agent) wallet's private key comes from the environment variable `[live]
    /// key_env` (default HYPERLIQUID_PRIVATE_KEY), never from a file. Before trading, the
    /// session reconciles with the venue: fills made while it was down are applied, orders
    /// are found by their cloid (never sent twice), unknown open orders are cancelled (or
    /// adopted), and entries are blocked when smartflow's positions and the venue's disagree
    /// (`smartflow control resume` after checking the account). Entries are checked against
    /// the risk limits and again against the positions the venue reports. Decision log:
    /// <state>/live.redb.
    Live(LiveArgs),
    /// Show the status of the paper session in the state folder: trading state, limits, feeds,
    /// positions, equity. Asks the running session's control API; when none runs, shows the
    /// last stored status.
    Status,
    /// Send a command to the running paper session in the state folder (control API).
    ///
    /// `pause` (no new entries; exits continue), `resume`, `halt` (cancel every open order, place
    /// none), `flatten [BASE/QUOTE|all]` (reduce-only market exits), `set LIMIT VALUE` (a [risk]
    /// limit, checked like the config file, e.g. `set max_order_notional 50`). Each command is
    /// journaled with its outcome and survives a restart.
    Control(ControlArgs),
    /// Record raw venue messages (with receive times) to FILE (JSONL, gzip if it ends in .gz);
    /// `smartflow replay --data FILE` replays them through the same pipeline, deterministically.
    Record(RecordArgs),
    /// Review the decision log: list records (default), `show ID` or `export` as JSONL.
    Log(LogArgs),
    /// Print the config in effect (defaults merged with --config) as TOML.
    Config,
    /// Train a new model version from labelled pumps (time-ordered split; see [train] config).
    ///
    /// Builds 5 s chunk features from the trade files, trains the Isolation Forest, the logistic
    /// regression (linfa) and LightGBM (scripts/train_gbm.py → ONNX) on the earliest events,
    /// fits the stacker and picks thresholds on the next ones, validates on the latest, and writes
    /// <models.dir>/vN with hashes of data and config and the validation metrics.
    Train(TrainArgs),
    /// List the trained model versions; models.active picks one (rollback = an older version).
    Models,
    /// Evaluate the active model on trade files plus an events file: detection within 5/15/25/60 s,
    /// false alarms per instrument-week, precision/recall/F1, PR-AUC with a 95 % interval, hard
    /// negatives; writes report.md, evaluation.json and PNG plots to --out.
    Evaluate(EvaluateArgs),
    /// Does following Hyperliquid smart money pay? On recorded wallet snapshots: scores wallets at
    /// each snapshot on what is known by then, follows the top wallets' weighted consensus to the
    /// next snapshot, and compares with random wallets of similar size and leverage, holding BTC
    /// and doing nothing, after taker fees, with a day-resampled 95 % interval; writes report.md,
    /// evaluation.json and equity.png to --out.
    EvaluateWallets(smartflow::cli::wallets::EvaluateWalletsArgs),
    /// List the wallets the [wallets] rules would follow at the last snapshot of --data, with
    /// each dimension of their weight and why each was picked or left out.
    Wallets(smartflow::cli::wallets::WalletsArgs),
    /// Fuzz every parser of outside input (venue frames, REST answers, data files, numbers,
    /// times, config) with mutants of real captures; prints inputs, panics, invariant
    /// violations and rejections by reason, and fails when any input panicked.
    Fuzz(smartflow::cli::fuzz::FuzzArgs),
}

#[derive(Args)]
struct TrainArgs {
    /// Trade files, folders or globs (default: $SMARTFLOW_DATA/binance_pumps/trades).
    #[arg(long, num_args = 1.., value_name = "PATHS")]
    data: Vec<String>,
    /// Events file (events_index.csv layout; default: $SMARTFLOW_DATA/binance_pumps/events_index.csv).
    #[arg(long, value_name = "FILE")]
    events: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(Args)]
struct EvaluateArgs {
    /// Trade files, folders or globs (default: $SMARTFLOW_DATA/binance_pumps/trades).
    #[arg(long, num_args = 1.., value_name = "PATHS")]
    data: Vec<String>,
    /// Events file (events_index.csv layout; default: $SMARTFLOW_DATA/binance_pumps/events_index.csv).
    #[arg(long, value_name = "FILE")]
    events: Option<PathBuf>,
    /// Folder of La Morgia-format hard negatives (default:
    /// $SMARTFLOW_DATA/natsd_hard_negatives_theblockbrain if present); `none` skips them.
    #[arg(long, value_name = "DIR")]
    negatives: Option<String>,
    /// Report folder.
    #[arg(long, default_value = "state/evaluation", value_name = "DIR")]
    out: PathBuf,
    /// Also score files the model trained or calibrated on (optimistic).
    #[arg(long)]
    include_trained: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(Args)]
struct ReplayArgs {
    /// Data files, folders (searched recursively) or globs, e.g. ../shared/data/binance_pumps/trades.
    #[arg(long, required = true, num_args = 1.., value_name = "PATHS")]
    data: Vec<String>,
    /// Continue the interrupted run in the state folder instead of starting afresh.
    #[arg(long)]
    resume: bool,
    /// Fault injection: panic once in STAGE (features — with the rules detector only, the
    /// ensemble keeps its own windows —, detector, strategy, risk, executor) at the first event
    /// it handles from global event index N on; the supervisor restarts the actor and the run
    /// continues with the same result.
    #[arg(long, value_name = "STAGE@N")]
    inject_panic: Option<String>,
    /// Print the summary as JSON instead of text.
    #[arg(long)]
    json: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// `--duration`: seconds, finite, > 0 and at most ten years.
fn parse_duration_secs(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    let max = smartflow::config::MAX_SECS;
    if !(v.is_finite() && v > 0.0 && v <= max as f64) {
        return Err(format!(
            "{s}: want seconds > 0 and at most {max} (ten years)"
        ));
    }
    Ok(v)
}

#[derive(Args)]
struct PaperArgs {
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long, value_name = "SECS", value_parser = parse_duration_secs)]
    duration: Option<f64>,
    /// Fault injection, as for replay; `feed@N` panics a venue connection at its N-th frame.
    #[arg(long, value_name = "STAGE@N")]
    inject_panic: Option<String>,
    /// No status lines on stderr.
    #[arg(long)]
    quiet: bool,
    /// Write the session's input (decoded events and commands, in the order the pipeline took
    /// them) to FILE; `smartflow replay --data FILE` gives the same decision log.
    #[arg(long, value_name = "FILE")]
    tape: Option<PathBuf>,
}

#[derive(Args)]
struct LiveArgs {
    #[command(flatten)]
    session: PaperArgs,
    /// Trade on Hyperliquid mainnet (real funds). Needs `[live] network = "mainnet"` in the
    /// config as well: mainnet is asked for twice.
    #[arg(long)]
    mainnet: bool,
}

#[derive(Args)]
struct RecordArgs {
    /// Output file, e.g. session.jsonl.gz.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Stop after this many seconds (default: until Ctrl-C).
    #[arg(long, value_name = "SECS", value_parser = parse_duration_secs)]
    duration: Option<f64>,
}

#[derive(Args)]
struct LogArgs {
    /// Read the paper-trading log (<state>/paper.redb) instead of the replay log.
    #[arg(long, global = true, conflicts_with = "live")]
    paper: bool,
    /// Read the live-trading log (<state>/live.redb).
    #[arg(long, global = true)]
    live: bool,
    #[command(subcommand)]
    action: Option<LogAction>,
    #[command(flatten)]
    filter: FilterArgs,
    /// Show only the newest N matching records.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
}

#[derive(Args, Clone)]
struct FilterArgs {
    /// Only this instrument, e.g. GNT/BTC.
    #[arg(long, global = true)]
    instrument: Option<String>,
    /// Only these kinds: signal, intent, verdict, order, fill, exit (repeat or comma-separate).
    #[arg(long, global = true)]
    kind: Vec<String>,
    /// From this event time (inclusive): Unix ms, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ.
    #[arg(long, global = true)]
    from: Option<String>,
    /// Up to this event time (exclusive).
    #[arg(long, global = true)]
    to: Option<String>,
    /// Only refused decisions (refused verdicts, signals the strategy skipped).
    #[arg(long, global = true)]
    refused: bool,
}

#[derive(Subcommand)]
enum LogAction {
    /// Print one decision's whole chain (signal → intent → verdict → orders → fills → exit)
    /// with why: the probability, alert level, members and the top five market facts behind a
    /// signal, in plain units (`--inputs` for every input's value and contribution).
    Show {
        /// Any record id of the chain, e.g. sig-3, ver-2, ord-5, fil-9, exi-1.
        id: String,
        /// Also print a signal's every model input (raw value, log-odds contribution, split by
        /// member) and the feature window at decision time.
        #[arg(long)]
        inputs: bool,
    },
    /// Write the matching records as JSONL to stdout, one per line.
    Export,
}

fn print_summary(s: &ReplaySummary) {
    println!(
        "replay finished: {} events from {} files in {:.2} s ({:.0} events/s)",
        s.events, s.files, s.wall_secs, s.events_per_sec
    );
    println!(
        "  malformed lines {}   duplicates dropped {}   out of order {}",
        s.malformed_lines, s.duplicates_dropped, s.out_of_order
    );
    for m in &s.malformed_examples {
        println!("    {}:{}: {}", m.file, m.line, m.reason);
    }
    println!(
        "  signals {} (skipped by strategy {})   intents {}   approved {}   refused {}",
        s.signals, s.signals_skipped_by_strategy, s.intents, s.approved, s.refused
    );
    for (k, v) in &s.refusals_by_reason {
        println!("    refused {k}: {v}");
    }
    println!(
        "  orders {}   fills {}   round trips {}   win rate {}",
        s.orders,
        s.fills,
        s.round_trips,
        s.win_rate
            .map(|w| format!("{:.1} %", w * 100.0))
            .unwrap_or_else(|| "n/a".into())
    );
    println!(
        "  PnL after fees {} {}   (realized {}, unrealized {}, fees {})",
        s.pnl_after_fees, s.quote, s.realized_pnl, s.unrealized_pnl, s.fees
    );
    println!(
        "  max drawdown {} %   final equity {} {}   open positions {}",
        s.max_drawdown_pct, s.final_equity, s.quote, s.open_positions
    );
    let restarts: u64 = s.restarts.values().sum();
    if restarts > 0 {
        println!("  actor restarts: {:?}", s.restarts);
    }
    println!(
        "  decision log: {} records in {}/smartflow.redb (see `smartflow log`)",
        s.records, s.state
    );
}

fn main() {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&cli.log_level)
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    if let Err(e) = run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let config = match cli.command {
        Command::Paper(_) | Command::Live(_) | Command::Status | Command::Record(_) => {
            Config::load_paper(cli.config.as_deref())?
        }
        _ => Config::load(cli.config.as_deref())?,
    };
    let state = cli.state.clone();
    match cli.command {
        Command::Paper(a) => paper(config, &state, a),
        Command::Live(a) => live(config, &state, a),
        Command::Record(a) => record(config, a),
        Command::Status => smartflow::cli::session::status(&state),
        Command::Control(a) => smartflow::cli::session::control(&state, &a.words),
        Command::Config => {
            print!("{}", toml::to_string_pretty(&config)?);
            Ok(())
        }
        Command::Train(a) => {
            let (d, e) = smartflow::cli::models::default_inputs();
            let data = if a.data.is_empty() { d } else { a.data };
            let events = a.events.unwrap_or(e);
            let progress = !a.quiet && std::io::stderr().is_terminal();
            smartflow::cli::models::run_train(&config, &data, &events, progress)
        }
        Command::Models => smartflow::cli::models::run_models(&config),
        Command::Evaluate(a) => evaluate(config, a),
        Command::EvaluateWallets(a) => smartflow::cli::wallets::evaluate_wallets(&config, a),
        Command::Wallets(a) => smartflow::cli::wallets::wallets(&config, a),
        Command::Fuzz(a) => smartflow::cli::fuzz::fuzz(a),
        Command::Replay(a) => replay(config, &state, a),
        Command::Log(a) => log(&state, a),
    }
}

fn fault(spec: &Option<String>) -> Result<Fault> {
    match spec {
        Some(s) => Fault::parse(s).map_err(anyhow::Error::msg),
        None => Ok(Fault::default()),
    }
}

fn paper(config: Config, state: &std::path::Path, a: PaperArgs) -> Result<()> {
    let report = smartflow::paper::run_paper(session_options(config, state, a)?)?;
    println!("paper session {} ended", report.session);
    for (v, i) in &report.instruments {
        println!("  {v}: {}", i.join(", "));
    }
    if let Some(st) = &report.status {
        println!("  {}", smartflow::actors::journal::status_line(st));
    }
    println!(
        "  decision log: {}/paper.redb (see `smartflow log --paper`)",
        state.display()
    );
    Ok(())
}

fn session_options(
    config: Config,
    state: &std::path::Path,
    a: PaperArgs,
) -> Result<smartflow::paper::PaperOptions> {
    Ok(smartflow::paper::PaperOptions {
        config,
        state_dir: state.to_path_buf(),
        duration: a.duration.map(std::time::Duration::from_secs_f64),
        print_status: !a.quiet,
        fault: fault(&a.inject_panic)?,
        tape: a.tape,
    })
}

fn live(config: Config, state: &std::path::Path, a: LiveArgs) -> Result<()> {
    let report = smartflow::live::run_live(smartflow::live::LiveOptions {
        session: session_options(config, state, a.session)?,
        mainnet_flag: a.mainnet,
    })?;
    println!("live session {} ended", report.session);
    if let Some(st) = &report.status {
        println!("  {}", smartflow::actors::journal::status_line(st));
    }
    println!(
        "  decision log: {}/{} (see `smartflow log --live`)",
        state.display(),
        smartflow::live::LIVE_STORE
    );
    Ok(())
}

fn record(config: Config, a: RecordArgs) -> Result<()> {
    let r = smartflow::record::run_record(smartflow::record::RecordOptions {
        config,
        out: a.out,
        duration: a.duration.map(std::time::Duration::from_secs_f64),
    })?;
    println!(
        "recorded {} frames ({} trades, {} events) to {}",
        r.frames, r.trades, r.events, r.out
    );
    if r.dropped > 0 {
        eprintln!(
            "warning: {} frames were not recorded (the file writer fell behind)",
            r.dropped
        );
    }
    for (v, i) in &r.venues {
        println!("  {v}: {}", i.join(", "));
    }
    println!("  replay it: smartflow replay --data {}", r.out);
    Ok(())
}

fn evaluate(config: Config, a: EvaluateArgs) -> Result<()> {
    let (d, e) = smartflow::cli::models::default_inputs();
    let negatives = match a.negatives.as_deref() {
        Some("none") => None,
        Some(p) => Some(PathBuf::from(p)),
        None => {
            let p = smartflow::feeds::shared_data_dir().join("natsd_hard_negatives_theblockbrain");
            p.is_dir().then_some(p)
        }
    };
    smartflow::cli::models::run_evaluate(
        &config,
        smartflow::cli::models::EvaluateArgs {
            data: if a.data.is_empty() { d } else { a.data },
            events: a.events.unwrap_or(e),
            negatives,
            out: a.out,
            include_trained: a.include_trained,
            progress: !a.quiet && std::io::stderr().is_terminal(),
        },
    )
}

fn replay(config: Config, state: &std::path::Path, a: ReplayArgs) -> Result<()> {
    let summary = run_replay(ReplayOptions {
        data: a.data,
        config,
        state_dir: state.to_path_buf(),
        fault: fault(&a.inject_panic)?,
        resume: a.resume,
        progress: !a.quiet && std::io::stderr().is_terminal(),
    })?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&summary);
    }
    Ok(())
}

fn log(state: &std::path::Path, a: LogArgs) -> Result<()> {
    let (file, command) = match (a.paper, a.live) {
        (true, _) => (smartflow::store::PAPER_STORE, "paper"),
        (_, true) => (smartflow::live::LIVE_STORE, "live"),
        _ => (smartflow::store::REPLAY_STORE, "replay"),
    };
    if !state.join(file).exists() {
        anyhow::bail!(
            "no store {file} in {} (run `smartflow {command}` first, or pass --state)",
            state.display(),
        );
    }
    let store = Store::open_file(state, file).context("cannot open the store")?;
    let f = a.filter;
    let filter = logcmd::Filter::parse(
        f.instrument,
        &f.kind,
        f.from.as_deref(),
        f.to.as_deref(),
        f.refused,
    )?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match a.action {
        None => {
            if logcmd::list(&store, &filter, a.limit, &mut out)? == 0 {
                writeln!(out, "(no matching records)")?;
            }
        }
        Some(LogAction::Show { id, inputs }) => logcmd::show(&store, &id, inputs, &mut out)?,
        Some(LogAction::Export) => {
            logcmd::export(&store, &filter, &mut out)?;
        }
    }
    out.flush()?;
    Ok(())
}
