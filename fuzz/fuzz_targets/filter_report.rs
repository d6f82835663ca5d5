//! Fuzz target `filter_report`: the body and its properties are
//! `petrel_core::fuzzing::filter_report`, which `core/tests/corpus_replay.rs` also replays over
//! `corpora/fuzz/filter_report/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| petrel_core::fuzzing::filter_report(data));
