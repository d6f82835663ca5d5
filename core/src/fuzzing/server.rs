//! The server session target: a shell driven by a sequence of operations.

use std::sync::Arc;
use std::time::Duration;

use arbitrary::Unstructured;

use super::{blob, byte, count_new, crlf_only, push_blob};
use crate::session::server::{
    AuthPolicy, ConnectionInfo, Envelope, Request, ServerConfig, ServerEvent, ServerSession,
    TlsPolicy,
};
use crate::session::{Decision, RequestId};
use crate::smtp::{BareNewline, EnhancedCode, Reply, ReplyParser};
use crate::time::Time;

/// How the fuzzing shell answers a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecisionKind {
    /// [`Decision::Accept`].
    Accept,
    /// [`Decision::Reply`] with a 250 of the shell's own (for [`Request::Data`], which a 2xx
    /// would not accept properly, [`Decision::Accept`]).
    Custom250,
    /// [`Decision::Reply`] with a 451 (temporary refusal).
    Temp451,
    /// [`Decision::Reply`] with a 550 (permanent refusal).
    Perm550,
    /// [`Decision::Reply`] with a 421 (the machine closes the session).
    Reply421,
    /// [`Decision::Disconnect`] with a 421.
    Disconnect421,
    /// [`Decision::Disconnect`] with a 554.
    Disconnect554,
}

impl DecisionKind {
    const ALL: [DecisionKind; 7] = [
        DecisionKind::Accept,
        DecisionKind::Custom250,
        DecisionKind::Temp451,
        DecisionKind::Perm550,
        DecisionKind::Reply421,
        DecisionKind::Disconnect421,
        DecisionKind::Disconnect554,
    ];

    fn from_byte(b: u8) -> DecisionKind {
        Self::ALL[usize::from(b) % Self::ALL.len()]
    }

    fn to_byte(self) -> u8 {
        Self::ALL.iter().position(|k| *k == self).unwrap_or(0) as u8
    }

    fn decision(self, request: &Request) -> Decision {
        let reply = |code, class, text: &'static str| {
            Reply::fixed(code, EnhancedCode::new(class, 0, 0), text)
        };
        match self {
            DecisionKind::Accept => Decision::Accept,
            DecisionKind::Custom250 if matches!(request, Request::Data) => Decision::Accept,
            DecisionKind::Custom250 => Decision::Reply(reply(250, 2, "Fuzz shell says ok")),
            DecisionKind::Temp451 => Decision::Reply(reply(451, 4, "Try again later")),
            DecisionKind::Perm550 => Decision::Reply(reply(550, 5, "Refused by policy")),
            DecisionKind::Reply421 => Decision::Reply(reply(421, 4, "Shell going away")),
            DecisionKind::Disconnect421 => Decision::Disconnect(reply(421, 4, "Bye now")),
            DecisionKind::Disconnect554 => Decision::Disconnect(reply(554, 5, "Go away")),
        }
    }

    fn accepts(self) -> bool {
        matches!(self, DecisionKind::Accept | DecisionKind::Custom250)
    }
}

/// A canned client line; the byte after it (`arg`) fills in numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Canned {
    /// `EHLO client.example`
    Ehlo,
    /// `HELO client.example`
    Helo,
    /// `MAIL FROM:<alice@example.org>`
    Mail,
    /// `MAIL FROM:<> SIZE=arg*64 BODY=8BITMIME RET=HDRS ENVID=QQ+2B1`
    MailParams,
    /// `MAIL FROM:<bob@example.org> BODY=BINARYMIME`
    MailBinary,
    /// `MAIL FROM:<jörg@exämple.org> SMTPUTF8`
    MailUtf8,
    /// `RCPT TO:<carol@example.net>`
    Rcpt,
    /// `RCPT TO:<Postmaster> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;carol@example.net`
    RcptDsn,
    /// `DATA`
    Data,
    /// `BDAT arg`
    Bdat,
    /// `BDAT arg LAST`
    BdatLast,
    /// `RSET`
    Rset,
    /// `NOOP`
    Noop,
    /// `QUIT`
    Quit,
    /// `VRFY postmaster`
    Vrfy,
    /// `HELP`
    Help,
    /// `STARTTLS`
    StartTls,
    /// `AUTH PLAIN` with a valid initial response.
    AuthPlain,
    /// `AUTH PLAIN` without one (a 334 follows).
    AuthPlainEmpty,
    /// `AUTH LOGIN`
    AuthLogin,
    /// A base64 SASL response line (`dXNlcg==`, "user").
    SaslLine,
    /// `*` (cancels an AUTH exchange).
    SaslCancel,
    /// A header line of a message.
    Header,
    /// A body line starting with a stuffed dot.
    DotLine,
    /// The end-of-data marker line, `.`.
    EndOfData,
    /// A smuggling attempt: `\n.\n` then a MAIL command.
    SmuggleLf,
    /// A smuggling attempt: `\r.\r\n` then a MAIL command.
    SmuggleCr,
    /// A line of `arg * 8` octets.
    LongLine,
    /// An empty line.
    Empty,
    /// `arg` octets of binary content (for BDAT).
    Octets,
}

