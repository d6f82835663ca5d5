//! Helpers shared by the `e2e_*` tests: an SMTP client, a daemon running in this process on a
//! loopback port, waiting for queue events, and reading maildirs.
#![allow(dead_code)] // each test binary uses a different part of it

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use petrel_core::config::{self, ParseOptions};
use petrel_daemon::engine::{Engine, EngineOptions};
use petrel_daemon::queue::scheduler::QueueEvent;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::broadcast;

/// How long any single wait of a test may take before it fails (never reached when things
/// work: every wait is for an event that is due at once).
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A loopback port free right now.
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

/// Reads one complete SMTP reply (all its lines); `None` if the connection closed first.
pub async fn read_reply<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> Option<String> {
    let mut reply = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        reply.push_str(&line);
        if line.as_bytes().get(3) != Some(&b'-') {
            return Some(reply);
        }
    }
}

/// A plain SMTP client.
pub struct Client {
    r: BufReader<tokio::net::tcp::OwnedReadHalf>,
    w: tokio::net::tcp::OwnedWriteHalf,
    /// The greeting (or the refusal) the server sent first.
    pub greeting: String,
}

impl Client {
    /// Connects and reads the greeting.
    pub async fn connect(addr: SocketAddr) -> Client {
        Client::from_stream(TcpStream::connect(addr).await.unwrap()).await
    }

    /// Connects from a chosen loopback source address (`127.0.0.2` …: Linux routes all of
    /// 127/8 to the loopback interface).
    pub async fn connect_from(source: &str, addr: SocketAddr) -> Client {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket
            .bind(SocketAddr::new(source.parse().unwrap(), 0))
            .unwrap();
        Client::from_stream(socket.connect(addr).await.unwrap()).await
    }

    async fn from_stream(stream: TcpStream) -> Client {
        let (r, w) = stream.into_split();
        let mut r = BufReader::new(r);
        let greeting = tokio::time::timeout(PATIENCE, read_reply(&mut r))
            .await
            .expect("no greeting")
            .expect("closed before the greeting");
        Client { r, w, greeting }
    }

    /// Sends bytes and reads the reply.
    pub async fn send(&mut self, bytes: &[u8]) -> String {
        self.w.write_all(bytes).await.unwrap();
        tokio::time::timeout(PATIENCE, read_reply(&mut self.r))
            .await
            .expect("no reply")
            .unwrap_or_else(|| panic!("closed after {:?}", String::from_utf8_lossy(bytes)))
    }

    /// True when the server closed the connection (reads end of file).
    pub async fn closed(&mut self) -> bool {
        let mut line = String::new();
        matches!(
            tokio::time::timeout(PATIENCE, self.r.read_line(&mut line)).await,
            Ok(Ok(0) | Err(_))
        )
    }

    /// One transaction; the reply to the end of data. `content` is sent as given (CRLF, dot
    /// stuffed) and followed by `.`.
    pub async fn mail(&mut self, from: &str, rcpts: &[&str], content: &str) -> String {
        let r = self
            .send(format!("MAIL FROM:<{from}>\r\n").as_bytes())
            .await;
        assert!(r.starts_with("250"), "MAIL: {r}");
        for rcpt in rcpts {
            let r = self.send(format!("RCPT TO:<{rcpt}>\r\n").as_bytes()).await;
            assert!(r.starts_with("250"), "RCPT {rcpt}: {r}");
        }
        let r = self.send(b"DATA\r\n").await;
        assert!(r.starts_with("354"), "DATA: {r}");
        self.send(format!("{content}.\r\n").as_bytes()).await
    }

    /// Greets (EHLO) and sends one message; the reply to its end of data.
    pub async fn send_one(addr: SocketAddr, from: &str, rcpts: &[&str], content: &str) -> String {
        let mut c = Client::connect(addr).await;
        assert!(c.greeting.starts_with("220"), "{}", c.greeting);
        let r = c.send(b"EHLO client.test\r\n").await;
        assert!(r.starts_with("250"), "EHLO: {r}");
        let reply = c.mail(from, rcpts, content).await;
        c.send(b"QUIT\r\n").await;
        reply
    }
}

/// A daemon running in this process, with its folder.
pub struct Running {
    /// The daemon.
    pub engine: Engine,
    /// Its first listener.
    pub addr: SocketAddr,
    /// Its folder: configuration-relative paths, the data directory under `data/`.
    pub dir: PathBuf,
}

/// With `PETREL_LOG` set (`PETREL_LOG=debug`), the daemon's logs go to the test's output.
pub fn init_logs() {
    if let Ok(filter) = std::env::var("PETREL_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
}

/// Parses `text` and starts a daemon named `mx.test` over `dir` (the queue in `dir/data`).
pub async fn start(text: &str, dir: &Path, tweak: impl FnOnce(&mut EngineOptions)) -> Running {
    init_logs();
    std::fs::write(dir.join("smtpd.conf"), text).unwrap();
    let config = config::parse("smtpd.conf", text, &ParseOptions::default())
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    let mut options = EngineOptions {
        hostname: "mx.test".into(),
        data_dir: dir.join("data"),
        base: dir.to_owned(),
        ..EngineOptions::default()
    };
    tweak(&mut options);
    let engine = Engine::start(&config, options).await.unwrap();
    let addr = engine.addrs()[0];
    Running {
        engine,
        addr,
        dir: dir.to_owned(),
    }
}

/// Waits for an event matching `f` and returns it; panics on a `Failed` event unless `f`
/// wants it, and after [`PATIENCE`].
pub async fn until(
    events: &mut broadcast::Receiver<QueueEvent>,
    f: impl Fn(&QueueEvent) -> bool,
) -> QueueEvent {
    loop {
        let e = tokio::time::timeout(PATIENCE, events.recv())
            .await
            .expect("no such queue event in time")
            .expect("queue events lost");
        if f(&e) {
            return e;
        }
        if let QueueEvent::Failed(id) = e {
            panic!("delivery of {id} failed: {e:?}");
        }
    }
}

/// The files of a maildir's `new/`, sorted by name.
pub fn maildir(dir: &Path) -> Vec<Vec<u8>> {
    let mut names: Vec<PathBuf> = match std::fs::read_dir(dir.join("new")) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// The queue's message files (committed messages still queued).
pub fn queued_files(data_dir: &Path) -> Vec<String> {
    match std::fs::read_dir(data_dir.join("queue/messages")) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// A daemon for mx.test whose listener runs the filter (or chain) `chain`, declared in
/// `filters`, delivering everything for mx.test into `mail/<user>`; reverse lookups go to a
/// static table that names 127.0.0.1 `client.test`, never to the machine's resolver.
pub async fn filtered(dir: &Path, filters: &str) -> Running {
    std::fs::write(
        dir.join("records"),
        "127.0.0.1 PTR client.test\nclient.test A 127.0.0.1\n",
    )
    .unwrap();
    let port = free_port();
    let conf = format!(
        "resolver static \"records\"\n\
         table everyone {{ \"@\" = \"petrel\" }}\n\
         table accounts {{ \"petrel\" = \"-:-:.\" }}\n\
         {filters}\n\
         listen on 127.0.0.1 port {port} hostname mx.test filter chain\n\
         action \"local\" maildir \"mail/%{{rcpt.user:lowercase}}\" virtual <everyone> userbase <accounts>\n\
         match from any for domain \"mx.test\" action \"local\"\n"
    );
    start(&conf, dir, |_| {}).await
}
