//! The smtp-out reporting stream: what an outgoing session does, reported to the filters of
//! its relay action (`action NAME relay … filter F`) that registered for `smtp-out` events, and
//! to the event log.
//!
//! Only reports exist for smtp-out (filters are not asked anything). The session's lines come
//! from the client machine's trace; the transaction events are reported once the machine has
//! given the transaction's outcome, recipient by recipient.

use std::net::SocketAddr;
use std::sync::Arc;

use petrel_core::filter::report::{
    AuthResult, Endpoint, Fcrdns, IdentifyMethod, ReportEvent, TxResult,
};
use petrel_core::filter::{Subsystem, session_hex, wire};
use petrel_core::session::Trace;
use petrel_core::session::client::OutcomeKind;

use super::event_log::SessionView;
use super::set::FilterSet;

/// One outgoing session's reports.
pub struct OutReporter {
    set: Arc<FilterSet>,
    procs: Vec<usize>,
    session: u64,
    view: SessionView,
    greeted: bool,
    in_auth: bool,
    auth_user: Option<String>,
}

impl std::fmt::Debug for OutReporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutReporter")
            .field("session", &session_hex(self.session))
            .finish_non_exhaustive()
    }
}

impl OutReporter {
    /// Reports for an outgoing session of a relay action with these report filters, which
    /// authenticates as `auth_user` if it does; `None` when nobody listens (the action has no
    /// filter process, and there is no event log).
    #[must_use]
    pub fn new(
        set: &Arc<FilterSet>,
        filters: &[String],
        auth_user: Option<String>,
    ) -> Option<OutReporter> {
        let procs = set.procs_of(filters);
        if procs.is_empty() && set.event_log().is_none() {
            return None;
        }
        Some(OutReporter {
            set: set.clone(),
            procs,
            session: 0,
            view: SessionView::default(),
            greeted: false,
            in_auth: false,
            auth_user,
        })
    }

    /// Sends `event` to the filters that registered for it, and to the event log.
    pub fn report(&mut self, event: ReportEvent) {
        let now = self.set.clock().now();
        if let Some(log) = self.set.event_log() {
            log.write(now, Subsystem::SmtpOut, &event, &self.view);
        }
        for &p in &self.procs {
            let proc = &self.set.procs()[p];
            if proc
                .registrations()
                .is_some_and(|r| r.wants(Subsystem::SmtpOut, event.name()))
            {
                let line = wire::report_line(
                    proc.spec().version,
                    now,
                    Subsystem::SmtpOut,
                    self.session,
                    &event,
                );
                proc.send(line.as_bytes());
            }
        }
    }

    /// The connection `session` is open: `host` is the remote MX or smarthost.
    pub fn connected(&mut self, session: u64, host: &str, local: SocketAddr, remote: SocketAddr) {
        self.session = session;
        self.view.id = session_hex(session);
        self.view.src = Endpoint::Inet(local).to_string();
        self.view.dest = Endpoint::Inet(remote).to_string();
        self.view.rdns = Some(host.to_owned());
        self.report(ReportEvent::LinkConnect {
            rdns: host.to_owned(),
            fcrdns: Fcrdns::Pass,
            src: Endpoint::Inet(local),
            dest: Endpoint::Inet(remote),
        });
    }

    /// TLS is on.
    pub fn tls(&mut self, description: &str) {
        self.view.tls = Some(description.to_owned());
        self.report(ReportEvent::LinkTls {
            tls: description.to_owned(),
        });
    }

