//! `spf walk DOMAIN`: every IPv4 and IPv6 network a domain's SPF record allows.
//!
//! [`walk`] reads the domain's SPF record (RFC 7208) through a [`Resolver`] and follows it:
//! `include:` and `redirect=` lead to other records, `a` and `mx` (with their `:domain` and
//! `/cidr4//cidr6` forms) are looked up, `ip4:` and `ip6:` are taken as written. The result
//! holds the networks, deduplicated and sorted (IPv4 then IPv6, by address, then by prefix),
//! and every problem met on the way, in the order met:
//!
//! ```no_run
//! # async fn f(resolver: &dyn petrel_daemon::mta::resolver::Resolver) {
//! let walk = petrel_daemon::spf::walk(resolver, "example.org").await;
//! print!("{}", walk.table()); // `192.0.2.0/24` lines, ready for a netaddr table
//! for problem in &walk.problems {
//!     eprintln!("{problem}");
//! }
//! # }
//! ```
//!
//! What is listed, and what is reported instead:
//! - Only mechanisms with the pass qualifier (`+` or none) list networks. `-`, `~` and `?`
//!   mechanisms are reported as [`Problem::Skipped`] (except `all`, which ends most records),
//!   and so are `ptr`, `exists`, `exp=` and unknown modifiers, which name no networks, and any
//!   mechanism after `all`, which a receiver never reaches. `+all` is reported as
//!   [`Problem::AllowsAll`]: `0.0.0.0/0` and `::/0` are not listed.
//! - A domain with several SPF records is reported and none of them is followed, as a
//!   receiver honours none of them. A term that does not parse is reported and the rest of
//!   the record is still walked, although a receiver would give up on the whole record.
//! - The limit of 10 DNS-querying terms (`include`, `a`, `mx`, `ptr`, `exists`, `redirect`;
//!   RFC 7208 §4.6.4) is counted in the order a receiver evaluates them. Going over it is
//!   reported once ([`Problem::LookupLimit`]) and the walk goes on to the end, so that the
//!   list shows everything the records name, including what receivers would never reach.
//!   Likewise an `mx` with more than 10 exchanges is reported and all of them are listed.
//! - A domain reached twice on one chain of `include`/`redirect` is a loop: reported, and not
//!   followed again. A domain reached again on another branch is not walked twice (its
//!   networks are already listed), but its lookups are counted again, as a receiver makes them.
//! - A chain of `include`/`redirect` is followed at most [`MAX_DEPTH`] records deep.
//! - Domain names with macros are expanded when they only use `%{d}` (the current domain),
//!   `%%`, `%_` and `%-`; others depend on the client or the message and are skipped.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::net::IpAddr;

use petrel_core::relay::{DnsError, normalize_name};
use petrel_core::rules::Cidr;

use crate::mta::resolver::{BoxFuture, Lookup, Resolver};

/// The most DNS-querying terms a receiver evaluates for one check (RFC 7208 §4.6.4).
pub const LOOKUP_LIMIT: usize = 10;

/// The most exchanges of one `mx` term a receiver looks up (RFC 7208 §4.6.4).
pub const MX_LIMIT: usize = 10;

/// The longest chain of `include`/`redirect` a walk follows, so that a hostile set of records
/// cannot make it recurse without end (receivers stop far earlier, at [`LOOKUP_LIMIT`]).
pub const MAX_DEPTH: usize = 50;

/// What a walk found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Walk {
    /// The networks allowed: deduplicated, IPv4 then IPv6, by address then prefix, host bits
    /// cleared (`ip4:192.0.2.7/24` gives `192.0.2.0/24`); a single address has the full prefix.
    pub networks: Vec<Cidr>,
    /// Every problem met, in the order met.
    pub problems: Vec<Problem>,
}

impl Walk {
    /// The networks one per line (each ending in a newline), as a netaddr table file takes
    /// them: `192.0.2.0/24`, `192.0.2.7/32`, `2001:db8::/32`.
    #[must_use]
    pub fn table(&self) -> String {
        self.networks.iter().map(|n| format!("{n}\n")).collect()
    }
}

