//! The client session target: a peer that answers with canned or random replies.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use arbitrary::Unstructured;

use super::{blob, byte, count_new, push_blob};
use crate::session::client::{
    ClientConfig, ClientEvent, ClientSession, ClientTls, Message, OutcomeKind, Protocol, TxId,
};
use crate::smtp::{
    Body, ForwardPath, Host, MailParams, Mailbox, Notify, Orcpt, RcptParams, Reply, ReversePath,
};
use crate::time::Time;

/// A canned server reply; the byte after it (`arg`) chooses among variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CannedReply {
    /// `220 mx.example ESMTP`
    Greeting,
    /// An EHLO reply whose extensions are the bits of `arg`: PIPELINING, CHUNKING, 8BITMIME,
    /// SMTPUTF8, DSN, STARTTLS, SIZE 1000 and AUTH PLAIN LOGIN; ENHANCEDSTATUSCODES and
    /// BINARYMIME always.
    Ehlo,
    /// `250 2.0.0 Ok`
    Ok,
    /// `354 Go ahead`
    StartData,
    /// `220 2.0.0 Ready to start TLS`
    TlsReady,
    /// `334` with an empty or a LOGIN challenge.
    Challenge,
    /// `235 2.7.0 Authentication successful`
    AuthOk,
    /// `221 2.0.0 Bye`
    Bye,
    /// `451 4.3.0 Try again later`
    Temporary,
    /// `550 5.1.1 No such user`
    Permanent,
    /// `552 5.3.4 Too much` (treated as temporary after RCPT)
    TooMuch,
    /// `421 4.4.2 Closing`
    Closing,
    /// `502 5.5.1 Unrecognized` (makes the client fall back from EHLO to HELO)
    Unrecognized,
    /// `arg % 8 + 1` lines of a `250` reply, as an LMTP server sends after the data.
    Many,
}

impl CannedReply {
    const ALL: [CannedReply; 14] = [
        CannedReply::Greeting,
        CannedReply::Ehlo,
        CannedReply::Ok,
        CannedReply::StartData,
        CannedReply::TlsReady,
        CannedReply::Challenge,
        CannedReply::AuthOk,
        CannedReply::Bye,
        CannedReply::Temporary,
        CannedReply::Permanent,
        CannedReply::TooMuch,
        CannedReply::Closing,
        CannedReply::Unrecognized,
        CannedReply::Many,
    ];

    fn from_byte(b: u8) -> CannedReply {
        Self::ALL[usize::from(b) % Self::ALL.len()]
    }

    fn to_byte(self) -> u8 {
        Self::ALL.iter().position(|c| *c == self).unwrap_or(0) as u8
    }

    /// The bytes the server sends.
    #[must_use]
    pub fn bytes(self, arg: u8) -> Vec<u8> {
        let s: String = match self {
            CannedReply::Greeting => "220 mx.example ESMTP ready\r\n".into(),
            CannedReply::Ehlo => {
                let mut s = String::from("250-mx.example Hello client\r\n");
                let exts = [
                    "PIPELINING",
                    "CHUNKING",
                    "8BITMIME",
                    "SMTPUTF8",
                    "DSN",
                    "STARTTLS",
                    "SIZE 1000",
                    "AUTH PLAIN LOGIN",
                ];
                for (i, ext) in exts.iter().enumerate() {
                    if arg & (1 << i) != 0 {
                        s.push_str(&format!("250-{ext}\r\n"));
                    }
                }
                s.push_str("250-BINARYMIME\r\n250 ENHANCEDSTATUSCODES\r\n");
                s
            }
            CannedReply::Ok => "250 2.0.0 Ok\r\n".into(),
            CannedReply::StartData => "354 Go ahead\r\n".into(),
            CannedReply::TlsReady => "220 2.0.0 Ready to start TLS\r\n".into(),
            CannedReply::Challenge if arg & 1 == 0 => "334 \r\n".into(),
            CannedReply::Challenge => "334 UGFzc3dvcmQ6\r\n".into(),
            CannedReply::AuthOk => "235 2.7.0 Authentication successful\r\n".into(),
            CannedReply::Bye => "221 2.0.0 Bye\r\n".into(),
            CannedReply::Temporary => "451 4.3.0 Try again later\r\n".into(),
            CannedReply::Permanent => "550 5.1.1 No such user\r\n".into(),
            CannedReply::TooMuch => "552 5.3.4 Too much\r\n".into(),
            CannedReply::Closing => "421 4.4.2 Closing\r\n".into(),
            CannedReply::Unrecognized => "502 5.5.1 Unrecognized\r\n".into(),
            CannedReply::Many => "250 2.1.5 Delivered\r\n".repeat(usize::from(arg % 8) + 1),
        };
        s.into_bytes()
    }
}

