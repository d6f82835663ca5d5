//! Fuzz target `srs_decode`: the body and its properties are
//! `petrel_core::fuzzing::srs_decode`, which `core/tests/corpus_replay.rs` also replays over
//! `corpora/fuzz/srs_decode/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| petrel_core::fuzzing::srs_decode(data));
