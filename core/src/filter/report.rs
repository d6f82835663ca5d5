//! Report events: what happened in a session, as filters that registered for it are told.

use std::fmt;
use std::net::SocketAddr;

use super::wire::WireError;
use super::{EventName, Phase, Version};

/// One end of a connection as report events show it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// A TCP address: `192.0.2.1:25`, `[2001:db8::1]:25`.
    Inet(SocketAddr),
    /// The local submission socket: `unix:/path`.
    Unix(String),
}

/// The outcome of forward-confirmed reverse DNS in `link-connect`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fcrdns {
    /// The client's name resolves back to its address.
    Pass,
    /// It does not, or there is no name.
    Fail,
    /// The lookups failed.
    Error,
}

/// How the client (or we, smtp-out) said hello.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IdentifyMethod {
    /// HELO.
    Helo,
    /// EHLO.
    Ehlo,
    /// LHLO (LMTP, smtp-out only).
    Lhlo,
}

/// The outcome of an AUTH attempt in `link-auth`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthResult {
    /// The credentials were accepted.
    Pass,
    /// They were refused.
    Fail,
    /// They could not be checked (temporary failure).
    Error,
}

/// The outcome of MAIL, RCPT or DATA in `tx-mail`, `tx-rcpt`, `tx-data`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TxResult {
    /// Accepted (2xx, or 354 for DATA).
    Ok,
    /// Refused for good (5xx).
    PermFail,
    /// Refused for now (4xx).
    TempFail,
}

/// Who produced a `filter-report`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReporterKind {
    /// A builtin filter of the configuration.
    Builtin,
    /// A filter process.
    Proc,
}

/// A report event with its fields. The session id, time and subsystem are given apart when
/// the event is formatted.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ReportEvent {
    /// `link-connect|rdns|fcrdns|src|dest`.
    LinkConnect {
        /// The client's reverse DNS name, empty if none.
        rdns: String,
        /// Whether that name is forward-confirmed.
        fcrdns: Fcrdns,
        /// The client's end.
        src: Endpoint,
        /// Our end.
        dest: Endpoint,
    },
    /// `link-greeting|hostname`.
    LinkGreeting {
        /// The name in the greeting.
        hostname: String,
    },
    /// `link-identify|method|identity`.
    LinkIdentify {
        /// HELO, EHLO or LHLO.
        method: IdentifyMethod,
        /// The name given.
        identity: String,
    },
    /// `link-tls|tls-string`.
    LinkTls {
        /// `version=TLSv1.3:cipher=…:bits=256`.
        tls: String,
    },
    /// `link-auth|result|username` (0.7; `username|result` before).
    LinkAuth {
        /// The outcome.
        result: AuthResult,
        /// The user name (never the password).
        username: String,
    },
    /// `link-disconnect`.
    LinkDisconnect,
    /// `tx-reset|msgid`.
    TxReset {
        /// The transaction's message id (0 when it had none yet).
        msgid: u32,
    },
    /// `tx-begin|msgid`.
    TxBegin {
        /// The message id.
        msgid: u32,
    },
    /// `tx-mail|msgid|result|address` (0.6+; `msgid|address|result` in 0.5).
    TxMail {
        /// The message id.
        msgid: u32,
        /// The outcome.
        result: TxResult,
        /// The sender without angle brackets; empty for `<>`.
        address: String,
    },
    /// `tx-rcpt|msgid|result|address` (layout as `tx-mail`).
    TxRcpt {
        /// The message id.
        msgid: u32,
        /// The outcome.
        result: TxResult,
        /// The recipient without angle brackets.
        address: String,
    },
    /// `tx-envelope|msgid|envelope-id`.
    TxEnvelope {
        /// The message id.
        msgid: u32,
        /// The envelope id (16 hex digits).
        envelope: u64,
    },
    /// `tx-data|msgid|result`.
    TxData {
        /// The message id.
        msgid: u32,
        /// The outcome.
        result: TxResult,
    },
    /// `tx-commit|msgid|message-size`.
    TxCommit {
        /// The message id.
        msgid: u32,
        /// The size as stored, in octets.
        size: u64,
    },
    /// `tx-rollback|msgid`.
    TxRollback {
        /// The message id.
        msgid: u32,
    },
    /// `protocol-client|command`: a client line, CR stripped, credentials masked.
    ProtocolClient {
        /// The line.
        command: String,
    },
    /// `protocol-server|response`: one reply line.
    ProtocolServer {
        /// The line.
        response: String,
    },
    /// `filter-report|kind|name|message`.
    FilterReport {
        /// Builtin or process.
        kind: ReporterKind,
        /// The filter's name.
        name: String,
        /// The text.
        message: String,
    },
    /// `filter-response|phase|response[|param]`.
    FilterResponse {
        /// The phase (shown with its report name).
        phase: Phase,
        /// The decision's name (`proceed`, `reject`, …).
        response: &'static str,
        /// The decision's parameter, for reject, disconnect, rewrite and report.
        param: Option<String>,
    },
    /// `timeout`.
    Timeout,
}