/// One step of the fuzzing peer around a [`ClientSession`].
///
/// Byte layout (read by [`ClientOp::decode`], written by [`ClientOp::encode`]): a tag byte
/// (modulo the number of operations, in the order of the variants), then the payload: two
/// bytes for `Reply` and `Send`, one length byte and that many bytes for `Raw` and `Mapped`,
/// one byte for `Advance`, nothing for the others.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientOp {
    /// A canned reply from the server, with its argument byte.
    Reply(CannedReply, u8),
    /// Server bytes, as they are.
    Raw(Vec<u8>),
    /// Server bytes mapped onto the reply alphabet (digits, space, hyphen, a few letters and
    /// CRLF).
    Mapped(Vec<u8>),
    /// The shell queues a message: `rcpts % 5` recipients; `flags` bits choose SMTPUTF8,
    /// BODY=8BITMIME, BODY=BINARYMIME, DSN parameters, a UTF-8 address, a body over 1000
    /// octets, dot-led lines and a null sender.
    Send {
        /// Recipient count (modulo 5).
        rcpts: u8,
        /// Message features.
        flags: u8,
    },
    /// The shell asks the client to quit.
    Quit,
    /// The connection ends.
    Eof,
    /// Jump to the time of `poll_timeout` and fire it.
    Timeout,
    /// Let `n * 11` seconds pass and call `handle_timeout` (often spurious).
    Advance(u8),
    /// A TLS handshake completes (spurious unless the machine asked for one).
    TlsEstablished,
}

const CLIENT_OPS: u8 = 9;

const REPLY_ALPHABET: &[u8] = b"0123452345 -  -.ABCOKPIPELINGCHUNK\r\n\r\n\r\n";

impl ClientOp {
    /// Reads one operation.
    pub fn decode(u: &mut Unstructured<'_>) -> ClientOp {
        match byte(u) % CLIENT_OPS {
            0 => {
                let reply = CannedReply::from_byte(byte(u));
                ClientOp::Reply(reply, byte(u))
            }
            1 => ClientOp::Raw(blob(u).to_vec()),
            2 => ClientOp::Mapped(blob(u).to_vec()),
            3 => {
                let rcpts = byte(u);
                ClientOp::Send {
                    rcpts,
                    flags: byte(u),
                }
            }
            4 => ClientOp::Quit,
            5 => ClientOp::Eof,
            6 => ClientOp::Timeout,
            7 => ClientOp::Advance(byte(u)),
            _ => ClientOp::TlsEstablished,
        }
    }

    /// Appends the operation in the layout [`decode`](Self::decode) reads.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            ClientOp::Reply(r, arg) => out.extend_from_slice(&[0, r.to_byte(), *arg]),
            ClientOp::Raw(b) => {
                out.push(1);
                push_blob(out, b);
            }
            ClientOp::Mapped(b) => {
                out.push(2);
                push_blob(out, b);
            }
            ClientOp::Send { rcpts, flags } => out.extend_from_slice(&[3, *rcpts, *flags]),
            ClientOp::Quit => out.push(4),
            ClientOp::Eof => out.push(5),
            ClientOp::Timeout => out.push(6),
            ClientOp::Advance(n) => out.extend_from_slice(&[7, *n]),
            ClientOp::TlsEstablished => out.push(8),
        }
    }
}

