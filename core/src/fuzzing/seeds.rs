//! Seed inputs for the session targets, written as operation sequences, and for the
//! `filter_report` target, written as the events and requests they format.
//!
//! The files `corpora/fuzz/server_session/seed-*`, `corpora/fuzz/client_session/seed-*` and
//! `corpora/fuzz/filter_report/seed-*` are these seeds encoded; the corpus replay test checks
//! that they match (and writes them when `PETREL_WRITE_SEEDS=1` is set).

use super::client::{CannedReply as R, ClientOp as C};
use super::filter::ReportInput;
use super::server::{Canned as L, DecisionKind as K, ServerOp as S};

/// Server configuration bytes (see [`decode_server_config`](super::decode_server_config)).
const ALL_ON: [u8; 6] = [0x1f, 0x00, 0x00, 0x23, 19, 0];
const NO_PIPELINING: [u8; 6] = [0x1e, 0x00, 0x00, 0x23, 19, 0];
const TLS_AUTH: [u8; 6] = [0x1f, 0x12, 0x00, 0x23, 19, 0];
const AUTH_PLAINTEXT: [u8; 6] = [0x3f, 0x20, 0x00, 0x23, 19, 0];
const SMALL: [u8; 6] = [0x9f, 0x00, 0x02, 0x00, 3, 0x05];
const HOLD_GREETING: [u8; 6] = [0x1f, 0x80, 0x00, 0x23, 19, 0];

fn server(config: [u8; 6], ops: &[S]) -> Vec<u8> {
    let mut out = config.to_vec();
    for op in ops {
        op.encode(&mut out);
    }
    out
}

fn raw(s: &str) -> S {
    S::Raw(s.as_bytes().to_vec())
}

fn message_lines() -> Vec<S> {
    vec![
        S::Line(L::Header, 0),
        S::Line(L::Empty, 0),
        S::Line(L::DotLine, 0),
        S::Line(L::EndOfData, 0),
    ]
}

fn session(config: [u8; 6], head: &[S], tail: &[S]) -> Vec<u8> {
    let mut ops = head.to_vec();
    ops.extend(message_lines());
    ops.extend_from_slice(tail);
    server(config, &ops)
}

