//! What order management reports to the decision log, and the approved order it starts from.

use super::portfolio::RoundTrip;
use crate::domain::intent::OrderIntent;
use crate::domain::{Fill, Order, OrderPurpose};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// An intent the risk manager approved, with the approved quantity.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ApprovedOrder {
    pub intent: OrderIntent,
    pub verdict_id: String,
    pub qty: Decimal,
}

/// Ids that tie broker output back to the decision chain.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Links {
    pub signal_id: Option<String>,
    pub intent_id: Option<String>,
    pub verdict_id: Option<String>,
    pub entry_order_id: Option<String>,
}

/// What the broker did, for the decision log.
#[derive(Clone, Debug, PartialEq)]
pub enum BrokerEvent {
    OrderNew {
        order: Order,
        links: Links,
    },
    /// A stop reached its trigger and became a market order.
    OrderTriggered {
        order: Order,
        links: Links,
        trade_price: Decimal,
    },
    /// Canceled, expired or rejected; `reason` says why.
    OrderDone {
        order: Order,
        links: Links,
        reason: String,
    },
    Fill {
        fill: Fill,
        purpose: OrderPurpose,
        links: Links,
    },
    /// A position went flat.
    Exit {
        id: String,
        round_trip: RoundTrip,
        reason: OrderPurpose,
        links: Links,
    },
}