impl Canned {
    const ALL: [Canned; 30] = [
        Canned::Ehlo,
        Canned::Helo,
        Canned::Mail,
        Canned::MailParams,
        Canned::MailBinary,
        Canned::MailUtf8,
        Canned::Rcpt,
        Canned::RcptDsn,
        Canned::Data,
        Canned::Bdat,
        Canned::BdatLast,
        Canned::Rset,
        Canned::Noop,
        Canned::Quit,
        Canned::Vrfy,
        Canned::Help,
        Canned::StartTls,
        Canned::AuthPlain,
        Canned::AuthPlainEmpty,
        Canned::AuthLogin,
        Canned::SaslLine,
        Canned::SaslCancel,
        Canned::Header,
        Canned::DotLine,
        Canned::EndOfData,
        Canned::SmuggleLf,
        Canned::SmuggleCr,
        Canned::LongLine,
        Canned::Empty,
        Canned::Octets,
    ];

    fn from_byte(b: u8) -> Canned {
        Self::ALL[usize::from(b) % Self::ALL.len()]
    }

    fn to_byte(self) -> u8 {
        Self::ALL.iter().position(|c| *c == self).unwrap_or(0) as u8
    }

    /// The bytes the client sends.
    #[must_use]
    pub fn bytes(self, arg: u8) -> Vec<u8> {
        let line = |s: &str| format!("{s}\r\n").into_bytes();
        match self {
            Canned::Ehlo => line("EHLO client.example"),
            Canned::Helo => line("HELO client.example"),
            Canned::Mail => line("MAIL FROM:<alice@example.org>"),
            Canned::MailParams => line(&format!(
                "MAIL FROM:<> SIZE={} BODY=8BITMIME RET=HDRS ENVID=QQ+2B1",
                u32::from(arg) * 64
            )),
            Canned::MailBinary => line("MAIL FROM:<bob@example.org> BODY=BINARYMIME"),
            Canned::MailUtf8 => line("MAIL FROM:<jörg@exämple.org> SMTPUTF8"),
            Canned::Rcpt => line("RCPT TO:<carol@example.net>"),
            Canned::RcptDsn => {
                line("RCPT TO:<Postmaster> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;carol@example.net")
            }
            Canned::Data => line("DATA"),
            Canned::Bdat => line(&format!("BDAT {arg}")),
            Canned::BdatLast => line(&format!("BDAT {arg} LAST")),
            Canned::Rset => line("RSET"),
            Canned::Noop => line("NOOP"),
            Canned::Quit => line("QUIT"),
            Canned::Vrfy => line("VRFY postmaster"),
            Canned::Help => line("HELP"),
            Canned::StartTls => line("STARTTLS"),
            // "\0user\0secret"
            Canned::AuthPlain => line("AUTH PLAIN AHVzZXIAc2VjcmV0"),
            Canned::AuthPlainEmpty => line("AUTH PLAIN"),
            Canned::AuthLogin => line("AUTH LOGIN"),
            Canned::SaslLine => line("dXNlcg=="),
            Canned::SaslCancel => line("*"),
            Canned::Header => line("Subject: fuzzing"),
            Canned::DotLine => line("..leading dot"),
            Canned::EndOfData => line("."),
            Canned::SmuggleLf => b"\n.\nMAIL FROM:<smuggler@example.com>\r\n".to_vec(),
            Canned::SmuggleCr => b"\r.\r\nMAIL FROM:<smuggler@example.com>\r\n".to_vec(),
            Canned::LongLine => {
                let mut l = vec![b'x'; usize::from(arg) * 8];
                l.extend_from_slice(b"\r\n");
                l
            }
            Canned::Empty => line(""),
            Canned::Octets => (0..arg).map(|i| i.wrapping_mul(37)).collect(),
        }
    }
}

