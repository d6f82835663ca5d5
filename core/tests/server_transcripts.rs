//! Whole sessions as transcripts, held as insta snapshots: `C:` what the client sent, `S:` what
//! the server wrote, `E:` what the shell was told. Each snapshot was read against the RFCs
//! when accepted; a change in one is a change of behaviour to review.
#[path = "server_util.rs"]
mod util;

use std::time::Duration;

use insta::assert_snapshot;
use petrel_core::session::Decision;
use petrel_core::session::harness::{Policy, ServerHarness, accept_all};
use petrel_core::session::server::{AuthPolicy, Request, ServerConfig, TlsPolicy};
use petrel_core::smtp::BareNewline;
use util::{b64, config, plain, refuse};

/// Sends each line with CRLF appended.
fn lines(h: &mut ServerHarness, lines: &[&str]) {
    for line in lines {
        h.line(line);
    }
}

fn session(config: ServerConfig) -> ServerHarness {
    ServerHarness::new(config, accept_all())
}

fn transaction(h: &mut ServerHarness) {
    lines(
        h,
        &[
            "EHLO client.example",
            "MAIL FROM:<alice@example.org>",
            "RCPT TO:<bob@example.net>",
            "DATA",
        ],
    );
}

fn tls() -> ServerConfig {
    ServerConfig {
        tls: TlsPolicy::Offer,
        auth: AuthPolicy::Optional,
        ..config()
    }
}

fn over_tls(config: ServerConfig, policy: Policy) -> ServerHarness {
    let mut h = ServerHarness::new(config, policy);
    lines(&mut h, &["EHLO client.example", "STARTTLS"]);
    h.complete_tls();
    h.line("EHLO client.example");
    h
}

/// Knows `alice` with password `secret` only.
fn alice_only() -> Policy {
    Box::new(|r| match r {
        Request::Auth { credentials, .. }
            if credentials.username != "alice" || credentials.password != "secret" =>
        {
            refuse(535, (5, 7, 8), "Authentication credentials invalid")
        }
        _ => Decision::Accept,
    })
}

// ----- happy paths -----

#[test]
fn esmtp_message_then_quit() {
    let mut h = session(config());
    transaction(&mut h);
    h.send(b"Subject: hello\r\n\r\nHi Bob.\r\n.\r\n");
    h.line("QUIT");
    assert_snapshot!(h.transcript());
}

#[test]
fn helo_message_without_extensions() {
    let mut h = session(config());
    lines(
        &mut h,
        &[
            "HELO client.example",
            "MAIL FROM:<alice@example.org>",
            "RCPT TO:<bob@example.net>",
            "DATA",
        ],
    );
    h.send(b"Subject: plain SMTP\r\n\r\nbody\r\n.\r\n");
    h.line("QUIT");
    assert_snapshot!(h.transcript());
}

#[test]
fn bounce_from_null_sender_to_postmaster() {
    let mut h = session(config());
    lines(
        &mut h,
        &[
            "EHLO mx.example.org",
            "MAIL FROM:<>",
            "RCPT TO:<Postmaster>",
            "RCPT TO:<@hop1.example,@hop2.example:bob@example.net>",
            "DATA",
        ],
    );
    h.send(b"Subject: Undelivered Mail\r\n\r\n.\r\n");
    h.line("QUIT");
    assert_snapshot!(h.transcript());
}

#[test]
fn two_messages_and_a_reset_in_one_session() {
    let mut h = session(config());
    transaction(&mut h);
    h.send(b"first\r\n.\r\n");
    lines(
        &mut h,
        &[
            "MAIL FROM:<alice@example.org>",
            "RCPT TO:<carol@example.net>",
            "RSET",
            "MAIL FROM:<alice@example.org>",
            "RCPT TO:<dave@example.net>",
            "DATA",
        ],
    );
    h.send(b"second\r\n.\r\n");
    h.line("QUIT");
    assert_snapshot!(h.transcript());
}

