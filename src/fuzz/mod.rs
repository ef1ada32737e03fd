//! Mutation fuzzing of everything that reads outside input: the venue codecs, the REST answers,
//! the file readers, the decimal and time parsers, and config loading (`smartflow fuzz`,
//! `simulations/fuzz.sh`; a short run is in the tests).
//!
//! Each target starts from real inputs (captures in the shared data, the built-in configs),
//! mutates them ([`mutate::Mutator`]), and feeds them to a [`Harness`] that keeps state across
//! inputs the way a live session does (a codec's books). An input is accepted, rejected with a
//! reason (what a user would see in a malformed count), or breaks an invariant: an accepted
//! event outside what the core may believe (see [`check`]). Panics are caught and counted; both
//! panics and violations must be zero.

pub mod check;
pub mod codecs;
pub mod files;
pub mod mutate;
pub mod text;

use serde::Serialize;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// What one input did.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Parsed; `events` market events (or items) came out, all passing [`check`].
    Accepted { events: usize },
    /// Refused with this reason (counted as malformed by the real reader).
    Rejected(String),
    /// Accepted but wrong: an event outside what the core may believe.
    Violation(String),
}

/// Feeds inputs to one parser, keeping its state between inputs.
pub trait Harness {
    fn feed(&mut self, input: &[u8]) -> Outcome;
}

/// One fuzz target: its seed inputs and how to build a fresh harness.
pub struct Target {
    pub name: &'static str,
    pub seeds: Vec<Vec<u8>>,
    pub make: Box<dyn Fn() -> Box<dyn Harness> + Send + Sync>,
}

/// A panic or a violation, with the input that caused it (lossy UTF-8, first 4 KiB).
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    pub kind: &'static str,
    pub message: String,
    pub input: String,
}

/// Figures of one target.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TargetReport {
    pub target: String,
    pub seeds: usize,
    pub inputs: u64,
    pub accepted: u64,
    pub events: u64,
    pub rejected: u64,
    pub panics: u64,
    pub violations: u64,
    /// Wall time of the target's run, seconds.
    pub secs: f64,
    /// Rejections by reason (numbers and quoted text folded).
    pub rejects: BTreeMap<String, u64>,
    /// The first few panics and violations.
    pub findings: Vec<Finding>,
}

/// A fresh harness every this many inputs: state built from mutants should not hide how a
/// fresh one reacts.
const RESET_EVERY: u64 = 5_000;
const MAX_FINDINGS: usize = 5;

/// Runs `inputs` inputs through `t`: first its seeds unchanged, then mutants.
pub fn run_target(t: &Target, inputs: u64, seed: u64) -> TargetReport {
    let mut r = TargetReport {
        target: t.name.to_string(),
        seeds: t.seeds.len(),
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let mut h = (t.make)();
    let mut m = mutate::Mutator::new(seed);
    let mut buf = Vec::new();
    for n in 0..inputs {
        match t.seeds.get(n as usize) {
            Some(s) => buf.clone_from(s),
            None => m.mutate(&t.seeds, &mut buf),
        }
        if n > 0 && n % RESET_EVERY == 0 {
            h = (t.make)();
        }
        r.inputs += 1;
        match catch_unwind(AssertUnwindSafe(|| h.feed(&buf))) {
            Ok(Outcome::Accepted { events }) => {
                r.accepted += 1;
                r.events += events as u64;
            }
            Ok(Outcome::Rejected(why)) => {
                r.rejected += 1;
                *r.rejects.entry(reason_class(&why)).or_default() += 1;
            }
            Ok(Outcome::Violation(why)) => {
                r.violations += 1;
                r.record("violation", why, &buf);
            }
            Err(p) => {
                r.panics += 1;
                r.record("panic", panic_message(&p), &buf);
                h = (t.make)(); // its state may be half-updated
            }
        }
    }
    r.secs = started.elapsed().as_secs_f64();
    r
}

impl TargetReport {
    fn record(&mut self, kind: &'static str, message: String, input: &[u8]) {
        if self.findings.len() < MAX_FINDINGS {
            let input = String::from_utf8_lossy(&input[..input.len().min(4096)]).into_owned();
            self.findings.push(Finding {
                kind,
                message,
                input,
            });
        }
    }
}

/// Runs every target with `per_target` inputs on `threads` threads; `done` is called as each
/// target finishes. Reports come back in the order of `targets`.
pub fn run_all(
    targets: &[Target],
    per_target: u64,
    seed: u64,
    threads: usize,
    done: &(dyn Fn(&TargetReport) + Sync),
) -> Vec<TargetReport> {
    let next = AtomicUsize::new(0);
    let reports = Mutex::new(vec![None; targets.len()]);
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(t) = targets.get(i) else { return };
                let r = run_target(t, per_target, seed.wrapping_add(i as u64));
                done(&r);
                reports.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
            });
        }
    });
    let reports = reports.into_inner().unwrap_or_else(|e| e.into_inner());
    reports.into_iter().flatten().collect()
}

