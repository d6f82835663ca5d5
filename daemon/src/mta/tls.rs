//! The TLS seam of smtp-out: "upgrade this stream to TLS for host X, verifying or not".
//!
//! The machine asks for STARTTLS with `ClientEvent::StartTls`; smtps targets start with it.
//! [`RustlsUpgrade`](super::tls_client::RustlsUpgrade) implements it with rustls; [`NoTls`]
//! stands for a shell without TLS: opportunistic targets then stay in plaintext and targets
//! that require TLS fail temporarily.

use std::io;

use super::net::BoxedIo;
use super::resolver::BoxFuture;
use crate::tls::OutgoingTls;

/// A stream after a successful handshake.
pub struct Upgraded {
    /// The encrypted stream.
    pub stream: BoxedIo,
    /// Protocol version and cipher suite, for the log (`TLSv1.3:TLS13_AES_256_GCM_SHA384`).
    pub description: String,
}

impl std::fmt::Debug for Upgraded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upgraded")
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

/// Runs client TLS handshakes.
pub trait TlsUpgrade: Send + Sync {
    /// Whether this shell can do TLS at all.
    fn available(&self) -> bool {
        true
    }

    /// Runs a TLS handshake over `stream` for `server_name` (a host name or an address). With
    /// `verify`, the certificate chain must lead to a trusted root and name the host;
    /// without, any certificate is taken (opportunistic TLS: encryption against passive
    /// eavesdroppers, no authentication). `profile` is the relay action's own TLS (its `ca`,
    /// `pki`, `protocols` and `ciphers`); the shell's defaults when `None`.
    fn upgrade<'a>(
        &'a self,
        stream: BoxedIo,
        server_name: &'a str,
        verify: bool,
        profile: Option<&'a OutgoingTls>,
    ) -> BoxFuture<'a, io::Result<Upgraded>>;
}

/// No TLS in this shell.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoTls;

impl TlsUpgrade for NoTls {
    fn available(&self) -> bool {
        false
    }

    fn upgrade<'a>(
        &'a self,
        _stream: BoxedIo,
        _server_name: &'a str,
        _verify: bool,
        _profile: Option<&'a OutgoingTls>,
    ) -> BoxFuture<'a, io::Result<Upgraded>> {
        Box::pin(std::future::ready(Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "TLS is not available",
        ))))
    }
}
