//! The session handler of smtp-in: routes each recipient, streams the message into the queue,
//! and acknowledges it only once it is durable.
//!
//! # Reverse DNS
//!
//! A PTR lookup costs a round trip per connection before the greeting, so it is made only on
//! listeners whose [`ListenerFacts::rdns`] is on — by default, when some rule tests `from
//! rdns` ([`needs_rdns`]). The name is kept only when it is forward-confirmed (one of its
//! addresses is the client's): whoever controls the reverse zone of an address can make its
//! PTR record say anything, so an unconfirmed name must not satisfy `from rdns`. The name
//! goes into [`SessionFacts::rdns`], the envelope's origin and the `Received:` header.

use std::net::IpAddr;
use std::sync::Arc;

use petrel_core::Time;
use petrel_core::config::{Config, Origin};
use petrel_core::filter::Phase;
use petrel_core::filter::chain::Verdict;
use petrel_core::filter::report::{
    AuthResult, Endpoint, Fcrdns, IdentifyMethod, ReportEvent, TxResult,
};
use petrel_core::queue::{Envelope, EnvelopeId, HopCounter, MAX_HOPS, MsgId, ReceivedInfo};
use petrel_core::rules::MailAddr;
use petrel_core::rules::router::{SessionFacts, Source};
use petrel_core::rules::senders::sender_allowed;
use petrel_core::session::Decision;
use petrel_core::session::server::{Envelope as SmtpEnvelope, Request, Trace};
use petrel_core::smtp::{
    Command, EnhancedCode, ForwardPath, Host, MailParams, ParseOptions, Reply, ReversePath,
};
use std::time::Duration;

use crate::auth::AuthOutcome;
use crate::clock::Clock;
use crate::filter::session::{Facts, SessionFilters, bare_src};
use crate::filter::set::FilterSet;
use crate::mta::resolver::{Resolver, host_addresses};
use crate::queue::scheduler::SchedulerHandle;
use crate::queue::{Blocking, Fs, Incoming, Store};
use crate::routing::{Resolved, SharedRouting};
use crate::smtp_in::{Connection, SessionHandler, hex};
use crate::tls::TlsInfo;

/// What every session of a listener shares.
pub struct InboundContext<F: Fs, B: Blocking, C: Clock> {
    /// The queue.
    pub store: Store<F, B>,
    /// The scheduler, told about each committed message.
    pub scheduler: SchedulerHandle,
    /// The rules.
    pub routing: SharedRouting,
    /// The clock.
    pub clock: Arc<C>,
    /// How long messages stay queued (`queue ttl`).
    pub queue_ttl: Duration,
    /// The listener's settings that matter here.
    pub listener: ListenerFacts,
    /// Reverse lookups of clients, on listeners whose [`ListenerFacts::rdns`] is on; `None`:
    /// never.
    pub resolver: Option<Arc<dyn Resolver>>,
    /// The daemon's filters and event log, if any.
    pub filters: Option<Arc<FilterSet>>,
}

impl<F: Fs, B: Blocking, C: Clock> Clone for InboundContext<F, B, C> {
    fn clone(&self) -> Self {
        InboundContext {
            store: self.store.clone(),
            scheduler: self.scheduler.clone(),
            routing: self.routing.clone(),
            clock: self.clock.clone(),
            queue_ttl: self.queue_ttl,
            listener: self.listener.clone(),
            resolver: self.resolver.clone(),
            filters: self.filters.clone(),
        }
    }
}

/// A listener's settings used by its sessions.
#[derive(Clone, Debug, Default)]
pub struct ListenerFacts {
    /// Our name in the Received header.
    pub hostname: String,
    /// `tag`.
    pub tag: Option<String>,
    /// `mask-src`.
    pub mask_src: bool,
    /// `received-auth`.
    pub received_auth: bool,
    /// `senders <t>`: the table of the senders each authenticated user may use.
    pub senders: Option<String>,
    /// Look up the client's name (PTR, forward-confirmed) at connect, for the rules.
    pub rdns: bool,
    /// `no-rdns`: no reverse lookup at all on this listener, not even for filters; rules and
    /// filters see no name, and the `link-connect` report says `fcrdns` `error`.
    pub no_rdns: bool,
    /// The listener's filters, chains flattened, in order.
    pub filters: Vec<String>,
}

