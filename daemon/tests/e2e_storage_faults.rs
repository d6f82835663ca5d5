//! Faults in the queue's own storage while the daemon runs: folders that cannot be written or
//! read, a full disk. Nothing is acknowledged that is not durable (the client hears 451), store
//! updates are retried with growing pauses (counted in virtual time: no busy loop), and once
//! the fault is cleared every message is delivered exactly once.
//!
//! Faults are injected through the queue's `Fs` seam (tests run as root here, and root ignores
//! file modes); the last test makes real folders unusable by putting a file in their place.

mod e2e_support;
#[path = "support/faultfs.rs"]
mod faultfs;
#[path = "support/memfs.rs"]
mod memfs;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use e2e_support::{Client, PATIENCE, free_port, maildir, queued_files, start, until};
use faultfs::{Fault, FaultFs};
use petrel_core::Time;
use petrel_core::config::{self, ParseOptions};
use petrel_core::queue::{Envelope, EnvelopeId, MsgId};
use petrel_core::session::client::OutcomeKind;
use petrel_core::session::server::ServerConfig;
use petrel_core::smtp::{EnhancedCode, Reply};
use petrel_daemon::clock::{SystemClock, TokioClock};
use petrel_daemon::inbound::{Inbound, InboundContext, ListenerFacts};
use petrel_daemon::queue::scheduler::{
    self, Attempt, Batch, Deliver, InternalRoute, QueueEvent, Router, SchedulerConfig,
    SchedulerHandle,
};
use petrel_daemon::queue::{Inline, Store};
use petrel_daemon::routing::{Routing, RoutingSetup, SharedRouting};
use petrel_daemon::smtp_in::{self, Connection, SessionSecurity};
use petrel_daemon::tables::{ProcTableOptions, ProcTables};
use petrel_daemon::tls::MaybeTls;
use tokio::io::{AsyncWriteExt, BufReader};

const T0: Time = Time::from_secs(1_700_000_000);

fn root() -> PathBuf {
    PathBuf::from("/q")
}

/// A delivery agent that fails temporarily a given number of times, then delivers, and
/// records every delivery.
#[derive(Default)]
struct Recorder {
    temporary_failures: Mutex<usize>,
    delivered: Mutex<Vec<(String, Vec<u8>)>>,
}

impl Recorder {
    fn delivered(&self) -> Vec<(String, Vec<u8>)> {
        self.delivered.lock().unwrap().clone()
    }
}

impl Deliver for Recorder {
    async fn deliver(&self, batch: Batch) -> Vec<Attempt> {
        let fail = {
            let mut left = self.temporary_failures.lock().unwrap();
            let fail = *left > 0;
            *left = left.saturating_sub(1);
            fail
        };
        batch
            .envelopes
            .iter()
            .map(|e| {
                if !fail {
                    self.delivered
                        .lock()
                        .unwrap()
                        .push((e.dest.clone(), batch.content.to_vec()));
                }
                Attempt {
                    id: e.id,
                    kind: if fail {
                        OutcomeKind::Temporary
                    } else {
                        OutcomeKind::Delivered
                    },
                    reply: if fail {
                        Reply::new(451, EnhancedCode::new(4, 2, 0), "mailbox busy")
                    } else {
                        Reply::new(250, EnhancedCode::new(2, 0, 0), "ok")
                    },
                    remote_mta: None,
                    dsn_passed: true,
                }
            })
            .collect()
    }
}

struct ToPostmaster;

impl Router for ToPostmaster {
    fn route_internal(&self, _rcpt: &str) -> Result<Vec<InternalRoute>, Reply> {
        Ok(vec![InternalRoute {
            dest: "postmaster@mx.test".into(),
            action: "local".into(),
            target: None,
        }])
    }
}

