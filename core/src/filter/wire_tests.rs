//! Tests of the wire codec: a live OpenSMTPD 6.8.0p2 session (protocol 0.6) and constructed
//! protocol 0.7 exchanges, line for line,
//! the per-version layouts, every way a filter's line can be wrong, and round trips.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use proptest::prelude::*;

use super::*;
use crate::filter::report::{
    AuthResult, Endpoint, Fcrdns, IdentifyMethod, ReportEvent, ReporterKind, TxResult,
};

/// The time every formatted line carries: `1700000000.001000`.
const NOW: Time = Time::from_millis(1_700_000_000_001);
const TS: &str = "1700000000.001000";

/// The session and message of the live capture.
const SID: u64 = 0x1a5a_c45a_fb4c_ef08;
const MSGID: u32 = 0x81db_cc9b;
/// The session of the constructed 0.7 examples.
const DEAD: u64 = 0xdead_beef;

/// A reference line with its timestamp (`…` or a real one) replaced by [`TS`]:
/// our clock has milliseconds only, so the time is the one field that cannot match.
fn retime(line: &str) -> String {
    let parts: Vec<&str> = line.splitn(4, '|').collect();
    assert_eq!(parts.len(), 4, "{line}");
    format!("{}|{}|{TS}|{}", parts[0], parts[1], parts[3])
}