/// The fuzzed sessions' password, `secret`, as it goes on the wire (base64: alone for LOGIN,
/// and the tail of the PLAIN response `\0user\0secret`).
const FUZZ_PASSWORD: &str = "c2VjcmV0";

/// The session settings, from the first byte of the input: bit 0 LMTP, bits 1-2 the STARTTLS
/// policy (off, opportunistic, required, opportunistic), bit 3 credentials, bit 4 no
/// pipelining, bit 5 no chunking, bit 6 the connection is TLS from the start.
pub fn decode_client_config(u: &mut Unstructured<'_>) -> (ClientConfig, bool) {
    let f = byte(u);
    let config = ClientConfig {
        helo: "client.fuzz.example".into(),
        trace: true,
        protocol: if f & 1 != 0 {
            Protocol::Lmtp
        } else {
            Protocol::Smtp
        },
        tls: [
            ClientTls::Off,
            ClientTls::Opportunistic,
            ClientTls::Required,
            ClientTls::Opportunistic,
        ][usize::from((f >> 1) & 3)],
        auth: (f & 8 != 0).then(|| ("user".to_owned(), "secret".to_owned())),
        pipelining: f & 16 == 0,
        chunking: f & 32 == 0,
        ..ClientConfig::default()
    };
    (config, f & 64 != 0)
}

fn message(rcpts: u8, flags: u8) -> Message {
    let bit = |n: u8| flags & (1 << n) != 0;
    let mailbox = |local: &str, domain: &str| Mailbox {
        local: local.to_owned(),
        host: Host::Domain(domain.to_owned()),
    };
    let from = if bit(7) {
        ReversePath::Null
    } else if bit(4) {
        ReversePath::Mailbox(mailbox("jörg", "exämple.org"))
    } else {
        ReversePath::Mailbox(mailbox("alice", "example.org"))
    };
    let body = if bit(2) {
        Some(Body::BinaryMime)
    } else if bit(1) {
        Some(Body::EightBitMime)
    } else {
        None
    };
    let dsn = bit(3);
    let params = MailParams {
        body,
        smtputf8: bit(0),
        ret: dsn.then_some(crate::smtp::Ret::Headers),
        envid: dsn.then(|| "QQ+1".to_owned()),
        ..MailParams::default()
    };
    let rcpts = (0..rcpts % 5)
        .map(|i| {
            let to = ForwardPath::Mailbox(mailbox(&format!("rcpt{i}"), "example.net"));
            let params = RcptParams {
                notify: dsn.then_some(Notify {
                    success: true,
                    failure: true,
                    ..Notify::default()
                }),
                orcpt: dsn.then(|| Orcpt {
                    addr_type: "rfc822".into(),
                    address: format!("rcpt{i}@example.net"),
                }),
            };
            (to, params)
        })
        .collect();
    let mut content = b"Subject: fuzz\r\n\r\n".to_vec();
    if bit(6) {
        content.extend_from_slice(b".leading dot\r\n.\r\n..two\r\n");
    }
    if bit(5) {
        content.extend(std::iter::repeat_n(b'y', 1200));
        content.extend_from_slice(b"\r\n");
    }
    content.extend_from_slice(b"end without newline");
    Message {
        from,
        params,
        rcpts,
        content: Arc::from(content),
    }
}

/// Fuzz target body; also replayed by the corpus test.
///
/// The input is one configuration byte ([`decode_client_config`]) followed by a sequence of
/// [`ClientOp`]s applied to a fresh [`ClientSession`]; at the end the connection is closed.
/// Properties:
///
/// - no panic;
/// - every transaction given to [`ClientSession::send`] gets exactly one
///   [`ClientEvent::Done`] (by the end at the latest), with one outcome per recipient; no
///   report for a transaction that was not sent;
/// - every outcome and failure carries a well-formed reply (it formats and parses back);
///   a delivered outcome carries a 2xx from the server, a permanent one a 5xx; a report with a
///   delivered recipient comes only after the client sent an end of data (`<CRLF>.<CRLF>` or a
///   `BDAT … LAST`);
/// - at most one `Failed` and one `Close`, and nothing after `Close`; a fired timeout and the
///   end of the connection close the session.
pub fn client_session(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let (config, tls) = decode_client_config(&mut u);
    let mut peer = Peer::new(config, tls);
    while !u.is_empty() {
        let op = ClientOp::decode(&mut u);
        peer.apply(op);
    }
    peer.finish();
}

