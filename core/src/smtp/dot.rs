//! Data transparency (RFC 5321 section 4.5.2) as streaming codecs that are correct across any
//! chunk boundary.
//!
//! [`DataDecoder`] reads the DATA stream of a server: it removes stuffed dots, finds the end of
//! data and reports line-ending violations. Only `<CRLF>.<CRLF>` ends the data: bare CR and
//! bare LF are normalised to CRLF *inside* the content and recorded, but a line break made of
//! them can never start or finish the end-of-data marker, so none of the SMTP smuggling forms
//! (`\n.\n`, `\n.\r\n`, `\r.\r\n`, `\r\n.\r` …) ends a message.
//!
//! [`DotStuffer`] writes the DATA stream of a client: it emits every line with CRLF (bare CR and
//! bare LF become CRLF, so a relayed message never carries the ambiguity on), doubles leading
//! dots and appends the end-of-data marker.

use std::sync::LazyLock;

use memchr::{memchr2, memmem};

/// Line-ending and length violations seen in a DATA stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DataFlags {
    /// A LF not preceded by CR.
    pub bare_lf: bool,
    /// A CR not followed by LF.
    pub bare_cr: bool,
    /// A line longer than the text-line limit.
    pub long_line: bool,
}

impl DataFlags {
    /// True when a line ending was not CRLF.
    #[must_use]
    pub fn bare_newline(&self) -> bool {
        self.bare_lf || self.bare_cr
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// At the start of a line. `hard` when the previous line ended in a real CRLF (or this is
    /// the first line): only then can a `.` begin the end-of-data marker.
    LineStart { hard: bool },
    /// Inside a line.
    Text,
    /// A CR was read inside a line; its LF may be in the next chunk.
    Cr,
    /// A `.` was read at the start of a line.
    Dot { hard: bool },
    /// `.` then CR at the start of a line.
    DotCr { hard: bool },
    /// The end-of-data marker has been read.
    Done,
}

/// What one call to [`DataDecoder::decode`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// Input bytes used. Less than the input only when the end of data was reached: the rest
    /// belongs to whatever follows (pipelined commands).
    pub consumed: usize,
    /// The end-of-data marker has been read.
    pub complete: bool,
}

/// Streaming decoder of the DATA stream (server side). See the module documentation.
#[derive(Clone, Debug)]
pub struct DataDecoder {
    state: State,
    line_len: usize,
    max_line: usize,
    flags: DataFlags,
}

impl DataDecoder {
    /// A decoder for a new message. `max_line` is the longest line accepted in octets, CRLF
    /// excluded (998 for RFC 5321's 1000-octet text lines); `0` means no limit.
    #[must_use]
    pub fn new(max_line: usize) -> DataDecoder {
        DataDecoder {
            state: State::LineStart { hard: true },
            line_len: 0,
            max_line: if max_line == 0 { usize::MAX } else { max_line },
            flags: DataFlags::default(),
        }
    }

    /// Violations seen so far.
    #[must_use]
    pub fn flags(&self) -> DataFlags {
        self.flags
    }

