//! The README's first command: `petreld` with no `-f`, in an empty folder, takes mail for
//! `you@localhost` on 127.0.0.1:2525 and files it into `./petrel-data/mail/you/new/`.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The port of the embedded default configuration.
const PORT: u16 = 2525;

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits for 127.0.0.1:2525 to be free (another run of this very test may hold it for a few
/// seconds) and fails with a clear message if something else keeps it.
fn wait_for_free_port() {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match std::net::TcpListener::bind(("127.0.0.1", PORT)) {
            Ok(_) => return,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                // Nothing to wait on: the port belongs to another process.
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!(
                "127.0.0.1:{PORT} is taken ({e}); the default configuration listens there. \
                 Stop whatever uses it (another petreld?) and run the test again."
            ),
        }
    }
}

fn reply(r: &mut BufReader<TcpStream>) -> String {
    let mut reply = String::new();
    loop {
        let mut line = String::new();
        assert!(
            r.read_line(&mut line).unwrap() > 0,
            "closed after {reply:?}"
        );
        reply.push_str(&line);
        if line.as_bytes().get(3) != Some(&b'-') {
            return reply;
        }
    }
}

fn cmd(r: &mut BufReader<TcpStream>, w: &mut TcpStream, line: &str) -> String {
    w.write_all(line.as_bytes()).unwrap();
    reply(r)
}

#[test]
fn the_default_configuration_delivers_to_a_maildir_in_the_current_folder() {
    let dir = tempfile::tempdir().unwrap();
    wait_for_free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_petreld"))
        .current_dir(dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let daemon = Daemon(child);
    // Read its log until it listens, then keep draining it so that it never blocks.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            eprintln!("petreld: {line}");
            if line.contains("listening")
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("petreld did not start listening (is port 2525 free?)");

    let stream = TcpStream::connect(("127.0.0.1", PORT)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut r = BufReader::new(stream.try_clone().unwrap());
    let mut w = stream;
    assert!(reply(&mut r).starts_with("220 "));
    assert!(cmd(&mut r, &mut w, "EHLO client.test\r\n").starts_with("250"));
    assert!(cmd(&mut r, &mut w, "MAIL FROM:<me@localhost>\r\n").starts_with("250"));
    let rcpt = cmd(&mut r, &mut w, "RCPT TO:<you@localhost>\r\n");
    assert!(rcpt.starts_with("250"), "{rcpt}");
    assert!(cmd(&mut r, &mut w, "DATA\r\n").starts_with("354"));
    let done = cmd(
        &mut r,
        &mut w,
        "Subject: hello from the README\r\n\r\nIt works.\r\n.\r\n",
    );
    assert!(done.starts_with("250 "), "{done}");
    assert!(cmd(&mut r, &mut w, "QUIT\r\n").starts_with("221"));

    // The delivery happens in the other process: its files are all there is to watch.
    let new = dir.path().join("petrel-data/mail/you/new");
    let deadline = Instant::now() + Duration::from_secs(30);
    let file = loop {
        if let Some(entry) = std::fs::read_dir(&new)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(Result::ok)
        {
            break entry.path();
        }
        assert!(
            Instant::now() < deadline,
            "nothing in {} after 30 s",
            new.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = std::fs::read_to_string(file).unwrap();
    assert!(text.starts_with("Return-Path: <me@localhost>\n"), "{text}");
    assert!(text.contains("Delivered-To: you@localhost\n"), "{text}");
    assert!(
        text.ends_with("Subject: hello from the README\n\nIt works.\n"),
        "{text}"
    );
    drop(daemon);
}
