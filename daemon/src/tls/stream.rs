//! [`MaybeTls`]: a connection that is plain or TLS, upgraded in place.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::TlsInfo;
use super::client::ClientTls;

/// A byte stream that is plain or TLS. STARTTLS turns a `Plain` stream into a TLS one in place
/// ([`accept`](Self::accept) on the server side, [`connect`](Self::connect) on the client side),
/// so that the code reading and writing it does not change type halfway through a session.
///
/// The upgrade hands the underlying stream to the TLS library as it is: nothing read from it
/// before is replayed into the handshake, so plaintext a client pipelined after STARTTLS can
/// never end up inside the TLS session.
pub enum MaybeTls<S> {
    /// No TLS (yet).
    Plain(S),
    /// TLS, server side.
    Server(Box<tokio_rustls::server::TlsStream<S>>),
    /// TLS, client side.
    Client(Box<tokio_rustls::client::TlsStream<S>>),
    /// A handshake failed: the connection is gone. Reads see end of file, writes fail.
    Closed,
}

impl<S> fmt::Debug for MaybeTls<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MaybeTls::Plain(_) => "MaybeTls::Plain",
            MaybeTls::Server(_) => "MaybeTls::Server",
            MaybeTls::Client(_) => "MaybeTls::Client",
            MaybeTls::Closed => "MaybeTls::Closed",
        })
    }
}

impl<S> MaybeTls<S> {
    /// True once TLS is active.
    #[must_use]
    pub fn is_tls(&self) -> bool {
        matches!(self, MaybeTls::Server(_) | MaybeTls::Client(_))
    }

    /// The underlying stream, unless a failed handshake consumed it.
    #[must_use]
    pub fn get_ref(&self) -> Option<&S> {
        match self {
            MaybeTls::Plain(s) => Some(s),
            MaybeTls::Server(s) => Some(s.get_ref().0),
            MaybeTls::Client(s) => Some(s.get_ref().0),
            MaybeTls::Closed => None,
        }
    }

    fn take_plain(&mut self) -> io::Result<S> {
        match std::mem::replace(self, MaybeTls::Closed) {
            MaybeTls::Plain(s) => Ok(s),
            other => {
                *self = other;
                Err(io::Error::other("TLS is already active on this connection"))
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> MaybeTls<S> {
    /// Runs the server side of a handshake (smtps at connect, or after `220` to STARTTLS),
    /// giving up after `timeout`. On failure the stream is [`Closed`](Self::Closed).
    pub async fn accept(
        &mut self,
        config: Arc<rustls::ServerConfig>,
        timeout: Duration,
    ) -> io::Result<TlsInfo> {
        let plain = self.take_plain()?;
        let tls = tokio::time::timeout(timeout, TlsAcceptor::from(config).accept(plain))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
        let conn = tls.get_ref().1;
        let info = TlsInfo::from_connection(
            conn,
            conn.server_name().map(str::to_owned),
            // A listener that verifies makes certificates mandatory, and one that does not never
            // asks for them: a certificate here is a verified one.
            conn.peer_certificates().is_some_and(|c| !c.is_empty()),
        );
        *self = MaybeTls::Server(Box::new(tls));
        Ok(info)
    }

    /// Runs the client side of a handshake with the server `host` (a DNS name or an IP
    /// address, sent as SNI and checked against the certificate unless the configuration is
    /// opportunistic), giving up after `timeout`. On failure the stream is
    /// [`Closed`](Self::Closed).
    pub async fn connect(
        &mut self,
        tls: &ClientTls,
        host: &str,
        timeout: Duration,
    ) -> io::Result<TlsInfo> {
        let name = ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']'))
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?
            .to_owned();
        let plain = self.take_plain()?;
        let connector = TlsConnector::from(tls.config());
        let stream = tokio::time::timeout(timeout, connector.connect(name, plain))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
        let info = TlsInfo::from_connection(
            stream.get_ref().1,
            Some(host.to_owned()),
            tls.verifies_server(),
        );
        *self = MaybeTls::Client(Box::new(stream));
        Ok(info)
    }
}

fn closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "connection closed by a failed TLS handshake",
    )
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for MaybeTls<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MaybeTls::Server(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            MaybeTls::Client(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            MaybeTls::Closed => Poll::Ready(Ok(())),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for MaybeTls<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write(cx, buf),
            MaybeTls::Server(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            MaybeTls::Client(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            MaybeTls::Closed => Poll::Ready(Err(closed())),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            MaybeTls::Server(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            MaybeTls::Client(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            MaybeTls::Closed => Poll::Ready(Err(closed())),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            MaybeTls::Plain(s) => s.is_write_vectored(),
            MaybeTls::Server(s) => s.is_write_vectored(),
            MaybeTls::Client(s) => s.is_write_vectored(),
            MaybeTls::Closed => false,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_flush(cx),
            MaybeTls::Server(s) => Pin::new(s.as_mut()).poll_flush(cx),
            MaybeTls::Client(s) => Pin::new(s.as_mut()).poll_flush(cx),
            MaybeTls::Closed => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_shutdown(cx),
            MaybeTls::Server(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            MaybeTls::Client(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            MaybeTls::Closed => Poll::Ready(Ok(())),
        }
    }
}