/// A queue on `fs` with a scheduler delivering through `deliver`.
async fn queue(
    fs: &FaultFs,
    deliver: Arc<Recorder>,
    clock: TokioClock,
) -> (Store<FaultFs, Inline>, SchedulerHandle, usize) {
    let (store, recovered) = Store::open(Arc::new(fs.clone()), Inline, root(), 5)
        .await
        .unwrap();
    let n = recovered.len();
    let handle = scheduler::spawn(
        store.clone(),
        deliver,
        Arc::new(ToPostmaster),
        Arc::new(clock),
        SchedulerConfig {
            hostname: "mx.test".into(),
            ..SchedulerConfig::default()
        },
        recovered
            .into_iter()
            .map(|r| (r.msg, r.envelopes))
            .collect(),
    );
    (store, handle, n)
}

/// Commits a message with one envelope for `rcpt` and hands it to the scheduler.
async fn submit(store: &Store<FaultFs, Inline>, handle: &SchedulerHandle, rcpt: &str) -> MsgId {
    let mut inc = store.begin();
    inc.write(b"Subject: x\r\n\r\nbody\r\n").await;
    let msg = inc.msg();
    let now = T0 + tokio::time::Instant::now().elapsed();
    let mut e = Envelope::new(
        EnvelopeId::new(msg, 0),
        "alice@example.org",
        rcpt,
        now,
        now + Duration::from_secs(4 * 86_400),
    );
    e.action = Some("local".into());
    let envelopes = vec![e];
    inc.commit(&envelopes).await.unwrap();
    handle.enqueue(msg, envelopes.clone());
    msg
}

/// A session of smtp-in over an in-memory pipe, with the real handler over a faulty queue.
async fn smtp_session(
    store: Store<FaultFs, Inline>,
    scheduler: SchedulerHandle,
    clock: TokioClock,
) -> (
    BufReader<tokio::io::ReadHalf<tokio::io::DuplexStream>>,
    tokio::io::WriteHalf<tokio::io::DuplexStream>,
) {
    let text = "table everyone { \"@\" = \"petrel\" }\n\
                table accounts { \"petrel\" = \"-:-:/nonexistent\" }\n\
                action \"local\" maildir virtual <everyone> userbase <accounts>\n\
                match from any for domain \"mx.test\" action \"local\"\n";
    let config = config::parse("test.conf", text, &ParseOptions::default()).unwrap();
    let setup = RoutingSetup {
        hostname: "mx.test".into(),
        names: Vec::new(),
        addresses: Vec::new(),
        base: Path::new("/").to_owned(),
    };
    let routing = Routing::from_config(
        &config,
        &setup,
        &ProcTables::new(ProcTableOptions::default()),
    )
    .unwrap();
    let ctx = InboundContext {
        store,
        scheduler,
        routing: SharedRouting::new(routing),
        // The scheduler's clock: messages are due when it says they arrived.
        clock: Arc::new(clock),
        queue_ttl: Duration::from_secs(86_400),
        listener: ListenerFacts {
            hostname: "mx.test".into(),
            ..ListenerFacts::default()
        },
        resolver: None,
        filters: None,
    };
    let conn = Connection {
        id: 1,
        peer: "192.0.2.1:4000".parse().unwrap(),
        local: "192.0.2.25:25".parse().unwrap(),
        local_user: None,
    };
    let (client, server) = tokio::io::duplex(64 * 1024);
    let mut handler = Inbound::new(ctx, conn.clone());
    let config = Arc::new(ServerConfig {
        hostname: "mx.test".into(),
        ..ServerConfig::default()
    });
    tokio::spawn(async move {
        let (_stop_tx, stop) = tokio::sync::watch::channel(false);
        let mut stream = MaybeTls::Plain(server);
        let _ = smtp_in::drive(
            &mut stream,
            config,
            &SessionSecurity::default(),
            &conn,
            &mut handler,
            &SystemClock,
            stop,
        )
        .await;
    });
    let (r, w) = tokio::io::split(client);
    (BufReader::new(r), w)
}

