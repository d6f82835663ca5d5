use super::*;

const T0: Time = Time::from_millis(1_713_795_082_354);

fn client() -> ProcTableClient {
    ProcTableClient::new("devs", SMTPD_VERSION, T0, Timeouts::default()).unwrap()
}

fn drain_output(c: &mut ProcTableClient) -> Vec<String> {
    std::iter::from_fn(|| c.poll_output()).collect()
}

fn drain_events(c: &mut ProcTableClient) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

/// A client past its handshake, registered for alias, userinfo and source.
fn ready() -> ProcTableClient {
    let mut c = client();
    drain_output(&mut c);
    for line in [
        "register|alias",
        "register|userinfo",
        "register|source",
        "register|ready",
    ] {
        c.handle_line(line, T0).unwrap();
    }
    drain_events(&mut c);
    c
}

fn lookup(key: &str) -> Operation {
    Operation::Lookup {
        service: Service::Alias,
        key: key.into(),
    }
}

#[test]
fn handshake() {
    let mut c = client();
    assert_eq!(
        drain_output(&mut c),
        [
            "config|smtpd-version|7.8.0",
            "config|protocol|0.1",
            "config|tablename|devs",
            "config|ready"
        ]
    );
    assert!(!c.is_ready());
    assert_eq!(
        c.request(RequestId(1), lookup("op"), T0),
        Err(RequestError::NotReady("devs".into()))
    );
    c.handle_line("register|alias\n", T0).unwrap();
    c.handle_line("register|credentials", T0).unwrap();
    assert_eq!(c.poll_event(), None);
    c.handle_line("register|ready", T0).unwrap();
    assert!(c.is_ready());
    assert_eq!(
        drain_events(&mut c),
        [Event::Ready {
            services: vec![Service::Alias, Service::Credentials]
        }]
    );
    assert_eq!(c.services(), [Service::Alias, Service::Credentials]);
}

#[test]
fn handshake_failures() {
    for (lines, error) in [
        (&["register|ready"][..], HandshakeError::NoServices),
        (
            &["register|alias", "hello"][..],
            HandshakeError::NotRegister("hello".into()),
        ),
        (
            &["register|bogus"][..],
            HandshakeError::UnknownService("bogus".into()),
        ),
        (
            &["register|none"][..],
            HandshakeError::UnknownService("none".into()),
        ),
    ] {
        let mut c = client();
        let mut result = Ok(());
        for line in lines {
            result = c.handle_line(line, T0);
        }
        assert_eq!(result, Err(ProtocolError::Handshake(error.clone())));
        assert!(c.has_failed());
        assert_eq!(drain_events(&mut c), [Event::HandshakeFailed(error)]);
        assert_eq!(
            c.handle_line("register|ready", T0),
            Err(ProtocolError::AfterFailure)
        );
        assert_eq!(
            c.request(RequestId(1), lookup("x"), T0),
            Err(RequestError::Failed("devs".into()))
        );
    }
    let mut c = client();
    assert_eq!(c.poll_timeout(), Some(T0 + Duration::from_secs(30)));
    c.handle_timeout(T0 + Duration::from_secs(29));
    assert!(!c.has_failed());
    c.handle_timeout(T0 + Duration::from_secs(30));
    assert_eq!(
        drain_events(&mut c),
        [Event::HandshakeFailed(HandshakeError::TimedOut)]
    );
}

#[test]
fn requests_are_encoded_as_opensmtpd_does() {
    let mut c = ready();
    c.request(RequestId(0xb725_08d1), lookup("op"), T0).unwrap();
    c.request(
        RequestId(0xe586_2859),
        Operation::Check {
            service: Service::Userinfo,
            key: "a|b".into(),
        },
        Time::from_millis(1_713_795_103_314),
    )
    .unwrap();
    c.request(
        RequestId(0x189b_d3ee),
        Operation::Fetch {
            service: Service::Source,
        },
        T0,
    )
    .unwrap();
    c.request(RequestId(7), Operation::Update, T0).unwrap();
    assert_eq!(
        drain_output(&mut c),
        [
            "table|0.1|1713795082.354000|devs|lookup|alias|b72508d1|op",
            "table|0.1|1713795103.314000|devs|check|userinfo|e5862859|a|b",
            "table|0.1|1713795082.354000|devs|fetch|source|189bd3ee",
            "table|0.1|1713795082.354000|devs|update|00000007",
        ]
    );
    assert_eq!(c.outstanding(), 4);
}

