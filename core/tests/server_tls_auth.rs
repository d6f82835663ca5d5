//! STARTTLS (RFC 3207) and AUTH PLAIN/LOGIN (RFC 4954, RFC 4616).
#[path = "server_util.rs"]
mod util;

use std::time::Duration;

use petrel_core::session::harness::{Policy, ServerHarness, accept_all};
use petrel_core::session::server::{
    AuthPolicy, ConnectionInfo, Request, ServerConfig, ServerEvent, TlsPolicy,
};
use petrel_core::session::{AuthMechanism, Credentials, Decision};
use util::{Driver, b64, codes, config, plain, refuse};

fn tls_offered() -> ServerConfig {
    ServerConfig {
        tls: TlsPolicy::Offer,
        auth: AuthPolicy::Optional,
        ..config()
    }
}

/// A harness past EHLO, STARTTLS, the handshake and the second EHLO.
fn over_tls(config: ServerConfig, policy: Policy) -> ServerHarness {
    let mut h = ServerHarness::new(config, policy);
    h.line("EHLO client.example");
    assert_eq!(h.line("STARTTLS"), "220 2.0.0 Ready to start TLS\r\n");
    assert_eq!(h.complete_tls(), b"");
    assert!(h.line("EHLO client.example").starts_with("250-"));
    h
}

fn credentials(authzid: &str, username: &str, password: &str) -> Credentials {
    Credentials {
        authzid: authzid.into(),
        username: username.into(),
        password: password.into(),
    }
}

fn auth_requests(h: &ServerHarness) -> Vec<(AuthMechanism, Credentials)> {
    h.requests
        .iter()
        .filter_map(|r| match r {
            Request::Auth {
                mechanism,
                credentials,
            } => Some((*mechanism, credentials.clone())),
            _ => None,
        })
        .collect()
}

/// A policy that knows one user, `alice` with password `secret`.
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

// ----- STARTTLS -----

#[test]
fn starttls_asks_the_shell_to_upgrade_and_resets_everything() {
    let mut h = ServerHarness::new(tls_offered(), accept_all());
    let ehlo = h.line("EHLO client.example");
    assert!(ehlo.contains("250-STARTTLS\r\n"), "{ehlo}");
    // AUTH is not offered in plaintext.
    assert!(!ehlo.contains("AUTH"), "{ehlo}");
    assert_eq!(h.line("STARTTLS"), "220 2.0.0 Ready to start TLS\r\n");
    assert!(h.tls_requested);
    assert!(h.transcript().ends_with("E: start TLS\n"));
    assert!(!h.session.is_tls());
    assert_eq!(h.complete_tls(), b"");
    assert!(h.session.is_tls());
    // RFC 3207 section 4.2: everything learnt before is forgotten, EHLO included.
    assert_eq!(h.session.helo(), None);
    assert_eq!(
        h.line("MAIL FROM:<a@example.org>"),
        "503 5.5.1 Error: send HELO/EHLO first\r\n"
    );
    let ehlo = h.line("EHLO client.example");
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    assert!(ehlo.contains("250-AUTH PLAIN LOGIN\r\n"), "{ehlo}");
    assert_eq!(h.line("STARTTLS"), "503 5.5.1 TLS already active\r\n");
    assert_eq!(
        h.line("MAIL FROM:<a@example.org>"),
        "250 2.1.0 Sender ok\r\n"
    );
}

#[test]
fn plaintext_pipelined_after_starttls_is_discarded() {
    let mut h = ServerHarness::new(tls_offered(), accept_all());
    h.line("EHLO client.example");
    // The injection of CVE-2011-0411: commands in the same packet as STARTTLS.
    assert_eq!(
        h.send(b"STARTTLS\r\nMAIL FROM:<evil@example.org>\r\nRCPT TO:<victim@example.org>\r\n"),
        b"220 2.0.0 Ready to start TLS\r\n"
    );
    // And in a later packet before the handshake is done.
    assert_eq!(h.send(b"MAIL FROM:<evil@example.org>\r\n"), b"");
    assert_eq!(h.complete_tls(), b"");
    assert!(
        !h.requests
            .iter()
            .any(|r| matches!(r, Request::Mail { .. } | Request::Rcpt { .. }))
    );
    // Nothing of it survives the handshake: the next line is a fresh command.
    assert_eq!(
        h.line("RCPT TO:<victim@example.org>"),
        "503 5.5.1 Error: need MAIL command\r\n"
    );
}

