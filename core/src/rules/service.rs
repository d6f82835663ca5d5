//! Table services: what a table is asked for (table(5), smtpd-tables(7)).
//!
//! The service decides how a key is compared with the entries — `domain` with `*` wildcards,
//! `netaddr` with CIDR blocks, `mailaddr` with the user/`@domain` forms, `regex` with patterns —
//! and how a found value is read. A `proc:` table receives the service name with every request
//! and does its own matching.

use std::fmt;

/// A table service, named as on the `proc:` table wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    /// `alias`: alias and virtual mappings; the value is a list of expansion targets.
    Alias,
    /// `domain`: domain names, `*` wildcards in the entries.
    Domain,
    /// `credentials`: `user` → crypt(3) hash (listeners) or `label` → `user:password` (relays).
    Credentials,
    /// `netaddr`: addresses and CIDR blocks.
    Netaddr,
    /// `userinfo`: `user` → `uid:gid:/home/dir`.
    Userinfo,
    /// `source`: local addresses to bind.
    Source,
    /// `mailaddr`: `user`, `@domain`, `user@domain` entries.
    Mailaddr,
    /// `addrname`: address → host name.
    Addrname,
    /// `mailaddrmap`: authenticated user → allowed sender addresses.
    Mailaddrmap,
    /// `relayhost`: domain → relay URL.
    Relayhost,
    /// `string`: exact strings (tags, user names).
    String,
    /// `regex`: the entries are regular expressions.
    Regex,
    /// `auth`: `user:password` checked by the table itself (proc tables only).
    Auth,
}

impl Service {
    /// Every service.
    pub const ALL: &'static [Service] = &[
        Service::Alias,
        Service::Domain,
        Service::Credentials,
        Service::Netaddr,
        Service::Userinfo,
        Service::Source,
        Service::Mailaddr,
        Service::Addrname,
        Service::Mailaddrmap,
        Service::Relayhost,
        Service::String,
        Service::Regex,
        Service::Auth,
    ];

    /// The name used in the table protocol and in logs.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Alias => "alias",
            Service::Domain => "domain",
            Service::Credentials => "credentials",
            Service::Netaddr => "netaddr",
            Service::Userinfo => "userinfo",
            Service::Source => "source",
            Service::Mailaddr => "mailaddr",
            Service::Addrname => "addrname",
            Service::Mailaddrmap => "mailaddrmap",
            Service::Relayhost => "relayhost",
            Service::String => "string",
            Service::Regex => "regex",
            Service::Auth => "auth",
        }
    }

    /// The service of that name (exact, lower case, as OpenSMTPD compares them).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Service> {
        Service::ALL.iter().copied().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for &s in Service::ALL {
            assert_eq!(Service::from_name(s.as_str()), Some(s));
        }
        assert_eq!(Service::from_name("none"), None);
        assert_eq!(Service::from_name("Alias"), None);
    }
}
