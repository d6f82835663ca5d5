//! Message content: DATA (dot transparency, end of data, size and line limits, bare line
//! endings and every SMTP smuggling form) and BDAT (RFC 3030 chunking).
#[path = "server_util.rs"]
mod util;

use petrel_core::session::Decision;
use petrel_core::session::server::{Request, ServerConfig, ServerEvent};
use petrel_core::smtp::{BareNewline, EnhancedCode, Reply};
use util::{Driver, codes, config, ehlo, harness, in_transaction, refuse};

const ACCEPTED: &str = "250 2.0.0 Message accepted for delivery\r\n";
const BARE_REFUSED: &str =
    "550 5.5.2 Message refused: bare CR or LF in message; lines must end with CRLF\r\n";

fn mail_requests(requests: &[Request]) -> usize {
    requests
        .iter()
        .filter(|r| matches!(r, Request::Mail { .. }))
        .count()
}

// ----- DATA -----

#[test]
fn data_content_reaches_the_shell_byte_for_byte() {
    let mut d = Driver::greeted(config());
    d.input(b"MAIL FROM:<a@example.org>\r\n");
    d.accept();
    d.input(b"RCPT TO:<b@example.org>\r\n");
    d.accept();
    d.input(b"DATA\r\n");
    assert_eq!(d.accept(), Request::Data);
    assert_eq!(
        d.take_output(),
        "250 2.1.0 Sender ok\r\n250 2.1.5 Recipient ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
    );
    d.take_events();
    let wire = b"Subject: dots\r\n\r\n..one\r\n.two\r\n...\r\n\x00\xff binary \t\r\n\r\n.\r\n";
    d.input(wire);
    // Dots unstuffed, nothing else touched; the chunks come before the Commit request.
    let content = d.content();
    assert_eq!(
        content,
        b"Subject: dots\r\n\r\n.one\r\ntwo\r\n..\r\n\x00\xff binary \t\r\n\r\n"
    );
    let last = d.events.last().unwrap();
    let ServerEvent::Request(_, Request::Commit { envelope, size }) = last else {
        panic!("{:?}", d.events)
    };
    assert_eq!(*size, content.len() as u64);
    assert_eq!(envelope.from.to_string(), "<a@example.org>");
    assert_eq!(envelope.rcpts.len(), 1);
    assert!(
        d.events[..d.events.len() - 1]
            .iter()
            .all(|e| matches!(e, ServerEvent::DataChunk(_)))
    );
}