#[test]
fn starttls_works_one_byte_at_a_time() {
    let mut h = ServerHarness::new(tls_offered(), accept_all());
    h.line("EHLO client.example");
    let mut out = Vec::new();
    for b in b"STARTTLS\r\nNOOP\r\n" {
        out.extend(h.send(std::slice::from_ref(b)));
    }
    assert_eq!(out, b"220 2.0.0 Ready to start TLS\r\n");
    h.complete_tls();
    assert_eq!(h.line("NOOP"), "250 2.0.0 Ok\r\n");
}

#[test]
fn starttls_refusals() {
    let mut h = ServerHarness::new(tls_offered(), accept_all());
    assert_eq!(
        h.line("STARTTLS"),
        "503 5.5.1 Error: send HELO/EHLO first\r\n"
    );
    h.line("EHLO client.example");
    assert_eq!(
        h.line("STARTTLS now"),
        "501 5.5.4 Syntax error: no arguments allowed\r\n"
    );
    h.line("MAIL FROM:<a@example.org>");
    assert_eq!(
        h.line("STARTTLS"),
        "503 5.5.1 Error: MAIL transaction in progress\r\n"
    );
    assert!(!h.tls_requested);

    let mut h = util::ehlo(config());
    assert_eq!(h.line("STARTTLS"), "502 5.5.1 STARTTLS not available\r\n");

    // smtps: TLS from the start, STARTTLS neither offered nor accepted.
    let mut h = ServerHarness::with_info(
        tls_offered(),
        ConnectionInfo {
            peer: "192.0.2.1".into(),
            tls: true,
        },
        accept_all(),
    );
    let ehlo = h.line("EHLO client.example");
    assert!(!ehlo.contains("STARTTLS") && ehlo.contains("AUTH PLAIN LOGIN"));
    assert_eq!(h.line("STARTTLS"), "503 5.5.1 TLS already active\r\n");
}

#[test]
fn required_tls_refuses_everything_but_noop_ehlo_starttls_and_quit() {
    let mut h = ServerHarness::new(
        ServerConfig {
            tls: TlsPolicy::Require,
            ..config()
        },
        accept_all(),
    );
    const MUST: &str = "530 5.7.0 Must issue a STARTTLS command first\r\n";
    assert_eq!(h.line("HELO client.example"), MUST);
    assert!(h.line("EHLO client.example").contains("250-STARTTLS\r\n"));
    assert_eq!(h.line("NOOP"), "250 2.0.0 Ok\r\n");
    for line in [
        "MAIL FROM:<a@example.org>",
        "RCPT TO:<a@example.org>",
        "DATA",
        "RSET",
        "VRFY a",
        "HELP",
        "AUTH PLAIN",
    ] {
        assert_eq!(h.line(line), MUST, "{line}");
    }
    assert_eq!(h.line("STARTTLS"), "220 2.0.0 Ready to start TLS\r\n");
    h.complete_tls();
    h.line("EHLO client.example");
    assert_eq!(
        h.line("MAIL FROM:<a@example.org>"),
        "250 2.1.0 Sender ok\r\n"
    );

    let mut h = ServerHarness::new(
        ServerConfig {
            tls: TlsPolicy::Require,
            ..config()
        },
        accept_all(),
    );
    assert_eq!(h.line("QUIT"), "221 2.0.0 Bye\r\n");
}

