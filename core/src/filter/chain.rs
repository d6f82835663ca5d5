//! One SMTP session's filter chain.
//!
//! A listener's chain is a list of [`Member`]s in the configured order: builtin filters,
//! evaluated here, and external members — filter processes, or the greylist — that the shell
//! asks on the chain's behalf. At each phase [`ChainSession::start`] walks the chain: members
//! that do not handle the phase are skipped, builtin ones are evaluated at once, and for an
//! external one the walk stops with [`Step::Ask`] carrying a fresh token. The shell sends the
//! request, and passes the member's response to [`ChainSession::answer`], which checks that it
//! answers the question outstanding (same member, same token) before the walk goes on. Only
//! one question is outstanding per session, so replies to the client stay in order.
//!
//! The walk ends with a [`Verdict`] and a `filter-response` report event (and `filter-report`
//! events for members that reported on the way), drained with
//! [`ChainSession::poll_report`].
//!
//! The message content goes through the members that handle [`Phase::DataLine`] with a
//! [`DataPipe`]: the output of one is the input of the next, lines dot-stuffed as on the wire.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use thiserror::Error;

use super::builtin::{Builtin, FilterFacts};
use super::report::{ReportEvent, ReporterKind};
use super::{Phase, Response};
use crate::config::FilterDecision;
use crate::rules::lookups::Lookups;
use crate::smtp::{EnhancedCode, Reply};

/// What a member of a chain is.
#[derive(Clone, Debug)]
pub enum MemberKind {
    /// A builtin filter, evaluated by the chain.
    Builtin(Builtin),
    /// Something the shell asks: a filter process or the greylist. The number is the shell's
    /// own reference to it.
    External(usize),
}

/// One filter of a chain.
#[derive(Clone, Debug)]
pub struct Member {
    /// Its name in the configuration.
    pub name: String,
    /// What it is.
    pub kind: MemberKind,
    /// The phases it handles: a builtin filter's own phase, what a process registered.
    pub phases: BTreeSet<Phase>,
}

impl Member {
    /// A builtin filter as a member.
    #[must_use]
    pub fn builtin(filter: Builtin) -> Member {
        Member {
            name: filter.name().to_owned(),
            phases: BTreeSet::from([filter.phase()]),
            kind: MemberKind::Builtin(filter),
        }
    }

    /// An external member handling `phases`.
    #[must_use]
    pub fn external(name: &str, id: usize, phases: impl IntoIterator<Item = Phase>) -> Member {
        Member {
            name: name.to_owned(),
            kind: MemberKind::External(id),
            phases: phases.into_iter().collect(),
        }
    }
}

/// A listener's filters, in order.
#[derive(Clone, Debug, Default)]
pub struct Chain {
    members: Vec<Member>,
}

impl Chain {
    /// A chain of these members, in this order.
    #[must_use]
    pub fn new(members: Vec<Member>) -> Chain {
        Chain { members }
    }

    /// The members.
    #[must_use]
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// True when no member handles `phase`.
    #[must_use]
    pub fn skips(&self, phase: Phase) -> bool {
        !self.members.iter().any(|m| m.phases.contains(&phase))
    }

    /// True when the chain has no members at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

/// How a walk of the chain ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Go ahead with the command.
    Proceed,
    /// Go ahead, but the transaction (or the session) is now junk.
    Junk,
    /// Refuse the command with this reply; the session goes on.
    Reject(Reply),
    /// Send this reply and close the session.
    Disconnect(Reply),
    /// Go ahead with this argument instead of the client's.
    Rewrite(String),
}

/// The next thing the shell must do for the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Ask external member `member` (its index in the chain) about the phase, with this token;
    /// pass the response to [`ChainSession::answer`].
    Ask {
        /// Index of the member in the chain.
        member: usize,
        /// The shell's reference to it ([`MemberKind::External`]).
        external: usize,
        /// The token the request carries and the response must echo.
        token: u64,
        /// The phase.
        phase: Phase,
        /// The phase's parameter as the request carries it.
        param: String,
    },
    /// The chain has spoken.
    Done(Verdict),
}

