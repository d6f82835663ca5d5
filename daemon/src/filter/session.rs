//! One smtp-in session's filters: asking the chain at each phase, streaming the message
//! through data-line filters, and reporting what happens to the filters that registered for
//! it (and to the event log).
//!
//! The decisions are the core's [`ChainSession`]; this module moves its questions to filter
//! processes (or the greylist) and their answers back, with each filter's timeout and failure
//! policy.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use petrel_core::filter::builtin::FilterFacts;
use petrel_core::filter::chain::{
    ChainSession, DataPipe, FailurePolicy, Route, Step, Verdict, stuff, unstuff,
};
use petrel_core::filter::report::{Endpoint, ReportEvent};
use petrel_core::filter::wire;
use petrel_core::filter::{Phase, Response, Subsystem, session_hex, timestamp};
use petrel_core::rules::lookups::Lookups;
use petrel_core::smtp::{EnhancedCode, Reply};
use tokio::sync::mpsc;

use super::event_log::SessionView;
use super::process::{Delivery, FromProc};
use super::set::{FilterSet, GREYLIST};

/// What a session knows, owned, for builtin filter conditions and the greylist.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    /// The client's address; `None` on the local socket.
    pub src: Option<IpAddr>,
    /// Its reverse DNS name, confirmed or not.
    pub rdns: Option<String>,
    /// The name is forward-confirmed.
    pub fcrdns: bool,
    /// HELO/EHLO name.
    pub helo: Option<String>,
    /// Authenticated user.
    pub auth: Option<String>,
    /// The transaction's sender.
    pub mail_from: Option<String>,
    /// The recipient asked about.
    pub rcpt_to: Option<String>,
}

impl Facts {
    fn view(&self) -> FilterFacts<'_> {
        FilterFacts {
            src: self.src,
            rdns: self.rdns.as_deref(),
            fcrdns: self.fcrdns,
            helo: self.helo.as_deref(),
            auth: self.auth.as_deref(),
            mail_from: self.mail_from.as_deref(),
            rcpt_to: self.rcpt_to.as_deref(),
        }
    }
}

struct Data {
    pipe: DataPipe,
    partial: Vec<u8>,
    original: Vec<u8>,
    out: Vec<u8>,
    failed: Option<String>,
}

/// One session's filters. Dropping it detaches the session from the filter processes.
pub struct SessionFilters {
    set: Arc<FilterSet>,
    chain: ChainSession,
    session: u64,
    tx: mpsc::UnboundedSender<Delivery>,
    rx: mpsc::UnboundedReceiver<Delivery>,
    procs: BTreeSet<usize>,
    data: Option<Data>,
    greeted: bool,
    /// The session as reports and the event log describe it.
    pub view: SessionView,
}

impl Drop for SessionFilters {
    fn drop(&mut self) {
        for &p in &self.procs {
            self.set.procs()[p].detach(self.session);
        }
    }
}

impl SessionFilters {
    /// The filters of a session on a listener with this chain of filter names.
    #[must_use]
    pub fn new(
        set: Arc<FilterSet>,
        names: &[String],
        session: u64,
        src: &Endpoint,
        dest: &Endpoint,
    ) -> SessionFilters {
        let chain = Arc::new(set.chain(names));
        let (tx, rx) = mpsc::unbounded_channel();
        let procs: BTreeSet<usize> = chain
            .members()
            .iter()
            .filter_map(|m| match m.kind {
                petrel_core::filter::chain::MemberKind::External(e) if e != GREYLIST => Some(e),
                _ => None,
            })
            .collect();
        for &p in &procs {
            set.procs()[p].attach(session, tx.clone());
        }
        let view = SessionView {
            id: session_hex(session),
            src: src.to_string(),
            dest: dest.to_string(),
            ..SessionView::default()
        };
        SessionFilters {
            chain: ChainSession::new(chain, session.rotate_left(17) ^ 0x5eed),
            set,
            session,
            tx,
            rx,
            procs,
            data: None,
            greeted: false,
            view,
        }
    }

    /// True when no filter of the chain handles `phase` (nothing to ask).
    #[must_use]
    pub fn chain_skips(&self, phase: Phase) -> bool {
        self.chain.chain().skips(phase)
    }

    /// True while the message's content goes through data-line filters.
    #[must_use]
    pub fn filtering_data(&self) -> bool {
        self.data.is_some()
    }

