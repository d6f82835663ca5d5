//! `filter NAME …` (builtin, proc-exec, proc, chain) and `proc NAME "command" …`.

use super::super::error::{Diag, ErrorKind, ItemKind};
use super::super::lexer::TokenKind;
use super::super::span::Span;
use super::super::types::{
    BuiltinFilter, Cond, Filter, FilterCheck, FilterDecision, FilterKind, FilterPhase, FilterRef,
    Proc, ProcExec,
};
use super::super::values::SmtpReply;
use super::cursor::{Cursor, PResult};
use super::seen::Seen;
use super::{ChainUse, Parser, invalid};
use crate::filter::Version;
use crate::filter::chain::FailurePolicy;

const CONDITIONS: &[&str] = &[
    "fcrdns",
    "rdns",
    "src",
    "helo",
    "auth",
    "mail-from",
    "rcpt-to",
];

const DECISIONS: &[&str] = &[
    "junk",
    "bypass",
    "reject",
    "disconnect",
    "rewrite",
    "report",
];

impl Parser<'_> {
    pub(super) fn filter(&mut self, c: &mut Cursor<'_>, span: Span) -> PResult<()> {
        let (name, name_span) = c.name("a filter name")?;
        let fresh = self.declare(ItemKind::Filter, &name, name_span);
        let (kind, at) = c.keyword(
            "phase, proc, proc-exec or chain",
            &["phase", "proc", "proc-exec", "chain"],
        )?;
        let kind = match kind {
            "phase" => FilterKind::Builtin(self.builtin_filter(c)?),
            "proc" => {
                let (proc_name, span) = c.name("a proc name")?;
                self.refer(ItemKind::Proc, &proc_name, span);
                FilterKind::Proc(proc_name)
            }
            "proc-exec" => FilterKind::ProcExec(proc_exec(c)?),
            _ => {
                let members = self.chain_members(c)?;
                if members.is_empty() {
                    return Err(Diag::new(at, empty_chain()));
                }
                FilterKind::Chain(members)
            }
        };
        c.finish()?;
        if fresh {
            self.config.filters.push(Filter { name, kind, span });
        }
        Ok(())
    }

    /// `proc NAME "command" [user U] [group G] [chroot "dir"]`.
    pub(super) fn proc(&mut self, c: &mut Cursor<'_>, span: Span) -> PResult<()> {
        let (name, name_span) = c.name("a proc name")?;
        let fresh = self.declare(ItemKind::Proc, &name, name_span);
        let exec = proc_exec(c)?;
        if fresh {
            self.config.procs.push(Proc { name, exec, span });
        }
        Ok(())
    }

    /// After `phase`: `PHASE match CONDITION… DECISION`.
    fn builtin_filter(&mut self, c: &mut Cursor<'_>) -> PResult<BuiltinFilter> {
        let phases: Vec<&'static str> = FilterPhase::ALL.iter().map(|p| p.as_str()).collect();
        let (phase, _) = c.keyword("a filter phase", &phases)?;
        let phase = *FilterPhase::ALL
            .iter()
            .find(|p| p.as_str() == phase)
            .expect("candidates are phases");
        c.expect("match")?;
        let mut conditions = Vec::new();
        let mut seen = Seen::default();
        loop {
            let negated = c.eat_kind(&TokenKind::Bang).is_some();
            if !negated
                && !conditions.is_empty()
                && c.peek_word().is_some_and(|w| DECISIONS.contains(&w))
            {
                break;
            }
            let expected = if conditions.is_empty() || negated {
                "a filter condition (fcrdns, rdns, src, helo, auth, mail-from, rcpt-to)"
            } else {
                "a filter condition or a decision (junk, bypass, reject, disconnect, rewrite, report)"
            };
            let (condition, at) = c.keyword(expected, CONDITIONS)?;
            seen.once(condition, at)?;
            let allowed = phase.allowed_conditions();
            if !allowed.contains(&condition) {
                let kind = ErrorKind::ConditionNotInPhase {
                    condition: condition.to_owned(),
                    phase: phase.as_str().to_owned(),
                    allowed: allowed.join(", "),
                };
                self.diag(at, kind);
            }
            let test = match condition {
                "fcrdns" => FilterCheck::Fcrdns,
                "rdns" => FilterCheck::Rdns(self.optional_matcher(c, "rdns lookups")?),
                "auth" => FilterCheck::Auth(self.optional_matcher(c, "auth lookups")?),
                "src" => FilterCheck::Src(self.matcher(c, "src lookups")?),
                "helo" => FilterCheck::Helo(self.matcher(c, "helo lookups")?),
                "mail-from" => FilterCheck::MailFrom(self.matcher(c, "mail-from lookups")?),
                _ => FilterCheck::RcptTo(self.matcher(c, "rcpt-to lookups")?),
            };
            conditions.push(Cond { negated, test });
        }
        let (decision, at) = c.keyword("a decision", DECISIONS)?;
        let decision = match decision {
            "junk" => {
                if phase == FilterPhase::Commit {
                    self.diag(at, ErrorKind::JunkAtCommit);
                }
                FilterDecision::Junk
            }
            "bypass" => FilterDecision::Bypass,
            "reject" | "disconnect" => {
                let (reply, span) = c.string("an SMTP reply, e.g. \"550 5.7.1 rejected\"")?;
                let Some(parsed) = SmtpReply::parse(&reply) else {
                    return Err(Diag::new(span, ErrorKind::InvalidReply(reply)));
                };
                if decision == "reject" {
                    FilterDecision::Reject(parsed)
                } else {
                    FilterDecision::Disconnect(parsed)
                }
            }
            "rewrite" => FilterDecision::Rewrite(c.string("a value")?.0),
            _ => FilterDecision::Report(c.string("a text")?.0),
        };
        Ok(BuiltinFilter {
            phase,
            conditions,
            decision,
        })
    }
}

