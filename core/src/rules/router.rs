//! Match rule evaluation: which action a recipient goes to (`ruleset.c`).
//!
//! [`Ruleset::new`] compiles the configuration's `match` rules once — literal values become
//! small in-memory tables, literal regular expressions are compiled — and [`Ruleset::route`]
//! evaluates them for one recipient in file order: the **first** rule whose conditions all
//! hold decides. A `reject` rule, and a recipient no rule matches, are refused with
//! `550 Invalid recipient`, so a configuration never relays by accident; a lookup that fails
//! makes the recipient fail temporarily (`451 Temporary failure`), even under a negation.
//!
//! Inside a rule the conditions are checked in OpenSMTPD's order — tag, from, for, helo, auth,
//! tls, mail-from, rcpt-to — stopping at the first that does not hold, so a later condition's
//! table is not consulted (nor its failure seen) when an earlier one already excludes the rule.
//! Each condition is, with `!` inverting its result:
//!
//! | condition | key | compared as |
//! |---|---|---|
//! | `tag` | the listener's tag | string (or regex) |
//! | `from any`, `from local`, `from src` | the client address (`192.0.2.1`, `[2001:db8::1]`), `local` on the socket | netaddr in `<anyhost>`, `<localhost>`, the table |
//! | `from socket` | | the session came in on the local socket |
//! | `from rdns` | | the client has a reverse DNS name |
//! | `from rdns NAME` | the reverse DNS name | domain (false, even negated, without a name) |
//! | `for any`, `for local`, `for domain` | the recipient's domain | domain in `<anydestination>`, `<localnames>`, the table |
//! | `helo` | the HELO/EHLO name | domain |
//! | `auth` | | the session authenticated |
//! | `auth NAME` | the user name | `mailaddr` if it has an `@`, else string (false unauthenticated) |
//! | `tls` | | the session uses TLS |
//! | `mail-from` | `user@domain`, `@` for `<>` | mailaddr |
//! | `rcpt-to` | `user@domain` | mailaddr |
//!
//! **Internal envelopes** — addresses produced by alias, virtual or `.forward` expansion, and
//! bounces decoded from SRS — are matched as coming from `local`: the key of every `from` table
//! is the string `local`, so `from any` and `from local` match and `from src <t>` matches when
//! `<t>` lists `local`; `from socket` and `from rdns` without a table never match them, not
//! even negated. The session's other facts (tag, HELO, authentication, TLS) still apply.
//!
//! Where Petrel deviates from OpenSMTPD 7.8:
//! - `tls` is evaluated (OpenSMTPD's envelope does not record TLS, and any rule that reaches
//!   a `tls` condition fails temporarily there);
//! - `from rdns <t>` compares the name as a domain, so `*.example.org` entries work
//!   (OpenSMTPD compares it as a network address, i.e. as an exact string);
//! - refusals carry enhanced status codes: `550 5.7.1 Invalid recipient`,
//!   `451 4.3.0 Temporary failure`.

use std::collections::HashMap;
use std::net::IpAddr;

use thiserror::Error;

use super::address::MailAddr;
use super::lookups::{ANYDESTINATION, ANYHOST, LOCALHOST, LOCALNAMES, LookupError, Lookups};
use super::service::Service;
use super::table::{Table, TableError};
use crate::config::{
    Action, Config, Destination, Lookup, MatchDecision, MatchRule, Matcher, Origin,
};
use crate::queue::envelope;
use crate::smtp::{EnhancedCode, Reply};
use crate::srs::{Srs, SrsConfig, SrsConfigError};

/// Where a session comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// The local enqueue socket (`sendmail`): matched by `from socket`, and as `local`.
    Socket,
    /// A network client.
    Ip(IpAddr),
}

/// The facts of an SMTP session that match rules test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionFacts {
    /// The listener's `tag`.
    pub tag: Option<String>,
    /// Where the client is.
    pub source: Source,
    /// The client's reverse DNS name, if it has one.
    pub rdns: Option<String>,
    /// The HELO/EHLO argument.
    pub helo: Option<String>,
    /// The authenticated user.
    pub auth: Option<String>,
    /// The session uses TLS.
    pub tls: bool,
}

impl SessionFacts {
    /// A session on the local socket with nothing else known.
    #[must_use]
    pub fn socket() -> SessionFacts {
        SessionFacts::new(Source::Socket)
    }

    /// A session from network client `ip` with nothing else known.
    #[must_use]
    pub fn ip(ip: IpAddr) -> SessionFacts {
        SessionFacts::new(Source::Ip(ip))
    }

    fn new(source: Source) -> SessionFacts {
        SessionFacts {
            tag: None,
            source,
            rdns: None,
            helo: None,
            auth: None,
            tls: false,
        }
    }

