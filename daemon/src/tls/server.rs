//! The server side: a rustls configuration per listener.

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::SupportedProtocolVersion;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::version::{TLS12, TLS13};

use super::{Pki, TlsError, TlsLimits};

/// What a listener's TLS needs.
#[derive(Clone, Debug)]
pub struct ServerTlsSettings {
    /// The listener's certificates; the client's SNI chooses among them.
    pub pkis: Vec<Pki>,
    /// The listener's host name: the pki of that name serves clients that send no SNI (or an
    /// unknown name), before the `*` pki and then the first one.
    pub hostname: String,
    /// When set, clients must present a certificate issued by one of these anchors (`verify`).
    pub client_ca: Option<Arc<RootCertStore>>,
    /// The protocol versions and cipher suites offered (`protocols`, `ciphers`).
    pub limits: TlsLimits,
}

impl ServerTlsSettings {
    /// Settings with these pkis, no client certificates and the default protocol versions.
    #[must_use]
    pub fn new(pkis: Vec<Pki>, hostname: &str) -> ServerTlsSettings {
        ServerTlsSettings {
            pkis,
            hostname: hostname.to_lowercase(),
            client_ca: None,
            limits: TlsLimits::default(),
        }
    }
}

/// Builds a listener's rustls configuration.
pub fn server_config(settings: &ServerTlsSettings) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let resolver = SniResolver::new(&settings.pkis, &settings.hostname)
        .ok_or_else(|| TlsError::NoPki(settings.hostname.clone()))?;
    let provider = settings.limits.provider();
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&settings.limits.versions)?;
    let builder = match &settings.client_ca {
        Some(roots) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider)
                .build()
                .map_err(|e| TlsError::Config(rustls::Error::General(e.to_string())))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(Arc::new(resolver));
    // SMTP has no use for 0-RTT: early data could replay commands.
    config.max_early_data_size = 0;
    Ok(Arc::new(config))
}

/// Picks a listener's certificate from the name the client asked for (SNI).
#[derive(Debug)]
struct SniResolver {
    /// Pki names (lowercase; `*.example.org` covers one label) and their keys.
    pkis: Vec<(String, Arc<CertifiedKey>)>,
    /// For clients without SNI or with a name no pki has.
    default: Arc<CertifiedKey>,
}

impl SniResolver {
    fn new(pkis: &[Pki], hostname: &str) -> Option<SniResolver> {
        let by_name = |name: &str| pkis.iter().find(|p| p.name == name);
        let default = by_name(hostname)
            .or_else(|| by_name("*"))
            .or_else(|| pkis.first())?;
        Some(SniResolver {
            pkis: pkis
                .iter()
                .map(|p| (p.name.clone(), p.certified.clone()))
                .collect(),
            default: default.certified.clone(),
        })
    }

    fn select(&self, sni: Option<&str>) -> &Arc<CertifiedKey> {
        let Some(sni) = sni.map(|s| s.trim_end_matches('.').to_ascii_lowercase()) else {
            return &self.default;
        };
        if let Some((_, key)) = self.pkis.iter().find(|(name, _)| *name == sni) {
            return key;
        }
        let parent = sni.split_once('.').map(|(_, rest)| rest);
        let wildcard = self.pkis.iter().find(|(name, _)| {
            name.strip_prefix("*.")
                .is_some_and(|suffix| Some(suffix) == parent)
        });
        wildcard.map_or(&self.default, |(_, key)| key)
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.select(hello.server_name()).clone())
    }
}

/// Parses a `protocols` value in libtls syntax (`tlsv1.2,tlsv1.3`, `secure`, `all`, `!tlsv1.2`;
/// `,` or `:` between items). Versions before TLS 1.2 are accepted in the syntax but never
/// offered: the TLS library does not implement them.
pub fn parse_protocols(value: &str) -> Result<Vec<&'static SupportedProtocolVersion>, TlsError> {
    let err = |reason: String| TlsError::Protocols {
        value: value.to_owned(),
        reason,
    };
    // Bits: 1.0, 1.1, 1.2, 1.3.
    let mut set = 0u8;
    for item in value
        .split([',', ':'])
        .map(str::trim)
        .filter(|i| !i.is_empty())
    {
        let (negate, name) = match item.strip_prefix(['!', '-']) {
            Some(rest) => (true, rest),
            None => (false, item),
        };
        let bits = match name.to_ascii_lowercase().as_str() {
            "tlsv1.0" => 0b0001,
            "tlsv1.1" => 0b0010,
            "tlsv1.2" => 0b0100,
            "tlsv1.3" => 0b1000,
            "tlsv1" => 0b0011,
            "all" | "legacy" => 0b1111,
            "secure" | "default" => 0b1100,
            other => return Err(err(format!("unknown protocol \"{other}\""))),
        };
        if negate {
            set &= !bits;
        } else {
            set |= bits;
        }
    }
    let mut versions = Vec::new();
    if set & 0b1000 != 0 {
        versions.push(&TLS13);
    }
    if set & 0b0100 != 0 {
        versions.push(&TLS12);
    }
    if versions.is_empty() {
        return Err(err(
            "no version left that Petrel implements (TLSv1.2, TLSv1.3)".to_owned(),
        ));
    }
    Ok(versions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_in_libtls_syntax() {
        assert_eq!(parse_protocols("secure").unwrap(), vec![&TLS13, &TLS12]);
        assert_eq!(parse_protocols("tlsv1.3").unwrap(), vec![&TLS13]);
        assert_eq!(parse_protocols("all:!tlsv1.3").unwrap(), vec![&TLS12]);
        assert_eq!(parse_protocols("tlsv1.1,tlsv1.2").unwrap(), vec![&TLS12]);
        assert!(parse_protocols("tlsv1.0").is_err());
        assert!(parse_protocols("sslv3").is_err());
        assert!(parse_protocols("").is_err());
    }
}
