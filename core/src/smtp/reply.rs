//! SMTP replies: three-digit codes, RFC 3463 enhanced status codes, single and multi-line
//! text, a formatter for the server side and an incremental parser for the client side.

use std::borrow::Cow;
use std::fmt;

use thiserror::Error;

/// An RFC 3463 enhanced status code, `class.subject.detail` (for example `5.1.1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, arbitrary::Arbitrary)]
pub struct EnhancedCode {
    /// 2 (success), 4 (persistent transient failure) or 5 (permanent failure).
    pub class: u8,
    /// The subject: 0..=999 (in practice 0..=7).
    pub subject: u16,
    /// The detail: 0..=999.
    pub detail: u16,
}

impl EnhancedCode {
    /// An enhanced code from its three parts.
    #[must_use]
    pub const fn new(class: u8, subject: u16, detail: u16) -> EnhancedCode {
        EnhancedCode {
            class,
            subject,
            detail,
        }
    }

    /// Parses `class.subject.detail` at the start of `text`; returns the code and the number of
    /// bytes it occupies. The code must be followed by a space or the end of the text.
    #[must_use]
    pub fn parse_prefix(text: &str) -> Option<(EnhancedCode, usize)> {
        let bytes = text.as_bytes();
        let class = *bytes.first()?;
        if !matches!(class, b'2' | b'4' | b'5') || bytes.get(1) != Some(&b'.') {
            return None;
        }
        let (subject, n1) = parse_number(&bytes[2..])?;
        let at = 2 + n1;
        if bytes.get(at) != Some(&b'.') {
            return None;
        }
        let (detail, n2) = parse_number(&bytes[at + 1..])?;
        let end = at + 1 + n2;
        if end < bytes.len() && bytes[end] != b' ' {
            return None;
        }
        Some((EnhancedCode::new(class - b'0', subject, detail), end))
    }
}

/// One to three decimal digits (RFC 3463 allows up to three for subject and detail).
fn parse_number(bytes: &[u8]) -> Option<(u16, usize)> {
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 3 || (digits > 1 && bytes[0] == b'0') {
        return None;
    }
    let mut value = 0u16;
    for &b in &bytes[..digits] {
        value = value * 10 + u16::from(b - b'0');
    }
    Some((value, digits))
}

impl fmt::Display for EnhancedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// An SMTP reply: a code, an optional enhanced status code and one or more lines of text.
///
/// The text of a multi-line reply is kept as one string with the lines separated by `\n`, so
/// that the fixed replies of the server machine cost no allocation. When an enhanced code is
/// present it is written at the start of every line, as RFC 2034 requires.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reply {
    /// The three-digit reply code, 200..=599.
    pub code: u16,
    /// The enhanced status code, written after the reply code on every line.
    pub enhanced: Option<EnhancedCode>,
    /// The text, lines separated by `\n`; may be empty.
    pub text: Cow<'static, str>,
}

impl Reply {
    /// A reply with an enhanced status code.
    #[must_use]
    pub fn new(code: u16, enhanced: EnhancedCode, text: impl Into<Cow<'static, str>>) -> Reply {
        Reply {
            code,
            enhanced: Some(enhanced),
            text: text.into(),
        }
    }

    /// A reply without an enhanced status code (greetings, EHLO and HELO replies).
    #[must_use]
    pub fn plain(code: u16, text: impl Into<Cow<'static, str>>) -> Reply {
        Reply {
            code,
            enhanced: None,
            text: text.into(),
        }
    }

    /// A fixed reply, usable in `const` context.
    #[must_use]
    pub const fn fixed(code: u16, enhanced: EnhancedCode, text: &'static str) -> Reply {
        Reply {
            code,
            enhanced: Some(enhanced),
            text: Cow::Borrowed(text),
        }
    }

    /// A fixed reply without an enhanced status code, usable in `const` context.
    #[must_use]
    pub const fn fixed_plain(code: u16, text: &'static str) -> Reply {
        Reply {
            code,
            enhanced: None,
            text: Cow::Borrowed(text),
        }
    }

