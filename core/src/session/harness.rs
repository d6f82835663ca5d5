//! In-memory drivers for the session machines, with a virtual clock and no I/O: the test
//! harness of this crate, and the in-memory runner of the conformance suite, the fuzzers and
//! the benchmarks.
//!
//! - [`ServerHarness`] drives a [`ServerSession`] with a policy that answers its requests at
//!   once, stores committed messages and records a readable transcript.
//! - [`Pair`] connects a [`ClientSession`] to a [`ServerHarness`] and steps both until idle,
//!   like quinn-proto's `Pair::drive`.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use super::client::{ClientConfig, ClientEvent, ClientSession, Message, TransactionReport};
use super::server::{ConnectionInfo, Envelope, Request, ServerConfig, ServerEvent, ServerSession};
use super::{Decision, RequestId};
use crate::time::Time;

/// Answers the server's requests.
pub type Policy = Box<dyn FnMut(&Request) -> Decision + Send>;

/// A policy that accepts everything.
#[must_use]
pub fn accept_all() -> Policy {
    Box::new(|_| Decision::Accept)
}

/// A message the harness committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// Its envelope.
    pub envelope: Envelope,
    /// Its content, exactly as the machine emitted it.
    pub content: Vec<u8>,
}

/// A server machine with an immediate policy, a message store and a transcript.
pub struct ServerHarness {
    /// The machine.
    pub session: ServerSession,
    /// The virtual clock.
    pub now: Time,
    policy: Policy,
    /// Messages committed so far.
    pub stored: Vec<Stored>,
    /// Messages whose content was discarded (`DataAborted`).
    pub aborted: usize,
    current: Vec<u8>,
    transcript: String,
    /// The machine asked for a TLS upgrade.
    pub tls_requested: bool,
    /// The machine closed the connection.
    pub closed: bool,
    /// Every request seen, in order (for assertions).
    pub requests: Vec<Request>,
    /// What the server wrote when the connection was accepted (the greeting).
    pub greeting: Vec<u8>,
    /// The machine's [`Trace`](super::server::Trace) events (with `ServerConfig::trace`).
    pub traces: Vec<super::server::Trace>,
}

impl std::fmt::Debug for ServerHarness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHarness")
            .field("session", &self.session)
            .field("stored", &self.stored.len())
            .finish_non_exhaustive()
    }
}

impl ServerHarness {
    /// A harness around a new session that is already greeted (the Connect request answered
    /// by `policy`).
    #[must_use]
    pub fn new(config: ServerConfig, policy: Policy) -> ServerHarness {
        Self::with_info(
            config,
            ConnectionInfo {
                peer: "192.0.2.1".into(),
                tls: false,
            },
            policy,
        )
    }

    /// Like [`new`](Self::new) with explicit connection information.
    #[must_use]
    pub fn with_info(config: ServerConfig, info: ConnectionInfo, policy: Policy) -> ServerHarness {
        let now = Time::from_secs(1_700_000_000);
        let mut h = ServerHarness {
            session: ServerSession::new(Arc::new(config), info, now),
            now,
            policy,
            stored: Vec::new(),
            aborted: 0,
            current: Vec::new(),
            transcript: String::new(),
            tls_requested: false,
            closed: false,
            requests: Vec::new(),
            greeting: Vec::new(),
            traces: Vec::new(),
        };
        h.greeting = h.pump();
        h
    }

    /// Sends bytes from the client; returns what the server wrote back.
    pub fn send(&mut self, bytes: &[u8]) -> Vec<u8> {
        record(&mut self.transcript, "C: ", bytes);
        self.session.handle_input(bytes, self.now);
        self.pump()
    }

    /// Sends a line from the client, CRLF appended; returns what the server wrote back.
    pub fn line(&mut self, line: &str) -> String {
        let mut bytes = line.as_bytes().to_vec();
        bytes.extend_from_slice(b"\r\n");
        String::from_utf8_lossy(&self.send(&bytes)).into_owned()
    }

    /// Advances the virtual clock and fires the machine's timer if due.
    pub fn advance(&mut self, d: Duration) -> Vec<u8> {
        self.now = self.now + d;
        let _ = writeln!(self.transcript, "-- {} s later", d.as_secs());
        self.session.handle_timeout(self.now);
        self.pump()
    }

    /// Completes a TLS handshake the machine asked for.
    pub fn complete_tls(&mut self) -> Vec<u8> {
        self.tls_requested = false;
        self.transcript.push_str("-- TLS established\n");
        self.session.tls_established(self.now);
        self.pump()
    }

    /// Tells the machine the shell is shutting down.
    pub fn shutdown(&mut self) -> Vec<u8> {
        self.transcript.push_str("-- shutdown\n");
        self.session.shutdown();
        self.pump()
    }

    /// The transcript so far: client lines prefixed `C: `, server lines `S: `, shell events
    /// `E: `.
    #[must_use]
    pub fn transcript(&self) -> &str {
        &self.transcript
    }

