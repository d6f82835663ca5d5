//! Round trips of the SMTP grammar under proptest: every valid value formats to a string the
//! parser reads back as the same value, and dot-stuffing followed by unstuffing is the identity
//! (after line-ending normalisation) however both streams are chunked.
//!
//! The strategies generate only valid values, following the RFC 5321 grammar (with the RFC 6531
//! UTF-8 extensions where the transaction allows them). A failing round trip is a bug in the
//! grammar code, not in the strategy.
use std::net::{Ipv4Addr, Ipv6Addr};

use petrel_core::smtp::dot::normalize_line_endings;
use petrel_core::smtp::params::xtext_encode;
use petrel_core::smtp::path::{parse_forward_path, parse_reverse_path};
use petrel_core::smtp::{
    AddressLiteral, Body, Command, DataDecoder, DotStuffer, EnhancedCode, ForwardPath, Host,
    MailParams, Mailbox, Notify, Orcpt, ParseOptions, PathOptions, RcptParams, Reply, ReplyParser,
    Ret, ReversePath,
};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

// ----- paths -----

/// An LDH label (letters, digits, hyphens and the tolerated underscore), never starting or
/// ending with a hyphen, 1 to 63 octets.
fn ascii_label() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "[a-zA-Z0-9]([a-zA-Z0-9_-]{0,12}[a-zA-Z0-9])?",
        1 => "[a-z0-9]{63}",
    ]
}

/// A U-label: letters from Latin-1 and CJK mixed with ASCII (at most 3 octets a character, so
/// 20 characters stay within the 63-octet label limit).
fn utf8_label() -> impl Strategy<Value = String> {
    "[a-z0-9\u{e0}-\u{ff}\u{4e00}-\u{4e20}]{1,20}"
}

fn domain(utf8: bool) -> BoxedStrategy<String> {
    let label = if utf8 {
        prop_oneof![ascii_label(), utf8_label()].boxed()
    } else {
        ascii_label().boxed()
    };
    vec(label, 1..=4)
        .prop_map(|labels| labels.join("."))
        .prop_filter("domain too long", |d| d.len() <= 255)
        .boxed()
}

fn address_literal() -> impl Strategy<Value = AddressLiteral> {
    // A Standardized-tag is an Ldh-str; "IPv6" is the tag with a syntax of its own.
    let tag = "[a-zA-Z0-9-]{0,8}[a-zA-Z0-9]"
        .prop_filter("the IPv6 tag", |t: &String| !t.eq_ignore_ascii_case("IPv6"));
    // dcontent: %d33-90 / %d94-126, so '>', '"', '@' and ':' may all appear.
    let content = "[!-Z^-~]{1,24}";
    prop_oneof![
        any::<u32>().prop_map(|a| AddressLiteral::V4(Ipv4Addr::from(a))),
        any::<u128>().prop_map(|a| AddressLiteral::V6(Ipv6Addr::from(a))),
        (tag, content).prop_map(|(tag, content)| AddressLiteral::General { tag, content }),
    ]
}

fn host(utf8: bool) -> impl Strategy<Value = Host> {
    prop_oneof![
        4 => domain(utf8).prop_map(Host::Domain),
        1 => address_literal().prop_map(Host::Literal),
    ]
}

/// A Dot-string: atoms of atext (plus UTF-8 characters when allowed) joined by single dots.
fn dot_string(utf8: bool) -> BoxedStrategy<String> {
    let atom = if utf8 {
        "[a-zA-Z0-9!#$%&'*+/=?^_`{|}~\u{e0}-\u{ff}\u{4e00}-\u{4e20}-]{1,12}".boxed()
    } else {
        "[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]{1,12}".boxed()
    };
    vec(atom, 1..=4).prop_map(|atoms| atoms.join(".")).boxed()
}

