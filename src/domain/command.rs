//! Operator commands (pause, resume, halt, flatten, set), as they enter the event stream.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// What an operator can ask of a running session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    /// Trading state `reducing`: no new entries; exits, stops and time stops continue.
    Pause,
    /// Trading state `active` again; after a halt, brackets of open positions are re-armed.
    Resume,
    /// Trading state `halted`: every open order is canceled and no order is placed.
    Halt,
    /// Closes positions with reduce-only market orders: one instrument (`BASE/QUOTE`) or all.
    Flatten {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        instrument: Option<String>,
    },
    /// Changes a `[risk]` limit, validated by the config file's rules, e.g.
    /// `{"command":"set","limit":"max_order_notional","value":"0.01"}`.
    Set { limit: String, value: String },
    /// A command from someone who may not send one (a Telegram chat not in `[telegram] chats`):
    /// refused, nothing changes; the decision log keeps who tried what.
    Unauthorized { text: String },
    /// Replaces the wallets the whale-follow source tracks (sent by the leaderboard refresh of
    /// a running session, so a replay of its tape follows the same wallets).
    TrackWallets { wallets: Vec<TrackedWallet> },
}

/// A wallet to follow, with its weight and the dimensions behind it (each in [0, 1], 6
/// decimals) and its account value (USD).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackedWallet {
    pub address: String,
    pub weight: Decimal,
    pub performance: Decimal,
    pub size: Decimal,
    pub recency: Decimal,
    pub regime_fit: Decimal,
    pub account_value: Decimal,
}

impl Command {
    /// Parses CLI words: `pause`, `resume`, `halt`, `flatten [BASE/QUOTE|all]`, `set LIMIT VALUE`.
    pub fn from_words(words: &[String]) -> Result<Self, String> {
        let w: Vec<&str> = words.iter().map(String::as_str).collect();
        match w.as_slice() {
            ["pause"] => Ok(Self::Pause),
            ["resume"] => Ok(Self::Resume),
            ["halt"] => Ok(Self::Halt),
            ["flatten"] | ["flatten", "all"] => Ok(Self::Flatten { instrument: None }),
            ["flatten", i] => Ok(Self::Flatten {
                instrument: Some(i.to_string()),
            }),
            ["set", limit, value] => Ok(Self::Set {
                limit: limit.to_string(),
                value: value.to_string(),
            }),
            _ => Err(format!(
                "unknown command {:?}: want pause | resume | halt | flatten [BASE/QUOTE|all] | set LIMIT VALUE (limits: {})",
                words.join(" "),
                crate::risk::limits::SETTABLE_LIMITS.join(", ")
            )),
        }
    }
}

/// A command with the id it is journaled under and who sent it (`api`, `telegram`, …).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandEvent {
    pub id: String,
    pub source: String,
    #[serde(flatten)]
    pub command: Command,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_from_words_and_json() {
        let w = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        assert_eq!(Command::from_words(&w("pause")), Ok(Command::Pause));
        assert_eq!(
            Command::from_words(&w("flatten PEPE/USDC")),
            Ok(Command::Flatten {
                instrument: Some("PEPE/USDC".into())
            })
        );
        assert!(Command::from_words(&w("sell everything")).is_err());
        let c: Command =
            serde_json::from_str(r#"{"command":"set","limit":"max_orders","value":"3"}"#).unwrap();
        assert_eq!(
            c,
            Command::Set {
                limit: "max_orders".into(),
                value: "3".into()
            }
        );
        assert!(serde_json::from_str::<Command>(r#"{"command":"buy"}"#).is_err());
    }
}
