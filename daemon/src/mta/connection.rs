//! One smtp-out connection: a [`ClientSession`] driven over a stream, with TLS upgrades, the
//! machine's timeouts and OpenSMTPD-style logs. The handle the scheduler keeps to send several
//! messages over one connection, see whether it is idle, and close it.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use petrel_core::Time;
use petrel_core::relay::{AttemptError, Target, TlsMode};
use petrel_core::session::client::{
    ClientConfig, ClientEvent, ClientSession, Message, Outcome, OutcomeKind, SessionError,
};
use petrel_core::smtp::{EnhancedCode, Reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::deliver::Mta;
use super::log;
use super::net::BoxedIo;
use crate::filter::outbound::OutReporter;
use crate::tls::OutgoingTls;

/// A message to relay, with the queue's envelope ids for the logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// Envelope and content.
    pub message: Message,
    /// The envelope id of each recipient, index-aligned (may be empty: logged as `-`).
    pub envelope_ids: Vec<u64>,
}

impl From<Message> for OutgoingMessage {
    fn from(message: Message) -> Self {
        OutgoingMessage {
            message,
            envelope_ids: Vec::new(),
        }
    }
}

/// How one recipient fared, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RcptOutcome {
    /// Delivered, temporary or permanent failure, with the reply that decided it.
    pub outcome: Outcome,
    /// The host that answered (MX or smarthost name), when a session was made.
    pub host: Option<String>,
    /// The address it answered from.
    pub addr: Option<SocketAddr>,
}

/// The result of one message: one outcome per recipient, in the order given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// Index-aligned with the message's recipients.
    pub rcpts: Vec<RcptOutcome>,
    /// DSN parameters were passed on; if not, a recipient that asked for success
    /// notification is owed a "relayed" DSN by the queue (RFC 3461 section 4.1).
    pub dsn_passed: bool,
}

impl Delivery {
    /// The same outcome, with no host, for every recipient of `message`.
    #[must_use]
    pub fn all(message: &Message, outcome: &Outcome) -> Delivery {
        Delivery {
            rcpts: message
                .rcpts
                .iter()
                .map(|_| RcptOutcome {
                    outcome: outcome.clone(),
                    host: None,
                    addr: None,
                })
                .collect(),
            dsn_passed: false,
        }
    }
}