/// What Petrel sends in an example: a report event or a filter request.
enum Sent {
    Report(ReportEvent),
    Request(Phase, u64, &'static str),
}

fn report(e: ReportEvent) -> Sent {
    Sent::Report(e)
}

fn server(text: &str) -> Sent {
    report(ReportEvent::ProtocolServer {
        response: text.into(),
    })
}

fn client(text: &str) -> Sent {
    report(ReportEvent::ProtocolClient {
        command: text.into(),
    })
}

fn responded(phase: Phase, response: &'static str, param: Option<&str>) -> Sent {
    report(ReportEvent::FilterResponse {
        phase,
        response,
        param: param.map(str::to_owned),
    })
}

fn inet(text: &str) -> Endpoint {
    Endpoint::Inet(text.parse().unwrap())
}

/// Checks every line Petrel sends in an example: formatted byte for byte (time aside), and
/// read back by [`parse_daemon_line`] to the same event or request.
fn check_sent<S: AsRef<str>>(version: Version, session: u64, lines: &[(S, Sent)]) {
    for (spec, sent) in lines {
        let spec = spec.as_ref();
        let expected = retime(spec);
        let formatted = match sent {
            Sent::Report(event) => report_line(version, NOW, Subsystem::SmtpIn, session, event),
            Sent::Request(phase, token, param) => {
                filter_request(version, NOW, session, *phase, *token, param)
            }
        };
        assert_eq!(formatted, expected);
        // The reference line itself reads too, where it has a real timestamp.
        let readable = if spec.contains('…') {
            &expected
        } else {
            spec
        };
        let parsed = parse_daemon_line(readable).unwrap_or_else(|e| panic!("{readable}: {e}"));
        match (sent, parsed) {
            (
                Sent::Report(event),
                DaemonLine::Report {
                    version: v,
                    subsystem,
                    event: name,
                    session: s,
                    fields,
                    ..
                },
            ) => {
                assert_eq!(
                    (v.as_str(), subsystem, s),
                    (version.as_str(), Subsystem::SmtpIn, session)
                );
                assert_eq!(name, event.name());
                assert_eq!(
                    ReportEvent::from_fields(version, name, &fields).as_ref(),
                    Ok(event),
                    "{readable}"
                );
            }
            (
                Sent::Request(phase, token, param),
                DaemonLine::Filter {
                    version: v,
                    phase: p,
                    session: s,
                    token: t,
                    param: q,
                    ..
                },
            ) => {
                assert_eq!(
                    (v.as_str(), p, s, t, q.as_str()),
                    (version.as_str(), *phase, session, *token, *param)
                );
            }
            (_, other) => panic!("{readable} read as {other:?}"),
        }
    }
}

/// Checks lines a filter sends: each parses to the value given and formats back to itself.
fn check_received<S: AsRef<str>>(lines: &[(S, FilterLine)]) {
    for (line, expected) in lines {
        let line = line.as_ref();
        assert_eq!(parse_filter_line(line).as_ref(), Ok(expected), "{line}");
        assert_eq!(expected.to_line(), line);
        // As read from the pipe, with its line ending (LF or CRLF).
        assert_eq!(
            parse_filter_line(&format!("{line}\n")).as_ref(),
            Ok(expected)
        );
        assert_eq!(
            parse_filter_line(&format!("{line}\r\n")).as_ref(),
            Ok(expected)
        );
    }
}

fn result(session: u64, token: u64, response: Response) -> FilterLine {
    FilterLine::Result {
        session,
        token,
        response,
    }
}

fn dataline(token: u64, line: &str) -> FilterLine {
    FilterLine::DataLine {
        session: SID,
        token,
        line: line.into(),
    }
}

fn filter(phase: Phase) -> FilterLine {
    FilterLine::Register(Registration::Filter { phase })
}

// --- A live capture of OpenSMTPD 6.8.0p2, protocol 0.6 --------------------------------------

#[test]
fn live_capture_handshake() {
    let lines = handshake_lines(&Handshake {
        smtpd_version: "6.8.0p2".into(),
        version: Version::V0_6,
        session_timeout_secs: 300,
        subsystems: vec![Subsystem::SmtpIn],
        admd: "vm".into(),
    });
    assert_eq!(
        lines,
        [
            "config|smtpd-version|6.8.0p2",
            "config|smtp-session-timeout|300",
            "config|subsystem|smtp-in",
            "config|admd|vm",
            "config|ready",
        ]
    );
    let parsed: Vec<DaemonLine> = lines
        .iter()
        .map(|l| parse_daemon_line(l).unwrap())
        .collect();
    let config = |key: &str, value: &str| DaemonLine::Config {
        key: key.into(),
        value: value.into(),
    };
    assert_eq!(
        parsed,
        [
            config("smtpd-version", "6.8.0p2"),
            config("smtp-session-timeout", "300"),
            config("subsystem", "smtp-in"),
            config("admd", "vm"),
            DaemonLine::ConfigReady,
        ]
    );
}

#[test]
fn live_capture_registrations() {
    let mut lines = vec![(
        "register|report|smtp-in|*",
        FilterLine::Register(Registration::Report {
            subsystem: Subsystem::SmtpIn,
            event: None,
        }),
    )];
    let phases = [
        ("register|filter|smtp-in|connect", Phase::Connect),
        ("register|filter|smtp-in|helo", Phase::Helo),
        ("register|filter|smtp-in|ehlo", Phase::Ehlo),
        ("register|filter|smtp-in|mail-from", Phase::MailFrom),
        ("register|filter|smtp-in|rcpt-to", Phase::RcptTo),
        ("register|filter|smtp-in|data", Phase::Data),
        ("register|filter|smtp-in|data-line", Phase::DataLine),
        ("register|filter|smtp-in|commit", Phase::Commit),
    ];
    lines.extend(phases.map(|(l, p)| (l, filter(p))));
    lines.push(("register|ready", FilterLine::Register(Registration::Ready)));
    check_received(&lines);
}

#[test]
fn live_capture_sent_lines() {
    const DATA_LINE: u64 = 0x3c34_244c_8123_fa9f;
    let data_line = |line: &'static str| Sent::Request(Phase::DataLine, DATA_LINE, line);
    let mut lines: Vec<(String, Sent)> = [
        (
            "report|0.6|1795310452.544836|smtp-in|link-connect|1a5ac45afb4cef08|localhost|pass|127.0.0.1:58716|127.0.0.1:2525",
            report(ReportEvent::LinkConnect {
                rdns: "localhost".into(),
                fcrdns: Fcrdns::Pass,
                src: inet("127.0.0.1:58716"),
                dest: inet("127.0.0.1:2525"),
            }),
        ),
        (
            "filter|0.6|1795310452.544899|smtp-in|connect|1a5ac45afb4cef08|3c342446fa40fb9c|localhost|127.0.0.1",
            Sent::Request(Phase::Connect, 0x3c34_2446_fa40_fb9c, "localhost|127.0.0.1"),
        ),
        (
            "report|0.6|…|smtp-in|filter-response|1a5ac45afb4cef08|connected|proceed",
            responded(Phase::Connect, "proceed", None),
        ),
        (
            "report|0.6|…|smtp-in|protocol-server|1a5ac45afb4cef08|220 mx.local.test ESMTP OpenSMTPD",
            server("220 mx.local.test ESMTP OpenSMTPD"),
        ),
        (
            "report|0.6|…|smtp-in|link-greeting|1a5ac45afb4cef08|mx.local.test",
            report(ReportEvent::LinkGreeting {
                hostname: "mx.local.test".into(),
            }),
        ),
        (
            "report|0.6|…|smtp-in|protocol-client|1a5ac45afb4cef08|EHLO client.test",
            client("EHLO client.test"),
        ),
        (
            "filter|0.6|…|smtp-in|ehlo|1a5ac45afb4cef08|3c34244891b08c3f|client.test",
            Sent::Request(Phase::Ehlo, 0x3c34_2448_91b0_8c3f, "client.test"),
        ),
        (
            "report|0.6|…|smtp-in|filter-response|1a5ac45afb4cef08|ehlo|proceed",
            responded(Phase::Ehlo, "proceed", None),
        ),
        (
            "report|0.6|…|smtp-in|link-identify|1a5ac45afb4cef08|EHLO|client.test",
            report(ReportEvent::LinkIdentify {
                method: IdentifyMethod::Ehlo,
                identity: "client.test".into(),
            }),
        ),
        (
            "report|0.6|…|smtp-in|protocol-server|1a5ac45afb4cef08|250-mx.local.test Hello client.test [127.0.0.1], pleased to meet you",
            server("250-mx.local.test Hello client.test [127.0.0.1], pleased to meet you"),
        ),
        (
            "report|0.6|…|smtp-in|protocol-server|1a5ac45afb4cef08|250-8BITMIME",
            server("250-8BITMIME"),
        ),
        (
            "report|0.6|…|smtp-in|protocol-server|1a5ac45afb4cef08|250-ENHANCEDSTATUSCODES",
            server("250-ENHANCEDSTATUSCODES"),
        ),
        (
            "report|0.6|…|smtp-in|protocol-server|1a5ac45afb4cef08|250-SIZE 36700160",
            server("250-SIZE 36700160"),
        ),
        (
            "report|0.6|…|smtp-in|protocol-server|1a5ac45afb4cef08|250-DSN",
            server("250-DSN"),
        ),
        (
            "report|0.6|…|smtp-in|protocol-server|1a5ac45afb4cef08|250 HELP",
            server("250 HELP"),
        ),
        (
            "report|0.6|…|smtp-in|protocol-client|1a5ac45afb4cef08|MAIL FROM:<bob@sender.test> SIZE=100",
            client("MAIL FROM:<bob@sender.test> SIZE=100"),
        ),
        (
            "filter|0.6|…|smtp-in|mail-from|1a5ac45afb4cef08|3c342449b101d93b|bob@sender.test",
            Sent::Request(Phase::MailFrom, 0x3c34_2449_b101_d93b, "bob@sender.test"),
        ),
        (
            "report|0.6|…|smtp-in|filter-response|1a5ac45afb4cef08|mail-from|proceed",
            responded(Phase::MailFrom, "proceed", None),
        ),
        (
            "report|0.6|…|smtp-in|protocol-server|1a5ac45afb4cef08|250 2.0.0 Ok",
            server("250 2.0.0 Ok"),
        ),
        (
            "report|0.6|…|smtp-in|tx-begin|1a5ac45afb4cef08|81dbcc9b",
            report(ReportEvent::TxBegin { msgid: MSGID }),
        ),
        (
            "report|0.6|…|smtp-in|tx-mail|1a5ac45afb4cef08|81dbcc9b|ok|bob@sender.test",
            report(ReportEvent::TxMail {
                msgid: MSGID,
                result: TxResult::Ok,
                address: "bob@sender.test".into(),
            }),
        ),
        (
            "report|0.6|…|smtp-in|protocol-client|1a5ac45afb4cef08|RCPT TO:<reject-me@local.test>",
            client("RCPT TO:<reject-me@local.test>"),
        ),
        (
            "filter|0.6|…|smtp-in|rcpt-to|1a5ac45afb4cef08|3c34244ad3ab7077|reject-me@local.test",
            Sent::Request(Phase::RcptTo, 0x3c34_244a_d3ab_7077, "reject-me@local.test"),
        ),
        (
            "report|0.6|…|smtp-in|filter-response|1a5ac45afb4cef08|rcpt-to|reject|550 5.7.1 go away",
            responded(Phase::RcptTo, "reject", Some("550 5.7.1 go away")),
        ),
        (
            "report|0.6|…|smtp-in|protocol-server|1a5ac45afb4cef08|550 5.7.1 go away",
            server("550 5.7.1 go away"),
        ),
        (
            "report|0.6|…|smtp-in|tx-rcpt|1a5ac45afb4cef08|81dbcc9b|permfail|reject-me@local.test",
            report(ReportEvent::TxRcpt {
                msgid: MSGID,
                result: TxResult::PermFail,
                address: "reject-me@local.test".into(),
            }),
        ),
        (
            "report|0.6|…|smtp-in|protocol-client|1a5ac45afb4cef08|RCPT TO:<fwd@local.test>",
            client("RCPT TO:<fwd@local.test>"),
        ),
        (
            "filter|0.6|…|smtp-in|rcpt-to|1a5ac45afb4cef08|3c34244ad3ab7077|fwd@local.test",
            Sent::Request(Phase::RcptTo, 0x3c34_244a_d3ab_7077, "fwd@local.test"),
        ),
        (
            "report|0.6|…|smtp-in|filter-response|1a5ac45afb4cef08|rcpt-to|proceed",
            responded(Phase::RcptTo, "proceed", None),
        ),
        (
            "report|0.6|…|smtp-in|tx-envelope|1a5ac45afb4cef08|81dbcc9b|81dbcc9b82c1651b",
            report(ReportEvent::TxEnvelope {
                msgid: MSGID,
                envelope: 0x81db_cc9b_82c1_651b,
            }),
        ),
        (
            "report|0.6|…|smtp-in|protocol-server|1a5ac45afb4cef08|250 2.1.5 Destination address valid: Recipient ok",
            server("250 2.1.5 Destination address valid: Recipient ok"),
        ),
        (
            "report|0.6|…|smtp-in|tx-rcpt|1a5ac45afb4cef08|81dbcc9b|ok|fwd@local.test",
            report(ReportEvent::TxRcpt {
                msgid: MSGID,
                result: TxResult::Ok,
                address: "fwd@local.test".into(),
            }),
        ),
        (
            "report|0.6|…|smtp-in|protocol-client|1a5ac45afb4cef08|DATA",
            client("DATA"),
        ),
        (
            "filter|0.6|…|smtp-in|data|1a5ac45afb4cef08|3c34244b7af5e41f|",
            Sent::Request(Phase::Data, 0x3c34_244b_7af5_e41f, ""),
        ),
        (
            "report|0.6|…|smtp-in|filter-response|1a5ac45afb4cef08|data|proceed",
            responded(Phase::Data, "proceed", None),
        ),
        (
            "filter|0.6|…|smtp-in|data-line|1a5ac45afb4cef08|3c34244c8123fa9f|Received: from client.test (localhost [127.0.0.1])",
            data_line("Received: from client.test (localhost [127.0.0.1])"),
        ),
        (
            "report|0.6|…|smtp-in|protocol-server|1a5ac45afb4cef08|354 Enter mail, end with \".\" on a line by itself",
            server("354 Enter mail, end with \".\" on a line by itself"),
        ),
        (
            "report|0.6|…|smtp-in|tx-data|1a5ac45afb4cef08|81dbcc9b|ok",
            report(ReportEvent::TxData {
                msgid: MSGID,
                result: TxResult::Ok,
            }),
        ),
    ]
    .map(|(l, s)| (l.to_owned(), s))
    .into();
    for line in [
        "Subject: a|b test",
        "",
        "line one",
        "..leading dot",
        "bare",
        "lf",
        ".",
    ] {
        let spec =
            format!("filter|0.6|…|smtp-in|data-line|1a5ac45afb4cef08|3c34244c8123fa9f|{line}");
        lines.push((spec, data_line(line)));
    }
    lines.extend(
        [
        (
            "report|0.6|…|smtp-in|protocol-client|1a5ac45afb4cef08|.",
            client("."),
        ),
        (
            "filter|0.6|…|smtp-in|commit|1a5ac45afb4cef08|3c34244d040f5d33|",
            Sent::Request(Phase::Commit, 0x3c34_244d_040f_5d33, ""),
        ),
        (
            "report|0.6|…|smtp-in|filter-response|1a5ac45afb4cef08|commit|proceed",
            responded(Phase::Commit, "proceed", None),
        ),
        (
            "report|0.6|…|smtp-in|protocol-server|1a5ac45afb4cef08|250 2.0.0 81dbcc9b Message accepted for delivery",
            server("250 2.0.0 81dbcc9b Message accepted for delivery"),
        ),
        (
            "report|0.6|…|smtp-in|tx-commit|1a5ac45afb4cef08|81dbcc9b|470",
            report(ReportEvent::TxCommit {
                msgid: MSGID,
                size: 470,
            }),
        ),
        (
            "report|0.6|…|smtp-in|tx-reset|1a5ac45afb4cef08|81dbcc9b",
            report(ReportEvent::TxReset { msgid: MSGID }),
        ),
        (
            "report|0.6|…|smtp-in|protocol-client|1a5ac45afb4cef08|QUIT",
            client("QUIT"),
        ),
        (
            "report|0.6|…|smtp-in|filter-response|1a5ac45afb4cef08|quit|proceed",
            responded(Phase::Quit, "proceed", None),
        ),
        (
            "report|0.6|…|smtp-in|protocol-server|1a5ac45afb4cef08|221 2.0.0 Bye",
            server("221 2.0.0 Bye"),
        ),
        (
            "report|0.6|…|smtp-in|link-disconnect|1a5ac45afb4cef08",
            report(ReportEvent::LinkDisconnect),
        ),
        ]
        .map(|(l, s)| (l.to_owned(), s)),
    );
    check_sent(Version::V0_6, SID, &lines);
}

#[test]
fn live_capture_filter_answers() {
    const DATA_LINE: u64 = 0x3c34_244c_8123_fa9f;
    let mut lines: Vec<(String, FilterLine)> = [
        (
            "filter-result|1a5ac45afb4cef08|3c342446fa40fb9c|proceed",
            result(SID, 0x3c34_2446_fa40_fb9c, Response::Proceed),
        ),
        (
            "filter-result|1a5ac45afb4cef08|3c34244891b08c3f|proceed",
            result(SID, 0x3c34_2448_91b0_8c3f, Response::Proceed),
        ),
        (
            "filter-result|1a5ac45afb4cef08|3c342449b101d93b|proceed",
            result(SID, 0x3c34_2449_b101_d93b, Response::Proceed),
        ),
        (
            "filter-result|1a5ac45afb4cef08|3c34244ad3ab7077|reject|550 5.7.1 go away",
            result(
                SID,
                0x3c34_244a_d3ab_7077,
                Response::Reject("550 5.7.1 go away".into()),
            ),
        ),
        (
            "filter-result|1a5ac45afb4cef08|3c34244ad3ab7077|proceed",
            result(SID, 0x3c34_244a_d3ab_7077, Response::Proceed),
        ),
        (
            "filter-result|1a5ac45afb4cef08|3c34244b7af5e41f|proceed",
            result(SID, 0x3c34_244b_7af5_e41f, Response::Proceed),
        ),
        (
            "filter-dataline|1a5ac45afb4cef08|3c34244c8123fa9f|Received: from client.test (localhost [127.0.0.1])",
            dataline(DATA_LINE, "Received: from client.test (localhost [127.0.0.1])"),
        ),
    ]
    .map(|(l, s)| (l.to_owned(), s))
    .into();
    for line in [
        "Subject: a|b test",
        "",
        "line one",
        "..leading dot",
        "bare",
        "lf",
        ".",
    ] {
        let spec = format!("filter-dataline|1a5ac45afb4cef08|3c34244c8123fa9f|{line}");
        lines.push((spec, dataline(DATA_LINE, line)));
    }
    lines.push((
        "filter-result|1a5ac45afb4cef08|3c34244d040f5d33|proceed".to_owned(),
        result(SID, 0x3c34_244d_040f_5d33, Response::Proceed),
    ));
    check_received(&lines);
}

// --- Protocol 0.7, constructed -------------------------------------------------------------

#[test]
fn protocol_0_7_equivalents() {
    check_sent(
        Version::V0_7,
        DEAD,
        &[
            (
                "report|0.7|1700000000.000001|smtp-in|link-auth|00000000deadbeef|pass|alice",
                report(ReportEvent::LinkAuth {
                    result: AuthResult::Pass,
                    username: "alice".into(),
                }),
            ),
            (
                "report|0.7|1700000000.000002|smtp-in|tx-mail|00000000deadbeef|0badc0de|ok|alice@example.org",
                report(ReportEvent::TxMail {
                    msgid: 0x0bad_c0de,
                    result: TxResult::Ok,
                    address: "alice@example.org".into(),
                }),
            ),
            (
                "report|0.7|1700000000.000003|smtp-in|protocol-client|00000000deadbeef|AUTH PLAIN ********",
                client("AUTH PLAIN ********"),
            ),
            (
                "report|0.7|1700000000.000004|smtp-in|link-connect|00000000deadbeef||fail|[2001:db8::5]:40000|[2001:db8::1]:25",
                report(ReportEvent::LinkConnect {
                    rdns: String::new(),
                    fcrdns: Fcrdns::Fail,
                    src: inet("[2001:db8::5]:40000"),
                    dest: inet("[2001:db8::1]:25"),
                }),
            ),
            (
                "filter|0.7|1700000000.000005|smtp-in|connect|00000000deadbeef|0000000000000001||[2001:db8::5]",
                Sent::Request(Phase::Connect, 1, "|[2001:db8::5]"),
            ),
        ],
    );
}

#[test]
fn rewriting_a_sender() {
    check_sent(
        Version::V0_7,
        DEAD,
        &[(
            "filter|0.7|…|smtp-in|mail-from|00000000deadbeef|0000000000000007|bounce+x@list.example",
            Sent::Request(Phase::MailFrom, 7, "bounce+x@list.example"),
        )],
    );
    check_received(&[(
        "filter-result|00000000deadbeef|0000000000000007|rewrite|<owner@list.example>",
        result(DEAD, 7, Response::Rewrite("<owner@list.example>".into())),
    )]);
}

#[test]
fn disconnect_at_connect() {
    let reply = "550 5.7.1 you are not welcome";
    check_sent(
        Version::V0_7,
        DEAD,
        &[
            (
                "filter|0.7|…|smtp-in|connect|00000000deadbeef|0000000000000001|bad.example|192.0.2.9",
                Sent::Request(Phase::Connect, 1, "bad.example|192.0.2.9"),
            ),
            (
                "report|0.7|…|smtp-in|filter-response|00000000deadbeef|connected|disconnect|550 5.7.1 you are not welcome",
                responded(Phase::Connect, "disconnect", Some(reply)),
            ),
            (
                "report|0.7|…|smtp-in|protocol-server|00000000deadbeef|550 5.7.1 you are not welcome",
                server(reply),
            ),
            (
                "report|0.7|…|smtp-in|link-disconnect|00000000deadbeef",
                report(ReportEvent::LinkDisconnect),
            ),
        ],
    );
    check_received(&[(
        "filter-result|00000000deadbeef|0000000000000001|disconnect|550 5.7.1 you are not welcome",
        result(DEAD, 1, Response::Disconnect(reply.into())),
    )]);
    assert_eq!(reply_of(reply), Some((550, reply.to_owned())));
}

// --- Handshake -------------------------------------------------------------------------------

#[test]
fn handshake_of_0_7_names_the_protocol_and_every_subsystem() {
    let lines = handshake_lines(&Handshake {
        smtpd_version: "7.8.0".into(),
        version: Version::V0_7,
        session_timeout_secs: 300,
        subsystems: vec![Subsystem::SmtpIn, Subsystem::SmtpOut],
        admd: "mx.example.org".into(),
    });
    assert_eq!(
        lines,
        [
            "config|smtpd-version|7.8.0",
            "config|protocol|0.7",
            "config|smtp-session-timeout|300",
            "config|subsystem|smtp-in",
            "config|subsystem|smtp-out",
            "config|admd|mx.example.org",
            "config|ready",
        ]
    );
    // 0.5 and 0.6 filters never saw `config|protocol`.
    for version in [Version::V0_5, Version::V0_6] {
        let lines = handshake_lines(&Handshake {
            smtpd_version: "7.8.0".into(),
            version,
            session_timeout_secs: 300,
            subsystems: vec![Subsystem::SmtpIn],
            admd: "mx|odd\nname".into(),
        });
        assert!(!lines.iter().any(|l| l.starts_with("config|protocol")));
        assert_eq!(lines[3], "config|admd|mx|odd name");
        assert_eq!(
            parse_daemon_line(&lines[3]),
            Ok(DaemonLine::Config {
                key: "admd".into(),
                value: "mx|odd name".into()
            })
        );
    }
}

// --- Per-version layouts ---------------------------------------------------------------------

#[test]
fn link_auth_layout_per_version() {
    let event = ReportEvent::LinkAuth {
        result: AuthResult::Fail,
        username: "bob".into(),
    };
    for (version, tail) in [
        (Version::V0_5, "bob|fail"),
        (Version::V0_6, "bob|fail"),
        (Version::V0_7, "fail|bob"),
    ] {
        let line = report_line(version, NOW, Subsystem::SmtpIn, DEAD, &event);
        assert_eq!(
            line,
            format!("report|{version}|{TS}|smtp-in|link-auth|00000000deadbeef|{tail}")
        );
        round_trips(version, &event);
    }
    // Before 0.7 the user name is not last: a `|` in it cannot be sent as is.
    let odd = ReportEvent::LinkAuth {
        result: AuthResult::Error,
        username: "a|b".into(),
    };
    assert!(report_line(Version::V0_6, NOW, Subsystem::SmtpIn, 1, &odd).ends_with("|a?b|error"));
    assert!(report_line(Version::V0_7, NOW, Subsystem::SmtpIn, 1, &odd).ends_with("|error|a|b"));
}

#[test]
fn tx_mail_and_tx_rcpt_layout_per_version() {
    let mail = ReportEvent::TxMail {
        msgid: 0x0bad_c0de,
        result: TxResult::TempFail,
        address: "alice@example.org".into(),
    };
    let rcpt = ReportEvent::TxRcpt {
        msgid: 1,
        result: TxResult::PermFail,
        address: String::new(),
    };
    for (version, mail_tail, rcpt_tail) in [
        (
            Version::V0_5,
            "0badc0de|alice@example.org|tempfail",
            "00000001||permfail",
        ),
        (
            Version::V0_6,
            "0badc0de|tempfail|alice@example.org",
            "00000001|permfail|",
        ),
        (
            Version::V0_7,
            "0badc0de|tempfail|alice@example.org",
            "00000001|permfail|",
        ),
    ] {
        let prefix = format!("report|{version}|{TS}|smtp-out|");
        assert_eq!(
            report_line(version, NOW, Subsystem::SmtpOut, DEAD, &mail),
            format!("{prefix}tx-mail|00000000deadbeef|{mail_tail}")
        );
        assert_eq!(
            report_line(version, NOW, Subsystem::SmtpOut, DEAD, &rcpt),
            format!("{prefix}tx-rcpt|00000000deadbeef|{rcpt_tail}")
        );
        round_trips(version, &mail);
        round_trips(version, &rcpt);
    }
}

#[test]
fn other_fields_as_opensmtpd_writes_them() {
    let cases = [
        (
            ReportEvent::LinkConnect {
                rdns: "x".into(),
                fcrdns: Fcrdns::Error,
                src: Endpoint::Unix("/var/run/smtpd.sock".into()),
                dest: Endpoint::Unix("/var/run/smtpd.sock".into()),
            },
            "x|error|unix:/var/run/smtpd.sock|unix:/var/run/smtpd.sock",
        ),
        (
            ReportEvent::LinkIdentify {
                method: IdentifyMethod::Lhlo,
                identity: "me".into(),
            },
            "LHLO|me",
        ),
        (
            ReportEvent::LinkIdentify {
                method: IdentifyMethod::Helo,
                identity: "h".into(),
            },
            "HELO|h",
        ),
        (
            ReportEvent::LinkTls {
                tls: "version=TLSv1.3:cipher=TLS_AES_256_GCM_SHA384:bits=256".into(),
            },
            "version=TLSv1.3:cipher=TLS_AES_256_GCM_SHA384:bits=256",
        ),
        (ReportEvent::TxReset { msgid: 0 }, "00000000"),
        (ReportEvent::TxRollback { msgid: 0xabc }, "00000abc"),
        (
            ReportEvent::TxData {
                msgid: 5,
                result: TxResult::TempFail,
            },
            "00000005|tempfail",
        ),
        (
            ReportEvent::TxEnvelope {
                msgid: 5,
                envelope: 5 << 32 | 1,
            },
            "00000005|0000000500000001",
        ),
        (
            ReportEvent::FilterReport {
                kind: ReporterKind::Builtin,
                name: "rdns".into(),
                message: "no|rdns".into(),
            },
            "builtin|rdns|no|rdns",
        ),
        (
            ReportEvent::FilterReport {
                kind: ReporterKind::Proc,
                name: "a|b".into(),
                message: String::new(),
            },
            "proc|a?b|",
        ),
        (
            ReportEvent::FilterResponse {
                phase: Phase::StartTls,
                response: "rewrite",
                param: Some(String::new()),
            },
            "tls|rewrite|",
        ),
        (
            ReportEvent::FilterResponse {
                phase: Phase::DataLine,
                response: "junk",
                param: None,
            },
            "data-line|junk",
        ),
    ];
    for (event, tail) in cases {
        let line = report_line(Version::V0_7, NOW, Subsystem::SmtpIn, 1, &event);
        let name = event.name();
        assert_eq!(
            line,
            format!("report|0.7|{TS}|smtp-in|{name}|0000000000000001|{tail}")
        );
        if !tail.contains('?') {
            round_trips(Version::V0_7, &event);
        }
    }
    let timeout = report_line(
        Version::V0_7,
        NOW,
        Subsystem::SmtpIn,
        1,
        &ReportEvent::Timeout,
    );
    assert_eq!(
        timeout,
        format!("report|0.7|{TS}|smtp-in|timeout|0000000000000001")
    );
}

/// Formats the event, reads the line back and checks it is the same event.
fn round_trips(version: Version, event: &ReportEvent) {
    let line = report_line(version, NOW, Subsystem::SmtpIn, 9, event);
    let Ok(DaemonLine::Report {
        event: name,
        fields,
        ..
    }) = parse_daemon_line(&line)
    else {
        panic!("{line} does not read back");
    };
    assert_eq!(
        ReportEvent::from_fields(version, name, &fields).as_ref(),
        Ok(event),
        "{line}"
    );
}

#[test]
fn filter_requests_keep_pipes_and_stay_one_line() {
    let line = filter_request(Version::V0_5, NOW, 1, Phase::DataLine, 2, "a|b\r\nc\n");
    assert_eq!(
        line,
        format!("filter|0.5|{TS}|smtp-in|data-line|0000000000000001|0000000000000002|a|b  c ")
    );
    let line = report_line(
        Version::V0_7,
        NOW,
        Subsystem::SmtpIn,
        1,
        &ReportEvent::ProtocolClient {
            command: "a|b\rc".into(),
        },
    );
    assert!(line.ends_with("|a|b c"), "{line}");
    let line = report_line(
        Version::V0_5,
        NOW,
        Subsystem::SmtpIn,
        1,
        &ReportEvent::TxRcpt {
            msgid: 1,
            result: TxResult::Ok,
            address: "x|y\n".into(),
        },
    );
    assert!(line.ends_with("|00000001|x?y |ok"), "{line}");
}

#[test]
fn the_response_names_are_the_decisions_names() {
    for response in [
        Response::Proceed,
        Response::Junk,
        Response::Reject("550 x".into()),
        Response::Disconnect("421 x".into()),
        Response::Rewrite("x".into()),
        Response::Report("x".into()),
    ] {
        let event = ReportEvent::FilterResponse {
            phase: Phase::Helo,
            response: response.name(),
            param: response.param().map(str::to_owned),
        };
        round_trips(Version::V0_7, &event);
    }
}

// --- reply_of --------------------------------------------------------------------------------

#[test]
fn reply_validation_follows_opensmtpd() {
    assert_eq!(
        reply_of("550 5.7.1 go away"),
        Some((550, "550 5.7.1 go away".into()))
    );
    assert_eq!(reply_of("421 bye"), Some((421, "421 bye".into())));
    assert_eq!(reply_of("499 x"), Some((499, "499 x".into())));
    assert_eq!(reply_of("451  "), Some((451, "451  ".into())));
    for bad in [
        "", "550", "550 ", "5500 x", "550-x y", "250 ok", "354 go", "650 x", "55 x", "5a0 x",
        " 550 x", "550\tx", "ⅴ50 x",
    ] {
        assert_eq!(reply_of(bad), None, "{bad:?}");
    }
}

// --- Errors of parse_filter_line -------------------------------------------------------------

#[test]
fn every_error_of_a_filter_line() {
    use WireError as E;
    let sid = "1a5ac45afb4cef08";
    let missing = |line, field| E::MissingField { line, field };
    let hex = |what, value: &str| E::BadHex {
        what,
        value: value.into(),
        max: 16,
    };
    let cases: Vec<(String, WireError)> = vec![
        (String::new(), E::Empty),
        ("\n".into(), E::Empty),
        ("\r\n".into(), E::Empty),
        ("hello".into(), E::UnknownLineType("hello".into())),
        (
            "filter-response|1|2|proceed".into(),
            E::UnknownLineType("filter-response".into()),
        ),
        (
            "Register|ready".into(),
            E::UnknownLineType("Register".into()),
        ),
        ("register".into(), missing("register", "registration")),
        ("register|".into(), E::UnknownRegistration(String::new())),
        (
            "register|readyy".into(),
            E::UnknownRegistration("readyy".into()),
        ),
        (
            "register|ready|now".into(),
            E::ExtraField {
                line: "register",
                extra: "now".into(),
            },
        ),
        ("register|report".into(), missing("register", "subsystem")),
        (
            "register|report|smtp-in".into(),
            missing("register", "event"),
        ),
        (
            "register|report|smtp-up|*".into(),
            E::UnknownSubsystem("smtp-up".into()),
        ),
        (
            "register|report|smtp-in|tx-foo".into(),
            E::UnknownEvent("tx-foo".into()),
        ),
        (
            "register|report|smtp-in|*|x".into(),
            E::UnknownEvent("*|x".into()),
        ),
        (
            "register|report|smtp-in|".into(),
            E::UnknownEvent(String::new()),
        ),
        (
            "register|filter|smtp-out|connect".into(),
            E::FilterSubsystem("smtp-out".into()),
        ),
        (
            "register|filter|mta|connect".into(),
            E::FilterSubsystem("mta".into()),
        ),
        (
            "register|filter|smtp-in".into(),
            missing("register", "phase"),
        ),
        (
            "register|filter|smtp-in|connected".into(),
            E::UnknownPhase("connected".into()),
        ),
        (
            "register|filter|smtp-in|tls".into(),
            E::UnknownPhase("tls".into()),
        ),
        ("register|filter".into(), missing("register", "subsystem")),
        (
            "filter-result".into(),
            missing("filter-result", "session id"),
        ),
        ("filter-result|".into(), hex("session id", "")),
        (
            format!("filter-result|{sid}"),
            missing("filter-result", "token"),
        ),
        (format!("filter-result|{sid}|"), hex("token", "")),
        (
            format!("filter-result|{sid}|1"),
            missing("filter-result", "decision"),
        ),
        (
            "filter-result|xyz|1|proceed".into(),
            hex("session id", "xyz"),
        ),
        (
            "filter-result|0x1|1|proceed".into(),
            hex("session id", "0x1"),
        ),
        ("filter-result|+1|1|proceed".into(), hex("session id", "+1")),
        (
            " filter-result|1|1|proceed".into(),
            E::UnknownLineType(" filter-result".into()),
        ),
        ("filter-result| 1|1|proceed".into(), hex("session id", " 1")),
        (
            "filter-result|00000000000000001|1|proceed".into(),
            hex("session id", "00000000000000001"),
        ),
        (
            format!("filter-result|{sid}|-1|proceed"),
            hex("token", "-1"),
        ),
        (
            format!("filter-result|{sid}|1|"),
            E::UnknownDecision(String::new()),
        ),
        (
            format!("filter-result|{sid}|1|accept"),
            E::UnknownDecision("accept".into()),
        ),
        (
            format!("filter-result|{sid}|1|PROCEED"),
            E::UnknownDecision("PROCEED".into()),
        ),
        (
            format!("filter-result|{sid}|1|proceed|"),
            E::UnexpectedParameter {
                decision: "proceed",
                param: String::new(),
            },
        ),
        (
            format!("filter-result|{sid}|1|junk|spam"),
            E::UnexpectedParameter {
                decision: "junk",
                param: "spam".into(),
            },
        ),
        (
            format!("filter-result|{sid}|1|reject"),
            E::MissingParameter { decision: "reject" },
        ),
        (
            format!("filter-result|{sid}|1|disconnect"),
            E::MissingParameter {
                decision: "disconnect",
            },
        ),
        (
            format!("filter-result|{sid}|1|rewrite"),
            E::MissingParameter {
                decision: "rewrite",
            },
        ),
        (
            format!("filter-result|{sid}|1|report"),
            E::MissingParameter { decision: "report" },
        ),
        (
            format!("filter-result|{sid}|1|reject|"),
            E::EmptyReply { decision: "reject" },
        ),
        (
            format!("filter-result|{sid}|1|disconnect|\r\n"),
            E::EmptyReply {
                decision: "disconnect",
            },
        ),
        (
            "filter-dataline".into(),
            missing("filter-dataline", "session id"),
        ),
        (
            format!("filter-dataline|{sid}"),
            missing("filter-dataline", "token"),
        ),
        (
            format!("filter-dataline|{sid}|1"),
            missing("filter-dataline", "line"),
        ),
        ("filter-dataline|g|1|x".into(), hex("session id", "g")),
        (format!("filter-dataline|{sid}|1 |x"), hex("token", "1 ")),
        ("report".into(), missing("report", "timestamp")),
        (
            "report|1700000000.000001".into(),
            missing("report", "subsystem"),
        ),
        (
            "report|1700000000.000001|smtp-in".into(),
            missing("report", "session id"),
        ),
        (
            format!("report|1700000000.000001|smtp-in|{sid}"),
            missing("report", "message"),
        ),
        (
            format!("report|0.7|1700000000.000001|smtp-in|{sid}|x"),
            E::BadTimestamp("0.7".into()),
        ),
        (
            format!("report|1700000000.1|smtp-in|{sid}|x"),
            E::BadTimestamp("1700000000.1".into()),
        ),
        (
            format!("report|1700000000|smtp-in|{sid}|x"),
            E::BadTimestamp("1700000000".into()),
        ),
        (
            format!("report|.000001|smtp-in|{sid}|x"),
            E::BadTimestamp(".000001".into()),
        ),
        (
            format!("report|1700000000.00000a|smtp-in|{sid}|x"),
            E::BadTimestamp("1700000000.00000a".into()),
        ),
        (
            format!("report|1700000000.000001|smtp|{sid}|x"),
            E::UnknownSubsystem("smtp".into()),
        ),
        (
            "report|1700000000.000001|smtp-in|zz|x".into(),
            hex("session id", "zz"),
        ),
    ];
    for (line, expected) in cases {
        assert_eq!(parse_filter_line(&line), Err(expected), "{line:?}");
    }
}

#[test]
fn errors_quote_at_most_forty_characters() {
    let long = "x".repeat(100);
    let err = parse_filter_line(&format!("register|report|smtp-in|{long}")).unwrap_err();
    assert_eq!(err, WireError::UnknownEvent(format!("{}…", "x".repeat(40))));
    assert_eq!(
        err.to_string(),
        format!("unknown report event \"{}…\"", "x".repeat(40))
    );
    // Cut on a character boundary.
    let err = parse_filter_line(&format!("{}|x", "é".repeat(50))).unwrap_err();
    assert_eq!(
        err,
        WireError::UnknownLineType(format!("{}…", "é".repeat(40)))
    );
}

#[test]
fn error_messages_read_plainly() {
    let msg = |line: &str| parse_filter_line(line).unwrap_err().to_string();
    assert_eq!(
        msg("register|filter|smtp-out|connect"),
        "filters can only be registered for smtp-in, not for \"smtp-out\""
    );
    assert_eq!(msg("filter-result|1|2|reject"), "reject needs a parameter");
    assert_eq!(
        msg("filter-result|1|2|reject|"),
        "reject needs an SMTP reply, got an empty one"
    );
    assert_eq!(
        msg("filter-result|1|zz|proceed"),
        "token \"zz\" is not 1 to 16 hex digits"
    );
    assert_eq!(
        msg("filter-dataline|1|2"),
        "filter-dataline line ends before its line field"
    );
    assert_eq!(
        ReportEvent::from_fields(Version::V0_7, EventName::LinkConnect, &[])
            .unwrap_err()
            .to_string(),
        "link-connect takes 4 fields, got 0"
    );
}

// --- What filters send, the accepting side -----------------------------------------------------

#[test]
fn filter_lines_accepted_as_sent() {
    // Short and upper-case ids are accepted, and formatted in the canonical form.
    let line = parse_filter_line("filter-result|1A|ff|proceed").unwrap();
    assert_eq!(line, result(0x1a, 0xff, Response::Proceed));
    assert_eq!(
        line.to_line(),
        "filter-result|000000000000001a|00000000000000ff|proceed"
    );
    let cases = [
        (
            "filter-result|1|2|rewrite|",
            result(1, 2, Response::Rewrite(String::new())),
        ),
        (
            "filter-result|1|2|report|",
            result(1, 2, Response::Report(String::new())),
        ),
        (
            "filter-result|1|2|report|seen|twice",
            result(1, 2, Response::Report("seen|twice".into())),
        ),
        (
            // Not a valid reply; the chain, not the parser, substitutes 421 (see reply_of).
            "filter-result|1|2|reject|go away",
            result(1, 2, Response::Reject("go away".into())),
        ),
        ("filter-result|1|2|junk", result(1, 2, Response::Junk)),
        (
            "filter-dataline|1|2|",
            FilterLine::DataLine {
                session: 1,
                token: 2,
                line: String::new(),
            },
        ),
        (
            "filter-dataline|1|2|..|x|",
            FilterLine::DataLine {
                session: 1,
                token: 2,
                line: "..|x|".into(),
            },
        ),
        (
            "filter-dataline|1|2|a\rb",
            FilterLine::DataLine {
                session: 1,
                token: 2,
                line: "a\rb".into(),
            },
        ),
        (
            "report|1700000000.000001|smtp-in|00000000deadbeef|greylisted|for 5 min",
            FilterLine::Report {
                time: "1700000000.000001".into(),
                subsystem: Subsystem::SmtpIn,
                session: DEAD,
                message: "greylisted|for 5 min".into(),
            },
        ),
        (
            "register|report|smtp-out|link-connect",
            FilterLine::Register(Registration::Report {
                subsystem: Subsystem::SmtpOut,
                event: Some(EventName::LinkConnect),
            }),
        ),
        ("register|filter|smtp-in|wiz", filter(Phase::Wiz)),
    ];
    for (line, expected) in cases {
        assert_eq!(parse_filter_line(line).as_ref(), Ok(&expected), "{line}");
        // Only one CR is a line ending; another belongs to the line.
        if let FilterLine::DataLine { line: text, .. } = &expected {
            let with_cr = parse_filter_line(&format!("{line}\r\r\n")).unwrap();
            let FilterLine::DataLine { line: got, .. } = with_cr else {
                panic!()
            };
            assert_eq!(got, format!("{text}\r"));
        }
    }
    for event in EventName::ALL {
        let line = format!("register|report|smtp-in|{event}");
        assert_eq!(
            parse_filter_line(&line),
            Ok(FilterLine::Register(Registration::Report {
                subsystem: Subsystem::SmtpIn,
                event: Some(event)
            }))
        );
    }
    for phase in Phase::ALL {
        let line = format!("register|filter|smtp-in|{phase}");
        assert_eq!(parse_filter_line(&line), Ok(filter(phase)));
        assert_eq!(filter(phase).to_line(), line);
    }
}

// --- Reading what Petrel sends ---------------------------------------------------------------

#[test]
fn daemon_line_errors() {
    use WireError as E;
    let sid = "00000000deadbeef";
    let cases: Vec<(String, WireError)> = vec![
        (String::new(), E::Empty),
        ("hello|x".into(), E::UnknownLineType("hello".into())),
        (
            "config".into(),
            E::MissingField {
                line: "config",
                field: "key",
            },
        ),
        (
            "config|admd".into(),
            E::MissingField {
                line: "config",
                field: "value",
            },
        ),
        (
            "config|ready|now".into(),
            E::ExtraField {
                line: "config",
                extra: "now".into(),
            },
        ),
        (
            format!("filter|0.7|{TS}|smtp-out|connect|{sid}|1|x"),
            E::FilterSubsystem("smtp-out".into()),
        ),
        (
            format!("filter|0.7|{TS}|smtp-in|connected|{sid}|1|x"),
            E::UnknownPhase("connected".into()),
        ),
        (
            format!("filter|0.7|{TS}|smtp-in|data|{sid}|1"),
            E::MissingField {
                line: "filter",
                field: "parameter",
            },
        ),
        (
            format!("filter|0.7|now|smtp-in|data|{sid}|1|"),
            E::BadTimestamp("now".into()),
        ),
        (
            format!("report|0.7|{TS}|smtp-in|link-disconnect|{sid}|"),
            E::ExtraField {
                line: "report",
                extra: String::new(),
            },
        ),
        (
            format!("report|0.7|{TS}|smtp-in|link-connect|{sid}|a|pass|1.2.3.4:5"),
            E::FieldCount {
                event: EventName::LinkConnect,
                expected: "4".into(),
                got: 3,
            },
        ),
        (
            format!("report|0.7|{TS}|smtp-in|tx-begin|{sid}"),
            E::FieldCount {
                event: EventName::TxBegin,
                expected: "1".into(),
                got: 0,
            },
        ),
        (
            format!("report|0.7|{TS}|smtp-in|filter-response|{sid}|helo"),
            E::FieldCount {
                event: EventName::FilterResponse,
                expected: "2 or 3".into(),
                got: 1,
            },
        ),
        (
            format!("report|0.7|{TS}|smtp-in|link-up|{sid}"),
            E::UnknownEvent("link-up".into()),
        ),
        (
            format!("report|0.7|{TS}|lmtp|timeout|{sid}"),
            E::UnknownSubsystem("lmtp".into()),
        ),
    ];
    for (line, expected) in cases {
        assert_eq!(parse_daemon_line(&line), Err(expected), "{line:?}");
    }
}

#[test]
fn report_fields_keep_pipes_in_the_last_one_only() {
    let line =
        format!("report|0.7|{TS}|smtp-in|filter-report|0000000000000001|proc|greylist|a|b|c");
    let Ok(DaemonLine::Report { fields, .. }) = parse_daemon_line(&line) else {
        panic!()
    };
    assert_eq!(fields, ["proc", "greylist", "a|b|c"]);
    let line =
        format!("report|0.7|{TS}|smtp-in|filter-response|0000000000000001|rcpt-to|reject|550 a|b");
    let Ok(DaemonLine::Report { fields, .. }) = parse_daemon_line(&line) else {
        panic!()
    };
    assert_eq!(fields, ["rcpt-to", "reject", "550 a|b"]);
}

#[test]
fn bad_report_fields() {
    let from = |name, fields: &[&str]| {
        let fields: Vec<String> = fields.iter().map(|s| (*s).to_owned()).collect();
        ReportEvent::from_fields(Version::V0_7, name, &fields)
    };
    let bad = |what, value: &str, expected| {
        Err(WireError::BadField {
            what,
            value: value.into(),
            expected,
        })
    };
    assert_eq!(
        from(
            EventName::LinkConnect,
            &["", "maybe", "1.2.3.4:1", "1.2.3.4:2"]
        ),
        bad("fcrdns result", "maybe", "pass, fail or error")
    );
    assert_eq!(
        from(
            EventName::LinkConnect,
            &["", "pass", "1.2.3.4", "1.2.3.4:2"]
        ),
        bad(
            "endpoint",
            "1.2.3.4",
            "address:port, [IPv6 address]:port or unix:path"
        )
    );
    assert_eq!(
        from(EventName::LinkIdentify, &["ehlo", "x"]),
        bad("identify method", "ehlo", "HELO, EHLO or LHLO")
    );
    assert_eq!(
        from(EventName::LinkAuth, &["alice", "pass"]),
        bad("auth result", "alice", "pass, fail or error")
    );
    assert_eq!(
        from(EventName::TxBegin, &["123456789"]),
        Err(WireError::BadHex {
            what: "message id",
            value: "123456789".into(),
            max: 8
        })
    );
    assert_eq!(
        from(EventName::TxData, &["1", "fine"]),
        bad("result", "fine", "ok, permfail or tempfail")
    );
    assert_eq!(
        from(EventName::TxCommit, &["1", "-1"]),
        bad("message size", "-1", "a decimal number")
    );
    assert_eq!(
        from(EventName::TxCommit, &["1", "99999999999999999999"]),
        bad(
            "message size",
            "99999999999999999999",
            "a number below 2^64"
        )
    );
    assert_eq!(
        from(EventName::FilterReport, &["plugin", "x", "y"]),
        bad("reporter kind", "plugin", "builtin or proc")
    );
    assert_eq!(
        from(EventName::FilterResponse, &["connect", "proceed"]),
        bad("phase", "connect", "a phase's report name")
    );
    assert_eq!(
        from(EventName::FilterResponse, &["helo", "accept"]),
        bad(
            "response",
            "accept",
            "proceed, junk, reject, disconnect, rewrite or report"
        )
    );
    assert_eq!(
        from(EventName::Timeout, &["x"]),
        Err(WireError::FieldCount {
            event: EventName::Timeout,
            expected: "no".into(),
            got: 1
        })
    );
    // Short message ids are read; they are always written with eight digits.
    assert_eq!(
        from(EventName::TxBegin, &["1"]),
        Ok(ReportEvent::TxBegin { msgid: 1 })
    );
}

// --- Round trips on arbitrary values -----------------------------------------------------------

/// Text as a filter could send it in a last field: anything but `\n`, and not ending in `\r`
/// (a reader takes that for part of a CRLF ending).
fn last_field() -> impl Strategy<Value = String> {
    any::<String>().prop_map(|s| {
        let s = s.replace('\n', " ");
        s.trim_end_matches('\r').to_owned()
    })
}

fn response() -> impl Strategy<Value = Response> {
    let nonempty = last_field()
        .prop_map(|s| if s.is_empty() { "x".into() } else { s })
        .boxed();
    prop_oneof![
        Just(Response::Proceed),
        Just(Response::Junk),
        nonempty.clone().prop_map(Response::Reject),
        nonempty.prop_map(Response::Disconnect),
        last_field().prop_map(Response::Rewrite),
        last_field().prop_map(Response::Report),
    ]
}

fn subsystem() -> impl Strategy<Value = Subsystem> {
    prop_oneof![Just(Subsystem::SmtpIn), Just(Subsystem::SmtpOut)]
}

fn phase() -> impl Strategy<Value = Phase> {
    (0..Phase::ALL.len()).prop_map(|i| Phase::ALL[i])
}

fn filter_line() -> impl Strategy<Value = FilterLine> {
    prop_oneof![
        (subsystem(), proptest::option::of(0..EventName::ALL.len())).prop_map(|(subsystem, e)| {
            FilterLine::Register(Registration::Report {
                subsystem,
                event: e.map(|i| EventName::ALL[i]),
            })
        }),
        phase().prop_map(|phase| FilterLine::Register(Registration::Filter { phase })),
        Just(FilterLine::Register(Registration::Ready)),
        (any::<u64>(), any::<u64>(), response()).prop_map(|(session, token, response)| {
            FilterLine::Result {
                session,
                token,
                response,
            }
        }),
        (any::<u64>(), any::<u64>(), last_field()).prop_map(|(session, token, line)| {
            FilterLine::DataLine {
                session,
                token,
                line,
            }
        }),
        (
            "[0-9]{1,12}\\.[0-9]{6}",
            subsystem(),
            any::<u64>(),
            last_field()
        )
            .prop_map(|(time, subsystem, session, message)| FilterLine::Report {
                time,
                subsystem,
                session,
                message,
            }),
    ]
}

fn version() -> impl Strategy<Value = Version> {
    (0..3usize).prop_map(|i| Version::ALL[i])
}

fn endpoint(text: BoxedStrategy<String>) -> impl Strategy<Value = Endpoint> {
    prop_oneof![
        (any::<u32>(), any::<u16>()).prop_map(|(ip, port)| Endpoint::Inet(SocketAddr::V4(
            SocketAddrV4::new(Ipv4Addr::from(ip), port)
        ))),
        (any::<u128>(), any::<u16>()).prop_map(|(ip, port)| Endpoint::Inet(SocketAddr::V6(
            SocketAddrV6::new(Ipv6Addr::from(ip), port, 0, 0)
        ))),
        text.prop_map(Endpoint::Unix),
    ]
}

/// Every report event, its text fields drawn from `text`.
fn report_event(text: BoxedStrategy<String>) -> impl Strategy<Value = ReportEvent> {
    let t = || text.clone();
    let tx = || {
        prop_oneof![
            Just(TxResult::Ok),
            Just(TxResult::PermFail),
            Just(TxResult::TempFail)
        ]
    };
    let three = || 0..3usize;
    prop_oneof![
        (t(), three(), endpoint(t()), endpoint(t())).prop_map(|(rdns, f, src, dest)| {
            ReportEvent::LinkConnect {
                rdns,
                fcrdns: [Fcrdns::Pass, Fcrdns::Fail, Fcrdns::Error][f],
                src,
                dest,
            }
        }),
        t().prop_map(|hostname| ReportEvent::LinkGreeting { hostname }),
        (three(), t()).prop_map(|(m, identity)| ReportEvent::LinkIdentify {
            method: [
                IdentifyMethod::Helo,
                IdentifyMethod::Ehlo,
                IdentifyMethod::Lhlo
            ][m],
            identity,
        }),
        t().prop_map(|tls| ReportEvent::LinkTls { tls }),
        (three(), t()).prop_map(|(r, username)| ReportEvent::LinkAuth {
            result: [AuthResult::Pass, AuthResult::Fail, AuthResult::Error][r],
            username,
        }),
        Just(ReportEvent::LinkDisconnect),
        any::<u32>().prop_map(|msgid| ReportEvent::TxReset { msgid }),
        any::<u32>().prop_map(|msgid| ReportEvent::TxBegin { msgid }),
        (any::<u32>(), tx(), t()).prop_map(|(msgid, result, address)| ReportEvent::TxMail {
            msgid,
            result,
            address,
        }),
        (any::<u32>(), tx(), t()).prop_map(|(msgid, result, address)| ReportEvent::TxRcpt {
            msgid,
            result,
            address,
        }),
        (any::<u32>(), any::<u64>())
            .prop_map(|(msgid, envelope)| ReportEvent::TxEnvelope { msgid, envelope }),
        (any::<u32>(), tx()).prop_map(|(msgid, result)| ReportEvent::TxData { msgid, result }),
        (any::<u32>(), any::<u64>())
            .prop_map(|(msgid, size)| ReportEvent::TxCommit { msgid, size }),
        any::<u32>().prop_map(|msgid| ReportEvent::TxRollback { msgid }),
        t().prop_map(|command| ReportEvent::ProtocolClient { command }),
        t().prop_map(|response| ReportEvent::ProtocolServer { response }),
        (any::<bool>(), t(), t()).prop_map(|(builtin, name, message)| ReportEvent::FilterReport {
            kind: if builtin {
                ReporterKind::Builtin
            } else {
                ReporterKind::Proc
            },
            name,
            message,
        }),
        (phase(), response(), proptest::option::of(t())).prop_map(|(phase, r, param)| {
            ReportEvent::FilterResponse {
                phase,
                response: r.name(),
                param,
            }
        }),
        Just(ReportEvent::Timeout),
    ]
}

/// The sanitising rule, written again independently of the code under test.
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn filter_lines_round_trip(line in filter_line()) {
        let text = line.to_line();
        prop_assert!(!text.contains('\n'));
        prop_assert_eq!(parse_filter_line(&text), Ok(line.clone()));
        prop_assert_eq!(parse_filter_line(&format!("{text}\r\n")), Ok(line));
    }

