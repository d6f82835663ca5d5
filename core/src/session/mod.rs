//! SMTP session state machines: [`server`] (smtp-in) and [`client`] (smtp-out).
//!
//! # Driving a machine
//!
//! Both machines follow the same contract, in the manner of quinn-proto:
//!
//! - **Inputs**: `handle_input(bytes, now)` with whatever the peer sent (any chunking),
//!   `handle_timeout(now)` when the time from `poll_timeout` has come, `answer(id, decision)`
//!   (server) to reply to a request, and `tls_established(now)` once the shell has finished a
//!   TLS handshake the machine asked for.
//! - **Outputs**: `poll_transmit()` gives bytes to write to the peer; `poll_event()` gives
//!   what the shell must act on. After every input, drain both: first `poll_transmit` until
//!   `None` and write those bytes, then `poll_event` until `None`. Bytes returned by
//!   `poll_transmit` always precede the event that follows them, so writing them before
//!   acting on `StartTls` or `Close` keeps the protocol in order.
//! - **Time**: every input takes `now`; `poll_timeout()` says when to call `handle_timeout`.
//!   A spurious or early `handle_timeout` is harmless. Time must not go backwards.
//!
//! The machines never block and never do I/O: a slow decision (a table lookup, a filter, a
//! queue write) is a request the shell answers later, while input keeps being buffered.

pub mod client;
pub mod harness;
pub mod server;

use std::fmt;

use crate::smtp::Reply;

/// Identifies a request of the server machine, to be passed back with its answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// The shell's answer to a request of the server machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead with the usual positive reply.
    Accept,
    /// Send this reply. A 2xx reply accepts (with this text), a 4xx or 5xx refuses; the session
    /// goes on either way.
    Reply(Reply),
    /// Send this reply, then close the connection.
    Disconnect(Reply),
}

/// A SASL mechanism the machines implement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthMechanism {
    /// RFC 4616 PLAIN.
    Plain,
    /// The LOGIN mechanism (not standardised, universally deployed).
    Login,
}

impl AuthMechanism {
    /// The mechanism's name as it appears in EHLO and AUTH.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            AuthMechanism::Plain => "PLAIN",
            AuthMechanism::Login => "LOGIN",
        }
    }
}

/// Credentials presented by a client. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The authorisation identity (PLAIN only; usually empty).
    pub authzid: String,
    /// The user name.
    pub username: String,
    /// The password.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("authzid", &self.authzid)
            .field("username", &self.username)
            .field("password", &"********")
            .finish()
    }
}

/// What a session did on the wire, for `protocol-client`, `protocol-server` and `timeout`
/// report events (both machines, with their `trace` setting on).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trace {
    /// A line the client sent (smtp-in: the peer; smtp-out: us), without its line ending. Credentials are masked: an AUTH
    /// initial response shows as `AUTH PLAIN ********` and every line of a SASL exchange as
    /// `********`. Message content is not traced; its end shows as `.`.
    Client(String),
    /// One line of a reply, without its line ending (`250-PIPELINING`).
    Server(String),
    /// The session timed out; the 421 follows.
    Timeout,
}

/// The mask shown instead of credentials.
pub(crate) const MASK: &str = "********";

/// A command line as the reporting stream may show it: the initial response of an AUTH
/// command is masked, whatever the mechanism, so no credential leaves the daemon.
pub(crate) fn masked_command(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let mut words = text.splitn(3, ' ');
    if let (Some(verb), Some(mechanism), Some(_)) = (words.next(), words.next(), words.next())
        && verb.eq_ignore_ascii_case("AUTH")
    {
        return format!("{verb} {mechanism} {MASK}");
    }
    text.into_owned()
}
