//! Outbound connections for relaying: the per-destination limits the scheduler enforces, and
//! the reuse of connections between batches.
//!
//! A batch to a destination walks the relay plan and sends its messages over one connection
//! (see [`crate::mta::Mta::deliver`]). When the batch is done and the session is still
//! healthy, the connection is not closed: it waits in the pool, idle, for up to
//! [`RelayLimits::keepalive`], and the next batch for the same destination with the same
//! settings takes it instead of connecting again (no TCP, TLS or EHLO round trips, and no DNS
//! lookups; see [`crate::mta::Mta::deliver_over`] for a server that closed it meanwhile).
//!
//! Connections per destination stay within the scheduler's limit (see
//! [`crate::queue::scheduler::Throttle`]): a batch opens a connection only when no idle one
//! is left, so running batches plus idle connections never exceed the batches allowed at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use petrel_core::config::{MtaLimit, MtaOptions};

use crate::mta::{Connection, Delivery, Destination, Mta, OutgoingMessage, RelaySettings};

/// Limits of outbound relaying, from `mta limit` directives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayLimits {
    /// `mta limit max-conn-per-domain N`: connections (batches in delivery) to one destination
    /// domain, or to one smarthost, at once.
    pub max_conn_per_domain: usize,
    /// `mta limit for domain D max-conn-per-domain N`: the same for one domain.
    pub per_domain: HashMap<String, usize>,
    /// `mta limit session-keepalive N` (seconds): how long an idle connection is kept for the
    /// next batch. Zero closes every connection after its batch.
    pub keepalive: Duration,
    /// `mta limit session-mail-max N`: messages sent over one connection before it is closed.
    pub session_mail_max: usize,
}

impl Default for RelayLimits {
    /// OpenSMTPD's defaults where it has one meaning: 10 connections (its per-host limit; a
    /// domain usually has one or two MX hosts), 10 s keepalive, 100 messages per session.
    fn default() -> Self {
        RelayLimits {
            max_conn_per_domain: 10,
            per_domain: HashMap::new(),
            keepalive: Duration::from_secs(10),
            session_mail_max: 100,
        }
    }
}

impl RelayLimits {
    /// The limits the configuration sets. Of the `mta limit` keys, `max-conn-per-domain`,
    /// `session-keepalive` and `session-mail-max` are applied (the first also per domain);
    /// the others are accepted and not applied yet.
    #[must_use]
    pub fn from_config(mta: &MtaOptions) -> RelayLimits {
        let mut limits = RelayLimits::default();
        for directive in &mta.limits {
            for &(key, value) in &directive.values {
                let n = usize::try_from(value).unwrap_or(usize::MAX);
                match (&directive.domain, key) {
                    (None, MtaLimit::MaxConnPerDomain) => limits.max_conn_per_domain = n.max(1),
                    (Some(d), MtaLimit::MaxConnPerDomain) => {
                        limits.per_domain.insert(d.to_lowercase(), n.max(1));
                    }
                    (None, MtaLimit::SessionKeepalive) => {
                        limits.keepalive = Duration::from_secs(value);
                    }
                    (None, MtaLimit::SessionMailMax) => limits.session_mail_max = n.max(1),
                    _ => {}
                }
            }
        }
        limits
    }

    /// Connections allowed at once to `domain`.
    #[must_use]
    pub fn for_domain(&self, domain: &str) -> usize {
        self.per_domain
            .get(&domain.to_lowercase())
            .copied()
            .unwrap_or(self.max_conn_per_domain)
    }
}

/// Idle connections by destination and settings.
struct Idle {
    connections: HashMap<String, Vec<(u64, Connection)>>,
    next_token: u64,
}

struct Inner {
    limits: RelayLimits,
    idle: Mutex<Idle>,
}

/// The relay limits and the idle connections kept for reuse. Cheap to clone.
#[derive(Clone)]
pub struct RelayPool {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RelayPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayPool")
            .field("limits", &self.inner.limits)
            .field("idle", &self.idle_connections())
            .finish()
    }
}

impl Default for RelayPool {
    fn default() -> Self {
        RelayPool::new(RelayLimits::default())
    }
}

impl RelayPool {
    /// A pool with these limits and no connection.
    #[must_use]
    pub fn new(limits: RelayLimits) -> RelayPool {
        RelayPool {
            inner: Arc::new(Inner {
                limits,
                idle: Mutex::new(Idle {
                    connections: HashMap::new(),
                    next_token: 0,
                }),
            }),
        }
    }

    /// The limits.
    #[must_use]
    pub fn limits(&self) -> &RelayLimits {
        &self.inner.limits
    }

    /// Connections waiting idle now.
    #[must_use]
    pub fn idle_connections(&self) -> usize {
        self.lock().connections.values().map(Vec::len).sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Idle> {
        self.inner.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The connection that went idle last for `key` (the one most likely still open).
    fn take(&self, key: &str) -> Option<Connection> {
        let mut idle = self.lock();
        let list = idle.connections.get_mut(key)?;
        let conn = list.pop().map(|(_, c)| c);
        if list.is_empty() {
            idle.connections.remove(key);
        }
        conn
    }

    /// Keeps an idle connection for the keepalive time, then closes it unless a batch took it.
    fn put(&self, key: String, conn: Connection) {
        let keepalive = self.inner.limits.keepalive;
        let token = {
            let mut idle = self.lock();
            idle.next_token += 1;
            let token = idle.next_token;
            idle.connections
                .entry(key.clone())
                .or_default()
                .push((token, conn));
            token
        };
        let pool = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(keepalive).await;
            let expired = {
                let mut idle = pool.lock();
                let found = idle.connections.get_mut(&key).and_then(|list| {
                    let i = list.iter().position(|(t, _)| *t == token)?;
                    Some(list.remove(i).1)
                });
                if idle.connections.get(&key).is_some_and(Vec::is_empty) {
                    idle.connections.remove(&key);
                }
                found
            };
            if let Some(conn) = expired {
                conn.quit().await;
            }
        });
    }

    /// Delivers a batch of messages to one destination, like [`Mta::deliver`], starting on an
    /// idle connection to it when there is one and leaving the connection idle in the pool
    /// afterwards. Returns one [`Delivery`] per message, in order.
    pub async fn deliver(
        &self,
        mta: &Mta,
        destination: &Destination,
        settings: &RelaySettings,
        batch: Vec<OutgoingMessage>,
        seed: u64,
    ) -> Vec<Delivery> {
        // Connections are interchangeable only with the same destination and settings (the
        // EHLO name, TLS, credentials and source address are fixed when it opens).
        let key = format!("{destination:?} {settings:?}");
        let max_mail = self.inner.limits.session_mail_max;
        let mut idle = self.take(&key);
        if let Some(c) = idle.take_if(|c| c.messages() >= max_mail) {
            c.quit().await;
        }
        let (deliveries, conn) = mta
            .deliver_over(idle, destination, settings, batch, seed)
            .await;
        if let Some(c) = conn {
            let keep =
                c.is_idle() && c.messages() < max_mail && !self.inner.limits.keepalive.is_zero();
            if keep {
                self.put(key, c);
            } else {
                c.quit().await;
            }
        }
        deliveries
    }
}
