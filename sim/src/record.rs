//! What happened in a run, as seen from the edges of the world: the clients' submissions and
//! their replies, every transaction the remote MX hosts saw, the faults applied, and (when
//! tracing) the SMTP transcripts of every host and the daemons' own log lines. The
//! invariants are judged from this record and the Petrel hosts' disks at the end.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::clock::sim_elapsed;

/// One message a client submitted.
#[derive(Clone, Debug, Default)]
pub struct Submission {
    /// The simulator's id of the message (its `X-Sim-Id` header).
    pub id: u64,
    /// The client host.
    pub client: String,
    /// The Petrel host it was submitted to.
    pub petrel: String,
    /// The envelope sender (empty: the null sender).
    pub sender: String,
    /// The envelope recipients the Petrel host accepted.
    pub rcpts: Vec<String>,
    /// The content as given (CRLF lines, before dot-stuffing).
    pub content: Vec<u8>,
    /// When DATA was sent (simulation time).
    pub data_at: Duration,
    /// When the 250 arrived, if it did.
    pub acked_at: Option<Duration>,
    /// The queue id the 250 named.
    pub queue_id: Option<String>,
    /// Tries whose outcome the client cannot know (the connection was lost after the final
    /// dot): the message may have been accepted without the client hearing it.
    pub ambiguous: u32,
}

/// A recipient as a remote MX host saw it (RCPT TO and its reply).
#[derive(Clone, Debug)]
pub struct RcptSeen {
    /// When (simulation time).
    pub at: Duration,
    /// The MX host.
    pub sink: String,
    /// The connecting address.
    pub peer: IpAddr,
    /// MAIL FROM (empty: null sender).
    pub sender: String,
    /// RCPT TO.
    pub rcpt: String,
    /// The reply code given.
    pub code: u16,
}

/// A message a remote MX host received in full.
#[derive(Clone, Debug)]
pub struct Received {
    /// When (simulation time).
    pub at: Duration,
    /// The MX host.
    pub sink: String,
    /// The connecting address.
    pub peer: IpAddr,
    /// MAIL FROM.
    pub sender: String,
    /// The accepted recipients.
    pub rcpts: Vec<String>,
    /// The content, unstuffed.
    pub content: Vec<u8>,
    /// The MX host answered 250 (false: it dropped the connection on purpose after storing
    /// the message, or refused the content with 5xx).
    pub acked: bool,
    /// The content was refused (5xx after the final dot); not a delivery.
    pub refused: bool,
}

/// A fault applied to the world.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub enum FaultEvent {
    /// Traffic between two hosts is cut.
    Partition(String, String),
    /// ... and restored.
    Repair(String, String),
    /// A host crashed (its disk lost what was not synced).
    Crash(String),
    /// A crashed host starts again.
    Restart(String),
    /// A host's clock moved by this many milliseconds.
    ClockJump(String, i64),
    /// A DNS name fails for a while.
    Dns(String, crate::dns::DnsFault, Option<u64>),
    /// Every segment between two hosts takes this many milliseconds (`None`: turmoil's
    /// default latency again).
    Latency(String, String, Option<u64>),
}

/// Everything recorded in one run.
#[derive(Debug, Default)]
pub struct Log {
    /// Submissions by id.
    pub submissions: std::collections::BTreeMap<u64, Submission>,
    /// Recipients as the MX hosts saw them.
    pub rcpts: Vec<RcptSeen>,
    /// Messages the MX hosts received.
    pub received: Vec<Received>,
    /// Faults, with when they were applied.
    pub faults: Vec<(Duration, FaultEvent)>,
    /// Clients that have finished.
    pub clients_done: usize,
    /// Host starts (the first and every restart), by host.
    pub starts: std::collections::BTreeMap<String, u32>,
    /// Errors of the world itself (a host that could not start).
    pub errors: Vec<String>,
    /// Transcript and event lines, when tracing.
    pub trace: Vec<String>,
    /// Whether to keep trace lines.
    pub tracing: bool,
}

/// The shared record of a run. Clones share it.
#[derive(Clone, Debug, Default)]
pub struct Recorder(Arc<Mutex<Log>>);

impl Recorder {
    /// An empty record; `tracing` keeps transcripts.
    #[must_use]
    pub fn new(tracing: bool) -> Recorder {
        Recorder(Arc::new(Mutex::new(Log {
            tracing,
            ..Log::default()
        })))
    }

    /// The record.
    pub fn lock(&self) -> MutexGuard<'_, Log> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// True when trace lines are kept.
    #[must_use]
    pub fn tracing(&self) -> bool {
        self.lock().tracing
    }

    /// Adds a trace line for `host` (built only when tracing).
    pub fn trace(&self, host: &str, line: impl FnOnce() -> String) {
        self.trace_at(sim_elapsed(), host, line);
    }

    /// Adds a trace line stamped `t` (from outside the hosts).
    pub fn trace_at(&self, t: Duration, host: &str, line: impl FnOnce() -> String) {
        let mut log = self.lock();
        if log.tracing {
            let line = format!(
                "{:>10}.{:03} {host} {}",
                t.as_secs(),
                t.subsec_millis(),
                line()
            );
            log.trace.push(line);
        }
    }
}
