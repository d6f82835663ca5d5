//! The server (smtp-in) session machine.
//!
//! One [`ServerSession`] per connection. It parses commands, enforces RFC 5321 sequencing and
//! limits, runs STARTTLS and AUTH exchanges, decodes DATA and BDAT, and asks the shell for every
//! decision through [`Request`]s; it never decides policy itself. See the [module
//! contract](super) for how to drive it.
//!
//! Replies always go out in the order of the commands, however the client pipelines: while a
//! request is outstanding the machine buffers input and processes nothing after it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::{AuthMechanism, Credentials, Decision, RequestId};
use crate::smtp::{
    BareNewline, Body, Command, CommandError, DataDecoder, EnhancedCode, ForwardPath, Frame, Host,
    LineFramer, LineNormalizer, MailParams, ParamError, ParseOptions, PathError, RcptParams, Reply,
    ReversePath,
};
use crate::time::Time;

/// Whether the listener offers or requires STARTTLS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TlsPolicy {
    /// No STARTTLS (or the session is already TLS from the start: smtps).
    #[default]
    Off,
    /// Offer STARTTLS.
    Offer,
    /// Offer STARTTLS and refuse mail until it has been used (530).
    Require,
}

/// Whether the listener offers or requires AUTH.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuthPolicy {
    /// No AUTH.
    #[default]
    Off,
    /// Offer AUTH; unauthenticated clients may still send mail (for local delivery).
    Optional,
    /// Refuse MAIL until the client has authenticated (530).
    Required,
}

/// The settings of one listener, shared by all its sessions.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The name in the greeting and the EHLO reply.
    pub hostname: String,
    /// Text after the host name in the 220 greeting.
    pub banner: String,
    /// Largest message accepted, in octets; `0` means no limit. Advertised with SIZE.
    pub max_message_size: u64,
    /// Most recipients per transaction (RFC 5321 requires at least 100).
    pub max_recipients: usize,
    /// Most messages per session.
    pub max_messages: usize,
    /// The protocol error (failed AUTH included) that reaches this count is answered, then
    /// the session is closed with 421.
    pub max_errors: usize,
    /// Longest command line, CRLF included (RFC 5321: at least 512).
    pub max_command_line: usize,
    /// Longest text line in a message, CRLF included (RFC 5321: at least 1000); `0` means no
    /// limit.
    pub max_text_line: usize,
    /// Longest AUTH exchange line, CRLF included (RFC 4954: 12288).
    pub max_auth_line: usize,
    /// What to do with bare CR and bare LF.
    pub bare_newline: BareNewline,
    /// Offer PIPELINING.
    pub pipelining: bool,
    /// Offer CHUNKING (BDAT) and BINARYMIME.
    pub chunking: bool,
    /// Offer 8BITMIME.
    pub eight_bit_mime: bool,
    /// Offer SMTPUTF8.
    pub smtputf8: bool,
    /// Offer DSN (RFC 3461 parameters).
    pub dsn: bool,
    /// STARTTLS policy.
    pub tls: TlsPolicy,
    /// AUTH policy.
    pub auth: AuthPolicy,
    /// Offer AUTH before TLS (off by default: plaintext passwords on the wire).
    pub auth_plaintext: bool,
    /// Accept paths without angle brackets.
    pub lenient_paths: bool,
    /// Idle time allowed while waiting for a command (RFC 5321 section 4.5.3.2.7: 5 minutes).
    pub command_timeout: Duration,
    /// Idle time allowed between pieces of message content (after 354, or inside a BDAT
    /// chunk).
    pub data_timeout: Duration,
    /// Emit [`ServerEvent::Trace`] events (client lines, reply lines, timeouts) for the
    /// reporting stream of filters. Off by default: it costs a copy of every line.
    pub trace: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            hostname: "localhost".into(),
            banner: "ESMTP Petrel".into(),
            max_message_size: 35 * 1024 * 1024,
            max_recipients: 1000,
            max_messages: 100,
            max_errors: 20,
            max_command_line: 512,
            max_text_line: 1000,
            max_auth_line: 12288,
            bare_newline: BareNewline::Reject,
            pipelining: true,
            chunking: true,
            eight_bit_mime: true,
            smtputf8: true,
            dsn: true,
            tls: TlsPolicy::Off,
            auth: AuthPolicy::Off,
            auth_plaintext: false,
            lenient_paths: false,
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(300),
            trace: false,
        }
    }
}

/// What the machine knows about the connection when it starts.
#[derive(Clone, Debug, Default)]
pub struct ConnectionInfo {
    /// The client's address as shown in the EHLO reply (`192.0.2.1`, `2001:db8::1`, `local`).
    pub peer: String,
    /// The connection is TLS from the start (smtps).
    pub tls: bool,
}

/// A question for the shell. Answer it with [`ServerSession::answer`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// A client connected: greet it (`Accept`) or turn it away. A 421 (or 521) refusal, or
    /// `Disconnect`, closes the connection; any other refusal (normally 554) is sent as the
    /// greeting and the session then accepts only QUIT, answering 503 to everything else
    /// (RFC 5321 section 3.1). A client that sends anything before the answer is an early
    /// talker and is refused that way too, even if the answer is `Accept`.
    Connect,
    /// HELO or EHLO with its argument.
    Helo {
        /// True for EHLO.
        ehlo: bool,
        /// The name the client gave.
        host: Host,
    },
    /// Check these credentials (AUTH). `Accept` authenticates the session as `username`.
    Auth {
        /// The mechanism used.
        mechanism: AuthMechanism,
        /// The decoded credentials.
        credentials: Credentials,
    },
    /// MAIL FROM. `Accept` opens a transaction.
    Mail {
        /// The sender.
        from: ReversePath,
        /// Its parameters (an `AUTH=` from an unauthenticated session is already `<>`).
        params: MailParams,
    },
    /// RCPT TO. `Accept` (or a 2xx reply) adds the recipient to the transaction.
    Rcpt {
        /// The recipient.
        to: ForwardPath,
        /// Its parameters.
        params: RcptParams,
    },
    /// The client wants to send the message (DATA, or the first BDAT chunk).
    Data,
    /// The message is complete: make it durable, then answer. Answer `Accept` (or a 250 naming
    /// the queue id) only once the message and its envelope are safely stored.
    Commit {
        /// The transaction.
        envelope: Envelope,
        /// Size of the content in octets (as emitted in [`ServerEvent::DataChunk`]s).
        size: u64,
    },
}

/// The envelope of a complete transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The sender.
    pub from: ReversePath,
    /// MAIL parameters.
    pub params: MailParams,
    /// Accepted recipients with their parameters, in the order given.
    pub rcpts: Vec<(ForwardPath, RcptParams)>,
}

/// What the shell must act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerEvent {
    /// A question to answer with [`ServerSession::answer`].
    Request(RequestId, Request),
    /// A piece of the current message's content (dots unstuffed, CRLF line endings). Pieces
    /// follow [`Request::Data`]'s acceptance and precede [`Request::Commit`].
    DataChunk(Vec<u8>),
    /// The current message was refused or abandoned: discard the content received so far.
    DataAborted,
    /// Write out everything transmitted so far, then start the TLS handshake and call
    /// [`ServerSession::tls_established`] when it succeeds (or close the connection).
    StartTls,
    /// Write out everything transmitted so far, then close the connection.
    Close,
    /// Something the reporting stream shows (only with [`ServerConfig::trace`]).
    Trace(Trace),
}

