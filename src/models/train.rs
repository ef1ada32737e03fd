//! `smartflow train`: a time-ordered split, member fitting, stacking, thresholds, validation.
//!
//! Events are ordered by pump start; the first `split[0]` of them train the members (rules need no
//! training), the next `split[1]` fit the stacker and pick every operating threshold, the last
//! `split[2]` only validate. Files without an event are not used.

use super::artifact::{self, sha256_hex, GbmRef, Manifest, RowInputs, Split};
use super::config::TrainConfig;
use super::dataset::EpisodeRows;
use super::ensemble::{clean, squashed, Ensemble, MEMBERS};
use super::gbm::{Gbm, CHECK_TOLERANCE};
use super::iforest::{IForestScorer, IsolationForest};
use super::labels::Label;
use super::levels;
use super::linear::Logistic;
use super::metrics::{self, Episode};
use crate::features::{feature_names, N_FEATURES};
use anyhow::{bail, ensure, Context, Result};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Splits episodes (with events) by event start: (train, calibrate, validate) indexes.
pub fn time_split(eps: &[EpisodeRows], split: [f64; 3]) -> [Vec<usize>; 3] {
    let mut idx: Vec<usize> = (0..eps.len())
        .filter(|&i| eps[i].ep.event.is_some())
        .collect();
    idx.sort_by_key(|&i| {
        let e = eps[i].ep.event.as_ref().map(|e| e.start_ms).unwrap_or(0);
        (e, eps[i].ep.name.clone())
    });
    let n = idx.len() as f64;
    let a = (n * split[0]).round() as usize;
    let b = ((n * (split[0] + split[1])).round() as usize).min(idx.len());
    [idx[..a].to_vec(), idx[a..b].to_vec(), idx[b..].to_vec()]
}

/// Hash of the rows and labels a model is trained from.
pub fn data_hash(eps: &[EpisodeRows]) -> String {
    let mut bytes = Vec::new();
    for e in eps {
        bytes.extend_from_slice(e.ep.name.as_bytes());
        for (i, x) in e.x.iter().enumerate() {
            bytes.extend_from_slice(&e.ep.ts[i].to_le_bytes());
            bytes.push(e.ep.labels[i] as u8);
            for v in x {
                bytes.extend_from_slice(&v.to_bits().to_le_bytes());
            }
            bytes.extend_from_slice(&e.rule[i].to_bits().to_le_bytes());
        }
    }
    sha256_hex(&bytes)
}

/// Rows kept for fitting: every pump row and every k-th normal row, k chosen so that about
/// `neg_per_pos` normal rows remain per pump row. Returns `(j, i, is_pump)` (j indexes `pick`,
/// i the episode's row), k, and the number of pump rows.
fn subsample(
    eps: &[EpisodeRows],
    pick: &[usize],
    neg_per_pos: f64,
) -> (Vec<(usize, usize, bool)>, usize, usize) {
    let (mut pos, mut neg) = (0usize, 0usize);
    for &e in pick {
        for l in &eps[e].ep.labels {
            match l {
                Label::Pump => pos += 1,
                Label::Normal => neg += 1,
                Label::Ignore => {}
            }
        }
    }
    let k = ((neg as f64 / (neg_per_pos * pos.max(1) as f64)).floor() as usize).max(1);
    let mut kept = Vec::new();
    let mut n = 0usize;
    for (j, &e) in pick.iter().enumerate() {
        for (i, l) in eps[e].ep.labels.iter().enumerate() {
            let keep = match l {
                Label::Pump => true,
                Label::Normal => {
                    n += 1;
                    n.is_multiple_of(k)
                }
                Label::Ignore => false,
            };
            if keep {
                kept.push((j, i, *l == Label::Pump));
            }
        }
    }
    (kept, k, pos)
}

/// Rows for fitting members (see [`subsample`]).
fn member_rows(
    eps: &[EpisodeRows],
    pick: &[usize],
    neg_per_pos: f64,
) -> (Vec<Vec<f64>>, Vec<bool>) {
    let (kept, _, _) = subsample(eps, pick, neg_per_pos);
    kept.into_iter()
        .map(|(j, i, y)| (eps[pick[j]].x[i].to_vec(), y))
        .unzip()
}

/// Member scores of every row of the picked episodes: `[member][episode][row]`.
pub fn member_scores(
    m: &Manifest,
    gbm: Option<&Gbm>,
    eps: &[EpisodeRows],
    pick: &[usize],
) -> Result<[Vec<Vec<f64>>; 4]> {
    let iforest = IForestScorer::new(&m.iforest)?;
    let mut out: [Vec<Vec<f64>>; 4] = Default::default();
    for &e in pick {
        let ep = &eps[e];
        out[0].push(
            ep.rule
                .iter()
                .map(|r| (r / 100.0).clamp(0.0, 1.0))
                .collect(),
        );
        out[1].push(ep.x.iter().map(|x| iforest.score(&squashed(x))).collect());
        out[2].push(ep.x.iter().map(|x| m.logistic.prob(x)).collect());
        out[3].push(match gbm {
            Some(g) => ep.x.iter().map(|x| g.predict_one(&clean(x))).collect(),
            None => vec![f64::NAN; ep.x.len()],
        });
    }
    Ok(out)
}