    /// True once the end-of-data marker has been read.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes `input`, appending message content (CRLF line endings, dots unstuffed) to `out`.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Decoded {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                State::Done => break,
                State::LineStart { hard } => {
                    if b == b'.' {
                        self.line_len = 1;
                        self.state = State::Dot { hard };
                        i += 1;
                    } else {
                        self.state = State::Text;
                    }
                }
                State::Dot { hard } => match b {
                    b'\r' => {
                        self.state = State::DotCr { hard };
                        i += 1;
                    }
                    b'\n' => {
                        // A lone "." ended by a bare LF is content, never the end of data.
                        self.flags.bare_lf = true;
                        out.extend_from_slice(b".\r\n");
                        self.end_line(State::LineStart { hard: false });
                        i += 1;
                    }
                    _ => {
                        // A stuffed dot: drop it, the rest of the line is text. It does not
                        // count towards the line length (RFC 5321 section 4.5.3.1.6).
                        if i == 0 && crate::bugs::active(crate::bugs::Bug::DotUnstuffChunkBoundary)
                        {
                            out.push(b'.');
                        }
                        self.line_len = 0;
                        self.state = State::Text;
                    }
                },
                State::DotCr { hard } => {
                    if b == b'\n' {
                        i += 1;
                        if hard {
                            self.state = State::Done;
                            return Decoded {
                                consumed: i,
                                complete: true,
                            };
                        }
                        // "." after a bare line break: content, never the end of data.
                        out.extend_from_slice(b".\r\n");
                        self.end_line(State::LineStart { hard: true });
                    } else {
                        self.flags.bare_cr = true;
                        out.extend_from_slice(b".\r\n");
                        self.end_line(State::LineStart { hard: false });
                    }
                }
                State::Cr => {
                    if b == b'\n' {
                        out.extend_from_slice(b"\r\n");
                        self.end_line(State::LineStart { hard: true });
                        i += 1;
                    } else {
                        self.flags.bare_cr = true;
                        out.extend_from_slice(b"\r\n");
                        self.end_line(State::LineStart { hard: false });
                    }
                }
                State::Text => i = self.text(input, i, out),
            }
        }
        Decoded {
            consumed: i,
            complete: self.state == State::Done,
        }
    }

    /// The fast path: copies runs of ordinary lines in one go, stopping only where a line
    /// starts with a dot, a line ending is not CRLF, or the input ends.
    fn text(&mut self, input: &[u8], start: usize, out: &mut Vec<u8>) -> usize {
        let mut i = start;
        loop {
            let Some(off) = memchr2(b'\r', b'\n', &input[i..]) else {
                self.add_to_line(input.len() - i);
                out.extend_from_slice(&input[start..]);
                return input.len();
            };
            let pos = i + off;
            self.add_to_line(off);
            if input[pos] == b'\n' {
                self.flags.bare_lf = true;
                out.extend_from_slice(&input[start..pos]);
                out.extend_from_slice(b"\r\n");
                self.end_line(State::LineStart { hard: false });
                return pos + 1;
            }
            match input.get(pos + 1) {
                Some(b'\n') => {
                    self.line_len = 0;
                    match input.get(pos + 2) {
                        Some(b'.') | None => {
                            out.extend_from_slice(&input[start..pos + 2]);
                            self.state = State::LineStart { hard: true };
                            return pos + 2;
                        }
                        Some(_) if self.max_line < BLOCK_MIN_LINE => i = pos + 2,
                        Some(_) => {
                            // At the start of an ordinary line: skip the run of clean lines
                            // that follows a block at a time.
                            i = clean_lines(input, pos + 2);
                            if matches!(input.get(i), Some(b'.') | None) {
                                out.extend_from_slice(&input[start..i]);
                                self.state = State::LineStart { hard: true };
                                return i;
                            }
                        }
                    }
                }
                _ => {
                    out.extend_from_slice(&input[start..pos]);
                    self.state = State::Cr;
                    return pos + 1;
                }
            }
        }
    }

    fn add_to_line(&mut self, n: usize) {
        self.line_len += n;
        if self.line_len > self.max_line {
            self.flags.long_line = true;
        }
    }

    fn end_line(&mut self, next: State) {
        self.line_len = 0;
        self.state = next;
    }
}

/// Octets in which [`clean_lines`] requires a line end. With one in every block, no line in a
/// run is longer than `2 * BLOCK - 3` octets; the block path is used only when the line limit
/// is at least that.
const BLOCK: usize = 480;
/// The smallest line limit the block path serves (see [`BLOCK`]).
const BLOCK_MIN_LINE: usize = 2 * BLOCK - 3;