/// A Quoted-string as written on the wire, quotes and backslash escapes included.
fn quoted_string(utf8: bool) -> BoxedStrategy<String> {
    // qtextSMTP: printable ASCII except '"' and '\' (UTF-8 when allowed); quoted-pairSMTP:
    // a backslash and any printable ASCII character or space.
    let qtext = if utf8 {
        "[ !#-\\[\\]-~\u{e0}-\u{ff}\u{4e00}-\u{4e20}]".boxed()
    } else {
        "[ !#-\\[\\]-~]".boxed()
    };
    let piece = prop_oneof![
        3 => qtext,
        1 => "[ -~]".prop_map(|c| format!("\\{c}")),
    ];
    vec(piece, 0..20)
        .prop_map(|pieces| format!("\"{}\"", pieces.concat()))
        .boxed()
}

fn mailbox(utf8: bool) -> impl Strategy<Value = Mailbox> {
    let local = prop_oneof![3 => dot_string(utf8), 1 => quoted_string(utf8)];
    (local, host(utf8))
        .prop_filter("local part too long", |(l, _)| l.len() <= 255)
        .prop_map(|(local, host)| Mailbox { local, host })
}

fn reverse_path(utf8: bool) -> impl Strategy<Value = ReversePath> {
    prop_oneof![
        1 => Just(ReversePath::Null),
        6 => mailbox(utf8).prop_map(ReversePath::Mailbox),
    ]
}

fn forward_path(utf8: bool) -> impl Strategy<Value = ForwardPath> {
    prop_oneof![
        1 => "[pP][oO][sS][tT][mM][aA][sS][tT][eE][rR]".prop_map(ForwardPath::Postmaster),
        6 => mailbox(utf8).prop_map(ForwardPath::Mailbox),
    ]
}

// ----- ESMTP parameters -----

/// Any text whose xtext encoding fits in `max` octets.
fn xtext_value(max: usize) -> impl Strategy<Value = String> {
    "\\PC{1,40}".prop_filter("xtext too long", move |s: &String| {
        xtext_encode(s).len() <= max
    })
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        Just(Body::SevenBit),
        Just(Body::EightBitMime),
        Just(Body::BinaryMime)
    ]
}

fn mail_params() -> impl Strategy<Value = MailParams> {
    let ret = option::of(prop_oneof![Just(Ret::Full), Just(Ret::Headers)]);
    // AUTH=<> is the empty identity; any other value is an addr-spec in xtext.
    let auth = option::of(prop_oneof![
        1 => Just(String::new()),
        4 => (dot_string(false), domain(false)).prop_map(|(l, d)| format!("{l}@{d}")),
    ]);
    (
        option::of(any::<u64>()),
        option::of(body()),
        any::<bool>(),
        ret,
        option::of(xtext_value(100)),
        auth,
    )
        .prop_map(|(size, body, smtputf8, ret, envid, auth)| MailParams {
            size,
            body,
            smtputf8,
            ret,
            envid,
            auth,
        })
}

fn notify() -> impl Strategy<Value = Notify> {
    prop_oneof![
        Just(Notify {
            never: true,
            ..Notify::default()
        }),
        (any::<bool>(), any::<bool>(), any::<bool>())
            .prop_filter("at least one", |(s, f, d)| *s || *f || *d)
            .prop_map(|(success, failure, delay)| Notify {
                never: false,
                success,
                failure,
                delay,
            }),
    ]
}

fn rcpt_params() -> impl Strategy<Value = RcptParams> {
    let orcpt = ("[a-zA-Z0-9][a-zA-Z0-9-]{0,10}", xtext_value(500))
        .prop_map(|(addr_type, address)| Orcpt { addr_type, address });
    (option::of(notify()), option::of(orcpt))
        .prop_map(|(notify, orcpt)| RcptParams { notify, orcpt })
}

// ----- commands -----

/// An argument of VRFY, EXPN or HELP: printable, no leading or trailing space.
fn word_arg() -> impl Strategy<Value = String> {
    "[!-~]([ -~]{0,30}[!-~])?"
}

