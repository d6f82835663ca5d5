//! The client machine against scripted servers: every test feeds the server's replies byte for
//! byte and checks the exact bytes the client wrote in answer, and the events it raised.
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use petrel_core::Time;
use petrel_core::session::client::{
    ClientConfig, ClientEvent, ClientSession, ClientTimeouts, ClientTls, Message, OutcomeKind,
    Protocol, SessionError, Stage, TransactionReport, TxId,
};
use petrel_core::smtp::{
    Body, EnhancedCode, ForwardPath, MailParams, Mailbox, Notify, Orcpt, RcptParams, Ret,
    ReversePath,
};

// ----- the scripted server -----

/// A client machine driven by hand: the test plays the server.
struct Script {
    client: ClientSession,
    now: Time,
    /// Events not yet looked at.
    events: Vec<ClientEvent>,
}

impl Script {
    fn new(config: ClientConfig) -> Script {
        Self::with_tls(config, false)
    }

    fn with_tls(config: ClientConfig, tls: bool) -> Script {
        let now = Time::from_secs(1_700_000_000);
        Script {
            client: ClientSession::new(Arc::new(config), tls, now),
            now,
            events: Vec::new(),
        }
    }

    /// Drains the machine as the contract says: transmitted bytes first, then events.
    fn drain(&mut self) -> String {
        let mut out = Vec::new();
        while let Some(bytes) = self.client.poll_transmit() {
            assert!(!bytes.is_empty(), "poll_transmit gave an empty buffer");
            out.extend(bytes);
        }
        while let Some(e) = self.client.poll_event() {
            self.events.push(e);
        }
        String::from_utf8(out).expect("the client writes text here")
    }

    /// The server sends `reply`; returns what the client wrote back.
    fn reply(&mut self, reply: &str) -> String {
        self.client.handle_input(reply.as_bytes(), self.now);
        self.drain()
    }

    /// Like [`reply`](Self::reply), one byte at a time.
    fn reply_bytewise(&mut self, reply: &str) -> String {
        let mut out = String::new();
        for b in reply.as_bytes() {
            self.client.handle_input(std::slice::from_ref(b), self.now);
            out.push_str(&self.drain());
        }
        out
    }

    /// The server sends `reply` and the client must answer exactly `expected`.
    #[track_caller]
    fn step(&mut self, reply: &str, expected: &str) {
        let sent = self.reply(reply);
        assert_eq!(sent, expected, "after the server said {reply:?}");
    }

    /// Gives the client a message; returns what it wrote at once.
    fn send(&mut self, message: Message) -> (TxId, String) {
        let id = self.client.send(message, self.now);
        (id, self.drain())
    }

    fn quit(&mut self) -> String {
        self.client.quit(self.now);
        self.drain()
    }

    fn advance(&mut self, d: Duration) -> String {
        self.now = self.now + d;
        self.client.handle_timeout(self.now);
        self.drain()
    }

    fn eof(&mut self) -> String {
        self.client.handle_eof(self.now);
        self.drain()
    }

    fn take_events(&mut self) -> Vec<ClientEvent> {
        std::mem::take(&mut self.events)
    }

    /// The reports raised so far (the other events are dropped).
    fn reports(&mut self) -> Vec<TransactionReport> {
        self.take_events()
            .into_iter()
            .filter_map(|e| match e {
                ClientEvent::Done(r) => Some(r),
                _ => None,
            })
            .collect()
    }

    /// The single report raised so far.
    #[track_caller]
    fn report(&mut self) -> TransactionReport {
        let mut r = self.reports();
        assert_eq!(r.len(), 1, "{r:?}");
        r.remove(0)
    }

    /// Asserts the session ended with `Failed` at `stage`, then `Close`; returns the error.
    #[track_caller]
    fn failed(&mut self, stage: Stage) -> SessionError {
        let events: Vec<_> = self
            .take_events()
            .into_iter()
            .filter(|e| !matches!(e, ClientEvent::Done(_)))
            .collect();
        match &events[..] {
            [ClientEvent::Failed(e), ClientEvent::Close] => {
                assert_eq!(e.stage, stage, "{e:?}");
                assert!(self.client.is_closed());
                e.clone()
            }
            other => panic!("expected Failed then Close, got {other:?}"),
        }
    }

    /// Greets and answers EHLO with `keywords`; the client must then be ready.
    fn setup(&mut self, keywords: &[&str]) {
        self.step("220 mx.example ESMTP\r\n", "EHLO client.example\r\n");
        let sent = self.reply(&ehlo(keywords));
        assert_eq!(sent, "");
        assert_eq!(self.take_events(), [ClientEvent::Ready]);
    }

    fn deadline(&self) -> Duration {
        let t = self.client.poll_timeout().expect("a deadline");
        t.saturating_since(self.now)
    }
}

/// An EHLO reply offering `keywords`.
fn ehlo(keywords: &[&str]) -> String {
    let mut lines = vec!["mx.example Hello client.example".to_string()];
    lines.extend(keywords.iter().map(|k| (*k).to_string()));
    let last = lines.len() - 1;
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| format!("250{}{l}\r\n", if i == last { ' ' } else { '-' }))
        .collect()
}

fn config() -> ClientConfig {
    ClientConfig {
        helo: "client.example".into(),
        tls: ClientTls::Off,
        ..ClientConfig::default()
    }
}

fn mailbox(s: &str) -> Mailbox {
    Mailbox::parse(s, true).unwrap()
}

fn message(rcpts: &[&str], content: &str) -> Message {
    Message {
        from: ReversePath::Mailbox(mailbox("alice@example.org")),
        params: MailParams::default(),
        rcpts: rcpts
            .iter()
            .map(|r| (ForwardPath::Mailbox(mailbox(r)), RcptParams::default()))
            .collect(),
        content: Arc::from(content.as_bytes()),
    }
}

fn kinds(report: &TransactionReport) -> Vec<OutcomeKind> {
    report.rcpts.iter().map(|o| o.kind).collect()
}

fn codes(report: &TransactionReport) -> Vec<u16> {
    report.rcpts.iter().map(|o| o.reply.code).collect()
}

use OutcomeKind::{Delivered, Permanent, Temporary};

const PIPELINING: &[&str] = &["PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"];
const PLAIN: &[&str] = &["8BITMIME", "ENHANCEDSTATUSCODES"];
const MAIL_OK: &str = "250 2.1.0 Sender ok\r\n";
const RCPT_OK: &str = "250 2.1.5 Recipient ok\r\n";
const GO_AHEAD: &str = "354 End data with <CR><LF>.<CR><LF>\r\n";
const ACCEPTED: &str = "250 2.0.0 Ok: queued as 1234\r\n";

// ----- greeting -----

#[test]
fn waits_for_the_greeting_before_saying_anything() {
    let mut s = Script::new(config());
    assert_eq!(s.drain(), "");
    let (_, sent) = s.send(message(&["bob@example.net"], "x\r\n"));
    assert_eq!(sent, "", "nothing before the greeting");
    assert_eq!(
        s.reply("220-mx.example ESMTP\r\n"),
        "",
        "greeting not finished"
    );
    s.step("220 second line\r\n", "EHLO client.example\r\n");
    assert_eq!(s.client.greeting().unwrap().code, 220);
    assert_eq!(
        s.client.greeting().unwrap().text,
        "mx.example ESMTP\nsecond line"
    );
}

#[test]
fn greeting_554_fails_the_session_politely() {
    let mut s = Script::new(config());
    let (id, _) = s.send(message(&["bob@example.net", "carol@example.net"], "x\r\n"));
    s.step("554 5.7.1 go away\r\n", "QUIT\r\n");
    let events = s.take_events();
    let ClientEvent::Done(report) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(report.id, id);
    // Another server (the next MX) may take the mail: the failure is temporary.
    assert_eq!(kinds(report), [Temporary, Temporary]);
    assert!(report.rcpts.iter().all(|o| o.remote && o.reply.code == 554));
    s.events = events[1..].to_vec();
    let e = s.failed(Stage::Greeting);
    assert_eq!((e.reply.code, e.remote), (554, true));
}

#[test]
fn greeting_421_closes_without_quit() {
    let mut s = Script::new(config());
    s.send(message(&["bob@example.net"], "x\r\n"));
    s.step("421 4.3.2 mx.example busy\r\n", "");
    let report = s.report_then_failed(Stage::Greeting);
    assert_eq!(kinds(&report), [Temporary]);
    assert_eq!(report.rcpts[0].reply.code, 421);
}

impl Script {
    /// One report, then `Failed` at `stage` and `Close`.
    #[track_caller]
    fn report_then_failed(&mut self, stage: Stage) -> TransactionReport {
        let events = self.take_events();
        let ClientEvent::Done(report) = events.first().cloned().expect("events") else {
            panic!("{events:?}")
        };
        self.events = events[1..].to_vec();
        self.failed(stage);
        report
    }
}

// ----- EHLO and HELO -----

