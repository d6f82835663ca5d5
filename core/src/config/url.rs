//! Relay URLs: `[proto://[label@]]host[:port]` as written after `relay host`.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use super::suggest::closest;

/// How a relay connection is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RelayScheme {
    /// `smtp://`: STARTTLS when offered (the default).
    Smtp,
    /// `smtp+tls://`: STARTTLS required.
    SmtpTls,
    /// `smtp+notls://`: never TLS.
    SmtpNoTls,
    /// `smtps://`: TLS from the first byte.
    Smtps,
    /// `lmtp://`: LMTP; a port is required.
    Lmtp,
}

impl RelayScheme {
    const ALL: [RelayScheme; 5] = [
        RelayScheme::Smtp,
        RelayScheme::SmtpTls,
        RelayScheme::SmtpNoTls,
        RelayScheme::Smtps,
        RelayScheme::Lmtp,
    ];

    /// The scheme as written in a URL.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            RelayScheme::Smtp => "smtp",
            RelayScheme::SmtpTls => "smtp+tls",
            RelayScheme::SmtpNoTls => "smtp+notls",
            RelayScheme::Smtps => "smtps",
            RelayScheme::Lmtp => "lmtp",
        }
    }

    /// The port used when the URL names none; LMTP has none.
    #[must_use]
    pub fn default_port(self) -> Option<u16> {
        match self {
            RelayScheme::Smtp | RelayScheme::SmtpTls | RelayScheme::SmtpNoTls => Some(25),
            RelayScheme::Smtps => Some(465),
            RelayScheme::Lmtp => None,
        }
    }
}

/// The host part of a relay URL.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RelayHost {
    /// A host name, resolved when connecting.
    Name(String),
    /// An address, written `[192.0.2.1]`, `[2001:db8::1]` or a bare IPv4 address.
    Address(IpAddr),
}

/// A parsed relay URL, with the port made explicit.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RelayUrl {
    /// Connection scheme.
    pub scheme: RelayScheme,
    /// The label selecting the credentials in the `auth` table.
    pub label: Option<String>,
    /// Where to connect.
    pub host: RelayHost,
    /// The port, the scheme's default when the URL names none.
    pub port: u16,
}

impl FromStr for RelayUrl {
    type Err = String;

    fn from_str(url: &str) -> Result<RelayUrl, String> {
        let (scheme, rest) = match url.split_once("://") {
            Some((name, rest)) => {
                let scheme = RelayScheme::ALL
                    .into_iter()
                    .find(|s| s.as_str() == name)
                    .ok_or_else(|| {
                        let names = RelayScheme::ALL.map(RelayScheme::as_str);
                        match closest(name, names) {
                            Some(s) => format!("unknown scheme \"{name}\", did you mean \"{s}\"?"),
                            None => format!("unknown scheme \"{name}\"; use {}", names.join(", ")),
                        }
                    })?;
                (scheme, rest)
            }
            None => (RelayScheme::Smtp, url),
        };
        let (label, hostport) = match rest.split_once('@') {
            Some((label, hostport)) if !label.is_empty() => (Some(label.to_owned()), hostport),
            Some(_) => return Err("empty label before `@`".into()),
            None => (None, rest),
        };
        let (host, port) = split_host_port(hostport)?;
        let port = match (port, scheme.default_port()) {
            (Some(port), _) => port,
            (None, Some(port)) => port,
            (None, None) => return Err(format!("{}:// needs a port", scheme.as_str())),
        };
        Ok(RelayUrl {
            scheme,
            label,
            host,
            port,
        })
    }
}