/// One step of the fuzzing shell around a [`ServerSession`].
///
/// Byte layout (read by [`ServerOp::decode`], written by [`ServerOp::encode`]): a tag byte
/// (taken modulo the number of operations, in the order of the variants), then the payload:
/// one length byte and that many bytes for `Raw` and `Mapped`, two bytes for `Line`, one byte
/// for `Auto`, `Answer`, `AnswerStale` and `Advance`, nothing for the others. Input that runs
/// out reads as zero bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerOp {
    /// Client bytes, as they are.
    Raw(Vec<u8>),
    /// Client bytes, each mapped onto the SMTP alphabet (letters of the verbs, digits,
    /// `<>:@.=,;+-` and CRLF), as smtp-proto's fuzzer does.
    Mapped(Vec<u8>),
    /// A canned client line, with its argument byte.
    Line(Canned, u8),
    /// Stop answering requests at once: they wait for `Answer`.
    Hold,
    /// Answer every request at once, this way (the default is `Auto(Accept)`); answers the
    /// outstanding request, if any.
    Auto(DecisionKind),
    /// Answer the outstanding request, if any.
    Answer(DecisionKind),
    /// Answer with an id that is not the outstanding request's (must be ignored).
    AnswerStale(u8),
    /// Let `n * 7` seconds pass and call `handle_timeout` (often spurious).
    Advance(u8),
    /// Jump to the time of `poll_timeout` and fire it.
    Timeout,
    /// Complete a TLS handshake (spurious unless the machine asked for one).
    TlsEstablished,
    /// The shell shuts down.
    Shutdown,
}

const SERVER_OPS: u8 = 11;

/// The alphabet `Mapped` bytes are mapped onto; CR and LF appear often.
const SMTP_ALPHABET: &[u8] = b"EHLOMAILFROMRCPTTODATABDATRSETQUITSTARTTLSAUTHPLAINLAST \
ehlomailrcptdata0123456789<>:@.=,;+-_[]\"\\\r\n\r\n\r\n\r\n.\r\n";

impl ServerOp {
    /// Reads one operation.
    pub fn decode(u: &mut Unstructured<'_>) -> ServerOp {
        match byte(u) % SERVER_OPS {
            0 => ServerOp::Raw(blob(u).to_vec()),
            1 => ServerOp::Mapped(blob(u).to_vec()),
            2 => {
                let canned = Canned::from_byte(byte(u));
                ServerOp::Line(canned, byte(u))
            }
            3 => ServerOp::Hold,
            4 => ServerOp::Auto(DecisionKind::from_byte(byte(u))),
            5 => ServerOp::Answer(DecisionKind::from_byte(byte(u))),
            6 => ServerOp::AnswerStale(byte(u)),
            7 => ServerOp::Advance(byte(u)),
            8 => ServerOp::Timeout,
            9 => ServerOp::TlsEstablished,
            _ => ServerOp::Shutdown,
        }
    }

    /// Appends the operation in the layout [`decode`](Self::decode) reads.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            ServerOp::Raw(b) => {
                out.push(0);
                push_blob(out, b);
            }
            ServerOp::Mapped(b) => {
                out.push(1);
                push_blob(out, b);
            }
            ServerOp::Line(c, arg) => out.extend_from_slice(&[2, c.to_byte(), *arg]),
            ServerOp::Hold => out.push(3),
            ServerOp::Auto(k) => out.extend_from_slice(&[4, k.to_byte()]),
            ServerOp::Answer(k) => out.extend_from_slice(&[5, k.to_byte()]),
            ServerOp::AnswerStale(n) => out.extend_from_slice(&[6, *n]),
            ServerOp::Advance(n) => out.extend_from_slice(&[7, *n]),
            ServerOp::Timeout => out.push(8),
            ServerOp::TlsEstablished => out.push(9),
            ServerOp::Shutdown => out.push(10),
        }
    }
}

