//! A static table of DNS records: what `resolver static "FILE"` serves instead of DNS, for
//! tests, the simulator and closed networks. Pure: the shell reads the file, this parses it
//! and answers lookups from memory.
//!
//! # File format
//!
//! One record per line, `NAME TYPE VALUE`; blank lines and `#` comments are ignored; names
//! are case-insensitive and a trailing dot is optional.
//!
//! ```text
//! example.org       MX    10 mx1.example.org
//! example.org       MX    20 mx2.example.org
//! mx1.example.org   A     192.0.2.1
//! mx1.example.org   AAAA  2001:db8::1
//! mx2.example.org   A     127.0.0.1:2526     # a port: see below
//! 192.0.2.1         PTR   mx1.example.org    # PTR records are keyed by address
//! example.org       TXT   "v=spf1 mx -all"
//! nullmx.example    MX    0 .                # RFC 7505 null MX
//! gone.example      NXDOMAIN                 # failure injection: every lookup of the name
//! flaky.example     SERVFAIL
//! ```
//!
//! A name that is not in the table does not exist (NXDOMAIN); a name in the table without
//! records of the type asked has "no data" (so a domain with only A records gets the implicit
//! MX treatment). An A or AAAA value may carry a port (`127.0.0.1:2526`, `[::1]:2526`): MX
//! delivery to that host then connects to that port instead of 25. Real DNS cannot say this;
//! it lets several test servers share the loopback address. A host has one port.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::dns::{DnsError, HostAddresses, MxRecord, normalize_name};

/// The records of one name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Entry {
    mx: Vec<MxRecord>,
    a: Vec<Ipv4Addr>,
    aaaa: Vec<Ipv6Addr>,
    txt: Vec<String>,
    port: Option<u16>,
    /// Every lookup of the name fails this way.
    failure: Option<DnsError>,
}

/// A static table of records. Build it in code or [`parse`](StaticRecords::parse) a file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StaticRecords {
    names: BTreeMap<String, Entry>,
    ptr: BTreeMap<IpAddr, Vec<String>>,
}