fn split_host_port(hostport: &str) -> Result<(RelayHost, Option<u16>), String> {
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let (inside, after) = rest
            .split_once(']')
            .ok_or("missing `]` after the address")?;
        let address = inside
            .parse::<IpAddr>()
            .map_err(|_| format!("\"{inside}\" is not an IP address"))?;
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or("expected `:port` after `]`")?,
            ),
        };
        (RelayHost::Address(address), port)
    } else {
        let (host, port) = match hostport.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        };
        if let Ok(address) = host.parse::<IpAddr>() {
            (RelayHost::Address(address), port)
        } else {
            valid_host_name(host)?;
            (RelayHost::Name(host.to_owned()), port)
        }
    };
    let port = port
        .map(|p| match p.parse::<u16>() {
            Ok(0) | Err(_) => Err(format!("invalid port \"{p}\"")),
            Ok(p) => Ok(p),
        })
        .transpose()?;
    Ok((host, port))
}

fn valid_host_name(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("missing host".into());
    }
    let ok = host.split('.').all(|label| {
        !label.is_empty()
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    });
    if ok {
        Ok(())
    } else {
        Err(format!("\"{host}\" is not a host name"))
    }
}

impl fmt::Display for RelayUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.scheme.as_str())?;
        if let Some(label) = &self.label {
            write!(f, "{label}@")?;
        }
        match &self.host {
            RelayHost::Name(name) => write!(f, "{name}")?,
            RelayHost::Address(address) => write!(f, "[{address}]")?,
        }
        write!(f, ":{}", self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> RelayUrl {
        s.parse().unwrap()
    }

    #[test]
    fn schemes_labels_and_default_ports() {
        let u = url("smtp+tls://isp@smtp.isp.example:587");
        assert_eq!(u.scheme, RelayScheme::SmtpTls);
        assert_eq!(u.label.as_deref(), Some("isp"));
        assert_eq!(u.host, RelayHost::Name("smtp.isp.example".into()));
        assert_eq!(u.port, 587);
        assert_eq!(url("mail.example.org").port, 25);
        assert_eq!(url("mail.example.org").scheme, RelayScheme::Smtp);
        assert_eq!(url("smtps://mail.example.org").port, 465);
        assert_eq!(
            url("smtp+notls://mail.example.org").scheme,
            RelayScheme::SmtpNoTls
        );
        assert_eq!(url("lmtp://127.0.0.1:24").port, 24);
    }

    #[test]
    fn addresses() {
        assert_eq!(
            url("[192.0.2.1]:2525").host,
            RelayHost::Address("192.0.2.1".parse().unwrap())
        );
        assert_eq!(
            url("192.0.2.1").host,
            RelayHost::Address("192.0.2.1".parse().unwrap())
        );
        assert_eq!(
            url("smtp://[2001:db8::1]:25").host,
            RelayHost::Address("2001:db8::1".parse().unwrap())
        );
    }

    #[test]
    fn errors() {
        assert_eq!(
            "smtp+tsl://x".parse::<RelayUrl>().unwrap_err(),
            "unknown scheme \"smtp+tsl\", did you mean \"smtp+tls\"?"
        );
        assert!(
            "lmtp://host"
                .parse::<RelayUrl>()
                .unwrap_err()
                .contains("needs a port")
        );
        assert!("smtp://host:0".parse::<RelayUrl>().is_err());
        assert!("smtp://host:99999".parse::<RelayUrl>().is_err());
        assert!("smtp://[nope]".parse::<RelayUrl>().is_err());
        assert!("smtp://[::1".parse::<RelayUrl>().is_err());
        assert!("smtp://@host".parse::<RelayUrl>().is_err());
        assert!("smtp://".parse::<RelayUrl>().is_err());
        assert!("smtp://bad..host".parse::<RelayUrl>().is_err());
        assert!("smtp://host/path".parse::<RelayUrl>().is_err());
    }

    #[test]
    fn display_is_explicit_and_reparses() {
        for s in [
            "isp@smtp.example:587",
            "[::1]",
            "smtps://192.0.2.7",
            "lmtp://mda:24",
        ] {
            let u = url(s);
            assert_eq!(url(&u.to_string()), u);
        }
        assert_eq!(
            url("mail.example.org").to_string(),
            "smtp://mail.example.org:25"
        );
        assert_eq!(
            url("[2001:db8::1]:26").to_string(),
            "smtp://[2001:db8::1]:26"
        );
    }
}