/// End of the run of clean lines starting at `start`, the first byte of an ordinary line:
/// complete lines, each ended by CRLF, with no other CR or LF, none of them dot-led (after the
/// first) and none too long, so that they can be copied as they are. Returns `start` when the
/// run is empty; otherwise the run ends right after a CRLF, and the byte there (if any) starts
/// a line that needs the exact path: a dot-led line, a line with a bare CR or LF, a long one,
/// or the last lines of the input.
///
/// Instead of looking for every line end (one `memchr2` call per line, 70% of the time
/// before), it finds the next dot-led line once (`memmem`, which uses the widest vector
/// instructions the CPU has), checks every byte pair before it at once with a loop the
/// compiler vectorises (every CR must be followed by a LF and every LF preceded by a CR), and
/// bounds the line length by finding a LF in every [`BLOCK`] octets.
fn clean_lines(input: &[u8], start: usize) -> usize {
    // The pairs checked start with the first byte of the run: a LF there, right after the
    // previous line's CRLF, is a bare LF.
    if input.get(start) == Some(&b'\n') {
        return start;
    }
    // The run stops at the next dot-led line (`end` is its start), or at the last complete
    // line of the input.
    let mut end = match DOT_LINE.find(&input[start..]) {
        Some(p) => start + p + 1,
        None => last_line_end(input, start, input.len()),
    };
    if has_bare_pair(&input[start..end]) {
        // The run ends with the last complete line before the first bare CR or LF.
        let k = first_bare_pair(&input[start..end]).unwrap_or(0);
        end = last_line_end(input, start, start + k + 1);
    }
    // Every block holds a LF, or a line in it may be too long: the exact path measures it.
    let mut at = start;
    while at + BLOCK < end {
        if memchr::memchr(b'\n', &input[at..at + BLOCK]).is_none() {
            return last_line_end(input, start, at);
        }
        at += BLOCK;
    }
    end
}

/// Finds a dot-led line; built once, as building a searcher costs more than a short search.
static DOT_LINE: LazyLock<memmem::Finder<'static>> = LazyLock::new(|| memmem::Finder::new(b"\n."));

/// The end of the last line ended by a LF in `input[start..end]`, or `start`.
fn last_line_end(input: &[u8], start: usize, end: usize) -> usize {
    memchr::memrchr(b'\n', &input[start..end]).map_or(start, |lf| start + lf + 1)
}

/// Lanes of the SIMD-friendly loop: one 32-byte chunk of pairs at a time.
const LANES: usize = 64;

/// Whether one of the byte pairs `(bytes[k], bytes[k + 1])` is bare (see [`bare_pair`]).
/// Written as a branch-free loop over fixed-size chunks with one accumulator per lane, which
/// the compiler turns into SIMD compares (sixteen pairs per instruction with SSE2).
#[inline]
fn has_bare_pair(bytes: &[u8]) -> bool {
    let pairs = bytes.len().saturating_sub(1);
    let chunks = pairs / LANES;
    let mut bare = [0u8; LANES];
    for c in 0..chunks {
        let at = c * LANES;
        let (Ok(a), Ok(b)) = (
            <&[u8; LANES]>::try_from(&bytes[at..at + LANES]),
            <&[u8; LANES]>::try_from(&bytes[at + 1..at + 1 + LANES]),
        ) else {
            continue;
        };
        for k in 0..LANES {
            bare[k] |= mask(bare_pair(a[k], b[k]));
        }
    }
    bare.iter().any(|&m| m != 0)
        || bytes[chunks * LANES..]
            .windows(2)
            .any(|pair| bare_pair(pair[0], pair[1]))
}

/// Index `k` of the first bare pair `(bytes[k], bytes[k + 1])`, if any.
fn first_bare_pair(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(2)
        .position(|pair| bare_pair(pair[0], pair[1]))
}

/// A byte pair that breaks a run of clean lines: a CR not followed by LF, or a LF not
/// preceded by CR.
#[inline]
fn bare_pair(x: u8, y: u8) -> bool {
    (x == b'\r') != (y == b'\n')
}

/// `0xff` for true: the form a SIMD compare gives, so that no masking is needed to combine.
#[inline]
fn mask(b: bool) -> u8 {
    0u8.wrapping_sub(u8::from(b))
}

/// Streaming line checker for content that arrives without dot-stuffing (BDAT chunks): it
/// normalises bare CR and bare LF to CRLF and records them, and flags over-long lines, so that
/// BDAT is held to the same line discipline as DATA.
#[derive(Clone, Debug)]
pub struct LineNormalizer {
    pending_cr: bool,
    line_len: usize,
    max_line: usize,
    flags: DataFlags,
}

impl LineNormalizer {
    /// A checker for a new message; `max_line` as for [`DataDecoder::new`].
    #[must_use]
    pub fn new(max_line: usize) -> LineNormalizer {
        LineNormalizer {
            pending_cr: false,
            line_len: 0,
            max_line: if max_line == 0 { usize::MAX } else { max_line },
            flags: DataFlags::default(),
        }
    }

    /// Violations seen so far.
    #[must_use]
    pub fn flags(&self) -> DataFlags {
        self.flags
    }

