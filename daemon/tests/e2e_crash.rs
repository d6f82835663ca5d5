//! Durability of the real `petreld` binary under SIGKILL: clients send numbered messages while
//! the daemon is killed at pseudo-random moments and restarted; once it has drained its queue,
//! every message that got a 250 must be in the maildir exactly once, and no message at all may
//! be there twice (one that was never acknowledged may be there once: the client could not
//! know).
//!
//! The moments are drawn from a seed printed at the start; `PETREL_CRASH_SEED=N cargo test
//! --test e2e_crash` replays a run's schedule (the timing of the processes still varies).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

const ROUNDS: usize = 6;
const CLIENTS: usize = 4;

/// xorshift64*: a small seeded generator, enough to place the kills.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// The daemon, killed with SIGKILL when dropped.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `petreld` in `dir` and waits until it says it listens; its log goes on being read
/// (and appended to `dir/petreld.log`) so that it never blocks on a full pipe.
fn start(dir: &Path, round: usize) -> Daemon {
    let mut child = Command::new(env!("CARGO_BIN_EXE_petreld"))
        .current_dir(dir)
        .arg("-f")
        .arg(dir.join("smtpd.conf"))
        .args(["-d", "data"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (ready_tx, ready_rx) = mpsc::channel();
    let log_path = dir.join("petreld.log");
    std::thread::spawn(move || {
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .unwrap();
        let _ = writeln!(log, "==== start {round}");
        let mut ready = Some(ready_tx);
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let _ = writeln!(log, "{line}");
            if line.contains("listening")
                && let Some(tx) = ready.take()
            {
                let _ = tx.send(());
            }
        }
    });
    ready_rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("petreld did not start; see {}", dir.display()));
    Daemon(child)
}

/// What the clients learnt about each message, by marker.
#[derive(Default)]
struct Ledger {
    /// Got 250.
    acked: BTreeSet<String>,
    /// The end of data was sent but no 250 came back (the daemon died, or said 4xx).
    unacked: BTreeSet<String>,
}

/// One blocking SMTP connection.
struct Conn {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Conn {
    fn open(addr: SocketAddr) -> std::io::Result<Conn> {
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        s.set_read_timeout(Some(Duration::from_secs(20)))?;
        let mut c = Conn {
            r: BufReader::new(s.try_clone()?),
            w: s,
        };
        let greeting = c.reply()?;
        if !greeting.starts_with("220") {
            return Err(std::io::Error::other(greeting));
        }
        c.cmd("EHLO client.test\r\n")?;
        Ok(c)
    }

    fn reply(&mut self) -> std::io::Result<String> {
        let mut reply = String::new();
        loop {
            let mut line = String::new();
            if self.r.read_line(&mut line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            reply.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(reply);
            }
        }
    }

    fn cmd(&mut self, line: &str) -> std::io::Result<String> {
        self.w.write_all(line.as_bytes())?;
        self.reply()
    }
}

/// Sends messages until the connection fails (the daemon was killed) or `stop` is set.
fn client(addr: SocketAddr, name: String, ledger: Arc<Mutex<Ledger>>, stop: Arc<AtomicBool>) {
    let mut n = 0;
    let Ok(mut conn) = Conn::open(addr) else {
        return;
    };
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let marker = format!("{name}n{n}");
        let sent = (|| -> std::io::Result<Option<String>> {
            if !conn
                .cmd("MAIL FROM:<alice@client.test>\r\n")?
                .starts_with("250")
            {
                return Ok(None);
            }
            if !conn.cmd("RCPT TO:<bob@mx.test>\r\n")?.starts_with("250") {
                return Ok(None);
            }
            if !conn.cmd("DATA\r\n")?.starts_with("354") {
                return Ok(None);
            }
            conn.w.write_all(
                format!(
                    "Message-ID: <{marker}@client.test>\r\nSubject: {marker}\r\n\r\nMARK {marker}\r\n.\r\n"
                )
                .as_bytes(),
            )?;
            // From here on the message may be in the queue whatever happens next.
            ledger.lock().unwrap().unacked.insert(marker.clone());
            Ok(Some(conn.reply()?))
        })();
        match sent {
            Ok(Some(reply)) if reply.starts_with("250") => {
                let mut l = ledger.lock().unwrap();
                l.unacked.remove(&marker);
                l.acked.insert(marker);
            }
            Ok(_) => {}
            Err(_) => return,
        }
        // A new session now and then: the session's message limit is never reached.
        if n % 25 == 0 {
            let _ = conn.cmd("QUIT\r\n");
            match Conn::open(addr) {
                Ok(c) => conn = c,
                Err(_) => return,
            }
        }
    }
    let _ = conn.cmd("QUIT\r\n");
}

