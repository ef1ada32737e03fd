//! Blocking HTTP to Hyperliquid (`POST /exchange`, `POST /info`), for the venue worker thread.
//! Every request spends its weight first from the session's own budget ([`WeightBudget`],
//! `[live] weight_per_minute`, by default half the venue's 1200 per IP so that the feeds and
//! the wallet tracker keep the rest): `exchange` 1 + ⌊batch / 40⌋, `info` by type plus
//! per-item weight. The
//! nonce is wall-clock ms, strictly increasing per signer: the one wall-clock read of the
//! client, at the edge (the venue rejects nonces far from its time).

use super::errors::VenueError;
use super::signing::{Network, Signer};
use super::wire::{Action, ExchangeRequest};
use crate::feeds::hyperliquid_info::{answer_weight, request_weight, WeightBudget};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One position of `clearinghouseState.assetPositions`: signed size (long > 0), entry price and
/// notional at the mark (USDC).
#[derive(Clone, Debug, PartialEq)]
pub struct VenuePosition {
    pub coin: String,
    pub szi: Decimal,
    pub entry_px: Decimal,
    pub position_value: Decimal,
}

/// The account as `clearinghouseState` reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct AccountState {
    pub account_value: Decimal,
    pub positions: Vec<VenuePosition>,
}

/// A resting order of `frontendOpenOrders`.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenOrder {
    pub coin: String,
    pub oid: u64,
    pub cloid: Option<String>,
    pub is_buy: bool,
    pub limit_px: Decimal,
    pub sz: Decimal,
    pub reduce_only: bool,
}

/// A fill of `userFillsByTime` / the `userFills` stream (`fee` in USDC, may be negative).
#[derive(Clone, Debug, PartialEq)]
pub struct VenueFill {
    pub coin: String,
    pub oid: u64,
    pub tid: u64,
    pub cloid: Option<String>,
    pub is_buy: bool,
    pub px: Decimal,
    pub sz: Decimal,
    pub fee: Decimal,
    pub time_ms: i64,
    pub crossed: bool,
}

/// `orderStatus` of one order: `status` "open", "filled", "canceled", "triggered",
/// "rejected", "marginCanceled", … with the order's remaining size.
#[derive(Clone, Debug, PartialEq)]
pub struct OrderState {
    pub oid: u64,
    pub status: String,
    pub remaining: Decimal,
}

/// What `/exchange` said about one order of an `order` action.
#[derive(Clone, Debug, PartialEq)]
pub enum OrderAnswer {
    Resting {
        oid: u64,
    },
    Filled {
        oid: u64,
        total_sz: Decimal,
        avg_px: Decimal,
    },
    WaitingForTrigger,
    Error(VenueError),
}

/// The address-based action budget (`userRateLimit`): the venue allows 10 000 actions plus one
/// per USDC traded (`cap`); past it, one action every 10 s. Cancels get
/// min(cap + 100 000, 2 × cap). Orders of a batch count one each.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ActionBudget {
    pub used: u64,
    pub cap: u64,
    /// When the last action over the cap was let through.
    over_at: Option<std::time::Instant>,
}

impl ActionBudget {
    pub fn new(used: u64, cap: u64) -> Self {
        Self {
            used,
            cap,
            over_at: None,
        }
    }

    /// Takes `n` actions (cancels when `cancel`) or says why not.
    pub fn take(&mut self, n: u64, cancel: bool) -> Result<(), VenueError> {
        let cap = match cancel {
            true => (self.cap + 100_000).min(self.cap.saturating_mul(2)),
            false => self.cap,
        };
        if self.used + n > cap {
            let now = std::time::Instant::now();
            if self
                .over_at
                .is_some_and(|t| now - t < Duration::from_secs(10))
            {
                return Err(VenueError::RateLimited(format!(
                    "the address's action budget is used up ({} of {cap}; beyond it the venue \
                     allows one action per 10 s; trading volume raises it)",
                    self.used
                )));
            }
            self.over_at = Some(now);
        }
        self.used += n;
        Ok(())
    }
}

/// The venue's REST API for one account.
pub struct HlApi {
    base: String,
    agent: ureq::Agent,
    budget: Arc<WeightBudget>,
    signer: Signer,
    network: Network,
    last_nonce: Mutex<u64>,
    /// The account traded (info queries); the signer's own unless it is an API wallet.
    account: String,
    /// Unknown until [`HlApi::refresh_action_budget`] reads it.
    actions: Mutex<Option<ActionBudget>>,
}

fn dec(v: &Value) -> Option<Decimal> {
    match v {
        Value::String(s) => Decimal::from_str(s).ok(),
        Value::Number(n) => Decimal::from_str(&n.to_string()).ok(),
        _ => None,
    }
}