    /// Copies `input` to `out` with every line ending made CRLF.
    pub fn process(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut i = 0;
        if self.pending_cr && !input.is_empty() {
            self.pending_cr = false;
            out.extend_from_slice(b"\r\n");
            self.line_len = 0;
            if input[0] == b'\n' {
                i = 1;
            } else {
                self.flags.bare_cr = true;
            }
        }
        while i < input.len() {
            let rest = &input[i..];
            let Some(off) = memchr2(b'\r', b'\n', rest) else {
                self.add(rest.len());
                out.extend_from_slice(rest);
                return;
            };
            self.add(off);
            out.extend_from_slice(&rest[..off]);
            let pos = i + off;
            if input[pos] == b'\n' {
                self.flags.bare_lf = true;
                i = pos + 1;
            } else if pos + 1 == input.len() {
                self.pending_cr = true;
                return;
            } else if input[pos + 1] == b'\n' {
                i = pos + 2;
            } else {
                self.flags.bare_cr = true;
                i = pos + 1;
            }
            out.extend_from_slice(b"\r\n");
            self.line_len = 0;
        }
    }

    /// Ends the content: a CR left at the very end is a bare CR.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> DataFlags {
        if std::mem::take(&mut self.pending_cr) {
            self.flags.bare_cr = true;
            out.extend_from_slice(b"\r\n");
        }
        self.flags
    }

    fn add(&mut self, n: usize) {
        self.line_len += n;
        if self.line_len > self.max_line {
            self.flags.long_line = true;
        }
    }
}

/// Streaming encoder of the DATA stream (client side). See the module documentation.
#[derive(Clone, Debug)]
pub struct DotStuffer {
    at_line_start: bool,
    pending_cr: bool,
}

impl Default for DotStuffer {
    fn default() -> Self {
        DotStuffer::new()
    }
}

impl DotStuffer {
    /// An encoder for a new message.
    #[must_use]
    pub fn new() -> DotStuffer {
        DotStuffer {
            at_line_start: true,
            pending_cr: false,
        }
    }

    /// Encodes a piece of message content, appending wire bytes to `out`.
    pub fn encode(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut i = 0;
        if self.pending_cr && !input.is_empty() {
            self.pending_cr = false;
            out.extend_from_slice(b"\r\n");
            self.at_line_start = true;
            if input[0] == b'\n' {
                i = 1;
            }
        }
        while i < input.len() {
            if self.at_line_start && input[i] == b'.' {
                out.push(b'.');
            }
            self.at_line_start = false;
            let rest = &input[i..];
            let Some(off) = memchr2(b'\r', b'\n', rest) else {
                out.extend_from_slice(rest);
                return;
            };
            out.extend_from_slice(&rest[..off]);
            let pos = i + off;
            if input[pos] == b'\n' {
                out.extend_from_slice(b"\r\n");
                self.at_line_start = true;
                i = pos + 1;
            } else if pos + 1 == input.len() {
                // The LF, if any, arrives with the next piece.
                self.pending_cr = true;
                return;
            } else {
                out.extend_from_slice(b"\r\n");
                self.at_line_start = true;
                i = if input[pos + 1] == b'\n' {
                    pos + 2
                } else {
                    pos + 1
                };
            }
        }
    }

    /// Ends the message: completes the last line if needed and appends `.<CRLF>`.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.pending_cr || !self.at_line_start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
        *self = DotStuffer::new();
    }
}

/// Dot-stuffs a whole message and appends the end-of-data marker.
#[must_use]
pub fn stuff(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + content.len() / 64 + 8);
    let mut s = DotStuffer::new();
    s.encode(content, &mut out);
    s.finish(&mut out);
    out
}

