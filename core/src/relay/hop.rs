//! Hops: the hosts a message may be handed to, with how to talk to each, before their
//! addresses are known.

use std::net::IpAddr;

use crate::config::RelayTls;
use crate::session::client::{ClientTls, Protocol};

/// How TLS is used on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TlsMode {
    /// Never (`smtp+notls://`).
    Off,
    /// STARTTLS when the server offers it; plaintext otherwise (plain MX delivery, `smtp://`).
    Opportunistic,
    /// STARTTLS or fail (`smtp+tls://`, or the `tls` option of the relay).
    Required,
    /// TLS from the first byte (`smtps://`).
    Implicit,
}

/// The TLS policy of a hop: when to use TLS and whether to check the server's certificate
/// against the host name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TlsPolicy {
    /// When TLS is used.
    pub mode: TlsMode,
    /// Verify the server's certificate chain and name. Opportunistic TLS never verifies:
    /// a failed check would only push the session back to plaintext.
    pub verify: bool,
}

impl TlsPolicy {
    /// STARTTLS when offered, no verification: plain MX delivery.
    pub const OPPORTUNISTIC: TlsPolicy = TlsPolicy {
        mode: TlsMode::Opportunistic,
        verify: false,
    };

    /// The policy for MX delivery under the relay's `tls [no-verify]` option: without it,
    /// opportunistic; with it, STARTTLS required and the certificate verified unless
    /// `no-verify`.
    #[must_use]
    pub fn for_mx(option: Option<RelayTls>) -> TlsPolicy {
        match option {
            None => TlsPolicy::OPPORTUNISTIC,
            Some(tls) => TlsPolicy {
                mode: TlsMode::Required,
                verify: tls.verify,
            },
        }
    }

    /// The STARTTLS policy for the session machine. Implicit TLS is already established when
    /// the machine starts, and the machine must not fall back from it.
    #[must_use]
    pub fn client_tls(self) -> ClientTls {
        match self.mode {
            TlsMode::Off => ClientTls::Off,
            TlsMode::Opportunistic => ClientTls::Opportunistic,
            TlsMode::Required | TlsMode::Implicit => ClientTls::Required,
        }
    }

    /// True when the session cannot go on without TLS.
    #[must_use]
    pub fn requires_tls(self) -> bool {
        matches!(self.mode, TlsMode::Required | TlsMode::Implicit)
    }
}

/// Why a hop is in the plan.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HopKind {
    /// A mail exchanger of the destination domain.
    Mx {
        /// Its preference (0 for the implicit MX).
        preference: u16,
        /// The domain itself, used because it has no MX records (RFC 5321 section 5.1).
        implicit: bool,
    },
    /// A smarthost from `relay host URL`; the index in the chain of URLs.
    Smarthost(usize),
    /// An address literal destination (`user@[192.0.2.1]`).
    Literal,
}

/// A host to hand the message to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hop {
    /// The host name (normalised: lowercase, no trailing dot), or the address as text.
    pub name: String,
    /// Why it is in the plan.
    pub kind: HopKind,
    /// Its address when known without a lookup (`[ip]` literals).
    pub address: Option<IpAddr>,
    /// The port (25 for MX delivery; a smarthost URL's port).
    pub port: u16,
    /// TLS policy.
    pub tls: TlsPolicy,
    /// SMTP or LMTP.
    pub protocol: Protocol,
    /// The label selecting credentials in the relay's `auth` table (from `label@host`).
    pub auth_label: Option<String>,
}

impl Hop {
    /// The MX preference, for MX hops.
    #[must_use]
    pub fn preference(&self) -> Option<u16> {
        match self.kind {
            HopKind::Mx { preference, .. } => Some(preference),
            _ => None,
        }
    }

    /// True when this hop needs an address lookup.
    #[must_use]
    pub fn needs_lookup(&self) -> bool {
        self.address.is_none()
    }

    /// The URL scheme that describes this hop in logs, as OpenSMTPD writes relays.
    #[must_use]
    pub fn scheme(&self) -> &'static str {
        match (self.protocol, self.tls.mode) {
            (Protocol::Lmtp, _) => "lmtp",
            (_, TlsMode::Off) => "smtp+notls",
            (_, TlsMode::Opportunistic) => "smtp",
            (_, TlsMode::Required) => "smtp+tls",
            (_, TlsMode::Implicit) => "smtps",
        }
    }
}
