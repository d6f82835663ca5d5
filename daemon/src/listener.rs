//! Listening sockets: bound with the largest backlog the kernel allows, so that bursts of
//! connections queue in the kernel instead of being refused (a backlog of 5 makes a server
//! collapse under 50 concurrent clients).
//!
//! The accept loops are written against the [`Listener`] trait: tokio's `TcpListener` in
//! production, the simulator's network in the simulator.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpSocket};

/// Requested listen backlog; the kernel clamps it to `net.core.somaxconn`.
pub const LISTEN_BACKLOG: u32 = 65_535;

/// Binds a TCP listener on `addr` with address reuse and a large backlog.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// A connection just accepted.
#[derive(Debug)]
pub struct Accepted<S> {
    /// The stream.
    pub stream: S,
    /// The client's address.
    pub peer: SocketAddr,
    /// Our address.
    pub local: SocketAddr,
}

/// A bound listening socket.
pub trait Listener: Send + Sync + 'static {
    /// The stream of an accepted connection.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// Waits for the next connection.
    fn accept(&self) -> impl Future<Output = io::Result<Accepted<Self::Stream>>> + Send;
    /// The address it is bound to.
    fn local_addr(&self) -> io::Result<SocketAddr>;
}

impl Listener for TcpListener {
    type Stream = tokio::net::TcpStream;

    async fn accept(&self) -> io::Result<Accepted<tokio::net::TcpStream>> {
        loop {
            let (stream, peer) = TcpListener::accept(self).await?;
            // A connection reset before we could ask is simply dropped.
            let Ok(local) = stream.local_addr() else {
                continue;
            };
            return Ok(Accepted {
                stream,
                peer,
                local,
            });
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        TcpListener::local_addr(self)
    }
}
