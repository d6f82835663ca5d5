use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use super::*;
use crate::config::{self, FilterKind, ParseOptions};
use crate::filter::builtin::Builtin;
use crate::rules::lookups::{LocalNames, StaticLookups};

const CONF: &str = r#"
table trusted { 192.0.2.0/24 }
table spammers { "spam@bad.example" }
filter no_rdns phase connect match !rdns disconnect "550 5.7.1 no rDNS"
filter trusted phase connect match src <trusted> bypass
filter junk_fcrdns phase connect match !fcrdns junk
filter spam phase mail-from match mail-from <spammers> reject "550 5.7.1 go away"
filter noisy phase rcpt-to match rcpt-to regex "^info@" report "info address"
filter odd phase rcpt-to match rcpt-to regex "^odd@" reject "599 not a real code"
filter bye phase rcpt-to match rcpt-to regex "^bye@" reject "421 4.7.0 go now"
filter tidy phase helo match helo regex "^BAD" rewrite "good.example"
"#;

struct Fixture {
    lookups: StaticLookups,
    builtins: Vec<Builtin>,
}

fn fixture() -> Fixture {
    let config = config::parse("test.conf", CONF, &ParseOptions::default()).expect("config");
    let local = LocalNames::new("mx.example", []);
    let lookups = StaticLookups::from_config(&config, &local, |_| Err("no files".into())).unwrap();
    let builtins = config
        .filters
        .iter()
        .filter_map(|f| match &f.kind {
            FilterKind::Builtin(b) => Some(Builtin::compile(&f.name, b, '+').unwrap()),
            _ => None,
        })
        .collect();
    Fixture { lookups, builtins }
}

impl Fixture {
    fn builtin(&self, name: &str) -> Member {
        let b = self.builtins.iter().find(|b| b.name() == name).unwrap();
        Member::builtin(b.clone())
    }
}

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 51, 100, last))
}

fn session(members: Vec<Member>) -> ChainSession {
    ChainSession::new(Arc::new(Chain::new(members)), 7)
}

fn reports(s: &mut ChainSession) -> Vec<ReportEvent> {
    std::iter::from_fn(|| s.poll_report()).collect()
}

#[test]
fn an_empty_chain_proceeds_and_says_so() {
    let f = fixture();
    let mut s = session(vec![]);
    let facts = FilterFacts::default();
    assert_eq!(
        s.start(Phase::Quit, "", &facts, &f.lookups),
        Step::Done(Verdict::Proceed)
    );
    assert_eq!(
        reports(&mut s),
        vec![ReportEvent::FilterResponse {
            phase: Phase::Quit,
            response: "proceed",
            param: None
        }]
    );
}

#[test]
fn builtin_conditions_and_decisions() {
    let f = fixture();
    let mut s = session(vec![
        f.builtin("trusted"),
        f.builtin("no_rdns"),
        f.builtin("junk_fcrdns"),
    ]);
    // Trusted network: bypass before the rDNS check.
    let trusted = FilterFacts {
        src: Some("192.0.2.9".parse().unwrap()),
        ..Default::default()
    };
    assert_eq!(
        s.start(Phase::Connect, "", &trusted, &f.lookups),
        Step::Done(Verdict::Proceed)
    );
    assert!(!s.is_junk());
    // No rDNS: disconnected with the configured reply.
    let bare = FilterFacts {
        src: Some(ip(1)),
        ..Default::default()
    };
    let Step::Done(Verdict::Disconnect(reply)) = s.start(Phase::Connect, "", &bare, &f.lookups)
    else {
        panic!("not disconnected");
    };
    assert_eq!((reply.code, reply.text.as_ref()), (550, "no rDNS"));
    // A name that is not confirmed: junk, and the session stays junk.
    let unconfirmed = FilterFacts {
        src: Some(ip(1)),
        rdns: Some("x.example"),
        ..Default::default()
    };
    assert_eq!(
        s.start(Phase::Connect, "", &unconfirmed, &f.lookups),
        Step::Done(Verdict::Junk)
    );
    assert!(s.is_junk());
    s.end_transaction();
    assert!(s.is_junk(), "a session junk mark outlives transactions");
}