#[test]
fn ehlo_refused_falls_back_to_helo() {
    for code in ["500 5.5.1 what?", "502 5.5.2 not implemented", "554 no"] {
        let mut s = Script::new(config());
        s.step("220 old.example\r\n", "EHLO client.example\r\n");
        s.step(&format!("{code}\r\n"), "HELO client.example\r\n");
        s.step("250 old.example\r\n", "");
        assert_eq!(s.take_events(), [ClientEvent::Ready]);
        assert!(!s.client.extensions().esmtp);
        // No ESMTP, so no parameters and no pipelining.
        let mut m = message(&["bob@example.net", "carol@example.net"], "hi\r\n");
        m.params.body = Some(Body::SevenBit);
        m.params.ret = Some(Ret::Full);
        let (_, sent) = s.send(m);
        assert_eq!(sent, "MAIL FROM:<alice@example.org>\r\n");
        s.step("250 ok\r\n", "RCPT TO:<bob@example.net>\r\n");
        s.step("250 ok\r\n", "RCPT TO:<carol@example.net>\r\n");
        s.step("250 ok\r\n", "DATA\r\n");
        s.step("354 go\r\n", "hi\r\n.\r\n");
        s.step("250 ok\r\n", "");
        assert_eq!(kinds(&s.report()), [Delivered, Delivered]);
    }
}

#[test]
fn ehlo_temporary_failure_ends_the_session() {
    let mut s = Script::new(config());
    s.send(message(&["bob@example.net"], "x\r\n"));
    s.step("220 mx.example\r\n", "EHLO client.example\r\n");
    s.step("451 4.3.0 try later\r\n", "QUIT\r\n");
    let report = s.report_then_failed(Stage::Helo);
    assert_eq!(kinds(&report), [Temporary]);
}

#[test]
fn helo_refused_ends_the_session() {
    let mut s = Script::new(config());
    s.step("220 mx.example\r\n", "EHLO client.example\r\n");
    s.step("500 no\r\n", "HELO client.example\r\n");
    s.step("550 not you\r\n", "QUIT\r\n");
    let e = s.failed(Stage::Helo);
    assert_eq!((e.reply.code, e.remote), (550, true));
}

#[test]
fn reads_the_ehlo_keywords() {
    let mut s = Script::new(config());
    s.step("220 mx.example\r\n", "EHLO client.example\r\n");
    s.reply(&ehlo(&[
        "pipelining",
        "SIZE 1000",
        "8BITMIME",
        "AUTH=LOGIN",
        "AUTH plain login",
        "DSN",
        "SMTPUTF8",
        "CHUNKING",
        "BINARYMIME",
        "ENHANCEDSTATUSCODES",
        "STARTTLS",
        "X-UNKNOWN whatever",
    ]));
    let ext = s.client.extensions();
    assert!(ext.esmtp && ext.pipelining && ext.eight_bit_mime && ext.dsn && ext.smtputf8);
    assert!(ext.chunking && ext.binarymime && ext.enhanced_status_codes && ext.starttls);
    assert_eq!(ext.size, Some(1000));
    assert!(ext.auth.contains(&"PLAIN".to_string()));
    assert!(ext.auth.contains(&"LOGIN".to_string()));
}

// ----- odd replies -----

/// A full session with `transform` applied to every server reply.
fn session_with_replies(transform: impl Fn(&str) -> String, bytewise: bool) {
    let mut s = Script::new(config());
    let say = |s: &mut Script, reply: &str, expected: &str| {
        let wire = transform(reply);
        let sent = if bytewise {
            s.reply_bytewise(&wire)
        } else {
            s.reply(&wire)
        };
        assert_eq!(sent, expected, "after {wire:?}");
    };
    say(
        &mut s,
        "220-mx.example ESMTP\r\n220 hi\r\n",
        "EHLO client.example\r\n",
    );
    say(&mut s, &ehlo(&["PIPELINING", "SIZE 100"]), "");
    assert!(s.client.extensions().pipelining);
    assert_eq!(s.take_events(), [ClientEvent::Ready]);
    let (_, sent) = s.send(message(&["a@example.net", "b@example.net"], "x\r\n"));
    assert_eq!(
        sent,
        "MAIL FROM:<alice@example.org> SIZE=3\r\nRCPT TO:<a@example.net>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n"
    );
    say(&mut s, "250 Ok\r\n", "");
    say(&mut s, "550-5.1.1 no such\r\n550 5.1.1 user\r\n", "");
    say(
        &mut s,
        "250-2.1.5 Recipient\r\n250-2.1.5 is\r\n250 2.1.5 ok\r\n",
        "",
    );
    say(&mut s, "354 go\r\n", "x\r\n.\r\n");
    say(&mut s, "250 2.0.0\r\n", "");
    let report = s.report_and_ready();
    assert_eq!(kinds(&report), [Permanent, Delivered]);
    assert_eq!(
        report.rcpts[0].reply.enhanced,
        Some(EnhancedCode::new(5, 1, 1))
    );
    assert_eq!(report.rcpts[0].reply.text, "no such\nuser");
    assert_eq!(
        report.rcpts[1].reply.enhanced,
        Some(EnhancedCode::new(2, 0, 0))
    );
}

#[test]
fn replies_with_crlf() {
    session_with_replies(str::to_string, false);
}

#[test]
fn replies_with_bare_lf() {
    session_with_replies(|r| r.replace("\r\n", "\n"), false);
}

#[test]
fn replies_split_at_every_byte() {
    session_with_replies(str::to_string, true);
    session_with_replies(|r| r.replace("\r\n", "\n"), true);
}

#[test]
fn replies_without_text_or_enhanced_codes() {
    let mut s = Script::new(config());
    s.step("220\r\n", "EHLO client.example\r\n");
    s.step("250\r\n", "");
    assert_eq!(s.take_events(), [ClientEvent::Ready]);
    assert!(s.client.extensions().esmtp);
    s.send(message(&["a@example.net", "b@example.net"], "x\r\n"));
    s.step("250\r\n", "RCPT TO:<a@example.net>\r\n");
    s.step("450\r\n", "RCPT TO:<b@example.net>\r\n");
    s.step("250 \r\n", "DATA\r\n");
    s.step("354\r\n", "x\r\n.\r\n");
    s.step("250\r\n", "");
    let report = s.report();
    assert_eq!(kinds(&report), [Temporary, Delivered]);
    assert_eq!(report.rcpts[0].reply.enhanced, None);
    assert_eq!(report.rcpts[0].reply.text, "");
}

#[test]
fn several_replies_in_one_read() {
    let mut s = Script::new(config());
    s.setup(PIPELINING);
    s.send(message(&["a@example.net", "b@example.net"], "x\r\n"));
    let sent = s.reply(&format!("{MAIL_OK}{RCPT_OK}{RCPT_OK}{GO_AHEAD}"));
    assert_eq!(sent, "x\r\n.\r\n");
    s.step(ACCEPTED, "");
    assert_eq!(kinds(&s.report()), [Delivered, Delivered]);
}

#[test]
fn garbage_from_the_server_fails_the_session() {
    let mut s = Script::new(config());
    s.send(message(&["a@example.net"], "x\r\n"));
    s.step("HTTP/1.0 200 OK\r\n", "");
    let report = s.report_then_failed(Stage::Greeting);
    assert_eq!(kinds(&report), [Temporary]);
    assert!(!report.rcpts[0].remote);
}

// ----- STARTTLS -----

fn tls_config(tls: ClientTls) -> ClientConfig {
    ClientConfig { tls, ..config() }
}

impl Script {
    fn tls_done(&mut self) -> String {
        self.client.tls_established(self.now);
        self.drain()
    }
}

#[test]
fn opportunistic_tls_used_when_offered_then_ehlo_again() {
    let mut s = Script::new(tls_config(ClientTls::Opportunistic));
    s.step("220 mx.example\r\n", "EHLO client.example\r\n");
    s.step(&ehlo(&["PIPELINING", "STARTTLS"]), "STARTTLS\r\n");
    // Whatever follows the 220 in the same read was sent in plaintext: it is thrown away.
    s.step("220 2.0.0 Ready to start TLS\r\n250 injected\r\n", "");
    assert_eq!(s.take_events(), [ClientEvent::StartTls]);
    assert!(!s.client.is_tls());
    assert_eq!(
        s.reply("250 more injected\r\n"),
        "",
        "no input during the handshake"
    );
    s.step_tls("EHLO client.example\r\n");
    assert!(s.client.is_tls());
    // A server that offers STARTTLS again is not taken up on it.
    s.step(&ehlo(&["STARTTLS", "SIZE 10"]), "");
    assert_eq!(s.take_events(), [ClientEvent::Ready]);
    assert_eq!(s.client.extensions().size, Some(10));
    assert!(
        !s.client.extensions().pipelining,
        "extensions from before TLS forgotten"
    );
}

impl Script {
    #[track_caller]
    fn step_tls(&mut self, expected: &str) {
        assert_eq!(self.tls_done(), expected);
    }
}

#[test]
fn opportunistic_tls_refused_continues_in_plaintext() {
    for refusal in ["454 4.7.0 TLS not available\r\n", "502 5.5.1 no\r\n"] {
        let mut s = Script::new(tls_config(ClientTls::Opportunistic));
        s.step("220 mx.example\r\n", "EHLO client.example\r\n");
        s.step(&ehlo(&["STARTTLS"]), "STARTTLS\r\n");
        s.step(refusal, "");
        assert_eq!(s.take_events(), [ClientEvent::Ready]);
        assert!(!s.client.is_tls());
        let (_, sent) = s.send(message(&["a@example.net"], "x\r\n"));
        assert_eq!(sent, "MAIL FROM:<alice@example.org>\r\n");
    }
}

#[test]
fn opportunistic_tls_not_offered_is_plaintext() {
    let mut s = Script::new(tls_config(ClientTls::Opportunistic));
    s.setup(&["SIZE 100"]);
    assert!(!s.client.is_tls());
}

