//! The four-character SRS hash of each flavour.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use hmac::{Hmac, KeyInit as _, Mac as _};
use sha1::{Digest as _, Sha1};

/// Length of the hash field in every address this module writes or reads.
pub(crate) const HASH_LEN: usize = 4;

/// Three digest bytes are exactly four base64 characters, without padding.
const DIGEST_PREFIX: usize = HASH_LEN / 4 * 3;

/// OpenSMTPD's hash: `SHA1(key ‖ data)` (not an HMAC), URL-safe base64, first four characters.
pub(crate) fn opensmtpd(key: &[u8], data: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(data.as_bytes());
    URL_SAFE.encode(&sha.finalize()[..DIGEST_PREFIX])
}

/// The libsrs2 / Mail::SRS hash: `HMAC-SHA1(key, lc(part1) ‖ lc(part2) …)`, standard base64.
pub(crate) fn standard(key: &[u8], parts: &[&str]) -> String {
    // HMAC takes keys of any length, so this constructor cannot fail.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(key) else {
        unreachable!("HMAC accepts keys of every length")
    };
    for part in parts {
        mac.update(part.to_ascii_lowercase().as_bytes());
    }
    STANDARD.encode(&mac.finalize().into_bytes()[..DIGEST_PREFIX])
}

/// Whether the hash found in an address equals the computed one.
///
/// Looks at every byte whatever the outcome, so the comparison time does not tell a forger how
/// many leading characters were right.
pub(crate) fn matches(computed: &str, found: &str, ignore_case: bool) -> bool {
    let (a, b) = (computed.as_bytes(), found.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let fold = |c: u8| {
        if ignore_case {
            c.to_ascii_lowercase()
        } else {
            c
        }
    };
    a.iter()
        .zip(b)
        .fold(0u8, |acc, (&x, &y)| acc | (fold(x) ^ fold(y)))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opensmtpd_hash_matches_spec_intermediate_values() {
        // SHA1 hex 1f2dbeb5… → base64url "Hy2-tUpf…" (spec §6.1).
        let data = "G3=example.org=alice@forwarder.example";
        assert_eq!(opensmtpd(b"s3cr3t-k3y", data), "Hy2-");
        assert_eq!(opensmtpd(b"old-k3y", data), "FJGj");
    }

    #[test]
    fn standard_hash_lowercases_its_parts() {
        let lower = standard(b"s3cr3t-k3y", &["G3", "example.org", "alice"]);
        assert_eq!(lower, "Cn9U");
        assert_eq!(
            standard(b"s3cr3t-k3y", &["g3", "Example.ORG", "Alice"]),
            lower
        );
    }

    #[test]
    fn comparison_respects_case_mode() {
        assert!(matches("Hy2-", "Hy2-", false));
        assert!(!matches("Hy2-", "hy2-", false));
        assert!(matches("Cn9U", "cn9u", true));
        assert!(!matches("Cn9U", "Cn9", true));
        assert!(!matches("Cn9U", "Cn9V", true));
    }
}