async fn say(
    r: &mut BufReader<tokio::io::ReadHalf<tokio::io::DuplexStream>>,
    w: &mut tokio::io::WriteHalf<tokio::io::DuplexStream>,
    text: &str,
) -> String {
    w.write_all(text.as_bytes()).await.unwrap();
    tokio::time::timeout(PATIENCE, e2e_support::read_reply(r))
        .await
        .unwrap()
        .unwrap()
}

/// One transaction; the reply to its end of data.
async fn transaction(
    r: &mut BufReader<tokio::io::ReadHalf<tokio::io::DuplexStream>>,
    w: &mut tokio::io::WriteHalf<tokio::io::DuplexStream>,
    subject: &str,
) -> String {
    for (line, code) in [
        ("MAIL FROM:<a@client.test>\r\n", "250"),
        ("RCPT TO:<bob@mx.test>\r\n", "250"),
        ("DATA\r\n", "354"),
    ] {
        let reply = say(r, w, line).await;
        assert!(reply.starts_with(code), "{line}: {reply}");
    }
    say(r, w, &format!("Subject: {subject}\r\n\r\nbody\r\n.\r\n")).await
}

#[tokio::test]
async fn commits_answer_451_while_the_queue_cannot_be_written() {
    let fs = FaultFs::default();
    let deliver = Arc::new(Recorder::default());
    let clock = TokioClock::starting_at(T0);
    let (store, handle, _) = queue(&fs, deliver.clone(), clock).await;
    let mut events = handle.subscribe();
    let (mut r, mut w) = smtp_session(store, handle.clone(), clock).await;
    let greeting = tokio::time::timeout(PATIENCE, e2e_support::read_reply(&mut r))
        .await
        .unwrap()
        .unwrap();
    assert!(greeting.starts_with("220 "));
    say(&mut r, &mut w, "EHLO client.test\r\n").await;

    // The messages folder cannot be written: the commit's rename or its sync fails.
    fs.fail(&root().join("messages"), Fault::Writes);
    let reply = transaction(&mut r, &mut w, "refused 1").await;
    assert!(reply.starts_with("451 4.3.0 "), "{reply}");
    fs.clear();
    // A full disk under incoming/: the content cannot even be written.
    fs.fail(&root().join("incoming"), Fault::Writes);
    let reply = transaction(&mut r, &mut w, "refused 2").await;
    assert!(reply.starts_with("451 4.3.0 "), "{reply}");
    assert!(fs.failures().iter().any(|f| f.op == "rename"));
    assert!(fs.failures().iter().any(|f| f.op == "create"));

    // Fixed: the same session goes on, and the next message is accepted and delivered.
    fs.clear();
    let reply = transaction(&mut r, &mut w, "accepted").await;
    assert!(reply.starts_with("250 2.0.0 "), "{reply}");
    until(&mut events, |e| matches!(e, QueueEvent::Delivered(_))).await;
    let delivered = deliver.delivered();
    assert_eq!(delivered.len(), 1);
    assert!(String::from_utf8_lossy(&delivered[0].1).contains("Subject: accepted"));

    // Nothing refused was left behind to come back after a restart.
    until(&mut events, |e| matches!(e, QueueEvent::Removed(_))).await;
    let empty = |dir: &str| fs.mem.list(&root().join(dir)).is_empty();
    assert!(empty("messages"));
    assert!(empty("incoming"));
    fs.mem.crash();
    let (_, _, recovered) = queue(&fs, deliver.clone(), TokioClock::starting_at(T0)).await;
    assert_eq!(recovered, 0);
}

