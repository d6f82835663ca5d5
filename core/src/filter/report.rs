//! Report events: what happened in a session, as filters that registered for it are told.

use std::net::SocketAddr;

use super::{EventName, Phase};

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