/// An open smtp-out session, set up (greeted, EHLO, TLS and AUTH as configured) and ready
/// for messages.
pub struct Connection {
    id: u64,
    target: Target,
    local: SocketAddr,
    stream: Option<BoxedIo>,
    session: ClientSession,
    mta: Mta,
    buf: Vec<u8>,
    messages: usize,
    /// Why the TLS handshake failed, to tell it apart from other setup failures.
    tls_error: Option<String>,
    /// The write timeout: a server that stops reading must not hang the session.
    write_timeout: Duration,
    closed_logged: bool,
    /// Why the session failed, once it has.
    failure: Option<SessionError>,
    /// smtp-out reports, when the relay action has report filters or events are logged.
    reporter: Option<OutReporter>,
    /// The relay action's own TLS settings, if it has any.
    tls: Option<Arc<OutgoingTls>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("id", &format_args!("{:016x}", self.id))
            .field("target", &self.target.url())
            .field("local", &self.local)
            .field("messages", &self.messages)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Connects to `target` and sets the session up. On failure the connection is closed and
    /// the error says whether to try plaintext or the next target (see [`AttemptError`]).
    ///
    /// # Errors
    /// The connection, the TLS handshake or the session setup failed.
    pub async fn open(
        mta: &Mta,
        target: &Target,
        client: Arc<ClientConfig>,
        src: Option<IpAddr>,
        connect_timeout: Duration,
        mut reporter: Option<OutReporter>,
        tls: Option<Arc<OutgoingTls>>,
    ) -> Result<Connection, AttemptError> {
        let id = mta.ids.next_id();
        log::info(&log::connecting(id, target));
        let connected = match mta
            .connector
            .connect(target.addr, src, connect_timeout)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                log::warn(&log::error(id, &format!("connect: {e}")));
                return Err(AttemptError::Connect(e.to_string()));
            }
        };
        log::info(&log::connected(id, connected.local));
        if let Some(r) = &mut reporter {
            r.connected(id, target.host(), connected.local, target.addr);
        }
        let implicit = target.hop.tls.mode == TlsMode::Implicit;
        let mut stream = connected.stream;
        if implicit {
            let verify = target.hop.tls.verify;
            let handshake = mta
                .tls
                .upgrade(stream, target.host(), verify, tls.as_deref());
            match tokio::time::timeout(client.timeouts.greeting, handshake).await {
                Ok(Ok(up)) => {
                    log::info(&log::tls(id, &up.description, verify));
                    if let Some(r) = &mut reporter {
                        r.tls(&up.description);
                    }
                    stream = up.stream;
                }
                Ok(Err(e)) => return Err(tls_failed(id, &e.to_string())),
                Err(_) => return Err(tls_failed(id, "handshake timed out")),
            }
        }
        let write_timeout = client.timeouts.command.max(client.timeouts.data_init);
        let session = ClientSession::new(client, implicit, mta.clock.now());
        let mut conn = Connection {
            id,
            target: target.clone(),
            local: connected.local,
            stream: Some(stream),
            session,
            mta: mta.clone(),
            buf: vec![0; 16 * 1024],
            messages: 0,
            tls_error: None,
            write_timeout,
            closed_logged: false,
            failure: None,
            reporter,
            tls,
        };
        loop {
            match conn.next_event().await {
                Some(ClientEvent::Ready) => return Ok(conn),
                Some(ClientEvent::Failed(e)) => return Err(conn.setup_failed(e).await),
                Some(ClientEvent::Close) | None => {
                    let e = SessionError {
                        stage: petrel_core::session::client::Stage::Greeting,
                        reply: local_reply(421, (4, 4, 2), "connection closed during setup"),
                        remote: false,
                    };
                    return Err(conn.setup_failed(e).await);
                }
                Some(_) => {}
            }
        }
    }

    async fn setup_failed(&mut self, e: SessionError) -> AttemptError {
        // Let the machine finish (its QUIT, its Close) before the socket goes.
        while let Some(event) = self.next_event().await {
            if event == ClientEvent::Close {
                break;
            }
        }
        self.shutdown().await;
        let error = match self.tls_error.take() {
            Some(why) => AttemptError::Tls(why),
            None => AttemptError::Session(e),
        };
        log::warn(&log::error(self.id, &error.describe()));
        self.log_disconnected("error");
        error
    }

    /// The session id shown in logs.
    #[must_use]
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The target this connection goes to.
    #[must_use]
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Our end of the connection (the source address).
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Messages sent over this connection so far.
    #[must_use]
    pub fn messages(&self) -> usize {
        self.messages
    }

    /// Why the session failed, once it has (the stage tells whether a message was under way).
    #[must_use]
    pub fn failure(&self) -> Option<&SessionError> {
        self.failure.as_ref()
    }

    /// True when the session is ready for another message.
    #[must_use]
    pub fn is_idle(&self) -> bool {
        self.session.is_idle() && self.stream.is_some()
    }

    /// True once the session is over: it cannot take messages any more.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.session.is_closed() || self.stream.is_none()
    }

    /// Looks at the socket without waiting: notices a server that closed an idle connection
    /// or announced its shutdown (421). Call before reusing an idle connection; true when it
    /// can still take a message.
    pub async fn check(&mut self) -> bool {
        if self.is_closed() {
            return false;
        }
        if let Some(stream) = &mut self.stream {
            // A zero timeout polls the read once: ready data or EOF is seen, nothing waits.
            if let Ok(read) = tokio::time::timeout(Duration::ZERO, stream.read(&mut self.buf)).await
            {
                let now = self.mta.clock.now();
                match read {
                    Ok(n) if n > 0 => self.session.handle_input(&self.buf[..n], now),
                    _ => {
                        self.stream = None;
                        self.session.handle_eof(now);
                    }
                }
            }
        }
        while self.session.poll_transmit().is_some() {}
        while let Some(event) = self.session.poll_event() {
            if event == ClientEvent::Close {
                self.shutdown().await;
            }
        }
        if self.is_closed() {
            self.log_disconnected("closed by the server while idle");
        }
        !self.is_closed()
    }

    /// Sends one message and waits for its outcome (per recipient). A session that closed
    /// meanwhile gives every recipient a temporary failure.
    pub async fn send(&mut self, outgoing: OutgoingMessage) -> Delivery {
        let OutgoingMessage {
            message,
            envelope_ids,
        } = outgoing;
        if self.is_closed() {
            let closed = Outcome {
                kind: OutcomeKind::Temporary,
                reply: local_reply(421, (4, 4, 2), "connection closed"),
                remote: false,
            };
            return Delivery::all(&message, &closed);
        }
        let from = message.from.to_string();
        let to: Vec<String> = message.rcpts.iter().map(|(r, _)| r.to_string()).collect();
        let size = message.content.len() as u64;
        let tx = self.session.send(message, self.mta.clock.now());
        let mut report = None;
        loop {
            match self.next_event().await {
                Some(ClientEvent::Done(r)) if r.id == tx => report = Some(r),
                // After the outcome, the machine settles (RSET) and says Ready: the
                // connection is then idle and reusable.
                Some(ClientEvent::Ready) if report.is_some() => break,
                Some(ClientEvent::Close) | None => break,
                Some(_) => {}
            }
        }
        self.messages += 1;
        let report = report.unwrap_or_else(|| {
            // The machine reports every transaction before it closes; this is a safety net.
            let lost = Outcome {
                kind: OutcomeKind::Temporary,
                reply: local_reply(421, (4, 4, 2), "connection lost"),
                remote: false,
            };
            petrel_core::session::client::TransactionReport {
                id: tx,
                rcpts: vec![lost; to.len()],
                dsn_passed: false,
            }
        });
        if let Some(r) = &mut self.reporter {
            // The message id is the upper half of its envelope ids.
            let msgid = envelope_ids.first().map_or(0, |e| (e >> 32) as u32);
            let outcomes: Vec<_> = report
                .rcpts
                .iter()
                .enumerate()
                .map(|(i, o)| (to[i].clone(), envelope_ids.get(i).copied(), o.kind))
                .collect();
            r.transaction(msgid, &from, size, &outcomes);
        }
        let rcpts = report
            .rcpts
            .into_iter()
            .enumerate()
            .map(|(i, outcome)| {
                let line = log::delivery(
                    self.id,
                    envelope_ids.get(i).copied(),
                    &from,
                    &to[i],
                    self.local,
                    &self.target,
                    &outcome,
                );
                log::info(&line);
                RcptOutcome {
                    outcome,
                    host: Some(self.target.host().to_owned()),
                    addr: Some(self.target.addr),
                }
            })
            .collect();
        if self.is_closed() {
            self.log_disconnected("error");
        }
        Delivery {
            rcpts,
            dsn_passed: report.dsn_passed,
        }
    }

    /// Says QUIT (once queued work is done) and closes.
    pub async fn quit(mut self) {
        if !self.is_closed() {
            self.session.quit(self.mta.clock.now());
            while let Some(event) = self.next_event().await {
                if event == ClientEvent::Close {
                    break;
                }
            }
            self.shutdown().await;
        }
        self.log_disconnected("quit");
    }

    fn log_disconnected(&mut self, reason: &str) {
        if !self.closed_logged {
            self.closed_logged = true;
            log::info(&log::disconnected(self.id, reason, self.messages));
            if let Some(r) = &mut self.reporter {
                r.disconnected();
            }
        }
    }

    // ----- driving the machine -----

    /// Does the I/O the machine needs until it has an event for the caller (STARTTLS is
    /// handled here), or nothing more to do (`None`: idle, or closed).
    async fn next_event(&mut self) -> Option<ClientEvent> {
        loop {
            // The contract: write out what the machine transmitted, then look at its events.
            self.flush().await;
            if let Some(event) = self.session.poll_event() {
                match event {
                    ClientEvent::StartTls => {
                        self.start_tls().await;
                        continue;
                    }
                    ClientEvent::Close => {
                        self.shutdown().await;
                        return Some(ClientEvent::Close);
                    }
                    ClientEvent::Failed(e) => {
                        self.failure = Some(e.clone());
                        return Some(ClientEvent::Failed(e));
                    }
                    ClientEvent::Trace(trace) => {
                        if let Some(r) = &mut self.reporter {
                            r.trace(trace);
                        }
                        continue;
                    }
                    other => return Some(other),
                }
            }
            if self.session.is_closed() {
                return None;
            }
            let deadline = self.session.poll_timeout()?;
            self.read_until(deadline).await;
        }
    }

    async fn flush(&mut self) {
        let mut wrote = false;
        while let Some(bytes) = self.session.poll_transmit() {
            let Some(stream) = &mut self.stream else {
                continue;
            };
            match tokio::time::timeout(self.write_timeout, stream.write_all(&bytes)).await {
                Ok(Ok(())) => wrote = true,
                Ok(Err(_)) | Err(_) => self.lost(),
            }
        }
        if wrote && let Some(stream) = &mut self.stream {
            match tokio::time::timeout(self.write_timeout, stream.flush()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => self.lost(),
            }
        }
    }

    /// The connection broke.
    fn lost(&mut self) {
        self.stream = None;
        self.session.handle_eof(self.mta.clock.now());
    }

    async fn read_until(&mut self, deadline: Time) {
        let Some(stream) = &mut self.stream else {
            return self.lost();
        };
        let wait = deadline.saturating_since(self.mta.clock.now());
        match tokio::time::timeout(wait, stream.read(&mut self.buf)).await {
            Err(_) => self.session.handle_timeout(self.mta.clock.now()),
            Ok(Ok(0)) | Ok(Err(_)) => self.lost(),
            Ok(Ok(n)) => self
                .session
                .handle_input(&self.buf[..n], self.mta.clock.now()),
        }
    }

    async fn start_tls(&mut self) {
        let Some(stream) = self.stream.take() else {
            return self.lost();
        };
        let verify = self.target.hop.tls.verify;
        let now = self.mta.clock.now();
        let wait = self
            .session
            .poll_timeout()
            .map_or(Duration::from_secs(60), |d| d.saturating_since(now));
        let handshake =
            self.mta
                .tls
                .upgrade(stream, self.target.host(), verify, self.tls.as_deref());
        match tokio::time::timeout(wait, handshake).await {
            Ok(Ok(up)) => {
                log::info(&log::tls(self.id, &up.description, verify));
                if let Some(r) = &mut self.reporter {
                    r.tls(&up.description);
                }
                self.stream = Some(up.stream);
                self.session.tls_established(self.mta.clock.now());
            }
            Ok(Err(e)) => {
                self.tls_error = Some(e.to_string());
                self.lost();
            }
            Err(_) => {
                self.tls_error = Some("handshake timed out".into());
                self.lost();
            }
        }
    }

    async fn shutdown(&mut self) {
        if let Some(mut stream) = self.stream.take() {
            let _ = tokio::time::timeout(Duration::from_secs(1), stream.shutdown()).await;
        }
    }
}

fn tls_failed(id: u64, why: &str) -> AttemptError {
    let error = AttemptError::Tls(why.to_owned());
    log::warn(&log::error(id, &error.describe()));
    error
}

fn local_reply(code: u16, enhanced: (u8, u16, u16), text: &'static str) -> Reply {
    Reply::new(
        code,
        EnhancedCode::new(enhanced.0, enhanced.1, enhanced.2),
        text,
    )
}