#[test]
fn dot_stuffed_lines() {
    let mut h = session(config());
    transaction(&mut h);
    h.send(b"..leading dot\r\n...\r\n.x\r\n\r\n.\r\n");
    assert_eq!(h.stored[0].content, b".leading dot\r\n..\r\nx\r\n\r\n");
    assert_snapshot!(h.transcript());
}

#[test]
fn esmtp_parameters_accepted() {
    let mut h = session(config());
    lines(
        &mut h,
        &[
            "EHLO client.example",
            "MAIL FROM:<alice@example.org> SIZE=42 BODY=8BITMIME RET=HDRS ENVID=msg+2B1",
            "RCPT TO:<bob@example.net> NOTIFY=FAILURE,DELAY ORCPT=rfc822;bob@example.net",
            "DATA",
        ],
    );
    h.send(b"eight bit: \xc3\xa9\r\n.\r\n");
    assert_snapshot!(h.transcript());
}

#[test]
fn smtputf8_transaction() {
    let mut h = session(config());
    lines(
        &mut h,
        &[
            "EHLO client.example",
            "MAIL FROM:<jöran@exämple.org>",
            "MAIL FROM:<jöran@exämple.org> SMTPUTF8",
            "RCPT TO:<søren@example.net>",
            "DATA",
        ],
    );
    h.send(".\r\n".as_bytes());
    lines(
        &mut h,
        &[
            "MAIL FROM:<alice@example.org>",
            "RCPT TO:<søren@example.net>",
        ],
    );
    assert_snapshot!(h.transcript());
}

// ----- BDAT -----

#[test]
fn bdat_chunks() {
    let mut h = session(config());
    lines(
        &mut h,
        &[
            "EHLO client.example",
            "MAIL FROM:<alice@example.org> BODY=BINARYMIME",
            "RCPT TO:<bob@example.net>",
        ],
    );
    h.send(b"BDAT 12\r\nSubject: x\r\n");
    h.send(b"BDAT 5 LAST\r\n\r\n.\r\n");
    h.line("QUIT");
    assert_eq!(h.stored[0].content, b"Subject: x\r\n\r\n.\r\n");
    assert_snapshot!(h.transcript());
}

#[test]
fn bdat_zero_last() {
    let mut h = session(config());
    lines(
        &mut h,
        &[
            "EHLO client.example",
            "MAIL FROM:<alice@example.org>",
            "RCPT TO:<bob@example.net>",
        ],
    );
    h.send(b"BDAT 4\r\nbody");
    h.line("BDAT 0 LAST");
    assert_snapshot!(h.transcript());
}

#[test]
fn bdat_refused_chunk_is_read_not_run() {
    let mut h = session(config());
    h.line("EHLO client.example");
    // No transaction: 503 once the 29 octets (a forged transaction) are read and discarded.
    h.send(b"BDAT 29\r\nMAIL FROM:<ceo@example.org>\r\n");
    h.line("NOOP");
    assert_snapshot!(h.transcript());
}

#[test]
fn data_and_bdat_mixed() {
    let mut h = session(config());
    lines(
        &mut h,
        &[
            "EHLO client.example",
            "MAIL FROM:<alice@example.org>",
            "RCPT TO:<bob@example.net>",
        ],
    );
    h.send(b"BDAT 3\r\nabc");
    h.line("DATA");
    h.send(b"BDAT 3 LAST\r\ndef");
    assert_snapshot!(h.transcript());
}

#[test]
fn bdat_over_the_size_limit() {
    let mut h = session(ServerConfig {
        max_message_size: 8,
        ..config()
    });
    lines(
        &mut h,
        &[
            "EHLO client.example",
            "MAIL FROM:<alice@example.org>",
            "RCPT TO:<bob@example.net>",
        ],
    );
    h.send(b"BDAT 5\r\n12345");
    h.send(b"BDAT 5\r\n67890");
    h.send(b"BDAT 1 LAST\r\nx");
    assert_snapshot!(h.transcript());
}

