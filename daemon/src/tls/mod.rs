//! TLS for the daemon: certificates loaded from the files a configuration names, a rustls server
//! configuration per listener (SNI among its pkis, client certificates checked against its
//! `ca`), a client configuration for outgoing sessions, and [`MaybeTls`], a stream that is
//! plain or TLS so that a session can be upgraded in place by STARTTLS.
//!
//! Everything uses rustls with the `ring` provider ([`provider`]), never the process-wide
//! default, so that nothing depends on which provider another crate installed first.
//!
//! # Server side
//! [`load_pki`] reads a certificate chain and its private key (PKCS#8, PKCS#1 RSA or SEC1 EC, in
//! PEM) and checks that they belong together; [`load_ca`] reads a bundle of trust anchors.
//! [`ServerTlsSettings`] and [`server_config`] turn them into a [`rustls::ServerConfig`]:
//!
//! ```no_run
//! # use petrel_daemon::tls::{self, ServerTlsSettings};
//! # fn f() -> Result<(), tls::TlsError> {
//! let pki = tls::load_pki("mx.example.org", "/etc/ssl/mx.pem", "/etc/ssl/private/mx.key")?;
//! let config = tls::server_config(&ServerTlsSettings::new(vec![pki], "mx.example.org"))?;
//! # Ok(()) }
//! ```
//!
//! # Client side
//! [`client_config`] builds the configuration of an outgoing session, with one of three
//! [`ServerVerification`] policies and an optional client certificate; [`MaybeTls::connect`]
//! upgrades a plain stream after the peer said `220` to STARTTLS (or at once for smtps):
//!
//! ```no_run
//! # use petrel_daemon::tls::{self, MaybeTls, ServerVerification};
//! # async fn f(tcp: tokio::net::TcpStream) -> std::io::Result<()> {
//! // An MX without MTA-STS or DANE: encrypt, but accept any certificate (RFC 3207 allows it).
//! let config = tls::client_config(ServerVerification::Opportunistic, None).unwrap();
//! let mut stream = MaybeTls::Plain(tcp);
//! let info = stream.connect(&config, "mx.example.org", tls::HANDSHAKE_TIMEOUT).await?;
//! tracing::info!(tls = %info, "relay session encrypted");
//! # Ok(()) }
//! ```

mod ciphers;
mod client;
mod limits;
mod load;
mod server;
mod stream;

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;

pub use ciphers::{CipherError, cipher_names, parse_ciphers};
pub use client::{ClientTls, OutgoingTls, ServerVerification, client_config, client_config_with};
pub use limits::{TlsLimits, check_config};
pub use load::{Pki, TlsError, load_ca, load_certs, load_pki, load_private_key};
pub use server::{ServerTlsSettings, parse_protocols, server_config};
pub use stream::MaybeTls;

/// How long a TLS handshake may take before the connection is dropped. Long enough for a slow
/// client on a slow link, short enough that half-open handshakes do not pile up.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);

/// The crypto provider every configuration of this crate uses: rustls' `ring` backend.
#[must_use]
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// What was negotiated on a TLS connection, for logs and for the `link-tls` report event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsInfo {
    /// The protocol version as OpenSSL names it (`TLSv1.3`, `TLSv1.2`).
    pub version: String,
    /// The cipher suite as OpenSSL names it (`TLS_AES_256_GCM_SHA384`,
    /// `ECDHE-RSA-AES128-GCM-SHA256`), so that reports read like OpenSMTPD's.
    pub cipher: String,
    /// Strength of the symmetric cipher in bits.
    pub bits: u16,
    /// The host name the client asked for with SNI (server side), or the one we asked for
    /// (client side).
    pub server_name: Option<String>,
    /// The peer presented a certificate that was verified (client certificates on a `verify`
    /// listener; the server's certificate on a verified outgoing session).
    pub peer_verified: bool,
}

impl TlsInfo {
    /// Reads the negotiated parameters of an established connection.
    #[must_use]
    pub fn from_connection(
        conn: &rustls::CommonState,
        server_name: Option<String>,
        peer_verified: bool,
    ) -> TlsInfo {
        let version = match conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_owned(),
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_owned(),
            Some(other) => format!("{other:?}"),
            None => "unknown".to_owned(),
        };
        let (cipher, bits) = conn
            .negotiated_cipher_suite()
            .map_or(("unknown".to_owned(), 0), |s| openssl_name(s.suite()));
        TlsInfo {
            version,
            cipher,
            bits,
            server_name,
            peer_verified,
        }
    }
}

impl fmt::Display for TlsInfo {
    /// The `link-tls` form: `version=TLSv1.3:cipher=TLS_AES_256_GCM_SHA384:bits=256`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "version={}:cipher={}:bits={}",
            self.version, self.cipher, self.bits
        )
    }
}

/// OpenSSL's name and the key size of a suite. Reports and logs of OpenSMTPD show OpenSSL names;
/// using them here keeps log-processing scripts working.
fn openssl_name(suite: rustls::CipherSuite) -> (String, u16) {
    use rustls::CipherSuite as C;
    let (name, bits) = match suite {
        C::TLS13_AES_128_GCM_SHA256 => ("TLS_AES_128_GCM_SHA256", 128),
        C::TLS13_AES_256_GCM_SHA384 => ("TLS_AES_256_GCM_SHA384", 256),
        C::TLS13_CHACHA20_POLY1305_SHA256 => ("TLS_CHACHA20_POLY1305_SHA256", 256),
        C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => ("ECDHE-ECDSA-AES128-GCM-SHA256", 128),
        C::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => ("ECDHE-ECDSA-AES256-GCM-SHA384", 256),
        C::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 => ("ECDHE-ECDSA-CHACHA20-POLY1305", 256),
        C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => ("ECDHE-RSA-AES128-GCM-SHA256", 128),
        C::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => ("ECDHE-RSA-AES256-GCM-SHA384", 256),
        C::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => ("ECDHE-RSA-CHACHA20-POLY1305", 256),
        other => return (format!("{other:?}"), 0),
    };
    (name.to_owned(), bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_suite_of_the_provider_has_an_openssl_name() {
        for suite in &provider().cipher_suites {
            let (name, bits) = openssl_name(suite.suite());
            assert!(bits >= 128, "{name}");
            assert!(!name.contains('_') || name.starts_with("TLS_"), "{name}");
        }
    }
}