    /// Text without CR, LF or `|`: format then parse is the identity.
    #[test]
    fn report_events_round_trip(
        version in version(),
        subsystem in subsystem(),
        session in any::<u64>(),
        ms in any::<u64>(),
        event in report_event("[^\r\n|]*".boxed()),
    ) {
        let now = Time::from_millis(ms);
        let line = report_line(version, now, subsystem, session, &event);
        let parsed = parse_daemon_line(&line);
        let Ok(DaemonLine::Report { version: v, time, subsystem: s, event: name, session: id, fields }) = parsed else {
            return Err(TestCaseError::fail(format!("{line:?}: {parsed:?}")));
        };
        prop_assert_eq!(v, version.as_str());
        prop_assert_eq!(time, timestamp(now));
        prop_assert_eq!((s, id, name), (subsystem, session, event.name()));
        prop_assert_eq!(ReportEvent::from_fields(version, name, &fields), Ok(event));
    }

    /// Any text: the fields come back sanitised, in one line, and read as an event that
    /// formats to the same line.
    #[test]
    fn report_events_come_back_sanitised(
        version in version(),
        event in report_event(any::<String>().boxed()),
    ) {
        let line = report_line(version, NOW, Subsystem::SmtpIn, 1, &event);
        prop_assert!(!line.contains(['\n', '\r']));
        let parsed = parse_daemon_line(&line);
        let Ok(DaemonLine::Report { event: name, fields, .. }) = parsed else {
            return Err(TestCaseError::fail(format!("{line:?}: {parsed:?}")));
        };
        let expected = sanitised(&event.fields(version));
        prop_assert_eq!(&fields, &expected);
        let again = ReportEvent::from_fields(version, name, &fields);
        prop_assert!(again.is_ok(), "{:?}", again);
        let again = again.unwrap();
        prop_assert_eq!(report_line(version, NOW, Subsystem::SmtpIn, 1, &again), line);
        if expected == event.fields(version) {
            prop_assert_eq!(again, event);
        }
    }

    #[test]
    fn filter_requests_round_trip(
        version in version(),
        ms in any::<u64>(),
        session in any::<u64>(),
        phase in phase(),
        token in any::<u64>(),
        param in any::<String>(),
    ) {
        let now = Time::from_millis(ms);
        let line = filter_request(version, now, session, phase, token, &param);
        prop_assert!(!line.contains(['\n', '\r']));
        prop_assert_eq!(
            parse_daemon_line(&line),
            Ok(DaemonLine::Filter {
                version: version.as_str().to_owned(),
                time: timestamp(now),
                phase,
                session,
                token,
                param: param.replace(['\r', '\n'], " "),
            })
        );
    }

    #[test]
    fn parsers_never_panic(line in any::<String>()) {
        let _ = parse_filter_line(&line);
        let _ = parse_daemon_line(&line);
        let _ = reply_of(&line);
    }
}