/// The term that led to a lookup: `include:x` (or another term) in the record of `domain`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Via {
    /// The domain whose SPF record holds the term.
    pub domain: String,
    /// The term as written.
    pub term: String,
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} in the SPF record of {}", self.term, self.domain)
    }
}

fn via_text(via: &Option<Via>) -> String {
    via.as_ref()
        .map(|v| format!(" (for {v})"))
        .unwrap_or_default()
}

/// A problem met during a walk, in plain words naming the domain.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// A domain has no SPF record (no TXT record starting with `v=spf1`).
    #[error("{name} has no SPF record{}", via_text(.via))]
    NoRecord {
        /// The domain.
        name: String,
        /// The term that named it; `None` for the walked domain itself.
        via: Option<Via>,
    },
    /// A domain has more than one SPF record: none is followed.
    #[error(
        "{name} has {count} SPF records where only one is allowed; none of them was followed{}",
        via_text(.via)
    )]
    SeveralRecords {
        /// The domain.
        name: String,
        /// How many records start with `v=spf1`.
        count: usize,
        /// The term that named it; `None` for the walked domain itself.
        via: Option<Via>,
    },
    /// A name does not exist.
    #[error("{name} does not exist (NXDOMAIN on its {record} lookup){}", via_text(.via))]
    NxDomain {
        /// The name looked up.
        name: String,
        /// The record type asked: `TXT`, `A`, `AAAA` or `MX`.
        record: &'static str,
        /// The term that named it; `None` for the walked domain itself.
        via: Option<Via>,
    },
    /// A lookup failed (SERVFAIL, a timeout, an unreachable server): its networks are missing.
    #[error("the {record} lookup of {name} failed: {error}{}", via_text(.via))]
    DnsFailure {
        /// The name looked up.
        name: String,
        /// The record type asked: `TXT`, `A`, `AAAA` or `MX`.
        record: &'static str,
        /// What the resolver said.
        error: String,
        /// The term that named it; `None` for the walked domain itself.
        via: Option<Via>,
    },
    /// An `a` or `mx` term matches nothing: its name has no records of the type it needs.
    #[error("{name} has no {record} records, so {via} matches no address")]
    NoAddresses {
        /// The name looked up.
        name: String,
        /// `A or AAAA`, or `MX`.
        record: &'static str,
        /// The term.
        via: Via,
    },
    /// A term that does not parse.
    #[error("syntax error in the SPF record of {domain}: \"{term}\": {reason}")]
    Syntax {
        /// The domain whose record holds the term.
        domain: String,
        /// The term as written.
        term: String,
        /// What is wrong.
        reason: String,
    },
    /// An `include` or `redirect` leads back to a domain already on its chain.
    #[error(
        "loop: {term} in the SPF record of {domain} leads back to a domain already on the way \
         ({}); not followed again",
        .chain.join(" -> ")
    )]
    Loop {
        /// The domain whose record holds the term.
        domain: String,
        /// The term as written.
        term: String,
        /// The chain of domains from the walked one, ending with the one reached twice.
        chain: Vec<String>,
    },
    /// The DNS lookup limit is exceeded (reported once per walk, at the term going over).
    #[error(
        "more than {LOOKUP_LIMIT} DNS lookups: {term} in the SPF record of {domain} brings \
         the count to {count}; receivers stop here with a permanent error, the walk went on"
    )]
    LookupLimit {
        /// The domain whose record holds the term.
        domain: String,
        /// The term that went over the limit.
        term: String,
        /// The count of lookups with this term.
        count: usize,
    },
    /// An `mx` term's domain has more exchanges than a receiver looks up.
    #[error(
        "{name} has {count} MX hosts, more than the {MX_LIMIT} receivers look up for {via}; \
         all of them were listed"
    )]
    MxLimit {
        /// The domain whose MX records were looked up.
        name: String,
        /// How many exchanges it has.
        count: usize,
        /// The term.
        via: Via,
    },
    /// An `include` or `redirect` nested deeper than [`MAX_DEPTH`]: not followed.
    #[error(
        "{term} in the SPF record of {domain} is nested more than {MAX_DEPTH} records deep; \
         not followed"
    )]
    TooDeep {
        /// The domain whose record holds the term.
        domain: String,
        /// The term as written.
        term: String,
    },
    /// `+all`: every address is allowed. `0.0.0.0/0` and `::/0` are not listed.
    #[error(
        "{term} in the SPF record of {domain} allows every address \
         (0.0.0.0/0 and ::/0 are not listed)"
    )]
    AllowsAll {
        /// The domain whose record holds the term.
        domain: String,
        /// The term as written.
        term: String,
    },
    /// A valid term that lists no networks (`ptr`, `exists`, `exp=`, a non-pass qualifier, a
    /// term after `all`, a client-dependent macro).
    #[error("{term} in the SPF record of {domain} lists no networks: {reason}")]
    Skipped {
        /// The domain whose record holds the term.
        domain: String,
        /// The term as written.
        term: String,
        /// Why.
        reason: &'static str,
    },
}

