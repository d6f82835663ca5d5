//! Property: rule evaluation is deterministic and first-match. For generated rule lists and
//! contexts, the rule the ruleset picks is the first one, in order, whose conditions all hold,
//! where the conditions are evaluated here, one by one, from smtpd.conf(5)'s and `ruleset.c`'s
//! semantics (tables are asked through `StaticLookups`, everything else is this file's own).

use std::net::IpAddr;

use petrel_core::config::{
    Cond, Config, Destination, Lookup, MatchDecision, MatchRule, Matcher, Origin, ParseOptions,
    parse,
};
use petrel_core::rules::router::{INVALID_RECIPIENT, TEMPORARY_FAILURE};
use petrel_core::rules::{
    Entries, LocalNames, Lookups, MailAddr, RouteContext, Routed, Ruleset, Service, SessionFacts,
    Source, StaticLookups, Table,
};
use proptest::prelude::*;

const PRELUDE: &str = r#"
table nets { 192.0.2.0/24, "local" }
table domains { example.org, "*.example.org" }
table users { alice, "bob@example.org" }
table senders { "@spam.example", alice }
table tags { A }
table patterns { "^a", "example\.org$" }
action "a0" relay
action "a1" relay
action "a2" relay
action "a3" relay
"#;

fn base_config() -> Config {
    parse("prop.conf", PRELUDE, &ParseOptions::default()).unwrap()
}

fn lookups() -> StaticLookups {
    StaticLookups::from_config(
        &base_config(),
        &LocalNames::new("mx.example.org", ["192.0.2.25".parse().unwrap()]),
        |_| unreachable!(),
    )
    .unwrap()
}

fn cond<T>(negated: bool, test: T) -> Cond<T> {
    Cond { negated, test }
}

fn value(v: &str) -> Matcher {
    Matcher {
        regex: false,
        lookup: Lookup::Value(v.to_owned()),
    }
}

fn table(t: &str) -> Matcher {
    Matcher {
        regex: false,
        lookup: Lookup::Table(t.to_owned()),
    }
}

fn regex(m: Matcher) -> Matcher {
    Matcher { regex: true, ..m }
}

fn matcher(options: Vec<Matcher>) -> impl Strategy<Value = Matcher> {
    proptest::sample::select(options)
}

fn optional<T: std::fmt::Debug + Clone + 'static>(
    s: impl Strategy<Value = T> + 'static,
) -> impl Strategy<Value = Option<Cond<T>>> {
    prop::option::weighted(0.4, (any::<bool>(), s).prop_map(|(n, t)| cond(n, t)))
}

fn origin() -> impl Strategy<Value = Origin> {
    prop_oneof![
        Just(Origin::Any),
        Just(Origin::Local),
        Just(Origin::Socket),
        matcher(vec![
            table("nets"),
            value("198.51.100.7"),
            regex(value("^127\\.")),
            regex(value("^\\[2001:")),
        ])
        .prop_map(Origin::Src),
        prop::option::of(matcher(vec![
            table("domains"),
            value("host.dyn.example"),
            regex(value("dyn"))
        ]))
        .prop_map(Origin::Rdns),
    ]
}

fn destination() -> impl Strategy<Value = Destination> {
    prop_oneof![
        Just(Destination::Any),
        Just(Destination::Local),
        matcher(vec![
            table("domains"),
            value("other.example"),
            regex(table("patterns"))
        ])
        .prop_map(Destination::Domain),
    ]
}

fn rule() -> impl Strategy<Value = MatchRule> {
    let mail = || {
        matcher(vec![
            table("senders"),
            value("alice@example.org"),
            regex(value("^@$")),
            regex(table("patterns")),
        ])
    };
    (
        (any::<bool>(), origin()),
        (any::<bool>(), destination()),
        optional(matcher(vec![
            value("A"),
            table("tags"),
            regex(value("^b$")),
        ])),
        optional(matcher(vec![
            table("domains"),
            value("other.test"),
            regex(value("^mx")),
        ])),
        optional(prop::option::of(matcher(vec![
            value("alice"),
            table("users"),
            regex(value("@")),
        ]))),
        optional(Just(())),
        optional(mail()),
        optional(mail()),
        prop::option::of(0..4usize),
    )
        .prop_map(
            |(from, to, tag, helo, auth, tls, mail_from, rcpt_to, action)| {
                let decision = match action {
                    Some(i) => MatchDecision::Action(format!("a{i}")),
                    None => MatchDecision::Reject,
                };
                let mut r = MatchRule::new(decision);
                r.from = cond(from.0, from.1);
                r.to = cond(to.0, to.1);
                r.tag = tag;
                r.helo = helo;
                r.auth = auth;
                r.tls = tls;
                r.mail_from = mail_from;
                r.rcpt_to = rcpt_to;
                r
            },
        )
}

