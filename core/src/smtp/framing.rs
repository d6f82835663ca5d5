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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_crlf_lines() {
        let mut f = LineFramer::new();
        assert_eq!(
            f.next(b"QUIT\r\nNOOP\r\n", 512),
            Frame::Line {
                len: 4,
                consumed: 6,
                bare_lf: false,
                bare_cr: false
            }
        );
        assert_eq!(f.next(b"QUI", 512), Frame::Incomplete);
        assert_eq!(
            f.next(b"QUIT\n", 512),
            Frame::Line {
                len: 4,
                consumed: 5,
                bare_lf: true,
                bare_cr: false
            }
        );
        assert_eq!(
            f.next(b"QU\rIT\r\n", 512),
            Frame::Line {
                len: 5,
                consumed: 7,
                bare_lf: false,
                bare_cr: true
            }
        );
    }

    #[test]
    fn too_long_lines_are_skipped_to_their_end() {
        let mut f = LineFramer::new();
        let long = [b'a'; 600];
        assert_eq!(f.next(&long, 512), Frame::TooLong { consumed: 600 });
        assert_eq!(
            f.next(b"aaa\r\nQUIT\r\n", 512),
            Frame::TooLong { consumed: 5 }
        );
        assert!(matches!(
            f.next(b"QUIT\r\n", 512),
            Frame::Line { len: 4, .. }
        ));
        // Exactly at the limit, terminator included, is fine.
        let mut line = vec![b'a'; 510];
        line.extend_from_slice(b"\r\n");
        assert!(matches!(f.next(&line, 512), Frame::Line { len: 510, .. }));
        line.insert(0, b'a');
        assert_eq!(f.next(&line, 512), Frame::TooLong { consumed: 513 });
    }
}