/// A line of a records file that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct RecordError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl StaticRecords {
    /// An empty table: every name is NXDOMAIN.
    #[must_use]
    pub fn new() -> StaticRecords {
        StaticRecords::default()
    }

    fn entry(&mut self, name: &str) -> &mut Entry {
        self.names.entry(normalize_name(name)).or_default()
    }

    /// Adds an MX record.
    pub fn add_mx(&mut self, name: &str, preference: u16, exchange: &str) -> &mut Self {
        self.entry(name)
            .mx
            .push(MxRecord::new(preference, exchange.to_owned()));
        self
    }

    /// Adds an A or AAAA record.
    pub fn add_ip(&mut self, name: &str, ip: IpAddr) -> &mut Self {
        let entry = self.entry(name);
        match ip {
            IpAddr::V4(v4) => entry.a.push(v4),
            IpAddr::V6(v6) => entry.aaaa.push(v6),
        }
        self
    }

    /// Adds an address with the port MX delivery uses for this host.
    pub fn add_addr(&mut self, name: &str, addr: SocketAddr) -> &mut Self {
        self.add_ip(name, addr.ip());
        self.entry(name).port = Some(addr.port());
        self
    }

    /// Adds a PTR record.
    pub fn add_ptr(&mut self, ip: IpAddr, name: &str) -> &mut Self {
        self.ptr.entry(ip).or_default().push(name.to_owned());
        self
    }

    /// Adds a TXT record.
    pub fn add_txt(&mut self, name: &str, text: &str) -> &mut Self {
        self.entry(name).txt.push(text.to_owned());
        self
    }

    /// Makes every lookup of `name` fail with `error` (NXDOMAIN, or a temporary failure).
    pub fn fail(&mut self, name: &str, error: DnsError) -> &mut Self {
        self.entry(name).failure = Some(error);
        self
    }

    fn lookup<T: Clone>(
        &self,
        name: &str,
        pick: impl Fn(&Entry) -> &Vec<T>,
    ) -> Result<Vec<T>, DnsError> {
        let entry = self
            .names
            .get(&normalize_name(name))
            .ok_or(DnsError::NxDomain)?;
        if let Some(failure) = &entry.failure {
            return Err(failure.clone());
        }
        let records = pick(entry);
        if records.is_empty() {
            Err(DnsError::NoData)
        } else {
            Ok(records.clone())
        }
    }

    /// The MX records of a name.
    ///
    /// # Errors
    /// NXDOMAIN for an unknown name, no data when it has no MX records, or the injected failure.
    pub fn mx(&self, name: &str) -> Result<Vec<MxRecord>, DnsError> {
        self.lookup(name, |e| &e.mx)
    }

    /// The A records of a name.
    ///
    /// # Errors
    /// As for [`mx`](Self::mx).
    pub fn ipv4(&self, name: &str) -> Result<Vec<Ipv4Addr>, DnsError> {
        self.lookup(name, |e| &e.a)
    }

    /// The AAAA records of a name.
    ///
    /// # Errors
    /// As for [`mx`](Self::mx).
    pub fn ipv6(&self, name: &str) -> Result<Vec<Ipv6Addr>, DnsError> {
        self.lookup(name, |e| &e.aaaa)
    }

    /// The TXT records of a name.
    ///
    /// # Errors
    /// As for [`mx`](Self::mx).
    pub fn txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        self.lookup(name, |e| &e.txt)
    }

    /// The PTR records of an address.
    ///
    /// # Errors
    /// NXDOMAIN when the address has none.
    pub fn ptr(&self, ip: IpAddr) -> Result<Vec<String>, DnsError> {
        self.ptr.get(&ip).cloned().ok_or(DnsError::NxDomain)
    }

    /// The port MX delivery uses for a host, when the table names one.
    #[must_use]
    pub fn port(&self, name: &str) -> Option<u16> {
        self.names.get(&normalize_name(name))?.port
    }

    /// Both address families of a host and its port, as the plan builder wants them.
    #[must_use]
    pub fn host_addresses(&self, name: &str) -> HostAddresses {
        HostAddresses {
            v6: self.ipv6(name),
            v4: self.ipv4(name),
            port: self.port(name),
        }
    }

    /// Parses a records file (see the [module documentation](self)).
    ///
    /// # Errors
    /// Every line that does not parse.
    pub fn parse(text: &str) -> Result<StaticRecords, Vec<RecordError>> {
        let mut table = StaticRecords::new();
        let mut errors = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = strip_comment(raw).trim();
            if line.is_empty() {
                continue;
            }
            if let Err(message) = table.parse_line(line) {
                errors.push(RecordError {
                    line: i + 1,
                    message,
                });
            }
        }
        if errors.is_empty() {
            Ok(table)
        } else {
            Err(errors)
        }
    }

    fn parse_line(&mut self, line: &str) -> Result<(), String> {
        let (name, rest) = split_word(line);
        let (kind, value) = split_word(rest);
        if kind.is_empty() {
            return Err("expected a record type after the name".into());
        }
        match kind.to_ascii_uppercase().as_str() {
            "MX" => {
                let (preference, exchange) = split_word(value);
                let preference = preference
                    .parse()
                    .map_err(|_| format!("invalid MX preference \"{preference}\""))?;
                no_blank("MX", exchange)?;
                self.add_mx(name, preference, exchange);
            }
            "A" | "AAAA" => self.parse_address(name, kind, value)?,
            "PTR" => {
                let ip: IpAddr = name
                    .parse()
                    .map_err(|_| format!("a PTR record is keyed by an address, not \"{name}\""))?;
                no_blank("PTR", value)?;
                self.add_ptr(ip, value);
            }
            "TXT" => {
                let text = value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(value);
                self.add_txt(name, text);
            }
            "NXDOMAIN" | "SERVFAIL" => {
                if !value.is_empty() {
                    return Err(format!("{kind} takes no value"));
                }
                let error = if kind.eq_ignore_ascii_case("NXDOMAIN") {
                    DnsError::NxDomain
                } else {
                    DnsError::Temporary("SERVFAIL (static table)".into())
                };
                self.fail(name, error);
            }
            other => {
                return Err(format!(
                    "unknown record type \"{other}\"; use MX, A, AAAA, PTR, TXT, NXDOMAIN or SERVFAIL"
                ));
            }
        }
        Ok(())
    }

    fn parse_address(&mut self, name: &str, kind: &str, value: &str) -> Result<(), String> {
        let v6 = kind.eq_ignore_ascii_case("AAAA");
        let (ip, port) = match (value.parse::<IpAddr>(), value.parse::<SocketAddr>()) {
            (Ok(ip), _) => (ip, None),
            (_, Ok(addr)) => (addr.ip(), Some(addr.port())),
            _ => return Err(format!("invalid address \"{value}\"")),
        };
        if ip.is_ipv6() != v6 {
            return Err(format!(
                "\"{value}\" is not an {} address",
                if v6 { "IPv6" } else { "IPv4" }
            ));
        }
        self.add_ip(name, ip);
        if let Some(port) = port {
            let entry = self.entry(name);
            if entry.port.is_some_and(|p| p != port) {
                return Err(format!("{name} already has another port"));
            }
            entry.port = Some(port);
        }
        Ok(())
    }
}

