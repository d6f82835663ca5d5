//! Failures while walking a plan: which ones move on to the next target, and what the
//! recipients are told when every target failed.
//!
//! A target that cannot be reached, or whose server refuses the session before any
//! transaction (greeting, EHLO, STARTTLS, AUTH), is skipped for the next one (RFC 5321 section
//! 5.1: "try all MX/A addresses in order of preference before waiting"). Once a transaction
//! has started, its replies decide the recipients and nothing is retried elsewhere: a
//! message the server may already hold must not be sent twice. When every target failed,
//! the recipients wait for the next attempt: a temporary failure, whatever the servers said
//! (a 554 greeting from one MX says nothing about the mailbox).

use std::fmt::Write as _;
use std::net::SocketAddr;

use super::hop::TlsMode;
use super::plan::Target;
use crate::session::client::{Outcome, OutcomeKind, SessionError, Stage};
use crate::smtp::{EnhancedCode, Reply};

/// Why a target did not give us a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttemptError {
    /// The connection could not be made: refused, unreachable, timed out.
    Connect(String),
    /// TLS could not be set up: the TLS handshake failed, or TLS is mandatory and this shell
    /// cannot provide it.
    Tls(String),
    /// The session failed before it was ready (greeting, EHLO/HELO, STARTTLS, AUTH).
    Session(SessionError),
}

impl AttemptError {
    /// Whether to try the same target again without TLS: only a failed handshake under an
    /// opportunistic policy, where plaintext is what the policy accepts anyway (the server
    /// offered STARTTLS but cannot complete it, a common misconfiguration).
    #[must_use]
    pub fn retry_in_plaintext(&self, target: &Target) -> bool {
        target.hop.tls.mode == TlsMode::Opportunistic
            && match self {
                AttemptError::Tls(_) => true,
                AttemptError::Session(e) => e.stage == Stage::StartTls && !e.remote,
                AttemptError::Connect(_) => false,
            }
    }

    /// A one-line description, with the server's reply when there is one.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            AttemptError::Connect(why) => format!("connection failed: {why}"),
            AttemptError::Tls(why) => format!("TLS failed: {why}"),
            AttemptError::Session(e) if e.remote => {
                format!(
                    "{:?} refused: {}",
                    e.stage,
                    e.reply.to_string().replace('\n', " ")
                )
            }
            AttemptError::Session(e) => format!("{:?} failed: {}", e.stage, e.reply.text),
        }
    }

    /// The enhanced code this failure suggests (class 4: the recipients wait).
    fn enhanced(&self) -> EnhancedCode {
        match self {
            AttemptError::Connect(_) => EnhancedCode::new(4, 4, 1),
            AttemptError::Tls(_) => EnhancedCode::new(4, 7, 5),
            AttemptError::Session(e) => e.reply.enhanced.map_or(EnhancedCode::new(4, 4, 0), |c| {
                EnhancedCode::new(4, c.subject, c.detail)
            }),
        }
    }
}

/// One failed attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedAttempt {
    /// The host.
    pub host: String,
    /// The address tried.
    pub addr: SocketAddr,
    /// What went wrong.
    pub error: AttemptError,
}

/// The failures collected while walking a plan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attempts {
    /// In the order they happened.
    pub failures: Vec<FailedAttempt>,
}

impl Attempts {
    /// Records a failure.
    pub fn record(&mut self, target: &Target, error: AttemptError) {
        self.failures.push(FailedAttempt {
            host: target.host().to_owned(),
            addr: target.addr,
            error,
        });
    }

    /// The outcome for every recipient when no target gave a session: temporary, with a
    /// reply naming how many targets failed and the last failure.
    #[must_use]
    pub fn exhausted(&self) -> Outcome {
        let mut text = format!(
            "no destination accepted a session ({} attempt{})",
            self.failures.len(),
            if self.failures.len() == 1 { "" } else { "s" }
        );
        let enhanced = match self.failures.last() {
            Some(last) => {
                let _ = write!(
                    text,
                    "; last: {} [{}]: {}",
                    last.host,
                    last.addr,
                    last.error.describe()
                );
                last.error.enhanced()
            }
            None => EnhancedCode::new(4, 4, 0),
        };
        Outcome {
            kind: OutcomeKind::Temporary,
            reply: Reply::new(451, enhanced, text),
            remote: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::{HostAddresses, MxOptions, build_plan, mx_hops};

    fn target() -> Target {
        let hops = mx_hops(
            "x.test",
            Err(crate::relay::DnsError::NoData),
            &MxOptions::default(),
            0,
        )
        .unwrap();
        let plan = build_plan(hops, |_| {
            Some(HostAddresses::new(
                vec![],
                vec!["192.0.2.1".parse().unwrap()],
            ))
        })
        .unwrap();
        plan.targets[0].clone()
    }

    #[test]
    fn everything_failing_is_temporary() {
        let t = target();
        let mut attempts = Attempts::default();
        attempts.record(&t, AttemptError::Connect("Connection refused".into()));
        let greeting = Reply::new(554, EnhancedCode::new(5, 7, 1), "go away");
        attempts.record(
            &t,
            AttemptError::Session(SessionError {
                stage: Stage::Greeting,
                reply: greeting,
                remote: true,
            }),
        );
        let outcome = attempts.exhausted();
        assert_eq!(outcome.kind, OutcomeKind::Temporary);
        assert_eq!(
            outcome.reply.to_string(),
            "451 4.7.1 no destination accepted a session (2 attempts); \
             last: x.test [192.0.2.1:25]: Greeting refused: 554 5.7.1 go away"
        );
    }

    #[test]
    fn plaintext_retry_only_for_opportunistic_handshakes() {
        let mut t = target();
        let tls = AttemptError::Tls("handshake failed".into());
        assert!(tls.retry_in_plaintext(&t));
        assert!(!AttemptError::Connect("x".into()).retry_in_plaintext(&t));
        t.hop.tls.mode = TlsMode::Required;
        assert!(!tls.retry_in_plaintext(&t));
    }
}
