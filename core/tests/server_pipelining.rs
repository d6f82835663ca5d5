//! Ordering under PIPELINING with answers the shell gives late, input in any chunking,
//! timeouts and shutdown.
#[path = "server_util.rs"]
mod util;

use petrel_core::session::harness::ServerHarness;
use petrel_core::session::server::{Request, ServerConfig, ServerEvent};
use petrel_core::session::{Decision, RequestId};
use petrel_core::smtp::{EnhancedCode, Reply};
use std::time::Duration;
use util::{Driver, config, harness, refuse};

#[test]
fn a_pipelined_transaction_waits_for_each_answer_in_turn() {
    let mut d = Driver::greeted(config());
    d.take_events();
    d.input(
        b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n",
    );
    // Only the first command is being decided; nothing is answered yet.
    assert_eq!(d.pending.len(), 1);
    assert!(matches!(d.peek(), Some(Request::Mail { .. })));
    assert_eq!(d.take_output(), "");

    d.accept();
    assert_eq!(d.take_output(), "250 2.1.0 Sender ok\r\n");
    assert!(
        matches!(d.peek(), Some(Request::Rcpt { to, .. }) if to.to_string() == "<b@example.org>")
    );
    d.answer(refuse(550, (5, 1, 1), "No such user"));
    assert_eq!(d.take_output(), "550 5.1.1 No such user\r\n");
    assert!(
        matches!(d.peek(), Some(Request::Rcpt { to, .. }) if to.to_string() == "<c@example.org>")
    );
    d.accept();
    assert_eq!(d.take_output(), "250 2.1.5 Recipient ok\r\n");
    assert_eq!(d.accept(), Request::Data);
    assert_eq!(d.take_output(), "354 End data with <CR><LF>.<CR><LF>\r\n");
    d.input(b"hi\r\n.\r\n");
    let Some(Request::Commit { envelope, .. }) = d.peek() else {
        panic!("{:?}", d.pending)
    };
    assert_eq!(envelope.rcpts.len(), 1);
    assert_eq!(envelope.rcpts[0].0.to_string(), "<c@example.org>");
    // Each request was issued only after the previous one was answered.
    let requests: Vec<&Request> = d
        .events
        .iter()
        .filter_map(|e| match e {
            ServerEvent::Request(_, r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(requests.len(), 5);
}

#[test]
fn nothing_after_an_outstanding_request_is_processed_early() {
    let mut d = Driver::greeted(config());
    d.take_events();
    d.input(b"MAIL FROM:<a@example.org>\r\n");
    // RSET, NOOP, VRFY and even QUIT wait behind the MAIL decision.
    d.input(b"RSET\r\nNOOP\r\n");
    d.input(b"VRFY x\r\nQUIT\r\n");
    assert_eq!(d.take_output(), "");
    assert!(!d.closed());
    assert_eq!(d.events.len(), 1);
    d.accept();
    assert_eq!(
        d.take_output(),
        "250 2.1.0 Sender ok\r\n250 2.0.0 Reset state\r\n250 2.0.0 Ok\r\n\
         252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery\r\n\
         221 2.0.0 Bye\r\n"
    );
    assert!(d.closed());
}

#[test]
fn replies_stay_in_order_over_many_late_answers() {
    let mut d = Driver::greeted(config());
    let mut batch = b"MAIL FROM:<a@example.org>\r\n".to_vec();
    for i in 0..30 {
        batch.extend_from_slice(format!("RCPT TO:<r{i}@example.org>\r\n").as_bytes());
    }
    batch.extend_from_slice(b"NOOP\r\n");
    d.input(&batch);
    d.accept();
    let mut expected = String::from("250 2.1.0 Sender ok\r\n");
    for i in 0..30 {
        let Some(Request::Rcpt { to, .. }) = d.peek() else {
            panic!("{:?}", d.pending)
        };
        assert_eq!(to.to_string(), format!("<r{i}@example.org>"));
        if i % 3 == 0 {
            d.answer(refuse(450, (4, 2, 1), "Busy"));
            expected.push_str("450 4.2.1 Busy\r\n");
        } else {
            d.accept();
            expected.push_str("250 2.1.5 Recipient ok\r\n");
        }
    }
    expected.push_str("250 2.0.0 Ok\r\n");
    assert_eq!(d.take_output(), expected);
}

#[test]
fn an_answer_to_another_request_is_ignored() {
    let mut d = Driver::greeted(config());
    d.input(b"MAIL FROM:<a@example.org>\r\n");
    let (id, _) = d.pending[0].clone();
    d.session
        .answer(RequestId(id.0 + 7), Decision::Accept, d.now);
    d.session
        .answer(RequestId(id.0.wrapping_sub(1)), Decision::Accept, d.now);
    d.drain();
    assert_eq!(d.take_output(), "");
    d.accept();
    assert_eq!(d.take_output(), "250 2.1.0 Sender ok\r\n");
    // Answering the same request twice does nothing either.
    d.session.answer(id, Decision::Accept, d.now);
    d.drain();
    assert_eq!(d.take_output(), "");
}

#[test]
fn a_whole_session_in_one_write() {
    let mut h = harness(config());
    let out = h.send(
        b"EHLO client.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n\
          RCPT TO:<c@example.org>\r\nDATA\r\n",
    );
    let text = String::from_utf8_lossy(&out);
    assert!(text.ends_with(
        "250 HELP\r\n250 2.1.0 Sender ok\r\n250 2.1.5 Recipient ok\r\n250 2.1.5 Recipient ok\r\n\
         354 End data with <CR><LF>.<CR><LF>\r\n"
    ));
    assert_eq!(
        h.send(
            b"one\r\n.\r\nMAIL FROM:<>\r\nRCPT TO:<d@example.org>\r\nBDAT 3 LAST\r\ntwoQUIT\r\n"
        ),
        b"250 2.0.0 Message accepted for delivery\r\n250 2.1.0 Sender ok\r\n\
          250 2.1.5 Recipient ok\r\n250 2.0.0 Message accepted for delivery\r\n221 2.0.0 Bye\r\n"
    );
    assert_eq!(h.stored.len(), 2);
    assert_eq!(h.stored[0].content, b"one\r\n");
    assert_eq!(h.stored[1].content, b"two");
}

/// A session touching every mode: commands, DATA with dots, BDAT, refusals, RSET, QUIT.
const SESSION: &[u8] = b"EHLO client.example\r\n\
    NOOP\r\n\
    MAIL FROM:<a@example.org> SIZE=100\r\n\
    RCPT TO:<b@example.org>\r\n\
    RCPT TO:<bad@example.org>\r\n\
    DATA\r\n\
    Subject: x\r\n\r\n..dot\r\n.\r\n\
    MAIL FROM:<a@example.org>\r\n\
    FOO\r\n\
    RCPT TO:<c@example.org> NOTIFY=NEVER\r\n\
    BDAT 5\r\nab\r\nc\
    BDAT 0 LAST\r\n\
    MAIL FROM:<a@example.org>\r\n\
    RSET\r\n\
    VRFY x\r\n\
    QUIT\r\n";

fn policy() -> petrel_core::session::harness::Policy {
    Box::new(|r| match r {
        Request::Rcpt { to, .. } if to.to_string() == "<bad@example.org>" => {
            refuse(550, (5, 1, 1), "No such user")
        }
        _ => Decision::Accept,
    })
}

fn run(pieces: &[&[u8]]) -> (Vec<u8>, ServerHarness) {
    let mut h = ServerHarness::new(config(), policy());
    let mut out = h.greeting.clone();
    for piece in pieces {
        out.extend(h.send(piece));
    }
    (out, h)
}

#[test]
fn the_output_does_not_depend_on_how_the_input_is_split() {
    let (whole, h) = run(&[SESSION]);
    let text = String::from_utf8_lossy(&whole);
    assert_eq!(
        text,
        "220 localhost ESMTP Petrel\r\n\
         250-localhost Hello client.example [192.0.2.1], pleased to meet you\r\n\
         250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250-SIZE 36700160\r\n250-PIPELINING\r\n\
         250-CHUNKING\r\n250-BINARYMIME\r\n250-SMTPUTF8\r\n250-DSN\r\n250 HELP\r\n\
         250 2.0.0 Ok\r\n\
         250 2.1.0 Sender ok\r\n\
         250 2.1.5 Recipient ok\r\n\
         550 5.1.1 No such user\r\n\
         354 End data with <CR><LF>.<CR><LF>\r\n\
         250 2.0.0 Message accepted for delivery\r\n\
         250 2.1.0 Sender ok\r\n\
         500 5.5.1 Command unrecognized\r\n\
         250 2.1.5 Recipient ok\r\n\
         250 2.0.0 5 octets received\r\n\
         250 2.0.0 Message accepted for delivery\r\n\
         250 2.1.0 Sender ok\r\n\
         250 2.0.0 Reset state\r\n\
         252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery\r\n\
         221 2.0.0 Bye\r\n"
    );
    let stored: Vec<Vec<u8>> = h.stored.iter().map(|s| s.content.clone()).collect();
    assert_eq!(
        stored,
        [b"Subject: x\r\n\r\n.dot\r\n".to_vec(), b"ab\r\nc".to_vec()]
    );

    // One byte at a time.
    let bytes: Vec<&[u8]> = SESSION.chunks(1).collect();
    let (out, h2) = run(&bytes);
    assert_eq!(out, whole);
    assert_eq!(h2.stored, h.stored);
    assert_eq!(h2.requests, h.requests);

    // Two pieces, split at every position.
    for split in 0..=SESSION.len() {
        let (out, h2) = run(&[&SESSION[..split], &SESSION[split..]]);
        assert_eq!(out, whole, "split at {split}");
        assert_eq!(h2.stored, h.stored, "split at {split}");
    }
}

// ----- timeouts -----

#[test]
fn an_idle_client_is_dropped_after_five_minutes() {
    let mut h = harness(config());
    h.line("EHLO client.example");
    assert_eq!(h.advance(Duration::from_secs(299)), b"");
    // Input restarts the timer.
    h.line("NOOP");
    assert_eq!(h.advance(Duration::from_secs(299)), b"");
    assert_eq!(
        h.advance(Duration::from_secs(1)),
        b"421 4.4.2 localhost Error: timeout exceeded\r\n"
    );
    assert!(h.closed);
}

#[test]
fn the_data_timeout_applies_while_reading_content() {
    let cfg = ServerConfig {
        command_timeout: Duration::from_secs(300),
        data_timeout: Duration::from_secs(60),
        ..config()
    };
    // DATA entered through a late answer: the data timeout runs from the 354.
    let mut d = Driver::greeted(cfg);
    d.input(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n");
    d.accept();
    d.accept();
    d.advance(1000);
    d.accept();
    assert_eq!(
        d.session.poll_timeout(),
        Some(d.now + Duration::from_secs(60))
    );
    d.input(b"partial content\r\n");
    d.take_output();
    d.take_events();
    d.advance(59);
    assert_eq!(d.take_output(), "");
    d.advance(1);
    assert_eq!(
        d.take_output(),
        "421 4.4.2 localhost Error: timeout exceeded\r\n"
    );
    assert_eq!(
        d.take_events(),
        [ServerEvent::DataAborted, ServerEvent::Close]
    );
}

#[test]
fn the_command_timeout_comes_back_after_the_end_of_data() {
    let cfg = ServerConfig {
        command_timeout: Duration::from_secs(300),
        data_timeout: Duration::from_secs(60),
        ..config()
    };
    let mut d = Driver::greeted(cfg);
    d.input(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n");
    d.accept();
    d.accept();
    d.accept();
    d.input(b".\r\n");
    d.accept();
    assert_eq!(
        d.session.poll_timeout(),
        Some(d.now + Duration::from_secs(300))
    );
    // BDAT octets are data too.
    d.input(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nBDAT 10\r\nabc");
    d.accept();
    d.accept();
    d.accept();
    assert_eq!(
        d.session.poll_timeout(),
        Some(d.now + Duration::from_secs(60))
    );
}

#[test]
fn there_is_no_timeout_while_a_request_is_outstanding() {
    let mut d = Driver::greeted(config());
    d.input(b"MAIL FROM:<a@example.org>\r\n");
    assert_eq!(d.session.poll_timeout(), None);
    d.advance(24 * 3600);
    assert_eq!(d.take_output(), "");
    assert!(!d.closed());
    // The timer starts again when the shell answers.
    d.accept();
    assert_eq!(
        d.session.poll_timeout(),
        Some(d.now + Duration::from_secs(300))
    );
    // An early call to handle_timeout is harmless.
    d.advance(10);
    assert_eq!(d.take_output(), "250 2.1.0 Sender ok\r\n");
    assert!(!d.closed());
}

#[test]
fn a_timeout_while_waiting_for_a_sasl_response_closes_with_421() {
    let mut h = util::ehlo(ServerConfig {
        auth: petrel_core::session::server::AuthPolicy::Optional,
        auth_plaintext: true,
        ..config()
    });
    assert_eq!(h.line("AUTH LOGIN"), "334 VXNlcm5hbWU6\r\n");
    assert_eq!(
        h.advance(Duration::from_secs(300)),
        b"421 4.4.2 localhost Error: timeout exceeded\r\n"
    );
    assert!(h.closed);
}

// ----- shutdown -----

#[test]
fn shutdown_says_421_and_closes() {
    let mut h = harness(config());
    h.line("EHLO client.example");
    assert_eq!(
        h.shutdown(),
        b"421 4.3.2 localhost Service shutting down, closing channel\r\n"
    );
    assert!(h.closed);
    assert_eq!(h.aborted, 0);
    assert_eq!(h.shutdown(), b"");
}

#[test]
fn shutdown_during_data_abandons_the_message() {
    let mut h = util::in_transaction(config());
    h.line("DATA");
    h.send(b"half a message\r\n");
    assert_eq!(
        h.shutdown(),
        b"421 4.3.2 localhost Service shutting down, closing channel\r\n"
    );
    assert_eq!(h.aborted, 1);
    assert!(h.stored.is_empty());
}

#[test]
fn shutdown_while_the_commit_is_pending_abandons_the_message() {
    let mut d = Driver::greeted(config());
    d.input(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n");
    d.accept();
    d.accept();
    d.accept();
    d.input(b"x\r\n.\r\n");
    d.take_output();
    d.take_events();
    d.session.shutdown();
    d.drain();
    assert_eq!(
        d.take_output(),
        "421 4.3.2 localhost Service shutting down, closing channel\r\n"
    );
    assert_eq!(
        d.take_events(),
        [ServerEvent::DataAborted, ServerEvent::Close]
    );
    // The shell's late answer changes nothing.
    d.accept();
    assert_eq!(d.take_output(), "");
}

#[test]
fn shutdown_before_the_greeting_says_421() {
    let mut d = Driver::new(config());
    d.session.shutdown();
    d.drain();
    assert_eq!(
        d.take_output(),
        "421 4.3.2 localhost Service shutting down, closing channel\r\n"
    );
    assert!(d.closed());
}

#[test]
fn disconnect_during_commit_replies_and_closes() {
    let mut d = Driver::greeted(config());
    d.input(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n");
    d.accept();
    d.accept();
    d.accept();
    d.input(b"x\r\n.\r\nQUIT\r\n");
    d.take_output();
    d.answer(Decision::Disconnect(Reply::new(
        421,
        EnhancedCode::new(4, 3, 0),
        "Queue unavailable",
    )));
    assert_eq!(d.take_output(), "421 4.3.0 Queue unavailable\r\n");
    assert!(d.closed());
}
