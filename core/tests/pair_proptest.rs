//! The client machine against the server machine, in memory, over generated messages: every
//! message arrives byte for byte and every recipient is delivered, whatever the content, the
//! extensions in use and the way the pipe cuts the byte streams.
use std::sync::Arc;

use petrel_core::session::client::{ClientConfig, ClientTls, Message, OutcomeKind};
use petrel_core::session::harness::{Pair, Policy, ServerHarness, accept_all};
use petrel_core::session::server::{AuthPolicy, Request, ServerConfig, TlsPolicy};
use petrel_core::session::{AuthMechanism, Decision};
use petrel_core::smtp::dot::normalize_line_endings;
use petrel_core::smtp::{
    Body, EnhancedCode, ForwardPath, Host, MailParams, Mailbox, Notify, RcptParams, Reply,
    ReversePath,
};
use proptest::collection::vec;
use proptest::prelude::*;

/// Longest text line the server takes, CRLF excluded (RFC 5321: 1000 octets with CRLF).
const MAX_LINE: usize = 998;

/// One line of content, without its line ending.
fn line() -> impl Strategy<Value = Vec<u8>> {
    // Any byte but CR and LF: 8-bit bytes and control characters included.
    let text_byte = prop_oneof![
        6 => 0x20u8..0x7f,
        2 => 0x80u8..=0xff,
        1 => any::<u8>().prop_filter("line break", |b| *b != b'\r' && *b != b'\n'),
    ];
    prop_oneof![
        3 => vec(text_byte.clone(), 0..80),
        2 => Just(Vec::new()),
        2 => Just(b".".to_vec()),
        1 => Just(b"..".to_vec()),
        2 => vec(text_byte.clone(), 0..40).prop_map(|t| [&b"."[..], &t].concat()),
        1 => (MAX_LINE - 3..=MAX_LINE, any::<bool>()).prop_map(|(n, dot)| {
            let mut l = vec![b'x'; n];
            if dot {
                l[0] = b'.';
            }
            l
        }),
        1 => vec(text_byte, MAX_LINE - 20..=MAX_LINE),
    ]
}

/// Message content with CRLF line endings, with or without a final CRLF.
fn crlf_content() -> impl Strategy<Value = Vec<u8>> {
    (vec(line(), 0..30), any::<bool>()).prop_map(|(lines, final_crlf)| {
        let mut out = lines.join(&b"\r\n"[..]);
        if final_crlf && !lines.is_empty() {
            out.extend_from_slice(b"\r\n");
        }
        out
    })
}

/// Message content with any mix of CRLF, bare LF and bare CR line endings.
fn mixed_content() -> impl Strategy<Value = Vec<u8>> {
    let ending = prop_oneof![Just(&b"\r\n"[..]), Just(&b"\n"[..]), Just(&b"\r"[..])];
    vec((line(), ending), 0..20).prop_map(|lines| {
        lines
            .into_iter()
            .flat_map(|(l, e)| [l, e.to_vec()].concat())
            .collect()
    })
}