/// A response that does not fit the question outstanding: the member broke the protocol.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ChainError {
    /// No question is outstanding.
    #[error("a response when no request was outstanding")]
    Unexpected,
    /// The response came from another member or carries another token.
    #[error("a response with token {got:016x}, expected {expected:016x}")]
    WrongToken {
        /// The token outstanding.
        expected: u64,
        /// The token received.
        got: u64,
    },
    /// `junk` at the commit phase, which OpenSMTPD treats as a fatal error.
    #[error("junk is not a valid response at the commit phase")]
    JunkAtCommit,
}

/// What to do when a member cannot be asked (a process that is down, hung or broke the
/// protocol).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FailurePolicy {
    /// Refuse temporarily: the client tries again later and nothing is lost.
    #[default]
    Closed,
    /// Skip the member and go on with the chain.
    Open,
}

#[derive(Clone, Debug)]
struct Walk {
    phase: Phase,
    param: String,
    /// The member asked, or the next to consider.
    at: usize,
    token: u64,
}

/// One session's walk through its listener's chain. See the [module documentation](self).
#[derive(Debug)]
pub struct ChainSession {
    chain: Arc<Chain>,
    walk: Option<Walk>,
    next_token: u64,
    reports: VecDeque<ReportEvent>,
    junk_session: bool,
    junk_tx: bool,
}

/// The reply for a malformed reject or disconnect message, as OpenSMTPD substitutes it.
const INTERNAL_ERROR: Reply = Reply::fixed_plain(421, "Internal server error");

impl ChainSession {
    /// A session over `chain`. Tokens are derived from `token_seed` (the shell's randomness;
    /// the core draws none), one fresh token per request.
    #[must_use]
    pub fn new(chain: Arc<Chain>, token_seed: u64) -> ChainSession {
        ChainSession {
            chain,
            walk: None,
            next_token: token_seed,
            reports: VecDeque::new(),
            junk_session: false,
            junk_tx: false,
        }
    }

    /// The chain.
    #[must_use]
    pub fn chain(&self) -> &Arc<Chain> {
        &self.chain
    }

    /// True when the current transaction should carry `X-Spam: yes`: a member said `junk`
    /// during it, or earlier in the session.
    #[must_use]
    pub fn is_junk(&self) -> bool {
        self.junk_session || self.junk_tx
    }

    /// The transaction ended: a junk mark it got does not carry over.
    pub fn end_transaction(&mut self) {
        self.junk_tx = false;
    }

    /// The next report event the chain produced, if any.
    pub fn poll_report(&mut self) -> Option<ReportEvent> {
        self.reports.pop_front()
    }

    /// True while a member's answer is awaited.
    #[must_use]
    pub fn is_waiting(&self) -> bool {
        self.walk.is_some()
    }

    /// Starts the walk for `phase` with the command's parameter (the HELO name, the bare
    /// sender or recipient, the AUTH mechanism; empty where the phase has none).
    pub fn start(
        &mut self,
        phase: Phase,
        param: &str,
        facts: &FilterFacts<'_>,
        lookups: &dyn Lookups,
    ) -> Step {
        self.walk = Some(Walk {
            phase,
            param: param.to_owned(),
            at: 0,
            token: 0,
        });
        self.advance(facts, lookups)
    }

