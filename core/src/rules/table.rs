//! Tables: the lists and mappings that match rules, actions and listeners consult.
//!
//! A table holds entries (a list of values, or key/value pairs) however it was declared —
//! inline in the configuration, or read from a `file:` by the shell — and answers the lookups
//! OpenSMTPD's static backend answers (`table_static.c`), with the same comparisons:
//!
//! - keys are compared ASCII-case-insensitively (OpenSMTPD lowercases both the entries and the
//!   key of every lookup);
//! - a duplicated key keeps its **last** value, as OpenSMTPD's dictionary does;
//! - `domain`: glob match of the domain against each entry (`hostname_match`): `*` skips to the
//!   next occurrence of the character that follows it, without backtracking, so `*.example.org`
//!   matches `mx.example.org` but neither `example.org` nor `a.b.example.org`, and `*` matches
//!   any non-empty domain;
//! - `netaddr`: the key equals an entry (that is how the string `local` matches), or the key is
//!   an address inside an entry's CIDR block;
//! - `mailaddr`: entries `user`, `@domain`, `user@domain` (domains globbed as above) and `@`
//!   (anything); an entry without a sub-address delimiter ignores the key's `+tag`;
//! - `regex`: some entry, compiled with the `regex` crate, matches anywhere in the key.
//!   OpenSMTPD uses POSIX extended regexes, case-sensitive unless prefixed with `(?i)`, applied
//!   to the lowercased key; Petrel compiles them case-insensitively (a pattern written with
//!   capitals would never match in OpenSMTPD, and matches here as its author meant);
//! - every other service: exact key membership (`string`, `alias`, `userinfo`, …).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::OnceLock;

use regex::{Regex, RegexBuilder};
use thiserror::Error;

use super::address::MailAddr;
use super::netaddr::Cidr;
use super::service::Service;

/// What a table holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entries {
    /// A list of values.
    List(Vec<String>),
    /// Key/value pairs, in the order written.
    Map(Vec<(String, String)>),
}

/// A table ready for lookups.
#[derive(Debug, Clone)]
pub struct Table {
    name: String,
    entries: Entries,
    /// Lowercased key → index of its last occurrence.
    index: HashMap<String, usize>,
    /// Entries that contain a `*`, the only ones a domain can match other than exactly.
    wildcards: Vec<usize>,
    cidrs: Vec<Cidr>,
    /// Compiled on first use: most tables are never asked for regexes, and their entries
    /// (`*.example.org`) are often not valid patterns.
    regexes: OnceLock<Result<Vec<Regex>, TableError>>,
}

/// Why a table cannot answer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TableError {
    /// An entry is not a valid regular expression (tables used with `regex`).
    #[error("table <{table}>: invalid regular expression {pattern:?}: {reason}")]
    BadRegex {
        /// The table.
        table: String,
        /// The pattern.
        pattern: String,
        /// What the regex compiler said.
        reason: String,
    },
    /// The table cannot answer this service (static tables cannot check `auth`).
    #[error("table <{table}> does not provide the {service} service")]
    Unsupported {
        /// The table.
        table: String,
        /// The service asked for.
        service: Service,
    },
}

impl Table {
    /// A table named `name` with `entries`.
    #[must_use]
    pub fn new(name: impl Into<String>, entries: Entries) -> Table {
        let mut index = HashMap::new();
        let mut wildcards = Vec::new();
        let mut cidrs = Vec::new();
        let keys: Vec<&str> = match &entries {
            Entries::List(values) => values.iter().map(String::as_str).collect(),
            Entries::Map(pairs) => pairs.iter().map(|(k, _)| k.as_str()).collect(),
        };
        for (i, key) in keys.iter().enumerate() {
            index.insert(key.to_ascii_lowercase(), i);
            if key.contains('*') {
                wildcards.push(i);
            }
            if let Ok(c) = key.parse() {
                cidrs.push(c);
            }
        }
        Table {
            name: name.into(),
            entries,
            index,
            wildcards,
            cidrs,
            regexes: OnceLock::new(),
        }
    }

    /// A list table.
    pub fn list<S: Into<String>>(
        name: impl Into<String>,
        values: impl IntoIterator<Item = S>,
    ) -> Table {
        Table::new(
            name,
            Entries::List(values.into_iter().map(Into::into).collect()),
        )
    }

