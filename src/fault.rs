//! Fault injection for tests and simulations (`--inject-panic STAGE@N`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Fault injection for tests and simulations: panic once in `stage` at the first item it handles
/// at or after global event `index` (strategy and risk only handle events with signals/intents).
#[derive(Clone, Default)]
pub struct Fault {
    target: Option<(String, u64)>,
    fired: Arc<AtomicBool>,
}

impl Fault {
    pub fn new(stage: &str, index: u64) -> Self {
        Self {
            target: Some((stage.to_string(), index)),
            fired: Arc::new(AtomicBool::new(false)),
        }
    }
    /// Parses `STAGE@EVENT_INDEX`, e.g. `features@100000`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (stage, idx) = s
            .split_once('@')
            .ok_or_else(|| format!("--inject-panic {s:?}: want STAGE@EVENT_INDEX"))?;
        if !FAULT_TARGETS.contains(&stage) {
            return Err(format!(
                "--inject-panic {s:?}: unknown stage {stage:?}; stages: {}",
                FAULT_TARGETS.join(", ")
            ));
        }
        let idx = idx
            .parse()
            .map_err(|_| format!("--inject-panic {s:?}: bad event index"))?;
        Ok(Self::new(stage, idx))
    }
    #[inline]
    pub fn check(&self, stage: &str, index: u64) {
        if let Some((s, i)) = &self.target {
            if index >= *i && s == stage && !self.fired.swap(true, Ordering::SeqCst) {
                panic!("injected fault in {stage} at event {index}");
            }
        }
    }
    pub fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }
}

/// Where `--inject-panic` can aim: the stages, and `feed` (a live venue connection, at its
/// N-th frame).
pub const FAULT_TARGETS: &[&str] = &[
    "features", "detector", "strategy", "risk", "executor", "feed",
];
