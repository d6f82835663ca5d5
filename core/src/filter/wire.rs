//! The lines of the filter protocol, in both directions.
//!
//! Petrel reads what filters send ([`parse_filter_line`]: registrations, filter results,
//! data-lines, filter-originated reports) and writes the handshake, filter requests and report
//! events ([`handshake_lines`], [`filter_request`], [`report_line`]). The reverse directions
//! exist too ([`FilterLine::to_line`], [`parse_daemon_line`]) for test filters, the filter
//! conformance kit and round-trip checks.
//!
//! The protocol has no escaping: a field that may hold arbitrary text is always the last of its
//! line, and readers split a line into at most as many fields as it has, so that the last one
//! keeps any `|`. Everything here follows that rule. Lines are given and returned without their
//! terminating `\n`.

use std::fmt;

use thiserror::Error;

use super::report::ReportEvent;
use super::{EventName, Phase, Response, Subsystem, Version, session_hex, timestamp};
use crate::Time;

/// What is wrong with a line, said plainly enough for a log. Offending text is quoted and cut
/// to about 40 characters.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum WireError {
    /// Nothing but a line ending.
    #[error("empty line")]
    Empty,
    /// The first field is no line type of this direction.
    #[error("unknown line type {0:?}")]
    UnknownLineType(String),
    /// The line stops before a field it must have.
    #[error("{line} line ends before its {field} field")]
    MissingField {
        /// The line type (`filter-result`, `register`, …).
        line: &'static str,
        /// The field that is missing.
        field: &'static str,
    },
    /// The line goes on after its last field.
    #[error("{line} line has unexpected text after its last field: {extra:?}")]
    ExtraField {
        /// The line type.
        line: &'static str,
        /// What follows.
        extra: String,
    },
    /// A session id, token or message id that is not hex, or too long.
    #[error("{what} {value:?} is not 1 to {max} hex digits")]
    BadHex {
        /// Which id.
        what: &'static str,
        /// The text found.
        value: String,
        /// The most digits allowed.
        max: usize,
    },
    /// A subsystem other than `smtp-in` or `smtp-out`.
    #[error("unknown subsystem {0:?} (expected smtp-in or smtp-out)")]
    UnknownSubsystem(String),
    /// Filters (as opposed to reports) exist only for sessions of clients connecting to us.
    #[error("filters can only be registered for smtp-in, not for {0:?}")]
    FilterSubsystem(String),
    /// A phase name that does not exist.
    #[error("unknown phase {0:?}")]
    UnknownPhase(String),
    /// A report event name that does not exist.
    #[error("unknown report event {0:?}")]
    UnknownEvent(String),
    /// `register|` followed by something other than `report`, `filter` or `ready`.
    #[error("unknown registration {0:?} (expected report, filter or ready)")]
    UnknownRegistration(String),
    /// A `filter-result` decision that does not exist.
    #[error(
        "unknown decision {0:?} (expected proceed, junk, reject, disconnect, rewrite or report)"
    )]
    UnknownDecision(String),
    /// `proceed` or `junk` followed by a parameter.
    #[error("{decision} takes no parameter, got {param:?}")]
    UnexpectedParameter {
        /// The decision.
        decision: &'static str,
        /// The parameter found.
        param: String,
    },
    /// `reject`, `disconnect`, `rewrite` or `report` without its parameter.
    #[error("{decision} needs a parameter")]
    MissingParameter {
        /// The decision.
        decision: &'static str,
    },
    /// `reject|` or `disconnect|` with nothing to reply.
    #[error("{decision} needs an SMTP reply, got an empty one")]
    EmptyReply {
        /// The decision.
        decision: &'static str,
    },
    /// A time that is not `<seconds>.<six digits>`.
    #[error("timestamp {0:?} is not <seconds>.<6 digits of microseconds>")]
    BadTimestamp(String),
    /// A report event with the wrong number of fields.
    #[error("{event} takes {expected} fields, got {got}")]
    FieldCount {
        /// The event.
        event: EventName,
        /// How many it takes (`4`, `2 or 3`, `no`).
        expected: String,
        /// How many there are.
        got: usize,
    },
    /// A report field that is not what its position calls for.
    #[error("invalid {what} {value:?} (expected {expected})")]
    BadField {
        /// What the field is.
        what: &'static str,
        /// The text found.
        value: String,
        /// What would do.
        expected: &'static str,
    },
}