/// What the server stores: CRLF line endings, a final CRLF added when missing.
fn expected(content: &[u8]) -> Vec<u8> {
    let mut out = normalize_line_endings(content);
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn mailbox(utf8: bool) -> impl Strategy<Value = Mailbox> {
    let local = if utf8 {
        "[a-z\u{e0}-\u{ff}]{1,8}".boxed()
    } else {
        "[a-z0-9.]{0,6}[a-z]"
            .prop_filter("dot-atom", |l: &String| {
                !l.starts_with('.') && !l.contains("..")
            })
            .boxed()
    };
    (local, "[a-z]{1,8}").prop_map(|(local, d)| Mailbox {
        local,
        host: Host::Domain(format!("{d}.example")),
    })
}

fn notify() -> impl Strategy<Value = Option<Notify>> {
    proptest::option::of(
        (any::<bool>(), any::<bool>()).prop_map(|(success, delay)| Notify {
            never: false,
            success,
            failure: true,
            delay,
        }),
    )
}

fn message(content: impl Strategy<Value = Vec<u8>>) -> impl Strategy<Value = Message> {
    let utf8 = prop_oneof![4 => Just(false), 1 => Just(true)];
    (utf8, content).prop_flat_map(|(utf8, content)| {
        (
            prop_oneof![1 => Just(None), 4 => mailbox(utf8).prop_map(Some)],
            vec((mailbox(utf8), notify()), 1..5),
            proptest::option::of(prop_oneof![Just(Body::SevenBit), Just(Body::EightBitMime)]),
            Just(content),
        )
            .prop_map(|(from, rcpts, body, content)| Message {
                from: from.map_or(ReversePath::Null, ReversePath::Mailbox),
                params: MailParams {
                    body,
                    ..MailParams::default()
                },
                rcpts: rcpts
                    .into_iter()
                    .map(|(m, notify)| {
                        let params = RcptParams {
                            notify,
                            orcpt: None,
                        };
                        (ForwardPath::Mailbox(m), params)
                    })
                    .collect(),
                content: Arc::from(content),
            })
    })
}

/// How the two machines are set up and connected.
#[derive(Clone, Debug)]
struct Setup {
    /// The client pipelines when offered.
    pipelining: bool,
    /// The server offers PIPELINING.
    server_pipelining: bool,
    /// The client uses BDAT when offered.
    chunking: bool,
    /// The server offers CHUNKING.
    server_chunking: bool,
    /// The server offers STARTTLS (and the client takes it).
    tls: bool,
    /// Largest piece the pipe delivers at once.
    chunk: usize,
}

fn setup() -> impl Strategy<Value = Setup> {
    let chunk = prop_oneof![
        1 => Just(1usize),
        3 => 2usize..64,
        2 => 64usize..4096,
        2 => Just(usize::MAX),
    ];
    (any::<[bool; 5]>(), chunk).prop_map(|(flags, chunk)| Setup {
        pipelining: flags[0],
        server_pipelining: flags[1],
        chunking: flags[2],
        server_chunking: flags[3],
        tls: flags[4],
        chunk,
    })
}

fn pair(setup: &Setup) -> Pair {
    let client = ClientConfig {
        pipelining: setup.pipelining,
        chunking: setup.chunking,
        tls: ClientTls::Opportunistic,
        ..ClientConfig::default()
    };
    let server = ServerConfig {
        pipelining: setup.server_pipelining,
        chunking: setup.server_chunking,
        tls: if setup.tls {
            TlsPolicy::Offer
        } else {
            TlsPolicy::Off
        },
        ..ServerConfig::default()
    };
    let mut pair = Pair::new(client, server, accept_all());
    pair.chunk = setup.chunk;
    pair
}

/// Sends `messages` over one connection; checks every one arrived intact with its envelope and
/// every recipient was delivered. `content` maps a message's content to what must be stored.
fn deliver_all(
    setup: &Setup,
    messages: &[Message],
    content: impl Fn(&Message) -> Vec<u8>,
) -> Result<(), TestCaseError> {
    let mut pair = pair(setup);
    for m in messages {
        pair.send(m.clone());
    }
    pair.quit();
    pair.drive();
    let transcript = pair.server.transcript().to_owned();
    prop_assert_eq!(pair.reports.len(), messages.len(), "{}", transcript);
    for (report, m) in pair.reports.iter().zip(messages) {
        prop_assert_eq!(report.rcpts.len(), m.rcpts.len());
        for o in &report.rcpts {
            prop_assert_eq!(o.kind, OutcomeKind::Delivered, "{:?}\n{}", o, transcript);
        }
        prop_assert!(report.dsn_passed);
    }
    prop_assert_eq!(pair.server.stored.len(), messages.len());
    prop_assert_eq!(pair.server.aborted, 0);
    for (stored, m) in pair.server.stored.iter().zip(messages) {
        prop_assert_eq!(&stored.envelope.from, &m.from);
        prop_assert_eq!(&stored.envelope.rcpts, &m.rcpts);
        prop_assert_eq!(stored.envelope.params.body, m.params.body);
        let want = content(m);
        prop_assert_eq!(stored.envelope.params.size, Some(want.len() as u64));
        prop_assert!(stored.content == want, "content differs\n{}", transcript);
    }
    prop_assert!(pair.client.is_closed() && pair.server.closed);
    prop_assert_eq!(pair.client.is_tls(), setup.tls);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(800))]

    #[test]
    fn messages_arrive_byte_for_byte(
        setup in setup(),
        messages in vec(message(crlf_content()), 1..5),
    ) {
        deliver_all(&setup, &messages, |m| expected(&m.content))?;
    }

    #[test]
    fn bare_line_endings_arrive_as_crlf(
        setup in setup(),
        messages in vec(message(mixed_content()), 1..3),
    ) {
        deliver_all(&setup, &messages, |m| expected(&m.content))?;
    }

    #[test]
    fn binarymime_arrives_untouched(
        chunk in prop_oneof![Just(1usize), 2usize..100, Just(usize::MAX)],
        contents in vec(vec(any::<u8>(), 0..3000), 1..4),
    ) {
        let setup = Setup {
            pipelining: true,
            server_pipelining: true,
            chunking: true,
            server_chunking: true,
            tls: false,
            chunk,
        };
        let messages: Vec<Message> = contents
            .into_iter()
            .map(|c| Message {
                from: ReversePath::Null,
                params: MailParams { body: Some(Body::BinaryMime), ..MailParams::default() },
                rcpts: vec![(
                    ForwardPath::Mailbox(Mailbox::parse("b@example.org", false).unwrap()),
                    RcptParams::default(),
                )],
                content: Arc::from(c),
            })
            .collect();
        deliver_all(&setup, &messages, |m| m.content.to_vec())?;
    }
}

