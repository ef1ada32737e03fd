//! `smartflow live`: the paper session's pipeline with real orders on Hyperliquid — testnet
//! unless `[live] network = "mainnet"` **and** `--mainnet` on the command line. The key comes
//! from the environment only (a missing one is an error before anything connects); the first
//! lines printed say the venue, network, account, signer and limits. Before trading, the
//! session reconciles with the venue (fills, orders by cloid, positions) and blocks entries
//! when the two cannot agree.

use crate::config::Config;
use crate::execution::hyperliquid::api::HlApi;
use crate::execution::hyperliquid::reconcile::{self, UnknownOrders};
use crate::execution::hyperliquid::signing::{Network, Signer};
use crate::execution::hyperliquid::stream;
use crate::execution::hyperliquid::venue::{assets_of, HyperliquidVenue, Link, Runtime};
use crate::execution::hyperliquid::worker::{Cadence, Outbox, VenueLimits, Worker};
use crate::execution::oms::OrderManager;
use crate::execution::Portfolio;
use crate::feeds::hyperliquid_info::WeightBudget;
use crate::paper::{run_session_in, PaperOptions, PaperReport};
use anyhow::{bail, Context as _, Result};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// The store file of live sessions (apart from paper's: a paper run never touches it).
pub const LIVE_STORE: &str = "live.redb";

/// The order manager on Hyperliquid.
pub type LiveBroker = OrderManager<HyperliquidVenue>;

/// `[live]`: where and how `smartflow live` trades.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LiveConfig {
    /// "testnet" or "mainnet" (mainnet also needs `--mainnet` on the command line).
    pub network: Network,
    /// REST root; empty: the network's own.
    pub api_url: String,
    /// Websocket for the account's order updates and fills; empty: the network's own.
    pub ws_url: String,
    /// Environment variable holding the API (agent) wallet's private key.
    pub key_env: String,
    /// The account traded; empty: the key's own address (set it when the key is an API
    /// wallet's, which signs for its master account).
    pub account: String,
    /// How far a market order's IOC limit may be from the last trade, bps.
    pub slippage_bps: Decimal,
    /// Poll for fills and orders that left the book this often while orders are live, s.
    pub poll_secs: f64,
    /// Read the venue's positions this often (a disagreement blocks entries), s.
    pub positions_secs: f64,
    /// Open orders of the account that smartflow did not send: "cancel" or "adopt".
    pub unknown_orders: UnknownOrders,
    /// Per-IP REST weight per minute spent by this session (the venue allows 1200).
    pub weight_per_minute: u32,
}

impl Default for LiveConfig {
    fn default() -> Self {
        Self {
            network: Network::Testnet,
            api_url: String::new(),
            ws_url: String::new(),
            key_env: "HYPERLIQUID_PRIVATE_KEY".into(),
            account: String::new(),
            slippage_bps: Decimal::from(50),
            poll_secs: 2.0,
            positions_secs: 30.0,
            unknown_orders: UnknownOrders::Cancel,
            weight_per_minute: 600,
        }
    }
}

impl LiveConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.key_env.trim().is_empty() {
            return Err("live.key_env: must name an environment variable".into());
        }
        if !(Decimal::ZERO..=Decimal::from(1000)).contains(&self.slippage_bps) {
            return Err("live.slippage_bps: must be within 0..=1000".into());
        }
        if !(0.2..=600.0).contains(&self.poll_secs) {
            return Err("live.poll_secs: must be within 0.2..=600".into());
        }
        if !(1.0..=3600.0).contains(&self.positions_secs) {
            return Err("live.positions_secs: must be within 1..=3600".into());
        }
        if !(1..=1200).contains(&self.weight_per_minute) {
            return Err(
                "live.weight_per_minute: must be within 1..=1200 (the venue's limit)".into(),
            );
        }
        let acc = self.account.trim_start_matches("0x");
        if !self.account.is_empty()
            && (acc.len() != 40 || !acc.chars().all(|c| c.is_ascii_hexdigit()))
        {
            return Err(format!(
                "live.account: {:?} is not a 0x address of 40 hex digits",
                self.account
            ));
        }
        Ok(())
    }

    /// The network to trade on: mainnet only when the config and the command line both say so.
    pub fn network_checked(&self, mainnet_flag: bool) -> Result<Network> {
        match (self.network, mainnet_flag) {
            (Network::Testnet, false) => Ok(Network::Testnet),
            (Network::Mainnet, true) => Ok(Network::Mainnet),
            (Network::Testnet, true) => bail!(
                "--mainnet given but [live] network is \"testnet\": mainnet needs both \
                 `network = \"mainnet\"` in the config and --mainnet"
            ),
            (Network::Mainnet, false) => bail!(
                "refusing mainnet: [live] network = \"mainnet\" also needs --mainnet on the \
                 command line (real money; say it twice)"
            ),
        }
    }

    /// The websocket for `network`.
    pub fn stream_url(&self, network: Network) -> String {
        match (self.ws_url.is_empty(), network) {
            (false, _) => self.ws_url.clone(),
            (true, Network::Mainnet) => "wss://api.hyperliquid.xyz/ws".into(),
            (true, Network::Testnet) => "wss://api.hyperliquid-testnet.xyz/ws".into(),
        }
    }

    /// The REST root for `network`.
    pub fn url(&self, network: Network) -> String {
        match (self.api_url.is_empty(), network) {
            (false, _) => self.api_url.clone(),
            (true, Network::Mainnet) => "https://api.hyperliquid.xyz".into(),
            (true, Network::Testnet) => "https://api.hyperliquid-testnet.xyz".into(),
        }
    }
}

