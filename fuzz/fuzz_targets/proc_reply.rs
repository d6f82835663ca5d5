//! Fuzz target `proc_reply`: the body and its properties are
//! `petrel_core::fuzzing::proc_reply`, which `core/tests/corpus_replay.rs` also replays over
//! `corpora/fuzz/proc_reply/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| petrel_core::fuzzing::proc_reply(data));
