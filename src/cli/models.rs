//! `train`, `models` and `evaluate` commands.

use crate::config::Config;
use crate::feeds::{expand_paths, shared_data_dir};
use crate::models::artifact::{self, Manifest, RowInputs};
use crate::models::dataset::{self, EpisodeRows, RowSettings};
use crate::models::labels::load_events;
use crate::models::{evaluate, train, Ensemble};
use anyhow::{bail, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};

/// Default trade files and events file: the labelled Binance pumps under the shared data folder.
pub fn default_inputs() -> (Vec<String>, PathBuf) {
    let d = shared_data_dir().join("binance_pumps");
    (
        vec![d.join("trades").display().to_string()],
        d.join("events_index.csv"),
    )
}

fn settings(inputs: &RowInputs, cfg: &Config) -> RowSettings {
    RowSettings::new(inputs.clone(), cfg.train.labels)
}

/// Builds rows of trade files with their labels (rows as `inputs` says), with a progress bar on a
/// terminal.
pub fn load_rows(
    cfg: &Config,
    inputs: &RowInputs,
    data: &[String],
    events: &Path,
    progress: bool,
) -> Result<Vec<EpisodeRows>> {
    let paths = expand_paths(data)?;
    if paths.is_empty() {
        bail!("no data files found in {}", data.join(", "));
    }
    let events = load_events(events, cfg.train.labels.start)?;
    let pb = if progress {
        let pb = ProgressBar::new(paths.len() as u64);
        pb.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} files {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        pb.set_prefix("features");
        Some(pb)
    } else {
        None
    };
    let (eps, stats) = dataset::build(&paths, &events, &settings(inputs, cfg), &|n| {
        if let Some(pb) = &pb {
            pb.set_position(n as u64);
        }
    })?;
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    let with_event = eps.iter().filter(|e| e.ep.event.is_some()).count();
    eprintln!(
        "{} files, {} trades ({} malformed skipped), {} rows in {} episodes ({} with a labelled pump)",
        stats.files, stats.trades, stats.malformed, stats.rows, eps.len(), with_event
    );
    Ok(eps)
}

pub fn run_train(cfg: &Config, data: &[String], events: &Path, progress: bool) -> Result<()> {
    let inputs = cfg.row_inputs();
    let eps = load_rows(cfg, &inputs, data, events, progress)?;
    let dir = PathBuf::from(&cfg.models.dir);
    let t = train::train(&cfg.train, &inputs, &eps, &dir, &|m| {
        eprintln!("train: {m}")
    })?;
    let m = &t.manifest;
    println!("trained {} → {}", m.version, t.dir.display());
    println!("  artifact hash {}", m.artifact_hash);
    println!("  data hash     {}", m.data_hash);
    println!("  config hash   {}", m.config_hash);
    println!(
        "  split (events by pump time): train {}, calibrate {}, validate {}",
        m.split.train.len(),
        m.split.calibrate.len(),
        m.split.validate.len()
    );
    if let Some(d) = t.gbm_check_max_diff {
        println!("  native trees vs LightGBM on check rows: max |Δp| = {d:.2e}");
    }
    print_validation(m);
    if let Some(l) = levels_line(m) {
        println!("  {l}");
    }
    println!(
        "  use it: models.active = \"{}\" (or \"latest\"); report: smartflow evaluate",
        m.version
    );
    Ok(())
}

/// `alert levels (calibration): watch ≥ 0.597 (26/41 pumps), alert ≥ …`, or `None` for a model
/// without levels.
fn levels_line(m: &Manifest) -> Option<String> {
    let parts: Vec<String> = m
        .levels
        .as_ref()?
        .iter()
        .map(|l| {
            format!(
                "{} ≥ {:.3} ({}/{} pumps)",
                l.name, l.threshold, l.true_alerts, l.alerts
            )
        })
        .collect();
    Some(format!("alert levels (calibration): {}", parts.join(", ")))
}

