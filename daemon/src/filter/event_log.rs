//! The JSON event log (`petreld -E FILE`): every report event as one JSON line carrying the
//! whole session as it stands at that moment, ready for a log pipeline.
//!
//! A line looks like this (one line in the file, broken here):
//!
//! ```json
//! {"time":"1700000000.123000","subsystem":"smtp-in","event":"tx-rcpt",
//!  "fields":["0badc0de","ok","bob@example.org"],
//!  "session":{"id":"00000000deadbeef","src":"192.0.2.7:40000","dest":"192.0.2.1:25",
//!   "rdns":"mail.example.net","fcrdns":"pass","helo":"mail.example.net","tls":null,
//!   "auth":null,"msgid":"0badc0de","mail_from":"alice@example.net",
//!   "rcpts":["bob@example.org"],"junk":false}}
//! ```
//!
//! `fields` are the event's fields exactly as filters receive them (protocol 0.7 layout), so a
//! consumer of the filter protocol and a consumer of this log read the same values.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use petrel_core::Time;
use petrel_core::filter::report::ReportEvent;
use petrel_core::filter::{Subsystem, Version, session_hex, timestamp};
use serde::Serialize;

/// What is known about a session, as the event log shows it with each event.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SessionView {
    /// The session id (16 hex digits).
    pub id: String,
    /// The client's end.
    pub src: String,
    /// Our end.
    pub dest: String,
    /// The client's reverse DNS name.
    pub rdns: Option<String>,
    /// `pass` or `fail`.
    pub fcrdns: Option<String>,
    /// The HELO/EHLO name.
    pub helo: Option<String>,
    /// The TLS parameters, once TLS is on.
    pub tls: Option<String>,
    /// The authenticated user.
    pub auth: Option<String>,
    /// The current transaction's message id.
    pub msgid: Option<String>,
    /// The current transaction's sender.
    pub mail_from: Option<String>,
    /// The current transaction's accepted recipients.
    pub rcpts: Vec<String>,
    /// The session or transaction was marked as junk.
    pub junk: bool,
}

#[derive(Serialize)]
struct Line<'a> {
    time: String,
    subsystem: &'static str,
    event: &'static str,
    fields: Vec<String>,
    session: &'a SessionView,
}

/// Where event lines go; cheap to clone.
#[derive(Clone)]
pub struct EventLog {
    out: Arc<Mutex<Box<dyn Write + Send>>>,
}

impl std::fmt::Debug for EventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventLog")
    }
}

impl EventLog {
    /// A log appended to `path`, or written to standard output for `-`.
    ///
    /// # Errors
    /// The file cannot be opened.
    pub fn open(path: &Path) -> std::io::Result<EventLog> {
        let out: Box<dyn Write + Send> = if path == Path::new("-") {
            Box::new(std::io::stdout())
        } else {
            Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            )
        };
        Ok(EventLog::to_writer(out))
    }

    /// A log written to `out` (tests).
    #[must_use]
    pub fn to_writer(out: Box<dyn Write + Send>) -> EventLog {
        EventLog {
            out: Arc::new(Mutex::new(out)),
        }
    }

    /// Writes one event.
    pub fn write(
        &self,
        now: Time,
        subsystem: Subsystem,
        event: &ReportEvent,
        session: &SessionView,
    ) {
        let line = Line {
            time: timestamp(now),
            subsystem: subsystem.as_str(),
            event: event.name().as_str(),
            fields: event.fields(Version::V0_7),
            session,
        };
        let Ok(mut text) = serde_json::to_vec(&line) else {
            return;
        };
        text.push(b'\n');
        let mut out = self
            .out
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // A log that cannot be written must not stop mail; say so once per failure.
        if let Err(e) = out.write_all(&text).and_then(|()| out.flush()) {
            tracing::warn!(error = %e, "cannot write the event log");
        }
    }
}

/// The session id as the log shows it.
#[must_use]
pub fn session_id(id: u64) -> String {
    session_hex(id)
}