#[test]
fn tls_off_never_starts_tls() {
    let mut s = Script::new(tls_config(ClientTls::Off));
    s.setup(&["STARTTLS"]);
    assert!(!s.client.is_tls());
}

#[test]
fn required_tls_used() {
    let mut s = Script::new(tls_config(ClientTls::Required));
    s.step("220 mx.example\r\n", "EHLO client.example\r\n");
    s.step(&ehlo(&["STARTTLS"]), "STARTTLS\r\n");
    s.step("220 go ahead\r\n", "");
    assert_eq!(s.take_events(), [ClientEvent::StartTls]);
    s.step_tls("EHLO client.example\r\n");
    s.step(&ehlo(&[]), "");
    assert_eq!(s.take_events(), [ClientEvent::Ready]);
    assert!(s.client.is_tls());
}

#[test]
fn required_tls_not_offered_fails_temporarily() {
    let mut s = Script::new(tls_config(ClientTls::Required));
    s.send(message(&["a@example.net", "b@example.net"], "x\r\n"));
    s.step("220 mx.example\r\n", "EHLO client.example\r\n");
    s.step(&ehlo(&["PIPELINING"]), "QUIT\r\n");
    let report = s.report_then_failed(Stage::StartTls);
    assert_eq!(kinds(&report), [Temporary, Temporary]);
    assert!(!report.rcpts[0].remote);
    assert_eq!(report.rcpts[0].reply.code / 100, 4);
}

#[test]
fn required_tls_not_offered_after_helo_fallback() {
    let mut s = Script::new(tls_config(ClientTls::Required));
    s.step("220 mx.example\r\n", "EHLO client.example\r\n");
    s.step("502 no\r\n", "HELO client.example\r\n");
    s.step("250 old.example\r\n", "QUIT\r\n");
    s.failed(Stage::StartTls);
}

#[test]
fn required_tls_refused_fails_temporarily() {
    for refusal in [
        "454 4.7.0 TLS not available\r\n",
        "554 5.7.0 no TLS for you\r\n",
    ] {
        let mut s = Script::new(tls_config(ClientTls::Required));
        s.send(message(&["a@example.net"], "x\r\n"));
        s.step("220 mx.example\r\n", "EHLO client.example\r\n");
        s.step(&ehlo(&["STARTTLS"]), "STARTTLS\r\n");
        s.step(refusal, "QUIT\r\n");
        let report = s.report_then_failed(Stage::StartTls);
        assert_eq!(kinds(&report), [Temporary]);
        assert!(report.rcpts[0].remote);
    }
}

#[test]
fn failed_handshake_fails_the_session() {
    let mut s = Script::new(tls_config(ClientTls::Opportunistic));
    s.send(message(&["a@example.net"], "x\r\n"));
    s.step("220 mx.example\r\n", "EHLO client.example\r\n");
    s.step(&ehlo(&["STARTTLS"]), "STARTTLS\r\n");
    s.step("220 go ahead\r\n", "");
    assert_eq!(s.take_events(), [ClientEvent::StartTls]);
    assert_eq!(s.eof(), "");
    let report = s.report_then_failed(Stage::StartTls);
    assert_eq!(kinds(&report), [Temporary]);
}

#[test]
fn implicit_tls_skips_starttls() {
    let mut s = Script::with_tls(tls_config(ClientTls::Required), true);
    assert!(s.client.is_tls());
    s.setup(&["STARTTLS"]);
}

// ----- AUTH -----

fn auth_config() -> ClientConfig {
    ClientConfig {
        auth: Some(("user".into(), "secret".into())),
        ..config()
    }
}

fn b64(s: &str) -> String {
    BASE64.encode(s)
}

#[test]
fn auth_plain_preferred() {
    let mut s = Script::new(auth_config());
    s.step("220 mx.example\r\n", "EHLO client.example\r\n");
    let plain = format!("AUTH PLAIN {}\r\n", b64("\0user\0secret"));
    s.step(&ehlo(&["AUTH LOGIN PLAIN"]), &plain);
    s.step("235 2.7.0 Authentication successful\r\n", "");
    assert_eq!(s.take_events(), [ClientEvent::Ready]);
    // The AUTH= parameter is passed on once authenticated.
    let mut m = message(&["a@example.net"], "x\r\n");
    m.params.auth = Some("alice@example.org".into());
    let (_, sent) = s.send(m);
    assert_eq!(
        sent,
        "MAIL FROM:<alice@example.org> AUTH=alice@example.org\r\n"
    );
}

#[test]
fn auth_login_when_plain_is_not_offered() {
    let mut s = Script::new(auth_config());
    s.step("220 mx.example\r\n", "EHLO client.example\r\n");
    s.step(&ehlo(&["AUTH LOGIN"]), "AUTH LOGIN\r\n");
    s.step("334 VXNlcm5hbWU6\r\n", &format!("{}\r\n", b64("user")));
    s.step("334 UGFzc3dvcmQ6\r\n", &format!("{}\r\n", b64("secret")));
    s.step("235 2.7.0 ok\r\n", "");
    assert_eq!(s.take_events(), [ClientEvent::Ready]);
}

#[test]
fn auth_login_when_plain_is_refused_as_unknown() {
    let mut s = Script::new(auth_config());
    s.step("220 mx.example\r\n", "EHLO client.example\r\n");
    let plain = format!("AUTH PLAIN {}\r\n", b64("\0user\0secret"));
    s.step(&ehlo(&["AUTH PLAIN LOGIN"]), &plain);
    s.step(
        "504 5.5.4 Unrecognized authentication mechanism\r\n",
        "AUTH LOGIN\r\n",
    );
    s.step("334 VXNlcm5hbWU6\r\n", &format!("{}\r\n", b64("user")));
    s.step("334 UGFzc3dvcmQ6\r\n", &format!("{}\r\n", b64("secret")));
    s.step("235 2.7.0 ok\r\n", "");
    assert_eq!(s.take_events(), [ClientEvent::Ready]);
}

#[test]
fn auth_refused_fails_queued_mail_temporarily() {
    let mut s = Script::new(auth_config());
    s.send(message(&["a@example.net", "b@example.net"], "x\r\n"));
    s.step("220 mx.example\r\n", "EHLO client.example\r\n");
    let plain = format!("AUTH PLAIN {}\r\n", b64("\0user\0secret"));
    s.step(&ehlo(&["AUTH PLAIN"]), &plain);
    s.step(
        "535 5.7.8 Authentication credentials invalid\r\n",
        "QUIT\r\n",
    );
    let report = s.report_then_failed(Stage::Auth);
    // Fixing the credentials delivers the mail: keep it queued.
    assert_eq!(kinds(&report), [Temporary, Temporary]);
    assert_eq!(codes(&report), [535, 535]);
    assert!(report.rcpts[0].remote);
}

#[test]
fn auth_login_password_refused() {
    let mut s = Script::new(auth_config());
    s.step("220 mx.example\r\n", "EHLO client.example\r\n");
    s.step(&ehlo(&["AUTH LOGIN"]), "AUTH LOGIN\r\n");
    s.step("334 VXNlcm5hbWU6\r\n", &format!("{}\r\n", b64("user")));
    s.step("334 UGFzc3dvcmQ6\r\n", &format!("{}\r\n", b64("secret")));
    s.step("535 5.7.8 no\r\n", "QUIT\r\n");
    let e = s.failed(Stage::Auth);
    assert_eq!(e.reply.code, 535);
}

#[test]
fn auth_without_a_usable_mechanism_fails() {
    for keywords in [&["AUTH CRAM-MD5 XOAUTH2"][..], &["PIPELINING"][..]] {
        let mut s = Script::new(auth_config());
        s.send(message(&["a@example.net"], "x\r\n"));
        s.step("220 mx.example\r\n", "EHLO client.example\r\n");
        s.step(&ehlo(keywords), "QUIT\r\n");
        let report = s.report_then_failed(Stage::Auth);
        assert_eq!(kinds(&report), [Temporary]);
        assert!(!report.rcpts[0].remote);
    }
}

#[test]
fn auth_after_starttls() {
    let config = ClientConfig {
        tls: ClientTls::Opportunistic,
        ..auth_config()
    };
    let mut s = Script::new(config);
    s.step("220 mx.example\r\n", "EHLO client.example\r\n");
    // No AUTH before TLS (plaintext passwords): the client must not try.
    s.step(&ehlo(&["STARTTLS"]), "STARTTLS\r\n");
    s.step("220 go\r\n", "");
    s.step_tls("EHLO client.example\r\n");
    let plain = format!("AUTH PLAIN {}\r\n", b64("\0user\0secret"));
    s.step(&ehlo(&["AUTH PLAIN LOGIN"]), &plain);
    s.step("235 ok\r\n", "");
    assert_eq!(s.take_events(), [ClientEvent::StartTls, ClientEvent::Ready]);
}

#[test]
fn unexpected_challenge_to_auth_plain_fails_without_quit() {
    let mut s = Script::new(auth_config());
    s.step("220 mx.example\r\n", "EHLO client.example\r\n");
    let plain = format!("AUTH PLAIN {}\r\n", b64("\0user\0secret"));
    s.step(&ehlo(&["AUTH PLAIN"]), &plain);
    // The server waits for a SASL line: a QUIT would be read as one. Cancel instead.
    s.step("334 \r\n", "*\r\n");
    s.failed(Stage::Auth);
}

// ----- transactions without pipelining -----

