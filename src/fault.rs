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
    /// Refuses a fault aimed at a stage the run does not have: there is a features stage only
    /// when the signal source reads its snapshots (the ensemble keeps its own feature windows).
    pub fn check_stages(&self, has_features_stage: bool) -> Result<(), String> {
        match &self.target {
            Some((s, i)) if s == "features" && !has_features_stage => Err(format!(
                "--inject-panic features@{i}: this run has no features stage (the ensemble \
                 detector keeps its own feature windows); aim at detector@{i}"
            )),
            _ => Ok(()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_in_a_stage_the_run_lacks_is_refused_with_the_stage_named() {
        let f = Fault::parse("features@10").unwrap();
        assert!(f.check_stages(true).is_ok());
        let e = f.check_stages(false).unwrap_err();
        assert!(
            e.contains("features@10") && e.contains("detector@10"),
            "{e}"
        );
        assert!(Fault::parse("detector@10")
            .unwrap()
            .check_stages(false)
            .is_ok());
        assert!(Fault::default().check_stages(false).is_ok());
    }
}
