//! Where recipients go, end to end: real configurations from `corpora/configs/` parsed with
//! `config::parse`, their `file:` tables written inline here, and lists of recipients resolved
//! for the sessions that send them — Internet clients, authenticated submission, the local
//! socket, trusted networks, tagged listeners, bounces.

use std::fs;
use std::net::IpAddr;
use std::path::Path;

use petrel_core::Time;
use petrel_core::config::{ParseOptions, parse};
use petrel_core::rules::{
    Delivery, ForwardFile, LocalNames, MailAddr, Recipient, Refusal, Ruleset, RunAs, SessionFacts,
    StaticLookups, Target, UserInfo,
};
use petrel_core::srs::{Srs, SrsConfig};

const NOW: Time = Time::from_secs(1_700_000_000);

struct Site {
    rules: Ruleset,
    lookups: StaticLookups,
}

/// Loads `corpora/configs/NAME` with `files` as the contents of its file tables, on a server
/// called mx.example.org at 192.0.2.25 with users alice, bob, carol, root and dev.
fn site(name: &str, files: &[(&str, &str)]) -> Site {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../corpora/configs")
        .join(name);
    let text = fs::read_to_string(&path).unwrap();
    let config = parse(name, &text, &ParseOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let mut lookups = StaticLookups::from_config(
        &config,
        &LocalNames::new("mx.example.org", ["192.0.2.25".parse().unwrap()]),
        |path| {
            files
                .iter()
                .find(|(p, _)| *p == path)
                .map(|(_, t)| (*t).to_owned())
                .ok_or_else(|| format!("no test contents for {path}"))
        },
    )
    .unwrap();
    for (user, uid) in [
        ("alice", 1000),
        ("bob", 1001),
        ("carol", 1002),
        ("root", 0),
        ("dev", 1500),
    ] {
        lookups.insert_user(UserInfo::account(user, uid, uid, format!("/home/{user}")));
    }
    Site {
        rules: Ruleset::new(&config).unwrap(),
        lookups,
    }
}

impl Site {
    fn resolve(
        &self,
        session: &SessionFacts,
        sender: &str,
        rcpt: &str,
    ) -> Result<Vec<Delivery>, Refusal> {
        let sender = MailAddr::parse(sender);
        let rcpt = MailAddr::parse(rcpt);
        self.rules.resolve(
            &Recipient {
                session,
                sender: &sender,
                rcpt: &rcpt,
            },
            &self.lookups,
            NOW,
        )
    }

    /// Checks each `(recipient, where it goes)` for mail from `sender` in `session`.
    fn expect(&self, session: &SessionFacts, sender: &str, cases: &[(&str, &str)]) {
        for (rcpt, expected) in cases {
            assert_eq!(
                summary(&self.resolve(session, sender, rcpt)),
                *expected,
                "{rcpt} from {sender} in {session:?}"
            );
        }
    }
}

/// `action relay dest`, `action mailbox user for dest`, … joined by `; `, or the refusal.
fn summary(result: &Result<Vec<Delivery>, Refusal>) -> String {
    match result {
        Err(reply) => reply.to_string(),
        Ok(deliveries) => deliveries
            .iter()
            .map(|d| match &d.target {
                Target::Relay => format!("{} relay {}", d.action, d.dest),
                Target::Mailbox {
                    user, subaddress, ..
                } => format!(
                    "{} mailbox {}{} for {}",
                    d.action,
                    user.name,
                    subaddress
                        .as_ref()
                        .map(|s| format!("+{s}"))
                        .unwrap_or_default(),
                    d.dest
                ),
                Target::File { path, .. } => format!("{} file {path} for {}", d.action, d.dest),
                Target::Command { command, .. } => {
                    format!("{} command {command} for {}", d.action, d.dest)
                }
            })
            .collect::<Vec<_>>()
            .join("; "),
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// An unauthenticated client on the Internet, with a reverse DNS name.
fn internet() -> SessionFacts {
    let mut s = SessionFacts::ip(ip("203.0.113.9"));
    s.rdns = Some("mail.sender.example".into());
    s.helo = Some("mail.sender.example".into());
    s
}

const SPEC_FILES: &[(&str, &str)] = &[
    (
        "/etc/mail/aliases",
        "root: alice\npostmaster: root\nabuse: root\n",
    ),
    ("/etc/mail/vdomains", "example.net\n*.example.net\n"),
    (
        "/etc/mail/virtuals",
        "alice@example.net alice\nfwd@example.net carol@elsewhere.example\n\
         @example.net postmaster@mx.example.org\n",
    ),
    (
        "/etc/mail/creds",
        "alice $2b$10$hIJ4QfMcp.90nJwKqGbKM.MybArjHOTpEtoTV.DgLYAiThuoYmTSe\n",
    ),
    (
        "/etc/mail/senders",
        "alice alice@example.org,@example.net\n",
    ),
    ("/etc/mail/relaycreds", "isp alice:s3cret\n"),
];

#[test]
fn spec_walk_through_submission_is_relayed_the_internet_is_refused() {
    let s = site("spec-sample.conf", SPEC_FILES);
    let mut submission = SessionFacts::ip(ip("203.0.113.77"));
    submission.tag = Some("SUBMIT".into());
    submission.auth = Some("alice".into());
    submission.tls = true;
    s.expect(
        &submission,
        "alice@example.org",
        &[
            ("bob@other.example", "outbound relay bob@other.example"),
            (
                "root@mx.example.org",
                "local mailbox alice for root@mx.example.org",
            ),
        ],
    );
    s.expect(
        &internet(),
        "mallory@sender.example",
        &[(
            "bob@other.example",
            "550 5.7.1 Invalid recipient: <bob@other.example>",
        )],
    );
}

#[test]
fn spec_sample_inbound_mail() {
    let s = site("spec-sample.conf", SPEC_FILES);
    s.expect(
        &internet(),
        "someone@sender.example",
        &[
            (
                "alice@mx.example.org",
                "local mailbox alice for alice@mx.example.org",
            ),
            (
                "alice+lists@localhost",
                "local mailbox alice+lists for alice+lists@localhost",
            ),
            (
                "postmaster@mx.example.org",
                "local mailbox alice for postmaster@mx.example.org",
            ),
            (
                "nobody@mx.example.org",
                "550 5.1.1 Invalid recipient: <nobody@mx.example.org>",
            ),
            (
                "x@www.spam.example",
                "550 5.7.1 Invalid recipient: <x@www.spam.example>",
            ),
            (
                "alice@example.net",
                "virtual mailbox alice for alice@example.net",
            ),
            // *.example.net is a virtual domain, but @example.net is not its catch-all.
            (
                "bob@lists.example.net",
                "524 5.2.4 Mailing list expansion problem: <bob@lists.example.net>",
            ),
            (
                "whoever@example.net",
                "local mailbox alice for postmaster@mx.example.org",
            ),
            // A forward to another domain leaves as local mail through `from local for any`.
            ("fwd@example.net", "outbound relay carol@elsewhere.example"),
            (
                "bob@example.com",
                "550 5.7.1 Invalid recipient: <bob@example.com>",
            ),
        ],
    );
}

#[test]
fn spec_sample_local_and_trusted_senders() {
    let s = site("spec-sample.conf", SPEC_FILES);
    let cases = &[
        ("root@localhost", "local mailbox alice for root@localhost"),
        ("bob@other.example", "outbound relay bob@other.example"),
    ];
    s.expect(&SessionFacts::socket(), "alice@mx.example.org", cases);
    s.expect(
        &SessionFacts::ip(ip("127.0.0.1")),
        "alice@mx.example.org",
        cases,
    );
    s.expect(&SessionFacts::ip(ip("::1")), "alice@mx.example.org", cases);
    s.expect(
        &SessionFacts::ip(ip("198.51.100.20")),
        "app@trusted.example",
        &[("bob@other.example", "smarthost relay bob@other.example")],
    );
    s.expect(
        &SessionFacts::ip(ip("2001:db8:1::5")),
        "app@trusted.example",
        &[("bob@other.example", "smarthost relay bob@other.example")],
    );
}

#[test]
fn spec_sample_srs_bounces_and_forwards() {
    let s = site("spec-sample.conf", SPEC_FILES);
    let srs = Srs::new(SrsConfig::new("change-me-to-a-long-random-string")).unwrap();
    // Forwarding fwd@example.net to carol@elsewhere.example rewrites the sender into
    // example.net, the forwarding address's domain.
    let sender = MailAddr::parse("dave@sender.example");
    let rewritten = s
        .rules
        .relay_sender(
            "outbound",
            &sender,
            &MailAddr::parse("fwd@example.net"),
            &MailAddr::parse("carol@elsewhere.example"),
            NOW,
        )
        .unwrap();
    assert_eq!(
        rewritten,
        srs.encode("dave@sender.example", "example.net", NOW)
            .unwrap()
    );
    // Mail that was not forwarded keeps its sender; the smarthost does not do SRS.
    let direct = MailAddr::parse("bob@other.example");
    assert_eq!(
        s.rules
            .relay_sender("outbound", &sender, &direct, &direct, NOW),
        None
    );
    assert_eq!(
        s.rules.relay_sender(
            "smarthost",
            &sender,
            &MailAddr::parse("fwd@example.net"),
            &direct,
            NOW
        ),
        None
    );
    // The bounce to the rewritten sender comes back from the Internet and goes to dave.
    s.expect(
        &internet(),
        "",
        &[(rewritten.as_str(), "outbound relay dave@sender.example")],
    );
    let forged = format!("SRS0=AAAA{}", &rewritten[9..]);
    assert_ne!(forged, rewritten);
    s.expect(
        &internet(),
        "",
        &[(
            forged.as_str(),
            &format!("550 5.7.1 Invalid SRS hash: <{forged}>") as &str,
        )],
    );
    let late = Time::from_secs(1_700_000_000 + 9 * 86_400);
    let result = s.rules.resolve(
        &Recipient {
            session: &internet(),
            sender: &MailAddr::null(),
            rcpt: &MailAddr::parse(&rewritten),
        },
        &s.lookups,
        late,
    );
    assert_eq!(
        summary(&result),
        format!("550 5.7.1 SRS address has expired: <{rewritten}>")
    );
}

#[test]
fn default_configurations_are_not_open_relays() {
    for name in ["debian-default.conf", "openbsd-default.conf"] {
        let s = site(
            name,
            &[
                ("/etc/aliases", "root: alice\n"),
                ("/etc/mail/aliases", "root: alice\n"),
            ],
        );
        let action = if name.starts_with("debian") {
            "local"
        } else {
            "local_mail"
        };
        let relay = if name.starts_with("debian") {
            "relay"
        } else {
            "outbound"
        };
        s.expect(
            &internet(),
            "spammer@sender.example",
            &[
                (
                    "victim@elsewhere.example",
                    "550 5.7.1 Invalid recipient: <victim@elsewhere.example>",
                ),
                (
                    "root@mx.example.org",
                    "550 5.7.1 Invalid recipient: <root@mx.example.org>",
                ),
            ],
        );
        s.expect(
            &SessionFacts::socket(),
            "root@mx.example.org",
            &[
                (
                    "root@localhost",
                    &format!("{action} mailbox alice for root@localhost") as &str,
                ),
                (
                    "someone@elsewhere.example",
                    &format!("{relay} relay someone@elsewhere.example"),
                ),
            ],
        );
    }
}

#[test]
fn forwarder_srs() {
    let s = site("forwarder-srs.conf", &[]);
    s.expect(
        &internet(),
        "customer@sender.example",
        &[
            ("sales@forward.example", "forward relay sales@crm.example"),
            (
                "SALES+eu@forward.example",
                "forward relay sales@crm.example",
            ),
            (
                "anyone@forward.example",
                "forward relay owner@mailbox.example",
            ),
            (
                "x@mailbox.example",
                "550 5.7.1 Invalid recipient: <x@mailbox.example>",
            ),
        ],
    );
    let rewritten = s
        .rules
        .relay_sender(
            "forward",
            &MailAddr::parse("customer@sender.example"),
            &MailAddr::parse("sales@forward.example"),
            &MailAddr::parse("sales@crm.example"),
            NOW,
        )
        .unwrap();
    assert!(
        rewritten.starts_with("SRS0=")
            && rewritten.ends_with("=sender.example=customer@forward.example")
    );
    // The bounce to it comes back to the forwarder and is relayed to the customer; a bounce
    // minted with the backup key still decodes.
    s.expect(
        &internet(),
        "",
        &[(rewritten.as_str(), "forward relay customer@sender.example")],
    );
    let old = Srs::new(SrsConfig::new("0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a"))
        .unwrap()
        .encode("customer@sender.example", "forward.example", NOW)
        .unwrap();
    s.expect(
        &internet(),
        "",
        &[(old.as_str(), "forward relay customer@sender.example")],
    );
}

#[test]
fn expand_only_catchall() {
    let mut s = site("expand-only-catchall.conf", &[]);
    s.expect(
        &internet(),
        "someone@sender.example",
        &[
            (
                "abuse@example.org",
                "550 5.1.1 report abuse via https://example.org/abuse: <abuse@example.org>",
            ),
            // expand-only delivers nothing itself: alice and bob need a .forward elsewhere.
            (
                "info@example.org",
                "524 5.2.4 Mailing list expansion problem: <info@example.org>",
            ),
            (
                "x@example.com",
                "550 5.7.1 Invalid recipient: <x@example.com>",
            ),
        ],
    );
    s.lookups.insert_forward(
        "bob",
        ForwardFile::Contents("bob@home.example.org\n".into()),
    );
    s.expect(
        &internet(),
        "someone@sender.example",
        &[(
            "anything@example.org",
            // bob@home.example.org is not example.org, and nothing else matches it.
            "550 5.7.1 Invalid recipient: <anything@example.org>",
        )],
    );
}

#[test]
fn mx_virtual_maildir() {
    let s = site(
        "mx-virtual-maildir.conf",
        &[
            (
                "/etc/mail/virtuals",
                "alice@example.com vmail\nbob@example.com vmail\n@example.net bob@example.com\n",
            ),
            ("/etc/mail/users", "vmail 2000:2000:/var/vmail\n"),
        ],
    );
    s.expect(
        &internet(),
        "someone@sender.example",
        &[
            (
                "alice@example.com",
                "vhosts mailbox vmail for alice@example.com",
            ),
            (
                "whoever@example.net",
                "vhosts mailbox vmail for bob@example.com",
            ),
            (
                "carol@example.com",
                "524 5.2.4 Mailing list expansion problem: <carol@example.com>",
            ),
            (
                "x@elsewhere.example",
                "550 5.7.1 Invalid recipient: <x@elsewhere.example>",
            ),
        ],
    );
    let d = s
        .resolve(&internet(), "s@sender.example", "alice@example.com")
        .unwrap();
    assert!(matches!(
        &d[0].target,
        Target::Mailbox { user, run_as: RunAs::User(u), .. } if user.home == "/var/vmail" && u == "vmail"
    ));
    s.expect(
        &SessionFacts::ip(ip("127.0.0.1")),
        "cron@mx1.hosting.example",
        &[(
            "ops@elsewhere.example",
            "outbound relay ops@elsewhere.example",
        )],
    );
}

#[test]
fn tag_routing() {
    let s = site(
        "tag-routing.conf",
        &[("/etc/mail/relaycreds", "web web:secret\n")],
    );
    let tagged = |tag: &str, from: &str| {
        let mut session = SessionFacts::ip(ip(from));
        session.tag = Some(tag.into());
        session
    };
    s.expect(
        &tagged("MONITOR", "10.0.3.4"),
        "nagios@monitor.internal",
        &[("oncall@pager.example", "pager relay oncall@pager.example")],
    );
    s.expect(
        &tagged("WEB", "10.1.0.12"),
        "www@web.internal",
        &[("customer@example.com", "bulk relay customer@example.com")],
    );
    // A web server outside <webservers> matches no rule.
    s.expect(
        &tagged("WEB", "10.2.0.12"),
        "www@web.internal",
        &[(
            "customer@example.com",
            "550 5.7.1 Invalid recipient: <customer@example.com>",
        )],
    );
    // Tagged loopback traffic never reaches local mailboxes, untagged does.
    let mut lo = SessionFacts::ip(ip("127.0.0.1"));
    s.expect(
        &lo,
        "cron@localhost",
        &[("root@localhost", "local mailbox root for root@localhost")],
    );
    lo.tag = Some("web".into());
    s.expect(
        &lo,
        "cron@localhost",
        &[("root@localhost", "outbound relay root@localhost")],
    );
}

#[test]
fn submission_only() {
    let s = site(
        "submission.conf",
        &[
            (
                "/etc/mail/passwd",
                "alice $2b$10$hIJ4QfMcp.90nJwKqGbKM.MybArjHOTpEtoTV.DgLYAiThuoYmTSe\n",
            ),
            (
                "/etc/mail/senders",
                "alice alice@example.org, @example.net\n",
            ),
        ],
    );
    let session = |user: Option<&str>| {
        let mut s = SessionFacts::ip(ip("198.51.100.40"));
        s.tag = Some("SUBMISSION".into());
        s.tls = true;
        s.auth = user.map(str::to_owned);
        s
    };
    s.expect(
        &session(Some("alice")),
        "alice@example.org",
        &[(
            "friend@elsewhere.example",
            "send relay friend@elsewhere.example",
        )],
    );
    for user in [Some("eve"), None] {
        s.expect(
            &session(user),
            "eve@example.org",
            &[(
                "friend@elsewhere.example",
                "550 5.7.1 Invalid recipient: <friend@elsewhere.example>",
            )],
        );
    }
}

#[test]
fn spam_rejection_policy() {
    let s = site("spam-rejection.conf", &[]);
    let ok = "local mailbox alice for alice@example.org";
    let refused = "550 5.7.1 Invalid recipient: <alice@example.org>";
    s.expect(
        &internet(),
        "friend@sender.example",
        &[("alice@example.org", ok)],
    );
    s.expect(
        &internet(),
        "offers@spam.example",
        &[("alice@example.org", refused)],
    );
    s.expect(
        &internet(),
        "marketing@news.example.com",
        &[("alice@example.org", refused)],
    );
    s.expect(
        &internet(),
        "12345@sender.example",
        &[("alice@example.org", refused)],
    );
    s.expect(
        &internet(),
        "friend@sender.xyz",
        &[("alice@example.org", refused)],
    );
    s.expect(
        &internet(),
        "friend@sender.example",
        &[(
            "x@phish.example",
            "550 5.7.1 Invalid recipient: <x@phish.example>",
        )],
    );
    let mut bad_helo = internet();
    bad_helo.helo = Some("LOCALHOST".into());
    s.expect(
        &bad_helo,
        "friend@sender.example",
        &[("alice@example.org", refused)],
    );
    let mut dynamic = internet();
    dynamic.rdns = Some("host-1-2-3-4.dyn.isp.example".into());
    s.expect(
        &dynamic,
        "friend@sender.example",
        &[("alice@example.org", refused)],
    );
    dynamic.auth = Some("alice".into());
    s.expect(
        &dynamic,
        "friend@sender.example",
        &[("alice@example.org", ok)],
    );
    let mut no_rdns = internet();
    no_rdns.rdns = None;
    s.expect(
        &no_rdns,
        "friend@sender.example",
        &[("alice@example.org", refused)],
    );
    s.expect(
        &internet(),
        "friend@sender.example",
        &[(
            "postmaster@example.net",
            "550 5.1.1 Invalid recipient: <postmaster@example.net>",
        )],
    );
}

#[test]
fn unprivileged_laptop_delivers_as_the_developer() {
    let s = site("unprivileged-laptop.conf", &[]);
    s.expect(
        &SessionFacts::ip(ip("127.0.0.1")),
        "app@test.example",
        &[
            (
                "alice@customer.example",
                "catchall mailbox alice for alice@customer.example",
            ),
            (
                "ghost@customer.example",
                "550 5.1.1 Invalid recipient: <ghost@customer.example>",
            ),
        ],
    );
    let d = s
        .resolve(
            &SessionFacts::ip(ip("127.0.0.1")),
            "app@test.example",
            "alice@x.example",
        )
        .unwrap();
    assert!(matches!(&d[0].target, Target::Mailbox { run_as: RunAs::User(u), .. } if u == "dev"));
}

#[test]
fn lmtp_and_backup_mx() {
    let s = site(
        "lmtp-dovecot.conf",
        &[
            ("/etc/mail/aliases", "postmaster: alice\n"),
            ("/etc/mail/vusers", "@example.net bob\n"),
        ],
    );
    s.expect(
        &internet(),
        "s@sender.example",
        &[
            (
                "postmaster@example.com",
                "dovecot mailbox alice for postmaster@example.com",
            ),
            (
                "anyone@example.net",
                "dovecot-tcp mailbox bob for anyone@example.net",
            ),
        ],
    );
    let s = site("backup-mx.conf", &[]);
    s.expect(
        &internet(),
        "s@sender.example",
        &[
            ("alice@example.com", "to-primary relay alice@example.com"),
            (
                "alice@example.org",
                "550 5.7.1 Invalid recipient: <alice@example.org>",
            ),
        ],
    );
}