/// Plays a server without PIPELINING and checks the client never sends a command before the
/// reply to the previous one: every answer of the client is at most one command line (or the
/// message content after a 354).
struct Lockstep(Script);

impl Lockstep {
    #[track_caller]
    fn step(&mut self, reply: &str, expected: &str) {
        let sent = self.0.reply(reply);
        // After 354 (and with BDAT) the message content follows the command.
        if !reply.starts_with("354") && !sent.starts_with("BDAT ") {
            assert!(
                sent.matches("\r\n").count() <= 1,
                "pipelined without PIPELINING: {sent:?}"
            );
        }
        assert_eq!(sent, expected, "after the server said {reply:?}");
    }
}

fn lockstep(keywords: &[&str]) -> Lockstep {
    let mut s = Script::new(config());
    s.setup(keywords);
    Lockstep(s)
}

#[test]
fn one_command_at_a_time_without_pipelining() {
    let mut l = lockstep(PLAIN);
    let (_, sent) = l.0.send(message(
        &["a@example.net", "b@example.net", "c@example.net"],
        "hi\r\n",
    ));
    assert_eq!(sent, "MAIL FROM:<alice@example.org>\r\n");
    l.step(MAIL_OK, "RCPT TO:<a@example.net>\r\n");
    l.step(RCPT_OK, "RCPT TO:<b@example.net>\r\n");
    l.step("450 4.2.1 busy\r\n", "RCPT TO:<c@example.net>\r\n");
    l.step("550 5.1.1 unknown\r\n", "DATA\r\n");
    l.step(GO_AHEAD, "hi\r\n.\r\n");
    l.step(ACCEPTED, "");
    let report = l.0.report();
    assert_eq!(kinds(&report), [Delivered, Temporary, Permanent]);
    assert_eq!(codes(&report), [250, 450, 550]);
    assert!(report.rcpts.iter().all(|o| o.remote));
    assert_eq!(report.rcpts[0].reply.text, "Ok: queued as 1234");
}

#[test]
fn rcpt_552_is_treated_as_temporary() {
    let mut l = lockstep(PLAIN);
    l.0.send(message(&["a@example.net", "b@example.net"], "x\r\n"));
    l.step(MAIL_OK, "RCPT TO:<a@example.net>\r\n");
    l.step(RCPT_OK, "RCPT TO:<b@example.net>\r\n");
    l.step("552 5.5.3 Too many recipients\r\n", "DATA\r\n");
    l.step(GO_AHEAD, "x\r\n.\r\n");
    l.step(ACCEPTED, "");
    let report = l.0.report();
    assert_eq!(kinds(&report), [Delivered, Temporary]);
    assert_eq!(report.rcpts[1].reply.code, 552);
}

#[test]
fn mail_refused_decides_every_recipient() {
    for (reply, kind) in [
        ("451 4.3.0 later\r\n", Temporary),
        ("550 5.7.1 no\r\n", Permanent),
    ] {
        let mut l = lockstep(PLAIN);
        l.0.send(message(&["a@example.net", "b@example.net"], "x\r\n"));
        // Nothing is open on the server: no RSET.
        l.step(reply, "");
        let report = l.0.report_and_ready();
        assert_eq!(kinds(&report), [kind, kind]);
        assert!(
            report
                .rcpts
                .iter()
                .all(|o| o.remote && o.reply.text.len() > 1)
        );
    }
}

impl Script {
    /// One report, then `Ready`.
    #[track_caller]
    fn report_and_ready(&mut self) -> TransactionReport {
        let events = self.take_events();
        match &events[..] {
            [ClientEvent::Done(r), ClientEvent::Ready] => r.clone(),
            other => panic!("expected Done then Ready, got {other:?}"),
        }
    }
}

#[test]
fn data_refused_fails_the_accepted_recipients_and_resets() {
    for (reply, kind) in [
        ("451 4.3.0 later\r\n", Temporary),
        ("554 5.5.1 no\r\n", Permanent),
    ] {
        let mut l = lockstep(PLAIN);
        l.0.send(message(&["a@example.net", "b@example.net"], "x\r\n"));
        l.step(MAIL_OK, "RCPT TO:<a@example.net>\r\n");
        l.step("550 5.1.1 unknown\r\n", "RCPT TO:<b@example.net>\r\n");
        l.step(RCPT_OK, "DATA\r\n");
        l.step(reply, "RSET\r\n");
        let report = l.0.report();
        assert_eq!(kinds(&report), [Permanent, kind]);
        assert_eq!(
            report.rcpts[1].reply.code,
            reply[..3].parse::<u16>().unwrap()
        );
        l.step("250 2.0.0 Reset\r\n", "");
        assert_eq!(l.0.take_events(), [ClientEvent::Ready]);
    }
}

#[test]
fn all_recipients_refused_then_rset() {
    let mut l = lockstep(PLAIN);
    l.0.send(message(&["a@example.net", "b@example.net"], "x\r\n"));
    l.step(MAIL_OK, "RCPT TO:<a@example.net>\r\n");
    l.step("550 5.1.1 unknown\r\n", "RCPT TO:<b@example.net>\r\n");
    l.step("451 4.3.0 later\r\n", "RSET\r\n");
    let report = l.0.report();
    assert_eq!(kinds(&report), [Permanent, Temporary]);
    l.step("250 2.0.0 Reset\r\n", "");
    assert_eq!(l.0.take_events(), [ClientEvent::Ready]);
}

#[test]
fn end_of_data_refused() {
    for (reply, kind) in [
        ("452 4.3.1 full\r\n", Temporary),
        ("552 5.3.4 too big\r\n", Permanent),
    ] {
        let mut l = lockstep(PLAIN);
        l.0.send(message(&["a@example.net"], "x\r\n"));
        l.step(MAIL_OK, "RCPT TO:<a@example.net>\r\n");
        l.step(RCPT_OK, "DATA\r\n");
        l.step(GO_AHEAD, "x\r\n.\r\n");
        // The transaction is over on the server; a RSET makes sure of it.
        l.step(reply, "RSET\r\n");
        assert_eq!(kinds(&l.0.report()), [kind]);
        l.step("250 ok\r\n", "");
        assert_eq!(l.0.take_events(), [ClientEvent::Ready]);
    }
}

#[test]
fn rset_refused_ends_the_session() {
    let mut l = lockstep(PLAIN);
    l.0.send(message(&["a@example.net"], "x\r\n"));
    l.0.send(message(&["b@example.net"], "y\r\n"));
    l.step(MAIL_OK, "RCPT TO:<a@example.net>\r\n");
    l.step("550 no\r\n", "RSET\r\n");
    l.step("500 what\r\n", "QUIT\r\n");
    let reports = {
        let events = l.0.take_events();
        let reports: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                ClientEvent::Done(r) => Some(r.clone()),
                _ => None,
            })
            .collect();
        l.0.events = events
            .into_iter()
            .filter(|e| !matches!(e, ClientEvent::Done(_)))
            .collect();
        l.0.failed(Stage::Rset);
        reports
    };
    assert_eq!(reports.len(), 2);
    assert_eq!(kinds(&reports[0]), [Permanent]);
    assert_eq!(kinds(&reports[1]), [Temporary], "never tried");
}

#[test]
fn several_transactions_in_lockstep() {
    let mut l = lockstep(PLAIN);
    let (a, sent) = l.0.send(message(&["a@example.net"], "one\r\n"));
    assert_eq!(sent, "MAIL FROM:<alice@example.org>\r\n");
    let (b, sent) = l.0.send(message(&["b@example.net"], "two\r\n"));
    assert_eq!(sent, "", "the second message waits for the first");
    let (c, _) = l.0.send(message(&["c@example.net"], "three\r\n"));
    l.step(MAIL_OK, "RCPT TO:<a@example.net>\r\n");
    l.step(RCPT_OK, "DATA\r\n");
    l.step(GO_AHEAD, "one\r\n.\r\n");
    l.step(ACCEPTED, "MAIL FROM:<alice@example.org>\r\n");
    l.step(MAIL_OK, "RCPT TO:<b@example.net>\r\n");
    l.step("550 no\r\n", "RSET\r\n");
    l.step("250 ok\r\n", "MAIL FROM:<alice@example.org>\r\n");
    l.step(MAIL_OK, "RCPT TO:<c@example.net>\r\n");
    l.step(RCPT_OK, "DATA\r\n");
    l.step(GO_AHEAD, "three\r\n.\r\n");
    l.step(ACCEPTED, "");
    let events = l.0.take_events();
    let ids: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Done(r) => Some((r.id, kinds(r))),
            _ => None,
        })
        .collect();
    assert_eq!(
        ids,
        [
            (a, vec![Delivered]),
            (b, vec![Permanent]),
            (c, vec![Delivered])
        ]
    );
    assert_eq!(events.last(), Some(&ClientEvent::Ready));
    assert_eq!(l.0.quit(), "QUIT\r\n");
    l.step("221 2.0.0 Bye\r\n", "");
    assert_eq!(l.0.take_events(), [ClientEvent::Close]);
    assert!(l.0.client.is_closed());
}

#[test]
fn message_without_recipients_is_reported_at_once() {
    let mut s = Script::new(config());
    s.setup(PLAIN);
    let (id, sent) = s.send(message(&[], "x\r\n"));
    assert_eq!(sent, "");
    let report = s.report_and_ready();
    assert_eq!(report.id, id);
    assert!(report.rcpts.is_empty());
}

