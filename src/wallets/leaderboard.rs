//! Hyperliquid's leaderboard (`GET https://stats-data.hyperliquid.xyz/Mainnet/leaderboard`, ~30 k
//! rows, 25–40 MB): `{"leaderboardRows": [{"ethAddress", "accountValue", "windowPerformances":
//! [["day", {"pnl", "roi", "vlm"}], ["week", …], ["month", …], ["allTime", …]], "prize",
//! "displayName"}]}`, every number a decimal string. Rows are read one at a time from any reader
//! (a file or the HTTP body), without building the document; each is classified as a trader,
//! a vault or a market maker by the `[wallets]` rules.

use super::config::WalletsConfig;
use super::snapshot::{Snapshot, WalletRow, Window};
use anyhow::{Context, Result};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Read;

/// What a leaderboard row looks like it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    Trader,
    /// No volume in any window and an account over `vault_min_account_value`.
    Vault,
    /// Volume over `mm_volume_ratio` × the account value in some window.
    MarketMaker,
}

/// One leaderboard row: USD figures as f64 (analytics), windows day, week, month, all time.
#[derive(Clone, Debug, PartialEq)]
pub struct LeaderboardRow {
    pub address: String,
    pub name: Option<String>,
    pub account_value: f64,
    /// day, week, month, allTime.
    pub windows: [Option<Window>; 4],
    pub kind: AccountKind,
}

const WINDOWS: [&str; 4] = ["day", "week", "month", "allTime"];

#[derive(Deserialize)]
struct RawPerf<'a> {
    #[serde(borrow)]
    pnl: Cow<'a, str>,
    #[serde(borrow)]
    roi: Cow<'a, str>,
    #[serde(borrow)]
    vlm: Cow<'a, str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRow<'a> {
    #[serde(borrow)]
    eth_address: Cow<'a, str>,
    #[serde(borrow)]
    account_value: Cow<'a, str>,
    #[serde(borrow)]
    window_performances: Vec<(Cow<'a, str>, RawPerf<'a>)>,
    #[serde(default, borrow)]
    display_name: Option<Cow<'a, str>>,
}

fn num(s: &str, what: &str) -> Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
        .ok_or_else(|| format!("{what} {s:?} is not a number"))
}

impl LeaderboardRow {
    fn from_raw(r: RawRow<'_>, cfg: &WalletsConfig) -> Result<Self, String> {
        let account_value = num(&r.account_value, "accountValue")?;
        let mut windows = [None; 4];
        for (name, p) in &r.window_performances {
            if let Some(k) = WINDOWS.iter().position(|w| *w == name.as_ref()) {
                windows[k] = Some(Window {
                    pnl: num(&p.pnl, "pnl")?,
                    roi: num(&p.roi, "roi")?,
                    volume: num(&p.vlm, "vlm")?,
                });
            }
        }
        let vols = windows.iter().flatten().map(|w| w.volume);
        let max_ratio = vols
            .clone()
            .fold(0.0f64, |m, v| m.max(v / account_value.max(1.0)));
        let kind = if vols.clone().all(|v| v == 0.0) && account_value > cfg.vault_min_account_value
        {
            AccountKind::Vault
        } else if max_ratio > cfg.mm_volume_ratio {
            AccountKind::MarketMaker
        } else {
            AccountKind::Trader
        };
        Ok(Self {
            address: r.eth_address.to_ascii_lowercase(),
            name: r.display_name.map(|n| n.into_owned()),
            account_value,
            windows,
            kind,
        })
    }
}

/// Visits `leaderboardRows` one row at a time.
struct Rows<'c, F> {
    cfg: &'c WalletsConfig,
    on_row: F,
    index: usize,
}

impl<'de, F: FnMut(LeaderboardRow)> Visitor<'de> for &mut Rows<'_, F> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of leaderboard rows")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(raw) = seq.next_element::<RawRow<'_>>()? {
            let row = LeaderboardRow::from_raw(raw, self.cfg)
                .map_err(|e| de::Error::custom(format!("row {}: {e}", self.index)))?;
            self.index += 1;
            (self.on_row)(row);
        }
        Ok(())
    }
}

impl<'de, F: FnMut(LeaderboardRow)> DeserializeSeed<'de> for &mut Rows<'_, F> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

/// The top-level object: finds `leaderboardRows`, ignores the rest.
struct Doc<'r, 'c, F>(&'r mut Rows<'c, F>);

impl<'de, F: FnMut(LeaderboardRow)> Visitor<'de> for Doc<'_, '_, F> {
    type Value = bool;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object with leaderboardRows")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let mut found = false;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == "leaderboardRows" {
                map.next_value_seed(&mut *self.0)?;
                found = true;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// Reads a leaderboard from `reader`, calling `on_row` for each row as it is parsed; returns the
/// number of rows. Errors name the row and field (`row 17: roi "x" is not a number`).
pub fn read_leaderboard<R: Read>(
    reader: R,
    cfg: &WalletsConfig,
    on_row: impl FnMut(LeaderboardRow),
) -> Result<usize> {
    let mut rows = Rows {
        cfg,
        on_row,
        index: 0,
    };
    let mut de =
        serde_json::Deserializer::from_reader(std::io::BufReader::with_capacity(1 << 16, reader));
    let found = de
        .deserialize_map(Doc(&mut rows))
        .context("not a Hyperliquid leaderboard")?;
    de.end().context("trailing data after the leaderboard")?;
    anyhow::ensure!(found, "not a Hyperliquid leaderboard: no leaderboardRows");
    Ok(rows.index)
}

/// The leaderboard as a snapshot at `ts_ms` (day and week windows; no positions), for scoring.
pub fn as_snapshot(rows: &[LeaderboardRow], ts_ms: i64, source: &str) -> Snapshot {
    Snapshot {
        ts_ms,
        source: source.to_string(),
        wallets: rows
            .iter()
            .map(|r| WalletRow {
                address: r.address.clone(),
                name: r.name.clone(),
                account_value: r.account_value,
                day: r.windows[0],
                week: r.windows[1],
                positions: vec![],
            })
            .collect(),
        prices: BTreeMap::new(),
    }
}
