//! A second live venue: Bybit spot through the official `ccxt` crate (feature `ccxt-bybit`,
//! off by default), behind the same [`Venue`] seam as Hyperliquid, so order management
//! (brackets, exits, halt) is the same. ccxt is asynchronous and speaks `f64`: a worker thread
//! owns the exchange on a runtime of its own, and `Decimal` becomes `f64` only in the call.
//! Orders carry smartflow's order id as Bybit's `orderLinkId` (its client order id); live
//! orders are polled (`fetch_order`) for fills and their end.

use crate::domain::{
    Fill, Instrument, Liquidity, MarketEvent, Order, OrderStatus, OrderType, Side,
};
use crate::execution::venue::{Venue, VenueEvent};
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where and how to reach Bybit (keys from the environment, never stored).
#[derive(Clone, Debug)]
pub struct CcxtSettings {
    /// Overrides every API root (tests: a fake on 127.0.0.1); `None`: Bybit's own.
    pub api_url: Option<String>,
    pub api_key: String,
    pub secret: String,
    pub poll: Duration,
}

impl CcxtSettings {
    /// Keys from `BYBIT_API_KEY` and `BYBIT_API_SECRET`; errors name the missing variable.
    pub fn from_env(api_url: Option<String>, poll: Duration) -> Result<Self, String> {
        let var = |k: &str| match std::env::var(k) {
            Ok(v) if !v.is_empty() => Ok(v),
            _ => Err(format!(
                "{k} is not set (Bybit API key and secret come from the environment)"
            )),
        };
        Ok(Self {
            api_url,
            api_key: var("BYBIT_API_KEY")?,
            secret: var("BYBIT_API_SECRET")?,
            poll,
        })
    }
}

enum Job {
    Place {
        order: Box<Order>,
        symbol: String,
        price: Option<f64>,
    },
    Cancel {
        id: String,
        venue_id: String,
        symbol: String,
        reason: String,
    },
}

/// What the worker saw of one order: its venue id, filled amount, average price, fee, status.
#[derive(Debug)]
enum Report {
    Placed {
        id: String,
        venue_id: String,
    },
    Rejected {
        id: String,
        why: String,
    },
    State {
        id: String,
        filled: f64,
        average: f64,
        fee: f64,
        status: String,
        ts: i64,
    },
    Canceled {
        id: String,
        reason: String,
    },
}

/// The worker's end: jobs out, reports in.
type Link = (Sender<Job>, Arc<Mutex<Receiver<Report>>>);

