//! Targets for the filter protocol's wire codec: lines filters send, and lines sent to them.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use arbitrary::Unstructured;

use super::{blob, byte, push_blob};
use crate::Time;
use crate::filter::report::{
    AuthResult, Endpoint, Fcrdns, IdentifyMethod, ReportEvent, ReporterKind, TxResult,
};
use crate::filter::wire::{
    DaemonLine, FilterLine, filter_request, parse_daemon_line, parse_filter_line, reply_of,
    report_line,
};
use crate::filter::{EventName, Phase, Response, Subsystem, Version, timestamp};

/// Fuzz target body; also replayed by the corpus test.
///
/// The input (invalid UTF-8 replaced) is split into lines at LF, as a filter's output is read.
/// Properties: [`parse_filter_line`] and [`reply_of`] never panic; a line that parses formats
/// with [`FilterLine::to_line`] into one line that parses back to the same value; a reply
/// [`reply_of`] accepts is a 4xx or 5xx and is the whole parameter.
pub fn filter_line(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for line in text.split('\n') {
        check_reply(line);
        let Ok(parsed) = parse_filter_line(line) else {
            continue;
        };
        if let FilterLine::Result {
            response: Response::Reject(reply) | Response::Disconnect(reply),
            ..
        } = &parsed
        {
            check_reply(reply);
        }
        let out = parsed.to_line();
        assert!(!out.contains('\n'), "{line:?} formats to several lines");
        // As documented on `to_line`: a reader takes a final CR for part of a CRLF ending, so
        // a last field ending in CR is written with a CRLF ending to survive.
        let reread = if out.ends_with('\r') {
            format!("{out}\r\n")
        } else {
            out.clone()
        };
        match parse_filter_line(&reread) {
            Ok(again) => assert_eq!(
                again, parsed,
                "{line:?} parsed as {parsed:?}, formatted as {out:?}, re-parsed differently"
            ),
            Err(e) => panic!("{line:?} parsed as {parsed:?}, formatted as {out:?}: {e}"),
        }
    }
}

fn check_reply(param: &str) {
    if let Some((code, text)) = reply_of(param) {
        assert!((400..600).contains(&code), "{param:?} gave code {code}");
        assert_eq!(text, param);
        assert!(text.starts_with(&code.to_string()));
    }
}

/// One input of the [`filter_report`] target: a report event or a filter request, with the
/// values the line is formatted from.
///
/// Byte layout ([`decode`](Self::decode); [`encode`](Self::encode) writes it): a version byte
/// (modulo 3: 0.5, 0.6, 0.7), a kind byte (modulo 20: an index into [`EventName::ALL`], or 19
/// for a filter request), the time in milliseconds (8 bytes, little-endian), the session
/// (8 bytes), then for a request its phase byte (modulo 15, into [`Phase::ALL`]), token
/// (8 bytes) and parameter (a blob: a length byte and that many bytes, invalid UTF-8
/// replaced); for an event a subsystem byte (bit 0: smtp-out) and the event's fields in order:
/// text as a blob, message ids as 4 bytes, envelope ids and sizes as 8, small enumerations as
/// one byte (modulo their size, in declaration order), an endpoint as a kind byte (modulo 3:
/// IPv4 with 4 address and 2 port bytes, IPv6 with 16 and 2, a unix path as a blob), and a
/// `filter-response` as its phase byte, a response byte (modulo 6, the order of
/// [`Response::name`]'s variants), then a byte whose bit 0 says a parameter blob follows.
/// Past the end of the input, everything reads as zeros.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReportInput {
    /// A report event.
    Event {
        /// The protocol version.
        version: Version,
        /// When.
        now: Time,
        /// The session.
        session: u64,
        /// Whose session.
        subsystem: Subsystem,
        /// The event.
        event: ReportEvent,
    },
    /// A filter request.
    Request {
        /// The protocol version.
        version: Version,
        /// When.
        now: Time,
        /// The session.
        session: u64,
        /// The phase.
        phase: Phase,
        /// The token.
        token: u64,
        /// The parameter.
        param: String,
    },
}

const RESPONSES: [&str; 6] = [
    "proceed",
    "junk",
    "reject",
    "disconnect",
    "rewrite",
    "report",
];
const FCRDNS: [Fcrdns; 3] = [Fcrdns::Pass, Fcrdns::Fail, Fcrdns::Error];
const METHODS: [IdentifyMethod; 3] = [
    IdentifyMethod::Helo,
    IdentifyMethod::Ehlo,
    IdentifyMethod::Lhlo,
];
const AUTH: [AuthResult; 3] = [AuthResult::Pass, AuthResult::Fail, AuthResult::Error];
const TX: [TxResult; 3] = [TxResult::Ok, TxResult::PermFail, TxResult::TempFail];
const KINDS: [ReporterKind; 2] = [ReporterKind::Builtin, ReporterKind::Proc];
/// The kind byte of a filter request.
const REQUEST: u8 = 19;

