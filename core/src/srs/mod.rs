//! Sender Rewriting Scheme: encoding forwarded senders and decoding the bounces that come back.
//!
//! When Petrel relays mail for a forwarded recipient, the envelope sender is rewritten into an
//! address of the forwarding domain that carries the original sender, a day stamp and a keyed
//! hash, so SPF passes at the next hop and bounces come back here to be decoded:
//!
//! ```text
//! alice@example.org  --(forward via forwarder.example)-->  SRS0=Hy2-=G3=example.org=alice@forwarder.example
//! SRS0 address       --(forwarded again via second.example)--> SRS1=hk-9=forwarder.example==Hy2-=G3=…@second.example
//! ```
//!
//! Two flavours exist and do not verify each other's addresses (see `spec/srs.md`):
//! - [`Flavour::OpenSmtpd`] (default): `SHA1(key ‖ data)`, URL-safe base64, hash compared
//!   case-sensitively, one day of clock-skew tolerance. Bounces to addresses minted by an
//!   OpenSMTPD installation with the same key decode.
//! - [`Flavour::Standard`]: libsrs2 / Mail::SRS / postsrsd, `HMAC-SHA1` over lower-cased fields,
//!   standard base64, hash and stamp compared case-insensitively, no future tolerance.
//!
//! Nothing here reads a clock: `now` is passed in.
//!
//! ```
//! use petrel_core::srs::{Srs, SrsConfig};
//! use petrel_core::Time;
//!
//! let srs = Srs::new(SrsConfig::new("s3cr3t-k3y")).unwrap();
//! let now = Time::from_secs(1_700_000_000);
//! let rewritten = srs.encode("alice@example.org", "forwarder.example", now).unwrap();
//! assert_eq!(rewritten, "SRS0=Hy2-=G3=example.org=alice@forwarder.example");
//! assert_eq!(srs.decode(&rewritten, now).unwrap().address, "alice@example.org");
//! ```

mod error;
#[doc(hidden)]
pub mod fuzzing;
mod hash;
mod syntax;
mod timestamp;

use std::fmt;

pub use error::{MalformedSrs, SrsConfigError, SrsError};

use crate::Time;
use syntax::{SrsAddress, Tag};

/// OpenSMTPD's default `srs ttl`, in days (it follows the default queue ttl of 4 days).
pub const DEFAULT_TTL_DAYS: u16 = 4;

/// Longest address [`Srs::encode`] returns: RFC 5321 limits a path to 256 octets including
/// its angle brackets, and OpenSMTPD likewise leaves longer results unrewritten.
pub const MAX_ADDRESS_LEN: usize = 254;

/// Longest accepted ttl: well under the 1024-day wrap of the stamp, so old stamps still expire.
pub const MAX_TTL_DAYS: u16 = 1000;

/// Which SRS implementation's hashing and checking rules to follow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Flavour {
    /// OpenSMTPD's `srs.c`: SHA1 of key and data, URL-safe base64, case-sensitive.
    #[default]
    OpenSmtpd,
    /// libsrs2, Mail::SRS and postsrsd: HMAC-SHA1 over lower-cased fields, standard base64.
    Standard,
}

impl Flavour {
    /// Separators that may follow the `SRS0`/`SRS1` tag for the address to count as SRS.
    ///
    /// OpenSMTPD only recognises `SRS0=`/`SRS1=`, so a local user such as `srs0-admin` stays an
    /// ordinary mailbox; libsrs2 also accepts `+` and `-`.
    fn tag_separators(self) -> &'static [u8] {
        match self {
            Flavour::OpenSmtpd => b"=",
            Flavour::Standard => syntax::SEPARATORS,
        }
    }

    /// Whether hashes and stamps survive MTAs that change the case of local parts.
    fn ignores_case(self) -> bool {
        self == Flavour::Standard
    }

    /// How many days ahead of today a stamp may be (clock skew between forwarders).
    fn future_days(self) -> u16 {
        match self {
            Flavour::OpenSmtpd => 1,
            Flavour::Standard => 0,
        }
    }
}

/// Keys and limits for an [`Srs`] codec.
#[derive(Clone, PartialEq, Eq)]
pub struct SrsConfig {
    /// Hashing and checking rules.
    pub flavour: Flavour,
    /// The current secret: signs every new address and verifies bounces.
    pub key: Vec<u8>,
    /// The previous secret after a key rotation: verifies bounces only.
    pub backup_key: Option<Vec<u8>>,
    /// How many days an address stays valid (at least 1).
    pub ttl_days: u16,
}

impl SrsConfig {
    /// OpenSMTPD-flavoured settings with `key`, no backup key and the default ttl.
    pub fn new(key: impl Into<Vec<u8>>) -> SrsConfig {
        SrsConfig {
            flavour: Flavour::OpenSmtpd,
            key: key.into(),
            backup_key: None,
            ttl_days: DEFAULT_TTL_DAYS,
        }
    }
}

