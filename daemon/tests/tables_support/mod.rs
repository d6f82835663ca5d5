//! Helpers shared by the `tables_*` tests: a daemon in this process, an SMTP client, waiting
//! for deliveries and table states.
#![allow(dead_code)] // each test binary uses a different part of it

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use petrel_core::config::{self, ParseOptions};
use petrel_daemon::engine::{Engine, EngineOptions};
use petrel_daemon::queue::scheduler::QueueEvent;
use petrel_daemon::tables::{ProcTableOptions, TableStatus};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// A free loopback port.
pub fn free_port() -> u16 {
    // Outside the kernel's ephemeral range (32768–60999 by default), so that neither an
    // outgoing connection nor another test's `bind(0)` is handed the port between this check
    // and the daemon's bind; chosen at random so that concurrent tests rarely try the same one.
    use std::hash::{BuildHasher, Hasher};
    loop {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        let port = 20_000 + (h.finish() % 12_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Starts a daemon on `config` (where `{port}` is replaced by a free port) with its data under
/// `dir`.
pub async fn start(dir: &Path, config: &str, tables: ProcTableOptions) -> Result<Engine, String> {
    let text = config.replace("{port}", &free_port().to_string());
    let config = config::parse("test.conf", &text, &ParseOptions::default())
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    let options = EngineOptions {
        hostname: "mx.test".into(),
        data_dir: dir.join("data"),
        base: dir.to_owned(),
        ..EngineOptions::default()
    };
    Engine::start_with_tables(&config, options, tables).await
}

/// An SMTP client over loopback.
pub struct Client {
    r: BufReader<tokio::net::tcp::OwnedReadHalf>,
    w: tokio::net::tcp::OwnedWriteHalf,
}

impl Client {
    /// Connects, reads the greeting and says EHLO.
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (r, w) = stream.into_split();
        let mut c = Client {
            r: BufReader::new(r),
            w,
        };
        let greeting = c.reply().await;
        assert!(greeting.starts_with("220 "), "{greeting}");
        let ehlo = c.send("EHLO client.test").await;
        assert!(ehlo.starts_with("250"), "{ehlo}");
        c
    }

    /// Reads one complete reply (all its lines).
    pub async fn reply(&mut self) -> String {
        let mut reply = String::new();
        loop {
            let mut line = String::new();
            assert!(
                self.r.read_line(&mut line).await.unwrap() > 0,
                "connection closed; got {reply:?}"
            );
            reply.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return reply;
            }
        }
    }

    /// Sends a command line and reads its reply.
    pub async fn send(&mut self, line: &str) -> String {
        self.w
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .unwrap();
        self.reply().await
    }

    /// The reply code of `RCPT TO:<rcpt>`, and the reply.
    pub async fn rcpt(&mut self, rcpt: &str) -> String {
        self.send(&format!("RCPT TO:<{rcpt}>")).await
    }

    /// Sends DATA and a small message; the reply to its end.
    pub async fn data(&mut self, subject: &str) -> String {
        let go = self.send("DATA").await;
        assert!(go.starts_with("354 "), "{go}");
        self.send(&format!("Subject: {subject}\r\n\r\nbody\r\n."))
            .await
    }
}

/// Waits until `n` envelopes were delivered; panics on a failure.
pub async fn delivered(events: &mut tokio::sync::broadcast::Receiver<QueueEvent>, n: usize) {
    let mut seen = 0;
    while seen < n {
        match events.recv().await.unwrap() {
            QueueEvent::Delivered(_) => seen += 1,
            QueueEvent::Failed(id) => panic!("delivery of {id} failed"),
            _ => {}
        }
    }
}

/// The messages in the maildir `dir`.
pub fn maildir_messages(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir.join("new")) {
        for e in entries {
            out.push(std::fs::read_to_string(e.unwrap().path()).unwrap());
        }
    }
    out
}

/// Waits (at most 30 s) until the table's status satisfies `f`; returns it.
pub async fn wait_status(
    engine: &Engine,
    table: &str,
    f: impl Fn(&TableStatus) -> bool,
) -> TableStatus {
    let table = engine.proc_tables().get(table).expect("the table runs");
    let mut status = table.watch_status();
    let wait = status.wait_for(|s| f(s));
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .unwrap_or_else(|_| panic!("table status stuck at {:?}", table.status()))
        .expect("the table's thread is gone")
        .clone()
}