#[test]
fn requests_the_client_refuses() {
    let mut c = ready();
    assert_eq!(
        c.request(
            RequestId(1),
            Operation::Check {
                service: Service::Domain,
                key: "example.org".into()
            },
            T0
        ),
        Err(RequestError::Unsupported {
            table: "devs".into(),
            service: Service::Domain
        })
    );
    assert_eq!(
        c.request(RequestId(1), lookup("evil\ntable|0.1|x"), T0),
        Err(RequestError::Encode(EncodeError::LineBreakInKey))
    );
    c.request(RequestId(1), lookup("a"), T0).unwrap();
    assert_eq!(
        c.request(RequestId(1), lookup("b"), T0),
        Err(RequestError::DuplicateId(RequestId(1)))
    );
    assert!(ProcTableClient::new("a|b", SMTPD_VERSION, T0, Timeouts::default()).is_err());
}

#[test]
fn interleaved_replies_are_matched_by_id() {
    let mut c = ready();
    for (id, key) in [(1, "alice"), (2, "bob"), (3, "carol")] {
        c.request(RequestId(id), lookup(key), T0).unwrap();
    }
    c.request(
        RequestId(4),
        Operation::Check {
            service: Service::Userinfo,
            key: "dave".into(),
        },
        T0,
    )
    .unwrap();
    c.handle_line("lookup-result|00000003|found|carol@example.org", T0)
        .unwrap();
    c.handle_line("check-result|00000004|found", T0).unwrap();
    c.handle_line("lookup-result|00000001|not-found", T0)
        .unwrap();
    c.handle_line("lookup-result|00000002|found|a|b, c", T0)
        .unwrap();
    assert_eq!(
        drain_events(&mut c),
        [
            Event::Answer {
                id: RequestId(3),
                answer: Answer::Value("carol@example.org".into())
            },
            Event::Answer {
                id: RequestId(4),
                answer: Answer::Present
            },
            Event::Answer {
                id: RequestId(1),
                answer: Answer::NotFound
            },
            Event::Answer {
                id: RequestId(2),
                answer: Answer::Value("a|b, c".into())
            },
        ]
    );
    assert_eq!(c.outstanding(), 0);
}

#[test]
fn unknown_ids_and_mismatched_replies() {
    let mut c = ready();
    c.request(RequestId(1), lookup("x"), T0).unwrap();
    assert_eq!(
        c.handle_line("lookup-result|00000009|not-found", T0),
        Err(ProtocolError::UnknownId("00000009".into()))
    );
    // The id must be echoed exactly.
    assert_eq!(
        c.handle_line("lookup-result|1|not-found", T0),
        Err(ProtocolError::UnknownId("1".into()))
    );
    assert_eq!(c.outstanding(), 1);
    assert_eq!(
        c.handle_line("check-result|00000001|found", T0),
        Err(ProtocolError::WrongOperation {
            id: RequestId(1),
            expected: OpKind::Lookup,
            got: OpKind::Check
        })
    );
    assert_eq!(
        drain_events(&mut c),
        [Event::Answer {
            id: RequestId(1),
            answer: Answer::Failed("mismatched reply".into())
        }]
    );
    // A fetch may be answered as smtpd-tables(7) shows it.
    c.request(
        RequestId(2),
        Operation::Fetch {
            service: Service::Source,
        },
        T0,
    )
    .unwrap();
    c.handle_line("lookup-result|00000002|found|192.168.1.7", T0)
        .unwrap();
    assert_eq!(
        drain_events(&mut c),
        [Event::Answer {
            id: RequestId(2),
            answer: Answer::Value("192.168.1.7".into())
        }]
    );
}

#[test]
fn malformed_lines_do_not_stop_the_client() {
    let mut c = ready();
    c.request(RequestId(1), lookup("x"), T0).unwrap();
    for (line, error) in [
        ("", ReplyError::Empty),
        (
            "hello|00000001|found|x",
            ReplyError::UnknownReply("hello".into()),
        ),
        ("lookup-result", ReplyError::Truncated),
        ("lookup-result|00000001", ReplyError::Truncated),
        ("lookup-result||found|x", ReplyError::Truncated),
        ("lookup-result|00000001|found|", ReplyError::EmptyValue),
        ("lookup-result|00000001|found", ReplyError::EmptyValue),
        (
            "lookup-result|00000001|maybe",
            ReplyError::BadOutcome {
                op: OpKind::Lookup,
                outcome: "maybe".into(),
            },
        ),
        (
            "update-result|00000001|found|x",
            ReplyError::BadOutcome {
                op: OpKind::Update,
                outcome: "found|x".into(),
            },
        ),
        (
            "check-result|00000001|ok",
            ReplyError::BadOutcome {
                op: OpKind::Check,
                outcome: "ok".into(),
            },
        ),
    ] {
        assert_eq!(
            c.handle_line(line, T0),
            Err(ProtocolError::Reply(error)),
            "{line:?}"
        );
    }
    assert_eq!(c.outstanding(), 1);
    c.handle_line("lookup-result|00000001|found|ok\r\n", T0)
        .unwrap();
    assert_eq!(
        drain_events(&mut c),
        [Event::Answer {
            id: RequestId(1),
            answer: Answer::Value("ok".into())
        }]
    );
}