    /// True once the greeting was reported.
    #[must_use]
    pub fn greeted(&self) -> bool {
        self.greeted
    }

    /// The greeting was reported.
    pub fn set_greeted(&mut self) {
        self.greeted = true;
    }

    /// True when the session or its transaction is junk.
    #[must_use]
    pub fn is_junk(&self) -> bool {
        self.chain.is_junk()
    }

    /// The transaction ended: a junk mark it got does not carry over.
    pub fn end_transaction(&mut self) {
        self.chain.end_transaction();
        self.view.msgid = None;
        self.view.mail_from = None;
        self.view.rcpts.clear();
        self.view.junk = self.chain.is_junk();
        self.data = None;
    }

    /// Sends `event` to every filter of the chain that registered for it, and to the event
    /// log.
    pub fn report(&mut self, event: ReportEvent) {
        let now = self.set.clock().now();
        self.view.junk = self.chain.is_junk();
        if let Some(log) = self.set.event_log() {
            log.write(now, Subsystem::SmtpIn, &event, &self.view);
        }
        for &p in &self.procs {
            let proc = &self.set.procs()[p];
            let wants = proc
                .registrations()
                .is_some_and(|r| r.wants(Subsystem::SmtpIn, event.name()));
            if wants {
                let line = wire::report_line(
                    proc.spec().version,
                    now,
                    Subsystem::SmtpIn,
                    self.session,
                    &event,
                );
                proc.send(line.as_bytes());
            }
        }
    }

    fn drain_reports(&mut self) {
        while let Some(e) = self.chain.poll_report() {
            self.report(e);
        }
    }

    /// Asks the chain about `phase` with the command's parameter.
    pub async fn phase(
        &mut self,
        phase: Phase,
        param: &str,
        facts: &Facts,
        lookups: &(dyn Lookups + Sync),
    ) -> Verdict {
        let mut step = self.chain.start(phase, param, &facts.view(), lookups);
        loop {
            match step {
                Step::Done(verdict) => {
                    self.drain_reports();
                    self.view.junk = self.chain.is_junk();
                    return verdict;
                }
                Step::Ask {
                    external, token, ..
                } if external == GREYLIST => {
                    let response = self.greylist(facts, lookups);
                    // The greylist answers the very question asked: the token matches.
                    step = self
                        .chain
                        .answer(token, response, &facts.view(), lookups)
                        .unwrap_or(Step::Done(Verdict::Proceed));
                }
                Step::Ask {
                    external,
                    token,
                    phase,
                    param,
                    ..
                } => {
                    step = self
                        .ask(external, token, phase, &param, facts, lookups)
                        .await;
                }
            }
        }
    }

    async fn ask(
        &mut self,
        external: usize,
        token: u64,
        phase: Phase,
        param: &str,
        facts: &Facts,
        lookups: &(dyn Lookups + Sync),
    ) -> Step {
        let proc = self.set.procs()[external].clone();
        let policy = proc.spec().policy;
        // Answers that came too late for an earlier question must not answer this one.
        while self.rx.try_recv().is_ok() {}
        let line = wire::filter_request(
            proc.spec().version,
            self.set.clock().now(),
            self.session,
            phase,
            token,
            param,
        );
        self.set.count_event();
        if !proc.send(line.as_bytes()) {
            self.log_skip(&proc.spec().name, policy, "not running");
            return self.chain.fail(policy, &facts.view(), lookups);
        }
        let deadline = tokio::time::Instant::now() + proc.spec().timeout;
        loop {
            let message = tokio::time::timeout_at(deadline, self.rx.recv()).await;
            match message {
                Err(_) => {
                    proc.fail(&format!(
                        "no answer to {phase} within {:?}",
                        proc.spec().timeout
                    ));
                    self.log_skip(&proc.spec().name, policy, "timed out");
                    return self.chain.fail(policy, &facts.view(), lookups);
                }
                Ok(None) => return self.chain.fail(policy, &facts.view(), lookups),
                Ok(Some((from, message))) if from == external => match message {
                    FromProc::Result { token: t, response } if t == token => {
                        return match self.chain.answer(token, response, &facts.view(), lookups) {
                            Ok(step) => step,
                            Err(e) => {
                                proc.fail(&e.to_string());
                                self.log_skip(&proc.spec().name, policy, "broke the protocol");
                                self.chain.fail(policy, &facts.view(), lookups)
                            }
                        };
                    }
                    FromProc::Failed => {
                        self.log_skip(&proc.spec().name, policy, "failed");
                        return self.chain.fail(policy, &facts.view(), lookups);
                    }
                    // A stale answer (an earlier request's) or a stray data-line.
                    _ => {}
                },
                Ok(Some(_)) => {}
            }
        }
    }