/// Walks the SPF record of `domain` and everything it leads to. Never fails: whatever goes
/// wrong is in [`Walk::problems`] (see the [module documentation](self)).
pub async fn walk(resolver: &dyn Resolver, domain: &str) -> Walk {
    let mut walker = Walker {
        resolver,
        networks: BTreeSet::new(),
        problems: Vec::new(),
        lookups: 0,
        walked: HashMap::new(),
    };
    let domain = normalize_name(domain);
    walker.domain(domain.clone(), vec![domain], None).await;
    Walk {
        networks: walker
            .networks
            .into_iter()
            .map(|(bits, prefix)| {
                let addr = match bits {
                    Bits::V4(a) => IpAddr::V4(a.into()),
                    Bits::V6(a) => IpAddr::V6(a.into()),
                };
                Cidr::new(addr, prefix)
            })
            .collect(),
        problems: walker.problems,
    }
}

/// An address as a number, IPv4 sorting before IPv6.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Bits {
    V4(u32),
    V6(u128),
}

struct Walker<'r> {
    resolver: &'r dyn Resolver,
    /// (address, prefix), IPv4 first.
    networks: BTreeSet<(Bits, u8)>,
    problems: Vec<Problem>,
    /// DNS-querying terms evaluated so far.
    lookups: usize,
    /// Domains already walked, with the lookups their record made.
    walked: HashMap<String, usize>,
}

/// A mechanism's parsed form.
enum Mechanism {
    All,
    Include,
    A(u8, u8),
    Mx(u8, u8),
    Ptr,
    Exists,
    Ip(IpAddr, u8),
}

impl Mechanism {
    /// True for the terms that count towards [`LOOKUP_LIMIT`].
    fn queries_dns(&self) -> bool {
        !matches!(self, Mechanism::All | Mechanism::Ip(..))
    }
}

/// A term's target after macro expansion.
enum Target {
    Name(String),
    /// A macro that depends on the client or the message.
    Unexpandable,
}

