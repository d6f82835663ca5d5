//! The straightforward grammar code the optimised parsers in [`crate::smtp`] replaced, kept
//! verbatim (types included) as a test oracle: the optimised code must give exactly the same
//! result (value or error) for every input. Compared through `Debug`, which the two copies of
//! each type derive alike.
//!
//! Only the code is old; nothing outside these differential tests uses it. The iteration
//! count of each test comes from `PETREL_DIFF_ITERS` (default 20,000): run them in release
//! with a few million to search harder, e.g.
//! `PETREL_DIFF_ITERS=3000000 cargo test -p petrel-core --release --lib reference`.
#![allow(dead_code, missing_docs, clippy::all)]

pub mod command;
pub mod dot;
pub mod framing;
pub mod params;
pub mod path;

use crate::smtp as new;

/// A small deterministic generator (xorshift64*): the tests need no shrinking, only many
/// reproducible inputs, printed on failure.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn iterations() -> usize {
    std::env::var("PETREL_DIFF_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

const VERBS: &[&str] = &[
    "MAIL",
    "RCPT",
    "EHLO",
    "HELO",
    "DATA",
    "BDAT",
    "RSET",
    "NOOP",
    "QUIT",
    "VRFY",
    "EXPN",
    "HELP",
    "STARTTLS",
    "AUTH",
    "mail",
    "rcpt",
    "ehlo",
    "Helo",
    "data",
    "bdat",
    "rset",
    "noop",
    "quit",
    "StartTls",
    "auth",
    "MAILX",
    "MAI",
    "STARTTLSX",
    "LHLO",
    "\0QUIT",
    "M4IL",
    "",
];

/// Pieces of command arguments: structural characters, keywords, values and oddities, so that
/// random concatenations reach deep into the path and parameter grammars.
const PIECES: &[&str] = &[
    " ",
    " ",
    " ",
    "  ",
    "FROM:",
    "TO:",
    "from:",
    "to:",
    "FROM",
    "TO",
    ":",
    "<",
    ">",
    "<>",
    "@",
    ".",
    "..",
    "\"",
    "\\",
    "[",
    "]",
    "IPv6:",
    "ipv6:",
    "::",
    "::1",
    "2001:db8::1",
    ",",
    ";",
    "=",
    "+",
    "-",
    "_",
    "a",
    "b",
    "Z",
    "0",
    "9",
    "123",
    "99999999999999999999",
    "alice",
    "bob.smith",
    "example.org",
    "mail-wr1-f54.google.com",
    "192.0.2.1",
    "256.1.1.1",
    "1.2.3",
    "tag",
    "x-tag",
    "postmaster",
    "PostMaster",
    "SIZE",
    "SIZE=",
    "BODY=",
    "8BITMIME",
    "7BIT",
    "BINARYMIME",
    "SMTPUTF8",
    "RET=",
    "FULL",
    "HDRS",
    "ENVID=",
    "AUTH=",
    "NOTIFY=",
    "SUCCESS",
    "FAILURE",
    "DELAY",
    "NEVER",
    "ORCPT=",
    "rfc822;",
    "utf-8;",
    "+2B",
    "+3C+3E",
    "+2b",
    "+",
    "LAST",
    "last",
    "PLAIN",
    "LOGIN",
    "AGFsaWNl=",
    "X-FOO",
    "é",
    "ü",
    "日本",
    "\u{80}",
    "\x7f",
    "\t",
    "\0",
    "\r",
    "\n",
    "!#$%&'*/?^`{|}~",
    "(",
    ")",
    "\x01",
];

fn long_piece(rng: &mut Rng) -> String {
    let ch = *rng.pick(&['a', '-', '.', '9', 'é', ' ', '+']);
    let n = *rng.pick(&[62, 63, 64, 99, 100, 101, 254, 255, 256, 499, 500, 501]);
    std::iter::repeat_n(ch, n).collect()
}

/// A command line: a verb, then random pieces (sometimes a byte of invalid UTF-8).
fn random_line(rng: &mut Rng) -> Vec<u8> {
    let mut line = rng.pick(VERBS).as_bytes().to_vec();
    if rng.below(8) != 0 {
        line.push(b' ');
    }
    for _ in 0..rng.below(14) {
        match rng.below(40) {
            0 => line.extend_from_slice(long_piece(rng).as_bytes()),
            1 => line.push(*rng.pick(&[0xff, 0xc3, 0x80, 0xe6, 0xed])),
            _ => line.extend_from_slice(rng.pick(PIECES).as_bytes()),
        }
    }
    line
}

/// A valid-looking line with one random edit: most bugs hide next to valid input.
fn mutated_line(rng: &mut Rng) -> Vec<u8> {
    const VALID: &[&str] = &[
        "MAIL FROM:<alice.smith@example.org> SIZE=123456 BODY=8BITMIME",
        "MAIL FROM:<bounce-42@lists.example.com> SIZE=9876 BODY=8BITMIME RET=HDRS ENVID=QQ314159",
        "MAIL FROM:<> SIZE=2048",
        "MAIL FROM:<j\u{f6}@ex\u{e4}mple.org> SMTPUTF8 AUTH=<>",
        "MAIL FROM:<@a.b,@c.d:u@e.f> AUTH=u+2Bx@example.org",
        "mail from: <\"john \\\"jd\\\" doe>x\"@example.org>",
        "MAIL FROM:user@example.org SIZE=1",
        "RCPT TO:<bob@example.net>",
        "RCPT TO:<carol.jones+tag@mail.example.co.uk> NOTIFY=SUCCESS,FAILURE",
        "RCPT TO:<postmaster>",
        "RCPT TO:<a@[x-tag:>\"@]> ORCPT=rfc822;a+40b",
        "RCPT TO:<u@[IPv6:2001:db8::1]> NOTIFY=NEVER",
        "RCPT TO:<u@[192.0.2.1]>",
        "EHLO mail-wr1-f54.google.com",
        "EHLO [192.0.2.1]",
        "HELO x_y.example",
        "AUTH PLAIN AGFsaWNlAGNvcnJlY3QgaG9yc2UgYmF0dGVyeSBzdGFwbGU=",
        "AUTH LOGIN",
        "BDAT 1000 LAST",
        "VRFY alice",
        "HELP  topic ",
        "NOOP whatever",
        "QUIT",
        "STARTTLS",
    ];
    let mut line = rng.pick(VALID).as_bytes().to_vec();
    for _ in 0..rng.below(4) {
        let at = rng.below(line.len() + 1);
        match rng.below(4) {
            0 if at < line.len() => {
                line.remove(at);
            }
            1 if at < line.len() => line[at] = *rng.pick(b" <>@.\"\\[]:=,;+-aZ0\x80\xff\r"),
            _ => {
                let piece = rng.pick(PIECES).as_bytes();
                line.splice(at..at, piece.iter().copied());
            }
        }
    }
    line
}

fn word(rng: &mut Rng, alphabet: &[u8], max: usize) -> String {
    let n = 1 + rng.below(max);
    (0..n).map(|_| char::from(*rng.pick(alphabet))).collect()
}

/// A line built from the grammar, mostly valid: random case, atoms, labels, literals and
/// parameters in any order, now and then a character that is not allowed where it is.
fn grammar_line(rng: &mut Rng) -> String {
    const ATEXT: &[u8] = b"abcxyzABCXYZ0189!#$%&'*+-/=?^_`{|}~";
    const LDH: &[u8] = b"abcxyzABCXYZ0189-_";
    let domain = |rng: &mut Rng| -> String {
        let labels: Vec<String> = (0..1 + rng.below(4))
            .map(|_| match rng.below(12) {
                0 => "é".into(),
                1 => "a".repeat(63 + rng.below(2)),
                _ => word(rng, LDH, 10),
            })
            .collect();
        labels.join(".")
    };
    let host = |rng: &mut Rng| -> String {
        match rng.below(10) {
            0 => format!(
                "[{}.{}.{}.{}]",
                rng.below(300),
                rng.below(256),
                rng.below(10),
                rng.below(256)
            ),
            1 => format!("[0{}.1.2.3]", rng.below(10)),
            2 => "[IPv6:2001:db8::1]".into(),
            3 => format!("[{}:{}]", word(rng, LDH, 5), word(rng, ATEXT, 6)),
            _ => domain(rng),
        }
    };
    let local = |rng: &mut Rng| -> String {
        match rng.below(10) {
            0 => format!("\"{}\"", word(rng, b"ab @.\\\">", 6)),
            1 => "ü".into(),
            _ => {
                let atoms: Vec<String> =
                    (0..1 + rng.below(3)).map(|_| word(rng, ATEXT, 8)).collect();
                atoms.join(".")
            }
        }
    };
    let sp = |rng: &mut Rng| if rng.below(10) == 0 { "  " } else { " " };
    match rng.below(6) {
        0 | 1 => {
            let mut line = format!("MAIL FROM:<{}@{}>", local(rng), host(rng));
            if rng.below(8) == 0 {
                line = "MAIL FROM:<>".into();
            }
            for _ in 0..rng.below(5) {
                line.push_str(sp(rng));
                line.push_str(match rng.below(9) {
                    0 => "SIZE=12345",
                    1 => "size=0",
                    2 => "BODY=8BITMIME",
                    3 => "body=7bit",
                    4 => "SMTPUTF8",
                    5 => "RET=HDRS",
                    6 => "ENVID=QQ314159",
                    7 => "AUTH=<>",
                    _ => "AUTH=a+2Bb@c",
                });
            }
            line
        }
        2 | 3 => {
            let mut line = format!("RCPT TO:<{}@{}>", local(rng), host(rng));
            if rng.below(8) == 0 {
                line = "RCPT TO:<postMaster>".into();
            }
            for _ in 0..rng.below(3) {
                line.push_str(sp(rng));
                line.push_str(match rng.below(5) {
                    0 => "NOTIFY=SUCCESS,FAILURE",
                    1 => "NOTIFY=never",
                    2 => "NOTIFY=DELAY,SUCCESS",
                    3 => "ORCPT=rfc822;bob+2Bx@example.org",
                    _ => "ORCPT=rfc822;a@b",
                });
            }
            line
        }
        4 => format!("EHLO{}{}", sp(rng), host(rng)),
        _ => format!(
            "AUTH {} {}",
            word(rng, b"PLAINlogin-_", 8),
            word(rng, b"AGFs=+/", 20)
        ),
    }
}

fn all_options() -> impl Iterator<Item = (new::ParseOptions, command::ParseOptions)> {
    (0..8u8).map(|bits| {
        let (a, b, c) = (bits & 1 != 0, bits & 2 != 0, bits & 4 != 0);
        (
            new::ParseOptions {
                smtputf8_offered: a,
                utf8_transaction: b,
                lenient_paths: c,
            },
            command::ParseOptions {
                smtputf8_offered: a,
                utf8_transaction: b,
                lenient_paths: c,
            },
        )
    })
}

fn check_line(line: &[u8]) {
    for (opts, old_opts) in all_options() {
        let got = format!("{:?}", new::Command::parse(line, opts));
        let want = format!("{:?}", command::Command::parse(line, old_opts));
        assert_eq!(
            got,
            want,
            "line {:?} under {opts:?}",
            String::from_utf8_lossy(line)
        );
    }
    // The grammar's public pieces, on whatever follows the verb.
    let Some(arg) = line
        .iter()
        .position(|&b| b == b' ')
        .and_then(|sp| std::str::from_utf8(&line[sp + 1..]).ok())
    else {
        return;
    };
    let arg = arg
        .strip_prefix("FROM:")
        .or_else(|| arg.strip_prefix("TO:"))
        .unwrap_or(arg);
    for bits in 0..4u8 {
        let (utf8, lenient) = (bits & 1 != 0, bits & 2 != 0);
        let o = new::PathOptions { utf8, lenient };
        let p = path::PathOptions { utf8, lenient };
        assert_eq!(
            format!("{:?}", new::path::parse_reverse_path(arg, o)),
            format!("{:?}", path::parse_reverse_path(arg, p)),
            "reverse path {arg:?} {o:?}"
        );
        assert_eq!(
            format!("{:?}", new::path::parse_forward_path(arg, o)),
            format!("{:?}", path::parse_forward_path(arg, p)),
            "forward path {arg:?} {o:?}"
        );
        assert_eq!(
            format!("{:?}", new::Mailbox::parse(arg, utf8)),
            format!("{:?}", path::Mailbox::parse(arg, utf8)),
            "mailbox {arg:?} {o:?}"
        );
        assert_eq!(
            format!("{:?}", new::Host::parse(arg, utf8)),
            format!("{:?}", path::Host::parse(arg, utf8)),
            "host {arg:?} {o:?}"
        );
    }
    assert_eq!(
        format!("{:?}", new::MailParams::parse(arg)),
        format!("{:?}", params::MailParams::parse(arg)),
        "MAIL parameters {arg:?}"
    );
    assert_eq!(
        format!("{:?}", new::RcptParams::parse(arg)),
        format!("{:?}", params::RcptParams::parse(arg)),
        "RCPT parameters {arg:?}"
    );
    assert_eq!(
        new::params::xtext_decode(arg),
        params::xtext_decode(arg),
        "xtext {arg:?}"
    );
}

#[test]
fn commands_match_the_reference() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for i in 0..iterations() {
        let line = match i % 3 {
            0 => random_line(&mut rng),
            1 => mutated_line(&mut rng),
            _ => grammar_line(&mut rng).into_bytes(),
        };
        check_line(&line);
    }
}

