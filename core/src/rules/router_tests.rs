use super::*;
use crate::config::{self, ParseOptions};
use crate::rules::lookups::{LocalNames, StaticLookups};

const PRELUDE: &str = r#"
table nets { 192.0.2.0/24, "2001:db8::/32" }
table localish { "local" }
table names { "*.example.org", mail.example.net }
table users { alice, "bob@example.org" }
table senders { "@example.net", "carol@*.example.com" }
table rx { "^spam" }
table tags { SUBMIT, RELAY }
table remote proc:/usr/libexec/table-remote
action "a" relay
action "b" relay
"#;

fn lookups() -> StaticLookups {
    StaticLookups::from_config(
        &config::parse("t.conf", PRELUDE, &ParseOptions::default()).unwrap(),
        &LocalNames::new("mx.example.org", ["192.0.2.25".parse().unwrap()]),
        |_| unreachable!("no file tables"),
    )
    .unwrap()
}

fn ruleset(rules: &str) -> Ruleset {
    let text = format!("{PRELUDE}{rules}\n");
    let config = config::parse("t.conf", &text, &ParseOptions::default())
        .unwrap_or_else(|e| panic!("{rules}: {e}"));
    Ruleset::new(&config).unwrap()
}

/// An Internet client, not authenticated, no TLS, no rdns, no HELO, no tag.
fn stranger() -> SessionFacts {
    SessionFacts::ip("203.0.113.5".parse().unwrap())
}

struct Case {
    session: SessionFacts,
    sender: MailAddr,
    rcpt: MailAddr,
    internal: bool,
}

impl Case {
    fn new(session: SessionFacts) -> Case {
        Case {
            session,
            sender: MailAddr::parse("sender@example.com"),
            rcpt: MailAddr::parse("rcpt@example.org"),
            internal: false,
        }
    }

    fn rcpt(mut self, rcpt: &str) -> Case {
        self.rcpt = MailAddr::parse(rcpt);
        self
    }

    fn sender(mut self, sender: &str) -> Case {
        self.sender = MailAddr::parse(sender);
        self
    }

    fn internal(mut self) -> Case {
        self.internal = true;
        self
    }

    fn route(&self, rules: &Ruleset) -> Routed {
        let ctx = RouteContext {
            session: &self.session,
            sender: &self.sender,
            rcpt: &self.rcpt,
            internal: self.internal,
        };
        rules.route(&ctx, &lookups())
    }
}

/// Whether a single rule `match CONDS action a` matches the case.
fn holds(conds: &str, case: &Case) -> bool {
    match case.route(&ruleset(&format!("match {conds} action a"))) {
        Routed::Action(a) if a == "a" => true,
        Routed::Reject(r) if r == INVALID_RECIPIENT => false,
        other => panic!("{conds}: {other:?}"),
    }
}

/// Checks `conds` and `!conds` (negation put where the grammar wants it) give opposite
/// answers except where OpenSMTPD says neither matches.
fn both(conds: &str, negated: &str, case: &Case, expected: bool) {
    assert_eq!(holds(conds, case), expected, "{conds}");
    assert_eq!(holds(negated, case), !expected, "{negated}");
}

fn with(f: impl FnOnce(&mut SessionFacts)) -> SessionFacts {
    let mut s = stranger();
    f(&mut s);
    s
}

#[test]
fn from_any_local_socket_src() {
    let out = Case::new(stranger());
    both("from any for any", "!from any for any", &out, true);
    both("from local for any", "!from local for any", &out, false);
    both("from socket for any", "!from socket for any", &out, false);
    both(
        "from src <nets> for any",
        "!from src <nets> for any",
        &out,
        false,
    );
    let inside = Case::new(SessionFacts::ip("192.0.2.77".parse().unwrap()));
    both(
        "from src <nets> for any",
        "!from src <nets> for any",
        &inside,
        true,
    );
    both(
        "from src 192.0.2.77 for any",
        "!from src 192.0.2.77 for any",
        &inside,
        true,
    );
    both(
        "from src regex \"^192\\.0\\.2\\.\" for any",
        "!from src regex \"^192\\.0\\.2\\.\" for any",
        &inside,
        true,
    );
    let v6 = Case::new(SessionFacts::ip("2001:db8::9".parse().unwrap()));
    assert!(holds("from src <nets> for any", &v6));
    // Regexes see IPv6 clients in brackets, as OpenSMTPD writes them.
    assert!(holds("from src regex \"^\\[2001:db8:\" for any", &v6));
    assert_eq!(
        address_key("::ffff:192.0.2.7".parse().unwrap()),
        "192.0.2.7"
    );
    let loopback = Case::new(SessionFacts::ip("127.0.0.1".parse().unwrap()));
    both("from local for any", "!from local for any", &loopback, true);
    both(
        "from socket for any",
        "!from socket for any",
        &loopback,
        false,
    );
    let own = Case::new(SessionFacts::ip("192.0.2.25".parse().unwrap()));
    assert!(
        holds("from local for any", &own),
        "the server's own address is local"
    );
    let socket = Case::new(SessionFacts::socket());
    both("from socket for any", "!from socket for any", &socket, true);
    both("from local for any", "!from local for any", &socket, true);
    both("from any for any", "!from any for any", &socket, true);
    both(
        "from src <localish> for any",
        "!from src <localish> for any",
        &socket,
        true,
    );
}

