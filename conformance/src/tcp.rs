//! The TCP runner: every case over a real connection (tokio), with STARTTLS or implicit TLS
//! through tokio-rustls. Certificates are not verified: test servers use self-signed ones, and
//! what is graded is the protocol, not the PKI.
//!
//! [`StreamTransport`] is generic over the stream, so a simulator runner can use it over a
//! turmoil connection unchanged (there `tokio::time` is simulated and `virtual_time` is true).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::transport::{Read, ReplyBuffer, Runner, Target, Transport};

/// A stream that is plain, or TLS after an upgrade.
enum Conn<S> {
    Plain(S),
    Tls(Box<tokio_rustls::client::TlsStream<S>>),
    Gone,
}

/// A [`Transport`] over any byte stream.
pub struct StreamTransport<S> {
    conn: Conn<S>,
    buf: ReplyBuffer,
    eof: bool,
    tls: TlsConnector,
    server_name: ServerName<'static>,
    virtual_time: bool,
}

impl<S> std::fmt::Debug for StreamTransport<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamTransport")
            .field("eof", &self.eof)
            .finish_non_exhaustive()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> StreamTransport<S> {
    /// A transport over `stream`; TLS upgrades use `tls` and present `server_name` (SNI).
    /// `virtual_time`: the stream lives in a simulator whose clock costs nothing to advance.
    #[must_use]
    pub fn new(
        stream: S,
        tls: TlsConnector,
        server_name: ServerName<'static>,
        virtual_time: bool,
    ) -> StreamTransport<S> {
        StreamTransport {
            conn: Conn::Plain(stream),
            buf: ReplyBuffer::new(),
            eof: false,
            tls,
            server_name,
            virtual_time,
        }
    }

    /// A transport over `stream` whose STARTTLS cases accept any certificate and present
    /// `localhost`: for servers reached through a simulated network.
    #[must_use]
    pub fn any_certificate(stream: S, virtual_time: bool) -> StreamTransport<S> {
        let name = ServerName::try_from("localhost").expect("a valid name");
        StreamTransport::new(stream, no_verify_connector(), name, virtual_time)
    }

    /// Runs the TLS handshake at once (implicit TLS, "smtps").
    ///
    /// # Errors
    /// The handshake failed.
    pub async fn handshake(&mut self, timeout: Duration) -> Result<(), String> {
        let Conn::Plain(stream) = std::mem::replace(&mut self.conn, Conn::Gone) else {
            return Err("TLS is already active".into());
        };
        let connect = self.tls.connect(self.server_name.clone(), stream);
        match tokio::time::timeout(timeout, connect).await {
            Ok(Ok(s)) => {
                self.conn = Conn::Tls(Box::new(s));
                Ok(())
            }
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("handshake timed out".into()),
        }
    }

    async fn read_some(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match &mut self.conn {
            Conn::Plain(s) => s.read(out).await,
            Conn::Tls(s) => s.read(out).await,
            Conn::Gone => Ok(0),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Transport for StreamTransport<S> {
    async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.conn {
            Conn::Plain(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
            Conn::Tls(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
            Conn::Gone => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    async fn read_reply(&mut self, timeout: Duration) -> Read {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut chunk = vec![0u8; 16 * 1024];
        loop {
            match self.buf.take() {
                Ok(Some((reply, raw))) => return Read::Reply(reply, raw),
                Ok(None) => {}
                Err(e) => return Read::Malformed(e),
            }
            if self.eof {
                return if self.buf.is_empty() {
                    Read::Closed
                } else {
                    Read::Malformed(format!(
                        "incomplete reply before the close: {}",
                        crate::interp::escape(self.buf.pending(), 200)
                    ))
                };
            }
            match tokio::time::timeout_at(deadline, self.read_some(&mut chunk)).await {
                Err(_) => return Read::Timeout,
                // A reset is a close as far as the cases are concerned.
                Ok(Ok(0) | Err(_)) => self.eof = true,
                Ok(Ok(n)) => self.buf.extend(&chunk[..n]),
            }
        }
    }

    async fn wait(&mut self, d: Duration) {
        tokio::time::sleep(d).await;
    }

    async fn start_tls(&mut self) -> Result<(), String> {
        if !self.buf.is_empty() {
            return Err(format!(
                "plaintext after the 220: {}",
                crate::interp::escape(self.buf.pending(), 200)
            ));
        }
        self.handshake(Duration::from_secs(30)).await
    }

    fn virtual_time(&self) -> bool {
        self.virtual_time
    }
}

/// Runs cases over TCP against `address`.
#[derive(Clone)]
pub struct TcpRunner {
    /// `HOST:PORT`.
    pub address: String,
    /// The name in reports.
    pub name: String,
    /// TLS from the first byte (smtps) instead of plaintext with STARTTLS.
    pub implicit_tls: bool,
    /// How long to wait for a reply.
    pub reply_timeout: Duration,
    /// How long a server must stay silent to count as silent.
    pub silence: Duration,
    tls: TlsConnector,
}

impl std::fmt::Debug for TcpRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpRunner")
            .field("address", &self.address)
            .field("implicit_tls", &self.implicit_tls)
            .finish_non_exhaustive()
    }
}

impl TcpRunner {
    /// A runner for `address` (`HOST:PORT`), named `name` in reports.
    #[must_use]
    pub fn new(address: &str, name: &str) -> TcpRunner {
        TcpRunner {
            address: address.to_owned(),
            name: name.to_owned(),
            implicit_tls: false,
            reply_timeout: Duration::from_secs(10),
            silence: Duration::from_millis(400),
            tls: no_verify_connector(),
        }
    }

    fn server_name(&self) -> ServerName<'static> {
        let host = self
            .address
            .rsplit_once(':')
            .map_or(self.address.as_str(), |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']');
        ServerName::try_from(host.to_owned())
            .unwrap_or_else(|_| ServerName::try_from("localhost").expect("a valid name"))
    }
}

impl Runner for TcpRunner {
    type Transport = StreamTransport<TcpStream>;

    async fn connect(&self) -> Result<Self::Transport, String> {
        let connect = TcpStream::connect(&self.address);
        let stream = tokio::time::timeout(self.reply_timeout, connect)
            .await
            .map_err(|_| "connection timed out".to_owned())?
            .map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let mut t = StreamTransport::new(stream, self.tls.clone(), self.server_name(), false);
        if self.implicit_tls {
            t.handshake(self.reply_timeout).await?;
        }
        Ok(t)
    }

    fn target(&self) -> Target {
        Target {
            name: self.name.clone(),
            address: self.address.clone(),
            runner: if self.implicit_tls { "tcp+tls" } else { "tcp" }.into(),
        }
    }

    fn can_tls(&self) -> bool {
        !self.implicit_tls
    }

    fn reply_timeout(&self) -> Duration {
        self.reply_timeout
    }

    fn silence(&self) -> Duration {
        self.silence
    }
}

/// A TLS connector (ring) that accepts any certificate but still checks the handshake
/// signatures.
#[must_use]
pub fn no_verify_connector() -> TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = AcceptAnyCertificate {
        algorithms: provider.signature_verification_algorithms,
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(rustls::DEFAULT_VERSIONS)
        .expect("ring supports the default versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

#[derive(Debug)]
struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
