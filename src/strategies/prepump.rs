//! Pre-pump momentum strategy: on a detector signal, buy `entry_notional` of quote currency at
//! market, with a bracket the broker manages (take-profit ladder of limit sells, a stop-loss and a
//! time stop; pumps collapse within minutes). One position per instrument, cooldown after exit.

pub use crate::domain::intent::{round_down, BracketSpec, OrderIntent, SkipReason, TakeProfitStep};
use crate::domain::Instrument;
use crate::execution::PortfolioView;
use crate::strategies::detector::Signal;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// `[strategy]` config.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StrategyConfig {
    /// Notional of one entry, in quote currency (BTC for the pump set).
    pub entry_notional: Decimal,
    /// Quantity granularity in base units; entry quantities round down to it.
    pub qty_step: Decimal,
    /// Stop-loss distance below the average entry price, in %.
    pub stop_loss_pct: Decimal,
    /// Time stop: the position is sold at market this long after the first entry fill.
    pub max_hold_secs: i64,
    /// No new entry on an instrument for this long after its position closed.
    pub cooldown_secs: i64,
    pub take_profit: Vec<TakeProfitStep>,
    /// Leverage of entries on perpetuals (≥ 1; none: 1). Take-profit and stop distances are
    /// price moves, whatever the leverage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leverage: Option<Decimal>,
}

impl Default for StrategyConfig {
    fn default() -> Self {
        Self {
            entry_notional: dec!(0.01),
            qty_step: dec!(1),
            stop_loss_pct: dec!(5),
            max_hold_secs: 300,
            cooldown_secs: 1800,
            take_profit: vec![
                TakeProfitStep {
                    gain_pct: dec!(5),
                    fraction: dec!(0.5),
                },
                TakeProfitStep {
                    gain_pct: dec!(10),
                    fraction: dec!(0.5),
                },
            ],
            leverage: None,
        }
    }
}

impl StrategyConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.entry_notional <= Decimal::ZERO {
            return Err("strategy.entry_notional: must be > 0".into());
        }
        if self.qty_step <= Decimal::ZERO {
            return Err("strategy.qty_step: must be > 0".into());
        }
        if self.stop_loss_pct <= Decimal::ZERO || self.stop_loss_pct >= dec!(100) {
            return Err("strategy.stop_loss_pct: must be within (0, 100)".into());
        }
        crate::config::secs_within("strategy.max_hold_secs", self.max_hold_secs, 1)?;
        crate::config::secs_within("strategy.cooldown_secs", self.cooldown_secs, 0)?;
        if self.leverage.is_some_and(|l| l < Decimal::ONE) {
            return Err("strategy.leverage: must be ≥ 1".into());
        }
        let mut total = Decimal::ZERO;
        for (i, s) in self.take_profit.iter().enumerate() {
            if s.gain_pct <= Decimal::ZERO {
                return Err(format!("strategy.take_profit[{i}].gain_pct: must be > 0"));
            }
            if s.fraction <= Decimal::ZERO || s.fraction > Decimal::ONE {
                return Err(format!(
                    "strategy.take_profit[{i}].fraction: must be within (0, 1]"
                ));
            }
            total += s.fraction;
        }
        if total > Decimal::ONE {
            return Err("strategy.take_profit: fractions add up to more than 1".into());
        }
        Ok(())
    }
}

#[derive(Clone, Debug)]
pub struct PrePumpStrategy {
    pub cfg: StrategyConfig,
    /// Instruments with a position or live entry (from the broker), plus this batch's intents.
    busy: BTreeSet<Instrument>,
    last_exit: BTreeMap<Instrument, i64>,
    /// Position notionals by instrument (quote currency), from the broker.
    positions: BTreeMap<Instrument, Decimal>,
    next_id: u64,
    /// Prepended to ids (`p2-` for paper session 2).
    pub id_prefix: String,
}

impl PrePumpStrategy {
    pub fn new(cfg: StrategyConfig) -> Self {
        Self {
            cfg,
            busy: BTreeSet::new(),
            last_exit: BTreeMap::new(),
            positions: BTreeMap::new(),
            next_id: 1,
            id_prefix: String::new(),
        }
    }

    /// Replaces the strategy's view of positions with the broker's.
    pub fn on_feedback(&mut self, v: &PortfolioView) {
        self.busy = v.busy.clone();
        self.last_exit = v.last_exit_ts.clone();
        self.positions = v.positions.clone();
    }

