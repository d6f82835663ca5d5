//! Smarthosts: `relay host URL` (and a chain of backup URLs tried in order), no MX lookup.

use super::hop::{Hop, HopKind, TlsMode, TlsPolicy};
use crate::config::{RelayHost, RelayScheme, RelayTls, RelayUrl};
use crate::session::client::Protocol;

/// The TLS policy of a smarthost URL under the relay's `tls [no-verify]` option.
///
/// The scheme decides the mode (`smtp://` opportunistic, `smtp+tls://` required,
/// `smtp+notls://` off, `smtps://` implicit, `lmtp://` opportunistic); the `tls` option makes
/// TLS required whatever the scheme says, as smtpd.conf(5) has it. Certificates are verified
/// whenever TLS is mandatory, unless `tls no-verify`: a smarthost is a host we chose, so a
/// mandatory TLS session to it is only worth having if it is the right host. (OpenSMTPD
/// verifies only with `tls`; Petrel is stricter by default, and `tls no-verify` restores the
/// lenient behaviour.)
#[must_use]
pub fn smarthost_tls(scheme: RelayScheme, option: Option<RelayTls>) -> TlsPolicy {
    let mode = match (scheme, option) {
        (RelayScheme::Smtps, _) => TlsMode::Implicit,
        (_, Some(_)) | (RelayScheme::SmtpTls, None) => TlsMode::Required,
        (RelayScheme::SmtpNoTls, None) => TlsMode::Off,
        (RelayScheme::Smtp | RelayScheme::Lmtp, None) => TlsMode::Opportunistic,
    };
    let verify = match mode {
        TlsMode::Required | TlsMode::Implicit => option.is_none_or(|t| t.verify),
        TlsMode::Off | TlsMode::Opportunistic => false,
    };
    TlsPolicy { mode, verify }
}

/// The hops of a smarthost chain: each URL in order (the first is the primary, the others
/// its backups), each with its scheme's port, TLS policy and protocol, and its label for the
/// credentials table. `[ip]` literals need no lookup.
#[must_use]
pub fn smarthost_hops(urls: &[RelayUrl], tls: Option<RelayTls>) -> Vec<Hop> {
    urls.iter()
        .enumerate()
        .map(|(i, url)| {
            let (name, address) = match &url.host {
                RelayHost::Name(name) => (super::dns::normalize_name(name), None),
                RelayHost::Address(ip) => (ip.to_string(), Some(*ip)),
            };
            Hop {
                name,
                kind: HopKind::Smarthost(i),
                address,
                port: url.port,
                tls: smarthost_tls(url.scheme, tls),
                protocol: if url.scheme == RelayScheme::Lmtp {
                    Protocol::Lmtp
                } else {
                    Protocol::Smtp
                },
                auth_label: url.label.clone(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(url: &str, tls: Option<RelayTls>) -> Hop {
        smarthost_hops(&[url.parse().unwrap()], tls).remove(0)
    }

    #[test]
    fn schemes_give_ports_and_policies() {
        let h = hop("smtp+tls://isp@Smtp.ISP.example:587", None);
        assert_eq!(h.name, "smtp.isp.example");
        assert_eq!(h.port, 587);
        assert_eq!(h.auth_label.as_deref(), Some("isp"));
        assert_eq!(h.tls.mode, TlsMode::Required);
        assert!(h.tls.verify);
        assert!(h.needs_lookup());

        let h = hop("smtps://[192.0.2.7]", None);
        assert_eq!((h.port, h.tls.mode), (465, TlsMode::Implicit));
        assert_eq!(h.address, Some("192.0.2.7".parse().unwrap()));
        assert!(!h.needs_lookup());

        let h = hop("mail.example.org", None);
        assert_eq!((h.port, h.tls), (25, TlsPolicy::OPPORTUNISTIC));
        assert_eq!(hop("smtp+notls://m.test", None).tls.mode, TlsMode::Off);
        let h = hop("lmtp://[::1]:24", None);
        assert_eq!((h.protocol, h.port), (Protocol::Lmtp, 24));
    }

    #[test]
    fn the_tls_option_makes_tls_mandatory() {
        let no_verify = Some(RelayTls { verify: false });
        let verify = Some(RelayTls { verify: true });
        let h = hop("m.test", no_verify);
        assert_eq!((h.tls.mode, h.tls.verify), (TlsMode::Required, false));
        let h = hop("smtp+notls://m.test", verify);
        assert_eq!((h.tls.mode, h.tls.verify), (TlsMode::Required, true));
        let h = hop("smtps://m.test", no_verify);
        assert_eq!((h.tls.mode, h.tls.verify), (TlsMode::Implicit, false));
    }

    #[test]
    fn a_chain_keeps_its_order() {
        let urls: Vec<RelayUrl> = ["a.test", "smtps://b.test", "[192.0.2.1]:2525"]
            .iter()
            .map(|u| u.parse().unwrap())
            .collect();
        let hops = smarthost_hops(&urls, None);
        let kinds: Vec<_> = hops.iter().map(|h| h.kind.clone()).collect();
        assert_eq!(
            kinds,
            [
                HopKind::Smarthost(0),
                HopKind::Smarthost(1),
                HopKind::Smarthost(2)
            ]
        );
        assert_eq!(hops[2].port, 2525);
    }
}
