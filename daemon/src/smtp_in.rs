//! smtp-in: drives one [`ServerSession`] over a byte stream.
//!
//! The driver moves bytes between the socket and the machine, turns the machine's requests
//! into calls on a [`SessionHandler`] (policy, filters, the queue), and applies its timeouts.
//! It writes replies in batches: everything the machine produced is written before the driver
//! blocks on a read, so pipelined commands get their replies in one write.
//!
//! TLS and AUTH are the driver's own business, configured per listener by [`SessionSecurity`]:
//! it runs the TLS handshake (at connect for smtps, after `220` to STARTTLS) on the
//! [`MaybeTls`] stream, and checks AUTH credentials with the listener's [`Authenticator`]; the
//! [`SessionHandler`] is told the outcome of both ([`SessionHandler::tls_started`],
//! [`SessionHandler::auth_result`]) for its policy (`match auth`, `from auth`) and its reports.

use crate::transcript::Transcript;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use petrel_core::Time;
use petrel_core::session::Decision;
use petrel_core::session::server::{
    ConnectionInfo, Request, ServerConfig, ServerEvent, ServerSession, Trace,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use crate::auth::{AuthOutcome, Authenticator};
use crate::clock::Clock;
use crate::tls::{HANDSHAKE_TIMEOUT, MaybeTls, TlsInfo};

/// What the shell knows about a connection.
#[derive(Clone, Debug)]
pub struct Connection {
    /// The session id shown in logs.
    pub id: u64,
    /// The client's address (unspecified for the local enqueue socket).
    pub peer: SocketAddr,
    /// Our address (unspecified for the local enqueue socket).
    pub local: SocketAddr,
    /// Set when the session came over the local enqueue socket (`sendmail`).
    pub local_user: Option<LocalPeer>,
}

/// A client of the local enqueue socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalPeer {
    /// Its user id, from the socket's peer credentials: the kernel's word, not the client's.
    pub uid: u32,
    /// The socket's path, as reports name it (`unix:/path`).
    pub socket: String,
}

impl Connection {
    /// The client as logs and transcripts name it: its address, or `local (uid N)`.
    #[must_use]
    pub fn client(&self) -> String {
        match &self.local_user {
            Some(p) => format!("local (uid {})", p.uid),
            None => self.peer.to_string(),
        }
    }
}

/// What a listener adds to the machine's settings for its sessions: TLS and AUTH.
#[derive(Clone, Debug)]
pub struct SessionSecurity {
    /// The listener's TLS configuration, for STARTTLS (the machine's `TlsPolicy` says whether it
    /// is offered) or for smtps.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// TLS from the first byte (smtps): the handshake runs before the greeting.
    pub implicit_tls: bool,
    /// Checks AUTH credentials (`auth <table>`). Without it, [`Request::Auth`] goes to the
    /// handler like any other request.
    pub auth: Option<Authenticator>,
    /// How long a TLS handshake may take.
    pub handshake_timeout: Duration,
    /// Record each session's transcript into this folder (`petreld -T`).
    pub transcripts: Option<crate::transcript::TranscriptDir>,
}

impl Default for SessionSecurity {
    /// No TLS, no AUTH.
    fn default() -> Self {
        SessionSecurity {
            tls: None,
            implicit_tls: false,
            auth: None,
            handshake_timeout: HANDSHAKE_TIMEOUT,
            transcripts: None,
        }
    }
}

/// The shell's side of one session: answers the machine's requests and receives the content of
/// messages. Each method may take as long as it needs (a table lookup, a filter, an fsync);
/// the machine waits, buffering the client's input.
pub trait SessionHandler: Send {
    /// Answers a request of the machine.
    fn decide(&mut self, request: Request) -> impl Future<Output = Decision> + Send;
    /// A piece of the current message's content.
    fn data(&mut self, chunk: Vec<u8>) -> impl Future<Output = ()> + Send;
    /// The current message was refused or abandoned: discard its content.
    fn aborted(&mut self) -> impl Future<Output = ()> + Send;
    /// TLS is now active: at connect on an smtps listener, or after STARTTLS, in which case
    /// everything the session learnt before (HELO, an authenticated user) no longer holds.
    /// `info` is what the `link-tls` report event shows. The default does nothing.
    fn tls_started(&mut self, info: &TlsInfo) -> impl Future<Output = ()> + Send {
        let _ = info;
        std::future::ready(())
    }
    /// The driver checked AUTH credentials for `user` against the listener's table. On
    /// [`AuthOutcome::Accepted`] the session is authenticated as `user` from now on (for
    /// `match auth`, `from auth`, `senders`); the other outcomes are for `link-auth` reports.
    /// The default does nothing.
    fn auth_result(
        &mut self,
        user: &str,
        outcome: &AuthOutcome,
    ) -> impl Future<Output = ()> + Send {
        let _ = (user, outcome);
        std::future::ready(())
    }
    /// What the session did on the wire (with [`ServerConfig::trace`] on): client and reply
    /// lines and timeouts, for the reporting stream. The default does nothing.
    fn trace(&mut self, trace: Trace) -> impl Future<Output = ()> + Send {
        let _ = trace;
        std::future::ready(())
    }
    /// AUTH with `mechanism` is about to be checked: the filters' say first (`auth` phase).
    /// `Some` refuses it with that decision. The default lets it go ahead.
    fn auth_filter(&mut self, mechanism: &str) -> impl Future<Output = Option<Decision>> + Send {
        let _ = mechanism;
        std::future::ready(None)
    }
    /// The session is over, however it ended. The default does nothing.
    fn ended(&mut self) -> impl Future<Output = ()> + Send {
        std::future::ready(())
    }
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The machine closed it (QUIT, 421, a refusal).
    Closed,
    /// The client went away.
    PeerClosed,
    /// The daemon is shutting down.
    Shutdown,
    /// The TLS handshake failed or timed out.
    TlsFailed,
}