/// Reads `N` bytes, little-endian (zeros past the end).
fn uint<const N: usize>(u: &mut Unstructured<'_>) -> u64 {
    (0..N).fold(0, |n, i| n | u64::from(byte(u)) << (8 * i))
}

fn push_uint<const N: usize>(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(&n.to_le_bytes()[..N]);
}

fn text(u: &mut Unstructured<'_>) -> String {
    String::from_utf8_lossy(blob(u)).into_owned()
}

fn pick<T: Copy>(u: &mut Unstructured<'_>, of: &[T]) -> T {
    of[usize::from(byte(u)) % of.len()]
}

fn index_of<T: PartialEq>(of: &[T], value: &T) -> u8 {
    of.iter().position(|v| v == value).unwrap_or(0) as u8
}

fn msgid(u: &mut Unstructured<'_>) -> u32 {
    uint::<4>(u) as u32
}

fn decode_endpoint(u: &mut Unstructured<'_>) -> Endpoint {
    match byte(u) % 3 {
        0 => {
            let ip = Ipv4Addr::from(uint::<4>(u) as u32);
            let port = uint::<2>(u) as u16;
            Endpoint::Inet(SocketAddr::V4(SocketAddrV4::new(ip, port)))
        }
        1 => {
            let ip = Ipv6Addr::from(u128::from(uint::<8>(u)) << 64 | u128::from(uint::<8>(u)));
            let port = uint::<2>(u) as u16;
            Endpoint::Inet(SocketAddr::V6(SocketAddrV6::new(ip, port, 0, 0)))
        }
        _ => Endpoint::Unix(text(u)),
    }
}

fn encode_endpoint(out: &mut Vec<u8>, endpoint: &Endpoint) {
    match endpoint {
        Endpoint::Inet(SocketAddr::V4(a)) => {
            out.push(0);
            push_uint::<4>(out, u64::from(u32::from(*a.ip())));
            push_uint::<2>(out, u64::from(a.port()));
        }
        Endpoint::Inet(SocketAddr::V6(a)) => {
            out.push(1);
            let ip = u128::from(*a.ip());
            push_uint::<8>(out, (ip >> 64) as u64);
            push_uint::<8>(out, ip as u64);
            push_uint::<2>(out, u64::from(a.port()));
        }
        Endpoint::Unix(path) => {
            out.push(2);
            push_blob(out, path.as_bytes());
        }
    }
}

fn decode_event(u: &mut Unstructured<'_>, name: EventName) -> ReportEvent {
    match name {
        EventName::LinkConnect => ReportEvent::LinkConnect {
            rdns: text(u),
            fcrdns: pick(u, &FCRDNS),
            src: decode_endpoint(u),
            dest: decode_endpoint(u),
        },
        EventName::LinkGreeting => ReportEvent::LinkGreeting { hostname: text(u) },
        EventName::LinkIdentify => ReportEvent::LinkIdentify {
            method: pick(u, &METHODS),
            identity: text(u),
        },
        EventName::LinkTls => ReportEvent::LinkTls { tls: text(u) },
        EventName::LinkAuth => ReportEvent::LinkAuth {
            result: pick(u, &AUTH),
            username: text(u),
        },
        EventName::LinkDisconnect => ReportEvent::LinkDisconnect,
        EventName::TxReset => ReportEvent::TxReset { msgid: msgid(u) },
        EventName::TxBegin => ReportEvent::TxBegin { msgid: msgid(u) },
        EventName::TxMail => ReportEvent::TxMail {
            msgid: msgid(u),
            result: pick(u, &TX),
            address: text(u),
        },
        EventName::TxRcpt => ReportEvent::TxRcpt {
            msgid: msgid(u),
            result: pick(u, &TX),
            address: text(u),
        },
        EventName::TxEnvelope => ReportEvent::TxEnvelope {
            msgid: msgid(u),
            envelope: uint::<8>(u),
        },
        EventName::TxData => ReportEvent::TxData {
            msgid: msgid(u),
            result: pick(u, &TX),
        },
        EventName::TxCommit => ReportEvent::TxCommit {
            msgid: msgid(u),
            size: uint::<8>(u),
        },
        EventName::TxRollback => ReportEvent::TxRollback { msgid: msgid(u) },
        EventName::ProtocolClient => ReportEvent::ProtocolClient { command: text(u) },
        EventName::ProtocolServer => ReportEvent::ProtocolServer { response: text(u) },
        EventName::FilterReport => ReportEvent::FilterReport {
            kind: pick(u, &KINDS),
            name: text(u),
            message: text(u),
        },
        EventName::FilterResponse => {
            let phase = pick(u, &Phase::ALL);
            let response = pick(u, &RESPONSES);
            let param = (byte(u) & 1 != 0).then(|| text(u));
            ReportEvent::FilterResponse {
                phase,
                response,
                param,
            }
        }
        EventName::Timeout => ReportEvent::Timeout,
    }
}

