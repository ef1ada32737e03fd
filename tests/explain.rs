//! Explanations of real alerts: the rendering of a replayed pump's alert (snapshot), and a model
//! without TreeSHAP covers keeping the GBM's term whole instead of guessing.

mod common;

use smartflow::config::Config;
use smartflow::models::explain::{render, Explanation};
use smartflow::models::Ensemble;
use smartflow::pipeline::Fault;
use smartflow::replay::{run_replay, ReplayOptions};
use smartflow::store::{RecordKind, Store};
use std::path::Path;

/// The explanations of every signal of a replay of `file` with `config`.
fn explanations(file: &str, config: Config) -> Vec<(String, Explanation)> {
    let dir = tempfile::tempdir().unwrap();
    run_replay(ReplayOptions {
        data: vec![file.to_string()],
        config,
        state_dir: dir.path().to_path_buf(),
        fault: Fault::default(),
        resume: false,
        progress: false,
    })
    .unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .records()
        .unwrap()
        .into_iter()
        .filter(|r| r.kind == RecordKind::Signal)
        .map(|r| {
            let e = serde_json::from_value(r.detail["explanation"].clone()).unwrap();
            (r.id, e)
        })
        .collect()
}

const SNAPSHOT: &str = "tests/snapshots/explain_gvt_2020-09-17.txt";

/// `log show`'s explanation of the first alert on GVT/BTC's pump of 2020-09-17 18:00, as a
/// trader reads it. Set `SMARTFLOW_UPDATE_SNAPSHOTS=1` to rewrite the snapshot after an
/// intended change (and read the diff).
#[test]
fn a_replayed_pump_alert_reads_as_market_facts() {
    let data = require_data!();
    let file = common::pump_file(&data, "GVT_2020-09-17_17.59.csv.gz");
    let ex = explanations(&file, Config::default());
    let (id, e) = ex.first().expect("the pump is alerted");
    assert_eq!(id, "sig-1");
    let text = render::lines(e, "BTC", 5).join("\n") + "\n";
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(SNAPSHOT);
    if std::env::var_os("SMARTFLOW_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text, want, "rendering changed; see {SNAPSHOT}");
    // Facts, not model names; figures in units, no 16-digit raw inputs.
    assert!(!text.contains("member."), "{text}");
    assert!(text.lines().count() <= 8, "{text}");
    assert!(
        text.split(|c: char| !c.is_ascii_digit())
            .all(|d| d.len() < 8),
        "{text}"
    );
    for (id, e) in &ex {
        assert!(e.residual().abs() < 1e-6, "{id}: {}", e.residual());
    }
}

/// Model v4 predates node covers: its explanations keep the GBM's whole stacker term apart
/// (named as such), and still add up.
#[test]
fn a_model_without_covers_keeps_the_gbm_term_whole() {
    let data = require_data!();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/v4");
    let ens = Ensemble::load(&dir).unwrap();
    assert!(!ens.gbm().unwrap().has_covers());
    let file = common::pump_file(&data, "GVT_2020-09-17_17.59.csv.gz");
    let cfg = Config::from_toml("[models]\nactive = \"v4\"\n", "test").unwrap();
    let ex = explanations(&file, cfg);
    assert!(!ex.is_empty());
    for (id, e) in &ex {
        let gbm = e.members.iter().find(|m| m.name == "gbm").unwrap();
        assert!(gbm.method.contains("no node covers"), "{}", gbm.method);
        assert!((e.unattributed - gbm.term).abs() < 1e-9, "{id}");
        assert!(e.inputs.iter().all(|i| i.by_member[3] == 0.0));
        assert!(e.residual().abs() < 1e-6, "{id}: {}", e.residual());
        assert!(e.level.is_none(), "v4 has no alert levels");
        let text = render::lines(e, "BTC", 5).join("\n");
        assert!(text.contains("not split by input"), "{text}");
    }
}
