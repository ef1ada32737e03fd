//! The learned detector on real pump data: features against from-scratch references, no look-ahead,
//! reproducible training, the native trees' parity with LightGBM, the ensemble in replay, and the CLI.

mod common;

use smartflow::cli::log::{export, Filter};
use smartflow::config::Config;
use smartflow::domain::{MarketEvent, Side, Trade};
use smartflow::features::lamorgia::LaMorgiaChunks;
use smartflow::features::{ChunkConfig, ChunkEngine, ChunkRow, FeatureConfig};
use smartflow::models::artifact::{self, Manifest};
use smartflow::models::dataset::{self, RowSettings};
use smartflow::models::explain::{facts::FACTS, Explanation};
use smartflow::models::gbm::Gbm;
use smartflow::models::labels::load_events;
use smartflow::models::linear::sigmoid;
use smartflow::models::metrics::AlertGate;
use smartflow::models::train::train;
use smartflow::models::Ensemble;
use smartflow::pipeline::Fault;
use smartflow::replay::{run_replay, ReplayOptions, ReplaySummary};
use smartflow::store::{Record, RecordKind, Store};
use std::path::{Path, PathBuf};

fn trades(data: &Path, file: &str) -> Vec<Trade> {
    let p = PathBuf::from(common::pump_file(data, file));
    let mut src = smartflow::feeds::open_source(&p).unwrap();
    let mut out = Vec::new();
    while let Some(item) = src.next_item() {
        if let Ok(MarketEvent::Trade(t)) = item {
            out.push(t);
        }
    }
    out
}

fn f(d: rust_decimal::Decimal) -> f64 {
    use rust_decimal::prelude::ToPrimitive;
    d.to_f64().unwrap()
}

/// La Morgia's features at 25 s (window 12 chunks) on a real pump, against a from-scratch
/// computation of their definitions: group buys per 25 s chunk, keep non-empty chunks, rolling
/// sample std / mean over the window (10 for the price averages), relative change.
#[test]
fn la_morgia_features_match_a_from_scratch_computation_on_a_real_pump() {
    let data = require_data!();
    let file = "QLC_2020-03-12_16.00.csv.gz";
    let ts = trades(&data, file);
    let announced = common::announced_ms(&data, file);
    let w = 12usize;
    let mut lm = LaMorgiaChunks::new(25, w);
    let mut got = Vec::new();
    for t in ts.iter().filter(|t| t.aggressor == Side::Buy) {
        if let Some(r) = lm.advance(t.ts_ms) {
            got.push(r);
        }
        lm.add_buy(t.ts_ms, f(t.price), f(t.price) * f(t.qty));
    }
    // Reference: per-chunk aggregates of buys.
    let mut chunks: Vec<(i64, Vec<&Trade>)> = Vec::new();
    for t in ts.iter().filter(|t| t.aggressor == Side::Buy) {
        let c = t.ts_ms.div_euclid(25_000);
        match chunks.last_mut() {
            Some((k, v)) if *k == c => v.push(t),
            _ => chunks.push((c, vec![t])),
        }
    }
    let agg: Vec<[f64; 5]> = chunks
        .iter()
        .map(|(_, v)| {
            let mut ms: Vec<i64> = v.iter().map(|t| t.ts_ms).collect();
            ms.dedup();
            let rush = ms
                .iter()
                .filter(|m| v.iter().filter(|t| t.ts_ms == **m).count() >= 2)
                .count() as f64;
            let n = v.len() as f64;
            let vol: f64 = v.iter().map(|t| f(t.price) * f(t.qty)).sum();
            let mean = v.iter().map(|t| f(t.price)).sum::<f64>() / n;
            let max = v.iter().map(|t| f(t.price)).fold(f64::MIN, f64::max);
            [rush, n, vol, mean, max]
        })
        .collect();
    let stat = |i: usize, k: usize, len: usize, std: bool| -> f64 {
        if i + 1 < len {
            return f64::NAN;
        }
        let xs: Vec<f64> = agg[i + 1 - len..=i].iter().map(|a| a[k]).collect();
        let m = xs.iter().sum::<f64>() / len as f64;
        if std {
            (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (len as f64 - 1.0)).sqrt()
        } else {
            m
        }
    };
    let reference = |i: usize| -> [f64; 8] {
        let s = |i| {
            [
                stat(i, 0, w, true),
                stat(i, 0, w, false),
                stat(i, 1, w, true),
                stat(i, 2, w, true),
                stat(i, 2, w, false),
                stat(i, 3, w, true),
                stat(i, 3, 10, false),
                stat(i, 4, 10, false),
            ]
        };
        let (a, b) = (s(i - 1), s(i));
        std::array::from_fn(|k| b[k] / a[k] - 1.0)
    };
    // Every closed chunk from 1 h before to 10 min after the announcement.
    let mut checked = 0;
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.chunk_start_ms, chunks[i].0 * 25_000);
        if r.chunk_start_ms < announced - 3_600_000 || r.chunk_start_ms > announced + 600_000 {
            continue;
        }
        let e = reference(i);
        for (k, (&a, &b)) in r.values.iter().zip(&e).enumerate() {
            assert!(
                (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-9 * b.abs().max(1e-6),
                "chunk {} feature {k}: {a} vs {b}",
                r.chunk_start_ms
            );
        }
        checked += 1;
    }
    assert!(checked >= 20, "checked {checked}");
}

