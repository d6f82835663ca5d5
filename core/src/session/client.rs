//! The client (smtp-out) session machine.
//!
//! One [`ClientSession`] per outgoing connection. It waits for the greeting, says EHLO (falling
//! back to HELO), upgrades with STARTTLS when offered or required, authenticates when it has
//! credentials, and then runs the transactions the shell gives it with [`ClientSession::send`]:
//! MAIL, RCPT and DATA pipelined when the server offers PIPELINING, BDAT when it offers
//! CHUNKING, with SIZE, BODY, SMTPUTF8 and DSN parameters passed on only where the server
//! supports them. Each transaction ends in a [`TransactionReport`] with one outcome per
//! recipient. The same machine speaks LMTP (RFC 2033) for local delivery. See the [module
//! contract](super) for how to drive it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::AuthMechanism;
use crate::smtp::dot::DotStuffer;
use crate::smtp::{
    Body, EnhancedCode, ForwardPath, MailParams, RcptParams, Reply, ReplyParser, ReversePath,
};
use crate::time::Time;

/// SMTP or LMTP.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Protocol {
    /// RFC 5321 SMTP (EHLO/HELO, one reply after the end of data).
    #[default]
    Smtp,
    /// RFC 2033 LMTP (LHLO, one reply per recipient after the end of data).
    Lmtp,
}

/// When to use STARTTLS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientTls {
    /// Never.
    Off,
    /// When the server offers it; carry on in plaintext if it is not offered or refused.
    #[default]
    Opportunistic,
    /// Always: a server that does not offer it (or refuses it) fails the session.
    Required,
}

/// Timeouts for each wait (RFC 5321 section 4.5.3.2 gives the minimums used as defaults).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientTimeouts {
    /// Waiting for the 220 greeting (5 minutes).
    pub greeting: Duration,
    /// Waiting for replies to EHLO, HELO, STARTTLS, AUTH, RSET, QUIT (5 minutes).
    pub command: Duration,
    /// Waiting for the reply to MAIL (5 minutes).
    pub mail: Duration,
    /// Waiting for the reply to RCPT (5 minutes).
    pub rcpt: Duration,
    /// Waiting for the 354 after DATA (2 minutes).
    pub data_init: Duration,
    /// Waiting for the reply after the end of data (10 minutes).
    pub data_end: Duration,
}

impl Default for ClientTimeouts {
    fn default() -> Self {
        ClientTimeouts {
            greeting: Duration::from_secs(300),
            command: Duration::from_secs(300),
            mail: Duration::from_secs(300),
            rcpt: Duration::from_secs(300),
            data_init: Duration::from_secs(120),
            data_end: Duration::from_secs(600),
        }
    }
}

/// The settings of an outgoing session.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The name given in EHLO/HELO/LHLO.
    pub helo: String,
    /// SMTP or LMTP.
    pub protocol: Protocol,
    /// STARTTLS policy.
    pub tls: ClientTls,
    /// Credentials for AUTH (user, password); `None`: do not authenticate.
    pub auth: Option<(String, String)>,
    /// Pipeline MAIL, RCPT and DATA when the server offers PIPELINING.
    pub pipelining: bool,
    /// Send with BDAT when the server offers CHUNKING.
    pub chunking: bool,
    /// Timeouts.
    pub timeouts: ClientTimeouts,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            helo: "localhost".into(),
            protocol: Protocol::Smtp,
            tls: ClientTls::Opportunistic,
            auth: None,
            pipelining: true,
            chunking: true,
            timeouts: ClientTimeouts::default(),
        }
    }
}

/// One message to send: the envelope and the content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The sender.
    pub from: ReversePath,
    /// Parameters wanted for MAIL. SIZE is computed by the machine; BODY, SMTPUTF8, RET, ENVID
    /// and AUTH are passed on when the server supports them.
    pub params: MailParams,
    /// The recipients with their parameters.
    pub rcpts: Vec<(ForwardPath, RcptParams)>,
    /// The content: headers and body with CRLF line endings, not dot-stuffed.
    pub content: Arc<[u8]>,
}

/// Identifies a transaction given to [`ClientSession::send`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxId(pub u64);

/// How a recipient fared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OutcomeKind {
    /// The server took responsibility for the message.
    Delivered,
    /// Try again later.
    Temporary,
    /// Give up: bounce.
    Permanent,
}