#[test]
fn dot_stuffing_and_line_endings() {
    let mut l = lockstep(PLAIN);
    l.0.send(message(
        &["a@example.net"],
        ".lead\n..two\r\n.\rbare\r\nlast",
    ));
    l.step(MAIL_OK, "RCPT TO:<a@example.net>\r\n");
    l.step(RCPT_OK, "DATA\r\n");
    // Bare CR and LF become CRLF, leading dots double, a final CRLF is added.
    l.step(GO_AHEAD, "..lead\r\n...two\r\n..\r\nbare\r\nlast\r\n.\r\n");
    l.step(ACCEPTED, "");
}

#[test]
fn quit_waits_for_queued_messages() {
    let mut l = lockstep(PLAIN);
    l.0.send(message(&["a@example.net"], "x\r\n"));
    assert_eq!(l.0.quit(), "");
    l.step(MAIL_OK, "RCPT TO:<a@example.net>\r\n");
    l.step(RCPT_OK, "DATA\r\n");
    l.step(GO_AHEAD, "x\r\n.\r\n");
    l.step(ACCEPTED, "QUIT\r\n");
    l.step("221 bye\r\n", "");
    let events = l.0.take_events();
    assert!(
        matches!(&events[..], [ClientEvent::Done(_), ClientEvent::Close]),
        "{events:?}"
    );
    // A message given after QUIT is refused at once.
    let (_, sent) = l.0.send(message(&["b@example.net"], "x\r\n"));
    assert_eq!(sent, "");
    assert_eq!(kinds(&l.0.report()), [Temporary]);
}

#[test]
fn quit_before_setup_finishes() {
    let mut s = Script::new(config());
    assert_eq!(s.quit(), "");
    s.step("220 mx.example\r\n", "EHLO client.example\r\n");
    s.step(&ehlo(&[]), "QUIT\r\n");
    s.step("221 bye\r\n", "");
    assert_eq!(s.take_events(), [ClientEvent::Close]);
}

#[test]
fn eof_after_quit_is_a_clean_close() {
    let mut s = Script::new(config());
    s.setup(PLAIN);
    assert_eq!(s.quit(), "QUIT\r\n");
    s.eof();
    assert_eq!(s.take_events(), [ClientEvent::Close]);
}

// ----- pipelining -----

#[test]
fn pipelines_mail_rcpt_and_data_when_offered() {
    let mut s = Script::new(config());
    s.setup(PIPELINING);
    let (_, sent) = s.send(message(
        &[
            "a@example.net",
            "b@example.net",
            "c@example.net",
            "d@example.net",
        ],
        "x\r\n",
    ));
    assert_eq!(
        sent,
        "MAIL FROM:<alice@example.org>\r\nRCPT TO:<a@example.net>\r\nRCPT TO:<b@example.net>\r\nRCPT TO:<c@example.net>\r\nRCPT TO:<d@example.net>\r\nDATA\r\n"
    );
    s.step(MAIL_OK, "");
    s.step(RCPT_OK, "");
    s.step("450 4.2.1 busy\r\n", "");
    s.step("550 5.1.1 unknown\r\n", "");
    s.step("552 5.5.3 too many\r\n", "");
    s.step(GO_AHEAD, "x\r\n.\r\n");
    s.step(ACCEPTED, "");
    let report = s.report_and_ready();
    assert_eq!(kinds(&report), [Delivered, Temporary, Permanent, Temporary]);
    assert_eq!(codes(&report), [250, 450, 550, 552]);
}

#[test]
fn pipelining_disabled_in_config() {
    let mut s = Script::new(ClientConfig {
        pipelining: false,
        ..config()
    });
    s.setup(PIPELINING);
    let (_, sent) = s.send(message(&["a@example.net", "b@example.net"], "x\r\n"));
    assert_eq!(sent, "MAIL FROM:<alice@example.org>\r\n");
}

#[test]
fn pipelined_mail_refused() {
    let mut s = Script::new(config());
    s.setup(PIPELINING);
    s.send(message(&["a@example.net", "b@example.net"], "x\r\n"));
    s.step("550 5.7.1 sender refused\r\n", "");
    s.step("503 5.5.1 need MAIL\r\n", "");
    s.step("503 5.5.1 need MAIL\r\n", "");
    assert_eq!(s.take_events(), []);
    // DATA's reply ends it; no transaction is open, so no RSET.
    s.step("503 5.5.1 need MAIL\r\n", "");
    let report = s.report_and_ready();
    assert_eq!(kinds(&report), [Permanent, Permanent]);
    assert_eq!(codes(&report), [550, 550]);
    assert_eq!(report.rcpts[0].reply.text, "sender refused");
}

#[test]
fn pipelined_all_recipients_refused_data_refused_then_rset() {
    let mut s = Script::new(config());
    s.setup(PIPELINING);
    s.send(message(&["a@example.net", "b@example.net"], "x\r\n"));
    s.step(MAIL_OK, "");
    s.step("550 5.1.1 unknown\r\n", "");
    s.step("450 4.2.0 later\r\n", "");
    s.step("554 5.5.1 no valid recipients\r\n", "RSET\r\n");
    let report = s.report();
    assert_eq!(kinds(&report), [Permanent, Temporary]);
    assert_eq!(codes(&report), [550, 450]);
    s.step("250 ok\r\n", "");
    assert_eq!(s.take_events(), [ClientEvent::Ready]);
}

#[test]
fn pipelined_data_accepted_without_recipients_sends_an_empty_message_then_rset() {
    for end in ["250 2.0.0 ok\r\n", "554 5.5.1 no recipients\r\n"] {
        let mut s = Script::new(config());
        s.setup(PIPELINING);
        s.send(message(
            &["a@example.net", "b@example.net"],
            "content never sent\r\n",
        ));
        s.step(MAIL_OK, "");
        s.step("550 5.1.1 unknown\r\n", "");
        s.step("551 5.1.6 moved\r\n", "");
        // RFC 2920 section 3.1: a server that says 354 anyway gets a lone dot.
        s.step(GO_AHEAD, ".\r\n");
        s.step(end, "RSET\r\n");
        let report = s.report();
        assert_eq!(kinds(&report), [Permanent, Permanent]);
        assert_eq!(codes(&report), [550, 551]);
        s.step("250 ok\r\n", "");
        assert_eq!(s.take_events(), [ClientEvent::Ready]);
    }
}

#[test]
fn several_pipelined_transactions() {
    let mut s = Script::new(config());
    s.setup(PIPELINING);
    s.send(message(&["a@example.net"], "one\r\n"));
    s.send(message(&["b@example.net"], "two\r\n"));
    s.step(MAIL_OK, "");
    s.step(RCPT_OK, "");
    s.step(GO_AHEAD, "one\r\n.\r\n");
    s.step(
        ACCEPTED,
        "MAIL FROM:<alice@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n",
    );
    s.step(&format!("{MAIL_OK}{RCPT_OK}{GO_AHEAD}"), "two\r\n.\r\n");
    s.step(ACCEPTED, "");
    let reports = s.reports();
    assert_eq!(reports.len(), 2);
    assert!(reports.iter().all(|r| kinds(r) == [Delivered]));
}

// ----- BDAT -----

#[test]
fn bdat_when_chunking_offered() {
    let mut l = lockstep(&["CHUNKING", "8BITMIME"]);
    l.0.send(message(
        &["a@example.net", "b@example.net"],
        "Subject: x\r\n\r\n.body\r\n",
    ));
    l.step(MAIL_OK, "RCPT TO:<a@example.net>\r\n");
    l.step(RCPT_OK, "RCPT TO:<b@example.net>\r\n");
    // No dot-stuffing and no end marker in a chunk.
    l.step(RCPT_OK, "BDAT 21 LAST\r\nSubject: x\r\n\r\n.body\r\n");
    l.step("250 2.0.0 queued\r\n", "");
    assert_eq!(kinds(&l.0.report_and_ready()), [Delivered, Delivered]);
}

#[test]
fn bdat_content_gets_crlf_line_endings() {
    let mut l = lockstep(&["CHUNKING"]);
    l.0.send(message(&["a@example.net"], "a\nb\rc"));
    l.step(MAIL_OK, "RCPT TO:<a@example.net>\r\n");
    l.step(RCPT_OK, "BDAT 9 LAST\r\na\r\nb\r\nc\r\n");
}

#[test]
fn empty_message_with_bdat() {
    let mut l = lockstep(&["CHUNKING"]);
    l.0.send(message(&["a@example.net"], ""));
    l.step(MAIL_OK, "RCPT TO:<a@example.net>\r\n");
    l.step(RCPT_OK, "BDAT 0 LAST\r\n");
}

#[test]
fn pipelined_bdat_waits_for_the_recipients() {
    let mut s = Script::new(config());
    s.setup(&["PIPELINING", "CHUNKING"]);
    let (_, sent) = s.send(message(&["a@example.net", "b@example.net"], "x\r\n"));
    assert_eq!(
        sent,
        "MAIL FROM:<alice@example.org>\r\nRCPT TO:<a@example.net>\r\nRCPT TO:<b@example.net>\r\n"
    );
    s.step(MAIL_OK, "");
    s.step("550 no\r\n", "");
    s.step(RCPT_OK, "BDAT 3 LAST\r\nx\r\n");
    s.step("250 ok\r\n", "");
    assert_eq!(kinds(&s.report_and_ready()), [Permanent, Delivered]);
}

