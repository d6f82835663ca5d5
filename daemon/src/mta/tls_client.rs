//! Client TLS with rustls: the [`TlsUpgrade`] of the production shell.
//!
//! Its own [`OutgoingTls`] (Web PKI roots plus any given) serves relay actions that configure
//! nothing about TLS; an action with `ca`, `pki`, `protocols` or `ciphers` brings its own,
//! built when the configuration is read ([`crate::routing::Routing::relay_tls`]). Either way one
//! configuration verifies certificates, for `tls` and mandatory-TLS smarthosts, and one accepts
//! any certificate, for opportunistic STARTTLS, where RFC 3207 asks for no verification and a
//! failed check would only push the session back to plaintext. The handshake's signatures are
//! checked either way.

use std::io;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio_rustls::TlsConnector;

use super::net::BoxedIo;
use super::resolver::BoxFuture;
use super::tls::{TlsUpgrade, Upgraded};
use crate::tls::{OutgoingTls, TlsError, TlsInfo, TlsLimits};

/// rustls handshakes for smtp-out.
#[derive(Clone, Debug)]
pub struct RustlsUpgrade {
    default: Arc<OutgoingTls>,
}

impl RustlsUpgrade {
    /// Verification against the Web PKI roots (webpki-roots).
    ///
    /// # Errors
    /// The TLS library refuses its default configuration (it does not).
    pub fn new() -> Result<RustlsUpgrade, TlsError> {
        RustlsUpgrade::with_extra_roots(Vec::new())
    }

    /// Verification against the Web PKI roots and these (a private CA, a test's root).
    ///
    /// # Errors
    /// A root certificate cannot be used.
    pub fn with_extra_roots(
        extra: Vec<CertificateDer<'static>>,
    ) -> Result<RustlsUpgrade, TlsError> {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for cert in extra {
            roots.add(cert)?;
        }
        let default = OutgoingTls::new(Some(Arc::new(roots)), None, &TlsLimits::default())?;
        Ok(RustlsUpgrade {
            default: Arc::new(default),
        })
    }
}

impl TlsUpgrade for RustlsUpgrade {
    fn upgrade<'a>(
        &'a self,
        stream: BoxedIo,
        server_name: &'a str,
        verify: bool,
        profile: Option<&'a OutgoingTls>,
    ) -> BoxFuture<'a, io::Result<Upgraded>> {
        Box::pin(async move {
            let name = ServerName::try_from(server_name.to_owned())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let config = profile.unwrap_or(&self.default).config(verify);
            let tls = TlsConnector::from(config).connect(name, stream).await?;
            let (_, conn) = tls.get_ref();
            let info = TlsInfo::from_connection(conn, Some(server_name.to_owned()), verify);
            Ok(Upgraded {
                stream: Box::new(tls),
                description: format!("{}:{}", info.version, info.cipher),
            })
        })
    }
}
