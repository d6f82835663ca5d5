//! The conformance library's third runner: every case over the simulated network against a
//! simulated Petrel host, in simulated time. Every MUST case passes, and the cases that wait
//! for the server's timeouts — skipped over real TCP unless `--slow` — run here.

use petrel_conformance::cases;
use petrel_conformance::suite::Status;

#[test]
fn every_must_case_passes_in_the_simulator() {
    let report = petrel_sim::conformance::run(&cases::all()).unwrap();
    assert_eq!(report.target.runner, "sim");
    let failures: String = report
        .must_failures()
        .iter()
        .map(|r| format!("\n{}: {}\n{}", r.id, r.detail, r.transcript))
        .collect();
    assert!(failures.is_empty(), "MUST failures:{failures}");
    let waited: Vec<&str> = report
        .results
        .iter()
        .filter(|r| r.id.contains("timeout") && r.status == Status::Pass)
        .map(|r| r.id.as_str())
        .collect();
    assert!(!waited.is_empty(), "the timeout cases ran");
    let passed = report
        .results
        .iter()
        .filter(|r| r.status == Status::Pass)
        .count();
    assert!(passed >= 120, "{passed} cases passed");
}
