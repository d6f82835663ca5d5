//! End-to-end tests of the daemon over real loopback TCP.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use petrel_core::session::server::ServerConfig;
use petrel_daemon::service::{ListenerConfig, Service, ServiceConfig};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader as TokioBufReader};
use tokio::sync::watch;

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

async fn start() -> (SocketAddr, watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let service = Service::bind(ServiceConfig {
        listeners: vec![ListenerConfig {
            addr: "127.0.0.1:0".parse().unwrap(),
            server: Arc::new(ServerConfig {
                hostname: "mx.test".into(),
                ..ServerConfig::default()
            }),
            security: Default::default(),
        }],
    })
    .unwrap();
    let addr = service.local_addrs()[0];
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(service.run(rx));
    (addr, tx, task)
}

#[tokio::test]
async fn end_of_data_is_refused_honestly_until_the_queue_exists() {
    let (addr, stop, task) = start().await;
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (r, mut w) = stream.into_split();
    let mut r = TokioBufReader::new(r);
    assert!(read_reply(&mut r).await.starts_with("220 mx.test "));
    w.write_all(b"EHLO client.test\r\n").await.unwrap();
    assert!(read_reply(&mut r).await.contains("250 HELP"));
    // Pipelined: one write, replies in order.
    w.write_all(b"MAIL FROM:<a@client.test>\r\nRCPT TO:<b@mx.test>\r\nDATA\r\n")
        .await
        .unwrap();
    assert_eq!(read_reply(&mut r).await, "250 2.1.0 Sender ok\r\n");
    assert_eq!(read_reply(&mut r).await, "250 2.1.5 Recipient ok\r\n");
    assert!(read_reply(&mut r).await.starts_with("354 "));
    w.write_all(b"Subject: t\r\n\r\n..body\r\n.\r\n")
        .await
        .unwrap();
    assert!(read_reply(&mut r).await.starts_with("451 4.3.0 "));
    w.write_all(b"QUIT\r\n").await.unwrap();
    assert_eq!(read_reply(&mut r).await, "221 2.0.0 Bye\r\n");
    stop.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test]
async fn shutdown_tells_sessions_421() {
    let (addr, stop, task) = start().await;
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (r, mut w) = stream.into_split();
    let mut r = TokioBufReader::new(r);
    read_reply(&mut r).await;
    w.write_all(b"EHLO client.test\r\n").await.unwrap();
    read_reply(&mut r).await;
    stop.send(true).unwrap();
    assert!(read_reply(&mut r).await.starts_with("421 4.3.2 mx.test "));
    task.await.unwrap();
}

/// Runs the real binary; kills it when dropped.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

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
    let mut child = Command::new(env!("CARGO_BIN_EXE_petreld"))
        .arg("-f")
        .arg(&conf)
        .args(["-D", &format!("port={port}")])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until it says it listens, rather than sleeping and hoping.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("listening") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "petreld exited early"
        );
    }
    let daemon = Daemon(child);
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
    let pid = daemon.0.id();
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let mut daemon = daemon;
    let status = daemon.0.wait().unwrap();
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
        text.starts_with("listen on 127.0.0.1 port 2525\nlisten on ::1 port 2525\n"),
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
