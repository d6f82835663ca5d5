//! What `petrelctl` and the daemon say to each other over the control socket: one JSON object
//! per line. The client sends one [`Request`]; the daemon answers with one [`Response`] line, or
//! for `monitor` and `trace` with a line per update until the client goes away.
//!
//! The views ([`EnvelopeView`], [`StatsView`], …) are what `petrelctl --json` prints, so their
//! field names are part of the interface scripts rely on: add fields, do not rename them.

use serde::{Deserialize, Serialize};

/// A request to the daemon.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum Request {
    /// Every queued envelope.
    ShowQueue,
    /// One envelope with its history of attempts.
    ShowEnvelope {
        /// Envelope id (16 hex digits).
        id: String,
    },
    /// One message's headers and size.
    ShowMessage {
        /// Message id (8 hex digits) or the id of one of its envelopes.
        id: String,
    },
    /// Counters since start.
    ShowStats,
    /// Each filter's state.
    ShowFilters,
    /// Per-destination delivery state and throttling.
    ShowHosts,
    /// Makes envelopes due now.
    Schedule {
        /// `all`, a message id or an envelope id.
        target: String,
    },
    /// Removes envelopes from the queue.
    Remove {
        /// `all`, a message id or an envelope id.
        target: String,
    },
    /// Pauses deliveries or the listeners.
    Pause {
        /// `mda`, `mta`, `smtp` or `envelope`.
        what: String,
        /// The envelope id, for `envelope`.
        id: Option<String>,
    },
    /// Resumes what `pause` paused.
    Resume {
        /// `mda`, `mta`, `smtp` or `envelope`.
        what: String,
        /// The envelope id, for `envelope`.
        id: Option<String>,
    },
    /// Changes the log level.
    Log {
        /// Debug lines on (`log verbose`) or off (`log brief`).
        verbose: bool,
    },
    /// Reloads one table.
    UpdateTable {
        /// The table's name in the configuration.
        name: String,
    },
    /// Reloads the configuration and the tables, then routes queued mail again.
    Reload,
    /// A [`StatsView`] every second until the client leaves.
    Monitor,
    /// A [`TraceLine`] per event until the client leaves.
    Trace {
        /// Only events of this message or envelope id; everything when absent.
        id: Option<String>,
    },
}

/// The daemon's answer to one request (or one line of a stream).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Response {
    /// The request was carried out.
    Ok {
        /// What it produced.
        answer: Box<Answer>,
    },
    /// It was not: why, in words.
    Error {
        /// The reason.
        message: String,
        /// What kind of failure, for the exit code.
        kind: ErrorKind,
    },
}

/// Kinds of refusal, each with its own `petrelctl` exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// The request names something that does not exist (exit 3).
    NotFound,
    /// The request is malformed (exit 2).
    Usage,
    /// The daemon could not do it (exit 1).
    Failed,
}

/// What a request produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "kebab-case")]
pub enum Answer {
    /// `show queue`.
    Queue(Vec<EnvelopeView>),
    /// `show envelope`.
    Envelope(EnvelopeView),
    /// `show message`.
    Message(MessageView),
    /// `show stats` and each line of `monitor`.
    Stats(StatsView),
    /// `show filters`.
    Filters(Vec<FilterView>),
    /// `show hosts`.
    Hosts(Vec<HostView>),
    /// One line of `trace`.
    Trace(TraceLine),
    /// Commands that change something: what they did, in words, and how many things.
    Done {
        /// What was done.
        message: String,
        /// How many envelopes (or tables) it concerned.
        count: u64,
    },
}

/// An envelope, for `show queue` and `show envelope`. Times are Unix seconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeView {
    /// Envelope id.
    pub id: String,
    /// Message id.
    pub msgid: String,
    /// Envelope sender (empty for the null sender).
    pub sender: String,
    /// The recipient as the client gave it.
    pub rcpt: String,
    /// Where it goes now (after aliases).
    pub dest: String,
    /// The action routing chose.
    pub action: Option<String>,
    /// `queued`, `in-delivery` or `paused`.
    pub state: String,
    /// When the message was accepted.
    pub created: u64,
    /// Failed attempts so far.
    pub attempts: u32,
    /// The last attempt.
    pub last_try: Option<u64>,
    /// The next attempt (for a paused envelope, when it would be tried).
    pub next_try: u64,
    /// When it expires and bounces.
    pub expires: u64,
    /// The last failure, in words.
    pub last_error: Option<String>,
    /// Attempts since the daemon started, oldest first.
    pub history: Vec<AttemptView>,
}

/// One attempt in an envelope's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptView {
    /// When it ended (Unix seconds).
    pub at: u64,
    /// `delivered`, `temporary` or `permanent`.
    pub result: String,
    /// The reply that decided it.
    pub reply: String,
    /// The remote server, for a relay.
    pub remote: Option<String>,
}

/// A message, for `show message`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageView {
    /// Message id.
    pub msgid: String,
    /// Size of the stored content in octets.
    pub size: u64,
    /// The header section, as stored (CRLF line ends).
    pub headers: String,
    /// Its envelopes still queued.
    pub envelopes: Vec<String>,
}

/// Counters since start, for `show stats` and `monitor`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsView {
    /// Seconds since the daemon started.
    pub uptime: u64,
    /// SMTP sessions opened.
    pub sessions: u64,
    /// SMTP sessions open now.
    pub sessions_active: u64,
    /// Messages committed to the queue (received, and notifications).
    pub messages_queued: u64,
    /// Envelopes delivered.
    pub delivered: u64,
    /// Temporary failures.
    pub deferred: u64,
    /// Envelopes failed permanently or expired.
    pub failed: u64,
    /// Delivery status notifications queued.
    pub notifications: u64,
    /// Envelopes removed by an operator.
    pub removed: u64,
    /// Messages in the queue now.
    pub queue_messages: u64,
    /// Envelopes in the queue now.
    pub queue_envelopes: u64,
    /// Local deliveries are paused.
    pub mda_paused: bool,
    /// Relaying is paused.
    pub mta_paused: bool,
    /// The listeners refuse new sessions.
    pub smtp_paused: bool,
    /// Filter events (requests answered by filters).
    pub filter_events: u64,
}

/// A filter, for `show filters`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterView {
    /// Its name in the configuration.
    pub name: String,
    /// `running`, `starting`, `restarting at TIME` or `builtin`.
    pub state: String,
    /// Restarts since start.
    pub restarts: u64,
    /// The last error, with its time.
    pub last_error: Option<String>,
    /// The command it runs (empty for builtin filters).
    pub command: String,
    /// Its process id while it runs.
    pub pid: Option<u32>,
    /// The phases it registered.
    pub phases: Vec<String>,
    /// `fail-open` or `fail-closed`.
    pub policy: String,
}

/// A destination, for `show hosts`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostView {
    /// `domain NAME` or `relay URL`.
    pub destination: String,
    /// Batches being delivered there now.
    pub active: u64,
    /// Most at once.
    pub max: u64,
    /// Batches waiting for a place.
    pub waiting: u64,
}

/// One event, for `trace`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceLine {
    /// When (Unix milliseconds).
    pub at: u64,
    /// `queued`, `delivered`, `deferred`, `failed`, `notified`, `removed` or `session`.
    pub event: String,
    /// The message or envelope id, when there is one.
    pub id: Option<String>,
    /// The rest, in words.
    pub detail: String,
}
