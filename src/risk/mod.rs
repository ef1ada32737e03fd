//! Pre-trade risk: trading state, limits and kill switch. Pure code on event time.
//!
//! Every intent gets a [`Verdict`]: approved (possibly resized down to the tightest notional
//! limit) or refused with stable reason codes. Daily realized loss and drawdown from peak equity
//! switch the trading state to `Halted`. The broker's portfolio reaches the manager once per batch
//! ([`PortfolioView`]); approvals since then are counted as exposure on top of it.

pub mod limits;

use crate::domain::intent::{round_down, OrderIntent};
use crate::domain::{FeedState, Instrument, MarketEvent};
use crate::execution::PortfolioView;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};

/// Trading state: `Active` trades; `Reducing` allows only reduce-only orders; `Halted` allows none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TradingState {
    Active,
    Reducing,
    Halted,
}

/// `[risk]` config. Notionals in the portfolio's quote currency.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RiskConfig {
    pub max_order_notional: Decimal,
    pub max_position_notional: Decimal,
    /// Σ position notionals plus live entry orders.
    pub max_gross_exposure: Decimal,
    pub max_open_positions: usize,
    /// Realized loss (after fees) within one UTC day that halts trading; positive number.
    pub daily_loss_limit: Decimal,
    /// Drawdown from peak equity, in %, that halts trading.
    pub max_drawdown_pct: Decimal,
    /// Minimum time between two approved entries on one instrument.
    pub instrument_cooldown_secs: i64,
    /// An instrument whose last trade is older than this (against the newest event) is stale.
    pub stale_after_ms: i64,
    /// Order rate limit: at most `max_orders` approvals per `rate_window_secs`.
    pub max_orders: usize,
    pub rate_window_secs: i64,
    /// Orders resized below this notional are refused.
    pub min_order_notional: Decimal,
    /// Quantity step used when resizing.
    pub qty_step: Decimal,
    pub initial_state: TradingState,
}

impl Default for RiskConfig {
    fn default() -> Self {
        Self {
            max_order_notional: dec!(0.02),
            max_position_notional: dec!(0.02),
            max_gross_exposure: dec!(0.06),
            max_open_positions: 3,
            daily_loss_limit: dec!(0.02),
            max_drawdown_pct: dec!(10),
            instrument_cooldown_secs: 3600,
            stale_after_ms: 60_000,
            max_orders: 10,
            rate_window_secs: 60,
            min_order_notional: dec!(0.0001),
            qty_step: dec!(1),
            initial_state: TradingState::Active,
        }
    }
}

impl RiskConfig {
    pub fn validate(&self) -> Result<(), String> {
        for (k, v) in [
            ("risk.max_order_notional", self.max_order_notional),
            ("risk.max_position_notional", self.max_position_notional),
            ("risk.max_gross_exposure", self.max_gross_exposure),
            ("risk.daily_loss_limit", self.daily_loss_limit),
            ("risk.max_drawdown_pct", self.max_drawdown_pct),
            ("risk.qty_step", self.qty_step),
        ] {
            if v <= Decimal::ZERO {
                return Err(format!("{k}: must be > 0"));
            }
        }
        if self.min_order_notional < Decimal::ZERO {
            return Err("risk.min_order_notional: must be ≥ 0".into());
        }
        if self.max_open_positions == 0 {
            return Err("risk.max_open_positions: must be ≥ 1".into());
        }
        if self.max_orders == 0 {
            return Err("risk.max_orders: must be ≥ 1".into());
        }
        crate::config::secs_within("risk.rate_window_secs", self.rate_window_secs, 1)?;
        crate::config::secs_within(
            "risk.instrument_cooldown_secs",
            self.instrument_cooldown_secs,
            0,
        )?;
        // Milliseconds, only compared with event-time differences (times are within
        // 1970..2100): any value up to 10^14 is safe; above that it is a typo.
        if !(1..=100_000_000_000_000).contains(&self.stale_after_ms) {
            return Err("risk.stale_after_ms: must be within 1..=100000000000000".into());
        }
        Ok(())
    }
}

/// An entry's notional times this is the cash it may take with its fees (up to 0.2 %).
const FEE_MARGIN: Decimal = dec!(1.002);

