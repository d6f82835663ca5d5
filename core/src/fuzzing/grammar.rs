//! Targets for the SMTP grammar: commands, paths, replies and the data-transparency codecs.

use super::{Splitter, count, crlf_only};
use crate::smtp::dot::{
    DataDecoder, DataFlags, Decoded, DotStuffer, normalize_line_endings, stuff,
};
use crate::smtp::path::{Host, Mailbox, PathOptions, parse_forward_path, parse_reverse_path};
use crate::smtp::reply::{MAX_REPLY_LINE, Reply, ReplyError, ReplyParser};
use crate::smtp::{Command, ParseOptions};

/// Fuzz target body; also replayed by the corpus test.
///
/// The input is split into lines at LF (a CR before the LF is dropped) and every line is parsed
/// as a command under each of the eight combinations of [`ParseOptions`]. Properties: no panic;
/// a command is recognised only from its own verb (case-insensitively); a parsed command formats (with [`Display`](std::fmt::Display) and
/// [`Command::write_to`]) to a line that starts with its verb and parses back, under the same
/// options, to the same command.
pub fn command(data: &[u8]) {
    for line in data.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        for bits in 0..8u8 {
            let opts = ParseOptions {
                smtputf8_offered: bits & 1 != 0,
                utf8_transaction: bits & 2 != 0,
                lenient_paths: bits & 4 != 0,
            };
            let Ok(cmd) = Command::parse(line, opts) else {
                continue;
            };
            let verb = line.split(|&b| b == b' ').next().unwrap_or_default();
            assert!(
                verb.eq_ignore_ascii_case(cmd.verb().as_bytes()),
                "{:?} parsed as {}",
                String::from_utf8_lossy(line),
                cmd.verb()
            );
            let text = cmd.to_string();
            assert!(
                text.starts_with(cmd.verb()),
                "{text:?} does not start with {}",
                cmd.verb()
            );
            let mut wire = Vec::new();
            cmd.write_to(&mut wire);
            assert_eq!(wire, format!("{text}\r\n").into_bytes());
            match Command::parse(text.as_bytes(), opts) {
                Ok(again) => assert_eq!(
                    again,
                    cmd,
                    "{:?} parsed as {cmd:?}, formatted as {text:?}, re-parsed differently ({opts:?})",
                    String::from_utf8_lossy(line)
                ),
                Err(e) => panic!(
                    "{:?} parsed as {cmd:?}, formatted as {text:?}, which does not parse ({opts:?}): {e}",
                    String::from_utf8_lossy(line)
                ),
            }
        }
    }
}

/// Fuzz target body; also replayed by the corpus test.
///
/// The input (invalid UTF-8 replaced) is given to [`parse_reverse_path`] and
/// [`parse_forward_path`] under the four combinations of [`PathOptions`], and to
/// [`Mailbox::parse`] and [`Host::parse`]. Properties: no panic; what follows a parsed path is
/// a suffix of the input that is empty or starts with a space; a parsed path, mailbox or host
/// formats to text that parses back (strictly: with angle brackets) to an equal value; a
/// mailbox parsed without UTF-8 is ASCII.
pub fn path(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    let s: &str = &s;
    for bits in 0..4u8 {
        let opts = PathOptions {
            utf8: bits & 1 != 0,
            lenient: bits & 2 != 0,
        };
        let strict = PathOptions {
            lenient: false,
            ..opts
        };
        if let Ok((p, rest)) = parse_reverse_path(s, opts) {
            check_rest(s, rest);
            let text = p.to_string();
            let again = parse_reverse_path(&text, strict);
            assert_eq!(again, Ok((p.clone(), "")), "{s:?} -> {text:?} ({opts:?})");
            if let Some(m) = p.mailbox() {
                check_mailbox(m, opts.utf8);
            }
        }
        if let Ok((p, rest)) = parse_forward_path(s, opts) {
            check_rest(s, rest);
            let text = p.to_string();
            let again = parse_forward_path(&text, strict);
            assert_eq!(again, Ok((p.clone(), "")), "{s:?} -> {text:?} ({opts:?})");
            if let Some(m) = p.mailbox() {
                check_mailbox(m, opts.utf8);
            }
        }
    }
    for utf8 in [false, true] {
        if let Ok(m) = Mailbox::parse(s, utf8) {
            check_mailbox(&m, utf8);
        }
        if let Ok(h) = Host::parse(s, utf8) {
            let text = h.to_string();
            assert_eq!(Host::parse(&text, utf8), Ok(h.clone()), "{s:?} -> {text:?}");
            if !utf8 {
                assert!(text.is_ascii());
            }
        }
    }
}

