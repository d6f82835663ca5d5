//! Differential target: Petrel's command parser against smtp-proto's on the same lines. The
//! comparison and its list of known, explained disagreements live in
//! `core/tests/support/command_diff.rs`, shared with the corpus replay test.
#![no_main]

#[path = "../../core/tests/support/command_diff.rs"]
mod command_diff;

libfuzzer_sys::fuzz_target!(|data: &[u8]| command_diff::command_diff(data));
