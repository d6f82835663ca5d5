//! LMTP delivery against a scripted LMTP server, over TCP and over a unix socket.
//!
//! The server answers RCPT with 550 for local parts starting with `unknown`, and after the end
//! of data answers each accepted recipient: 452 for `full…`, 550 for `reject…`, 250 otherwise.

mod mda_support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mda_support::*;
use petrel_core::session::client::ClientTimeouts;
use petrel_daemon::mda::{DeliveryRequest, LmtpDest, Method, Options, Outcome, Recipient, deliver};
use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncWrite, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, UnixListener};

/// What the server saw.
#[derive(Debug, Default, Clone)]
struct Seen {
    commands: Vec<String>,
    data: Vec<u8>,
}

fn local_part(path: &str) -> String {
    let inner = path.trim_start_matches('<').trim_end_matches('>');
    inner.split('@').next().unwrap_or("").to_owned()
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(stream: S, seen: Arc<Mutex<Seen>>) {
    let mut stream = BufReader::new(stream);
    stream
        .write_all(b"220 lmtp.test LMTP ready\r\n")
        .await
        .unwrap();
    let mut accepted: Vec<String> = Vec::new();
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end().to_owned();
        seen.lock().unwrap().commands.push(line.clone());
        let upper = line.to_ascii_uppercase();
        let reply: String = if upper.starts_with("LHLO ") {
            "250-lmtp.test\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250 8BITMIME\r\n".into()
        } else if upper.starts_with("MAIL FROM:") {
            "250 2.1.0 Ok\r\n".into()
        } else if let Some(path) = line.get(8..).filter(|_| upper.starts_with("RCPT TO:")) {
            let local = local_part(path);
            if local.starts_with("unknown") {
                "550 5.1.1 <".to_owned() + &local + "> User doesn't exist\r\n"
            } else {
                accepted.push(local);
                "250 2.1.5 Ok\r\n".into()
            }
        } else if upper == "DATA" {
            stream
                .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                .await
                .unwrap();
            let mut data = Vec::new();
            loop {
                let mut l = Vec::new();
                stream.read_until(b'\n', &mut l).await.unwrap();
                if l == b".\r\n" {
                    break;
                }
                // Undo dot-stuffing.
                let l = if l.starts_with(b"..") {
                    l[1..].to_vec()
                } else {
                    l
                };
                data.extend(l);
            }
            seen.lock().unwrap().data = data;
            let mut replies = String::new();
            for local in accepted.drain(..) {
                replies += &if local.starts_with("full") {
                    format!("452 4.2.2 <{local}> Mailbox is full\r\n")
                } else if local.starts_with("reject") {
                    format!("550 5.7.1 <{local}> Message rejected\r\n")
                } else {
                    format!("250 2.0.0 <{local}> Saved\r\n")
                };
            }
            replies
        } else if upper == "QUIT" {
            stream.write_all(b"221 2.0.0 Bye\r\n").await.unwrap();
            return;
        } else {
            "500 5.5.2 What?\r\n".into()
        };
        stream.write_all(reply.as_bytes()).await.unwrap();
    }
}

async fn tcp_server() -> (LmtpDest, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let s = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream, s.clone()));
        }
    });
    (
        LmtpDest::Tcp {
            host: "127.0.0.1".into(),
            port,
        },
        seen,
    )
}

fn recipients(home: &std::path::Path, locals: &[&str]) -> Vec<Recipient> {
    locals
        .iter()
        .map(|l| {
            let mut user = virtual_user(home);
            user.name = format!("{l}-user");
            rcpt(&format!("{l}@example.org"), user)
        })
        .collect()
}

#[tokio::test]
async fn per_recipient_replies_over_tcp() {
    let home = tempfile::tempdir().unwrap();
    let (dest, seen) = tcp_server().await;
    let rcpts = recipients(home.path(), &["ok", "full", "reject", "unknown", "also-ok"]);
    let method = Method::Lmtp {
        dest,
        rcpt_to: true,
    };
    let outcomes = deliver(DeliveryRequest::new(
        "alice@example.org",
        MESSAGE,
        &rcpts,
        &method,
    ))
    .await;
    assert_eq!(outcomes.len(), 5);
    assert_eq!(outcomes[0], Outcome::Delivered);
    assert!(
        matches!(&outcomes[1], Outcome::Temporary(r) if r.contains("452 4.2.2")),
        "{outcomes:?}"
    );
    assert!(
        matches!(&outcomes[2], Outcome::Permanent(r) if r.contains("550 5.7.1")),
        "{outcomes:?}"
    );
    assert!(
        matches!(&outcomes[3], Outcome::Permanent(r) if r.contains("550 5.1.1")),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[4], Outcome::Delivered);

    let seen = seen.lock().unwrap().clone();
    assert!(seen.commands[0].starts_with("LHLO "));
    assert_eq!(seen.commands[1], "MAIL FROM:<alice@example.org>");
    assert_eq!(seen.commands[2], "RCPT TO:<ok@example.org>");
    assert_eq!(seen.commands[5], "RCPT TO:<unknown@example.org>");
    assert_eq!(seen.commands.last().unwrap(), "QUIT");
    // The message arrives as queued, dot-stuffing undone, without added trace fields.
    assert_eq!(seen.data, MESSAGE);
}