impl Walker<'_> {
    fn add(&mut self, ip: IpAddr, prefix: u8) {
        let net = Cidr::network_of(ip, prefix, prefix);
        let key = match net.addr() {
            IpAddr::V4(a) => (Bits::V4(a.into()), net.prefix()),
            IpAddr::V6(a) => (Bits::V6(a.into()), net.prefix()),
        };
        self.networks.insert(key);
    }

    /// Counts `n` lookups for `term`, reporting the first time the limit is passed.
    fn count(&mut self, domain: &str, term: &str, n: usize) {
        let before = self.lookups;
        self.lookups += n;
        if before <= LOOKUP_LIMIT && self.lookups > LOOKUP_LIMIT {
            self.problems.push(Problem::LookupLimit {
                domain: domain.to_owned(),
                term: term.to_owned(),
                count: self.lookups,
            });
        }
    }

    fn syntax(&mut self, domain: &str, term: &str, reason: impl Into<String>) {
        self.problems.push(Problem::Syntax {
            domain: domain.to_owned(),
            term: term.to_owned(),
            reason: reason.into(),
        });
    }

    fn skipped(&mut self, domain: &str, term: &str, reason: &'static str) {
        self.problems.push(Problem::Skipped {
            domain: domain.to_owned(),
            term: term.to_owned(),
            reason,
        });
    }

    fn lookup_failed(&mut self, name: &str, record: &'static str, e: DnsError, via: Option<Via>) {
        self.problems.push(match e {
            DnsError::NxDomain => Problem::NxDomain {
                name: name.to_owned(),
                record,
                via,
            },
            DnsError::NoData => match via {
                Some(via) => Problem::NoAddresses {
                    name: name.to_owned(),
                    record,
                    via,
                },
                None => Problem::NoRecord {
                    name: name.to_owned(),
                    via,
                },
            },
            DnsError::Temporary(error) => Problem::DnsFailure {
                name: name.to_owned(),
                record,
                error,
                via,
            },
        });
    }

    /// The one SPF record of `name`, or `None` with the problem reported.
    async fn record(&mut self, name: &str, via: &Option<Via>) -> Option<String> {
        let txts = match self.resolver.txt(name).await {
            Ok(txts) => txts,
            Err(DnsError::NoData) => Vec::new(),
            Err(e) => {
                self.lookup_failed(name, "TXT", e, via.clone());
                return None;
            }
        };
        let mut spf: Vec<String> = txts.into_iter().filter(|t| is_spf(t)).collect();
        match spf.len() {
            1 => spf.pop(),
            0 => {
                self.problems.push(Problem::NoRecord {
                    name: name.to_owned(),
                    via: via.clone(),
                });
                None
            }
            count => {
                self.problems.push(Problem::SeveralRecords {
                    name: name.to_owned(),
                    count,
                    via: via.clone(),
                });
                None
            }
        }
    }

    /// Walks the record of `domain`, the last of `chain`.
    fn domain(
        &mut self,
        domain: String,
        chain: Vec<String>,
        via: Option<Via>,
    ) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let start = self.lookups;
            if let Some(record) = self.record(&domain, &via).await {
                self.terms(&domain, &chain, &record).await;
            }
            self.walked.insert(domain, self.lookups - start);
        })
    }

    /// Follows `include` or `redirect` from `domain` to `target`.
    async fn follow(&mut self, domain: &str, chain: &[String], term: &str, target: String) {
        self.count(domain, term, 1);
        if chain.contains(&target) {
            let mut chain = chain.to_vec();
            chain.push(target);
            self.problems.push(Problem::Loop {
                domain: domain.to_owned(),
                term: term.to_owned(),
                chain,
            });
        } else if let Some(&n) = self.walked.get(&target) {
            self.count(domain, term, n);
        } else if chain.len() > MAX_DEPTH {
            self.problems.push(Problem::TooDeep {
                domain: domain.to_owned(),
                term: term.to_owned(),
            });
        } else {
            let mut chain = chain.to_vec();
            chain.push(target.clone());
            let via = Some(Via {
                domain: domain.to_owned(),
                term: term.to_owned(),
            });
            self.domain(target, chain, via).await;
        }
    }

    async fn terms(&mut self, domain: &str, chain: &[String], record: &str) {
        let mut redirect: Option<(String, Target)> = None;
        let mut exp_seen = false;
        let mut after_all = false;
        for term in record[6..].split(' ').filter(|t| !t.is_empty()) {
            if let Some((name, value)) = modifier(term) {
                match name.to_ascii_lowercase().as_str() {
                    "redirect" | "exp" if value.is_empty() => {
                        self.syntax(domain, term, "a domain is needed after \"=\"");
                    }
                    "redirect" if redirect.is_some() => {
                        self.syntax(domain, term, "a second redirect= modifier");
                    }
                    "redirect" => match expand(value, domain) {
                        Ok(target) => redirect = Some((term.to_owned(), target)),
                        Err(reason) => self.syntax(domain, term, reason),
                    },
                    "exp" if exp_seen => self.syntax(domain, term, "a second exp= modifier"),
                    "exp" => {
                        exp_seen = true;
                        self.skipped(
                            domain,
                            term,
                            "exp= only names the explanation given with a refusal",
                        );
                    }
                    _ => self.skipped(domain, term, "an unknown modifier, which receivers ignore"),
                }
                continue;
            }
            let (pass, body) = match term.as_bytes()[0] {
                b'+' => (true, &term[1..]),
                b'-' | b'~' | b'?' => (false, &term[1..]),
                _ => (true, term),
            };
            let mechanism = match parse_mechanism(body, domain) {
                Ok(m) => m,
                Err(reason) => {
                    self.syntax(domain, term, reason);
                    continue;
                }
            };
            if after_all {
                self.skipped(
                    domain,
                    term,
                    "it comes after \"all\", so receivers never reach it",
                );
                continue;
            }
            let (mechanism, target) = match mechanism {
                (m, Some(Target::Unexpandable)) => {
                    if m.queries_dns() {
                        self.count(domain, term, 1);
                    }
                    self.skipped(
                        domain,
                        term,
                        "its domain has macros that depend on the client or the message",
                    );
                    continue;
                }
                (m, Some(Target::Name(name))) => (m, Some(name)),
                (m, None) => (m, None),
            };
            if let Mechanism::All = mechanism {
                after_all = true;
                if pass {
                    self.problems.push(Problem::AllowsAll {
                        domain: domain.to_owned(),
                        term: term.to_owned(),
                    });
                }
                continue;
            }
            if !pass {
                if mechanism.queries_dns() {
                    self.count(domain, term, 1);
                }
                self.skipped(
                    domain,
                    term,
                    "its qualifier is not pass (+), so it allows nothing",
                );
                continue;
            }
            let via = Via {
                domain: domain.to_owned(),
                term: term.to_owned(),
            };
            match mechanism {
                Mechanism::Include => {
                    let target = target.expect("include has a domain");
                    self.follow(domain, chain, term, target).await;
                }
                Mechanism::A(c4, c6) => {
                    self.count(domain, term, 1);
                    let name = target.unwrap_or_else(|| domain.to_owned());
                    self.addresses(&name, c4, c6, &via).await;
                }
                Mechanism::Mx(c4, c6) => {
                    self.count(domain, term, 1);
                    let name = target.unwrap_or_else(|| domain.to_owned());
                    self.mx(&name, c4, c6, &via).await;
                }
                Mechanism::Ptr => {
                    self.count(domain, term, 1);
                    self.skipped(
                        domain,
                        term,
                        "ptr depends on the client's reverse DNS (and is deprecated)",
                    );
                }
                Mechanism::Exists => {
                    self.count(domain, term, 1);
                    self.skipped(
                        domain,
                        term,
                        "exists only says whether a name has an address",
                    );
                }
                Mechanism::Ip(ip, prefix) => self.add(ip, prefix),
                Mechanism::All => unreachable!("handled above"),
            }
        }
        if let Some((term, target)) = redirect {
            if after_all {
                self.skipped(
                    domain,
                    &term,
                    "receivers ignore redirect= in a record with \"all\"",
                );
            } else {
                match target {
                    Target::Name(target) => self.follow(domain, chain, &term, target).await,
                    Target::Unexpandable => {
                        self.count(domain, &term, 1);
                        self.skipped(
                            domain,
                            &term,
                            "its domain has macros that depend on the client or the message",
                        );
                    }
                }
            }
        }
    }

    /// The A and AAAA records of `name` as networks; a name with neither is reported.
    async fn addresses(&mut self, name: &str, c4: u8, c6: u8, via: &Via) {
        let (v4, v6): (Lookup<_>, Lookup<_>) =
            tokio::join!(self.resolver.ipv4(name), self.resolver.ipv6(name));
        let mut empty = true;
        let mut nx = false;
        match v4 {
            Ok(addrs) => {
                empty = false;
                for a in addrs {
                    self.add(IpAddr::V4(a), c4);
                }
            }
            Err(DnsError::NoData) => {}
            Err(e) => {
                empty = false;
                nx = e == DnsError::NxDomain;
                self.lookup_failed(name, "A", e, Some(via.clone()));
            }
        }
        match v6 {
            Ok(addrs) => {
                empty = false;
                for a in addrs {
                    self.add(IpAddr::V6(a), c6);
                }
            }
            Err(DnsError::NoData) => {}
            // One NXDOMAIN per name is enough.
            Err(DnsError::NxDomain) if nx => {}
            Err(e) => {
                empty = false;
                self.lookup_failed(name, "AAAA", e, Some(via.clone()));
            }
        }
        if empty {
            self.problems.push(Problem::NoAddresses {
                name: name.to_owned(),
                record: "A or AAAA",
                via: via.clone(),
            });
        }
    }

    async fn mx(&mut self, name: &str, c4: u8, c6: u8, via: &Via) {
        let mut hosts = match self.resolver.mx(name).await {
            Ok(mxs) => mxs,
            Err(e) => {
                self.lookup_failed(name, "MX", e, Some(via.clone()));
                return;
            }
        };
        hosts.sort_by_key(|mx| mx.preference);
        // The null MX (`0 .`) names no host.
        hosts.retain(|mx| mx.exchange != ".");
        if hosts.len() > MX_LIMIT {
            self.problems.push(Problem::MxLimit {
                name: name.to_owned(),
                count: hosts.len(),
                via: via.clone(),
            });
        }
        if hosts.is_empty() {
            self.problems.push(Problem::NoAddresses {
                name: name.to_owned(),
                record: "MX",
                via: via.clone(),
            });
        }
        for mx in hosts {
            self.addresses(&mx.exchange, c4, c6, via).await;
        }
    }
}