#[test]
fn many_recipients_and_messages_on_one_connection() {
    for pipelining in [false, true] {
        for chunking in [false, true] {
            let setup = Setup {
                pipelining,
                server_pipelining: true,
                chunking,
                server_chunking: true,
                tls: true,
                chunk: 13,
            };
            let messages: Vec<Message> = (0..20)
                .map(|n| Message {
                    from: ReversePath::Mailbox(Mailbox::parse("a@example.org", false).unwrap()),
                    params: MailParams::default(),
                    rcpts: (0..=n * 6)
                        .map(|r| {
                            let m = Mailbox::parse(&format!("r{r}@example.net"), false).unwrap();
                            (ForwardPath::Mailbox(m), RcptParams::default())
                        })
                        .collect(),
                    content: Arc::from(format!("Subject: {n}\r\n\r\n.{n}\r\n.\r\n").as_bytes()),
                })
                .collect();
            deliver_all(&setup, &messages, |m| m.content.to_vec()).unwrap();
        }
    }
}

#[test]
fn authenticated_submission_over_starttls() {
    for (pipelining, chunking) in [(false, false), (true, true)] {
        let client = ClientConfig {
            tls: ClientTls::Required,
            auth: Some(("user".into(), "secret".into())),
            pipelining,
            chunking,
            ..ClientConfig::default()
        };
        let server = ServerConfig {
            tls: TlsPolicy::Require,
            auth: AuthPolicy::Required,
            ..ServerConfig::default()
        };
        let mut pair = Pair::new(client, server, accept_all());
        pair.chunk = 5;
        let from = Mailbox::parse("a@example.org", false).unwrap();
        let params = MailParams {
            auth: Some("a@example.org".into()),
            ..MailParams::default()
        };
        pair.send(Message {
            from: ReversePath::Mailbox(from),
            params,
            rcpts: vec![(
                ForwardPath::Mailbox(Mailbox::parse("b@example.net", false).unwrap()),
                RcptParams::default(),
            )],
            content: Arc::from(&b"Subject: s\r\n\r\nbody"[..]),
        });
        pair.quit();
        pair.drive();
        let t = pair.server.transcript();
        assert_eq!(pair.reports.len(), 1, "{t}");
        assert_eq!(pair.reports[0].rcpts[0].kind, OutcomeKind::Delivered, "{t}");
        assert_eq!(pair.server.session.auth_user(), Some("user"));
        assert!(pair.server.session.is_tls());
        let stored = &pair.server.stored[0];
        assert_eq!(stored.content, b"Subject: s\r\n\r\nbody\r\n");
        // AUTH= from an authenticated client is kept.
        assert_eq!(
            stored.envelope.params.auth.as_deref(),
            Some("a@example.org")
        );
        let auths = pair
            .server
            .requests
            .iter()
            .filter(|r| {
                matches!(
                    r,
                    Request::Auth {
                        mechanism: AuthMechanism::Plain,
                        ..
                    }
                )
            })
            .count();
        assert_eq!(auths, 1, "{t}");
    }
}

fn simple(rcpts: &[&str], content: &[u8]) -> Message {
    Message {
        from: ReversePath::Mailbox(Mailbox::parse("a@example.org", false).unwrap()),
        params: MailParams::default(),
        rcpts: rcpts
            .iter()
            .map(|r| {
                let m = Mailbox::parse(r, false).unwrap();
                (ForwardPath::Mailbox(m), RcptParams::default())
            })
            .collect(),
        content: Arc::from(content),
    }
}

/// Both machines with every combination of PIPELINING and CHUNKING.
fn each_mode(server: &ServerConfig, policy: fn() -> Policy, run: impl Fn(&mut Pair, &str)) {
    for pipelining in [false, true] {
        for chunking in [false, true] {
            let client = ClientConfig {
                pipelining,
                chunking,
                ..ClientConfig::default()
            };
            let mut pair = Pair::new(client, server.clone(), policy());
            pair.chunk = 11;
            run(
                &mut pair,
                &format!("pipelining={pipelining} chunking={chunking}"),
            );
        }
    }
}

