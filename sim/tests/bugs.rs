//! The invariants have teeth: with each deliberate bug switched on, a bounded sweep of seeds
//! of the family built to expose it finds a failing run, and the violation is the one the bug
//! should cause.

use petrel_core::bugs::{self, Bug};
use petrel_sim::scenarios;
use petrel_sim::world::run;

/// Runs seeds `1..=max` of `family` with `bug` on, until one breaks an invariant of `kind`;
/// returns that seed.
fn caught(bug: Bug, family: &str, kind: &str, max: u64) -> u64 {
    assert!(bugs::available(), "built without the sim-bugs feature");
    let family = scenarios::family(family).expect("a known family");
    for seed in 1..=max {
        let result = bugs::with(&[bug], || run(&family.world(seed), false));
        if result.verdict.violations.iter().any(|v| v.kind == kind) {
            return seed;
        }
    }
    panic!(
        "{} went unnoticed by {} seeds of {}",
        bug.name(),
        max,
        family.name
    );
}

#[test]
fn acknowledging_before_the_sync_loses_mail_in_a_crash() {
    caught(Bug::AckBeforeSync, "crash-restart", "lost", 40);
}

#[test]
fn losing_an_envelope_on_4xx_loses_mail() {
    caught(Bug::LoseEnvelopeOn4xx, "retry-backoff", "lost", 10);
}

#[test]
fn an_unstuffing_slip_at_a_chunk_boundary_alters_content() {
    caught(Bug::DotUnstuffChunkBoundary, "dot-escaping", "content", 40);
}

#[test]
fn retrying_without_backoff_breaks_the_schedule() {
    caught(Bug::RetryWithoutBackoff, "retry-backoff", "schedule", 10);
}

#[test]
fn bouncing_a_null_sender_message_is_caught() {
    caught(Bug::BounceToNullSender, "dns-failures", "bounce", 10);
}

#[test]
fn bugs_are_off_unless_switched_on() {
    assert!(!bugs::active(Bug::AckBeforeSync));
    bugs::with(&[Bug::AckBeforeSync], || {
        assert!(bugs::active(Bug::AckBeforeSync));
        assert!(!bugs::active(Bug::RetryWithoutBackoff));
    });
    assert!(!bugs::active(Bug::AckBeforeSync));
}
