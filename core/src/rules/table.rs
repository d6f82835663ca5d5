//! Tables: the lists and mappings that match rules, actions and listeners consult.
//!
//! A table holds entries (a list of values, or key/value pairs) however it was declared —
//! inline in the configuration, read from a `file:` by the shell, or answered by a `proc:`
//! process — and offers the lookups OpenSMTPD defines (see table(5)): domains with `*.`
//! wildcards, network addresses with CIDR blocks, mail addresses in their `user`, `@domain` and
//! `user@domain` forms, regular expressions, and keyed values (aliases, virtual users,
//! credentials, …).

use std::collections::HashMap;
use std::net::IpAddr;

use regex::{Regex, RegexBuilder};
use thiserror::Error;

use super::netaddr::Cidr;

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
    /// Keys lowercased (lookups are case-insensitive, as OpenSMTPD's are).
    index: HashMap<String, usize>,
    cidrs: Vec<Cidr>,
    regexes: Vec<Regex>,
}

/// Why a table cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TableError {
    /// A value is not a valid regular expression (tables used with `regex`).
    #[error("table <{table}>: invalid regular expression {pattern:?}: {reason}")]
    BadRegex {
        /// The table.
        table: String,
        /// The pattern.
        pattern: String,
        /// What the regex compiler said.
        reason: String,
    },
}

impl Table {
    /// A table named `name` with `entries`.
    #[must_use]
    pub fn new(name: impl Into<String>, entries: Entries) -> Table {
        let mut index = HashMap::new();
        let mut cidrs = Vec::new();
        match &entries {
            Entries::List(values) => {
                for (i, v) in values.iter().enumerate() {
                    index.entry(v.to_lowercase()).or_insert(i);
                    if let Ok(c) = v.parse() {
                        cidrs.push(c);
                    }
                }
            }
            Entries::Map(pairs) => {
                for (i, (k, _)) in pairs.iter().enumerate() {
                    index.entry(k.to_lowercase()).or_insert(i);
                    if let Ok(c) = k.parse() {
                        cidrs.push(c);
                    }
                }
            }
        }
        Table {
            name: name.into(),
            entries,
            index,
            cidrs,
            regexes: Vec::new(),
        }
    }