fn check_rest(input: &str, rest: &str) {
    assert!(
        input.ends_with(rest),
        "{rest:?} is not a suffix of {input:?}"
    );
    assert!(
        rest.is_empty() || rest.starts_with(' '),
        "garbage {rest:?} accepted after the path in {input:?}"
    );
}

fn check_mailbox(m: &Mailbox, utf8: bool) {
    let text = m.to_string();
    assert_eq!(Mailbox::parse(&text, utf8), Ok(m.clone()), "{text:?}");
    if !utf8 {
        assert!(!m.is_utf8(), "{text:?} accepted without UTF-8");
    }
    let _ = m.local_unquoted();
    let _ = m.domain();
}

/// Inputs up to this size are also fed byte by byte; longer ones only in pseudo-random pieces
/// (of 0 to 16 bytes, with the odd larger one), which keeps the targets fast on large inputs.
const BYTEWISE_MAX: usize = 1024;

/// What [`ReplyParser`] made of a byte stream.
#[derive(Debug, PartialEq, Eq)]
struct ParsedReplies {
    replies: Vec<Reply>,
    error: Option<ReplyError>,
    partial: bool,
}

fn parse_replies<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> ParsedReplies {
    let mut p = ReplyParser::new();
    let mut replies = Vec::new();
    for piece in pieces {
        let mut rest = piece;
        while !rest.is_empty() {
            match p.feed(rest) {
                Ok((reply, used)) => {
                    assert!(used > 0, "ReplyParser::feed made no progress on {rest:?}");
                    assert!(used <= rest.len());
                    assert!(
                        reply.is_some() || used == rest.len(),
                        "feed stopped early without a reply"
                    );
                    replies.extend(reply);
                    rest = &rest[used..];
                }
                Err(error) => {
                    return ParsedReplies {
                        replies,
                        error: Some(error),
                        partial: p.is_partial(),
                    };
                }
            }
        }
    }
    ParsedReplies {
        replies,
        error: None,
        partial: p.is_partial(),
    }
}

/// Fuzz target body; also replayed by the corpus test.
///
/// The input is a stream of server replies. Properties: no panic, and every call to
/// [`ReplyParser::feed`] makes progress; the replies (and the first error) are the same whether
/// the stream is fed at once, byte by byte (up to 1 KiB) or in pseudo-random pieces; [`Reply::parse`] agrees
/// with the stream parser; every reply has a code in 200..=599 and formats (with
/// [`Reply::write_to`]) to bytes that parse back to an equal reply, unless formatting made a
/// line longer than [`MAX_REPLY_LINE`] (it writes the enhanced code on every line).
pub fn reply(data: &[u8]) {
    let whole = parse_replies([data]);
    if data.len() <= BYTEWISE_MAX {
        let bytewise = parse_replies(data.chunks(1));
        assert_eq!(whole, bytewise, "byte-by-byte feeding differs");
    }
    let pieces = Splitter::new(data, 1).pieces(data);
    let split = parse_replies(pieces.iter().copied());
    assert_eq!(whole, split, "split feeding differs ({pieces:?})");

    let single = whole.replies.len() == 1 && whole.error.is_none() && !whole.partial;
    match Reply::parse(data) {
        Ok(r) => assert!(single && whole.replies[0] == r, "{r:?} vs {whole:?}"),
        Err(e) => assert!(!single, "Reply::parse failed ({e}) on a single reply"),
    }

    for r in &whole.replies {
        assert!((200..600).contains(&r.code), "code {} accepted", r.code);
        let bytes = r.to_bytes();
        let _ = r.to_string();
        let fits = bytes
            .split(|&b| b == b'\n')
            .all(|l| l.len() <= MAX_REPLY_LINE);
        if fits {
            assert_eq!(
                Reply::parse(&bytes).as_ref(),
                Ok(r),
                "{r:?} formats as {:?}",
                String::from_utf8_lossy(&bytes)
            );
        }
    }
}

/// Longest lines given to the decoder: RFC 5321's, none, and a tiny one so that the long-line
/// flag is exercised.
const MAX_LINES: [usize; 3] = [998, 0, 4];