#[test]
fn starttls_forgets_an_earlier_authentication() {
    let mut h = util::ehlo(ServerConfig {
        auth_plaintext: true,
        ..tls_offered()
    });
    assert_eq!(
        h.line(&format!("AUTH PLAIN {}", plain("", "alice", "secret"))),
        "235 2.7.0 Authentication successful\r\n"
    );
    assert_eq!(h.session.auth_user(), Some("alice"));
    h.line("STARTTLS");
    h.complete_tls();
    assert_eq!(h.session.auth_user(), None);
    assert!(h.line("EHLO client.example").contains("AUTH PLAIN LOGIN"));
}

#[test]
fn no_plaintext_reply_during_the_handshake() {
    let mut d = Driver::new(tls_offered());
    d.accept();
    d.input(b"EHLO client.example\r\n");
    d.accept();
    d.input(b"STARTTLS\r\n");
    assert_eq!(d.take_events().last(), Some(&ServerEvent::StartTls));
    d.take_output();
    // A handshake that never finishes times out, without writing into it.
    d.advance(300);
    assert_eq!(d.take_output(), "");
    assert_eq!(d.take_events(), [ServerEvent::Close]);

    let mut d = Driver::new(tls_offered());
    d.accept();
    d.input(b"EHLO client.example\r\nSTARTTLS\r\n");
    d.accept();
    d.take_output();
    d.take_events();
    d.session.shutdown();
    d.drain();
    assert_eq!(d.take_output(), "");
    assert_eq!(d.take_events(), [ServerEvent::Close]);
}

// ----- AUTH -----

#[test]
fn auth_is_not_offered_before_tls() {
    let mut h = util::ehlo(tls_offered());
    assert_eq!(
        h.line(&format!("AUTH PLAIN {}", plain("", "alice", "secret"))),
        "538 5.7.11 Encryption required for requested authentication mechanism\r\n"
    );
    assert!(auth_requests(&h).is_empty());
    // Unless configured so.
    let mut h = ServerHarness::new(
        ServerConfig {
            auth_plaintext: true,
            ..tls_offered()
        },
        accept_all(),
    );
    assert!(
        h.line("EHLO client.example")
            .contains("250-AUTH PLAIN LOGIN\r\n")
    );
}

#[test]
fn auth_plain_with_an_initial_response() {
    let mut h = over_tls(tls_offered(), alice_only());
    assert_eq!(
        h.line(&format!("AUTH PLAIN {}", plain("", "alice", "secret"))),
        "235 2.7.0 Authentication successful\r\n"
    );
    assert_eq!(h.session.auth_user(), Some("alice"));
    assert_eq!(
        auth_requests(&h),
        [(AuthMechanism::Plain, credentials("", "alice", "secret"))]
    );
    // Once authenticated: no AUTH in EHLO, and a second AUTH is refused.
    assert!(!h.line("EHLO client.example").contains("AUTH"));
    assert_eq!(
        h.line(&format!("AUTH PLAIN {}", plain("", "alice", "secret"))),
        "503 5.5.1 Already authenticated\r\n"
    );
}

#[test]
fn auth_plain_with_a_challenge() {
    let mut h = over_tls(tls_offered(), alice_only());
    assert_eq!(h.line("auth plain"), "334 \r\n");
    assert_eq!(
        h.line(&plain("admin", "alice", "secret")),
        "235 2.7.0 Authentication successful\r\n"
    );
    assert_eq!(
        auth_requests(&h),
        [(
            AuthMechanism::Plain,
            credentials("admin", "alice", "secret")
        )]
    );
}