#[test]
fn bdat_refused_then_rset() {
    let mut l = lockstep(&["CHUNKING"]);
    l.0.send(message(&["a@example.net"], "x\r\n"));
    l.step(MAIL_OK, "RCPT TO:<a@example.net>\r\n");
    l.step(RCPT_OK, "BDAT 3 LAST\r\nx\r\n");
    // RFC 3030: after a failed chunk the transaction is over; RSET.
    l.step("554 5.6.0 refused\r\n", "RSET\r\n");
    assert_eq!(kinds(&l.0.report()), [Permanent]);
    l.step("250 ok\r\n", "");
    assert_eq!(l.0.take_events(), [ClientEvent::Ready]);
}

#[test]
fn bdat_all_recipients_refused() {
    let mut l = lockstep(&["CHUNKING"]);
    l.0.send(message(&["a@example.net"], "x\r\n"));
    l.step(MAIL_OK, "RCPT TO:<a@example.net>\r\n");
    l.step("550 no\r\n", "RSET\r\n");
}

#[test]
fn chunking_disabled_in_config_uses_data() {
    let mut s = Script::new(ClientConfig {
        chunking: false,
        ..config()
    });
    s.setup(&["CHUNKING"]);
    s.send(message(&["a@example.net"], "x\r\n"));
    s.step(MAIL_OK, "RCPT TO:<a@example.net>\r\n");
    s.step(RCPT_OK, "DATA\r\n");
}

#[test]
fn binarymime_sends_the_bytes_untouched() {
    let mut l = lockstep(&["CHUNKING", "BINARYMIME", "8BITMIME"]);
    let mut m = message(&["a@example.net"], "bin\n\r.\r\n");
    m.params.body = Some(Body::BinaryMime);
    let (_, sent) = l.0.send(m);
    assert_eq!(sent, "MAIL FROM:<alice@example.org> BODY=BINARYMIME\r\n");
    l.step(MAIL_OK, "RCPT TO:<a@example.net>\r\n");
    l.step(RCPT_OK, "BDAT 8 LAST\r\nbin\n\r.\r\n");
}

#[test]
fn binarymime_without_support_fails_permanently() {
    for (keywords, chunking) in [
        (&["CHUNKING", "8BITMIME"][..], true),
        (&["BINARYMIME", "8BITMIME"][..], true),
        (&["CHUNKING", "BINARYMIME"][..], false),
    ] {
        let mut s = Script::new(ClientConfig {
            chunking,
            ..config()
        });
        s.setup(keywords);
        let mut m = message(&["a@example.net", "b@example.net"], "x\r\n");
        m.params.body = Some(Body::BinaryMime);
        let (_, sent) = s.send(m);
        assert_eq!(sent, "");
        let report = s.report_and_ready();
        assert_eq!(kinds(&report), [Permanent, Permanent]);
        assert_eq!(
            report.rcpts[0].reply.enhanced,
            Some(EnhancedCode::new(5, 6, 3))
        );
        assert!(!report.rcpts[0].remote);
    }
}

// ----- SIZE, BODY, SMTPUTF8, DSN -----

#[test]
fn size_is_passed_when_offered() {
    let mut s = Script::new(config());
    s.setup(&["SIZE 1000"]);
    let (_, sent) = s.send(message(&["a@example.net"], "0123456789\r\n"));
    assert_eq!(sent, "MAIL FROM:<alice@example.org> SIZE=12\r\n");
    let mut s = Script::new(config());
    s.setup(&["SIZE"]);
    // The size on the wire: CRLF line endings and a final CRLF.
    let (_, sent) = s.send(message(&["a@example.net"], "a\nb"));
    assert_eq!(sent, "MAIL FROM:<alice@example.org> SIZE=6\r\n");
    let mut s = Script::new(config());
    s.setup(&["PIPELINING"]);
    let (_, sent) = s.send(message(&["a@example.net"], "a\r\n"));
    assert!(
        sent.starts_with("MAIL FROM:<alice@example.org>\r\n"),
        "{sent}"
    );
}

#[test]
fn message_over_the_advertised_size_fails_permanently() {
    let mut s = Script::new(config());
    s.setup(&["SIZE 10"]);
    let (_, sent) = s.send(message(
        &["a@example.net", "b@example.net"],
        "0123456789\r\n",
    ));
    assert_eq!(sent, "");
    let report = s.report_and_ready();
    assert_eq!(kinds(&report), [Permanent, Permanent]);
    let reply = &report.rcpts[0].reply;
    assert_eq!(
        (reply.code, reply.enhanced),
        (552, Some(EnhancedCode::new(5, 3, 4)))
    );
    assert!(!report.rcpts[0].remote);
    // Exactly at the limit goes through; the next message is not held up.
    let (_, sent) = s.send(message(&["a@example.net"], "01234567\r\n"));
    assert_eq!(sent, "MAIL FROM:<alice@example.org> SIZE=10\r\n");
}

#[test]
fn missing_final_crlf_counts_towards_the_size() {
    let mut s = Script::new(config());
    s.setup(&["SIZE 10"]);
    s.send(message(&["a@example.net"], "0123456789"));
    assert_eq!(kinds(&s.report_and_ready()), [Permanent]);
}

#[test]
fn body_8bitmime_passed_only_when_offered() {
    let mut m = message(&["a@example.net"], "caf\u{e9}\r\n");
    m.params.body = Some(Body::EightBitMime);
    let mut s = Script::new(config());
    s.setup(&["8BITMIME"]);
    let (_, sent) = s.send(m.clone());
    assert_eq!(sent, "MAIL FROM:<alice@example.org> BODY=8BITMIME\r\n");

    let mut s = Script::new(config());
    s.setup(&["PIPELINING"]);
    let (_, sent) = s.send(m);
    assert_eq!(sent, "");
    let report = s.report_and_ready();
    assert_eq!(kinds(&report), [Permanent]);
    assert_eq!(
        report.rcpts[0].reply.enhanced,
        Some(EnhancedCode::new(5, 6, 3))
    );
}

#[test]
fn body_7bit_is_left_out_when_8bitmime_is_not_offered() {
    let mut m = message(&["a@example.net"], "x\r\n");
    m.params.body = Some(Body::SevenBit);
    let mut s = Script::new(config());
    s.setup(&["DSN"]);
    let (_, sent) = s.send(m.clone());
    assert_eq!(sent, "MAIL FROM:<alice@example.org>\r\n");
    let mut s = Script::new(config());
    s.setup(&["8BITMIME"]);
    let (_, sent) = s.send(m);
    assert_eq!(sent, "MAIL FROM:<alice@example.org> BODY=7BIT\r\n");
}

#[test]
fn smtputf8_passed_when_offered() {
    let mut s = Script::new(config());
    s.setup(&["SMTPUTF8", "8BITMIME"]);
    // A UTF-8 address needs the parameter even if the message did not ask for it.
    let m = message(&["j\u{f6}rg@b\u{fc}cher.example"], "x\r\n");
    let (_, sent) = s.send(m);
    assert_eq!(sent, "MAIL FROM:<alice@example.org> SMTPUTF8\r\n");
    s.step(MAIL_OK, "RCPT TO:<j\u{f6}rg@b\u{fc}cher.example>\r\n");

    let mut s = Script::new(config());
    s.setup(&["SMTPUTF8"]);
    let mut m = message(&["a@example.net"], "Subject: caf\u{e9}\r\n");
    m.params.smtputf8 = true;
    let (_, sent) = s.send(m);
    assert_eq!(sent, "MAIL FROM:<alice@example.org> SMTPUTF8\r\n");
}

#[test]
fn smtputf8_required_but_not_offered_fails_permanently() {
    let utf8_sender = Message {
        from: ReversePath::Mailbox(mailbox("\u{e9}l\u{e8}ve@example.org")),
        ..message(&["a@example.net"], "x\r\n")
    };
    let mut asked = message(&["a@example.net"], "x\r\n");
    asked.params.smtputf8 = true;
    for m in [
        utf8_sender,
        message(&["\u{fc}@example.net"], "x\r\n"),
        asked,
    ] {
        let mut s = Script::new(config());
        s.setup(&["8BITMIME"]);
        let (_, sent) = s.send(m);
        assert_eq!(sent, "");
        let report = s.report_and_ready();
        assert_eq!(kinds(&report), [Permanent]);
        assert_eq!(
            report.rcpts[0].reply.enhanced,
            Some(EnhancedCode::new(5, 6, 7))
        );
        assert!(!report.dsn_passed);
    }
}

fn dsn_message() -> Message {
    let mut m = message(&["a@example.net", "b@example.net"], "x\r\n");
    m.params.ret = Some(Ret::Headers);
    m.params.envid = Some("id+1 x".into());
    m.rcpts[0].1 = RcptParams {
        notify: Some(Notify {
            success: true,
            failure: true,
            ..Notify::default()
        }),
        orcpt: Some(Orcpt {
            addr_type: "rfc822".into(),
            address: "a@example.net".into(),
        }),
    };
    m
}

#[test]
fn dsn_parameters_passed_when_offered() {
    let mut l = lockstep(&["DSN"]);
    let (_, sent) = l.0.send(dsn_message());
    assert_eq!(
        sent,
        "MAIL FROM:<alice@example.org> RET=HDRS ENVID=id+2B1+20x\r\n"
    );
    l.step(
        MAIL_OK,
        "RCPT TO:<a@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a@example.net\r\n",
    );
    l.step(RCPT_OK, "RCPT TO:<b@example.net>\r\n");
    l.step(RCPT_OK, "DATA\r\n");
    l.step(GO_AHEAD, "x\r\n.\r\n");
    l.step(ACCEPTED, "");
    assert!(l.0.report().dsn_passed);
}