#[tokio::test(start_paused = true)]
async fn updates_are_retried_with_growing_pauses_and_every_message_is_delivered_once() {
    let fs = FaultFs::default();
    let deliver = Arc::new(Recorder::default());
    // The first attempt fails: the scheduler must record the attempt in envelopes/.
    *deliver.temporary_failures.lock().unwrap() = 1;
    let (store, handle, _) = queue(&fs, deliver.clone(), TokioClock::starting_at(T0)).await;
    let mut events = handle.subscribe();
    fs.fail(&root().join("envelopes"), Fault::All);
    let start = tokio::time::Instant::now();
    let msg = submit(&store, &handle, "bob@mx.test").await;
    let QueueEvent::Deferred(_, retry) =
        until(&mut events, |e| matches!(e, QueueEvent::Deferred(..))).await
    else {
        unreachable!()
    };
    // Local retries start 10 s after arrival; let the store stay broken for 5 minutes of
    // virtual time, across several delivery attempts.
    assert_eq!(retry, T0 + Duration::from_secs(10));
    *deliver.temporary_failures.lock().unwrap() = usize::MAX;
    tokio::time::sleep(Duration::from_secs(300)).await;

    let failures = fs.failures();
    let writes: Vec<Duration> = failures
        .iter()
        .filter(|f| f.op == "create")
        .map(|f| f.at - start)
        .collect();
    println!(
        "{} attempts to write envelopes/ in 300 s: {writes:?}",
        writes.len()
    );
    // 1, 2, 4 … 60 s apart: about a dozen tries in five minutes, never thousands.
    assert!(
        (5..=20).contains(&writes.len()),
        "{} attempts: {writes:?}",
        writes.len()
    );
    let gaps: Vec<Duration> = writes.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.iter().all(|g| *g >= Duration::from_secs(1)),
        "no two attempts within a second: {gaps:?}"
    );
    assert!(
        gaps.last().unwrap() >= &Duration::from_secs(30),
        "the pauses grow: {gaps:?}"
    );
    assert!(deliver.delivered().is_empty());

    // The fault is cleared: the message is delivered once and leaves the queue for good.
    fs.clear();
    *deliver.temporary_failures.lock().unwrap() = 0;
    handle.schedule_now(None);
    until(
        &mut events,
        |e| matches!(e, QueueEvent::Delivered(id) if id.msg() == msg),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(deliver.delivered().len(), 1);
    assert!(handle.snapshot().await.is_empty());
    fs.mem.crash();
    let (_, _, recovered) = queue(&fs, deliver.clone(), TokioClock::starting_at(T0)).await;
    assert_eq!(recovered, 0, "a delivered message came back after a crash");
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(deliver.delivered().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_removal_that_fails_is_retried_and_never_delivers_twice() {
    let fs = FaultFs::default();
    let deliver = Arc::new(Recorder::default());
    let (store, handle, _) = queue(&fs, deliver.clone(), TokioClock::starting_at(T0)).await;
    let mut events = handle.subscribe();
    // The message is delivered at once, but its files cannot be removed.
    fs.fail(&root().join("messages"), Fault::Writes);
    let msg = {
        // Committing needs messages/: allow that one write, then break it again.
        fs.clear();
        let msg = submit(&store, &handle, "bob@mx.test").await;
        fs.fail(&root().join("messages"), Fault::Writes);
        msg
    };
    until(
        &mut events,
        |e| matches!(e, QueueEvent::Delivered(id) if id.msg() == msg),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(600)).await;
    let removals = fs.failures().iter().filter(|f| f.op == "remove").count();
    assert!(
        (5..=25).contains(&removals),
        "{removals} removal attempts in 10 min"
    );
    // Still on disk, but not delivered again while the process runs.
    assert_eq!(deliver.delivered().len(), 1);
    fs.clear();
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert!(fs.mem.list(&root().join("messages")).is_empty());
    fs.mem.crash();
    let (_, _, recovered) = queue(&fs, deliver.clone(), TokioClock::starting_at(T0)).await;
    assert_eq!(recovered, 0);
    assert_eq!(deliver.delivered().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_message_that_cannot_be_read_is_retried_then_delivered_once() {
    let fs = FaultFs::default();
    let deliver = Arc::new(Recorder::default());
    let (store, handle, _) = queue(&fs, deliver.clone(), TokioClock::starting_at(T0)).await;
    let mut events = handle.subscribe();
    fs.fail(&root().join("messages"), Fault::Reads);
    let msg = submit(&store, &handle, "bob@mx.test").await;
    until(&mut events, |e| matches!(e, QueueEvent::Deferred(..))).await;
    until(&mut events, |e| matches!(e, QueueEvent::Deferred(..))).await;
    let snapshot = handle.snapshot().await;
    assert_eq!(snapshot[0].envelope.attempts, 2);
    assert!(
        snapshot[0]
            .envelope
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("queue read error")),
        "{snapshot:?}"
    );
    fs.clear();
    until(
        &mut events,
        |e| matches!(e, QueueEvent::Delivered(id) if id.msg() == msg),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(deliver.delivered().len(), 1);
    assert!(handle.snapshot().await.is_empty());
}

/// Puts a regular file where the folder `dir` was (so that nothing can be created in it, even
/// by root); returns where the folder went.
fn break_folder(dir: &Path) -> PathBuf {
    let aside = dir.with_extension("aside");
    std::fs::rename(dir, &aside).unwrap();
    std::fs::write(dir, b"not a folder").unwrap();
    aside
}

fn repair_folder(dir: &Path, aside: &Path) {
    std::fs::remove_file(dir).unwrap();
    std::fs::rename(aside, dir).unwrap();
}

#[tokio::test]
async fn on_the_real_file_system_a_broken_queue_folder_means_451_then_recovery() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let port = free_port();
    let conf = format!(
        "listen on 127.0.0.1 port {port} hostname mx.test\n\
         table everyone {{ \"@\" = \"petrel\" }}\n\
         table accounts {{ \"petrel\" = \"-:-:.\" }}\n\
         action \"local\" maildir \"mail/%{{dest.user:lowercase}}\" virtual <everyone> userbase <accounts>\n\
         match from any for domain \"mx.test\" action \"local\"\n"
    );
    let d = start(&conf, dir, |_| {}).await;
    let mut events = d.engine.scheduler().subscribe();
    let queue = dir.join("data/queue");

    // messages/ is unusable: the message cannot be made durable, so it is refused.
    let aside = break_folder(&queue.join("messages"));
    let reply = Client::send_one(
        d.addr,
        "a@client.test",
        &["bob@mx.test"],
        "Subject: one\r\n\r\nx\r\n",
    )
    .await;
    assert!(reply.starts_with("451 4.3.0 "), "{reply}");
    repair_folder(&queue.join("messages"), &aside);
    assert!(
        std::fs::read_dir(queue.join("incoming"))
            .unwrap()
            .next()
            .is_none()
    );

    // envelopes/ is unusable while a delivery fails (bob's maildir is blocked by a file):
    // the attempt cannot be recorded, and is retried later.
    std::fs::create_dir_all(dir.join("mail")).unwrap();
    std::fs::write(dir.join("mail/bob"), b"in the way").unwrap();
    let aside = break_folder(&queue.join("envelopes"));
    let reply = Client::send_one(
        d.addr,
        "a@client.test",
        &["bob@mx.test"],
        "Subject: two\r\n\r\nx\r\n",
    )
    .await;
    assert!(reply.starts_with("250 2.0.0 "), "{reply}");
    until(&mut events, |e| matches!(e, QueueEvent::Deferred(..))).await;

    // Both repaired: the accepted message is delivered, once, and leaves the queue.
    repair_folder(&queue.join("envelopes"), &aside);
    std::fs::remove_file(dir.join("mail/bob")).unwrap();
    d.engine.scheduler().schedule_now(None);
    until(&mut events, |e| matches!(e, QueueEvent::Delivered(_))).await;
    until(&mut events, |e| matches!(e, QueueEvent::Removed(_))).await;
    let mails = maildir(&dir.join("mail/bob"));
    assert_eq!(mails.len(), 1);
    assert!(String::from_utf8_lossy(&mails[0]).contains("Subject: two"));
    assert!(queued_files(&dir.join("data")).is_empty());
    d.engine.shutdown().await;
}