/// The listener settings, from the first six bytes of the input.
///
/// The first six bytes of a [`server_session`] input, decoded.
#[derive(Clone, Debug)]
pub struct ServerSetup {
    /// The listener settings.
    pub config: ServerConfig,
    /// The connection is TLS from the start.
    pub tls: bool,
    /// The shell starts without answering requests (as after [`ServerOp::Hold`]), so that the
    /// greeting can be delayed and early talkers tested.
    pub hold: bool,
}

/// Byte 0, bit by bit: pipelining, chunking, 8BITMIME, SMTPUTF8, DSN, AUTH before TLS, lenient
/// paths, bare newlines normalised. Byte 1: TLS policy (low nibble modulo 3: off, offer,
/// require) and AUTH policy (bits 4-6 modulo 3: off, optional, required); bit 3 set means the
/// connection is TLS from the start, bit 7 that the shell starts holding its answers. Byte 2: message size limit (0: none; else `n * 64`
/// octets). Byte 3: recipients per transaction (`1 + n % 4`) and messages per session
/// (`1 + (n >> 4) % 3`). Byte 4: errors before the session is closed (`1 + n % 32`). Byte 5:
/// command line limit (bit 0: 64 instead of 512) and text line limit (bits 1-2: 1000, none,
/// 40, 1000).
pub fn decode_server_config(u: &mut Unstructured<'_>) -> ServerSetup {
    let f = byte(u);
    let p = byte(u);
    let size = byte(u);
    let counts = byte(u);
    let errors = byte(u);
    let lines = byte(u);
    let bit = |n: u8| f & (1 << n) != 0;
    let config = ServerConfig {
        hostname: "mx.fuzz.example".into(),
        trace: true,
        pipelining: bit(0),
        chunking: bit(1),
        eight_bit_mime: bit(2),
        smtputf8: bit(3),
        dsn: bit(4),
        auth_plaintext: bit(5),
        lenient_paths: bit(6),
        bare_newline: if bit(7) {
            BareNewline::Normalize
        } else {
            BareNewline::Reject
        },
        tls: [TlsPolicy::Off, TlsPolicy::Offer, TlsPolicy::Require][usize::from(p & 0x7) % 3],
        auth: [AuthPolicy::Off, AuthPolicy::Optional, AuthPolicy::Required]
            [usize::from((p >> 4) & 7) % 3],
        max_message_size: u64::from(size) * 64,
        max_recipients: 1 + usize::from(counts % 4),
        max_messages: 1 + usize::from((counts >> 4) % 3),
        max_errors: 1 + usize::from(errors % 32),
        max_command_line: if lines & 1 != 0 { 64 } else { 512 },
        max_text_line: [1000, 0, 40, 1000][usize::from((lines >> 1) & 3)],
        ..ServerConfig::default()
    };
    ServerSetup {
        config,
        tls: p & 0x8 != 0,
        hold: p & 0x80 != 0,
    }
}

/// Fuzz target body; also replayed by the corpus test.
///
/// The input is six configuration bytes ([`decode_server_config`]) followed by a sequence of
/// [`ServerOp`]s, applied to a fresh [`ServerSession`] by a shell that drains it after every
/// step as the driving contract says. Properties:
///
/// - no panic;
/// - every chunk from `poll_transmit` is a sequence of complete, well-formed replies (they parse
///   with [`ReplyParser`]);
/// - at most one request is outstanding; while it is, input and timeouts produce neither
///   output nor events (replies stay in command order); answers with a stale id are ignored;
/// - a [`Request::Rcpt`] comes only after an accepted MAIL, a [`Request::Data`] only inside a
///   transaction the shell accepted (a MAIL and at least one RCPT since the last commit,
///   accepted EHLO or HELO, or STARTTLS), and a [`Request::Commit`] carries exactly that envelope;
/// - a [`ServerEvent::DataChunk`] comes only between the acceptance of [`Request::Data`] and
///   the commit or abort; a [`Request::Commit`] comes only after one, with the size of the
///   chunks; after DATA (a 354 was sent) its content has CRLF line endings only and the input
///   holds an unused `<LF>.<CRLF>` end-of-data marker, after BDAT an unused `LAST`;
/// - nothing at all comes after [`ServerEvent::Close`]; a spurious timeout does nothing, an
///   expired one closes the session; a session that waits for its client always has a timer;
///   a shutdown closes the session.
pub fn server_session(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let mut shell = Shell::new(decode_server_config(&mut u));
    while !u.is_empty() {
        let op = ServerOp::decode(&mut u);
        shell.apply(op);
    }
    shell.finish();
}

