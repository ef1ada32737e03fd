//! Commands to a running session (pause, resume, halt, flatten, set) and the local control API
//! that takes them.
//!
//! A command enters the pipeline in-band, as a batch of its own between two market events, so
//! every stage applies it at the same point of the event order and a replay of the session's
//! recording applies it there too. The risk stage journals it (a `command` record with its source
//! and outcome); the executor acts on halt (cancel every order), resume (re-arm brackets) and
//! flatten (reduce-only market exits).

pub mod api;
pub mod client;
pub mod hub;

use crate::risk::RiskConfig;
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
                SETTABLE_LIMITS.join(", ")
            )),
        }
    }

    /// The command's name as in the decision log.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Halt => "halt",
            Self::Flatten { .. } => "flatten",
            Self::Set { .. } => "set",
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

/// `[risk]` keys a `set` command may change.
pub const SETTABLE_LIMITS: &[&str] = &[
    "max_order_notional",
    "max_position_notional",
    "max_gross_exposure",
    "max_open_positions",
    "daily_loss_limit",
    "max_drawdown_pct",
    "instrument_cooldown_secs",
    "stale_after_ms",
    "max_orders",
    "rate_window_secs",
    "min_order_notional",
];

/// `cfg` with `limit` (a [`SETTABLE_LIMITS`] key, `risk.` prefix optional) set to `value`,
/// validated by the same rules as the config file. Errors name the key and the rule.
pub fn set_limit(cfg: &RiskConfig, limit: &str, value: &str) -> Result<RiskConfig, String> {
    let key = limit.strip_prefix("risk.").unwrap_or(limit);
    if !SETTABLE_LIMITS.contains(&key) {
        return Err(format!(
            "risk.{key}: not a limit that can be set; limits: {}",
            SETTABLE_LIMITS.join(", ")
        ));
    }
    let mut v = serde_json::to_value(cfg).map_err(|e| e.to_string())?;
    let slot = &mut v[key];
    *slot = match slot {
        // Decimals are strings: parse as one so "abc" is refused here, not later.
        serde_json::Value::String(_) => value
            .parse::<rust_decimal::Decimal>()
            .map(|d| serde_json::Value::String(d.to_string()))
            .map_err(|_| format!("risk.{key}: {value:?} is not a decimal number"))?,
        _ => value
            .parse::<i64>()
            .map(serde_json::Value::from)
            .map_err(|_| format!("risk.{key}: {value:?} is not a whole number"))?,
    };
    let next: RiskConfig =
        serde_json::from_value(v).map_err(|e| format!("risk.{key}: {value:?}: {e}"))?;
    next.validate()?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn set_limit_validates_like_the_config_file() {
        let c = RiskConfig::default();
        let n = set_limit(&c, "max_order_notional", "0.005").unwrap();
        assert_eq!(n.max_order_notional, dec!(0.005));
        assert_eq!(
            set_limit(&c, "risk.max_open_positions", "5")
                .unwrap()
                .max_open_positions,
            5
        );
        let e = set_limit(&c, "max_order_notional", "-1").unwrap_err();
        assert!(e.starts_with("risk.max_order_notional"), "{e}");
        let e = set_limit(&c, "max_open_positions", "0").unwrap_err();
        assert!(e.contains("max_open_positions"), "{e}");
        let e = set_limit(&c, "max_open_positions", "-2").unwrap_err();
        assert!(e.contains("max_open_positions"), "{e}");
        let e = set_limit(&c, "max_order_notional", "lots").unwrap_err();
        assert!(e.contains("not a decimal"), "{e}");
        let e = set_limit(&c, "initial_state", "halted").unwrap_err();
        assert!(e.contains("not a limit"), "{e}");
    }

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
