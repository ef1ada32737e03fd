//! Reconciliation with the venue at start: what the store says (orders with cloids, fills
//! applied, positions from smartflow's fills) against what the venue says (`orderStatus` by
//! cloid for every order in the outbox, `userFillsByTime` since the last fill applied,
//! `frontendOpenOrders`, `clearinghouseState`). Missing fills and answers are queued into the
//! venue client (order management applies them at the first market event, into the decision
//! log); an order the store never saved is found by its cloid, never sent again; an order of
//! the account smartflow did not send is cancelled or adopted (left alone), as configured; and
//! when the positions cannot agree, entries are blocked until the owner resumes.

use super::api::{HlApi, OrderAnswer};
use super::errors::VenueError;
use super::lifecycle::{LifeState, Tracked};
use super::venue::{disagreement, Asset, HyperliquidVenue};
use super::wire::{Action, CancelWire};
use super::worker::{Outbox, Report};
use crate::domain::Instrument;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What to do with an open order of the account that smartflow did not send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownOrders {
    Cancel,
    Adopt,
}

/// What reconciliation found and did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reconciled {
    /// Fills of smartflow's orders that the store had not applied.
    pub missing_fills: usize,
    /// Orders the store did not know, found on the venue by their cloid (not sent again).
    pub found_by_cloid: Vec<String>,
    /// Orders in the outbox the venue never received (a crash before sending).
    pub never_sent: Vec<String>,
    /// Open orders of the account smartflow did not send, by venue order id.
    pub unknown_orders: Vec<u64>,
    pub cancelled_unknown: usize,
    /// Account value, USDC.
    pub account_value: Decimal,
    /// The address's action budget: used and allowed.
    pub actions_used: u64,
    pub actions_cap: u64,
    /// Why entries are blocked, if the positions disagree.
    pub blocked: Option<String>,
}

impl Reconciled {
    /// One line for the console.
    pub fn summary(&self) -> String {
        format!(
            "reconciled with the venue: {} missing fills applied, {} orders found by cloid, {} \
             never sent, {} unknown open orders ({} cancelled); account value {} USDC; \
             actions {} of {}{}",
            self.missing_fills,
            self.found_by_cloid.len(),
            self.never_sent.len(),
            self.unknown_orders.len(),
            self.cancelled_unknown,
            self.account_value,
            self.actions_used,
            self.actions_cap,
            match &self.blocked {
                Some(b) => format!("; ENTRIES BLOCKED: {b}"),
                None => String::new(),
            }
        )
    }
}

/// Reconciles `venue` (restored from the store) with the account on the venue; `assets` are
/// the venue's perpetuals (from `meta`), to cancel unknown orders by asset index.
pub fn at_start(
    api: &HlApi,
    venue: &mut HyperliquidVenue,
    assets: &BTreeMap<Instrument, Asset>,
    outbox: &Outbox,
    policy: UnknownOrders,
) -> Result<Reconciled, VenueError> {
    let mut r = Reconciled::default();
    let mut reports = Vec::new();
    let budget = api.refresh_action_budget()?;
    (r.actions_used, r.actions_cap) = (budget.used, budget.cap);
    find_outbox_orders(api, venue, outbox, &mut r, &mut reports)?;
    let mut ledger = venue.ledger.clone();
    // Entries found by cloid that the store never saved: their exit plan is lost with it.
    let mut unprotected = std::collections::BTreeSet::new();
    for f in api.fills_since(venue.last_fill_ms)? {
        let hit = venue
            .tracked
            .values()
            .find(|t| t.oid == Some(f.oid) || f.cloid.as_deref() == Some(t.cloid.as_str()));
        if let Some(t) = hit.filter(|_| !venue.seen_fill(f.tid)) {
            r.missing_fills += 1;
            *ledger.entry(f.coin.clone()).or_default() += if f.is_buy { f.sz } else { -f.sz };
            if !t.order.reduce_only && r.found_by_cloid.contains(&t.order.id) {
                unprotected.insert(format!("{} ({})", t.coin, t.order.id));
            }
        }
        reports.push(Report::Fill(f));
    }
    let cloids: std::collections::BTreeSet<&str> =
        venue.tracked.values().map(|t| t.cloid.as_str()).collect();
    let mut cancels = Vec::new();
    for o in api.open_orders()? {
        if o.cloid.as_deref().is_some_and(|c| cloids.contains(c)) {
            continue;
        }
        r.unknown_orders.push(o.oid);
        let asset = assets.values().find(|a| a.coin == o.coin);
        if let (UnknownOrders::Cancel, Some(a)) = (policy, asset) {
            cancels.push(CancelWire {
                a: a.index,
                o: o.oid,
            });
        }
    }
    if !cancels.is_empty() {
        let n = cancels.len();
        let statuses = api.exchange(&Action::Cancel { cancels })?;
        r.cancelled_unknown = statuses.iter().filter(|s| *s == "success").count().min(n);
    }
    let account = api.account()?;
    r.account_value = account.account_value;
    r.blocked = disagreement(&ledger, &account.positions).or_else(|| {
        let list: Vec<String> = unprotected.into_iter().collect();
        (!list.is_empty()).then(|| {
            format!(
                "{}: an entry sent just before a crash was found on the venue and filled, but \
                 its exit plan (take-profit, stop-loss) was never saved: set exits or flatten, \
                 then `resume`",
                list.join(", ")
            )
        })
    });
    if r.blocked.is_some() {
        venue.blocked.clone_from(&r.blocked);
    }
    venue.push_reports(reports);
    Ok(r)
}

/// Every outbox order the store does not hold as finished: asked for by cloid.
fn find_outbox_orders(
    api: &HlApi,
    venue: &mut HyperliquidVenue,
    outbox: &Outbox,
    r: &mut Reconciled,
    reports: &mut Vec<Report>,
) -> Result<(), VenueError> {
    let entries = outbox
        .entries()
        .map_err(|e| VenueError::Other(format!("cannot read the outbox: {e}")))?;
    let known: BTreeMap<String, LifeState> = venue
        .tracked
        .values()
        .map(|t| (t.cloid.clone(), t.state))
        .collect();
    for e in entries {
        let state = known.get(&e.cloid).copied();
        if state.is_some_and(LifeState::is_terminal) || e.order.id.is_empty() {
            continue;
        }
        // Only this account's own orders of earlier sessions can be in the outbox.
        let id = e.order.id.clone();
        match api.order_by_cloid(&e.cloid)? {
            None if state.is_none() => r.never_sent.push(id),
            None => reports.push(Report::Gone {
                id,
                status: "rejected".into(),
                reason: "rejected: never reached the venue (crash before sending)".into(),
            }),
            Some(s) => {
                if state.is_none() {
                    r.found_by_cloid.push(id.clone());
                    venue.adopt(Tracked {
                        order: e.order.clone(),
                        cloid: e.cloid.clone(),
                        coin: e.coin.clone(),
                        asset: e.asset,
                        oid: Some(s.oid),
                        state: LifeState::Submitted,
                        ioc_total: None,
                        ioc: false,
                        cancel_reason: None,
                    });
                }
                let answer = OrderAnswer::Resting { oid: s.oid };
                reports.push(Report::Answer {
                    id: id.clone(),
                    answer,
                });
                if !matches!(s.status.as_str(), "open" | "triggered" | "filled") {
                    let reason = format!(
                        "{}: reported by the venue",
                        super::worker::status_reason(&s.status)
                    );
                    reports.push(Report::Gone {
                        id,
                        status: s.status,
                        reason,
                    });
                }
            }
        }
    }
    Ok(())
}
