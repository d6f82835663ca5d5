//! Counting the SMTP sessions and turning new ones away while `pause smtp` is in force: a
//! wrapper around each session's handler, so that the listeners and the session code do not
//! need to know about the control socket.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use petrel_core::session::Decision;
use petrel_core::session::server::Request;
use petrel_core::smtp::{EnhancedCode, Reply};

use crate::auth::AuthOutcome;
use crate::smtp_in::SessionHandler;
use crate::tls::TlsInfo;

/// What the sessions and the control socket share.
#[derive(Debug, Default)]
pub struct SessionGate {
    opened: AtomicU64,
    active: AtomicU64,
    paused: AtomicBool,
}

impl SessionGate {
    /// Sessions opened since start.
    #[must_use]
    pub fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// Sessions open now.
    #[must_use]
    pub fn active(&self) -> u64 {
        self.active.load(Ordering::Relaxed)
    }

    /// Whether new sessions are turned away.
    #[must_use]
    pub fn paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }

    /// Turns new sessions away (`true`, with `421 4.3.2`) or lets them in again. Sessions
    /// already open go on.
    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::Relaxed);
    }

    /// Wraps the handler of a new session.
    pub fn wrap<H>(self: &Arc<Self>, inner: H) -> Gated<H> {
        self.opened.fetch_add(1, Ordering::Relaxed);
        self.active.fetch_add(1, Ordering::Relaxed);
        Gated {
            inner,
            gate: self.clone(),
        }
    }
}

/// A session handler counted by a [`SessionGate`].
pub struct Gated<H> {
    inner: H,
    gate: Arc<SessionGate>,
}

impl<H> Drop for Gated<H> {
    fn drop(&mut self) {
        self.gate.active.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<H: SessionHandler> SessionHandler for Gated<H> {
    async fn decide(&mut self, request: Request) -> Decision {
        if matches!(request, Request::Connect) && self.gate.paused() {
            return Decision::Disconnect(Reply::new(
                421,
                EnhancedCode::new(4, 3, 2),
                "Service paused, try again later",
            ));
        }
        self.inner.decide(request).await
    }

    async fn data(&mut self, chunk: Vec<u8>) {
        self.inner.data(chunk).await;
    }

    async fn aborted(&mut self) {
        self.inner.aborted().await;
    }

    async fn tls_started(&mut self, info: &TlsInfo) {
        self.inner.tls_started(info).await;
    }

    async fn auth_result(&mut self, user: &str, outcome: &AuthOutcome) {
        self.inner.auth_result(user, outcome).await;
    }

    async fn trace(&mut self, trace: petrel_core::session::server::Trace) {
        self.inner.trace(trace).await;
    }

    async fn auth_filter(&mut self, mechanism: &str) -> Option<Decision> {
        self.inner.auth_filter(mechanism).await
    }

    async fn ended(&mut self) {
        self.inner.ended().await;
    }
}