    /// Compiles the values as regular expressions (POSIX ERE in OpenSMTPD; here the `regex`
    /// crate's syntax, case-insensitive). Call before using [`matches_regex`](Self::matches_regex).
    pub fn compile_regexes(&mut self) -> Result<(), TableError> {
        let mut regexes = Vec::new();
        for pattern in self.values() {
            let re = RegexBuilder::new(pattern)
                .case_insensitive(true)
                .build()
                .map_err(|e| TableError::BadRegex {
                    table: self.name.clone(),
                    pattern: pattern.to_owned(),
                    reason: e.to_string(),
                })?;
            regexes.push(re);
        }
        self.regexes = regexes;
        Ok(())
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
    pub fn values(&self) -> impl Iterator<Item = &str> {
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

    /// True when `key` is a value of the list or a key of the mapping (case-insensitive).
    #[must_use]
    pub fn contains(&self, key: &str) -> bool {
        self.index.contains_key(&key.to_lowercase())
    }

    /// The value mapped to `key` (case-insensitive); `None` for lists and absent keys.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&str> {
        let Entries::Map(pairs) = &self.entries else {
            return None;
        };
        self.index
            .get(&key.to_lowercase())
            .map(|&i| pairs[i].1.as_str())
    }

    /// Domain lookup: an exact entry, or a `*.parent` entry for any subdomain of `parent`.
    #[must_use]
    pub fn matches_domain(&self, domain: &str) -> bool {
        let domain = domain.trim_end_matches('.').to_lowercase();
        if self.index.contains_key(&domain) {
            return true;
        }
        // Walk up the labels: a.b.example.org matches *.b.example.org and *.example.org …
        let mut rest = domain.as_str();
        while let Some((_, parent)) = rest.split_once('.') {
            if self.index.contains_key(&format!("*.{parent}")) {
                return true;
            }
            rest = parent;
        }
        false
    }

    /// Network lookup: an entry that is an address or CIDR block containing `ip`.
    #[must_use]
    pub fn matches_netaddr(&self, ip: IpAddr) -> bool {
        self.cidrs.iter().any(|c| c.contains(ip))
    }

    /// Mail address lookup: entries `user`, `@domain`, `user@domain` (domains may be `*.`
    /// wildcards). `user` is the local part; `domain` may be empty for a bare user.
    #[must_use]
    pub fn matches_mailaddr(&self, user: &str, domain: &str) -> bool {
        self.values()
            .any(|entry| mailaddr_matches(entry, user, domain))
    }

    /// Regex lookup: some value (compiled with [`compile_regexes`](Self::compile_regexes))
    /// matches `text`.
    #[must_use]
    pub fn matches_regex(&self, text: &str) -> bool {
        self.regexes.iter().any(|re| re.is_match(text))
    }
}

fn domain_matches(pattern: &str, domain: &str) -> bool {
    let domain = domain.trim_end_matches('.');
    if let Some(parent) = pattern.strip_prefix("*.") {
        return domain.len() > parent.len() + 1
            && domain[domain.len() - parent.len()..].eq_ignore_ascii_case(parent)
            && domain.as_bytes()[domain.len() - parent.len() - 1] == b'.';
    }
    pattern.eq_ignore_ascii_case(domain)
}

fn mailaddr_matches(entry: &str, user: &str, domain: &str) -> bool {
    match entry.rsplit_once('@') {
        None => entry.eq_ignore_ascii_case(user),
        Some(("", d)) => domain_matches(d, domain),
        Some((u, d)) => u.eq_ignore_ascii_case(user) && domain_matches(d, domain),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(values: &[&str]) -> Table {
        Table::new(
            "t",
            Entries::List(values.iter().map(|s| (*s).to_owned()).collect()),
        )
    }

    #[test]
    fn domains_with_wildcards() {
        let t = list(&["example.org", "*.example.net"]);
        assert!(t.matches_domain("EXAMPLE.org"));
        assert!(!t.matches_domain("sub.example.org"));
        assert!(t.matches_domain("a.b.example.net"));
        assert!(!t.matches_domain("example.net"));
        assert!(!t.matches_domain("badexample.net"));
    }

    #[test]
    fn netaddrs() {
        let t = list(&[
            "192.0.2.1",
            "198.51.100.0/24",
            "ipv6:2001:db8::/32",
            "not-an-address",
        ]);
        assert!(t.matches_netaddr("198.51.100.9".parse().unwrap()));
        assert!(t.matches_netaddr("2001:db8::1".parse().unwrap()));
        assert!(!t.matches_netaddr("192.0.2.2".parse().unwrap()));
    }

    #[test]
    fn mailaddrs() {
        let t = list(&[
            "alice",
            "@example.net",
            "bob@example.org",
            "carol@*.example.com",
        ]);
        assert!(t.matches_mailaddr("Alice", "anywhere.test"));
        assert!(t.matches_mailaddr("x", "example.net"));
        assert!(t.matches_mailaddr("bob", "EXAMPLE.ORG"));
        assert!(!t.matches_mailaddr("bob", "example.net.evil"));
        assert!(t.matches_mailaddr("carol", "mx.example.com"));
        assert!(!t.matches_mailaddr("carol", "example.com"));
        assert!(!t.matches_mailaddr("dave", "example.org"));
    }

    #[test]
    fn maps_and_regexes() {
        let t = Table::new("m", Entries::Map(vec![("Root".into(), "alice".into())]));
        assert_eq!(t.get("root"), Some("alice"));
        assert!(t.contains("ROOT"));
        assert_eq!(list(&["a"]).get("a"), None);
        let mut r = list(&["^spam.*\\.example$", "(unclosed"]);
        assert!(matches!(
            r.compile_regexes(),
            Err(TableError::BadRegex { .. })
        ));
        let mut r = list(&["^spam.*\\.example$"]);
        r.compile_regexes().unwrap();
        assert!(r.matches_regex("SPAMMER.example"));
        assert!(!r.matches_regex("ham.example"));
    }
}