/// Runs a session to its end. `shutdown` turning true makes the machine say 421 and close.
/// On an smtps listener (`security.implicit_tls`) a plain stream is handshaken first. The
/// handler hears [`SessionHandler::ended`] last, however the session ended.
pub async fn drive<S, H, C>(
    stream: &mut MaybeTls<S>,
    config: Arc<ServerConfig>,
    security: &SessionSecurity,
    conn: &Connection,
    handler: &mut H,
    clock: &C,
    shutdown: watch::Receiver<bool>,
) -> io::Result<Ending>
where
    S: AsyncRead + AsyncWrite + Unpin,
    H: SessionHandler,
    C: Clock + ?Sized,
{
    let ending = run(stream, config, security, conn, handler, clock, shutdown).await;
    handler.ended().await;
    ending
}

async fn run<S, H, C>(
    stream: &mut MaybeTls<S>,
    config: Arc<ServerConfig>,
    security: &SessionSecurity,
    conn: &Connection,
    handler: &mut H,
    clock: &C,
    mut shutdown: watch::Receiver<bool>,
) -> io::Result<Ending>
where
    S: AsyncRead + AsyncWrite + Unpin,
    H: SessionHandler,
    C: Clock + ?Sized,
{
    if security.implicit_tls && !stream.is_tls() {
        let Some(tls) = &security.tls else {
            return Err(io::Error::other(
                "smtps listener without a TLS configuration",
            ));
        };
        if !handshake(stream, tls, security, conn, handler).await {
            return Ok(Ending::TlsFailed);
        }
    }
    let info = ConnectionInfo {
        peer: match &conn.local_user {
            Some(_) => "local".to_owned(),
            None => conn.peer.ip().to_string(),
        },
        tls: stream.is_tls(),
    };
    let mut session = ServerSession::new(config, info, clock.now());
    let mut transcript = security
        .transcripts
        .as_ref()
        .and_then(|dir| Transcript::create(&dir.0, &hex(conn.id), &conn.client()));
    let mut buf = vec![0u8; 16 * 1024];
    let mut ending = Ending::Closed;
    loop {
        while let Some(event) = session.poll_event() {
            match event {
                ServerEvent::Request(id, request) => {
                    let decision = match (request, &security.auth) {
                        (
                            Request::Auth {
                                mechanism,
                                credentials,
                            },
                            Some(auth),
                        ) => 'auth: {
                            if let Some(refusal) = handler.auth_filter(mechanism.name()).await {
                                break 'auth refusal;
                            }
                            let outcome = auth.check(&credentials).await;
                            let user = credentials.username.as_str();
                            log_auth(conn, mechanism.name(), user, auth.table_name(), &outcome);
                            handler.auth_result(user, &outcome).await;
                            outcome.decision()
                        }
                        (request, _) => handler.decide(request).await,
                    };
                    session.answer(id, decision, clock.now());
                }
                ServerEvent::DataChunk(chunk) => handler.data(chunk).await,
                ServerEvent::DataAborted => handler.aborted().await,
                ServerEvent::Trace(trace) => handler.trace(trace).await,
                ServerEvent::StartTls => {
                    // The 220 goes out in plaintext, then the socket itself is handed to TLS.
                    // Nothing read before is kept: the machine has discarded what the client
                    // pipelined after STARTTLS, and the driver buffers nothing of its own, so
                    // injected plaintext cannot reach the TLS session (CVE-2011-0411).
                    flush(stream, &mut session, transcript.as_mut()).await?;
                    let Some(tls) = &security.tls else {
                        // A machine offering STARTTLS on a listener without certificates is a
                        // configuration error the shell cannot honour.
                        tracing::warn!(session = %hex(conn.id), "STARTTLS requested but not configured");
                        return Ok(Ending::Closed);
                    };
                    if !handshake(stream, tls, security, conn, handler).await {
                        return Ok(Ending::TlsFailed);
                    }
                    session.tls_established(clock.now());
                }
                ServerEvent::Close => {
                    flush(stream, &mut session, transcript.as_mut()).await?;
                    let _ = stream.shutdown().await;
                    return Ok(ending);
                }
            }
        }
        flush(stream, &mut session, transcript.as_mut()).await?;
        let wait = session.poll_timeout().map(|t| until(clock.now(), t));
        tokio::select! {
            read = read_with_timeout(stream, &mut buf, wait) => match read {
                Some(Ok(0)) => {
                    // The client went away: whatever it was sending is abandoned.
                    session.shutdown();
                    drain_aborts(&mut session, handler).await;
                    return Ok(Ending::PeerClosed);
                }
                Some(Ok(n)) => {
                    if let Some(t) = transcript.as_mut() {
                        t.client(&buf[..n]);
                    }
                    session.handle_input(&buf[..n], clock.now());
                }
                Some(Err(e)) => {
                    session.shutdown();
                    drain_aborts(&mut session, handler).await;
                    return Err(e);
                }
                None => session.handle_timeout(clock.now()),
            },
            _ = shutdown.changed() => {
                ending = Ending::Shutdown;
                session.shutdown();
            }
        }
    }
}