/// How long the reverse lookup of a client may hold up its greeting.
pub const RDNS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// True when the rules look at the client's reverse DNS name (`from rdns`), so that sessions
/// must look it up.
#[must_use]
pub fn needs_rdns(config: &Config) -> bool {
    config
        .rules
        .iter()
        .any(|r| matches!(r.from.test, Origin::Rdns(_)))
}

/// What reverse DNS says about a client.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReverseName {
    /// Its first PTR name, confirmed or not.
    pub name: Option<String>,
    /// One of its PTR names resolves back to the client's address: that name.
    pub confirmed: Option<String>,
}

/// The client's reverse DNS names: the first PTR name, and the first one that is forward-
/// confirmed (one of its addresses is `ip`). Empty when there is none, or the lookups fail or
/// take too long.
pub async fn reverse_name(resolver: &dyn Resolver, ip: IpAddr) -> ReverseName {
    let lookup = async {
        let mut found = ReverseName::default();
        let Ok(names) = resolver.ptr(ip).await else {
            return found;
        };
        // A few names at most: a client with dozens of PTR records gets no more lookups.
        for name in names.into_iter().take(4) {
            let name = name.trim_end_matches('.').to_lowercase();
            found.name.get_or_insert_with(|| name.clone());
            let addrs = host_addresses(resolver, &name).await;
            let v4 = addrs.v4.iter().flatten().any(|a| IpAddr::V4(*a) == ip);
            let v6 = addrs.v6.iter().flatten().any(|a| IpAddr::V6(*a) == ip);
            if v4 || v6 {
                found.confirmed = Some(name);
                break;
            }
        }
        found
    };
    tokio::time::timeout(RDNS_TIMEOUT, lookup)
        .await
        .unwrap_or_default()
}

/// The client's forward-confirmed reverse DNS name ([`reverse_name`]).
pub async fn confirmed_name(resolver: &dyn Resolver, ip: IpAddr) -> Option<String> {
    reverse_name(resolver, ip).await.confirmed
}

/// One session's handler.
pub struct Inbound<F: Fs, B: Blocking, C: Clock> {
    ctx: InboundContext<F, B, C>,
    conn: Connection,
    facts: SessionFacts,
    esmtp: bool,
    tls: bool,
    sender: String,
    /// Deliveries of the accepted recipients, with the recipient they came from.
    rcpts: Vec<(String, Vec<Resolved>)>,
    incoming: Option<Incoming<F, B>>,
    hops: HopCounter,
    received_at: Time,
    utf8: bool,
    /// The session's filters and reports, when the listener has filters or events are logged.
    filters: Option<SessionFilters>,
    /// What filter conditions and the greylist see.
    filter_facts: Facts,
    /// A transaction is open (for `tx-reset`).
    tx_open: bool,
    /// The open transaction's message id, as reports name it.
    msgid: u32,
    /// Envelopes the accepted recipients will make so far (their ids in `tx-envelope`).
    envelopes: u32,
}