    /// The facts a queued envelope kept (an origin without an address was the local socket).
    #[must_use]
    pub fn from_origin(origin: &envelope::Origin) -> SessionFacts {
        SessionFacts {
            tag: origin.tag.clone(),
            source: origin.src.map_or(Source::Socket, Source::Ip),
            rdns: origin.rdns.clone(),
            helo: origin.helo.clone(),
            auth: origin.auth.clone(),
            tls: origin.tls,
        }
    }
}

/// One recipient to route.
#[derive(Clone, Copy, Debug)]
pub struct RouteContext<'a> {
    /// The session the message came from.
    pub session: &'a SessionFacts,
    /// The envelope sender; [`MailAddr::null`] for bounces.
    pub sender: &'a MailAddr,
    /// The recipient (after expansion: the expanded address).
    pub rcpt: &'a MailAddr,
    /// Produced by expansion or SRS decoding: matched as coming from `local`.
    pub internal: bool,
}

/// Where a recipient goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Routed {
    /// To the action of that name.
    Action(String),
    /// Refused permanently: a `reject` rule matched, or no rule did.
    Reject(Reply),
    /// Refused temporarily: a lookup failed.
    TempFail(Reply),
}

/// `550 5.7.1 Invalid recipient`: what a `reject` rule and an unmatched recipient get.
pub const INVALID_RECIPIENT: Reply =
    Reply::fixed(550, EnhancedCode::new(5, 7, 1), "Invalid recipient");

/// `451 4.3.0 Temporary failure`: what a recipient gets when a lookup fails.
pub const TEMPORARY_FAILURE: Reply =
    Reply::fixed(451, EnhancedCode::new(4, 3, 0), "Temporary failure");

/// Why a configuration's rules cannot be compiled (the parser already refuses these; a
/// configuration built in code may not have been through it).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RulesetError {
    /// A literal regular expression does not compile.
    #[error("match rule {rule}: {source}")]
    Regex {
        /// The rule, from 1.
        rule: usize,
        /// The compiler's complaint.
        source: TableError,
    },
    /// A rule names an action that is not declared.
    #[error("match rule {rule}: no action named {name:?}")]
    UnknownAction {
        /// The rule, from 1.
        rule: usize,
        /// The action.
        name: String,
    },
    /// The `srs` settings are unusable.
    #[error("srs: {0}")]
    Srs(#[from] SrsConfigError),
}

/// A value or table a condition compares against.
#[derive(Clone, Debug)]
enum TableRef {
    /// A table the lookups answer for (declared, or built in).
    Named(String),
    /// A literal written in the rule, as a one-entry table.
    Inline(Box<Table>),
}

/// A condition's value or table, ready to check keys against (a literal becomes a one-entry
/// table, its regular expression compiled once).
#[derive(Clone, Debug)]
pub(crate) struct CompiledMatcher {
    table: TableRef,
    regex: bool,
}

impl CompiledMatcher {
    fn named(name: &str) -> CompiledMatcher {
        CompiledMatcher {
            table: TableRef::Named(name.to_owned()),
            regex: false,
        }
    }

    pub(crate) fn compile(m: &Matcher, rule: usize) -> Result<CompiledMatcher, RulesetError> {
        let table = match &m.lookup {
            Lookup::Table(name) => TableRef::Named(name.clone()),
            Lookup::Value(value) => {
                let table = Table::list(value.clone(), [value.clone()]);
                if m.regex {
                    table
                        .compile_regexes()
                        .map_err(|source| RulesetError::Regex { rule, source })?;
                }
                TableRef::Inline(Box::new(table))
            }
        };
        Ok(CompiledMatcher {
            table,
            regex: m.regex,
        })
    }

    pub(crate) fn check(
        &self,
        service: Service,
        key: &str,
        lookups: &dyn Lookups,
        delim: char,
    ) -> Result<bool, LookupError> {
        let service = if self.regex { Service::Regex } else { service };
        match &self.table {
            TableRef::Named(name) => lookups.check(name, service, key),
            TableRef::Inline(table) => Ok(table.check(service, key, delim)?),
        }
    }
}

#[derive(Clone, Debug)]
enum FromTest {
    /// `from any`, `from local`, `from src …`: the client address (or `local`) in a table.
    Table(CompiledMatcher),
    /// `from socket`.
    Socket,
    /// `from rdns [NAME|<t>|regex …]`.
    Rdns(Option<CompiledMatcher>),
}

#[derive(Clone, Debug)]
struct Cond<T> {
    negated: bool,
    test: T,
}

impl<T> Cond<T> {
    fn apply(&self, holds: bool) -> bool {
        holds != self.negated
    }
}