    /// The response of the member asked last.
    ///
    /// # Errors
    /// The response answers no outstanding question, or is not valid at this phase; the
    /// walk is then still waiting, and the shell treats the member as failed
    /// ([`ChainSession::fail`]).
    pub fn answer(
        &mut self,
        token: u64,
        response: Response,
        facts: &FilterFacts<'_>,
        lookups: &dyn Lookups,
    ) -> Result<Step, ChainError> {
        let Some(walk) = &self.walk else {
            return Err(ChainError::Unexpected);
        };
        if walk.token != token {
            return Err(ChainError::WrongToken {
                expected: walk.token,
                got: token,
            });
        }
        if walk.phase == Phase::Commit && response == Response::Junk {
            return Err(ChainError::JunkAtCommit);
        }
        let name = self.chain.members[walk.at].name.clone();
        Ok(match response {
            Response::Proceed => self.next(facts, lookups),
            Response::Report(text) => {
                self.reports.push_back(ReportEvent::FilterReport {
                    kind: ReporterKind::Proc,
                    name,
                    message: text,
                });
                self.next(facts, lookups)
            }
            Response::Junk => self.finish(Verdict::Junk, "junk", None),
            Response::Reject(text) => {
                let verdict = refusal(&text, false);
                self.finish(verdict, "reject", Some(text))
            }
            Response::Disconnect(text) => {
                let verdict = refusal(&text, true);
                self.finish(verdict, "disconnect", Some(text))
            }
            Response::Rewrite(param) => {
                self.finish(Verdict::Rewrite(param.clone()), "rewrite", Some(param))
            }
        })
    }

    /// The member asked last cannot answer. With [`FailurePolicy::Open`] the walk goes on
    /// without it; with [`FailurePolicy::Closed`] the command fails temporarily — the session
    /// is closed with 421 before a transaction can exist (connect, HELO, EHLO, STARTTLS,
    /// AUTH), later the command gets 451 and the session goes on.
    pub fn fail(
        &mut self,
        policy: FailurePolicy,
        facts: &FilterFacts<'_>,
        lookups: &dyn Lookups,
    ) -> Step {
        let Some(walk) = &self.walk else {
            return Step::Done(Verdict::Proceed);
        };
        match policy {
            FailurePolicy::Open => self.next(facts, lookups),
            FailurePolicy::Closed => {
                let verdict = unavailable(walk.phase);
                let text = match &verdict {
                    Verdict::Reject(r) | Verdict::Disconnect(r) => reply_text(r),
                    _ => String::new(),
                };
                let name = if matches!(verdict, Verdict::Disconnect(_)) {
                    "disconnect"
                } else {
                    "reject"
                };
                self.finish(verdict, name, Some(text))
            }
        }
    }

    /// Moves past the member asked last.
    fn next(&mut self, facts: &FilterFacts<'_>, lookups: &dyn Lookups) -> Step {
        if let Some(walk) = &mut self.walk {
            walk.at += 1;
        }
        self.advance(facts, lookups)
    }

    /// Walks from the current member to the next external one that handles the phase, or to
    /// the end of the chain.
    fn advance(&mut self, facts: &FilterFacts<'_>, lookups: &dyn Lookups) -> Step {
        let chain = self.chain.clone();
        loop {
            let Some(walk) = &mut self.walk else {
                return Step::Done(Verdict::Proceed);
            };
            let Some(member) = chain.members.get(walk.at) else {
                return self.finish(Verdict::Proceed, "proceed", None);
            };
            if !member.phases.contains(&walk.phase) {
                walk.at += 1;
                continue;
            }
            match &member.kind {
                MemberKind::External(external) => {
                    let token = mix(self.next_token);
                    self.next_token = self.next_token.wrapping_add(1);
                    walk.token = token;
                    return Step::Ask {
                        member: walk.at,
                        external: *external,
                        token,
                        phase: walk.phase,
                        param: walk.param.clone(),
                    };
                }
                MemberKind::Builtin(builtin) => {
                    let triggered = match builtin.triggers(facts, lookups) {
                        Ok(t) => t,
                        Err(_) => {
                            // A table that cannot answer must not let mail through that the
                            // filter exists to stop: fail like an unavailable filter.
                            let verdict = unavailable(walk.phase);
                            let text = match &verdict {
                                Verdict::Reject(r) | Verdict::Disconnect(r) => reply_text(r),
                                _ => String::new(),
                            };
                            return self.finish(verdict, "reject", Some(text));
                        }
                    };
                    if !triggered {
                        walk.at += 1;
                        continue;
                    }
                    match builtin.decision().clone() {
                        FilterDecision::Bypass => {
                            return self.finish(Verdict::Proceed, "proceed", None);
                        }
                        FilterDecision::Junk => return self.finish(Verdict::Junk, "junk", None),
                        FilterDecision::Reject(r) => {
                            let text = format!("{} {}", r.code, r.text);
                            return self.finish(refusal(&text, false), "reject", Some(text));
                        }
                        FilterDecision::Disconnect(r) => {
                            let text = format!("{} {}", r.code, r.text);
                            return self.finish(refusal(&text, true), "disconnect", Some(text));
                        }
                        FilterDecision::Rewrite(value) => {
                            return self.finish(
                                Verdict::Rewrite(value.clone()),
                                "rewrite",
                                Some(value),
                            );
                        }
                        FilterDecision::Report(text) => {
                            self.reports.push_back(ReportEvent::FilterReport {
                                kind: ReporterKind::Builtin,
                                name: member.name.clone(),
                                message: text,
                            });
                            walk.at += 1;
                        }
                    }
                }
            }
        }
    }

