//! Delivery dispatch: turns a batch from the scheduler into local deliveries (through
//! [`crate::mda`]) or a relay (through [`crate::mta`]), and their outcomes into attempts.
//!
//! Relaying is throttled per destination and reuses connections between batches: see [`pool`].

mod pool;

pub use pool::{RelayLimits, RelayPool};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use petrel_core::config::{Delivery as ActionDelivery, LocalMethod, Relay};
use petrel_core::expand::{self, ExpandContext, MailAddr as ExpandAddr};
use petrel_core::queue::Envelope;
use petrel_core::rules::MailAddr;
use petrel_core::rules::lookups::{Lookups, UserInfo};
use petrel_core::rules::resolve::{RunAs, Target};
use petrel_core::rules::service::Service;
use petrel_core::session::client::{Message, OutcomeKind};
use petrel_core::smtp::{
    EnhancedCode, ForwardPath, MailParams, Mailbox, Orcpt, RcptParams, Reply, ReversePath,
};

use crate::clock::Clock;
use crate::mda::{self, DeliveryRequest, LmtpDest, LocalUser, Method, Outcome};
use crate::mta::{Destination, Mta, OutgoingMessage, RelaySettings};
use crate::queue::scheduler::{Attempt, Batch, Deliver, Throttle};
use crate::routing::{Routing, SharedRouting, decode_target};

/// Delivers batches for the scheduler.
pub struct Dispatcher<C: Clock> {
    /// The rules (for the actions and SRS).
    pub routing: SharedRouting,
    /// smtp-out.
    pub mta: Arc<Mta>,
    /// Local delivery settings.
    pub mda: mda::Options,
    /// The server's name.
    pub hostname: String,
    /// Relative delivery paths are taken from here (the folder the daemon started in).
    pub base: PathBuf,
    /// The clock (SRS dates).
    pub clock: Arc<C>,
    /// Relaying limits and idle connections.
    pub relay: RelayPool,
    /// Where `mbox` deliveries go: `<mail_spool>/<user>` (`/var/mail` in production).
    pub mail_spool: PathBuf,
}

impl<C: Clock> std::fmt::Debug for Dispatcher<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("hostname", &self.hostname)
            .finish_non_exhaustive()
    }
}

fn temp(text: impl Into<String>) -> (OutcomeKind, Reply) {
    (
        OutcomeKind::Temporary,
        Reply::new(451, EnhancedCode::new(4, 3, 0), text.into()),
    )
}

fn perm(text: impl Into<String>) -> (OutcomeKind, Reply) {
    (
        OutcomeKind::Permanent,
        Reply::new(550, EnhancedCode::new(5, 3, 0), text.into()),
    )
}

fn local_attempt(e: &Envelope, (kind, reply): (OutcomeKind, Reply)) -> Attempt {
    Attempt {
        id: e.id,
        kind,
        reply,
        remote_mta: None,
        dsn_passed: true,
    }
}

impl<C: Clock> Deliver for Dispatcher<C> {
    async fn deliver(&self, batch: Batch) -> Vec<Attempt> {
        let routing = self.routing.current();
        let Some(action) = routing.ruleset().action(&batch.action).cloned() else {
            // The configuration changed and the action is gone: wait for it to be fixed.
            let text = format!("action \"{}\" is not configured", batch.action);
            return batch
                .envelopes
                .iter()
                .map(|e| local_attempt(e, temp(text.clone())))
                .collect();
        };
        match &action.delivery {
            ActionDelivery::Relay(relay) => self.relay(&routing, &batch, relay).await,
            ActionDelivery::Local(local) => {
                let mut attempts = Vec::new();
                for e in &batch.envelopes {
                    let outcome = self.local(&routing, &batch, e, &local.method).await;
                    attempts.push(local_attempt(e, outcome));
                }
                attempts
            }
        }
    }

    /// Relay actions are limited per destination: the smarthost when the action names one
    /// (every domain goes through it), else the recipient's domain. Local actions are not.
    fn throttle(&self, action: &str, domain: &str) -> Option<Throttle> {
        let routing = self.routing.current();
        let ActionDelivery::Relay(relay) = &routing.ruleset().action(action)?.delivery else {
            return None;
        };
        let limits = self.relay.limits();
        Some(match &relay.host {
            Some(url) => Throttle {
                key: format!("relay {url}"),
                max_in_flight: limits.max_conn_per_domain,
            },
            None => Throttle {
                key: format!("domain {domain}"),
                max_in_flight: limits.for_domain(domain),
            },
        })
    }

    fn is_relay(&self, action: &str) -> bool {
        let routing = self.routing.current();
        routing
            .ruleset()
            .action(action)
            .is_some_and(|a| matches!(a.delivery, ActionDelivery::Relay(_)))
    }
}

impl<C: Clock> Dispatcher<C> {
    fn absolute(&self, path: &str) -> PathBuf {
        let p = Path::new(path);
        if p.is_absolute() {
            p.to_owned()
        } else {
            self.base.join(p)
        }
    }