/// Whole server sessions: plain, pipelined, BDAT, STARTTLS and AUTH, delayed and refused
/// answers, smuggling attempts, limits, timeouts, shutdown, early talkers.
#[must_use]
pub fn server_session() -> Vec<(&'static str, Vec<u8>)> {
    let envelope = [
        S::Line(L::Ehlo, 0),
        S::Line(L::Mail, 0),
        S::Line(L::Rcpt, 0),
        S::Line(L::Data, 0),
    ];
    vec![
        ("plain", session(ALL_ON, &envelope, &[S::Line(L::Quit, 0)])),
        (
            // A fixed finding: content and QUIT in one input produced events after Close.
            "regression-content-after-close",
            server(
                ALL_ON,
                &[
                    raw("EHLO c.example\r\n"),
                    raw("MAIL FROM:<a@example.org>\r\n"),
                    raw("RCPT TO:<b@example.org>\r\n"),
                    raw("BDAT 5\r\nhelloQUIT\r\n"),
                ],
            ),
        ),
        (
            "helo-no-pipelining",
            session(
                NO_PIPELINING,
                &[
                    S::Line(L::Helo, 0),
                    S::Line(L::Mail, 0),
                    S::Line(L::Rcpt, 0),
                    S::Line(L::Data, 0),
                ],
                &[raw("QUIT\r\n")],
            ),
        ),
        (
            "pipelined",
            server(
                ALL_ON,
                &[
                    raw("EHLO client.example\r\n"),
                    raw(
                        "MAIL FROM:<a@example.org> SIZE=100\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n",
                    ),
                    raw(
                        "Subject: pipelined\r\n\r\nbody\r\n.\r\nMAIL FROM:<>\r\nRCPT TO:<postmaster>\r\nDATA\r\n",
                    ),
                    raw(".\r\nQUIT\r\n"),
                ],
            ),
        ),
        (
            "pipelining-not-offered",
            server(
                NO_PIPELINING,
                &[
                    raw(
                        "EHLO client.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n",
                    ),
                    raw("body\r\n.\r\nMAIL FROM:<smuggled@example.org>\r\n"),
                ],
            ),
        ),
        (
            "bdat",
            server(
                ALL_ON,
                &[
                    S::Line(L::Ehlo, 0),
                    S::Line(L::MailBinary, 0),
                    S::Line(L::Rcpt, 0),
                    S::Line(L::Bdat, 20),
                    S::Line(L::Octets, 20),
                    S::Line(L::BdatLast, 7),
                    S::Line(L::Octets, 7),
                    S::Line(L::Mail, 0),
                    S::Line(L::Rcpt, 0),
                    S::Line(L::BdatLast, 0),
                    S::Line(L::Quit, 0),
                ],
            ),
        ),
        (
            "bdat-then-data",
            server(
                ALL_ON,
                &[
                    S::Line(L::Ehlo, 0),
                    S::Line(L::Mail, 0),
                    S::Line(L::Rcpt, 0),
                    S::Line(L::Bdat, 3),
                    S::Line(L::Octets, 3),
                    S::Line(L::Data, 0),
                    S::Line(L::Rset, 0),
                    S::Line(L::Bdat, 5),
                ],
            ),
        ),
        (
            "starttls-auth",
            session(
                TLS_AUTH,
                &[
                    S::Line(L::Mail, 0),
                    S::Line(L::Ehlo, 0),
                    S::Line(L::AuthPlain, 0),
                    S::Line(L::StartTls, 0),
                    S::Line(L::Mail, 0),
                    S::TlsEstablished,
                    S::Line(L::Mail, 0),
                    S::Line(L::Ehlo, 0),
                    S::Line(L::AuthPlain, 0),
                    S::Line(L::Mail, 0),
                    S::Line(L::RcptDsn, 0),
                    S::Line(L::Data, 0),
                ],
                &[S::Line(L::Quit, 0)],
            ),
        ),
        (
            "auth-login",
            server(
                AUTH_PLAINTEXT,
                &[
                    S::Line(L::Ehlo, 0),
                    S::Line(L::AuthLogin, 0),
                    S::Line(L::SaslLine, 0),
                    S::Hold,
                    S::Line(L::SaslLine, 0),
                    S::Answer(K::Perm550),
                    S::Line(L::AuthPlainEmpty, 0),
                    S::Line(L::SaslCancel, 0),
                    S::Line(L::AuthPlainEmpty, 0),
                    S::Auto(K::Accept),
                    S::Line(L::SaslLine, 0),
                    S::Line(L::AuthPlain, 0),
                    S::Line(L::Mail, 0),
                ],
            ),
        ),
        (
            "held-answers",
            server(
                ALL_ON,
                &[
                    S::Line(L::Ehlo, 0),
                    S::Hold,
                    raw(
                        "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\nRCPT TO:<d@example.org>\r\nDATA\r\n",
                    ),
                    S::AnswerStale(7),
                    S::Advance(255),
                    S::Answer(K::Accept),
                    S::Answer(K::Perm550),
                    S::Answer(K::Temp451),
                    S::Answer(K::Custom250),
                    S::Answer(K::Accept),
                    raw("Subject: held\r\n\r\n.\r\n"),
                    S::Answer(K::Custom250),
                    S::Line(L::Quit, 0),
                ],
            ),
        ),
        (
            "refusals",
            server(
                ALL_ON,
                &[
                    S::Auto(K::Perm550),
                    S::Line(L::Ehlo, 0),
                    S::Auto(K::Accept),
                    S::Line(L::Ehlo, 0),
                    S::Auto(K::Temp451),
                    S::Line(L::Mail, 0),
                    S::Auto(K::Accept),
                    S::Line(L::Mail, 0),
                    S::Auto(K::Perm550),
                    S::Line(L::Rcpt, 0),
                    S::Line(L::Data, 0),
                    S::Auto(K::Accept),
                    S::Line(L::Rcpt, 0),
                    S::Auto(K::Temp451),
                    S::Line(L::Data, 0),
                    S::Auto(K::Accept),
                    S::Line(L::Data, 0),
                    S::Line(L::Header, 0),
                    S::Auto(K::Disconnect421),
                    S::Line(L::EndOfData, 0),
                ],
            ),
        ),
        (
            "smuggling",
            session(
                ALL_ON,
                &[
                    S::Line(L::Ehlo, 0),
                    S::Line(L::Mail, 0),
                    S::Line(L::Rcpt, 0),
                    S::Line(L::Data, 0),
                    S::Line(L::SmuggleLf, 0),
                    S::Line(L::SmuggleCr, 0),
                    raw("a\r\n.\rMAIL FROM:<x@y.example>\r\n"),
                    raw("a\r\n.\nMAIL FROM:<x@y.example>\r\n"),
                ],
                &[S::Line(L::Quit, 0)],
            ),
        ),
        (
            "smuggling-normalize",
            session(
                SMALL,
                &[
                    raw("EHLO client.example\n"),
                    raw("MAIL FROM:<a@example.org>\n"),
                    S::Line(L::Rcpt, 0),
                    raw("DATA\n"),
                    S::Line(L::SmuggleLf, 0),
                ],
                &[S::Line(L::Quit, 0)],
            ),
        ),
        (
            "limits",
            server(
                SMALL,
                &[
                    S::Line(L::Ehlo, 0),
                    S::Line(L::MailParams, 200),
                    S::Line(L::MailParams, 1),
                    S::Line(L::Rcpt, 0),
                    S::Line(L::Rcpt, 0),
                    S::Line(L::Data, 0),
                    S::Line(L::LongLine, 10),
                    S::Line(L::LongLine, 30),
                    S::Line(L::EndOfData, 0),
                    S::Line(L::LongLine, 100),
                    S::Line(L::Mail, 0),
                    S::Line(L::Noop, 0),
                    S::Line(L::Vrfy, 0),
                    S::Line(L::Help, 0),
                    S::Mapped(b"garbage that maps to commands".to_vec()),
                ],
            ),
        ),
        (
            "utf8",
            session(
                ALL_ON,
                &[
                    S::Line(L::Helo, 0),
                    S::Line(L::MailUtf8, 0),
                    S::Line(L::Ehlo, 0),
                    S::Line(L::MailUtf8, 0),
                    raw("RCPT TO:<ü@exämple.org>\r\n"),
                    S::Line(L::Data, 0),
                ],
                &[],
            ),
        ),
        (
            "timeouts",
            server(
                ALL_ON,
                &[
                    S::Line(L::Ehlo, 0),
                    S::Advance(3),
                    S::Line(L::Mail, 0),
                    S::Line(L::Rcpt, 0),
                    S::Line(L::Data, 0),
                    S::Line(L::Header, 0),
                    S::Timeout,
                    S::Line(L::Quit, 0),
                ],
            ),
        ),
        (
            "shutdown-in-data",
            server(
                ALL_ON,
                &[
                    S::Line(L::Ehlo, 0),
                    S::Line(L::Mail, 0),
                    S::Line(L::Rcpt, 0),
                    S::Line(L::Data, 0),
                    S::Line(L::Header, 0),
                    S::Shutdown,
                    S::Line(L::Quit, 0),
                ],
            ),
        ),
        (
            "commit-held",
            session(
                ALL_ON,
                &[
                    S::Line(L::Ehlo, 0),
                    S::Line(L::Mail, 0),
                    S::Line(L::Rcpt, 0),
                    S::Line(L::Data, 0),
                    S::Hold,
                ],
                &[S::Line(L::Quit, 0), S::Timeout, S::Answer(K::Reply421)],
            ),
        ),
        (
            "early-talker",
            server(
                HOLD_GREETING,
                &[
                    S::Line(L::Ehlo, 0),
                    S::Answer(K::Accept),
                    S::Line(L::Quit, 0),
                ],
            ),
        ),
        (
            "greeting-refused",
            server(HOLD_GREETING, &[S::Answer(K::Perm550), S::Line(L::Ehlo, 0)]),
        ),
    ]
}