/// `bybit:BTC/USDT` → `BTC/USDT`.
fn symbol(i: &Instrument) -> String {
    let s = i.to_string();
    s.split_once(':').map_or(s.clone(), |(_, p)| p.to_string())
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Live {
    order: Order,
    venue_id: Option<String>,
    cancel_reason: Option<String>,
}

/// Bybit spot through ccxt as a [`Venue`].
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct CcxtBybitVenue {
    orders: BTreeMap<String, Live>,
    #[serde(skip)]
    marks: BTreeMap<Instrument, Decimal>,
    #[serde(skip)]
    link: Option<Link>,
}

impl CcxtBybitVenue {
    /// Starts the worker (markets loaded before the first order).
    pub fn start(s: CcxtSettings) -> std::io::Result<Self> {
        let (jobs, job_rx) = mpsc::channel();
        let (rep_tx, reports) = mpsc::channel();
        std::thread::Builder::new()
            .name("ccxt-bybit".into())
            .spawn(move || worker(s, job_rx, rep_tx))?;
        Ok(Self {
            link: Some((jobs, Arc::new(Mutex::new(reports)))),
            ..Default::default()
        })
    }

    fn send(&self, j: Job) {
        if let Some((tx, _)) = &self.link {
            let _ = tx.send(j);
        }
    }

    fn handle(&mut self, r: Report, out: &mut Vec<VenueEvent>) {
        match r {
            Report::Placed { id, venue_id } => {
                if let Some(l) = self.orders.get_mut(&id) {
                    l.venue_id = Some(venue_id);
                    out.push(VenueEvent::Accepted(l.order.clone()));
                }
            }
            Report::Rejected { id, why } => {
                self.end(&id, format!("rejected: VENUE_ERROR: {why}"), out)
            }
            Report::Canceled { id, reason } => self.end(&id, reason, out),
            Report::State {
                id,
                filled,
                average,
                fee,
                status,
                ts,
            } => {
                self.on_state(&id, filled, average, fee, ts, out);
                if status == "canceled" || status == "expired" || status == "rejected" {
                    let why = self.orders.get(&id).and_then(|l| l.cancel_reason.clone());
                    self.end(
                        &id,
                        why.unwrap_or(format!("canceled: {status} (venue)")),
                        out,
                    );
                }
            }
        }
    }

    /// A poll's cumulative fill: the part not seen yet becomes a fill at the average price.
    fn on_state(
        &mut self,
        id: &str,
        filled: f64,
        avg: f64,
        fee: f64,
        ts: i64,
        out: &mut Vec<VenueEvent>,
    ) {
        let Some(l) = self.orders.get_mut(id) else {
            return;
        };
        let (Some(total), Some(px)) = (Decimal::from_f64(filled), Decimal::from_f64(avg)) else {
            return;
        };
        let qty = (total - l.order.filled_qty).min(l.order.remaining());
        if qty <= Decimal::ZERO {
            return;
        }
        l.order.filled_qty += qty;
        let full = l.order.remaining() <= Decimal::ZERO;
        l.order.status = if full {
            OrderStatus::Filled
        } else {
            OrderStatus::PartiallyFilled
        };
        let fill = Fill {
            id: format!("bybit-{id}-{}", l.order.filled_qty),
            order_id: id.to_string(),
            instrument: l.order.instrument.clone(),
            side: l.order.side,
            ts_ms: ts,
            price: px.round_dp(8),
            qty,
            fee: Decimal::from_f64(fee).unwrap_or_default().round_dp(8),
            liquidity: Liquidity::Taker,
        };
        out.push(VenueEvent::Fill {
            fill,
            order: l.order.clone(),
        });
        if full {
            self.orders.remove(id);
        }
    }

    fn end(&mut self, id: &str, reason: String, out: &mut Vec<VenueEvent>) {
        if let Some(mut l) = self.orders.remove(id) {
            l.order.status = OrderStatus::Canceled;
            out.push(VenueEvent::Done {
                order: l.order,
                reason,
            });
        }
    }
}

impl Venue for CcxtBybitVenue {
    fn submit(&mut self, order: Order, out: &mut Vec<VenueEvent>) {
        let price = match &order.order_type {
            OrderType::Market => None,
            OrderType::Limit { price } => price.to_f64(),
            // Spot stop orders are not sent through this venue yet.
            OrderType::Stop { .. } => {
                let mut order = order;
                order.status = OrderStatus::Canceled;
                let reason =
                    "rejected: VENUE_UNSUPPORTED: stop orders on Bybit spot via ccxt".into();
                return out.push(VenueEvent::Done { order, reason });
            }
        };
        let symbol = symbol(&order.instrument);
        let live = Live {
            order: order.clone(),
            venue_id: None,
            cancel_reason: None,
        };
        self.orders.insert(order.id.clone(), live);
        self.send(Job::Place {
            order: Box::new(order),
            symbol,
            price,
        });
    }

    fn cancel(&mut self, order_id: &str, reason: &str, _out: &mut Vec<VenueEvent>) {
        let Some(l) = self.orders.get_mut(order_id) else {
            return;
        };
        l.cancel_reason = Some(reason.to_string());
        if let Some(v) = l.venue_id.clone() {
            let symbol = symbol(&l.order.instrument);
            let (id, reason) = (order_id.to_string(), reason.to_string());
            self.send(Job::Cancel {
                id,
                venue_id: v,
                symbol,
                reason,
            });
        }
    }

    fn amend_qty(&mut self, _order_id: &str, _qty: Decimal) {}

    fn on_market(&mut self, e: &MarketEvent, out: &mut Vec<VenueEvent>) {
        if let MarketEvent::Trade(t) = e {
            self.marks.insert(t.instrument.clone(), t.price);
        }
        let reports: Vec<Report> = match &self.link {
            Some((_, rx)) => rx
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .try_iter()
                .collect(),
            None => vec![],
        };
        for r in reports {
            self.handle(r, out);
        }
    }
}

fn exchange(s: &CcxtSettings) -> ccxt::Bybit {
    let mut cfg = serde_json::json!({"apiKey": s.api_key, "secret": s.secret,
        // A unified trading account (UTA, every new Bybit account): its v5 order endpoints
        // serve spot orders, and ccxt need not ask which account kind it is.
        "options": {"fetchMarkets": {"types": ["spot"]}, "enableUnifiedAccount": true,
            "enableUnifiedMargin": false}});
    if let Some(u) = &s.api_url {
        cfg["urls"] = serde_json::json!({"api": {"spot": u, "futures": u, "v2": u, "public": u, "private": u}});
    }
    ccxt::Bybit::new(Some(ccxt::Value::from(cfg)))
}

fn worker(s: CcxtSettings, jobs: Receiver<Job>, reports: Sender<Report>) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    let mut ex = exchange(&s);
    let mut loaded = false;
    // Live orders: our id → (venue id, symbol).
    let mut live: BTreeMap<String, (String, String)> = BTreeMap::new();
    loop {
        let job = match jobs.recv_timeout(s.poll) {
            Ok(j) => Some(j),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        if !loaded {
            loaded = rt.block_on(ex.try_load_markets(false)).is_ok();
        }
        match job {
            Some(Job::Place {
                order,
                symbol,
                price,
            }) => {
                let kind = if price.is_some() { "limit" } else { "market" };
                let side = if order.side == Side::Buy {
                    "buy"
                } else {
                    "sell"
                };
                let amount = order.qty.to_f64().unwrap_or(0.0);
                let mut params = vec![("orderLinkId", order.id.as_str())];
                if order.reduce_only {
                    params.push(("reduceOnly", "true"));
                }
                let p: ccxt::Params = match params.as_slice() {
                    [a] => [*a].into(),
                    [a, b] => [*a, *b].into(),
                    _ => ccxt::Params::none(),
                };
                let r = rt.block_on(ex.create_order(&symbol, kind, side, amount, price, p));
                let id = order.id.clone();
                let rep = match r {
                    Ok(o) => match o.id {
                        Some(v) => {
                            live.insert(id.clone(), (v.clone(), symbol));
                            Report::Placed { id, venue_id: v }
                        }
                        None => Report::Rejected {
                            id,
                            why: "no order id in the answer".into(),
                        },
                    },
                    Err(e) => Report::Rejected {
                        id,
                        why: format!("{e:?}"),
                    },
                };
                let _ = reports.send(rep);
            }
            Some(Job::Cancel {
                id,
                venue_id,
                symbol,
                reason,
            }) => {
                if rt
                    .block_on(ex.cancel_order(&venue_id, Some(&symbol), ccxt::Params::none()))
                    .is_ok()
                {
                    live.remove(&id);
                    let _ = reports.send(Report::Canceled { id, reason });
                }
            }
            None => {
                for (id, (v, symbol)) in live.clone() {
                    // Bybit's fetchOrder sees the last 500 orders; ours are recent.
                    let ack: ccxt::Params =
                        ccxt::Value::from(serde_json::json!({"acknowledged": true})).into();
                    let Ok(o) = rt.block_on(ex.fetch_order(&v, Some(&symbol), ack)) else {
                        continue;
                    };
                    let status = o.status.clone().unwrap_or_default();
                    if status != "open" {
                        live.remove(&id);
                    }
                    let fee = o
                        .fee
                        .as_ref()
                        .and_then(|f| f.get("cost"))
                        .and_then(|c| c.to_string().parse().ok());
                    let _ = reports.send(Report::State {
                        id,
                        filled: o.filled.unwrap_or(0.0),
                        average: o.average.or(o.price).unwrap_or(0.0),
                        fee: fee.unwrap_or(0.0),
                        status,
                        ts: o.last_trade_timestamp.or(o.timestamp).unwrap_or(0),
                    });
                }
            }
        }
    }
}