/// Decodes a [`client_session`] input into its configuration, whether the connection starts
/// with TLS, and its operations, for triage (print them with `{:#?}`).
#[must_use]
pub fn decode_client_session(data: &[u8]) -> (ClientConfig, bool, Vec<ClientOp>) {
    let mut u = Unstructured::new(data);
    let (config, tls) = decode_client_config(&mut u);
    let mut ops = Vec::new();
    while !u.is_empty() {
        ops.push(ClientOp::decode(&mut u));
    }
    (config, tls, ops)
}

struct Peer {
    client: ClientSession,
    now: Time,
    sent: BTreeMap<TxId, usize>,
    reported: BTreeSet<TxId>,
    /// Transactions sent after Close (reported at once).
    late: BTreeSet<TxId>,
    failed: bool,
    closed: bool,
    tls_requested: bool,
    output: Vec<u8>,
    /// Ends of data the client sent: `<CRLF>.<CRLF>` and `BDAT … LAST` lines.
    data_ends: usize,
    delivered_reports: usize,
}

impl Peer {
    fn new(config: ClientConfig, tls: bool) -> Peer {
        let now = Time::from_secs(1_700_000_000);
        let mut peer = Peer {
            client: ClientSession::new(Arc::new(config), tls, now),
            now,
            sent: BTreeMap::new(),
            reported: BTreeSet::new(),
            late: BTreeSet::new(),
            failed: false,
            closed: false,
            tls_requested: false,
            output: Vec::new(),
            data_ends: 0,
            delivered_reports: 0,
        };
        peer.drain();
        peer
    }

    fn apply(&mut self, op: ClientOp) {
        match op {
            ClientOp::Reply(r, arg) => self.input(&r.bytes(arg)),
            ClientOp::Raw(bytes) => self.input(&bytes),
            ClientOp::Mapped(bytes) => {
                let mapped: Vec<u8> = bytes
                    .iter()
                    .map(|&b| REPLY_ALPHABET[usize::from(b) % REPLY_ALPHABET.len()])
                    .collect();
                self.input(&mapped);
            }
            ClientOp::Send { rcpts, flags } => {
                let m = message(rcpts, flags);
                let n = m.rcpts.len();
                let closed = self.closed;
                let id = self.client.send(m, self.now);
                if closed {
                    self.late.insert(id);
                }
                assert!(
                    self.sent.insert(id, n).is_none(),
                    "transaction id {id:?} reused"
                );
                self.drain();
            }
            ClientOp::Quit => {
                self.client.quit(self.now);
                self.drain();
            }
            ClientOp::Eof => {
                self.client.handle_eof(self.now);
                self.drain();
                assert!(
                    self.closed,
                    "the end of the connection did not close the session"
                );
            }
            ClientOp::Timeout => {
                if let Some(t) = self.client.poll_timeout() {
                    self.now = self.now.max(t);
                    self.client.handle_timeout(self.now);
                    self.drain();
                    assert!(self.closed, "an expired timeout did not close the session");
                }
            }
            ClientOp::Advance(n) => {
                self.now = self.now + Duration::from_secs(u64::from(n) * 11);
                self.client.handle_timeout(self.now);
                self.drain();
            }
            ClientOp::TlsEstablished => {
                let expected = std::mem::take(&mut self.tls_requested);
                self.client.tls_established(self.now);
                if expected && !self.closed {
                    assert!(self.client.is_tls());
                }
                self.drain();
            }
        }
    }