fn rows(trades: &[Trade]) -> Vec<ChunkRow> {
    let mut e = ChunkEngine::new(&FeatureConfig::default(), &ChunkConfig::default());
    trades.iter().filter_map(|t| e.update(t)).collect()
}

/// Rewriting everything from time T on (prices, sizes and sides shuffled among the later trades)
/// leaves every row built before T unchanged.
#[test]
fn no_feature_reads_the_future() {
    let data = require_data!();
    let file = "AST_2020-05-09_16.00.csv.gz";
    let ts = trades(&data, file);
    let cut = common::announced_ms(&data, file) - 30_000;
    let mut changed = ts.clone();
    let later: Vec<usize> = (0..ts.len()).filter(|&i| ts[i].ts_ms >= cut).collect();
    assert!(later.len() > 100);
    let n = later.len();
    for (j, &i) in later.iter().enumerate() {
        let src = &ts[later[(j * 7919 + 13) % n]];
        changed[i].price = src.price * rust_decimal::Decimal::from(3);
        changed[i].qty = src.qty;
        changed[i].aggressor = if j % 2 == 0 { Side::Buy } else { Side::Sell };
    }
    let a = rows(&ts);
    let b = rows(&changed);
    let before: Vec<&ChunkRow> = a.iter().filter(|r| r.ts_ms < cut).collect();
    let before_b: Vec<&ChunkRow> = b.iter().filter(|r| r.ts_ms < cut).collect();
    assert!(before.len() > 1000 && before.iter().filter(|r| r.warm).count() > 500);
    assert_eq!(before.len(), before_b.len());
    for (x, y) in before.iter().zip(&before_b) {
        assert_eq!(x.ts_ms, y.ts_ms);
        for k in 0..x.x.len() {
            assert!(
                x.x[k] == y.x[k] || (x.x[k].is_nan() && y.x[k].is_nan()),
                "row {} column {k} changed",
                x.ts_ms
            );
        }
    }
    // The rewrite does change later rows (the test can fail).
    let after_a: Vec<&ChunkRow> = a.iter().filter(|r| r.ts_ms > cut + 5000).collect();
    let after_b: Vec<&ChunkRow> = b.iter().filter(|r| r.ts_ms > cut + 5000).collect();
    assert!(after_a
        .iter()
        .zip(&after_b)
        .any(|(x, y)| x.x[24 + 14] != y.x[24 + 14]));
}