    /// A mapping table.
    pub fn map<K: Into<String>, V: Into<String>>(
        name: impl Into<String>,
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Table {
        Table::new(
            name,
            Entries::Map(
                pairs
                    .into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
            ),
        )
    }

    /// Compiles the entries as regular expressions now rather than at the first regex lookup,
    /// to report a bad pattern early (when the shell loads the table).
    pub fn compile_regexes(&self) -> Result<(), TableError> {
        self.regexes().map(|_| ())
    }

    fn regexes(&self) -> Result<&[Regex], TableError> {
        self.regexes
            .get_or_init(|| {
                self.keys()
                    .map(|pattern| {
                        RegexBuilder::new(pattern)
                            .case_insensitive(true)
                            .build()
                            .map_err(|e| TableError::BadRegex {
                                table: self.name.clone(),
                                pattern: pattern.to_owned(),
                                reason: e.to_string(),
                            })
                    })
                    .collect()
            })
            .as_deref()
            .map_err(Clone::clone)
    }

    /// The table's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The entries.
    #[must_use]
    pub fn entries(&self) -> &Entries {
        &self.entries
    }

    /// The values of a list, or the keys of a mapping (what membership tests consult).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        let (list, map): (&[String], &[(String, String)]) = match &self.entries {
            Entries::List(v) => (v, &[]),
            Entries::Map(m) => (&[], m),
        };
        list.iter()
            .map(String::as_str)
            .chain(map.iter().map(|(k, _)| k.as_str()))
    }

    /// The number of entries.
    #[must_use]
    pub fn len(&self) -> usize {
        match &self.entries {
            Entries::List(v) => v.len(),
            Entries::Map(m) => m.len(),
        }
    }

    /// True when the table has no entries.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `key` is in the table for `service`, compared as the service compares.
    /// `delim` is the sub-address delimiter (`smtp sub-addr-delim`) for `mailaddr`.
    pub fn check(&self, service: Service, key: &str, delim: char) -> Result<bool, TableError> {
        Ok(match service {
            Service::Domain => self.matches_domain(key),
            Service::Netaddr => self.matches_netaddr_text(key),
            Service::Mailaddr => self.matches_mailaddr(&MailAddr::parse(key), delim),
            Service::Regex => self.matches_regex(key)?,
            Service::Auth => {
                return Err(TableError::Unsupported {
                    table: self.name.clone(),
                    service,
                });
            }
            _ => self.contains(key),
        })
    }

    /// The value of the first key that matches `key` for `service` (exact key for the services
    /// without a comparison of their own); `None` in a list or when nothing matches.
    pub fn lookup(
        &self,
        service: Service,
        key: &str,
        delim: char,
    ) -> Result<Option<&str>, TableError> {
        let Entries::Map(pairs) = &self.entries else {
            return Ok(None);
        };
        let matches: Box<dyn Fn(&str) -> bool> = match service {
            Service::Domain => Box::new(|entry| hostname_match(key, entry)),
            Service::Netaddr => {
                let ip = parse_ip(key);
                Box::new(move |entry: &str| {
                    entry.eq_ignore_ascii_case(key)
                        || ip.is_some_and(|ip| entry.parse::<Cidr>().is_ok_and(|c| c.contains(ip)))
                })
            }
            Service::Mailaddr => {
                let addr = MailAddr::parse(key);
                Box::new(move |entry| mailaddr_match(&addr, &MailAddr::parse(entry), delim))
            }
            Service::Regex => {
                let regexes = self.regexes()?;
                return Ok(regexes
                    .iter()
                    .position(|re| re.is_match(key))
                    .and_then(|i| self.get(&pairs[i].0)));
            }
            Service::Auth => {
                return Err(TableError::Unsupported {
                    table: self.name.clone(),
                    service,
                });
            }
            _ => return Ok(self.get(key)),
        };
        Ok(pairs
            .iter()
            .find(|(k, _)| matches(k))
            .and_then(|(k, _)| self.get(k)))
    }

    /// True when `key` is a value of the list or a key of the mapping (case-insensitive).
    #[must_use]
    pub fn contains(&self, key: &str) -> bool {
        self.index.contains_key(&key.to_ascii_lowercase())
    }

    /// The value mapped to `key` (case-insensitive; the last one when the key is repeated);
    /// `None` for lists and absent keys.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&str> {
        let Entries::Map(pairs) = &self.entries else {
            return None;
        };
        self.index
            .get(&key.to_ascii_lowercase())
            .map(|&i| pairs[i].1.as_str())
    }

    /// Domain lookup: some entry globs `domain` (see the module documentation).
    #[must_use]
    pub fn matches_domain(&self, domain: &str) -> bool {
        if self.contains(domain) && !domain.is_empty() {
            return true;
        }
        let keys: Vec<&str> = self.keys().collect();
        self.wildcards
            .iter()
            .any(|&i| hostname_match(domain, keys[i]))
    }

    /// Network lookup: an entry that is an address or CIDR block containing `ip`.
    #[must_use]
    pub fn matches_netaddr(&self, ip: IpAddr) -> bool {
        self.cidrs.iter().any(|c| c.contains(ip))
    }

    /// Network lookup of a key as text: equal to an entry (`local`), or an address contained
    /// in an entry's block.
    #[must_use]
    pub fn matches_netaddr_text(&self, key: &str) -> bool {
        self.contains(key) || parse_ip(key).is_some_and(|ip| self.matches_netaddr(ip))
    }

    /// Mail address lookup (see the module documentation); `delim` is the sub-address
    /// delimiter.
    #[must_use]
    pub fn matches_mailaddr(&self, addr: &MailAddr, delim: char) -> bool {
        self.keys()
            .any(|entry| mailaddr_match(addr, &MailAddr::parse(entry), delim))
    }

    /// Regex lookup: some entry matches `text`.
    pub fn matches_regex(&self, text: &str) -> Result<bool, TableError> {
        Ok(self.regexes()?.iter().any(|re| re.is_match(text)))
    }
}

