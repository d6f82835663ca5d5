//! The client side, for outgoing sessions (relaying): a rustls configuration with a chosen
//! verification policy and an optional client certificate.

use std::sync::Arc;

use rustls::client::ResolvesClientCert;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::{Pki, TlsError, TlsLimits};

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
/// certificate. Every protocol version and suite of the library is offered.
pub fn client_config(
    verification: ServerVerification,
    identity: Option<&Pki>,
) -> Result<ClientTls, TlsError> {
    client_config_with(verification, identity, &TlsLimits::default())
}

/// [`client_config`] offering only the versions and suites of `limits` (a relay's `protocols`
/// and `ciphers`).
pub fn client_config_with(
    verification: ServerVerification,
    identity: Option<&Pki>,
    limits: &TlsLimits,
) -> Result<ClientTls, TlsError> {
    let provider = limits.provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&limits.versions)?;
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

/// The TLS of outgoing sessions for one relay action: a configuration that verifies the
/// server (`tls`, smarthosts that require it) and one that does not (opportunistic STARTTLS),
/// both with the action's `ca`, `pki`, `protocols` and `ciphers`.
#[derive(Clone, Debug)]
pub struct OutgoingTls {
    /// Verifies the server's chain and name.
    pub verified: ClientTls,
    /// Accepts any certificate (the handshake's signatures are still checked).
    pub opportunistic: ClientTls,
}

impl OutgoingTls {
    /// Verification against `roots` (the Web PKI's when `None`), presenting `identity` when
    /// asked, within `limits`.
    ///
    /// # Errors
    /// The TLS library refuses the combination.
    pub fn new(
        roots: Option<Arc<RootCertStore>>,
        identity: Option<&Pki>,
        limits: &TlsLimits,
    ) -> Result<OutgoingTls, TlsError> {
        let verification = match roots {
            Some(roots) => ServerVerification::Roots(roots),
            None => ServerVerification::WebPki,
        };
        Ok(OutgoingTls {
            verified: client_config_with(verification, identity, limits)?,
            opportunistic: client_config_with(ServerVerification::Opportunistic, identity, limits)?,
        })
    }

    /// The TLS of a relay action's sessions, when the action says anything about it (`ca`,
    /// `pki`, `protocols`, `ciphers`, or a `smtp ciphers` other than the default); `None` leaves
    /// the shell's defaults. The files are read here, so that a missing one stops the daemon at
    /// start (or a reload), naming it.
    ///
    /// # Errors
    /// An unknown pki or ca, a file that cannot be read, a value that is not understood.
    pub fn for_relay(
        config: &petrel_core::config::Config,
        relay: &petrel_core::config::Relay,
    ) -> Result<Option<OutgoingTls>, TlsError> {
        let default_ciphers = petrel_core::config::SmtpOptions::default().ciphers;
        let ciphers = relay
            .ciphers
            .as_deref()
            .or((config.smtp.ciphers != default_ciphers).then_some(config.smtp.ciphers.as_str()));
        if relay.ca.is_none()
            && relay.pki.is_none()
            && relay.protocols.is_none()
            && ciphers.is_none()
        {
            return Ok(None);
        }
        let roots = match &relay.ca {
            Some(name) => {
                let ca = config
                    .ca(&name.to_lowercase())
                    .ok_or_else(|| TlsError::UnknownCa(name.clone()))?;
                Some(Arc::new(super::load_ca(&ca.cert)?))
            }
            None => None,
        };
        let identity = match &relay.pki {
            Some(name) => {
                let pki = config
                    .pki(&name.to_lowercase())
                    .ok_or_else(|| TlsError::UnknownPki(name.clone()))?;
                Some(super::load_pki(&pki.name, &pki.cert, &pki.key)?)
            }
            None => None,
        };
        let limits = TlsLimits::parse(relay.protocols.as_deref(), ciphers)?;
        OutgoingTls::new(roots, identity.as_ref(), &limits).map(Some)
    }

    /// The configuration for a session that verifies the server or not.
    #[must_use]
    pub fn config(&self, verify: bool) -> Arc<rustls::ClientConfig> {
        if verify {
            self.verified.config()
        } else {
            self.opportunistic.config()
        }
    }
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