    /// 2xx: the command succeeded.
    #[must_use]
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// 3xx: the server waits for more input (354, 334).
    #[must_use]
    pub fn is_intermediate(&self) -> bool {
        (300..400).contains(&self.code)
    }

    /// 4xx: a temporary failure; the command may succeed later.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// 5xx: a permanent failure.
    #[must_use]
    pub fn is_permanent(&self) -> bool {
        (500..600).contains(&self.code)
    }

    /// The lines of text.
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.text.split('\n')
    }

    /// Appends the wire form (every line terminated by CRLF) to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let mut code = [0u8; 3];
        let mut c = self.code.min(999);
        for slot in code.iter_mut().rev() {
            *slot = b'0' + (c % 10) as u8;
            c /= 10;
        }
        let mut lines = self.text.split('\n').peekable();
        while let Some(line) = lines.next() {
            out.extend_from_slice(&code);
            out.push(if lines.peek().is_some() { b'-' } else { b' ' });
            if let Some(enh) = self.enhanced {
                write_enhanced(enh, out);
                if !line.is_empty() {
                    out.push(b' ');
                }
            }
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }

    /// The wire form as a byte vector.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.text.len() + 16);
        self.write_to(&mut out);
        out
    }

    /// Parses a complete reply (one or more CRLF-terminated lines, nothing after the last).
    pub fn parse(bytes: &[u8]) -> Result<Reply, ReplyError> {
        match ReplyParser::new().feed(bytes)? {
            (Some(reply), used) if used == bytes.len() => Ok(reply),
            (Some(_), _) => Err(ReplyError::Trailing),
            (None, _) => Err(ReplyError::Incomplete),
        }
    }
}

fn write_enhanced(enh: EnhancedCode, out: &mut Vec<u8>) {
    out.push(b'0' + enh.class.min(9));
    out.push(b'.');
    write_u16(enh.subject, out);
    out.push(b'.');
    write_u16(enh.detail, out);
}

fn write_u16(mut v: u16, out: &mut Vec<u8>) {
    let mut buf = [0u8; 5];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

impl fmt::Display for Reply {
    /// The reply as it appears on the wire, lines separated by `\n` and without the final CRLF;
    /// meant for logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut lines = self.text.split('\n').peekable();
        while let Some(line) = lines.next() {
            if !first {
                f.write_str("\n")?;
            }
            first = false;
            let sep = if lines.peek().is_some() { '-' } else { ' ' };
            write!(f, "{:03}{sep}", self.code)?;
            if let Some(enh) = self.enhanced {
                write!(f, "{enh}")?;
                if !line.is_empty() {
                    f.write_str(" ")?;
                }
            }
            f.write_str(line)?;
        }
        Ok(())
    }
}

/// Why a reply could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// A line does not start with three digits followed by a space, a hyphen or the line end.
    #[error("malformed reply line: {0:?}")]
    Malformed(String),
    /// The code is outside 200..=599.
    #[error("reply code {0} out of range")]
    CodeOutOfRange(u16),
    /// A continuation line carries a different code than the first line.
    #[error("reply code changed within a multi-line reply ({first} then {later})")]
    CodeMismatch {
        /// The code of the first line.
        first: u16,
        /// The differing code.
        later: u16,
    },
    /// A line is longer than the parser accepts.
    #[error("reply line longer than {0} octets")]
    TooLong(usize),
    /// A multi-line reply has more lines than the parser accepts.
    #[error("reply has more than {0} lines")]
    TooManyLines(usize),
    /// The input ended inside a reply.
    #[error("reply incomplete")]
    Incomplete,
    /// Bytes follow the end of the reply.
    #[error("bytes after the end of the reply")]
    Trailing,
}

/// Incremental parser of replies, for the client side: feed it bytes as they arrive; it
/// returns a reply when its last line is complete.
///
/// Lines may end in CRLF or, tolerating broken servers, a bare LF. A trailing CR is removed.
#[derive(Debug, Default)]
pub struct ReplyParser {
    line: Vec<u8>,
    code: Option<u16>,
    enhanced: Option<EnhancedCode>,
    text: String,
    lines: usize,
}