impl ReportEvent {
    /// The event's name.
    #[must_use]
    pub fn name(&self) -> EventName {
        match self {
            ReportEvent::LinkConnect { .. } => EventName::LinkConnect,
            ReportEvent::LinkGreeting { .. } => EventName::LinkGreeting,
            ReportEvent::LinkIdentify { .. } => EventName::LinkIdentify,
            ReportEvent::LinkTls { .. } => EventName::LinkTls,
            ReportEvent::LinkAuth { .. } => EventName::LinkAuth,
            ReportEvent::LinkDisconnect => EventName::LinkDisconnect,
            ReportEvent::TxReset { .. } => EventName::TxReset,
            ReportEvent::TxBegin { .. } => EventName::TxBegin,
            ReportEvent::TxMail { .. } => EventName::TxMail,
            ReportEvent::TxRcpt { .. } => EventName::TxRcpt,
            ReportEvent::TxEnvelope { .. } => EventName::TxEnvelope,
            ReportEvent::TxData { .. } => EventName::TxData,
            ReportEvent::TxCommit { .. } => EventName::TxCommit,
            ReportEvent::TxRollback { .. } => EventName::TxRollback,
            ReportEvent::ProtocolClient { .. } => EventName::ProtocolClient,
            ReportEvent::ProtocolServer { .. } => EventName::ProtocolServer,
            ReportEvent::FilterReport { .. } => EventName::FilterReport,
            ReportEvent::FilterResponse { .. } => EventName::FilterResponse,
            ReportEvent::Timeout => EventName::Timeout,
        }
    }
}

/// The response names a `filter-response` event can carry, as
/// [`Response::name`](super::Response::name) spells them.
const RESPONSE_NAMES: [&str; 6] = [
    "proceed",
    "junk",
    "reject",
    "disconnect",
    "rewrite",
    "report",
];

impl Endpoint {
    /// Parses an endpoint as report events show it: `unix:/path`, `192.0.2.1:25` or
    /// `[2001:db8::1]:25`.
    #[must_use]
    pub fn parse(text: &str) -> Option<Endpoint> {
        match text.strip_prefix("unix:") {
            Some(path) => Some(Endpoint::Unix(path.to_owned())),
            None => text.parse().ok().map(Endpoint::Inet),
        }
    }
}

impl fmt::Display for Endpoint {
    /// `192.0.2.1:25`, `[2001:db8::1]:25` (brackets, port after) or `unix:/path`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Inet(addr) => write!(f, "{addr}"),
            Endpoint::Unix(path) => write!(f, "unix:{path}"),
        }
    }
}

impl Fcrdns {
    /// The wire name: `pass`, `fail` or `error`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Fcrdns::Pass => "pass",
            Fcrdns::Fail => "fail",
            Fcrdns::Error => "error",
        }
    }

    /// Parses a wire name.
    #[must_use]
    pub fn parse(text: &str) -> Option<Fcrdns> {
        [Fcrdns::Pass, Fcrdns::Fail, Fcrdns::Error]
            .into_iter()
            .find(|v| v.as_str() == text)
    }
}

