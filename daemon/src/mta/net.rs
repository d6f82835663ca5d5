//! The network seam of smtp-out: making a TCP connection, with a timeout and a chosen source
//! address. The simulator swaps [`TcpConnector`] for one over its own network.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpSocket;

use super::resolver::BoxFuture;

/// A byte stream a session runs over: TCP, TLS over TCP, or a simulated connection.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A boxed stream. Boxed so that a STARTTLS upgrade can replace it in place, whatever the
/// TLS stream's type.
pub type BoxedIo = Box<dyn Io>;

/// A connection just made.
pub struct Connected {
    /// The stream.
    pub stream: BoxedIo,
    /// Our end of it: the source address logged with every delivery.
    pub local: SocketAddr,
}

impl std::fmt::Debug for Connected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connected")
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

/// Makes outgoing connections.
pub trait Connector: Send + Sync {
    /// Connects to `addr` within `timeout`, from `src` (any port) when given.
    fn connect(
        &self,
        addr: SocketAddr,
        src: Option<IpAddr>,
        timeout: Duration,
    ) -> BoxFuture<'_, io::Result<Connected>>;
}

/// Real TCP through tokio.
#[derive(Clone, Copy, Debug, Default)]
pub struct TcpConnector;

impl Connector for TcpConnector {
    fn connect(
        &self,
        addr: SocketAddr,
        src: Option<IpAddr>,
        timeout: Duration,
    ) -> BoxFuture<'_, io::Result<Connected>> {
        Box::pin(async move {
            let socket = match addr {
                SocketAddr::V4(_) => TcpSocket::new_v4()?,
                SocketAddr::V6(_) => TcpSocket::new_v6()?,
            };
            if let Some(src) = src {
                if src.is_ipv4() != addr.is_ipv4() {
                    // A source of the other family cannot reach this address; the next target
                    // of the plan may be of the right family.
                    return Err(io::Error::new(
                        io::ErrorKind::AddrNotAvailable,
                        format!("source address {src} cannot reach {addr}"),
                    ));
                }
                socket.bind(SocketAddr::new(src, 0))?;
            }
            let stream = tokio::time::timeout(timeout, socket.connect(addr))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connection timed out"))??;
            // Commands are small and pipelined groups are written at once: no Nagle delay.
            stream.set_nodelay(true)?;
            let local = stream.local_addr()?;
            Ok(Connected {
                stream: Box::new(stream),
                local,
            })
        })
    }
}