fn framer_matches(input: &[u8], max: usize, cuts: &[usize]) {
    let mut new_framer = new::LineFramer::new();
    let mut old_framer = framing::LineFramer::new();
    let mut pos = 0;
    let mut avail = 0;
    let mut cuts = cuts.iter();
    loop {
        let got = new_framer.next(&input[pos..avail], max);
        let want = old_framer.next(&input[pos..avail], max);
        assert_eq!(
            format!("{got:?}"),
            format!("{want:?}"),
            "{:?} at {pos}..{avail}, max {max}",
            String::from_utf8_lossy(input)
        );
        match got {
            new::Frame::Line { consumed, .. } | new::Frame::TooLong { consumed } => pos += consumed,
            new::Frame::Incomplete if avail == input.len() => break,
            new::Frame::Incomplete => {
                avail = cuts
                    .next()
                    .map_or(input.len(), |&c| c.max(avail).min(input.len()))
            }
        }
    }
}

#[test]
fn framing_matches_the_reference() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for _ in 0..iterations() {
        let long = rng.below(4) == 0;
        let len = rng.below(if long { 1200 } else { 40 });
        let input: Vec<u8> = (0..len)
            .map(|_| *rng.pick(b"aaaaaaaaaaaaaaaaaaaaaa\x8d\x8a\x0c \r\n\r\n\r"))
            .collect();
        let max = *rng.pick(&[1, 2, 3, 5, 8, 16, 33, 64, 512, 1000]);
        let n = rng.below(6);
        let mut cuts: Vec<usize> = (0..n).map(|_| rng.below(len + 1)).collect();
        cuts.sort_unstable();
        framer_matches(&input, max, &cuts);
    }
}