fn encode_event(out: &mut Vec<u8>, event: &ReportEvent) {
    let t = |out: &mut Vec<u8>, s: &str| push_blob(out, s.as_bytes());
    match event {
        ReportEvent::LinkConnect {
            rdns,
            fcrdns,
            src,
            dest,
        } => {
            t(out, rdns);
            out.push(index_of(&FCRDNS, fcrdns));
            encode_endpoint(out, src);
            encode_endpoint(out, dest);
        }
        ReportEvent::LinkGreeting { hostname: s }
        | ReportEvent::LinkTls { tls: s }
        | ReportEvent::ProtocolClient { command: s }
        | ReportEvent::ProtocolServer { response: s } => t(out, s),
        ReportEvent::LinkIdentify { method, identity } => {
            out.push(index_of(&METHODS, method));
            t(out, identity);
        }
        ReportEvent::LinkAuth { result, username } => {
            out.push(index_of(&AUTH, result));
            t(out, username);
        }
        ReportEvent::LinkDisconnect | ReportEvent::Timeout => {}
        ReportEvent::TxReset { msgid }
        | ReportEvent::TxBegin { msgid }
        | ReportEvent::TxRollback { msgid } => push_uint::<4>(out, u64::from(*msgid)),
        ReportEvent::TxMail {
            msgid,
            result,
            address,
        }
        | ReportEvent::TxRcpt {
            msgid,
            result,
            address,
        } => {
            push_uint::<4>(out, u64::from(*msgid));
            out.push(index_of(&TX, result));
            t(out, address);
        }
        ReportEvent::TxEnvelope { msgid, envelope: n }
        | ReportEvent::TxCommit { msgid, size: n } => {
            push_uint::<4>(out, u64::from(*msgid));
            push_uint::<8>(out, *n);
        }
        ReportEvent::TxData { msgid, result } => {
            push_uint::<4>(out, u64::from(*msgid));
            out.push(index_of(&TX, result));
        }
        ReportEvent::FilterReport {
            kind,
            name,
            message,
        } => {
            out.push(index_of(&KINDS, kind));
            t(out, name);
            t(out, message);
        }
        ReportEvent::FilterResponse {
            phase,
            response,
            param,
        } => {
            out.push(index_of(&Phase::ALL, phase));
            out.push(index_of(&RESPONSES, response));
            out.push(u8::from(param.is_some()));
            if let Some(param) = param {
                t(out, param);
            }
        }
    }
}

impl ReportInput {
    /// Reads an input (see the layout on [`ReportInput`]).
    pub fn decode(u: &mut Unstructured<'_>) -> ReportInput {
        let version = pick(u, &Version::ALL);
        let kind = byte(u) % (REQUEST + 1);
        let now = Time::from_millis(uint::<8>(u));
        let session = uint::<8>(u);
        if kind == REQUEST {
            let phase = pick(u, &Phase::ALL);
            let token = uint::<8>(u);
            ReportInput::Request {
                version,
                now,
                session,
                phase,
                token,
                param: text(u),
            }
        } else {
            let subsystem = if byte(u) & 1 == 0 {
                Subsystem::SmtpIn
            } else {
                Subsystem::SmtpOut
            };
            let event = decode_event(u, EventName::ALL[usize::from(kind)]);
            ReportInput::Event {
                version,
                now,
                session,
                subsystem,
                event,
            }
        }
    }

    /// The input in the layout [`decode`](Self::decode) reads (text longer than 255 bytes is
    /// cut).
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            ReportInput::Request {
                version,
                now,
                session,
                phase,
                token,
                param,
            } => {
                out.extend([index_of(&Version::ALL, version), REQUEST]);
                push_uint::<8>(&mut out, now.as_millis());
                push_uint::<8>(&mut out, *session);
                out.push(index_of(&Phase::ALL, phase));
                push_uint::<8>(&mut out, *token);
                push_blob(&mut out, param.as_bytes());
            }
            ReportInput::Event {
                version,
                now,
                session,
                subsystem,
                event,
            } => {
                out.extend([
                    index_of(&Version::ALL, version),
                    index_of(&EventName::ALL, &event.name()),
                ]);
                push_uint::<8>(&mut out, now.as_millis());
                push_uint::<8>(&mut out, *session);
                out.push(u8::from(*subsystem == Subsystem::SmtpOut));
                encode_event(&mut out, event);
            }
        }
        out
    }
}

