//! Fuzz target `dot_roundtrip`: the body and its properties are
//! `petrel_core::fuzzing::dot_roundtrip`, which `core/tests/corpus_replay.rs` also replays over
//! `corpora/fuzz/dot_roundtrip/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| petrel_core::fuzzing::dot_roundtrip(data));