const TRAIN_FILES: &[&str] = &[
    "AST_2020-05-09_16.00.csv.gz",
    "YOYOW_2020-05-14_16.00.csv.gz",
    "QLC_2020-03-12_16.00.csv.gz",
    "BNT_2019-09-09_20.00.csv.gz",
    "FUEL_2020-03-27_21.00.csv.gz",
    "ADX_2019-07-05_17.00.csv.gz",
];

#[test]
fn training_is_reproducible_and_time_ordered() {
    let data = require_data!();
    let mut cfg = Config::default();
    cfg.train.gbm.enabled = false; // LightGBM's own determinism is the script's (one thread, seed).
    cfg.train.split = [0.5, 0.5, 0.0];
    cfg.train.bootstrap = 20;
    let paths: Vec<PathBuf> = TRAIN_FILES
        .iter()
        .map(|f| PathBuf::from(common::pump_file(&data, f)))
        .collect();
    let events = load_events(
        &data.join("binance_pumps/events_index.csv"),
        cfg.train.labels.start,
    )
    .unwrap();
    let st = RowSettings {
        features: cfg.features.clone(),
        chunks: cfg.train.chunks.clone(),
        detector: cfg.detector.clone(),
        labels: cfg.train.labels,
    };
    let (eps, stats) = dataset::build(&paths, &events, &st, &|_| {}).unwrap();
    assert_eq!(stats.files, TRAIN_FILES.len());
    assert!(eps.iter().all(|e| e.ep.event.is_some()));
    let inputs = cfg.row_inputs();
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let a = train(&cfg.train, &inputs, &eps, d1.path(), &|_| {}).unwrap();
    let b = train(&cfg.train, &inputs, &eps, d2.path(), &|_| {}).unwrap();
    assert_eq!(a.manifest.version, "v1");
    assert_eq!(a.manifest.artifact_hash, b.manifest.artifact_hash);
    assert_eq!(a.manifest.data_hash, b.manifest.data_hash);
    assert_eq!(a.manifest.iforest, b.manifest.iforest);
    // Train on the earlier pumps, calibrate on the later ones.
    let start = |name: &String| {
        let file = name.split('#').next().unwrap();
        events[file].start_ms
    };
    let last_train = a.manifest.split.train.iter().map(start).max().unwrap();
    let first_cal = a.manifest.split.calibrate.iter().map(start).min().unwrap();
    assert!(last_train < first_cal);
    // Another seed gives another forest; a second training in the same folder is v2.
    let mut other = cfg.train.clone();
    other.seed = 2;
    let c = train(&other, &inputs, &eps, d1.path(), &|_| {}).unwrap();
    assert_eq!(c.manifest.version, "v2");
    assert_ne!(c.manifest.artifact_hash, a.manifest.artifact_hash);
    let read = Manifest::read(&artifact::resolve(d1.path(), "v1").unwrap()).unwrap();
    assert!(read == a.manifest, "rollback reads v1 back exactly");
    assert_eq!(read.content_hash(), a.manifest.artifact_hash);
    assert_eq!(
        artifact::resolve(d1.path(), "latest").unwrap(),
        d1.path().join("v2")
    );
}