fn uint(v: &Value) -> Option<u64> {
    match v {
        Value::String(s) => s.parse().ok(),
        v => v.as_u64(),
    }
}

fn bad(what: &str, v: &Value) -> VenueError {
    let mut s = v.to_string();
    s.truncate(200);
    VenueError::BadAnswer(format!("{what}: {s}"))
}

impl HlApi {
    /// `base`: the REST root (`https://api.hyperliquid-testnet.xyz`).
    pub fn new(base: &str, signer: Signer, network: Network, budget: Arc<WeightBudget>) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .build()
            .into();
        let account = format!("{:#x}", signer.address());
        Self {
            base: base.trim_end_matches('/').to_string(),
            agent,
            budget,
            signer,
            network,
            last_nonce: Mutex::new(0),
            account,
            actions: Mutex::new(None),
        }
    }

    /// Trades for `account` (a master account whose API wallet is the signer).
    pub fn with_account(mut self, account: &str) -> Self {
        self.account = account.to_ascii_lowercase();
        self
    }

    /// The account address, lower-case `0x` hex.
    pub fn address(&self) -> String {
        self.account.clone()
    }

    /// The signer's address (the API wallet's, when one signs for the account).
    pub fn signer_address(&self) -> String {
        format!("{:#x}", self.signer.address())
    }

    pub fn network(&self) -> Network {
        self.network
    }

    fn spend(&self, weight: u32) {
        let mut left = weight;
        while left > 0 {
            let part = left.min(self.budget.burst());
            match self.budget.try_spend(part) {
                Ok(()) => left -= part,
                Err(wait) => std::thread::sleep(wait.min(Duration::from_secs(1))),
            }
        }
    }

    fn post(&self, path: &str, body: String) -> Result<Value, VenueError> {
        let url = format!("{}{path}", self.base);
        let mut resp = self
            .agent
            .post(&url)
            .header("content-type", "application/json")
            .send(body)
            .map_err(|e| VenueError::Transport(format!("POST {path}: {e}")))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| VenueError::Transport(format!("POST {path}: {e}")))?;
        if status == 429 {
            return Err(VenueError::RateLimited(text));
        }
        if status != 200 {
            return Err(VenueError::Http { status, body: text });
        }
        serde_json::from_str(&text).map_err(|e| VenueError::BadAnswer(format!("{path}: {e}")))
    }

    /// `POST /info` with `body`; spends the type's weight before and the items' after.
    pub fn info(&self, body: Value) -> Result<Value, VenueError> {
        let kind = body["type"].as_str().unwrap_or_default().to_string();
        self.spend(request_weight(&kind));
        let v = self.post("/info", body.to_string())?;
        self.spend(answer_weight(&kind, v.as_array().map_or(0, Vec::len)));
        Ok(v)
    }

    fn nonce(&self) -> u64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut last = self.last_nonce.lock().unwrap_or_else(|e| e.into_inner());
        *last = now.max(*last + 1);
        *last
    }

    /// Signs and sends `action`; returns the per-item `statuses` (orders, cancels). A top-level
    /// `{"status":"err"}` is a typed error.
    pub fn exchange(&self, action: &Action) -> Result<Vec<Value>, VenueError> {
        let cancel = !matches!(action, Action::Order { .. });
        if let Some(b) = self
            .actions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            b.take(action.batch_len() as u64, cancel)?;
        }
        self.spend(1 + (action.batch_len() / 40) as u32);
        let nonce = self.nonce();
        let signature = self
            .signer
            .sign_l1(action, None, nonce, None, self.network)
            .map_err(|e| VenueError::Signature(e.to_string()))?;
        let req = ExchangeRequest {
            action: action.clone(),
            nonce,
            signature,
            vault_address: None,
            expires_after: None,
        };
        let body = serde_json::to_string(&req).map_err(|e| VenueError::BadAnswer(e.to_string()))?;
        let v = self.post("/exchange", body)?;
        if v["status"] != "ok" {
            let msg = v["response"]
                .as_str()
                .map_or_else(|| v.to_string(), str::to_string);
            return Err(VenueError::from_message(&msg));
        }
        match v["response"]["data"]["statuses"].as_array() {
            Some(s) => Ok(s.clone()),
            None => Err(bad("exchange answer without statuses", &v)),
        }
    }

    /// Reads one `order` status item.
    pub fn order_answer(v: &Value) -> OrderAnswer {
        if let Some(r) = v.get("resting") {
            return match uint(&r["oid"]) {
                Some(oid) => OrderAnswer::Resting { oid },
                None => OrderAnswer::Error(bad("resting without oid", v)),
            };
        }
        if let Some(f) = v.get("filled") {
            return match (uint(&f["oid"]), dec(&f["totalSz"]), dec(&f["avgPx"])) {
                (Some(oid), Some(total_sz), Some(avg_px)) => OrderAnswer::Filled {
                    oid,
                    total_sz,
                    avg_px,
                },
                _ => OrderAnswer::Error(bad("filled", v)),
            };
        }
        if v == "waitingForTrigger" || v == "waitingForFill" {
            return OrderAnswer::WaitingForTrigger;
        }
        match v.get("error").and_then(Value::as_str) {
            Some(e) => OrderAnswer::Error(VenueError::from_message(e)),
            None => OrderAnswer::Error(bad("order status", v)),
        }
    }

    /// `meta`: the perpetuals (read with [`crate::feeds::venues::hyperliquid::perp_specs`]).
    pub fn meta(&self) -> Result<Value, VenueError> {
        self.info(json!({"type": "meta"}))
    }

    /// Reads the address's action budget (`userRateLimit`) and checks actions against it from
    /// now on.
    pub fn refresh_action_budget(&self) -> Result<ActionBudget, VenueError> {
        let v = self.info(json!({"type": "userRateLimit", "user": self.address()}))?;
        let (Some(used), Some(cap)) = (uint(&v["nRequestsUsed"]), uint(&v["nRequestsCap"])) else {
            return Err(bad("userRateLimit", &v));
        };
        let mut slot = self.actions.lock().unwrap_or_else(|e| e.into_inner());
        let b = slot.get_or_insert_with(ActionBudget::default);
        // Ours may be ahead of the venue's count (answers in flight): keep the larger.
        (b.used, b.cap) = (b.used.max(used), cap);
        Ok(b.clone())
    }

    /// `clearinghouseState` of the account.
    pub fn account(&self) -> Result<AccountState, VenueError> {
        let v = self.info(json!({"type": "clearinghouseState", "user": self.address()}))?;
        let account_value = dec(&v["marginSummary"]["accountValue"])
            .ok_or_else(|| bad("clearinghouseState", &v))?;
        let mut positions = Vec::new();
        for p in v["assetPositions"].as_array().into_iter().flatten() {
            let p = &p["position"];
            positions.push(VenuePosition {
                coin: p["coin"].as_str().ok_or_else(|| bad("position", p))?.into(),
                szi: dec(&p["szi"]).ok_or_else(|| bad("szi", p))?,
                entry_px: dec(&p["entryPx"]).unwrap_or_default(),
                position_value: dec(&p["positionValue"]).unwrap_or_default(),
            });
        }
        Ok(AccountState {
            account_value,
            positions,
        })
    }

    /// `frontendOpenOrders` (with cloids) of the account.
    pub fn open_orders(&self) -> Result<Vec<OpenOrder>, VenueError> {
        let v = self.info(json!({"type": "frontendOpenOrders", "user": self.address()}))?;
        let items = v.as_array().ok_or_else(|| bad("frontendOpenOrders", &v))?;
        items
            .iter()
            .map(|o| {
                Ok(OpenOrder {
                    coin: o["coin"].as_str().ok_or_else(|| bad("coin", o))?.into(),
                    oid: uint(&o["oid"]).ok_or_else(|| bad("oid", o))?,
                    cloid: o["cloid"].as_str().map(str::to_ascii_lowercase),
                    is_buy: o["side"] == "B",
                    limit_px: dec(&o["limitPx"]).ok_or_else(|| bad("limitPx", o))?,
                    sz: dec(&o["sz"]).ok_or_else(|| bad("sz", o))?,
                    reduce_only: o["reduceOnly"].as_bool().unwrap_or(false),
                })
            })
            .collect()
    }

    /// `orderStatus` by cloid: `None` when the venue never saw it (`unknownOid`).
    pub fn order_by_cloid(&self, cloid: &str) -> Result<Option<OrderState>, VenueError> {
        let v = self.info(json!({"type": "orderStatus", "user": self.address(), "oid": cloid}))?;
        if v["status"] != "order" {
            return Ok(None);
        }
        let o = &v["order"];
        Ok(Some(OrderState {
            oid: uint(&o["order"]["oid"]).ok_or_else(|| bad("orderStatus", &v))?,
            status: o["status"].as_str().unwrap_or_default().to_string(),
            remaining: dec(&o["order"]["sz"]).unwrap_or_default(),
        }))
    }

    /// `userFillsByTime` from `start_ms` (inclusive), oldest first.
    pub fn fills_since(&self, start_ms: i64) -> Result<Vec<VenueFill>, VenueError> {
        let body = json!({"type": "userFillsByTime", "user": self.address(),
            "startTime": start_ms.max(0), "aggregateByTime": false});
        let v = self.info(body)?;
        let items = v.as_array().ok_or_else(|| bad("userFillsByTime", &v))?;
        let mut fills: Vec<VenueFill> = items.iter().map(parse_fill).collect::<Result<_, _>>()?;
        fills.sort_by_key(|f| (f.time_ms, f.tid));
        Ok(fills)
    }
}

