//! `petrelctl` against the real daemon: every command, in words and in JSON (snapshots with
//! ids and times redacted), a message stuck on a remote 4xx that `show envelope` explains and
//! `schedule` then delivers, `remove` under load, and `reload` routing queued mail again.
//!
//! The remote server is a scripted SMTP server on loopback; the daemon finds it through a
//! static resolver table, so nothing leaves the machine.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// A scripted remote MX: answers `451` to every RCPT until told to accept, and records the
/// messages it accepts.
struct RemoteMx {
    addr: SocketAddr,
    accept: Arc<AtomicBool>,
    received: Arc<Mutex<Vec<String>>>,
}

impl RemoteMx {
    fn start() -> RemoteMx {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let accept = Arc::new(AtomicBool::new(false));
        let received = Arc::new(Mutex::new(Vec::new()));
        let (a, r) = (accept.clone(), received.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                let (a, r) = (a.clone(), r.clone());
                std::thread::spawn(move || {
                    let _ = remote_session(stream, &a, &r);
                });
            }
        });
        RemoteMx {
            addr,
            accept,
            received,
        }
    }

    fn received(&self) -> Vec<String> {
        self.received.lock().unwrap().clone()
    }
}

fn remote_session(
    stream: TcpStream,
    accept: &AtomicBool,
    received: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut w = stream.try_clone()?;
    let mut r = BufReader::new(stream);
    w.write_all(b"220 mx.remote.test ESMTP\r\n")?;
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" | "HELO" => w.write_all(b"250 mx.remote.test\r\n")?,
            "MAIL" => w.write_all(b"250 2.1.0 ok\r\n")?,
            "RCPT" if accept.load(Ordering::SeqCst) => w.write_all(b"250 2.1.5 ok\r\n")?,
            "RCPT" => w.write_all(b"451 4.7.1 Greylisted, come back later\r\n")?,
            "DATA" => {
                w.write_all(b"354 go on\r\n")?;
                let mut body = String::new();
                loop {
                    let mut l = String::new();
                    if r.read_line(&mut l)? == 0 {
                        return Ok(());
                    }
                    if l == ".\r\n" {
                        break;
                    }
                    body.push_str(&l);
                }
                received.lock().unwrap().push(body);
                w.write_all(b"250 2.0.0 queued\r\n")?;
            }
            "QUIT" => {
                w.write_all(b"221 bye\r\n")?;
                return Ok(());
            }
            _ => w.write_all(b"250 ok\r\n")?,
        }
    }
}