    fn local_user(
        &self,
        routing: &Routing,
        run_as: &RunAs,
        fallback: &UserInfo,
    ) -> Result<LocalUser, String> {
        let user = match run_as {
            RunAs::Account(u) => u.clone(),
            RunAs::Daemon => UserInfo::virtual_user(&fallback.name, &fallback.home),
            RunAs::User(name) => match routing.lookups().user(name) {
                Ok(Some(u)) => u,
                Ok(None) => return Err(format!("user {name} does not exist")),
                Err(e) => return Err(e.to_string()),
            },
        };
        Ok(LocalUser {
            name: user.name.clone(),
            uid: user.uid,
            gid: user.gid,
            home: self.absolute(&user.home),
        })
    }

    async fn local(
        &self,
        routing: &Routing,
        batch: &Batch,
        e: &Envelope,
        method: &LocalMethod,
    ) -> (OutcomeKind, Reply) {
        let Some(target) = e.target.as_deref().and_then(decode_target) else {
            return perm("envelope has no local delivery target");
        };
        let delim = routing.ruleset().sub_addr_delim();
        let split = |a: &str| {
            let m = MailAddr::parse(a);
            ExpandAddr::new(m.user, m.domain)
        };
        let (method, user, extension) = match &target {
            Target::Mailbox {
                user,
                subaddress,
                run_as,
            } => {
                let ctx = ExpandContext {
                    sender: split(&e.sender),
                    rcpt: split(&e.rcpt),
                    dest: split(&e.dest),
                    user_name: user.name.clone(),
                    user_directory: user.home.clone(),
                    mda: None,
                };
                let expanded = |template: &str| {
                    expand::expand(template, &ctx, delim).map_err(|err| err.to_string())
                };
                let method = match method {
                    LocalMethod::Maildir { path, junk } => {
                        match expanded(path.as_deref().unwrap_or("~/Maildir")) {
                            Ok(p) => Method::Maildir {
                                path: self.absolute(&p),
                                junk: *junk,
                            },
                            Err(err) => return perm(err),
                        }
                    }
                    LocalMethod::Mbox => Method::Mbox {
                        path: self.mail_spool.join(&user.name),
                    },
                    LocalMethod::Lmtp {
                        destination,
                        rcpt_to,
                    } => match expanded(destination).map(|d| LmtpDest::parse(&d)) {
                        Ok(Ok(dest)) => Method::Lmtp {
                            dest,
                            rcpt_to: *rcpt_to,
                        },
                        Ok(Err(err)) => return perm(err.to_string()),
                        Err(err) => return perm(err),
                    },
                    LocalMethod::Mda { command } => match expanded(command) {
                        Ok(command) => Method::Mda { command },
                        Err(err) => return perm(err),
                    },
                    LocalMethod::ExpandOnly | LocalMethod::ForwardOnly => {
                        return perm("this action delivers to no mailbox");
                    }
                };
                match self.local_user(routing, run_as, user) {
                    Ok(u) => (method, u, subaddress.clone()),
                    Err(err) => return temp(err),
                }
            }
            Target::File { path, run_as } => {
                let fallback = UserInfo::virtual_user("petrel", self.base.display().to_string());
                match self.local_user(routing, run_as, &fallback) {
                    Ok(u) => (
                        Method::File {
                            path: self.absolute(path),
                        },
                        u,
                        None,
                    ),
                    Err(err) => return temp(err),
                }
            }
            Target::Command { command, run_as } => {
                let fallback = UserInfo::virtual_user("petrel", self.base.display().to_string());
                match self.local_user(routing, run_as, &fallback) {
                    Ok(u) => (
                        Method::Pipe {
                            command: command.clone(),
                        },
                        u,
                        None,
                    ),
                    Err(err) => return temp(err),
                }
            }
            Target::Relay => return perm("a relay delivery reached local delivery"),
        };
        let recipients = [mda::Recipient {
            address: e.dest.clone(),
            original: Some(e.rcpt.clone()),
            extension,
            user,
            // Stable across attempts, so that a delivery repeated after a crash finds its
            // first copy (see `mda::maildir`); the arrival time keeps a message id reused
            // after a restart from meeting an older message's file.
            unique: Some(format!(
                "{}.M{}E{}",
                e.created.as_millis() / 1000,
                e.created.as_millis() % 1000,
                e.id
            )),
        }];
        let request = DeliveryRequest {
            sender: &e.sender,
            message: &batch.content,
            recipients: &recipients,
            method: &method,
            options: &self.mda,
        };
        let outcome = mda::deliver(request).await.into_iter().next();
        let name = method.name();
        match outcome {
            Some(Outcome::Delivered) => (
                OutcomeKind::Delivered,
                Reply::new(
                    250,
                    EnhancedCode::new(2, 0, 0),
                    format!("delivered by {name}"),
                ),
            ),
            Some(Outcome::Temporary(reason)) => temp(format!("{name}: {reason}")),
            Some(Outcome::Permanent(reason)) => perm(format!("{name}: {reason}")),
            None => temp(format!("{name}: no outcome")),
        }
    }