fn mail_command(utf8: bool) -> impl Strategy<Value = Command> {
    (reverse_path(utf8), mail_params(), Just(utf8)).prop_map(|(from, mut params, utf8)| {
        // A UTF-8 path is valid only with the SMTPUTF8 parameter.
        params.smtputf8 |= utf8 && from.mailbox().is_some_and(Mailbox::is_utf8);
        Command::Mail { from, params }
    })
}

/// Any command; UTF-8 appears in paths only when `utf8` (the server offers SMTPUTF8).
fn command(utf8: bool) -> impl Strategy<Value = Command> {
    let auth = ("[A-Z0-9_-]{1,20}", option::of("[A-Za-z0-9+/]{1,40}=?=?|=")).prop_map(
        |(mechanism, initial)| Command::Auth {
            mechanism: mechanism.into(),
            initial,
        },
    );
    prop_oneof![
        host(false).prop_map(Command::Helo),
        host(false).prop_map(Command::Ehlo),
        mail_command(utf8),
        (forward_path(utf8), rcpt_params()).prop_map(|(to, params)| Command::Rcpt { to, params }),
        Just(Command::Data),
        (any::<u64>(), any::<bool>()).prop_map(|(size, last)| Command::Bdat { size, last }),
        Just(Command::Rset),
        Just(Command::Noop),
        Just(Command::Quit),
        word_arg().prop_map(Command::Vrfy),
        word_arg().prop_map(Command::Expn),
        option::of(word_arg()).prop_map(Command::Help),
        Just(Command::StartTls),
        auth,
    ]
}

/// The options of a server that offers SMTPUTF8, inside a transaction that uses it.
const UTF8_OPTIONS: ParseOptions = ParseOptions {
    smtputf8_offered: true,
    utf8_transaction: true,
    lenient_paths: false,
};

// ----- replies -----

fn reply() -> impl Strategy<Value = Reply> {
    let code = 200u16..=599;
    code.prop_flat_map(|code| {
        let class = (code / 100) as u8;
        let enhanced = if class == 3 {
            // RFC 3463 has no class 3: 334 and 354 never carry an enhanced code.
            Just(None).boxed()
        } else {
            option::of(
                (0u16..=999, 0u16..=999).prop_map(move |(s, d)| EnhancedCode::new(class, s, d)),
            )
            .boxed()
        };
        let line = prop_oneof![4 => "[ -~]{0,60}", 1 => "[ -~\u{e0}-\u{ff}]{0,20}"];
        (Just(code), enhanced, vec(line, 1..=6))
    })
    .prop_map(|(code, enhanced, lines)| Reply {
        code,
        enhanced,
        text: lines.join("\n").into(),
    })
    .prop_filter("text that reads as an enhanced code", |r| {
        // Without an enhanced code, a first line starting like one of the reply's class is
        // ambiguous on the wire: the parser rightly takes it for the code.
        r.enhanced.is_some()
            || EnhancedCode::parse_prefix(r.lines().next().unwrap_or(""))
                .is_none_or(|(e, _)| u16::from(e.class) != r.code / 100)
    })
}

// ----- data -----

/// Message content biased towards the bytes that matter to transparency.
fn content() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        4 => Just(b'.'),
        3 => Just(b'\r'),
        3 => Just(b'\n'),
        4 => b'a'..=b'z',
        1 => any::<u8>(),
    ];
    let piece = prop_oneof![
        10 => vec(byte, 0..6),
        2 => Just(b"\r\n.\r\n".to_vec()),
        1 => Just(b"\n.\n".to_vec()),
        1 => (990usize..1005).prop_map(|n| [&b"."[..], &vec![b'x'; n]].concat()),
    ];
    vec(piece, 0..30).prop_map(|pieces| pieces.concat())
}

/// Split points for a stream, as fractions so that they fit whatever its length.
fn splits() -> impl Strategy<Value = Vec<f64>> {
    vec(0.0f64..=1.0, 0..8)
}

