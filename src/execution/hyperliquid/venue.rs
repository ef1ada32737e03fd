//! [`HyperliquidVenue`]: the [`Venue`] order management drives on Hyperliquid. Orders are
//! rounded to the asset's rules (lot = 10^−szDecimals; price ≤ 5 significant figures and
//! 6 − szDecimals decimals) and signed at this edge, each with a cloid; a market order is an
//! IOC limit at the last trade ± `slippage_bps`, a stop-loss a reduce-only trigger order
//! (market once triggered). What the venue did comes back from the worker thread and is
//! handed to order management at the next market event, through each order's
//! [`Tracked`] state machine.
//!
//! Its state (orders with cloids and states, fills applied, the position each coin holds by
//! smartflow's fills, a reconciliation block) is saved with order management's.

use super::api::{VenueFill, VenuePosition};
use super::lifecycle::{domain_fill, LifeState, Step, Tracked};
use super::wire::{self, LimitWire, OrderTypeWire, OrderWire, TriggerWire};
use super::worker::{Job, Report};
use crate::domain::spec::InstrumentSpec;
use crate::domain::{Instrument, MarketEvent, Order, OrderStatus, OrderType, Side};
use crate::execution::venue::{Venue, VenueEvent};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};

/// Fill ids remembered against duplicates (answers and polls overlap).
const SEEN_TIDS: usize = 100_000;

/// An asset smartflow may trade: its index, coin and rules.
#[derive(Clone, Debug)]
pub struct Asset {
    pub index: u32,
    pub coin: String,
    pub spec: InstrumentSpec,
}

/// The perpetuals of a `meta` answer under smartflow's instrument names
/// (`hyperliquid:BTC/USDC`), with their asset index (position in `universe`) and rules.
pub fn assets_of(meta: &serde_json::Value) -> Result<BTreeMap<Instrument, Asset>, String> {
    let specs = crate::feeds::venues::hyperliquid::perp_specs(meta)?;
    let universe = meta["universe"]
        .as_array()
        .ok_or("meta: no universe array")?;
    let mut out = BTreeMap::new();
    for (i, m) in universe.iter().enumerate() {
        let coin = m["name"].as_str().unwrap_or_default();
        let name = format!("hyperliquid:{coin}/USDC");
        if let Some(spec) = specs.get(&name) {
            let a = Asset {
                index: i as u32,
                coin: coin.to_string(),
                spec: spec.clone(),
            };
            out.insert(Instrument::new(&name), a);
        }
    }
    Ok(out)
}

/// The worker's end: jobs out, reports in.
#[derive(Clone)]
pub struct Link {
    pub jobs: Sender<Job>,
    pub reports: Arc<Mutex<Receiver<Report>>>,
}

/// What a running venue client needs besides its saved state.
#[derive(Clone)]
pub struct Runtime {
    pub assets: BTreeMap<Instrument, Asset>,
    pub link: Link,
    pub slippage_bps: Decimal,
}

#[derive(Clone, Default, Serialize, Deserialize)]
pub struct HyperliquidVenue {
    pub account: String,
    pub session: u64,
    /// Orders by smartflow order id (terminal ones pruned).
    pub tracked: BTreeMap<String, Tracked>,
    seen: VecDeque<u64>,
    #[serde(skip)]
    seen_set: BTreeSet<u64>,
    /// Newest fill applied, venue ms.
    pub last_fill_ms: i64,
    /// Signed position per coin from smartflow's own fills.
    pub ledger: BTreeMap<String, Decimal>,
    /// Fills of orders smartflow did not send (counted, not applied).
    pub foreign_fills: u64,
    /// Why entries are refused until the owner resumes (the venue and smartflow disagree).
    pub blocked: Option<String>,
    /// Reports waiting for the next market event (reconciliation at start puts them here).
    #[serde(skip)]
    pending: VecDeque<Report>,
    #[serde(skip)]
    marks: BTreeMap<Instrument, Decimal>,
    #[serde(skip)]
    rt: Option<Runtime>,
}