/// `"command" [user U] [group G] [chroot "dir"]`.
fn proc_exec(c: &mut Cursor<'_>) -> PResult<ProcExec> {
    let (command, span) = c.string("a command")?;
    if command.trim().is_empty() {
        return Err(Diag::new(span, invalid("command", &command, "it is empty")));
    }
    let mut exec = ProcExec {
        command,
        ..ProcExec::default()
    };
    let mut seen = Seen::default();
    while !c.at_end() {
        let (option, at) = c.keyword(
            "user, group, chroot, fail-open, fail-closed, timeout or protocol",
            &[
                "user",
                "group",
                "chroot",
                "fail-open",
                "fail-closed",
                "timeout",
                "protocol",
            ],
        )?;
        // fail-open and fail-closed are one setting.
        let setting = if option.starts_with("fail-") {
            "fail-open"
        } else {
            option
        };
        seen.once(setting, at)?;
        match option {
            "fail-open" => exec.on_failure = FailurePolicy::Open,
            "fail-closed" => exec.on_failure = FailurePolicy::Closed,
            "timeout" => exec.timeout = Some(super::globals::duration(c)?),
            "protocol" => {
                let (text, span) = c.string("a protocol version")?;
                let version = Version::parse(&text).ok_or_else(|| {
                    Diag::new(
                        span,
                        invalid("protocol version", &text, "Petrel speaks 0.5, 0.6 and 0.7"),
                    )
                })?;
                exec.protocol = Some(version);
            }
            _ => {
                let value = Some(
                    c.string(if option == "chroot" {
                        "a directory"
                    } else {
                        "a name"
                    })?
                    .0,
                );
                match option {
                    "user" => exec.user = value,
                    "group" => exec.group = value,
                    _ => exec.chroot = value,
                }
            }
        }
    }
    Ok(exec)
}

impl Parser<'_> {
    /// Reads `{ a, b, … }` (commas optional, line breaks allowed).
    fn brace_list(&mut self, c: &mut Cursor<'_>, what: &str) -> PResult<Vec<(String, Span)>> {
        let open = c.expect_kind(&TokenKind::LBrace, "`{`")?;
        let mut items = Vec::new();
        loop {
            if c.at_end() {
                return Err(Diag::new(open, ErrorKind::UnclosedBrace));
            }
            if c.eat_kind(&TokenKind::RBrace).is_some() {
                return Ok(items);
            }
            if c.eat_kind(&TokenKind::Comma).is_none() {
                items.push(c.name(what)?);
            }
        }
    }

    /// Reads `filter NAME` or `filter { A, B }` on a listener or relay.
    pub(super) fn filter_ref(&mut self, c: &mut Cursor<'_>) -> PResult<FilterRef> {
        if !c.peek_kind(&TokenKind::LBrace) {
            let (name, span) = c.name("a filter name or { … }")?;
            self.refer(ItemKind::Filter, &name, span);
            return Ok(FilterRef::Named(name));
        }
        let at = c.here();
        let members = self.chain_members(c)?;
        if members.is_empty() {
            return Err(Diag::new(at, empty_chain()));
        }
        Ok(FilterRef::Chain(members))
    }

    /// Reads the members of a chain, recording them for the checks done after parsing.
    fn chain_members(&mut self, c: &mut Cursor<'_>) -> PResult<Vec<String>> {
        let members = self.brace_list(c, "a filter name")?;
        for (i, (name, span)) in members.iter().enumerate() {
            if members[..i].iter().any(|(other, _)| other == name) {
                self.diag(*span, ErrorKind::DuplicateChainMember(name.clone()));
            }
            self.refer(ItemKind::Filter, name, *span);
        }
        let names = members.iter().map(|(name, _)| name.clone()).collect();
        self.chains.push(ChainUse {
            members,
            seq: self.seq,
        });
        Ok(names)
    }
}

/// The error for `{ }` where filters are expected.
fn empty_chain() -> ErrorKind {
    ErrorKind::Unexpected {
        expected: "at least one filter name".into(),
        found: "an empty list".into(),
    }
}