/// Offending text is quoted in errors, which end up in logs: keep it short.
pub(crate) fn clip(text: &str) -> String {
    const MAX: usize = 40;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// Parses a session id, token, message id or envelope id: 1 to `max` hex digits, either case.
/// (OpenSMTPD's `strtoull` would also take a sign, spaces or `0x`; no filter sends those.)
pub(crate) fn parse_hex(text: &str, what: &'static str, max: usize) -> Result<u64, WireError> {
    let bad = || WireError::BadHex {
        what,
        value: clip(text),
        max,
    };
    if text.is_empty() || text.len() > max || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    u64::from_str_radix(text, 16).map_err(|_| bad())
}

/// Drops the line terminator: a single `\n`, then a single `\r`, so that lines written with
/// CRLF read the same as lines written with LF.
fn strip_eol(line: &str) -> &str {
    let line = line.strip_suffix('\n').unwrap_or(line);
    line.strip_suffix('\r').unwrap_or(line)
}

/// `<seconds>.<exactly six digits>`, as `%lld.%06ld` prints a `struct timeval`.
fn check_timestamp(text: &str) -> Result<(), WireError> {
    let ok = text.split_once('.').is_some_and(|(secs, usecs)| {
        !secs.is_empty()
            && secs.bytes().all(|b| b.is_ascii_digit())
            && usecs.len() == 6
            && usecs.bytes().all(|b| b.is_ascii_digit())
    });
    if ok {
        Ok(())
    } else {
        Err(WireError::BadTimestamp(clip(text)))
    }
}

/// Walks the fields of one line, the `splitn` way: [`Fields::last`] takes everything left,
/// `|` included.
struct Fields<'a> {
    line: &'static str,
    rest: Option<&'a str>,
}

impl<'a> Fields<'a> {
    /// The fields after the line type of `line`.
    fn after_type(line: &'a str) -> (&'a str, Fields<'a>) {
        let (kind, rest) = match line.split_once('|') {
            Some((kind, rest)) => (kind, Some(rest)),
            None => (line, None),
        };
        (kind, Fields { line: "", rest })
    }

    /// Names the line type in errors (the type is known once it is recognised).
    fn of(mut self, line: &'static str) -> Self {
        self.line = line;
        self
    }

