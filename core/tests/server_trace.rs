//! The machine's trace for the reporting stream: client lines (credentials masked), reply
//! lines, the end of data and timeouts.
#[path = "server_util.rs"]
mod util;

use std::time::Duration;

use petrel_core::session::harness::{ServerHarness, accept_all};
use petrel_core::session::server::{AuthPolicy, ServerConfig, TlsPolicy, Trace};
use util::{b64, config};

fn traced() -> ServerConfig {
    ServerConfig {
        trace: true,
        auth: AuthPolicy::Optional,
        auth_plaintext: true,
        tls: TlsPolicy::Off,
        ..config()
    }
}

fn lines(h: &ServerHarness) -> Vec<String> {
    h.traces
        .iter()
        .map(|t| match t {
            Trace::Client(l) => format!("C: {l}"),
            Trace::Server(l) => format!("S: {l}"),
            Trace::Timeout => "timeout".to_owned(),
        })
        .collect()
}

#[test]
fn a_transaction_is_traced_line_by_line() {
    let mut h = ServerHarness::new(traced(), accept_all());
    h.line("HELO client.example");
    h.line("MAIL FROM:<a@example.org>");
    h.line("RCPT TO:<b@example.net>");
    h.line("DATA");
    h.send(b"Subject: x\r\n\r\n..dot\r\n.\r\n");
    h.line("QUIT");
    insta::assert_snapshot!(lines(&h).join("\n"));
}

#[test]
fn ehlo_reply_lines_are_traced_one_by_one() {
    let mut h = ServerHarness::new(traced(), accept_all());
    h.line("EHLO client.example");
    let server: Vec<String> = h
        .traces
        .iter()
        .filter_map(|t| match t {
            Trace::Server(l) => Some(l.clone()),
            _ => None,
        })
        .collect();
    assert!(server[0].starts_with("220 "));
    assert!(server[1].starts_with("250-localhost Hello client.example"));
    assert!(server.last().is_some_and(|l| l == "250 HELP"));
    assert!(
        server
            .iter()
            .all(|l| !l.contains('\r') && !l.contains('\n'))
    );
}

#[test]
fn credentials_never_appear_in_the_trace() {
    let secret = b64("\0alice\0hunter2");
    let user = b64("alice");
    let pass = b64("hunter2");
    let mut h = ServerHarness::new(traced(), accept_all());
    h.line("EHLO client.example");
    h.line(&format!("AUTH PLAIN {secret}"));
    h.line("RSET");
    let mut h2 = ServerHarness::new(traced(), accept_all());
    h2.line("EHLO client.example");
    h2.line("AUTH PLAIN");
    h2.line(&secret);
    let mut h3 = ServerHarness::new(traced(), accept_all());
    h3.line("EHLO client.example");
    h3.line(&format!("auth login {user}"));
    h3.line(&pass);
    for (h, expected) in [
        (&h, "C: AUTH PLAIN ********"),
        (&h2, "C: ********"),
        (&h3, "C: auth login ********"),
    ] {
        let all = lines(h).join("\n");
        assert!(all.contains(expected), "{all}");
        for leak in [&secret, &user, &pass, &"hunter2".to_owned()] {
            assert!(!all.contains(leak.as_str()), "{leak} leaked: {all}");
        }
    }
}

#[test]
fn a_timeout_is_traced_before_its_421() {
    let mut h = ServerHarness::new(traced(), accept_all());
    h.line("EHLO client.example");
    h.advance(Duration::from_secs(301));
    let all = lines(&h);
    let at = all.iter().position(|l| l == "timeout").expect("no timeout");
    assert!(all[at + 1].starts_with("S: 421 "), "{all:?}");
}

#[test]
fn nothing_is_traced_unless_asked() {
    let mut h = ServerHarness::new(config(), accept_all());
    h.line("EHLO client.example");
    h.line("QUIT");
    assert!(h.traces.is_empty());
}
