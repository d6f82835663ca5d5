//! End-to-end tests of the daemon over real loopback TCP.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

#[path = "support/petreld_bin.rs"]
mod petreld_bin;

use petrel_core::config::{self, ParseOptions};
use petrel_daemon::engine::{Engine, EngineOptions};
use petrel_daemon::queue::scheduler::QueueEvent;
use petreld_bin::{free_port, start_listening};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader as TokioBufReader};

/// Reads one complete SMTP reply (all its lines).
async fn read_reply<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> String {
    let mut reply = String::new();
    loop {
        let mut line = String::new();
        assert!(
            r.read_line(&mut line).await.unwrap() > 0,
            "connection closed; got {reply:?}"
        );
        reply.push_str(&line);
        if line.as_bytes().get(3) != Some(&b'-') {
            return reply;
        }
    }
}

/// A daemon running in this process on a free loopback port, delivering into `dir`.
struct Running {
    engine: Engine,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

async fn start_with(extra: &str) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let text = format!(
        "listen on 127.0.0.1 port {port} hostname mx.test\n\
         table everyone {{ \"@\" = \"petrel\" }}\n\
         table accounts {{ \"petrel\" = \"-:-:.\" }}\n\
         {extra}\n\
         action \"local\" maildir \"mail/%{{dest.user:lowercase}}\" virtual <everyone> userbase <accounts>\n\
         match from any for domain \"mx.test\" action \"local\"\n"
    );
    let config = config::parse("test.conf", &text, &ParseOptions::default()).unwrap();
    let options = EngineOptions {
        hostname: "mx.test".into(),
        data_dir: dir.path().join("data"),
        base: dir.path().to_owned(),
        ..EngineOptions::default()
    };
    let engine = Engine::start(&config, options).await.unwrap();
    let addr = engine.addrs()[0];
    Running { engine, addr, dir }
}

struct Client {
    r: TokioBufReader<tokio::net::tcp::OwnedReadHalf>,
    w: tokio::net::tcp::OwnedWriteHalf,
}

impl Client {
    async fn connect(addr: SocketAddr) -> (Client, String) {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (r, w) = stream.into_split();
        let mut c = Client {
            r: TokioBufReader::new(r),
            w,
        };
        let greeting = read_reply(&mut c.r).await;
        (c, greeting)
    }

    async fn send(&mut self, bytes: &[u8]) -> String {
        self.w.write_all(bytes).await.unwrap();
        read_reply(&mut self.r).await
    }
}

fn maildir_messages(dir: &std::path::Path) -> Vec<Vec<u8>> {
    let new = dir.join("new");
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(new) {
        for e in entries {
            out.push(std::fs::read(e.unwrap().path()).unwrap());
        }
    }
    out
}

#[tokio::test]
async fn mail_is_acknowledged_once_queued_and_delivered_into_the_maildir_byte_for_byte() {
    let d = start_with("").await;
    let mut events = d.engine.scheduler().subscribe();
    let (mut c, greeting) = Client::connect(d.addr).await;
    assert!(greeting.starts_with("220 mx.test "));
    assert!(c.send(b"EHLO client.test\r\n").await.contains("250 HELP"));
    assert_eq!(
        c.send(b"MAIL FROM:<alice@client.test>\r\n").await,
        "250 2.1.0 Sender ok\r\n"
    );
    assert_eq!(
        c.send(b"RCPT TO:<Bob@mx.test>\r\n").await,
        "250 2.1.5 Recipient ok\r\n"
    );
    // A recipient no rule matches is refused: not an open relay.
    assert!(
        c.send(b"RCPT TO:<victim@elsewhere.example>\r\n")
            .await
            .starts_with("550 5.7.1 ")
    );
    assert!(c.send(b"DATA\r\n").await.starts_with("354 "));
    let reply = c
        .send(b"Subject: dots\r\n\r\n..leading dot\r\n...two\r\n.\r\n")
        .await;
    assert!(
        reply.starts_with("250 2.0.0 ") && reply.contains("Message accepted"),
        "{reply}"
    );
    assert_eq!(c.send(b"QUIT\r\n").await, "221 2.0.0 Bye\r\n");

    loop {
        match events.recv().await.unwrap() {
            QueueEvent::Delivered(_) => break,
            QueueEvent::Failed(id) => panic!("delivery of {id} failed"),
            _ => {}
        }
    }
    let messages = maildir_messages(&d.dir.path().join("mail/bob"));
    assert_eq!(messages.len(), 1);
    let text = String::from_utf8(messages[0].clone()).unwrap();
    assert!(
        text.starts_with("Return-Path: <alice@client.test>\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "Received: from client.test ([127.0.0.1])\n\tby mx.test (Petrel) with ESMTP id "
        ),
        "{text}"
    );
    assert!(
        text.ends_with("Subject: dots\n\n.leading dot\n..two\n"),
        "{text}"
    );
    d.engine.shutdown().await;
}