/// petreld in a folder of its own, killed when dropped.
struct Daemon {
    child: Child,
    dir: tempfile::TempDir,
    smtp: SocketAddr,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
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

/// Mail for `remote.test` relays through the scripted MX; mail for `local.test` goes to a
/// maildir (or, with `remote_local`, relays too: what `reload` is tested with).
fn config(port: u16, local_relays: bool) -> String {
    let local = if local_relays { "relay" } else { "local" };
    format!(
        "resolver static \"dns.txt\"\n\
         table users {{ admin = \"secret\" }}\n\
         table everyone {{ \"@\" = \"petrel\" }}\n\
         table accounts {{ \"petrel\" = \"-:-:.\" }}\n\
         listen on 127.0.0.1 port {port}\n\
         action \"relay\" relay\n\
         action \"local\" maildir \"mail/%{{dest.user:lowercase}}\" \
             virtual <everyone> userbase <accounts>\n\
         match from local for domain \"remote.test\" action \"relay\"\n\
         match from local for domain \"local.test\" action \"{local}\"\n"
    )
}

fn start(remote: &RemoteMx, local_relays: bool) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    std::fs::write(
        dir.path().join("dns.txt"),
        format!(
            "remote.test MX 10 mx.remote.test\n\
             mx.remote.test A 127.0.0.1:{}\n\
             local.test MX 10 mx.remote.test\n",
            remote.addr.port()
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("smtpd.conf"), config(port, local_relays)).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_petreld"))
        .current_dir(dir.path())
        .args(["-f", "smtpd.conf", "-d", "data"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let log = dir.path().join("petreld.log");
    std::thread::spawn(move || {
        let mut log = std::fs::File::create(log).unwrap();
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let _ = writeln!(log, "{line}");
            if line.contains("listening")
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("petreld did not start");
    Daemon {
        child,
        dir,
        smtp: SocketAddr::from(([127, 0, 0, 1], port)),
    }
}

impl Daemon {
    fn socket(&self) -> PathBuf {
        self.dir.path().join("data/petreld.sock")
    }

    /// Runs petrelctl; returns its exit status, standard output and standard error.
    fn ctl(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_petrelctl"))
            .arg("-s")
            .arg(self.socket())
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let (status, out, err) = self.ctl(args);
        assert_eq!(status, 0, "petrelctl {args:?}: {err}");
        out
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        serde_json::from_str(&self.ok(&full)).unwrap()
    }

    /// The queued envelopes' ids.
    fn queue_ids(&self) -> Vec<String> {
        self.json(&["show", "queue"])["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect()
    }

    fn queue_files(&self) -> usize {
        fn count(p: &Path) -> usize {
            std::fs::read_dir(p).map_or(0, |d| {
                d.flatten()
                    .map(|e| {
                        if e.path().is_dir() {
                            count(&e.path())
                        } else {
                            1
                        }
                    })
                    .sum()
            })
        }
        count(&self.dir.path().join("data/queue"))
    }
}

/// Sends one message; returns the final reply line.
fn send(addr: SocketAddr, to: &str, subject: &str) -> String {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let mut reply = || {
        loop {
            let mut l = String::new();
            r.read_line(&mut l).unwrap();
            if l.as_bytes().get(3) != Some(&b'-') {
                return l.trim_end().to_owned();
            }
        }
    };
    assert!(reply().starts_with("220"));
    for cmd in [
        "EHLO client.test\r\n".to_owned(),
        "MAIL FROM:<alice@sender.test>\r\n".to_owned(),
        format!("RCPT TO:<{to}>\r\n"),
        "DATA\r\n".to_owned(),
    ] {
        w.write_all(cmd.as_bytes()).unwrap();
        let r = reply();
        assert!(r.starts_with('2') || r.starts_with('3'), "{cmd}: {r}");
    }
    w.write_all(format!("Subject: {subject}\r\n\r\nHello.\r\n.\r\n").as_bytes())
        .unwrap();
    let last = reply();
    w.write_all(b"QUIT\r\n").unwrap();
    last
}

/// Polls `cond` until it holds: the daemon works in its own time, and the test waits for what
/// it can observe rather than for a fixed while.
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Replaces ids, dates and durations, which change from run to run.
fn redact(text: &str, ids: &[String]) -> String {
    let mut out = text.to_owned();
    for id in ids {
        out = out.replace(id, "<ENVELOPE>");
        out = out.replace(&id[..8], "<MSG>");
    }
    let date = regex::Regex::new(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ").unwrap();
    let dur = regex::Regex::new(r"\b\d+[dhms]( \d+[hms])?\b").unwrap();
    let num = regex::Regex::new(r#""(uptime|created|last_try|next_try|expires|at)":\d+"#).unwrap();
    let port = regex::Regex::new(r"127\.0\.0\.1:\d+").unwrap();
    let host = regex::Regex::new(r"by \S+ \(Petrel\)").unwrap();
    let stamp = regex::Regex::new(r"\w{3}, \d+ \w{3} \d{4} \d\d:\d\d:\d\d \+0000").unwrap();
    // Sessions end just after the client's QUIT: the count of open ones may lag by one.
    let open = regex::Regex::new(r#"\(\d+ open\)|"sessions_active":\d+"#).unwrap();
    out = open.replace_all(&out, "<OPEN>").into_owned();
    out = date.replace_all(&out, "<DATE>").into_owned();
    out = num.replace_all(&out, "\"$1\":<TIME>").into_owned();
    out = dur.replace_all(&out, "<DURATION>").into_owned();
    // Within the same second, "2s ago" is "now".
    out = out.replace("(now)", "(<DURATION> ago)");
    out = port.replace_all(&out, "127.0.0.1:<PORT>").into_owned();
    out = host.replace_all(&out, "by <HOST> (Petrel)").into_owned();
    stamp.replace_all(&out, "<RFC5322-DATE>").into_owned()
}

#[test]
fn a_stuck_message_is_explained_then_delivered_by_schedule() {
    let remote = RemoteMx::start();
    let d = start(&remote, false);
    assert!(send(d.smtp, "bob@remote.test", "stuck").starts_with("250"));
    wait_for("the first attempt", || {
        d.json(&["show", "queue"])["value"][0]["attempts"] == 1
    });
    let ids = d.queue_ids();
    assert_eq!(ids.len(), 1);
    let id = &ids[0];

    // The human forms, ids and times redacted.
    insta::assert_snapshot!("show_queue", redact(&d.ok(&["show", "queue"]), &ids));
    insta::assert_snapshot!(
        "show_envelope",
        redact(&d.ok(&["show", "envelope", id]), &ids)
    );
    insta::assert_snapshot!(
        "show_message",
        redact(&d.ok(&["show", "message", id]), &ids)
    );
    insta::assert_snapshot!("show_hosts", redact(&d.ok(&["show", "hosts"]), &ids));
    insta::assert_snapshot!("show_filters", redact(&d.ok(&["show", "filters"]), &ids));
    insta::assert_snapshot!(
        "show_envelope_json",
        redact(&d.ok(&["--json", "show", "envelope", id]), &ids)
    );
    insta::assert_snapshot!("show_stats", redact(&d.ok(&["show", "stats"]), &ids));
    insta::assert_snapshot!(
        "show_stats_json",
        redact(&d.ok(&["--json", "show", "stats"]), &ids)
    );

    // The remote's reply is in the envelope's history and last error.
    let e = d.json(&["show", "envelope", id]);
    assert_eq!(e["value"]["state"], "queued");
    assert!(
        e["value"]["last_error"]
            .as_str()
            .unwrap()
            .contains("451 4.7.1 Greylisted"),
        "{e}"
    );
    assert_eq!(e["value"]["history"][0]["result"], "temporary");
    let next = e["value"]["next_try"].as_u64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        next > now + 60,
        "the retry is minutes away: {next} vs {now}"
    );

    // The remote accepts now; without `schedule` the retry would wait those minutes.
    remote.accept.store(true, Ordering::SeqCst);
    insta::assert_snapshot!("schedule", d.ok(&["schedule", id]));
    wait_for("the delivery", || d.queue_ids().is_empty());
    let received = remote.received();
    assert_eq!(received.len(), 1);
    assert!(received[0].contains("Subject: stuck"));
    let stats = d.json(&["show", "stats"]);
    assert_eq!(stats["value"]["delivered"], 1);
    assert_eq!(stats["value"]["deferred"], 1);
    wait_for("the queue files to go", || d.queue_files() == 0);
}

#[test]
fn remove_takes_envelopes_out_of_memory_and_disk_under_load() {
    let remote = RemoteMx::start();
    let d = start(&remote, false);
    // Relaying paused: everything stays queued, so the count is exact.
    insta::assert_snapshot!("pause_mta", d.ok(&["pause", "mta"]));
    for i in 0..10 {
        assert!(send(d.smtp, &format!("first{i}@remote.test"), "load").starts_with("250"));
    }
    let senders: Vec<_> = (0..2)
        .map(|t| {
            let addr = d.smtp;
            std::thread::spawn(move || {
                for i in 0..10 {
                    let r = send(addr, &format!("rcpt{t}x{i}@remote.test"), "load");
                    assert!(r.starts_with("250"), "{r}");
                }
            })
        })
        .collect();
    // Remove while the clients are still sending: whatever was queued goes, the rest stays.
    let removed = d.json(&["remove", "all"]);
    let removed = removed["value"]["count"].as_u64().unwrap() as usize;
    assert!(removed >= 10, "the first ten at least: {removed}");
    for s in senders {
        s.join().unwrap();
    }
    let left = d.queue_ids();
    assert_eq!(removed + left.len(), 30);
    assert!(send(d.smtp, "last@remote.test", "load").starts_with("250"));
    let left = d.queue_ids();
    let one = left[0].clone();
    let (status, out, _) = d.ctl(&["remove", &one]);
    assert_eq!((status, out.as_str()), (0, "1 envelope(s) removed\n"));
    // Gone means gone: not shown, not removable twice, not schedulable.
    assert!(!d.queue_ids().contains(&one));
    let (status, _, err) = d.ctl(&["remove", &one]);
    assert_eq!(status, 3, "{err}");
    assert!(err.contains("no envelope"), "{err}");
    let (status, _, _) = d.ctl(&["schedule", &one]);
    assert_eq!(status, 3);
    d.ok(&["remove", "all"]);
    assert!(d.queue_ids().is_empty());
    wait_for("the queue files to go", || d.queue_files() == 0);
    // Nothing was relayed: removal sends no notification either.
    d.ok(&["resume", "mta"]);
    assert!(remote.received().is_empty());
    let stats = d.json(&["show", "stats"]);
    assert_eq!(stats["value"]["removed"], 31);
    assert_eq!(stats["value"]["notifications"], 0);
}

#[test]
fn reload_routes_queued_mail_with_the_new_configuration() {
    let remote = RemoteMx::start();
    // local.test relays at first (to the remote, which says 451): the mail waits.
    let d = start(&remote, true);
    assert!(send(d.smtp, "carol@local.test", "moved").starts_with("250"));
    wait_for("the first attempt", || {
        d.json(&["show", "queue"])["value"][0]["attempts"] == 1
    });
    // The operator fixes the configuration: local.test is ours.
    std::fs::write(
        d.dir.path().join("smtpd.conf"),
        config(d.smtp.port(), false),
    )
    .unwrap();
    let out = d.ok(&["reload"]);
    assert!(out.starts_with("configuration reloaded"), "{out}");
    assert!(out.contains("1 changed"), "{out}");
    wait_for("the local delivery", || d.queue_ids().is_empty());
    let new = d.dir.path().join("mail/carol/new");
    let files: Vec<_> = std::fs::read_dir(&new)
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    let log = std::fs::read_to_string(d.dir.path().join("petreld.log")).unwrap_or_default();
    assert_eq!(files.len(), 1, "{log}");
    let content = std::fs::read_to_string(files[0].path()).unwrap();
    assert!(content.contains("Subject: moved"));

    // A configuration that does not load leaves the daemon as it was, and says why.
    std::fs::write(
        d.dir.path().join("smtpd.conf"),
        "match from any for any action \"missing\"\n",
    )
    .unwrap();
    let (status, _, err) = d.ctl(&["reload"]);
    assert_eq!(status, 1, "{err}");
    assert!(err.contains("smtpd.conf:1:"), "{err}");
    assert!(send(d.smtp, "dave@local.test", "still here").starts_with("250"));
}

#[test]
fn pause_resume_log_update_monitor_trace_and_errors() {
    let remote = RemoteMx::start();
    let d = start(&remote, false);
    // pause smtp: new sessions get 421, open ones go on.
    insta::assert_snapshot!("pause_smtp", d.ok(&["pause", "smtp"]));
    let s = TcpStream::connect(d.smtp).unwrap();
    let mut greeting = String::new();
    BufReader::new(s).read_line(&mut greeting).unwrap();
    assert!(greeting.starts_with("421 4.3.2"), "{greeting}");
    d.ok(&["resume", "smtp"]);
    assert!(send(d.smtp, "erin@local.test", "hi").starts_with("250"));

    // pause mda holds local deliveries; resume lets them go.
    d.ok(&["pause", "mda"]);
    assert!(send(d.smtp, "frank@local.test", "held").starts_with("250"));
    wait_for("the message to be queued", || d.queue_ids().len() == 1);
    let q = d.json(&["show", "queue"]);
    assert_eq!(q["value"][0]["state"], "paused");
    d.ok(&["resume", "mda"]);
    wait_for("the held delivery", || d.queue_ids().is_empty());

    // One envelope paused, and resumed.
    d.ok(&["pause", "mda"]);
    assert!(send(d.smtp, "gina@local.test", "one").starts_with("250"));
    wait_for("the message to be queued", || d.queue_ids().len() == 1);
    let id = d.queue_ids()[0].clone();
    d.ok(&["pause", "envelope", &id]);
    d.ok(&["resume", "mda"]);
    d.ok(&["schedule", "all"]);
    assert_eq!(
        d.json(&["show", "envelope", &id])["value"]["state"],
        "paused"
    );
    d.ok(&["resume", "envelope", &id]);
    wait_for("the envelope's delivery", || d.queue_ids().is_empty());

    insta::assert_snapshot!("log_verbose", d.ok(&["log", "verbose"]));
    d.ok(&["log", "brief"]);
    let out = d.ok(&["update", "table", "users"]);
    assert!(out.starts_with("table users updated"), "{out}");

    // monitor: a line a second; trace: the events of the next message.
    let mut monitor = Command::new(env!("CARGO_BIN_EXE_petrelctl"))
        .arg("-s")
        .arg(d.socket())
        .arg("monitor")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(monitor.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let second = lines.next().unwrap().unwrap();
    assert!(
        first.starts_with("sessions") && second.starts_with("sessions"),
        "{first}"
    );
    let _ = monitor.kill();
    let _ = monitor.wait();

    let mut trace = Command::new(env!("CARGO_BIN_EXE_petrelctl"))
        .arg("-s")
        .arg(d.socket())
        .args(["--json", "trace"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut events = BufReader::new(trace.stdout.take().unwrap()).lines();
    // The trace is subscribed once the daemon has its request; a message sent until the
    // first event shows up is the proof.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in events.by_ref() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Messages are sent until one's `queued` event shows up (the trace may subscribe after the
    // first is queued); then its delivery must show up too.
    let mut seen: Vec<String> = Vec::new();
    let mut queued: Option<String> = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    'trace: loop {
        assert!(Instant::now() < deadline, "no trace events: {seen:?}");
        if queued.is_none() {
            send(d.smtp, "hank@local.test", "traced");
        }
        while let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            let id = v["value"]["id"].as_str().unwrap_or_default().to_owned();
            match v["value"]["event"].as_str() {
                Some("queued") if queued.is_none() => queued = Some(id),
                Some("delivered") if queued.as_ref().is_some_and(|m| id.starts_with(m)) => {
                    break 'trace;
                }
                _ => {}
            }
            seen.push(line);
        }
    }
    let _ = trace.kill();
    let _ = trace.wait();

    // Errors: what does not exist (3), what is malformed (2).
    let (status, _, err) = d.ctl(&["show", "envelope", "0123456789abcdef"]);
    assert_eq!(status, 3, "{err}");
    let (status, _, err) = d.ctl(&["show", "envelope", "nonsense"]);
    assert_eq!(status, 2, "{err}");
    let (status, _, err) = d.ctl(&["update", "table", "nosuch"]);
    assert_eq!(status, 3, "{err}");
    let (status, _, err) = d.ctl(&["pause", "everything"]);
    assert_eq!(status, 2, "{err}");
    let (status, _, err) = d.ctl(&["log", "loud"]);
    assert_eq!(status, 2, "{err}");
}

#[test]
fn a_stopped_daemon_is_reported_plainly() {
    let out = Command::new(env!("CARGO_BIN_EXE_petrelctl"))
        .args(["-s", "/nonexistent/petreld.sock", "show", "queue"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("petreld is not running"), "{err}");
    // Without -s, the state folder is $PETREL_DATA's, as for sendmail.
    let out = Command::new(env!("CARGO_BIN_EXE_petrelctl"))
        .env("PETREL_DATA", "/nonexistent-state")
        .args(["show", "queue"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("no control socket at /nonexistent-state/petreld.sock"),
        "{err}"
    );
}

#[test]
fn encrypt_hashes_passwords_the_daemon_accepts() {
    let run = |args: &[&str], stdin: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_petrelctl"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap().trim_end().to_owned()
    };
    let given = run(&["encrypt", "correct horse"], "");
    let read = run(&["encrypt"], "correct horse\n");
    let bcrypt = run(&["encrypt", "--bcrypt", "correct horse"], "");
    assert!(
        given.starts_with("$6$") && read.starts_with("$6$"),
        "{given} {read}"
    );
    assert!(bcrypt.starts_with("$2b$"), "{bcrypt}");
    assert_ne!(given, read, "a fresh salt each time");
    for hash in [&given, &read, &bcrypt] {
        assert!(petrel_daemon::auth::verify_password("correct horse", hash).unwrap());
        assert!(!petrel_daemon::auth::verify_password("wrong", hash).unwrap());
    }
}

#[test]
fn spf_walk_lists_networks_and_reports_problems() {
    let dir = tempfile::tempdir().unwrap();
    let records = dir.path().join("dns.txt");
    std::fs::write(
        &records,
        "example.test TXT \"v=spf1 ip4:192.0.2.0/24 include:_spf.example.test a:mail.example.test -all\"\n\
         _spf.example.test TXT \"v=spf1 ip6:2001:db8::/32 ip4:198.51.100.7 ~all\"\n\
         mail.example.test A 203.0.113.5\n\
         loop.test TXT \"v=spf1 include:loop.test -all\"\n",
    )
    .unwrap();
    let walk = |domain: &str, json: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_petrelctl"));
        if json {
            cmd.arg("--json");
        }
        let out = cmd
            .args(["spf", "walk", domain, "--static"])
            .arg(&records)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (status, out, err) = walk("example.test", false);
    assert_eq!(status, Some(0), "{err}");
    assert_eq!(
        out,
        "192.0.2.0/24\n198.51.100.7/32\n203.0.113.5/32\n2001:db8::/32\n"
    );
    let (status, out, err) = walk("loop.test", false);
    assert_eq!(status, Some(1));
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("loop"), "{err}");
    let (status, out, _) = walk("loop.test", true);
    assert_eq!(status, Some(1));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["domain"], "loop.test");
    assert_eq!(v["problems"].as_array().unwrap().len(), 1, "{v}");
}