/// The outcome for one recipient, with the reply that decided it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Delivered, temporary or permanent failure.
    pub kind: OutcomeKind,
    /// The reply: the server's, or one made up by the machine (see `remote`).
    pub reply: Reply,
    /// True when `reply` came from the server; false when the machine made it up (a
    /// connection lost, a timeout, an extension the server lacks).
    pub remote: bool,
}

impl Outcome {
    fn from_reply(reply: &Reply) -> Outcome {
        let kind = match reply.code {
            200..=299 => OutcomeKind::Delivered,
            500..=599 => OutcomeKind::Permanent,
            _ => OutcomeKind::Temporary,
        };
        Outcome {
            kind,
            reply: reply.clone(),
            remote: true,
        }
    }

    fn local(kind: OutcomeKind, reply: Reply) -> Outcome {
        Outcome {
            kind,
            reply,
            remote: false,
        }
    }
}

/// The result of a transaction: one outcome per recipient, in the order given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransactionReport {
    /// The transaction.
    pub id: TxId,
    /// Outcomes, index-aligned with [`Message::rcpts`].
    pub rcpts: Vec<Outcome>,
    /// DSN parameters were passed on (the server offers DSN); if not, and a recipient asked for
    /// success notification, the queue owes a "relayed" DSN (RFC 3461 section 4.1).
    pub dsn_passed: bool,
}

/// What the server offered in its EHLO reply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extensions {
    /// The server answered EHLO (false after a fallback to HELO).
    pub esmtp: bool,
    /// `PIPELINING`
    pub pipelining: bool,
    /// `CHUNKING`
    pub chunking: bool,
    /// `BINARYMIME`
    pub binarymime: bool,
    /// `8BITMIME`
    pub eight_bit_mime: bool,
    /// `SMTPUTF8`
    pub smtputf8: bool,
    /// `DSN`
    pub dsn: bool,
    /// `STARTTLS`
    pub starttls: bool,
    /// `ENHANCEDSTATUSCODES`
    pub enhanced_status_codes: bool,
    /// `SIZE n`: `Some(0)` when offered without a fixed limit.
    pub size: Option<u64>,
    /// `AUTH` mechanisms offered, uppercased.
    pub auth: Vec<String>,
}

impl Extensions {
    /// Reads the keywords of an EHLO reply (every line after the first).
    #[must_use]
    pub fn parse(reply: &Reply) -> Extensions {
        let mut ext = Extensions {
            esmtp: true,
            ..Extensions::default()
        };
        for line in reply.lines().skip(1) {
            let mut words = line.split_ascii_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            match keyword.to_ascii_uppercase().as_str() {
                "PIPELINING" => ext.pipelining = true,
                "CHUNKING" => ext.chunking = true,
                "BINARYMIME" => ext.binarymime = true,
                "8BITMIME" => ext.eight_bit_mime = true,
                "SMTPUTF8" => ext.smtputf8 = true,
                "DSN" => ext.dsn = true,
                "STARTTLS" => ext.starttls = true,
                "ENHANCEDSTATUSCODES" => ext.enhanced_status_codes = true,
                "SIZE" => ext.size = Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0)),
                "AUTH" => ext.auth.extend(words.map(str::to_ascii_uppercase)),
                _ => {}
            }
        }
        ext
    }
}

/// Why a session ended before its work was done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionError {
    /// The step that failed.
    pub stage: Stage,
    /// The server's reply, or one made up by the machine when `remote` is false.
    pub reply: Reply,
    /// True when the server sent `reply`.
    pub remote: bool,
}

/// The steps of a session, for error reports and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Waiting for the greeting.
    Greeting,
    /// EHLO, HELO or LHLO.
    Helo,
    /// STARTTLS and the handshake.
    StartTls,
    /// AUTH.
    Auth,
    /// MAIL.
    Mail,
    /// RCPT.
    Rcpt,
    /// DATA or BDAT and the message content.
    Data,
    /// RSET.
    Rset,
    /// QUIT.
    Quit,
}

/// What the shell must act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientEvent {
    /// Write out everything transmitted so far, then start the TLS handshake and call
    /// [`ClientSession::tls_established`] (or [`ClientSession::handle_eof`] if it fails).
    StartTls,
    /// The session is set up and idle: give it a message with [`ClientSession::send`], or
    /// end it with [`ClientSession::quit`].
    Ready,
    /// A transaction is over.
    Done(TransactionReport),
    /// The session failed; every unfinished transaction has been reported already.
    Failed(SessionError),
    /// Write out everything transmitted so far, then close the connection.
    Close,
}