fn cut<'a>(bytes: &'a [u8], fractions: &[f64]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = fractions
        .iter()
        .map(|f| ((bytes.len() as f64) * f) as usize)
        .map(|p| p.min(bytes.len()))
        .collect();
    points.push(0);
    points.push(bytes.len());
    points.sort_unstable();
    points.windows(2).map(|w| &bytes[w[0]..w[1]]).collect()
}

/// What the receiver must store: line endings normalised, a final CRLF added when missing.
fn expected_content(content: &[u8]) -> Vec<u8> {
    let mut out = normalize_line_endings(content);
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn commands_round_trip(cmd in command(true)) {
        let line = cmd.to_string();
        prop_assert!(!line.contains(['\r', '\n']), "line breaks in {line:?}");
        let parsed = Command::parse(line.as_bytes(), UTF8_OPTIONS);
        prop_assert_eq!(parsed, Ok(cmd), "line {:?}", line);
    }

    #[test]
    fn ascii_commands_parse_without_utf8(cmd in command(false)) {
        // A command with no UTF-8 in it needs no SMTPUTF8 option.
        let line = cmd.to_string();
        prop_assert!(line.is_ascii());
        prop_assert_eq!(Command::parse(line.as_bytes(), ParseOptions::default()), Ok(cmd));
    }

    #[test]
    fn mailboxes_round_trip(m in mailbox(true)) {
        let text = m.to_string();
        prop_assert_eq!(Mailbox::parse(&text, true), Ok(m.clone()));
        if text.is_ascii() {
            prop_assert_eq!(Mailbox::parse(&text, false), Ok(m));
        }
    }

    #[test]
    fn paths_round_trip(from in reverse_path(true), to in forward_path(true)) {
        let opts = PathOptions { utf8: true, lenient: false };
        let text = format!("{from} SIZE=1");
        prop_assert_eq!(parse_reverse_path(&text, opts), Ok((from, " SIZE=1")));
        let text = to.to_string();
        prop_assert_eq!(parse_forward_path(&text, opts), Ok((to, "")));
    }

    #[test]
    fn hosts_round_trip(h in host(true)) {
        prop_assert_eq!(Host::parse(&h.to_string(), true), Ok(h));
    }

    #[test]
    fn mail_params_round_trip(p in mail_params()) {
        let text = p.to_string();
        prop_assert!(text.is_empty() || text.starts_with(' '));
        prop_assert_eq!(MailParams::parse(&text), Ok(p));
    }

    #[test]
    fn rcpt_params_round_trip(p in rcpt_params()) {
        prop_assert_eq!(RcptParams::parse(&p.to_string()), Ok(p));
    }

    #[test]
    fn replies_round_trip(r in reply()) {
        let wire = r.to_bytes();
        prop_assert_eq!(Reply::parse(&wire), Ok(r.clone()), "wire {:?}", String::from_utf8_lossy(&wire));
    }

    #[test]
    fn replies_parse_incrementally(rs in vec(reply(), 1..4), at in splits()) {
        // Several replies back to back, delivered in arbitrary pieces, some with bare LF.
        let mut wire = Vec::new();
        for r in &rs {
            wire.extend(r.to_bytes());
        }
        let mut parser = ReplyParser::new();
        let mut parsed = Vec::new();
        for piece in cut(&wire, &at) {
            let mut rest = piece;
            while !rest.is_empty() {
                let (reply, used) = parser.feed(rest).expect("valid replies");
                parsed.extend(reply);
                rest = &rest[used..];
            }
        }
        prop_assert!(!parser.is_partial());
        prop_assert_eq!(&parsed, &rs);
        let bare_lf: Vec<u8> = wire.iter().copied().filter(|&b| b != b'\r').collect();
        let lf_parsed: Vec<Reply> = {
            let mut p = ReplyParser::new();
            let mut out = Vec::new();
            let mut rest = &bare_lf[..];
            while !rest.is_empty() {
                let (reply, used) = p.feed(rest).expect("valid replies");
                out.extend(reply);
                rest = &rest[used..];
            }
            out
        };
        // Text never contains CR here, so dropping every CR leaves the same replies.
        prop_assert_eq!(lf_parsed, rs);
    }

    #[test]
    fn stuff_then_unstuff_is_identity(
        content in content(),
        content_splits in splits(),
        wire_splits in splits(),
    ) {
        let mut stuffer = DotStuffer::new();
        let mut wire = Vec::new();
        for piece in cut(&content, &content_splits) {
            stuffer.encode(piece, &mut wire);
        }
        stuffer.finish(&mut wire);
        // The sender never emits a bare CR or LF.
        for (i, &b) in wire.iter().enumerate() {
            if b == b'\r' {
                prop_assert_eq!(wire.get(i + 1), Some(&b'\n'), "bare CR at {}", i);
            }
            if b == b'\n' {
                prop_assert!(i > 0 && wire[i - 1] == b'\r', "bare LF at {}", i);
            }
        }
        // Commands pipelined after the data must be left alone.
        let data_len = wire.len();
        wire.extend_from_slice(b"QUIT\r\n");

        let expected = expected_content(&content);
        let mut decoder = DataDecoder::new(998);
        let mut out = Vec::new();
        let mut consumed = 0;
        for piece in cut(&wire, &wire_splits) {
            if decoder.is_complete() {
                break;
            }
            consumed += decoder.decode(piece, &mut out).consumed;
        }
        prop_assert!(decoder.is_complete());
        prop_assert_eq!(consumed, data_len);
        prop_assert_eq!(&out, &expected);
        let flags = decoder.flags();
        prop_assert!(!flags.bare_newline());
        // RFC 5321 section 4.5.3.1.6: 1000 octets with CRLF, not counting a stuffed dot.
        let long = expected.split(|&b| b == b'\n').any(|l| l.len() > 999);
        prop_assert_eq!(flags.long_line, long);
    }
}

