//! The scheduler: retries on the schedule, removal after delivery, notifications to the sender
//! (and never to the null sender), expiry, delay notices and recovery — in paused tokio time.

#[path = "support/memfs.rs"]
mod memfs;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use memfs::MemFs;
use petrel_core::Time;
use petrel_core::queue::{DsnKind, Envelope, EnvelopeId, MsgId};
use petrel_core::session::client::OutcomeKind;
use petrel_core::smtp::{EnhancedCode, Reply};
use petrel_daemon::clock::TokioClock;
use petrel_daemon::queue::scheduler::{
    self, Attempt, Batch, Deliver, InternalRoute, QueueEvent, Router, SchedulerConfig,
    SchedulerHandle, Throttle,
};
use petrel_daemon::queue::{Inline, Store};
use tokio::sync::broadcast;

const T0: Time = Time::from_secs(1_700_000_000);

/// A delivery agent following a script per recipient: a list of outcomes, the last repeated.
#[derive(Default)]
struct Scripted {
    script: Mutex<std::collections::HashMap<String, Vec<OutcomeKind>>>,
    log: Mutex<Vec<(String, String, Vec<u8>)>>,
}

impl Scripted {
    fn on(&self, rcpt: &str, outcomes: &[OutcomeKind]) {
        self.script
            .lock()
            .unwrap()
            .insert(rcpt.into(), outcomes.to_vec());
    }
    fn delivered(&self) -> Vec<(String, String, Vec<u8>)> {
        self.log.lock().unwrap().clone()
    }
}

impl Deliver for Scripted {
    async fn deliver(&self, batch: Batch) -> Vec<Attempt> {
        batch
            .envelopes
            .iter()
            .map(|e| {
                let kind = {
                    let mut script = self.script.lock().unwrap();
                    match script.get_mut(&e.dest) {
                        Some(list) if list.len() > 1 => list.remove(0),
                        Some(list) => list[0],
                        None => OutcomeKind::Delivered,
                    }
                };
                let reply = match kind {
                    OutcomeKind::Delivered => Reply::new(250, EnhancedCode::new(2, 0, 0), "ok"),
                    OutcomeKind::Temporary => {
                        Reply::new(451, EnhancedCode::new(4, 7, 1), "try later")
                    }
                    OutcomeKind::Permanent => {
                        Reply::new(550, EnhancedCode::new(5, 1, 1), "no such user")
                    }
                };
                if kind == OutcomeKind::Delivered {
                    self.log.lock().unwrap().push((
                        e.sender.clone(),
                        e.dest.clone(),
                        batch.content.to_vec(),
                    ));
                }
                Attempt {
                    id: e.id,
                    kind,
                    reply,
                    remote_mta: Some("mx.example.net".into()),
                    dsn_passed: true,
                }
            })
            .collect()
    }
}

struct ToLocal;

impl Router for ToLocal {
    fn route_internal(&self, rcpt: &str) -> Result<Vec<InternalRoute>, Reply> {
        let dest = if rcpt.contains('@') {
            rcpt.to_owned()
        } else {
            format!("{rcpt}@mx.test")
        };
        Ok(vec![InternalRoute {
            dest,
            action: "local".into(),
            target: None,
        }])
    }
}

struct World {
    fs: MemFs,
    store: Store<MemFs, Inline>,
    deliver: Arc<Scripted>,
    handle: SchedulerHandle,
    events: broadcast::Receiver<QueueEvent>,
}

async fn world(recovered_fs: Option<MemFs>) -> World {
    let fs = recovered_fs.unwrap_or_default();
    let (store, recovered) = Store::open(Arc::new(fs.clone()), Inline, PathBuf::from("/q"), 9)
        .await
        .unwrap();
    let deliver = Arc::new(Scripted::default());
    let config = SchedulerConfig {
        hostname: "mx.test".into(),
        ..SchedulerConfig::default()
    };
    let handle = scheduler::spawn(
        store.clone(),
        deliver.clone(),
        Arc::new(ToLocal),
        Arc::new(TokioClock::starting_at(T0)),
        config,
        recovered
            .into_iter()
            .map(|r| (r.msg, r.envelopes))
            .collect(),
    );
    let events = handle.subscribe();
    World {
        fs,
        store,
        deliver,
        handle,
        events,
    }
}

impl World {
    async fn submit(&self, sender: &str, rcpts: &[&str]) -> MsgId {
        let mut inc = self.store.begin();
        inc.write(b"Subject: test\r\n\r\nhello\r\n").await;
        let msg = inc.msg();
        let now = T0 + tokio::time::Instant::now().elapsed();
        let envs: Vec<Envelope> = rcpts
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let mut e = Envelope::new(
                    EnvelopeId::new(msg, i as u32),
                    sender,
                    r,
                    now,
                    now + Duration::from_secs(4 * 86_400),
                );
                e.action = Some("outbound".into());
                e
            })
            .collect();
        inc.commit(&envs).await.unwrap();
        self.handle.enqueue(msg, envs);
        msg
    }

    /// Waits (in virtual time) for an event matching `f`.
    async fn until(&mut self, f: impl Fn(&QueueEvent) -> bool) -> QueueEvent {
        loop {
            let e = tokio::time::timeout(Duration::from_secs(30 * 86_400), self.events.recv())
                .await
                .expect("no such event within 30 days")
                .unwrap();
            if f(&e) {
                return e;
            }
        }
    }

    async fn queue_is_empty(&self) -> bool {
        self.handle.snapshot().await.is_empty()
    }
}

