//! Fuzz target `table_file`: the body and its properties are
//! `petrel_core::fuzzing::table_file`, which `core/tests/corpus_replay.rs` also replays over
//! `corpora/fuzz/table_file/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| petrel_core::fuzzing::table_file(data));