/// Decodes a [`server_session`] input into its setup and operations, for triage (print them
/// with `{:#?}`).
#[must_use]
pub fn decode_server_session(data: &[u8]) -> (ServerSetup, Vec<ServerOp>) {
    let mut u = Unstructured::new(data);
    let setup = decode_server_config(&mut u);
    let mut ops = Vec::new();
    while !u.is_empty() {
        ops.push(ServerOp::decode(&mut u));
    }
    (setup, ops)
}

/// What kind of body the current transaction is receiving.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Receiving {
    /// DATA was accepted and 354 sent.
    Data,
    /// BDAT was accepted.
    Bdat,
}

struct Shell {
    session: ServerSession,
    now: Time,
    auto: Option<DecisionKind>,
    outstanding: Option<(RequestId, Request)>,
    closed: bool,
    tls_requested: bool,
    replies: ReplyParser,
    receiving: Option<Receiving>,
    content: Vec<u8>,
    input: Vec<u8>,
    /// `<LF>.<CRLF>` sequences in the input, and how many commits after DATA used one.
    markers: usize,
    markers_used: usize,
    /// `LAST` words in the input, and how many commits after BDAT used one.
    lasts: usize,
    lasts_used: usize,
    /// Set while a step must produce no output and no event.
    quiet: Option<&'static str>,
    /// The transaction as the shell accepted it: the MAIL request and the RCPT requests after
    /// it. Cleared by a commit, an accepted EHLO/HELO, STARTTLS and Close. (RSET is not a request,
    /// so the shell cannot see it: a transaction reset that way stays here until the next
    /// MAIL, which only weakens the checks.)
    transaction: Option<Envelope>,
}

impl Shell {
    fn new(setup: ServerSetup) -> Shell {
        let now = Time::from_secs(1_700_000_000);
        let info = ConnectionInfo {
            peer: "192.0.2.7".into(),
            tls: setup.tls,
        };
        let mut shell = Shell {
            session: ServerSession::new(Arc::new(setup.config), info, now),
            now,
            auto: (!setup.hold).then_some(DecisionKind::Accept),
            outstanding: None,
            closed: false,
            tls_requested: false,
            replies: ReplyParser::new(),
            receiving: None,
            content: Vec::new(),
            input: Vec::new(),
            markers: 0,
            markers_used: 0,
            lasts: 0,
            lasts_used: 0,
            quiet: None,
            transaction: None,
        };
        shell.drain();
        shell
    }