impl<F: Fs, B: Blocking, C: Clock> Inbound<F, B, C> {
    /// A handler for the session on `conn`.
    #[must_use]
    pub fn new(ctx: InboundContext<F, B, C>, conn: Connection) -> Inbound<F, B, C> {
        let mut facts = match conn.local_user {
            Some(_) => SessionFacts::socket(),
            None => SessionFacts::ip(conn.peer.ip()),
        };
        facts.tag = ctx.listener.tag.clone();
        let (src, dest) = endpoints(&conn);
        let filters = ctx.filters.as_ref().and_then(|set| {
            (!ctx.listener.filters.is_empty() || set.event_log().is_some()).then(|| {
                SessionFilters::new(set.clone(), &ctx.listener.filters, conn.id, &src, &dest)
            })
        });
        let filter_facts = Facts {
            src: conn.local_user.is_none().then(|| conn.peer.ip()),
            ..Facts::default()
        };
        Inbound {
            ctx,
            conn,
            facts,
            esmtp: false,
            tls: false,
            sender: String::new(),
            rcpts: Vec::new(),
            incoming: None,
            hops: HopCounter::new(),
            received_at: Time::ZERO,
            utf8: false,
            filters,
            filter_facts,
            tx_open: false,
            msgid: 0,
            envelopes: 0,
        }
    }

    /// Reports `event` when the session has filters.
    fn report(&mut self, event: ReportEvent) {
        if let Some(f) = &mut self.filters {
            f.report(event);
        }
    }

    /// The transaction ended (committed, rolled back, reset): `tx-reset` once.
    fn end_transaction(&mut self) {
        if !self.tx_open {
            return;
        }
        self.tx_open = false;
        let msgid = self.msgid;
        self.report(ReportEvent::TxReset { msgid });
        if let Some(f) = &mut self.filters {
            f.end_transaction();
        }
    }

    /// Asks the session's filters about `phase`; `None` when there are none.
    async fn filter(&mut self, phase: Phase, param: &str) -> Option<Verdict> {
        let filters = self.filters.as_mut()?;
        if filters.chain_skips(phase) {
            return None;
        }
        let routing = self.ctx.routing.current();
        Some(
            filters
                .phase(phase, param, &self.filter_facts, routing.lookups())
                .await,
        )
    }

    fn session(&self) -> String {
        hex(self.conn.id)
    }

    fn reset(&mut self) {
        self.end_transaction();
        self.rcpts.clear();
        self.incoming = None;
        self.hops = HopCounter::new();
        self.envelopes = 0;
    }

    /// Opens the message in the queue and writes our `Received:` header at its top.
    async fn start_message(&mut self, now: Time) {
        let mut incoming = self
            .incoming
            .take()
            .unwrap_or_else(|| self.ctx.store.begin());
        let id = incoming.msg().to_string();
        let only_rcpt = match &self.rcpts[..] {
            [(rcpt, _)] => Some(rcpt.as_str()),
            _ => None,
        };
        let src = match self.facts.source {
            Source::Ip(ip) => Some(ip),
            Source::Socket => None,
        };
        let header = ReceivedInfo {
            helo: self.facts.helo.as_deref(),
            rdns: self.facts.rdns.as_deref(),
            src,
            mask_src: self.ctx.listener.mask_src,
            by: &self.ctx.listener.hostname,
            esmtp: self.esmtp,
            tls: self.tls,
            auth: self.facts.auth.as_deref(),
            show_auth: self.ctx.listener.received_auth,
            utf8: self.utf8,
            id: &id,
            rcpt: only_rcpt,
            date: now,
        }
        .render();
        if self.filters.as_ref().is_some_and(SessionFilters::is_junk) {
            // As OpenSMTPD does: the mark comes first, before our Received header.
            incoming.write(b"X-Spam: yes\r\n").await;
        }
        incoming.write(header.as_bytes()).await;
        self.received_at = now;
        self.hops = HopCounter::new();
        self.incoming = Some(incoming);
    }