#[test]
fn dsn_parameters_dropped_when_not_offered() {
    let mut l = lockstep(PLAIN);
    let (_, sent) = l.0.send(dsn_message());
    assert_eq!(sent, "MAIL FROM:<alice@example.org>\r\n");
    l.step(MAIL_OK, "RCPT TO:<a@example.net>\r\n");
    l.step(RCPT_OK, "RCPT TO:<b@example.net>\r\n");
    l.step(RCPT_OK, "DATA\r\n");
    l.step(GO_AHEAD, "x\r\n.\r\n");
    l.step(ACCEPTED, "");
    let report = l.0.report();
    // The queue owes the sender a "relayed" DSN for NOTIFY=SUCCESS.
    assert!(!report.dsn_passed);
    assert_eq!(kinds(&report), [Delivered, Delivered]);
}

#[test]
fn all_parameters_together() {
    let mut s = Script::new(config());
    s.setup(&["SIZE 100", "8BITMIME", "SMTPUTF8", "DSN"]);
    let mut m = dsn_message();
    m.params.body = Some(Body::EightBitMime);
    m.params.smtputf8 = true;
    m.params.size = Some(99_999); // computed by the machine, whatever the caller says
    let (_, sent) = s.send(m);
    assert_eq!(
        sent,
        "MAIL FROM:<alice@example.org> SIZE=3 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=id+2B1+20x\r\n"
    );
}

#[test]
fn envelope_with_a_line_break_is_never_sent() {
    let mut s = Script::new(config());
    s.setup(PLAIN);
    let mut m = message(&["a@example.net"], "x\r\n");
    m.rcpts[0].0 = ForwardPath::Postmaster("postmaster>\r\nRCPT TO:<evil".into());
    let (_, sent) = s.send(m);
    assert_eq!(sent, "");
    assert_eq!(kinds(&s.report_and_ready()), [Permanent]);
}

// ----- LMTP -----

fn lmtp() -> Script {
    let mut s = Script::new(ClientConfig {
        protocol: Protocol::Lmtp,
        ..config()
    });
    s.step("220 lmtp.example LMTP\r\n", "LHLO client.example\r\n");
    s.step(
        &ehlo(&["PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME"]),
        "",
    );
    assert_eq!(s.take_events(), [ClientEvent::Ready]);
    s
}

#[test]
fn lmtp_one_reply_per_accepted_recipient() {
    let mut s = lmtp();
    s.send(message(
        &[
            "a@example.net",
            "b@example.net",
            "c@example.net",
            "d@example.net",
        ],
        "x\r\n",
    ));
    s.step(MAIL_OK, "");
    s.step(RCPT_OK, "");
    s.step("550 5.1.1 unknown\r\n", "");
    s.step(RCPT_OK, "");
    s.step(RCPT_OK, "");
    s.step(GO_AHEAD, "x\r\n.\r\n");
    s.step("250 2.0.0 a delivered\r\n", "");
    s.step("452 4.2.2 c over quota\r\n", "");
    assert_eq!(s.take_events(), []);
    s.step("554 5.6.0 d refused\r\n", "");
    let report = s.report_and_ready();
    assert_eq!(kinds(&report), [Delivered, Permanent, Temporary, Permanent]);
    assert_eq!(report.rcpts[0].reply.text, "a delivered");
    assert_eq!(report.rcpts[2].reply.text, "c over quota");
    assert_eq!(report.rcpts[3].reply.text, "d refused");
}

#[test]
fn lmtp_lhlo_refused_has_no_fallback() {
    let mut s = Script::new(ClientConfig {
        protocol: Protocol::Lmtp,
        ..config()
    });
    s.step("220 lmtp.example\r\n", "LHLO client.example\r\n");
    s.step("500 5.5.1 what\r\n", "QUIT\r\n");
    s.failed(Stage::Helo);
}

#[test]
fn lmtp_with_bdat() {
    let mut s = Script::new(ClientConfig {
        protocol: Protocol::Lmtp,
        ..config()
    });
    s.step("220 lmtp.example\r\n", "LHLO client.example\r\n");
    s.step(&ehlo(&["PIPELINING", "CHUNKING"]), "");
    s.take_events();
    s.send(message(&["a@example.net", "b@example.net"], "x\r\n"));
    s.step(MAIL_OK, "");
    s.step(RCPT_OK, "");
    s.step(RCPT_OK, "BDAT 3 LAST\r\nx\r\n");
    s.step("250 a ok\r\n", "");
    s.step("250 b ok\r\n", "");
    assert_eq!(kinds(&s.report_and_ready()), [Delivered, Delivered]);
}

#[test]
fn lmtp_connection_lost_keeps_the_deliveries_made() {
    let mut s = lmtp();
    s.send(message(
        &["a@example.net", "b@example.net", "c@example.net"],
        "x\r\n",
    ));
    s.step(
        &format!("{MAIL_OK}{RCPT_OK}550 no\r\n{RCPT_OK}{GO_AHEAD}"),
        "x\r\n.\r\n",
    );
    s.step("250 2.0.0 a delivered\r\n", "");
    s.eof();
    let report = s.report_then_failed(Stage::Data);
    // a is delivered: reporting it as temporary would deliver it twice.
    assert_eq!(kinds(&report), [Delivered, Permanent, Temporary]);
    assert!(report.rcpts[0].remote && report.rcpts[1].remote && !report.rcpts[2].remote);
}

#[test]
fn lmtp_421_midway() {
    let mut s = lmtp();
    s.send(message(&["a@example.net", "b@example.net"], "x\r\n"));
    s.step(
        &format!("{MAIL_OK}{RCPT_OK}{RCPT_OK}{GO_AHEAD}"),
        "x\r\n.\r\n",
    );
    s.step("250 2.0.0 a delivered\r\n", "");
    s.step("421 4.3.2 shutting down\r\n", "");
    let report = s.report_then_failed(Stage::Data);
    assert_eq!(kinds(&report), [Delivered, Temporary]);
    assert_eq!(report.rcpts[1].reply.code, 421);
}

// ----- timeouts, lost connections and 421 at every stage -----

/// Where a session waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Point {
    Greeting,
    Ehlo,
    Helo,
    StartTls,
    Handshake,
    AuthPlain,
    AuthLogin,
    Mail,
    Rcpt,
    Data,
    DataEnd,
    Bdat,
    PipelinedRcpt,
    PipelinedData,
    LmtpData,
    Rset,
    Quit,
}

const POINTS: [Point; 17] = [
    Point::Greeting,
    Point::Ehlo,
    Point::Helo,
    Point::StartTls,
    Point::Handshake,
    Point::AuthPlain,
    Point::AuthLogin,
    Point::Mail,
    Point::Rcpt,
    Point::Data,
    Point::DataEnd,
    Point::Bdat,
    Point::PipelinedRcpt,
    Point::PipelinedData,
    Point::LmtpData,
    Point::Rset,
    Point::Quit,
];

/// Distinct timeouts, so that each wait shows which one it uses.
fn timeouts() -> ClientTimeouts {
    ClientTimeouts {
        greeting: Duration::from_secs(11),
        command: Duration::from_secs(12),
        mail: Duration::from_secs(13),
        rcpt: Duration::from_secs(14),
        data_init: Duration::from_secs(15),
        data_end: Duration::from_secs(16),
    }
}

struct Waiting {
    s: Script,
    stage: Stage,
    timeout: Duration,
    /// Outcomes the pending message must get if the session fails here (none: no message).
    on_failure: Vec<OutcomeKind>,
}