/// Scores of every member and the ensemble for the picked episodes: `[5][episode][row]`
/// (index 4 = ensemble).
pub fn all_scores(
    ens: &Ensemble,
    eps: &[EpisodeRows],
    pick: &[usize],
) -> Result<Vec<Vec<Vec<f64>>>> {
    let ms = member_scores(&ens.manifest, ens.gbm(), eps, pick)?;
    Ok(with_ensemble(ens, ms))
}

/// Member scores (from [`member_scores`]) with the ensemble's appended as index 4.
fn with_ensemble(ens: &Ensemble, ms: [Vec<Vec<f64>>; 4]) -> Vec<Vec<Vec<f64>>> {
    let mut ensemble = Vec::with_capacity(ms[0].len());
    #[allow(clippy::needless_range_loop)] // four parallel score arrays
    for j in 0..ms[0].len() {
        let n = ms[0][j].len();
        let mut v = Vec::with_capacity(n);
        for i in 0..n {
            let s = [ms[0][j][i], ms[1][j][i], ms[2][j][i], ms[3][j][i]];
            v.push(ens.manifest.stacker.prob(&ens.stack_inputs(&s)));
        }
        ensemble.push(v);
    }
    let [a, b, c, d] = ms;
    vec![a, b, c, d, ensemble]
}

/// Score names of [`all_scores`]: the members then `ensemble`.
pub fn score_names() -> Vec<&'static str> {
    let mut v = MEMBERS.to_vec();
    v.push("ensemble");
    v
}

/// Detection + PR-AUC summary of one score on some episodes, as JSON.
pub fn summary(
    episodes: &[Episode],
    scores: &[Vec<f64>],
    threshold: f64,
    cfg: &TrainConfig,
) -> serde_json::Value {
    let d = metrics::detection(episodes, scores, threshold, cfg.alert_rule(), &cfg.labels);
    let (auc, lo, hi) = metrics::pr_auc_ci(episodes, scores, cfg.bootstrap, cfg.seed);
    json!({
        "threshold": threshold,
        "events": d.events,
        "flagged_within_5s": d.rate(0),
        "flagged_within_15s": d.rate(1),
        "flagged_within_25s": d.rate(2),
        "flagged_within_60s": d.rate(3),
        "false_alarms": d.false_alarms,
        "normal_instrument_weeks": d.normal_weeks,
        "false_alarms_per_instrument_week": d.fa_per_week(),
        "precision": d.precision(),
        "recall": d.recall(),
        "f1": d.f1(),
        "pr_auc": auc,
        "pr_auc_ci95": [lo, hi],
    })
}

/// `scripts/train_gbm.py` as built, so `train` runs from any folder with the default config.
const BUILT_IN_GBM_SCRIPT: &str = include_str!("../../scripts/train_gbm.py");

/// The script to run: `configured` (relative to `base`) when it exists; for the default path
/// missing (not run from the repository root) the built-in copy, written into `tmp`; otherwise an
/// error naming the key.
fn gbm_script(configured: &str, base: &Path, tmp: &Path) -> Result<PathBuf> {
    let path = base.join(configured);
    if path.is_file() {
        return Ok(path);
    }
    if configured == super::config::DEFAULT_GBM_SCRIPT {
        let p = tmp.join("train_gbm.py");
        std::fs::write(&p, BUILT_IN_GBM_SCRIPT)
            .with_context(|| format!("cannot write {}", p.display()))?;
        return Ok(p);
    }
    bail!("train.script = {configured:?}: no such file")
}

