//! Parsing benchmarks: Petrel's command parser and DATA decoder side by side with smtp-proto's
//! (Stalwart) on the same inputs. Run with `cargo bench -p petrel-core --bench parse`; the
//! results and how to read them are in `BENCHMARKS.md`.
//!
//! Both command parsers are measured from the raw line with its CRLF to the parsed value:
//! Petrel frames the line ([`LineFramer`]) and parses it ([`Command::parse`]); smtp-proto's
//! `Request::parse` does both in one pass. Dropping the result is part of the measurement
//! (Petrel's commands own their strings; smtp-proto's borrow from the input when they can).

use std::borrow::Cow;

use divan::counter::BytesCount;
use divan::{Bencher, black_box};
use petrel_core::smtp::dot::stuff;
use petrel_core::smtp::{Command, DataDecoder, Frame, LineFramer, ParseOptions};
use smtp_proto::Request;
use smtp_proto::request::receiver::DataReceiver;

fn main() {
    divan::main();
}

/// The command lines of each input class.
fn class(name: &str) -> &'static [&'static [u8]] {
    match name {
        "mail_params" => &[
            b"MAIL FROM:<alice.smith@example.org> SIZE=123456 BODY=8BITMIME\r\n",
            b"MAIL FROM:<bounce-42@lists.example.com> SIZE=9876 BODY=8BITMIME RET=HDRS ENVID=QQ314159\r\n",
            b"MAIL FROM:<> SIZE=2048\r\n",
        ],
        "rcpt" => &[
            b"RCPT TO:<bob@example.net>\r\n",
            b"RCPT TO:<carol.jones+tag@mail.example.co.uk> NOTIFY=SUCCESS,FAILURE\r\n",
            b"RCPT TO:<postmaster>\r\n",
        ],
        "ehlo" => &[
            b"EHLO mail-wr1-f54.google.com\r\n",
            b"EHLO [192.0.2.1]\r\n",
        ],
        "short_verbs" => &[b"NOOP\r\n", b"QUIT\r\n", b"RSET\r\n", b"DATA\r\n"],
        "auth" => &[
            b"AUTH PLAIN AGFsaWNlAGNvcnJlY3QgaG9yc2UgYmF0dGVyeSBzdGFwbGU=\r\n",
            b"AUTH LOGIN\r\n",
        ],
        "garbage" => &[
            b"GET / HTTP/1.1\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n",
            b"MAIL FROM alice@example.org\r\n",
        ],
        _ => unreachable!("unknown input class {name}"),
    }
}

const CLASSES: &[&str] = &[
    "mail_params",
    "rcpt",
    "ehlo",
    "short_verbs",
    "auth",
    "garbage",
];

fn class_bytes(lines: &[&[u8]]) -> BytesCount {
    BytesCount::new(lines.iter().map(|l| l.len()).sum::<usize>())
}

/// Command lines: framing and parsing each line of the class.
mod command {
    use super::*;

    /// Both parsers must accept every line of a valid class and refuse every garbage line, or
    /// the comparison would flatter the one that stops early.
    fn expect_ok(name: &str) -> bool {
        name != "garbage"
    }

    #[divan::bench(args = CLASSES)]
    fn petrel(bencher: Bencher, name: &str) {
        let lines = class(name);
        let opts = ParseOptions::default();
        for line in lines {
            let parsed = Command::parse(&line[..line.len() - 2], opts);
            assert_eq!(parsed.is_ok(), expect_ok(name), "{name}: {parsed:?}");
        }
        bencher.counter(class_bytes(lines)).bench(|| {
            for &line in lines {
                let line = black_box(line);
                let mut framer = LineFramer::new();
                let Frame::Line { len, .. } = framer.next(line, 512) else {
                    unreachable!()
                };
                let _ = black_box(Command::parse(&line[..len], opts));
            }
        });
    }

    #[divan::bench(args = CLASSES)]
    fn smtp_proto(bencher: Bencher, name: &str) {
        let lines = class(name);
        for line in lines {
            let parsed = Request::<Cow<'_, str>>::parse(&mut line.iter());
            assert_eq!(parsed.is_ok(), expect_ok(name), "{name}: {parsed:?}");
        }
        bencher.counter(class_bytes(lines)).bench(|| {
            for &line in lines {
                let line = black_box(line);
                let _ = black_box(Request::<Cow<'_, str>>::parse(&mut line.iter()));
            }
        });
    }
}

/// A realistic message on the wire: headers, then ~76-character lines of text with a dot-led
/// line every 40 lines, dot-stuffed and terminated, of about `size` octets.
fn message_wire(size: usize) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "mail", "transfer",
        "agent", "petrel", "sans-io", "protocol", "message", "delivery", "queue", "retry",
    ];
    let mut content = b"From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\n\
Subject: A benchmark message\r\nMessage-ID: <bench@example.org>\r\n\r\n"
        .to_vec();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut line_no = 0;
    while content.len() < size {
        let mut line = String::new();
        if line_no % 40 == 39 {
            line.push('.');
        }
        while line.len() < 72 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            line.push_str(WORDS[(seed >> 33) as usize % WORDS.len()]);
            line.push(' ');
        }
        content.extend_from_slice(line.trim_end().as_bytes());
        content.extend_from_slice(b"\r\n");
        line_no += 1;
    }
    stuff(&content)
}

const SIZES: &[usize] = &[64 * 1024, 1024 * 1024];

/// DATA unstuffing: the whole message in one buffer, decoded into a reused output buffer.
mod data {
    use super::*;

    #[divan::bench(args = SIZES)]
    fn petrel(bencher: Bencher, size: usize) {
        let wire = message_wire(size);
        let mut out = Vec::with_capacity(wire.len());
        bencher
            .counter(BytesCount::of_slice(&wire))
            .bench_local(|| {
                out.clear();
                let mut decoder = DataDecoder::new(998);
                let r = decoder.decode(black_box(&wire), &mut out);
                assert!(r.complete);
            });
    }

    #[divan::bench(args = SIZES)]
    fn smtp_proto(bencher: Bencher, size: usize) {
        let wire = message_wire(size);
        let mut out = Vec::with_capacity(wire.len());
        bencher
            .counter(BytesCount::of_slice(&wire))
            .bench_local(|| {
                out.clear();
                let mut receiver = DataReceiver::new();
                let complete = receiver.ingest(&mut black_box(&wire).iter(), &mut out);
                assert!(complete);
            });
    }
}
