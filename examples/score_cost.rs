//! What scoring costs over the whole dev set, outside the pipeline: every checkpoint row of the
//! 136 pump files built once (features), then scored the way replay scores them (the cascade with
//! the alert gate's floor), 5 times; prints each run and the median, in ns per row.
//! Run: `cargo run --release --example score_cost [models/v5]` (needs ../shared/data).

use smartflow::models::dataset::{self, RowSettings};
use smartflow::models::labels::LabelConfig;
use smartflow::models::metrics::AlertGate;
use smartflow::models::Ensemble;
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "models/v5".into());
    let ens = Ensemble::load(Path::new(&dir))?;
    let inputs = ens.manifest.inputs.clone().expect("manifest with inputs");
    let st = RowSettings::new(inputs, LabelConfig::default());
    let data = smartflow::feeds::shared_data_dir().join("binance_pumps/trades");
    let mut paths: Vec<_> = std::fs::read_dir(&data)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    paths.sort();
    let t = Instant::now();
    let (eps, _) = dataset::build(&paths, &HashMap::new(), &st, &|_| {})?;
    let rows: Vec<(smartflow::features::ChunkRow, f64)> = eps
        .iter()
        .flat_map(|e| (0..e.x.len()).map(|i| (e.chunk_row(i), e.rule[i])))
        .collect();
    println!(
        "{} rows built in {:.2} s",
        rows.len(),
        t.elapsed().as_secs_f64()
    );
    let m = &ens.manifest;
    let floor = AlertGate::floor(m.alert_rule(), m.thresholds["ensemble"]);
    let mut per_row = Vec::new();
    for run in 1..=5 {
        let t = Instant::now();
        let full = rows
            .iter()
            .filter(|(r, rule)| ens.score_above(r, *rule, floor).is_some())
            .count();
        let ns = t.elapsed().as_nanos() as f64 / rows.len() as f64;
        println!("run {run}: {ns:.0} ns per row ({full} rows scored in full)");
        per_row.push(ns);
    }
    per_row.sort_by(f64::total_cmp);
    println!("median {:.0} ns per row", per_row[2]);
    Ok(())
}
