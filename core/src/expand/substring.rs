//! `[N]`, `[N:]`, `[:M]`, `[N:M]` substrings, with OpenSMTPD's offset rules.
//!
//! Offsets count characters (OpenSMTPD counts bytes; the two agree on ASCII, and counting
//! characters never cuts a UTF-8 sequence in half). A negative begin counts from the end. A
//! non-negative end is *inclusive* (`example.org[0:6]` is `example`), while a negative end `-k`
//! drops the last `k` characters (`example.org[0:-4]` is `example`), exactly as in
//! `smtpd.conf(5)`.

/// A parsed substring selector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Substring {
    /// `[N]`: one character; negative counts from the end.
    Index(i64),
    /// `[B:E]` with either side optional.
    Range { begin: i64, end: Option<i64> },
}

/// Why a substring cannot be taken from a given value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OutOfRange;

impl Substring {
    /// Parses the text between `[` and `]`; `None` if it is not one of the four forms.
    pub(crate) fn parse(spec: &str) -> Option<Substring> {
        match spec.split_once(':') {
            None => Some(Substring::Index(offset(spec)?)),
            Some((begin, end)) => Some(Substring::Range {
                begin: if begin.is_empty() { 0 } else { offset(begin)? },
                end: if end.is_empty() {
                    None
                } else {
                    Some(offset(end)?)
                },
            }),
        }
    }

    /// The selected characters of `value`; an empty value selects nothing and never fails.
    pub(crate) fn apply(self, value: &str) -> Result<String, OutOfRange> {
        let chars: Vec<char> = value.chars().collect();
        let Ok(len) = i64::try_from(chars.len()) else {
            return Err(OutOfRange);
        };
        if len == 0 {
            return Ok(String::new());
        }
        let (begin, end) = match self {
            // OpenSMTPD turns a negative `[N]` into an empty range and fails the delivery;
            // taking the N-th character from the end is what anyone writing it means.
            Substring::Index(i) => {
                let at = if i < 0 { i + len } else { i };
                (at, at)
            }
            Substring::Range { begin, end } => {
                if begin >= len {
                    return Err(OutOfRange);
                }
                let begin = if begin < 0 { begin + len } else { begin };
                let end = match end {
                    None => len - 1,
                    Some(e) if e >= len => len - 1,
                    Some(e) if e < 0 => e + len - 1,
                    Some(e) => e,
                };
                (begin, end)
            }
        };
        if begin < 0 || begin >= len || end < begin {
            return Err(OutOfRange);
        }
        // Both bounds are now within 0..len, which came from a usize.
        let (begin, end) = (begin as usize, end as usize);
        Ok(chars[begin..=end].iter().collect())
    }
}

/// An optionally negative decimal offset; no sign other than `-`, no spaces.
fn offset(s: &str) -> Option<i64> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(spec: &str, value: &str) -> Result<String, OutOfRange> {
        Substring::parse(spec).expect("valid spec").apply(value)
    }

    #[test]
    fn manual_page_examples() {
        // smtpd.conf(5), FORMAT SPECIFIERS, with recipient domain "example.org".
        assert_eq!(sub("0", "example.org").unwrap(), "e");
        assert_eq!(sub("1", "example.org").unwrap(), "x");
        assert_eq!(sub("8:", "example.org").unwrap(), "org");
        assert_eq!(sub("-3:", "example.org").unwrap(), "org");
        assert_eq!(sub("0:6", "example.org").unwrap(), "example");
        assert_eq!(sub("0:-4", "example.org").unwrap(), "example");
    }

    #[test]
    fn open_ends_and_clamping() {
        assert_eq!(sub(":2", "abcdef").unwrap(), "abc");
        assert_eq!(sub(":", "abcdef").unwrap(), "abcdef");
        assert_eq!(sub("2:100", "abcdef").unwrap(), "cdef");
        assert_eq!(sub("0:-1", "abcdef").unwrap(), "abcde");
        assert_eq!(sub("-1", "abcdef").unwrap(), "f");
        assert_eq!(sub("-6", "abcdef").unwrap(), "a");
        assert_eq!(sub("1:1", "abcdef").unwrap(), "b");
    }

    #[test]
    fn counts_characters_not_bytes() {
        assert_eq!(sub("1:2", "añbç").unwrap(), "ñb");
        assert_eq!(sub("-1", "añbç").unwrap(), "ç");
    }

    #[test]
    fn empty_values_never_fail() {
        for spec in ["0", "5", "-3:", "9:2", ":-8"] {
            assert_eq!(sub(spec, "").unwrap(), "", "{spec}");
        }
    }

    #[test]
    fn out_of_range_selections_fail() {
        assert_eq!(sub("6", "abcdef"), Err(OutOfRange));
        assert_eq!(sub("6:", "abcdef"), Err(OutOfRange));
        assert_eq!(sub("-7", "abcdef"), Err(OutOfRange));
        assert_eq!(sub("-7:", "abcdef"), Err(OutOfRange));
        assert_eq!(sub("3:2", "abcdef"), Err(OutOfRange));
        assert_eq!(sub("0:-6", "abcdef"), Err(OutOfRange));
        assert_eq!(sub("0:-7", "abcdef"), Err(OutOfRange));
    }

    #[test]
    fn only_the_four_forms_parse() {
        for bad in [
            "",
            "a",
            "1a",
            "+1",
            " 1",
            "1 ",
            "--1",
            "-",
            "1:2:3",
            "1:x",
            "x:",
            "99999999999999999999",
        ] {
            assert_eq!(Substring::parse(bad), None, "{bad:?}");
        }
        assert_eq!(Substring::parse("-0"), Some(Substring::Index(0)));
        assert_eq!(
            Substring::parse(":"),
            Some(Substring::Range {
                begin: 0,
                end: None
            })
        );
    }
}