    fn apply(&mut self, op: ServerOp) {
        match op {
            ServerOp::Raw(bytes) => self.input(&bytes),
            ServerOp::Mapped(bytes) => {
                let mapped: Vec<u8> = bytes
                    .iter()
                    .map(|&b| SMTP_ALPHABET[usize::from(b) % SMTP_ALPHABET.len()])
                    .collect();
                self.input(&mapped);
            }
            ServerOp::Line(canned, arg) => self.input(&canned.bytes(arg)),
            ServerOp::Hold => self.auto = None,
            ServerOp::Auto(kind) => {
                self.auto = Some(kind);
                self.answer(kind);
            }
            ServerOp::Answer(kind) => self.answer(kind),
            ServerOp::AnswerStale(n) => {
                let id = RequestId(u64::from(n));
                if self.outstanding.as_ref().is_some_and(|(o, _)| *o == id) {
                    return;
                }
                self.session.answer(id, Decision::Accept, self.now);
                self.drain_quietly("a stale answer");
            }
            ServerOp::Advance(n) => {
                let deadline = self.session.poll_timeout();
                self.now = self.now + Duration::from_secs(u64::from(n) * 7);
                self.session.handle_timeout(self.now);
                match deadline {
                    Some(d) if d <= self.now => {
                        self.drain();
                        assert!(self.closed, "an expired timeout did not close the session");
                    }
                    _ => self.drain_quietly("a spurious timeout"),
                }
            }
            ServerOp::Timeout => {
                if !self.closed && self.outstanding.is_none() {
                    assert!(
                        self.session.poll_timeout().is_some(),
                        "a session waiting for its client has no timer"
                    );
                }
                if let Some(d) = self.session.poll_timeout() {
                    self.now = self.now.max(d);
                    self.session.handle_timeout(self.now);
                    self.drain();
                    assert!(self.closed, "an expired timeout did not close the session");
                }
            }
            ServerOp::TlsEstablished => {
                let expected = std::mem::take(&mut self.tls_requested);
                self.session.tls_established(self.now);
                if expected && !self.closed {
                    assert!(self.session.is_tls(), "TLS not active after the handshake");
                }
                self.drain_quietly("a TLS handshake");
            }
            ServerOp::Shutdown => {
                self.outstanding = None;
                self.session.shutdown();
                self.drain();
                assert!(self.closed, "shutdown did not close the session");
                assert!(self.session.is_closed());
            }
        }
    }

    fn input(&mut self, bytes: &[u8]) {
        if !self.tls_requested {
            let old_len = self.input.len();
            self.input.extend_from_slice(bytes);
            self.markers += count_new(&self.input, old_len, b"\n.\r\n");
            self.lasts += count_new(&self.input, old_len, b"LAST");
        }
        self.session.handle_input(bytes, self.now);
        if self.outstanding.is_some() {
            self.drain_quietly("input while a request is outstanding");
        } else {
            self.drain();
        }
    }

    fn answer(&mut self, kind: DecisionKind) {
        self.answer_only(kind);
        self.drain();
    }

    /// Answers the outstanding request without draining the machine.
    fn answer_only(&mut self, kind: DecisionKind) {
        let Some((id, request)) = self.outstanding.take() else {
            return;
        };
        if kind.accepts() {
            match &request {
                Request::Data => {
                    self.receiving = Some(Receiving::Bdat);
                    self.content.clear();
                }
                Request::Mail { from, params } => {
                    self.transaction = Some(Envelope {
                        from: from.clone(),
                        params: params.clone(),
                        rcpts: Vec::new(),
                    });
                }
                // An accepted EHLO or HELO resets the transaction (RFC 5321 section 4.1.4); a
                // refused one leaves the session as it was.
                Request::Helo { .. } => self.transaction = None,
                Request::Rcpt { to, params } => {
                    let Some(tx) = &mut self.transaction else {
                        panic!("RCPT {to} accepted outside a transaction");
                    };
                    tx.rcpts.push((to.clone(), params.clone()));
                }
                _ => {}
            }
        }
        let decision = kind.decision(&request);
        self.session.answer(id, decision, self.now);
    }

    fn drain_quietly(&mut self, why: &'static str) {
        self.quiet = Some(why);
        self.drain();
        self.quiet = None;
    }

    fn drain(&mut self) {
        loop {
            while let Some(bytes) = self.session.poll_transmit() {
                self.transmitted(&bytes);
            }
            if let Some(event) = self.session.poll_event() {
                assert!(!self.closed, "event {event:?} after Close");
                if let Some(why) = self.quiet {
                    panic!("{why} produced the event {event:?}");
                }
                self.event(event);
                continue;
            }
            // Answer at once only when the machine has nothing left to say, so that its
            // output and events before the request are checked first (no recursion either).
            match (self.auto, &self.outstanding) {
                (Some(kind), Some(_)) => self.answer_only(kind),
                _ => break,
            }
        }
    }