impl IdentifyMethod {
    /// The wire name: `HELO`, `EHLO` or `LHLO`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            IdentifyMethod::Helo => "HELO",
            IdentifyMethod::Ehlo => "EHLO",
            IdentifyMethod::Lhlo => "LHLO",
        }
    }

    /// Parses a wire name (upper case, as OpenSMTPD writes it).
    #[must_use]
    pub fn parse(text: &str) -> Option<IdentifyMethod> {
        [
            IdentifyMethod::Helo,
            IdentifyMethod::Ehlo,
            IdentifyMethod::Lhlo,
        ]
        .into_iter()
        .find(|v| v.as_str() == text)
    }
}

impl AuthResult {
    /// The wire name: `pass`, `fail` or `error`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            AuthResult::Pass => "pass",
            AuthResult::Fail => "fail",
            AuthResult::Error => "error",
        }
    }

    /// Parses a wire name.
    #[must_use]
    pub fn parse(text: &str) -> Option<AuthResult> {
        [AuthResult::Pass, AuthResult::Fail, AuthResult::Error]
            .into_iter()
            .find(|v| v.as_str() == text)
    }
}

impl TxResult {
    /// The wire name: `ok`, `permfail` or `tempfail`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            TxResult::Ok => "ok",
            TxResult::PermFail => "permfail",
            TxResult::TempFail => "tempfail",
        }
    }

    /// Parses a wire name.
    #[must_use]
    pub fn parse(text: &str) -> Option<TxResult> {
        [TxResult::Ok, TxResult::PermFail, TxResult::TempFail]
            .into_iter()
            .find(|v| v.as_str() == text)
    }
}

impl ReporterKind {
    /// The wire name: `builtin` or `proc`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ReporterKind::Builtin => "builtin",
            ReporterKind::Proc => "proc",
        }
    }

    /// Parses a wire name.
    #[must_use]
    pub fn parse(text: &str) -> Option<ReporterKind> {
        [ReporterKind::Builtin, ReporterKind::Proc]
            .into_iter()
            .find(|v| v.as_str() == text)
    }
}

impl EventName {
    /// How many fields follow the session id in this event's report lines: the fewest and the
    /// most. They differ only for `filter-response`, whose parameter is present only for some
    /// decisions.
    ///
    /// A reader splits the fields into at most the larger number, so that the last field keeps
    /// any `|` it contains (the protocol has no escaping).
    #[must_use]
    pub fn field_count(self) -> (usize, usize) {
        match self {
            EventName::LinkDisconnect | EventName::Timeout => (0, 0),
            EventName::LinkGreeting
            | EventName::LinkTls
            | EventName::TxReset
            | EventName::TxBegin
            | EventName::TxRollback
            | EventName::ProtocolClient
            | EventName::ProtocolServer => (1, 1),
            EventName::LinkIdentify
            | EventName::LinkAuth
            | EventName::TxEnvelope
            | EventName::TxData
            | EventName::TxCommit => (2, 2),
            EventName::TxMail | EventName::TxRcpt | EventName::FilterReport => (3, 3),
            EventName::FilterResponse => (2, 3),
            EventName::LinkConnect => (4, 4),
        }
    }
}

/// A message id as tx events show it: 8 hex digits.
fn msgid_hex(msgid: u32) -> String {
    format!("{msgid:08x}")
}