/// The first word and the rest, blanks trimmed.
fn split_word(s: &str) -> (&str, &str) {
    match s.split_once(char::is_whitespace) {
        Some((word, rest)) => (word, rest.trim()),
        None => (s, ""),
    }
}

fn strip_comment(line: &str) -> &str {
    // A `#` inside a quoted TXT value is text, not a comment.
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '#' if !quoted => return &line[..i],
            _ => {}
        }
    }
    line
}

fn no_blank(kind: &str, value: &str) -> Result<(), String> {
    if value.is_empty() || value.contains(char::is_whitespace) {
        Err(format!("expected one host name after {kind}"))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
# a sample
example.org       MX    10 mx1.example.org
example.org       MX    20 mx2.example.org.
MX1.example.org   A     192.0.2.1
mx1.example.org   AAAA  2001:db8::1
mx2.example.org   A     127.0.0.1:2526
192.0.2.1         PTR   mx1.example.org
example.org       TXT   \"v=spf1 mx -all # not a comment\"
nullmx.example    MX    0 .
gone.example      NXDOMAIN
flaky.example     SERVFAIL
";

    #[test]
    fn the_sample_file() {
        let t = StaticRecords::parse(SAMPLE).unwrap();
        assert_eq!(
            t.mx("Example.org.").unwrap(),
            [
                MxRecord::new(10, "mx1.example.org"),
                MxRecord::new(20, "mx2.example.org.")
            ]
        );
        assert_eq!(
            t.ipv4("mx1.example.org").unwrap(),
            [Ipv4Addr::new(192, 0, 2, 1)]
        );
        assert_eq!(t.ipv6("mx2.example.org"), Err(DnsError::NoData));
        assert_eq!(t.port("mx2.example.org"), Some(2526));
        assert_eq!(t.port("mx1.example.org"), None);
        assert_eq!(
            t.ptr("192.0.2.1".parse().unwrap()).unwrap(),
            ["mx1.example.org"]
        );
        assert_eq!(
            t.txt("example.org").unwrap(),
            ["v=spf1 mx -all # not a comment"]
        );
        assert_eq!(t.mx("mx1.example.org"), Err(DnsError::NoData));
        assert_eq!(t.mx("nowhere.example"), Err(DnsError::NxDomain));
        assert_eq!(t.ipv4("gone.example"), Err(DnsError::NxDomain));
        assert!(t.mx("flaky.example").unwrap_err().is_temporary());
        assert_eq!(t.mx("nullmx.example").unwrap(), [MxRecord::new(0, ".")]);
    }

    #[test]
    fn errors_name_their_lines() {
        let errors = StaticRecords::parse(
            "a.test MX ten b.test\nb.test A ::1\nc.test CNAME d.test\nd.test\n192.0.2.1 PTR\n",
        )
        .unwrap_err();
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [1, 2, 3, 4, 5]);
        assert_eq!(
            errors[1].to_string(),
            "line 2: \"::1\" is not an IPv4 address"
        );
    }
}