#[test]
fn auth_login_in_both_forms() {
    let mut h = over_tls(tls_offered(), alice_only());
    assert_eq!(h.line("AUTH LOGIN"), "334 VXNlcm5hbWU6\r\n");
    assert_eq!(h.line(&b64("alice")), "334 UGFzc3dvcmQ6\r\n");
    assert_eq!(
        h.line(&b64("secret")),
        "235 2.7.0 Authentication successful\r\n"
    );

    let mut h = over_tls(tls_offered(), alice_only());
    assert_eq!(
        h.line(&format!("AUTH LOGIN {}", b64("alice"))),
        "334 UGFzc3dvcmQ6\r\n"
    );
    assert_eq!(
        h.line(&b64("secret")),
        "235 2.7.0 Authentication successful\r\n"
    );
    assert_eq!(
        auth_requests(&h),
        [(AuthMechanism::Login, credentials("", "alice", "secret"))]
    );
}

#[test]
fn an_equals_sign_is_an_empty_response() {
    // LOGIN with an empty password: the shell sees "".
    let mut h = over_tls(tls_offered(), alice_only());
    h.line(&format!("AUTH LOGIN {}", b64("alice")));
    assert_eq!(
        h.line("="),
        "535 5.7.8 Authentication credentials invalid\r\n"
    );
    assert_eq!(
        auth_requests(&h),
        [(AuthMechanism::Login, credentials("", "alice", ""))]
    );
    // An empty PLAIN message cannot hold credentials: refused without asking the shell.
    let mut h = over_tls(tls_offered(), accept_all());
    assert_eq!(
        h.line("AUTH PLAIN ="),
        "535 5.7.8 Authentication credentials invalid\r\n"
    );
    assert_eq!(h.line("AUTH PLAIN"), "334 \r\n");
    assert_eq!(
        h.line("="),
        "535 5.7.8 Authentication credentials invalid\r\n"
    );
    assert!(auth_requests(&h).is_empty());
    assert_eq!(h.session.auth_user(), None);
}

#[test]
fn a_star_cancels_the_exchange_with_501() {
    const CANCELLED: &str = "501 5.7.0 Authentication cancelled\r\n";
    let mut h = over_tls(tls_offered(), accept_all());
    h.line("AUTH PLAIN");
    assert_eq!(h.line("*"), CANCELLED);
    h.line("AUTH LOGIN");
    assert_eq!(h.line("*"), CANCELLED);
    h.line("AUTH LOGIN");
    h.line(&b64("alice"));
    assert_eq!(h.line("*"), CANCELLED);
    h.line(&format!("AUTH LOGIN {}", b64("alice")));
    assert_eq!(h.line("*"), CANCELLED);
    assert!(auth_requests(&h).is_empty());
    // Back to commands, and a new exchange may start.
    assert_eq!(h.line("NOOP"), "250 2.0.0 Ok\r\n");
    assert_eq!(
        h.line(&format!("AUTH PLAIN {}", plain("", "alice", "secret"))),
        "235 2.7.0 Authentication successful\r\n"
    );
}

#[test]
fn bad_base64_gets_501() {
    let mut h = over_tls(tls_offered(), accept_all());
    assert_eq!(
        h.line("AUTH PLAIN !!!!"),
        "501 5.5.2 Invalid base64 data\r\n"
    );
    h.line("AUTH LOGIN");
    assert_eq!(h.line("not base64"), "501 5.5.2 Invalid base64 data\r\n");
    assert_eq!(h.line("NOOP"), "250 2.0.0 Ok\r\n");
    assert!(auth_requests(&h).is_empty());
}

#[test]
fn malformed_plain_messages_are_refused() {
    let mut h = over_tls(tls_offered(), accept_all());
    for message in ["alice\0secret", "\0\0secret", "a\0b\0c\0d"] {
        assert_eq!(
            h.line(&format!("AUTH PLAIN {}", b64(message))),
            "535 5.7.8 Authentication credentials invalid\r\n",
            "{message:?}"
        );
    }
    assert!(auth_requests(&h).is_empty());
}