/// The shipped model: the natively evaluated trees give the probabilities LightGBM recorded when
/// training, to 1e-6, and the artifact's hashes hold.
#[test]
fn shipped_gbm_trees_give_lightgbms_probabilities() {
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let dir = artifact::resolve(&models, "latest").unwrap();
    let m = Manifest::read(&dir).unwrap();
    let g = m.gbm.as_ref().expect("shipped model has a GBM member");
    let gbm = Gbm::load(&dir.join(&g.file), m.features.len()).unwrap();
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("gbm.json")).unwrap()).unwrap();
    assert!(meta["check"]["rows"].as_array().unwrap().len() >= 100);
    let diff = gbm.check(&meta).unwrap();
    eprintln!("shipped model: max |Δp| against LightGBM {diff:e}");
    assert!(diff <= 1e-6, "max |Δp| {diff}");
    let bytes = std::fs::read(dir.join(&g.file)).unwrap();
    assert_eq!(artifact::sha256_hex(&bytes), g.sha256);
    assert_eq!(m.content_hash(), m.artifact_hash);

    // A probability that LightGBM did not record is refused at load: shift one and reload.
    let copy = tempfile::tempdir().unwrap();
    for f in ["manifest.json", "gbm.onnx"] {
        std::fs::copy(dir.join(f), copy.path().join(f)).unwrap();
    }
    let mut bad = meta.clone();
    let p0 = bad["check"]["probabilities"][0].as_f64().unwrap();
    bad["check"]["probabilities"][0] = serde_json::json!(p0 + 1e-5);
    std::fs::write(copy.path().join("gbm.json"), bad.to_string()).unwrap();
    let e = format!("{:#}", Ensemble::load(copy.path()).unwrap_err());
    assert!(e.contains("LightGBM") && e.contains("gbm.onnx"), "{e}");
}

/// TreeSHAP of the shipped trees equals LightGBM's own `pred_contrib` on the rows the training
/// script recorded (every input's value and the expected value), and a model whose recorded SHAP
/// values it does not reproduce is refused.
#[test]
fn treeshap_gives_lightgbms_pred_contrib_on_the_recorded_rows() {
    let dir = artifact::resolve(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("models"),
        "latest",
    )
    .unwrap();
    let m = Manifest::read(&dir).unwrap();
    let mut gbm = Gbm::load(&dir.join("gbm.onnx"), m.features.len()).unwrap();
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("gbm.json")).unwrap()).unwrap();
    assert!(!gbm.has_covers());
    gbm.attach_covers(&meta).unwrap();
    assert!(gbm.has_covers(), "the shipped gbm.json records node covers");
    let rows = meta["check"]["contributions"].as_array().unwrap().len();
    assert!(rows >= 100, "{rows} recorded rows");
    let diff = gbm
        .check_shap(&meta)
        .unwrap()
        .expect("recorded SHAP values");
    eprintln!("TreeSHAP vs LightGBM pred_contrib on {rows} rows: max |Δ| {diff:e}");
    assert!(diff <= 1e-6, "max |Δ| {diff}");
    // Every row's SHAP values add up to its raw score.
    for r in meta["check"]["rows"].as_array().unwrap().iter().take(20) {
        let x: Vec<f32> = r
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let (e, phi) = gbm.shap(&x).unwrap();
        assert!((e + phi.iter().sum::<f64>() - gbm.raw(&x)).abs() < 1e-9);
    }

    let copy = tempfile::tempdir().unwrap();
    for f in ["manifest.json", "gbm.onnx"] {
        std::fs::copy(dir.join(f), copy.path().join(f)).unwrap();
    }
    let mut bad = meta.clone();
    let c0 = bad["check"]["contributions"][0][3].as_f64().unwrap();
    bad["check"]["contributions"][0][3] = serde_json::json!(c0 + 1e-4);
    std::fs::write(copy.path().join("gbm.json"), bad.to_string()).unwrap();
    let e = format!("{:#}", Ensemble::load(copy.path()).unwrap_err());
    assert!(e.contains("TreeSHAP") && e.contains("pred_contrib"), "{e}");
}