/// Stable refusal / resize codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReasonCode {
    TradingHalted,
    TradingReducing,
    /// Reducing because an operator paused the session (`pause` command).
    Paused,
    DailyLossLimit,
    MaxDrawdown,
    QuoteMismatch,
    StaleData,
    FeedUnhealthy,
    InstrumentCooldown,
    MaxOpenPositions,
    OrderRateLimit,
    MaxOrderNotional,
    MaxPositionNotional,
    MaxGrossExposure,
    /// The entry would spend more than the cash not yet committed (times its leverage).
    InsufficientBuyingPower,
    BelowMinNotional,
}

impl ReasonCode {
    /// The stable code, as in the decision log (`MAX_ORDER_NOTIONAL`): its serde name.
    pub fn code(self) -> String {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::String(s)) => s,
            _ => format!("{self:?}"),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Reason {
    pub code: ReasonCode,
    pub detail: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Verdict {
    pub id: String,
    pub intent_id: String,
    pub ts_ms: i64,
    pub instrument: Instrument,
    pub approved: bool,
    /// Approved quantity (base units); 0 when refused.
    pub qty: Decimal,
    pub notional: Decimal,
    pub resized: bool,
    /// Refusal reasons, or the limits that resized an approved order.
    pub reasons: Vec<Reason>,
    pub trading_state: TradingState,
}

/// Serialized with the broker's state, so a restart keeps the trading state, run-time limits,
/// cooldowns and the order-rate window.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RiskManager {
    pub cfg: RiskConfig,
    /// Portfolio quote currency and its 1:1 equivalents; other quotes are refused.
    quote: String,
    quotes: Vec<String>,
    state: TradingState,
    clock: i64,
    last_event: HashMap<Instrument, i64>,
    /// Instruments whose feed is not live (stale, reconnecting, resyncing), with the reason.
    unhealthy: HashMap<Instrument, (FeedState, String)>,
    view: PortfolioView,
    /// Approvals since the last portfolio view: (instrument, notional).
    pending: Vec<(Instrument, Decimal)>,
    last_entry: HashMap<Instrument, i64>,
    approvals: VecDeque<i64>,
    next_id: u64,
    /// Prepended to ids (`p2-` for paper session 2).
    pub id_prefix: String,
    /// Id of the `pause` command that put the state to Reducing (refusals then say `PAUSED`).
    #[serde(default)]
    paused_by: Option<String>,
    /// Limits changed by `set` commands (key → value), re-applied over the config on restart.
    #[serde(default)]
    overrides: std::collections::BTreeMap<String, String>,
}

/// What a command did to the risk manager, for its decision record.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CommandOutcome {
    pub applied: bool,
    /// Why a refused command changed nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub trading_state: TradingState,
    /// `set`: the limit's value before and after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<(String, String, String)>,
}

impl RiskManager {
    /// Accepts instruments quoted in `quote` only; see [`RiskManager::with_equivalents`].
    pub fn new(cfg: RiskConfig, quote: &str, starting_equity: Decimal) -> Self {
        Self::with_equivalents(cfg, quote, &[], starting_equity)
    }

    /// Also accepts instruments quoted in `equivalents` (counted 1:1 as `quote`).
    pub fn with_equivalents(
        cfg: RiskConfig,
        quote: &str,
        equivalents: &[String],
        starting_equity: Decimal,
    ) -> Self {
        let view = PortfolioView {
            equity: starting_equity,
            cash: starting_equity,
            peak_equity: starting_equity,
            ..Default::default()
        };
        Self {
            state: cfg.initial_state,
            cfg,
            quote: quote.to_string(),
            quotes: std::iter::once(quote.to_string())
                .chain(equivalents.iter().cloned())
                .collect(),
            clock: i64::MIN,
            last_event: HashMap::new(),
            unhealthy: HashMap::new(),
            view,
            pending: Vec::new(),
            last_entry: HashMap::new(),
            approvals: VecDeque::new(),
            next_id: 1,
            id_prefix: String::new(),
            paused_by: None,
            overrides: Default::default(),
        }
    }