/// Every marker in the maildir, with the number of copies.
fn delivered(maildir: &Path) -> BTreeMap<String, usize> {
    let mut found = BTreeMap::new();
    for sub in ["new", "cur"] {
        let Ok(entries) = std::fs::read_dir(maildir.join(sub)) else {
            continue;
        };
        for e in entries {
            let mut text = String::new();
            std::fs::File::open(e.unwrap().path())
                .unwrap()
                .read_to_string(&mut text)
                .unwrap();
            let marker = text
                .lines()
                .find_map(|l| l.strip_prefix("MARK "))
                .unwrap_or_else(|| panic!("a message without a marker: {text}"))
                .to_owned();
            *found.entry(marker).or_insert(0) += 1;
        }
    }
    found
}

fn queued(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("data/queue/messages"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn every_acknowledged_message_is_delivered_exactly_once_across_sigkills() {
    crash_run("");
}

/// The same with the queue compressed and encrypted: sealing happens before the sync that
/// the 250 waits for, so nothing changes, and no file a kill cut short is ever taken for a
/// damaged one.
#[test]
fn a_compressed_and_encrypted_queue_keeps_the_same_promise() {
    crash_run("queue compression\nqueue encryption \"crash test key\"\n");
}

fn crash_run(queue_options: &str) {
    let seed: u64 = std::env::var("PETREL_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!(
        "seed {seed}: replay with PETREL_CRASH_SEED={seed} cargo test -p petrel-daemon --test e2e_crash"
    );
    let mut rng = Rng(seed);
    let tmp = tempfile::tempdir().unwrap();
    let dir: PathBuf = tmp.path().to_owned();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        dir.join("smtpd.conf"),
        format!(
            "{queue_options}listen on 127.0.0.1 port {port} hostname mx.test\n\
             table everyone {{ \"@\" = \"petrel\" }}\n\
             table accounts {{ \"petrel\" = \"-:-:.\" }}\n\
             action \"local\" maildir \"mail/%{{dest.user:lowercase}}\" virtual <everyone> userbase <accounts>\n\
             match from any for domain \"mx.test\" action \"local\"\n"
        ),
    )
    .unwrap();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let started = Instant::now();

    for round in 0..ROUNDS {
        let daemon = start(&dir, round);
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let (ledger, stop) = (ledger.clone(), stop.clone());
                std::thread::spawn(move || client(addr, format!("r{round}c{c}"), ledger, stop))
            })
            .collect();
        // Load for a while, then the kill, at a moment drawn from the seed.
        let kill_after = Duration::from_millis(rng.between(200, 1500));
        std::thread::sleep(kill_after);
        drop(daemon); // SIGKILL
        stop.store(true, Ordering::SeqCst);
        for c in clients {
            c.join().unwrap();
        }
        let l = ledger.lock().unwrap();
        println!(
            "round {round}: killed after {kill_after:?}; {} acknowledged, {} in doubt so far, {} queued on disk",
            l.acked.len(),
            l.unacked.len(),
            queued(&dir)
        );
    }

    // A last start, without kills: the queue drains.
    let daemon = start(&dir, ROUNDS);
    let deadline = Instant::now() + Duration::from_secs(60);
    // Only the files of the other process can tell when it is done.
    while queued(&dir) > 0 {
        assert!(
            Instant::now() < deadline,
            "the queue did not drain: {} messages left",
            queued(&dir)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = daemon.0.id();
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let mut daemon = daemon;
    assert!(daemon.0.wait().unwrap().success());

    assert!(
        !dir.join("data/queue/corrupt").exists(),
        "the kills left files that do not open"
    );
    let found = delivered(&dir.join("mail/bob"));
    let l = ledger.lock().unwrap();
    let duplicates: Vec<(&String, &usize)> = found.iter().filter(|(_, n)| **n > 1).collect();
    let lost: Vec<&String> = l.acked.iter().filter(|m| !found.contains_key(*m)).collect();
    let unacked_delivered = l.unacked.iter().filter(|m| found.contains_key(*m)).count();
    let unknown: Vec<&String> = found
        .keys()
        .filter(|m| !l.acked.contains(*m) && !l.unacked.contains(*m))
        .collect();
    // Deliveries repeated after a kill that found their first copy (see `mda::maildir`).
    let absorbed = std::fs::read_to_string(dir.join("petreld.log"))
        .unwrap_or_default()
        .matches("the copy of an earlier attempt is there")
        .count();
    println!(
        "{ROUNDS} kills in {:?}: {} messages acknowledged, {} in doubt ({} of them delivered), {} delivered in all, {absorbed} repeated deliveries found their first copy, {} duplicates, {} lost",
        started.elapsed(),
        l.acked.len(),
        l.unacked.len(),
        unacked_delivered,
        found.values().sum::<usize>(),
        duplicates.len(),
        lost.len(),
    );
    assert!(l.acked.len() > 50, "too little load to mean anything");
    assert!(lost.is_empty(), "acknowledged but not delivered: {lost:?}");
    assert!(
        duplicates.is_empty(),
        "delivered more than once: {duplicates:?}"
    );
    assert!(unknown.is_empty(), "delivered but never sent: {unknown:?}");
}
