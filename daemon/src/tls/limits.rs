//! `protocols` and `ciphers` together: the protocol versions and cipher suites a listener or a
//! relay action allows, checked against each other when the configuration is read.

use std::sync::Arc;

use petrel_core::config::{Config, Delivery};
use rustls::crypto::CryptoProvider;
use rustls::version::{TLS12, TLS13};
use rustls::{SupportedCipherSuite, SupportedProtocolVersion};

use super::TlsError;
use super::ciphers::{check_versions, parse_ciphers, provider_with};
use super::server::parse_protocols;

/// The versions and suites one listener or relay allows.
#[derive(Clone, Debug)]
pub struct TlsLimits {
    /// The protocol versions, TLS 1.3 and 1.2 by default.
    pub versions: Vec<&'static SupportedProtocolVersion>,
    /// The cipher suites in order of preference; every suite of the library when `None`.
    pub ciphers: Option<Vec<SupportedCipherSuite>>,
}

impl Default for TlsLimits {
    fn default() -> Self {
        TlsLimits {
            versions: vec![&TLS13, &TLS12],
            ciphers: None,
        }
    }
}

impl TlsLimits {
    /// Reads a `protocols` value (libtls syntax) and a `ciphers` value (OpenSSL syntax).
    ///
    /// # Errors
    /// Either value is not understood, or they leave no version with a suite.
    pub fn parse(protocols: Option<&str>, ciphers: Option<&str>) -> Result<TlsLimits, TlsError> {
        let mut limits = TlsLimits::default();
        if let Some(p) = protocols {
            limits.versions = parse_protocols(p)?;
        }
        if let Some(c) = ciphers {
            let error = |reason: String| TlsError::Ciphers {
                value: c.to_owned(),
                reason,
            };
            let suites = parse_ciphers(c).map_err(|e| error(e.to_string()))?;
            check_versions(&limits.versions, &suites).map_err(error)?;
            limits.ciphers = Some(suites);
        }
        Ok(limits)
    }

    /// The crypto provider offering these suites.
    #[must_use]
    pub fn provider(&self) -> Arc<CryptoProvider> {
        provider_with(self.ciphers.as_deref())
    }
}

/// Checks every `protocols` and `ciphers` of a configuration (listeners, relay actions and
/// `smtp ciphers`) without reading any certificate, for `petreld -n` and reloads: the first
/// problem as `file:line:col: what is wrong`.
///
/// # Errors
/// A value that is not understood, or that leaves no usable suite.
pub fn check_config(config: &Config) -> Result<(), String> {
    let global = config.smtp.ciphers.as_str();
    TlsLimits::parse(None, Some(global)).map_err(|e| format!("smtp ciphers: {e}"))?;
    for l in &config.listeners {
        let ciphers = l.ciphers.as_deref().unwrap_or(global);
        TlsLimits::parse(l.protocols.as_deref(), Some(ciphers))
            .map_err(|e| format!("{}: {e}", config.location(l.span)))?;
    }
    for action in &config.actions {
        if let Delivery::Relay(relay) = &action.delivery {
            let ciphers = relay.ciphers.as_deref().unwrap_or(global);
            TlsLimits::parse(relay.protocols.as_deref(), Some(ciphers))
                .map_err(|e| format!("{}: {e}", config.location(action.span)))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_suites_must_meet() {
        let l = TlsLimits::parse(Some("tlsv1.2"), Some("ECDHE+CHACHA20")).unwrap();
        assert_eq!(l.versions, vec![&TLS12]);
        let names: Vec<_> = l
            .provider()
            .cipher_suites
            .iter()
            .map(|s| s.suite())
            .collect();
        assert_eq!(
            names,
            [
                rustls::CipherSuite::TLS13_AES_256_GCM_SHA384,
                rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
                rustls::CipherSuite::TLS13_AES_128_GCM_SHA256,
                rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
                rustls::CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
            ]
        );
        let e = TlsLimits::parse(Some("tlsv1.2"), Some("TLSv1.3")).unwrap_err();
        assert!(e.to_string().contains("no suite for TLSv1_2"), "{e}");
        let e = TlsLimits::parse(None, Some("HIGH:NOPE")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "ciphers \"HIGH:NOPE\": unknown cipher or alias \"NOPE\""
        );
        assert!(TlsLimits::parse(None, None).unwrap().ciphers.is_none());
    }

    #[test]
    fn a_configuration_is_checked_with_locations() {
        let parse = |text: &str| {
            petrel_core::config::parse("smtpd.conf", text, &Default::default()).unwrap()
        };
        assert_eq!(check_config(&parse("listen on lo\n")), Ok(()));
        let bad_listener = parse("listen on lo\nlisten on lo port 587 ciphers \"HIGH:BOGUS\"\n");
        assert_eq!(
            check_config(&bad_listener).unwrap_err(),
            "smtpd.conf:2:1: ciphers \"HIGH:BOGUS\": unknown cipher or alias \"BOGUS\""
        );
        let bad_relay = parse(
            "action out relay protocols \"tlsv1.2\" ciphers \"TLSv1.3\"\n\
             match from any for any action out\n",
        );
        let e = check_config(&bad_relay).unwrap_err();
        assert!(e.starts_with("smtpd.conf:1:1: ciphers \"TLSv1.3\""), "{e}");
        let bad_global = parse("smtp ciphers \"RC4\"\n");
        assert!(
            check_config(&bad_global)
                .unwrap_err()
                .starts_with("smtp ciphers: ciphers \"RC4\": selects no cipher suite"),
        );
    }
}