// ----- pipelining -----

#[test]
fn pipelined_transaction_in_one_write() {
    let mut h = session(config());
    h.line("EHLO client.example");
    h.send(
        b"MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.net>\r\n\
          RCPT TO:<carol@example.net>\r\nDATA\r\n",
    );
    h.send(b"Subject: pipelined\r\n\r\nbody\r\n.\r\nQUIT\r\n");
    assert_snapshot!(h.transcript());
}

#[test]
fn pipelined_with_refusals_in_between() {
    let mut h = ServerHarness::new(
        config(),
        Box::new(|r| match r {
            Request::Rcpt { to, .. } if to.to_string() == "<nobody@example.net>" => {
                refuse(550, (5, 1, 1), "Recipient address rejected: unknown user")
            }
            _ => Decision::Accept,
        }),
    );
    h.line("EHLO client.example");
    h.send(
        b"MAIL FROM:<alice@example.org>\r\nRCPT TO:<nobody@example.net>\r\n\
          RCPT TO:<bob@example.net>\r\nFOO\r\nDATA\r\n",
    );
    h.send(b"body\r\n.\r\n");
    assert_snapshot!(h.transcript());
}

#[test]
fn commands_after_end_of_data_without_pipelining() {
    let mut h = session(config());
    lines(
        &mut h,
        &[
            "HELO client.example",
            "MAIL FROM:<alice@example.org>",
            "RCPT TO:<bob@example.net>",
            "DATA",
        ],
    );
    h.send(b"body\r\n.\r\nMAIL FROM:<ceo@example.org>\r\n");
    assert_snapshot!(h.transcript());
}

#[test]
fn one_byte_at_a_time() {
    let mut h = session(config());
    let wire = b"EHLO client.example\r\nMAIL FROM:<alice@example.org>\r\n\
                 RCPT TO:<bob@example.net>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n";
    // The transcript would show one line per byte: the server's output says more.
    let mut out = h.greeting.clone();
    for b in wire {
        out.extend(h.send(std::slice::from_ref(b)));
    }
    assert_eq!(h.stored[0].content, b"hi\r\n");
    assert_snapshot!(String::from_utf8_lossy(&out));
}

// ----- errors -----

#[test]
fn unknown_and_malformed_commands() {
    let mut h = session(config());
    lines(
        &mut h,
        &[
            "EHLO",
            "EHLO bad domain",
            "EHLO client.example",
            "FOO bar",
            "DATA now",
            "VRFY",
            "MAIL FROM:alice@example.org",
            "MAIL FROM:<alice@example.org",
            "MAIL TO:<alice@example.org>",
            "QUIT",
        ],
    );
    assert_snapshot!(h.transcript());
}

#[test]
fn commands_out_of_sequence() {
    let mut h = session(config());
    lines(
        &mut h,
        &[
            "MAIL FROM:<alice@example.org>",
            "EHLO client.example",
            "RCPT TO:<bob@example.net>",
            "DATA",
            "MAIL FROM:<alice@example.org>",
            "DATA",
            "MAIL FROM:<alice@example.org>",
            "RSET",
            "QUIT",
        ],
    );
    assert_snapshot!(h.transcript());
}

#[test]
fn parameter_errors() {
    let mut h = session(config());
    lines(
        &mut h,
        &[
            "EHLO client.example",
            "MAIL FROM:<alice@example.org> FOO=bar",
            "MAIL FROM:<alice@example.org> SIZE=big",
            "MAIL FROM:<alice@example.org> BODY=9BIT",
            "MAIL FROM:<alice@example.org> SIZE=1 SIZE=1",
            "MAIL FROM:<alice@example.org> AUTH=<>",
            "MAIL FROM:<alice@example.org>",
            "RCPT TO:<bob@example.net> NOTIFY=NEVER,SUCCESS",
            "RCPT TO:<bob@example.net> XFOO",
            "RCPT TO:<>",
        ],
    );
    assert_snapshot!(h.transcript());
}

