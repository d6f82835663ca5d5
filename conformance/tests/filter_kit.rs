//! The filter conformance kit has teeth: a well-behaved filter passes every MUST check, and
//! each way of getting the protocol wrong fails the check that should catch it. The filter is
//! the daemon's scriptable `petrel-test-filter`.

use std::path::PathBuf;
use std::time::Duration;

use petrel_conformance::filter_kit::{self, KitOptions, KitOutcome, KitReport};
use petrel_core::filter::Version;

/// The daemon's test filter, built if it is not there yet.
fn test_filter() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    let bin = target.join("debug/petrel-test-filter");
    if !bin.is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = std::process::Command::new(cargo)
            .args([
                "build",
                "-p",
                "petrel-daemon",
                "--bin",
                "petrel-test-filter",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo");
        assert!(status.success(), "cannot build petrel-test-filter");
    }
    bin
}

async fn kit(args: &str, version: Version) -> KitReport {
    let options = KitOptions {
        command: vec![format!("{} --no-reports {args}", test_filter().display())],
        version,
        timeout: Duration::from_secs(2),
        sessions: 20,
    };
    filter_kit::run(&options).await
}

fn outcome<'a>(report: &'a KitReport, id: &str) -> &'a KitOutcome {
    &report
        .checks
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no check {id}: {report:#?}"))
        .outcome
}

fn failed(report: &KitReport, id: &str) -> bool {
    matches!(outcome(report, id), KitOutcome::Fail(_))
}

#[tokio::test]
async fn a_well_behaved_filter_passes_in_every_version() {
    for version in Version::ALL {
        let report = kit("", version).await;
        assert!(report.passed(), "{}", report.render(false));
        assert_eq!(outcome(&report, "data-lines-intact"), &KitOutcome::Pass);
        assert_eq!(outcome(&report, "sessions"), &KitOutcome::Pass);
    }
}

#[tokio::test]
async fn added_headers_are_allowed() {
    let report = kit("--header 'X-Scanned: yes'", Version::V0_7).await;
    assert!(report.passed(), "{}", report.render(false));
    assert_eq!(outcome(&report, "data-lines-intact"), &KitOutcome::Pass);
}

#[tokio::test]
async fn a_filter_that_hangs_fails_the_phase_and_the_kit() {
    let report = kit("--on rcpt-to::hang", Version::V0_7).await;
    assert!(failed(&report, "phase-rcpt-to"), "{}", report.render(false));
    assert!(!report.passed());
}

#[tokio::test]
async fn a_filter_that_crashes_is_caught() {
    let report = kit("--on mail-from::crash", Version::V0_7).await;
    assert!(
        failed(&report, "phase-mail-from"),
        "{}",
        report.render(false)
    );
    assert!(failed(&report, "alive"), "{}", report.render(false));
}

#[tokio::test]
async fn garbage_is_caught() {
    let report = kit("--on ehlo::garbage", Version::V0_7).await;
    assert!(failed(&report, "phase-ehlo"), "{}", report.render(false));
}

#[tokio::test]
async fn a_wrong_token_is_caught() {
    let report = kit("--on helo::wrong-token", Version::V0_7).await;
    assert!(failed(&report, "phase-helo"), "{}", report.render(false));
}

#[tokio::test]
async fn a_filter_that_forgets_dot_escaping_is_caught() {
    let report = kit("--on data-line::unstuff", Version::V0_7).await;
    assert!(
        failed(&report, "data-lines-intact"),
        "{}",
        report.render(false)
    );
    // Its `..` comes back as `.`, which ends the message early: the rest of its lines then
    // arrive where answers were expected.
    assert!(!report.passed(), "{}", report.render(false));
}

#[tokio::test]
async fn a_missing_filter_fails_to_start() {
    let options = KitOptions {
        command: vec!["/nonexistent/filter".into(), "-x".into()],
        version: Version::V0_7,
        timeout: Duration::from_secs(2),
        sessions: 1,
    };
    let report = filter_kit::run(&options).await;
    assert!(!report.passed());
}