impl std::fmt::Debug for HyperliquidVenue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HyperliquidVenue")
            .field("account", &self.account)
            .field("tracked", &self.tracked.len())
            .field("blocked", &self.blocked)
            .finish()
    }
}

impl PartialEq for HyperliquidVenue {
    fn eq(&self, o: &Self) -> bool {
        serde_json::to_value(self).ok() == serde_json::to_value(o).ok()
    }
}

impl HyperliquidVenue {
    pub fn new(account: &str, session: u64) -> Self {
        Self {
            account: account.to_ascii_lowercase(),
            session,
            ..Default::default()
        }
    }

    /// Attaches the running worker and the venue's assets (after a restore, too).
    pub fn attach(&mut self, rt: Runtime, session: u64) {
        self.session = session;
        self.seen_set = self.seen.iter().copied().collect();
        self.rt = Some(rt);
    }

    /// Queues reports to be handled at the next market event (reconciliation at start).
    pub fn push_reports(&mut self, r: impl IntoIterator<Item = Report>) {
        self.pending.extend(r);
    }

    /// The cloids of orders not yet terminal, with their ids.
    pub fn live_cloids(&self) -> BTreeMap<String, String> {
        self.tracked
            .values()
            .filter(|t| !t.state.is_terminal())
            .map(|t| (t.cloid.clone(), t.order.id.clone()))
            .collect()
    }

    /// Whether fill `tid` was applied already.
    pub fn seen_fill(&self, tid: u64) -> bool {
        self.seen_set.contains(&tid) || self.seen.contains(&tid)
    }

    /// Adopts an order found in the outbox that the saved state does not know (a crash
    /// between sending it and saving).
    pub fn adopt(&mut self, t: Tracked) {
        self.tracked.entry(t.order.id.clone()).or_insert(t);
    }

    fn reject(order: Order, why: String, out: &mut Vec<VenueEvent>) {
        let mut order = order;
        order.status = OrderStatus::Canceled;
        out.push(VenueEvent::Done {
            order,
            reason: format!("rejected: {why}"),
        });
    }

    /// The order's wire form, rounded to the asset's rules; `Err` says why it cannot go out.
    fn to_wire(&self, o: &Order, a: &Asset, cloid: &str) -> Result<(OrderWire, bool), String> {
        let rt = self.rt.as_ref().ok_or("VENUE_NOT_CONNECTED: no worker")?;
        let slip = rt.slippage_bps / Decimal::from(10_000);
        let buy = o.side == Side::Buy;
        // Worse than `px` by the slippage allowance: what a marketable order may pay.
        let worst = |px: Decimal| {
            let p = if buy {
                px * (Decimal::ONE + slip)
            } else {
                px * (Decimal::ONE - slip)
            };
            a.spec.round_limit(p, o.side.opposite())
        };
        let limit = |tif: &str| OrderTypeWire {
            limit: Some(LimitWire { tif: tif.into() }),
            trigger: None,
        };
        let (px, t, ioc) = match &o.order_type {
            OrderType::Market => {
                let mark = self.marks.get(&o.instrument).ok_or_else(|| {
                    format!(
                        "VENUE_NO_MARK: no trade of {} seen yet to price a market order",
                        a.coin
                    )
                })?;
                (worst(*mark), limit("Ioc"), true)
            }
            OrderType::Limit { price } => (a.spec.round_limit(*price, o.side), limit("Gtc"), false),
            OrderType::Stop { trigger } => {
                let trig = a.spec.round_trigger(*trigger, o.side);
                let t = OrderTypeWire {
                    limit: None,
                    trigger: Some(TriggerWire {
                        is_market: true,
                        trigger_px: wire::decimal_to_wire(trig).map_err(|e| e.to_string())?,
                        tpsl: "sl".into(),
                    }),
                };
                (worst(trig), t, false)
            }
        };
        let sz = a.spec.round_qty(o.remaining());
        let num =
            |d: Decimal| wire::decimal_to_wire(d).map_err(|e| format!("VENUE_INVALID_SIZE: {e}"));
        let w = OrderWire {
            a: a.index,
            b: buy,
            p: num(px)?,
            s: num(sz)?,
            r: o.reduce_only,
            t,
            c: Some(cloid.to_string()),
        };
        Ok((w, ioc))
    }

