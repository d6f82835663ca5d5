//! End to end, in-process daemon over loopback: SMTP in, then local delivery into an mbox and
//! to an LMTP server. (SMTP in → maildir, byte for byte, is in `petreld.rs`.)

mod e2e_support;

use std::sync::{Arc, Mutex};

use e2e_support::*;
use petrel_daemon::queue::scheduler::QueueEvent;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// Accounts for bob and carol, delivered as the daemon itself (`-:-`).
const ACCOUNTS: &str = "table accounts { \"bob\" = \"-:-:.\", \"carol\" = \"-:-:.\" }\n";

#[tokio::test]
async fn smtp_in_to_mbox() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf = format!(
        "listen on 127.0.0.1 port {port} hostname mx.test\n{ACCOUNTS}\
         action \"mbox\" mbox userbase <accounts>\n\
         match from any for domain \"mx.test\" action \"mbox\"\n"
    );
    let spool = dir.path().join("spool");
    std::fs::create_dir(&spool).unwrap();
    let d = start(&conf, dir.path(), |o| o.mail_spool = spool.clone()).await;
    let mut events = d.engine.scheduler().subscribe();

    for (n, body) in ["first\r\nFrom the start\r\n", "second\r\n..dotted\r\n"]
        .iter()
        .enumerate()
    {
        let content = format!("Subject: mbox {n}\r\n\r\n{body}");
        let reply = Client::send_one(d.addr, "alice@client.test", &["bob@mx.test"], &content).await;
        assert!(reply.starts_with("250 2.0.0 "), "{reply}");
        until(&mut events, |e| matches!(e, QueueEvent::Delivered(_))).await;
    }

    let mbox = String::from_utf8(std::fs::read(spool.join("bob")).unwrap()).unwrap();
    // Two entries, each starting with a "From " separator line naming the sender.
    let entries: Vec<&str> = mbox
        .split("\n\nFrom alice@client.test ")
        .collect::<Vec<_>>();
    assert!(mbox.starts_with("From alice@client.test "), "{mbox}");
    assert_eq!(entries.len(), 2, "{mbox}");
    assert!(
        mbox.contains("Return-Path: <alice@client.test>\n"),
        "{mbox}"
    );
    assert!(mbox.contains("Delivered-To: bob@mx.test\n"), "{mbox}");
    assert!(
        mbox.contains("\tby mx.test (Petrel) with ESMTP id "),
        "{mbox}"
    );
    // mboxrd: a body line starting with "From " is quoted; dot-stuffing is undone.
    assert!(
        entries[0].ends_with("Subject: mbox 0\n\nfirst\n>From the start"),
        "{mbox}"
    );
    assert!(
        entries[1].ends_with("Subject: mbox 1\n\nsecond\n.dotted\n\n"),
        "{mbox}"
    );
    assert!(!mbox.contains('\r'), "LF line endings in an mbox");
    d.engine.shutdown().await;
}

/// What the LMTP server saw of one transaction.
#[derive(Clone, Debug, Default)]
struct Transaction {
    from: String,
    rcpts: Vec<String>,
    data: Vec<u8>,
}

/// A minimal LMTP server: accepts everything and answers the end of data once per recipient.
async fn lmtp_server() -> (u16, Arc<Mutex<Vec<Transaction>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let (r, mut w) = stream.into_split();
                let mut r = BufReader::new(r);
                w.write_all(b"220 lmtp.test LMTP\r\n").await.unwrap();
                let mut t = Transaction::default();
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let upper = line.to_ascii_uppercase();
                    let reply: String = if upper.starts_with("LHLO") {
                        "250-lmtp.test\r\n250-ENHANCEDSTATUSCODES\r\n250 8BITMIME\r\n".into()
                    } else if upper.starts_with("MAIL FROM:") {
                        t.from = line[10..].trim().to_owned();
                        "250 2.1.0 ok\r\n".into()
                    } else if upper.starts_with("RCPT TO:") {
                        t.rcpts.push(line[8..].trim().to_owned());
                        "250 2.1.5 ok\r\n".into()
                    } else if upper.starts_with("DATA") {
                        w.write_all(b"354 go ahead\r\n").await.unwrap();
                        loop {
                            let mut l = Vec::new();
                            r.read_until(b'\n', &mut l).await.unwrap();
                            if l == b".\r\n" {
                                break;
                            }
                            let l = if l.starts_with(b"..") {
                                &l[1..]
                            } else {
                                &l[..]
                            };
                            t.data.extend_from_slice(l);
                        }
                        let replies = "250 2.0.0 delivered\r\n".repeat(t.rcpts.len());
                        log.lock().unwrap().push(std::mem::take(&mut t));
                        replies
                    } else if upper.starts_with("RSET") {
                        t = Transaction::default();
                        "250 2.0.0 ok\r\n".into()
                    } else if upper.starts_with("QUIT") {
                        let _ = w.write_all(b"221 2.0.0 bye\r\n").await;
                        return;
                    } else {
                        "500 5.5.1 what\r\n".into()
                    };
                    w.write_all(reply.as_bytes()).await.unwrap();
                }
            });
        }
    });
    (port, seen)
}

#[tokio::test]
async fn smtp_in_to_lmtp() {
    let (lmtp_port, seen) = lmtp_server().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf = format!(
        "listen on 127.0.0.1 port {port} hostname mx.test\n{ACCOUNTS}\
         action \"lmtp\" lmtp \"127.0.0.1:{lmtp_port}\" rcpt-to userbase <accounts>\n\
         match from any for domain \"mx.test\" action \"lmtp\"\n"
    );
    let d = start(&conf, dir.path(), |_| {}).await;
    let mut events = d.engine.scheduler().subscribe();
    let content = "Subject: over lmtp\r\n\r\nline\r\n..dot\r\n";
    let reply = Client::send_one(
        d.addr,
        "alice@client.test",
        &["bob@mx.test", "carol@mx.test"],
        content,
    )
    .await;
    assert!(reply.starts_with("250 2.0.0 "), "{reply}");
    until(&mut events, |e| matches!(e, QueueEvent::Delivered(_))).await;
    until(&mut events, |e| matches!(e, QueueEvent::Delivered(_))).await;

    let seen = seen.lock().unwrap().clone();
    let mut rcpts: Vec<String> = seen.iter().flat_map(|t| t.rcpts.clone()).collect();
    rcpts.sort();
    assert_eq!(rcpts, ["<bob@mx.test>", "<carol@mx.test>"]);
    for t in &seen {
        assert_eq!(t.from, "<alice@client.test>");
        let text = String::from_utf8(t.data.clone()).unwrap();
        // The LMTP server is the final agent: it gets the queued message as it is (CRLF, our
        // Received header on top), with dot-stuffing undone.
        assert!(text.starts_with("Received: from client.test "), "{text}");
        assert!(
            text.ends_with("Subject: over lmtp\r\n\r\nline\r\n.dot\r\n"),
            "{text}"
        );
    }
    d.engine.shutdown().await;
}
