//! Fuzz target bodies, shared by the `fuzz/` crate (libFuzzer) and the corpus replay test.
//!
//! Every target is a plain function taking the fuzzer's bytes. It panics when a property of the
//! code under test is violated, so a panic is a bug (or a property that is wrong: both deserve a
//! look). Nothing here uses libFuzzer: `cargo test` replays the corpora in `corpora/fuzz/` with
//! these same functions (see `core/tests/corpus_replay.rs`).
//!
//! | target | what it checks |
//! | --- | --- |
//! | [`command`] | [`Command::parse`](crate::smtp::Command::parse) never panics; it recognises a command only from its own verb; a parsed command re-formats and re-parses to the same command |
//! | [`path`] | the path, mailbox and host parsers never panic; what they accept re-formats and re-parses equal |
//! | [`reply`] | [`ReplyParser`](crate::smtp::ReplyParser) gives the same replies under any chunking; a parsed reply re-formats and re-parses equal |
//! | [`dot_unstuff`] | [`DataDecoder`](crate::smtp::DataDecoder) agrees with a one-shot decode under any chunking and with an independent reference model; content never holds a bare CR or LF |
//! | [`dot_roundtrip`] | stuffing with [`DotStuffer`](crate::smtp::DotStuffer) then decoding gives the content back, line endings normalised |
//! | [`server_session`] | the server machine under a sequence of operations (see [`ServerOp`]) |
//! | [`client_session`] | the client machine under a sequence of operations (see [`ClientOp`]) |
//! | [`config()`] | [`config::parse`](crate::config::parse) never panics, with includes served from [`INCLUDE_FILES`]; a configuration that parses prints a normal form that parses to the same configuration up to spans, and prints the same again |
//! | [`table_file`] | the table file parser never panics; keys and values are non-empty single lines; every value of a mapping goes through the alias value parser; every key is found in its own table under every service |
//! | [`alias_value`] | the alias value parser never panics; what it accepts is well-formed (user names, absolute paths, 4xx/5xx error replies) |
//! | [`expansion`] | the bytes as an aliases file, a `.forward` and an `:include:` file: resolving recipients through them terminates, and an accepted recipient has deliveries |
//! | [`proc_reply`] | `proc:` table reply and handshake lines: the parsers never panic; the client answers each request once and no other |
//! | [`srs_decode`] | the SRS decoder never panics under both flavours; what decodes was tagged and gives an address; encode then decode gives the sender back |
//! | [`filter_line`] | [`parse_filter_line`](crate::filter::wire::parse_filter_line) and [`reply_of`](crate::filter::wire::reply_of) never panic; a line a filter could send that parses formats to one line that parses back equal |
//! | [`filter_report`] | a report event or filter request built from arbitrary text (see [`ReportInput`]) formats to one line that [`parse_daemon_line`](crate::filter::wire::parse_daemon_line) reads back: same values, fields sanitised, read into an event that formats to the same line |
//!
//! The session targets read their input as a sequence of operations in the manner of
//! quinn-proto's fuzzers, decoded from an [`arbitrary::Unstructured`] with a fixed, documented
//! byte layout so that seed inputs can be written by program ([`ServerOp::encode`],
//! [`ClientOp::encode`], [`seeds`]). Client input may be mapped onto the SMTP alphabet, as
//! smtp-proto's fuzzer does, so that random bytes reach deep parser states quickly.

mod client;
mod config;
mod filter;
mod grammar;
pub mod seeds;
mod server;

pub use crate::rules::fuzzing::{
    fuzz_alias_value as alias_value, fuzz_expansion as expansion, fuzz_proc_reply as proc_reply,
    fuzz_table_file as table_file,
};
pub use crate::srs::fuzzing::fuzz_decode as srs_decode;
pub use client::{
    CannedReply, ClientOp, client_session, decode_client_config, decode_client_session,
};
pub use config::{INCLUDE_FILES, config};
pub use filter::{ReportInput, decode_filter_report, filter_line, filter_report};
pub use grammar::{command, dot_roundtrip, dot_unstuff, path, reply};
pub use server::{
    Canned, DecisionKind, ServerOp, ServerSetup, decode_server_config, decode_server_session,
    server_session,
};

