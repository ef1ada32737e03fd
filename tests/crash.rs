//! Crash safety of `replay --resume`: the binary is killed with SIGKILL (not Ctrl-C) at 20 random
//! moments; resuming each time ends with the same decision log and broker state as a run that was
//! never interrupted. `SMARTFLOW_BIN` picks another binary (e.g. target/release/smartflow).

mod common;

use rand::{Rng, SeedableRng};
use smartflow::cli::log::{export, Filter};
use smartflow::store::{Store, META_EXECUTOR, META_RUN};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const FILES: &[&str] = common::FIVE_PUMPS;

fn bin() -> PathBuf {
    std::env::var_os("SMARTFLOW_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_smartflow")))
}

/// Rules detector; small journal commits so a kill lands between many of them.
fn config(dir: &Path) -> PathBuf {
    let p = dir.join("crash.toml");
    std::fs::write(
        &p,
        "[models]\nmode = \"rules\"\n[replay]\njournal_flush_records = 7\nbatch_size = 256\n",
    )
    .unwrap();
    p
}

fn replay(data: &Path, cfg: &Path, state: &Path, resume: bool) -> Command {
    let mut c = Command::new(bin());
    c.env_remove("SMARTFLOW_CONFIG")
        .args(["--config", cfg.to_str().unwrap()])
        .args(["--state", state.to_str().unwrap(), "replay"]);
    for f in FILES {
        c.args(["--data", &common::pump_file(data, f)]);
    }
    if resume {
        c.arg("--resume");
    }
    c.stdout(Stdio::null()).stderr(Stdio::piped());
    c
}

/// The decision log (JSONL export) and the broker's final state.
fn outcome(state: &Path) -> (Vec<u8>, Vec<u8>) {
    let st = Store::open(state).unwrap();
    let mut log = Vec::new();
    export(&st, &Filter::default(), &mut log).unwrap();
    (log, st.meta(META_EXECUTOR).unwrap().unwrap_or_default())
}

fn running(state: &Path) -> bool {
    state.join("smartflow.redb").exists()
        && Store::open(state)
            .unwrap()
            .meta(META_RUN)
            .unwrap()
            .as_deref()
            == Some(b"running")
}

#[test]
fn replay_killed_at_20_random_moments_resumes_to_the_uninterrupted_result() {
    let data = require_data!();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let full = dir.path().join("full");
    let t0 = Instant::now();
    let out = replay(&data, &cfg, &full, false).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let span = t0.elapsed().as_millis() as u64;
    let reference = outcome(&full);
    assert!(reference.0.len() > 1000 && !reference.1.is_empty());

    let seed = 20261201;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let state = dir.path().join("killed");
    let total = Store::open(&full).unwrap().len().unwrap();
    let (mut kills, mut completed, mut mid_log) = (0, 0, 0);
    // 20 kills at least, and more (up to 60) until 5 of them landed mid-log: a loaded machine
    // starts slowly, and a kill before the first commit tests less.
    // A run that ends before its kill makes the aim shorter: when the uninterrupted run was slow
    // (a machine busy at first), every later run could otherwise end first, forever.
    let (mut span, mut attempts) = (span, 0);
    while (kills < 20 || (mid_log < 5 && kills < 60)) && attempts < 400 {
        attempts += 1;
        let resume = running(&state);
        let mut child = replay(&data, &cfg, &state, resume).spawn().unwrap();
        let wait = rng.random_range(span / 4..span.max(40));
        std::thread::sleep(Duration::from_millis(wait));
        match child.try_wait().unwrap() {
            None => {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                kills += 1;
                if state.join("smartflow.redb").exists() {
                    let n = Store::open(&state).unwrap().len().unwrap();
                    mid_log += usize::from(n > 0 && n < total) as u32;
                }
            }
            Some(st) => {
                let err = child.wait_with_output().unwrap().stderr;
                assert!(st.success(), "{}", String::from_utf8_lossy(&err));
                assert!(
                    outcome(&state) == reference,
                    "a completed run differs (seed {seed})"
                );
                completed += 1;
                span = span.min(wait);
            }
        }
    }
    assert!(
        kills >= 20,
        "only {kills} of {attempts} runs were still running at their kill"
    );
    if running(&state) {
        let out = replay(&data, &cfg, &state, true).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let got = outcome(&state);
    assert!(
        got.0 == reference.0,
        "decision log after {kills} kills differs (seed {seed})"
    );
    assert!(got.1 == reference.1, "broker state differs (seed {seed})");
    assert!(
        mid_log >= 5,
        "only {mid_log} kills landed with part of the log committed"
    );
    eprintln!(
        "{kills} kills ({mid_log} with part of the log committed), {completed} runs completed \
         before their kill; uninterrupted run {span} ms"
    );
}
