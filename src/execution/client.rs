//! The execution seam: commands go out (submit, cancel via halt/flatten), and acks, fills,
//! rejects, cancels and expiries come back as [`BrokerEvent`]s. The paper simulator is one
//! client; a venue client (Hyperliquid) returns its events when they arrive, from
//! [`ExecutionClient::on_market`] (called for every event in the stream, so they enter the
//! decision log in event order).

use super::paper::{ApprovedOrder, BrokerEvent, PaperBroker};
use super::portfolio::{Portfolio, PortfolioView};
use crate::domain::command::Command;
use crate::domain::{Instrument, MarketEvent};

/// An order executor the executor stage drives without knowing which one it is.
pub trait ExecutionClient: Clone + Send + Unpin + 'static {
    /// A market event in stream order: a simulator matches resting orders and moves its clock;
    /// a venue client hands over what its venue reported since.
    fn on_market(&mut self, e: &MarketEvent, out: &mut Vec<BrokerEvent>);
    /// Submits an approved entry with its exit plan at event time `now`.
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
}

impl ExecutionClient for PaperBroker {
    fn on_market(&mut self, e: &MarketEvent, out: &mut Vec<BrokerEvent>) {
        match e {
            MarketEvent::Trade(t) => self.on_trade(t, out),
            MarketEvent::Book(b) => self.on_clock(b.ts_ms, out),
            // Feed health is observation time, not market time: no clock move.
            MarketEvent::Status(_) => {}
        }
    }
    fn submit(&mut self, order: &ApprovedOrder, now: i64, out: &mut Vec<BrokerEvent>) {
        self.place_entry(order, now, out);
    }
    fn on_command(&mut self, c: &Command, out: &mut Vec<BrokerEvent>) {
        match c {
            Command::Halt => self.halt(out),
            Command::Resume => self.resume(out),
            Command::Flatten { instrument } => {
                let i = instrument.as_deref().map(Instrument::new);
                self.flatten(i.as_ref(), out)
            }
            Command::Pause | Command::Set { .. } => {}
        }
    }
    fn clock(&self) -> i64 {
        PaperBroker::clock(self)
    }
    fn view(&self, batch_seq: u64) -> PortfolioView {
        PaperBroker::view(self, batch_seq)
    }
    fn portfolio(&self) -> &Portfolio {
        &self.portfolio
    }
    fn state(&self) -> Option<Vec<u8>> {
        serde_json::to_vec(self).ok()
    }
}