/// The cascade replay and paper score with: on every checkpoint row of six real pump files, a
/// row it cuts short scores below the alert gate's floor in full, a row it scores is bit-identical
/// to the full score, and the alerts are the same with and without it.
#[test]
fn the_cascade_never_drops_a_row_that_could_alert() {
    let data = require_data!();
    let ens = Ensemble::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("models/v5")).unwrap();
    let m = &ens.manifest;
    let inputs = m.inputs.clone().expect("v5 records its row settings");
    let st = RowSettings::new(inputs, Default::default());
    let paths: Vec<PathBuf> = TRAIN_FILES
        .iter()
        .map(|f| PathBuf::from(common::pump_file(&data, f)))
        .collect();
    let (eps, _) = dataset::build(&paths, &Default::default(), &st, &|_| {}).unwrap();
    let threshold = m.thresholds["ensemble"];
    let floor = AlertGate::floor(m.alert_rule(), threshold);
    let (mut rows, mut cut) = (0, 0);
    for e in &eps {
        let (mut full_gate, mut cascade_gate) = (AlertGate::default(), AlertGate::default());
        for i in 0..e.x.len() {
            let row = e.chunk_row(i);
            let full = ens.score(&row, e.rule[i]);
            let fast = ens.score_above(&row, e.rule[i], floor);
            match &fast {
                None => {
                    cut += 1;
                    assert!(
                        full.prob < floor,
                        "cut a row scoring {} ≥ {floor}",
                        full.prob
                    );
                }
                Some(s) => {
                    assert_eq!(s.prob.to_bits(), full.prob.to_bits());
                    assert_eq!(s.members.map(f64::to_bits), full.members.map(f64::to_bits));
                }
            }
            let p = fast.map_or(f64::NEG_INFINITY, |s| s.prob);
            let a = full_gate.step(m.alert_rule(), row.ts_ms, full.prob, threshold);
            let b = cascade_gate.step(m.alert_rule(), row.ts_ms, p, threshold);
            assert_eq!(a, b, "alert at row {i} of {}", e.ep.name);
            rows += 1;
        }
    }
    // Most rows are far below the floor; the cascade must actually cut them.
    assert!(
        rows > 10_000 && cut * 2 > rows,
        "{cut} of {rows} rows cut short"
    );
}

#[test]
fn the_ensemble_drives_replay_with_explained_deterministic_signals() {
    let data = require_data!();
    let files: Vec<String> = TRAIN_FILES[..3]
        .iter()
        .map(|f| common::pump_file(&data, f))
        .collect();
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let (_, recs, bytes) = replay_export(&files, Config::default(), d1.path(), Fault::default());
    // One event a batch: a signal at a time, explained alone (in one batch of the default size,
    // the signals are explained side by side).
    let mut one = Config::default();
    one.replay.batch_size = 1;
    let (_, _, bytes2) = replay_export(&files, one, d2.path(), Fault::default());
    assert!(
        bytes == bytes2,
        "same input, byte-identical decision log, whatever the batch size"
    );
    let sigs: Vec<_> = recs
        .iter()
        .filter(|r| r.kind == RecordKind::Signal)
        .collect();
    assert!(sigs.len() >= 2, "{} signals", sigs.len());
    for s in &sigs {
        let d = &s.detail;
        assert_eq!(d["detector"], "ensemble");
        let p = d["probability"].as_f64().unwrap();
        assert!(p >= d["threshold"].as_f64().unwrap() && p <= 1.0);
        let drivers = d["drivers"].as_array().unwrap();
        assert_eq!(drivers.len(), 5);
        let mags: Vec<f64> = drivers
            .iter()
            .map(|x| x["contribution"].as_f64().unwrap().abs())
            .collect();
        assert!(
            mags.windows(2).all(|w| w[0] >= w[1]),
            "sorted by |contribution|"
        );
        for m in ["rules", "iforest", "logistic", "gbm"] {
            assert!(d["members"][m].as_f64().is_some(), "member {m}");
        }
        // The explanation: exact, by market fact, every input kept.
        let e: Explanation = serde_json::from_value(d["explanation"].clone()).unwrap();
        assert!(
            e.residual().abs() < 1e-6,
            "{}: residual {}",
            s.id,
            e.residual()
        );
        assert!(
            (sigmoid(e.logit) - p).abs() < 1e-9,
            "logit of the probability"
        );
        assert_eq!(e.unattributed, 0.0, "every member split by input");
        assert_eq!(e.inputs.len(), 45);
        assert!(e.members.iter().any(|m| m.method.contains("TreeSHAP")));
        assert!(e.level.is_some(), "the shipped model has alert levels");
        for (x, f) in drivers.iter().zip(&e.facts) {
            assert_eq!(x["name"], f.fact.as_str(), "drivers are market facts");
            assert!(FACTS.contains(&f.fact.as_str()));
        }
        let sum: f64 = e.facts.iter().map(|f| f.contribution).sum();
        assert!((e.base + sum - e.logit).abs() < 1e-6, "facts add up too");
    }
    // At least two of the three pumps are flagged within 3 min before … 2 min after announcement.
    let hits = TRAIN_FILES[..3]
        .iter()
        .filter(|f| {
            let a = common::announced_ms(&data, f);
            sigs.iter()
                .any(|s| (-180_000..=120_000).contains(&(s.ts_ms - a)))
        })
        .count();
    assert!(hits >= 2, "{hits} of 3 pumps flagged");
}