    /// A manager restored from its stored state, with `cfg` (the config file's `[risk]`) under
    /// the limits changed at run time; an override the new config no longer accepts is dropped
    /// with a warning.
    pub fn restored(stored: &[u8], cfg: RiskConfig) -> Result<Self, String> {
        let mut rm: Self = serde_json::from_slice(stored)
            .map_err(|e| format!("the stored risk state is unreadable: {e}"))?;
        rm.cfg = cfg;
        for (k, v) in std::mem::take(&mut rm.overrides) {
            match limits::set_limit(&rm.cfg, &k, &v) {
                Ok(c) => {
                    rm.cfg = c;
                    rm.overrides.insert(k, v);
                }
                Err(e) => tracing::warn!("dropping the run-time limit {k} = {v}: {e}"),
            }
        }
        Ok(rm)
    }

    /// Applies an operator command. Refused (nothing changes) only for an invalid `set`.
    pub fn apply(&mut self, c: &crate::domain::command::CommandEvent) -> CommandOutcome {
        use crate::domain::command::Command;
        let mut out = CommandOutcome {
            applied: true,
            reason: None,
            trading_state: self.state,
            limit: None,
        };
        match &c.command {
            Command::Pause => {
                if self.state == TradingState::Active {
                    self.state = TradingState::Reducing;
                    self.paused_by = Some(c.id.clone());
                }
            }
            Command::Resume => {
                self.state = TradingState::Active;
                self.paused_by = None;
            }
            Command::Halt => {
                self.state = TradingState::Halted;
                self.paused_by = None;
            }
            Command::Flatten { .. } | Command::TrackWallets { .. } => {}
            Command::Unauthorized { .. } => {
                out.applied = false;
                out.reason = Some("unauthorized: this sender may not command smartflow".into());
            }
            Command::Set { limit, value } => match limits::set_limit(&self.cfg, limit, value) {
                Ok(next) => {
                    let key = limit.strip_prefix("risk.").unwrap_or(limit).to_string();
                    let old = serde_json::to_value(&self.cfg).map(|v| v[&key].clone());
                    let new = serde_json::to_value(&next).map(|v| v[&key].clone());
                    let show = |v: Result<serde_json::Value, _>| match v {
                        Ok(serde_json::Value::String(s)) => s,
                        Ok(v) => v.to_string(),
                        Err(_) => String::new(),
                    };
                    out.limit = Some((key.clone(), show(old), show(new)));
                    self.overrides.insert(key, value.clone());
                    self.cfg = next;
                }
                Err(e) => {
                    out.applied = false;
                    out.reason = Some(e);
                }
            },
        }
        out.trading_state = self.state;
        out
    }

    pub fn state(&self) -> TradingState {
        self.state
    }

    /// Newest event time seen (Unix ms); `i64::MIN` before the first event.
    pub fn clock(&self) -> i64 {
        self.clock
    }

    /// Limits changed at run time by `set` commands (key → value).
    pub fn overrides(&self) -> &std::collections::BTreeMap<String, String> {
        &self.overrides
    }

    /// Sets the trading state by hand (pause = Reducing or Halted, resume = Active).
    pub fn set_state(&mut self, s: TradingState) {
        self.state = s;
    }

    /// Advances the event clock and the instrument's freshness; feed status events block or
    /// unblock entries on their instrument.
    /// Status events carry the time the feed observed them, not market time: they do not move
    /// the clock.
    pub fn on_event(&mut self, e: &MarketEvent) {
        let ts = e.ts_ms();
        // Marks and wallet-tracker events are observations too, and say nothing about the
        // trade feed's freshness.
        if matches!(e, MarketEvent::Mark(_)) || e.is_wallet() {
            return;
        }
        if let MarketEvent::Status(st) = e {
            if st.state == FeedState::Live {
                self.unhealthy.remove(&st.instrument);
            } else {
                self.unhealthy
                    .insert(st.instrument.clone(), (st.state, st.reason.clone()));
            }
            return;
        }
        self.clock = self.clock.max(ts);
        match self.last_event.get_mut(e.instrument()) {
            Some(x) => *x = (*x).max(ts),
            None => {
                self.last_event.insert(e.instrument().clone(), ts);
            }
        }
    }

    /// Takes the broker's portfolio; approvals up to it are now part of it. Loss limits are
    /// checked at the next decision, against the portfolio as of that decision's event (a check
    /// here would depend on where batches happen to end).
    pub fn on_feedback(&mut self, v: &PortfolioView) {
        self.view = v.clone();
        self.pending.clear();
    }