/// A reply the machine is waiting for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Greeting,
    Ehlo,
    Helo,
    StartTls,
    AuthPlain,
    AuthLoginUser,
    AuthLoginDone,
    Mail,
    Rcpt(usize),
    Data,
    Bdat,
    DataEnd,
    /// LMTP: the reply after the end of data for the n-th accepted recipient.
    LmtpRcpt(usize),
    Rset,
    Quit,
}

impl Expect {
    fn stage(self) -> Stage {
        match self {
            Expect::Greeting => Stage::Greeting,
            Expect::Ehlo | Expect::Helo => Stage::Helo,
            Expect::StartTls => Stage::StartTls,
            Expect::AuthPlain | Expect::AuthLoginUser | Expect::AuthLoginDone => Stage::Auth,
            Expect::Mail => Stage::Mail,
            Expect::Rcpt(_) => Stage::Rcpt,
            Expect::Data | Expect::Bdat | Expect::DataEnd | Expect::LmtpRcpt(_) => Stage::Data,
            Expect::Rset => Stage::Rset,
            Expect::Quit => Stage::Quit,
        }
    }
}

/// The transaction being run.
#[derive(Debug)]
struct Active {
    id: TxId,
    message: Message,
    outcomes: Vec<Option<Outcome>>,
    /// The MAIL reply, once it came; a failed MAIL decides every recipient.
    mail: Option<Reply>,
    /// The server holds an open transaction that needs RSET if we abandon it.
    open_on_server: bool,
    dsn_passed: bool,
    use_bdat: bool,
    /// Index of the next RCPT to send (without pipelining).
    next_rcpt: usize,
}

impl Active {
    fn accepted(&self) -> impl Iterator<Item = usize> + '_ {
        self.outcomes.iter().enumerate().filter_map(|(i, o)| {
            o.as_ref()
                .is_some_and(|o| o.kind == OutcomeKind::Delivered)
                .then_some(i)
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Greeting, EHLO, STARTTLS, AUTH.
    Setup,
    /// TLS handshake in the shell.
    TlsHandshake,
    /// Nothing to do.
    Idle,
    /// Running a transaction.
    Busy,
    /// QUIT sent.
    Quitting,
    /// Over.
    Closed,
}

/// The client session machine. See the [module documentation](self).
#[derive(Debug)]
pub struct ClientSession {
    config: Arc<ClientConfig>,
    phase: Phase,
    tls: bool,
    tls_attempted: bool,
    authenticated: bool,
    ext: Extensions,
    parser: ReplyParser,
    expect: VecDeque<Expect>,
    output: Vec<u8>,
    events: VecDeque<ClientEvent>,
    queue: VecDeque<(TxId, Message)>,
    active: Option<Active>,
    next_tx: u64,
    quit_requested: bool,
    deadline: Option<Time>,
    greeting: Option<Reply>,
}

fn local_reply(code: u16, enhanced: (u8, u16, u16), text: impl Into<String>) -> Reply {
    Reply::new(
        code,
        EnhancedCode::new(enhanced.0, enhanced.1, enhanced.2),
        text.into(),
    )
}

impl ClientSession {
    /// A session on a new connection. `tls` is true when the connection is already TLS
    /// (smtps), so no STARTTLS is attempted.
    #[must_use]
    pub fn new(config: Arc<ClientConfig>, tls: bool, now: Time) -> ClientSession {
        let mut s = ClientSession {
            config,
            phase: Phase::Setup,
            tls,
            tls_attempted: tls,
            authenticated: false,
            ext: Extensions::default(),
            parser: ReplyParser::new(),
            expect: VecDeque::new(),
            output: Vec::new(),
            events: VecDeque::new(),
            queue: VecDeque::new(),
            active: None,
            next_tx: 0,
            quit_requested: false,
            deadline: None,
            greeting: None,
        };
        s.expect_reply(Expect::Greeting, now);
        s
    }

    // ----- getters -----

    /// What the server offered in its last EHLO reply.
    #[must_use]
    pub fn extensions(&self) -> &Extensions {
        &self.ext
    }

    /// The server's greeting, once received.
    #[must_use]
    pub fn greeting(&self) -> Option<&Reply> {
        self.greeting.as_ref()
    }

    /// True once TLS is active.
    #[must_use]
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// True once the session has ended.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// True when the session is set up and has nothing to do.
    #[must_use]
    pub fn is_idle(&self) -> bool {
        self.phase == Phase::Idle
    }

    // ----- outputs -----

    /// Bytes to write to the server, if any.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if self.output.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.output))
        }
    }