    fn finish(&mut self, verdict: Verdict, response: &'static str, param: Option<String>) -> Step {
        let Some(walk) = self.walk.take() else {
            return Step::Done(verdict);
        };
        if verdict == Verdict::Junk {
            // Before MAIL the mark is the session's; after, the transaction's.
            if matches!(
                walk.phase,
                Phase::Connect | Phase::Helo | Phase::Ehlo | Phase::StartTls | Phase::Auth
            ) {
                self.junk_session = true;
            } else {
                self.junk_tx = true;
            }
        }
        self.reports.push_back(ReportEvent::FilterResponse {
            phase: walk.phase,
            response,
            param,
        });
        Step::Done(verdict)
    }
}

/// The verdict for a reject or disconnect message: checked as OpenSMTPD checks it (a 4xx or
/// 5xx code, then a space or nothing), `421 Internal server error` when it is not; any 421
/// closes the session.
fn refusal(text: &str, disconnect: bool) -> Verdict {
    let reply = parse_reply(text).unwrap_or(INTERNAL_ERROR);
    if disconnect || reply.code == 421 {
        Verdict::Disconnect(reply)
    } else {
        Verdict::Reject(reply)
    }
}

/// Parses `550 5.7.1 text` (the enhanced code is optional) into a reply, if it is valid as
/// OpenSMTPD checks it ([`reply_of`](super::wire::reply_of)).
#[must_use]
pub fn parse_reply(text: &str) -> Option<Reply> {
    let (code, _) = super::wire::reply_of(text)?;
    let clean: String = text[4..]
        .chars()
        .filter(|c| *c != '\r' && *c != '\n')
        .collect();
    Some(match EnhancedCode::parse_prefix(&clean) {
        Some((enhanced, len)) => Reply::new(code, enhanced, clean[len..].trim_start().to_owned()),
        None => Reply::plain(code, clean),
    })
}

fn reply_text(reply: &Reply) -> String {
    match reply.enhanced {
        Some(e) => format!("{} {e} {}", reply.code, reply.text),
        None => format!("{} {}", reply.code, reply.text),
    }
}

/// The temporary failure for a member that cannot be asked.
fn unavailable(phase: Phase) -> Verdict {
    match phase {
        Phase::Connect | Phase::Helo | Phase::Ehlo | Phase::StartTls | Phase::Auth => {
            Verdict::Disconnect(Reply::new(
                421,
                EnhancedCode::new(4, 7, 0),
                "Service temporarily unavailable (filter), try again later",
            ))
        }
        _ => Verdict::Reject(Reply::new(
            451,
            EnhancedCode::new(4, 7, 0),
            "Temporary failure (filter), try again later",
        )),
    }
}

