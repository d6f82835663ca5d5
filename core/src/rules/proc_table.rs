//! `proc:` tables: the line protocol of external table processes (smtpd-tables(7), OpenSMTPD
//! 7.6 and later), as a sans-IO codec and client state machine. The daemon spawns the process
//! and moves lines between it and a [`ProcTableClient`]; nothing here reads or writes.
//!
//! # The protocol
//!
//! Lines end with `\n`; fields are separated by `|`, which may appear verbatim only in the last
//! field of a line.
//!
//! **Handshake.** The server sends configuration lines, then waits for the table to register
//! the services it answers:
//!
//! ```text
//! > config|smtpd-version|7.8.0
//! > config|protocol|0.1
//! > config|tablename|devs
//! > config|ready
//! < register|alias
//! < register|credentials
//! < register|ready
//! ```
//!
//! A table must register at least one service; `register|` lines with an unknown service, or
//! any other line before `register|ready`, end the handshake in failure.
//!
//! **Requests** share a prefix — `table`, the protocol version, a `seconds.microseconds`
//! timestamp, the table name — then the operation:
//!
//! ```text
//! > table|0.1|1713795082.354255|devs|lookup|alias|b72508d1|op
//! > table|0.1|1713795103.314423|devs|check|netaddr|e5862859|192.168.0.7
//! > table|0.1|1713795116.227321|devs|fetch|source|189bd3ee
//! > table|0.1|1713795097.394049|devs|update|478ff0d2
//! ```
//!
//! The id (8 hex digits here) is chosen by the server; the key of `lookup` and `check` is the
//! last field and may contain `|` but never a newline.
//!
//! **Replies** name the operation with `-result`, repeat the id, and give the outcome:
//!
//! ```text
//! < lookup-result|b72508d1|found|1000:1000:/home/op
//! < check-result|e5862859|not-found
//! < fetch-result|189bd3ee|found|192.168.1.7
//! < update-result|478ff0d2|error|failed to connect to the database
//! ```
//!
//! `lookup` and `fetch` answer `found|VALUE` (a non-empty value), `not-found` or
//! `error[|MESSAGE]`; `check` answers `found`, `not-found` or `error[|MESSAGE]`; `update`
//! answers `ok` or `error[|MESSAGE]`. The value formats per service are those of table(5).
//!
//! # Where Petrel differs from OpenSMTPD 7.8
//!
//! - Several requests may be outstanding at once and replies may come in any order; they are
//!   matched by id (OpenSMTPD sends one request and blocks until its answer).
//! - Requests have deadlines (passed in by the shell); a request not answered in time fails
//!   temporarily, and a late answer to it is dropped quietly. OpenSMTPD waits forever.
//! - A malformed line or an unknown id is reported to the shell as a [`ProtocolError`] and the
//!   client carries on (OpenSMTPD exits); the request the line may have been meant to answer
//!   times out.
//! - A `fetch` may be answered with `lookup-result`, as smtpd-tables(7)'s own example does,
//!   besides the `fetch-result` OpenSMTPD's code expects.
//! - `check` must answer exactly `found` or `found|…` (OpenSMTPD accepts anything starting with
//!   `found`), and `error` is `error` or `error|MESSAGE` (not any word starting with `error`).
//! - The rules ask `from rdns` tables for service `domain` where OpenSMTPD asks `netaddr`.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fmt;
use std::time::Duration;

use thiserror::Error;

use super::lookups::LookupError;
use super::service::Service;
use crate::Time;

/// The protocol version Petrel speaks.
pub const PROTOCOL_VERSION: &str = "0.1";

/// The OpenSMTPD release whose table protocol Petrel follows, announced as `smtpd-version` so
/// that table programs checking it accept Petrel.
pub const SMTPD_VERSION: &str = "7.8.0";

/// How many timed-out request ids are remembered, so their late answers are dropped quietly.
const LATE_IDS: usize = 1024;

/// A request id, chosen by the shell (unique among outstanding requests); written as 8 hex
/// digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u32);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