/// A TXT record that is an SPF record: `v=spf1` in any case, then a space or the end.
fn is_spf(txt: &str) -> bool {
    txt.get(..6)
        .is_some_and(|v| v.eq_ignore_ascii_case("v=spf1"))
        && matches!(txt.as_bytes().get(6), None | Some(b' '))
}

/// `name=value` when `term` is a modifier (RFC 7208 §4.6.1: the name is a letter, then
/// letters, digits, `-`, `_` or `.`).
fn modifier(term: &str) -> Option<(&str, &str)> {
    let (name, value) = term.split_once('=')?;
    let mut chars = name.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    .then_some((name, value))
}

/// Parses a mechanism without its qualifier, with its target expanded.
fn parse_mechanism(body: &str, domain: &str) -> Result<(Mechanism, Option<Target>), String> {
    let split = body.find([':', '/']).unwrap_or(body.len());
    let (name, rest) = body.split_at(split);
    let lower = name.to_ascii_lowercase();
    let no_arguments = |m: Mechanism| {
        if rest.is_empty() {
            Ok((m, None))
        } else {
            Err(format!("\"{lower}\" takes no argument"))
        }
    };
    let required = |rest: &str| -> Result<Target, String> {
        match rest.strip_prefix(':') {
            Some(spec) if !spec.is_empty() => expand(spec, domain),
            _ => Err(format!("\"{lower}\" needs \":\" and a domain")),
        }
    };
    match lower.as_str() {
        "all" => no_arguments(Mechanism::All),
        "include" => Ok((Mechanism::Include, Some(required(rest)?))),
        "exists" => Ok((Mechanism::Exists, Some(required(rest)?))),
        "ptr" if rest.is_empty() => Ok((Mechanism::Ptr, None)),
        "ptr" => Ok((Mechanism::Ptr, Some(required(rest)?))),
        "a" | "mx" => {
            let (spec, c4, c6) = dual_cidr(rest)?;
            let target = match spec {
                "" => None,
                _ => Some(required(spec)?),
            };
            let m = if lower == "a" {
                Mechanism::A(c4, c6)
            } else {
                Mechanism::Mx(c4, c6)
            };
            Ok((m, target))
        }
        "ip4" | "ip6" => {
            let text = rest
                .strip_prefix(':')
                .ok_or_else(|| format!("\"{lower}\" needs \":\" and a network"))?;
            let (addr, prefix) = match text.split_once('/') {
                Some((a, p)) => (a, Some(cidr_length(p)?)),
                None => (text, None),
            };
            let (ip, max) = if lower == "ip4" {
                let ip = addr
                    .parse::<std::net::Ipv4Addr>()
                    .map_err(|_| format!("\"{addr}\" is not an IPv4 address"))?;
                (IpAddr::V4(ip), 32)
            } else {
                let ip = addr
                    .parse::<std::net::Ipv6Addr>()
                    .map_err(|_| format!("\"{addr}\" is not an IPv6 address"))?;
                (IpAddr::V6(ip), 128)
            };
            let prefix = prefix.unwrap_or(max);
            if prefix > max {
                return Err(format!("the prefix length {prefix} is longer than {max}"));
            }
            Ok((Mechanism::Ip(ip, prefix), None))
        }
        "" => Err("a term without a mechanism".into()),
        _ => Err(format!("unknown mechanism \"{name}\"")),
    }
}