    /// The next intent on signal `s`: an entry with the config's bracket, or (reduce-only) an
    /// exit without one.
    fn intent(&mut self, s: &Signal, qty: Decimal, reduce_only: bool) -> OrderIntent {
        let id = format!("{}int-{}", self.id_prefix, self.next_id);
        self.next_id += 1;
        let (take_profit, max_hold_ms, leverage) = match reduce_only {
            false => (
                self.cfg.take_profit.clone(),
                self.cfg.max_hold_secs * 1000,
                self.cfg.leverage,
            ),
            true => (vec![], 0, None),
        };
        OrderIntent {
            id,
            signal_id: s.id.clone(),
            ts_ms: s.ts_ms,
            instrument: s.instrument.clone(),
            side: s.side,
            qty,
            ref_price: s.price,
            reduce_only,
            bracket: BracketSpec {
                take_profit,
                stop_loss_pct: self.cfg.stop_loss_pct,
                max_hold_ms,
            },
            leverage,
        }
    }

    /// A reduce-only intent closing the instrument's position (about its size at the signal
    /// price; the executor closes whatever is held).
    fn exit_intent(&mut self, s: &Signal) -> Result<OrderIntent, SkipReason> {
        let notional = self.positions.get(&s.instrument).copied();
        let notional = notional
            .filter(|n| *n > Decimal::ZERO)
            .ok_or(SkipReason::NoPosition)?;
        let qty = round_down(notional / s.price, self.cfg.qty_step);
        self.positions.remove(&s.instrument);
        Ok(self.intent(s, qty, true))
    }

    /// Turns a signal into an entry intent (or, for an exit signal, a reduce-only one), or says
    /// why not.
    pub fn on_signal(&mut self, s: &Signal) -> Result<OrderIntent, SkipReason> {
        if s.exit {
            return self.exit_intent(s);
        }
        if self.busy.contains(&s.instrument) {
            return Err(SkipReason::InPosition);
        }
        if let Some(&t) = self.last_exit.get(&s.instrument) {
            if s.ts_ms - t < self.cfg.cooldown_secs * 1000 {
                return Err(SkipReason::Cooldown);
            }
        }
        let qty = round_down(self.cfg.entry_notional / s.price, self.cfg.qty_step);
        if qty <= Decimal::ZERO {
            return Err(SkipReason::QtyTooSmall);
        }
        self.busy.insert(s.instrument.clone());
        Ok(self.intent(s, qty, false))
    }
}

impl super::signal::Strategy for PrePumpStrategy {
    fn on_signal(&mut self, s: &Signal) -> Result<OrderIntent, SkipReason> {
        PrePumpStrategy::on_signal(self, s)
    }
    fn on_feedback(&mut self, v: &PortfolioView) {
        PrePumpStrategy::on_feedback(self, v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Side;
    use crate::features::{ChunkFeatures, FeatureSnapshot};

    fn sig(ts: i64, px: Decimal) -> Signal {
        Signal {
            id: "sig-1".into(),
            ts_ms: ts,
            instrument: Instrument::new("X/BTC"),
            side: Side::Buy,
            price: px,
            score: 90.0,
            drivers: vec![],
            context: crate::strategies::signal::SignalContext::PrePump {
                model: None,
                features: Box::new(FeatureSnapshot {
                    ts_ms: ts,
                    price: 0.0,
                    chunks: [ChunkFeatures::default(); 3],
                    ret_1m: 0.0,
                    ret_5m: 0.0,
                    vwap_5m: 0.0,
                    vwap_dev: 0.0,
                    warm: true,
                }),
            },
            exit: false,
        }
    }

    #[test]
    fn one_position_per_instrument_and_cooldown() {
        let mut s = PrePumpStrategy::new(StrategyConfig::default());
        let i = s.on_signal(&sig(1_000, dec!(0.00001234))).unwrap();
        // 0.01 BTC / 0.00001234 = 810.37… → 810 units (qty_step 1).
        assert_eq!(i.qty, dec!(810));
        assert_eq!(
            s.on_signal(&sig(2_000, dec!(0.00001))),
            Err(SkipReason::InPosition)
        );
        let mut v = PortfolioView::default();
        v.last_exit_ts.insert(Instrument::new("X/BTC"), 10_000);
        s.on_feedback(&v);
        assert_eq!(
            s.on_signal(&sig(11_000, dec!(0.00001))),
            Err(SkipReason::Cooldown)
        );
        assert!(s.on_signal(&sig(10_000 + 1_800_000, dec!(0.00001))).is_ok());
        assert_eq!(s.on_signal(&sig(1, dec!(1))), Err(SkipReason::InPosition));
        s.on_feedback(&PortfolioView::default());
        assert_eq!(s.on_signal(&sig(1, dec!(1))), Err(SkipReason::QtyTooSmall));
    }

    #[test]
    fn config_validation_names_the_key() {
        let mut c = StrategyConfig::default();
        c.take_profit[1].fraction = dec!(0.7);
        assert!(c
            .validate()
            .unwrap_err()
            .starts_with("strategy.take_profit"));
        c = StrategyConfig::default();
        c.stop_loss_pct = dec!(0);
        assert!(c
            .validate()
            .unwrap_err()
            .starts_with("strategy.stop_loss_pct"));
    }
}