/// What a request asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operation {
    /// Reload the table's configuration.
    Update,
    /// Is `key` present for `service`?
    Check {
        /// The service.
        service: Service,
        /// The key.
        key: String,
    },
    /// The value of `key` for `service`.
    Lookup {
        /// The service.
        service: Service,
        /// The key.
        key: String,
    },
    /// The next value for `service` (`source`, `relayhost`), wrapping around.
    Fetch {
        /// The service.
        service: Service,
    },
}

impl Operation {
    fn kind(&self) -> OpKind {
        match self {
            Operation::Update => OpKind::Update,
            Operation::Check { .. } => OpKind::Check,
            Operation::Lookup { .. } => OpKind::Lookup,
            Operation::Fetch { .. } => OpKind::Fetch,
        }
    }

    fn service(&self) -> Option<Service> {
        match self {
            Operation::Update => None,
            Operation::Check { service, .. }
            | Operation::Lookup { service, .. }
            | Operation::Fetch { service } => Some(*service),
        }
    }
}

/// The operation a reply answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpKind {
    /// `update` / `update-result`.
    Update,
    /// `check` / `check-result`.
    Check,
    /// `lookup` / `lookup-result`.
    Lookup,
    /// `fetch` / `fetch-result`.
    Fetch,
}

impl OpKind {
    /// The request word.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Update => "update",
            OpKind::Check => "check",
            OpKind::Lookup => "lookup",
            OpKind::Fetch => "fetch",
        }
    }

    fn from_result(word: &str) -> Option<OpKind> {
        Some(match word {
            "update-result" => OpKind::Update,
            "check-result" => OpKind::Check,
            "lookup-result" => OpKind::Lookup,
            "fetch-result" => OpKind::Fetch,
            _ => return None,
        })
    }
}

/// Why a request cannot be written.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The key contains a newline (it would end the request early and inject another).
    #[error("table key contains a line break")]
    LineBreakInKey,
    /// The table name or version string contains `|` or a line break.
    #[error("invalid field {0:?} in table request")]
    BadField(String),
}

/// The handshake lines the server sends first (without their newlines).
///
/// # Errors
/// The table name or version contains `|` or a line break.
pub fn handshake(smtpd_version: &str, table: &str) -> Result<Vec<String>, EncodeError> {
    check_field(smtpd_version)?;
    check_field(table)?;
    Ok(vec![
        format!("config|smtpd-version|{smtpd_version}"),
        format!("config|protocol|{PROTOCOL_VERSION}"),
        format!("config|tablename|{table}"),
        "config|ready".to_owned(),
    ])
}

fn check_field(field: &str) -> Result<(), EncodeError> {
    if field.contains(['|', '\n', '\r']) {
        return Err(EncodeError::BadField(field.to_owned()));
    }
    Ok(())
}

/// One request line (without its newline), stamped `now`.
///
/// # Errors
/// A key with a line break, a table name with `|` or a line break.
pub fn encode_request(
    table: &str,
    id: RequestId,
    op: &Operation,
    now: Time,
) -> Result<String, EncodeError> {
    check_field(table)?;
    let ms = now.as_millis();
    let prefix = format!(
        "table|{PROTOCOL_VERSION}|{}.{:06}|{table}|{}",
        ms / 1000,
        (ms % 1000) * 1000,
        op.kind().as_str()
    );
    Ok(match op {
        Operation::Update => format!("{prefix}|{id}"),
        Operation::Fetch { service } => format!("{prefix}|{service}|{id}"),
        Operation::Check { service, key } | Operation::Lookup { service, key } => {
            if key.contains(['\n', '\r']) {
                return Err(EncodeError::LineBreakInKey);
            }
            format!("{prefix}|{service}|{id}|{key}")
        }
    })
}

/// What a table answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `update`: `ok`.
    Ok,
    /// `check`: `found`; `lookup`/`fetch`: `found|VALUE`.
    Found(Option<String>),
    /// `not-found`.
    NotFound,
    /// `error[|MESSAGE]`.
    Error(Option<String>),
}

