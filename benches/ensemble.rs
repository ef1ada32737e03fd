//! Ensemble inference per row on real pump files: each member alone, the whole score, and the
//! score plus the explanation an alert carries (the "< 50 µs per chunk at p99" goal is
//! printed by `smartflow evaluate`; this splits the cost), and the cascade replay and paper use
//! (`score_above` with the alert gate's floor), on every row in order as a run meets them.
//! Run: `cargo bench --bench ensemble` (needs ../shared/data).

use criterion::{criterion_group, criterion_main, Criterion};
use smartflow::models::dataset::{self, RowSettings};
use smartflow::models::ensemble::{clean, squashed};
use smartflow::models::iforest::IForestScorer;
use smartflow::models::labels::LabelConfig;
use smartflow::models::metrics::AlertGate;
use smartflow::models::Ensemble;
use std::collections::HashMap;
use std::hint::black_box;
use std::path::Path;

fn bench(c: &mut Criterion) {
    let ens = Ensemble::load(Path::new("models/v5")).expect("models/v5");
    let inputs = ens.manifest.inputs.clone().expect("manifest with inputs");
    let st = RowSettings::new(inputs, LabelConfig::default());
    let data = smartflow::feeds::shared_data_dir().join("binance_pumps/trades");
    let paths = vec![
        data.join("ADX_2019-07-05_17.00.csv.gz"),
        data.join("YOYOW_2020-05-14_16.00.csv.gz"),
    ];
    let (eps, _) = dataset::build(&paths, &HashMap::new(), &st, &|_| {}).expect("rows");
    let all: Vec<(smartflow::features::ChunkRow, f64)> = eps
        .iter()
        .flat_map(|e| (0..e.x.len()).map(|i| (e.chunk_row(i), e.rule[i])))
        .collect();
    let rows: Vec<smartflow::features::ChunkRow> = all
        .iter()
        .step_by(7)
        .take(2000)
        .map(|r| r.0.clone())
        .collect();
    let m = &ens.manifest;
    let gbm = ens.gbm().expect("gbm member");
    let mut g = c.benchmark_group("ensemble_row");
    let mut i = 0usize;
    let mut next = || {
        i = (i + 1) % rows.len();
        &rows[i]
    };
    let iforest = IForestScorer::new(&m.iforest).unwrap();
    g.bench_function("iforest", |b| {
        b.iter(|| black_box(iforest.score(&squashed(&next().x))))
    });
    g.bench_function("logistic", |b| {
        b.iter(|| black_box(m.logistic.prob(&next().x)))
    });
    g.bench_function("gbm_native", |b| {
        b.iter(|| black_box(gbm.predict_one(&clean(&next().x))))
    });
    g.bench_function("score", |b| b.iter(|| black_box(ens.score(next(), 10.0))));
    let snap = smartflow::features::FeatureSnapshot::default();
    g.bench_function("score_and_explain", |b| {
        b.iter(|| {
            let r = next();
            let s = ens.score(r, 10.0);
            black_box(ens.explain(r, &snap, &[], &s, 0.5))
        })
    });
    // Every row of both files in order, as replay scores them: mostly rows the cascade cuts short.
    let floor = AlertGate::floor(m.alert_rule(), m.thresholds["ensemble"]);
    let mut j = 0usize;
    g.bench_function("cascade_all_rows", |b| {
        b.iter(|| {
            j = (j + 1) % all.len();
            black_box(ens.score_above(&all[j].0, all[j].1, floor))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