    /// The next field, up to the next `|`.
    fn next(&mut self, field: &'static str) -> Result<&'a str, WireError> {
        let rest = self.rest.ok_or(WireError::MissingField {
            line: self.line,
            field,
        })?;
        Ok(match rest.split_once('|') {
            Some((value, rest)) => {
                self.rest = Some(rest);
                value
            }
            None => {
                self.rest = None;
                rest
            }
        })
    }

    /// Everything left, `|` included: the last field of the line.
    fn last(&mut self, field: &'static str) -> Result<&'a str, WireError> {
        self.rest.take().ok_or(WireError::MissingField {
            line: self.line,
            field,
        })
    }

    /// Everything left, if the line goes on.
    fn remainder(&mut self) -> Option<&'a str> {
        self.rest.take()
    }

    /// Checks that the line has ended.
    fn end(self) -> Result<(), WireError> {
        match self.rest {
            None => Ok(()),
            Some(extra) => Err(WireError::ExtraField {
                line: self.line,
                extra: clip(extra),
            }),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Lines filters send
// ---------------------------------------------------------------------------------------------

/// What a filter declares before `register|ready`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Registration {
    /// `register|report|<subsystem>|<event>`: send me this report event.
    Report {
        /// Whose events.
        subsystem: Subsystem,
        /// The event; `None` for `*`, every event of the subsystem.
        event: Option<EventName>,
    },
    /// `register|filter|smtp-in|<phase>`: ask me at this phase.
    Filter {
        /// The phase.
        phase: Phase,
    },
    /// `register|ready`: the registrations are complete.
    Ready,
}

/// A line a filter sends.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FilterLine {
    /// `register|…`, during the handshake.
    Register(Registration),
    /// `filter-result|<session>|<token>|<decision>[|<parameter>]`: the answer to a request of
    /// any phase but data-line.
    Result {
        /// The session asked about.
        session: u64,
        /// The request's token, echoed.
        token: u64,
        /// The decision.
        response: Response,
    },
    /// `filter-dataline|<session>|<token>|<line>`: one line of the filter's output during
    /// the data-line phase (dot-stuffed; `.` alone ends it).
    DataLine {
        /// The session.
        session: u64,
        /// The data-line request's token, echoed.
        token: u64,
        /// The line, possibly empty, `|` included.
        line: String,
    },
    /// `report|<sec>.<usec>|<subsystem>|<session-id>|<message>`: a free-text report the
    /// filter wants the other filters to receive as a `filter-report` event. This is the
    /// format OpenSMTPD intended (commit d63d80d); its own parser mis-reads it.
    Report {
        /// The filter's timestamp, `<seconds>.<6 digits>`, as given.
        time: String,
        /// Whose session. Parsed for both; OpenSMTPD only takes `smtp-in`, which the caller
        /// decides.
        subsystem: Subsystem,
        /// The session.
        session: u64,
        /// The text, `|` included.
        message: String,
    },
}

/// Parses one line a filter sent. A single trailing `\n`, and then a single `\r`, are dropped
/// first; a line never holds another `\n` (lines are split on it).
///
/// Fields are split with `splitn`, so the last field (a data-line, a decision's parameter, a
/// report message) keeps any `|`. Session ids and tokens are 1 to 16 hex digits, either case.
///
/// # Errors
///
/// Anything OpenSMTPD would refuse (it treats them as fatal): an unknown line type,
/// registration, subsystem, phase, event or decision; a filter registered for anything but
/// `smtp-in`; a missing field; ids that are not hex; a parameter after `proceed` or `junk`;
/// `reject`, `disconnect`, `rewrite` or `report` without one; an empty `reject` or
/// `disconnect` reply; a report timestamp that is not `<seconds>.<6 digits>`.
pub fn parse_filter_line(line: &str) -> Result<FilterLine, WireError> {
    let line = strip_eol(line);
    if line.is_empty() {
        return Err(WireError::Empty);
    }
    let (kind, fields) = Fields::after_type(line);
    match kind {
        "register" => parse_registration(fields.of("register")).map(FilterLine::Register),
        "filter-result" => {
            let mut f = fields.of("filter-result");
            let session = parse_hex(f.next("session id")?, "session id", 16)?;
            let token = parse_hex(f.next("token")?, "token", 16)?;
            let decision = f.next("decision")?;
            let response = parse_decision(decision, f.remainder())?;
            Ok(FilterLine::Result {
                session,
                token,
                response,
            })
        }
        "filter-dataline" => {
            let mut f = fields.of("filter-dataline");
            let session = parse_hex(f.next("session id")?, "session id", 16)?;
            let token = parse_hex(f.next("token")?, "token", 16)?;
            let line = f.last("line")?.to_owned();
            Ok(FilterLine::DataLine {
                session,
                token,
                line,
            })
        }
        "report" => {
            let mut f = fields.of("report");
            let time = f.next("timestamp")?;
            check_timestamp(time)?;
            let subsystem = parse_subsystem(f.next("subsystem")?)?;
            let session = parse_hex(f.next("session id")?, "session id", 16)?;
            let message = f.last("message")?.to_owned();
            Ok(FilterLine::Report {
                time: time.to_owned(),
                subsystem,
                session,
                message,
            })
        }
        other => Err(WireError::UnknownLineType(clip(other))),
    }
}

fn parse_subsystem(text: &str) -> Result<Subsystem, WireError> {
    Subsystem::parse(text).ok_or_else(|| WireError::UnknownSubsystem(clip(text)))
}

fn parse_phase(text: &str) -> Result<Phase, WireError> {
    Phase::parse(text).ok_or_else(|| WireError::UnknownPhase(clip(text)))
}

fn parse_event(text: &str) -> Result<EventName, WireError> {
    EventName::parse(text).ok_or_else(|| WireError::UnknownEvent(clip(text)))
}

/// Filters are asked only about smtp-in sessions; OpenSMTPD refuses any other direction.
fn check_filter_subsystem(text: &str) -> Result<(), WireError> {
    if text == Subsystem::SmtpIn.as_str() {
        Ok(())
    } else {
        Err(WireError::FilterSubsystem(clip(text)))
    }
}

fn parse_registration(mut f: Fields<'_>) -> Result<Registration, WireError> {
    match f.next("registration")? {
        "ready" => {
            f.end()?;
            Ok(Registration::Ready)
        }
        "report" => {
            let subsystem = parse_subsystem(f.next("subsystem")?)?;
            let event = match f.last("event")? {
                "*" => None,
                name => Some(parse_event(name)?),
            };
            Ok(Registration::Report { subsystem, event })
        }
        "filter" => {
            check_filter_subsystem(f.next("subsystem")?)?;
            let phase = parse_phase(f.last("phase")?)?;
            Ok(Registration::Filter { phase })
        }
        other => Err(WireError::UnknownRegistration(clip(other))),
    }
}

fn parse_decision(decision: &str, param: Option<&str>) -> Result<Response, WireError> {
    let none = |name: &'static str, response: Response| match param {
        None => Ok(response),
        Some(param) => Err(WireError::UnexpectedParameter {
            decision: name,
            param: clip(param),
        }),
    };
    let some = |name: &'static str| {
        param
            .map(str::to_owned)
            .ok_or(WireError::MissingParameter { decision: name })
    };
    // A rewrite to nothing or an empty report are odd but meaningful; an empty reply is not.
    let reply = |name: &'static str| match some(name)? {
        param if param.is_empty() => Err(WireError::EmptyReply { decision: name }),
        param => Ok(param),
    };
    match decision {
        "proceed" => none("proceed", Response::Proceed),
        "junk" => none("junk", Response::Junk),
        "reject" => reply("reject").map(Response::Reject),
        "disconnect" => reply("disconnect").map(Response::Disconnect),
        "rewrite" => some("rewrite").map(Response::Rewrite),
        "report" => some("report").map(Response::Report),
        other => Err(WireError::UnknownDecision(clip(other))),
    }
}

