//! Helpers shared by the `server_*` test files, which include this file with `#[path]`.
//!
//! Two ways to drive the server machine:
//! - [`ServerHarness`] (from the crate) answers every request at once with a policy closure;
//! - [`Driver`] holds requests until the test answers them, so a test can prove that nothing
//!   after an outstanding request is processed early and that replies stay in order.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use petrel_core::Time;
use petrel_core::session::harness::{Policy, ServerHarness, accept_all};
use petrel_core::session::server::{
    ConnectionInfo, Request, ServerConfig, ServerEvent, ServerSession,
};
use petrel_core::session::{Decision, RequestId};
use petrel_core::smtp::{EnhancedCode, Reply};

/// The default configuration.
pub fn config() -> ServerConfig {
    ServerConfig::default()
}

/// A greeted harness that accepts everything.
pub fn harness(config: ServerConfig) -> ServerHarness {
    ServerHarness::new(config, accept_all())
}

/// A harness with a policy, already past `EHLO client.example`.
pub fn after_ehlo(config: ServerConfig, policy: Policy) -> ServerHarness {
    let mut h = ServerHarness::new(config, policy);
    let reply = h.line("EHLO client.example");
    assert!(reply.starts_with("250-"), "EHLO refused: {reply}");
    h
}

/// A harness that accepts everything, already past EHLO.
pub fn ehlo(config: ServerConfig) -> ServerHarness {
    after_ehlo(config, accept_all())
}

/// A harness past EHLO, MAIL and one RCPT.
pub fn in_transaction(config: ServerConfig) -> ServerHarness {
    let mut h = ehlo(config);
    assert_eq!(
        h.line("MAIL FROM:<a@example.org>"),
        "250 2.1.0 Sender ok\r\n"
    );
    assert_eq!(
        h.line("RCPT TO:<b@example.org>"),
        "250 2.1.5 Recipient ok\r\n"
    );
    h
}

/// Base64 of a string.
pub fn b64(s: &str) -> String {
    BASE64.encode(s.as_bytes())
}

/// Base64 of a PLAIN message (`authzid NUL user NUL password`).
pub fn plain(authzid: &str, user: &str, pass: &str) -> String {
    b64(&format!("{authzid}\0{user}\0{pass}"))
}

/// A refusal the shell might give.
pub fn refuse(code: u16, enhanced: (u8, u16, u16), text: &'static str) -> Decision {
    let (c, s, d) = enhanced;
    Decision::Reply(Reply::new(code, EnhancedCode::new(c, s, d), text))
}

/// The reply lines in `output`, each without its CRLF.
pub fn lines(output: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(output);
    text.split_terminator("\r\n").map(str::to_owned).collect()
}

/// The three-digit codes and enhanced codes of the reply lines in `output`, as `"250 2.1.0"`
/// (or just `"250"` when the line has no enhanced code).
pub fn codes(output: &[u8]) -> Vec<String> {
    lines(output)
        .iter()
        .filter(|l| l.as_bytes().get(3) == Some(&b' '))
        .map(|l| {
            let mut parts = l.splitn(3, ' ');
            let code = parts.next().unwrap_or_default();
            match parts.next() {
                Some(enh) if EnhancedCode::parse_prefix(enh).is_some() => format!("{code} {enh}"),
                _ => code.to_owned(),
            }
        })
        .collect()
}

/// Drives a [`ServerSession`] directly, holding every request until the test answers it.
pub struct Driver {
    /// The machine.
    pub session: ServerSession,
    /// The virtual clock.
    pub now: Time,
    /// Everything the server wrote and the test has not taken yet.
    pub output: Vec<u8>,
    /// Every event other than requests, in order, with the requests interleaved as
    /// `Request` events (so the order of chunks and requests can be checked).
    pub events: Vec<ServerEvent>,
    /// Requests not answered yet, oldest first.
    pub pending: VecDeque<(RequestId, Request)>,
}

impl Driver {
    /// A new session; its Connect request is pending.
    pub fn new(config: ServerConfig) -> Driver {
        Driver::with_info(
            config,
            ConnectionInfo {
                peer: "192.0.2.1".into(),
                tls: false,
            },
        )
    }

    /// A new session with explicit connection information.
    pub fn with_info(config: ServerConfig, info: ConnectionInfo) -> Driver {
        let now = Time::from_secs(1_700_000_000);
        let mut d = Driver {
            session: ServerSession::new(Arc::new(config), info, now),
            now,
            output: Vec::new(),
            events: Vec::new(),
            pending: VecDeque::new(),
        };
        d.drain();
        d
    }

    /// A session that is greeted and past `EHLO client.example`.
    pub fn greeted(config: ServerConfig) -> Driver {
        let mut d = Driver::new(config);
        assert_eq!(d.accept(), Request::Connect);
        d.input(b"EHLO client.example\r\n");
        assert!(matches!(d.accept(), Request::Helo { ehlo: true, .. }));
        d.take_output();
        d
    }

    /// Collects output and events.
    pub fn drain(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(bytes) = self.session.poll_transmit() {
                self.output.extend_from_slice(&bytes);
                progressed = true;
            }
            while let Some(event) = self.session.poll_event() {
                progressed = true;
                if let ServerEvent::Request(id, request) = &event {
                    self.pending.push_back((*id, request.clone()));
                }
                self.events.push(event);
            }
            if !progressed {
                return;
            }
        }
    }

    /// Sends bytes from the client.
    pub fn input(&mut self, bytes: &[u8]) {
        self.session.handle_input(bytes, self.now);
        self.drain();
    }

    /// Sends bytes one at a time.
    pub fn input_bytewise(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.input(std::slice::from_ref(b));
        }
    }

    /// Takes what the server wrote so far, as text.
    pub fn take_output(&mut self) -> String {
        String::from_utf8_lossy(&std::mem::take(&mut self.output)).into_owned()
    }

    /// Takes the events collected so far.
    pub fn take_events(&mut self) -> Vec<ServerEvent> {
        std::mem::take(&mut self.events)
    }

    /// The oldest unanswered request, without answering it.
    pub fn peek(&self) -> Option<&Request> {
        self.pending.front().map(|(_, r)| r)
    }

    /// Answers the oldest unanswered request; returns it.
    pub fn answer(&mut self, decision: Decision) -> Request {
        let (id, request) = self.pending.pop_front().expect("no request is pending");
        self.session.answer(id, decision, self.now);
        self.drain();
        request
    }

    /// Accepts the oldest unanswered request; returns it.
    pub fn accept(&mut self) -> Request {
        self.answer(Decision::Accept)
    }

    /// Advances the clock by `secs` seconds and fires the timer if it is due.
    pub fn advance(&mut self, secs: u64) {
        self.now = self.now + std::time::Duration::from_secs(secs);
        self.session.handle_timeout(self.now);
        self.drain();
    }

    /// The content of all `DataChunk` events collected so far, concatenated.
    pub fn content(&self) -> Vec<u8> {
        self.events
            .iter()
            .filter_map(|e| match e {
                ServerEvent::DataChunk(c) => Some(&c[..]),
                _ => None,
            })
            .flatten()
            .copied()
            .collect()
    }

    /// True once a `Close` event has been seen.
    pub fn closed(&self) -> bool {
        self.events.contains(&ServerEvent::Close)
    }
}