/// Runs the server side of a TLS handshake; false when it failed (the stream is then closed).
async fn handshake<S, H>(
    stream: &mut MaybeTls<S>,
    tls: &Arc<rustls::ServerConfig>,
    security: &SessionSecurity,
    conn: &Connection,
    handler: &mut H,
) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin,
    H: SessionHandler,
{
    match stream.accept(tls.clone(), security.handshake_timeout).await {
        Ok(info) => {
            tracing::info!(
                session = %hex(conn.id),
                version = %info.version,
                cipher = %info.cipher,
                bits = info.bits,
                sni = info.server_name.as_deref().unwrap_or("-"),
                client_cert = info.peer_verified,
                "TLS established"
            );
            handler.tls_started(&info).await;
            true
        }
        Err(e) => {
            tracing::info!(session = %hex(conn.id), error = %e, "TLS handshake failed");
            false
        }
    }
}

/// Logs an AUTH attempt: the user name and the outcome, never the password.
fn log_auth(conn: &Connection, mechanism: &str, user: &str, table: &str, outcome: &AuthOutcome) {
    let session = hex(conn.id);
    match outcome {
        AuthOutcome::Accepted => {
            tracing::info!(%session, mechanism, user, "authentication succeeded");
        }
        AuthOutcome::Rejected(reason) => {
            tracing::warn!(%session, mechanism, user, ?reason, peer = %conn.peer.ip(), "authentication failed");
        }
        AuthOutcome::Unavailable(why) => {
            tracing::error!(%session, mechanism, user, table, error = %why, "authentication unavailable");
        }
    }
}

/// After the connection is gone, only the content-discard events still matter.
async fn drain_aborts<H: SessionHandler>(session: &mut ServerSession, handler: &mut H) {
    while let Some(event) = session.poll_event() {
        // Traces are left out: the replies they show were never sent.
        if event == ServerEvent::DataAborted {
            handler.aborted().await;
        }
    }
}

async fn flush<S: AsyncWrite + Unpin>(
    stream: &mut S,
    session: &mut ServerSession,
    mut transcript: Option<&mut Transcript>,
) -> io::Result<()> {
    let mut wrote = false;
    while let Some(bytes) = session.poll_transmit() {
        if let Some(t) = transcript.as_deref_mut() {
            t.server(&bytes);
        }
        stream.write_all(&bytes).await?;
        wrote = true;
    }
    if wrote {
        stream.flush().await?;
    }
    Ok(())
}

/// Reads once; `None` when `wait` elapsed first.
async fn read_with_timeout<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut [u8],
    wait: Option<Duration>,
) -> Option<io::Result<usize>> {
    match wait {
        Some(d) => tokio::time::timeout(d, stream.read(buf)).await.ok(),
        None => Some(stream.read(buf).await),
    }
}

fn until(now: Time, deadline: Time) -> Duration {
    deadline.saturating_since(now)
}

/// Formats an id as OpenSMTPD does in its logs.
#[must_use]
pub fn hex(id: u64) -> String {
    format!("{id:016x}")
}
