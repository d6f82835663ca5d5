//! The client side, for outgoing sessions (relaying): a rustls configuration with a chosen
//! verification policy and an optional client certificate.

use std::sync::Arc;

use rustls::client::ResolvesClientCert;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::{Pki, TlsError};

/// How an outgoing session checks the server's certificate.
#[derive(Clone, Debug)]
pub enum ServerVerification {
    /// Encrypt but accept any certificate. This is what RFC 3207 allows for relaying to an MX
    /// found in the DNS, where the name cannot be authenticated without MTA-STS or DANE, and what
    /// OpenSMTPD does by default: encryption against passive eavesdropping is still worth having.
    /// The handshake signatures are still checked (the peer must hold the key of the certificate
    /// it sent).
    Opportunistic,
    /// Verify the chain against the Mozilla trust anchors compiled into the daemon
    /// (webpki-roots) and the certificate against the host name (`relay … tls`).
    WebPki,
    /// Verify against these trust anchors (a configured `ca`) and the host name.
    Roots(Arc<RootCertStore>),
}

/// The configuration of outgoing TLS sessions, made by [`client_config`].
#[derive(Clone, Debug)]
pub struct ClientTls {
    config: Arc<rustls::ClientConfig>,
    verified: bool,
}

impl ClientTls {
    /// The rustls configuration.
    #[must_use]
    pub fn config(&self) -> Arc<rustls::ClientConfig> {
        self.config.clone()
    }

    /// True when the server's certificate and name are verified (not opportunistic).
    #[must_use]
    pub fn verifies_server(&self) -> bool {
        self.verified
    }
}

/// Builds the configuration of outgoing sessions: `verification` decides how the server is
/// checked; `identity` (a relay's `pki`) is presented when the server asks for a client
/// certificate.
pub fn client_config(
    verification: ServerVerification,
    identity: Option<&Pki>,
) -> Result<ClientTls, TlsError> {
    let provider = super::provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(rustls::DEFAULT_VERSIONS)?;
    let verified = !matches!(verification, ServerVerification::Opportunistic);
    let builder = match verification {
        ServerVerification::Opportunistic => {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate {
                    algorithms: provider.signature_verification_algorithms,
                }))
        }
        ServerVerification::WebPki => {
            let roots = RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            builder.with_root_certificates(roots)
        }
        ServerVerification::Roots(roots) => builder.with_root_certificates(roots),
    };
    let config = match identity {
        Some(pki) => {
            builder.with_client_cert_resolver(Arc::new(ClientIdentity(pki.certified.clone())))
        }
        None => builder.with_no_client_auth(),
    };
    Ok(ClientTls {
        config: Arc::new(config),
        verified,
    })
}

/// Presents one certificate whenever the server asks for one.
#[derive(Debug)]
struct ClientIdentity(Arc<CertifiedKey>);

impl ResolvesClientCert for ClientIdentity {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// The opportunistic verifier: any certificate is accepted, signatures are still checked.
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
