//! The two-character SRS day stamp and its validity window.
//!
//! A stamp is the number of whole days since the Unix epoch modulo 1024, written as two
//! RFC 4648 base32 characters. All comparisons are made modulo 1024, so a stamp "wraps" about
//! every 2.8 years; this is what every SRS implementation does and what keeps old addresses
//! minted by OpenSMTPD or libsrs2 readable.

use crate::Time;

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const SECONDS_PER_DAY: u64 = 86_400;

/// Number of distinct stamp values: the day counter has 10 bits.
pub(crate) const STAMP_MODULUS: u16 = 1024;

/// The day counter (`days since epoch mod 1024`) for `now`.
pub(crate) fn day_of(now: Time) -> u16 {
    // The modulo makes the value fit in 10 bits, so the narrowing cannot truncate.
    (now.as_secs() / SECONDS_PER_DAY % u64::from(STAMP_MODULUS)) as u16
}

/// The two stamp characters for `now`, most significant five bits first.
pub(crate) fn encode(now: Time) -> [u8; 2] {
    let day = usize::from(day_of(now));
    [BASE32[(day >> 5) & 31], BASE32[day & 31]]
}

/// The day counter written in `stamp`, or `None` if it is not two base32 characters.
///
/// OpenSMTPD and libsrs2 look each character up as is, so a lower-cased stamp is invalid unless
/// the caller asks for the lenient Mail::SRS behaviour with `ignore_case`.
pub(crate) fn decode(stamp: &[u8], ignore_case: bool) -> Option<u16> {
    let [hi, lo] = stamp else { return None };
    let index = |c: u8| {
        let c = if ignore_case {
            c.to_ascii_uppercase()
        } else {
            c
        };
        BASE32.iter().position(|&b| b == c).map(|i| i as u16)
    };
    Some((index(*hi)? << 5) | index(*lo)?)
}

/// Whether a stamp written on day `stamp` is still acceptable on day `today`.
///
/// Valid when it is at most `ttl_days` days old or at most `future_days` days ahead (clock skew
/// between the host that minted the address and this one), both measured modulo 1024.
pub(crate) fn within_window(stamp: u16, today: u16, ttl_days: u16, future_days: u16) -> bool {
    let age = (today + STAMP_MODULUS - stamp) % STAMP_MODULUS;
    let ahead = (stamp + STAMP_MODULUS - today) % STAMP_MODULUS;
    age <= ttl_days || ahead <= future_days
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u64) -> Time {
        Time::from_secs(d * SECONDS_PER_DAY)
    }

    #[test]
    fn spec_examples_encode() {
        assert_eq!(&encode(Time::ZERO), b"AA");
        assert_eq!(&encode(day(31)), b"A7");
        assert_eq!(&encode(day(1023)), b"77");
        assert_eq!(&encode(day(1024)), b"AA");
        assert_eq!(&encode(Time::from_secs(1_735_689_600)), b"TZ");
        assert_eq!(&encode(Time::from_secs(1_700_000_000)), b"G3");
        assert_eq!(day_of(Time::from_secs(1_700_000_000)), 219);
        // The last second of a day still belongs to it.
        assert_eq!(day_of(Time::from_millis(SECONDS_PER_DAY * 1000 - 1)), 0);
    }

    #[test]
    fn decode_inverts_encode_for_every_day() {
        for d in 0..u64::from(STAMP_MODULUS) {
            assert_eq!(decode(&encode(day(d)), false), Some(d as u16));
        }
    }

    #[test]
    fn decode_rejects_foreign_characters_and_lengths() {
        assert_eq!(decode(b"g3", false), None);
        assert_eq!(decode(b"g3", true), Some(219));
        assert_eq!(decode(b"G1", false), None);
        assert_eq!(decode(b"G=", false), None);
        assert_eq!(decode(b"G", false), None);
        assert_eq!(decode(b"G3A", false), None);
    }

    #[test]
    fn window_matches_opensmtpd_table() {
        // Stamp day 219, ttl 4, one day of future tolerance (spec §6.1).
        assert!(within_window(219, 219, 4, 1));
        assert!(within_window(219, 223, 4, 1));
        assert!(!within_window(219, 224, 4, 1));
        assert!(within_window(219, 218, 4, 1));
        assert!(!within_window(219, 217, 4, 1));
        // Without future tolerance (libsrs2) a stamp from tomorrow is invalid.
        assert!(!within_window(219, 218, 4, 0));
    }

    #[test]
    fn window_wraps_around_the_modulus() {
        assert!(within_window(1022, 1, 4, 1));
        assert!(!within_window(1020, 1, 4, 1));
        assert!(within_window(0, 1023, 4, 1));
        assert!(!within_window(1, 1023, 4, 1));
    }
}