#[test]
fn from_rdns() {
    let none = Case::new(stranger());
    let named = Case::new(with(|s| s.rdns = Some("mta.mail.example.org".into())));
    both("from rdns for any", "!from rdns for any", &none, false);
    both("from rdns for any", "!from rdns for any", &named, true);
    both(
        "from rdns <names> for any",
        "!from rdns <names> for any",
        &named,
        false,
    );
    let listed = Case::new(with(|s| s.rdns = Some("mx.example.org".into())));
    both(
        "from rdns <names> for any",
        "!from rdns <names> for any",
        &listed,
        true,
    );
    both(
        "from rdns regex \"\\.example\\.org$\" for any",
        "!from rdns regex \"\\.example\\.org$\" for any",
        &named,
        true,
    );
    // Without a name, a table test fails even negated (ruleset.c).
    assert!(!holds("from rdns <names> for any", &none));
    assert!(!holds("!from rdns <names> for any", &none));
}

#[test]
fn for_any_local_domain() {
    let c = Case::new(stranger()).rcpt("x@mx.example.org");
    both("from any for any", "from any !for any", &c, true);
    both("from any for local", "from any !for local", &c, true);
    both(
        "from any for domain <names>",
        "from any !for domain <names>",
        &c,
        true,
    );
    let other = Case::new(stranger()).rcpt("x@example.com");
    both("from any for local", "from any !for local", &other, false);
    both(
        "from any for domain <names>",
        "from any !for domain <names>",
        &other,
        false,
    );
    both(
        "from any for domain example.com",
        "from any !for domain example.com",
        &other,
        true,
    );
    both(
        "from any for domain regex \"\\.com$\"",
        "from any !for domain regex \"\\.com$\"",
        &other,
        true,
    );
    assert!(holds(
        "from any for local",
        &Case::new(stranger()).rcpt("postmaster@localhost")
    ));
    assert!(holds(
        "from any for local",
        &Case::new(stranger()).rcpt("x@[192.0.2.25]")
    ));
    // The defaults are `from local for local`.
    let local = Case::new(SessionFacts::socket()).rcpt("root@localhost");
    assert!(holds("", &local));
    assert!(!holds("", &Case::new(stranger()).rcpt("root@localhost")));
    assert!(!holds(
        "",
        &Case::new(SessionFacts::socket()).rcpt("x@example.com")
    ));
}

#[test]
fn tag() {
    let tagged = Case::new(with(|s| s.tag = Some("submit".into())));
    let untagged = Case::new(stranger());
    both(
        "tag SUBMIT from any for any",
        "!tag SUBMIT from any for any",
        &tagged,
        true,
    );
    both(
        "tag <tags> from any for any",
        "!tag <tags> from any for any",
        &tagged,
        true,
    );
    both(
        "tag OTHER from any for any",
        "!tag OTHER from any for any",
        &tagged,
        false,
    );
    both(
        "tag SUBMIT from any for any",
        "!tag SUBMIT from any for any",
        &untagged,
        false,
    );
    both(
        "tag regex \"^sub\" from any for any",
        "!tag regex \"^sub\" from any for any",
        &tagged,
        true,
    );
    assert!(holds("tagged SUBMIT from any for any", &tagged));
}

#[test]
fn helo() {
    let c = Case::new(with(|s| s.helo = Some("relay.example.org".into())));
    both(
        "from any for any helo <names>",
        "from any for any !helo <names>",
        &c,
        true,
    );
    both(
        "from any for any helo other.test",
        "from any for any !helo other.test",
        &c,
        false,
    );
    both(
        "from any for any helo regex \"^relay\"",
        "from any for any !helo regex \"^relay\"",
        &c,
        true,
    );
    let none = Case::new(stranger());
    both(
        "from any for any helo <names>",
        "from any for any !helo <names>",
        &none,
        false,
    );
}