#[tokio::test]
async fn a_message_survives_a_restart_before_delivery() {
    // The action's maildir cannot be written yet (a file is in the way): the message stays
    // queued with a temporary failure, the daemon restarts, finds it, and delivers it once the
    // obstacle is gone.
    let d = start_with("").await;
    std::fs::create_dir_all(d.dir.path().join("mail")).unwrap();
    std::fs::write(d.dir.path().join("mail/carol"), b"in the way").unwrap();
    let mut events = d.engine.scheduler().subscribe();
    submit(d.addr, "carol@mx.test", "later").await;
    wait_for_deferral(&mut events, "delivered through a file").await;
    let Running { engine, dir, .. } = d;
    engine.shutdown().await;
    std::fs::remove_file(dir.path().join("mail/carol")).unwrap();
    let port = free_port();
    let text = format!(
        "listen on 127.0.0.1 port {port}\ntable everyone {{ \"@\" = \"petrel\" }}\ntable accounts {{ \"petrel\" = \"-:-:.\" }}\n\
         action \"local\" maildir \"mail/%{{dest.user:lowercase}}\" virtual <everyone> userbase <accounts>\n\
         match from any for domain \"mx.test\" action \"local\"\n"
    );
    let config = config::parse("test.conf", &text, &ParseOptions::default()).unwrap();
    let options = EngineOptions {
        hostname: "mx.test".into(),
        data_dir: dir.path().join("data"),
        base: dir.path().to_owned(),
        ..EngineOptions::default()
    };
    let engine = Engine::start(&config, options).await.unwrap();
    // The recovered envelope is routed again with this configuration; its route changed, so
    // it may be delivered before the test looks: what counts is that it arrives, once.
    engine.scheduler().schedule_now(None);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while maildir_messages(&dir.path().join("mail/carol")).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the recovered message was not delivered"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(maildir_messages(&dir.path().join("mail/carol")).len(), 1);
    engine.shutdown().await;
}

#[tokio::test]
async fn shutdown_tells_sessions_421() {
    let d = start_with("").await;
    let (mut c, _) = Client::connect(d.addr).await;
    c.send(b"EHLO client.test\r\n").await;
    let Running { engine, dir, .. } = d;
    let stop = tokio::spawn(engine.shutdown());
    assert!(read_reply(&mut c.r).await.starts_with("421 4.3.2 mx.test "));
    stop.await.unwrap();
    drop(dir);
}

/// Runs the real binary; kills it when dropped.
#[test]
fn the_binary_greets_and_stops_on_sigterm() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("smtpd.conf");
    std::fs::write(
        &conf,
        "listen on 127.0.0.1 port $port\nmatch from any for local reject\n",
    )
    .unwrap();
    let mut petreld = Command::new(env!("CARGO_BIN_EXE_petreld"));
    petreld
        .arg("-f")
        .arg(&conf)
        .args(["-D", &format!("port={port}")]);
    let daemon = start_listening(petreld);
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).unwrap();
    assert!(
        buf[..n].starts_with(b"220 "),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    s.write_all(b"QUIT\r\n").unwrap();
    let n = s.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"221 2.0.0 Bye\r\n");
    // SIGTERM: the daemon exits 0.
    let status = daemon.stop();
    assert!(status.success(), "{status:?}");
}

#[test]
fn check_mode_prints_the_normal_form_or_the_errors() {
    let out = Command::new(env!("CARGO_BIN_EXE_petreld"))
        .arg("-n")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("\nlisten on 127.0.0.1 port 2525\nlisten on ::1 port 2525\n"),
        "{text}"
    );

    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("bad.conf");
    std::fs::write(
        &conf,
        "listen on 127.0.0.1 port 25x\nmatch for local action \"nope\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_petreld"))
        .arg("-n")
        .arg("-f")
        .arg(&conf)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let errors = String::from_utf8(out.stderr).unwrap();
    let name = conf.display();
    assert!(
        errors.contains(&format!("{name}:1:26: invalid port \"25x\"")),
        "{errors}"
    );
    assert!(
        errors.contains(&format!("{name}:2:24: undefined action \"nope\"")),
        "{errors}"
    );
    assert!(out.stdout.is_empty());
}

#[tokio::test]
async fn fixing_the_configuration_fixes_mail_already_queued() {
    // First the recipient's domain is (wrongly) relayed to a host that refuses connections:
    // the message waits in the queue. Restarted with the rules fixed, the daemon routes the
    // waiting envelope again and delivers it locally.
    let dir = tempfile::tempdir().unwrap();
    let dead = free_port();
    let conf = |port: u16, rule: &str| {
        format!(
            "listen on 127.0.0.1 port {port}\n\
             table everyone {{ \"@\" = \"petrel\" }}\n\
             table accounts {{ \"petrel\" = \"-:-:.\" }}\n\
             action \"local\" maildir \"mail/%{{dest.user:lowercase}}\" virtual <everyone> userbase <accounts>\n\
             action \"wrong\" relay host \"smtp+notls://127.0.0.1:{dead}\"\n\
             match from any for domain \"mx.test\" action \"{rule}\"\n"
        )
    };
    let start = |text: String| {
        let config = config::parse("test.conf", &text, &ParseOptions::default()).unwrap();
        let options = EngineOptions {
            hostname: "mx.test".into(),
            data_dir: dir.path().join("data"),
            base: dir.path().to_owned(),
            ..EngineOptions::default()
        };
        async move { Engine::start(&config, options).await.unwrap() }
    };
    let engine = start(conf(free_port(), "wrong")).await;
    let mut events = engine.scheduler().subscribe();
    submit(engine.addrs()[0], "dave@mx.test", "stuck").await;
    wait_for_deferral(&mut events, "delivered through a closed port").await;
    engine.shutdown().await;

    let engine = start(conf(free_port(), "local")).await;
    let mut events = engine.scheduler().subscribe();
    let snapshot = engine.scheduler().snapshot().await;
    assert_eq!(snapshot.len(), 1);
    assert_eq!(snapshot[0].envelope.action.as_deref(), Some("local"));
    engine.scheduler().schedule_now(None);
    loop {
        if let QueueEvent::Delivered(_) = events.recv().await.unwrap() {
            break;
        }
    }
    assert_eq!(maildir_messages(&dir.path().join("mail/dave")).len(), 1);
    engine.shutdown().await;
}