#[tokio::test(start_paused = true)]
async fn a_delivered_message_leaves_the_queue() {
    let mut w = world(None).await;
    let msg = w.submit("a@example.org", &["b@example.net"]).await;
    w.until(|e| matches!(e, QueueEvent::Delivered(id) if id.msg() == msg))
        .await;
    // The store is updated in the background; wait for the files to go.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(w.queue_is_empty().await);
    assert!(w.fs.list(&PathBuf::from("/q/messages")).is_empty());
    assert_eq!(w.deliver.delivered()[0].1, "b@example.net");
}

#[tokio::test(start_paused = true)]
async fn temporary_failures_retry_on_the_schedule() {
    let mut w = world(None).await;
    w.deliver.on(
        "b@example.net",
        &[
            OutcomeKind::Temporary,
            OutcomeKind::Temporary,
            OutcomeKind::Delivered,
        ],
    );
    let start = tokio::time::Instant::now();
    w.submit("a@example.org", &["b@example.net"]).await;
    let QueueEvent::Deferred(_, first) = w.until(|e| matches!(e, QueueEvent::Deferred(..))).await
    else {
        unreachable!()
    };
    assert_eq!(first, T0 + Duration::from_secs(400));
    let QueueEvent::Deferred(_, second) = w.until(|e| matches!(e, QueueEvent::Deferred(..))).await
    else {
        unreachable!()
    };
    assert_eq!(second, T0 + Duration::from_secs(1600));
    w.until(|e| matches!(e, QueueEvent::Delivered(_))).await;
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_secs(1600) && elapsed < Duration::from_secs(1601),
        "{elapsed:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_permanent_failure_bounces_to_the_sender() {
    let mut w = world(None).await;
    w.deliver
        .on("nobody@example.net", &[OutcomeKind::Permanent]);
    let msg = w
        .submit(
            "alice@example.org",
            &["nobody@example.net", "bob@example.net"],
        )
        .await;
    w.until(|e| matches!(e, QueueEvent::Notified(id, DsnKind::Failure) if id.msg() == msg))
        .await;
    w.until(|e| matches!(e, QueueEvent::Failed(_))).await;
    // The notification itself is delivered, from the null sender, to alice.
    loop {
        let delivered = w.deliver.delivered();
        if let Some((sender, _, content)) = delivered
            .iter()
            .find(|(_, rcpt, _)| rcpt == "alice@example.org")
        {
            assert_eq!(sender, "");
            let text = String::from_utf8_lossy(content);
            assert!(
                text.contains(
                    "Final-Recipient: rfc822; nobody@example.net\r\nAction: failed\r\nStatus: 5.1.1"
                ),
                "{text}"
            );
            assert!(text.contains("Remote-MTA: dns; mx.example.net"));
            break;
        }
        w.until(|e| matches!(e, QueueEvent::Delivered(_))).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(w.queue_is_empty().await);
}

#[tokio::test(start_paused = true)]
async fn notifications_never_go_to_the_null_sender() {
    let mut w = world(None).await;
    w.deliver.on("gone@example.net", &[OutcomeKind::Permanent]);
    w.deliver
        .on("postmaster@mx.test", &[OutcomeKind::Permanent]);
    // A bounce that bounces goes to the postmaster; when that fails too, it is dropped.
    w.submit("", &["gone@example.net"]).await;
    w.until(|e| matches!(e, QueueEvent::Failed(_))).await;
    w.until(|e| matches!(e, QueueEvent::Failed(_))).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(w.queue_is_empty().await);
    assert!(
        w.deliver
            .delivered()
            .iter()
            .all(|(_, rcpt, _)| !rcpt.is_empty())
    );
}

#[tokio::test(start_paused = true)]
async fn expiry_ends_in_a_bounce_after_days_and_delay_notices_are_sent() {
    let mut w = world(None).await;
    w.deliver.on("slow@example.net", &[OutcomeKind::Temporary]);
    let msg = w.submit("alice@example.org", &["slow@example.net"]).await;
    w.until(|e| matches!(e, QueueEvent::Notified(id, DsnKind::Delay) if id.msg() == msg))
        .await;
    let after_delay = tokio::time::Instant::now();
    w.until(|e| matches!(e, QueueEvent::Notified(id, DsnKind::Failure) if id.msg() == msg))
        .await;
    // Notices at 4 hours, the failure at 4 days.
    assert!(after_delay.elapsed() >= Duration::from_secs(3 * 86_400));
    // First the delay notice, then (four days in) the failure.
    w.until(|e| matches!(e, QueueEvent::Delivered(id) if id.msg() != msg))
        .await;
    let all: Vec<String> = w
        .deliver
        .delivered()
        .into_iter()
        .filter(|(_, rcpt, _)| rcpt == "alice@example.org")
        .map(|(_, _, c)| String::from_utf8_lossy(&c).into_owned())
        .collect();
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(all[0].contains("Action: delayed"));
    assert!(
        all.last()
            .unwrap()
            .contains("Action: failed\r\nStatus: 4.4.7")
    );
}

#[tokio::test(start_paused = true)]
async fn recovered_envelopes_are_scheduled_again() {
    let fs = MemFs::default();
    {
        let w = world(Some(fs.clone())).await;
        w.deliver.on("b@example.net", &[OutcomeKind::Temporary]);
        w.submit("a@example.org", &["b@example.net"]).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    fs.crash();
    let mut w = world(Some(fs.clone())).await;
    w.until(|e| matches!(e, QueueEvent::Delivered(_))).await;
    assert_eq!(w.deliver.delivered().len(), 1);
}

/// A slow delivery agent (10 s per batch) that throttles the "outbound" action to two batches
/// per domain, and records how many batches of each kind were in delivery at once.
#[derive(Default)]
struct Slow {
    /// Kind ("outbound", "outbound bounce", "local") -> (in delivery now, most at once).
    active: Mutex<std::collections::HashMap<String, (usize, usize)>>,
}

impl Slow {
    fn peak(&self, kind: &str) -> usize {
        self.active.lock().unwrap().get(kind).map_or(0, |a| a.1)
    }
}

impl Deliver for Slow {
    async fn deliver(&self, batch: Batch) -> Vec<Attempt> {
        let bounce = batch.envelopes[0].sender.is_empty();
        let kind = format!("{}{}", batch.action, if bounce { " bounce" } else { "" });
        {
            let mut active = self.active.lock().unwrap();
            let a = active.entry(kind.clone()).or_default();
            a.0 += 1;
            a.1 = a.1.max(a.0);
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
        self.active.lock().unwrap().get_mut(&kind).unwrap().0 -= 1;
        batch
            .envelopes
            .iter()
            .map(|e| Attempt {
                id: e.id,
                kind: OutcomeKind::Delivered,
                reply: Reply::new(250, EnhancedCode::new(2, 0, 0), "ok"),
                remote_mta: None,
                dsn_passed: true,
            })
            .collect()
    }

    fn throttle(&self, action: &str, domain: &str) -> Option<Throttle> {
        (action == "outbound").then(|| Throttle {
            key: domain.to_owned(),
            max_in_flight: 2,
        })
    }
}

#[tokio::test(start_paused = true)]
async fn relaying_is_throttled_per_destination_but_local_delivery_and_bounces_are_not() {
    let fs = MemFs::default();
    let (store, _) = Store::open(Arc::new(fs), Inline, PathBuf::from("/q"), 3)
        .await
        .unwrap();
    let deliver = Arc::new(Slow::default());
    let handle = scheduler::spawn(
        store.clone(),
        deliver.clone(),
        Arc::new(ToLocal),
        Arc::new(TokioClock::starting_at(T0)),
        SchedulerConfig::default(),
        Vec::new(),
    );
    let mut events = handle.subscribe();
    let mut submitted = 0;
    for (sender, rcpt, action, n) in [
        ("a@example.org", "b@example.net", "outbound", 6),
        ("a@example.org", "c@example.com", "outbound", 1),
        ("", "b@example.net", "outbound", 3),
        ("a@example.org", "b@mx.test", "local", 6),
    ] {
        for _ in 0..n {
            let mut inc = store.begin();
            inc.write(b"Subject: x\r\n\r\nx\r\n").await;
            let msg = inc.msg();
            let mut e = Envelope::new(
                EnvelopeId::new(msg, 0),
                sender,
                rcpt,
                T0,
                T0 + Duration::from_secs(86_400),
            );
            e.action = Some(action.into());
            inc.commit(std::slice::from_ref(&e)).await.unwrap();
            handle.enqueue(msg, vec![e]);
            submitted += 1;
        }
    }
    let start = tokio::time::Instant::now();
    let mut delivered = 0;
    while delivered < submitted {
        if let QueueEvent::Delivered(_) = events.recv().await.unwrap() {
            delivered += 1;
        }
    }
    // Two at a time to example.net (waiting batches were delayed, not failed); the other
    // domain had a place of its own; local deliveries and bounces all went at once.
    assert_eq!(
        deliver.peak("outbound"),
        3,
        "2 to example.net + 1 to example.com"
    );
    assert_eq!(deliver.peak("outbound bounce"), 3);
    assert_eq!(deliver.peak("local"), 6);
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(30),
        "6 batches, 2 at a time"
    );
    assert!(handle.snapshot().await.is_empty());
}