/// Longest reply line the client accepts (RFC 5321 asks for 512; real servers send longer).
pub const MAX_REPLY_LINE: usize = 4096;
/// Most lines a reply may have (EHLO replies of real servers have about 20).
pub const MAX_REPLY_LINES: usize = 256;

impl ReplyParser {
    /// A parser waiting for the first line of a reply.
    #[must_use]
    pub fn new() -> ReplyParser {
        ReplyParser::default()
    }

    /// True when part of a reply has been read but not its last line.
    #[must_use]
    pub fn is_partial(&self) -> bool {
        !self.line.is_empty() || self.code.is_some()
    }

    /// Feeds bytes; returns a completed reply (if one ended within `input`) and the number of
    /// bytes consumed. Bytes after a completed reply are not consumed: call again with them.
    pub fn feed(&mut self, input: &[u8]) -> Result<(Option<Reply>, usize), ReplyError> {
        let mut used = 0;
        while used < input.len() {
            let rest = &input[used..];
            let Some(nl) = memchr::memchr(b'\n', rest) else {
                self.line.extend_from_slice(rest);
                if self.line.len() > MAX_REPLY_LINE {
                    return Err(ReplyError::TooLong(MAX_REPLY_LINE));
                }
                return Ok((None, input.len()));
            };
            self.line.extend_from_slice(&rest[..nl]);
            used += nl + 1;
            if self.line.len() > MAX_REPLY_LINE {
                return Err(ReplyError::TooLong(MAX_REPLY_LINE));
            }
            if self.line.last() == Some(&b'\r') {
                self.line.pop();
            }
            let line = std::mem::take(&mut self.line);
            if let Some(reply) = self.take_line(&line)? {
                return Ok((Some(reply), used));
            }
        }
        Ok((None, used))
    }

    fn take_line(&mut self, line: &[u8]) -> Result<Option<Reply>, ReplyError> {
        let malformed = || ReplyError::Malformed(String::from_utf8_lossy(line).into_owned());
        if line.len() < 3 || !line[..3].iter().all(u8::is_ascii_digit) {
            return Err(malformed());
        }
        let code = u16::from(line[0] - b'0') * 100
            + u16::from(line[1] - b'0') * 10
            + u16::from(line[2] - b'0');
        if !(200..600).contains(&code) {
            return Err(ReplyError::CodeOutOfRange(code));
        }
        let last = match line.get(3) {
            None | Some(b' ') => true,
            Some(b'-') => false,
            Some(_) => return Err(malformed()),
        };
        let raw = String::from_utf8_lossy(line.get(4..).unwrap_or_default());
        match self.code {
            None => {
                self.code = Some(code);
                self.enhanced = None;
                // Only a code whose class matches the reply's first digit is an enhanced code;
                // anything else is ordinary text (RFC 3463 section 2).
                if let Some((enh, len)) = EnhancedCode::parse_prefix(&raw)
                    && u16::from(enh.class) == code / 100
                {
                    self.enhanced = Some(enh);
                    self.text
                        .push_str(raw[len..].strip_prefix(' ').unwrap_or(&raw[len..]));
                } else {
                    self.text.push_str(&raw);
                }
            }
            Some(first) if first != code => {
                self.reset();
                return Err(ReplyError::CodeMismatch { first, later: code });
            }
            Some(_) => {
                self.text.push('\n');
                let mut body: &str = &raw;
                if let Some(enh) = self.enhanced
                    && let Some((e, len)) = EnhancedCode::parse_prefix(body)
                    && e == enh
                {
                    body = body[len..].strip_prefix(' ').unwrap_or(&body[len..]);
                }
                self.text.push_str(body);
            }
        }
        self.lines += 1;
        if self.lines > MAX_REPLY_LINES {
            self.reset();
            return Err(ReplyError::TooManyLines(MAX_REPLY_LINES));
        }
        if !last {
            return Ok(None);
        }
        let reply = Reply {
            code,
            enhanced: self.enhanced,
            text: Cow::Owned(std::mem::take(&mut self.text)),
        };
        self.reset();
        Ok(Some(reply))
    }