#[derive(Clone, Debug)]
struct Rule {
    tag: Option<Cond<CompiledMatcher>>,
    from: Cond<FromTest>,
    to: Cond<CompiledMatcher>,
    helo: Option<Cond<CompiledMatcher>>,
    auth: Option<Cond<Option<CompiledMatcher>>>,
    tls: Option<Cond<()>>,
    mail_from: Option<Cond<CompiledMatcher>>,
    rcpt_to: Option<Cond<CompiledMatcher>>,
    decision: MatchDecision,
}

/// The compiled rules of a configuration, with what routing and expansion need of the rest
/// of it: actions, the sub-address delimiter, SRS keys.
#[derive(Clone, Debug)]
pub struct Ruleset {
    rules: Vec<Rule>,
    actions: HashMap<String, Action>,
    delim: char,
    srs: Option<Srs>,
}

impl Ruleset {
    /// Compiles the rules of `config`.
    ///
    /// # Errors
    /// A literal regex that does not compile, a rule naming an undeclared action, unusable
    /// `srs` settings.
    pub fn new(config: &Config) -> Result<Ruleset, RulesetError> {
        let actions: HashMap<String, Action> = config
            .actions
            .iter()
            .map(|a| (a.name.clone(), a.clone()))
            .collect();
        let rules = config
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| compile_rule(r, i + 1, &actions))
            .collect::<Result<_, _>>()?;
        let srs = match &config.srs.key {
            Some(key) => Some(Srs::new(SrsConfig {
                backup_key: config.srs.backup_key.clone().map(String::into_bytes),
                ttl_days: u16::try_from(config.srs.ttl_days).unwrap_or(u16::MAX),
                ..SrsConfig::new(key.clone())
            })?),
            None => None,
        };
        Ok(Ruleset {
            rules,
            actions,
            delim: config.smtp.sub_addr_delim,
            srs,
        })
    }

    /// The number of rules.
    #[must_use]
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// True when there are no rules (every recipient is refused).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The action of that name.
    #[must_use]
    pub fn action(&self, name: &str) -> Option<&Action> {
        self.actions.get(name)
    }

    /// The sub-address delimiter (`smtp sub-addr-delim`).
    #[must_use]
    pub fn sub_addr_delim(&self) -> char {
        self.delim
    }

    /// The SRS codec, when `srs key` is set.
    #[must_use]
    pub fn srs(&self) -> Option<&Srs> {
        self.srs.as_ref()
    }

    /// Where `ctx`'s recipient goes. See the module documentation.
    #[must_use]
    pub fn route(&self, ctx: &RouteContext<'_>, lookups: &dyn Lookups) -> Routed {
        match self.decide(ctx, lookups) {
            Err(_) => Routed::TempFail(TEMPORARY_FAILURE),
            Ok(Some(MatchDecision::Action(name))) => Routed::Action(name.clone()),
            Ok(Some(MatchDecision::Reject) | None) => Routed::Reject(INVALID_RECIPIENT),
        }
    }

    /// The decision of the first rule `ctx` matches, keeping the lookup error for the log.
    pub(super) fn decide(
        &self,
        ctx: &RouteContext<'_>,
        lookups: &dyn Lookups,
    ) -> Result<Option<&MatchDecision>, LookupError> {
        Ok(self
            .matching_rule(ctx, lookups)?
            .map(|i| &self.rules[i].decision))
    }

    /// The index (in the configuration's `rules`) of the first rule `ctx` matches.
    ///
    /// # Errors
    /// A lookup failed before a rule could be decided.
    pub fn matching_rule(
        &self,
        ctx: &RouteContext<'_>,
        lookups: &dyn Lookups,
    ) -> Result<Option<usize>, LookupError> {
        for (i, rule) in self.rules.iter().enumerate() {
            if self.matches(rule, ctx, lookups)? {
                return Ok(Some(i));
            }
        }
        Ok(None)
    }

    fn matches(
        &self,
        rule: &Rule,
        ctx: &RouteContext<'_>,
        lookups: &dyn Lookups,
    ) -> Result<bool, LookupError> {
        let d = self.delim;
        let s = ctx.session;
        let check = |m: &CompiledMatcher, service, key: &str| m.check(service, key, lookups, d);
        if let Some(c) = &rule.tag {
            let holds = match &s.tag {
                Some(tag) => check(&c.test, Service::String, tag)?,
                None => false,
            };
            if !c.apply(holds) {
                return Ok(false);
            }
        }
        if !self.origin_holds(&rule.from, ctx, lookups)? {
            return Ok(false);
        }
        if !rule
            .to
            .apply(check(&rule.to.test, Service::Domain, &ctx.rcpt.domain)?)
        {
            return Ok(false);
        }
        if let Some(c) = &rule.helo {
            let holds = match &s.helo {
                Some(helo) => check(&c.test, Service::Domain, helo)?,
                None => false,
            };
            if !c.apply(holds) {
                return Ok(false);
            }
        }
        if let Some(c) = &rule.auth {
            let holds = match (&s.auth, &c.test) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some(user), Some(m)) => {
                    let service = if user.contains('@') {
                        Service::Mailaddr
                    } else {
                        Service::String
                    };
                    check(m, service, user)?
                }
            };
            if !c.apply(holds) {
                return Ok(false);
            }
        }
        if let Some(c) = &rule.tls
            && !c.apply(s.tls)
        {
            return Ok(false);
        }
        if let Some(c) = &rule.mail_from
            && !c.apply(check(&c.test, Service::Mailaddr, &ctx.sender.to_string())?)
        {
            return Ok(false);
        }
        if let Some(c) = &rule.rcpt_to
            && !c.apply(check(&c.test, Service::Mailaddr, &ctx.rcpt.to_string())?)
        {
            return Ok(false);
        }
        Ok(true)
    }

    fn origin_holds(
        &self,
        from: &Cond<FromTest>,
        ctx: &RouteContext<'_>,
        lookups: &dyn Lookups,
    ) -> Result<bool, LookupError> {
        let d = self.delim;
        if ctx.internal {
            // ruleset.c: a `from` without a table never matches an internal envelope, negated
            // or not; with a table, the key is the string "local".
            return match &from.test {
                FromTest::Socket | FromTest::Rdns(None) => Ok(false),
                FromTest::Table(m) | FromTest::Rdns(Some(m)) => {
                    Ok(from.apply(m.check(Service::Netaddr, "local", lookups, d)?))
                }
            };
        }
        match &from.test {
            FromTest::Socket => Ok(from.apply(ctx.session.source == Source::Socket)),
            FromTest::Rdns(None) => Ok(from.apply(ctx.session.rdns.is_some())),
            FromTest::Rdns(Some(m)) => match &ctx.session.rdns {
                // ruleset.c returns "no match" here whatever the negation.
                None => Ok(false),
                Some(name) => Ok(from.apply(m.check(Service::Domain, name, lookups, d)?)),
            },
            FromTest::Table(m) => {
                let key = match ctx.session.source {
                    Source::Socket => "local".to_owned(),
                    Source::Ip(ip) => address_key(ip),
                };
                Ok(from.apply(m.check(Service::Netaddr, &key, lookups, d)?))
            }
        }
    }
}