/// Message content biased towards the cases the decoder treats specially: dots at line
/// starts, every kind of line ending, long lines and the end-of-data marker.
fn random_data(rng: &mut Rng) -> Vec<u8> {
    const PIECES: &[&[u8]] = &[
        b"\r\n",
        b"\r\n",
        b"\r\n",
        b"\r\n.",
        b"\r\n..",
        b"\r\n.\r\n",
        b"\n",
        b"\r",
        b".",
        b"\n.",
        b"\r.",
        b".\r",
        b".\n",
        b"x",
        b"hello world",
        b"\r\n.\r",
        b"\r\n.\n",
    ];
    let mut data = Vec::new();
    for _ in 0..rng.below(60) {
        match rng.below(12) {
            0 => data.extend(std::iter::repeat_n(b'y', rng.below(1100))),
            1 => data.extend(std::iter::repeat_n(b'z', rng.below(80))),
            _ => data.extend_from_slice(*rng.pick(PIECES)),
        }
    }
    data
}

fn decoder_matches(input: &[u8], max_line: usize, cuts: &[usize]) {
    let mut new_dec = new::DataDecoder::new(max_line);
    let mut old_dec = dot::DataDecoder::new(max_line);
    let (mut new_out, mut old_out) = (Vec::new(), Vec::new());
    let mut pos = 0;
    for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
        let end = cut.max(pos);
        let got = new_dec.decode(&input[pos..end], &mut new_out);
        let want = old_dec.decode(&input[pos..end], &mut old_out);
        let ctx = || {
            format!(
                "{:?} chunk {pos}..{end}, max {max_line}",
                String::from_utf8_lossy(input)
            )
        };
        assert_eq!(format!("{got:?}"), format!("{want:?}"), "{}", ctx());
        assert_eq!(
            format!("{:?}", new_dec.flags()),
            format!("{:?}", old_dec.flags()),
            "{}",
            ctx()
        );
        assert_eq!(new_dec.is_complete(), old_dec.is_complete(), "{}", ctx());
        if new_out != old_out {
            let at = new_out
                .iter()
                .zip(&old_out)
                .position(|(a, b)| a != b)
                .unwrap_or(new_out.len().min(old_out.len()));
            panic!(
                "outputs differ at {at} (lengths {} {}): new {:?} old {:?}; {}",
                new_out.len(),
                old_out.len(),
                String::from_utf8_lossy(
                    &new_out[at.saturating_sub(40)..(at + 40).min(new_out.len())]
                ),
                String::from_utf8_lossy(
                    &old_out[at.saturating_sub(40)..(at + 40).min(old_out.len())]
                ),
                ctx().len()
            );
        }
        pos += got.consumed;
        if got.complete {
            break;
        }
    }
}