#[test]
fn auth() {
    let anon = Case::new(stranger());
    let alice = Case::new(with(|s| s.auth = Some("alice".into())));
    let bob = Case::new(with(|s| s.auth = Some("bob+x@example.org".into())));
    let eve = Case::new(with(|s| s.auth = Some("eve".into())));
    both(
        "from any for any auth",
        "from any for any !auth",
        &anon,
        false,
    );
    both(
        "from any for any auth",
        "from any for any !auth",
        &alice,
        true,
    );
    both(
        "from any for any auth <users>",
        "from any for any !auth <users>",
        &alice,
        true,
    );
    both(
        "from any for any auth <users>",
        "from any for any !auth <users>",
        &bob,
        true,
    );
    both(
        "from any for any auth <users>",
        "from any for any !auth <users>",
        &eve,
        false,
    );
    both(
        "from any for any auth <users>",
        "from any for any !auth <users>",
        &anon,
        false,
    );
    both(
        "from any for any auth regex \"^e\"",
        "from any for any !auth regex \"^e\"",
        &eve,
        true,
    );
    // `from auth` is `from any` plus `auth`, and `!from auth` negates only the auth part.
    both("from auth for any", "!from auth for any", &alice, true);
    both("from auth for any", "!from auth for any", &anon, false);
    both(
        "from auth alice for any",
        "!from auth alice for any",
        &alice,
        true,
    );
}

#[test]
fn tls() {
    let plain = Case::new(stranger());
    let secure = Case::new(with(|s| s.tls = true));
    both(
        "from any for any tls",
        "from any for any !tls",
        &plain,
        false,
    );
    both(
        "from any for any tls",
        "from any for any !tls",
        &secure,
        true,
    );
}

#[test]
fn mail_from_and_rcpt_to() {
    let c = Case::new(stranger())
        .sender("dave@example.net")
        .rcpt("carol+tag@mx.example.com");
    both(
        "from any for any mail-from <senders>",
        "from any for any !mail-from <senders>",
        &c,
        true,
    );
    both(
        "from mail-from <senders> for any",
        "!from mail-from <senders> for any",
        &c,
        true,
    );
    both(
        "from any for any rcpt-to <senders>",
        "from any for any !rcpt-to <senders>",
        &c,
        true,
    );
    both(
        "from any for rcpt-to <senders>",
        "from any !for rcpt-to <senders>",
        &c,
        true,
    );
    both(
        "from any for any rcpt-to regex \"^carol\\+\"",
        "from any for any !rcpt-to regex \"^carol\\+\"",
        &c,
        true,
    );
    let other = Case::new(stranger()).sender("dave@example.org");
    both(
        "from any for any mail-from <senders>",
        "from any for any !mail-from <senders>",
        &other,
        false,
    );
    // The null sender is "@": only a regex or a catch-all sees it.
    let bounce = Case::new(stranger()).sender("");
    both(
        "from any for any mail-from <senders>",
        "from any for any !mail-from <senders>",
        &bounce,
        false,
    );
    both(
        "from any for any mail-from regex \"^@$\"",
        "from any for any !mail-from regex \"^@$\"",
        &bounce,
        true,
    );
}

#[test]
fn internal_envelopes_come_from_local() {
    let c = Case::new(stranger()).internal();
    assert!(holds("from any for any", &c));
    assert!(holds("from local for any", &c));
    assert!(!holds("!from local for any", &c));
    assert!(!holds("from src <nets> for any", &c));
    assert!(holds("!from src <nets> for any", &c));
    assert!(
        holds("from src <localish> for any", &c),
        "`local` in the table"
    );
    assert!(holds("from src regex \"^loc\" for any", &c));
    // No table: never, not even negated.
    for conds in [
        "from socket for any",
        "!from socket for any",
        "from rdns for any",
        "!from rdns for any",
    ] {
        assert!(!holds(conds, &c), "{conds}");
    }
    // The session's other facts still count.
    let submit = Case::new(with(|s| s.auth = Some("alice".into()))).internal();
    assert!(holds("from local for any auth", &submit));
}

#[test]
fn first_match_wins_in_order() {
    let rules = ruleset(
        "match from any for domain example.org reject\n\
         match from any for any action a\n\
         match from any for any action b",
    );
    let c = Case::new(stranger()).rcpt("x@example.org");
    assert_eq!(c.route(&rules), Routed::Reject(INVALID_RECIPIENT));
    let c = Case::new(stranger()).rcpt("x@example.com");
    assert_eq!(c.route(&rules), Routed::Action("a".into()));
    let ctx_rcpt = MailAddr::parse("x@example.com");
    let session = stranger();
    let ctx = RouteContext {
        session: &session,
        sender: &ctx_rcpt,
        rcpt: &ctx_rcpt,
        internal: false,
    };
    assert_eq!(rules.matching_rule(&ctx, &lookups()), Ok(Some(1)));
}