#[test]
fn esmtp_parameters_after_helo() {
    let mut h = session(config());
    lines(
        &mut h,
        &[
            "HELO client.example",
            "MAIL FROM:<alice@example.org> SIZE=10",
            "MAIL FROM:<alice@example.org>",
            "RCPT TO:<bob@example.net> NOTIFY=NEVER",
            "RCPT TO:<bob@example.net>",
        ],
    );
    h.send(b"BDAT 4 LAST\r\nQUIT");
    h.line("RSET");
    assert_snapshot!(h.transcript());
}

#[test]
fn too_many_errors() {
    let mut h = session(ServerConfig {
        max_errors: 3,
        ..config()
    });
    h.line("EHLO client.example");
    h.send(b"FOO\r\nBAR\r\nNOOP\r\nBAZ\r\nQUIT\r\n");
    assert_snapshot!(h.transcript());
}

#[test]
fn over_long_command_lines() {
    let mut h = session(config());
    h.line("EHLO client.example");
    h.line(&format!("NOOP {}", "x".repeat(505)));
    h.line(&format!("NOOP {}", "x".repeat(506)));
    h.line("QUIT");
    // 512 octets with the CRLF pass, 513 do not.
    let transcript = h
        .transcript()
        .replace(&"x".repeat(506), "<506 x>")
        .replace(&"x".repeat(505), "<505 x>");
    assert_snapshot!(transcript);
}

#[test]
fn bare_line_endings_in_commands_refused() {
    let mut h = session(config());
    h.line("EHLO client.example");
    h.send(b"MAIL FROM:<alice@example.org>\nRSET\r\nNOOP\rQUIT\r\n");
    assert_snapshot!(h.transcript());
}

#[test]
fn bare_line_endings_in_commands_normalised() {
    let mut h = session(ServerConfig {
        bare_newline: BareNewline::Normalize,
        ..config()
    });
    h.send(b"EHLO client.example\nMAIL FROM:<alice@example.org>\nNOOP\rQUIT\r\n");
    assert_snapshot!(h.transcript());
}

#[test]
fn vrfy_expn_help_noop_in_a_transaction() {
    let mut h = session(config());
    lines(
        &mut h,
        &[
            "EHLO client.example",
            "MAIL FROM:<alice@example.org>",
            "VRFY bob",
            "EXPN staff",
            "HELP",
            "NOOP",
            "RCPT TO:<bob@example.net>",
            "RSET",
            "QUIT",
        ],
    );
    assert_snapshot!(h.transcript());
}

#[test]
fn policy_refusals() {
    let mut h = ServerHarness::new(
        config(),
        Box::new(|r| match r {
            Request::Mail { from, .. } if from.to_string() == "<spam@example.com>" => {
                refuse(550, (5, 7, 1), "Sender address rejected: access denied")
            }
            Request::Rcpt { to, .. } if to.to_string() == "<full@example.net>" => {
                refuse(452, (4, 2, 2), "Mailbox full")
            }
            Request::Commit { .. } => refuse(451, (4, 3, 0), "Temporary queue failure"),
            _ => Decision::Accept,
        }),
    );
    lines(
        &mut h,
        &[
            "EHLO client.example",
            "MAIL FROM:<spam@example.com>",
            "MAIL FROM:<alice@example.org>",
            "RCPT TO:<full@example.net>",
            "DATA",
            "RCPT TO:<bob@example.net>",
            "DATA",
        ],
    );
    h.send(b"body\r\n.\r\n");
    h.line("QUIT");
    assert_snapshot!(h.transcript());
}

// ----- limits -----

#[test]
fn recipient_limit() {
    let mut h = session(ServerConfig {
        max_recipients: 2,
        ..config()
    });
    lines(
        &mut h,
        &[
            "EHLO client.example",
            "MAIL FROM:<alice@example.org>",
            "RCPT TO:<r1@example.net>",
            "RCPT TO:<r2@example.net>",
            "RCPT TO:<r3@example.net>",
            "DATA",
        ],
    );
    h.send(b"to two of three\r\n.\r\n");
    assert_snapshot!(h.transcript());
}