    fn transmitted(&mut self, bytes: &[u8]) {
        assert!(!self.closed, "{bytes:?} transmitted after Close");
        if let Some(why) = self.quiet {
            panic!("{why} produced output {:?}", String::from_utf8_lossy(bytes));
        }
        let mut rest = bytes;
        while !rest.is_empty() {
            match self.replies.feed(rest) {
                Ok((reply, used)) => {
                    if let Some(reply) = reply
                        && reply.code == 354
                        && self.receiving.is_some()
                    {
                        self.receiving = Some(Receiving::Data);
                    }
                    rest = &rest[used..];
                }
                Err(e) => panic!(
                    "malformed reply transmitted: {e} in {:?}",
                    String::from_utf8_lossy(bytes)
                ),
            }
        }
        assert!(
            !self.replies.is_partial(),
            "transmitted bytes end inside a reply: {:?}",
            String::from_utf8_lossy(bytes)
        );
    }

    fn event(&mut self, event: ServerEvent) {
        match event {
            ServerEvent::Request(id, request) => {
                if let Some((other, _)) = &self.outstanding {
                    panic!("request {id:?} {request:?} while {other:?} is outstanding");
                }
                match &request {
                    Request::Data => {
                        assert!(self.receiving.is_none(), "Data requested while receiving");
                        assert!(
                            self.transaction
                                .as_ref()
                                .is_some_and(|tx| !tx.rcpts.is_empty()),
                            "Data requested without an accepted MAIL and RCPT"
                        );
                    }
                    Request::Rcpt { to, .. } => {
                        assert!(
                            self.transaction.is_some(),
                            "RCPT {to} requested before any accepted MAIL"
                        );
                    }
                    Request::Commit { size, envelope } => {
                        let accepted = self.transaction.take();
                        assert_eq!(
                            Some(envelope),
                            accepted.as_ref(),
                            "the committed envelope is not the accepted MAIL and RCPTs"
                        );
                        self.commit(*size);
                    }
                    _ => {}
                }
                self.outstanding = Some((id, request));
            }
            ServerEvent::DataChunk(chunk) => {
                assert!(
                    self.receiving.is_some(),
                    "DataChunk outside an accepted DATA or BDAT"
                );
                assert!(!chunk.is_empty(), "empty DataChunk");
                self.content.extend_from_slice(&chunk);
            }
            ServerEvent::DataAborted => {
                self.receiving = None;
                self.content.clear();
            }
            // Traced always, so that the tracing paths are fuzzed too; nothing to check.
            ServerEvent::Trace(_) => {}
            ServerEvent::StartTls => {
                assert!(self.outstanding.is_none());
                self.tls_requested = true;
                self.transaction = None;
            }
            ServerEvent::Close => {
                self.closed = true;
                self.outstanding = None;
                self.receiving = None;
                self.transaction = None;
                assert!(self.session.is_closed());
                assert_eq!(
                    self.session.poll_timeout(),
                    None,
                    "a closed session has a timer"
                );
            }
        }
    }

    fn commit(&mut self, size: u64) {
        let Some(kind) = self.receiving.take() else {
            panic!("Commit without an accepted DATA or BDAT");
        };
        assert_eq!(
            size,
            self.content.len() as u64,
            "Commit size differs from the content emitted"
        );
        match kind {
            Receiving::Data => {
                assert!(crlf_only(&self.content), "bare CR or LF in a DATA message");
                assert!(self.content.is_empty() || self.content.ends_with(b"\r\n"));
                assert!(
                    self.markers > self.markers_used,
                    "Commit after DATA without an end-of-data marker in the input"
                );
                self.markers_used += 1;
            }
            Receiving::Bdat => {
                assert!(
                    self.lasts > self.lasts_used,
                    "Commit after BDAT without LAST"
                );
                self.lasts_used += 1;
            }
        }
        self.content.clear();
    }

