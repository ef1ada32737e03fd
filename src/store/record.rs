//! Decision-log records: one per signal, order intent, risk verdict, order event, fill and exit,
//! linked by ids so that "why did it buy X at T" has one answer.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordKind {
    Signal,
    Intent,
    Verdict,
    Order,
    Fill,
    Exit,
    /// An operator command (pause, resume, halt, flatten, set) and its outcome.
    Command,
}

impl RecordKind {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "signal" => Self::Signal,
            "intent" => Self::Intent,
            "verdict" => Self::Verdict,
            "order" => Self::Order,
            "fill" => Self::Fill,
            "exit" => Self::Exit,
            "command" => Self::Command,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Signal => "signal",
            Self::Intent => "intent",
            Self::Verdict => "verdict",
            Self::Order => "order",
            Self::Fill => "fill",
            Self::Exit => "exit",
            Self::Command => "command",
        }
    }
}

/// One line of the decision log (and of `smartflow log export`).
///
/// `id` is unique and stable across identical runs (`sig-1`, `int-1`, `ver-1`, `ord-1`,
/// `fil-1`, `exi-1`; an order's later events reuse its id with a suffix, `ord-1#canceled`);
/// `ts_ms` is event time (Unix ms); link fields name the records this one follows from;
/// `refused` is true for refused verdicts and skipped intents; `detail` holds the kind's data
/// (features, score and drivers for signals; reasons for verdicts; prices, fees, PnL …).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub kind: RecordKind,
    pub ts_ms: i64,
    pub instrument: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_order_id: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub refused: bool,
    pub detail: serde_json::Value,
}

impl Record {
    pub fn new(id: String, kind: RecordKind, ts_ms: i64, instrument: &str) -> Self {
        Self {
            id,
            kind,
            ts_ms,
            instrument: instrument.to_string(),
            signal_id: None,
            intent_id: None,
            verdict_id: None,
            order_id: None,
            parent_order_id: None,
            refused: false,
            detail: serde_json::Value::Null,
        }
    }
}
