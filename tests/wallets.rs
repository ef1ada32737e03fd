//! `smartflow evaluate-wallets` and `smartflow wallets` on the real recorded snapshots of
//! Hyperliquid's top wallets (kittycapital_whales, first archive: 35 snapshots, Feb 4–10 2026).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn smartflow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smartflow"))
        .args(args)
        .env_remove("SMARTFLOW_CONFIG")
        .output()
        .expect("binary runs")
}

fn archive(data: &Path) -> PathBuf {
    data.join(
        "hyperliquid/kittycapital_whales/hyperliquid_whales_snapshots_20260204_20260210.tar.xz",
    )
}

/// A vault on the leaderboard: no volume, an account of ~1.8 B USD.
const VAULT: &str = "0x24de6b77e8bc31c40aa452926daa6bbab7a71b0f";

#[test]
fn evaluate_wallets_reports_against_baselines_reproducibly() {
    let data = require_data!();
    let dir = tempfile::tempdir().unwrap();
    let arc = archive(&data);
    let run = |out: &str| {
        let out = dir.path().join(out);
        let o = smartflow(&[
            "evaluate-wallets",
            "--data",
            arc.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--draws",
            "10",
            "--seed",
            "3",
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        (String::from_utf8_lossy(&o.stdout).into_owned(), out)
    };
    let (said, out) = run("a");
    assert!(said.contains("Verdict:"), "{said}");
    let json = std::fs::read(out.join("evaluation.json")).unwrap();
    let e: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(e["snapshots"], 35);
    for book in ["follow", "follow_one_snapshot_late", "btc_hold", "nothing"] {
        let total = e[book]["total_return"].as_f64().unwrap();
        assert!(total.is_finite() && total > -1.0, "{book}: {total}");
        let (lo, hi) = (
            e[book]["ci95"][0].as_f64().unwrap(),
            e[book]["ci95"][1].as_f64().unwrap(),
        );
        assert!(lo <= hi, "{book}: interval {lo} … {hi}");
    }
    assert_eq!(e["nothing"]["total_return"], 0.0);
    // The follower traded and paid taker fees and slippage for it.
    assert!(e["follow"]["steps_exposed"].as_u64().unwrap() > 10);
    assert!(e["follow"]["costs"].as_f64().unwrap() > 0.0);
    assert_eq!(e["random"]["draws"], 10);
    let picked: Vec<&str> = e["last_selection"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["address"].as_str().unwrap())
        .collect();
    assert_eq!(picked.len(), 20);
    assert!(!picked.contains(&VAULT), "a vault is never followed");
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("| hold BTC |") && md.contains("Random wallets of similar"));
    let png = std::fs::read(out.join("equity.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000);
    // Same data, config and seed: the same report.
    let (_, again) = run("b");
    assert_eq!(std::fs::read(again.join("evaluation.json")).unwrap(), json);
}

#[test]
fn wallets_lists_each_dimension_and_why_a_wallet_is_left_out() {
    let data = require_data!();
    let arc = archive(&data);
    let o = smartflow(&["wallets", "--all", "--data", arc.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.lines()
            .nth(1)
            .unwrap()
            .contains("perf   size recent regime"),
        "{out}"
    );
    assert_eq!(out.matches("followed: #").count(), 20);
    let vault = out
        .lines()
        .find(|l| l.starts_with(VAULT))
        .expect("the vault is listed");
    assert!(vault.ends_with("left out: VAULT"), "{vault}");
    assert!(out.contains("left out: MARKET_MAKER"));
}

#[test]
fn a_missing_snapshot_path_is_refused_with_its_name() {
    let o = smartflow(&["evaluate-wallets", "--data", "/nonexistent/snaps"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("/nonexistent/snaps: no such file or folder"),
        "{err}"
    );
}

/// A leaderboard in Hyperliquid's layout (numbers as decimal strings), derived from the first
/// recorded snapshot's rows (day and week windows; the real file also has month and allTime).
fn leaderboard_fixture(data: &Path) -> serde_json::Value {
    let snaps = smartflow::wallets::snapshot::load_snapshots(&[archive(data)]).unwrap();
    let rows: Vec<serde_json::Value> = snaps[0]
        .wallets
        .iter()
        .map(|w| {
            let win = |name: &str, x: Option<smartflow::wallets::snapshot::Window>| {
                x.map(|x| {
                    serde_json::json!([name, {"pnl": x.pnl.to_string(),
                    "roi": x.roi.to_string(), "vlm": x.volume.to_string()}])
                })
            };
            let perf: Vec<_> = [win("day", w.day), win("week", w.week)]
                .into_iter()
                .flatten()
                .collect();
            serde_json::json!({"ethAddress": w.address, "accountValue": w.account_value.to_string(),
                "windowPerformances": perf, "prize": 0, "displayName": w.name})
        })
        .collect();
    serde_json::json!({"leaderboardRows": rows})
}

#[test]
fn a_leaderboard_is_read_row_by_row_and_its_vaults_are_recognised() {
    let data = require_data!();
    let dir = tempfile::tempdir().unwrap();
    let doc = leaderboard_fixture(&data);
    let n_rows = doc["leaderboardRows"].as_array().unwrap().len();
    let file = dir.path().join("leaderboard.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let o = smartflow(&["wallets", "--all", "--leaderboard", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("{n_rows} rows")), "{err}");
    let out = String::from_utf8_lossy(&o.stdout);
    let vault = out
        .lines()
        .find(|l| l.starts_with(VAULT))
        .expect("the vault is listed");
    assert!(vault.ends_with("left out: VAULT"), "{vault}");
    assert_eq!(out.matches("followed: #").count(), 20);
    // Library use: rows arrive one at a time, classified.
    let cfg = smartflow::wallets::WalletsConfig::default();
    let mut kinds = std::collections::BTreeMap::new();
    let n = smartflow::wallets::leaderboard::read_leaderboard(
        std::fs::File::open(&file).unwrap(),
        &cfg,
        |r| *kinds.entry(format!("{:?}", r.kind)).or_insert(0) += 1,
    )
    .unwrap();
    assert_eq!(n, n_rows);
    assert!(
        kinds["Trader"] > kinds["Vault"] && kinds["Vault"] >= 1,
        "{kinds:?}"
    );
    // A malformed number is refused with its row.
    let mut bad = doc.clone();
    bad["leaderboardRows"][3]["windowPerformances"][0][1]["roi"] = "x".into();
    let err =
        smartflow::wallets::leaderboard::read_leaderboard(bad.to_string().as_bytes(), &cfg, |_| {})
            .unwrap_err();
    assert!(
        format!("{err:#}").contains("row 3: roi \"x\" is not a number"),
        "{err:#}"
    );
}
