//! A first end-to-end check of both machines together.
use std::sync::Arc;

use petrel_core::session::client::{ClientConfig, Message, OutcomeKind};
use petrel_core::session::harness::{Pair, ServerHarness, accept_all};
use petrel_core::session::server::ServerConfig;
use petrel_core::smtp::{ForwardPath, MailParams, Mailbox, RcptParams, ReversePath};

fn mailbox(s: &str) -> Mailbox {
    Mailbox::parse(s, false).unwrap()
}

#[test]
fn server_accepts_a_message() {
    let mut h = ServerHarness::new(ServerConfig::default(), accept_all());
    assert!(String::from_utf8_lossy(&h.greeting).starts_with("220 localhost ESMTP Petrel"));
    assert!(h.line("EHLO client.example").contains("250 HELP"));
    assert_eq!(
        h.line("MAIL FROM:<a@example.org>"),
        "250 2.1.0 Sender ok\r\n"
    );
    assert_eq!(
        h.line("RCPT TO:<b@example.org>"),
        "250 2.1.5 Recipient ok\r\n"
    );
    assert!(h.line("DATA").starts_with("354 "));
    let reply = h.send(b"Subject: hi\r\n\r\n..leading dot\r\n.\r\n");
    assert_eq!(reply, b"250 2.0.0 Message accepted for delivery\r\n");
    assert_eq!(h.stored.len(), 1);
    assert_eq!(h.stored[0].content, b"Subject: hi\r\n\r\n.leading dot\r\n");
    assert_eq!(h.line("QUIT"), "221 2.0.0 Bye\r\n");
    assert!(h.closed);
}

#[test]
fn client_delivers_to_server() {
    for pipelining in [false, true] {
        for chunking in [false, true] {
            let client = ClientConfig {
                pipelining,
                chunking,
                ..ClientConfig::default()
            };
            let mut pair = Pair::new(client, ServerConfig::default(), accept_all());
            pair.chunk = 7;
            let content: Arc<[u8]> = Arc::from(&b"Subject: x\r\n\r\n.dot\r\nbody\r\n"[..]);
            pair.send(Message {
                from: ReversePath::Mailbox(mailbox("a@example.org")),
                params: MailParams::default(),
                rcpts: vec![
                    (
                        ForwardPath::Mailbox(mailbox("b@example.org")),
                        RcptParams::default(),
                    ),
                    (
                        ForwardPath::Mailbox(mailbox("c@example.org")),
                        RcptParams::default(),
                    ),
                ],
                content: content.clone(),
            });
            pair.quit();
            pair.drive();
            assert_eq!(
                pair.reports.len(),
                1,
                "pipelining={pipelining} chunking={chunking}"
            );
            assert!(
                pair.reports[0]
                    .rcpts
                    .iter()
                    .all(|o| o.kind == OutcomeKind::Delivered)
            );
            assert_eq!(pair.server.stored.len(), 1);
            assert_eq!(&pair.server.stored[0].content[..], &content[..]);
            assert!(pair.client.is_closed() && pair.server.closed);
        }
    }
}

/// Found by fuzzing: content received in the same input as a QUIT must not be handed to the
/// shell after `Close`; it is abandoned (`DataAborted`) before it.
#[test]
fn nothing_follows_close() {
    use petrel_core::Time;
    use petrel_core::session::Decision;
    use petrel_core::session::server::{ConnectionInfo, ServerEvent, ServerSession};
    let mut s = ServerSession::new(
        Arc::new(ServerConfig::default()),
        ConnectionInfo::default(),
        Time::ZERO,
    );
    let mut events = Vec::new();
    let pump = |s: &mut ServerSession, events: &mut Vec<ServerEvent>| {
        while let Some(e) = s.poll_event() {
            if let ServerEvent::Request(id, _) = &e {
                s.answer(*id, Decision::Accept, Time::ZERO);
            }
            events.push(e);
        }
    };
    pump(&mut s, &mut events);
    for line in [
        "EHLO c.example\r\n",
        "MAIL FROM:<a@example.org>\r\n",
        "RCPT TO:<b@example.org>\r\n",
    ] {
        s.handle_input(line.as_bytes(), Time::ZERO);
        pump(&mut s, &mut events);
    }
    events.clear();
    s.handle_input(b"BDAT 5\r\nhelloQUIT\r\n", Time::ZERO);
    pump(&mut s, &mut events);
    let close = events
        .iter()
        .position(|e| *e == ServerEvent::Close)
        .expect("closed");
    assert_eq!(close, events.len() - 1, "{events:?}");
    assert!(events.contains(&ServerEvent::DataAborted), "{events:?}");
}
