//! The venue's errors as types: `/exchange` answers HTTP 200 with `{"status":"err","response":
//! "…"}` for a whole request (signature, user, nonce) and with `{"error":"…"}` per order inside
//! `statuses`; each message maps to a variant with a stable code for the decision log.

/// An error of the venue or of the way to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VenueError {
    /// No answer (connection, timeout) — the order may or may not have arrived.
    Transport(String),
    /// An HTTP status other than 200, with the body.
    Http {
        status: u16,
        body: String,
    },
    /// An answer smartflow cannot read.
    BadAnswer(String),
    /// "Unable to recover signer." or a signature for another user.
    Signature(String),
    /// "User or API Wallet 0x… does not exist."
    UnknownUser(String),
    /// "Invalid nonce: …" (duplicate or out of the accepted window).
    Nonce(String),
    /// Too many requests (IP weight or the address's action budget).
    RateLimited(String),
    InsufficientMargin(String),
    /// Price not on the tick / too many significant figures.
    TickSize(String),
    /// "Order must have minimum value of $10."
    MinNotional(String),
    /// Size not on the lot, or zero.
    InvalidSize(String),
    /// "Reduce only order would increase position."
    ReduceOnly(String),
    /// An IOC order found nothing to match.
    NoLiquidity(String),
    /// Refused before sending: the venue's own positions would pass a configured limit.
    LimitBreach(String),
    /// Any other message, kept verbatim.
    Other(String),
}

impl VenueError {
    /// Classifies a venue message (top-level `response` or a per-order `error`).
    pub fn from_message(msg: &str) -> Self {
        let m = msg.to_ascii_lowercase();
        let s = msg.to_string();
        if m.contains("recover signer") || m.contains("signature") {
            VenueError::Signature(s)
        } else if m.contains("does not exist") {
            VenueError::UnknownUser(s)
        } else if m.contains("nonce") {
            VenueError::Nonce(s)
        } else if m.contains("too many") || m.contains("rate limit") {
            VenueError::RateLimited(s)
        } else if m.contains("insufficient margin") {
            VenueError::InsufficientMargin(s)
        } else if m.contains("tick size") || m.contains("invalid price") {
            VenueError::TickSize(s)
        } else if m.contains("minimum value") {
            VenueError::MinNotional(s)
        } else if m.contains("invalid size") || m.contains("size must be") {
            VenueError::InvalidSize(s)
        } else if m.contains("reduce only") {
            VenueError::ReduceOnly(s)
        } else if m.contains("could not immediately match") {
            VenueError::NoLiquidity(s)
        } else {
            VenueError::Other(s)
        }
    }

    /// Stable SCREAMING_SNAKE code, as the decision log writes it.
    pub fn code(&self) -> &'static str {
        match self {
            VenueError::Transport(_) => "VENUE_TRANSPORT",
            VenueError::Http { .. } => "VENUE_HTTP",
            VenueError::BadAnswer(_) => "VENUE_BAD_ANSWER",
            VenueError::Signature(_) => "VENUE_SIGNATURE",
            VenueError::UnknownUser(_) => "VENUE_UNKNOWN_USER",
            VenueError::Nonce(_) => "VENUE_NONCE",
            VenueError::RateLimited(_) => "VENUE_RATE_LIMITED",
            VenueError::InsufficientMargin(_) => "VENUE_INSUFFICIENT_MARGIN",
            VenueError::TickSize(_) => "VENUE_TICK_SIZE",
            VenueError::MinNotional(_) => "VENUE_MIN_NOTIONAL",
            VenueError::InvalidSize(_) => "VENUE_INVALID_SIZE",
            VenueError::ReduceOnly(_) => "VENUE_REDUCE_ONLY",
            VenueError::NoLiquidity(_) => "VENUE_NO_LIQUIDITY",
            VenueError::LimitBreach(_) => "VENUE_LIMIT_BREACH",
            VenueError::Other(_) => "VENUE_ERROR",
        }
    }

    /// Whether the order may have reached the venue (look it up by cloid before resending).
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, VenueError::Transport(_) | VenueError::Http { .. })
    }
}

impl std::fmt::Display for VenueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            VenueError::Http { status, body } => format!("HTTP {status}: {body}"),
            VenueError::Transport(s)
            | VenueError::BadAnswer(s)
            | VenueError::Signature(s)
            | VenueError::UnknownUser(s)
            | VenueError::Nonce(s)
            | VenueError::RateLimited(s)
            | VenueError::InsufficientMargin(s)
            | VenueError::TickSize(s)
            | VenueError::MinNotional(s)
            | VenueError::InvalidSize(s)
            | VenueError::ReduceOnly(s)
            | VenueError::NoLiquidity(s)
            | VenueError::LimitBreach(s)
            | VenueError::Other(s) => s.clone(),
        };
        write!(f, "{}: {text}", self.code())
    }
}

impl std::error::Error for VenueError {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Messages from real `/exchange` answers (`../shared/data/hyperliquid/bytex_live_payloads`)
    /// and the SDKs' documented per-order errors.
    #[test]
    fn venue_messages_map_to_codes() {
        let cases = [
            ("Unable to recover signer.", "VENUE_SIGNATURE"),
            (
                "Invalid nonce: duplicate nonce 1700000000000",
                "VENUE_NONCE",
            ),
            (
                "User or API Wallet 0xc06d73162e9bffbcfbf1da59c511002a8f9155e5 does not exist.",
                "VENUE_UNKNOWN_USER",
            ),
            (
                "Insufficient margin to place order. asset=0",
                "VENUE_INSUFFICIENT_MARGIN",
            ),
            (
                "Price must be divisible by tick size. asset=0",
                "VENUE_TICK_SIZE",
            ),
            (
                "Order must have minimum value of $10. asset=0",
                "VENUE_MIN_NOTIONAL",
            ),
            (
                "Reduce only order would increase position. asset=0",
                "VENUE_REDUCE_ONLY",
            ),
            (
                "Order could not immediately match against any resting orders. asset=0",
                "VENUE_NO_LIQUIDITY",
            ),
            ("Something new", "VENUE_ERROR"),
        ];
        for (m, code) in cases {
            assert_eq!(VenueError::from_message(m).code(), code, "{m}");
        }
        assert!(VenueError::Transport("timeout".into()).outcome_unknown());
        assert!(!VenueError::from_message("Insufficient margin").outcome_unknown());
    }
}
