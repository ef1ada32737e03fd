//! Snapshots of Hyperliquid's top wallets with their open perpetual positions, as recorded by
//! the `kittycapital/hyperliquid-whales` bot every ~6 h (see the data's PROVENANCE.md):
//! `{"lastUpdated", "whaleTracker": {"daily": [row], "weekly": [row], "biggestPositions"}}`,
//! row = `{address, displayName, accountValue, pnl, roi, volume, positions: [{coin, direction,
//! size, entryPx, leverage, positionValue, unrealizedPnl, liquidationPx}]}`; `daily` rows carry
//! the day window's pnl/roi/volume, `weekly` rows the week's.
//!
//! Read from JSON files, folders of them, or the `.tar.xz` archives as shipped. The recording bot
//! turned the API's decimal strings into floats, so these analytics are `f64` (USD).

use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// PnL, ROI (a fraction: 0.0125 = 1.25 %) and traded volume of one leaderboard window, USD.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Window {
    pub pnl: f64,
    pub roi: f64,
    pub volume: f64,
}

/// An open perpetual position of a wallet: `size` in coins (> 0), `value` = size × mark, USD.
#[derive(Clone, Debug, PartialEq)]
pub struct WalletPosition {
    pub coin: String,
    pub long: bool,
    pub size: f64,
    pub value: f64,
    pub leverage: f64,
}

/// One wallet in one snapshot, its day and week windows merged from the two lists.
#[derive(Clone, Debug, PartialEq)]
pub struct WalletRow {
    /// Lower-case 0x address.
    pub address: String,
    /// Free user text; never trusted for anything but display.
    pub name: Option<String>,
    pub account_value: f64,
    pub day: Option<Window>,
    pub week: Option<Window>,
    pub positions: Vec<WalletPosition>,
}

/// One snapshot: its time, the wallets, and each held coin's mark price (median of
/// position value / size over the positions seen).
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// `lastUpdated`, Unix ms.
    pub ts_ms: i64,
    /// Where it came from (file, or archive/member).
    pub source: String,
    pub wallets: Vec<WalletRow>,
    pub prices: BTreeMap<String, f64>,
}

/// A JSON number, or a decimal string (`entryPx`), as f64.
fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|x: &f64| x.is_finite())
}

fn position(p: &Value) -> Option<WalletPosition> {
    let size = num(&p["size"])?.abs();
    let value = num(&p["positionValue"])?.abs();
    Some(WalletPosition {
        coin: p["coin"].as_str()?.to_string(),
        long: p["direction"].as_str()?.eq_ignore_ascii_case("long"),
        size,
        value,
        leverage: num(&p["leverage"]).unwrap_or(1.0).max(1.0),
    })
    .filter(|p| p.size > 0.0)
}

fn row(r: &Value) -> Option<(WalletRow, Window)> {
    let window = Window {
        pnl: num(&r["pnl"])?,
        roi: num(&r["roi"]).unwrap_or(0.0),
        volume: num(&r["volume"]).unwrap_or(0.0),
    };
    let positions = r["positions"]
        .as_array()
        .map_or(vec![], |ps| ps.iter().filter_map(position).collect());
    let row = WalletRow {
        address: r["address"].as_str()?.to_ascii_lowercase(),
        name: r["displayName"].as_str().map(str::to_string),
        account_value: num(&r["accountValue"])?,
        day: None,
        week: None,
        positions,
    };
    Some((row, window))
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Parses one snapshot document; `source` names it in errors.
pub fn parse_snapshot(text: &str, source: &str) -> Result<Snapshot> {
    let doc: Value = serde_json::from_str(text).with_context(|| format!("{source}: not JSON"))?;
    let updated = doc["lastUpdated"]
        .as_str()
        .with_context(|| format!("{source}: no lastUpdated"))?;
    let ts = time::OffsetDateTime::parse(updated, &time::format_description::well_known::Rfc3339)
        .with_context(|| format!("{source}: lastUpdated {updated:?} is not RFC 3339"))?;
    let tracker = &doc["whaleTracker"];
    let mut by_addr: BTreeMap<String, WalletRow> = BTreeMap::new();
    for (list, is_day) in [("daily", true), ("weekly", false)] {
        let rows = tracker[list]
            .as_array()
            .with_context(|| format!("{source}: no whaleTracker.{list}"))?;
        for (r, w) in rows.iter().filter_map(row) {
            let e = by_addr.entry(r.address.clone()).or_insert(r);
            if is_day {
                e.day = Some(w)
            } else {
                e.week = Some(w)
            }
        }
    }
    let mut px: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for p in by_addr.values().flat_map(|w| &w.positions) {
        px.entry(p.coin.clone()).or_default().push(p.value / p.size);
    }
    Ok(Snapshot {
        ts_ms: (ts.unix_timestamp_nanos() / 1_000_000) as i64,
        source: source.to_string(),
        wallets: by_addr.into_values().collect(),
        prices: px.into_iter().map(|(c, v)| (c, median(v))).collect(),
    })
}

/// The JSON members of a `.tar.xz` archive, with their names.
fn archive_members(path: &Path) -> Result<Vec<(String, String)>> {
    let mut xz = std::io::BufReader::new(
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
    );
    let mut tar = Vec::new();
    lzma_rs::xz_decompress(&mut xz, &mut tar)
        .map_err(|e| anyhow::anyhow!("{}: not an xz archive: {e}", path.display()))?;
    let mut out = Vec::new();
    let mut archive = tar::Archive::new(std::io::Cursor::new(tar));
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = entry.path()?.to_string_lossy().to_string();
        if name.ends_with(".json") {
            let mut text = String::new();
            entry.read_to_string(&mut text)?;
            out.push((format!("{}/{name}", path.display()), text));
        }
    }
    Ok(out)
}

fn expand(path: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for e in entries {
            expand(&e, files)?;
        }
    } else if !path.exists() {
        bail!("{}: no such file or folder", path.display());
    } else {
        let name = path.to_string_lossy();
        if name.ends_with(".json") || name.ends_with(".tar.xz") {
            files.push(path.to_path_buf());
        }
    }
    Ok(())
}

/// Every snapshot in `paths` (JSON files, folders searched recursively, `.tar.xz` archives),
/// in time order, one per `lastUpdated`. Errors name the file; no snapshot at all is an error.
pub fn load_snapshots(paths: &[PathBuf]) -> Result<Vec<Snapshot>> {
    let mut files = Vec::new();
    for p in paths {
        expand(p, &mut files)?;
    }
    let mut snaps = Vec::new();
    for f in &files {
        if f.to_string_lossy().ends_with(".tar.xz") {
            for (name, text) in archive_members(f)? {
                snaps.push(parse_snapshot(&text, &name)?);
            }
        } else {
            let text = std::fs::read_to_string(f)
                .with_context(|| format!("cannot read {}", f.display()))?;
            snaps.push(parse_snapshot(&text, &f.display().to_string())?);
        }
    }
    snaps.sort_by_key(|s| s.ts_ms);
    snaps.dedup_by_key(|s| s.ts_ms);
    if snaps.is_empty() {
        bail!("no wallet snapshot (.json or .tar.xz) in {paths:?}");
    }
    Ok(snaps)
}