#[test]
fn auth_lines_may_be_12288_octets_and_no_more() {
    let mut h = over_tls(tls_offered(), accept_all());
    h.line("AUTH PLAIN");
    let password = "p".repeat(9206);
    let response = plain("", "alice", &password);
    assert_eq!(response.len(), 12284);
    assert_eq!(h.line(&response), "235 2.7.0 Authentication successful\r\n");
    assert_eq!(auth_requests(&h)[0].1.password.len(), 9206);

    let mut h = over_tls(tls_offered(), accept_all());
    h.line("AUTH PLAIN");
    // 12287 octets and CRLF: one too many.
    assert_eq!(
        h.line(&"A".repeat(12287)),
        "500 5.5.6 Authentication exchange line is too long\r\n"
    );
    assert_eq!(h.line("NOOP"), "250 2.0.0 Ok\r\n");
    // Also when it arrives in pieces.
    h.line("AUTH PLAIN");
    assert_eq!(h.send("A".repeat(20000).as_bytes()), b"");
    assert_eq!(
        h.send(b"AAAA\r\nNOOP\r\n"),
        b"500 5.5.6 Authentication exchange line is too long\r\n250 2.0.0 Ok\r\n"
    );
    assert!(auth_requests(&h).is_empty());
}

#[test]
fn bare_line_endings_in_sasl_responses_are_refused() {
    let mut h = over_tls(tls_offered(), accept_all());
    h.line("AUTH PLAIN");
    let mut line = plain("", "alice", "secret").into_bytes();
    line.push(b'\n');
    assert_eq!(
        h.send(&line),
        b"500 5.5.2 Syntax error: bare <LF> received; lines must end with <CR><LF>\r\n"
    );
    assert!(auth_requests(&h).is_empty());
    assert_eq!(h.line("NOOP"), "250 2.0.0 Ok\r\n");
}

#[test]
fn auth_refusals_by_the_policy_are_sent_and_counted() {
    let mut h = over_tls(
        ServerConfig {
            max_errors: 3,
            ..tls_offered()
        },
        alice_only(),
    );
    for _ in 0..2 {
        assert_eq!(
            h.line(&format!("AUTH PLAIN {}", plain("", "alice", "guess"))),
            "535 5.7.8 Authentication credentials invalid\r\n"
        );
        assert_eq!(h.session.auth_user(), None);
    }
    // The third failure reaches the error limit: no endless password guessing.
    assert_eq!(
        codes(
            h.line(&format!("AUTH PLAIN {}", plain("", "alice", "guess")))
                .as_bytes()
        ),
        ["535 5.7.8", "421 4.7.0"]
    );
    assert!(h.closed);
}

#[test]
fn a_temporary_auth_failure_from_the_shell() {
    let mut h = over_tls(
        tls_offered(),
        Box::new(|r| match r {
            Request::Auth { .. } => refuse(454, (4, 7, 0), "Temporary authentication failure"),
            _ => Decision::Accept,
        }),
    );
    assert_eq!(
        h.line(&format!("AUTH PLAIN {}", plain("", "alice", "secret"))),
        "454 4.7.0 Temporary authentication failure\r\n"
    );
    assert!(!h.closed);
}

#[test]
fn auth_sequencing_errors() {
    let mut h = ServerHarness::new(tls_offered(), accept_all());
    h.line("EHLO client.example");
    h.line("STARTTLS");
    h.complete_tls();
    assert_eq!(
        h.line("AUTH PLAIN"),
        "503 5.5.1 Error: send HELO/EHLO first\r\n"
    );
    h.line("EHLO client.example");
    assert_eq!(
        h.line("AUTH CRAM-MD5"),
        "504 5.5.4 Unrecognized authentication mechanism\r\n"
    );
    assert_eq!(
        h.line("AUTH"),
        "501 5.5.4 Syntax error: AUTH needs a mechanism\r\n"
    );
    h.line("MAIL FROM:<a@example.org>");
    assert_eq!(
        h.line(&format!("AUTH PLAIN {}", plain("", "alice", "secret"))),
        "503 5.5.1 Error: MAIL transaction in progress\r\n"
    );
    // AUTH switched off.
    let mut h = over_tls(
        ServerConfig {
            auth: AuthPolicy::Off,
            ..tls_offered()
        },
        accept_all(),
    );
    assert_eq!(h.line("AUTH PLAIN"), "502 5.5.1 AUTH not available\r\n");
}