pub use super::Trace;
use super::{MASK, masked_command};

/// Replies used in several places; texts in the style of Postfix and OpenSMTPD.
mod replies {
    use super::{EnhancedCode as E, Reply};
    pub const OK: Reply = Reply::fixed(250, E::new(2, 0, 0), "Ok");
    pub const SENDER_OK: Reply = Reply::fixed(250, E::new(2, 1, 0), "Sender ok");
    pub const RCPT_OK: Reply = Reply::fixed(250, E::new(2, 1, 5), "Recipient ok");
    pub const RESET: Reply = Reply::fixed(250, E::new(2, 0, 0), "Reset state");
    pub const ACCEPTED: Reply = Reply::fixed(250, E::new(2, 0, 0), "Message accepted for delivery");
    pub const BYE: Reply = Reply::fixed(221, E::new(2, 0, 0), "Bye");
    /// No enhanced code: RFC 3463 codes have classes 2, 4 and 5 only, and the class must match
    /// the first digit of the reply (RFC 2034), so a 354 cannot carry one.
    pub const START_DATA: Reply = Reply::fixed_plain(354, "End data with <CR><LF>.<CR><LF>");
    /// 2.0.0: RFC 3463's X.5.2 means "syntax error" and is only meaningful as a failure.
    pub const VRFY: Reply = Reply::fixed(
        252,
        E::new(2, 0, 0),
        "Cannot VRFY user, but will accept message and attempt delivery",
    );
    pub const EXPN: Reply = Reply::fixed(502, E::new(5, 5, 1), "EXPN not available");
    pub const HELP: Reply = Reply::fixed(
        214,
        E::new(2, 0, 0),
        "Petrel: commands HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH\nEnd of HELP info",
    );
    pub const TLS_READY: Reply = Reply::fixed(220, E::new(2, 0, 0), "Ready to start TLS");
    pub const AUTH_OK: Reply = Reply::fixed(235, E::new(2, 7, 0), "Authentication successful");
    pub const AUTH_FAILED: Reply =
        Reply::fixed(535, E::new(5, 7, 8), "Authentication credentials invalid");
    pub const AUTH_CANCELLED: Reply =
        Reply::fixed(501, E::new(5, 7, 0), "Authentication cancelled");
    pub const AUTH_BAD_BASE64: Reply = Reply::fixed(501, E::new(5, 5, 2), "Invalid base64 data");
    pub const AUTH_LINE_TOO_LONG: Reply = Reply::fixed(
        500,
        E::new(5, 5, 6),
        "Authentication exchange line is too long",
    );
    pub const AUTH_UNKNOWN_MECH: Reply = Reply::fixed(
        504,
        E::new(5, 5, 4),
        "Unrecognized authentication mechanism",
    );
    pub const AUTH_NEEDS_TLS: Reply = Reply::fixed(
        538,
        E::new(5, 7, 11),
        "Encryption required for requested authentication mechanism",
    );
    pub const AUTH_NOT_OFFERED: Reply = Reply::fixed(502, E::new(5, 5, 1), "AUTH not available");
    pub const AUTH_ALREADY: Reply = Reply::fixed(503, E::new(5, 5, 1), "Already authenticated");
    pub const AUTH_REQUIRED: Reply = Reply::fixed(530, E::new(5, 7, 0), "Authentication required");
    pub const TLS_REQUIRED: Reply =
        Reply::fixed(530, E::new(5, 7, 0), "Must issue a STARTTLS command first");
    pub const TLS_ACTIVE: Reply = Reply::fixed(503, E::new(5, 5, 1), "TLS already active");
    pub const TLS_NOT_OFFERED: Reply = Reply::fixed(502, E::new(5, 5, 1), "STARTTLS not available");
    pub const NO_SERVICE: Reply = Reply::fixed(
        503,
        E::new(5, 5, 1),
        "Error: no SMTP service here, only QUIT is accepted",
    );
    pub const NEED_HELO: Reply = Reply::fixed(503, E::new(5, 5, 1), "Error: send HELO/EHLO first");
    pub const NEED_MAIL: Reply = Reply::fixed(503, E::new(5, 5, 1), "Error: need MAIL command");
    pub const NEED_RCPT: Reply = Reply::fixed(503, E::new(5, 5, 1), "Error: need RCPT command");
    pub const NO_VALID_RCPT: Reply =
        Reply::fixed(554, E::new(5, 5, 1), "Error: no valid recipients");
    pub const NESTED_MAIL: Reply = Reply::fixed(503, E::new(5, 5, 1), "Error: nested MAIL command");
    pub const IN_TRANSACTION: Reply =
        Reply::fixed(503, E::new(5, 5, 1), "Error: MAIL transaction in progress");
    pub const MIXED_DATA_BDAT: Reply = Reply::fixed(
        503,
        E::new(5, 5, 1),
        "Error: DATA and BDAT cannot be mixed in one transaction",
    );
    pub const BINARYMIME_NEEDS_BDAT: Reply =
        Reply::fixed(503, E::new(5, 5, 1), "Error: BODY=BINARYMIME requires BDAT");
    pub const TOO_MANY_RCPTS: Reply =
        Reply::fixed(452, E::new(4, 5, 3), "Error: too many recipients");
    /// 4.7.0 (a policy limit), not 4.5.3, which RFC 3463 reserves for too many recipients.
    pub const TOO_MANY_MESSAGES: Reply = Reply::fixed(
        452,
        E::new(4, 7, 0),
        "Error: too many messages in this session",
    );
    pub const TOO_BIG: Reply = Reply::fixed(
        552,
        E::new(5, 3, 4),
        "Message size exceeds fixed maximum message size",
    );
    pub const BARE_NEWLINE: Reply = Reply::fixed(
        550,
        E::new(5, 5, 2),
        "Message refused: bare CR or LF in message; lines must end with CRLF",
    );
    pub const LONG_LINE: Reply =
        Reply::fixed(554, E::new(5, 6, 0), "Message refused: line too long");
    pub const BARE_LF_COMMAND: Reply = Reply::fixed(
        500,
        E::new(5, 5, 2),
        "Syntax error: bare <LF> received; lines must end with <CR><LF>",
    );
    pub const BARE_CR_COMMAND: Reply =
        Reply::fixed(500, E::new(5, 5, 2), "Syntax error: bare <CR> in command");
    pub const LINE_TOO_LONG: Reply = Reply::fixed(500, E::new(5, 5, 2), "Line too long");
    pub const UNRECOGNIZED: Reply = Reply::fixed(500, E::new(5, 5, 1), "Command unrecognized");
    pub const NOT_UTF8: Reply = Reply::fixed(500, E::new(5, 5, 2), "Invalid characters in command");
    pub const BAD_SENDER: Reply = Reply::fixed(501, E::new(5, 1, 7), "Bad sender address syntax");
    pub const BAD_RCPT: Reply = Reply::fixed(501, E::new(5, 1, 3), "Bad recipient address syntax");
    pub const NON_ASCII: Reply =
        Reply::fixed(553, E::new(5, 6, 7), "Non-ASCII address requires SMTPUTF8");
    pub const BAD_HELO: Reply = Reply::fixed(501, E::new(5, 5, 4), "Invalid domain name");
    pub const UNSYNCHRONIZED: Reply = Reply::fixed(
        554,
        E::new(5, 5, 0),
        "Message refused: commands sent before the end of data was answered (PIPELINING not offered)",
    );
    pub const NOT_OFFERED_PARAM: Reply = Reply::fixed(
        555,
        E::new(5, 5, 4),
        "Parameter not supported by this server",
    );
}

