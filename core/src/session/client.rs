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
//!
//! Content is always sent with CRLF line endings and a final CRLF, by DATA and by BDAT alike
//! (only BINARYMIME content goes out untouched): the machine never relays a bare CR or LF, and
//! it refuses a message with a line over the 1000-octet limit rather than send it. A message
//! the server cannot take (too big for its SIZE, or needing an extension it lacks) is failed
//! permanently without being sent.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::AuthMechanism;
use crate::smtp::dot::{DotStuffer, normalize_line_endings};
use crate::smtp::{
    Body, EnhancedCode, ForwardPath, MailParams, Mailbox, RcptParams, Reply, ReplyParser,
    ReversePath,
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
    /// Emit [`ClientEvent::Trace`] events (our commands, the server's reply lines, timeouts)
    /// for the smtp-out reporting stream.
    pub trace: bool,
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
            trace: false,
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
    /// The content: headers and body with CRLF line endings, not dot-stuffed. Bare CR and LF
    /// are sent as CRLF and a missing final CRLF is added (except for `BODY=BINARYMIME`).
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
                // The pre-standard form some servers still send: `AUTH=LOGIN PLAIN`.
                k if k.starts_with("AUTH=") => ext.auth.extend(
                    std::iter::once(&keyword[5..])
                        .chain(words)
                        .map(str::to_ascii_uppercase),
                ),
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
    /// Between transactions (a 421 or a lost connection while idle).
    Idle,
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
    /// Something the reporting stream shows (only with [`ClientConfig::trace`]).
    Trace(super::Trace),
}

/// A reply the machine is waiting for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Greeting,
    Ehlo,
    Helo,
    StartTls,
    /// The result of `AUTH PLAIN` with its initial response.
    AuthPlain,
    /// `AUTH LOGIN` sent: the "Username:" challenge.
    AuthLoginUser,
    /// User name sent: the "Password:" challenge.
    AuthLoginPassword,
    /// Password sent: the result.
    AuthLoginDone,
    Mail,
    Rcpt(usize),
    Data,
    /// The reply after the end of data (DATA) or to `BDAT … LAST` (SMTP).
    DataEnd,
    /// LMTP: the reply after the end of data for the n-th recipient (one of the accepted).
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
            Expect::AuthPlain
            | Expect::AuthLoginUser
            | Expect::AuthLoginPassword
            | Expect::AuthLoginDone => Stage::Auth,
            Expect::Mail => Stage::Mail,
            Expect::Rcpt(_) => Stage::Rcpt,
            Expect::Data | Expect::DataEnd | Expect::LmtpRcpt(_) => Stage::Data,
            Expect::Rset => Stage::Rset,
            Expect::Quit => Stage::Quit,
        }
    }

    /// Part of a transaction: the transaction is not over while such a reply is due.
    fn in_transaction(self) -> bool {
        matches!(
            self,
            Expect::Mail | Expect::Rcpt(_) | Expect::Data | Expect::DataEnd | Expect::LmtpRcpt(_)
        )
    }
}

/// Where a recipient of the running transaction stands.
#[derive(Clone, Debug)]
enum Rcpt {
    /// No reply to its RCPT yet.
    Waiting,
    /// RCPT accepted: the reply after the data decides.
    Accepted,
    /// Settled: refused (at MAIL or RCPT), or answered after the data.
    Decided(Outcome),
}

/// The transaction being run.
#[derive(Debug)]
struct Active {
    id: TxId,
    /// The MAIL command line.
    mail: String,
    /// The RCPT command lines, index-aligned with the recipients.
    rcpt_lines: Vec<String>,
    /// The content as sent (see [`wire_content`]).
    content: Arc<[u8]>,
    rcpts: Vec<Rcpt>,
    /// The server accepted MAIL.
    mail_accepted: bool,
    /// The server holds a transaction that needs a RSET if we end here.
    open_on_server: bool,
    dsn_passed: bool,
    use_bdat: bool,
}

