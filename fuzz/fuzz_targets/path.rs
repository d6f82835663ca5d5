//! Fuzz target `path`: the body and its properties are
//! `petrel_core::fuzzing::path`, which `core/tests/corpus_replay.rs` also replays over
//! `corpora/fuzz/path/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| petrel_core::fuzzing::path(data));