/// One fill item (`userFills`, `userFillsByTime`, the `user` stream).
pub fn parse_fill(f: &Value) -> Result<VenueFill, VenueError> {
    Ok(VenueFill {
        coin: f["coin"]
            .as_str()
            .ok_or_else(|| bad("fill coin", f))?
            .into(),
        oid: uint(&f["oid"]).ok_or_else(|| bad("fill oid", f))?,
        tid: uint(&f["tid"]).ok_or_else(|| bad("fill tid", f))?,
        cloid: f["cloid"].as_str().map(str::to_ascii_lowercase),
        is_buy: f["side"] == "B",
        px: dec(&f["px"])
            .filter(|p| *p > Decimal::ZERO)
            .ok_or_else(|| bad("fill px", f))?,
        sz: dec(&f["sz"])
            .filter(|s| *s > Decimal::ZERO)
            .ok_or_else(|| bad("fill sz", f))?,
        fee: dec(&f["fee"]).unwrap_or_default(),
        time_ms: uint(&f["time"]).ok_or_else(|| bad("fill time", f))? as i64,
        crossed: f["crossed"].as_bool().unwrap_or(true),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_action_budget_allows_one_action_per_10_s_past_its_cap() {
        let mut b = ActionBudget::new(9_999, 10_000);
        assert!(b.take(1, false).is_ok());
        // Over the cap: one goes through, the next within 10 s is refused (typed).
        assert!(b.take(1, false).is_ok());
        let e = b.take(1, false).unwrap_err();
        assert_eq!(e.code(), "VENUE_RATE_LIMITED");
        assert!(e.to_string().contains("10001 of 10000"), "{e}");
        // Cancels have min(cap + 100 000, 2 × cap) = 20 000.
        assert!(b.take(5_000, true).is_ok());
    }

    /// Real answers: `ccxt_static_responses` (a filled market order with its `oid` as a
    /// string, `waitingForTrigger`) and `bytex_live_payloads` (a resting order).
    #[test]
    fn order_answers_read_from_real_payloads() {
        let filled: Value = serde_json::from_str(
            r#"{"filled": {"totalSz": "1.0", "avgPx": "39.9351", "oid": "211341310459"}}"#,
        )
        .unwrap();
        assert_eq!(
            HlApi::order_answer(&filled),
            OrderAnswer::Filled {
                oid: 211_341_310_459,
                total_sz: Decimal::ONE,
                avg_px: Decimal::from_str("39.9351").unwrap()
            }
        );
        let resting: Value = serde_json::from_str(r#"{"resting":{"oid":556696349186}}"#).unwrap();
        assert_eq!(
            HlApi::order_answer(&resting),
            OrderAnswer::Resting {
                oid: 556_696_349_186
            }
        );
        assert_eq!(
            HlApi::order_answer(&json!("waitingForTrigger")),
            OrderAnswer::WaitingForTrigger
        );
        let err = json!({"error": "Order must have minimum value of $10. asset=4"});
        assert!(matches!(
            HlApi::order_answer(&err),
            OrderAnswer::Error(VenueError::MinNotional(_))
        ));
    }

    /// A real `user` channel fill (bytex_live_payloads/ws_user_fills_channel_user.json).
    #[test]
    fn fills_read_from_a_real_payload() {
        let v: Value = serde_json::from_str(r#"{"coin":"BTC","px":"83843.0","sz":"0.31975","side":"A","time":1790357129742,"startPosition":"1.5197585293","dir":"Sell","closedPnl":"86.62649561","hash":"0xaa843fb6a70b0a5dabfd044530cd4d020487009c420e292f4e4ceb09660ee448","oid":556657630865,"crossed":true,"fee":"18.01551309","tid":246814713305894,"cloid":"CLOID","feeToken":"USDC","twapId":null}"#).unwrap();
        let f = parse_fill(&v).unwrap();
        assert_eq!(
            (f.oid, f.tid, f.is_buy, f.crossed),
            (556_657_630_865, 246_814_713_305_894, false, true)
        );
        assert_eq!(
            (f.px, f.sz, f.fee),
            (
                Decimal::from_str("83843.0").unwrap(),
                Decimal::from_str("0.31975").unwrap(),
                Decimal::from_str("18.01551309").unwrap()
            )
        );
        assert_eq!(f.cloid.as_deref(), Some("cloid"));
        let mut bad = v.clone();
        bad["px"] = json!("-1");
        assert!(parse_fill(&bad).is_err());
    }
}
