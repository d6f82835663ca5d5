//! Fuzz target `expansion`: the body and its properties are
//! `petrel_core::fuzzing::expansion`, which `core/tests/corpus_replay.rs` also replays over
//! `corpora/fuzz/expansion/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| petrel_core::fuzzing::expansion(data));