#[test]
fn tables_regexes_rewrites_and_reports() {
    let f = fixture();
    let mut s = session(vec![
        f.builtin("spam"),
        f.builtin("noisy"),
        f.builtin("odd"),
        f.builtin("bye"),
        f.builtin("tidy"),
    ]);
    let facts = |from, to| FilterFacts {
        src: Some(ip(2)),
        mail_from: from,
        rcpt_to: to,
        ..Default::default()
    };
    let Step::Done(Verdict::Reject(r)) = s.start(
        Phase::MailFrom,
        "spam@bad.example",
        &facts(Some("spam@bad.example"), None),
        &f.lookups,
    ) else {
        panic!()
    };
    assert_eq!(r.code, 550);
    assert_eq!(
        s.start(
            Phase::MailFrom,
            "ok@good.example",
            &facts(Some("ok@good.example"), None),
            &f.lookups
        ),
        Step::Done(Verdict::Proceed)
    );
    reports(&mut s);
    // `report` goes on to the next filter.
    assert_eq!(
        s.start(
            Phase::RcptTo,
            "info@x",
            &facts(Some("a@b"), Some("info@x")),
            &f.lookups
        ),
        Step::Done(Verdict::Proceed)
    );
    let r = reports(&mut s);
    assert_eq!(
        r[0],
        ReportEvent::FilterReport {
            kind: ReporterKind::Builtin,
            name: "noisy".into(),
            message: "info address".into()
        }
    );
    // Any 5xx the configuration allows is sent as written; any 421 disconnects.
    assert!(matches!(
        s.start(Phase::RcptTo, "", &facts(Some("a@b"), Some("odd@x")), &f.lookups),
        Step::Done(Verdict::Reject(r)) if r.code == 599
    ));
    assert!(
        matches!(s.start(Phase::RcptTo, "", &facts(Some("a@b"), Some("bye@x")), &f.lookups), Step::Done(Verdict::Disconnect(r)) if r.code == 421)
    );
    let helo = FilterFacts {
        helo: Some("BAD.example"),
        ..Default::default()
    };
    assert_eq!(
        s.start(Phase::Helo, "BAD.example", &helo, &f.lookups),
        Step::Done(Verdict::Rewrite("good.example".into()))
    );
}

#[test]
fn external_members_are_asked_in_order_with_fresh_tokens() {
    let f = fixture();
    let mut s = session(vec![
        Member::external("a", 10, [Phase::RcptTo]),
        Member::external("b", 11, [Phase::MailFrom]),
        Member::external("c", 12, [Phase::RcptTo, Phase::DataLine]),
    ]);
    let facts = FilterFacts::default();
    let Step::Ask {
        member: 0,
        external: 10,
        token: t1,
        phase: Phase::RcptTo,
        param,
    } = s.start(Phase::RcptTo, "x@y", &facts, &f.lookups)
    else {
        panic!()
    };
    assert_eq!(param, "x@y");
    // A response with another token is refused, and the walk still waits.
    assert_eq!(
        s.answer(t1 ^ 1, Response::Proceed, &facts, &f.lookups),
        Err(ChainError::WrongToken {
            expected: t1,
            got: t1 ^ 1
        })
    );
    let Ok(Step::Ask {
        member: 2,
        external: 12,
        token: t2,
        ..
    }) = s.answer(t1, Response::Proceed, &facts, &f.lookups)
    else {
        panic!()
    };
    assert_ne!(t1, t2);
    let step = s.answer(
        t2,
        Response::Reject("550 5.1.1 no such user".into()),
        &facts,
        &f.lookups,
    );
    let Ok(Step::Done(Verdict::Reject(r))) = step else {
        panic!("{step:?}")
    };
    assert_eq!(
        (r.code, r.enhanced.map(|e| e.to_string())),
        (550, Some("5.1.1".into()))
    );
    assert_eq!(r.text, "no such user");
    assert_eq!(
        reports(&mut s),
        vec![ReportEvent::FilterResponse {
            phase: Phase::RcptTo,
            response: "reject",
            param: Some("550 5.1.1 no such user".into())
        }]
    );
    assert_eq!(
        s.answer(t2, Response::Proceed, &facts, &f.lookups),
        Err(ChainError::Unexpected)
    );
}

#[test]
fn a_proc_report_continues_and_junk_stops_the_chain() {
    let f = fixture();
    let mut s = session(vec![
        Member::external("a", 0, [Phase::MailFrom]),
        Member::external("b", 1, [Phase::MailFrom]),
    ]);
    let facts = FilterFacts::default();
    let Step::Ask { token, .. } = s.start(Phase::MailFrom, "", &facts, &f.lookups) else {
        panic!()
    };
    let Ok(Step::Ask { token, .. }) =
        s.answer(token, Response::Report("seen".into()), &facts, &f.lookups)
    else {
        panic!()
    };
    assert_eq!(
        s.answer(token, Response::Junk, &facts, &f.lookups),
        Ok(Step::Done(Verdict::Junk))
    );
    assert!(s.is_junk());
    s.end_transaction();
    assert!(!s.is_junk(), "a transaction's junk mark ends with it");
    let r = reports(&mut s);
    assert_eq!(
        r[0],
        ReportEvent::FilterReport {
            kind: ReporterKind::Proc,
            name: "a".into(),
            message: "seen".into()
        }
    );
    assert_eq!(
        r[1],
        ReportEvent::FilterResponse {
            phase: Phase::MailFrom,
            response: "junk",
            param: None
        }
    );
}