impl Active {
    fn accepted(&self) -> impl Iterator<Item = usize> + '_ {
        self.rcpts
            .iter()
            .enumerate()
            .filter_map(|(i, r)| matches!(r, Rcpt::Accepted).then_some(i))
    }

    fn any_accepted(&self) -> bool {
        self.accepted().next().is_some()
    }

    /// Settles every accepted recipient with `outcome`.
    fn decide_accepted(&mut self, outcome: &Outcome) {
        for r in &mut self.rcpts {
            if matches!(r, Rcpt::Accepted) {
                *r = Rcpt::Decided(outcome.clone());
            }
        }
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
    /// Running a transaction (or the RSET after one).
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

/// The outcome of a refused RCPT.
fn rcpt_refusal(reply: &Reply) -> Outcome {
    let mut outcome = Outcome::from_reply(reply);
    if reply.code == 552 {
        // RFC 5321 section 4.5.3.1.10: old servers say 552 for "too many recipients"; treat it
        // like 452 and try those recipients again later.
        outcome.kind = OutcomeKind::Temporary;
    }
    outcome
}

/// The outcome when DATA got something other than 354: the message was not sent, so even an
/// (absurd) positive reply means "try again".
fn data_refusal(reply: &Reply) -> Outcome {
    let kind = if reply.is_permanent() {
        OutcomeKind::Permanent
    } else {
        OutcomeKind::Temporary
    };
    Outcome {
        kind,
        reply: reply.clone(),
        remote: true,
    }
}

/// True when every CR is followed by LF, every LF follows a CR, and the content is empty or
/// ends with CRLF: the form in which content goes on the wire.
fn is_wire_form(content: &[u8]) -> bool {
    if !content.is_empty() && !content.ends_with(b"\r\n") {
        return false;
    }
    let mut i = 0;
    while let Some(off) = memchr::memchr2(b'\r', b'\n', &content[i..]) {
        let at = i + off;
        if content[at] == b'\n' || content.get(at + 1) != Some(&b'\n') {
            return false;
        }
        i = at + 2;
    }
    true
}

/// The content as it goes on the wire, before any dot-stuffing: every line ended by CRLF and
/// a final CRLF added when missing, so that DATA and BDAT carry the same bytes, SIZE is exact,
/// and no bare CR or LF is ever relayed (SMTP smuggling). BINARYMIME content is left untouched.
fn wire_content(content: &Arc<[u8]>, binary: bool) -> Arc<[u8]> {
    if binary || is_wire_form(content) {
        return Arc::clone(content);
    }
    let mut out = normalize_line_endings(content);
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.into()
}

/// Longest text line RFC 5321 allows, CRLF excluded (section 4.5.3.1.6: 1000 octets with it).
const MAX_TEXT_LINE: usize = 998;

/// True when a line of `content` (in wire form, every line ended by CRLF) is longer than
/// [`MAX_TEXT_LINE`].
fn has_long_line(content: &[u8]) -> bool {
    let mut start = 0;
    for nl in memchr::memchr_iter(b'\n', content) {
        // `nl - start` counts the line and its CR.
        if nl - start > MAX_TEXT_LINE + 1 {
            return true;
        }
        start = nl + 1;
    }
    false
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
        if self.waiting() { self.deadline } else { None }
    }

    // ----- commands from the shell -----

    /// Queues a message; it is sent once the session is set up and earlier messages are done.
    /// A session that is closing reports it at once as a temporary failure.
    pub fn send(&mut self, message: Message, now: Time) -> TxId {
        let id = TxId(self.next_tx);
        self.next_tx += 1;
        if matches!(self.phase, Phase::Closed | Phase::Quitting) || self.quit_requested {
            let reply = local_reply(421, (4, 4, 2), "session already closing");
            let outcome = Outcome::local(OutcomeKind::Temporary, reply);
            self.report(id, vec![outcome; message.rcpts.len()], false);
            return id;
        }
        self.queue.push_back((id, message));
        if self.phase == Phase::Idle {
            self.next(now);
        }
        id
    }

    /// Ends the session politely once queued messages are done.
    pub fn quit(&mut self, now: Time) {
        self.quit_requested = true;
        if self.phase == Phase::Idle {
            self.send_quit(now);
        }
    }

    // ----- inputs -----

    /// Bytes received from the server.
    pub fn handle_input(&mut self, bytes: &[u8], now: Time) {
        let mut rest = bytes;
        // During a TLS handshake (and after it was asked for) plaintext input is not ours to
        // read: anything after the 220 to STARTTLS could be injected (RFC 3207 section 5).
        while !rest.is_empty() && !self.is_closed() && self.phase != Phase::TlsHandshake {
            match self.parser.feed(rest) {
                Ok((Some(reply), used)) => {
                    rest = &rest[used..];
                    if self.config.trace {
                        let text = String::from_utf8_lossy(&reply.to_bytes()).into_owned();
                        for line in text.split_terminator("\r\n") {
                            self.trace(super::Trace::Server(line.to_owned()));
                        }
                    }
                    self.on_reply(&reply, now);
                }
                Ok((None, _)) => break,
                Err(e) => {
                    let reply =
                        local_reply(421, (4, 5, 0), format!("invalid reply from server: {e}"));
                    self.fail(self.stage(), reply, false);
                    break;
                }
            }
        }
    }

    /// The server closed the connection (or it broke, or a TLS handshake failed).
    pub fn handle_eof(&mut self, _now: Time) {
        match self.phase {
            Phase::Closed => {}
            // Nothing was lost: the QUIT was sent, or nothing was going on.
            Phase::Quitting | Phase::Idle => self.close(),
            _ => {
                let stage = self.stage();
                let text = format!("connection lost during {stage:?}");
                self.fail(stage, local_reply(421, (4, 4, 2), text), false);
            }
        }
    }

    /// The deadline from [`poll_timeout`](Self::poll_timeout) may have passed.
    pub fn handle_timeout(&mut self, now: Time) {
        if !self.waiting() || self.deadline.is_none_or(|d| now < d) {
            return;
        }
        if self.phase == Phase::Quitting {
            // The server does not answer QUIT: nothing is lost by closing.
            return self.close();
        }
        let stage = self.stage();
        self.trace(super::Trace::Timeout);
        let text = format!("timeout waiting for the server during {stage:?}");
        self.fail(stage, local_reply(421, (4, 4, 2), text), false);
    }

    /// The TLS handshake asked for by [`ClientEvent::StartTls`] succeeded: say EHLO again.
    pub fn tls_established(&mut self, now: Time) {
        if self.phase != Phase::TlsHandshake {
            return;
        }
        // RFC 3207 section 4.2: forget everything learnt before TLS.
        self.tls = true;
        self.phase = Phase::Setup;
        self.parser = ReplyParser::new();
        self.ext = Extensions::default();
        self.send_helo(now);
    }

    // ----- the machine: bookkeeping -----

    /// A reply is due, or a TLS handshake is under way.
    fn waiting(&self) -> bool {
        !self.is_closed() && (!self.expect.is_empty() || self.phase == Phase::TlsHandshake)
    }

    /// The step the session is at, for error reports.
    fn stage(&self) -> Stage {
        if let Some(e) = self.expect.front() {
            return e.stage();
        }
        match self.phase {
            Phase::Setup => Stage::Greeting,
            Phase::TlsHandshake => Stage::StartTls,
            Phase::Idle => Stage::Idle,
            Phase::Busy => Stage::Data,
            Phase::Quitting | Phase::Closed => Stage::Quit,
        }
    }

    fn timeout_for(&self, e: Expect) -> Duration {
        let t = &self.config.timeouts;
        match e {
            Expect::Greeting => t.greeting,
            Expect::Mail => t.mail,
            Expect::Rcpt(_) => t.rcpt,
            Expect::Data => t.data_init,
            Expect::DataEnd | Expect::LmtpRcpt(_) => t.data_end,
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
        if self.config.trace {
            // The LOGIN user name and password are lines of their own: masked whole.
            let shown = match e {
                Expect::AuthLoginPassword | Expect::AuthLoginDone => super::MASK.to_owned(),
                _ => super::masked_command(line.as_bytes()),
            };
            self.trace(super::Trace::Client(shown));
        }
        self.expect_reply(e, now);
    }

    /// Bytes written outside [`command`](Self::command) that the reporting stream shows.
    fn raw_line(&mut self, line: &str) {
        self.output.extend_from_slice(line.as_bytes());
        self.output.extend_from_slice(b"\r\n");
        self.trace(super::Trace::Client(line.to_owned()));
    }

    fn trace(&mut self, trace: super::Trace) {
        if self.config.trace {
            self.events.push_back(ClientEvent::Trace(trace));
        }
    }

    fn report(&mut self, id: TxId, rcpts: Vec<Outcome>, dsn_passed: bool) {
        self.events.push_back(ClientEvent::Done(TransactionReport {
            id,
            rcpts,
            dsn_passed,
        }));
    }

    fn close(&mut self) {
        self.expect.clear();
        self.deadline = None;
        self.phase = Phase::Closed;
        self.events.push_back(ClientEvent::Close);
    }

    /// Ends the session: every unsettled recipient gets a temporary failure with `reply` (the
    /// settled ones keep their outcome: a refusal, or an LMTP delivery), then `Failed` and
    /// `Close`. Sends nothing: see [`fail_politely`](Self::fail_politely).
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
                .rcpts
                .into_iter()
                .map(|r| match r {
                    Rcpt::Decided(o) => o,
                    Rcpt::Waiting | Rcpt::Accepted => failure.clone(),
                })
                .collect();
            self.report(active.id, outcomes, active.dsn_passed);
        }
        while let Some((id, m)) = self.queue.pop_front() {
            self.report(id, vec![failure.clone(); m.rcpts.len()], false);
        }
        self.events.push_back(ClientEvent::Failed(SessionError {
            stage,
            reply,
            remote,
        }));
        self.close();
    }

    /// Like [`fail`](Self::fail) when the connection is still in order (a refusal, not a
    /// timeout or garbage): say QUIT first.
    fn fail_politely(&mut self, stage: Stage, reply: Reply, remote: bool) {
        if !self.is_closed() {
            self.raw_line("QUIT");
        }
        self.fail(stage, reply, remote);
    }

    fn on_reply(&mut self, reply: &Reply, now: Time) {
        let Some(e) = self.expect.pop_front() else {
            // A server may announce its shutdown at any time; anything else unasked is noise.
            if reply.code == 421 {
                self.fail(self.stage(), reply.clone(), true);
            }
            return;
        };
        // The wait for the next reply starts now.
        if let Some(next) = self.expect.front().copied() {
            self.deadline = Some(now + self.timeout_for(next));
        }
        if reply.code == 421 && e != Expect::Quit {
            return self.fail(e.stage(), reply.clone(), true);
        }
        match e {
            Expect::Greeting => self.greeting_reply(reply, now),
            Expect::Ehlo => self.ehlo_reply(reply, now),
            Expect::Helo => self.helo_reply(reply, now),
            Expect::StartTls => self.starttls_reply(reply, now),
            Expect::AuthPlain => self.auth_plain_reply(reply, now),
            Expect::AuthLoginUser | Expect::AuthLoginPassword => {
                self.auth_login_challenge(e, reply, now);
            }
            Expect::AuthLoginDone => self.auth_result(reply, now),
            Expect::Mail => self.mail_reply(reply, now),
            Expect::Rcpt(i) => self.rcpt_reply(i, reply, now),
            Expect::Data => self.data_reply(reply, now),
            Expect::DataEnd => self.end_reply(reply, now),
            Expect::LmtpRcpt(i) => self.lmtp_reply(i, reply, now),
            Expect::Rset => self.rset_reply(reply, now),
            Expect::Quit => self.close(),
        }
    }

    // ----- the machine: setting up -----

    fn greeting_reply(&mut self, reply: &Reply, now: Time) {
        self.greeting = Some(reply.clone());
        if reply.code == 220 {
            self.send_helo(now);
        } else {
            // A 554 greeting: the server takes nothing but QUIT (RFC 5321 section 3.1).
            self.fail_politely(Stage::Greeting, reply.clone(), true);
        }
    }

    fn send_helo(&mut self, now: Time) {
        let verb = match self.config.protocol {
            Protocol::Smtp => "EHLO",
            Protocol::Lmtp => "LHLO",
        };
        let line = format!("{verb} {}", self.config.helo);
        self.command(&line, Expect::Ehlo, now);
    }

    fn ehlo_reply(&mut self, reply: &Reply, now: Time) {
        if reply.is_positive() {
            self.ext = Extensions::parse(reply);
            self.after_helo(now);
        } else if reply.is_permanent() && self.config.protocol == Protocol::Smtp {
            // A server that does not know EHLO (RFC 5321 section 3.2); LMTP has no fallback.
            let line = format!("HELO {}", self.config.helo);
            self.command(&line, Expect::Helo, now);
        } else {
            self.fail_politely(Stage::Helo, reply.clone(), true);
        }
    }

    fn helo_reply(&mut self, reply: &Reply, now: Time) {
        if reply.is_positive() {
            self.ext = Extensions::default();
            self.after_helo(now);
        } else {
            self.fail_politely(Stage::Helo, reply.clone(), true);
        }
    }

    /// EHLO (or HELO) done: STARTTLS if wanted and possible, then AUTH.
    fn after_helo(&mut self, now: Time) {
        if self.tls || self.config.tls == ClientTls::Off {
            return self.start_auth(now);
        }
        if self.ext.starttls && !self.tls_attempted {
            self.tls_attempted = true;
            return self.command("STARTTLS", Expect::StartTls, now);
        }
        if self.config.tls == ClientTls::Required {
            let reply = local_reply(
                421,
                (4, 7, 10),
                "TLS required but the server does not offer STARTTLS",
            );
            return self.fail_politely(Stage::StartTls, reply, false);
        }
        self.start_auth(now);
    }

    fn starttls_reply(&mut self, reply: &Reply, now: Time) {
        if reply.code == 220 {
            self.phase = Phase::TlsHandshake;
            // The handshake gets the time of a command.
            self.deadline = Some(now + self.config.timeouts.command);
            self.events.push_back(ClientEvent::StartTls);
        } else if self.config.tls == ClientTls::Required {
            self.fail_politely(Stage::StartTls, reply.clone(), true);
        } else {
            // Opportunistic: carry on in plaintext.
            self.start_auth(now);
        }
    }

    fn offers(&self, mechanism: AuthMechanism) -> bool {
        self.ext.auth.iter().any(|a| a == mechanism.name())
    }

    fn start_auth(&mut self, now: Time) {
        let Some((user, password)) = self.config.auth.clone() else {
            return self.next(now);
        };
        if self.authenticated {
            return self.next(now);
        }
        if self.offers(AuthMechanism::Plain) {
            let token = BASE64.encode(format!("\0{user}\0{password}"));
            self.command(&format!("AUTH PLAIN {token}"), Expect::AuthPlain, now);
        } else if self.offers(AuthMechanism::Login) {
            self.start_auth_login(now);
        } else {
            let reply = local_reply(421, (4, 7, 0), "the server offers no usable AUTH mechanism");
            self.fail_politely(Stage::Auth, reply, false);
        }
    }

    /// LOGIN without an initial response: not every server takes one.
    fn start_auth_login(&mut self, now: Time) {
        self.command("AUTH LOGIN", Expect::AuthLoginUser, now);
    }

    fn auth_plain_reply(&mut self, reply: &Reply, now: Time) {
        if reply.code == 504 && self.offers(AuthMechanism::Login) {
            // The server lists PLAIN but does not know it after all: try LOGIN.
            return self.start_auth_login(now);
        }
        self.auth_result(reply, now);
    }

    fn auth_login_challenge(&mut self, e: Expect, reply: &Reply, now: Time) {
        if reply.code != 334 {
            return self.auth_result(reply, now);
        }
        let (user, password) = self.config.auth.clone().unwrap_or_default();
        if e == Expect::AuthLoginUser {
            self.command(&BASE64.encode(user), Expect::AuthLoginPassword, now);
        } else {
            self.command(&BASE64.encode(password), Expect::AuthLoginDone, now);
        }
    }

    fn auth_result(&mut self, reply: &Reply, now: Time) {
        if reply.code == 235 {
            self.authenticated = true;
            self.next(now);
        } else if reply.is_intermediate() {
            // A challenge we cannot answer: the server reads our next line as a SASL response,
            // so a QUIT would be misread. Cancel the exchange (RFC 4954 section 4) and leave.
            self.raw_line("*");
            self.fail(Stage::Auth, reply.clone(), true);
        } else {
            // A refused login is a configuration problem on our side: keep the mail queued
            // (temporary) so that fixing the credentials delivers it.
            self.fail_politely(Stage::Auth, reply.clone(), true);
        }
    }

    // ----- the machine: transactions -----

    /// Starts the next queued message that can be sent; reports those that cannot. With
    /// nothing left, quits if asked to, or tells the shell the session is ready.
    fn next(&mut self, now: Time) {
        self.phase = Phase::Idle;
        while let Some((id, message)) = self.queue.pop_front() {
            match self.prepare(id, message) {
                Ok(active) => return self.begin(active, now),
                Err(report) => self.events.push_back(ClientEvent::Done(report)),
            }
        }
        if self.quit_requested {
            self.send_quit(now);
        } else {
            self.events.push_back(ClientEvent::Ready);
        }
    }

    fn send_quit(&mut self, now: Time) {
        self.phase = Phase::Quitting;
        self.command("QUIT", Expect::Quit, now);
    }

    fn pipelined(&self) -> bool {
        self.ext.pipelining && self.config.pipelining
    }

    /// Checks the message against the server's extensions; a refusal settles every recipient.
    fn unsupported(&self, m: &Message, size: usize) -> Option<Reply> {
        let ext = &self.ext;
        if needs_smtputf8(m) && !ext.smtputf8 {
            return Some(local_reply(
                553,
                (5, 6, 7),
                "the server does not support SMTPUTF8",
            ));
        }
        match m.params.body {
            Some(Body::EightBitMime) if !ext.eight_bit_mime => {
                return Some(local_reply(
                    554,
                    (5, 6, 3),
                    "the server does not support 8BITMIME",
                ));
            }
            Some(Body::BinaryMime) if !(ext.binarymime && ext.chunking && self.config.chunking) => {
                let text = "the server does not support BINARYMIME";
                return Some(local_reply(554, (5, 6, 3), text));
            }
            _ => {}
        }
        match ext.size {
            Some(limit) if limit > 0 && size as u64 > limit => {
                let text =
                    format!("message of {size} octets exceeds the server's limit of {limit}");
                Some(local_reply(552, (5, 3, 4), text))
            }
            _ => None,
        }
    }

    /// The MAIL parameters the server supports, out of those the message asks for.
    fn mail_params(&self, m: &Message, size: usize) -> MailParams {
        let ext = &self.ext;
        if !ext.esmtp {
            return MailParams::default();
        }
        let body = match m.params.body {
            // BODY belongs to 8BITMIME; 7BIT is what a server without it expects anyway.
            Some(Body::SevenBit | Body::EightBitMime) if ext.eight_bit_mime => m.params.body,
            // Checked by `unsupported`.
            Some(Body::BinaryMime) => m.params.body,
            _ => None,
        };
        MailParams {
            size: ext.size.map(|_| size as u64),
            body,
            smtputf8: needs_smtputf8(m) && ext.smtputf8,
            ret: m.params.ret.filter(|_| ext.dsn),
            envid: m.params.envid.clone().filter(|_| ext.dsn),
            auth: m
                .params
                .auth
                .clone()
                .filter(|_| !ext.auth.is_empty() && self.authenticated),
        }
    }

    /// Turns a message into a transaction ready to run, or into the report that it cannot be
    /// sent to this server.
    fn prepare(&self, id: TxId, m: Message) -> Result<Active, TransactionReport> {
        let n = m.rcpts.len();
        let refuse = |reply: Reply| TransactionReport {
            id,
            rcpts: vec![Outcome::local(OutcomeKind::Permanent, reply); n],
            dsn_passed: false,
        };
        if n == 0 {
            return Err(refuse(local_reply(554, (5, 5, 1), "no recipients")));
        }
        let binary = m.params.body == Some(Body::BinaryMime);
        let content = wire_content(&m.content, binary);
        if !binary && has_long_line(&content) {
            // RFC 5321 section 4.5.3.1.6: a sender must not send longer lines, and folding
            // them would change the message (and break its signatures).
            let text = format!(
                "line longer than {} octets in the message",
                MAX_TEXT_LINE + 2
            );
            return Err(refuse(local_reply(554, (5, 6, 0), text)));
        }
        if let Some(reply) = self.unsupported(&m, content.len()) {
            return Err(refuse(reply));
        }
        let dsn = self.ext.dsn;
        let mail = format!(
            "MAIL FROM:{}{}",
            m.from,
            self.mail_params(&m, content.len())
        );
        let rcpt_lines: Vec<String> = m
            .rcpts
            .iter()
            .map(|(to, params)| {
                let none = RcptParams::default();
                format!("RCPT TO:{to}{}", if dsn { params } else { &none })
            })
            .collect();
        // Paths and parameters are built by the shell; a line break in one would let it
        // inject commands. Never send such an envelope.
        if std::iter::once(&mail)
            .chain(&rcpt_lines)
            .any(|l| l.contains(['\r', '\n']))
        {
            return Err(refuse(local_reply(
                501,
                (5, 5, 2),
                "line break in the envelope",
            )));
        }
        Ok(Active {
            id,
            mail,
            rcpt_lines,
            content,
            rcpts: vec![Rcpt::Waiting; n],
            mail_accepted: false,
            open_on_server: false,
            dsn_passed: dsn,
            use_bdat: self.ext.chunking && self.config.chunking,
        })
    }

    /// Sends MAIL, and with pipelining every RCPT and (unless BDAT follows) DATA with it.
    fn begin(&mut self, active: Active, now: Time) {
        self.phase = Phase::Busy;
        let mail = active.mail.clone();
        let (n, use_bdat) = (active.rcpts.len(), active.use_bdat);
        self.active = Some(active);
        self.command(&mail, Expect::Mail, now);
        if self.pipelined() {
            for i in 0..n {
                self.send_rcpt(i, now);
            }
            // BDAT waits for the RCPT replies: a chunk cannot be taken back.
            if !use_bdat {
                self.command("DATA", Expect::Data, now);
            }
        }
    }

    fn send_rcpt(&mut self, i: usize, now: Time) {
        let Some(line) = self.active.as_ref().map(|a| a.rcpt_lines[i].clone()) else {
            return;
        };
        self.command(&line, Expect::Rcpt(i), now);
    }

    fn mail_reply(&mut self, reply: &Reply, now: Time) {
        let pipelined = self.pipelined();
        let Some(active) = &mut self.active else {
            return;
        };
        if reply.is_positive() {
            active.mail_accepted = true;
            active.open_on_server = true;
            if !pipelined {
                self.send_rcpt(0, now);
            }
            return;
        }
        let outcome = Outcome::from_reply(reply);
        for r in &mut active.rcpts {
            *r = Rcpt::Decided(outcome.clone());
        }
        // Pipelined, the replies to the RCPTs (and DATA) sent with MAIL are still to come.
        if !pipelined {
            self.finish_transaction(now);
        }
    }

    fn rcpt_reply(&mut self, i: usize, reply: &Reply, now: Time) {
        let pipelined = self.pipelined();
        let Some(active) = &mut self.active else {
            return;
        };
        // After a refused MAIL the recipients are settled already (these replies are 503s).
        if active.mail_accepted {
            active.rcpts[i] = if reply.is_positive() {
                Rcpt::Accepted
            } else {
                Rcpt::Decided(rcpt_refusal(reply))
            };
        }
        if i + 1 < active.rcpts.len() {
            if !pipelined {
                self.send_rcpt(i + 1, now);
            }
        } else if !pipelined || active.use_bdat {
            self.after_rcpts(now);
        }
        // Otherwise DATA went out with the recipients: its reply comes next.
    }

    /// Every RCPT reply is in (and DATA was not pipelined): send the content, or give up.
    fn after_rcpts(&mut self, now: Time) {
        let Some(active) = &self.active else { return };
        if !active.any_accepted() {
            return self.finish_transaction(now);
        }
        if active.use_bdat {
            // One chunk: exactly that many octets, no dot-stuffing, no end marker (RFC 3030).
            let content = Arc::clone(&active.content);
            self.raw_line(&format!("BDAT {} LAST", content.len()));
            self.output.extend_from_slice(&content);
            self.expect_end_of_data(now);
        } else {
            self.command("DATA", Expect::Data, now);
        }
    }

    /// SMTP answers the end of data once; LMTP once per accepted recipient (RFC 2033).
    fn expect_end_of_data(&mut self, now: Time) {
        if self.config.protocol == Protocol::Smtp {
            return self.expect_reply(Expect::DataEnd, now);
        }
        let accepted: Vec<usize> = self
            .active
            .as_ref()
            .map(|a| a.accepted().collect())
            .unwrap_or_default();
        for i in accepted {
            self.expect_reply(Expect::LmtpRcpt(i), now);
        }
    }

    fn data_reply(&mut self, reply: &Reply, now: Time) {
        let Some(active) = &mut self.active else {
            return;
        };
        if reply.code != 354 {
            active.decide_accepted(&data_refusal(reply));
            return self.finish_transaction(now);
        }
        if !active.any_accepted() {
            // RFC 2920 section 3.1: DATA was pipelined, every recipient failed, yet the server
            // said 354. Send an empty message; its reply changes nothing and RSET follows.
            self.raw_line(".");
            return self.expect_reply(Expect::DataEnd, now);
        }
        let content = Arc::clone(&active.content);
        let mut stuffer = DotStuffer::new();
        stuffer.encode(&content, &mut self.output);
        stuffer.finish(&mut self.output);
        self.trace(super::Trace::Client(".".to_owned()));
        self.expect_end_of_data(now);
    }

    /// The SMTP reply after the end of data, or to the last BDAT chunk.
    fn end_reply(&mut self, reply: &Reply, now: Time) {
        let Some(active) = &mut self.active else {
            return;
        };
        if active.any_accepted() {
            active.decide_accepted(&Outcome::from_reply(reply));
            // A refused message ends the transaction, but a RSET makes sure of it (RFC 3030
            // asks for one after a failed chunk). After the empty message sent when no
            // recipient was accepted, the RSET is due in any case.
            active.open_on_server = !reply.is_positive();
        }
        self.finish_transaction(now);
    }

    fn lmtp_reply(&mut self, i: usize, reply: &Reply, now: Time) {
        let Some(active) = &mut self.active else {
            return;
        };
        active.rcpts[i] = Rcpt::Decided(Outcome::from_reply(reply));
        if !self.expect.iter().any(|e| matches!(e, Expect::LmtpRcpt(_))) {
            active.open_on_server = false;
            self.finish_transaction(now);
        }
    }

    /// Reports the running transaction once no reply for it is due; sends RSET if the server
    /// still holds it open.
    fn finish_transaction(&mut self, now: Time) {
        if self.expect.iter().any(|e| e.in_transaction()) {
            return;
        }
        let Some(active) = self.active.take() else {
            return;
        };
        let outcomes = active
            .rcpts
            .into_iter()
            .map(|r| match r {
                Rcpt::Decided(o) => o,
                // Not reached: every path settles the recipients before finishing.
                Rcpt::Waiting | Rcpt::Accepted => Outcome::local(
                    OutcomeKind::Temporary,
                    local_reply(451, (4, 3, 0), "message not sent"),
                ),
            })
            .collect();
        self.report(active.id, outcomes, active.dsn_passed);
        if active.open_on_server {
            self.command("RSET", Expect::Rset, now);
        } else {
            self.next(now);
        }
    }

    fn rset_reply(&mut self, reply: &Reply, now: Time) {
        if reply.is_positive() {
            self.next(now);
        } else {
            self.fail_politely(Stage::Rset, reply.clone(), true);
        }
    }
}

/// The message needs SMTPUTF8: it asks for it, or its envelope has UTF-8 addresses.
fn needs_smtputf8(m: &Message) -> bool {
    m.params.smtputf8
        || m.from.mailbox().is_some_and(Mailbox::is_utf8)
        || m.rcpts
            .iter()
            .any(|(r, _)| r.mailbox().is_some_and(Mailbox::is_utf8))
}
