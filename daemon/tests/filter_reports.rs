//! The report streams and filter exchanges of scripted sessions, as a filter process sees
//! them: one snapshot per session, with times, ids, tokens and ports redacted.
//!
//! One daemon serves every session; its filter (`petrel-test-filter`) registers for every
//! report event and every phase, logs every line it receives, rejects recipients starting
//! with `reject-`, junks senders starting with `spam@`, rewrites `old@client.test` into
//! `new@client.test` and disconnects clients saying HELO `bad.example`.

mod e2e_support;
mod tls_support;

use std::collections::BTreeMap;
use std::path::Path;

use e2e_support::{PATIENCE, free_port, start};
use petrel_daemon::auth::{self, PasswordScheme};
use regex::Regex;
use tls_support::{Client, Pkis, b64};

const FILTER: &str = env!("CARGO_BIN_EXE_petrel-test-filter");

/// What a scripted session does: commands, each a line (or raw bytes when it starts with
/// `raw:`), `starttls`, or `drop` (close the connection without QUIT).
type Script = &'static [&'static str];

const SESSIONS: &[(&str, Script)] = &[
    (
        "01_one_message",
        &[
            "EHLO client.test",
            "MAIL FROM:<alice@client.test>",
            "RCPT TO:<bob@mx.test>",
            "DATA",
            "raw:Subject: hello\r\n\r\nHi Bob.\r\n.\r\n",
            "QUIT",
        ],
    ),
    (
        "02_helo",
        &[
            "HELO client.test",
            "MAIL FROM:<alice@client.test>",
            "RCPT TO:<bob@mx.test>",
            "DATA",
            "raw:Subject: helo\r\n\r\nbody\r\n.\r\n",
            "QUIT",
        ],
    ),
    (
        "03_rejected_recipient",
        &[
            "EHLO client.test",
            "MAIL FROM:<alice@client.test>",
            "RCPT TO:<reject-me@mx.test>",
            "RCPT TO:<bob@mx.test>",
            "DATA",
            "raw:Subject: one of two\r\n\r\nbody\r\n.\r\n",
            "QUIT",
        ],
    ),
    (
        "04_every_recipient_rejected",
        &[
            "EHLO client.test",
            "MAIL FROM:<alice@client.test>",
            "RCPT TO:<reject-a@mx.test>",
            "RCPT TO:<reject-b@mx.test>",
            "DATA",
            "QUIT",
        ],
    ),
    (
        "05_reset_then_message",
        &[
            "EHLO client.test",
            "MAIL FROM:<alice@client.test>",
            "RCPT TO:<bob@mx.test>",
            "RSET",
            "MAIL FROM:<carol@client.test>",
            "RCPT TO:<bob@mx.test>",
            "DATA",
            "raw:Subject: after reset\r\n\r\nbody\r\n.\r\n",
            "QUIT",
        ],
    ),
    (
        "06_junked_message",
        &[
            "EHLO client.test",
            "MAIL FROM:<spam@client.test>",
            "RCPT TO:<bob@mx.test>",
            "DATA",
            "raw:Subject: buy now\r\n\r\nbody\r\n.\r\n",
            "QUIT",
        ],
    ),
    (
        "07_rewritten_sender",
        &[
            "EHLO client.test",
            "MAIL FROM:<old@client.test>",
            "RCPT TO:<bob@mx.test>",
            "DATA",
            "raw:Subject: rewritten\r\n\r\nbody\r\n.\r\n",
            "QUIT",
        ],
    ),
    ("08_disconnected_at_helo", &["HELO bad.example"]),
    (
        "09_starttls",
        &[
            "EHLO client.test",
            "starttls",
            "EHLO client.test",
            "MAIL FROM:<alice@client.test>",
            "RCPT TO:<bob@mx.test>",
            "DATA",
            "raw:Subject: over TLS\r\n\r\nbody\r\n.\r\n",
            "QUIT",
        ],
    ),
    (
        "10_auth_plain",
        &[
            "EHLO client.test",
            "starttls",
            "EHLO client.test",
            "AUTH PLAIN AGFsaWNlAGFsaWNlLXB3",
            "MAIL FROM:<alice@mx.test>",
            "RCPT TO:<bob@mx.test>",
            "DATA",
            "raw:Subject: authenticated\r\n\r\nbody\r\n.\r\n",
            "QUIT",
        ],
    ),
    (
        "11_auth_login_failed",
        &[
            "EHLO client.test",
            "starttls",
            "EHLO client.test",
            "AUTH LOGIN",
            "YWxpY2U=",
            "d3JvbmctcGFzc3dvcmQ=",
            "QUIT",
        ],
    ),
    (
        "12_two_messages",
        &[
            "EHLO client.test",
            "MAIL FROM:<alice@client.test>",
            "RCPT TO:<bob@mx.test>",
            "DATA",
            "raw:Subject: first\r\n\r\nbody\r\n.\r\n",
            "MAIL FROM:<alice@client.test>",
            "RCPT TO:<carol@mx.test>",
            "DATA",
            "raw:Subject: second\r\n\r\nbody\r\n.\r\n",
            "QUIT",
        ],
    ),
    (
        "13_protocol_errors",
        &[
            "EHLO client.test",
            "MAIL FROM:alice@client.test",
            "WHATEVER",
            "RCPT TO:<bob@mx.test>",
            "NOOP",
            "QUIT",
        ],
    ),
    ("14_quit_at_once", &["QUIT"]),
    (
        "15_dots_and_pipes",
        &[
            "EHLO client.test",
            "MAIL FROM:<alice@client.test>",
            "RCPT TO:<bob@mx.test>",
            "DATA",
            "raw:Subject: a|b\r\n\r\n..one dot\r\n...two dots\r\n..\r\n\r\nx|y|z\r\n.\r\n",
            "QUIT",
        ],
    ),
    (
        "16_gone_in_the_middle_of_data",
        &[
            "EHLO client.test",
            "MAIL FROM:<alice@client.test>",
            "RCPT TO:<bob@mx.test>",
            "DATA",
            "raw:Subject: unfinished\r\n\r\nthis message never ends",
            "drop",
        ],
    ),
    (
        "17_chunking",
        &[
            "EHLO client.test",
            "MAIL FROM:<alice@client.test>",
            "RCPT TO:<bob@mx.test>",
            "raw:BDAT 26 LAST\r\nSubject: chunked\r\n\r\nbody\r\n",
            "QUIT",
        ],
    ),
];