    async fn relay(&self, routing: &Routing, batch: &Batch, relay: &Relay) -> Vec<Attempt> {
        let mut settings = RelaySettings::from_relay(relay, &self.hostname);
        settings.tls_profile = routing.relay_tls(&batch.action);
        if let (Some(set), Some(filter)) = (&self.mta.filters, &relay.filter) {
            settings.filters = set.flatten(filter);
        }
        if let (Some(table), Some(url)) = (&relay.auth, &relay.host) {
            let label = url.label.clone().unwrap_or_default();
            match routing
                .lookups()
                .lookup(table, Service::Credentials, &label)
            {
                Ok(Some(value)) if value.contains(':') => {
                    let (user, pass) = value.split_once(':').unwrap_or_default();
                    settings.auth = Some((user.to_owned(), pass.to_owned()));
                }
                // Relaying without the credentials the configuration names would be refused by
                // the smarthost, or go out unauthenticated where that is not meant: the mail
                // waits until the table is fixed (`update table` or `reload` re-routes it).
                found => {
                    let text = match found {
                        Ok(Some(_)) => format!(
                            "the credentials of \"{label}\" in table {table} are not USER:PASSWORD"
                        ),
                        Ok(None) => format!("no credentials for \"{label}\" in table {table}"),
                        Err(e) => format!("credentials lookup failed: {e}"),
                    };
                    return batch
                        .envelopes
                        .iter()
                        .map(|e| local_attempt(e, temp(text.clone())))
                        .collect();
                }
            }
        }
        let domain = batch.envelopes[0]
            .dest
            .rsplit_once('@')
            .map(|(_, d)| d.to_owned())
            .unwrap_or_default();
        let destination = match domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
            Some(lit) => match lit.trim_start_matches("IPv6:").parse() {
                Ok(ip) => Destination::Literal(ip),
                Err(_) => Destination::Domain(domain.clone()),
            },
            None => Destination::Domain(domain.clone()),
        };
        // Envelopes whose announced sender differs (SRS depends on the recipient) go as
        // separate messages.
        let now = self.clock.now();
        let mut groups: Vec<(String, Vec<&Envelope>)> = Vec::new();
        for e in &batch.envelopes {
            let sender = if e.sender.is_empty() {
                String::new()
            } else {
                routing
                    .ruleset()
                    .relay_sender(
                        &batch.action,
                        &MailAddr::parse(&e.sender),
                        &MailAddr::parse(&e.rcpt),
                        &MailAddr::parse(&e.dest),
                        now,
                    )
                    .unwrap_or_else(|| e.sender.clone())
            };
            match groups.iter_mut().find(|(s, _)| *s == sender) {
                Some((_, v)) => v.push(e),
                None => groups.push((sender, vec![e])),
            }
        }
        let mut messages = Vec::new();
        let mut order = Vec::new();
        let mut attempts = Vec::new();
        for (sender, envelopes) in &groups {
            let from = if sender.is_empty() {
                ReversePath::Null
            } else {
                match Mailbox::parse(sender, true) {
                    Ok(m) => ReversePath::Mailbox(m),
                    Err(err) => {
                        for e in envelopes {
                            attempts.push(local_attempt(
                                e,
                                perm(format!("invalid sender {sender}: {err}")),
                            ));
                        }
                        continue;
                    }
                }
            };
            let first = envelopes[0];
            let params = MailParams {
                size: None,
                body: first.body,
                smtputf8: first.smtputf8,
                ret: first.ret,
                envid: first.envid.clone(),
                auth: None,
            };
            let mut rcpts = Vec::new();
            let mut ids = Vec::new();
            for e in envelopes {
                match Mailbox::parse(&e.dest, true) {
                    Ok(m) => {
                        let params = RcptParams {
                            notify: e.notify,
                            orcpt: e.orcpt.as_ref().map(|(t, a)| Orcpt {
                                addr_type: t.clone(),
                                address: a.clone(),
                            }),
                        };
                        rcpts.push((ForwardPath::Mailbox(m), params));
                        ids.push(e.id);
                    }
                    Err(err) => attempts.push(local_attempt(
                        e,
                        perm(format!("invalid recipient {}: {err}", e.dest)),
                    )),
                }
            }
            if rcpts.is_empty() {
                continue;
            }
            order.push(ids.clone());
            messages.push(OutgoingMessage {
                message: Message {
                    from,
                    params,
                    rcpts,
                    content: batch.content.clone(),
                },
                envelope_ids: ids.iter().map(|id| id.0).collect(),
            });
        }
        if messages.is_empty() {
            return attempts;
        }
        let seed = batch.msg.0.into();
        let deliveries = self
            .relay
            .deliver(&self.mta, &destination, &settings, messages, seed)
            .await;
        for (ids, delivery) in order.iter().zip(deliveries) {
            for (id, r) in ids.iter().zip(delivery.rcpts) {
                attempts.push(Attempt {
                    id: *id,
                    kind: r.outcome.kind,
                    reply: r.outcome.reply,
                    remote_mta: Some(r.host.unwrap_or_else(|| domain.clone())),
                    dsn_passed: delivery.dsn_passed,
                });
            }
        }
        attempts
    }
}
