//! Byte classes and scanning helpers shared by the fast paths of the grammar.
//!
//! The parsers in this module's siblings have two layers. A fast path handles the common,
//! plain-ASCII shape of each command in one left-to-right pass over bytes, with table lookups
//! instead of `str` searches, and gives up (`None`) at the first byte it is not sure about.
//! The general code (the straightforward grammar, written for clarity) then runs from the
//! start and decides, so every refusal, every error message and every unusual but valid form
//! (quoted local parts, source routes, UTF-8, xtext escapes …) keeps exactly its old
//! behaviour. A fast path must therefore only ever accept what the general code accepts, and
//! build the same value; the differential tests in `reference` check that.
//!
//! The fast paths work on bytes and look at every byte of the argument: what they accept is
//! ASCII, or (an AUTH initial response) validated as UTF-8 where it becomes a `String`. Their
//! success therefore also proves the line valid UTF-8, which is what lets them skip the
//! general code's `from_utf8` over the whole line.

/// `atext` (RFC 5322): letters, digits and ``!#$%&'*+-/=?^_`{|}~``.
pub(crate) const ATEXT: u8 = 1;
/// A domain label character: letter, digit, hyphen, and the underscore real clients use.
pub(crate) const LDH: u8 = 2;
/// An ASCII digit.
pub(crate) const DIGIT: u8 = 4;
/// A printable ASCII character that xtext carries as itself (`!`..`~` but `+` and `=`).
pub(crate) const XTEXT: u8 = 8;
/// A letter or digit.
pub(crate) const ALNUM: u8 = 16;
/// A SASL mechanism name character (RFC 4422): letter, digit, `-` or `_`.
pub(crate) const MECH: u8 = 32;

/// An esmtp-keyword character after the first (RFC 5321): letter, digit or `-`.
pub(crate) const KEYWORD: u8 = 64;

/// The classes of every byte value; bytes from 0x80 up belong to none.
pub(crate) static CLASS: [u8; 256] = classes();

const fn classes() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 128 {
        let b = i as u8;
        let mut c = 0;
        if b.is_ascii_alphanumeric() {
            c |= ATEXT | LDH | ALNUM | MECH | KEYWORD;
        }
        if b.is_ascii_digit() {
            c |= DIGIT;
        }
        if matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'/'
                | b'='
                | b'?'
                | b'^'
                | b'_'
                | b'`'
                | b'{'
                | b'|'
                | b'}'
                | b'~'
        ) {
            c |= ATEXT;
        }
        if b == b'-' || b == b'_' {
            c |= LDH | MECH;
        }
        if b == b'-' {
            c |= KEYWORD;
        }
        if b >= 33 && b <= 126 && b != b'+' && b != b'=' {
            c |= XTEXT;
        }
        table[i] = c;
        i += 1;
    }
    table
}

/// Length of the longest prefix of `s` whose bytes are all in `class`.
#[inline]
pub(crate) fn span(s: &[u8], class: u8) -> usize {
    s.iter()
        .position(|&b| CLASS[usize::from(b)] & class == 0)
        .unwrap_or(s.len())
}

/// Up to the first eight bytes of `s` as one little-endian word, zero-padded: keywords and
/// verbs are recognised by comparing whole words (SWAR), as smtp-proto does, instead of byte
/// by byte.
#[inline]
pub(crate) fn load8(s: &[u8]) -> u64 {
    if let Some(head) = s.first_chunk::<8>() {
        return u64::from_le_bytes(*head);
    }
    let mut w = 0;
    for (i, &b) in s.iter().enumerate() {
        w |= u64::from(b) << (8 * i);
    }
    w
}

/// An ASCII word of up to eight bytes, compared case-insensitively with the start of a
/// [`load8`] word: `w & mask | case == lower`, where `mask` keeps the word's bytes and `case`
/// has bit 5 set at its letters. That is exact: `b | 0x20` is a given lowercase letter only
/// when `b` is that letter in either case, and the word's other bytes (digits, `=`, `:`) are
/// compared as they are. A word never holds a zero byte, so it cannot match the zero padding
/// of a short input.
#[derive(Clone, Copy)]
pub(crate) struct Word {
    lower: u64,
    case: u64,
    mask: u64,
    len: usize,
}

impl Word {
    /// `word` must be ASCII, one to eight bytes, none of them zero.
    pub(crate) const fn new(word: &[u8]) -> Word {
        let mut lower = 0;
        let mut case = 0;
        let mut mask = 0;
        let mut i = 0;
        while i < word.len() {
            let b = word[i].to_ascii_lowercase();
            lower |= (b as u64) << (8 * i);
            mask |= 0xff << (8 * i);
            if b.is_ascii_lowercase() {
                case |= 0x20 << (8 * i);
            }
            i += 1;
        }
        Word {
            lower,
            case,
            mask,
            len: word.len(),
        }
    }

    /// The word in lowercase, as compared.
    pub(crate) const fn lower(self) -> u64 {
        self.lower
    }

    /// The word's length.
    pub(crate) const fn len(self) -> usize {
        self.len
    }

    /// True when the [`load8`] word `w` starts with this word, ignoring ASCII case.
    #[inline]
    pub(crate) fn prefix(self, w: u64) -> bool {
        w & self.mask | self.case == self.lower
    }

    /// True when `s` (whose [`load8`] word is `w`) starts with this word followed by the end,
    /// a space or `end`.
    #[inline]
    pub(crate) fn whole(self, s: &[u8], w: u64, end: u8) -> bool {
        self.prefix(w) && s.get(self.len).is_none_or(|&b| b == b' ' || b == end)
    }
}