    /// Drains the machine: answers requests, collects content and output.
    pub fn pump(&mut self) -> Vec<u8> {
        let mut written = Vec::new();
        loop {
            let mut progressed = false;
            while let Some(bytes) = self.session.poll_transmit() {
                record(&mut self.transcript, "S: ", &bytes);
                written.extend_from_slice(&bytes);
                progressed = true;
            }
            if let Some(event) = self.session.poll_event() {
                progressed = true;
                self.on_event(event);
            }
            if !progressed {
                return written;
            }
        }
    }

    fn on_event(&mut self, event: ServerEvent) {
        match event {
            ServerEvent::Request(id, request) => self.on_request(id, request),
            ServerEvent::DataChunk(chunk) => self.current.extend_from_slice(&chunk),
            ServerEvent::DataAborted => {
                self.transcript.push_str("E: data aborted\n");
                self.current.clear();
                self.aborted += 1;
            }
            ServerEvent::StartTls => {
                self.transcript.push_str("E: start TLS\n");
                self.tls_requested = true;
            }
            ServerEvent::Close => {
                self.transcript.push_str("E: close\n");
                self.closed = true;
            }
            ServerEvent::Trace(trace) => {
                self.traces.push(trace);
            }
        }
    }

    fn on_request(&mut self, id: RequestId, request: Request) {
        let decision = (self.policy)(&request);
        if let Request::Commit { envelope, size } = &request {
            let content = std::mem::take(&mut self.current);
            let _ = writeln!(self.transcript, "E: commit {size} octets");
            if matches!(decision, Decision::Accept)
                || matches!(&decision, Decision::Reply(r) if r.is_positive())
            {
                self.stored.push(Stored {
                    envelope: envelope.clone(),
                    content,
                });
            }
        }
        self.requests.push(request);
        self.session.answer(id, decision, self.now);
    }
}

fn record(transcript: &mut String, prefix: &str, bytes: &[u8]) {
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        transcript.push_str(prefix);
        // Only the final CRLF is implicit; a CR anywhere else is a bare CR and must show.
        let crlf = line.ends_with(b"\r\n");
        let shown = if crlf { &line[..line.len() - 2] } else { line };
        for &b in shown {
            match b {
                b'\r' => transcript.push_str("\\r"),
                b'\n' => transcript.push_str("\\n"),
                b'\t' => transcript.push_str("\\t"),
                0x20..=0x7e => transcript.push(b as char),
                _ => {
                    let _ = write!(transcript, "\\x{b:02x}");
                }
            }
        }
        if !crlf && !line.is_empty() {
            transcript.push_str(" (no CRLF)");
        }
        transcript.push('\n');
    }
}

/// A client machine connected to a server harness through an in-memory pipe.
pub struct Pair {
    /// The client machine.
    pub client: ClientSession,
    /// The server side.
    pub server: ServerHarness,
    /// Transaction reports received by the client.
    pub reports: Vec<TransactionReport>,
    /// Every event of the client, in order.
    pub client_events: Vec<ClientEvent>,
    /// Largest piece the pipe delivers at once in each direction (`usize::MAX`: everything).
    pub chunk: usize,
}

impl std::fmt::Debug for Pair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pair")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl Pair {
    /// A connected pair; nothing has been exchanged yet.
    #[must_use]
    pub fn new(client: ClientConfig, server: ServerConfig, policy: Policy) -> Pair {
        let server = ServerHarness::new(server, policy);
        let client = ClientSession::new(Arc::new(client), false, server.now);
        Pair {
            client,
            server,
            reports: Vec::new(),
            client_events: Vec::new(),
            chunk: usize::MAX,
        }
    }

    /// Queues a message on the client.
    pub fn send(&mut self, message: Message) {
        self.client.send(message, self.server.now);
    }

    /// Asks the client to quit once its queue is empty.
    pub fn quit(&mut self) {
        self.client.quit(self.server.now);
    }

    /// Exchanges bytes and events until neither side has anything left to do. TLS upgrades are
    /// completed at once (in memory there is nothing to encrypt).
    pub fn drive(&mut self) {
        // The greeting was produced when the harness was built.
        let mut to_client = std::mem::take(&mut self.server.greeting);
        loop {
            let mut progressed = false;
            let mut to_server = Vec::new();
            while let Some(bytes) = self.client.poll_transmit() {
                to_server.extend_from_slice(&bytes);
            }
            while let Some(event) = self.client.poll_event() {
                progressed = true;
                match &event {
                    ClientEvent::Done(report) => self.reports.push(report.clone()),
                    ClientEvent::StartTls => {
                        to_client.extend(self.server.complete_tls());
                        self.client.tls_established(self.server.now);
                    }
                    _ => {}
                }
                self.client_events.push(event);
            }
            for piece in to_server.chunks(self.chunk.max(1)) {
                progressed = true;
                to_client.extend(self.server.send(piece));
            }
            if !to_client.is_empty() {
                progressed = true;
                let bytes = std::mem::take(&mut to_client);
                for piece in bytes.chunks(self.chunk.max(1)) {
                    self.client.handle_input(piece, self.server.now);
                }
            }
            if self.server.closed
                && !self.client.is_closed()
                && self.client.poll_transmit().is_none()
            {
                self.client.handle_eof(self.server.now);
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
    }
}