    fn reset(&mut self) {
        self.code = None;
        self.enhanced = None;
        self.text.clear();
        self.lines = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_single_and_multi_line() {
        let r = Reply::new(250, EnhancedCode::new(2, 0, 0), "Ok");
        assert_eq!(r.to_bytes(), b"250 2.0.0 Ok\r\n");
        let r = Reply::plain(250, "mx Hello\n8BITMIME\nHELP");
        assert_eq!(
            r.to_bytes(),
            b"250-mx Hello\r\n250-8BITMIME\r\n250 HELP\r\n"
        );
        let r = Reply::new(550, EnhancedCode::new(5, 1, 1), "no\nsuch user");
        assert_eq!(r.to_bytes(), b"550-5.1.1 no\r\n550 5.1.1 such user\r\n");
        let r = Reply::new(250, EnhancedCode::new(2, 0, 0), "");
        assert_eq!(r.to_bytes(), b"250 2.0.0\r\n");
        assert_eq!(r.to_string(), "250 2.0.0");
    }

    #[test]
    fn parses_enhanced_code_only_when_class_matches() {
        let r = Reply::parse(b"550 5.1.1 No such user\r\n").unwrap();
        assert_eq!(r.enhanced, Some(EnhancedCode::new(5, 1, 1)));
        assert_eq!(r.text, "No such user");
        let r = Reply::parse(b"550 2.1.1 odd\r\n").unwrap();
        assert_eq!(r.enhanced, None);
        assert_eq!(r.text, "2.1.1 odd");
        let r = Reply::parse(b"250 1.2.3.4 is an address\r\n").unwrap();
        assert_eq!(r.enhanced, None);
    }

    #[test]
    fn parses_multiline_and_tolerates_bare_lf() {
        let r = Reply::parse(b"250-mx.example Hello\n250-PIPELINING\r\n250 SIZE 100\r\n").unwrap();
        assert_eq!(r.code, 250);
        assert_eq!(
            r.lines().collect::<Vec<_>>(),
            ["mx.example Hello", "PIPELINING", "SIZE 100"]
        );
        let r = Reply::parse(b"220\r\n").unwrap();
        assert_eq!((r.code, r.text.as_ref()), (220, ""));
    }

    #[test]
    fn rejects_malformed_replies() {
        assert!(matches!(
            Reply::parse(b"25 ok\r\n"),
            Err(ReplyError::Malformed(_))
        ));
        assert!(matches!(
            Reply::parse(b"250xok\r\n"),
            Err(ReplyError::Malformed(_))
        ));
        assert!(matches!(
            Reply::parse(b"199 ok\r\n"),
            Err(ReplyError::CodeOutOfRange(199))
        ));
        assert!(matches!(
            Reply::parse(b"250-a\r\n251 b\r\n"),
            Err(ReplyError::CodeMismatch {
                first: 250,
                later: 251
            })
        ));
        assert_eq!(Reply::parse(b"250-a\r\n"), Err(ReplyError::Incomplete));
        assert_eq!(
            Reply::parse(b"250 a\r\n250 b\r\n"),
            Err(ReplyError::Trailing)
        );
    }

    #[test]
    fn incremental_feed_across_chunks() {
        let wire = b"250-first\r\n250 2.0.0 second\r\n354 go\r\n";
        for split in 0..wire.len() {
            let mut p = ReplyParser::new();
            let mut replies = Vec::new();
            for chunk in [&wire[..split], &wire[split..]] {
                let mut rest = chunk;
                while !rest.is_empty() {
                    let (reply, used) = p.feed(rest).unwrap();
                    replies.extend(reply);
                    rest = &rest[used..];
                }
            }
            assert_eq!(replies.len(), 2, "split at {split}");
            assert_eq!(replies[0].text, "first\n2.0.0 second");
            assert_eq!(replies[1].code, 354);
        }
    }
}