    fn realized_today(&self) -> Decimal {
        let day = self.clock.div_euclid(86_400_000);
        self.view
            .realized_by_day
            .get(&day)
            .copied()
            .unwrap_or_default()
    }

    fn drawdown_pct(&self) -> Decimal {
        if self.view.peak_equity <= Decimal::ZERO {
            return Decimal::ZERO;
        }
        (self.view.peak_equity - self.view.equity) / self.view.peak_equity * dec!(100)
    }

    /// Switches to Halted when a loss limit is hit; returns the codes that hold.
    fn check_loss_limits(&mut self) -> Vec<Reason> {
        let mut r = Vec::new();
        let today = self.realized_today();
        if today <= -self.cfg.daily_loss_limit {
            r.push(Reason {
                code: ReasonCode::DailyLossLimit,
                detail: format!(
                    "realized PnL today {today} ≤ −{} (limit)",
                    self.cfg.daily_loss_limit
                ),
            });
        }
        let dd = self.drawdown_pct();
        if dd >= self.cfg.max_drawdown_pct {
            r.push(Reason {
                code: ReasonCode::MaxDrawdown,
                detail: format!(
                    "drawdown {}% from peak equity {} ≥ {}%",
                    dd.round_dp(2),
                    self.view.peak_equity,
                    self.cfg.max_drawdown_pct
                ),
            });
        }
        if !r.is_empty() {
            self.state = TradingState::Halted;
        }
        r
    }

    fn position_notional(&self, i: &Instrument) -> Decimal {
        self.view.positions.get(i).copied().unwrap_or_default()
            + self
                .pending
                .iter()
                .filter(|(p, _)| p == i)
                .map(|(_, n)| *n)
                .sum::<Decimal>()
    }

    fn gross(&self) -> Decimal {
        self.view.gross_exposure + self.pending.iter().map(|(_, n)| *n).sum::<Decimal>()
    }

    /// Cash not committed yet: the view's cash less the live entry orders and the entries
    /// approved since the view, each with its fee margin, quote currency (may be ≤ 0).
    fn buying_power(&self) -> Decimal {
        let held: Decimal = self.view.positions.values().sum();
        let live_entries = (self.view.gross_exposure - held).max(Decimal::ZERO);
        let approved: Decimal = self.pending.iter().map(|(_, n)| *n).sum();
        self.view.cash - (live_entries + approved) * FEE_MARGIN
    }

    fn open_positions(&self) -> usize {
        let mut n = self.view.busy.len();
        for (i, _) in &self.pending {
            if !self.view.busy.contains(i) {
                n += 1;
            }
        }
        n
    }