    fn handle(&mut self, r: Report, out: &mut Vec<VenueEvent>) {
        match r {
            Report::Answer { id, answer } => self.step(&id, Step::Answer(answer), out),
            Report::Gone { id, status, reason } => {
                self.step(&id, Step::Gone { status, reason }, out)
            }
            Report::Fill(f) => self.on_fill(f, out),
            Report::Positions(p) => self.check_positions(&p),
            Report::Status(u) => self.on_status(u, out),
            Report::Trouble(e) => tracing::warn!("hyperliquid: {e}"),
        }
    }

    /// An `orderUpdates` status: resting (or its trigger hit) accepts the order; filled waits
    /// for its fills; any other status ends it.
    fn on_status(&mut self, u: super::stream::StatusUpdate, out: &mut Vec<VenueEvent>) {
        let Some(t) = self.tracked.values_mut().find(|t| t.cloid == u.cloid) else {
            return;
        };
        let step = match u.status.as_str() {
            "open" | "triggered" => Step::Answer(super::api::OrderAnswer::Resting { oid: u.oid }),
            "filled" => return,
            s => Step::Gone {
                reason: t
                    .cancel_reason
                    .clone()
                    .unwrap_or_else(|| format!("{}: {s} (venue)", super::worker::status_reason(s))),
                status: u.status,
            },
        };
        t.apply(step, out);
    }

    fn step(&mut self, id: &str, s: Step, out: &mut Vec<VenueEvent>) {
        if let Some(t) = self.tracked.get_mut(id) {
            t.apply(s, out);
        }
    }

    fn on_fill(&mut self, f: VenueFill, out: &mut Vec<VenueEvent>) {
        if !self.seen_set.insert(f.tid) {
            return;
        }
        self.seen.push_back(f.tid);
        if self.seen.len() > SEEN_TIDS {
            if let Some(old) = self.seen.pop_front() {
                self.seen_set.remove(&old);
            }
        }
        self.last_fill_ms = self.last_fill_ms.max(f.time_ms);
        let mine = self
            .tracked
            .values_mut()
            .find(|t| t.oid == Some(f.oid) || f.cloid.as_deref() == Some(t.cloid.as_str()));
        let Some(t) = mine else {
            self.foreign_fills += 1;
            return;
        };
        t.oid.get_or_insert(f.oid);
        let signed = if f.is_buy { f.sz } else { -f.sz };
        *self.ledger.entry(f.coin.clone()).or_default() += signed;
        let fill = domain_fill(&f, t);
        t.apply(Step::Fill(fill), out);
    }

    /// Blocks entries when the venue holds less than smartflow's fills say (closed or
    /// liquidated outside smartflow), or the other side. More than that is an outside position
    /// (it counts towards the limits, checked before each entry).
    pub fn check_positions(&mut self, venue: &[VenuePosition]) {
        if self.blocked.is_some() {
            return;
        }
        self.blocked = disagreement(&self.ledger, venue);
        if let Some(b) = &self.blocked {
            tracing::error!("hyperliquid: trading blocked: {b}");
        }
    }

    /// Drops terminal orders (their fills are in; late ones are counted as foreign).
    fn prune(&mut self) {
        if self.tracked.len() > 256 {
            self.tracked.retain(|_, t| !t.state.is_terminal());
        }
    }
}