/// How input is being read.
#[derive(Debug)]
enum Mode {
    /// Command lines.
    Command,
    /// Message content after 354.
    Data(Box<DataDecoder>),
    /// The octets of a BDAT chunk.
    Bdat(BdatChunk),
    /// A SASL response line.
    Sasl(SaslStep),
    /// Waiting for the shell to finish a TLS handshake; input is discarded.
    TlsHandshake,
    /// The session is over.
    Closed,
}

#[derive(Debug)]
struct BdatChunk {
    remaining: u64,
    last: bool,
    /// `None`: store the octets. `Some(refusal)`: discard them, then send its reply.
    refuse: Option<BdatRefusal>,
}

#[derive(Debug)]
struct BdatRefusal {
    reply: Reply,
    /// A protocol error (counted towards the error limit) rather than a policy refusal.
    protocol_error: bool,
}

#[derive(Debug, Clone)]
enum SaslStep {
    PlainResponse,
    LoginUser,
    LoginPassword { username: String },
}

/// A request awaiting its answer, with what is needed to act on it.
#[derive(Debug)]
enum Pending {
    Connect,
    Helo {
        ehlo: bool,
        host: Host,
    },
    Auth {
        username: String,
    },
    Mail {
        from: ReversePath,
        params: MailParams,
    },
    Rcpt {
        to: ForwardPath,
        params: RcptParams,
    },
    Data,
    Bdat {
        size: u64,
        last: bool,
    },
    Commit,
}

/// Where the session stands with its greeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Greeting {
    /// The Connect request is outstanding. Input received now comes from an early talker.
    Waiting {
        /// The client has already sent something.
        early_talker: bool,
    },
    /// The client was greeted with 220: a normal session.
    Sent,
    /// The greeting refused the client (554). RFC 5321 section 3.1: the server must still
    /// wait for QUIT, and answers anything else with 503.
    Refused,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    #[default]
    None,
    Data,
    Bdat,
}

#[derive(Debug)]
struct Transaction {
    from: ReversePath,
    params: MailParams,
    rcpts: Vec<(ForwardPath, RcptParams)>,
    rcpt_attempts: usize,
    body: BodyKind,
    size: u64,
    /// Line discipline for BDAT content (`None` for BINARYMIME, which may hold any octets).
    bdat_lines: Option<LineNormalizer>,
}

/// How much longer than `max_command_line` a MAIL or RCPT line may be. RFC 5321 section
/// 4.5.3.1.4 lets extensions raise the 512-octet limit, and the parameters do: SIZE by 26
/// octets (RFC 1870), AUTH= by 500 (RFC 4954), ENVID, RET, NOTIFY and ORCPT by up to several
/// hundred more (RFC 3461). Other commands keep the plain limit.
const PARAMS_ALLOWANCE: usize = 1024;

/// Chunks of message content are handed to the shell at least this often.
const DATA_CHUNK: usize = 64 * 1024;
/// Above this much unprocessed input the machine asks the shell to stop reading.
const INPUT_HIGH_WATER: usize = 64 * 1024;

/// The server session machine. See the [module documentation](self).
#[derive(Debug)]
pub struct ServerSession {
    config: Arc<ServerConfig>,
    peer: String,
    mode: Mode,
    framer: LineFramer,
    input: Vec<u8>,
    input_pos: usize,
    output: Vec<u8>,
    events: VecDeque<ServerEvent>,
    pending: Option<(RequestId, Pending)>,
    next_request: u64,
    greeting: Greeting,
    helo: Option<(bool, Host)>,
    tls: bool,
    auth_user: Option<String>,
    transaction: Option<Transaction>,
    /// The last MAIL was refused by the shell: RCPT, DATA and BDAT that a pipelining client sent
    /// after it get 503 as RFC 2920 section 3.1 expects, without counting as protocol errors.
    mail_refused: bool,
    data_buf: Vec<u8>,
    messages: usize,
    errors: usize,
    /// When the client last sent something (or the shell last answered): the idle timer
    /// runs from here.
    last_activity: Time,
}

impl ServerSession {
    /// A session for a new connection. The first event is [`Request::Connect`].
    #[must_use]
    pub fn new(config: Arc<ServerConfig>, info: ConnectionInfo, now: Time) -> ServerSession {
        let mut s = ServerSession {
            config,
            peer: info.peer,
            mode: Mode::Command,
            framer: LineFramer::new(),
            input: Vec::new(),
            input_pos: 0,
            output: Vec::new(),
            events: VecDeque::new(),
            pending: None,
            next_request: 0,
            greeting: Greeting::Waiting {
                early_talker: false,
            },
            helo: None,
            tls: info.tls,
            auth_user: None,
            transaction: None,
            mail_refused: false,
            data_buf: Vec::new(),
            messages: 0,
            errors: 0,
            last_activity: now,
        };
        s.request(Pending::Connect, Request::Connect);
        s
    }

    // ----- getters -----

