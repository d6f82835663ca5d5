//! The in-memory runner: every case straight against the core server machine
//! ([`ServerSession`](petrel_core::session::server::ServerSession), through the core's
//! [`ServerHarness`]), with a virtual clock and a fake TLS handshake. No sockets, no executor:
//! the whole library runs in milliseconds inside `cargo test`.
//!
//! The policy answers like a real server for one domain: recipients at that domain and the
//! postmaster are accepted, any other domain is refused (`550 5.7.1`, no relaying); AUTH
//! accepts only the configured credentials; every message is stored.

use std::io;
use std::time::Duration;

use petrel_core::session::Decision;
use petrel_core::session::harness::{Policy, ServerHarness};
use petrel_core::session::server::{AuthPolicy, Request, ServerConfig, TlsPolicy};
use petrel_core::smtp::{EnhancedCode, ForwardPath, Reply};

use crate::case::Case;
use crate::interp::Options;
use crate::suite::{self, SuiteReport};
use crate::transport::{Read, ReplyBuffer, Runner, Target, Transport, block_on_ready};

/// Runs cases against a fresh core server machine per case.
#[derive(Clone, Debug)]
pub struct MemoryRunner {
    /// The machine's settings.
    pub config: ServerConfig,
    /// The domain mail is accepted for.
    pub domain: String,
    /// The credentials AUTH accepts.
    pub credentials: Option<(String, String)>,
    /// The name in reports.
    pub name: String,
}

impl MemoryRunner {
    /// A runner for the default machine settings with STARTTLS offered and AUTH optional, so
    /// that every case has something to check; mail is accepted for `domain`. The message size
    /// limit is 1 MiB instead of 35 MiB so that the over-the-limit case stays quick.
    #[must_use]
    pub fn new(domain: &str) -> MemoryRunner {
        MemoryRunner {
            config: ServerConfig {
                hostname: "mx.conformance.test".into(),
                tls: TlsPolicy::Offer,
                auth: AuthPolicy::Optional,
                max_message_size: 1024 * 1024,
                ..ServerConfig::default()
            },
            domain: domain.to_owned(),
            credentials: Some(("conformance".into(), "secret".into())),
            name: "petrel-core".into(),
        }
    }

    /// The options matching this runner (its domain and credentials).
    #[must_use]
    pub fn options(&self) -> Options {
        let mut o = Options::for_domain(&self.domain);
        o.credentials.clone_from(&self.credentials);
        o
    }

    /// Runs `cases` and returns the report (synchronously: nothing here waits).
    #[must_use]
    pub fn run(&self, cases: &[Case], opts: &Options) -> SuiteReport {
        block_on_ready(suite::run_suite(self, cases, opts, 1))
    }

    fn policy(&self) -> Policy {
        let domain = self.domain.clone();
        let credentials = self.credentials.clone();
        Box::new(move |request| match request {
            Request::Rcpt { to, .. } => match to {
                ForwardPath::Postmaster(_) => Decision::Accept,
                ForwardPath::Mailbox(m)
                    if m.domain().is_some_and(|d| d.eq_ignore_ascii_case(&domain)) =>
                {
                    Decision::Accept
                }
                ForwardPath::Mailbox(_) => Decision::Reply(Reply::new(
                    550,
                    EnhancedCode::new(5, 7, 1),
                    "Relaying denied",
                )),
            },
            Request::Auth { credentials: c, .. } => match &credentials {
                Some((u, p)) if *u == c.username && *p == c.password => Decision::Accept,
                _ => Decision::Reply(Reply::new(
                    535,
                    EnhancedCode::new(5, 7, 8),
                    "Authentication credentials invalid",
                )),
            },
            _ => Decision::Accept,
        })
    }
}

impl Runner for MemoryRunner {
    type Transport = MemoryTransport;

    async fn connect(&self) -> Result<MemoryTransport, String> {
        let harness = ServerHarness::new(self.config.clone(), self.policy());
        let mut out = ReplyBuffer::new();
        out.extend(&harness.greeting);
        Ok(MemoryTransport { harness, out })
    }

    fn target(&self) -> Target {
        Target {
            name: self.name.clone(),
            address: "memory".into(),
            runner: "memory".into(),
        }
    }

    fn can_tls(&self) -> bool {
        true
    }

    fn reply_timeout(&self) -> Duration {
        Duration::ZERO
    }

    fn silence(&self) -> Duration {
        Duration::ZERO
    }
}

/// One in-memory session.
#[derive(Debug)]
pub struct MemoryTransport {
    /// The machine with its policy and store.
    pub harness: ServerHarness,
    out: ReplyBuffer,
}

impl Transport for MemoryTransport {
    async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.harness.closed {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let written = self.harness.send(bytes);
        self.out.extend(&written);
        Ok(())
    }

    async fn read_reply(&mut self, _timeout: Duration) -> Read {
        match self.out.take() {
            Ok(Some((reply, raw))) => Read::Reply(reply, raw),
            Ok(None) if self.harness.closed && self.out.is_empty() => Read::Closed,
            Ok(None) if self.harness.closed => Read::Malformed(format!(
                "incomplete reply before the close: {}",
                crate::interp::escape(self.out.pending(), 200)
            )),
            // Nothing more can come: in memory, the machine answered everything it will.
            Ok(None) => Read::Timeout,
            Err(e) => Read::Malformed(e),
        }
    }

    async fn wait(&mut self, d: Duration) {
        let written = self.harness.advance(d);
        self.out.extend(&written);
    }

    async fn start_tls(&mut self) -> Result<(), String> {
        if !self.harness.tls_requested {
            return Err("the server did not start a TLS handshake".into());
        }
        if !self.out.is_empty() {
            return Err(format!(
                "plaintext after the 220: {}",
                crate::interp::escape(self.out.pending(), 200)
            ));
        }
        let written = self.harness.complete_tls();
        self.out.extend(&written);
        Ok(())
    }

    fn virtual_time(&self) -> bool {
        true
    }

    fn last_stored(&self) -> Option<Vec<u8>> {
        // Observable in memory; empty when nothing was stored.
        Some(
            self.harness
                .stored
                .last()
                .map(|s| s.content.clone())
                .unwrap_or_default(),
        )
    }
}