#[test]
fn declared_size_over_the_limit() {
    let mut h = session(ServerConfig {
        max_message_size: 1000,
        ..config()
    });
    lines(
        &mut h,
        &[
            "EHLO client.example",
            "MAIL FROM:<alice@example.org> SIZE=1001",
            "MAIL FROM:<alice@example.org> SIZE=1000",
        ],
    );
    assert_snapshot!(h.transcript());
}

#[test]
fn actual_size_over_the_limit() {
    let mut h = session(ServerConfig {
        max_message_size: 20,
        ..config()
    });
    transaction(&mut h);
    h.send(b"0123456789\r\n0123456789\r\n.\r\n");
    lines(
        &mut h,
        &[
            "MAIL FROM:<alice@example.org>",
            "RCPT TO:<bob@example.net>",
            "DATA",
        ],
    );
    h.send(b"short\r\n.\r\n");
    assert_snapshot!(h.transcript());
}

#[test]
fn text_line_over_1000_octets() {
    let mut h = session(config());
    transaction(&mut h);
    h.send(format!("{}\r\n.\r\n", "x".repeat(999)).as_bytes());
    h.line("NOOP");
    let transcript = h.transcript().replace(&"x".repeat(999), "<999 x>");
    assert_snapshot!(transcript);
}

#[test]
fn idle_timeout() {
    let mut h = session(config());
    h.line("EHLO client.example");
    h.advance(Duration::from_secs(299));
    h.line("MAIL FROM:<alice@example.org>");
    h.advance(Duration::from_secs(300));
    assert_snapshot!(h.transcript());
}

#[test]
fn shutdown_during_data() {
    let mut h = session(config());
    transaction(&mut h);
    h.send(b"Subject: interrupted\r\n");
    h.shutdown();
    assert_snapshot!(h.transcript());
}

// ----- smuggling -----

fn smuggle(config: ServerConfig, form: &[u8]) -> ServerHarness {
    let mut h = session(config);
    transaction(&mut h);
    let mut wire = b"Subject: hi\r\n\r\nlegit".to_vec();
    wire.extend_from_slice(form);
    wire.extend_from_slice(
        b"MAIL FROM:<ceo@example.org>\r\nRCPT TO:<victim@example.net>\r\nDATA\r\nforged\r\n",
    );
    h.send(&wire);
    h.send(b".\r\n");
    h.line("QUIT");
    h
}

#[test]
fn smuggling_lf_dot_lf_refused() {
    let h = smuggle(config(), b"\n.\n");
    assert_snapshot!(h.transcript());
}

#[test]
fn smuggling_lf_dot_crlf_refused() {
    let h = smuggle(config(), b"\n.\r\n");
    assert_snapshot!(h.transcript());
}

#[test]
fn smuggling_cr_dot_cr_refused() {
    let h = smuggle(config(), b"\r.\r");
    assert_snapshot!(h.transcript());
}

#[test]
fn smuggling_crlf_dot_cr_normalised() {
    let h = smuggle(
        ServerConfig {
            bare_newline: BareNewline::Normalize,
            ..config()
        },
        b"\r\n.\r",
    );
    assert_eq!(h.stored.len(), 1);
    assert_snapshot!(h.transcript());
}

#[test]
fn smuggling_crlf_dot_lf_normalised() {
    let h = smuggle(
        ServerConfig {
            bare_newline: BareNewline::Normalize,
            ..config()
        },
        b"\r\n.\n",
    );
    assert_eq!(h.stored.len(), 1);
    assert_snapshot!(h.transcript());
}

// ----- STARTTLS -----