impl ReportEvent {
    /// The event's fields after the session id, in the order of `version`, unsanitised: the
    /// caller ([`report_line`](super::wire::report_line)) makes them safe for one line.
    ///
    /// Layouts that differ by version: `link-auth` is `result|username` in 0.7 and
    /// `username|result` before; `tx-mail` and `tx-rcpt` are `msgid|result|address` from 0.6
    /// and `msgid|address|result` in 0.5.
    #[must_use]
    pub fn fields(&self, version: Version) -> Vec<String> {
        match self {
            ReportEvent::LinkConnect {
                rdns,
                fcrdns,
                src,
                dest,
            } => vec![
                rdns.clone(),
                fcrdns.as_str().to_owned(),
                src.to_string(),
                dest.to_string(),
            ],
            ReportEvent::LinkGreeting { hostname } => vec![hostname.clone()],
            ReportEvent::LinkIdentify { method, identity } => {
                vec![method.as_str().to_owned(), identity.clone()]
            }
            ReportEvent::LinkTls { tls } => vec![tls.clone()],
            ReportEvent::LinkAuth { result, username } => {
                let result = result.as_str().to_owned();
                if version >= Version::V0_7 {
                    vec![result, username.clone()]
                } else {
                    vec![username.clone(), result]
                }
            }
            ReportEvent::LinkDisconnect | ReportEvent::Timeout => Vec::new(),
            ReportEvent::TxReset { msgid }
            | ReportEvent::TxBegin { msgid }
            | ReportEvent::TxRollback { msgid } => vec![msgid_hex(*msgid)],
            ReportEvent::TxMail {
                msgid,
                result,
                address,
            }
            | ReportEvent::TxRcpt {
                msgid,
                result,
                address,
            } => {
                let (msgid, result) = (msgid_hex(*msgid), result.as_str().to_owned());
                if version >= Version::V0_6 {
                    vec![msgid, result, address.clone()]
                } else {
                    vec![msgid, address.clone(), result]
                }
            }
            ReportEvent::TxEnvelope { msgid, envelope } => {
                vec![msgid_hex(*msgid), format!("{envelope:016x}")]
            }
            ReportEvent::TxData { msgid, result } => {
                vec![msgid_hex(*msgid), result.as_str().to_owned()]
            }
            ReportEvent::TxCommit { msgid, size } => vec![msgid_hex(*msgid), size.to_string()],
            ReportEvent::ProtocolClient { command } => vec![command.clone()],
            ReportEvent::ProtocolServer { response } => vec![response.clone()],
            ReportEvent::FilterReport {
                kind,
                name,
                message,
            } => vec![kind.as_str().to_owned(), name.clone(), message.clone()],
            ReportEvent::FilterResponse {
                phase,
                response,
                param,
            } => {
                let mut fields = vec![phase.report_name().to_owned(), (*response).to_owned()];
                fields.extend(param.clone());
                fields
            }
        }
    }