impl FilterLine {
    /// The line as a filter writes it (without its `\n`): protocol 0.5+ order (session before
    /// token), ids as 16 lowercase hex digits.
    ///
    /// Nothing is escaped (the protocol has no escaping): fields must not hold `\n`, and a
    /// last field ending in `\r` loses that `\r` when read back, since readers take a final
    /// `\r` for part of a CRLF ending. Only the last field may hold `|`.
    #[must_use]
    pub fn to_line(&self) -> String {
        match self {
            FilterLine::Register(Registration::Ready) => "register|ready".to_owned(),
            FilterLine::Register(Registration::Report { subsystem, event }) => format!(
                "register|report|{}|{}",
                subsystem.as_str(),
                event.map_or("*", EventName::as_str)
            ),
            FilterLine::Register(Registration::Filter { phase }) => {
                format!("register|filter|smtp-in|{}", phase.as_str())
            }
            FilterLine::Result {
                session,
                token,
                response,
            } => {
                let mut line = format!(
                    "filter-result|{}|{}|{}",
                    session_hex(*session),
                    session_hex(*token),
                    response.name()
                );
                if let Some(param) = response.param() {
                    line.push('|');
                    line.push_str(param);
                }
                line
            }
            FilterLine::DataLine {
                session,
                token,
                line,
            } => format!(
                "filter-dataline|{}|{}|{line}",
                session_hex(*session),
                session_hex(*token)
            ),
            FilterLine::Report {
                time,
                subsystem,
                session,
                message,
            } => format!(
                "report|{time}|{}|{}|{message}",
                subsystem.as_str(),
                session_hex(*session)
            ),
        }
    }
}

impl fmt::Display for FilterLine {
    /// As [`FilterLine::to_line`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_line())
    }
}

/// Checks the parameter of a `reject` or `disconnect` decision as OpenSMTPD does
/// (`valid_smtp_response` in `util.c`, then a 4 or 5 as first digit): at least five
/// characters, a three-digit code whose first digit is 4 or 5, then a space. Returns the code
/// and the whole text, which is the reply to send.
///
/// `None` means the reply is unusable; the chain then replies `421 Internal server error`
/// (as OpenSMTPD does). A bare `550` or a multi-line form (`550-…`) is refused too.
#[must_use]
pub fn reply_of(param: &str) -> Option<(u16, String)> {
    let b = param.as_bytes();
    let valid = b.len() >= 5
        && matches!(b[0], b'4' | b'5')
        && b[1].is_ascii_digit()
        && b[2].is_ascii_digit()
        && b[3] == b' ';
    if !valid {
        return None;
    }
    let code = b[..3]
        .iter()
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    Some((code, param.to_owned()))
}

