//! Fuzz target `server_session`: the body and its properties are
//! `petrel_core::fuzzing::server_session`, which `core/tests/corpus_replay.rs` also replays over
//! `corpora/fuzz/server_session/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| petrel_core::fuzzing::server_session(data));