    /// The next event for the shell, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should be called next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Time> {
        if self.expect.is_empty() {
            None
        } else {
            self.deadline
        }
    }

    // ----- commands from the shell -----

    /// Queues a message; it is sent once the session is set up and earlier messages are done.
    pub fn send(&mut self, message: Message, now: Time) -> TxId {
        let id = TxId(self.next_tx);
        self.next_tx += 1;
        if matches!(self.phase, Phase::Closed | Phase::Quitting) || self.quit_requested {
            let reply = local_reply(421, (4, 4, 2), "session already closing");
            let n = message.rcpts.len();
            self.report(
                id,
                vec![Outcome::local(OutcomeKind::Temporary, reply); n],
                false,
            );
            return id;
        }
        self.queue.push_back((id, message));
        if self.phase == Phase::Idle {
            self.start_next(now);
        }
        id
    }

    /// Ends the session politely once queued messages are done.
    pub fn quit(&mut self, now: Time) {
        self.quit_requested = true;
        let setup_waiting =
            self.phase == Phase::Setup && self.queue.is_empty() && self.expect.is_empty();
        if self.phase == Phase::Idle || setup_waiting {
            self.send_quit(now);
        }
    }

    // ----- inputs -----

    /// Bytes received from the server.
    pub fn handle_input(&mut self, bytes: &[u8], now: Time) {
        let mut rest = bytes;
        while !rest.is_empty() && !self.is_closed() && self.phase != Phase::TlsHandshake {
            match self.parser.feed(rest) {
                Ok((Some(reply), used)) => {
                    rest = &rest[used..];
                    self.on_reply(&reply, now);
                }
                Ok((None, _)) => break,
                Err(e) => {
                    let stage = self.expect.front().map_or(Stage::Quit, |e| e.stage());
                    let reply =
                        local_reply(421, (4, 5, 0), format!("invalid reply from server: {e}"));
                    self.fail(stage, reply, false);
                    break;
                }
            }
        }
    }

    /// The server closed the connection (or it broke, or a TLS handshake failed).
    pub fn handle_eof(&mut self, _now: Time) {
        if self.is_closed() {
            return;
        }
        if self.phase == Phase::Quitting
            || (self.expect.is_empty() && self.active.is_none() && self.queue.is_empty())
        {
            self.phase = Phase::Closed;
            self.events.push_back(ClientEvent::Close);
            return;
        }
        let stage = self.expect.front().map_or(Stage::Data, |e| e.stage());
        let reply = local_reply(421, (4, 4, 2), format!("connection lost during {stage:?}"));
        self.fail(stage, reply, false);
    }

    /// The deadline from [`poll_timeout`](Self::poll_timeout) may have passed.
    pub fn handle_timeout(&mut self, now: Time) {
        if self.expect.is_empty() || self.is_closed() || self.deadline.is_none_or(|d| now < d) {
            return;
        }
        let stage = self.expect.front().map_or(Stage::Data, |e| e.stage());
        let reply = local_reply(
            421,
            (4, 4, 2),
            format!("timeout waiting for the server during {stage:?}"),
        );
        self.fail(stage, reply, false);
    }

    /// The TLS handshake asked for by [`ClientEvent::StartTls`] succeeded: say EHLO again.
    pub fn tls_established(&mut self, now: Time) {
        if self.phase != Phase::TlsHandshake {
            return;
        }
        self.tls = true;
        self.phase = Phase::Setup;
        self.parser = ReplyParser::new();
        self.ext = Extensions::default();
        self.send_helo(now);
    }

    // ----- the machine -----

    fn timeout_for(&self, e: Expect) -> Duration {
        let t = &self.config.timeouts;
        match e {
            Expect::Greeting => t.greeting,
            Expect::Mail => t.mail,
            Expect::Rcpt(_) => t.rcpt,
            Expect::Data => t.data_init,
            Expect::Bdat | Expect::DataEnd | Expect::LmtpRcpt(_) => t.data_end,
            _ => t.command,
        }
    }

    fn expect_reply(&mut self, e: Expect, now: Time) {
        if self.expect.is_empty() {
            self.deadline = Some(now + self.timeout_for(e));
        }
        self.expect.push_back(e);
    }

    fn command(&mut self, line: &str, e: Expect, now: Time) {
        self.output.extend_from_slice(line.as_bytes());
        self.output.extend_from_slice(b"\r\n");
        self.expect_reply(e, now);
    }

    fn send_helo(&mut self, now: Time) {
        let (verb, e) = match self.config.protocol {
            Protocol::Smtp => ("EHLO", Expect::Ehlo),
            Protocol::Lmtp => ("LHLO", Expect::Ehlo),
        };
        let line = format!("{verb} {}", self.config.helo);
        self.command(&line, e, now);
    }

    fn on_reply(&mut self, reply: &Reply, now: Time) {
        let Some(e) = self.expect.pop_front() else {
            if reply.code == 421 {
                // A server may announce its shutdown at any time.
                self.fail(Stage::Quit, reply.clone(), true);
            }
            return;
        };
        // The wait for the next reply starts now.
        if let Some(next) = self.expect.front().copied() {
            self.deadline = Some(now + self.timeout_for(next));
        }
        if reply.code == 421 && !matches!(e, Expect::Quit) {
            return self.fail(e.stage(), reply.clone(), true);
        }
        match e {
            Expect::Greeting => {
                self.greeting = Some(reply.clone());
                if reply.code == 220 {
                    self.send_helo(now);
                } else {
                    self.fail(Stage::Greeting, reply.clone(), true);
                }
            }
            Expect::Ehlo => {
                if reply.is_positive() {
                    self.ext = Extensions::parse(reply);
                    self.after_helo(now);
                } else if reply.is_permanent() && self.config.protocol == Protocol::Smtp {
                    let line = format!("HELO {}", self.config.helo);
                    self.command(&line, Expect::Helo, now);
                } else {
                    self.fail(Stage::Helo, reply.clone(), true);
                }
            }
            Expect::Helo => {
                if reply.is_positive() {
                    self.ext = Extensions::default();
                    self.after_helo(now);
                } else {
                    self.fail(Stage::Helo, reply.clone(), true);
                }
            }
            Expect::StartTls => {
                if reply.code == 220 {
                    self.phase = Phase::TlsHandshake;
                    self.events.push_back(ClientEvent::StartTls);
                } else if self.config.tls == ClientTls::Required {
                    self.fail(Stage::StartTls, reply.clone(), true);
                } else {
                    // Opportunistic: carry on in plaintext.
                    self.after_tls(now);
                }
            }
            Expect::AuthPlain | Expect::AuthLoginDone => self.auth_result(reply, now),
            Expect::AuthLoginUser => {
                if reply.code == 334 {
                    let password = self
                        .config
                        .auth
                        .as_ref()
                        .map(|(_, p)| BASE64.encode(p))
                        .unwrap_or_default();
                    self.command(&password, Expect::AuthLoginDone, now);
                } else {
                    self.auth_result(reply, now);
                }
            }
            Expect::Mail => self.mail_reply(reply, now),
            Expect::Rcpt(i) => self.rcpt_reply(i, reply, now),
            Expect::Data => self.data_reply(reply, now),
            Expect::Bdat | Expect::DataEnd => self.end_reply(reply, now),
            Expect::LmtpRcpt(i) => self.lmtp_reply(i, reply, now),
            Expect::Rset => {
                if reply.is_positive() {
                    self.after_transaction(now);
                } else {
                    self.fail(Stage::Rset, reply.clone(), true);
                }
            }
            Expect::Quit => {
                self.phase = Phase::Closed;
                self.events.push_back(ClientEvent::Close);
            }
        }
    }

    fn after_helo(&mut self, now: Time) {
        let want_tls = match self.config.tls {
            ClientTls::Off => false,
            ClientTls::Opportunistic => self.ext.starttls,
            ClientTls::Required => true,
        };
        if want_tls && !self.tls && !self.tls_attempted {
            if !self.ext.starttls {
                let reply = local_reply(
                    421,
                    (4, 7, 10),
                    "TLS required but the server does not offer STARTTLS",
                );
                return self.fail(Stage::StartTls, reply, false);
            }
            self.tls_attempted = true;
            return self.command("STARTTLS", Expect::StartTls, now);
        }
        if self.config.tls == ClientTls::Required && !self.tls {
            let reply = local_reply(421, (4, 7, 10), "TLS required but not established");
            return self.fail(Stage::StartTls, reply, false);
        }
        self.after_tls(now);
    }

    fn after_tls(&mut self, now: Time) {
        let Some((user, password)) = self.config.auth.clone() else {
            return self.setup_done(now);
        };
        if self.authenticated {
            return self.setup_done(now);
        }
        let offers = |m: AuthMechanism| self.ext.auth.iter().any(|a| a == m.name());
        if offers(AuthMechanism::Plain) {
            let token = BASE64.encode(format!("\0{user}\0{password}"));
            self.command(&format!("AUTH PLAIN {token}"), Expect::AuthPlain, now);
        } else if offers(AuthMechanism::Login) {
            let token = BASE64.encode(&user);
            self.command(&format!("AUTH LOGIN {token}"), Expect::AuthLoginUser, now);
        } else {
            let reply = local_reply(421, (4, 7, 0), "the server offers no usable AUTH mechanism");
            self.fail(Stage::Auth, reply, false);
        }
    }

    fn auth_result(&mut self, reply: &Reply, now: Time) {
        if reply.code == 235 {
            self.authenticated = true;
            self.setup_done(now);
        } else {
            // A refused login is a configuration problem on our side: keep the mail queued
            // (temporary) so that fixing the credentials delivers it.
            self.fail(Stage::Auth, reply.clone(), true);
        }
    }

    fn setup_done(&mut self, now: Time) {
        self.phase = Phase::Idle;
        if !self.queue.is_empty() {
            self.start_next(now);
        } else if self.quit_requested {
            self.send_quit(now);
        } else {
            self.events.push_back(ClientEvent::Ready);
        }
    }

    fn send_quit(&mut self, now: Time) {
        self.phase = Phase::Quitting;
        self.command("QUIT", Expect::Quit, now);
    }

    /// Checks the message against the server's extensions; a failure decides every recipient.
    fn unsendable(&self, m: &Message) -> Option<Outcome> {
        let ext = &self.ext;
        let utf8 = m.params.smtputf8
            || m.from.mailbox().is_some_and(|mb| mb.is_utf8())
            || m.rcpts
                .iter()
                .any(|(r, _)| r.mailbox().is_some_and(|mb| mb.is_utf8()));
        if utf8 && !ext.smtputf8 {
            let reply = local_reply(553, (5, 6, 7), "the server does not support SMTPUTF8");
            return Some(Outcome::local(OutcomeKind::Permanent, reply));
        }
        match m.params.body {
            Some(Body::EightBitMime) if !ext.eight_bit_mime => {
                let reply = local_reply(554, (5, 6, 3), "the server does not support 8BITMIME");
                return Some(Outcome::local(OutcomeKind::Permanent, reply));
            }
            Some(Body::BinaryMime) if !(ext.binarymime && ext.chunking && self.config.chunking) => {
                let reply = local_reply(554, (5, 6, 3), "the server does not support BINARYMIME");
                return Some(Outcome::local(OutcomeKind::Permanent, reply));
            }
            _ => {}
        }
        if let Some(limit) = ext.size
            && limit > 0
            && m.content.len() as u64 > limit
        {
            let text = format!(
                "message of {} octets exceeds the server's limit of {limit}",
                m.content.len()
            );
            return Some(Outcome::local(
                OutcomeKind::Permanent,
                local_reply(552, (5, 3, 4), text),
            ));
        }
        None
    }

    fn start_next(&mut self, now: Time) {
        let Some((id, message)) = self.queue.pop_front() else {
            return self.setup_done(now);
        };
        if let Some(outcome) = self.unsendable(&message) {
            let n = message.rcpts.len();
            self.report(id, vec![outcome; n], false);
            return self.start_next(now);
        }
        if message.rcpts.is_empty() {
            self.report(id, Vec::new(), false);
            return self.start_next(now);
        }
        self.phase = Phase::Busy;
        let ext = &self.ext;
        let dsn = ext.dsn;
        let use_bdat = ext.chunking && self.config.chunking;
        let mut params = MailParams {
            size: ext.size.map(|_| message.content.len() as u64),
            body: message.params.body.filter(|_| ext.esmtp),
            smtputf8: message.params.smtputf8 && ext.smtputf8,
            ret: message.params.ret.filter(|_| dsn),
            envid: message.params.envid.clone().filter(|_| dsn),
            auth: message
                .params
                .auth
                .clone()
                .filter(|_| !ext.auth.is_empty() && self.authenticated),
        };
        if !ext.esmtp {
            params = MailParams::default();
        }
        let mail_line = format!("MAIL FROM:{}{}", message.from, params);
        let n = message.rcpts.len();
        let pipelining = ext.pipelining && self.config.pipelining;
        self.active = Some(Active {
            id,
            message,
            outcomes: vec![None; n],
            mail: None,
            open_on_server: false,
            dsn_passed: dsn,
            use_bdat,
            next_rcpt: 0,
        });
        self.command(&mail_line, Expect::Mail, now);
        if pipelining {
            for i in 0..n {
                self.send_rcpt(i, now);
            }
            if !use_bdat {
                self.command("DATA", Expect::Data, now);
            }
        }
    }

    fn send_rcpt(&mut self, i: usize, now: Time) {
        let Some(active) = &mut self.active else {
            return;
        };
        let (to, params) = &active.message.rcpts[i];
        let params = if active.dsn_passed {
            params.clone()
        } else {
            RcptParams::default()
        };
        let line = format!("RCPT TO:{to}{params}");
        active.next_rcpt = i + 1;
        self.command(&line, Expect::Rcpt(i), now);
    }

    fn pipelined(&self) -> bool {
        self.ext.pipelining && self.config.pipelining
    }

    fn mail_reply(&mut self, reply: &Reply, now: Time) {
        let Some(active) = &mut self.active else {
            return;
        };
        active.mail = Some(reply.clone());
        if reply.is_positive() {
            active.open_on_server = true;
            if !self.pipelined() {
                self.send_rcpt(0, now);
            }
        } else {
            let outcome = Outcome::from_reply(reply);
            active
                .outcomes
                .iter_mut()
                .for_each(|o| *o = Some(outcome.clone()));
            if !self.pipelined() {
                self.finish_transaction(now);
            }
            // Pipelined: the RCPT and DATA replies (503s) still have to come.
        }
    }

    fn rcpt_reply(&mut self, i: usize, reply: &Reply, now: Time) {
        let pipelined = self.pipelined();
        let Some(active) = &mut self.active else {
            return;
        };
        if active.mail.as_ref().is_some_and(Reply::is_positive) {
            let mut outcome = Outcome::from_reply(reply);
            if reply.code == 552 {
                // RFC 5321 section 4.5.3.1.10: old servers say 552 for "too many recipients";
                // treat it like 452 and try those recipients again later.
                outcome.kind = OutcomeKind::Temporary;
            }
            active.outcomes[i] = Some(outcome);
        }
        let last = i + 1 == active.message.rcpts.len();
        if pipelined {
            if last && active.use_bdat {
                self.after_rcpts(now);
            }
            return;
        }
        if last {
            self.after_rcpts(now);
        } else {
            self.send_rcpt(i + 1, now);
        }
    }

    /// All RCPT replies are in (without pipelined DATA): send the content, or give up.
    fn after_rcpts(&mut self, now: Time) {
        let Some(active) = &self.active else { return };
        if active.accepted().next().is_none() {
            return self.finish_transaction(now);
        }
        if active.use_bdat {
            let content = active.message.content.clone();
            let line = format!("BDAT {} LAST", content.len());
            self.output.extend_from_slice(line.as_bytes());
            self.output.extend_from_slice(b"\r\n");
            self.output.extend_from_slice(&content);
            self.expect_reply(Expect::Bdat, now);
            self.expect_lmtp_replies(now);
        } else {
            self.command("DATA", Expect::Data, now);
        }
    }

    fn data_reply(&mut self, reply: &Reply, now: Time) {
        let Some(active) = &mut self.active else {
            return;
        };
        if reply.code != 354 {
            let outcome = Outcome::from_reply(reply);
            let accepted: Vec<usize> = active.accepted().collect();
            for i in accepted {
                active.outcomes[i] = Some(outcome.clone());
            }
            return self.finish_transaction(now);
        }
        let empty = active.accepted().next().is_none();
        let mut stuffer = DotStuffer::new();
        if empty {
            // RFC 2920 section 3.1: DATA was pipelined, every recipient failed, yet the server
            // said 354: send an empty message and ignore its reply.
            stuffer.finish(&mut self.output);
            self.expect_reply(Expect::DataEnd, now);
            return;
        }
        let content = active.message.content.clone();
        stuffer.encode(&content, &mut self.output);
        stuffer.finish(&mut self.output);
        if self.config.protocol == Protocol::Lmtp {
            self.expect_lmtp_replies(now);
        } else {
            self.expect_reply(Expect::DataEnd, now);
        }
    }

    /// LMTP answers the end of data once per accepted recipient; SMTP once.
    fn expect_lmtp_replies(&mut self, now: Time) {
        if self.config.protocol != Protocol::Lmtp {
            return;
        }
        let accepted: Vec<usize> = self
            .active
            .as_ref()
            .map(|a| a.accepted().collect())
            .unwrap_or_default();
        // For BDAT the Bdat expectation stands for the first recipient.
        if self.expect.back() == Some(&Expect::Bdat) {
            self.expect.pop_back();
        }
        for i in accepted {
            self.expect_reply(Expect::LmtpRcpt(i), now);
        }
    }

    fn end_reply(&mut self, reply: &Reply, now: Time) {
        let Some(active) = &mut self.active else {
            return;
        };
        let outcome = Outcome::from_reply(reply);
        let accepted: Vec<usize> = active.accepted().collect();
        for i in accepted {
            active.outcomes[i] = Some(outcome.clone());
        }
        // After the end of data the server has closed the transaction, whatever it answered
        // (even to the empty message sent after a pipelined DATA whose recipients all failed).
        active.open_on_server = false;
        self.finish_transaction(now);
    }

    fn lmtp_reply(&mut self, i: usize, reply: &Reply, now: Time) {
        let Some(active) = &mut self.active else {
            return;
        };
        active.outcomes[i] = Some(Outcome::from_reply(reply));
        active.open_on_server = false;
        if !self.expect.iter().any(|e| matches!(e, Expect::LmtpRcpt(_))) {
            self.finish_transaction(now);
        }
    }

    /// Reports the active transaction once no reply for it is outstanding; sends RSET if the
    /// server still holds it open.
    fn finish_transaction(&mut self, now: Time) {
        if self.expect.iter().any(|e| {
            matches!(
                e,
                Expect::Rcpt(_)
                    | Expect::Data
                    | Expect::DataEnd
                    | Expect::Bdat
                    | Expect::LmtpRcpt(_)
            )
        }) {
            return;
        }
        let Some(active) = self.active.take() else {
            return;
        };
        let mail_failed = active.mail.as_ref().filter(|m| !m.is_positive()).cloned();
        let outcomes = active
            .outcomes
            .into_iter()
            .map(|o| match (&mail_failed, o) {
                (Some(mail), _) => Outcome::from_reply(mail),
                (None, Some(o)) if o.kind == OutcomeKind::Delivered && active.open_on_server => {
                    // Accepted at RCPT but the message never went through.
                    Outcome::local(
                        OutcomeKind::Temporary,
                        local_reply(451, (4, 3, 0), "transaction abandoned"),
                    )
                }
                (None, Some(o)) => o,
                (None, None) => Outcome::local(
                    OutcomeKind::Temporary,
                    local_reply(451, (4, 3, 0), "no reply"),
                ),
            })
            .collect();
        let open = active.open_on_server && mail_failed.is_none();
        self.report(active.id, outcomes, active.dsn_passed);
        if open {
            self.command("RSET", Expect::Rset, now);
        } else {
            self.after_transaction(now);
        }
    }

    fn after_transaction(&mut self, now: Time) {
        self.phase = Phase::Idle;
        if !self.queue.is_empty() {
            self.start_next(now);
        } else if self.quit_requested {
            self.send_quit(now);
        } else {
            self.events.push_back(ClientEvent::Ready);
        }
    }

    fn report(&mut self, id: TxId, rcpts: Vec<Outcome>, dsn_passed: bool) {
        self.events.push_back(ClientEvent::Done(TransactionReport {
            id,
            rcpts,
            dsn_passed,
        }));
    }

    /// Ends the session: every unfinished transaction gets a temporary failure (or the
    /// server's permanent one for what it already refused), then `Failed` and `Close`.
    fn fail(&mut self, stage: Stage, reply: Reply, remote: bool) {
        if self.is_closed() {
            return;
        }
        let failure = Outcome {
            kind: OutcomeKind::Temporary,
            reply: reply.clone(),
            remote,
        };
        if let Some(active) = self.active.take() {
            let outcomes = active
                .outcomes
                .into_iter()
                .map(|o| match o {
                    Some(o) if o.kind == OutcomeKind::Permanent => o,
                    _ => failure.clone(),
                })
                .collect();
            self.report(active.id, outcomes, active.dsn_passed);
        }
        while let Some((id, m)) = self.queue.pop_front() {
            self.report(id, vec![failure.clone(); m.rcpts.len()], false);
        }
        self.expect.clear();
        self.deadline = None;
        self.phase = Phase::Closed;
        let say_quit = remote && reply.code != 421 && reply_allows_quit(stage);
        self.events.push_back(ClientEvent::Failed(SessionError {
            stage,
            reply,
            remote,
        }));
        if say_quit {
            self.output.extend_from_slice(b"QUIT\r\n");
        }
        self.events.push_back(ClientEvent::Close);
    }
}

/// After a refusal during setup the connection is still in order: say goodbye properly.
fn reply_allows_quit(stage: Stage) -> bool {
    matches!(
        stage,
        Stage::Greeting | Stage::Helo | Stage::StartTls | Stage::Auth | Stage::Rset
    )
}