// ---------------------------------------------------------------------------------------------
// Lines Petrel sends
// ---------------------------------------------------------------------------------------------

/// Makes one field safe for a line. The protocol has no escaping, so: `\r` and `\n` become a
/// space in every field (one event must stay one line), and in a field that is not the last
/// of its line `|` becomes `?` (only the last field may hold `|`; readers split at most into
/// as many fields as the line has).
fn sanitise(field: &str, last: bool) -> String {
    field
        .chars()
        .map(|c| match c {
            '\r' | '\n' => ' ',
            '|' if !last => '?',
            c => c,
        })
        .collect()
}

/// What the handshake tells a filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handshake {
    /// The version we claim in `config|smtpd-version|…`. Some filters compare it, so it is
    /// the OpenSMTPD version whose behaviour we follow, not Petrel's.
    pub smtpd_version: String,
    /// The protocol version spoken with this filter.
    pub version: Version,
    /// The session timeout announced as `smtp-session-timeout`, in seconds.
    pub session_timeout_secs: u64,
    /// The subsystems the filter is attached to (one `config|subsystem|…` line each).
    pub subsystems: Vec<Subsystem>,
    /// The `admd` value (or the server's host name).
    pub admd: String,
}

/// The configuration block sent to a filter as soon as it starts, in OpenSMTPD's order:
/// `smtpd-version`, `protocol` (0.7 only: OpenSMTPD sends it since 7.6), `smtp-session-timeout`,
/// the subsystems, `admd`, then `config|ready`. Values are the last field of their line: a
/// `\r` or `\n` in them becomes a space.
#[must_use]
pub fn handshake_lines(h: &Handshake) -> Vec<String> {
    let config = |key: &str, value: &str| format!("config|{key}|{}", sanitise(value, true));
    let mut lines = vec![config("smtpd-version", &h.smtpd_version)];
    if h.version == Version::V0_7 {
        lines.push(config("protocol", h.version.as_str()));
    }
    lines.push(config(
        "smtp-session-timeout",
        &h.session_timeout_secs.to_string(),
    ));
    for subsystem in &h.subsystems {
        lines.push(config("subsystem", subsystem.as_str()));
    }
    lines.push(config("admd", &h.admd));
    lines.push("config|ready".to_owned());
    lines
}

/// A filter request (without its `\n`):
/// `filter|<ver>|<sec>.<usec>|smtp-in|<phase>|<session>|<token>|<param>`.
///
/// The separator before the parameter is always there, so an empty parameter ends the line
/// with `|`. The parameter is the last field and keeps any `|`; a `\r` or `\n` in it becomes a
/// space, so that the request stays one line (the protocol has no escaping).
#[must_use]
pub fn filter_request(
    version: Version,
    now: Time,
    session: u64,
    phase: Phase,
    token: u64,
    param: &str,
) -> String {
    format!(
        "filter|{}|{}|smtp-in|{}|{}|{}|{}",
        version.as_str(),
        timestamp(now),
        phase.as_str(),
        session_hex(session),
        session_hex(token),
        sanitise(param, true)
    )
}

/// A report event (without its `\n`):
/// `report|<ver>|<sec>.<usec>|<subsystem>|<event>|<session>[|<fields>…]`, the fields in the
/// layout of `version` (see [`ReportEvent::fields`]). An event without fields ends right after
/// the session id.
///
/// The protocol has no escaping, so the fields are made safe for one line: in every field
/// `\r` and `\n` become a space, and in every field but the last `|` becomes `?` (only the last
/// field may hold `|`, since readers split into at most as many fields as the event has).
#[must_use]
pub fn report_line(
    version: Version,
    now: Time,
    subsystem: Subsystem,
    session: u64,
    event: &ReportEvent,
) -> String {
    let mut line = format!(
        "report|{}|{}|{}|{}|{}",
        version.as_str(),
        timestamp(now),
        subsystem.as_str(),
        event.name().as_str(),
        session_hex(session)
    );
    let fields = event.fields(version);
    let n = fields.len();
    for (i, field) in fields.iter().enumerate() {
        line.push('|');
        line.push_str(&sanitise(field, i + 1 == n));
    }
    line
}

// ---------------------------------------------------------------------------------------------
// Reading lines Petrel sends
// ---------------------------------------------------------------------------------------------