/// What decoding a whole stream gave.
#[derive(Debug, PartialEq, Eq)]
struct DecodeResult {
    content: Vec<u8>,
    flags: DataFlags,
    consumed: usize,
    complete: bool,
}

fn decode_pieces<'a>(max_line: usize, pieces: impl IntoIterator<Item = &'a [u8]>) -> DecodeResult {
    let mut d = DataDecoder::new(max_line);
    let mut content = Vec::new();
    let mut consumed = 0;
    for piece in pieces {
        let before = d.is_complete();
        let Decoded {
            consumed: used,
            complete,
        } = d.decode(piece, &mut content);
        assert!(used <= piece.len());
        assert_eq!(complete, d.is_complete());
        if before {
            assert_eq!(used, 0, "input consumed after the end of data");
        } else if !complete {
            assert_eq!(used, piece.len(), "input left over before the end of data");
        }
        consumed += used;
    }
    DecodeResult {
        content,
        flags: d.flags(),
        consumed,
        complete: d.is_complete(),
    }
}

/// The length of a line as RFC 5321 section 4.5.3.1.6 limits it: "not counting the leading
/// dot duplicated for transparency" (a lone `.` is content, and counts).
fn unstuffed_len(line: &[u8]) -> usize {
    match line {
        [b'.', rest @ ..] if !rest.is_empty() => rest.len(),
        _ => line.len(),
    }
}

/// An independent model of [`DataDecoder`], written from RFC 5321 section 4.5.2 and the
/// decoder's documented choices rather than from its code.
///
/// - The data ends at the first `.<CRLF>` that starts the stream or follows a real CRLF, that
///   is at the first `<CRLF>.<CRLF>` (or a leading `.<CRLF>`).
/// - Lines before it end in CRLF, a bare CR or a bare LF (the bare ones are flagged); each is
///   emitted with CRLF. A leading dot is removed, except from a line that is a lone dot (the
///   end-of-data marker sent with bare line breaks, kept so that it is seen).
/// - A line longer than `max_line` (neither a stuffed dot nor the terminator counted) is
///   flagged.
/// - When the data is incomplete, a final CR (its LF may follow) and a final lone dot are
///   withheld.
fn reference_decode(wire: &[u8], max_line: usize) -> DecodeResult {
    let max_line = if max_line == 0 { usize::MAX } else { max_line };
    let end = if wire.starts_with(b".\r\n") {
        Some(0)
    } else {
        wire.windows(5)
            .position(|w| w == b"\r\n.\r\n")
            .map(|i| i + 2)
    };
    let body = &wire[..end.unwrap_or(wire.len())];
    let mut r = DecodeResult {
        content: Vec::new(),
        flags: DataFlags::default(),
        consumed: end.map_or(wire.len(), |e| e + 3),
        complete: end.is_some(),
    };
    let mut start = 0;
    let mut i = 0;
    while i < body.len() {
        let terminator = match body[i] {
            b'\r' if body.get(i + 1) == Some(&b'\n') => 2,
            b'\r' if i + 1 == body.len() && end.is_none() => break, // withheld
            b'\r' => {
                r.flags.bare_cr = true;
                1
            }
            b'\n' => {
                r.flags.bare_lf = true;
                1
            }
            _ => {
                i += 1;
                continue;
            }
        };
        let line = &body[start..i];
        if unstuffed_len(line) > max_line {
            r.flags.long_line = true;
        }
        match line {
            b"." => r.content.extend_from_slice(b"."),
            [b'.', rest @ ..] => r.content.extend_from_slice(rest),
            _ => r.content.extend_from_slice(line),
        }
        r.content.extend_from_slice(b"\r\n");
        i += terminator;
        start = i;
    }
    // An unterminated last line (only when the data is incomplete).
    let tail = &body[start..i.min(body.len())];
    if unstuffed_len(tail) > max_line {
        r.flags.long_line = true;
    }
    match tail {
        b"." => {}
        [b'.', rest @ ..] => r.content.extend_from_slice(rest),
        _ => r.content.extend_from_slice(tail),
    }
    r
}