/// Runs the GBM script; returns (ONNX path, metadata JSON).
fn train_gbm(
    cfg: &TrainConfig,
    rows: &[Vec<f64>],
    y: &[bool],
    check: &[Vec<f64>],
    out_dir: &Path,
) -> Result<(PathBuf, serde_json::Value)> {
    let tmp = out_dir.join("tmp-gbm");
    std::fs::create_dir_all(&tmp)?;
    let names = feature_names();
    let write_csv = |path: &Path, rows: &[Vec<f64>], y: Option<&[bool]>| -> Result<()> {
        let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
        let mut header = names.join(",");
        if y.is_some() {
            header.push_str(",label");
        }
        writeln!(w, "{header}")?;
        for (i, r) in rows.iter().enumerate() {
            let vals: Vec<String> = clean(r).iter().map(|v| v.to_string()).collect();
            write!(w, "{}", vals.join(","))?;
            if let Some(y) = y {
                write!(w, ",{}", y[i] as u8)?;
            }
            writeln!(w)?;
        }
        Ok(())
    };
    write_csv(&tmp.join("train.csv"), rows, Some(y))?;
    write_csv(&tmp.join("check.csv"), check, None)?;
    let mut params = serde_json::to_value(&cfg.gbm)?;
    params["seed"] = json!(cfg.seed);
    std::fs::write(tmp.join("params.json"), params.to_string())?;
    let script = gbm_script(&cfg.script, &std::env::current_dir()?, &tmp)?;
    let status = std::process::Command::new(&cfg.python)
        .arg(&script)
        .arg("--train")
        .arg(tmp.join("train.csv"))
        .arg("--check")
        .arg(tmp.join("check.csv"))
        .arg("--params")
        .arg(tmp.join("params.json"))
        .arg("--out")
        .arg(out_dir)
        .status()
        .with_context(|| format!("cannot run {} {}", cfg.python, cfg.script))?;
    let _ = std::fs::remove_dir_all(&tmp);
    if !status.success() {
        bail!(
            "{} failed ({status}); install its packages with `pip install -r scripts/requirements-train.txt`, \
             or set train.gbm.enabled = false",
            cfg.script
        );
    }
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.join("gbm.json")).context("gbm.json missing")?,
    )?;
    Ok((out_dir.join("gbm.onnx"), meta))
}

/// What `train` produced.
pub struct Trained {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub gbm_check_max_diff: Option<f64>,
}

