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
use petrel_core::queue::{Envelope, EnvelopeId, HopCounter, MAX_HOPS, ReceivedInfo};
use petrel_core::rules::router::{SessionFacts, Source};
use petrel_core::session::Decision;
use petrel_core::session::server::{Envelope as SmtpEnvelope, Request};
use petrel_core::smtp::{EnhancedCode, ForwardPath, Reply, ReversePath};
use std::time::Duration;

use crate::auth::AuthOutcome;
use crate::clock::Clock;
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
    /// Look up the client's name (PTR, forward-confirmed) at connect.
    pub rdns: bool,
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

/// The client's forward-confirmed reverse DNS name: a PTR name of `ip` one of whose addresses
/// is `ip`. `None` when there is none, or the lookups fail or take too long.
pub async fn confirmed_name(resolver: &dyn Resolver, ip: IpAddr) -> Option<String> {
    let lookup = async {
        let names = resolver.ptr(ip).await.ok()?;
        // A few names at most: a client with dozens of PTR records gets no more lookups.
        for name in names.into_iter().take(4) {
            let addrs = host_addresses(resolver, &name).await;
            let v4 = addrs.v4.iter().flatten().any(|a| IpAddr::V4(*a) == ip);
            let v6 = addrs.v6.iter().flatten().any(|a| IpAddr::V6(*a) == ip);
            if v4 || v6 {
                return Some(name.trim_end_matches('.').to_lowercase());
            }
        }
        None
    };
    tokio::time::timeout(RDNS_TIMEOUT, lookup)
        .await
        .ok()
        .flatten()
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
}

impl<F: Fs, B: Blocking, C: Clock> Inbound<F, B, C> {
    /// A handler for the session on `conn`.
    #[must_use]
    pub fn new(ctx: InboundContext<F, B, C>, conn: Connection) -> Inbound<F, B, C> {
        let mut facts = SessionFacts::ip(conn.peer.ip());
        facts.tag = ctx.listener.tag.clone();
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
        }
    }

    fn session(&self) -> String {
        hex(self.conn.id)
    }

    fn reset(&mut self) {
        self.rcpts.clear();
        self.incoming = None;
        self.hops = HopCounter::new();
    }

    /// Opens the message in the queue and writes our `Received:` header at its top.
    async fn start_message(&mut self, now: Time) {
        let mut incoming = self.ctx.store.begin();
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

fn rcpt_text(to: &ForwardPath) -> String {
    match to {
        ForwardPath::Postmaster(p) => p.clone(),
        ForwardPath::Mailbox(m) => m.to_string(),
    }
}

impl<F: Fs, B: Blocking, C: Clock> SessionHandler for Inbound<F, B, C> {
    async fn decide(&mut self, request: Request) -> Decision {
        let now = self.ctx.clock.now();
        match request {
            Request::Connect => {
                if self.ctx.listener.rdns
                    && let (Some(resolver), Source::Ip(ip)) =
                        (&self.ctx.resolver, self.facts.source)
                {
                    self.facts.rdns = confirmed_name(resolver.as_ref(), ip).await;
                    tracing::debug!(session = %self.session(), rdns = ?self.facts.rdns, "reverse lookup");
                }
                Decision::Accept
            }
            Request::Helo { ehlo, host } => {
                // A new HELO/EHLO starts the session over (RFC 5321 section 4.1.4).
                self.reset();
                self.esmtp = ehlo;
                self.facts.helo = Some(host.to_string());
                Decision::Accept
            }
            Request::Auth { .. } => Decision::Reply(Reply::new(
                454,
                EnhancedCode::new(4, 7, 0),
                "Authentication not available",
            )),
            Request::Mail { from, params } => {
                self.reset();
                self.sender = match &from {
                    ReversePath::Null => String::new(),
                    ReversePath::Mailbox(m) => m.to_string(),
                };
                self.utf8 = params.smtputf8;
                tracing::info!(session = %self.session(), %from, "mail from");
                Decision::Accept
            }
            Request::Rcpt { to, .. } => {
                let rcpt = rcpt_text(&to);
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
                        self.rcpts.push((rcpt, deliveries));
                        Decision::Accept
                    }
                    Err(reply) => Decision::Reply(reply),
                }
            }
            Request::Data => {
                self.start_message(now).await;
                Decision::Accept
            }
            Request::Commit { envelope, .. } => self.commit(&envelope).await,
        }
    }

    async fn data(&mut self, chunk: Vec<u8>) {
        self.hops.feed(&chunk);
        if let Some(incoming) = &mut self.incoming {
            incoming.write(&chunk).await;
        }
    }

    async fn aborted(&mut self) {
        // Dropping the incoming message discards it; the recipients go with the transaction.
        self.incoming = None;
        self.rcpts.clear();
    }

    async fn tls_started(&mut self, _info: &TlsInfo) {
        // STARTTLS forgets everything learnt before (RFC 3207).
        self.tls = true;
        self.facts.tls = true;
        self.facts.helo = None;
        self.facts.auth = None;
        self.reset();
    }

    async fn auth_result(&mut self, user: &str, outcome: &AuthOutcome) {
        if matches!(outcome, AuthOutcome::Accepted) {
            self.facts.auth = Some(user.to_owned());
        }
    }
}