/// Replays `files` into `dir`: the summary, the stored records and the exported decision log.
fn replay_export(
    files: &[String],
    config: Config,
    dir: &Path,
    fault: Fault,
) -> (ReplaySummary, Vec<Record>, Vec<u8>) {
    let s = run_replay(ReplayOptions {
        data: files.to_vec(),
        config,
        state_dir: dir.to_path_buf(),
        fault,
        resume: false,
        progress: false,
    })
    .unwrap();
    let store = Store::open(dir).unwrap();
    let mut out = Vec::new();
    export(&store, &Filter::default(), &mut out).unwrap();
    (s, store.records().unwrap(), out)
}

/// A panic in the ensemble detector mid-batch rolls its feature engines back (a checkpoint copy
/// plus the trades fed since, replayed) and the retried batch gives the same decision log: a
/// fault before the first checkpoint, in the batch that takes it and after it, with batches much
/// shorter than the checkpoint interval.
#[test]
fn a_panic_in_the_ensemble_detector_changes_nothing() {
    let data = require_data!();
    let files: Vec<String> = TRAIN_FILES[..2]
        .iter()
        .map(|f| common::pump_file(&data, f))
        .collect();
    let run = |dir: &Path, fault: Fault| {
        let mut config = Config::default();
        config.replay.batch_size = 300;
        let (s, _, log) = replay_export(&files, config, dir, fault);
        (s, log)
    };
    let clean_dir = tempfile::tempdir().unwrap();
    let (clean, clean_log) = run(clean_dir.path(), Fault::default());
    assert!(clean.events > 8_500 && clean.signals > 0, "{clean:?}");
    // Before the first checkpoint (4096 trades), in the batch that takes it (the 15th of 300
    // events), and after it.
    for at in [clean.events / 3 + 7, 14 * 300 + 5, clean.events * 4 / 5] {
        let fault = Fault::new("detector", at);
        let dir = tempfile::tempdir().unwrap();
        let (s, log) = run(dir.path(), fault.clone());
        assert!(fault.fired(), "the fault at {at} did not fire");
        assert_eq!(s.restarts.get("detector").copied(), Some(1));
        assert!(log == clean_log, "fault at {at}: decision log changed");
    }
}

fn bin() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_smartflow"))
}