/// Splits `[:domain][/cidr4][//cidr6]` into the domain part and the two lengths (32 and 128
/// when absent).
fn dual_cidr(rest: &str) -> Result<(&str, u8, u8), String> {
    let (rest, c6) = match rest.rfind("//") {
        Some(i) if rest[i + 2..].bytes().all(|b| b.is_ascii_digit()) => {
            (&rest[..i], cidr_length(&rest[i + 2..])?)
        }
        _ => (rest, 128),
    };
    let (rest, c4) = match rest.rfind('/') {
        Some(i) if rest[i + 1..].bytes().all(|b| b.is_ascii_digit()) => {
            (&rest[..i], cidr_length(&rest[i + 1..])?)
        }
        _ => (rest, 32),
    };
    if c4 > 32 {
        return Err(format!("the IPv4 prefix length {c4} is longer than 32"));
    }
    if c6 > 128 {
        return Err(format!("the IPv6 prefix length {c6} is longer than 128"));
    }
    if !rest.is_empty() && !rest.starts_with(':') {
        return Err(format!("unexpected \"{rest}\""));
    }
    Ok((rest, c4, c6))
}

fn cidr_length(digits: &str) -> Result<u8, String> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("\"/{digits}\" is not a prefix length"));
    }
    digits
        .parse::<u8>()
        .map_err(|_| format!("the prefix length {digits} is too long"))
}