fn print_validation(m: &Manifest) {
    let Some(v) = m.validation.as_object() else {
        return;
    };
    if v.is_empty() {
        return;
    }
    println!("  validation (later events, never trained on):");
    for (name, s) in v {
        println!(
            "    {:<9} thr {:.4}  ≤5s {:>5.1}%  ≤25s {:>5.1}%  ≤60s {:>5.1}%  FA/inst-wk {:.2}  PR-AUC {:.3}",
            name,
            s["threshold"].as_f64().unwrap_or(f64::NAN),
            100.0 * s["flagged_within_5s"].as_f64().unwrap_or(f64::NAN),
            100.0 * s["flagged_within_25s"].as_f64().unwrap_or(f64::NAN),
            100.0 * s["flagged_within_60s"].as_f64().unwrap_or(f64::NAN),
            s["false_alarms_per_instrument_week"]
                .as_f64()
                .unwrap_or(f64::NAN),
            s["pr_auc"].as_f64().unwrap_or(f64::NAN),
        );
    }
}

pub fn run_models(cfg: &Config) -> Result<()> {
    let dir = PathBuf::from(&cfg.models.dir);
    let versions = artifact::list_versions(&dir)?;
    if versions.is_empty() {
        println!(
            "no trained models in {} (run `smartflow train`)",
            dir.display()
        );
        return Ok(());
    }
    let active = artifact::resolve(&dir, &cfg.models.active).ok();
    println!(
        "models in {} (active: models.active = {:?})",
        dir.display(),
        cfg.models.active
    );
    for (_, path) in &versions {
        let mark = if Some(path) == active.as_ref() {
            "*"
        } else {
            " "
        };
        match Manifest::read(path) {
            Ok(m) => {
                let e = &m.validation["ensemble"];
                println!(
                    "{mark} {:<5} hash {}  data {}  events {}/{}/{}  members {}  val ≤25s {}  FA/inst-wk {}",
                    m.version,
                    &m.artifact_hash[..12.min(m.artifact_hash.len())],
                    &m.data_hash[..12.min(m.data_hash.len())],
                    m.split.train.len(),
                    m.split.calibrate.len(),
                    m.split.validate.len(),
                    if m.gbm.is_some() { "rules,iforest,logistic,gbm" } else { "rules,iforest,logistic" },
                    e["flagged_within_25s"]
                        .as_f64()
                        .map(|x| format!("{:.1}%", 100.0 * x))
                        .unwrap_or("–".into()),
                    e["false_alarms_per_instrument_week"]
                        .as_f64()
                        .map(|x| format!("{x:.2}"))
                        .unwrap_or("–".into()),
                );
                if let Some(l) = levels_line(&m) {
                    println!("        {l}");
                }
            }
            Err(e) => println!("{mark} {}: unreadable ({e:#})", path.display()),
        }
    }
    Ok(())
}

pub struct EvaluateArgs {
    pub data: Vec<String>,
    pub events: PathBuf,
    pub negatives: Option<PathBuf>,
    pub out: PathBuf,
    pub include_trained: bool,
    pub progress: bool,
}

pub fn run_evaluate(cfg: &Config, a: EvaluateArgs) -> Result<()> {
    let dir = artifact::resolve(Path::new(&cfg.models.dir), &cfg.models.active)?;
    let ens = Ensemble::load(&dir)?;
    // Rows are rebuilt with the model's own settings, not the config's.
    let inputs = ens.manifest.row_inputs(cfg.row_inputs());
    let eps = load_rows(cfg, &inputs, &a.data, &a.events, a.progress)?;
    let m = &ens.manifest;
    let mut notes = vec![format!(
        "Model {} from {}; data: {}; events: {}.",
        m.version,
        dir.display(),
        a.data.join(" "),
        a.events.display()
    )];
    let eps: Vec<EpisodeRows> = if a.include_trained {
        notes.push(
            "Includes files the model trained or calibrated on (--include-trained): optimistic."
                .into(),
        );
        eps
    } else {
        let seen: std::collections::HashSet<&String> =
            m.split.train.iter().chain(&m.split.calibrate).collect();
        let before = eps.len();
        let kept: Vec<EpisodeRows> = eps
            .into_iter()
            .filter(|e| !seen.contains(&e.ep.name))
            .collect();
        notes.push(format!(
            "Left out {} episodes the model trained or calibrated on; {} unseen episodes evaluated.",
            before - kept.len(),
            kept.len()
        ));
        kept
    };
    if eps.is_empty() {
        bail!("nothing to evaluate: every file was used in training (pass --include-trained to score them anyway)");
    }
    let ev = evaluate::evaluate(
        &ens,
        &eps,
        &cfg.train,
        a.negatives.as_deref(),
        &a.out,
        &notes,
    )?;
    print!("{}", ev.markdown);
    for f in &ev.files {
        eprintln!("wrote {}", f.display());
    }
    Ok(())
}