/// A session waiting at `point`, with one message in flight or queued (except at RSET and QUIT).
fn waiting_at(point: Point) -> Waiting {
    let base = ClientConfig {
        timeouts: timeouts(),
        ..config()
    };
    let cfg = match point {
        Point::StartTls | Point::Handshake => ClientConfig {
            tls: ClientTls::Opportunistic,
            ..base
        },
        Point::AuthPlain | Point::AuthLogin => ClientConfig {
            auth: Some(("user".into(), "secret".into())),
            ..base
        },
        Point::LmtpData => ClientConfig {
            protocol: Protocol::Lmtp,
            ..base
        },
        _ => base,
    };
    let mut s = Script::new(cfg);
    let two = message(&["a@example.net", "b@example.net"], "x\r\n");
    let one = message(&["a@example.net"], "x\r\n");
    let t = timeouts();
    let (stage, timeout) = match point {
        Point::Greeting => {
            s.send(one);
            (Stage::Greeting, t.greeting)
        }
        Point::Ehlo | Point::Helo => {
            s.send(one);
            s.step("220 mx\r\n", "EHLO client.example\r\n");
            if point == Point::Helo {
                s.step("502 no\r\n", "HELO client.example\r\n");
            }
            (Stage::Helo, t.command)
        }
        Point::StartTls | Point::Handshake => {
            s.send(one);
            s.step("220 mx\r\n", "EHLO client.example\r\n");
            s.step(&ehlo(&["STARTTLS"]), "STARTTLS\r\n");
            if point == Point::Handshake {
                s.step("220 go\r\n", "");
                assert_eq!(s.take_events(), [ClientEvent::StartTls]);
            }
            (Stage::StartTls, t.command)
        }
        Point::AuthPlain => {
            s.send(one);
            s.step("220 mx\r\n", "EHLO client.example\r\n");
            s.reply(&ehlo(&["AUTH PLAIN"]));
            (Stage::Auth, t.command)
        }
        Point::AuthLogin => {
            s.send(one);
            s.step("220 mx\r\n", "EHLO client.example\r\n");
            s.step(&ehlo(&["AUTH LOGIN"]), "AUTH LOGIN\r\n");
            s.reply("334 VXNlcm5hbWU6\r\n");
            (Stage::Auth, t.command)
        }
        Point::Mail | Point::Rcpt | Point::Data | Point::DataEnd | Point::Rset => {
            s.setup(PLAIN);
            s.send(one);
            let mut stage = (Stage::Mail, t.mail);
            if point != Point::Mail {
                s.step(MAIL_OK, "RCPT TO:<a@example.net>\r\n");
                stage = (Stage::Rcpt, t.rcpt);
            }
            if point == Point::Rset {
                s.step("550 no\r\n", "RSET\r\n");
                assert_eq!(kinds(&s.report()), [Permanent]);
                stage = (Stage::Rset, t.command);
            }
            if matches!(point, Point::Data | Point::DataEnd) {
                s.step(RCPT_OK, "DATA\r\n");
                stage = (Stage::Data, t.data_init);
            }
            if point == Point::DataEnd {
                s.step(GO_AHEAD, "x\r\n.\r\n");
                stage = (Stage::Data, t.data_end);
            }
            stage
        }
        Point::Bdat => {
            s.setup(&["CHUNKING"]);
            s.send(one);
            s.step(MAIL_OK, "RCPT TO:<a@example.net>\r\n");
            s.step(RCPT_OK, "BDAT 3 LAST\r\nx\r\n");
            (Stage::Data, t.data_end)
        }
        Point::PipelinedRcpt | Point::PipelinedData => {
            s.setup(PIPELINING);
            s.send(two);
            s.step(MAIL_OK, "");
            if point == Point::PipelinedData {
                s.step(RCPT_OK, "");
                s.step(RCPT_OK, "");
                (Stage::Data, t.data_init)
            } else {
                (Stage::Rcpt, t.rcpt)
            }
        }
        Point::LmtpData => {
            s.step("220 lmtp\r\n", "LHLO client.example\r\n");
            s.step(&ehlo(&["PIPELINING"]), "");
            s.take_events();
            s.send(two);
            s.step(
                &format!("{MAIL_OK}{RCPT_OK}{RCPT_OK}{GO_AHEAD}"),
                "x\r\n.\r\n",
            );
            s.step("250 a delivered\r\n", "");
            (Stage::Data, t.data_end)
        }
        Point::Quit => {
            s.setup(PLAIN);
            assert_eq!(s.quit(), "QUIT\r\n");
            (Stage::Quit, t.command)
        }
    };
    let on_failure = match point {
        Point::Rset | Point::Quit => vec![],
        Point::PipelinedRcpt | Point::PipelinedData => vec![Temporary, Temporary],
        Point::LmtpData => vec![Delivered, Temporary],
        _ => vec![Temporary],
    };
    assert_eq!(s.take_events(), [], "{point:?}");
    Waiting {
        s,
        stage,
        timeout,
        on_failure,
    }
}

/// Checks the events of a session that failed at `w.stage`: the message (if any) reported
/// with the expected outcomes, every failed recipient carrying `code` (remote or not).
#[track_caller]
fn check_failure(w: &mut Waiting, point: Point, code: u16, remote: bool) {
    let events = w.s.take_events();
    let (reports, rest): (Vec<_>, Vec<_>) = events
        .into_iter()
        .partition(|e| matches!(e, ClientEvent::Done(_)));
    if w.on_failure.is_empty() {
        assert!(reports.is_empty(), "{point:?}: {reports:?}");
    } else {
        let [ClientEvent::Done(report)] = &reports[..] else {
            panic!("{point:?}: {reports:?}")
        };
        assert_eq!(kinds(report), w.on_failure, "{point:?}");
        for o in report.rcpts.iter().filter(|o| o.kind == Temporary) {
            assert_eq!((o.reply.code, o.remote), (code, remote), "{point:?}: {o:?}");
        }
    }
    w.s.events = rest;
    let e = w.s.failed(w.stage);
    assert_eq!((e.reply.code, e.remote), (code, remote), "{point:?}");
    assert_eq!(w.s.client.poll_timeout(), None);
}

#[test]
fn timeouts_at_every_stage() {
    for point in POINTS {
        let mut w = waiting_at(point);
        assert_eq!(w.s.deadline(), w.timeout, "{point:?}");
        // Early (or spurious) calls are harmless.
        assert_eq!(w.s.advance(w.timeout - Duration::from_millis(1)), "");
        assert_eq!(w.s.take_events(), [], "{point:?}");
        // A timed-out connection is in no state for a QUIT.
        assert_eq!(w.s.advance(Duration::from_millis(1)), "", "{point:?}");
        if point == Point::Quit {
            // No answer to QUIT: just close.
            assert_eq!(w.s.take_events(), [ClientEvent::Close]);
            continue;
        }
        check_failure(&mut w, point, 421, false);
    }
}

#[test]
fn deadline_restarts_with_each_reply() {
    let mut w = waiting_at(Point::PipelinedRcpt);
    w.s.advance(Duration::from_secs(10));
    w.s.step(RCPT_OK, "");
    assert_eq!(w.s.deadline(), timeouts().rcpt);
    w.s.advance(Duration::from_secs(10));
    w.s.step(RCPT_OK, "");
    assert_eq!(w.s.deadline(), timeouts().data_init);
    w.s.advance(Duration::from_secs(10));
    w.s.step(GO_AHEAD, "x\r\n.\r\n");
    assert_eq!(w.s.deadline(), timeouts().data_end);
    w.s.step(ACCEPTED, "");
    assert_eq!(w.s.client.poll_timeout(), None, "idle: no deadline");
    assert_eq!(kinds(&w.s.report_and_ready()), [Delivered, Delivered]);
    assert_eq!(w.s.advance(Duration::from_secs(3600)), "");
    assert_eq!(w.s.take_events(), []);
}

#[test]
fn connection_lost_at_every_stage() {
    for point in POINTS {
        let mut w = waiting_at(point);
        assert_eq!(w.s.eof(), "", "{point:?}");
        if point == Point::Quit {
            assert_eq!(w.s.take_events(), [ClientEvent::Close]);
            continue;
        }
        check_failure(&mut w, point, 421, false);
    }
}

#[test]
fn connection_lost_while_idle_is_a_close() {
    let mut s = Script::new(config());
    s.setup(PLAIN);
    assert_eq!(s.eof(), "");
    assert_eq!(s.take_events(), [ClientEvent::Close]);
    assert!(s.client.is_closed());
}

#[test]
fn reply_421_at_every_stage() {
    for point in POINTS {
        if point == Point::Handshake {
            continue; // no input is read during the handshake
        }
        let mut w = waiting_at(point);
        assert_eq!(
            w.s.reply("421 4.3.2 Service shutting down\r\n"),
            "",
            "{point:?}"
        );
        if point == Point::Quit {
            assert_eq!(w.s.take_events(), [ClientEvent::Close]);
            continue;
        }
        check_failure(&mut w, point, 421, true);
    }
}

#[test]
fn unsolicited_421_while_idle() {
    let mut s = Script::new(config());
    s.setup(PLAIN);
    assert_eq!(s.reply("421 4.4.2 idle too long\r\n"), "");
    let e = s.failed(Stage::Idle);
    assert!(e.remote);
    // Later messages fail at once.
    s.send(message(&["a@example.net"], "x\r\n"));
    assert_eq!(kinds(&s.report()), [Temporary]);
}

#[test]
fn bytes_after_close_are_ignored() {
    let mut s = Script::new(config());
    s.setup(PLAIN);
    s.quit();
    s.step("221 bye\r\n", "");
    assert_eq!(s.take_events(), [ClientEvent::Close]);
    assert_eq!(s.reply("250 more\r\n"), "");
    assert_eq!(s.eof(), "");
    assert_eq!(s.advance(Duration::from_secs(1000)), "");
    assert_eq!(s.take_events(), []);
}

#[test]
fn lines_over_1000_octets_are_never_sent() {
    for chunking in [false, true] {
        let mut s = Script::new(config());
        s.setup(if chunking { &["CHUNKING"] } else { PLAIN });
        let at_limit = format!(".{}\r\n", "x".repeat(997));
        let over = format!("ok\r\n{}\r\n", "x".repeat(999));
        let (_, sent) = s.send(message(&["a@example.net"], &over));
        assert_eq!(sent, "");
        let report = s.report_and_ready();
        assert_eq!(kinds(&report), [Permanent]);
        assert_eq!(
            report.rcpts[0].reply.enhanced,
            Some(EnhancedCode::new(5, 6, 0))
        );
        let (_, sent) = s.send(message(&["a@example.net"], &at_limit));
        assert_eq!(sent, "MAIL FROM:<alice@example.org>\r\n");
        // BINARYMIME has no lines.
        if chunking {
            let mut s = Script::new(config());
            s.setup(&["CHUNKING", "BINARYMIME"]);
            let mut m = message(&["a@example.net"], &over);
            m.params.body = Some(Body::BinaryMime);
            assert_eq!(
                s.send(m).1,
                "MAIL FROM:<alice@example.org> BODY=BINARYMIME\r\n"
            );
        }
    }
}