/// Expands a domain-spec's macros that need no client (`%{d}`, `%%`, `%_`, `%-`) and checks
/// the result is a domain name.
fn expand(spec: &str, domain: &str) -> Result<Target, String> {
    let mut out = String::with_capacity(spec.len());
    let mut rest = spec;
    let mut unexpandable = false;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        match after.as_bytes().first() {
            Some(b'%') => {
                out.push('%');
                rest = &after[1..];
            }
            Some(b'_') => {
                out.push(' ');
                rest = &after[1..];
            }
            Some(b'-') => {
                out.push_str("%20");
                rest = &after[1..];
            }
            Some(b'{') => {
                let end = after
                    .find('}')
                    .ok_or_else(|| format!("unterminated macro in \"{spec}\""))?;
                let body = &after[1..end];
                let letter = body.chars().next().map(|c| c.to_ascii_lowercase());
                if !matches!(
                    letter,
                    Some('s' | 'l' | 'o' | 'd' | 'i' | 'p' | 'h' | 'c' | 'r' | 't' | 'v')
                ) {
                    return Err(format!("unknown macro \"%{{{body}}}\""));
                }
                if body.eq_ignore_ascii_case("d") {
                    out.push_str(domain);
                } else {
                    unexpandable = true;
                }
                rest = &after[end + 1..];
            }
            _ => {
                return Err(format!(
                    "a lone \"%\" in \"{spec}\" (write %% for a percent sign)"
                ));
            }
        }
    }
    out.push_str(rest);
    if unexpandable {
        return Ok(Target::Unexpandable);
    }
    let name = normalize_name(&out);
    check_domain(&name).map_err(|reason| format!("\"{out}\" is not a domain name: {reason}"))?;
    Ok(Target::Name(name))
}

/// RFC 7208's domain-end: at least two labels, the last one a top-level label (letters,
/// digits and inner hyphens, not all digits).
fn check_domain(name: &str) -> Result<(), &'static str> {
    if name.len() > 253 {
        return Err("longer than 253 characters");
    }
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() < 2 {
        return Err("it has no dot");
    }
    if labels.iter().any(|l| l.is_empty() || l.len() > 63) {
        return Err("an empty or too long label");
    }
    if labels
        .iter()
        .any(|l| l.bytes().any(|b| !(0x21..=0x7e).contains(&b)))
    {
        return Err("a blank or a character that is not printable ASCII");
    }
    let top = labels[labels.len() - 1];
    let valid_top = top.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !top.starts_with('-')
        && !top.ends_with('-')
        && !top.bytes().all(|b| b.is_ascii_digit());
    if valid_top {
        Ok(())
    } else {
        Err("its last label is not a top-level label")
    }
}

#[cfg(test)]
mod tests;