impl fmt::Debug for SrsConfig {
    // Keys end up in logs through `{:?}` far too easily; print their presence only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrsConfig")
            .field("flavour", &self.flavour)
            .field("key", &"<redacted>")
            .field(
                "backup_key",
                &self.backup_key.as_ref().map(|_| "<redacted>"),
            )
            .field("ttl_days", &self.ttl_days)
            .finish()
    }
}

/// Which form a decoded address had.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SrsKind {
    /// `SRS0`: decoded to the original sender.
    Srs0,
    /// `SRS1`: decoded to the `SRS0` address at the first forwarder, to be relayed there.
    Srs1,
}

/// A successfully decoded SRS address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// Where the bounce goes next: the original sender, or the first forwarder's SRS0 address.
    pub address: String,
    /// Whether the input was SRS0 or SRS1.
    pub kind: SrsKind,
    /// True when only the backup key verified the hash (worth logging during key rotation).
    pub backup_key: bool,
}

/// An SRS encoder and decoder with fixed keys.
#[derive(Clone, Debug)]
pub struct Srs {
    config: SrsConfig,
}

impl Srs {
    /// A codec for `config`, refusing empty keys and a ttl outside `1..=MAX_TTL_DAYS`.
    pub fn new(config: SrsConfig) -> Result<Srs, SrsConfigError> {
        if config.key.is_empty() {
            return Err(SrsConfigError::EmptyKey);
        }
        if config.backup_key.as_ref().is_some_and(Vec::is_empty) {
            return Err(SrsConfigError::EmptyBackupKey);
        }
        if !(1..=MAX_TTL_DAYS).contains(&config.ttl_days) {
            return Err(SrsConfigError::TtlOutOfRange(config.ttl_days));
        }
        Ok(Srs { config })
    }

    /// The configuration this codec was built from.
    #[must_use]
    pub fn config(&self) -> &SrsConfig {
        &self.config
    }

    /// Whether `address` carries an SRS tag this flavour decodes (`SRS0=`/`SRS1=`, any case).
    #[must_use]
    pub fn is_srs(&self, address: &str) -> bool {
        syntax::tag(address, self.config.flavour.tag_separators()).is_some()
    }

    /// Rewrites `sender` for relaying on behalf of `forwarding_domain`.
    ///
    /// `forwarding_domain` is the domain of the recipient address that caused the forward (the
    /// alias or virtual address), not the host name. A plain sender becomes SRS0; an SRS0 sender
    /// becomes SRS1 pointing at its forwarder; an SRS1 sender keeps its first forwarder and gets a
    /// new hash and domain, so chains never grow. The result is always signed with the current
    /// key. Bounces (empty senders) are never rewritten: they are refused as `InvalidSender`.
    /// On any error the caller relays with the sender unchanged, as OpenSMTPD does.
    pub fn encode(
        &self,
        sender: &str,
        forwarding_domain: &str,
        now: Time,
    ) -> Result<String, SrsError> {
        if forwarding_domain.is_empty() || forwarding_domain.contains('@') {
            return Err(SrsError::InvalidForwardingDomain);
        }
        let (local, domain) = syntax::split_address(sender).ok_or(SrsError::InvalidSender)?;
        // SRS splits the original domain off at the first '=', so one inside it could not be
        // decoded back; no valid domain contains one.
        if domain.contains('=') {
            return Err(SrsError::InvalidSender);
        }
        let rewritten = self.rewrite(sender, local, domain, forwarding_domain, now);
        if rewritten.len() > MAX_ADDRESS_LEN {
            return Err(SrsError::TooLong);
        }
        Ok(rewritten)
    }

    /// Decodes the recipient of a bounce, verifying its hash (current key, then backup key) and
    /// its day stamp against `now`.
    ///
    /// The caller decides when to try: OpenSMTPD decodes only when the envelope sender is empty
    /// (`MAIL FROM:<>`) and the recipient [`is_srs`](Srs::is_srs). An SRS1 address decodes to the
    /// first forwarder's SRS0 address; its inner hash belongs to that forwarder and is not
    /// checked here, but its stamp is.
    pub fn decode(&self, address: &str, now: Time) -> Result<Decoded, SrsError> {
        let parsed = syntax::parse(address, self.config.flavour.tag_separators())?;
        let backup_key = self.verify(&parsed)?;
        Ok(match parsed {
            SrsAddress::Srs0 { tail, .. } => {
                self.check_stamp(tail.stamp, now)?;
                Decoded {
                    address: format!("{}@{}", tail.local, tail.domain),
                    kind: SrsKind::Srs0,
                    backup_key,
                }
            }
            SrsAddress::Srs1 { tail, .. } => {
                self.check_stamp(tail.inner_tail.stamp, now)?;
                Decoded {
                    address: format!("SRS0{}@{}", tail.inner, tail.first_domain),
                    kind: SrsKind::Srs1,
                    backup_key,
                }
            }
        })
    }