    /// True once the session has ended; the shell drops it after draining its output.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        matches!(self.mode, Mode::Closed)
    }

    /// True when the shell should keep reading from the peer (false under back-pressure).
    #[must_use]
    pub fn wants_input(&self) -> bool {
        !self.is_closed() && self.input.len() - self.input_pos < INPUT_HIGH_WATER
    }

    /// True once TLS is active.
    #[must_use]
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The authenticated user, if any.
    #[must_use]
    pub fn auth_user(&self) -> Option<&str> {
        self.auth_user.as_deref()
    }

    /// The HELO/EHLO name, if the client has sent one.
    #[must_use]
    pub fn helo(&self) -> Option<&Host> {
        self.helo.as_ref().map(|(_, h)| h)
    }

    /// True when the client greeted with EHLO.
    #[must_use]
    pub fn is_esmtp(&self) -> bool {
        self.helo.as_ref().is_some_and(|(ehlo, _)| *ehlo)
    }

    // ----- outputs -----

    /// Bytes to write to the client, if any.
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
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should be called next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Time> {
        if self.pending.is_some() || self.is_closed() {
            // While a request is outstanding the client is waiting for us, not the other way
            // round.
            return None;
        }
        Some(self.last_activity + self.idle_timeout())
    }

    // ----- inputs -----

    /// Bytes received from the client.
    pub fn handle_input(&mut self, bytes: &[u8], now: Time) {
        match self.mode {
            Mode::Closed => return,
            // RFC 3207: plaintext sent after STARTTLS and before the handshake is discarded;
            // acting on it would let an attacker inject commands into the TLS session.
            Mode::TlsHandshake => return,
            _ => {}
        }
        if bytes.is_empty() {
            return;
        }
        if let Greeting::Waiting { early_talker } = &mut self.greeting {
            *early_talker = true;
        }
        // Drop what has been consumed. Clearing only an empty buffer would let it grow for the
        // whole session when reads keep ending in the middle of a line.
        self.input.drain(..self.input_pos);
        self.input_pos = 0;
        self.input.extend_from_slice(bytes);
        self.touch(now);
        self.process();
    }

    /// The deadline from [`poll_timeout`](Self::poll_timeout) may have passed.
    pub fn handle_timeout(&mut self, now: Time) {
        if self.poll_timeout().is_none_or(|deadline| now < deadline) {
            return;
        }
        self.abort_data();
        if matches!(self.mode, Mode::TlsHandshake) {
            // The stream belongs to the TLS handshake: a plaintext reply would only corrupt it.
            return self.close();
        }
        self.trace(Trace::Timeout);
        let text = format!("{} Error: timeout exceeded", self.config.hostname);
        self.close_with(Reply::new(421, EnhancedCode::new(4, 4, 2), text));
    }

    /// The shell's answer to request `id`. Answers to requests that are no longer outstanding
    /// (the session was closed meanwhile) are ignored.
    pub fn answer(&mut self, id: RequestId, decision: Decision, now: Time) {
        let Some((pending_id, _)) = &self.pending else {
            return;
        };
        if *pending_id != id || self.is_closed() {
            return;
        }
        let Some((_, pending)) = self.pending.take() else {
            return;
        };
        self.touch(now);
        if let Decision::Disconnect(reply) = decision {
            // Nothing to abandon: no content is received while a request is outstanding, and
            // a refused commit is already known to the shell.
            return self.close_with(reply);
        }
        self.resolve(pending, decision);
        self.process();
    }

    /// The TLS handshake asked for by [`ServerEvent::StartTls`] has completed. Everything known
    /// from before is forgotten (RFC 3207 section 4.2): the client must say EHLO again.
    pub fn tls_established(&mut self, now: Time) {
        if !matches!(self.mode, Mode::TlsHandshake) {
            return;
        }
        self.tls = true;
        self.helo = None;
        self.auth_user = None;
        self.transaction = None;
        self.framer.reset();
        self.input.clear();
        self.input_pos = 0;
        self.mode = Mode::Command;
        self.touch(now);
    }

    /// The shell is shutting down: tell the client (421) and close. A message whose end of
    /// data was not yet acknowledged is abandoned.
    pub fn shutdown(&mut self) {
        if self.is_closed() {
            return;
        }
        self.abort_data();
        self.pending = None;
        if matches!(self.mode, Mode::TlsHandshake) {
            // No plaintext reply in the middle of a TLS handshake.
            return self.close();
        }
        let text = format!(
            "{} Service shutting down, closing channel",
            self.config.hostname
        );
        self.close_with(Reply::new(421, EnhancedCode::new(4, 3, 2), text));
    }

    // ----- the machine -----

    /// Restarts the idle timer.
    fn touch(&mut self, now: Time) {
        // Time must not go backwards; if it does, treat it as no time having passed.
        self.last_activity = self.last_activity.max(now);
    }

    /// The idle time allowed in the current mode. It is chosen when the timer is read, not
    /// when it is restarted, so that a command that switches to DATA (or back) gets the
    /// timeout of the mode it switched to.
    fn idle_timeout(&self) -> Duration {
        match self.mode {
            Mode::Data(_) | Mode::Bdat(_) => self.config.data_timeout,
            _ => self.config.command_timeout,
        }
    }

    fn request(&mut self, pending: Pending, request: Request) {
        let id = RequestId(self.next_request);
        self.next_request += 1;
        self.pending = Some((id, pending));
        self.events.push_back(ServerEvent::Request(id, request));
    }

    fn reply(&mut self, reply: &Reply) {
        let start = self.output.len();
        reply.write_to(&mut self.output);
        if self.config.trace {
            let text = String::from_utf8_lossy(&self.output[start..]).into_owned();
            for line in text.split_terminator("\r\n") {
                self.trace(Trace::Server(line.to_owned()));
            }
        }
    }

    fn trace(&mut self, trace: Trace) {
        if self.config.trace {
            self.events.push_back(ServerEvent::Trace(trace));
        }
    }

    /// A reply to a protocol error; too many of them end the session.
    fn error(&mut self, reply: &Reply) {
        self.reply(reply);
        self.errors += 1;
        if self.errors >= self.config.max_errors {
            let text = format!("{} Error: too many errors", self.config.hostname);
            self.close_with(Reply::new(421, EnhancedCode::new(4, 7, 0), text));
        }
    }

    fn close_with(&mut self, reply: Reply) {
        self.reply(&reply);
        self.close();
    }

    fn close(&mut self) {
        if !self.is_closed() {
            // A message still being received is abandoned, and its content must not follow
            // the Close event.
            self.abort_data();
            self.mode = Mode::Closed;
            self.pending = None;
            self.events.push_back(ServerEvent::Close);
        }
    }

    /// Processes buffered input until it runs out, a request is outstanding, or the mode stops
    /// reading.
    fn process(&mut self) {
        while self.pending.is_none() && self.input_pos < self.input.len() {
            match &mut self.mode {
                Mode::Closed | Mode::TlsHandshake => break,
                Mode::Command => {
                    if !self.step_command() {
                        break;
                    }
                }
                Mode::Sasl(_) => {
                    if !self.step_sasl() {
                        break;
                    }
                }
                Mode::Data(_) => self.step_data(),
                Mode::Bdat(_) => self.step_bdat(),
            }
        }
        self.flush_data();
        if self.input_pos == self.input.len() {
            self.input.clear();
            self.input_pos = 0;
        }
    }

    fn flush_data(&mut self) {
        if !self.data_buf.is_empty() && !self.is_closed() {
            let chunk = std::mem::take(&mut self.data_buf);
            self.events.push_back(ServerEvent::DataChunk(chunk));
        }
    }

    /// Reads and handles one command line; false when no complete line is buffered.
    fn step_command(&mut self) -> bool {
        let max = self.config.max_command_line;
        let frame = self
            .framer
            .next(&self.input[self.input_pos..], max + PARAMS_ALLOWANCE);
        match frame {
            Frame::Incomplete => false,
            Frame::TooLong { consumed } => {
                self.input_pos += consumed;
                if self.line_skipped() {
                    self.error(&replies::LINE_TOO_LONG);
                }
                true
            }
            Frame::Line {
                len,
                consumed,
                bare_lf,
                bare_cr,
            } => {
                let start = self.input_pos;
                self.input_pos += consumed;
                if self.config.trace {
                    let text = masked_command(&self.input[start..start + len]);
                    self.trace(Trace::Client(text));
                }
                let line = &self.input[start..start + len];
                if bare_cr {
                    self.error(&replies::BARE_CR_COMMAND);
                } else if bare_lf && self.config.bare_newline == BareNewline::Reject {
                    self.error(&replies::BARE_LF_COMMAND);
                } else if consumed > max && !takes_params(line) {
                    self.error(&replies::LINE_TOO_LONG);
                } else {
                    let line = line.to_vec();
                    self.command_line(&line);
                }
                true
            }
        }
    }

    /// True when the over-long line just discarded has ended: it is reported once, then.
    fn line_skipped(&self) -> bool {
        self.input[..self.input_pos].last() == Some(&b'\n')
    }

    fn parse_options(&self) -> ParseOptions {
        ParseOptions {
            smtputf8_offered: self.smtputf8_offered() && self.is_esmtp(),
            utf8_transaction: self.transaction.as_ref().is_some_and(|t| t.params.smtputf8),
            lenient_paths: self.config.lenient_paths,
        }
    }

    fn command_line(&mut self, line: &[u8]) {
        let parsed = Command::parse(line, self.parse_options());
        if self.greeting == Greeting::Refused {
            return match parsed {
                Ok(Command::Quit) => self.close_with(replies::BYE),
                _ => self.error(&replies::NO_SERVICE),
            };
        }
        let command = match parsed {
            Ok(c) => c,
            Err(e) => return self.command_error(&e),
        };
        // RFC 3207 section 4: when TLS is required, every command but NOOP, EHLO, STARTTLS
        // and QUIT gets 530 until it is on.
        if self.config.tls == TlsPolicy::Require
            && !self.tls
            && !matches!(
                command,
                Command::Ehlo(_) | Command::StartTls | Command::Noop | Command::Quit
            )
        {
            return self.error(&replies::TLS_REQUIRED);
        }
        match command {
            Command::Helo(host) => self.helo_command(false, host),
            Command::Ehlo(host) => self.helo_command(true, host),
            Command::Mail { from, params } => self.mail_command(from, params),
            Command::Rcpt { to, params } => self.rcpt_command(to, params),
            Command::Data => self.data_command(),
            Command::Bdat { size, last } => self.bdat_command(size, last),
            Command::Rset => {
                self.abort_transaction();
                self.reply(&replies::RESET);
            }
            Command::Noop => self.reply(&replies::OK),
            Command::Quit => self.close_with(replies::BYE),
            Command::Vrfy(_) => self.reply(&replies::VRFY),
            Command::Expn(_) => self.reply(&replies::EXPN),
            Command::Help(_) => self.reply(&replies::HELP),
            Command::StartTls => self.starttls_command(),
            Command::Auth { mechanism, initial } => self.auth_command(&mechanism, initial),
        }
    }

    fn command_error(&mut self, e: &CommandError) {
        let reply = match e {
            CommandError::Unrecognized => replies::UNRECOGNIZED,
            CommandError::NotUtf8 => replies::NOT_UTF8,
            CommandError::Syntax(what) => Reply::new(
                501,
                EnhancedCode::new(5, 5, 4),
                format!("Syntax error: {what}"),
            ),
            CommandError::BadHelo(_) => replies::BAD_HELO,
            CommandError::BadSender(PathError::NonAscii)
            | CommandError::BadRecipient(PathError::NonAscii) => replies::NON_ASCII,
            CommandError::BadSender(_) => replies::BAD_SENDER,
            CommandError::BadRecipient(_) => replies::BAD_RCPT,
            CommandError::Param(ParamError::Unknown(name)) => Reply::new(
                555,
                EnhancedCode::new(5, 5, 4),
                format!("Unsupported parameter {}", truncate(name, 32)),
            ),
            CommandError::Param(p) => Reply::new(
                501,
                EnhancedCode::new(5, 5, 4),
                format!("Syntax error: {p}"),
            ),
        };
        self.error(&reply);
    }

    fn helo_command(&mut self, ehlo: bool, host: Host) {
        self.request(
            Pending::Helo {
                ehlo,
                host: host.clone(),
            },
            Request::Helo { ehlo, host },
        );
    }

    fn ehlo_reply(&self, ehlo: bool, host: &Host) -> Reply {
        let c = &self.config;
        let mut text = format!(
            "{} Hello {host} [{}], pleased to meet you",
            c.hostname, self.peer
        );
        if !ehlo {
            return Reply::plain(250, text);
        }
        let mut kw = |k: &str| {
            text.push('\n');
            text.push_str(k);
        };
        if c.eight_bit_mime {
            kw("8BITMIME");
        }
        kw("ENHANCEDSTATUSCODES");
        if c.max_message_size > 0 {
            kw(&format!("SIZE {}", c.max_message_size));
        } else {
            kw("SIZE");
        }
        if c.pipelining {
            kw("PIPELINING");
        }
        if c.chunking {
            kw("CHUNKING");
            kw("BINARYMIME");
        }
        if self.smtputf8_offered() {
            kw("SMTPUTF8");
        }
        if c.dsn {
            kw("DSN");
        }
        if c.tls != TlsPolicy::Off && !self.tls {
            kw("STARTTLS");
        }
        if self.auth_offered() && self.auth_user.is_none() {
            kw("AUTH PLAIN LOGIN");
        }
        kw("HELP");
        Reply::plain(250, text)
    }

    /// RFC 6531 section 3.1: a server offering SMTPUTF8 must also offer 8BITMIME.
    fn smtputf8_offered(&self) -> bool {
        self.config.smtputf8 && self.config.eight_bit_mime
    }

    fn auth_offered(&self) -> bool {
        self.config.auth != AuthPolicy::Off && (self.tls || self.config.auth_plaintext)
    }

    fn mail_command(&mut self, from: ReversePath, mut params: MailParams) {
        let c = &self.config;
        if self.helo.is_none() {
            return self.error(&replies::NEED_HELO);
        }
        if c.auth == AuthPolicy::Required && self.auth_user.is_none() {
            return self.error(&replies::AUTH_REQUIRED);
        }
        if self.transaction.is_some() {
            return self.error(&replies::NESTED_MAIL);
        }
        if self.messages >= c.max_messages {
            return self.reply(&replies::TOO_MANY_MESSAGES);
        }
        if !self.mail_params_offered(&params) {
            return self.error(&replies::NOT_OFFERED_PARAM);
        }
        if c.max_message_size > 0 && params.size.is_some_and(|s| s > c.max_message_size) {
            return self.reply(&replies::TOO_BIG);
        }
        if params.auth.is_some() && self.auth_user.is_none() {
            // RFC 4954 section 5: an unauthenticated client's AUTH= is not to be trusted.
            params.auth = Some(String::new());
        }
        self.request(
            Pending::Mail {
                from: from.clone(),
                params: params.clone(),
            },
            Request::Mail { from, params },
        );
    }

    /// True when every parameter given belongs to an extension the EHLO reply listed. After
    /// HELO none was listed, so none may be used.
    fn mail_params_offered(&self, params: &MailParams) -> bool {
        let c = &self.config;
        if !self.is_esmtp() {
            return *params == MailParams::default();
        }
        let body = match params.body {
            Some(Body::EightBitMime) => c.eight_bit_mime,
            Some(Body::BinaryMime) => c.chunking,
            Some(Body::SevenBit) | None => true,
        };
        body && (!params.smtputf8 || self.smtputf8_offered())
            && (c.dsn || (params.ret.is_none() && params.envid.is_none()))
            && (params.auth.is_none() || self.auth_offered())
    }

    fn rcpt_command(&mut self, to: ForwardPath, params: RcptParams) {
        let Some(tx) = &self.transaction else {
            return self.sequence_error(&replies::NEED_MAIL);
        };
        if tx.body != BodyKind::None {
            return self.error(&replies::IN_TRANSACTION);
        }
        // NOTIFY and ORCPT belong to DSN, which only an EHLO reply can offer.
        if params != RcptParams::default() && !(self.config.dsn && self.is_esmtp()) {
            return self.error(&replies::NOT_OFFERED_PARAM);
        }
        if tx.rcpts.len() >= self.config.max_recipients {
            return self.reply(&replies::TOO_MANY_RCPTS);
        }
        if let Some(tx) = &mut self.transaction {
            tx.rcpt_attempts += 1;
        }
        self.request(
            Pending::Rcpt {
                to: to.clone(),
                params: params.clone(),
            },
            Request::Rcpt { to, params },
        );
    }

    /// Checks common to DATA and BDAT; returns the refusal, if any.
    fn body_refusal(&self, kind: BodyKind) -> Option<Reply> {
        let Some(tx) = &self.transaction else {
            return Some(replies::NEED_MAIL);
        };
        if tx.body != BodyKind::None && tx.body != kind {
            return Some(replies::MIXED_DATA_BDAT);
        }
        if tx.rcpts.is_empty() {
            return Some(if tx.rcpt_attempts > 0 {
                replies::NO_VALID_RCPT
            } else {
                replies::NEED_RCPT
            });
        }
        if kind == BodyKind::Data && tx.params.body == Some(Body::BinaryMime) {
            return Some(replies::BINARYMIME_NEEDS_BDAT);
        }
        None
    }

    /// A 503/554 to a command that follows a refusal: after a refused MAIL, or a DATA whose
    /// recipients were all refused, the client's pipelined commands fail as RFC 2920 expects and
    /// are not protocol errors. Anything else is.
    fn sequence_error(&mut self, reply: &Reply) {
        let consequence =
            (self.mail_refused && *reply == replies::NEED_MAIL) || *reply == replies::NO_VALID_RCPT;
        if consequence {
            self.reply(reply);
        } else {
            self.error(reply);
        }
    }

    fn data_command(&mut self) {
        if let Some(reply) = self.body_refusal(BodyKind::Data) {
            return self.sequence_error(&reply);
        }
        self.request(Pending::Data, Request::Data);
    }

    fn bdat_command(&mut self, size: u64, last: bool) {
        // CHUNKING is only offered in the EHLO reply; after HELO, BDAT is as unknown as when
        // it is switched off.
        let refuse = if !self.config.chunking || !self.is_esmtp() {
            Some(replies::UNRECOGNIZED)
        } else {
            self.body_refusal(BodyKind::Bdat)
        };
        if let Some(reply) = refuse {
            // RFC 3030: the chunk's octets must be read and thrown away, or they would be
            // taken for commands.
            return self.enter_bdat(BdatChunk {
                remaining: size,
                last,
                refuse: Some(BdatRefusal {
                    protocol_error: !((self.mail_refused && reply == replies::NEED_MAIL)
                        || reply == replies::NO_VALID_RCPT),
                    reply,
                }),
            });
        }
        let started = self
            .transaction
            .as_ref()
            .is_some_and(|t| t.body == BodyKind::Bdat);
        if started {
            self.start_bdat_chunk(size, last);
        } else {
            self.request(Pending::Bdat { size, last }, Request::Data);
        }
    }

    fn start_bdat_chunk(&mut self, size: u64, last: bool) {
        let max = self.config.max_message_size;
        let total = self
            .transaction
            .as_ref()
            .map_or(0, |t| t.size)
            .saturating_add(size);
        let refuse = (max > 0 && total > max).then_some(BdatRefusal {
            reply: replies::TOO_BIG,
            protocol_error: false,
        });
        if refuse.is_some() {
            // RFC 3030: after a failed chunk the transaction is over.
            self.abort_transaction();
        }
        self.enter_bdat(BdatChunk {
            remaining: size,
            last,
            refuse,
        });
    }

    fn enter_bdat(&mut self, chunk: BdatChunk) {
        let empty = chunk.remaining == 0;
        self.mode = Mode::Bdat(chunk);
        if empty {
            self.finish_bdat_chunk();
        }
    }

    fn starttls_command(&mut self) {
        if self.tls {
            return self.error(&replies::TLS_ACTIVE);
        }
        if self.config.tls == TlsPolicy::Off {
            return self.error(&replies::TLS_NOT_OFFERED);
        }
        if self.helo.is_none() {
            return self.error(&replies::NEED_HELO);
        }
        if self.transaction.is_some() {
            return self.error(&replies::IN_TRANSACTION);
        }
        self.reply(&replies::TLS_READY);
        // Whatever the client pipelined after STARTTLS is discarded (RFC 3207 section 4.2).
        self.input_pos = self.input.len();
        self.mode = Mode::TlsHandshake;
        self.events.push_back(ServerEvent::StartTls);
    }

    fn auth_command(&mut self, mechanism: &str, initial: Option<String>) {
        if self.config.auth == AuthPolicy::Off {
            return self.error(&replies::AUTH_NOT_OFFERED);
        }
        if self.helo.is_none() {
            return self.error(&replies::NEED_HELO);
        }
        if self.auth_user.is_some() {
            return self.error(&replies::AUTH_ALREADY);
        }
        if self.transaction.is_some() {
            return self.error(&replies::IN_TRANSACTION);
        }
        if !self.auth_offered() {
            return self.error(&replies::AUTH_NEEDS_TLS);
        }
        let mechanism = match mechanism {
            "PLAIN" => AuthMechanism::Plain,
            "LOGIN" => AuthMechanism::Login,
            _ => return self.error(&replies::AUTH_UNKNOWN_MECH),
        };
        match (mechanism, initial) {
            (AuthMechanism::Plain, None) => self.sasl_challenge(SaslStep::PlainResponse, ""),
            (AuthMechanism::Plain, Some(resp)) => {
                self.sasl_response(SaslStep::PlainResponse, resp.as_bytes())
            }
            (AuthMechanism::Login, None) => {
                self.sasl_challenge(SaslStep::LoginUser, "VXNlcm5hbWU6")
            }
            (AuthMechanism::Login, Some(resp)) => {
                self.sasl_response(SaslStep::LoginUser, resp.as_bytes())
            }
        }
    }

    fn sasl_challenge(&mut self, step: SaslStep, challenge: &'static str) {
        self.reply(&Reply::plain(334, challenge));
        self.mode = Mode::Sasl(step);
    }

    /// Reads one SASL response line; false when none is complete yet.
    fn step_sasl(&mut self) -> bool {
        let Mode::Sasl(step) = &self.mode else {
            return false;
        };
        let step = step.clone();
        match self
            .framer
            .next(&self.input[self.input_pos..], self.config.max_auth_line)
        {
            Frame::Incomplete => false,
            Frame::TooLong { consumed } => {
                self.input_pos += consumed;
                if self.line_skipped() {
                    self.mode = Mode::Command;
                    self.error(&replies::AUTH_LINE_TOO_LONG);
                }
                true
            }
            Frame::Line {
                len,
                consumed,
                bare_lf,
                bare_cr,
            } => {
                let start = self.input_pos;
                self.input_pos += consumed;
                self.mode = Mode::Command;
                self.trace(Trace::Client(MASK.to_owned()));
                // A SASL response is framed like a command line, with the same rules.
                if bare_cr {
                    self.error(&replies::BARE_CR_COMMAND);
                } else if bare_lf && self.config.bare_newline == BareNewline::Reject {
                    self.error(&replies::BARE_LF_COMMAND);
                } else {
                    let line = self.input[start..start + len].to_vec();
                    self.sasl_response(step, &line);
                }
                true
            }
        }
    }

    fn sasl_response(&mut self, step: SaslStep, line: &[u8]) {
        self.mode = Mode::Command;
        if line == b"*" {
            return self.error(&replies::AUTH_CANCELLED);
        }
        let decoded = if line == b"=" {
            Some(Vec::new())
        } else {
            BASE64.decode(line).ok()
        };
        let Some(decoded) = decoded else {
            return self.error(&replies::AUTH_BAD_BASE64);
        };
        match step {
            SaslStep::PlainResponse => {
                let mut parts = decoded.split(|&b| b == 0);
                let (Some(authzid), Some(user), Some(pass), None) =
                    (parts.next(), parts.next(), parts.next(), parts.next())
                else {
                    return self.error(&replies::AUTH_FAILED);
                };
                self.check_credentials(AuthMechanism::Plain, authzid, user, pass);
            }
            SaslStep::LoginUser => {
                let Ok(username) = String::from_utf8(decoded) else {
                    return self.error(&replies::AUTH_FAILED);
                };
                self.sasl_challenge(SaslStep::LoginPassword { username }, "UGFzc3dvcmQ6");
            }
            SaslStep::LoginPassword { username } => {
                self.check_credentials(AuthMechanism::Login, b"", username.as_bytes(), &decoded);
            }
        }
    }

    fn check_credentials(
        &mut self,
        mechanism: AuthMechanism,
        authzid: &[u8],
        user: &[u8],
        pass: &[u8],
    ) {
        let (Ok(authzid), Ok(username), Ok(password)) = (
            std::str::from_utf8(authzid),
            std::str::from_utf8(user),
            std::str::from_utf8(pass),
        ) else {
            return self.error(&replies::AUTH_FAILED);
        };
        if username.is_empty() {
            return self.error(&replies::AUTH_FAILED);
        }
        let credentials = Credentials {
            authzid: authzid.to_owned(),
            username: username.to_owned(),
            password: password.to_owned(),
        };
        self.request(
            Pending::Auth {
                username: username.to_owned(),
            },
            Request::Auth {
                mechanism,
                credentials,
            },
        );
    }

    fn step_data(&mut self) {
        let Mode::Data(decoder) = &mut self.mode else {
            return;
        };
        let start = self.input_pos;
        let before = self.data_buf.len();
        let result = decoder.decode(&self.input[start..], &mut self.data_buf);
        self.input_pos += result.consumed;
        let flags = decoder.flags();
        if let Some(tx) = &mut self.transaction {
            tx.size += (self.data_buf.len() - before) as u64;
            let max = self.config.max_message_size;
            if max > 0 && tx.size > max {
                // Keep reading to the end of data, but store nothing more.
                self.data_buf.clear();
            }
        }
        if self.data_buf.len() >= DATA_CHUNK {
            self.flush_data();
        }
        if result.complete {
            self.end_of_data(flags);
        }
    }

    fn end_of_data(&mut self, flags: crate::smtp::DataFlags) {
        self.mode = Mode::Command;
        self.trace(Trace::Client(".".to_owned()));
        if !self.pipelining_negotiated() && self.input_pos < self.input.len() {
            return self.refuse_unsynchronized();
        }
        let size = self.transaction.as_ref().map_or(0, |t| t.size);
        let max = self.config.max_message_size;
        let refusal = if max > 0 && size > max {
            Some(replies::TOO_BIG)
        } else if flags.bare_newline() && self.config.bare_newline == BareNewline::Reject {
            Some(replies::BARE_NEWLINE)
        } else if flags.long_line {
            Some(replies::LONG_LINE)
        } else {
            None
        };
        if let Some(reply) = refusal {
            self.abort_data();
            self.transaction = None;
            return self.reply(&reply);
        }
        self.commit();
    }

    /// Input arrived after the end of data before its reply, and PIPELINING was not offered:
    /// the signature of SMTP smuggling, where what follows the end of data is a second,
    /// forged message. Refuse this message, then end the session with 421 (RFC 5321 section
    /// 3.8 allows closing only after a 421) without reading what follows.
    fn refuse_unsynchronized(&mut self) {
        self.abort_data();
        self.transaction = None;
        self.reply(&replies::UNSYNCHRONIZED);
        let text = format!(
            "{} Error: protocol synchronization, closing",
            self.config.hostname
        );
        self.close_with(Reply::new(421, EnhancedCode::new(4, 5, 0), text));
    }

    /// The last BDAT chunk has arrived: the same line checks as at the end of DATA, unless the
    /// body is BINARYMIME.
    fn end_of_bdat(&mut self) {
        let before = self.data_buf.len();
        let flags = match self
            .transaction
            .as_mut()
            .and_then(|t| t.bdat_lines.as_mut())
        {
            Some(lines) => lines.finish(&mut self.data_buf),
            None => crate::smtp::DataFlags::default(),
        };
        // What the line checker held back (a final CR, written out as CRLF) is content too.
        if let Some(tx) = &mut self.transaction {
            tx.size += (self.data_buf.len() - before) as u64;
        }
        let refusal = if flags.bare_newline() && self.config.bare_newline == BareNewline::Reject {
            Some(replies::BARE_NEWLINE)
        } else if flags.long_line {
            Some(replies::LONG_LINE)
        } else {
            None
        };
        if let Some(reply) = refusal {
            self.abort_data();
            self.transaction = None;
            return self.reply(&reply);
        }
        self.commit();
    }

    fn pipelining_negotiated(&self) -> bool {
        self.config.pipelining && self.is_esmtp()
    }

    fn commit(&mut self) {
        self.flush_data();
        let Some(tx) = self.transaction.take() else {
            return;
        };
        let envelope = Envelope {
            from: tx.from,
            params: tx.params,
            rcpts: tx.rcpts,
        };
        self.messages += 1;
        self.request(
            Pending::Commit,
            Request::Commit {
                envelope,
                size: tx.size,
            },
        );
    }

    fn step_bdat(&mut self) {
        let Mode::Bdat(chunk) = &mut self.mode else {
            return;
        };
        let available = (self.input.len() - self.input_pos) as u64;
        let take = chunk.remaining.min(available);
        let take_usize = usize::try_from(take).unwrap_or(usize::MAX);
        let refusing = chunk.refuse.is_some();
        chunk.remaining -= take;
        let done = chunk.remaining == 0;
        if !refusing {
            let start = self.input_pos;
            let piece = &self.input[start..start + take_usize];
            let before = self.data_buf.len();
            match self
                .transaction
                .as_mut()
                .and_then(|t| t.bdat_lines.as_mut())
            {
                Some(lines) => lines.process(piece, &mut self.data_buf),
                None => self.data_buf.extend_from_slice(piece),
            }
            if let Some(tx) = &mut self.transaction {
                tx.size += (self.data_buf.len() - before) as u64;
            }
            if self.data_buf.len() >= DATA_CHUNK {
                self.flush_data();
            }
        }
        self.input_pos += take_usize;
        if done {
            self.finish_bdat_chunk();
        }
    }

    fn finish_bdat_chunk(&mut self) {
        let Mode::Bdat(chunk) = std::mem::replace(&mut self.mode, Mode::Command) else {
            return;
        };
        if let Some(refusal) = chunk.refuse {
            if refusal.protocol_error {
                self.error(&refusal.reply);
            } else {
                self.reply(&refusal.reply);
            }
            return;
        }
        if chunk.last {
            self.end_of_bdat();
        } else {
            let size = self.transaction.as_ref().map_or(0, |t| t.size);
            let text = format!("{size} octets received");
            self.reply(&Reply::new(250, EnhancedCode::new(2, 0, 0), text));
        }
    }

    /// Ends the transaction and, if message content was being received, tells the shell to
    /// discard it.
    fn abort_transaction(&mut self) {
        if self
            .transaction
            .as_ref()
            .is_some_and(|t| t.body != BodyKind::None)
        {
            self.abort_data();
        }
        self.transaction = None;
        self.mail_refused = false;
    }

    fn abort_data(&mut self) {
        let receiving = matches!(self.mode, Mode::Data(_) | Mode::Bdat(_))
            || self
                .transaction
                .as_ref()
                .is_some_and(|t| t.body != BodyKind::None)
            || matches!(self.pending, Some((_, Pending::Commit)));
        if receiving {
            self.data_buf.clear();
            self.events.push_back(ServerEvent::DataAborted);
            // Told once: the content being read is no longer a message.
            if matches!(self.mode, Mode::Data(_) | Mode::Bdat(_)) {
                self.mode = Mode::Command;
            }
            if let Some(tx) = &mut self.transaction {
                tx.body = BodyKind::None;
                tx.size = 0;
            }
        }
    }

    /// Acts on the shell's answer to a request.
    fn resolve(&mut self, pending: Pending, decision: Decision) {
        let reply = match decision {
            Decision::Accept => return self.accept(pending, None),
            // DATA's positive reply is the intermediate 354, not a 2xx.
            Decision::Reply(r)
                if r.is_positive() || (r.code == 354 && matches!(pending, Pending::Data)) =>
            {
                return self.accept(pending, Some(&r));
            }
            Decision::Reply(r) | Decision::Disconnect(r) => r,
        };
        let closing = reply.code == 421;
        match pending {
            Pending::Connect => return self.refuse_greeting(reply),
            // A failed authentication counts towards the error limit, which is what stops a
            // client from guessing passwords for ever on one connection.
            Pending::Auth { .. } if !closing => self.error(&reply),
            Pending::Bdat { .. } if closing => {
                self.transaction = None;
                self.reply(&reply);
            }
            Pending::Bdat { size, last } => {
                // The shell refused the message; its first chunk is still on the way and must
                // be read and discarded before the refusal is sent (RFC 3030).
                self.transaction = None;
                self.enter_bdat(BdatChunk {
                    remaining: size,
                    last,
                    refuse: Some(BdatRefusal {
                        reply,
                        protocol_error: false,
                    }),
                });
                return;
            }
            Pending::Mail { .. } => {
                self.mail_refused = true;
                self.reply(&reply);
            }
            // A refused commit needs no DataAborted: the shell refused it itself.
            _ => self.reply(&reply),
        }
        if closing {
            self.abort_data();
            self.close();
        }
    }

    /// Greets the client with a refusal. 421 (and RFC 7504's 521) close the connection; any
    /// other refusal, normally 554, leaves it open until the client says QUIT (RFC 5321
    /// section 3.1).
    fn refuse_greeting(&mut self, reply: Reply) {
        if matches!(reply.code, 421 | 521) {
            return self.close_with(reply);
        }
        self.greeting = Greeting::Refused;
        self.reply(&reply);
    }

    /// The shell accepted the connection: greet with 220, unless the client spoke first.
    fn greet(&mut self, custom: Option<&Reply>) {
        if self.greeting == (Greeting::Waiting { early_talker: true }) {
            // A client that talks before the greeting is not following the protocol
            // (typically a spam bot that does not wait): refuse it. What it sent is then
            // answered like any command after a refused greeting.
            let text = format!(
                "{} Protocol error: input sent before the greeting",
                self.config.hostname
            );
            return self.refuse_greeting(Reply::plain(554, text));
        }
        self.greeting = Greeting::Sent;
        let default = Reply::plain(
            220,
            format!("{} {}", self.config.hostname, self.config.banner),
        );
        self.reply(custom.unwrap_or(&default));
    }

    fn accept(&mut self, pending: Pending, custom: Option<&Reply>) {
        let send = |s: &mut Self, default: &Reply| s.reply(custom.unwrap_or(default));
        match pending {
            Pending::Connect => self.greet(custom),
            Pending::Helo { ehlo, host } => {
                let reply = self.ehlo_reply(ehlo, &host);
                self.abort_transaction();
                self.helo = Some((ehlo, host));
                self.reply(&reply);
            }
            Pending::Auth { username } => {
                self.auth_user = Some(username);
                send(self, &replies::AUTH_OK);
            }
            Pending::Mail { from, params } => {
                self.mail_refused = false;
                self.transaction = Some(Transaction {
                    from,
                    params,
                    rcpts: Vec::new(),
                    rcpt_attempts: 0,
                    body: BodyKind::None,
                    size: 0,
                    bdat_lines: None,
                });
                send(self, &replies::SENDER_OK);
            }
            Pending::Rcpt { to, params } => {
                if let Some(tx) = &mut self.transaction {
                    tx.rcpts.push((to, params));
                }
                send(self, &replies::RCPT_OK);
            }
            Pending::Data => {
                if let Some(tx) = &mut self.transaction {
                    tx.body = BodyKind::Data;
                }
                // Only a 354 tells the client to go ahead: a 2xx text cannot stand in for it.
                let reply = custom.filter(|r| r.code == 354);
                self.reply(reply.unwrap_or(&replies::START_DATA));
                let max_line = self.config.max_text_line.saturating_sub(2);
                self.mode = Mode::Data(Box::new(DataDecoder::new(max_line)));
            }
            Pending::Bdat { size, last } => {
                let max_line = self.config.max_text_line.saturating_sub(2);
                if let Some(tx) = &mut self.transaction {
                    tx.body = BodyKind::Bdat;
                    if tx.params.body != Some(Body::BinaryMime) {
                        tx.bdat_lines = Some(LineNormalizer::new(max_line));
                    }
                }
                self.start_bdat_chunk(size, last);
            }
            Pending::Commit => send(self, &replies::ACCEPTED),
        }
    }
}

/// True for the commands whose ESMTP parameters may make them longer than a plain command
/// line (MAIL and RCPT).
fn takes_params(line: &[u8]) -> bool {
    let verb = line.get(..5).unwrap_or_default();
    verb.eq_ignore_ascii_case(b"MAIL ") || verb.eq_ignore_ascii_case(b"RCPT ")
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}