    fn log_skip(&self, name: &str, policy: FailurePolicy, why: &str) {
        match policy {
            FailurePolicy::Open => {
                tracing::warn!(session = %session_hex(self.session), filter = name, why, "filter skipped (fail-open)");
            }
            FailurePolicy::Closed => {
                tracing::warn!(session = %session_hex(self.session), filter = name, why, "filter unavailable: temporary failure (fail-closed)");
            }
        }
    }

    /// The greylist's decision about the recipient in `facts`.
    fn greylist(&self, facts: &Facts, lookups: &(dyn Lookups + Sync)) -> Response {
        let Some(greylist) = self.set.greylist() else {
            return Response::Proceed;
        };
        // Never greylisted: the local socket, authenticated clients, and the postmaster
        // (RFC 5321 requires that it can always be reached).
        let Some(ip) = facts.src else {
            return Response::Proceed;
        };
        let rcpt = facts.rcpt_to.as_deref().unwrap_or("");
        let local = rcpt.split('@').next().unwrap_or("");
        if facts.auth.is_some() || local.eq_ignore_ascii_case("postmaster") {
            return Response::Proceed;
        }
        if let Some(table) = &greylist.settings().bypass {
            let key = petrel_core::rules::router::address_key(ip);
            match lookups.check(table, petrel_core::rules::service::Service::Netaddr, &key) {
                Ok(true) => return Response::Proceed,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(table, error = %e, "greylist bypass table unavailable");
                }
            }
        }
        let sender = facts.mail_from.as_deref().unwrap_or("");
        let verdict = greylist.check(ip, sender, rcpt, self.set.clock().now());
        match verdict.reply_text() {
            None => Response::Proceed,
            Some(text) => {
                tracing::info!(session = %session_hex(self.session), %ip, sender, rcpt, "greylisted");
                Response::Reject(text)
            }
        }
    }

    /// The message starts: true when its content goes through data-line filters (it is then
    /// handed back whole by [`SessionFilters::data_end`]).
    pub fn data_begin(&mut self) -> bool {
        self.data = DataPipe::begin(&mut self.chain).map(|pipe| Data {
            pipe,
            partial: Vec::new(),
            original: Vec::new(),
            out: Vec::new(),
            failed: None,
        });
        self.data.is_some()
    }

    /// A piece of the message (unstuffed, CRLF line endings), as the session received it.
    pub fn data(&mut self, chunk: &[u8]) {
        let Some(data) = &mut self.data else {
            return;
        };
        data.original.extend_from_slice(chunk);
        data.partial.extend_from_slice(chunk);
        let mut start = 0;
        let mut lines = Vec::new();
        while let Some(at) = memchr::memmem::find(&data.partial[start..], b"\r\n") {
            lines.push(stuff(&data.partial[start..start + at]));
            start += at + 2;
        }
        data.partial.drain(..start);
        for line in lines {
            self.feed(line);
        }
        self.pump();
    }

    fn feed(&mut self, line: Vec<u8>) {
        let Some(data) = &mut self.data else {
            return;
        };
        if data.failed.is_some() {
            return;
        }
        let route = data.pipe.input(line);
        self.route(route);
    }

    fn route(&mut self, route: Route) {
        match route {
            Route::To {
                external,
                token,
                line,
                ..
            } => {
                let proc = &self.set.procs()[external];
                let mut bytes = format!(
                    "filter|{}|{}|smtp-in|data-line|{}|{token:016x}|",
                    proc.spec().version,
                    timestamp(self.set.clock().now()),
                    session_hex(self.session)
                )
                .into_bytes();
                bytes.extend(
                    line.iter()
                        .map(|&b| if b == b'\n' || b == b'\r' { b' ' } else { b }),
                );
                if !proc.send(&bytes) {
                    let name = proc.spec().name.clone();
                    if let Some(d) = &mut self.data {
                        d.failed
                            .get_or_insert(format!("filter {name} is not running"));
                    }
                }
            }
            Route::Out(line) => {
                if let Some(d) = &mut self.data
                    && line != b"."
                {
                    d.out.extend_from_slice(unstuff(&line));
                    d.out.extend_from_slice(b"\r\n");
                }
            }
        }
    }

    /// Handles what the processes sent without waiting.
    fn pump(&mut self) {
        while let Ok((from, message)) = self.rx.try_recv() {
            self.on_data_message(from, message);
        }
    }

    fn on_data_message(&mut self, from: usize, message: FromProc) {
        let Some(data) = &mut self.data else {
            return;
        };
        match message {
            FromProc::DataLine { token, line } => match data.pipe.output(token, line) {
                Ok(route) => self.route(route),
                Err(e) => {
                    let proc = &self.set.procs()[from];
                    proc.fail(&e.to_string());
                    data.failed
                        .get_or_insert(format!("filter {}: {e}", proc.spec().name));
                }
            },
            FromProc::Failed => {
                let name = self.set.procs()[from].spec().name.clone();
                data.failed.get_or_insert(format!("filter {name} failed"));
            }
            FromProc::Result { .. } => {}
        }
    }

    /// The end of the message: waits for the filters to return all of it. `Ok` with the
    /// filtered content (unstuffed, CRLF); `Err` with the refusal when a data-line filter
    /// failed and its policy is fail-closed. With fail-open the content goes on unfiltered.
    ///
    /// # Errors
    /// The refusal of the message.
    pub async fn data_end(&mut self) -> Result<Vec<u8>, Reply> {
        let Some(data) = &mut self.data else {
            return Ok(Vec::new());
        };
        if !data.partial.is_empty() {
            let rest = std::mem::take(&mut data.partial);
            self.feed(stuff(&rest));
        }
        self.feed(b".".to_vec());
        let timeout = self.data_timeout();
        loop {
            self.pump();
            let Some(data) = &self.data else {
                return Ok(Vec::new());
            };
            if data.failed.is_some() || data.pipe.is_finished() {
                break;
            }
            match tokio::time::timeout(timeout, self.rx.recv()).await {
                Ok(Some((from, message))) => self.on_data_message(from, message),
                Ok(None) => break,
                Err(_) => {
                    let stage = self.first_unfinished();
                    if let Some(p) = stage {
                        let proc = &self.set.procs()[p];
                        proc.fail(&format!("message not returned within {timeout:?}"));
                    }
                    if let Some(d) = &mut self.data {
                        d.failed.get_or_insert("timed out".into());
                    }
                    break;
                }
            }
        }
        let data = self.data.take().expect("data state");
        match data.failed {
            None => Ok(data.out),
            Some(why) => {
                let open = data
                    .pipe
                    .stages()
                    .all(|(_, e, _)| self.set.procs()[e].spec().policy == FailurePolicy::Open);
                if open {
                    tracing::warn!(session = %session_hex(self.session), why, "data-line filter skipped (fail-open): message passed unfiltered");
                    Ok(data.original)
                } else {
                    tracing::warn!(session = %session_hex(self.session), why, "data-line filter unavailable: message refused for now (fail-closed)");
                    Err(Reply::new(
                        451,
                        EnhancedCode::new(4, 7, 0),
                        "Temporary failure (filter), try again later",
                    ))
                }
            }
        }
    }

    fn data_timeout(&self) -> Duration {
        self.data
            .as_ref()
            .into_iter()
            .flat_map(|d| d.pipe.stages())
            .map(|(_, e, _)| self.set.procs()[e].spec().timeout)
            .max()
            .unwrap_or(super::process::DEFAULT_TIMEOUT)
    }

    fn first_unfinished(&self) -> Option<usize> {
        self.data.as_ref()?.pipe.stages().next().map(|(_, e, _)| e)
    }

    /// The transaction was abandoned: drop the content.
    pub fn data_abort(&mut self) {
        self.data = None;
    }

    /// A handle to send this session's own messages (tests).
    #[must_use]
    pub fn sender(&self) -> mpsc::UnboundedSender<Delivery> {
        self.tx.clone()
    }
}

/// The client's address as the `connect` filter request shows it: `1.2.3.4`, `[2001:db8::1]`
/// or `local`.
#[must_use]
pub fn bare_src(src: Option<IpAddr>) -> String {
    match src {
        None => "local".into(),
        Some(IpAddr::V4(a)) => a.to_string(),
        Some(IpAddr::V6(a)) => match a.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => format!("[{a}]"),
        },
    }
}