    /// Decides on one intent at the current event time.
    pub fn check(&mut self, it: &OrderIntent) -> Verdict {
        let now = self.clock.max(it.ts_ms);
        let mut reasons = self.check_loss_limits();
        let refuse = |code, detail: String, r: &mut Vec<Reason>| r.push(Reason { code, detail });
        match self.state {
            TradingState::Halted => refuse(
                ReasonCode::TradingHalted,
                "trading state is halted".into(),
                &mut reasons,
            ),
            TradingState::Reducing if !it.reduce_only => match &self.paused_by {
                Some(cmd) => refuse(
                    ReasonCode::Paused,
                    format!("paused by command {cmd}: only reduce-only orders"),
                    &mut reasons,
                ),
                None => refuse(
                    ReasonCode::TradingReducing,
                    "trading state is reducing: only reduce-only orders".into(),
                    &mut reasons,
                ),
            },
            _ => {}
        }
        if !self.quotes.iter().any(|q| q == it.instrument.quote()) {
            refuse(
                ReasonCode::QuoteMismatch,
                format!(
                    "{} is quoted in {}, the portfolio in {}",
                    it.instrument,
                    it.instrument.quote(),
                    self.quote
                ),
                &mut reasons,
            );
        }
        match self.last_event.get(&it.instrument) {
            Some(&t) if now - t <= self.cfg.stale_after_ms => {}
            Some(&t) => refuse(
                ReasonCode::StaleData,
                format!(
                    "last trade {} ms ago > {} ms",
                    now - t,
                    self.cfg.stale_after_ms
                ),
                &mut reasons,
            ),
            None => refuse(
                ReasonCode::StaleData,
                "no market data for this instrument".into(),
                &mut reasons,
            ),
        }
        if !it.reduce_only {
            // Exits stay allowed on an unhealthy feed; entries wait for live data.
            if let Some((state, why)) = self.unhealthy.get(&it.instrument) {
                refuse(
                    ReasonCode::FeedUnhealthy,
                    format!("feed {state:?}: {why}").to_lowercase(),
                    &mut reasons,
                );
            }
            if let Some(&t) = self.last_entry.get(&it.instrument) {
                if now - t < self.cfg.instrument_cooldown_secs * 1000 {
                    refuse(
                        ReasonCode::InstrumentCooldown,
                        format!(
                            "last entry {} s ago < {} s",
                            (now - t) / 1000,
                            self.cfg.instrument_cooldown_secs
                        ),
                        &mut reasons,
                    );
                }
            }
            let open = self.open_positions();
            let already = self.position_notional(&it.instrument) > Decimal::ZERO
                || self.view.busy.contains(&it.instrument);
            if !already && open >= self.cfg.max_open_positions {
                refuse(
                    ReasonCode::MaxOpenPositions,
                    format!("{open} open ≥ {}", self.cfg.max_open_positions),
                    &mut reasons,
                );
            }
        }
        while self
            .approvals
            .front()
            .is_some_and(|&t| t <= now - self.cfg.rate_window_secs * 1000)
        {
            self.approvals.pop_front();
        }
        if self.approvals.len() >= self.cfg.max_orders {
            refuse(
                ReasonCode::OrderRateLimit,
                format!(
                    "{} orders in the last {} s",
                    self.approvals.len(),
                    self.cfg.rate_window_secs
                ),
                &mut reasons,
            );
        }

        // Sizing: the tightest of the notional limits.
        let want = it.notional();
        let mut resize = Vec::new();
        let mut cap = want;
        if !it.reduce_only {
            for (code, room) in [
                (ReasonCode::MaxOrderNotional, self.cfg.max_order_notional),
                (
                    ReasonCode::MaxPositionNotional,
                    self.cfg.max_position_notional - self.position_notional(&it.instrument),
                ),
                (
                    ReasonCode::MaxGrossExposure,
                    self.cfg.max_gross_exposure - self.gross(),
                ),
                // Cash can never go negative: fees (up to 0.2 %) come out of the same cash.
                (
                    ReasonCode::InsufficientBuyingPower,
                    self.buying_power() * it.leverage.unwrap_or(Decimal::ONE) / FEE_MARGIN,
                ),
            ] {
                if room < cap {
                    cap = room.max(Decimal::ZERO);
                    resize.push(Reason {
                        code,
                        detail: format!("notional {want} > room {}", room.max(Decimal::ZERO)),
                    });
                }
            }
        }
        let qty = if cap < want && it.ref_price > Decimal::ZERO {
            round_down(cap / it.ref_price, self.cfg.qty_step)
        } else {
            it.qty
        };
        let notional = qty * it.ref_price;
        if reasons.is_empty() && (qty <= Decimal::ZERO || notional < self.cfg.min_order_notional) {
            reasons.append(&mut resize);
            reasons.push(Reason {
                code: ReasonCode::BelowMinNotional,
                detail: format!(
                    "resized notional {notional} < minimum {}",
                    self.cfg.min_order_notional
                ),
            });
        }
        let id = format!("{}ver-{}", self.id_prefix, self.next_id);
        self.next_id += 1;
        let approved = reasons.is_empty();
        if approved {
            self.approvals.push_back(now);
            if !it.reduce_only {
                self.last_entry.insert(it.instrument.clone(), now);
                self.pending.push((it.instrument.clone(), notional));
            }
        }
        Verdict {
            id,
            intent_id: it.id.clone(),
            ts_ms: it.ts_ms,
            instrument: it.instrument.clone(),
            approved,
            qty: if approved { qty } else { Decimal::ZERO },
            notional: if approved { notional } else { Decimal::ZERO },
            resized: approved && !resize.is_empty(),
            reasons: if approved { resize } else { reasons },
            trading_state: self.state,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Side;
    use crate::strategies::prepump::BracketSpec;

    fn inst(s: &str) -> Instrument {
        Instrument::new(s)
    }
    fn trade(i: &str, ts: i64) -> MarketEvent {
        MarketEvent::Trade(crate::domain::Trade {
            ts_ms: ts,
            instrument: inst(i),
            price: dec!(0.0001),
            qty: dec!(1),
            aggressor: Side::Buy,
            trade_id: None,
            users: None,
        })
    }
    fn intent(i: &str, ts: i64, qty: Decimal) -> OrderIntent {
        OrderIntent {
            id: "int-1".into(),
            signal_id: "sig-1".into(),
            ts_ms: ts,
            instrument: inst(i),
            side: Side::Buy,
            qty,
            ref_price: dec!(0.0001),
            reduce_only: false,
            bracket: BracketSpec {
                take_profit: vec![],
                stop_loss_pct: dec!(5),
                max_hold_ms: 1,
            },
            leverage: None,
        }
    }
    fn rm() -> RiskManager {
        RiskManager::new(RiskConfig::default(), "BTC", dec!(1))
    }
    fn codes(v: &Verdict) -> Vec<ReasonCode> {
        v.reasons.iter().map(|r| r.code).collect()
    }

    #[test]
    fn approves_within_limits() {
        let mut r = rm();
        r.on_event(&trade("A/BTC", 1000));
        let v = r.check(&intent("A/BTC", 1000, dec!(100))); // 0.01 BTC
        assert!(v.approved, "{v:?}");
        assert_eq!(v.qty, dec!(100));
        assert!(!v.resized);
    }

    #[test]
    fn resizes_to_max_order_notional() {
        let mut r = rm();
        r.on_event(&trade("A/BTC", 1000));
        let v = r.check(&intent("A/BTC", 1000, dec!(500))); // 0.05 > 0.02
        assert!(v.approved);
        assert!(v.resized);
        assert_eq!(v.qty, dec!(200));
        assert_eq!(codes(&v), vec![ReasonCode::MaxOrderNotional]);
    }

    #[test]
    fn max_position_notional_counts_the_held_position() {
        let mut r = rm();
        r.on_event(&trade("A/BTC", 1000));
        let mut v = PortfolioView::default();
        v.positions.insert(inst("A/BTC"), dec!(0.02));
        v.equity = dec!(1);
        v.peak_equity = dec!(1);
        r.on_feedback(&v);
        r.cfg.instrument_cooldown_secs = 0;
        let v = r.check(&intent("A/BTC", 1000, dec!(10)));
        assert!(!v.approved);
        assert!(codes(&v).contains(&ReasonCode::MaxPositionNotional));
        assert!(codes(&v).contains(&ReasonCode::BelowMinNotional));
    }

    #[test]
    fn gross_exposure_and_open_positions() {
        let mut r = rm();
        r.cfg.max_gross_exposure = dec!(0.03);
        for (i, name) in ["A/BTC", "B/BTC", "C/BTC", "D/BTC"].iter().enumerate() {
            r.on_event(&trade(name, 1000 + i as i64));
        }
        assert!(r.check(&intent("A/BTC", 1003, dec!(200))).approved);
        let v = r.check(&intent("B/BTC", 1003, dec!(200)));
        assert!(v.approved && v.resized, "{v:?}");
        assert_eq!(v.notional, dec!(0.01));
        assert_eq!(codes(&v), vec![ReasonCode::MaxGrossExposure]);
        r.cfg.max_gross_exposure = dec!(1);
        assert!(r.check(&intent("C/BTC", 1003, dec!(10))).approved);
        let v = r.check(&intent("D/BTC", 1003, dec!(10)));
        assert_eq!(codes(&v), vec![ReasonCode::MaxOpenPositions]);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        /// Whatever the limits, the held positions, the cash and the intents: no approved entry
        /// exceeds the order limit, no instrument its position limit, the account neither its
        /// gross exposure nor its buying power nor its open-position count.
        #[test]
        fn no_approved_entry_exceeds_a_limit(
            limits in (1i64..1000, 1i64..1000, 1i64..3000, 1usize..4, 0i64..3000),
            held in proptest::collection::vec(0i64..500, 3),
            intents in proptest::collection::vec((0usize..3, 1i64..1_000_000, 1i64..100_000), 1..40),
        ) {
            let d = |x: i64| Decimal::new(x, 3);
            let mut r = rm();
            r.cfg.max_order_notional = d(limits.0);
            r.cfg.max_position_notional = d(limits.1);
            r.cfg.max_gross_exposure = d(limits.2);
            r.cfg.max_open_positions = limits.3;
            r.cfg.instrument_cooldown_secs = 0;
            r.cfg.max_orders = 1_000;
            r.cfg.qty_step = dec!(0.0001);
            let names = ["A/BTC", "B/BTC", "C/BTC"];
            let mut view = PortfolioView { cash: d(limits.4), equity: dec!(1000), peak_equity: dec!(1000), ..Default::default() };
            for (n, h) in names.iter().zip(&held) {
                if *h > 0 {
                    view.positions.insert(inst(n), d(*h));
                    view.busy.insert(inst(n));
                }
                r.on_event(&trade(n, 1000));
            }
            view.gross_exposure = view.positions.values().sum();
            r.on_feedback(&view);
            let mut approved = [Decimal::ZERO; 3];
            for (k, q, px) in intents {
                let mut it = intent(names[k], 1000, Decimal::new(q, 2));
                it.ref_price = Decimal::new(px, 6);
                let v = r.check(&it);
                if !v.approved {
                    continue;
                }
                let open_before = (0..3).filter(|&i| held[i] > 0 || approved[i] > Decimal::ZERO).count();
                let new_position = held[k] == 0 && approved[k].is_zero();
                proptest::prop_assert!(!new_position || open_before < r.cfg.max_open_positions, "{v:?}");
                approved[k] += v.notional;
                let total: Decimal = approved.iter().sum();
                proptest::prop_assert!(v.notional <= r.cfg.max_order_notional, "{v:?}");
                proptest::prop_assert!(d(held[k]) + approved[k] <= r.cfg.max_position_notional, "{v:?}");
                proptest::prop_assert!(view.gross_exposure + total <= r.cfg.max_gross_exposure, "{v:?}");
                proptest::prop_assert!(total * FEE_MARGIN <= view.cash, "{v:?}");
            }
        }
    }

    /// Cash can never go negative: an entry is cut to the cash not committed (less a fee
    /// margin), times its leverage; with no cash left it is refused.
    #[test]
    fn entries_are_cut_to_the_buying_power() {
        let mut r = rm();
        r.cfg.max_order_notional = dec!(100);
        r.cfg.max_position_notional = dec!(100);
        r.cfg.max_gross_exposure = dec!(100);
        r.on_event(&trade("A/BTC", 1000));
        r.on_event(&trade("B/BTC", 1000));
        r.on_feedback(&PortfolioView {
            cash: dec!(0.01002),
            equity: dec!(1),
            peak_equity: dec!(1),
            ..Default::default()
        });
        let v = r.check(&intent("A/BTC", 1000, dec!(200)));
        assert!(v.approved && v.resized, "{v:?}");
        assert_eq!(codes(&v), vec![ReasonCode::InsufficientBuyingPower]);
        assert_eq!(v.notional, dec!(0.01));
        // The approved entry committed that cash: nothing is left for the next.
        let v = r.check(&intent("B/BTC", 1000, dec!(200)));
        assert!(!v.approved);
        assert!(
            codes(&v).contains(&ReasonCode::InsufficientBuyingPower),
            "{v:?}"
        );
        // With 3× leverage (a perpetual), three times the cash.
        let mut r2 = rm();
        r2.cfg = r.cfg.clone();
        r2.on_event(&trade("A/BTC", 1000));
        r2.on_feedback(&PortfolioView {
            cash: dec!(0.01002),
            equity: dec!(1),
            peak_equity: dec!(1),
            ..Default::default()
        });
        let mut it = intent("A/BTC", 1000, dec!(500));
        it.leverage = Some(dec!(3));
        assert_eq!(r2.check(&it).notional, dec!(0.03));
    }

    #[test]
    fn daily_loss_limit_halts() {
        let mut r = rm();
        r.on_event(&trade("A/BTC", 86_400_000 + 5));
        let mut v = PortfolioView {
            equity: dec!(0.97),
            peak_equity: dec!(1),
            ..Default::default()
        };
        v.realized_by_day.insert(1, dec!(-0.03));
        r.on_feedback(&v);
        let v = r.check(&intent("A/BTC", 86_400_000 + 5, dec!(10)));
        assert_eq!(
            codes(&v),
            vec![ReasonCode::DailyLossLimit, ReasonCode::TradingHalted]
        );
        assert_eq!(r.state(), TradingState::Halted);
    }

    #[test]
    fn drawdown_halts() {
        let mut r = rm();
        r.on_event(&trade("A/BTC", 5));
        r.on_feedback(&PortfolioView {
            equity: dec!(0.89),
            peak_equity: dec!(1),
            ..Default::default()
        });
        assert!(codes(&r.check(&intent("A/BTC", 5, dec!(1)))).contains(&ReasonCode::MaxDrawdown));
        assert_eq!(r.state(), TradingState::Halted);
    }

    #[test]
    fn reason_codes_are_screaming_snake() {
        assert_eq!(ReasonCode::MaxGrossExposure.code(), "MAX_GROSS_EXPOSURE");
        assert_eq!(ReasonCode::Paused.code(), "PAUSED");
    }

    #[test]
    fn reducing_refuses_entries_only() {
        let mut r = rm();
        r.on_event(&trade("A/BTC", 5));
        r.set_state(TradingState::Reducing);
        assert_eq!(
            codes(&r.check(&intent("A/BTC", 5, dec!(1)))),
            vec![ReasonCode::TradingReducing]
        );
        let mut exit = intent("A/BTC", 5, dec!(1));
        exit.reduce_only = true;
        exit.side = Side::Sell;
        assert!(r.check(&exit).approved);
    }

    #[test]
    fn unhealthy_feed_blocks_entries_not_exits_until_live_again() {
        use crate::domain::FeedStatus;
        let mut r = rm();
        r.cfg.instrument_cooldown_secs = 0;
        r.on_event(&trade("A/BTC", 0));
        let status = |state| {
            MarketEvent::Status(FeedStatus {
                ts_ms: 10,
                instrument: inst("A/BTC"),
                state,
                reason: "connection lost".into(),
            })
        };
        r.on_event(&status(FeedState::Reconnecting));
        let v = r.check(&intent("A/BTC", 10, dec!(1)));
        assert_eq!(codes(&v), vec![ReasonCode::FeedUnhealthy]);
        assert!(v.reasons[0].detail.contains("reconnecting"), "{v:?}");
        let mut exit = intent("A/BTC", 10, dec!(1));
        exit.reduce_only = true;
        exit.side = Side::Sell;
        assert!(r.check(&exit).approved);
        r.on_event(&status(FeedState::Live));
        assert!(r.check(&intent("A/BTC", 10, dec!(1))).approved);
    }

    #[test]
    fn cooldown_stale_quote_and_rate_limit() {
        let mut r = rm();
        r.on_event(&trade("A/BTC", 0));
        r.on_event(&trade("A/ETH", 0));
        assert!(r.check(&intent("A/BTC", 0, dec!(1))).approved);
        assert_eq!(
            codes(&r.check(&intent("A/BTC", 1000, dec!(1)))),
            vec![ReasonCode::InstrumentCooldown]
        );
        assert!(codes(&r.check(&intent("A/ETH", 0, dec!(1)))).contains(&ReasonCode::QuoteMismatch));
        r.on_event(&trade("B/BTC", 100_000));
        let v = r.check(&intent("A/BTC", 100_000, dec!(1)));
        assert!(codes(&v).contains(&ReasonCode::StaleData), "{v:?}");
        assert!(
            codes(&r.check(&intent("Z/BTC", 100_000, dec!(1)))).contains(&ReasonCode::StaleData)
        );

        let mut r = rm();
        r.cfg.max_orders = 2;
        r.cfg.instrument_cooldown_secs = 0;
        r.cfg.max_open_positions = 10;
        r.on_event(&trade("A/BTC", 0));
        assert!(r.check(&intent("A/BTC", 0, dec!(1))).approved);
        assert!(r.check(&intent("A/BTC", 10, dec!(1))).approved);
        assert_eq!(
            codes(&r.check(&intent("A/BTC", 20, dec!(1)))),
            vec![ReasonCode::OrderRateLimit]
        );
        r.on_event(&trade("A/BTC", 60_001));
        assert!(r.check(&intent("A/BTC", 60_001, dec!(1))).approved);
    }
}