    /// SRS1 for a well-formed SRS sender, SRS0 for anything else.
    fn rewrite(
        &self,
        sender: &str,
        local: &str,
        domain: &str,
        forwarding_domain: &str,
        now: Time,
    ) -> String {
        // OpenSMTPD wraps anything starting with "SRS0="/"SRS1=", even if it cannot be decoded
        // later, and the bounce is then lost. A sender that merely looks like SRS is encoded as a
        // plain SRS0 instead, which any SRS0 decoder (OpenSMTPD's included) reverses exactly.
        let rest = local.get(5..).unwrap_or_default();
        match syntax::tag(sender, self.config.flavour.tag_separators()) {
            Some(Tag::Srs0) => {
                if let Ok(tail) = syntax::srs0_tail(rest)
                    && self.stamp_readable(tail.stamp)
                {
                    // `local[4..]` keeps the sender's separator in front of its hash, as both
                    // OpenSMTPD (which only wraps `SRS0=`) and libsrs2 do.
                    return self.srs1(domain, &local[4..], forwarding_domain);
                }
            }
            Some(Tag::Srs1) => {
                if let Ok(tail) = syntax::srs1_tail(rest)
                    && self.stamp_readable(tail.inner_tail.stamp)
                {
                    return self.srs1(tail.first_domain, tail.inner, forwarding_domain);
                }
            }
            None => {}
        }
        self.srs0(local, domain, forwarding_domain, now)
    }

    fn srs0(&self, local: &str, domain: &str, forwarding_domain: &str, now: Time) -> String {
        let stamp_bytes = timestamp::encode(now);
        let stamp = std::str::from_utf8(&stamp_bytes).unwrap_or_default();
        let body = format!("{stamp}={domain}={local}@{forwarding_domain}");
        let hash = match self.config.flavour {
            Flavour::OpenSmtpd => hash::opensmtpd(&self.config.key, &body),
            Flavour::Standard => hash::standard(&self.config.key, &[stamp, domain, local]),
        };
        format!("SRS0={hash}={body}")
    }

    /// `inner` is the first forwarder's SRS0 local part without `SRS0`, separator first.
    fn srs1(&self, first_domain: &str, inner: &str, forwarding_domain: &str) -> String {
        let body = format!("{first_domain}={inner}@{forwarding_domain}");
        let hash = match self.config.flavour {
            Flavour::OpenSmtpd => hash::opensmtpd(&self.config.key, &body),
            Flavour::Standard => hash::standard(&self.config.key, &[first_domain, inner]),
        };
        format!("SRS1={hash}={body}")
    }

    /// Ok(true) when only the backup key matches.
    fn verify(&self, parsed: &SrsAddress<'_>) -> Result<bool, SrsError> {
        let found = parsed.hash();
        let ignore_case = self.config.flavour.ignores_case();
        let matches =
            |key: &[u8]| hash::matches(&self.expected_hash(key, parsed), found, ignore_case);
        if matches(&self.config.key) {
            Ok(false)
        } else if self.config.backup_key.as_deref().is_some_and(matches) {
            Ok(true)
        } else {
            Err(SrsError::BadHash)
        }
    }

    fn expected_hash(&self, key: &[u8], parsed: &SrsAddress<'_>) -> String {
        match (self.config.flavour, parsed) {
            // OpenSMTPD hashes the address text as received, separators and forwarder included.
            (Flavour::OpenSmtpd, _) => hash::opensmtpd(key, parsed.body()),
            (Flavour::Standard, SrsAddress::Srs0 { tail, .. }) => {
                hash::standard(key, &[tail.stamp, tail.domain, tail.local])
            }
            (Flavour::Standard, SrsAddress::Srs1 { tail, .. }) => {
                hash::standard(key, &[tail.first_domain, tail.inner])
            }
        }
    }

    fn stamp_readable(&self, stamp: &str) -> bool {
        timestamp::decode(stamp.as_bytes(), self.config.flavour.ignores_case()).is_some()
    }

    fn check_stamp(&self, stamp: &str, now: Time) -> Result<(), SrsError> {
        let flavour = self.config.flavour;
        let day = timestamp::decode(stamp.as_bytes(), flavour.ignores_case())
            .ok_or(MalformedSrs::Timestamp)?;
        if timestamp::within_window(
            day,
            timestamp::day_of(now),
            self.config.ttl_days,
            flavour.future_days(),
        ) {
            Ok(())
        } else {
            Err(SrsError::Expired)
        }
    }
}