fn kinds(pair: &Pair) -> Vec<Vec<OutcomeKind>> {
    pair.reports
        .iter()
        .map(|r| r.rcpts.iter().map(|o| o.kind).collect())
        .collect()
}

use OutcomeKind::{Delivered, Permanent, Temporary};

#[test]
fn refused_recipients_and_messages_do_not_disturb_the_next_ones() {
    fn policy() -> Policy {
        Box::new(|r: &Request| match r {
            Request::Rcpt { to, .. } if to.to_string().contains("bad") => {
                Decision::Reply(Reply::new(550, EnhancedCode::new(5, 1, 1), "no such user"))
            }
            Request::Rcpt { to, .. } if to.to_string().contains("later") => {
                Decision::Reply(Reply::new(450, EnhancedCode::new(4, 2, 1), "try later"))
            }
            _ => Decision::Accept,
        })
    }
    each_mode(&ServerConfig::default(), policy, |pair, mode| {
        pair.send(simple(
            &["ok@x.example", "bad@x.example", "later@x.example"],
            b"one\r\n",
        ));
        pair.send(simple(&["bad@x.example", "later@x.example"], b"two\r\n"));
        // A line over the 1000-octet limit.
        let long = [vec![b'y'; 999], b"\r\n".to_vec()].concat();
        pair.send(simple(&["ok@x.example"], &long));
        pair.send(simple(&["ok@x.example"], b"four\r\n"));
        pair.quit();
        pair.drive();
        let t = pair.server.transcript().to_owned();
        assert_eq!(
            kinds(pair),
            [
                vec![Delivered, Permanent, Temporary],
                vec![Permanent, Temporary],
                vec![Permanent],
                vec![Delivered],
            ],
            "{mode}\n{t}"
        );
        // The client refuses to send a line over the limit, by DATA or by BDAT.
        let long_line = &pair.reports[2].rcpts[0];
        assert_eq!(
            (long_line.reply.code, long_line.remote),
            (554, false),
            "{mode}\n{t}"
        );
        let stored: Vec<&[u8]> = pair.server.stored.iter().map(|s| &s.content[..]).collect();
        assert_eq!(stored, [&b"one\r\n"[..], b"four\r\n"], "{mode}\n{t}");
        assert_eq!(pair.server.stored[0].envelope.rcpts.len(), 1);
        assert!(pair.client.is_closed() && pair.server.closed, "{mode}\n{t}");
    });
}

#[test]
fn too_many_recipients_are_retried_later() {
    let server = ServerConfig {
        max_recipients: 2,
        ..ServerConfig::default()
    };
    each_mode(&server, accept_all, |pair, mode| {
        pair.send(simple(
            &["a@x.example", "b@x.example", "c@x.example", "d@x.example"],
            b"x\r\n",
        ));
        pair.quit();
        pair.drive();
        let t = pair.server.transcript().to_owned();
        assert_eq!(
            kinds(pair),
            [vec![Delivered, Delivered, Temporary, Temporary]],
            "{mode}\n{t}"
        );
        assert_eq!(pair.reports[0].rcpts[2].reply.code, 452);
    });
}

#[test]
fn message_over_the_server_size_is_bounced_by_the_client() {
    let server = ServerConfig {
        max_message_size: 100,
        ..ServerConfig::default()
    };
    each_mode(&server, accept_all, |pair, mode| {
        pair.send(simple(&["a@x.example"], &[b'z'; 99]));
        pair.send(simple(&["a@x.example"], &[b'z'; 98]));
        pair.quit();
        pair.drive();
        let t = pair.server.transcript().to_owned();
        // 99 octets and the CRLF the client adds make 101: over the limit, never sent.
        assert_eq!(
            kinds(pair),
            [vec![Permanent], vec![Delivered]],
            "{mode}\n{t}"
        );
        assert!(!pair.reports[0].rcpts[0].remote);
        assert_eq!(pair.server.stored.len(), 1);
        assert_eq!(pair.server.stored[0].content.len(), 100);
    });
}