#[test]
fn starttls_then_fresh_ehlo() {
    let mut h = session(tls());
    lines(&mut h, &["EHLO client.example", "STARTTLS"]);
    h.complete_tls();
    lines(
        &mut h,
        &[
            "MAIL FROM:<alice@example.org>",
            "EHLO client.example",
            "STARTTLS",
            "MAIL FROM:<alice@example.org>",
        ],
    );
    assert_snapshot!(h.transcript());
}

#[test]
fn starttls_command_injection_discarded() {
    let mut h = session(tls());
    h.line("EHLO client.example");
    h.send(b"STARTTLS\r\nMAIL FROM:<ceo@example.org>\r\nRCPT TO:<victim@example.net>\r\n");
    h.send(b"DATA\r\n");
    h.complete_tls();
    lines(
        &mut h,
        &["RCPT TO:<victim@example.net>", "EHLO client.example"],
    );
    assert_snapshot!(h.transcript());
}

#[test]
fn tls_required() {
    let mut h = session(ServerConfig {
        tls: TlsPolicy::Require,
        ..config()
    });
    lines(
        &mut h,
        &[
            "HELO client.example",
            "EHLO client.example",
            "MAIL FROM:<alice@example.org>",
            "NOOP",
            "STARTTLS",
        ],
    );
    h.complete_tls();
    lines(
        &mut h,
        &["EHLO client.example", "MAIL FROM:<alice@example.org>"],
    );
    assert_snapshot!(h.transcript());
}

// ----- AUTH -----

#[test]
fn auth_refused_before_tls() {
    let mut h = session(tls());
    lines(
        &mut h,
        &[
            "EHLO client.example",
            &format!("AUTH PLAIN {}", plain("", "alice", "secret")),
        ],
    );
    assert_snapshot!(h.transcript());
}

#[test]
fn auth_plain_with_initial_response() {
    let mut h = over_tls(tls(), alice_only());
    lines(
        &mut h,
        &[
            &format!("AUTH PLAIN {}", plain("", "alice", "secret")),
            "EHLO client.example",
            &format!("AUTH PLAIN {}", plain("", "alice", "secret")),
            "MAIL FROM:<alice@example.org> AUTH=alice@example.org",
        ],
    );
    assert_snapshot!(h.transcript());
}

#[test]
fn auth_plain_with_challenge() {
    let mut h = over_tls(tls(), alice_only());
    lines(
        &mut h,
        &[
            "AUTH PLAIN",
            &plain("", "alice", "wrong"),
            "AUTH PLAIN",
            &plain("", "alice", "secret"),
        ],
    );
    assert_snapshot!(h.transcript());
}

#[test]
fn auth_login_both_forms() {
    let mut h = over_tls(tls(), alice_only());
    lines(
        &mut h,
        &[
            "AUTH LOGIN",
            &b64("alice"),
            &b64("nope"),
            &format!("AUTH LOGIN {}", b64("alice")),
            &b64("secret"),
        ],
    );
    assert_snapshot!(h.transcript());
}

#[test]
fn auth_cancel_bad_base64_and_empty_response() {
    let mut h = over_tls(tls(), alice_only());
    lines(
        &mut h,
        &[
            "AUTH PLAIN",
            "*",
            "AUTH LOGIN",
            &b64("alice"),
            "*",
            "AUTH PLAIN not-base64!",
            "AUTH PLAIN =",
            "AUTH CRAM-MD5",
            "NOOP",
        ],
    );
    assert_snapshot!(h.transcript());
}

#[test]
fn auth_required_and_unauthenticated_auth_parameter() {
    let mut h = over_tls(
        ServerConfig {
            auth: AuthPolicy::Required,
            ..tls()
        },
        alice_only(),
    );
    lines(
        &mut h,
        &[
            "MAIL FROM:<alice@example.org> AUTH=alice@example.org",
            &format!("AUTH PLAIN {}", plain("", "alice", "secret")),
            "MAIL FROM:<alice@example.org>",
            "AUTH LOGIN",
        ],
    );
    assert_snapshot!(h.transcript());
}
