//! The `smartflow` binary as a user runs it.

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn smartflow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smartflow"))
        .args(args)
        .env_remove("SMARTFLOW_CONFIG")
        .env_remove("SMARTFLOW_STATE")
        .output()
        .expect("binary runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn help_explains_the_commands() {
    let o = smartflow(&["--help"]);
    assert!(o.status.success());
    let out = text(&o.stdout);
    for w in ["replay", "log", "--state", "--config"] {
        assert!(out.contains(w), "--help lacks {w}: {out}");
    }
    let o = smartflow(&["replay", "--help"]);
    assert!(text(&o.stdout).contains("--inject-panic"));
}

#[test]
fn a_duration_that_is_not_a_finite_positive_number_is_refused_not_a_panic() {
    for d in ["inf", "nan", "-1", "0", "1e20", "soon"] {
        for cmd in ["paper", "record"] {
            let arg = format!("--duration={d}");
            let mut args = vec![cmd, arg.as_str()];
            if cmd == "record" {
                args.extend(["--out", "/tmp/never-written.jsonl"]);
            }
            let o = smartflow(&args);
            let err = text(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{cmd} --duration {d}: {err}");
            assert!(
                err.contains("--duration") && !err.contains("panicked"),
                "{err}"
            );
        }
    }
}

#[test]
fn bad_config_and_bad_paths_are_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[risk]\nmax_gross_exposur = \"1\"\n").unwrap();
    let o = smartflow(&["--config", cfg.to_str().unwrap(), "replay", "--data", "x"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("max_gross_exposur"),
        "{}",
        text(&o.stderr)
    );
    std::fs::write(&cfg, "[strategy]\nstop_loss_pct = \"0\"\n").unwrap();
    let o = smartflow(&["--config", cfg.to_str().unwrap(), "config"]);
    assert!(
        text(&o.stderr).contains("strategy.stop_loss_pct"),
        "{}",
        text(&o.stderr)
    );
    let st = dir.path().join("st");
    let o = smartflow(&[
        "--state",
        st.to_str().unwrap(),
        "replay",
        "--data",
        "/no/such/file.csv.gz",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("matches no data file"),
        "{}",
        text(&o.stderr)
    );
    let o = smartflow(&["--state", st.to_str().unwrap(), "log"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("no store"), "{}", text(&o.stderr));
}

fn replay_file(state: &Path, config: Option<&Path>, file: &str) -> Output {
    let mut args = vec!["--state", state.to_str().unwrap()];
    if let Some(c) = config {
        args.extend(["--config", c.to_str().unwrap()]);
    }
    args.extend(["replay", "--quiet", "--data", file]);
    smartflow(&args)
}

#[test]
fn replay_then_review_the_decision_log() {
    let data = require_data!();
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("state");
    let file = common::pump_file(&data, "AST_2020-05-09_16.00.csv.gz");
    let o = replay_file(&st, None, &file);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.contains("replay finished: 4073 events"), "{out}");
    assert!(out.contains("PnL after fees"), "{out}");

    let s = st.to_str().unwrap();
    let list = text(&smartflow(&["--state", s, "log"]).stdout);
    assert!(list.contains("sig-1") && list.contains("AST/BTC"), "{list}");
    let sigs = text(&smartflow(&["--state", s, "log", "--kind", "signal"]).stdout);
    assert!(sigs.lines().count() >= 1);
    assert!(sigs.lines().all(|l| l.contains(" signal ")), "{sigs}");
    let none = text(&smartflow(&["--state", s, "log", "--instrument", "GNT/BTC"]).stdout);
    assert!(none.contains("no matching records"));
    let later = text(&smartflow(&["--state", s, "log", "--from", "2020-05-10"]).stdout);
    assert!(later.lines().count() < list.lines().count());

    let show = text(&smartflow(&["--state", s, "log", "show", "fil-1"]).stdout);
    for w in [
        "SIGNAL sig-1",
        "probability",
        "level ",
        "members: rules",
        "drivers (log-odds",
        "--inputs",
        "INTENT int-1",
        "VERDICT ver-1",
        "FILL fil-1",
    ] {
        assert!(show.contains(w), "log show lacks {w}:\n{show}");
    }
    // A few readable lines, not the 45 inputs: those come with --inputs.
    assert!(!show.contains("features at decision time"), "{show}");
    assert!(!show.contains("lm25.std_trades"), "{show}");
    let full = text(&smartflow(&["--state", s, "log", "show", "sig-1", "--inputs"]).stdout);
    for w in [
        "model inputs",
        "lm25.std_trades",
        "features at decision time",
    ] {
        assert!(full.contains(w), "log show --inputs lacks {w}:\n{full}");
    }
    let o = smartflow(&["--state", s, "log", "show", "sig-999"]);
    assert_eq!(o.status.code(), Some(1));

    let jsonl = text(&smartflow(&["--state", s, "log", "export"]).stdout);
    let mut kinds = std::collections::BTreeSet::new();
    for line in jsonl.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("one JSON record per line");
        assert!(v["id"].is_string() && v["ts_ms"].is_i64() && v["instrument"] == "AST/BTC");
        kinds.insert(v["kind"].as_str().unwrap().to_string());
    }
    for k in ["signal", "intent", "verdict", "order", "fill", "exit"] {
        assert!(kinds.contains(k), "export lacks kind {k}");
    }
}

#[test]
fn refusals_are_recorded_with_their_reason() {
    let data = require_data!();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("halted.toml");
    std::fs::write(&cfg, "[risk]\ninitial_state = \"halted\"\n").unwrap();
    let st = dir.path().join("state");
    let file = common::pump_file(&data, "AST_2020-05-09_16.00.csv.gz");
    let o = replay_file(&st, Some(&cfg), &file);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("refused TRADING_HALTED"),
        "{}",
        text(&o.stdout)
    );
    let refused = text(&smartflow(&["--state", st.to_str().unwrap(), "log", "--refused"]).stdout);
    assert!(refused.lines().count() >= 1);
    assert!(
        refused
            .lines()
            .all(|l| l.contains("REFUSED TRADING_HALTED")),
        "{refused}"
    );
    let fills =
        text(&smartflow(&["--state", st.to_str().unwrap(), "log", "--kind", "fill"]).stdout);
    assert!(fills.contains("no matching records"));
}

/// The README's replay command with the default (ensemble) detector where there is neither Python
/// nor ONNX Runtime: an empty PATH and no other variable. The GBM member's trees are evaluated by
/// smartflow itself and checked against LightGBM's recorded probabilities at load.
#[test]
fn replay_with_the_default_detector_needs_neither_python_nor_onnx_runtime() {
    let data = require_data!();
    let st = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let files = [
        "AST_2020-05-09_16.00.csv.gz",
        "YOYOW_2020-05-14_16.00.csv.gz",
    ]
    .map(|f| common::pump_file(&data, f));
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_smartflow"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_clear()
            .env("PATH", empty.path())
            .arg("--state")
            .arg(st.path())
            .args(args)
            .output()
            .expect("binary runs")
    };
    let o = run(&[
        "replay", "--quiet", "--data", &files[0], "--data", &files[1],
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = run(&["log", "export"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let signals: Vec<serde_json::Value> = text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|r: &serde_json::Value| r["kind"] == "signal")
        .collect();
    assert!(!signals.is_empty(), "no signal in two pump files");
    for s in &signals {
        assert_eq!(s["detail"]["detector"], "ensemble");
        let gbm = s["detail"]["members"]["gbm"]
            .as_f64()
            .expect("GBM member scored");
        assert!((0.0..=1.0).contains(&gbm));
    }
}