/// A client address as `from src` tables and regexes see it (`sa_to_text`): IPv4 dotted,
/// IPv6 in brackets; an IPv4-mapped IPv6 address as the IPv4 address it maps.
#[must_use]
pub fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => format!("[{v6}]"),
        },
    }
}

fn compile_rule(
    r: &MatchRule,
    n: usize,
    actions: &HashMap<String, Action>,
) -> Result<Rule, RulesetError> {
    let matcher = |m: &Matcher| CompiledMatcher::compile(m, n);
    let cond = |c: &crate::config::Cond<Matcher>| -> Result<Cond<CompiledMatcher>, RulesetError> {
        Ok(Cond {
            negated: c.negated,
            test: matcher(&c.test)?,
        })
    };
    let from = Cond {
        negated: r.from.negated,
        test: match &r.from.test {
            Origin::Any => FromTest::Table(CompiledMatcher::named(ANYHOST)),
            Origin::Local => FromTest::Table(CompiledMatcher::named(LOCALHOST)),
            Origin::Socket => FromTest::Socket,
            Origin::Src(m) => FromTest::Table(matcher(m)?),
            Origin::Rdns(m) => FromTest::Rdns(m.as_ref().map(matcher).transpose()?),
        },
    };
    let to = Cond {
        negated: r.to.negated,
        test: match &r.to.test {
            Destination::Any => CompiledMatcher::named(ANYDESTINATION),
            Destination::Local => CompiledMatcher::named(LOCALNAMES),
            Destination::Domain(m) => matcher(m)?,
        },
    };
    if let MatchDecision::Action(name) = &r.decision
        && !actions.contains_key(name)
    {
        return Err(RulesetError::UnknownAction {
            rule: n,
            name: name.clone(),
        });
    }
    Ok(Rule {
        tag: r.tag.as_ref().map(cond).transpose()?,
        from,
        to,
        helo: r.helo.as_ref().map(cond).transpose()?,
        auth: r
            .auth
            .as_ref()
            .map(|c| -> Result<_, RulesetError> {
                Ok(Cond {
                    negated: c.negated,
                    test: c.test.as_ref().map(matcher).transpose()?,
                })
            })
            .transpose()?,
        tls: r.tls.as_ref().map(|c| Cond {
            negated: c.negated,
            test: (),
        }),
        mail_from: r.mail_from.as_ref().map(cond).transpose()?,
        rcpt_to: r.rcpt_to.as_ref().map(cond).transpose()?,
        decision: r.decision.clone(),
    })
}

#[cfg(test)]
#[path = "router_tests.rs"]
mod tests;