/// Fuzz target body; also replayed by the corpus test.
///
/// The input is a DATA stream as a client sends it after 354. It is decoded with line limits
/// of 998, none and 4 octets. Properties: no panic; decoding in one call, byte by byte (up to
/// 1 KiB) and in pseudo-random pieces gives the same content, flags, bytes consumed and completion; input is
/// consumed up to the end of data and not beyond; the result equals an independent reference
/// model of RFC 5321 transparency (see the source); the data is complete only at
/// `<CRLF>.<CRLF>` (or a leading `.<CRLF>`), never at a smuggling form such as `<LF>.<LF>`;
/// the content never contains a bare CR or bare LF.
pub fn dot_unstuff(data: &[u8]) {
    for max_line in MAX_LINES {
        let whole = decode_pieces(max_line, [data]);
        assert!(
            crlf_only(&whole.content),
            "bare CR or LF in decoded content {:?}",
            String::from_utf8_lossy(&whole.content)
        );
        if whole.complete {
            let marked = &data[..whole.consumed];
            assert!(
                marked == b".\r\n" || marked.ends_with(b"\r\n.\r\n"),
                "data ended without <CRLF>.<CRLF>: {:?}",
                String::from_utf8_lossy(marked)
            );
        }
        if data.len() <= BYTEWISE_MAX {
            let bytewise = decode_pieces(max_line, data.chunks(1));
            assert_eq!(whole, bytewise, "byte-by-byte decoding differs");
        }
        let mut splitter = Splitter::new(data, max_line as u64);
        let pieces = splitter.pieces(data);
        let split = decode_pieces(max_line, pieces.iter().copied());
        assert_eq!(whole, split, "split decoding differs ({pieces:?})");
        let model = reference_decode(data, max_line);
        assert_eq!(whole, model, "decoder differs from the reference model");
    }
}

/// Fuzz target body; also replayed by the corpus test.
///
/// The input is message content. It is dot-stuffed at once and in pseudo-random pieces, then
/// decoded. Properties: no panic; piecewise stuffing gives the same wire bytes as
/// [`stuff`]; the wire bytes hold only CRLF line endings and end with `<CRLF>.<CRLF>` (or are
/// just `.<CRLF>`); decoding consumes them exactly, completes, flags nothing, and gives back
/// the content with its line endings normalised (and a final CRLF added if it lacked one).
pub fn dot_roundtrip(data: &[u8]) {
    let wire = stuff(data);
    let mut s = DotStuffer::new();
    let mut piecewise = Vec::new();
    let pieces = Splitter::new(data, 2).pieces(data);
    for piece in &pieces {
        s.encode(piece, &mut piecewise);
    }
    s.finish(&mut piecewise);
    assert_eq!(wire, piecewise, "piecewise stuffing differs ({pieces:?})");
    assert!(crlf_only(&wire), "bare CR or LF on the wire");
    assert!(wire == b".\r\n" || wire.ends_with(b"\r\n.\r\n"));

    let mut expected = normalize_line_endings(data);
    if !expected.is_empty() && !expected.ends_with(b"\r\n") {
        expected.extend_from_slice(b"\r\n");
    }
    let decoded = decode_pieces(0, [&wire[..]]);
    assert_eq!(
        decoded,
        DecodeResult {
            content: expected,
            flags: DataFlags::default(),
            consumed: wire.len(),
            complete: true,
        },
        "stuff-then-decode is not the identity"
    );
    let wire_pieces = Splitter::new(&wire, 3).pieces(&wire);
    let split = decode_pieces(0, wire_pieces.iter().copied());
    assert_eq!(decoded, split);
    // The content seen as the wire of another message must never end it early.
    assert!(count(&wire, b"\r\n.\r\n") <= 1);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The model limits lines as RFC 5321 section 4.5.3.1.6 does, the stuffed dot not counted,
    /// like the decoder.
    #[test]
    fn the_reference_model_does_not_count_a_stuffed_dot() {
        assert!(!reference_decode(b".abcd\r\n.\r\n", 4).flags.long_line);
        assert!(!reference_decode(b".\xff\xff\0\0", 4).flags.long_line);
        assert!(reference_decode(b"abcde\r\n.\r\n", 4).flags.long_line);
        assert!(reference_decode(b"..abcd\r\n.\r\n", 4).flags.long_line);
        // A line of its own dot only is content, one octet long.
        assert!(!reference_decode(b"x\n.\n", 1).flags.long_line);
        for wire in [
            &b".abcd\r\n.\r\n"[..],
            b"\r\na\r.\0\0\x08\x0b\n",
            b"..abcd\r\n",
        ] {
            dot_unstuff(wire);
        }
    }
}