fn client(config: u8, ops: &[C]) -> Vec<u8> {
    let mut out = vec![config];
    for op in ops {
        op.encode(&mut out);
    }
    out
}

/// EHLO extension bits of [`CannedReply::Ehlo`](super::CannedReply::Ehlo).
const PIPELINING: u8 = 1;
const CHUNKING: u8 = 2;
const EIGHTBIT: u8 = 4;
const SMTPUTF8: u8 = 8;
const DSN: u8 = 16;
const STARTTLS: u8 = 32;
const SIZE: u8 = 64;
const AUTH: u8 = 128;

fn raw_reply(s: &str) -> C {
    C::Raw(s.as_bytes().to_vec())
}

/// Whole client sessions against servers that accept, refuse, fail and misbehave, including
/// the EHLO replies of OpenSMTPD, Postfix and Gmail.
#[must_use]
pub fn client_session() -> Vec<(&'static str, Vec<u8>)> {
    let send2 = C::Send {
        rcpts: 2,
        flags: 0x40,
    };
    vec![
        (
            "pipelined",
            client(
                0x00,
                &[
                    send2.clone(),
                    C::Reply(R::Greeting, 0),
                    C::Reply(R::Ehlo, PIPELINING | EIGHTBIT | DSN),
                    C::Reply(R::Ok, 0),
                    C::Reply(R::Ok, 0),
                    C::Reply(R::Permanent, 0),
                    C::Reply(R::StartData, 0),
                    C::Reply(R::Ok, 0),
                    C::Quit,
                    C::Reply(R::Bye, 0),
                ],
            ),
        ),
        (
            "lockstep",
            client(
                0x10,
                &[
                    C::Reply(R::Greeting, 0),
                    C::Reply(R::Ehlo, 0),
                    send2.clone(),
                    C::Reply(R::Ok, 0),
                    C::Reply(R::TooMuch, 0),
                    C::Reply(R::Ok, 0),
                    C::Reply(R::StartData, 0),
                    C::Reply(R::Temporary, 0),
                    C::Send {
                        rcpts: 1,
                        flags: 0x80,
                    },
                    C::Reply(R::Ok, 0),
                    C::Reply(R::Ok, 0),
                    C::Reply(R::StartData, 0),
                    C::Reply(R::Ok, 0),
                    C::Quit,
                    C::Reply(R::Bye, 0),
                ],
            ),
        ),
        (
            "bdat",
            client(
                0x00,
                &[
                    C::Reply(R::Greeting, 0),
                    C::Reply(R::Ehlo, PIPELINING | CHUNKING | EIGHTBIT),
                    C::Send {
                        rcpts: 3,
                        flags: 0x04,
                    },
                    C::Reply(R::Ok, 0),
                    C::Reply(R::Ok, 0),
                    C::Reply(R::Ok, 0),
                    C::Reply(R::Temporary, 0),
                    C::Reply(R::Ok, 0),
                    C::Eof,
                ],
            ),
        ),
        (
            "starttls-auth",
            client(
                0x0c,
                &[
                    C::Reply(R::Greeting, 0),
                    C::Reply(R::Ehlo, STARTTLS | PIPELINING),
                    C::Reply(R::TlsReady, 0),
                    C::Reply(R::Ok, 0),
                    C::TlsEstablished,
                    C::Reply(R::Ehlo, PIPELINING | AUTH | SIZE),
                    C::Reply(R::AuthOk, 0),
                    C::Send {
                        rcpts: 1,
                        flags: 0x20,
                    },
                    send2.clone(),
                    C::Reply(R::Ok, 0),
                    C::Reply(R::Ok, 0),
                    C::Reply(R::Ok, 0),
                    C::Reply(R::StartData, 0),
                    C::Reply(R::Ok, 0),
                    C::Reply(R::Closing, 0),
                ],
            ),
        ),
        (
            "auth-login",
            client(
                0x08,
                &[
                    C::Reply(R::Greeting, 0),
                    raw_reply("250-mx.example\r\n250 AUTH LOGIN\r\n"),
                    C::Reply(R::Challenge, 1),
                    C::Reply(R::Permanent, 0),
                    send2.clone(),
                ],
            ),
        ),
        (
            "lmtp",
            client(
                0x01,
                &[
                    C::Reply(R::Greeting, 0),
                    C::Reply(R::Ehlo, PIPELINING | SMTPUTF8 | EIGHTBIT),
                    C::Send {
                        rcpts: 3,
                        flags: 0x11,
                    },
                    C::Reply(R::Ok, 0),
                    C::Reply(R::Ok, 0),
                    C::Reply(R::Permanent, 0),
                    C::Reply(R::Ok, 0),
                    C::Reply(R::StartData, 0),
                    C::Reply(R::Many, 0),
                    C::Reply(R::Temporary, 0),
                    C::Quit,
                    C::Reply(R::Bye, 0),
                ],
            ),
        ),
        (
            "helo-fallback",
            client(
                0x02,
                &[
                    C::Reply(R::Greeting, 0),
                    C::Reply(R::Unrecognized, 0),
                    C::Reply(R::Ok, 0),
                    C::Send {
                        rcpts: 1,
                        flags: 0x02,
                    },
                    send2.clone(),
                    C::Reply(R::Ok, 0),
                    C::Reply(R::Ok, 0),
                    C::Reply(R::StartData, 0),
                    C::Reply(R::Ok, 0),
                    C::Reply(R::Ok, 0),
                ],
            ),
        ),
        (
            "failures",
            client(
                0x04,
                &[
                    send2.clone(),
                    C::Reply(R::Greeting, 0),
                    C::Reply(R::Ehlo, PIPELINING),
                    C::Reply(R::Temporary, 0),
                    C::Reply(R::Permanent, 0),
                    C::Reply(R::Permanent, 0),
                    C::Reply(R::Permanent, 0),
                    send2.clone(),
                    C::Advance(20),
                    C::Timeout,
                    send2,
                ],
            ),
        ),
        (
            "greeting-refused",
            client(
                0x00,
                &[
                    C::Send { rcpts: 1, flags: 0 },
                    raw_reply("554 5.7.1 No SMTP service here\r\n"),
                ],
            ),
        ),
        (
            "opensmtpd",
            client(
                0x02,
                &[
                    raw_reply("220 mail.example.org ESMTP OpenSMTPD\r\n"),
                    raw_reply(
                        "250-mail.example.org Hello client.fuzz.example [192.0.2.1], pleased to meet you\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250-SIZE 36700160\r\n250-DSN\r\n250 HELP\r\n",
                    ),
                    C::Send {
                        rcpts: 2,
                        flags: 0x0a,
                    },
                    raw_reply("250 2.0.0 Ok\r\n"),
                    raw_reply("250 2.1.5 Destination address valid: Recipient ok\r\n"),
                    raw_reply("550 5.1.1 Invalid recipient: <rcpt1@example.net>\r\n"),
                    raw_reply("354 Enter mail, end with \".\" on a line by itself\r\n"),
                    raw_reply("250 2.0.0 73a6b4d8 Message accepted for delivery\r\n"),
                    C::Quit,
                    raw_reply("221 2.0.0 Bye\r\n"),
                ],
            ),
        ),
        (
            "postfix",
            client(
                0x02,
                &[
                    raw_reply("220 mx.example.com ESMTP Postfix (Debian/GNU)\r\n"),
                    raw_reply(
                        "250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n250-ETRN\r\n250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n",
                    ),
                    raw_reply("454 4.7.0 TLS not available due to local problem\r\n"),
                    C::Send {
                        rcpts: 1,
                        flags: 0x09,
                    },
                    raw_reply("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"),
                    raw_reply("250 2.0.0 Ok: 1200 bytes\r\n"),
                    C::Quit,
                    raw_reply("221 2.0.0 Bye\r\n"),
                ],
            ),
        ),
        (
            "gmail",
            client(
                0x02,
                &[
                    raw_reply("220 mx.google.com ESMTP a1si2b3c4d5e6f - gsmtp\r\n"),
                    raw_reply(
                        "250-mx.google.com at your service, [192.0.2.1]\r\n250-SIZE 157286400\r\n250-8BITMIME\r\n250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 SMTPUTF8\r\n",
                    ),
                    raw_reply("220 2.0.0 Ready to start TLS\r\n"),
                    C::TlsEstablished,
                    raw_reply(
                        "250-mx.google.com at your service, [192.0.2.1]\r\n250-SIZE 157286400\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 SMTPUTF8\r\n",
                    ),
                    C::Send { rcpts: 2, flags: 0 },
                    raw_reply("250 2.1.0 OK a1si2b3c4d5e6f - gsmtp\r\n"),
                    raw_reply(
                        "550-5.1.1 The email account that you tried to reach does not exist. Please try\r\n550-5.1.1 double-checking the recipient's email address for typos or\r\n550-5.1.1 unnecessary spaces.\r\n550 5.1.1  https://support.google.com/mail/?p=NoSuchUser - gsmtp\r\n",
                    ),
                    raw_reply("250 2.1.5 OK a1si2b3c4d5e6f - gsmtp\r\n"),
                    raw_reply("250 2.0.0 OK  1700000000 a1si2b3c4d5e6f - gsmtp\r\n"),
                    C::Eof,
                ],
            ),
        ),
        (
            "garbage-reply",
            client(
                0x00,
                &[
                    C::Reply(R::Greeting, 0),
                    C::Mapped(b"random bytes become reply-ish text".to_vec()),
                    raw_reply("HTTP/1.1 400 Bad Request\r\n"),
                ],
            ),
        ),
    ]
}