/// Mostly ordinary message content, long enough for the block path of the decoder: lines of
/// any length ended by CRLF, with now and then a dot-led line, a bare CR or LF, a very long
/// line or the end-of-data marker.
fn mostly_clean_data(rng: &mut Rng) -> Vec<u8> {
    let mut data = Vec::new();
    for _ in 0..rng.below(400) {
        match rng.below(60) {
            0 => data.extend_from_slice(b".dot-led\r\n"),
            1 => data.extend_from_slice(b"bare\rcr\r\n"),
            2 => data.extend_from_slice(b"bare\nlf\r\n"),
            3 => data.extend_from_slice(b"\r\n.\r\n"),
            4 => data.extend(std::iter::repeat_n(b'L', 900 + rng.below(200))),
            5 => data.push(b'\r'),
            6 => data.push(b'\n'),
            _ => {
                let long = rng.below(8) == 0;
                let len = rng.below(if long { 500 } else { 90 });
                data.extend((0..len).map(|_| *rng.pick(b"abcdefgh .-\t")));
                data.extend_from_slice(b"\r\n");
            }
        }
    }
    data
}

#[test]
fn data_decoding_matches_the_reference() {
    let mut rng = Rng(0x0bad_cafe_f00d_d00d);
    for _ in 0..iterations() / 4 {
        let input = if rng.below(2) == 0 {
            random_data(&mut rng)
        } else {
            mostly_clean_data(&mut rng)
        };
        let max_line = *rng.pick(&[0, 1, 3, 10, 63, 64, 65, 100, 956, 957, 958, 998, 1000]);
        let n = rng.below(5);
        let mut cuts: Vec<usize> = (0..n).map(|_| rng.below(input.len() + 1)).collect();
        cuts.sort_unstable();
        decoder_matches(&input, max_line, &cuts);
    }
}