/// A parsed reply line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcReply {
    /// The operation it answers.
    pub op: OpKind,
    /// The request id, as written.
    pub id: String,
    /// The outcome.
    pub outcome: Outcome,
}

/// Why a reply line is malformed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// The line is empty.
    #[error("empty reply line")]
    Empty,
    /// The first field is not `update-result`, `check-result`, `lookup-result` or
    /// `fetch-result`.
    #[error("unknown reply {0:?}")]
    UnknownReply(String),
    /// No id, or no outcome after it.
    #[error("reply without an id and an outcome")]
    Truncated,
    /// The outcome is not one this operation may give.
    #[error("invalid outcome {outcome:?} for a {op} reply", op = .op.as_str())]
    BadOutcome {
        /// The operation answered.
        op: OpKind,
        /// The outcome as written.
        outcome: String,
    },
    /// `found|` with an empty value.
    #[error("found without a value")]
    EmptyValue,
}

/// Parses one reply line (a trailing `\n` or `\r\n` is ignored).
///
/// # Errors
/// The line is not a well-formed reply.
pub fn parse_reply(line: &str) -> Result<ProcReply, ReplyError> {
    let line = line.trim_end_matches('\n').trim_end_matches('\r');
    if line.is_empty() {
        return Err(ReplyError::Empty);
    }
    let (word, rest) = line.split_once('|').unwrap_or((line, ""));
    let op = OpKind::from_result(word).ok_or_else(|| ReplyError::UnknownReply(word.to_owned()))?;
    let (id, result) = rest.split_once('|').ok_or(ReplyError::Truncated)?;
    if id.is_empty() {
        return Err(ReplyError::Truncated);
    }
    let bad = || ReplyError::BadOutcome {
        op,
        outcome: result.to_owned(),
    };
    let (status, value) = match result.split_once('|') {
        Some((s, v)) => (s, Some(v)),
        None => (result, None),
    };
    let outcome = match (op, status, value) {
        (_, "error", v) => Outcome::Error(v.map(str::to_owned)),
        (_, "not-found", None) if op != OpKind::Update => Outcome::NotFound,
        (OpKind::Update, "ok", None) => Outcome::Ok,
        (OpKind::Check, "found", _) => Outcome::Found(None),
        (OpKind::Lookup | OpKind::Fetch, "found", Some(v)) if !v.is_empty() => {
            Outcome::Found(Some(v.to_owned()))
        }
        (OpKind::Lookup | OpKind::Fetch, "found", _) => return Err(ReplyError::EmptyValue),
        _ => return Err(bad()),
    };
    Ok(ProcReply {
        op,
        id: id.to_owned(),
        outcome,
    })
}

/// A handshake line from the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Register {
    /// `register|SERVICE`.
    Service(Service),
    /// `register|ready`.
    Ready,
}

/// Why the handshake failed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// A line other than `register|…` during the handshake.
    #[error("invalid handshake line {0:?}")]
    NotRegister(String),
    /// `register|` with a service that does not exist.
    #[error("unknown service {0:?}")]
    UnknownService(String),
    /// `register|ready` without any service registered.
    #[error("no services registered")]
    NoServices,
    /// The table did not finish the handshake in time.
    #[error("handshake timed out")]
    TimedOut,
    /// The process stopped before finishing the handshake.
    #[error("table process stopped: {0}")]
    Stopped(String),
}

/// Parses one handshake line from the table.
///
/// # Errors
/// Not a `register|` line, or an unknown service.
pub fn parse_register(line: &str) -> Result<Register, HandshakeError> {
    let line = line.trim_end_matches('\n').trim_end_matches('\r');
    let Some(what) = line.strip_prefix("register|") else {
        return Err(HandshakeError::NotRegister(line.to_owned()));
    };
    if what == "ready" {
        return Ok(Register::Ready);
    }
    Service::from_name(what)
        .map(Register::Service)
        .ok_or_else(|| HandshakeError::UnknownService(what.to_owned()))
}

