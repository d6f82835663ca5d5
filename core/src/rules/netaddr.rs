//! Network addresses and CIDR blocks, as `netaddr` tables and `from src` hold them.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use thiserror::Error;

/// An address block: an address and a prefix length (`198.51.100.0/24`, `2001:db8::/32`). A
/// single address is a block of its full length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

/// Why a network address could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("invalid network address {0:?}")]
pub struct CidrError(pub String);

impl Cidr {
    /// The block `addr/prefix`; the prefix is clamped to the address length.
    #[must_use]
    pub fn new(addr: IpAddr, prefix: u8) -> Cidr {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        Cidr {
            addr,
            prefix: prefix.min(max),
        }
    }

    /// The address the block was written with.
    #[must_use]
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    #[must_use]
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// True when `ip` lies in the block. An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`)
    /// matches the IPv4 block it maps to, since dual-stack sockets report IPv4 clients so.
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }

    /// The network of `ip` masked to `prefix` bits (greylisting keys clients by /24 and /64).
    #[must_use]
    pub fn network_of(ip: IpAddr, v4_prefix: u8, v6_prefix: u8) -> Cidr {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match ip {
            IpAddr::V4(a) => {
                let prefix = v4_prefix.min(32);
                let mask = if prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(prefix))
                };
                Cidr::new(IpAddr::V4((u32::from(a) & mask).into()), prefix)
            }
            IpAddr::V6(a) => {
                let prefix = v6_prefix.min(128);
                let mask = if prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(prefix))
                };
                Cidr::new(IpAddr::V6((u128::from(a) & mask).into()), prefix)
            }
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let full = usize::from(prefix / 8);
    if a[..full] != b[..full] {
        return false;
    }
    let rest = prefix % 8;
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    (a[full] & mask) == (b[full] & mask)
}

impl FromStr for Cidr {
    type Err = CidrError;

    /// Parses `ADDR` or `ADDR/PREFIX`; an `ipv6:` prefix and `[…]` brackets are accepted.
    fn from_str(s: &str) -> Result<Cidr, CidrError> {
        let err = || CidrError(s.to_owned());
        let text = match s.get(..5) {
            Some(p) if p.eq_ignore_ascii_case("ipv6:") => &s[5..],
            _ => s,
        };
        // `[2001:db8::/32]`: the whole block in brackets, as well as `[2001:db8::]/32`.
        let text = text
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .filter(|t| t.contains('/'))
            .unwrap_or(text);
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| err())?)),
            None => (text, None),
        };
        let addr = addr
            .strip_prefix('[')
            .and_then(|a| a.strip_suffix(']'))
            .unwrap_or(addr);
        let addr: IpAddr = addr.parse().map_err(|_| err())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(err());
        }
        Ok(Cidr::new(addr, prefix))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn contains() {
        let net: Cidr = "198.51.100.0/24".parse().unwrap();
        assert!(net.contains(ip("198.51.100.77")));
        assert!(!net.contains(ip("198.51.101.1")));
        assert!(net.contains(ip("::ffff:198.51.100.1")));
        let one: Cidr = "192.0.2.1".parse().unwrap();
        assert!(one.contains(ip("192.0.2.1")) && !one.contains(ip("192.0.2.2")));
        let v6: Cidr = "ipv6:2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:1::5")));
        assert!(!v6.contains(ip("2001:db9::1")));
        let odd: Cidr = "10.0.0.0/9".parse().unwrap();
        assert!(odd.contains(ip("10.127.0.1")) && !odd.contains(ip("10.128.0.1")));
        assert!(
            "0.0.0.0/0"
                .parse::<Cidr>()
                .unwrap()
                .contains(ip("203.0.113.9"))
        );
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        let bracketed: Cidr = "[2001:db8::/32]".parse().unwrap();
        assert!(bracketed.contains(ip("2001:db8::7")));
        assert_eq!("[::1]".parse::<Cidr>().unwrap().addr(), ip("::1"));
        assert_eq!("IPV6:[::1]/128".parse::<Cidr>().unwrap().prefix(), 128);
        assert!("example.org".parse::<Cidr>().is_err());
    }

    #[test]
    fn networks() {
        assert_eq!(
            Cidr::network_of(ip("192.0.2.77"), 24, 64).to_string(),
            "192.0.2.0/24"
        );
        assert_eq!(
            Cidr::network_of(ip("2001:db8:1:2:3::4"), 24, 64).to_string(),
            "2001:db8:1:2::/64"
        );
    }
}