    fn finish(&mut self) {
        if self.closed {
            self.session.handle_input(b"QUIT\r\n", self.now);
            self.session.handle_timeout(Time::from_millis(u64::MAX));
            self.session.shutdown();
            self.drain_quietly("a closed session");
            return;
        }
        self.apply(ServerOp::Shutdown);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::{ForwardPath, Host, MailParams, RcptParams, ReversePath};

    fn shell() -> Shell {
        // The shell holds its answers: the greeting's Connect request stays unanswered, and
        // the tests play the machine's requests themselves.
        let mut u = Unstructured::new(&[0, 0x80, 0, 0, 0, 0]);
        let mut shell = Shell::new(decode_server_config(&mut u));
        assert!(matches!(shell.outstanding, Some((_, Request::Connect))));
        shell.outstanding = None;
        shell
    }

    fn request(shell: &mut Shell, id: u64, request: Request) {
        shell.event(ServerEvent::Request(RequestId(id), request));
        shell.outstanding = None;
    }

    fn accept(shell: &mut Shell, id: u64, request: Request) {
        shell.event(ServerEvent::Request(RequestId(id), request));
        shell.answer_only(DecisionKind::Accept);
    }

    fn mail() -> Request {
        Request::Mail {
            from: ReversePath::Null,
            params: MailParams::default(),
        }
    }

    fn rcpt(name: &str) -> Request {
        Request::Rcpt {
            to: ForwardPath::Postmaster(name.into()),
            params: RcptParams::default(),
        }
    }

    #[test]
    #[should_panic(expected = "Data requested without an accepted MAIL and RCPT")]
    fn data_outside_a_transaction_is_caught() {
        let mut s = shell();
        request(&mut s, 1, Request::Data);
    }

    #[test]
    #[should_panic(expected = "Data requested without an accepted MAIL and RCPT")]
    fn data_after_a_refused_rcpt_is_caught() {
        let mut s = shell();
        accept(&mut s, 1, mail());
        s.event(ServerEvent::Request(RequestId(2), rcpt("postmaster")));
        s.answer_only(DecisionKind::Perm550);
        request(&mut s, 3, Request::Data);
    }

    #[test]
    #[should_panic(expected = "RCPT <postmaster> requested before any accepted MAIL")]
    fn rcpt_before_mail_is_caught() {
        let mut s = shell();
        request(&mut s, 1, rcpt("postmaster"));
    }

    #[test]
    #[should_panic(expected = "the committed envelope is not the accepted MAIL and RCPTs")]
    fn a_commit_with_a_refused_recipient_is_caught() {
        let mut s = shell();
        accept(&mut s, 1, mail());
        accept(&mut s, 2, rcpt("postmaster"));
        s.event(ServerEvent::Request(RequestId(3), rcpt("Postmaster")));
        s.answer_only(DecisionKind::Temp451);
        s.receiving = Some(Receiving::Bdat);
        s.lasts = 1;
        let envelope = Envelope {
            from: ReversePath::Null,
            params: MailParams::default(),
            rcpts: vec![
                (
                    ForwardPath::Postmaster("postmaster".into()),
                    RcptParams::default(),
                ),
                (
                    ForwardPath::Postmaster("Postmaster".into()),
                    RcptParams::default(),
                ),
            ],
        };
        request(&mut s, 4, Request::Commit { envelope, size: 0 });
    }

    #[test]
    fn an_accepted_transaction_commits_its_envelope() {
        let mut s = shell();
        accept(&mut s, 1, mail());
        accept(&mut s, 2, rcpt("postmaster"));
        request(&mut s, 3, Request::Data);
        s.receiving = Some(Receiving::Bdat);
        s.lasts = 1;
        let envelope = Envelope {
            from: ReversePath::Null,
            params: MailParams::default(),
            rcpts: vec![(
                ForwardPath::Postmaster("postmaster".into()),
                RcptParams::default(),
            )],
        };
        request(&mut s, 4, Request::Commit { envelope, size: 0 });
        assert!(s.transaction.is_none(), "a commit ends the transaction");
        // A refused EHLO leaves the transaction as it was; an accepted one ends it.
        accept(&mut s, 5, mail());
        let ehlo = || Request::Helo {
            ehlo: true,
            host: Host::parse("client.example", false).unwrap(),
        };
        s.event(ServerEvent::Request(RequestId(6), ehlo()));
        s.answer_only(DecisionKind::Perm550);
        assert!(
            s.transaction.is_some(),
            "a refused EHLO keeps the transaction"
        );
        accept(&mut s, 7, ehlo());
        assert!(
            s.transaction.is_none(),
            "an accepted EHLO ends the transaction"
        );
    }
}