#[test]
fn literal_content_may_hold_path_delimiters() {
    // dcontent allows '>', '"' and '@'; they must not end the path or the local part.
    let cmd = Command::parse(b"RCPT TO:<a@[x-tag:>\"@]>", ParseOptions::default());
    let Ok(Command::Rcpt { to, .. }) = cmd else {
        panic!("{cmd:?}")
    };
    assert_eq!(to.to_string(), "<a@[x-tag:>\"@]>");
}

#[test]
fn stuffed_dot_does_not_count_towards_the_line_limit() {
    let mut wire = b"..".to_vec();
    wire.extend(std::iter::repeat_n(b'x', 997));
    wire.extend_from_slice(b"\r\n.\r\n");
    let mut decoder = DataDecoder::new(998);
    let mut out = Vec::new();
    assert!(decoder.decode(&wire, &mut out).complete);
    assert_eq!(out.len(), 1000);
    assert!(!decoder.flags().long_line);
}

/// Regressions found by fuzzing.
#[test]
fn fuzz_regressions() {
    use petrel_core::smtp::path::{PathOptions, parse_reverse_path};
    use petrel_core::smtp::{Command, CommandError, MailParams, ParseOptions};
    assert_eq!(
        Command::parse(b"\0QUIT", ParseOptions::default()),
        Err(CommandError::Unrecognized)
    );
    assert_eq!(
        Command::parse(b"\0\0\0\0MAIL FROM:<>", ParseOptions::default()),
        Err(CommandError::Unrecognized)
    );
    let p = MailParams::parse("AUTH=+3C+3E").unwrap();
    assert_eq!(p.auth.as_deref(), Some("<>"));
    assert_eq!(MailParams::parse(p.to_string().trim()).unwrap(), p);
    assert!(MailParams::parse(&format!("ENVID={}", "é".repeat(40))).is_err());
    for path in ["<u@[x:a>b]>", "<u@[x:a\"b]>"] {
        let (p, rest) = parse_reverse_path(path, PathOptions::default()).unwrap();
        assert_eq!(rest, "");
        assert_eq!(p.to_string(), path);
    }
}
