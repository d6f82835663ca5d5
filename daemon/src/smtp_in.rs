//! smtp-in: drives one [`ServerSession`] over a byte stream.
//!
//! The driver moves bytes between the socket and the machine, turns the machine's requests
//! into calls on a [`SessionHandler`] (policy, filters, the queue), and applies its timeouts.
//! It writes replies in batches: everything the machine produced is written before the driver
//! blocks on a read, so pipelined commands get their replies in one write.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use petrel_core::Time;
use petrel_core::session::Decision;
use petrel_core::session::server::{
    ConnectionInfo, Request, ServerConfig, ServerEvent, ServerSession,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use crate::clock::Clock;

/// What the shell knows about a connection.
#[derive(Clone, Debug)]
pub struct Connection {
    /// The session id shown in logs.
    pub id: u64,
    /// The client's address.
    pub peer: SocketAddr,
    /// Our address.
    pub local: SocketAddr,
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
}

/// Runs a session to its end. `shutdown` turning true makes the machine say 421 and close.
pub async fn drive<S, H, C>(
    stream: &mut S,
    config: Arc<ServerConfig>,
    conn: &Connection,
    handler: &mut H,
    clock: &C,
    mut shutdown: watch::Receiver<bool>,
) -> io::Result<Ending>
where
    S: AsyncRead + AsyncWrite + Unpin,
    H: SessionHandler,
    C: Clock,
{
    let info = ConnectionInfo {
        peer: conn.peer.ip().to_string(),
        tls: false,
    };
    let mut session = ServerSession::new(config, info, clock.now());
    let mut buf = vec![0u8; 16 * 1024];
    let mut ending = Ending::Closed;
    loop {
        while let Some(event) = session.poll_event() {
            match event {
                ServerEvent::Request(id, request) => {
                    let decision = handler.decide(request).await;
                    session.answer(id, decision, clock.now());
                }
                ServerEvent::DataChunk(chunk) => handler.data(chunk).await,
                ServerEvent::DataAborted => handler.aborted().await,
                ServerEvent::StartTls => {
                    // No listener of this shell offers STARTTLS yet; a machine asking for it
                    // is a configuration the shell cannot honour, so end the session.
                    flush(stream, &mut session).await?;
                    tracing::warn!(session = %hex(conn.id), "STARTTLS requested but not available");
                    return Ok(Ending::Closed);
                }
                ServerEvent::Close => {
                    flush(stream, &mut session).await?;
                    let _ = stream.shutdown().await;
                    return Ok(ending);
                }
            }
        }
        flush(stream, &mut session).await?;
        let wait = session.poll_timeout().map(|t| until(clock.now(), t));
        tokio::select! {
            read = read_with_timeout(stream, &mut buf, wait) => match read {
                Some(Ok(0)) => {
                    // The client went away: whatever it was sending is abandoned.
                    session.shutdown();
                    drain_aborts(&mut session, handler).await;
                    return Ok(Ending::PeerClosed);
                }
                Some(Ok(n)) => session.handle_input(&buf[..n], clock.now()),
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

/// After the connection is gone, only the content-discard events still matter.
async fn drain_aborts<H: SessionHandler>(session: &mut ServerSession, handler: &mut H) {
    while let Some(event) = session.poll_event() {
        if event == ServerEvent::DataAborted {
            handler.aborted().await;
        }
    }
}

async fn flush<S: AsyncWrite + Unpin>(
    stream: &mut S,
    session: &mut ServerSession,
) -> io::Result<()> {
    let mut wrote = false;
    while let Some(bytes) = session.poll_transmit() {
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