#[tokio::test]
async fn listen_on_an_interface_name_binds_its_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let text = format!("listen on lo inet4 port {port}\nmatch from any for local reject\n");
    let config = config::parse("test.conf", &text, &ParseOptions::default()).unwrap();
    let options = EngineOptions {
        hostname: "mx.test".into(),
        data_dir: dir.path().join("data"),
        base: dir.path().to_owned(),
        ..EngineOptions::default()
    };
    let engine = Engine::start(&config, options).await.unwrap();
    assert_eq!(engine.addrs(), [SocketAddr::from(([127, 0, 0, 1], port))]);
    let stream = tokio::net::TcpStream::connect(engine.addrs()[0])
        .await
        .unwrap();
    let mut greeting = String::new();
    TokioBufReader::new(stream)
        .read_line(&mut greeting)
        .await
        .unwrap();
    assert!(greeting.starts_with("220 "), "{greeting}");
    engine.shutdown().await;
}

/// Sends one message to `rcpt` and checks it was accepted.
async fn submit(addr: SocketAddr, rcpt: &str, subject: &str) {
    let (mut c, _) = Client::connect(addr).await;
    c.send(b"HELO client.test\r\n").await;
    c.send(b"MAIL FROM:<a@client.test>\r\n").await;
    c.send(format!("RCPT TO:<{rcpt}>\r\n").as_bytes()).await;
    c.send(b"DATA\r\n").await;
    let reply = c
        .send(format!("Subject: {subject}\r\n\r\nbody\r\n.\r\n").as_bytes())
        .await;
    assert!(reply.starts_with("250 "), "{reply}");
}

/// Waits for the first delivery attempt to fail temporarily; a delivery is `unexpected`.
async fn wait_for_deferral(
    events: &mut tokio::sync::broadcast::Receiver<QueueEvent>,
    unexpected: &str,
) {
    loop {
        match events.recv().await.unwrap() {
            QueueEvent::Deferred(..) => break,
            QueueEvent::Delivered(_) => panic!("{unexpected}"),
            _ => {}
        }
    }
}

/// Runs petreld in `dir` with `stdin` as its standard input until it listens (then stops it
/// with SIGTERM) or exits; returns its standard error.
fn run_with_stdin(dir: &std::path::Path, port: u16, stdin: &[u8]) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_petreld"))
        .current_dir(dir)
        .args(["-f", "smtpd.conf", "-d", "data"])
        .args(["-D", &format!("port={port}")])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut text = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        if stderr.read_line(&mut line).unwrap() == 0 {
            // Exited before listening.
            let status = child.wait().unwrap();
            return (status.success(), text);
        }
        text.push_str(&line);
        if line.contains("listening") {
            break;
        }
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    (true, text)
}

#[test]
fn the_queue_key_is_read_from_standard_input_and_checked_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let conf = "queue compression\nqueue encryption -\n\
                listen on 127.0.0.1 port $port\nmatch from any for local reject\n";
    std::fs::write(dir.path().join("smtpd.conf"), conf).unwrap();
    let (started, log) = run_with_stdin(dir.path(), free_port(), b"first key\n");
    assert!(started, "{log}");
    assert!(log.contains("encryption=true"), "{log}");
    assert!(dir.path().join("data/queue/encryption").exists());
    // Another key: the daemon refuses to start rather than take every file for a damaged one.
    let (started, log) = run_with_stdin(dir.path(), free_port(), b"second key\n");
    assert!(!started);
    assert!(
        log.contains("queue encryption: the queue encryption key is not the one"),
        "{log}"
    );
    let (started, log) = run_with_stdin(dir.path(), free_port(), b"first key\n");
    assert!(started, "{log}");
    // `queue encryption` with no key asks on a terminal, and standard input is not one here.
    let conf = conf.replace("queue encryption -", "queue encryption");
    std::fs::write(dir.path().join("smtpd.conf"), conf).unwrap();
    let (started, log) = run_with_stdin(dir.path(), free_port(), b"first key\n");
    assert!(!started);
    assert!(log.contains("write `queue encryption -`"), "{log}");
}
