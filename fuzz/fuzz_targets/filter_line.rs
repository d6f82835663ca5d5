//! Fuzz target `filter_line`: the body and its properties are
//! `petrel_core::fuzzing::filter_line`, which `core/tests/corpus_replay.rs` also replays over
//! `corpora/fuzz/filter_line/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| petrel_core::fuzzing::filter_line(data));