/// The sanitising rule of [`report_line`], written again: CR and LF become spaces, and `|`
/// becomes `?` except in the last field.
fn sanitised(fields: &[String]) -> Vec<String> {
    let n = fields.len();
    fields
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let f = f.replace(['\r', '\n'], " ");
            if i + 1 < n { f.replace('|', "?") } else { f }
        })
        .collect()
}

/// Fuzz target body; also replayed by the corpus test.
///
/// The input is a [`ReportInput`]: a report event or a filter request built from arbitrary
/// text and numbers. It is formatted with [`report_line`] or [`filter_request`] and read back
/// with [`parse_daemon_line`]. Properties: the line is one line (no CR or LF); version, time,
/// subsystem, session, token and phase come back; the fields come back sanitised (CR and LF
/// as spaces, `|` as `?` except in the last field) and [`ReportEvent::from_fields`] reads them
/// into an event that formats to the very same line, and that is the event formatted when
/// sanitising changed nothing; a request's parameter comes back with CR and LF as spaces.
pub fn filter_report(data: &[u8]) {
    let input = ReportInput::decode(&mut Unstructured::new(data));
    match &input {
        ReportInput::Request {
            version,
            now,
            session,
            phase,
            token,
            param,
        } => {
            let line = filter_request(*version, *now, *session, *phase, *token, param);
            assert!(!line.contains(['\r', '\n']), "{input:?} gave {line:?}");
            let expected = DaemonLine::Filter {
                version: version.as_str().to_owned(),
                time: timestamp(*now),
                phase: *phase,
                session: *session,
                token: *token,
                param: param.replace(['\r', '\n'], " "),
            };
            assert_eq!(
                parse_daemon_line(&line),
                Ok(expected),
                "{input:?} gave {line:?}"
            );
        }
        ReportInput::Event {
            version,
            now,
            session,
            subsystem,
            event,
        } => {
            let line = report_line(*version, *now, *subsystem, *session, event);
            assert!(!line.contains(['\r', '\n']), "{input:?} gave {line:?}");
            let fields = event.fields(*version);
            let expected = DaemonLine::Report {
                version: version.as_str().to_owned(),
                time: timestamp(*now),
                subsystem: *subsystem,
                event: event.name(),
                session: *session,
                fields: sanitised(&fields),
            };
            assert_eq!(
                parse_daemon_line(&line),
                Ok(expected.clone()),
                "{input:?} gave {line:?}"
            );
            let DaemonLine::Report { fields: back, .. } = expected else {
                unreachable!()
            };
            let again = match ReportEvent::from_fields(*version, event.name(), &back) {
                Ok(again) => again,
                Err(e) => panic!("{input:?} gave {line:?}, whose fields do not read: {e}"),
            };
            assert_eq!(
                report_line(*version, *now, *subsystem, *session, &again),
                line,
                "{input:?} read back as {again:?}"
            );
            if back == fields {
                assert_eq!(&again, event, "{line:?}");
            }
        }
    }
}

/// Decodes a [`filter_report`] input for triage (print it with `{:#?}`).
#[must_use]
pub fn decode_filter_report(data: &[u8]) -> ReportInput {
    ReportInput::decode(&mut Unstructured::new(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_round_trip_through_their_encoding() {
        for (_, bytes) in super::super::seeds::filter_report() {
            let input = decode_filter_report(&bytes);
            assert_eq!(input.encode(), bytes, "{input:?}");
            filter_report(&bytes);
        }
    }

    #[test]
    fn every_kind_decodes_from_zeros() {
        for kind in 0..=REQUEST {
            let input = decode_filter_report(&[2, kind]);
            if kind == REQUEST {
                assert!(matches!(input, ReportInput::Request { .. }));
            } else {
                let ReportInput::Event { event, .. } = &input else {
                    panic!("{input:?}")
                };
                assert_eq!(event.name(), EventName::ALL[usize::from(kind)]);
            }
            filter_report(&input.encode());
        }
    }

    #[test]
    fn awkward_filter_lines() {
        filter_line(b"filter-dataline|1|2|a\r\r\nfilter-result|1|2|reject|550 x\r\r\n");
        filter_line(b"report|1.000000|smtp-in|1|\r\r\nregister|ready\r\n\xff|\n");
        filter_line(b"filter-result|1|2|rewrite|\r\r");
    }
}
