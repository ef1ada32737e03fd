//! Cost of one alert's explanation ([`Ensemble::explain`]) and of its GBM TreeSHAP alone, on
//! rows of a real pump file: p50 and p99 in µs over 500 rows. `cargo run --release --example
//! explain_cost` (needs ../shared/data).

use smartflow::features::FeatureSnapshot;
use smartflow::models::dataset::{self, RowSettings};
use smartflow::models::ensemble::clean;
use smartflow::models::labels::LabelConfig;
use smartflow::models::Ensemble;
use std::collections::HashMap;
use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

fn main() {
    let ens = Ensemble::load(Path::new("models/v5")).expect("models/v5");
    let inputs = ens.manifest.inputs.clone().expect("manifest with inputs");
    let st = RowSettings::new(inputs, LabelConfig::default());
    let data = smartflow::feeds::shared_data_dir().join("binance_pumps/trades");
    let paths = vec![data.join("ADX_2019-07-05_17.00.csv.gz")];
    let (eps, _) = dataset::build(&paths, &HashMap::new(), &st, &|_| {}).expect("rows");
    let rows: Vec<_> = eps
        .iter()
        .flat_map(|e| (0..e.x.len()).map(|i| (e.chunk_row(i), e.rule[i])))
        .step_by(11)
        .take(500)
        .collect();
    let gbm = ens.gbm().expect("gbm");
    let snap = FeatureSnapshot::default();
    let q = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[v.len() / 2], v[v.len() * 99 / 100])
    };
    let (mut shap, mut full) = (Vec::new(), Vec::new());
    for (row, rule) in &rows {
        let x = clean(&row.x);
        let t = Instant::now();
        black_box(gbm.shap(&x));
        shap.push(t.elapsed().as_secs_f64() * 1e6);
        let s = ens.score(row, *rule);
        let t = Instant::now();
        black_box(ens.explain(row, &snap, &[], &s, 0.5));
        full.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let (a, b) = q(shap);
    let (c, d) = q(full);
    println!(
        "{} rows: TreeSHAP p50 {a:.0} µs p99 {b:.0} µs; explanation p50 {c:.0} µs p99 {d:.0} µs",
        rows.len()
    );
}
