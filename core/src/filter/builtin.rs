//! Builtin filters: `filter NAME phase PHASE match CONDITIONS DECISION`, evaluated against what
//! the session knows at that phase.
//!
//! The conditions are ORed, as in OpenSMTPD: the filter triggers when any of them holds (a
//! negated one when its test fails). Tables are consulted through the same [`Lookups`] seam
//! as match rules, with the same services: `src` as a network address (`local` for the local
//! socket), `rdns` and `helo` as domains, `mail-from` and `rcpt-to` as mail addresses, `auth`
//! as a user name (a mail address when it has an `@`).

use std::net::IpAddr;

use thiserror::Error;

use super::Phase;
use crate::config::{BuiltinFilter, FilterCheck, FilterDecision, FilterPhase};
use crate::rules::lookups::{LookupError, Lookups};
use crate::rules::router::{CompiledMatcher, RulesetError, address_key};
use crate::rules::service::Service;
use crate::rules::table::TableError;

/// What a session knows, as builtin filter conditions test it.
#[derive(Clone, Copy, Debug, Default)]
pub struct FilterFacts<'a> {
    /// The client's address; `None` for the local submission socket.
    pub src: Option<IpAddr>,
    /// The client's reverse DNS name, confirmed or not.
    pub rdns: Option<&'a str>,
    /// The reverse DNS name resolves back to the client's address.
    pub fcrdns: bool,
    /// The HELO/EHLO name.
    pub helo: Option<&'a str>,
    /// The authenticated user.
    pub auth: Option<&'a str>,
    /// The sender of the current transaction (empty for `<>`).
    pub mail_from: Option<&'a str>,
    /// The recipient being asked about (at `rcpt-to`).
    pub rcpt_to: Option<&'a str>,
}

/// A builtin filter that cannot be compiled.
#[derive(Debug, Error)]
pub enum BuiltinError {
    /// A regular expression written in the filter does not compile.
    #[error("filter \"{filter}\": {source}")]
    Regex {
        /// The filter.
        filter: String,
        /// The compiler's complaint.
        source: TableError,
    },
    /// A condition cannot be compiled for another reason.
    #[error("filter \"{filter}\": {reason}")]
    Condition {
        /// The filter.
        filter: String,
        /// Why.
        reason: String,
    },
}

#[derive(Clone, Debug)]
enum Check {
    Fcrdns,
    Rdns(Option<CompiledMatcher>),
    Src(CompiledMatcher),
    Helo(CompiledMatcher),
    Auth(Option<CompiledMatcher>),
    MailFrom(CompiledMatcher),
    RcptTo(CompiledMatcher),
}

/// A compiled builtin filter.
#[derive(Clone, Debug)]
pub struct Builtin {
    name: String,
    phase: Phase,
    conditions: Vec<(bool, Check)>,
    decision: FilterDecision,
    delim: char,
}

/// The protocol phase of a builtin filter's configured phase.
#[must_use]
pub fn phase_of(phase: FilterPhase) -> Phase {
    match phase {
        FilterPhase::Connect => Phase::Connect,
        FilterPhase::Helo => Phase::Helo,
        FilterPhase::Ehlo => Phase::Ehlo,
        FilterPhase::Auth => Phase::Auth,
        FilterPhase::MailFrom => Phase::MailFrom,
        FilterPhase::RcptTo => Phase::RcptTo,
        FilterPhase::Data => Phase::Data,
        FilterPhase::Commit => Phase::Commit,
    }
}

impl Builtin {
    /// Compiles filter `name`. `delim` is the sub-address delimiter (`smtp sub-addr-delim`),
    /// which mail address tables ignore after.
    ///
    /// # Errors
    /// A regular expression written in the filter does not compile.
    pub fn compile(
        name: &str,
        filter: &BuiltinFilter,
        delim: char,
    ) -> Result<Builtin, BuiltinError> {
        let compile = |m| {
            CompiledMatcher::compile(m, 0).map_err(|e| match e {
                RulesetError::Regex { source, .. } => BuiltinError::Regex {
                    filter: name.to_owned(),
                    source,
                },
                other => BuiltinError::Condition {
                    filter: name.to_owned(),
                    reason: other.to_string(),
                },
            })
        };
        let mut conditions = Vec::new();
        for c in &filter.conditions {
            let check = match &c.test {
                FilterCheck::Fcrdns => Check::Fcrdns,
                FilterCheck::Rdns(m) => Check::Rdns(m.as_ref().map(compile).transpose()?),
                FilterCheck::Src(m) => Check::Src(compile(m)?),
                FilterCheck::Helo(m) => Check::Helo(compile(m)?),
                FilterCheck::Auth(m) => Check::Auth(m.as_ref().map(compile).transpose()?),
                FilterCheck::MailFrom(m) => Check::MailFrom(compile(m)?),
                FilterCheck::RcptTo(m) => Check::RcptTo(compile(m)?),
            };
            conditions.push((c.negated, check));
        }
        Ok(Builtin {
            name: name.to_owned(),
            phase: phase_of(filter.phase),
            conditions,
            decision: filter.decision.clone(),
            delim,
        })
    }

    /// The filter's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The phase it runs at.
    #[must_use]
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// What it does when it triggers.
    #[must_use]
    pub fn decision(&self) -> &FilterDecision {
        &self.decision
    }

    /// True when any condition holds for `facts`.
    ///
    /// # Errors
    /// A table could not be consulted.
    pub fn triggers(
        &self,
        facts: &FilterFacts<'_>,
        lookups: &dyn Lookups,
    ) -> Result<bool, LookupError> {
        for (negated, check) in &self.conditions {
            if self.holds(check, facts, lookups)? != *negated {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn holds(
        &self,
        check: &Check,
        facts: &FilterFacts<'_>,
        lookups: &dyn Lookups,
    ) -> Result<bool, LookupError> {
        let d = self.delim;
        let test = |m: &CompiledMatcher, service, key: Option<&str>| match key {
            Some(key) => m.check(service, key, lookups, d),
            None => Ok(false),
        };
        match check {
            Check::Fcrdns => Ok(facts.fcrdns),
            Check::Rdns(None) => Ok(facts.rdns.is_some()),
            Check::Rdns(Some(m)) => test(m, Service::Domain, facts.rdns),
            Check::Src(m) => {
                let key = facts.src.map_or_else(|| "local".to_owned(), address_key);
                m.check(Service::Netaddr, &key, lookups, d)
            }
            Check::Helo(m) => test(m, Service::Domain, facts.helo),
            Check::Auth(None) => Ok(facts.auth.is_some()),
            Check::Auth(Some(m)) => {
                let service = match facts.auth {
                    Some(user) if user.contains('@') => Service::Mailaddr,
                    _ => Service::String,
                };
                test(m, service, facts.auth)
            }
            Check::MailFrom(m) => test(m, Service::Mailaddr, facts.mail_from),
            Check::RcptTo(m) => test(m, Service::Mailaddr, facts.rcpt_to),
        }
    }
}