/// Fits everything and writes `models_dir/<next version>/`.
pub fn train(
    cfg: &TrainConfig,
    inputs: &RowInputs,
    eps: &[EpisodeRows],
    models_dir: &Path,
    progress: &dyn Fn(&str),
) -> Result<Trained> {
    let [tr, ca, va] = time_split(eps, cfg.split);
    ensure!(
        !tr.is_empty() && !ca.is_empty(),
        "too few events to split ({} with labels): need some to train and some to calibrate",
        tr.len() + ca.len() + va.len()
    );
    let names = |v: &[usize]| {
        v.iter()
            .map(|&i| eps[i].ep.name.clone())
            .collect::<Vec<_>>()
    };
    let (rows, y) = member_rows(eps, &tr, cfg.neg_per_pos);
    ensure!(y.iter().any(|&b| b), "no pump rows in the training events");
    progress(&format!(
        "members on {} events: {} rows ({} pump)",
        tr.len(),
        rows.len(),
        y.iter().filter(|&&b| b).count()
    ));
    let sq: Vec<Vec<f64>> = rows.iter().map(|r| squashed(r)).collect();
    let iforest = IsolationForest::fit(&sq, &cfg.iforest, cfg.seed)?;
    let logistic = Logistic::fit(&rows, &y, &cfg.logistic, true)?;
    let version = artifact::next_version(models_dir)?;
    let dir = models_dir.join(&version);
    std::fs::create_dir_all(&dir)?;
    let mut manifest = Manifest {
        version: version.clone(),
        artifact_hash: String::new(),
        data_hash: data_hash(eps),
        config_hash: sha256_hex(serde_json::to_string(cfg)?.as_bytes()),
        features: feature_names().to_vec(),
        rows: super::artifact::ROWS.to_string(),
        split: Split {
            train: names(&tr),
            calibrate: names(&ca),
            validate: names(&va),
        },
        config: serde_json::to_value(cfg)?,
        thresholds: BTreeMap::new(),
        cooldown_secs: cfg.cooldown_secs,
        rearm_secs: cfg.rearm_secs,
        inputs: Some(inputs.clone()),
        iforest,
        logistic,
        gbm: None,
        stacker: Logistic {
            log_inputs: false,
            mean: vec![],
            std: vec![],
            coef: vec![],
            intercept: 0.0,
        },
        levels: None,
        validation: json!({}),
    };
    let mut gbm = None;
    let mut check = None;
    if cfg.gbm.enabled {
        progress("gradient-boosted member (LightGBM → ONNX)");
        let check_rows: Vec<Vec<f64>> = {
            let (r, _) = member_rows(eps, &ca, cfg.neg_per_pos);
            r.into_iter().take(200).collect()
        };
        let (onnx, meta) = train_gbm(cfg, &rows, &y, &check_rows, &dir)?;
        let mut g = Gbm::load(&onnx, N_FEATURES)?;
        let diff = g.check(&meta)?;
        ensure!(
            diff <= CHECK_TOLERANCE,
            "the ONNX trees and LightGBM disagree by {diff:e} on the check rows (> {CHECK_TOLERANCE:e})"
        );
        g.attach_covers(&meta).context("gbm.json: node covers")?;
        let shap = g
            .check_shap(&meta)?
            .context("gbm.json: no covers or SHAP values")?;
        ensure!(
            shap <= CHECK_TOLERANCE,
            "TreeSHAP and LightGBM's pred_contrib disagree by {shap:e} on the check rows (> {CHECK_TOLERANCE:e})"
        );
        progress(&format!(
            "TreeSHAP matches LightGBM's pred_contrib within {shap:.1e}"
        ));
        check = Some(diff);
        manifest.gbm = Some(GbmRef {
            file: "gbm.onnx".into(),
            sha256: sha256_hex(&std::fs::read(&onnx)?),
            params: meta["params"].clone(),
        });
        gbm = Some(g);
    }
    // Stacker on the calibration events (members never saw them).
    progress(&format!("stacker and thresholds on {} events", ca.len()));
    let ens = Ensemble::from_parts(manifest.clone(), gbm.clone())?;
    let ms = member_scores(&manifest, gbm.as_ref(), eps, &ca)?;
    let (kept, k, pos) = subsample(eps, &ca, 200.0);
    ensure!(pos > 0, "no pump rows in the calibration events");
    let (sx, sy): (Vec<Vec<f64>>, Vec<bool>) = kept
        .into_iter()
        .map(|(j, i, y)| {
            let s = [ms[0][j][i], ms[1][j][i], ms[2][j][i], ms[3][j][i]];
            (ens.stack_inputs(&s), y)
        })
        .unzip();
    let mut stacker = Logistic::fit(&sx, &sy, &cfg.stacker, false)?;
    // Normal rows were kept with probability 1/k: undo the inflated odds (prior correction).
    stacker.intercept -= (k as f64).ln();
    manifest.stacker = stacker;
    let ens = Ensemble::from_parts(manifest.clone(), gbm.clone())?;
    let eps_of = |pick: &[usize]| pick.iter().map(|&i| eps[i].ep.clone()).collect::<Vec<_>>();
    let ca_eps = eps_of(&ca);
    // The members are unchanged by the stacker: reuse their calibration scores.
    let ca_scores = with_ensemble(&ens, ms);
    for (s, name) in score_names().into_iter().enumerate() {
        if s == 3 && gbm.is_none() {
            continue;
        }
        let t = metrics::pick_threshold(
            &ca_eps,
            &ca_scores[s],
            cfg.target_fa_per_week,
            cfg.alert_rule(),
            &cfg.labels,
        );
        manifest.thresholds.insert(name.to_string(), t);
    }
    manifest.levels = Some(levels::pick(
        &ca_eps,
        &ca_scores[MEMBERS.len()],
        manifest.thresholds["ensemble"],
        cfg.alert_rule(),
        &cfg.labels,
    ));
    // Validation on the last events.
    if !va.is_empty() {
        progress(&format!("validation on {} later events", va.len()));
        let ens = Ensemble::from_parts(manifest.clone(), gbm.clone())?;
        let va_eps = eps_of(&va);
        let va_scores = all_scores(&ens, eps, &va)?;
        let mut v = serde_json::Map::new();
        for (s, name) in score_names().into_iter().enumerate() {
            if let Some(&t) = manifest.thresholds.get(name) {
                v.insert(name.to_string(), summary(&va_eps, &va_scores[s], t, cfg));
            }
        }
        manifest.validation = serde_json::Value::Object(v);
    }
    manifest.artifact_hash = manifest.content_hash();
    manifest.write(&dir)?;
    Ok(Trained {
        dir,
        manifest,
        gbm_check_max_diff: check,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gbm_script_falls_back_to_the_built_in_copy_only_for_the_default_path() {
        let base = tempfile::tempdir().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let default = crate::models::config::DEFAULT_GBM_SCRIPT;
        // Not at the repository root: the default path runs the copy built into the binary.
        let p = gbm_script(default, base.path(), tmp.path()).unwrap();
        assert!(p.starts_with(tmp.path()));
        assert_eq!(std::fs::read_to_string(&p).unwrap(), BUILT_IN_GBM_SCRIPT);
        // An explicit path that is missing is an error naming the key, not a silent substitute.
        let e = gbm_script("my/gbm.py", base.path(), tmp.path()).unwrap_err();
        assert!(e.to_string().contains("train.script"), "{e}");
        // A script that exists is run as configured.
        std::fs::create_dir_all(base.path().join("scripts")).unwrap();
        std::fs::write(base.path().join(default), "print(1)").unwrap();
        let p = gbm_script(default, base.path(), tmp.path()).unwrap();
        assert_eq!(p, base.path().join(default));
    }
}
