//! The execution seam the executor stage drives: approved entries and commands go in, and
//! acks, fills, rejects, cancels, expiries and exits come back as [`BrokerEvent`]s. Order
//! management over any [`Venue`] is a client (the paper broker is it over the fill simulator);
//! a live venue returns its events when they arrive, from [`ExecutionClient::on_market`]
//! (called for every event in the stream, so they enter the decision log in event order).

use super::events::{ApprovedOrder, BrokerEvent};
use super::oms::OrderManager;
use super::portfolio::{Portfolio, PortfolioView};
use super::venue::Venue;
use crate::domain::command::Command;
use crate::domain::{Instrument, MarketEvent};

/// An order executor the executor stage drives without knowing which one it is.
pub trait ExecutionClient: Clone + Send + Unpin + 'static {
    /// A market event in stream order: a simulator matches resting orders and moves its clock;
    /// a venue client hands over what its venue reported since.
    fn on_market(&mut self, e: &MarketEvent, out: &mut Vec<BrokerEvent>);
    /// Submits an approved entry with its exit plan, or a reduce-only exit of the instrument's
    /// position, at event time `now`.
    fn submit(&mut self, order: &ApprovedOrder, now: i64, out: &mut Vec<BrokerEvent>);
    /// `halt` (cancel every order), `resume` (re-arm exits), `flatten` (reduce-only exits).
    fn on_command(&mut self, c: &Command, out: &mut Vec<BrokerEvent>);
    /// Event time of the newest event seen, Unix ms.
    fn clock(&self) -> i64;
    /// The portfolio as strategy and risk see it.
    fn view(&self, batch_seq: u64) -> PortfolioView;
    fn portfolio(&self) -> &Portfolio;
    /// What a restart resumes from (JSON).
    fn state(&self) -> Option<Vec<u8>>;
    /// Live orders (resting or on their way).
    fn live_order_count(&self) -> usize;
    /// Applies the instruments' trading rules (lot, tick, minimum notional) from now on.
    fn set_specs(
        &mut self,
        specs: &std::collections::BTreeMap<String, crate::domain::spec::InstrumentSpec>,
    );
}

impl<V: Venue + serde::Serialize> ExecutionClient for OrderManager<V> {
    fn on_market(&mut self, e: &MarketEvent, out: &mut Vec<BrokerEvent>) {
        OrderManager::on_market(self, e, out);
    }
    fn submit(&mut self, order: &ApprovedOrder, now: i64, out: &mut Vec<BrokerEvent>) {
        if order.intent.reduce_only {
            self.exit_position(order, now, out);
        } else {
            self.place_entry(order, now, out);
        }
    }
    fn on_command(&mut self, c: &Command, out: &mut Vec<BrokerEvent>) {
        match c {
            Command::Halt => self.halt(out),
            Command::Resume => self.resume(out),
            Command::Flatten { instrument } => {
                let i = instrument.as_deref().map(Instrument::new);
                self.flatten(i.as_ref(), out)
            }
            Command::Pause
            | Command::Set { .. }
            | Command::TrackWallets { .. }
            | Command::Unauthorized { .. } => {}
        }
    }
    fn clock(&self) -> i64 {
        OrderManager::clock(self)
    }
    fn view(&self, batch_seq: u64) -> PortfolioView {
        OrderManager::view(self, batch_seq)
    }
    fn portfolio(&self) -> &Portfolio {
        &self.portfolio
    }
    fn state(&self) -> Option<Vec<u8>> {
        serde_json::to_vec(self).ok()
    }
    fn live_order_count(&self) -> usize {
        self.live_orders().count()
    }
    fn set_specs(
        &mut self,
        specs: &std::collections::BTreeMap<String, crate::domain::spec::InstrumentSpec>,
    ) {
        OrderManager::set_specs(self, specs);
    }
}
