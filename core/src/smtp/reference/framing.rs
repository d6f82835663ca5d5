//! Command line framing: CRLF-terminated lines with a length limit, bare CR and bare LF
//! refused (or normalised, when the operator asks for it).

use memchr::memchr;

/// What to do with a bare CR or bare LF in commands and message data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BareNewline {
    /// Refuse: a command line ended by a bare LF gets a 500 reply and is not executed; a
    /// message containing one is rejected at the end of data (the default).
    #[default]
    Reject,
    /// Accept a bare LF as the end of a command line and normalise bare line endings inside
    /// messages to CRLF. The end of data is still only `<CRLF>.<CRLF>`.
    Normalize,
}

/// One framed line, or why the bytes did not make one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A complete line: `len` content bytes (terminator excluded) at the start of the input,
    /// `consumed` bytes including the terminator.
    Line {
        /// Length of the line content.
        len: usize,
        /// Bytes used, terminator included.
        consumed: usize,
        /// The line was ended by a bare LF instead of CRLF.
        bare_lf: bool,
        /// The line content contains a CR that is not part of its terminator.
        bare_cr: bool,
    },
    /// The line exceeds the limit; `consumed` bytes were discarded (through the end of the line
    /// if it was seen, otherwise everything: the framer skips the rest of the line later).
    TooLong {
        /// Bytes discarded.
        consumed: usize,
    },
    /// No complete line yet: wait for more input.
    Incomplete,
}

/// Splits a byte stream into command lines. The only state it keeps is whether it is skipping
/// the remainder of an over-long line whose end has not arrived yet.
#[derive(Clone, Debug, Default)]
pub struct LineFramer {
    skipping: bool,
}

impl LineFramer {
    /// A framer at the start of a line.
    #[must_use]
    pub fn new() -> LineFramer {
        LineFramer::default()
    }

    /// Forgets a line being skipped (after STARTTLS, the stream starts afresh).
    pub fn reset(&mut self) {
        self.skipping = false;
    }

    /// Frames the next line of `input`. `max` is the longest line accepted, terminator
    /// included (RFC 5321: 512 for commands).
    pub fn next(&mut self, input: &[u8], max: usize) -> Frame {
        if self.skipping {
            return match memchr(b'\n', input) {
                Some(nl) => {
                    self.skipping = false;
                    Frame::TooLong { consumed: nl + 1 }
                }
                None if input.is_empty() => Frame::Incomplete,
                None => Frame::TooLong {
                    consumed: input.len(),
                },
            };
        }
        let window = &input[..input.len().min(max)];
        let Some(nl) = memchr(b'\n', window) else {
            if input.len() >= max {
                // Discard what we have; the rest of the line goes when its LF arrives.
                match memchr(b'\n', input) {
                    Some(nl) => return Frame::TooLong { consumed: nl + 1 },
                    None => {
                        self.skipping = true;
                        return Frame::TooLong {
                            consumed: input.len(),
                        };
                    }
                }
            }
            return Frame::Incomplete;
        };
        let bare_lf = nl == 0 || input[nl - 1] != b'\r';
        let len = if bare_lf { nl } else { nl - 1 };
        Frame::Line {
            len,
            consumed: nl + 1,
            bare_lf,
            bare_cr: memchr(b'\r', &input[..len]).is_some(),
        }
    }
}
