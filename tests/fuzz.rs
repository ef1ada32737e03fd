//! The short version of `simulations/fuzz.sh`: every fuzz target, seeded from the real captures,
//! a few thousand mutants each; no panic, no invariant broken, and every target both accepts
//! and rejects (so its seeds load and its mutations bite).

mod common;

use smartflow::fuzz::{run_all, targets};

#[test]
fn every_parser_of_outside_input_survives_mutants_of_real_captures() {
    let data = require_data!();
    let all = targets(&data).unwrap();
    assert!(all.len() >= 18, "{} targets", all.len());
    // Enough inputs that each target gets past its seeds into mutants.
    let per = all.iter().map(|t| t.seeds.len() as u64).max().unwrap() + 1_500;
    let reports = run_all(&all, per.max(3_000), 7, 2, &|_| {});
    let table = smartflow::cli::fuzz::table(&reports, 1.0);
    for r in &reports {
        assert_eq!(r.panics + r.violations, 0, "{}:\n{table}", r.target);
        assert!(r.accepted > 0, "{} accepted nothing:\n{table}", r.target);
        assert!(r.rejected > 0, "{} rejected nothing:\n{table}", r.target);
    }
    eprintln!("{table}");
}