#[test]
fn models_lists_versions_and_evaluate_writes_a_report_with_plots() {
    let data = require_data!();
    let out = bin().arg("models").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.contains("* v") && text.contains("hash"), "{text}");

    let dir = tempfile::tempdir().unwrap();
    let files: Vec<String> = TRAIN_FILES[3..]
        .iter()
        .map(|f| common::pump_file(&data, f))
        .collect();
    let mut cmd = bin();
    cmd.arg("evaluate").arg("--data").args(&files).args([
        "--events",
        data.join("binance_pumps/events_index.csv")
            .to_str()
            .unwrap(),
        "--include-trained",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    for w in [
        "| ensemble |",
        "| gbm |",
        "≤25 s",
        "PR-AUC",
        "Hard negatives",
        "p99",
        "Per event",
        "other start rule",
    ] {
        assert!(md.contains(w), "report lacks {w}");
    }
    for png in ["pr_curve.png", "delay_histogram.png"] {
        let b = std::fs::read(dir.path().join(png)).unwrap();
        assert_eq!(&b[1..4], b"PNG");
        assert!(b.len() > 5000);
    }
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("evaluation.json")).unwrap())
            .unwrap();
    assert_eq!(j["scores"]["ensemble"]["events"], 3);
    assert_eq!(j["start_rule"], "lamorgia");
    assert_eq!(j["other_start_rule"]["start_rule"], "earliest");
    let per_event = j["events_detail"].as_array().unwrap();
    assert_eq!(per_event.len(), 3);
    for e in per_event {
        let p = e["max_probability"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&p));
        // Detected events have their first alert within the counted window.
        if let Some(d) = e["first_alert_s"].as_f64() {
            assert!((-120.0..=60.0).contains(&d), "{e}");
        }
    }
}

#[test]
fn a_missing_model_is_a_clear_error_naming_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::default();
    cfg.models.dir = dir.path().display().to_string();
    let e = smartflow::strategies::ensemble_detector::DetectorKind::from_config(&cfg, "")
        .unwrap_err()
        .to_string();
    assert!(e.contains("smartflow train") && e.contains("rules"), "{e}");
    cfg.models.active = "v9".into();
    std::fs::create_dir_all(dir.path().join("v1")).unwrap();
    let e = Config::from_toml("[models]\nactive = \"old\"\n", "t").unwrap_err();
    assert!(format!("{e:#}").contains("models.active"));
}

/// A manifest from before checkpoint rows (no `rows` key) is refused with the fix, not misused.
#[test]
fn a_model_trained_on_other_rows_is_refused() {
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let latest = artifact::resolve(&shipped, "latest").unwrap();
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(latest.join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(m["rows"], artifact::ROWS);
    m.as_object_mut().unwrap().remove("rows");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("manifest.json"), m.to_string()).unwrap();
    let e = format!("{:#}", Manifest::read(dir.path()).unwrap_err());
    assert!(
        e.contains("chunk-close") && e.contains("smartflow train"),
        "{e}"
    );
}

/// The alert rule and the row settings travel with the model: the shipped one re-arms after a calm
/// minute and rebuilds rows as it was trained whatever the config says; a manifest from before
/// those keys existed keeps the plain cooldown and uses the config's settings.
#[test]
fn the_alert_rule_and_row_settings_come_from_the_manifest() {
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let latest = artifact::resolve(&shipped, "latest").unwrap();
    let m = Manifest::read(&latest).unwrap();
    assert_eq!(
        m.alert_rule(),
        smartflow::models::metrics::AlertRule {
            cooldown_ms: 900_000,
            rearm_ms: 60_000
        }
    );
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(latest.join("manifest.json")).unwrap())
            .unwrap();
    let cfg = Config::default();
    assert_eq!(m.inputs, Some(cfg.row_inputs()));
    let edited = Config::from_toml(
        "[features]\nbaseline_secs = 1800\n[train.chunks]\nlm_window_5s = 100\n",
        "t",
    )
    .unwrap();
    assert_eq!(m.row_inputs(edited.row_inputs()), cfg.row_inputs());
    v.as_object_mut().unwrap().remove("rearm_secs");
    v.as_object_mut().unwrap().remove("inputs");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("manifest.json"), v.to_string()).unwrap();
    let old = Manifest::read(dir.path()).unwrap();
    assert_eq!(old.alert_rule().rearm_ms, 0);
    assert_eq!(old.row_inputs(edited.row_inputs()), edited.row_inputs());
}