/// SplitMix64's finaliser: distinct counters give distinct, unrelated-looking tokens.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Where a data-line goes next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// To this member (index in the chain, shell reference, token).
    To {
        /// Index of the member in the chain.
        member: usize,
        /// The shell's reference to it.
        external: usize,
        /// The token of this member's data-line stream.
        token: u64,
        /// The line, dot-stuffed.
        line: Vec<u8>,
    },
    /// Out of the chain: a line of the filtered message, still dot-stuffed; `.` alone ends
    /// it.
    Out(Vec<u8>),
}

/// The message's lines through the members that handle data-lines: the output of one is the
/// input of the next. Lines are dot-stuffed in both directions, exactly as on the wire; the
/// shell unstuffs what comes out of the last member.
#[derive(Clone, Debug)]
pub struct DataPipe {
    /// (index in the chain, shell reference, token, finished) of each stage.
    stages: Vec<(usize, usize, u64, bool)>,
}

/// A data-line that does not belong to the stream.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum PipeError {
    /// The member is not a stage of this pipe, or the token is not its stream's.
    #[error("a data-line with an unknown token {0:016x}")]
    UnknownToken(u64),
    /// The member sent a line after its final `.`.
    #[error("a data-line after the end of the message")]
    AfterEnd,
}

impl DataPipe {
    /// A pipe through the members of `session`'s chain that handle data-lines; `None` when
    /// none does (the content then goes straight to the queue).
    pub fn begin(session: &mut ChainSession) -> Option<DataPipe> {
        let mut stages = Vec::new();
        for (i, m) in session.chain.members.iter().enumerate() {
            if let MemberKind::External(ext) = m.kind
                && m.phases.contains(&Phase::DataLine)
            {
                let token = mix(session.next_token);
                session.next_token = session.next_token.wrapping_add(1);
                stages.push((i, ext, token, false));
            }
        }
        (!stages.is_empty()).then_some(DataPipe { stages })
    }

    /// The stages: (index in the chain, shell reference, token).
    pub fn stages(&self) -> impl Iterator<Item = (usize, usize, u64)> + '_ {
        self.stages.iter().map(|&(i, e, t, _)| (i, e, t))
    }

    /// A line of the message as the client sent it (dot-stuffed, without its line ending;
    /// `.` for the end): it goes to the first stage.
    #[must_use]
    pub fn input(&self, line: Vec<u8>) -> Route {
        let (member, external, token, _) = self.stages[0];
        Route::To {
            member,
            external,
            token,
            line,
        }
    }

    /// A line member stage `token` returned: it goes to the next stage, or out.
    ///
    /// # Errors
    /// The token is not a stage's, or the stage had already ended its output.
    pub fn output(&mut self, token: u64, line: Vec<u8>) -> Result<Route, PipeError> {
        let at = self
            .stages
            .iter()
            .position(|s| s.2 == token)
            .ok_or(PipeError::UnknownToken(token))?;
        if self.stages[at].3 {
            return Err(PipeError::AfterEnd);
        }
        if line == b"." {
            self.stages[at].3 = true;
        }
        Ok(match self.stages.get(at + 1) {
            Some(&(member, external, token, _)) => Route::To {
                member,
                external,
                token,
                line,
            },
            None => Route::Out(line),
        })
    }

    /// True once the last stage has ended its output.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.stages.last().is_some_and(|s| s.3)
    }
}

/// Dot-stuffs one line of content for the data-line stream (a leading `.` is doubled).
#[must_use]
pub fn stuff(line: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len() + 1);
    if line.first() == Some(&b'.') {
        out.push(b'.');
    }
    out.extend_from_slice(line);
    out
}

/// Unstuffs one line that came out of the chain (a leading `.` is removed).
#[must_use]
pub fn unstuff(line: &[u8]) -> &[u8] {
    line.strip_prefix(b".").unwrap_or(line)
}

#[cfg(test)]
#[path = "chain_tests.rs"]
mod tests;