    /// Commits the message with one envelope per delivery of every accepted recipient.
    async fn commit(&mut self, envelope: &SmtpEnvelope) -> Decision {
        let Some(incoming) = self.incoming.take() else {
            return Decision::Reply(Reply::new(
                451,
                EnhancedCode::new(4, 3, 0),
                "Message lost, try again",
            ));
        };
        if self.hops.hops() >= MAX_HOPS {
            tracing::warn!(session = %self.session(), hops = self.hops.hops(), "mail loop: message refused");
            return Decision::Reply(Reply::new(
                554,
                EnhancedCode::new(5, 4, 6),
                "Too many Received headers: mail loop detected",
            ));
        }
        let msg = incoming.msg();
        let created = self.received_at;
        let expires = created + self.ctx.queue_ttl;
        let mut envelopes = Vec::new();
        for ((rcpt, deliveries), (_, params)) in self.rcpts.iter().zip(&envelope.rcpts) {
            for d in deliveries {
                let mut e = Envelope::new(
                    EnvelopeId::new(msg, envelopes.len() as u32),
                    &self.sender,
                    rcpt,
                    created,
                    expires,
                );
                e.dest = d.dest.clone();
                e.action = Some(d.action.clone());
                e.target = d.target.clone();
                e.origin.local = matches!(self.facts.source, Source::Socket);
                e.origin.src = match self.facts.source {
                    Source::Ip(ip) => Some(ip),
                    Source::Socket => None,
                };
                e.origin.rdns = self.facts.rdns.clone();
                e.origin.helo = self.facts.helo.clone();
                e.origin.auth = self.facts.auth.clone();
                e.origin.tls = self.tls;
                e.origin.tag = self.facts.tag.clone();
                e.body = envelope.params.body;
                e.smtputf8 = envelope.params.smtputf8;
                e.ret = envelope.params.ret;
                e.envid = envelope.params.envid.clone();
                e.notify = params.notify;
                e.orcpt = params
                    .orcpt
                    .as_ref()
                    .map(|o| (o.addr_type.clone(), o.address.clone()));
                envelopes.push(e);
            }
        }
        match incoming.commit(&envelopes).await {
            Ok(msg) => {
                tracing::info!(
                    session = %self.session(), msgid = %msg, from = %envelope.from,
                    rcpts = self.rcpts.len(), envelopes = envelopes.len(), "message accepted"
                );
                self.ctx.scheduler.enqueue(msg, envelopes);
                self.rcpts.clear();
                Decision::Reply(Reply::new(
                    250,
                    EnhancedCode::new(2, 0, 0),
                    format!("{msg} Message accepted for delivery"),
                ))
            }
            Err(e) => {
                tracing::error!(session = %self.session(), error = %e, "cannot queue the message");
                self.rcpts.clear();
                Decision::Reply(Reply::new(
                    451,
                    EnhancedCode::new(4, 3, 0),
                    "Temporary failure: cannot queue the message, try again later",
                ))
            }
        }
    }
}

/// Where a session comes from and arrives, as reports write them: addresses, or the enqueue
/// socket's path for both.
fn endpoints(conn: &Connection) -> (Endpoint, Endpoint) {
    match &conn.local_user {
        Some(p) => (
            Endpoint::Unix(p.socket.clone()),
            Endpoint::Unix(p.socket.clone()),
        ),
        None => (Endpoint::Inet(conn.peer), Endpoint::Inet(conn.local)),
    }
}

impl<F: Fs, B: Blocking, C: Clock> Inbound<F, B, C> {
    /// `senders <t>`: an authenticated client may only use the senders the table lists for
    /// its user (OpenSMTPD's check, with its 530 reply). Sessions without AUTH are not checked.
    fn sender_refusal(&self, from: &ReversePath) -> Option<Decision> {
        let table = self.ctx.listener.senders.as_deref()?;
        let user = self.facts.auth.as_deref()?;
        let routing = self.ctx.routing.current();
        let address = match from {
            ReversePath::Null => MailAddr::parse(""),
            ReversePath::Mailbox(m) => MailAddr::parse(&m.to_string()),
        };
        let delim = routing.ruleset().sub_addr_delim();
        match sender_allowed(routing.lookups(), table, user, &address, delim) {
            Ok(true) => None,
            Ok(false) => {
                tracing::info!(session = %self.session(), user, %from, "sender not allowed for this user");
                Some(Decision::Reply(Reply::new(
                    530,
                    EnhancedCode::new(5, 7, 1),
                    "Sender rejected: not an address of the authenticated user",
                )))
            }
            Err(e) => {
                tracing::warn!(session = %self.session(), table, error = %e, "senders table lookup failed");
                Some(Decision::Reply(Reply::new(
                    451,
                    EnhancedCode::new(4, 3, 0),
                    "Temporary failure: cannot check the sender, try again later",
                )))
            }
        }
    }
}