/// Normalises line endings as both codecs do: every CRLF, bare CR and bare LF becomes CRLF.
#[must_use]
pub fn normalize_line_endings(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len());
    let mut i = 0;
    while i < content.len() {
        match content[i] {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                if content.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(wire: &[u8]) -> (Vec<u8>, Decoded, DataFlags) {
        let mut d = DataDecoder::new(998);
        let mut out = Vec::new();
        let r = d.decode(wire, &mut out);
        (out, r, d.flags())
    }

    #[test]
    fn unstuffs_and_finds_the_end() {
        let (out, r, flags) = decode_all(b"Subject: x\r\n\r\n..dot\r\n.\r\nQUIT\r\n");
        assert_eq!(out, b"Subject: x\r\n\r\n.dot\r\n");
        assert!(r.complete);
        assert_eq!(r.consumed, 24);
        assert_eq!(flags, DataFlags::default());
    }

    #[test]
    fn empty_message() {
        let (out, r, _) = decode_all(b".\r\n");
        assert!(out.is_empty());
        assert!(r.complete);
    }

    #[test]
    fn smuggling_forms_never_end_data() {
        for wire in [
            &b"a\n.\nMAIL FROM:<x@y>\r\n"[..],
            b"a\n.\r\nMAIL FROM:<x@y>\r\n",
            b"a\r.\r\nMAIL FROM:<x@y>\r\n",
            b"a\r\n.\rMAIL FROM:<x@y>\r\n",
            b"a\r\n.\nMAIL FROM:<x@y>\r\n",
            b"a\r.\rMAIL FROM:<x@y>\r\n",
        ] {
            let (out, r, flags) = decode_all(wire);
            assert!(!r.complete, "{wire:?} ended the data");
            assert!(flags.bare_newline(), "{wire:?} not flagged");
            assert_eq!(r.consumed, wire.len());
            assert!(
                out.windows(4).any(|w| w == b"MAIL"),
                "{wire:?}: content lost"
            );
        }
    }

    #[test]
    fn split_at_every_boundary() {
        let wire = b"l1\r\n..l2\r\n\r\n.\r\n";
        let expected = b"l1\r\n.l2\r\n\r\n";
        for split in 0..=wire.len() {
            let mut d = DataDecoder::new(998);
            let mut out = Vec::new();
            let a = d.decode(&wire[..split], &mut out);
            assert_eq!(a.consumed, split);
            let b = d.decode(&wire[split..], &mut out);
            assert!(b.complete, "split {split}");
            assert_eq!(out, expected, "split {split}");
        }
    }

    #[test]
    fn long_lines_flagged() {
        let mut wire = vec![b'x'; 999];
        wire.extend_from_slice(b"\r\n.\r\n");
        let (_, r, flags) = decode_all(&wire);
        assert!(r.complete && flags.long_line);
        let mut wire = vec![b'x'; 998];
        wire.extend_from_slice(b"\r\n.\r\n");
        assert!(!decode_all(&wire).2.long_line);
    }

    #[test]
    fn stuffer_doubles_dots_and_normalises() {
        assert_eq!(stuff(b".a\r\nb\r\n"), b"..a\r\nb\r\n.\r\n");
        assert_eq!(stuff(b"a\nb"), b"a\r\nb\r\n.\r\n");
        assert_eq!(stuff(b"a\r.b\r\n"), b"a\r\n..b\r\n.\r\n");
        assert_eq!(stuff(b""), b".\r\n");
        assert_eq!(stuff(b"\r\n"), b"\r\n.\r\n");
        let mut s = DotStuffer::new();
        let mut out = Vec::new();
        s.encode(b"a\r", &mut out);
        s.encode(b"\n.b", &mut out);
        s.finish(&mut out);
        assert_eq!(out, b"a\r\n..b\r\n.\r\n");
    }

    #[test]
    fn line_normalizer_flags_and_normalises_across_chunks() {
        let input = b"a\r\nb\nc\rd\r";
        for split in 0..=input.len() {
            let mut n = LineNormalizer::new(998);
            let mut out = Vec::new();
            n.process(&input[..split], &mut out);
            n.process(&input[split..], &mut out);
            let flags = n.finish(&mut out);
            assert_eq!(out, b"a\r\nb\r\nc\r\nd\r\n", "split {split}");
            assert!(flags.bare_lf && flags.bare_cr, "split {split}");
        }
        let mut n = LineNormalizer::new(998);
        let mut out = Vec::new();
        n.process(b"ok\r\n", &mut out);
        assert_eq!(n.finish(&mut out), DataFlags::default());
        let mut n = LineNormalizer::new(3);
        n.process(b"abcd\r\n", &mut out);
        assert!(n.finish(&mut out).long_line);
    }

    #[test]
    fn normalize_matches_codecs() {
        assert_eq!(normalize_line_endings(b"a\rb\nc\r\nd"), b"a\r\nb\r\nc\r\nd");
    }
}