    /// A line of the session, from the client machine's trace.
    pub fn trace(&mut self, trace: Trace) {
        match trace {
            Trace::Client(line) => {
                let mut words = line.splitn(2, ' ');
                let verb = words.next().unwrap_or("").to_ascii_uppercase();
                let arg = words.next().unwrap_or("").to_owned();
                self.in_auth = verb == "AUTH" || (self.in_auth && line == "********");
                self.report(ReportEvent::ProtocolClient { command: line });
                let method = match verb.as_str() {
                    "EHLO" => Some(IdentifyMethod::Ehlo),
                    "HELO" => Some(IdentifyMethod::Helo),
                    "LHLO" => Some(IdentifyMethod::Lhlo),
                    _ => None,
                };
                if let Some(method) = method {
                    self.view.helo = Some(arg.clone());
                    self.report(ReportEvent::LinkIdentify {
                        method,
                        identity: arg,
                    });
                }
            }
            Trace::Server(line) => {
                let greeting = !self.greeted && line.starts_with("220");
                let code = line.get(..3).unwrap_or("").to_owned();
                let last = line.as_bytes().get(3) != Some(&b'-');
                self.report(ReportEvent::ProtocolServer {
                    response: line.clone(),
                });
                if greeting {
                    self.greeted = true;
                    let hostname = line
                        .get(4..)
                        .and_then(|t| t.split_whitespace().next())
                        .unwrap_or("")
                        .to_owned();
                    self.report(ReportEvent::LinkGreeting { hostname });
                }
                if self.in_auth && last && !code.starts_with('3') {
                    self.in_auth = false;
                    let result = match code.as_bytes().first() {
                        Some(b'2') => AuthResult::Pass,
                        Some(b'4') => AuthResult::Error,
                        _ => AuthResult::Fail,
                    };
                    if result == AuthResult::Pass {
                        self.view.auth.clone_from(&self.auth_user);
                    }
                    let username = self.auth_user.clone().unwrap_or_default();
                    self.report(ReportEvent::LinkAuth { result, username });
                }
            }
            Trace::Timeout => self.report(ReportEvent::Timeout),
        }
    }

    /// A transaction is over: message `msgid` of `size` octets from `from` to each recipient,
    /// with its envelope id and outcome.
    pub fn transaction(
        &mut self,
        msgid: u32,
        from: &str,
        size: u64,
        rcpts: &[(String, Option<u64>, OutcomeKind)],
    ) {
        // Report events show addresses without their angle brackets.
        let bare = |a: &str| a.trim_start_matches('<').trim_end_matches('>').to_owned();
        let from = bare(from);
        let rcpts: Vec<(String, Option<u64>, OutcomeKind)> =
            rcpts.iter().map(|(r, e, k)| (bare(r), *e, *k)).collect();
        self.view.msgid = Some(format!("{msgid:08x}"));
        self.view.mail_from = Some(from.clone());
        self.view.rcpts = rcpts.iter().map(|(r, _, _)| r.clone()).collect();
        self.report(ReportEvent::TxBegin { msgid });
        self.report(ReportEvent::TxMail {
            msgid,
            result: TxResult::Ok,
            address: from,
        });
        let mut any = false;
        for (rcpt, envelope, kind) in &rcpts {
            let result = match kind {
                OutcomeKind::Delivered => TxResult::Ok,
                OutcomeKind::Temporary => TxResult::TempFail,
                OutcomeKind::Permanent => TxResult::PermFail,
            };
            if result == TxResult::Ok {
                any = true;
                if let Some(envelope) = envelope {
                    self.report(ReportEvent::TxEnvelope {
                        msgid,
                        envelope: *envelope,
                    });
                }
            }
            self.report(ReportEvent::TxRcpt {
                msgid,
                result,
                address: rcpt.clone(),
            });
        }
        if any {
            self.report(ReportEvent::TxData {
                msgid,
                result: TxResult::Ok,
            });
            self.report(ReportEvent::TxCommit { msgid, size });
        } else {
            self.report(ReportEvent::TxRollback { msgid });
        }
        self.report(ReportEvent::TxReset { msgid });
        self.view.msgid = None;
        self.view.mail_from = None;
        self.view.rcpts.clear();
    }

    /// The connection is closed.
    pub fn disconnected(&mut self) {
        self.report(ReportEvent::LinkDisconnect);
    }
}