fn rcpt_text(to: &ForwardPath) -> String {
    match to {
        ForwardPath::Postmaster(p) => p.clone(),
        ForwardPath::Mailbox(m) => m.to_string(),
    }
}

impl<F: Fs, B: Blocking, C: Clock> Inbound<F, B, C> {
    async fn decide_connect(&mut self) -> Decision {
        let listener = &self.ctx.listener;
        let want = !listener.no_rdns && (listener.rdns || self.filters.is_some());
        if want && let (Some(resolver), Source::Ip(ip)) = (&self.ctx.resolver, self.facts.source) {
            let found = reverse_name(resolver.as_ref(), ip).await;
            tracing::debug!(session = %self.session(), rdns = ?found, "reverse lookup");
            if self.ctx.listener.rdns {
                self.facts.rdns = found.confirmed.clone();
            }
            self.filter_facts.fcrdns = found.confirmed.is_some();
            self.filter_facts.rdns = found.confirmed.or(found.name);
        }
        if self.filters.is_none() {
            return Decision::Accept;
        }
        let rdns = self.filter_facts.rdns.clone().unwrap_or_default();
        let fcrdns = if self.ctx.listener.no_rdns {
            Fcrdns::Error
        } else if self.filter_facts.fcrdns {
            Fcrdns::Pass
        } else {
            Fcrdns::Fail
        };
        if let Some(f) = &mut self.filters {
            f.view.rdns = self.filter_facts.rdns.clone();
            f.view.fcrdns = Some(fcrdns.as_str().into());
        }
        self.report(ReportEvent::LinkConnect {
            rdns: rdns.clone(),
            fcrdns,
            src: endpoints(&self.conn).0,
            dest: endpoints(&self.conn).1,
        });
        let src = match &self.conn.local_user {
            Some(p) => format!("unix:{}", p.socket),
            None => bare_src(Some(self.conn.peer.ip())),
        };
        let param = format!("{}|{src}", rdns.replace('|', "?"));
        match self.filter(Phase::Connect, &param).await {
            Some(v) => verdict_decision(v).unwrap_or(Decision::Accept),
            None => Decision::Accept,
        }
    }

    async fn decide_helo(&mut self, ehlo: bool, mut host: Host) -> Decision {
        let phase = if ehlo { Phase::Ehlo } else { Phase::Helo };
        self.filter_facts.helo = Some(host.to_string());
        if let Some(v) = self.filter(phase, &host.to_string()).await {
            match v {
                Verdict::Rewrite(name) => match Host::parse(&name, false) {
                    Ok(h) => host = h,
                    Err(_) => return Decision::Reply(replies::bad_rewrite()),
                },
                other => {
                    if let Some(d) = verdict_decision(other) {
                        return d;
                    }
                }
            }
        }
        // A new HELO/EHLO starts the session over (RFC 5321 section 4.1.4).
        self.reset();
        self.esmtp = ehlo;
        self.facts.helo = Some(host.to_string());
        self.filter_facts.helo = Some(host.to_string());
        if let Some(f) = &mut self.filters {
            f.view.helo = Some(host.to_string());
        }
        self.report(ReportEvent::LinkIdentify {
            method: if ehlo {
                IdentifyMethod::Ehlo
            } else {
                IdentifyMethod::Helo
            },
            identity: host.to_string(),
        });
        Decision::Accept
    }