/// Redacts what changes from run to run: times, session ids, tokens, message and envelope
/// ids, client ports, dates.
fn redact(line: &str, session: &str) -> String {
    let rules = [
        (r"\|\d+\.\d{6}\|", "|<time>|"),
        (r"127\.0\.0\.1:\d+", "127.0.0.1:<port>"),
        (r"\b[0-9a-f]{16}\b", "<id16>"),
        // Message ids: after the session id in tx-* events, and in the 250 to the message.
        (r"(\|<session>\|)[0-9a-f]{8}\b", "$1<msgid>"),
        (
            r" [0-9a-f]{8} Message accepted",
            " <msgid> Message accepted",
        ),
        (
            r"\w{3}, \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}",
            "<date>",
        ),
    ];
    let mut out = line.replace(session, "<session>");
    for (pattern, with) in rules {
        out = Regex::new(pattern)
            .unwrap()
            .replace_all(&out, with)
            .into_owned();
    }
    out
}

/// The log's lines per session id, in order of appearance.
fn by_session(log: &str) -> BTreeMap<String, Vec<String>> {
    let mut sessions: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in log.lines() {
        let fields: Vec<&str> = line.splitn(7, '|').collect();
        if fields.len() >= 6 && (fields[0] == "report" || fields[0] == "filter") {
            sessions
                .entry(fields[5].to_owned())
                .or_default()
                .push(line.to_owned());
        }
    }
    sessions
}

async fn run(addr: std::net::SocketAddr, pkis: &Pkis, script: Script) {
    let mut c = Client::connect(addr).await;
    c.reply().await;
    for step in script {
        match *step {
            "starttls" => {
                c.starttls(&pkis.client_tls(None), "mx.test").await.unwrap();
            }
            "drop" => return,
            raw if raw.starts_with("raw:") => {
                c.send(raw.trim_start_matches("raw:").as_bytes()).await;
                if !raw.ends_with("never ends") {
                    c.reply().await;
                }
            }
            command => {
                c.send(format!("{command}\r\n").as_bytes()).await;
                // After a refusal that closes the session there is nothing more to read.
                if c.try_reply().await.is_none_or(|r| r.starts_with("421")) {
                    return;
                }
            }
        }
    }
}

async fn wait_for(log: &Path, count: usize) -> String {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            if text.matches("|link-disconnect|").count() >= count {
                return text;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("every session reported its disconnection")
}

#[tokio::test]
async fn report_streams_of_scripted_sessions() {
    let pkis = Pkis::new();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("filter.log");
    std::fs::write(
        dir.path().join("creds"),
        format!(
            "alice {}\n",
            auth::hash_password("alice-pw", PasswordScheme::Sha512Crypt)
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("records"),
        "127.0.0.1 PTR client.test\nclient.test A 127.0.0.1\n",
    )
    .unwrap();
    let port = free_port();
    let conf = format!(
        "{pki}resolver static \"records\"\n\
         table creds file:{creds}\n\
         table everyone {{ \"@\" = \"petrel\" }}\n\
         table accounts {{ \"petrel\" = \"-:-:.\" }}\n\
         filter chain proc-exec \"{FILTER} --log {log} --on 'rcpt-to:reject-:reject=550 5.7.1 not here' \
         --on mail-from:spam@:junk --on 'mail-from:old@:rewrite=<new@client.test>' \
         --on 'helo:bad.:disconnect=421 4.7.0 go away'\"\n\
         listen on 127.0.0.1 port {port} hostname mx.test tls pki mx.test auth-optional <creds> filter chain\n\
         action \"local\" maildir \"mail/%{{rcpt.user:lowercase}}\" virtual <everyone> userbase <accounts>\n\
         match from any for domain \"mx.test\" action \"local\"\n",
        pki = pkis.declarations(),
        log = log.display(),
        creds = dir.path().join("creds").display(),
    );
    let d = start(&conf, dir.path(), |_| {}).await;
    let mut streams = Vec::new();
    for (n, (name, script)) in SESSIONS.iter().enumerate() {
        let before = by_session(&std::fs::read_to_string(&log).unwrap_or_default());
        run(d.addr, &pkis, script).await;
        let text = wait_for(&log, n + 1).await;
        let (session, lines) = by_session(&text)
            .into_iter()
            .find(|(sid, _)| !before.contains_key(sid))
            .expect("a new session in the log");
        let stream: Vec<String> = lines.iter().map(|l| redact(l, &session)).collect();
        streams.push((*name, stream.join("\n")));
    }
    d.engine.shutdown().await;
    for (name, stream) in streams {
        insta::assert_snapshot!(name, stream);
    }
    // The password never reached the filter: not in clear, not in base64.
    let everything = std::fs::read_to_string(&log).unwrap();
    assert!(!everything.contains("alice-pw"));
    assert!(!everything.contains(&b64("\0alice\0alice-pw")));
    assert!(!everything.contains("d3JvbmctcGFzc3dvcmQ="));
}
