//! Why an SRS operation failed, worded so an SMTP reply can quote it.

use thiserror::Error;

/// Why an address could not be SRS-encoded or decoded.
///
/// The `Display` text is the human part of an SMTP reply; [`SrsError::smtp_reply`] gives the
/// whole line. Every decode failure is permanent: retrying the same bounce cannot succeed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SrsError {
    /// The address does not start with an `SRS0`/`SRS1` tag; treat it as an ordinary address.
    #[error("Not an SRS address")]
    NotSrs,
    /// The address has an SRS tag but its fields cannot be split.
    #[error("Malformed SRS address: {0}")]
    Malformed(#[from] MalformedSrs),
    /// The hash matches neither the current key nor the backup key: forged or mangled.
    #[error("Invalid SRS hash")]
    BadHash,
    /// The day stamp is older than the ttl or too far in the future.
    #[error("SRS address has expired")]
    Expired,
    /// The sender to encode is not `local@domain` (empty, no `@`, or `=` in the domain).
    #[error("Sender address cannot be SRS-rewritten")]
    InvalidSender,
    /// The forwarding domain is empty or contains `@`.
    #[error("Invalid SRS forwarding domain")]
    InvalidForwardingDomain,
    /// The rewritten sender would be longer than [`MAX_ADDRESS_LEN`](super::MAX_ADDRESS_LEN).
    #[error("SRS-rewritten sender would be too long")]
    TooLong,
}

/// Which part of an SRS address is malformed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum MalformedSrs {
    /// There is no `@domain` after the local part.
    #[error("no domain part")]
    NoDomain,
    /// The address ends before all its fields.
    #[error("truncated")]
    Truncated,
    /// The hash field is not four base64 characters.
    #[error("bad hash field")]
    HashField,
    /// A separator (`=`, `+` or `-`) is missing where one is required.
    #[error("missing separator")]
    Separator,
    /// The day stamp is not two base32 characters.
    #[error("bad timestamp")]
    Timestamp,
    /// The original domain, original local part or first forwarder domain is empty.
    #[error("empty address part")]
    EmptyPart,
}

impl SrsError {
    /// The RFC 3463 enhanced status code matching this failure.
    #[must_use]
    pub fn enhanced_status(&self) -> &'static str {
        match self {
            SrsError::NotSrs => "5.1.1",
            SrsError::Malformed(_) => "5.1.3",
            SrsError::BadHash | SrsError::Expired => "5.7.1",
            SrsError::InvalidSender | SrsError::TooLong => "5.1.7",
            SrsError::InvalidForwardingDomain => "5.3.5",
        }
    }

    /// A complete permanent-failure reply line, e.g. `550 5.7.1 Invalid SRS hash`.
    #[must_use]
    pub fn smtp_reply(&self) -> String {
        format!("550 {} {self}", self.enhanced_status())
    }
}

/// Why an [`SrsConfig`](super::SrsConfig) was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum SrsConfigError {
    /// The current key is empty.
    #[error("srs key must not be empty")]
    EmptyKey,
    /// A backup key was given but is empty.
    #[error("srs backup key must not be empty")]
    EmptyBackupKey,
    /// The ttl is zero, or so long that the 1024-day stamp would accept every address.
    #[error("srs ttl must be between 1 and {max} days, got {0}", max = super::MAX_TTL_DAYS)]
    TtlOutOfRange(u16),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_quotable() {
        assert_eq!(SrsError::BadHash.smtp_reply(), "550 5.7.1 Invalid SRS hash");
        assert_eq!(
            SrsError::Expired.smtp_reply(),
            "550 5.7.1 SRS address has expired"
        );
        assert_eq!(
            SrsError::Malformed(MalformedSrs::Timestamp).smtp_reply(),
            "550 5.1.3 Malformed SRS address: bad timestamp"
        );
        assert_eq!(
            SrsError::NotSrs.smtp_reply(),
            "550 5.1.1 Not an SRS address"
        );
    }
}