    fn input(&mut self, bytes: &[u8]) {
        self.client.handle_input(bytes, self.now);
        self.drain();
    }

    fn drain(&mut self) {
        while let Some(bytes) = self.client.poll_transmit() {
            assert!(!self.closed, "{bytes:?} transmitted after Close");
            let old_len = self.output.len();
            self.output.extend_from_slice(&bytes);
            self.data_ends += count_new(&self.output, old_len, b"\r\n.\r\n")
                + count_new(&self.output, old_len, b" LAST\r\n");
        }
        while let Some(event) = self.client.poll_event() {
            // After Close, only the report of a transaction sent after it may come.
            let late = matches!(&event, ClientEvent::Done(r) if self.late.contains(&r.id));
            assert!(!self.closed || late, "event {event:?} after Close");
            self.event(event);
        }
        assert!(
            self.client.poll_transmit().is_none(),
            "bytes transmitted after the events that follow them"
        );
    }

    fn event(&mut self, event: ClientEvent) {
        match event {
            // Traced always, so that the tracing paths are fuzzed; a password never shows.
            ClientEvent::Trace(crate::session::Trace::Client(line)) => {
                assert!(
                    !line.contains(FUZZ_PASSWORD),
                    "a password in the trace: {line}"
                );
            }
            ClientEvent::Trace(_) => {}
            ClientEvent::Done(report) => {
                let Some(&n) = self.sent.get(&report.id) else {
                    panic!("report for a transaction never sent: {report:?}");
                };
                assert!(
                    self.reported.insert(report.id),
                    "second report for {:?}",
                    report.id
                );
                assert_eq!(report.rcpts.len(), n, "one outcome per recipient");
                let mut delivered = false;
                for o in &report.rcpts {
                    check_reply(&o.reply);
                    match o.kind {
                        OutcomeKind::Delivered => {
                            assert!(o.reply.is_positive() && o.remote, "{o:?}");
                            delivered = true;
                        }
                        OutcomeKind::Permanent => assert!(o.reply.is_permanent(), "{o:?}"),
                        OutcomeKind::Temporary => {}
                    }
                }
                if delivered {
                    self.delivered_reports += 1;
                    assert!(
                        self.data_ends >= self.delivered_reports,
                        "a recipient reported delivered before the message was sent"
                    );
                }
            }
            ClientEvent::Failed(e) => {
                assert!(!self.failed, "second Failed");
                self.failed = true;
                check_reply(&e.reply);
            }
            ClientEvent::Close => {
                self.closed = true;
                assert!(self.client.is_closed());
            }
            // Events are queued: the session may have moved on since Ready was pushed.
            ClientEvent::Ready => assert!(!self.failed, "Ready after Failed"),
            ClientEvent::StartTls => self.tls_requested = true,
        }
    }

    fn finish(&mut self) {
        self.client.handle_eof(self.now);
        self.drain();
        assert!(
            self.closed && self.client.is_closed(),
            "not closed at the end"
        );
        // A closed session may still report a deadline; firing it must do nothing (`drain`
        // checks that nothing comes after Close).
        if let Some(t) = self.client.poll_timeout() {
            self.client.handle_timeout(self.now.max(t));
            self.drain();
        }
        let missing: Vec<_> = self
            .sent
            .keys()
            .filter(|id| !self.reported.contains(id))
            .collect();
        assert!(
            missing.is_empty(),
            "transactions never reported: {missing:?}"
        );
    }
}

fn check_reply(r: &Reply) {
    assert!((200..600).contains(&r.code), "reply code {}", r.code);
    let bytes = r.to_bytes();
    // Formatting writes the enhanced code on every line, which can push a line of a server's
    // reply over the parser's limit (see the `reply` target).
    let fits = bytes
        .split(|&b| b == b'\n')
        .all(|l| l.len() <= crate::smtp::reply::MAX_REPLY_LINE);
    if fits {
        assert_eq!(Reply::parse(&bytes).as_ref(), Ok(r), "{r:?}");
    }
}