#[test]
fn junk_at_commit_is_a_protocol_error() {
    let f = fixture();
    let mut s = session(vec![Member::external("a", 0, [Phase::Commit])]);
    let facts = FilterFacts::default();
    let Step::Ask { token, .. } = s.start(Phase::Commit, "", &facts, &f.lookups) else {
        panic!()
    };
    assert_eq!(
        s.answer(token, Response::Junk, &facts, &f.lookups),
        Err(ChainError::JunkAtCommit)
    );
    assert!(s.is_waiting());
}

#[test]
fn failure_policies() {
    let f = fixture();
    let mut s = session(vec![
        Member::external("a", 0, [Phase::Connect, Phase::RcptTo]),
        Member::external("b", 1, [Phase::RcptTo]),
    ]);
    let facts = FilterFacts::default();
    s.start(Phase::RcptTo, "", &facts, &f.lookups);
    // Open: skipped, the next member is asked.
    assert!(matches!(
        s.fail(FailurePolicy::Open, &facts, &f.lookups),
        Step::Ask { external: 1, .. }
    ));
    // Closed: 451 after a transaction may exist, 421 before.
    assert!(
        matches!(s.fail(FailurePolicy::Closed, &facts, &f.lookups), Step::Done(Verdict::Reject(r)) if r.code == 451)
    );
    s.start(Phase::Connect, "", &facts, &f.lookups);
    assert!(
        matches!(s.fail(FailurePolicy::Closed, &facts, &f.lookups), Step::Done(Verdict::Disconnect(r)) if r.code == 421)
    );
}

#[test]
fn data_lines_flow_through_every_stage_in_order() {
    let mut s = session(vec![
        Member::external("a", 5, [Phase::DataLine]),
        Member::external("b", 6, [Phase::RcptTo]),
        Member::external("c", 7, [Phase::DataLine]),
    ]);
    let mut pipe = DataPipe::begin(&mut s).expect("two stages");
    let stages: Vec<_> = pipe.stages().collect();
    assert_eq!(
        stages.iter().map(|s| (s.0, s.1)).collect::<Vec<_>>(),
        vec![(0, 5), (2, 7)]
    );
    let (ta, tc) = (stages[0].2, stages[1].2);
    assert_eq!(
        pipe.input(b"..dot|pipe".to_vec()),
        Route::To {
            member: 0,
            external: 5,
            token: ta,
            line: b"..dot|pipe".to_vec()
        }
    );
    assert_eq!(
        pipe.output(ta, b"..dot|pipe".to_vec()),
        Ok(Route::To {
            member: 2,
            external: 7,
            token: tc,
            line: b"..dot|pipe".to_vec()
        })
    );
    assert_eq!(
        pipe.output(tc, b"..dot|pipe".to_vec()),
        Ok(Route::Out(b"..dot|pipe".to_vec()))
    );
    assert_eq!(
        pipe.output(ta, b".".to_vec()),
        Ok(Route::To {
            member: 2,
            external: 7,
            token: tc,
            line: b".".to_vec()
        })
    );
    assert_eq!(pipe.output(ta, b"late".to_vec()), Err(PipeError::AfterEnd));
    assert!(!pipe.is_finished());
    assert_eq!(
        pipe.output(tc, b".".to_vec()),
        Ok(Route::Out(b".".to_vec()))
    );
    assert!(pipe.is_finished());
    assert_eq!(
        pipe.output(1, b"x".to_vec()),
        Err(PipeError::UnknownToken(1))
    );
    assert_eq!(unstuff(&stuff(b".x")), b".x");
    assert_eq!(stuff(b"x"), b"x");
}

#[test]
fn reply_texts_are_checked_as_opensmtpd_does() {
    assert_eq!(parse_reply("550 5.7.1 no").map(|r| r.code), Some(550));
    assert!(parse_reply("451").is_none(), "OpenSMTPD wants a text");
    assert_eq!(parse_reply("451 x").map(|r| r.code), Some(451));
    assert!(parse_reply("250 ok").is_none());
    assert!(parse_reply("55 x").is_none());
    assert!(parse_reply("5501 x").is_none());
    assert!(parse_reply("").is_none());
    assert!(parse_reply("45é").is_none());
}
