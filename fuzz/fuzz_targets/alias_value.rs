//! Fuzz target `alias_value`: the body and its properties are
//! `petrel_core::fuzzing::alias_value`, which `core/tests/corpus_replay.rs` also replays over
//! `corpora/fuzz/alias_value/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| petrel_core::fuzzing::alias_value(data));
