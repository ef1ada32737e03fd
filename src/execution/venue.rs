//! The venue seam under order management: orders go out (submit, cancel, amend), and what the
//! venue did with them comes back as [`VenueEvent`]s. The fill simulator is one venue; a live
//! venue client (Hyperliquid) is another, whose events arrive when the venue reports them.
//!
//! A venue knows orders, not strategies: brackets, take-profit ladders, one-cancels-other and
//! time stops live in [`super::oms::OrderManager`], above any venue.

use crate::domain::{Fill, MarketEvent, Order};
use rust_decimal::Decimal;

/// What a venue reports about the orders it was sent.
#[derive(Clone, Debug, PartialEq)]
pub enum VenueEvent {
    /// The order rests on the venue (`active_from_ms` set by the venue).
    Accepted(Order),
    /// A stop reached its trigger at `trade_price` and now works as a market order.
    Triggered { order: Order, trade_price: Decimal },
    /// A fill; `order` is the order after it (filled quantity, status).
    Fill { fill: Fill, order: Order },
    /// The order left the book unfilled or partly filled: canceled or expired, with why.
    Done { order: Order, reason: String },
}

/// An order venue driven by the order manager. Order ids are the client's (a cloid on venues
/// that take one); every call appends what it caused to `out`, in the venue's order.
pub trait Venue: Clone + Send + Unpin + 'static {
    /// Sends a new order; `order.created_ts_ms` is event time.
    fn submit(&mut self, order: Order, out: &mut Vec<VenueEvent>);
    /// Cancels a live order (no-op when it is gone); `reason` goes into its `Done` event.
    fn cancel(&mut self, order_id: &str, reason: &str, out: &mut Vec<VenueEvent>);
    /// Changes a live order's total quantity (a reduce-only stop kept to the position size).
    fn amend_qty(&mut self, order_id: &str, qty: Decimal);
    /// A market event in stream order: a simulator matches and expires resting orders; a live
    /// client hands over what its venue reported since the last call.
    fn on_market(&mut self, e: &MarketEvent, out: &mut Vec<VenueEvent>);
    /// The owner resumed trading (a live venue lifts a reconciliation block).
    fn on_resume(&mut self) {}
}