    async fn decide_mail(&mut self, mut from: ReversePath, params: MailParams) -> Decision {
        let sender = |from: &ReversePath| match from {
            ReversePath::Null => String::new(),
            ReversePath::Mailbox(m) => m.to_string(),
        };
        self.reset();
        self.filter_facts.mail_from = Some(sender(&from));
        self.filter_facts.rcpt_to = None;
        // The message id exists from MAIL on, so that reports name the transaction as the
        // queue will.
        let incoming = self.ctx.store.begin();
        let msgid = incoming.msg().0;
        self.msgid = msgid;
        self.incoming = Some(incoming);
        let verdict = self.filter(Phase::MailFrom, &sender(&from)).await;
        let refusal = match verdict {
            Some(Verdict::Rewrite(text)) => match reparse_mail(&text) {
                Some(f) => {
                    from = f;
                    None
                }
                None => Some(Decision::Reply(replies::bad_rewrite())),
            },
            Some(v) => verdict_decision(v),
            None => None,
        };
        let refusal = refusal.or_else(|| self.sender_refusal(&from));
        let address = sender(&from);
        if let Some(decision) = refusal {
            self.incoming = None;
            self.report(ReportEvent::TxMail {
                msgid,
                result: tx_result(&decision),
                address,
            });
            return decision;
        }
        self.sender = address.clone();
        self.filter_facts.mail_from = Some(address.clone());
        self.utf8 = params.smtputf8;
        self.tx_open = true;
        tracing::info!(session = %self.session(), %from, "mail from");
        if let Some(f) = &mut self.filters {
            f.view.msgid = Some(format!("{msgid:08x}"));
            f.view.mail_from = Some(address.clone());
        }
        self.report(ReportEvent::TxBegin { msgid });
        self.report(ReportEvent::TxMail {
            msgid,
            result: TxResult::Ok,
            address,
        });
        Decision::Accept
    }

    async fn decide_rcpt(&mut self, mut to: ForwardPath, now: Time) -> Decision {
        let msgid = self.incoming.as_ref().map_or(0, |i| i.msg().0);
        self.filter_facts.rcpt_to = Some(rcpt_text(&to));
        let verdict = self.filter(Phase::RcptTo, &rcpt_text(&to)).await;
        let refusal = match verdict {
            Some(Verdict::Rewrite(text)) => match reparse_rcpt(&text) {
                Some(t) => {
                    to = t;
                    None
                }
                None => Some(Decision::Reply(replies::bad_rewrite())),
            },
            Some(v) => verdict_decision(v),
            None => None,
        };
        let rcpt = rcpt_text(&to);
        let decision = match refusal {
            Some(d) => d,
            None => {
                // With the routing current now: a reload between two recipients applies
                // from the second on. On the blocking pool when a `proc:` table may be asked.
                let resolved = (self.ctx.routing)
                    .resolve(&self.facts, &self.sender, &rcpt, now)
                    .await;
                match resolved {
                    Ok(deliveries) => {
                        tracing::info!(
                            session = %self.session(), rcpt = %rcpt,
                            actions = ?deliveries.iter().map(|d| d.action.as_str()).collect::<Vec<_>>(), "rcpt to"
                        );
                        for _ in &deliveries {
                            let envelope = EnvelopeId::new(MsgId(msgid), self.envelopes).0;
                            self.envelopes += 1;
                            self.report(ReportEvent::TxEnvelope { msgid, envelope });
                        }
                        self.rcpts.push((rcpt.clone(), deliveries));
                        if let Some(f) = &mut self.filters {
                            f.view.rcpts.push(rcpt.clone());
                        }
                        Decision::Accept
                    }
                    Err(reply) => Decision::Reply(reply),
                }
            }
        };
        self.report(ReportEvent::TxRcpt {
            msgid,
            result: tx_result(&decision),
            address: rcpt,
        });
        decision
    }