/// A line Petrel (or OpenSMTPD) sends to a filter, as a filter reads it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DaemonLine {
    /// `config|<key>|<value>`, part of the handshake; filters ignore keys they do not know.
    Config {
        /// The key (`smtpd-version`, `protocol`, `subsystem`, …).
        key: String,
        /// The value, `|` included.
        value: String,
    },
    /// `config|ready`: the configuration block is complete.
    ConfigReady,
    /// `filter|<ver>|<time>|smtp-in|<phase>|<session>|<token>|<param>`: a request to answer.
    Filter {
        /// The protocol version as written (`0.7`).
        version: String,
        /// The timestamp as written (`<seconds>.<6 digits>`).
        time: String,
        /// The phase.
        phase: Phase,
        /// The session.
        session: u64,
        /// The token to echo.
        token: u64,
        /// The parameter, possibly empty, `|` included.
        param: String,
    },
    /// `report|<ver>|<time>|<subsystem>|<event>|<session>[|<fields>…]`: a report event. Read
    /// the fields with [`ReportEvent::from_fields`].
    Report {
        /// The protocol version as written (`0.7`).
        version: String,
        /// The timestamp as written.
        time: String,
        /// Whose session.
        subsystem: Subsystem,
        /// The event.
        event: EventName,
        /// The session.
        session: u64,
        /// The fields after the session id, split into at most as many as the event has
        /// ([`EventName::field_count`]), so that the last keeps any `|`.
        fields: Vec<String>,
    },
}

/// Parses one line sent to a filter. A single trailing `\n`, and then a single `\r`, are
/// dropped first.
///
/// # Errors
///
/// An unknown line type, subsystem, phase or event; a filter request for anything but
/// `smtp-in`; a missing field; ids that are not hex; a timestamp that is not
/// `<seconds>.<6 digits>`; a report with fewer fields than its event has, or with fields after
/// an event that has none; text after `config|ready`.
pub fn parse_daemon_line(line: &str) -> Result<DaemonLine, WireError> {
    let line = strip_eol(line);
    if line.is_empty() {
        return Err(WireError::Empty);
    }
    let (kind, fields) = Fields::after_type(line);
    match kind {
        "config" => {
            let mut f = fields.of("config");
            let key = f.next("key")?;
            if key == "ready" {
                f.end()?;
                return Ok(DaemonLine::ConfigReady);
            }
            let value = f.last("value")?;
            Ok(DaemonLine::Config {
                key: key.to_owned(),
                value: value.to_owned(),
            })
        }
        "filter" => {
            let mut f = fields.of("filter");
            let version = f.next("version")?.to_owned();
            let time = f.next("timestamp")?;
            check_timestamp(time)?;
            check_filter_subsystem(f.next("subsystem")?)?;
            let phase = parse_phase(f.next("phase")?)?;
            let session = parse_hex(f.next("session id")?, "session id", 16)?;
            let token = parse_hex(f.next("token")?, "token", 16)?;
            let param = f.last("parameter")?.to_owned();
            Ok(DaemonLine::Filter {
                version,
                time: time.to_owned(),
                phase,
                session,
                token,
                param,
            })
        }
        "report" => {
            let mut f = fields.of("report");
            let version = f.next("version")?.to_owned();
            let time = f.next("timestamp")?;
            check_timestamp(time)?;
            let subsystem = parse_subsystem(f.next("subsystem")?)?;
            let event = parse_event(f.next("event")?)?;
            let session = parse_hex(f.next("session id")?, "session id", 16)?;
            let (min, max) = event.field_count();
            let fields: Vec<String> = match f.remainder() {
                None => Vec::new(),
                Some(rest) if max == 0 => {
                    return Err(WireError::ExtraField {
                        line: "report",
                        extra: clip(rest),
                    });
                }
                Some(rest) => rest.splitn(max, '|').map(str::to_owned).collect(),
            };
            if fields.len() < min {
                return Err(WireError::FieldCount {
                    event,
                    expected: if min == max {
                        min.to_string()
                    } else {
                        format!("{min} or {max}")
                    },
                    got: fields.len(),
                });
            }
            Ok(DaemonLine::Report {
                version,
                time: time.to_owned(),
                subsystem,
                event,
                session,
                fields,
            })
        }
        other => Err(WireError::UnknownLineType(clip(other))),
    }
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