#[tokio::test]
async fn local_user_names_over_a_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("lmtp.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let s = seen.clone();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        serve(stream, s).await;
    });
    let rcpts = recipients(dir.path(), &["bob", "fullbox"]);
    let method = Method::Lmtp {
        dest: LmtpDest::parse(socket.to_str().unwrap()).unwrap(),
        rcpt_to: false,
    };
    let outcomes = deliver(DeliveryRequest::new("", MESSAGE, &rcpts, &method)).await;
    assert_eq!(outcomes[0], Outcome::Delivered);
    assert!(
        matches!(&outcomes[1], Outcome::Temporary(_)),
        "{outcomes:?}"
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.commands[1], "MAIL FROM:<>");
    assert_eq!(seen.commands[2], "RCPT TO:<bob-user>");
    assert_eq!(seen.commands[3], "RCPT TO:<fullbox-user>");
}

#[tokio::test]
async fn unreachable_servers_are_temporary() {
    let home = tempfile::tempdir().unwrap();
    let rcpts = recipients(home.path(), &["a", "b"]);

    // Nothing listens on the port any more.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let method = Method::Lmtp {
        dest: LmtpDest::Tcp {
            host: "127.0.0.1".into(),
            port,
        },
        rcpt_to: true,
    };
    let outcomes = deliver(DeliveryRequest::new("a@b.c", MESSAGE, &rcpts, &method)).await;
    for o in &outcomes {
        assert!(
            matches!(o, Outcome::Temporary(r) if r.contains("cannot connect")),
            "{o:?}"
        );
    }

    // No such socket.
    let method = Method::Lmtp {
        dest: LmtpDest::Unix(home.path().join("missing.sock")),
        rcpt_to: false,
    };
    let outcomes = deliver(DeliveryRequest::new("a@b.c", MESSAGE, &rcpts, &method)).await;
    assert!(
        outcomes.iter().all(|o| matches!(o, Outcome::Temporary(_))),
        "{outcomes:?}"
    );
}

#[tokio::test]
async fn silent_and_vanishing_servers_are_temporary() {
    let home = tempfile::tempdir().unwrap();
    let rcpts = recipients(home.path(), &["a"]);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        // First connection: never says a word. Second: greets, then hangs up at DATA.
        let (_silent, _) = listener.accept().await.unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        let mut stream = BufReader::new(stream);
        stream.write_all(b"220 hi\r\n").await.unwrap();
        loop {
            let mut line = String::new();
            if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                break;
            }
            if line.starts_with("LHLO") {
                stream.write_all(b"250 hi\r\n").await.unwrap();
            } else if line.starts_with("DATA") {
                break;
            } else {
                stream.write_all(b"250 ok\r\n").await.unwrap();
            }
        }
        drop(stream);
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(_silent);
    });
    let options = Options {
        lmtp_timeouts: ClientTimeouts {
            greeting: Duration::from_millis(300),
            ..ClientTimeouts::default()
        },
        ..Options::default()
    };
    let method = Method::Lmtp {
        dest: LmtpDest::Tcp {
            host: "127.0.0.1".into(),
            port,
        },
        rcpt_to: true,
    };
    let mut req = DeliveryRequest::new("a@b.c", MESSAGE, &rcpts, &method);
    req.options = &options;
    let started = Instant::now();
    let outcomes = deliver(req).await;
    assert!(
        matches!(&outcomes[0], Outcome::Temporary(r) if r.contains("timeout")),
        "{outcomes:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));

    let outcomes = deliver(req).await;
    assert!(
        matches!(&outcomes[0], Outcome::Temporary(r) if r.contains("connection lost")),
        "{outcomes:?}"
    );
}

#[tokio::test]
async fn unusable_addresses_fail_alone() {
    let home = tempfile::tempdir().unwrap();
    let (dest, _seen) = tcp_server().await;
    let mut rcpts = recipients(home.path(), &["ok"]);
    rcpts.push(rcpt("not an address", virtual_user(home.path())));
    let method = Method::Lmtp {
        dest,
        rcpt_to: true,
    };
    let outcomes = deliver(DeliveryRequest::new("a@b.c", MESSAGE, &rcpts, &method)).await;
    assert_eq!(outcomes[0], Outcome::Delivered);
    assert!(
        matches!(&outcomes[1], Outcome::Permanent(r) if r.contains("unusable address")),
        "{outcomes:?}"
    );
}