    async fn decide_data(&mut self, now: Time) -> Decision {
        let msgid = self.incoming.as_ref().map_or(0, |i| i.msg().0);
        let decision = match self.filter(Phase::Data, "").await {
            Some(v) => verdict_decision(v).unwrap_or(Decision::Accept),
            None => Decision::Accept,
        };
        if decision == Decision::Accept {
            self.start_message(now).await;
            if let Some(f) = &mut self.filters {
                f.data_begin();
            }
        }
        self.report(ReportEvent::TxData {
            msgid,
            result: tx_result(&decision),
        });
        decision
    }

    async fn decide_commit(&mut self, envelope: &SmtpEnvelope) -> Decision {
        let msgid = self.incoming.as_ref().map_or(0, |i| i.msg().0);
        // The content comes back from data-line filters whole, or not at all.
        let filtered = match &mut self.filters {
            Some(f) => Some(f.data_end().await),
            None => None,
        };
        match filtered {
            Some(Ok(content)) => {
                self.hops.feed(&content);
                if let Some(incoming) = &mut self.incoming {
                    incoming.write(&content).await;
                }
            }
            Some(Err(reply)) => return self.roll_back(msgid, Decision::Reply(reply)),
            None => {}
        }
        if let Some(v) = self.filter(Phase::Commit, "").await
            && let Some(d) = verdict_decision(v)
        {
            return self.roll_back(msgid, d);
        }
        let size = self.incoming.as_ref().map_or(0, |i| i.len() as u64);
        let decision = self.commit(envelope).await;
        if matches!(&decision, Decision::Reply(r) if r.is_positive()) {
            self.report(ReportEvent::TxCommit { msgid, size });
            self.end_transaction();
            decision
        } else {
            self.roll_back(msgid, decision)
        }
    }

    fn roll_back(&mut self, msgid: u32, decision: Decision) -> Decision {
        self.incoming = None;
        self.rcpts.clear();
        self.report(ReportEvent::TxRollback { msgid });
        self.end_transaction();
        decision
    }
}

/// The SMTP decision for a chain's verdict; `None` when the command goes ahead.
fn verdict_decision(v: Verdict) -> Option<Decision> {
    match v {
        Verdict::Proceed | Verdict::Junk | Verdict::Rewrite(_) => None,
        Verdict::Reject(r) => Some(Decision::Reply(r)),
        Verdict::Disconnect(r) => Some(Decision::Disconnect(r)),
    }
}

/// How a decision reads in `tx-mail`, `tx-rcpt` and `tx-data`.
fn tx_result(d: &Decision) -> TxResult {
    match d {
        Decision::Accept => TxResult::Ok,
        Decision::Reply(r) | Decision::Disconnect(r) if r.is_positive() => TxResult::Ok,
        Decision::Reply(r) | Decision::Disconnect(r) if r.is_transient() => TxResult::TempFail,
        _ => TxResult::PermFail,
    }
}

/// A filter's `rewrite` of MAIL FROM: `<addr> [params]`, checked as the client's was.
fn reparse_mail(text: &str) -> Option<ReversePath> {
    let line = format!("MAIL FROM:{text}");
    match Command::parse(line.as_bytes(), ParseOptions::default()) {
        Ok(Command::Mail { from, .. }) => Some(from),
        _ => None,
    }
}

/// A filter's `rewrite` of RCPT TO.
fn reparse_rcpt(text: &str) -> Option<ForwardPath> {
    let line = format!("RCPT TO:{text}");
    match Command::parse(line.as_bytes(), ParseOptions::default()) {
        Ok(Command::Rcpt { to, .. }) => Some(to),
        _ => None,
    }
}

mod replies {
    use petrel_core::smtp::{EnhancedCode, Reply};

    /// A filter rewrote a command into something that does not parse.
    pub fn bad_rewrite() -> Reply {
        Reply::new(
            501,
            EnhancedCode::new(5, 5, 4),
            "Syntax error in parameters rewritten by a filter",
        )
    }
}