/// The body of a fuzz target.
pub type Target = fn(&[u8]);

/// Every fuzz target: its name (the directory of its corpus under `corpora/fuzz/` and the name
/// of its `fuzz/fuzz_targets/*.rs` file) and its body.
pub const TARGETS: &[(&str, Target)] = &[
    ("command", command),
    ("path", path),
    ("reply", reply),
    ("dot_unstuff", dot_unstuff),
    ("dot_roundtrip", dot_roundtrip),
    ("server_session", server_session),
    ("client_session", client_session),
    ("config", config),
    ("table_file", table_file),
    ("alias_value", alias_value),
    ("expansion", expansion),
    ("proc_reply", proc_reply),
    ("srs_decode", srs_decode),
    ("filter_line", filter_line),
    ("filter_report", filter_report),
];

/// Reads one byte; zero once the input is exhausted (as `arbitrary` does).
fn byte(u: &mut arbitrary::Unstructured<'_>) -> u8 {
    u.arbitrary::<u8>().unwrap_or(0)
}

/// Reads a length byte and then up to that many bytes.
fn blob<'a>(u: &mut arbitrary::Unstructured<'a>) -> &'a [u8] {
    let len = usize::from(byte(u)).min(u.len());
    u.bytes(len).unwrap_or_default()
}

/// Appends a length byte and the bytes (at most 255 of them) in the layout [`blob`] reads.
fn push_blob(out: &mut Vec<u8>, bytes: &[u8]) {
    let bytes = &bytes[..bytes.len().min(255)];
    out.push(bytes.len() as u8);
    out.extend_from_slice(bytes);
}

/// A small deterministic generator (xorshift64*), seeded from the input so that a given input
/// always splits the same way.
struct Splitter(u64);

impl Splitter {
    fn new(data: &[u8], salt: u64) -> Splitter {
        // FNV-1a over the input.
        let mut h = 0xcbf2_9ce4_8422_2325u64 ^ salt;
        for &b in data {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        Splitter(h | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Splits `data` into pieces of 0 to 16 bytes, with the odd larger one.
    fn pieces<'a>(&mut self, data: &'a [u8]) -> Vec<&'a [u8]> {
        let mut out = Vec::new();
        let mut rest = data;
        while !rest.is_empty() {
            let r = self.next();
            let n = if r.is_multiple_of(8) {
                (r >> 8) as usize % 512
            } else {
                (r >> 8) as usize % 17
            };
            let n = n.min(rest.len());
            out.push(&rest[..n]);
            rest = &rest[n..];
        }
        out
    }
}

/// Counts occurrences of `needle` in `hay`, overlapping ones included.
fn count(hay: &[u8], needle: &[u8]) -> usize {
    if needle.is_empty() || hay.len() < needle.len() {
        return 0;
    }
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

/// Counts occurrences of `needle` (ASCII case ignored) that end in `hay[old_len..]`: called
/// after appending to `hay`, it counts each occurrence once however the bytes arrive.
fn count_new(hay: &[u8], old_len: usize, needle: &[u8]) -> usize {
    let start = old_len.saturating_sub(needle.len() - 1);
    hay[start..]
        .windows(needle.len())
        .filter(|w| w.eq_ignore_ascii_case(needle))
        .count()
}

/// True when every CR is followed by LF and every LF preceded by CR.
fn crlf_only(content: &[u8]) -> bool {
    content.iter().enumerate().all(|(i, &b)| match b {
        b'\r' => content.get(i + 1) == Some(&b'\n'),
        b'\n' => i > 0 && content[i - 1] == b'\r',
        _ => true,
    })
}