#[derive(Clone, Debug)]
struct Context {
    session: SessionFacts,
    sender: MailAddr,
    rcpt: MailAddr,
    internal: bool,
}

fn context() -> impl Strategy<Value = Context> {
    let source = proptest::sample::select(vec![
        Source::Socket,
        Source::Ip("192.0.2.1".parse().unwrap()),
        Source::Ip("198.51.100.7".parse().unwrap()),
        Source::Ip("127.0.0.1".parse().unwrap()),
        Source::Ip("2001:db8::1".parse().unwrap()),
    ]);
    let some = |v: Vec<&'static str>| {
        prop::option::of(proptest::sample::select(v).prop_map(str::to_owned))
    };
    (
        source,
        some(vec!["A", "b"]),
        some(vec!["mx.example.org", "host.dyn.example"]),
        some(vec!["mx.example.org", "other.test"]),
        some(vec!["alice", "bob@example.org", "eve"]),
        any::<bool>(),
        proptest::sample::select(vec!["", "alice@example.org", "x@spam.example"]),
        proptest::sample::select(vec![
            "alice@example.org",
            "bob@sub.example.org",
            "root@mx.example.org",
            "x@other.example",
        ]),
        any::<bool>(),
    )
        .prop_map(
            |(source, tag, rdns, helo, auth, tls, sender, rcpt, internal)| Context {
                session: SessionFacts {
                    tag,
                    source,
                    rdns,
                    helo,
                    auth,
                    tls,
                },
                sender: MailAddr::parse(sender),
                rcpt: MailAddr::parse(rcpt),
                internal,
            },
        )
}

/// Asks whether `key` is in the matcher's value or table, as `service` compares.
fn lookup(m: &Matcher, service: Service, key: &str, l: &StaticLookups) -> bool {
    let service = if m.regex { Service::Regex } else { service };
    match &m.lookup {
        Lookup::Table(t) => l.check(t, service, key).unwrap(),
        Lookup::Value(v) => Table::new("v", Entries::List(vec![v.clone()]))
            .check(service, key, '+')
            .unwrap(),
    }
}

fn negate<T>(c: &Cond<T>, holds: bool) -> bool {
    holds != c.negated
}