#[test]
fn required_auth_refuses_mail_until_authenticated() {
    let mut h = over_tls(
        ServerConfig {
            auth: AuthPolicy::Required,
            ..tls_offered()
        },
        alice_only(),
    );
    assert_eq!(
        h.line("MAIL FROM:<a@example.org>"),
        "530 5.7.0 Authentication required\r\n"
    );
    h.line(&format!("AUTH PLAIN {}", plain("", "alice", "secret")));
    assert_eq!(
        h.line("MAIL FROM:<a@example.org>"),
        "250 2.1.0 Sender ok\r\n"
    );
}

#[test]
fn the_auth_parameter_is_trusted_only_from_authenticated_clients() {
    let mut h = over_tls(tls_offered(), accept_all());
    assert_eq!(
        h.line("MAIL FROM:<a@example.org> AUTH=bob@example.org"),
        "250 2.1.0 Sender ok\r\n"
    );
    let Some(Request::Mail { params, .. }) = h.requests.last() else {
        panic!()
    };
    // RFC 4954 section 5: from an unauthenticated client it becomes <>.
    assert_eq!(params.auth.as_deref(), Some(""));
    h.line("RSET");
    h.line(&format!("AUTH PLAIN {}", plain("", "alice", "secret")));
    h.line("MAIL FROM:<a@example.org> AUTH=bob+2B1@example.org");
    let Some(Request::Mail { params, .. }) = h.requests.last() else {
        panic!()
    };
    assert_eq!(params.auth.as_deref(), Some("bob+1@example.org"));
}

#[test]
fn commands_pipelined_after_auth_wait_for_its_answer() {
    let mut d = Driver::new(tls_offered());
    d.accept();
    d.input(b"EHLO client.example\r\nSTARTTLS\r\n");
    d.accept();
    d.session.tls_established(d.now);
    d.input(b"EHLO client.example\r\n");
    d.accept();
    d.take_output();
    let line = format!(
        "AUTH PLAIN {}\r\nMAIL FROM:<a@example.org> AUTH=alice@example.org\r\n",
        plain("", "alice", "secret")
    );
    d.input(line.as_bytes());
    assert!(matches!(d.peek(), Some(Request::Auth { .. })));
    assert_eq!(d.pending.len(), 1);
    assert_eq!(d.take_output(), "");
    d.accept();
    assert_eq!(d.take_output(), "235 2.7.0 Authentication successful\r\n");
    // The MAIL was parsed after the authentication, so its AUTH= is kept.
    let Some(Request::Mail { params, .. }) = d.peek() else {
        panic!("{:?}", d.pending)
    };
    assert_eq!(params.auth.as_deref(), Some("alice@example.org"));
}

#[test]
fn auth_one_byte_at_a_time() {
    let mut h = over_tls(tls_offered(), alice_only());
    let wire = format!(
        "AUTH LOGIN\r\n{}\r\n{}\r\nNOOP\r\n",
        b64("alice"),
        b64("secret")
    );
    let mut out = Vec::new();
    for b in wire.as_bytes() {
        out.extend(h.send(std::slice::from_ref(b)));
    }
    assert_eq!(
        String::from_utf8_lossy(&out),
        "334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n235 2.7.0 Authentication successful\r\n\
         250 2.0.0 Ok\r\n"
    );
}

#[test]
fn the_sasl_exchange_uses_the_command_timeout() {
    let mut h = over_tls(
        ServerConfig {
            command_timeout: Duration::from_secs(100),
            ..tls_offered()
        },
        accept_all(),
    );
    h.line("AUTH PLAIN");
    assert_eq!(h.advance(Duration::from_secs(99)), b"");
    assert_eq!(
        h.advance(Duration::from_secs(1)),
        b"421 4.4.2 localhost Error: timeout exceeded\r\n"
    );
}