/// Why smartflow's positions (from its fills) and the venue's cannot both be right, if so.
pub fn disagreement(ledger: &BTreeMap<String, Decimal>, venue: &[VenuePosition]) -> Option<String> {
    for (coin, mine) in ledger.iter().filter(|(_, q)| !q.is_zero()) {
        let theirs: Decimal = venue
            .iter()
            .filter(|p| &p.coin == coin)
            .map(|p| p.szi)
            .sum();
        let same_side = theirs.is_sign_negative() == mine.is_sign_negative() && !theirs.is_zero();
        if !same_side || theirs.abs() < mine.abs() {
            return Some(format!(
                "{coin}: smartflow's fills add up to {mine}, the venue reports {theirs} \
                 (closed or liquidated outside smartflow?); check the account, then `resume` \
                 to adopt the venue's position"
            ));
        }
    }
    None
}

impl Venue for HyperliquidVenue {
    fn submit(&mut self, order: Order, out: &mut Vec<VenueEvent>) {
        let entry = !order.reduce_only;
        if let (Some(why), true) = (&self.blocked, entry) {
            return Self::reject(order, format!("VENUE_UNRECONCILED: {why}"), out);
        }
        let Some(asset) = self
            .rt
            .as_ref()
            .and_then(|r| r.assets.get(&order.instrument))
            .cloned()
        else {
            let why = format!(
                "VENUE_UNKNOWN_ASSET: {} is not a Hyperliquid perpetual",
                order.instrument
            );
            return Self::reject(order, why, out);
        };
        let cloid = wire::cloid(&self.account, self.session, &order.id);
        let (w, ioc) = match self.to_wire(&order, &asset, &cloid) {
            Ok(w) => w,
            Err(why) => return Self::reject(order, why, out),
        };
        let notional = entry.then(|| {
            let px: Decimal = w.p.parse().unwrap_or_default();
            let sz: Decimal = w.s.parse().unwrap_or_default();
            px * sz
        });
        let t = Tracked {
            order: order.clone(),
            cloid: cloid.clone(),
            coin: asset.coin.clone(),
            asset: asset.index,
            oid: None,
            state: LifeState::Submitted,
            ioc_total: None,
            ioc,
            cancel_reason: None,
        };
        self.tracked.insert(order.id.clone(), t);
        let job = Job::Place {
            id: order.id.clone(),
            cloid,
            coin: asset.coin,
            wire: w,
            order: Box::new(order),
            entry_notional: notional,
        };
        if let Some(rt) = &self.rt {
            let _ = rt.link.jobs.send(job);
        }
    }

    fn cancel(&mut self, order_id: &str, reason: &str, _out: &mut Vec<VenueEvent>) {
        let Some(t) = self
            .tracked
            .get_mut(order_id)
            .filter(|t| !t.state.is_terminal())
        else {
            return;
        };
        t.cancel_reason = Some(reason.to_string());
        let job = Job::Cancel {
            id: order_id.to_string(),
            cloid: t.cloid.clone(),
            asset: t.asset,
            reason: reason.to_string(),
        };
        if let Some(rt) = &self.rt {
            let _ = rt.link.jobs.send(job);
        }
    }

    /// Nothing to send: exits are reduce-only, and the venue never lets a reduce-only order
    /// grow a position, so a stop larger than what is left closes only what is left.
    fn amend_qty(&mut self, _order_id: &str, _qty: Decimal) {}

    fn on_market(&mut self, e: &MarketEvent, out: &mut Vec<VenueEvent>) {
        if let MarketEvent::Trade(t) = e {
            self.marks.insert(t.instrument.clone(), t.price);
        }
        if let Some(rt) = &self.rt {
            let rx = rt.link.reports.lock().unwrap_or_else(|p| p.into_inner());
            self.pending.extend(rx.try_iter());
        }
        while let Some(r) = self.pending.pop_front() {
            self.handle(r, out);
        }
        self.prune();
    }

    fn on_resume(&mut self) {
        if let Some(why) = self.blocked.take() {
            tracing::warn!("hyperliquid: the owner resumed trading over: {why}");
        }
    }
}