/// Every target, seeded from the shared data folder `data`. Errors when a capture is missing.
pub fn targets(data: &Path) -> anyhow::Result<Vec<Target>> {
    let mut t = text::targets(data)?;
    t.extend(codecs::targets(data)?);
    t.extend(files::targets(data)?);
    Ok(t)
}

/// `input` as text, or the rejection of a parser that takes only UTF-8.
pub fn utf8(input: &[u8]) -> Result<&str, Outcome> {
    std::str::from_utf8(input).map_err(|_| Outcome::Rejected("not UTF-8".into()))
}

/// A rejection reason without its variable parts: cut at the first `:`, `"` or `(`, digits
/// folded, so that `bad price "x"` and `bad price "y"` count together.
pub fn reason_class(why: &str) -> String {
    let head = why
        .split([':', '"', '(', '{', '[', '\n'])
        .next()
        .unwrap_or("");
    let mut out = String::new();
    let mut last_digit = false;
    for c in head.trim().chars().take(60) {
        if c.is_ascii_digit() {
            if !last_digit {
                out.push('N');
            }
            last_digit = true;
        } else {
            out.push(c);
            last_digit = false;
        }
    }
    match out.is_empty() {
        true => "(other)".into(),
        false => out,
    }
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(non-text panic)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Picky(u32);
    impl Harness for Picky {
        fn feed(&mut self, input: &[u8]) -> Outcome {
            self.0 += 1;
            match input.first() {
                Some(b'{') => Outcome::Accepted { events: 1 },
                Some(b'!') => panic!("boom at {}", self.0),
                Some(b'?') => Outcome::Violation("bad event".into()),
                _ => Outcome::Rejected(format!("bad byte {:?} at 12", input.first())),
            }
        }
    }

    #[test]
    fn panics_and_violations_are_caught_counted_and_kept_with_their_input() {
        let t = Target {
            name: "picky",
            seeds: vec![b"{}".to_vec(), b"!x".to_vec(), b"?".to_vec(), b"".to_vec()],
            make: Box::new(|| Box::new(Picky(0))),
        };
        let r = run_target(&t, 4, 1);
        assert_eq!(
            (r.accepted, r.panics, r.violations, r.rejected),
            (1, 1, 1, 1)
        );
        assert_eq!(r.findings[0].kind, "panic");
        assert!(r.findings[0].message.starts_with("boom"));
        assert_eq!(r.findings[0].input, "!x");
        assert_eq!(r.rejects.keys().collect::<Vec<_>>(), ["bad byte None at N"]);
        let r = run_target(&t, 2_000, 1);
        assert_eq!(r.inputs, 2_000);
        assert_eq!(r.accepted + r.rejected + r.panics + r.violations, 2_000);
        assert!(r.panics > 1 && r.findings.len() == MAX_FINDINGS);
    }

    #[test]
    fn reasons_fold_their_variable_parts() {
        assert_eq!(reason_class("bad price \"1e400\""), "bad price");
        assert_eq!(reason_class("bad JSON: expected value"), "bad JSON");
        assert_eq!(
            reason_class("orderbook gap 17 after 12"),
            "orderbook gap N after N"
        );
        assert_eq!(reason_class(""), "(other)");
    }
}