/// The answer to one request, as the client reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// `update`: done.
    Updated,
    /// `check`: present.
    Present,
    /// `lookup`/`fetch`: this value.
    Value(String),
    /// `check`/`lookup`/`fetch`: absent (`fetch`: the table is empty).
    NotFound,
    /// The table failed (it said `error`, answered with the wrong operation, or stopped).
    Failed(String),
    /// No answer before the deadline.
    TimedOut,
}

impl Answer {
    /// As the answer to a `lookup` or `fetch` for the [`Lookups`](super::Lookups) seam.
    ///
    /// # Errors
    /// Any failure, timeout or unexpected answer: a temporary failure.
    pub fn into_value(self, table: &str) -> Result<Option<String>, LookupError> {
        match self {
            Answer::Value(v) => Ok(Some(v)),
            Answer::NotFound => Ok(None),
            other => Err(other.into_error(table)),
        }
    }

    /// As the answer to a `check` for the [`Lookups`](super::Lookups) seam.
    ///
    /// # Errors
    /// Any failure, timeout or unexpected answer: a temporary failure.
    pub fn into_present(self, table: &str) -> Result<bool, LookupError> {
        match self {
            Answer::Present => Ok(true),
            Answer::NotFound => Ok(false),
            other => Err(other.into_error(table)),
        }
    }

    fn into_error(self, table: &str) -> LookupError {
        let reason = match self {
            Answer::Failed(reason) => reason,
            Answer::TimedOut => "no answer in time".to_owned(),
            other => format!("unexpected answer {other:?}"),
        };
        LookupError::Backend {
            table: table.to_owned(),
            reason,
        }
    }
}

/// What the client tells the shell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The handshake completed: the table answers these services.
    Ready {
        /// The registered services, in registration order.
        services: Vec<Service>,
    },
    /// A request was answered (or timed out, or the table failed).
    Answer {
        /// The request.
        id: RequestId,
        /// Its answer.
        answer: Answer,
    },
    /// The handshake failed; the process is unusable (the shell stops it and may restart it).
    HandshakeFailed(HandshakeError),
}

/// Why a request was refused by the client.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The handshake is not finished.
    #[error("table <{0}> is not ready")]
    NotReady(String),
    /// The table process failed.
    #[error("table <{0}> has failed")]
    Failed(String),
    /// The table did not register the request's service.
    #[error("table <{table}> does not provide the {service} service")]
    Unsupported {
        /// The table.
        table: String,
        /// The service.
        service: Service,
    },
    /// The id is already in use by an outstanding request.
    #[error("request id {0} is already outstanding")]
    DuplicateId(RequestId),
    /// The request cannot be written.
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// A line from the table the client could not use. The client keeps going.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The handshake failed (also reported as [`Event::HandshakeFailed`]).
    #[error("handshake: {0}")]
    Handshake(#[from] HandshakeError),
    /// A malformed reply.
    #[error("malformed reply: {0}")]
    Reply(#[from] ReplyError),
    /// A reply to no outstanding request.
    #[error("reply to unknown request id {0:?}")]
    UnknownId(String),
    /// A reply naming another operation than the request's (the request fails).
    #[error("{got} reply to {expected} request {id}", got = .got.as_str(), expected = .expected.as_str())]
    WrongOperation {
        /// The request.
        id: RequestId,
        /// What it asked.
        expected: OpKind,
        /// What the reply answered.
        got: OpKind,
    },
    /// A line after the client failed.
    #[error("line from a failed table")]
    AfterFailure,
}

/// Deadlines for a table process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// From creation to `register|ready`.
    pub handshake: Duration,
    /// From a request to its answer.
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            handshake: Duration::from_secs(30),
            request: Duration::from_secs(10),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    Handshake {
        deadline: Time,
        services: Vec<Service>,
    },
    Ready,
    Failed,
}

#[derive(Clone, Debug)]
struct Pending {
    op: OpKind,
    deadline: Time,
}