#[test]
fn error_replies_are_temporary_failures() {
    let mut c = ready();
    c.request(RequestId(1), lookup("x"), T0).unwrap();
    c.request(RequestId(2), Operation::Update, T0).unwrap();
    c.request(
        RequestId(3),
        Operation::Check {
            service: Service::Alias,
            key: "y".into(),
        },
        T0,
    )
    .unwrap();
    c.handle_line("lookup-result|00000001|error|ldap server unreachable", T0)
        .unwrap();
    c.handle_line("update-result|00000002|error", T0).unwrap();
    c.handle_line("check-result|00000003|not-found", T0)
        .unwrap();
    let events = drain_events(&mut c);
    let answers: Vec<Answer> = events
        .into_iter()
        .map(|e| match e {
            Event::Answer { answer, .. } => answer,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        answers,
        [
            Answer::Failed("ldap server unreachable".into()),
            Answer::Failed("error".into()),
            Answer::NotFound
        ]
    );
    assert_eq!(
        answers[0].clone().into_value("devs"),
        Err(LookupError::Backend {
            table: "devs".into(),
            reason: "ldap server unreachable".into()
        })
    );
    assert_eq!(answers[2].clone().into_present("devs"), Ok(false));
    assert_eq!(Answer::Present.into_present("devs"), Ok(true));
    assert_eq!(
        Answer::Value("v".into()).into_value("devs"),
        Ok(Some("v".into()))
    );
    assert!(Answer::TimedOut.into_value("devs").is_err());
    c.request(RequestId(4), Operation::Update, T0).unwrap();
    c.handle_line("update-result|00000004|ok", T0).unwrap();
    assert_eq!(
        drain_events(&mut c),
        [Event::Answer {
            id: RequestId(4),
            answer: Answer::Updated
        }]
    );
}

#[test]
fn timeouts_and_late_answers() {
    let mut c = ready();
    assert_eq!(c.poll_timeout(), None);
    c.request(RequestId(1), lookup("a"), T0).unwrap();
    let later = T0 + Duration::from_secs(5);
    c.request(RequestId(2), lookup("b"), later).unwrap();
    assert_eq!(c.poll_timeout(), Some(T0 + Duration::from_secs(10)));
    c.handle_timeout(T0 + Duration::from_secs(10));
    assert_eq!(
        drain_events(&mut c),
        [Event::Answer {
            id: RequestId(1),
            answer: Answer::TimedOut
        }]
    );
    assert_eq!(c.poll_timeout(), Some(later + Duration::from_secs(10)));
    // The late answer is dropped quietly; the other request is still answered.
    c.handle_line("lookup-result|00000001|found|x", later)
        .unwrap();
    c.handle_line("lookup-result|00000002|not-found", later)
        .unwrap();
    assert_eq!(
        drain_events(&mut c),
        [Event::Answer {
            id: RequestId(2),
            answer: Answer::NotFound
        }]
    );
}

#[test]
fn a_stopped_process_fails_what_is_outstanding() {
    let mut c = ready();
    c.request(RequestId(1), lookup("a"), T0).unwrap();
    c.request(RequestId(2), lookup("b"), T0).unwrap();
    c.fail("exited with status 1");
    assert_eq!(
        drain_events(&mut c),
        [
            Event::Answer {
                id: RequestId(1),
                answer: Answer::Failed("exited with status 1".into())
            },
            Event::Answer {
                id: RequestId(2),
                answer: Answer::Failed("exited with status 1".into())
            }
        ]
    );
    assert!(c.has_failed());
    assert_eq!(c.poll_timeout(), None);
    let mut c = client();
    c.fail("exec failed");
    assert_eq!(
        drain_events(&mut c),
        [Event::HandshakeFailed(HandshakeError::Stopped(
            "exec failed".into()
        ))]
    );
}

#[test]
fn register_lines() {
    assert_eq!(parse_register("register|ready\r\n"), Ok(Register::Ready));
    assert_eq!(
        parse_register("register|auth"),
        Ok(Register::Service(Service::Auth))
    );
    assert!(parse_register("REGISTER|alias").is_err());
}
