//! Fuzz target `dot_unstuff`: the body and its properties are
//! `petrel_core::fuzzing::dot_unstuff`, which `core/tests/corpus_replay.rs` also replays over
//! `corpora/fuzz/dot_unstuff/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| petrel_core::fuzzing::dot_unstuff(data));