#[test]
fn the_message_is_acknowledged_only_after_the_commit_answer() {
    let mut d = Driver::greeted(config());
    d.input(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n");
    d.accept();
    d.accept();
    d.accept();
    d.take_output();
    d.input(b"hello\r\n.\r\n");
    assert!(matches!(d.peek(), Some(Request::Commit { .. })));
    // No reply, and no timeout, while the shell makes the message durable.
    assert_eq!(d.take_output(), "");
    assert_eq!(d.session.poll_timeout(), None);
    d.advance(3600);
    assert_eq!(d.take_output(), "");
    d.answer(Decision::Reply(Reply::new(
        250,
        EnhancedCode::new(2, 0, 0),
        "Ok: queued as 4F2A",
    )));
    assert_eq!(d.take_output(), "250 2.0.0 Ok: queued as 4F2A\r\n");
    assert!(d.session.poll_timeout().is_some());
}

#[test]
fn a_refused_commit_is_reported_and_the_session_goes_on() {
    let mut h = util::after_ehlo(
        config(),
        Box::new(|r| match r {
            Request::Commit { .. } => refuse(451, (4, 3, 0), "Queue write failed"),
            _ => Decision::Accept,
        }),
    );
    h.line("MAIL FROM:<a@example.org>");
    h.line("RCPT TO:<b@example.org>");
    h.line("DATA");
    assert_eq!(h.send(b"x\r\n.\r\n"), b"451 4.3.0 Queue write failed\r\n");
    assert!(h.stored.is_empty());
    assert_eq!(
        h.line("MAIL FROM:<a@example.org>"),
        "250 2.1.0 Sender ok\r\n"
    );
}

#[test]
fn an_empty_message_is_a_message() {
    let mut h = in_transaction(config());
    h.line("DATA");
    assert_eq!(h.send(b".\r\n"), ACCEPTED.as_bytes());
    assert_eq!(h.stored[0].content, b"");
}

#[test]
fn data_refused_by_the_shell_keeps_the_transaction() {
    let mut h = util::after_ehlo(
        config(),
        Box::new(|r| match r {
            Request::Data => refuse(451, (4, 7, 1), "Not now"),
            _ => Decision::Accept,
        }),
    );
    h.line("MAIL FROM:<a@example.org>");
    h.line("RCPT TO:<b@example.org>");
    assert_eq!(h.line("DATA"), "451 4.7.1 Not now\r\n");
    // Still in command mode: the next line is a command, not content.
    assert_eq!(h.line("NOOP"), "250 2.0.0 Ok\r\n");
    assert_eq!(
        h.line("RCPT TO:<c@example.org>"),
        "250 2.1.5 Recipient ok\r\n"
    );
}

#[test]
fn a_custom_354_from_the_shell_is_used() {
    let mut d = Driver::greeted(config());
    d.input(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n");
    d.accept();
    d.accept();
    d.answer(Decision::Reply(Reply::plain(354, "Go ahead")));
    assert!(d.take_output().ends_with("354 Go ahead\r\n"));
    d.input(b"x\r\n.\r\n");
    assert!(matches!(d.peek(), Some(Request::Commit { .. })));
}

#[test]
fn data_can_arrive_one_byte_at_a_time() {
    let mut d = Driver::greeted(config());
    d.input_bytewise(b"MAIL FROM:<a@example.org>\r\n");
    d.accept();
    d.input_bytewise(b"RCPT TO:<b@example.org>\r\n");
    d.accept();
    d.input_bytewise(b"DATA\r\n");
    d.accept();
    d.take_events();
    d.input_bytewise(b"a\r\n..b\r\n.c\r\n\r\n.\r\n");
    assert_eq!(d.content(), b"a\r\n.b\r\nc\r\n\r\n");
    assert!(matches!(d.peek(), Some(Request::Commit { size: 12, .. })));
}

#[test]
fn a_message_over_the_size_limit_gets_552_after_the_end_of_data() {
    let mut h = in_transaction(ServerConfig {
        max_message_size: 100,
        ..config()
    });
    h.line("DATA");
    let body = "x".repeat(60);
    // Nothing is said before the end of data: the client would not be listening.
    assert_eq!(h.send(format!("{body}\r\n").as_bytes()), b"");
    assert_eq!(h.send(format!("{body}\r\n").as_bytes()), b"");
    assert_eq!(
        h.send(b".\r\n"),
        b"552 5.3.4 Message size exceeds fixed maximum message size\r\n"
    );
    assert!(h.stored.is_empty());
    assert_eq!(h.aborted, 1);
    assert!(
        !h.requests
            .iter()
            .any(|r| matches!(r, Request::Commit { .. }))
    );
    // The session and the next transaction go on.
    assert_eq!(
        h.line("RCPT TO:<b@example.org>"),
        "503 5.5.1 Error: need MAIL command\r\n"
    );
    h.line("MAIL FROM:<a@example.org>");
    h.line("RCPT TO:<b@example.org>");
    h.line("DATA");
    // Exactly at the limit is fine.
    let exact = format!("{}\r\n", "y".repeat(98));
    assert_eq!(
        h.send(format!("{exact}.\r\n").as_bytes()),
        ACCEPTED.as_bytes()
    );
    assert_eq!(h.stored[0].content.len(), 100);
}

#[test]
fn text_lines_are_limited_to_1000_octets() {
    let mut h = in_transaction(config());
    h.line("DATA");
    let ok = format!("{}\r\n", "x".repeat(998));
    assert_eq!(h.send(format!("{ok}.\r\n").as_bytes()), ACCEPTED.as_bytes());
    h.line("MAIL FROM:<a@example.org>");
    h.line("RCPT TO:<b@example.org>");
    h.line("DATA");
    let long = format!("{}\r\n", "x".repeat(999));
    assert_eq!(
        h.send(format!("{long}.\r\n").as_bytes()),
        b"554 5.6.0 Message refused: line too long\r\n"
    );
    assert_eq!(h.stored.len(), 1);
    assert_eq!(h.aborted, 1);
    // No limit when configured so.
    let mut h = in_transaction(ServerConfig {
        max_text_line: 0,
        ..config()
    });
    h.line("DATA");
    let long = format!("{}\r\n", "x".repeat(5000));
    assert_eq!(
        h.send(format!("{long}.\r\n").as_bytes()),
        ACCEPTED.as_bytes()
    );
}

/// Every non-standard end-of-data form of the SMTP smuggling research, each followed by the
/// commands of a second, forged message.
const SMUGGLING: [&[u8]; 8] = [
    b"\n.\n", b"\n.\r\n", b"\r.\r\n", b"\r\n.\r", b"\r\n.\n", b"\r.\r", b"\n.\r", b"\r.\n",
];

fn smuggling_wire(form: &[u8]) -> Vec<u8> {
    let mut wire = b"Subject: hi\r\n\r\nbody".to_vec();
    wire.extend_from_slice(form);
    wire.extend_from_slice(
        b"MAIL FROM:<ceo@example.org>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\nforged\r\n",
    );
    wire
}

#[test]
fn smuggling_forms_never_end_data_and_are_refused() {
    for form in SMUGGLING {
        let mut h = in_transaction(config());
        h.line("DATA");
        // Whole, then the real end of data.
        assert_eq!(h.send(&smuggling_wire(form)), b"", "{form:?}");
        assert_eq!(h.send(b".\r\n"), BARE_REFUSED.as_bytes(), "{form:?}");
        // The forged commands never ran: one MAIL, no second RCPT, nothing stored.
        assert_eq!(mail_requests(&h.requests), 1, "{form:?}");
        assert!(h.stored.is_empty(), "{form:?}");
        assert_eq!(h.aborted, 1, "{form:?}");
        // The session carries on, out of the transaction.
        assert_eq!(
            h.line("RCPT TO:<b@example.org>"),
            "503 5.5.1 Error: need MAIL command\r\n"
        );
    }
}

#[test]
fn smuggling_forms_split_anywhere_never_end_data() {
    for form in SMUGGLING {
        let wire = smuggling_wire(form);
        for split in 0..wire.len() {
            let mut h = in_transaction(config());
            h.line("DATA");
            h.send(&wire[..split]);
            h.send(&wire[split..]);
            assert_eq!(
                h.send(b".\r\n"),
                BARE_REFUSED.as_bytes(),
                "{form:?} split at {split}"
            );
            assert_eq!(mail_requests(&h.requests), 1);
        }
    }
}

#[test]
fn smuggling_forms_are_content_when_normalising() {
    for form in SMUGGLING {
        let mut h = in_transaction(ServerConfig {
            bare_newline: BareNewline::Normalize,
            ..config()
        });
        h.line("DATA");
        assert_eq!(h.send(&smuggling_wire(form)), b"", "{form:?}");
        assert_eq!(h.send(b".\r\n"), ACCEPTED.as_bytes(), "{form:?}");
        assert_eq!(mail_requests(&h.requests), 1, "{form:?}");
        // Every line ending became CRLF; the forged commands are text of the one message.
        assert_eq!(
            String::from_utf8_lossy(&h.stored[0].content),
            "Subject: hi\r\n\r\nbody\r\n.\r\nMAIL FROM:<ceo@example.org>\r\n\
             RCPT TO:<victim@example.org>\r\nDATA\r\nforged\r\n",
            "{form:?}"
        );
    }
}

#[test]
fn bare_line_endings_in_content_are_refused_or_normalised() {
    for (wire, normalised) in [
        (&b"a\nb\r\n.\r\n"[..], &b"a\r\nb\r\n"[..]),
        (b"a\rb\r\n.\r\n", b"a\r\nb\r\n"),
        (b"a\r\r\n.\r\n", b"a\r\n\r\n"),
        (b"a\n\r\n.\r\n", b"a\r\n\r\n"),
    ] {
        let mut h = in_transaction(config());
        h.line("DATA");
        assert_eq!(h.send(wire), BARE_REFUSED.as_bytes(), "{wire:?}");
        let mut h = in_transaction(ServerConfig {
            bare_newline: BareNewline::Normalize,
            ..config()
        });
        h.line("DATA");
        assert_eq!(h.send(wire), ACCEPTED.as_bytes(), "{wire:?}");
        assert_eq!(h.stored[0].content, normalised, "{wire:?}");
    }
}

#[test]
fn commands_after_the_end_of_data_without_pipelining_are_refused() {
    // PIPELINING not negotiated: HELO, or EHLO when it is switched off.
    let helo = || {
        let mut h = harness(config());
        h.line("HELO client.example");
        h
    };
    let off = || {
        ehlo(ServerConfig {
            pipelining: false,
            ..config()
        })
    };
    for mut h in [helo(), off()] {
        h.line("MAIL FROM:<a@example.org>");
        h.line("RCPT TO:<b@example.org>");
        h.line("DATA");
        let out = h.send(b"body\r\n.\r\nMAIL FROM:<ceo@example.org>\r\n");
        assert_eq!(codes(&out), ["554 5.5.0", "421 4.5.0"]);
        assert!(h.closed);
        assert!(h.stored.is_empty());
        assert_eq!(h.aborted, 1);
        assert_eq!(mail_requests(&h.requests), 1);
    }
    // Waiting for the reply is fine without PIPELINING.
    let mut h = helo();
    h.line("MAIL FROM:<a@example.org>");
    h.line("RCPT TO:<b@example.org>");
    h.line("DATA");
    assert_eq!(h.send(b"body\r\n.\r\n"), ACCEPTED.as_bytes());
    assert_eq!(h.line("QUIT"), "221 2.0.0 Bye\r\n");
}

#[test]
fn commands_after_the_end_of_data_with_pipelining_wait_for_the_commit() {
    let mut d = Driver::greeted(config());
    d.input(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n");
    d.accept();
    d.accept();
    d.accept();
    d.take_output();
    d.input(b"body\r\n.\r\nMAIL FROM:<c@example.org>\r\nRSET\r\n");
    assert!(matches!(d.peek(), Some(Request::Commit { .. })));
    assert_eq!(d.pending.len(), 1);
    assert_eq!(d.take_output(), "");
    d.accept();
    assert!(matches!(d.peek(), Some(Request::Mail { .. })));
    assert_eq!(d.take_output(), ACCEPTED);
    d.accept();
    assert_eq!(
        d.take_output(),
        "250 2.1.0 Sender ok\r\n250 2.0.0 Reset state\r\n"
    );
}

#[test]
fn binarymime_needs_bdat() {
    let mut h = ehlo(config());
    h.line("MAIL FROM:<a@example.org> BODY=BINARYMIME");
    h.line("RCPT TO:<b@example.org>");
    assert_eq!(
        h.line("DATA"),
        "503 5.5.1 Error: BODY=BINARYMIME requires BDAT\r\n"
    );
    assert_eq!(h.send(b"BDAT 3 LAST\r\n\x00\x01\x02"), ACCEPTED.as_bytes());
    assert_eq!(h.stored[0].content, b"\x00\x01\x02");
}

// ----- BDAT -----

#[test]
fn bdat_chunks_are_taken_verbatim() {
    let mut d = Driver::greeted(config());
    d.input(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n");
    d.accept();
    d.accept();
    d.take_output();
    d.take_events();
    // No dot-stuffing and no end marker: the octets, counted.
    d.input(b"BDAT 9\r\n.\r\nline\r\nBDAT 7 LAST\r\n.\r\nQUIT");
    assert_eq!(d.accept(), Request::Data);
    assert_eq!(d.take_output(), "250 2.0.0 9 octets received\r\n");
    assert!(matches!(d.peek(), Some(Request::Commit { size: 16, .. })));
    assert_eq!(d.content(), b".\r\nline\r\n.\r\nQUIT");
    d.accept();
    assert_eq!(d.take_output(), ACCEPTED);
    assert!(!d.closed());
}

/// A final bare CR held back by the line checker, then written out as CRLF at `LAST`, counts
/// in the committed size like the rest of the content.
#[test]
fn the_committed_bdat_size_counts_a_normalised_final_cr() {
    let mut d = Driver::greeted(ServerConfig {
        bare_newline: BareNewline::Normalize,
        ..config()
    });
    d.input(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n");
    d.accept();
    d.accept();
    d.take_output();
    d.take_events();
    d.input(b"BDAT 2 LAST\r\n.\r");
    assert_eq!(d.accept(), Request::Data);
    assert!(
        matches!(d.peek(), Some(Request::Commit { size: 3, .. })),
        "{:?}",
        d.peek()
    );
    assert_eq!(d.content(), b".\r\n");
}

#[test]
fn bdat_can_arrive_one_byte_at_a_time() {
    let mut h = in_transaction(config());
    let mut out = Vec::new();
    for b in b"BDAT 5\r\nab\r\ncBDAT 0 LAST\r\nNOOP\r\n" {
        out.extend(h.send(std::slice::from_ref(b)));
    }
    assert_eq!(
        String::from_utf8_lossy(&out),
        format!("250 2.0.0 5 octets received\r\n{ACCEPTED}250 2.0.0 Ok\r\n")
    );
    assert_eq!(h.stored[0].content, b"ab\r\nc");
}

#[test]
fn bdat_zero_last_ends_the_message() {
    let mut h = in_transaction(config());
    assert_eq!(h.send(b"BDAT 0 LAST\r\n"), ACCEPTED.as_bytes());
    assert_eq!(h.stored[0].content, b"");
    let mut h = in_transaction(config());
    assert_eq!(
        h.send(b"BDAT 0\r\nBDAT 2 LAST\r\nok"),
        format!("250 2.0.0 0 octets received\r\n{ACCEPTED}").as_bytes()
    );
    assert_eq!(h.stored[0].content, b"ok");
}

#[test]
fn data_and_bdat_do_not_mix() {
    let mut h = in_transaction(config());
    assert_eq!(h.send(b"BDAT 2\r\nab"), b"250 2.0.0 2 octets received\r\n");
    assert_eq!(
        h.line("DATA"),
        "503 5.5.1 Error: DATA and BDAT cannot be mixed in one transaction\r\n"
    );
    // The BDAT transaction is intact.
    assert_eq!(h.send(b"BDAT 1 LAST\r\nc"), ACCEPTED.as_bytes());
    assert_eq!(h.stored[0].content, b"abc");
    // And no RCPT once the content has started.
    let mut h = in_transaction(config());
    h.send(b"BDAT 1\r\nx");
    assert_eq!(
        h.line("RCPT TO:<c@example.org>"),
        "503 5.5.1 Error: MAIL transaction in progress\r\n"
    );
}

#[test]
fn the_octets_of_a_refused_bdat_are_discarded_not_parsed() {
    // No transaction: 503, and the 14 octets (which look like a command) are thrown away.
    let mut h = ehlo(config());
    assert_eq!(
        h.send(b"BDAT 14\r\nQUIT\r\nRSET\r\n\r\nNOOP\r\n"),
        b"503 5.5.1 Error: need MAIL command\r\n250 2.0.0 Ok\r\n"
    );
    assert!(!h.closed);
    // No recipient yet.
    let mut h = ehlo(config());
    h.line("MAIL FROM:<a@example.org>");
    assert_eq!(
        h.send(b"BDAT 6 LAST\r\nQUIT\r\n"),
        b"503 5.5.1 Error: need RCPT command\r\n"
    );
    assert!(!h.closed);
    // The refusal comes once all the octets have been read, however they arrive.
    let mut h = ehlo(config());
    assert_eq!(h.send(b"BDAT 6\r\nQU"), b"");
    assert_eq!(h.send(b"IT\r\n"), b"503 5.5.1 Error: need MAIL command\r\n");
    assert!(!h.closed);
}

#[test]
fn a_bdat_refused_by_the_shell_has_its_octets_discarded() {
    let mut h = util::after_ehlo(
        config(),
        Box::new(|r| match r {
            Request::Data => refuse(554, (5, 7, 1), "Content refused"),
            _ => Decision::Accept,
        }),
    );
    h.line("MAIL FROM:<a@example.org>");
    h.line("RCPT TO:<b@example.org>");
    assert_eq!(
        h.send(b"BDAT 6\r\nQUIT\r\nNOOP\r\n"),
        b"554 5.7.1 Content refused\r\n250 2.0.0 Ok\r\n"
    );
    // The transaction is over: later chunks are refused too, their octets discarded.
    assert_eq!(
        h.send(b"BDAT 6 LAST\r\nQUIT\r\n"),
        b"503 5.5.1 Error: need MAIL command\r\n"
    );
    assert!(!h.closed);
}

#[test]
fn a_421_answer_to_bdat_is_sent_before_closing() {
    let mut h = util::after_ehlo(
        config(),
        Box::new(|r| match r {
            Request::Data => refuse(421, (4, 3, 2), "Shutting down"),
            _ => Decision::Accept,
        }),
    );
    h.line("MAIL FROM:<a@example.org>");
    h.line("RCPT TO:<b@example.org>");
    assert_eq!(
        h.send(b"BDAT 100\r\npartial"),
        b"421 4.3.2 Shutting down\r\n"
    );
    assert!(h.closed);
}

#[test]
fn bdat_over_the_size_limit_gets_552_and_ends_the_transaction() {
    let mut h = in_transaction(ServerConfig {
        max_message_size: 10,
        ..config()
    });
    assert_eq!(
        h.send(b"BDAT 6\r\n123456"),
        b"250 2.0.0 6 octets received\r\n"
    );
    // 6 + 5 > 10: refused once its octets are read.
    assert_eq!(
        h.send(b"BDAT 5\r\nRSET\n"),
        b"552 5.3.4 Message size exceeds fixed maximum message size\r\n"
    );
    assert_eq!(h.aborted, 1);
    assert_eq!(
        h.send(b"BDAT 1 LAST\r\nx"),
        b"503 5.5.1 Error: need MAIL command\r\n"
    );
    assert!(h.stored.is_empty());
    assert!(
        !h.requests
            .iter()
            .any(|r| matches!(r, Request::Commit { .. }))
    );
    // A chunk bigger than the limit on its own.
    let mut h = in_transaction(ServerConfig {
        max_message_size: 10,
        ..config()
    });
    assert_eq!(
        h.send(b"BDAT 11 LAST\r\n12345678901"),
        b"552 5.3.4 Message size exceeds fixed maximum message size\r\n"
    );
    assert_eq!(
        h.line("MAIL FROM:<a@example.org>"),
        "250 2.1.0 Sender ok\r\n"
    );
}

#[test]
fn rset_abandons_a_bdat_transaction() {
    let mut h = in_transaction(config());
    h.send(b"BDAT 3\r\nabc");
    assert_eq!(h.line("RSET"), "250 2.0.0 Reset state\r\n");
    assert_eq!(h.aborted, 1);
    assert!(h.transcript().contains("E: data aborted\n"));
    assert_eq!(
        h.send(b"BDAT 1 LAST\r\nx"),
        b"503 5.5.1 Error: need MAIL command\r\n"
    );
}

#[test]
fn a_new_ehlo_abandons_a_bdat_transaction() {
    let mut h = in_transaction(config());
    h.send(b"BDAT 3\r\nabc");
    assert!(h.line("EHLO client.example").starts_with("250-"));
    assert_eq!(h.aborted, 1);
    assert_eq!(
        h.send(b"BDAT 1 LAST\r\nx"),
        b"503 5.5.1 Error: need MAIL command\r\n"
    );
}

#[test]
fn bdat_is_not_offered_after_helo_or_when_switched_off() {
    let mut h = harness(config());
    h.line("HELO client.example");
    h.line("MAIL FROM:<a@example.org>");
    h.line("RCPT TO:<b@example.org>");
    // Refused, and the announced octets are still discarded rather than run.
    assert_eq!(
        h.send(b"BDAT 6 LAST\r\nQUIT\r\n"),
        b"500 5.5.1 Command unrecognized\r\n"
    );
    assert!(!h.closed);
    assert!(h.line("DATA").starts_with("354 "));

    let mut h = in_transaction(ServerConfig {
        chunking: false,
        ..config()
    });
    assert_eq!(
        h.send(b"BDAT 6 LAST\r\nQUIT\r\n"),
        b"500 5.5.1 Command unrecognized\r\n"
    );
    assert!(!h.closed);
}

#[test]
fn malformed_bdat_gets_501() {
    let mut h = in_transaction(config());
    for line in [
        "BDAT",
        "BDAT x",
        "BDAT -1",
        "BDAT 1 FIRST",
        "BDAT 1 LAST more",
    ] {
        assert_eq!(
            codes(&h.send(format!("{line}\r\n").as_bytes())),
            ["501 5.5.4"],
            "{line}"
        );
    }
    assert_eq!(h.send(b"BDAT 1 LAST\r\nz"), ACCEPTED.as_bytes());
}