#[test]
fn refused_sender_and_refused_commit() {
    fn policy() -> Policy {
        Box::new(|r: &Request| match r {
            Request::Mail { from, .. } if from.to_string().contains("spammer") => {
                Decision::Reply(Reply::new(550, EnhancedCode::new(5, 7, 1), "go away"))
            }
            Request::Commit { envelope, .. } if envelope.rcpts.len() == 2 => {
                Decision::Reply(Reply::new(451, EnhancedCode::new(4, 3, 0), "queue full"))
            }
            _ => Decision::Accept,
        })
    }
    each_mode(&ServerConfig::default(), policy, |pair, mode| {
        let mut spam = simple(&["a@x.example", "b@x.example"], b"spam\r\n");
        spam.from = ReversePath::Mailbox(Mailbox::parse("spammer@example.org", false).unwrap());
        pair.send(spam);
        pair.send(simple(&["a@x.example", "b@x.example"], b"two\r\n"));
        pair.send(simple(&["a@x.example"], b"three\r\n"));
        pair.quit();
        pair.drive();
        let t = pair.server.transcript().to_owned();
        assert_eq!(
            kinds(pair),
            [
                vec![Permanent, Permanent],
                vec![Temporary, Temporary],
                vec![Delivered]
            ],
            "{mode}\n{t}"
        );
        assert_eq!(pair.server.stored.len(), 1, "{mode}\n{t}");
        assert_eq!(pair.server.stored[0].content, b"three\r\n");
    });
}

// ----- server findings -----

#[test]

fn pipelined_commands_after_a_refused_sender() {
    fn policy() -> Policy {
        Box::new(|r: &Request| match r {
            Request::Mail { from, .. } if from.to_string().contains("spammer") => {
                Decision::Reply(Reply::new(550, EnhancedCode::new(5, 7, 1), "go away"))
            }
            _ => Decision::Accept,
        })
    }
    let client = ClientConfig::default();
    let mut pair = Pair::new(client, ServerConfig::default(), policy());
    let rcpts: Vec<String> = (0..25).map(|i| format!("r{i}@x.example")).collect();
    let rcpts: Vec<&str> = rcpts.iter().map(String::as_str).collect();
    let mut spam = simple(&rcpts, b"spam\r\n");
    spam.from = ReversePath::Mailbox(Mailbox::parse("spammer@example.org", false).unwrap());
    pair.send(spam);
    pair.send(simple(&["a@x.example"], b"ham\r\n"));
    pair.quit();
    pair.drive();
    let t = pair.server.transcript().to_owned();
    assert_eq!(pair.reports.len(), 2);
    assert!(pair.reports[0].rcpts.iter().all(|o| o.kind == Permanent));
    assert_eq!(kinds(&pair)[1], [Delivered], "{t}");
}

#[test]

fn many_transactions_whose_recipients_are_all_refused() {
    fn policy() -> Policy {
        Box::new(|r: &Request| match r {
            Request::Rcpt { to, .. } if to.to_string().contains("bad") => {
                Decision::Reply(Reply::new(550, EnhancedCode::new(5, 1, 1), "no such user"))
            }
            _ => Decision::Accept,
        })
    }
    each_mode(&ServerConfig::default(), policy, |pair, mode| {
        for _ in 0..30 {
            pair.send(simple(&["bad@x.example"], b"x\r\n"));
        }
        pair.send(simple(&["good@x.example"], b"y\r\n"));
        pair.quit();
        pair.drive();
        let t = pair.server.transcript().to_owned();
        assert_eq!(pair.reports.len(), 31);
        assert_eq!(kinds(pair)[30], [Delivered], "{mode}\n{t}");
    });
}

#[test]

fn bdat_content_is_checked_like_data() {
    for (name, content) in [
        ("bare LF", &b"a\nb\r\n"[..]),
        (
            "long line",
            &[vec![b'x'; 999], b"\r\n".to_vec()].concat()[..],
        ),
    ] {
        let mut data = ServerHarness::new(ServerConfig::default(), accept_all());
        data.line("EHLO client.example");
        data.line("MAIL FROM:<a@example.org>");
        data.line("RCPT TO:<b@example.org>");
        assert!(data.line("DATA").starts_with("354"));
        let wire = [content, b".\r\n"].concat();
        let refused = String::from_utf8_lossy(&data.send(&wire)).into_owned();
        assert!(refused.starts_with('5'), "{name}: DATA {refused}");

        let mut bdat = ServerHarness::new(ServerConfig::default(), accept_all());
        bdat.line("EHLO client.example");
        bdat.line("MAIL FROM:<a@example.org>");
        bdat.line("RCPT TO:<b@example.org>");
        let mut wire = format!("BDAT {} LAST\r\n", content.len()).into_bytes();
        wire.extend_from_slice(content);
        let reply = String::from_utf8_lossy(&bdat.send(&wire)).into_owned();
        assert_eq!(&reply[..3], &refused[..3], "{name}: BDAT {reply}");
        assert!(bdat.stored.is_empty(), "{name}");
    }
}