/// The client side of one `proc:` table process. See the module documentation.
///
/// The shell writes every line [`poll_output`](Self::poll_output) gives (adding `\n`), feeds
/// every line the process writes to [`handle_line`](Self::handle_line), acts on
/// [`poll_event`](Self::poll_event), and calls [`handle_timeout`](Self::handle_timeout) at
/// [`poll_timeout`](Self::poll_timeout).
#[derive(Clone, Debug)]
pub struct ProcTableClient {
    table: String,
    state: State,
    services: Vec<Service>,
    outstanding: BTreeMap<RequestId, Pending>,
    late: VecDeque<RequestId>,
    late_set: HashSet<RequestId>,
    output: VecDeque<String>,
    events: VecDeque<Event>,
    timeouts: Timeouts,
}

impl ProcTableClient {
    /// A client for table `table`, started at `now`: the handshake lines are ready to send.
    ///
    /// # Errors
    /// The table name or version cannot be written in the protocol.
    pub fn new(
        table: &str,
        smtpd_version: &str,
        now: Time,
        timeouts: Timeouts,
    ) -> Result<ProcTableClient, EncodeError> {
        Ok(ProcTableClient {
            table: table.to_owned(),
            state: State::Handshake {
                deadline: now + timeouts.handshake,
                services: Vec::new(),
            },
            services: Vec::new(),
            outstanding: BTreeMap::new(),
            late: VecDeque::new(),
            late_set: HashSet::new(),
            output: handshake(smtpd_version, table)?.into(),
            events: VecDeque::new(),
            timeouts,
        })
    }