/// Whether `address` starts with OpenSMTPD's SRS tags `SRS0=` or `SRS1=` (ASCII case ignored).
///
/// Use [`Srs::is_srs`] when the configured flavour may be [`Flavour::Standard`], which also
/// accepts `+` and `-` after the tag.
#[must_use]
pub fn is_srs(address: &str) -> bool {
    syntax::tag(address, Flavour::OpenSmtpd.tag_separators()).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Time = Time::from_secs(1_700_000_000);

    fn srs(flavour: Flavour) -> Srs {
        Srs::new(SrsConfig {
            flavour,
            ..SrsConfig::new("s3cr3t-k3y")
        })
        .unwrap()
    }

    #[test]
    fn config_is_validated() {
        let bad = |config: SrsConfig| Srs::new(config).unwrap_err();
        assert_eq!(bad(SrsConfig::new("")), SrsConfigError::EmptyKey);
        assert_eq!(
            bad(SrsConfig {
                backup_key: Some(Vec::new()),
                ..SrsConfig::new("k")
            }),
            SrsConfigError::EmptyBackupKey
        );
        assert_eq!(
            bad(SrsConfig {
                ttl_days: 0,
                ..SrsConfig::new("k")
            }),
            SrsConfigError::TtlOutOfRange(0)
        );
        assert_eq!(
            bad(SrsConfig {
                ttl_days: MAX_TTL_DAYS + 1,
                ..SrsConfig::new("k")
            }),
            SrsConfigError::TtlOutOfRange(MAX_TTL_DAYS + 1)
        );
        assert!(
            Srs::new(SrsConfig {
                ttl_days: MAX_TTL_DAYS,
                ..SrsConfig::new("k")
            })
            .is_ok()
        );
    }

    #[test]
    fn debug_output_hides_keys() {
        let config = SrsConfig {
            backup_key: Some(b"old-secret".to_vec()),
            ..SrsConfig::new("new-secret")
        };
        let shown = format!("{:?}", Srs::new(config).unwrap());
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn encode_refuses_what_it_cannot_reverse() {
        let s = srs(Flavour::OpenSmtpd);
        for sender in ["", "alice", "@example.org", "alice@", "alice@exa=mple.org"] {
            assert_eq!(
                s.encode(sender, "fwd.example", NOW),
                Err(SrsError::InvalidSender),
                "{sender:?}"
            );
        }
        for domain in ["", "a@b"] {
            assert_eq!(
                s.encode("a@b", domain, NOW),
                Err(SrsError::InvalidForwardingDomain),
                "{domain:?}"
            );
        }
    }

    #[test]
    fn encode_refuses_results_longer_than_a_path_allows() {
        let s = srs(Flavour::OpenSmtpd);
        // "SRS0=HHHH=TT=" + "example.org" + "=" + local + "@" + "fwd.example": 37 + local.
        let fits = format!("{}@example.org", "a".repeat(217));
        assert_eq!(
            s.encode(&fits, "fwd.example", NOW).unwrap().len(),
            MAX_ADDRESS_LEN
        );
        let too_long = format!("{}@example.org", "a".repeat(218));
        assert_eq!(
            s.encode(&too_long, "fwd.example", NOW),
            Err(SrsError::TooLong)
        );
    }

    #[test]
    fn srs_lookalike_senders_become_plain_srs0() {
        let s = srs(Flavour::OpenSmtpd);
        let sender = "SRS0=not-srs@example.org";
        let encoded = s.encode(sender, "fwd.example", NOW).unwrap();
        assert!(encoded.starts_with("SRS0="), "{encoded}");
        assert_eq!(s.decode(&encoded, NOW).unwrap().address, sender);
        // A lower-case stamp is not OpenSMTPD's; libsrs2-style decoding reads it.
        let lower_stamp = "SRS0=Hy2-=g3=example.org=alice@forwarder.example";
        assert!(
            s.encode(lower_stamp, "x.example", NOW)
                .unwrap()
                .starts_with("SRS0=")
        );
        assert!(
            srs(Flavour::Standard)
                .encode(lower_stamp, "x.example", NOW)
                .unwrap()
                .starts_with("SRS1=")
        );
    }

    #[test]
    fn tag_recognition_depends_on_flavour() {
        assert!(is_srs("SRS0=x@y") && is_srs("srs1=x@y"));
        assert!(!is_srs("srs0-admin@example.org") && !is_srs("SRS0+x@y") && !is_srs("alice@x"));
        assert!(!srs(Flavour::OpenSmtpd).is_srs("SRS0+x@y"));
        assert!(srs(Flavour::Standard).is_srs("SRS0+x@y"));
        assert_eq!(
            srs(Flavour::OpenSmtpd).decode("srs0-admin@example.org", NOW),
            Err(SrsError::NotSrs)
        );
    }
}
