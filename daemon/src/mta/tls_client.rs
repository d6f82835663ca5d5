//! Client TLS with rustls (the `ring` provider): the [`TlsUpgrade`] of the production shell.
//!
//! Two client configurations: one verifying certificates against the Web PKI roots (plus any
//! roots given), for `tls` and mandatory-TLS smarthosts; one accepting any certificate, for
//! opportunistic STARTTLS, where RFC 3207 asks for no verification and a failed check would
//! only push the session back to plaintext. The handshake's signatures are checked either
//! way.
//!
//! (The listener side's TLS is being written separately; both use the same rustls build, and
//! will share their configuration code once they meet.)

use std::io;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::TlsConnector;

use super::net::BoxedIo;
use super::resolver::BoxFuture;
use super::tls::{TlsUpgrade, Upgraded};

/// rustls handshakes for smtp-out.
#[derive(Clone)]
pub struct RustlsUpgrade {
    verified: TlsConnector,
    unverified: TlsConnector,
}

impl std::fmt::Debug for RustlsUpgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RustlsUpgrade").finish_non_exhaustive()
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl RustlsUpgrade {
    /// Verification against the Web PKI roots (webpki-roots).
    ///
    /// # Errors
    /// The provider refuses the default protocol versions (it does not).
    pub fn new() -> Result<RustlsUpgrade, rustls::Error> {
        RustlsUpgrade::with_extra_roots(Vec::new())
    }

    /// Verification against the Web PKI roots and these (a private CA, a test's root).
    ///
    /// # Errors
    /// A root certificate cannot be used.
    pub fn with_extra_roots(
        extra: Vec<CertificateDer<'static>>,
    ) -> Result<RustlsUpgrade, rustls::Error> {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for cert in extra {
            roots.add(cert)?;
        }
        let provider = provider();
        let verified = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let unverified = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth();
        Ok(RustlsUpgrade {
            verified: TlsConnector::from(Arc::new(verified)),
            unverified: TlsConnector::from(Arc::new(unverified)),
        })
    }
}

impl TlsUpgrade for RustlsUpgrade {
    fn upgrade<'a>(
        &'a self,
        stream: BoxedIo,
        server_name: &'a str,
        verify: bool,
    ) -> BoxFuture<'a, io::Result<Upgraded>> {
        Box::pin(async move {
            let name = ServerName::try_from(server_name.to_owned())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let connector = if verify {
                &self.verified
            } else {
                &self.unverified
            };
            let tls = connector.connect(name, stream).await?;
            let (_, conn) = tls.get_ref();
            let version = match conn.protocol_version() {
                Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_owned(),
                Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_owned(),
                other => format!("{other:?}"),
            };
            let suite = conn
                .negotiated_cipher_suite()
                .map_or_else(|| "?".to_owned(), |s| format!("{:?}", s.suite()));
            Ok(Upgraded {
                stream: Box::new(tls),
                description: format!("{version}:{suite}"),
            })
        })
    }
}

/// Takes any certificate, but still checks that the handshake is signed by its key.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

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
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