#[test]
fn no_match_is_refused_never_relayed() {
    let rules = ruleset("match from local for any action a");
    let c = Case::new(stranger()).rcpt("victim@elsewhere.example");
    assert_eq!(c.route(&rules), Routed::Reject(INVALID_RECIPIENT));
    assert_eq!(INVALID_RECIPIENT.to_string(), "550 5.7.1 Invalid recipient");
    assert_eq!(
        ruleset("").route_for_test(),
        Routed::Reject(INVALID_RECIPIENT)
    );
}

impl Ruleset {
    fn route_for_test(&self) -> Routed {
        Case::new(stranger()).route(self)
    }
}

#[test]
fn lookup_errors_are_temporary_even_negated() {
    for conds in [
        "from any for domain <remote>",
        "from any !for domain <remote>",
        "from any for any rcpt-to <remote>",
        "!from src <remote> for any",
    ] {
        let rules = ruleset(&format!("match {conds} action a"));
        assert_eq!(
            Case::new(stranger()).route(&rules),
            Routed::TempFail(TEMPORARY_FAILURE),
            "{conds}"
        );
    }
    assert_eq!(TEMPORARY_FAILURE.to_string(), "451 4.3.0 Temporary failure");
    // A rule excluded by an earlier condition never consults the failing table, and a match
    // before the failing rule decides.
    let rules = ruleset(
        "match from any for domain example.com action b\n\
         match tag NOPE from any for domain <remote> action a\n\
         match from any for domain <remote> action a",
    );
    let c = Case::new(stranger()).rcpt("x@example.com");
    assert_eq!(c.route(&rules), Routed::Action("b".into()));
    let c = Case::new(stranger()).rcpt("x@example.org");
    assert_eq!(c.route(&rules), Routed::TempFail(TEMPORARY_FAILURE));
}

#[test]
fn check_order_stops_at_the_first_failing_condition() {
    // `tag` comes before `for`, so an untagged session never reaches the failing table.
    let rules = ruleset("match tag SUBMIT from any for domain <remote> action a");
    assert_eq!(
        Case::new(stranger()).route(&rules),
        Routed::Reject(INVALID_RECIPIENT)
    );
    // `rcpt-to` comes last: a failing `helo` excludes the rule first.
    let rules = ruleset("match from any for any helo nope.example rcpt-to <remote> action a");
    assert_eq!(
        Case::new(stranger()).route(&rules),
        Routed::Reject(INVALID_RECIPIENT)
    );
}

#[test]
fn compile_errors() {
    let mut config = config::parse("t.conf", PRELUDE, &ParseOptions::default()).unwrap();
    config
        .rules
        .push(MatchRule::new(MatchDecision::Action("missing".into())));
    assert_eq!(
        Ruleset::new(&config).unwrap_err(),
        RulesetError::UnknownAction {
            rule: 1,
            name: "missing".into()
        }
    );
    let mut rule = MatchRule::new(MatchDecision::Reject);
    rule.helo = Some(crate::config::Cond {
        negated: false,
        test: Matcher {
            regex: true,
            lookup: Lookup::Value("(".into()),
        },
    });
    config.rules = vec![rule];
    assert!(matches!(
        Ruleset::new(&config),
        Err(RulesetError::Regex { rule: 1, .. })
    ));
    config.rules.clear();
    config.srs.key = Some(String::new());
    assert!(matches!(Ruleset::new(&config), Err(RulesetError::Srs(_))));
}

#[test]
fn session_facts_from_a_queued_origin() {
    let origin = envelope::Origin {
        src: Some("192.0.2.1".parse().unwrap()),
        tls: true,
        tag: Some("T".into()),
        ..envelope::Origin::default()
    };
    let facts = SessionFacts::from_origin(&origin);
    assert_eq!(facts.source, Source::Ip("192.0.2.1".parse().unwrap()));
    assert!(facts.tls);
    assert_eq!(
        SessionFacts::from_origin(&envelope::Origin::default()).source,
        Source::Socket
    );
}

#[test]
fn rulesets_and_lookups_can_be_shared_between_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<Ruleset>();
    shared::<StaticLookups>();
    shared::<crate::rules::ProcTableClient>();
}