/// `smartflow live` options: the paper session's, and whether `--mainnet` was given.
pub struct LiveOptions {
    pub session: PaperOptions,
    pub mainnet_flag: bool,
}

/// The lines printed before anything connects: venue, network, account, signer, limits.
pub fn banner(
    cfg: &Config,
    network: Network,
    url: &str,
    account: &str,
    signer: &str,
) -> Vec<String> {
    let r = &cfg.risk;
    let mode = match network {
        Network::Mainnet => "MAINNET — REAL FUNDS",
        Network::Testnet => "testnet",
    };
    vec![
        format!("smartflow live: Hyperliquid {mode} at {url}"),
        format!("account {account} (orders signed by {signer})"),
        format!(
            "limits (USDC): order {}, position {}, gross {}, open positions {}, daily loss {}, drawdown {} %",
            r.max_order_notional,
            r.max_position_notional,
            r.max_gross_exposure,
            r.max_open_positions,
            r.daily_loss_limit,
            r.max_drawdown_pct
        ),
    ]
}

/// A started venue client: the order manager on Hyperliquid, with its worker running, and
/// what reconciliation at start found.
pub struct Connected {
    pub broker: LiveBroker,
    pub reconciled: reconcile::Reconciled,
}

/// Restores (or starts) the order manager from `stored`, reconciles it with the venue,
/// starts the venue worker and attaches it. `session` numbers the cloids; `state_dir` holds
/// the outbox.
pub fn connect(
    cfg: &Config,
    api: HlApi,
    stored: Option<&[u8]>,
    session: u64,
    state_dir: &std::path::Path,
) -> Result<Connected> {
    let network = api.network();
    let meta = api.meta().context("cannot read the venue's assets")?;
    let assets = assets_of(&meta).map_err(anyhow::Error::msg)?;
    let mut broker = match stored {
        Some(j) => serde_json::from_slice::<LiveBroker>(j)
            .context("the stored live broker state is unreadable")?,
        None => {
            let mut pf = Portfolio::new(&cfg.portfolio);
            let value = api
                .account()
                .context("cannot read the account")?
                .account_value;
            (pf.cash, pf.peak_equity) = (value, value);
            OrderManager::with_venue(HyperliquidVenue::new(&api.address(), session), pf)
        }
    };
    let specs: std::collections::BTreeMap<String, _> = assets
        .iter()
        .map(|(i, a)| (i.to_string(), a.spec.clone()))
        .collect();
    broker.set_specs(&specs);
    let outbox = Outbox::new(state_dir);
    let lc = &cfg.live;
    let reconciled = reconcile::at_start(
        &api,
        broker.venue_mut(),
        &assets,
        &outbox,
        lc.unknown_orders,
    )
    .context("reconciliation with the venue failed; not trading")?;
    let venue = broker.venue_mut();
    let worker = Worker {
        api,
        outbox,
        limits: VenueLimits {
            max_position_notional: cfg.risk.max_position_notional,
            max_gross_exposure: cfg.risk.max_gross_exposure,
        },
        cadence: Cadence {
            poll: Duration::from_secs_f64(lc.poll_secs),
            positions: Duration::from_secs_f64(lc.positions_secs),
        },
        last_fill_ms: venue.last_fill_ms,
        live: venue.live_cloids(),
    };
    let (jobs, job_rx) = mpsc::channel();
    let (report_tx, reports) = mpsc::channel();
    let user = worker.api.address();
    stream::spawn(lc.stream_url(network), user, report_tx.clone())
        .context("cannot start the venue stream")?;
    std::thread::Builder::new()
        .name("hyperliquid-venue".into())
        .spawn(move || worker.run(job_rx, report_tx))
        .context("cannot start the venue worker")?;
    let link = Link {
        jobs,
        reports: Arc::new(Mutex::new(reports)),
    };
    let rt = Runtime {
        assets,
        link,
        slippage_bps: lc.slippage_bps,
    };
    venue.attach(rt, session);
    Ok(Connected { broker, reconciled })
}

/// Runs a live session until Ctrl-C or the duration.
pub fn run_live(o: LiveOptions) -> Result<PaperReport> {
    let cfg = o.session.config.clone();
    let lc = &cfg.live;
    let network = lc.network_checked(o.mainnet_flag)?;
    let signer = Signer::from_env(&lc.key_env)?;
    if !cfg.feeds.hyperliquid.enabled {
        bail!("live trading needs [feeds.hyperliquid] enabled: market orders are priced from its trades");
    }
    let signer_addr = format!("{:#x}", signer.address());
    let account = match lc.account.is_empty() {
        true => signer_addr.clone(),
        false => lc.account.to_ascii_lowercase(),
    };
    let url = lc.url(network);
    for line in banner(&cfg, network, &url, &account, &signer_addr) {
        eprintln!("{line}");
    }
    if o.session.tape.is_some() {
        eprintln!(
            "note: the tape holds the market events and commands, not the venue's answers: \
             `replay --data TAPE` repeats the signals and risk decisions, with paper fills"
        );
    }
    let budget = Arc::new(WeightBudget::new(lc.weight_per_minute));
    let api = HlApi::new(&url, signer, network, budget).with_account(&account);
    let state_dir = o.session.state_dir.clone();
    let make = move |cfg: &Config, stored: Option<&[u8]>, session: u64| -> Result<LiveBroker> {
        let c = connect(cfg, api, stored, session, &state_dir)?;
        eprintln!("{}", c.reconciled.summary());
        Ok(c.broker)
    };
    let mode = match network {
        Network::Mainnet => "live MAINNET",
        Network::Testnet => "live testnet",
    };
    run_session_in(o.session, mode, LIVE_STORE, make)
}
