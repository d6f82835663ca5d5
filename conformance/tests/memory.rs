//! The whole library against the core server machine, in memory: every MUST case passes, in
//! every configuration that claims conformance.

use petrel_conformance::case::{Group, Level};
use petrel_conformance::cases;
use petrel_conformance::memory::MemoryRunner;
use petrel_conformance::suite::{Status, SuiteReport};
use petrel_core::session::server::{AuthPolicy, TlsPolicy};
use petrel_core::smtp::BareNewline;

fn must_failures(report: &SuiteReport) -> String {
    report
        .must_failures()
        .iter()
        .map(|r| format!("\n{}: {}\n{}", r.id, r.detail, r.transcript))
        .collect()
}

fn run(runner: &MemoryRunner) -> SuiteReport {
    runner.run(&cases::all(), &runner.options())
}

fn status(report: &SuiteReport, id: &str) -> Status {
    report
        .result(id)
        .unwrap_or_else(|| panic!("no case {id}"))
        .status
}

#[test]
fn the_library_is_large_and_well_formed() {
    let all = cases::all();
    assert!(all.len() >= 80, "only {} cases", all.len());
    let mut ids: Vec<&str> = all.iter().map(|c| c.id.as_str()).collect();
    ids.sort_unstable();
    let before = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), before, "duplicate case ids");
    for c in &all {
        let prefix = format!("rfc{}.", c.rfc);
        assert!(
            c.id.starts_with(&prefix) || c.id.starts_with("smuggling."),
            "{} does not start with {prefix}",
            c.id
        );
        assert!(!c.title.is_empty() && !c.section.is_empty(), "{}", c.id);
        assert!(
            !c.steps.is_empty() || c.id == "rfc5321.3.1.greeting",
            "{}",
            c.id
        );
    }
    // Every family the issue asks for is represented.
    for g in [
        Group::Sequencing,
        Group::Replies,
        Group::Paths,
        Group::Postmaster,
        Group::Limits,
        Group::Transparency,
        Group::Timeouts,
        Group::Size,
        Group::Pipelining,
        Group::Starttls,
        Group::Auth,
        Group::EightBitMime,
        Group::Smtputf8,
        Group::Dsn,
        Group::Chunking,
        Group::EnhancedCodes,
        Group::Smuggling,
    ] {
        assert!(all.iter().any(|c| c.group == g), "no case in {g}");
    }
    for l in Level::ALL {
        assert!(all.iter().any(|c| c.level == l), "no {l} case");
    }
}

#[test]
fn every_must_case_passes_against_the_core_machine() {
    let runner = MemoryRunner::new("test.example");
    let report = run(&runner);
    assert_eq!(
        report.must_failures().len(),
        0,
        "{}",
        must_failures(&report)
    );
    let must = report.counts(Some(Level::Must));
    // With STARTTLS and AUTH on, nothing is skipped at the MUST level.
    assert_eq!(must.skip, 0, "{report:#?}");
    // The cases that wait minutes ran, in virtual time.
    assert_eq!(
        status(&report, "rfc5321.4.5.3.2.7.idle-5-minutes"),
        Status::Pass
    );
    assert_eq!(status(&report, "rfc5321.3.8.timeout-421"), Status::Pass);
    // The stored content is visible in memory.
    assert_eq!(status(&report, "rfc5321.4.5.2.unstuffing"), Status::Pass);
}

#[test]
fn without_pipelining_chunking_tls_or_auth_the_cases_are_skipped_not_failed() {
    let mut runner = MemoryRunner::new("test.example");
    runner.config.pipelining = false;
    runner.config.chunking = false;
    runner.config.tls = TlsPolicy::Off;
    runner.config.auth = AuthPolicy::Off;
    runner.config.dsn = false;
    runner.config.smtputf8 = false;
    let report = run(&runner);
    assert_eq!(
        report.must_failures().len(),
        0,
        "{}",
        must_failures(&report)
    );
    for id in [
        "rfc2920.3.1.transaction-in-one-write",
        "rfc3030.2.bdat-last",
        "rfc3207.4.2.command-injection",
        "rfc4954.4.unknown-mechanism",
        "rfc3461.4.1.notify-never",
        "rfc6531.3.4.smtputf8-parameter",
    ] {
        assert_eq!(status(&report, id), Status::Skip, "{id}");
    }
    // Without PIPELINING, input right behind the end of data is refused (smuggling defence).
    assert_eq!(
        status(&report, "smuggling.unannounced-pipelining-after-data"),
        Status::Pass
    );
}

#[test]
fn normalising_bare_newlines_still_never_ends_data_early() {
    let mut runner = MemoryRunner::new("test.example");
    runner.config.bare_newline = BareNewline::Normalize;
    let report = run(&runner);
    // The option accepts lines ended by a bare LF, which RFC 5321 section 4.1.1.4 forbids:
    // that case, and only that one, fails.
    let failed: Vec<&str> = report
        .must_failures()
        .iter()
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(failed, ["rfc5321.4.1.1.4.bare-lf-line-endings"]);
    for r in report
        .results
        .iter()
        .filter(|r| r.group == Group::Smuggling)
    {
        if r.id.starts_with("smuggling.") && r.level == Level::Must {
            assert_eq!(r.status, Status::Pass, "{}: {}", r.id, r.detail);
        }
    }
}
