//! `filter NAME …` (builtin, greylist, proc-exec, proc, chain) and `proc NAME "command" …`.

use std::time::Duration;

use super::super::error::{Diag, ErrorKind, ItemKind};
use super::super::keywords::{FILTER_KINDS, GREYLIST_OPTIONS};
use super::super::lexer::TokenKind;
use super::super::span::Span;
use super::super::types::{
    BuiltinFilter, Cond, Filter, FilterCheck, FilterDecision, FilterKind, FilterPhase, FilterRef,
    GreylistSettings, Proc, ProcExec,
};
use super::super::values::{SmtpReply, format_duration, parse_count, parse_duration};
use super::cursor::{Cursor, PResult};
use super::seen::Seen;
use super::{ChainUse, Parser, TableUse, invalid};
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
        let (kind, at) = c.keyword("phase, proc, proc-exec, chain or greylist", FILTER_KINDS)?;
        let kind = match kind {
            "phase" => FilterKind::Builtin(self.builtin_filter(c)?),
            "greylist" => FilterKind::Greylist(self.greylist(c)?),
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
        if fresh && let FilterKind::Greylist(_) = kind {
            self.only_greylist(at)?;
        }
        if fresh {
            self.config.filters.push(Filter { name, kind, span });
        }
        Ok(())
    }

    /// At most one greylist filter: its records live in one state file, and one set of timers
    /// keeps a triplet that passed on one listener from being greylisted again on another. The
    /// filter may be attached to any number of listeners and chains.
    fn only_greylist(&self, at: Span) -> PResult<()> {
        let first = self
            .config
            .filters
            .iter()
            .find(|f| matches!(f.kind, FilterKind::Greylist(_)));
        match first {
            None => Ok(()),
            Some(first) => Err(Diag::new(
                at,
                ErrorKind::NotAllowed {
                    option: "a second greylist filter".into(),
                    context: format!(
                        "(filter \"{}\" at {} already greylists: attach it wherever \
                         greylisting is wanted)",
                        first.name,
                        self.location(first.span, at)
                    ),
                },
            )),
        }
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

impl Parser<'_> {
    /// After `greylist`: `[delay D] [retry-window D] [pass-lifetime D] [ipv4-mask N]
    /// [ipv6-mask N] [bypass <table>]`, in any order, each at most once.
    fn greylist(&mut self, c: &mut Cursor<'_>) -> PResult<GreylistSettings> {
        let mut settings = GreylistSettings::default();
        let mut seen = Seen::default();
        // Where the timers were written, to point at the one that makes them inconsistent.
        let mut delay_at: Option<(Span, String)> = None;
        let mut window_at: Option<(Span, String)> = None;
        while !c.at_end() {
            let (option, at) = c.keyword(
                "a greylist option (delay, retry-window, pass-lifetime, ipv4-mask, ipv6-mask, \
                 bypass)",
                GREYLIST_OPTIONS,
            )?;
            seen.once(option, at)?;
            match option {
                "delay" => {
                    let (delay, span, text) = timer(c)?;
                    settings.delay = delay;
                    delay_at = Some((span, text));
                }
                "retry-window" => {
                    let (window, span, text) = timer(c)?;
                    settings.retry_window = window;
                    window_at = Some((span, text));
                }
                "pass-lifetime" => settings.pass_lifetime = timer(c)?.0,
                "ipv4-mask" => settings.ipv4_mask = prefix_length(c, "IPv4 mask", 32)?,
                "ipv6-mask" => settings.ipv6_mask = prefix_length(c, "IPv6 mask", 128)?,
                _ => {
                    let table_use = TableUse::list("greylist bypass networks");
                    settings.bypass = Some(self.table_arg(c, table_use)?);
                }
            }
        }
        // A retry window no longer than the delay would defer every retry forever. The error
        // points at the delay when it was written, at the retry window otherwise (the defaults
        // are consistent, so one of them was).
        if settings.delay >= settings.retry_window {
            let kind = |what, text: &str, reason| invalid(what, text, reason);
            let diag = if let Some((span, text)) = delay_at {
                let reason = format!(
                    "it must be shorter than the retry window ({})",
                    format_duration(settings.retry_window)
                );
                Diag::new(span, kind("delay", &text, reason))
            } else {
                let (span, text) = window_at.expect("the default timers are consistent");
                let reason = format!(
                    "it must be longer than the delay ({})",
                    format_duration(settings.delay)
                );
                Diag::new(span, kind("retry window", &text, reason))
            };
            return Err(diag);
        }
        Ok(settings)
    }
}

/// A duration, with where and how it was written.
fn timer(c: &mut Cursor<'_>) -> PResult<(Duration, Span, String)> {
    let (text, span) = c.string("a duration")?;
    match parse_duration(&text) {
        Ok(duration) => Ok((duration, span, text)),
        Err(reason) => Err(Diag::new(span, invalid("duration", &text, reason))),
    }
}

/// A prefix length from 0 to `max`.
fn prefix_length(c: &mut Cursor<'_>, what: &'static str, max: u64) -> PResult<u8> {
    let (text, span) = c.string(&format!("an {what} (a prefix length from 0 to {max})"))?;
    match parse_count(&text) {
        Ok(n) if n <= max => Ok(u8::try_from(n).expect("at most 128")),
        _ => Err(Diag::new(
            span,
            invalid(
                what,
                &text,
                format!("expected a prefix length from 0 to {max}"),
            ),
        )),
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