/// The lines of a live OpenSMTPD 6.8.0p2 session and of constructed 0.7 exchanges, as report
/// events and filter requests, in each protocol version's layout, plus text that needs
/// sanitising.
#[must_use]
pub fn filter_report() -> Vec<(&'static str, Vec<u8>)> {
    use crate::Time;
    use crate::filter::report::{
        AuthResult, Endpoint, Fcrdns, IdentifyMethod, ReportEvent as E, ReporterKind, TxResult,
    };
    use crate::filter::{Phase, Subsystem, Version};

    // The live capture (protocol 0.6) and the constructed examples (0.7).
    const LIVE: Time = Time::from_millis(1_795_310_452_544);
    const SID: u64 = 0x1a5a_c45a_fb4c_ef08;
    const MSGID: u32 = 0x81db_cc9b;
    const NOW: Time = Time::from_millis(1_700_000_000_001);
    const DEAD: u64 = 0xdead_beef;
    let inet = |s: &str| Endpoint::Inet(s.parse().expect("a socket address"));
    let event = |version, now, subsystem, session, event| {
        ReportInput::Event {
            version,
            now,
            session,
            subsystem,
            event,
        }
        .encode()
    };
    let live = |e| event(Version::V0_6, LIVE, Subsystem::SmtpIn, SID, e);
    let v7 = |e| event(Version::V0_7, NOW, Subsystem::SmtpIn, DEAD, e);
    let v5 = |e| event(Version::V0_5, NOW, Subsystem::SmtpIn, DEAD, e);
    let request = |version, session, phase, token, param: &str| {
        ReportInput::Request {
            version,
            now: NOW,
            session,
            phase,
            token,
            param: param.to_owned(),
        }
        .encode()
    };
    vec![
        (
            "live-link-connect",
            live(E::LinkConnect {
                rdns: "localhost".into(),
                fcrdns: Fcrdns::Pass,
                src: inet("127.0.0.1:58716"),
                dest: inet("127.0.0.1:2525"),
            }),
        ),
        (
            "live-request-connect",
            request(
                Version::V0_6,
                SID,
                Phase::Connect,
                0x3c34_2446_fa40_fb9c,
                "localhost|127.0.0.1",
            ),
        ),
        (
            "live-link-greeting",
            live(E::LinkGreeting {
                hostname: "mx.local.test".into(),
            }),
        ),
        (
            "live-link-identify",
            live(E::LinkIdentify {
                method: IdentifyMethod::Ehlo,
                identity: "client.test".into(),
            }),
        ),
        (
            "live-protocol-server-ehlo",
            live(E::ProtocolServer {
                response: "250-mx.local.test Hello client.test [127.0.0.1], pleased to meet you"
                    .into(),
            }),
        ),
        ("live-tx-begin", live(E::TxBegin { msgid: MSGID })),
        (
            "live-tx-mail",
            live(E::TxMail {
                msgid: MSGID,
                result: TxResult::Ok,
                address: "bob@sender.test".into(),
            }),
        ),
        (
            "live-filter-response-reject",
            live(E::FilterResponse {
                phase: Phase::RcptTo,
                response: "reject",
                param: Some("550 5.7.1 go away".into()),
            }),
        ),
        (
            "live-tx-rcpt-permfail",
            live(E::TxRcpt {
                msgid: MSGID,
                result: TxResult::PermFail,
                address: "reject-me@local.test".into(),
            }),
        ),
        (
            "live-tx-envelope",
            live(E::TxEnvelope {
                msgid: MSGID,
                envelope: 0x81db_cc9b_82c1_651b,
            }),
        ),
        (
            "live-request-data",
            request(Version::V0_6, SID, Phase::Data, 0x3c34_244b_7af5_e41f, ""),
        ),
        (
            "live-tx-data",
            live(E::TxData {
                msgid: MSGID,
                result: TxResult::Ok,
            }),
        ),
        (
            "live-request-data-line-with-pipe",
            request(
                Version::V0_6,
                SID,
                Phase::DataLine,
                0x3c34_244c_8123_fa9f,
                "Subject: a|b test",
            ),
        ),
        (
            "live-request-data-line-stuffed",
            request(
                Version::V0_6,
                SID,
                Phase::DataLine,
                0x3c34_244c_8123_fa9f,
                "..leading dot",
            ),
        ),
        (
            "live-tx-commit",
            live(E::TxCommit {
                msgid: MSGID,
                size: 470,
            }),
        ),
        ("live-tx-reset", live(E::TxReset { msgid: MSGID })),
        (
            "live-filter-response-quit",
            live(E::FilterResponse {
                phase: Phase::Quit,
                response: "proceed",
                param: None,
            }),
        ),
        ("live-link-disconnect", live(E::LinkDisconnect)),
        (
            "v07-link-auth",
            v7(E::LinkAuth {
                result: AuthResult::Pass,
                username: "alice".into(),
            }),
        ),
        (
            "v07-tx-mail",
            v7(E::TxMail {
                msgid: 0x0bad_c0de,
                result: TxResult::Ok,
                address: "alice@example.org".into(),
            }),
        ),
        (
            "v07-protocol-client-auth-masked",
            v7(E::ProtocolClient {
                command: "AUTH PLAIN ********".into(),
            }),
        ),
        (
            "v07-link-connect-ipv6-no-rdns",
            v7(E::LinkConnect {
                rdns: String::new(),
                fcrdns: Fcrdns::Fail,
                src: inet("[2001:db8::5]:40000"),
                dest: inet("[2001:db8::1]:25"),
            }),
        ),
        (
            "v07-request-connect-no-rdns",
            request(Version::V0_7, DEAD, Phase::Connect, 1, "|[2001:db8::5]"),
        ),
        (
            "v07-request-mail-from",
            request(
                Version::V0_7,
                DEAD,
                Phase::MailFrom,
                7,
                "bounce+x@list.example",
            ),
        ),
        (
            "v07-filter-response-disconnect",
            v7(E::FilterResponse {
                phase: Phase::Connect,
                response: "disconnect",
                param: Some("550 5.7.1 you are not welcome".into()),
            }),
        ),
        (
            "v07-link-connect-unix",
            v7(E::LinkConnect {
                rdns: "localhost".into(),
                fcrdns: Fcrdns::Pass,
                src: Endpoint::Unix("/var/run/smtpd.sock".into()),
                dest: Endpoint::Unix("/var/run/smtpd.sock".into()),
            }),
        ),
        (
            "v07-link-tls",
            v7(E::LinkTls {
                tls: "version=TLSv1.3:cipher=TLS_AES_256_GCM_SHA384:bits=256".into(),
            }),
        ),
        (
            "v07-filter-report-with-pipes",
            v7(E::FilterReport {
                kind: ReporterKind::Proc,
                name: "grey|list".into(),
                message: "deferred|retry in 5 min".into(),
            }),
        ),
        ("v07-timeout", v7(E::Timeout)),
        (
            "v07-smtp-out-lhlo",
            event(
                Version::V0_7,
                NOW,
                Subsystem::SmtpOut,
                DEAD,
                E::LinkIdentify {
                    method: IdentifyMethod::Lhlo,
                    identity: "mx.example.org".into(),
                },
            ),
        ),
        (
            "v05-link-auth-pipe-in-username",
            v5(E::LinkAuth {
                result: AuthResult::Error,
                username: "a|b".into(),
            }),
        ),
        (
            "v05-tx-rcpt",
            v5(E::TxRcpt {
                msgid: 1,
                result: TxResult::TempFail,
                address: "x|y@example.org".into(),
            }),
        ),
        (
            "sanitise-protocol-client-crlf",
            v7(E::ProtocolClient {
                command: "RCPT TO:<a@b>\r\nDATA".into(),
            }),
        ),
        (
            "sanitise-request-newline",
            request(Version::V0_7, DEAD, Phase::Helo, 2, "evil\nfilter-result|x"),
        ),
    ]
}