/// The oracle: does `r` match `c`? Written from the specification, condition by condition.
fn holds(r: &MatchRule, c: &Context, l: &StaticLookups) -> bool {
    let s = &c.session;
    let tag = r.tag.as_ref().is_none_or(|t| {
        negate(
            t,
            s.tag
                .as_ref()
                .is_some_and(|v| lookup(&t.test, Service::String, v, l)),
        )
    });
    let from = {
        let key = match (c.internal, s.source) {
            (true, _) | (false, Source::Socket) => "local".to_owned(),
            (false, Source::Ip(IpAddr::V4(ip))) => ip.to_string(),
            (false, Source::Ip(IpAddr::V6(ip))) => format!("[{ip}]"),
        };
        let table = |name: &str| lookup(&table(name), Service::Netaddr, &key, l);
        match (&r.from.test, c.internal) {
            // No table behind these: internal envelopes never match them, negated or not.
            (Origin::Socket | Origin::Rdns(None), true) => false,
            (Origin::Rdns(Some(m)), true) => {
                negate(&r.from, lookup(m, Service::Netaddr, "local", l))
            }
            (Origin::Any, _) => negate(&r.from, table("<anyhost>")),
            (Origin::Local, _) => negate(&r.from, table("<localhost>")),
            (Origin::Src(m), _) => negate(&r.from, lookup(m, Service::Netaddr, &key, l)),
            (Origin::Socket, false) => negate(&r.from, s.source == Source::Socket),
            (Origin::Rdns(None), false) => negate(&r.from, s.rdns.is_some()),
            (Origin::Rdns(Some(m)), false) => match &s.rdns {
                None => false,
                Some(name) => negate(&r.from, lookup(m, Service::Domain, name, l)),
            },
        }
    };
    let to = {
        let domain = &c.rcpt.domain;
        let holds = match &r.to.test {
            Destination::Any => lookup(&table("<anydestination>"), Service::Domain, domain, l),
            Destination::Local => lookup(&table("<localnames>"), Service::Domain, domain, l),
            Destination::Domain(m) => lookup(m, Service::Domain, domain, l),
        };
        negate(&r.to, holds)
    };
    let helo = r.helo.as_ref().is_none_or(|h| {
        negate(
            h,
            s.helo
                .as_ref()
                .is_some_and(|v| lookup(&h.test, Service::Domain, v, l)),
        )
    });
    let auth = r.auth.as_ref().is_none_or(|a| {
        let holds = match (&s.auth, &a.test) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(user), Some(m)) => {
                let service = if user.contains('@') {
                    Service::Mailaddr
                } else {
                    Service::String
                };
                lookup(m, service, user, l)
            }
        };
        negate(a, holds)
    });
    let tls = r.tls.as_ref().is_none_or(|t| negate(t, s.tls));
    let mail_from = r.mail_from.as_ref().is_none_or(|m| {
        negate(
            m,
            lookup(&m.test, Service::Mailaddr, &c.sender.to_string(), l),
        )
    });
    let rcpt_to = r.rcpt_to.as_ref().is_none_or(|m| {
        negate(
            m,
            lookup(&m.test, Service::Mailaddr, &c.rcpt.to_string(), l),
        )
    });
    tag && from && to && helo && auth && tls && mail_from && rcpt_to
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_first_rule_that_holds_decides(
        rules in prop::collection::vec(rule(), 0..8),
        ctx in context(),
    ) {
        let mut config = base_config();
        config.rules = rules.clone();
        let ruleset = Ruleset::new(&config).unwrap();
        let l = lookups();
        let route_ctx = RouteContext {
            session: &ctx.session,
            sender: &ctx.sender,
            rcpt: &ctx.rcpt,
            internal: ctx.internal,
        };
        let expected = rules.iter().position(|r| holds(r, &ctx, &l));
        let got = ruleset.matching_rule(&route_ctx, &l).unwrap();
        prop_assert_eq!(got, expected);
        // Deterministic: the same answer again, and `route` agrees with it.
        prop_assert_eq!(ruleset.matching_rule(&route_ctx, &l).unwrap(), got);
        let routed = ruleset.route(&route_ctx, &l);
        let want = match expected.map(|i| &rules[i].decision) {
            Some(MatchDecision::Action(name)) => Routed::Action(name.clone()),
            Some(MatchDecision::Reject) | None => Routed::Reject(INVALID_RECIPIENT),
        };
        prop_assert_eq!(routed, want);
    }

    #[test]
    fn a_failing_table_tempfails_unless_an_earlier_rule_decides(
        rules in prop::collection::vec(rule(), 0..5),
        ctx in context(),
    ) {
        // Append a rule whose `for` table does not exist: it can only be reached when no
        // earlier rule matches, and then the recipient fails temporarily.
        let mut config = base_config();
        config.rules = rules.clone();
        let mut failing = MatchRule::new(MatchDecision::Action("a0".into()));
        failing.from = cond(false, Origin::Any);
        failing.to = cond(true, Destination::Domain(table("missing")));
        config.rules.push(failing);
        let ruleset = Ruleset::new(&config).unwrap();
        let l = lookups();
        let route_ctx = RouteContext {
            session: &ctx.session,
            sender: &ctx.sender,
            rcpt: &ctx.rcpt,
            internal: ctx.internal,
        };
        let routed = ruleset.route(&route_ctx, &l);
        match rules.iter().position(|r| holds(r, &ctx, &l)) {
            Some(_) => prop_assert_ne!(routed, Routed::TempFail(TEMPORARY_FAILURE)),
            None => prop_assert_eq!(routed, Routed::TempFail(TEMPORARY_FAILURE)),
        }
    }
}

#[test]
fn the_oracle_sees_what_the_spec_says() {
    // A sanity check of the oracle itself on the spec's walk-through shape.
    let l = lookups();
    let mut r = MatchRule::new(MatchDecision::Action("a0".into()));
    r.tag = Some(cond(false, value("A")));
    r.from = cond(false, Origin::Any);
    r.auth = Some(cond(false, None));
    r.to = cond(false, Destination::Any);
    let mut session = SessionFacts::ip("203.0.113.1".parse::<IpAddr>().unwrap());
    let ctx = |session: &SessionFacts| Context {
        session: session.clone(),
        sender: MailAddr::parse("alice@example.org"),
        rcpt: MailAddr::parse("bob@other.example"),
        internal: false,
    };
    assert!(!holds(&r, &ctx(&session), &l));
    session.tag = Some("A".into());
    session.auth = Some("alice".into());
    assert!(holds(&r, &ctx(&session), &l));
}