impl<F: Fs, B: Blocking, C: Clock> SessionHandler for Inbound<F, B, C> {
    async fn decide(&mut self, request: Request) -> Decision {
        let now = self.ctx.clock.now();
        match request {
            Request::Connect => self.decide_connect().await,
            Request::Helo { ehlo, host } => self.decide_helo(ehlo, host).await,
            Request::Auth { .. } => Decision::Reply(Reply::new(
                454,
                EnhancedCode::new(4, 7, 0),
                "Authentication not available",
            )),
            Request::Mail { from, params } => self.decide_mail(from, params).await,
            Request::Rcpt { to, .. } => self.decide_rcpt(to, now).await,
            Request::Data => self.decide_data(now).await,
            Request::Commit { envelope, .. } => self.decide_commit(&envelope).await,
        }
    }

    async fn data(&mut self, chunk: Vec<u8>) {
        if let Some(f) = &mut self.filters
            && f.filtering_data()
        {
            f.data(&chunk);
            return;
        }
        self.hops.feed(&chunk);
        if let Some(incoming) = &mut self.incoming {
            incoming.write(&chunk).await;
        }
    }

    async fn aborted(&mut self) {
        // Dropping the incoming message discards it; the recipients go with the transaction.
        let msgid = self.incoming.as_ref().map_or(0, |i| i.msg().0);
        if let Some(f) = &mut self.filters {
            f.data_abort();
        }
        if self.tx_open {
            self.report(ReportEvent::TxRollback { msgid });
            self.end_transaction();
        }
        self.incoming = None;
        self.rcpts.clear();
    }

    async fn tls_started(&mut self, info: &TlsInfo) {
        // STARTTLS forgets everything learnt before (RFC 3207).
        self.tls = true;
        self.facts.tls = true;
        self.facts.helo = None;
        self.facts.auth = None;
        self.filter_facts.helo = None;
        self.filter_facts.auth = None;
        self.reset();
        let tls = format!(
            "version={}:cipher={}:bits={}",
            info.version, info.cipher, info.bits
        );
        if let Some(f) = &mut self.filters {
            f.view.tls = Some(tls.clone());
            f.view.helo = None;
            f.view.auth = None;
        }
        self.report(ReportEvent::LinkTls { tls });
    }

    async fn auth_filter(&mut self, mechanism: &str) -> Option<Decision> {
        self.filter(Phase::Auth, mechanism)
            .await
            .and_then(verdict_decision)
    }

    async fn auth_result(&mut self, user: &str, outcome: &AuthOutcome) {
        let result = match outcome {
            AuthOutcome::Accepted => AuthResult::Pass,
            AuthOutcome::Rejected(_) => AuthResult::Fail,
            AuthOutcome::Unavailable(_) => AuthResult::Error,
        };
        if matches!(outcome, AuthOutcome::Accepted) {
            self.facts.auth = Some(user.to_owned());
            self.filter_facts.auth = Some(user.to_owned());
            if let Some(f) = &mut self.filters {
                f.view.auth = Some(user.to_owned());
            }
        }
        self.report(ReportEvent::LinkAuth {
            result,
            username: user.to_owned(),
        });
    }

    async fn trace(&mut self, trace: Trace) {
        let Some(f) = &mut self.filters else {
            return;
        };
        match trace {
            Trace::Client(line) => {
                let verb = line.split(' ').next().unwrap_or("");
                let resets = verb.eq_ignore_ascii_case("RSET");
                f.report(ReportEvent::ProtocolClient { command: line });
                if resets {
                    self.end_transaction();
                }
            }
            Trace::Server(line) => {
                let greeting = !f.greeted() && line.starts_with("220");
                f.report(ReportEvent::ProtocolServer { response: line });
                if greeting {
                    f.set_greeted();
                    let hostname = self.ctx.listener.hostname.clone();
                    f.report(ReportEvent::LinkGreeting { hostname });
                }
            }
            Trace::Timeout => f.report(ReportEvent::Timeout),
        }
    }

    async fn ended(&mut self) {
        self.report(ReportEvent::LinkDisconnect);
    }
}