/// An address written as a table key or session fact: `192.0.2.1`, `[::1]`, `ipv6:2001:db8::1`.
fn parse_ip(text: &str) -> Option<IpAddr> {
    text.parse::<Cidr>().ok().map(|c| c.addr())
}

/// OpenSMTPD's `hostname_match`: ASCII case ignored; `*` skips the hostname forward to the
/// next occurrence of the pattern character after it (to the end when the pattern ends) and
/// never backtracks. Both must be consumed entirely, so an empty hostname matches nothing.
#[must_use]
pub fn hostname_match(hostname: &str, pattern: &str) -> bool {
    let (h, p) = (hostname.as_bytes(), pattern.as_bytes());
    let (mut i, mut j) = (0, 0);
    while j < p.len() && i < h.len() {
        if p[j] == b'*' {
            while p.get(j) == Some(&b'*') {
                j += 1;
            }
            let next = p.get(j).map(u8::to_ascii_lowercase);
            while i < h.len() && Some(h[i].to_ascii_lowercase()) != next {
                i += 1;
            }
            continue;
        }
        if !p[j].eq_ignore_ascii_case(&h[i]) {
            return false;
        }
        i += 1;
        j += 1;
    }
    i == h.len() && j == p.len()
}

/// OpenSMTPD's `mailaddr_match`: `addr` from the session against `entry` from a table.
#[must_use]
pub fn mailaddr_match(addr: &MailAddr, entry: &MailAddr, delim: char) -> bool {
    if entry.is_null() {
        return true;
    }
    if !entry.domain.is_empty() && !hostname_match(&addr.domain, &entry.domain) {
        return false;
    }
    if entry.user.is_empty() {
        return true;
    }
    // An entry naming a tag must match it; otherwise the session's tag is ignored.
    let user = if entry.user.contains(delim) {
        addr.user.as_str()
    } else {
        addr.user.split(delim).next().unwrap_or_default()
    };
    user.eq_ignore_ascii_case(&entry.user)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(values: &[&str]) -> Table {
        Table::list("t", values.iter().copied())
    }

    #[test]
    fn hostname_globs_like_opensmtpd() {
        assert!(hostname_match("mx.example.org", "*.example.org"));
        assert!(hostname_match("MX.Example.ORG", "*.example.org"));
        assert!(!hostname_match("example.org", "*.example.org"));
        // No backtracking: the first '.' is where the '*' stops.
        assert!(!hostname_match("a.b.example.org", "*.example.org"));
        assert!(hostname_match("anything.at.all", "*"));
        assert!(!hostname_match("", "*"));
        assert!(hostname_match("mail.example.org", "mail.*"));
        assert!(hostname_match("mx1.example.org", "mx*.example.org"));
        assert!(!hostname_match("example.org", "example.org.evil"));
    }

    #[test]
    fn domains() {
        let t = list(&["example.org", "*.example.net"]);
        assert!(t.matches_domain("EXAMPLE.org"));
        assert!(!t.matches_domain("sub.example.org"));
        assert!(t.matches_domain("a.example.net"));
        assert!(!t.matches_domain("a.b.example.net"));
        assert!(!t.matches_domain("example.net"));
        assert!(!t.matches_domain("badexample.net"));
        assert_eq!(t.check(Service::Domain, "x.example.net", '+'), Ok(true));
    }

    #[test]
    fn netaddrs() {
        let t = list(&[
            "local",
            "192.0.2.1",
            "198.51.100.0/24",
            "ipv6:2001:db8::/32",
            "[::1]",
            "not-an-address",
        ]);
        assert!(t.matches_netaddr("198.51.100.9".parse().unwrap()));
        assert!(t.matches_netaddr("2001:db8::1".parse().unwrap()));
        assert!(t.matches_netaddr("::1".parse().unwrap()));
        assert!(!t.matches_netaddr("192.0.2.2".parse().unwrap()));
        assert!(t.matches_netaddr_text("local"));
        assert!(t.matches_netaddr_text("198.51.100.200"));
        assert!(!t.matches_netaddr_text("localhost"));
        assert_eq!(t.check(Service::Netaddr, "192.0.2.1", '+'), Ok(true));
    }

    #[test]
    fn mailaddrs() {
        let t = list(&[
            "alice",
            "@example.net",
            "bob@example.org",
            "carol@*.example.com",
            "dave+list@example.org",
        ]);
        let m = |s: &str| t.matches_mailaddr(&MailAddr::parse(s), '+');
        assert!(m("Alice@anywhere.test"));
        assert!(m("alice+tag@anywhere.test"));
        assert!(m("x@example.net"));
        assert!(m("bob@EXAMPLE.ORG"));
        assert!(m("bob+whatever@example.org"));
        assert!(!m("bob@example.net.evil"));
        assert!(m("carol@mx.example.com"));
        assert!(!m("carol@example.com"));
        assert!(!m("dave@example.org"));
        assert!(m("dave+list@example.org"));
        assert!(!m("dave+other@example.org"));
        assert!(!m("@"));
        assert!(list(&["@"]).matches_mailaddr(&MailAddr::null(), '+'));
        // Another delimiter: '+' is then an ordinary character.
        assert!(!t.matches_mailaddr(&MailAddr::parse("alice+tag@x"), '-'));
    }

    #[test]
    fn maps_and_duplicates() {
        let t = Table::map("m", [("Root", "alice"), ("root", "bob"), ("x", "y")]);
        assert_eq!(t.get("ROOT"), Some("bob"));
        assert!(t.contains("ROOT"));
        assert_eq!(list(&["a"]).get("a"), None);
        assert_eq!(t.lookup(Service::Alias, "root", '+'), Ok(Some("bob")));
        assert_eq!(t.lookup(Service::Alias, "nobody", '+'), Ok(None));
        let d = Table::map(
            "d",
            [("*.example.org", "smtp://a"), ("example.org", "smtp://b")],
        );
        assert_eq!(
            d.lookup(Service::Domain, "mx.example.org", '+'),
            Ok(Some("smtp://a"))
        );
        assert_eq!(
            d.lookup(Service::Domain, "example.org", '+'),
            Ok(Some("smtp://b"))
        );
        let n = Table::map("n", [("192.0.2.0/24", "mx.example.org")]);
        assert_eq!(
            n.lookup(Service::Netaddr, "192.0.2.9", '+'),
            Ok(Some("mx.example.org"))
        );
        let a = Table::map("a", [("@example.org", "catchall")]);
        assert_eq!(
            a.lookup(Service::Mailaddr, "x@example.org", '+'),
            Ok(Some("catchall"))
        );
        assert!(matches!(
            a.check(Service::Auth, "u:p", '+'),
            Err(TableError::Unsupported { .. })
        ));
    }

    #[test]
    fn keyed_services_are_exact_case_insensitive_membership() {
        let t = Table::map(
            "k",
            [
                ("Alice", "1000:1000:/home/alice"),
                ("192.0.2.1", "mx.example.org"),
                ("*.example.org", "smtp://relay"),
            ],
        );
        for service in [
            Service::String,
            Service::Alias,
            Service::Credentials,
            Service::Userinfo,
            Service::Source,
            Service::Addrname,
            Service::Mailaddrmap,
            Service::Relayhost,
        ] {
            assert_eq!(t.check(service, "alice", '+'), Ok(true), "{service}");
            assert_eq!(t.check(service, "alic", '+'), Ok(false), "{service}");
            // No wildcard or CIDR semantics outside their services.
            assert_eq!(
                t.check(service, "mx.example.org", '+'),
                Ok(false),
                "{service}"
            );
            assert_eq!(
                t.lookup(service, "ALICE", '+'),
                Ok(Some("1000:1000:/home/alice")),
                "{service}"
            );
        }
        assert_eq!(t.check(Service::Domain, "mx.example.org", '+'), Ok(true));
        assert_eq!(
            t.lookup(Service::Relayhost, "*.example.org", '+'),
            Ok(Some("smtp://relay"))
        );
    }

    #[test]
    fn regexes() {
        let bad = list(&["^spam.*\\.example$", "(unclosed"]);
        assert!(matches!(
            bad.compile_regexes(),
            Err(TableError::BadRegex { .. })
        ));
        assert!(matches!(
            bad.check(Service::Regex, "x", '+'),
            Err(TableError::BadRegex { .. })
        ));
        let r = list(&["^spam.*\\.example$"]);
        assert_eq!(r.matches_regex("SPAMMER.example"), Ok(true));
        assert_eq!(r.matches_regex("ham.example"), Ok(false));
        // Entries that are not patterns do not matter until a regex lookup is made.
        let domains = list(&["*.example.org"]);
        assert!(domains.matches_domain("a.example.org"));
        let m = Table::map("rm", [("^a", "first"), ("b$", "second")]);
        assert_eq!(m.lookup(Service::Regex, "xab", '+'), Ok(Some("second")));
    }
}
