//! Command line framing: CRLF-terminated lines with a length limit, bare CR and bare LF
//! refused (or normalised, when the operator asks for it).

use memchr::{memchr, memchr2};

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
    #[inline]
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
        // One pass over the line: the first CR or LF is, in a well-formed line, the CR of its
        // CRLF. Every CR met that is not directly followed by a LF is bare; a LF met before any
        // CR-LF pair is a bare LF ending the line. (Looking for the LF first and then for a CR
        // inside the line would scan every line twice.)
        let mut from = 0;
        let mut bare_cr = false;
        while let Some(off) = find_cr_or_lf(&window[from..]) {
            let pos = from + off;
            if window[pos] == b'\n' {
                return Frame::Line {
                    len: pos,
                    consumed: pos + 1,
                    bare_lf: true,
                    bare_cr,
                };
            }
            if window.get(pos + 1) == Some(&b'\n') {
                return Frame::Line {
                    len: pos,
                    consumed: pos + 2,
                    bare_lf: false,
                    bare_cr,
                };
            }
            bare_cr = true;
            from = pos + 1;
        }
        // No LF within the limit.
        if input.len() >= max {
            // Discard what we have; the rest of the line goes when its LF arrives.
            match memchr(b'\n', &input[window.len()..]) {
                Some(nl) => Frame::TooLong {
                    consumed: window.len() + nl + 1,
                },
                None => {
                    self.skipping = true;
                    Frame::TooLong {
                        consumed: input.len(),
                    }
                }
            }
        } else {
            Frame::Incomplete
        }
    }
}

/// Bytes examined a word at a time before handing over to `memchr2`.
const SHORT_SCAN: usize = 64;

/// Index of the first CR or LF in `hay`.
///
/// Command lines are short (`QUIT` is six bytes with its CRLF, a MAIL line with parameters well
/// under a hundred), and for those the fixed cost of a call into `memchr2` (dispatch, vector
/// setup, head and tail handling) is larger than the search itself. The first
/// [`SHORT_SCAN`] bytes are therefore scanned eight at a time in a `u64` (SWAR); only a line
/// longer than that goes to `memchr2`.
#[inline]
fn find_cr_or_lf(hay: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(word) = hay.get(i..i + 8) {
        if i == SHORT_SCAN {
            return memchr2(b'\r', b'\n', &hay[i..]).map(|off| i + off);
        }
        if let Some(off) = cr_or_lf_in(word) {
            return Some(i + off);
        }
        i += 8;
    }
    if i == hay.len() {
        return None;
    }
    if hay.len() >= 8 {
        // The last word overlaps bytes already searched, which hold no CR or LF: its first
        // match is the first one after them.
        let start = hay.len() - 8;
        return cr_or_lf_in(&hay[start..]).map(|off| start + off);
    }
    // A line shorter than a word.
    hay.iter().position(|&b| b == b'\r' || b == b'\n')
}

/// Index of the first CR or LF in an eight-byte `word`.
#[inline]
fn cr_or_lf_in(word: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let w = u64::from_le_bytes(word.try_into().unwrap_or_default());
    let (cr, lf) = (w ^ (LO * u64::from(b'\r')), w ^ (LO * u64::from(b'\n')));
    // A byte of `cr` (or `lf`) is zero where `w` holds a CR (a LF). `(x - LO) & !x & HI` flags
    // zero bytes; bytes above the lowest zero may be flagged wrongly (borrows), but the lowest
    // flag is exact, and that is the only one used.
    let found = (cr.wrapping_sub(LO) & !cr | lf.wrapping_sub(LO) & !lf) & HI;
    (found != 0).then(|| found.trailing_zeros() as usize / 8)
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
    fn finds_the_first_line_end_at_every_offset() {
        // Fillers next to CR and LF in value or in bits, which a word-wise search could confuse.
        for (len, fill) in (0..150).zip(
            [b'a', 0x8d, 0x8a, 0x0c, 0x0e, 0x0b, 0xff, 0x00]
                .iter()
                .cycle(),
        ) {
            for at in 0..=len {
                for end in [b'\r', b'\n'] {
                    let mut hay = vec![*fill; len];
                    if at < len {
                        hay[at] = end;
                        // A later line end must not be found instead.
                        if at + 1 < len {
                            hay[at + 1] = b'\r';
                        }
                    }
                    let want = hay.iter().position(|&b| b == b'\r' || b == b'\n');
                    assert_eq!(find_cr_or_lf(&hay), want, "len {len}, at {at}");
                }
            }
        }
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