    /// The table's name.
    #[must_use]
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The handshake completed and the table has not failed.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.state == State::Ready
    }

    /// The handshake failed, or [`fail`](Self::fail) was called.
    #[must_use]
    pub fn has_failed(&self) -> bool {
        self.state == State::Failed
    }

    /// The services the table registered.
    #[must_use]
    pub fn services(&self) -> &[Service] {
        &self.services
    }

    /// The number of requests waiting for an answer.
    #[must_use]
    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    /// Sends a request, to be answered by an [`Event::Answer`] with the same id.
    ///
    /// # Errors
    /// Not ready, failed, the service not registered, the id in use, or unwritable.
    pub fn request(&mut self, id: RequestId, op: Operation, now: Time) -> Result<(), RequestError> {
        match self.state {
            State::Handshake { .. } => return Err(RequestError::NotReady(self.table.clone())),
            State::Failed => return Err(RequestError::Failed(self.table.clone())),
            State::Ready => {}
        }
        if let Some(service) = op.service()
            && !self.services.contains(&service)
        {
            return Err(RequestError::Unsupported {
                table: self.table.clone(),
                service,
            });
        }
        if self.outstanding.contains_key(&id) {
            return Err(RequestError::DuplicateId(id));
        }
        let line = encode_request(&self.table, id, &op, now)?;
        // An id reused after its request timed out is live again.
        if self.late_set.remove(&id) {
            self.late.retain(|&l| l != id);
        }
        self.outstanding.insert(
            id,
            Pending {
                op: op.kind(),
                deadline: now + self.timeouts.request,
            },
        );
        self.output.push_back(line);
        Ok(())
    }

    /// Takes in one line written by the table process.
    ///
    /// # Errors
    /// The line could not be used; the client carries on (see the module documentation),
    /// except after a failed handshake.
    pub fn handle_line(&mut self, line: &str, _now: Time) -> Result<(), ProtocolError> {
        match &mut self.state {
            State::Failed => Err(ProtocolError::AfterFailure),
            State::Handshake { services, .. } => match parse_register(line) {
                Ok(Register::Service(s)) => {
                    if !services.contains(&s) {
                        services.push(s);
                    }
                    Ok(())
                }
                Ok(Register::Ready) if services.is_empty() => {
                    Err(self.handshake_failed(HandshakeError::NoServices).into())
                }
                Ok(Register::Ready) => {
                    let services = std::mem::take(services);
                    self.services.clone_from(&services);
                    self.state = State::Ready;
                    self.events.push_back(Event::Ready { services });
                    Ok(())
                }
                Err(e) => Err(self.handshake_failed(e).into()),
            },
            State::Ready => self.reply(line),
        }
    }

    fn handshake_failed(&mut self, e: HandshakeError) -> HandshakeError {
        self.state = State::Failed;
        self.events.push_back(Event::HandshakeFailed(e.clone()));
        e
    }

    fn reply(&mut self, line: &str) -> Result<(), ProtocolError> {
        let reply = parse_reply(line)?;
        let id = parse_id(&reply.id).ok_or_else(|| ProtocolError::UnknownId(reply.id.clone()))?;
        let Some(pending) = self.outstanding.remove(&id) else {
            if self.late_set.contains(&id) {
                return Ok(());
            }
            return Err(ProtocolError::UnknownId(reply.id));
        };
        let compatible =
            pending.op == reply.op || (pending.op == OpKind::Fetch && reply.op == OpKind::Lookup);
        if !compatible {
            self.answer(id, Answer::Failed("mismatched reply".into()));
            return Err(ProtocolError::WrongOperation {
                id,
                expected: pending.op,
                got: reply.op,
            });
        }
        let answer = match reply.outcome {
            Outcome::Ok => Answer::Updated,
            Outcome::Found(None) => Answer::Present,
            Outcome::Found(Some(v)) => Answer::Value(v),
            Outcome::NotFound => Answer::NotFound,
            Outcome::Error(msg) => Answer::Failed(msg.unwrap_or_else(|| "error".into())),
        };
        self.answer(id, answer);
        Ok(())
    }

    fn answer(&mut self, id: RequestId, answer: Answer) {
        self.events.push_back(Event::Answer { id, answer });
    }

    /// The process stopped or became unusable: every outstanding request fails with `reason`,
    /// and no new request is accepted.
    pub fn fail(&mut self, reason: &str) {
        if let State::Handshake { .. } = self.state {
            self.events
                .push_back(Event::HandshakeFailed(HandshakeError::Stopped(
                    reason.to_owned(),
                )));
        }
        self.state = State::Failed;
        for id in std::mem::take(&mut self.outstanding).into_keys() {
            self.answer(id, Answer::Failed(reason.to_owned()));
        }
    }

    /// The next line to write to the process (without its newline).
    pub fn poll_output(&mut self) -> Option<String> {
        self.output.pop_front()
    }

    /// The next event for the shell.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Time> {
        let handshake = match &self.state {
            State::Handshake { deadline, .. } => Some(*deadline),
            _ => None,
        };
        self.outstanding
            .values()
            .map(|p| p.deadline)
            .chain(handshake)
            .min()
    }

    /// Expires the handshake and the requests whose deadline is `now` or earlier.
    pub fn handle_timeout(&mut self, now: Time) {
        if let State::Handshake { deadline, .. } = self.state
            && deadline <= now
        {
            self.handshake_failed(HandshakeError::TimedOut);
        }
        let mut expired: Vec<(Time, RequestId)> = self
            .outstanding
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(&id, p)| (p.deadline, id))
            .collect();
        expired.sort();
        for (_, id) in expired {
            self.outstanding.remove(&id);
            self.remember_late(id);
            self.answer(id, Answer::TimedOut);
        }
    }

    fn remember_late(&mut self, id: RequestId) {
        if self.late.len() == LATE_IDS
            && let Some(old) = self.late.pop_front()
        {
            self.late_set.remove(&old);
        }
        self.late.push_back(id);
        self.late_set.insert(id);
    }
}

/// The id of a reply, which must echo the request's exactly.
fn parse_id(text: &str) -> Option<RequestId> {
    let id = RequestId(u32::from_str_radix(text, 16).ok()?);
    (id.to_string() == text).then_some(id)
}

#[cfg(test)]
#[path = "proc_table_tests.rs"]
mod tests;
