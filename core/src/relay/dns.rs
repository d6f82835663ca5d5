//! DNS answers as the relay logic sees them: typed records and typed failures, whatever
//! resolver produced them (a real one, a static table, a simulation).

use std::net::{Ipv4Addr, Ipv6Addr};

use thiserror::Error;

/// One MX record.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MxRecord {
    /// Lower is preferred.
    pub preference: u16,
    /// The mail exchanger's host name, as the answer gave it (`.` for a null MX).
    pub exchange: String,
}

impl MxRecord {
    /// A record from its parts.
    #[must_use]
    pub fn new(preference: u16, exchange: impl Into<String>) -> MxRecord {
        MxRecord {
            preference,
            exchange: exchange.into(),
        }
    }
}

/// Why a lookup gave no records.
///
/// The distinction matters for mail: a name that does not exist is a permanent failure, a name
/// without records of the type asked is an answer too (no MX means "use the address"), and
/// anything else may work later.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Error)]
pub enum DnsError {
    /// NXDOMAIN: the name does not exist.
    #[error("no such domain")]
    NxDomain,
    /// The name exists but has no records of the type asked (NOERROR with an empty answer).
    #[error("no records of that type")]
    NoData,
    /// SERVFAIL, a timeout, an unreachable server: try again later.
    #[error("temporary DNS failure: {0}")]
    Temporary(String),
}

impl DnsError {
    /// True for failures that may go away (neither NXDOMAIN nor an empty answer).
    #[must_use]
    pub fn is_temporary(&self) -> bool {
        matches!(self, DnsError::Temporary(_))
    }
}

/// What the resolver said about one host's addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostAddresses {
    /// The AAAA answer.
    pub v6: Result<Vec<Ipv6Addr>, DnsError>,
    /// The A answer.
    pub v4: Result<Vec<Ipv4Addr>, DnsError>,
    /// A port the resolver names for this host's mail service. Real DNS never does; a static
    /// table may (tests, simulations, closed networks where several servers share an address).
    /// It replaces port 25 for MX hosts only: a smarthost URL's port is always explicit.
    pub port: Option<u16>,
}

impl HostAddresses {
    /// Addresses from successful answers, no port.
    #[must_use]
    pub fn new(v6: Vec<Ipv6Addr>, v4: Vec<Ipv4Addr>) -> HostAddresses {
        HostAddresses {
            v6: Ok(v6),
            v4: Ok(v4),
            port: None,
        }
    }

    /// The same failure for both families.
    #[must_use]
    pub fn failed(error: DnsError) -> HostAddresses {
        HostAddresses {
            v6: Err(error.clone()),
            v4: Err(error),
            port: None,
        }
    }
}

/// A host name in the form names are compared in: ASCII lowercase, without the root's
/// trailing dot (so the null MX's `.` becomes the empty string).
#[must_use]
pub fn normalize_name(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_compare_without_case_and_root_dot() {
        assert_eq!(normalize_name("MX1.Example.ORG."), "mx1.example.org");
        assert_eq!(normalize_name("."), "");
        assert_eq!(normalize_name("a.b"), "a.b");
    }
}