/// True when `s` is a Dot-string of ASCII atext no longer than the local-part limit, which
/// `check_local_part` accepts with or without UTF-8.
#[inline]
pub(crate) fn is_ascii_dot_string(s: &[u8]) -> bool {
    if s.len() > super::path::MAX_LOCAL_PART {
        return false;
    }
    let mut i = 0;
    loop {
        let atom = span(&s[i..], ATEXT);
        if atom == 0 {
            return false;
        }
        i += atom;
        match s.get(i) {
            None => return true,
            Some(b'.') => i += 1,
            Some(_) => return false,
        }
    }
}

/// True when `s` is an ASCII domain name `check_domain` accepts with or without UTF-8: 1 to
/// 255 octets of labels of 1 to 63 letters, digits, hyphens and underscores, no label starting
/// or ending with a hyphen.
#[inline]
pub(crate) fn is_ascii_domain(s: &[u8]) -> bool {
    if s.len() > super::path::MAX_DOMAIN {
        return false;
    }
    let mut i = 0;
    loop {
        let label = &s[i..];
        let len = span(label, LDH);
        if len == 0 || len > super::path::MAX_LABEL || label[0] == b'-' || label[len - 1] == b'-' {
            return false;
        }
        i += len;
        match s.get(i) {
            None => return true,
            Some(b'.') => i += 1,
            Some(_) => return false,
        }
    }
}

/// Parses a dotted-quad IPv4 address exactly as `Ipv4Addr::from_str` does (four decimal
/// octets of one to three digits, none above 255, no leading zero), in one pass without its
/// general parser machinery.
#[inline]
pub(crate) fn ipv4(s: &[u8]) -> Option<std::net::Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut n = 0;
    let mut value = 0u32;
    let mut digits = 0;
    for &b in s {
        if b.is_ascii_digit() {
            // A fourth digit, or a digit after a leading zero, is refused.
            if digits == 3 || (digits == 1 && value == 0) {
                return None;
            }
            value = value * 10 + u32::from(b - b'0');
            digits += 1;
        } else if b == b'.' && digits > 0 && n < 3 {
            octets[n] = u8::try_from(value).ok()?;
            n += 1;
            value = 0;
            digits = 0;
        } else {
            return None;
        }
    }
    if digits == 0 || n != 3 {
        return None;
    }
    octets[3] = u8::try_from(value).ok()?;
    Some(std::net::Ipv4Addr::from(octets))
}

/// `s` as text: UTF-8 is validated only for the bytes that become a `String`, once (for a
/// mailbox, the whole `local@domain` span), because `from_utf8` costs nearly as much on ten
/// bytes as on sixty, and the rest of a line the fast paths accept is ASCII they have checked
/// byte by byte.
#[inline]
pub(crate) fn text(s: &[u8]) -> Option<&str> {
    std::str::from_utf8(s).ok()
}

/// `s` as an owned `String` (see [`text`]).
#[inline]
pub(crate) fn string(s: &[u8]) -> Option<String> {
    text(s).map(str::to_owned)
}

/// `s` without its leading spaces.
#[inline]
pub(crate) fn skip_spaces(s: &[u8]) -> &[u8] {
    let n = s.iter().position(|&b| b != b' ').unwrap_or(s.len());
    &s[n..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_follow_the_grammar() {
        for b in 0..=255u8 {
            let c = CLASS[usize::from(b)];
            let atext = b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b);
            assert_eq!(c & ATEXT != 0, atext, "{b}");
            let ldh = b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
            assert_eq!(c & LDH != 0, ldh, "{b}");
            assert_eq!(c & DIGIT != 0, b.is_ascii_digit(), "{b}");
            let xtext = (33..=126).contains(&b) && b != b'+' && b != b'=';
            assert_eq!(c & XTEXT != 0, xtext, "{b}");
            assert_eq!(c & ALNUM != 0, b.is_ascii_alphanumeric(), "{b}");
            assert_eq!(c & MECH != 0, ldh, "{b}");
            let keyword = b.is_ascii_alphanumeric() || b == b'-';
            assert_eq!(c & KEYWORD != 0, keyword, "{b}");
        }
    }

    #[test]
    fn ipv4_agrees_with_std() {
        for s in [
            "0.0.0.0",
            "192.0.2.1",
            "255.255.255.255",
            "256.0.0.1",
            "01.2.3.4",
            "1.2.3",
            "1.2.3.4.5",
            "1..2.3",
            "1.2.3.4 ",
            "1234.1.1.1",
            "",
            "00.1.1.1",
            "1.2.3.040",
            "1.2.3.0",
            "0.0.0.00",
            "1.2.3.4.",
            ".1.2.3",
            "1.2.3.4a",
            "999.1.1.1",
            "10.20.30.40",
        ] {
            assert_eq!(ipv4(s.as_bytes()), s.parse().ok(), "{s:?}");
        }
    }

    #[test]
    fn words_compare_exactly() {
        let size = Word::new(b"SIZE=");
        let smtputf8 = Word::new(b"SMTPUTF8");
        for (input, is_size, is_smtputf8) in [
            (&b"size=1"[..], true, false),
            (b"SiZe=", true, false),
            (b"SIZE", false, false),
            (b"SIZE ", false, false),
            (b"SIZE\x1d", false, false),
            (b"S\x09ZE=1", false, false),
            (b"smtputf8", false, true),
            (b"SMTPUTF8 x", false, true),
            (b"SMTPUTF\x18", false, false),
            (b"SMTPUTF8X", false, false),
            (b"", false, false),
        ] {
            let w = load8(input);
            assert_eq!(size.prefix(w), is_size, "{input:?}");
            assert_eq!(smtputf8.whole(input, w, b' '), is_smtputf8, "{input:?}");
        }
    }
}