    /// Reads an event back from the fields after the session id, laid out as `version` lays
    /// them out: the inverse of [`fields`](Self::fields), for filters and test tools that read
    /// what Petrel sends.
    ///
    /// # Errors
    ///
    /// A wrong number of fields for the event (see [`EventName::field_count`]) or a field
    /// that is not what its position calls for (an unknown result, a bad address, a message
    /// id that is not hex…).
    pub fn from_fields(
        version: Version,
        name: EventName,
        fields: &[String],
    ) -> Result<ReportEvent, WireError> {
        let (min, max) = name.field_count();
        if fields.len() < min || fields.len() > max {
            return Err(WireError::FieldCount {
                event: name,
                expected: match (min, max) {
                    (0, 0) => "no".to_owned(),
                    (a, b) if a == b => a.to_string(),
                    (a, b) => format!("{a} or {b}"),
                },
                got: fields.len(),
            });
        }
        let f = |i: usize| fields[i].as_str();
        let event = match name {
            EventName::LinkConnect => ReportEvent::LinkConnect {
                rdns: f(0).to_owned(),
                fcrdns: Fcrdns::parse(f(1))
                    .ok_or_else(|| bad("fcrdns result", f(1), "pass, fail or error"))?,
                src: endpoint(f(2))?,
                dest: endpoint(f(3))?,
            },
            EventName::LinkGreeting => ReportEvent::LinkGreeting {
                hostname: f(0).to_owned(),
            },
            EventName::LinkIdentify => ReportEvent::LinkIdentify {
                method: IdentifyMethod::parse(f(0))
                    .ok_or_else(|| bad("identify method", f(0), "HELO, EHLO or LHLO"))?,
                identity: f(1).to_owned(),
            },
            EventName::LinkTls => ReportEvent::LinkTls {
                tls: f(0).to_owned(),
            },
            EventName::LinkAuth => {
                let (result, username) = if version >= Version::V0_7 {
                    (f(0), f(1))
                } else {
                    (f(1), f(0))
                };
                ReportEvent::LinkAuth {
                    result: AuthResult::parse(result)
                        .ok_or_else(|| bad("auth result", result, "pass, fail or error"))?,
                    username: username.to_owned(),
                }
            }
            EventName::LinkDisconnect => ReportEvent::LinkDisconnect,
            EventName::TxReset => ReportEvent::TxReset {
                msgid: msgid(f(0))?,
            },
            EventName::TxBegin => ReportEvent::TxBegin {
                msgid: msgid(f(0))?,
            },
            EventName::TxRollback => ReportEvent::TxRollback {
                msgid: msgid(f(0))?,
            },
            EventName::TxMail | EventName::TxRcpt => {
                let (result, address) = if version >= Version::V0_6 {
                    (f(1), f(2))
                } else {
                    (f(2), f(1))
                };
                let (msgid, result, address) =
                    (msgid(f(0))?, tx_result(result)?, address.to_owned());
                if name == EventName::TxMail {
                    ReportEvent::TxMail {
                        msgid,
                        result,
                        address,
                    }
                } else {
                    ReportEvent::TxRcpt {
                        msgid,
                        result,
                        address,
                    }
                }
            }
            EventName::TxEnvelope => ReportEvent::TxEnvelope {
                msgid: msgid(f(0))?,
                envelope: super::wire::parse_hex(f(1), "envelope id", 16)?,
            },
            EventName::TxData => ReportEvent::TxData {
                msgid: msgid(f(0))?,
                result: tx_result(f(1))?,
            },
            EventName::TxCommit => ReportEvent::TxCommit {
                msgid: msgid(f(0))?,
                size: decimal(f(1), "message size")?,
            },
            EventName::ProtocolClient => ReportEvent::ProtocolClient {
                command: f(0).to_owned(),
            },
            EventName::ProtocolServer => ReportEvent::ProtocolServer {
                response: f(0).to_owned(),
            },
            EventName::FilterReport => ReportEvent::FilterReport {
                kind: ReporterKind::parse(f(0))
                    .ok_or_else(|| bad("reporter kind", f(0), "builtin or proc"))?,
                name: f(1).to_owned(),
                message: f(2).to_owned(),
            },
            EventName::FilterResponse => ReportEvent::FilterResponse {
                phase: Phase::ALL
                    .into_iter()
                    .find(|p| p.report_name() == f(0))
                    .ok_or_else(|| bad("phase", f(0), "a phase's report name"))?,
                response: RESPONSE_NAMES
                    .into_iter()
                    .find(|r| *r == f(1))
                    .ok_or_else(|| {
                        bad(
                            "response",
                            f(1),
                            "proceed, junk, reject, disconnect, rewrite or report",
                        )
                    })?,
                param: fields.get(2).cloned(),
            },
            EventName::Timeout => ReportEvent::Timeout,
        };
        Ok(event)
    }
}

fn bad(what: &'static str, value: &str, expected: &'static str) -> WireError {
    WireError::BadField {
        what,
        value: super::wire::clip(value),
        expected,
    }
}

fn endpoint(text: &str) -> Result<Endpoint, WireError> {
    Endpoint::parse(text).ok_or_else(|| {
        bad(
            "endpoint",
            text,
            "address:port, [IPv6 address]:port or unix:path",
        )
    })
}

fn msgid(text: &str) -> Result<u32, WireError> {
    let id = super::wire::parse_hex(text, "message id", 8)?;
    // Eight hex digits at most, so the id fits.
    Ok(u32::try_from(id).unwrap_or(u32::MAX))
}

fn tx_result(text: &str) -> Result<TxResult, WireError> {
    TxResult::parse(text).ok_or_else(|| bad("result", text, "ok, permfail or tempfail"))
}

fn decimal(text: &str, what: &'static str) -> Result<u64, WireError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(what, text, "a decimal number"));
    }
    text.parse()
        .map_err(|_| bad(what, text, "a number below 2^64"))
}
