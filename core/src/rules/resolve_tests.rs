use super::*;
use crate::config::{ParseOptions, parse};
use crate::rules::lookups::{LocalNames, StaticLookups};

const NOW: Time = Time::from_secs(1_700_000_000);

/// A configuration plus the text of its file tables, includes and users' `.forward` files.
struct Setup {
    rules: Ruleset,
    lookups: StaticLookups,
}

fn setup(conf: &str, files: &[(&str, &str)]) -> Setup {
    let config = parse("t.conf", conf, &ParseOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let file = |path: &str| {
        files
            .iter()
            .find(|(p, _)| *p == path)
            .map(|(_, text)| (*text).to_owned())
    };
    let mut lookups = StaticLookups::from_config(
        &config,
        &LocalNames::new("mx.example.org", ["192.0.2.25".parse().unwrap()]),
        |path| file(path).ok_or_else(|| "missing".to_owned()),
    )
    .unwrap();
    for (name, uid) in [("alice", 1000), ("bob", 1001), ("carol", 1002), ("root", 0)] {
        lookups.insert_user(UserInfo::account(name, uid, uid, format!("/home/{name}")));
    }
    for (path, text) in files {
        if let Some(user) = path.strip_prefix("~") {
            lookups.insert_forward(user, ForwardFile::Contents((*text).to_owned()));
        } else {
            lookups.insert_include(*path, *text);
        }
    }
    Setup {
        rules: Ruleset::new(&config).unwrap(),
        lookups,
    }
}

impl Setup {
    fn resolve_from(
        &self,
        session: &SessionFacts,
        sender: &str,
        rcpt: &str,
    ) -> Result<Vec<Delivery>, Refusal> {
        let sender = MailAddr::parse(sender);
        let rcpt = MailAddr::parse(rcpt);
        let recipient = Recipient {
            session,
            sender: &sender,
            rcpt: &rcpt,
        };
        self.rules.resolve(&recipient, &self.lookups, NOW)
    }

    fn resolve(&self, rcpt: &str) -> Result<Vec<Delivery>, Refusal> {
        self.resolve_from(&internet(), "sender@example.com", rcpt)
    }

    fn refused(&self, rcpt: &str) -> String {
        self.resolve(rcpt).expect_err(rcpt).to_string()
    }
}

fn internet() -> SessionFacts {
    SessionFacts::ip("203.0.113.5".parse().unwrap())
}

fn account(name: &str) -> UserInfo {
    let uid = match name {
        "alice" => 1000,
        "bob" => 1001,
        "carol" => 1002,
        _ => 0,
    };
    UserInfo::account(name, uid, uid, format!("/home/{name}"))
}

fn mailbox(action: &str, dest: &str, user: &str) -> Delivery {
    Delivery {
        action: action.into(),
        dest: MailAddr::parse(dest),
        target: Target::Mailbox {
            user: account(user),
            subaddress: None,
            run_as: RunAs::Account(account(user)),
        },
    }
}

fn relay(action: &str, dest: &str) -> Delivery {
    Delivery {
        action: action.into(),
        dest: MailAddr::parse(dest),
        target: Target::Relay,
    }
}

const LOCAL: &str = r#"
table aliases file:/etc/mail/aliases
action "local" mbox alias <aliases>
action "relay" relay
match from any for local action "local"
match from local for any action "relay"
"#;

fn local(aliases: &str, files: &[(&str, &str)]) -> Setup {
    let mut all = vec![("/etc/mail/aliases", aliases)];
    all.extend_from_slice(files);
    setup(LOCAL, &all)
}

#[test]
fn a_plain_user() {
    let s = local("root: alice\n", &[]);
    assert_eq!(
        s.resolve("Alice@mx.example.org"),
        Ok(vec![mailbox("local", "Alice@mx.example.org", "alice")])
    );
    assert_eq!(
        s.refused("nobody@mx.example.org"),
        "550 5.1.1 Invalid recipient: <nobody@mx.example.org>"
    );
    assert_eq!(
        s.refused("someone@elsewhere.example"),
        "550 5.7.1 Invalid recipient: <someone@elsewhere.example>"
    );
}

#[test]
fn aliases_recurse_and_keep_the_recipient_as_dest() {
    let s = local("root: staff\nstaff: alice, bob\npostmaster: root\n", &[]);
    assert_eq!(
        s.resolve("postmaster@localhost"),
        Ok(vec![
            mailbox("local", "postmaster@localhost", "alice"),
            mailbox("local", "postmaster@localhost", "bob"),
        ])
    );
}

#[test]
fn aliases_to_addresses_are_routed_again_as_local_mail() {
    let s = local("team: alice, carol@partner.example, bob@localhost\n", &[]);
    assert_eq!(
        s.resolve("team@mx.example.org"),
        Ok(vec![
            mailbox("local", "team@mx.example.org", "alice"),
            // From the Internet, `from local for any` would not match; expanded, it does.
            relay("relay", "carol@partner.example"),
            mailbox("local", "bob@localhost", "bob"),
        ])
    );
}

#[test]
fn loops_terminate() {
    let s = local("a: b\nb: a\nc: d, alice\nd: c, bob\n", &[]);
    assert_eq!(
        s.refused("a@localhost"),
        "524 5.2.4 Mailing list expansion problem: <a@localhost>"
    );
    assert_eq!(
        s.resolve("c@localhost"),
        Ok(vec![
            mailbox("local", "c@localhost", "alice"),
            mailbox("local", "c@localhost", "bob"),
        ])
    );
    // Through addresses: the address reappearing among its ancestors is dropped.
    let s = local(
        "list: alice, list@localhost, other@localhost\nother: list@localhost, bob\n",
        &[],
    );
    assert_eq!(
        s.resolve("list@localhost"),
        Ok(vec![
            mailbox("local", "list@localhost", "alice"),
            mailbox("local", "other@localhost", "bob"),
        ])
    );
}

#[test]
fn a_user_alias_naming_itself_is_delivered() {
    let s = local("alice: alice, bob\n", &[]);
    assert_eq!(
        s.resolve("alice@localhost"),
        Ok(vec![
            mailbox("local", "alice@localhost", "alice"),
            mailbox("local", "alice@localhost", "bob"),
        ])
    );
    // `\alice` is `alice`: the escape only protects the character.
    let s = local("alice: \\alice, bob\n", &[]);
    assert_eq!(s.resolve("alice@localhost").unwrap().len(), 2);
}

#[test]
fn forward_files() {
    let s = local(
        "",
        &[
            (
                "~alice",
                "# keep a copy\nalice, alice@elsewhere.example\n\"|/usr/bin/procmail -t\"\n",
            ),
            ("~bob", ""),
            ("~carol", "carol@home.example,\\\n  /home/carol/archive\n"),
        ],
    );
    assert_eq!(
        s.resolve("alice@localhost"),
        Ok(vec![
            mailbox("local", "alice@localhost", "alice"),
            relay("relay", "alice@elsewhere.example"),
            Delivery {
                action: "local".into(),
                dest: MailAddr::parse("alice@localhost"),
                target: Target::Command {
                    command: "/usr/bin/procmail -t".into(),
                    run_as: RunAs::Account(account("alice")),
                },
            },
        ])
    );
    // An empty .forward is no .forward.
    assert_eq!(
        s.resolve("bob@localhost"),
        Ok(vec![mailbox("local", "bob@localhost", "bob")])
    );
    let carol = s.resolve("carol@localhost").unwrap();
    assert_eq!(carol.len(), 2);
    assert_eq!(
        carol[1].target,
        Target::File {
            path: "/home/carol/archive".into(),
            run_as: RunAs::Account(account("carol")),
        }
    );
}

#[test]
fn forward_file_limits_and_failures() {
    let big = format!("{}\n", "alice@example.net, ".repeat(300));
    let many: String = (0..120).map(|i| format!("u{i}@example.net\n")).collect();
    let mut s = local(
        "",
        &[("~alice", &big), ("~bob", &many), ("~carol", "bad item!")],
    );
    assert!(s.refused("alice@localhost").starts_with("424 4.2.4 "));
    assert!(s.refused("bob@localhost").starts_with("424 4.2.4 "));
    assert!(s.refused("carol@localhost").starts_with("424 4.2.4 "));
    s.lookups
        .insert_forward("alice", ForwardFile::Refused("group writable".into()));
    assert!(s.refused("alice@localhost").starts_with("524 5.2.4 "));
}

#[test]
fn files_and_commands_run_as_whom_they_may() {
    let s = local(
        "log: /var/log/mail.log, \"|/usr/bin/archive --all\"\n",
        &[("~root", "|/bin/sh -c evil"), ("~alice", "/tmp/alice.mbox")],
    );
    assert_eq!(
        s.resolve("log@localhost"),
        Ok(vec![
            Delivery {
                action: "local".into(),
                dest: MailAddr::parse("log@localhost"),
                target: Target::File {
                    path: "/var/log/mail.log".into(),
                    run_as: RunAs::Daemon,
                },
            },
            Delivery {
                action: "local".into(),
                dest: MailAddr::parse("log@localhost"),
                target: Target::Command {
                    command: "/usr/bin/archive --all".into(),
                    run_as: RunAs::Daemon,
                },
            },
        ])
    );
    // Not from root's .forward (OpenSMTPD 7.5).
    assert_eq!(
        s.refused("root@localhost"),
        "451 4.3.0 Temporary failure: <root@localhost>"
    );
    assert!(s.resolve("alice@localhost").is_ok());
}

#[test]
fn includes() {
    let s = local(
        "staff: :include:/etc/mail/staff, carol\nbroken: :include:/etc/mail/missing\n\
         bad: :include:/etc/mail/bad\n",
        &[
            (
                "/etc/mail/staff",
                "# the staff\nalice, \\\n bob\n:include:/etc/mail/nested\npartner@example.net\n",
            ),
            ("/etc/mail/nested", "root\n"),
            ("/etc/mail/bad", "alice, b@d@x\n"),
        ],
    );
    assert_eq!(
        s.resolve("staff@localhost"),
        Ok(vec![
            mailbox("local", "staff@localhost", "alice"),
            mailbox("local", "staff@localhost", "bob"),
            relay("relay", "partner@example.net"),
            mailbox("local", "staff@localhost", "carol"),
        ])
    );
    assert!(s.refused("broken@localhost").starts_with("424 4.2.4 "));
    assert!(s.refused("bad@localhost").starts_with("424 4.2.4 "));
}

#[test]
fn error_items_fail_the_recipient() {
    let s = local(
        "gone: error:550 5.1.6 moved to example.net\nlater: error:450 mailbox moving\n\
         mixed: alice, error:552 over quota\nbroken: alice, b@@d\n",
        &[],
    );
    assert_eq!(
        s.refused("gone@localhost"),
        "550 5.1.6 moved to example.net: <gone@localhost>"
    );
    assert_eq!(
        s.refused("later@localhost"),
        "450 4.0.0 mailbox moving: <later@localhost>"
    );
    assert_eq!(
        s.refused("mixed@localhost"),
        "552 5.0.0 over quota: <mixed@localhost>"
    );
    // A malformed value is a temporary failure (the table must be fixed).
    assert!(s.refused("broken@localhost").starts_with("424 4.2.4 "));
}

#[test]
fn depth_limit() {
    let chain = |n: usize| -> String {
        let mut text: String = (0..n).map(|i| format!("u{i}: u{}\n", i + 1)).collect();
        text.push_str(&format!("u{n}: alice\n"));
        text
    };
    // recipient (0) → u0 (1) → … → u7 (8) → alice (9): deep enough.
    let s = local(&chain(7), &[]);
    assert_eq!(s.resolve("u0@localhost").unwrap().len(), 1);
    let s = local(&chain(8), &[]);
    assert_eq!(
        s.refused("u0@localhost"),
        "524 5.2.4 Mailing list expansion problem: <u0@localhost>"
    );
}

#[test]
fn fan_out_is_bounded() {
    // 12 addresses, each aliased to all the others: the paths multiply within the depth
    // limit, so the tree is capped.
    let names: Vec<String> = (0..12).map(|i| format!("m{i}")).collect();
    let aliases: String = names
        .iter()
        .map(|n| {
            let others: Vec<String> = names
                .iter()
                .filter(|o| *o != n)
                .map(|o| format!("{o}@localhost"))
                .collect();
            format!("{n}: alice, {}\n", others.join(", "))
        })
        .collect();
    let s = local(&aliases, &[]);
    assert!(s.refused("m0@localhost").starts_with("424 4.2.4 "));
}

#[test]
fn sub_addresses() {
    let s = local("bob+lists: carol\n", &[]);
    let d = s.resolve("alice+news@localhost").unwrap();
    assert_eq!(
        d,
        vec![Delivery {
            action: "local".into(),
            dest: MailAddr::parse("alice+news@localhost"),
            target: Target::Mailbox {
                user: account("alice"),
                subaddress: Some("news".into()),
                run_as: RunAs::Account(account("alice")),
            },
        }]
    );
    assert_eq!(
        s.resolve("bob+lists@localhost"),
        Ok(vec![mailbox("local", "bob+lists@localhost", "carol")])
    );
    let d = s.resolve("bob+other@localhost").unwrap();
    assert!(matches!(&d[0].target, Target::Mailbox { user, .. } if user.name == "bob"));
    // Another delimiter.
    let conf = format!("smtp sub-addr-delim \"-\"\n{LOCAL}");
    let s = setup(&conf, &[("/etc/mail/aliases", "bob-lists: carol\n")]);
    assert_eq!(
        s.resolve("bob-lists@localhost"),
        Ok(vec![mailbox("local", "bob-lists@localhost", "carol")])
    );
    assert!(matches!(
        &s.resolve("alice-x@localhost").unwrap()[0].target,
        Target::Mailbox { subaddress: Some(t), .. } if t == "x"
    ));
    assert!(
        s.resolve("alice+x@localhost").is_err(),
        "'+' is not the delimiter here"
    );
}

const VIRTUAL: &str = r#"
table aliases { postmaster = root }
table vusers file:/etc/mail/virtuals
table global { "@" = "alice" }
action "local" mbox alias <aliases>
action "virtual" maildir virtual <vusers>
action "everything" maildir virtual <global>
action "relay" relay
match from any for local action "local"
match from any for domain virtual.example action "virtual"
match from any for domain catch.example action "everything"
match from local for any action "relay"
"#;

#[test]
fn virtual_lookups_in_opensmtpd_order() {
    let s = setup(
        VIRTUAL,
        &[(
            "/etc/mail/virtuals",
            "info@virtual.example alice\nsales+eu@virtual.example bob\nsales@virtual.example carol\n\
             sales+us carol\nalice bob\n@virtual.example postmaster@localhost\n",
        )],
    );
    // `alice` from the virtual table is looked up again as a user key (`alice bob`).
    assert_eq!(
        s.resolve("INFO@virtual.example"),
        Ok(vec![mailbox("virtual", "INFO@virtual.example", "bob")])
    );
    assert_eq!(
        s.resolve("sales+eu@virtual.example"),
        Ok(vec![mailbox("virtual", "sales+eu@virtual.example", "bob")])
    );
    assert_eq!(
        s.resolve("sales+asia@virtual.example"),
        Ok(vec![mailbox(
            "virtual",
            "sales+asia@virtual.example",
            "carol"
        )])
    );
    // Domain catch-all, then routed to the local postmaster alias.
    assert_eq!(
        s.resolve("whoever@virtual.example"),
        Ok(vec![mailbox("local", "postmaster@localhost", "root")])
    );
    // The global catch-all.
    assert_eq!(
        s.resolve("x@catch.example"),
        Ok(vec![mailbox("everything", "x@catch.example", "alice")])
    );
}

#[test]
fn virtual_without_an_entry_is_refused() {
    let s = setup(
        VIRTUAL,
        &[("/etc/mail/virtuals", "info@virtual.example alice\n")],
    );
    assert_eq!(
        s.refused("nobody@virtual.example"),
        "524 5.2.4 Mailing list expansion problem: <nobody@virtual.example>"
    );
}

#[test]
fn virtual_users_with_a_userbase_and_a_delivery_user() {
    let conf = r#"
table virtuals { "alice@example.com" = vmail, "@example.net" = "bob@example.com", "x@example.com" = other, "bob@example.com" = vmail }
table users { vmail = "2000:2000:/var/vmail", other = "2001:2001:/var/other" }
action "vhosts" maildir "/var/vmail/%{dest.domain}/%{dest.user}" virtual <virtuals> userbase <users> user vmail
table domains { example.com, example.net }
match from any for domain <domains> action "vhosts"
"#;
    let mut s = setup(conf, &[]);
    let vmail = UserInfo::account("vmail", 2000, 2000, "/var/vmail");
    assert_eq!(
        s.resolve("alice@example.com"),
        Ok(vec![Delivery {
            action: "vhosts".into(),
            dest: MailAddr::parse("alice@example.com"),
            target: Target::Mailbox {
                user: vmail.clone(),
                subaddress: None,
                run_as: RunAs::User("vmail".into()),
            },
        }])
    );
    // A catch-all to an address of another hosted domain: routed again.
    let d = s.resolve("anyone@example.net").unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].dest, MailAddr::parse("bob@example.com"));
    // No entry and no catch-all for example.com: refused.
    assert!(s.refused("carol@example.com").starts_with("524 "));
    // Another userbase user than the delivery user: its .forward is not read.
    s.lookups
        .insert_forward("other", ForwardFile::Contents("|/bin/evil".into()));
    assert!(matches!(
        &s.resolve("x@example.com").unwrap()[0].target,
        Target::Mailbox { user, run_as: RunAs::User(u), .. } if user.name == "other" && u == "vmail"
    ));
    // The delivery user's own .forward is.
    s.lookups
        .insert_forward("vmail", ForwardFile::Contents("archive@example.org".into()));
    let d = s.resolve("alice@example.com");
    assert_eq!(
        d.unwrap_err().to_string(),
        "550 5.7.1 Invalid recipient: <alice@example.com>",
        "archive@example.org is not routable here"
    );
}

#[test]
fn users_without_a_system_account_deliver_as_the_daemon() {
    let conf = r#"
table users { dev = "0:0:/home/dev" }
action "catchall" maildir
match from any for local action "catchall"
"#;
    let mut s = setup(conf, &[]);
    s.lookups
        .insert_user(UserInfo::virtual_user("guest", "/var/spool/guest"));
    assert!(matches!(
        &s.resolve("guest@localhost").unwrap()[0].target,
        Target::Mailbox {
            run_as: RunAs::Daemon,
            ..
        }
    ));
}

const LISTS: &str = r#"
table aliases { postmaster = root }
table lists { dev = "alice@localhost, bob@example.net", "log" = "/var/log/lists", ghost = carol }
table forwards { "@forward.example" = "owner@mailbox.example", "local@forward.example" = alice, "file@forward.example" = "/tmp/x", "err@forward.example" = "error:550 5.1.1 gone" }
action "local" mbox alias <aliases>
action "lists" expand-only alias <lists>
action "forward" forward-only virtual <forwards>
action "relay" relay
match from any for local action "local"
match from any for domain lists.example action "lists"
match from any for domain forward.example action "forward"
match from local for any action "relay"
"#;

#[test]
fn expand_only() {
    let s = setup(LISTS, &[]);
    assert_eq!(
        s.resolve("dev@lists.example"),
        Ok(vec![
            // Breadth first: the relayed address is settled before alice's user node.
            relay("relay", "bob@example.net"),
            mailbox("local", "alice@localhost", "alice"),
        ])
    );
    // Files from the table are fine.
    assert!(matches!(
        &s.resolve("log@lists.example").unwrap()[0].target,
        Target::File {
            run_as: RunAs::Daemon,
            ..
        }
    ));
    // A user without a .forward has nothing to expand to.
    assert!(s.refused("alice@lists.example").starts_with("524 5.2.4 "));
    assert!(s.refused("ghost@lists.example").starts_with("524 5.2.4 "));
    // With a .forward, it expands.
    let s = setup(LISTS, &[("~carol", "carol@elsewhere.example")]);
    assert_eq!(
        s.resolve("ghost@lists.example"),
        Ok(vec![relay("relay", "carol@elsewhere.example")])
    );
    // A .forward naming its own user has no mailbox to go to.
    let s = setup(LISTS, &[("~carol", "carol")]);
    assert!(s.refused("ghost@lists.example").starts_with("524 5.2.4 "));
}

#[test]
fn forward_only() {
    let s = setup(LISTS, &[]);
    assert_eq!(
        s.resolve("anyone@forward.example"),
        Ok(vec![relay("relay", "owner@mailbox.example")])
    );
    // Local users, files and error items are not forwards: temporary failures, as in
    // OpenSMTPD.
    assert!(s.refused("local@forward.example").starts_with("424 4.2.4 "));
    assert!(s.refused("file@forward.example").starts_with("451 4.3.0 "));
    assert!(s.refused("err@forward.example").starts_with("451 4.3.0 "));
    let s = setup(LISTS, &[("~alice", "alice@elsewhere.example")]);
    assert_eq!(
        s.resolve("local@forward.example"),
        Ok(vec![relay("relay", "alice@elsewhere.example")])
    );
}

#[test]
fn lookup_failures_are_temporary() {
    let conf = r#"
table aliases proc:/usr/libexec/table-ldap
table users proc:/usr/libexec/table-ldap
table domains proc:/usr/libexec/table-ldap
action "local" mbox alias <aliases>
action "other" mbox userbase <users>
match from any for domain other.example action "other"
match from any for domain <domains> action "local"
match from any for local action "local"
"#;
    let s = setup(conf, &[]);
    assert_eq!(
        s.refused("alice@localhost"),
        "451 4.3.0 Temporary failure: <alice@localhost>"
    );
    assert_eq!(
        s.refused("alice@other.example"),
        "451 4.3.0 Temporary failure: <alice@other.example>"
    );
    let conf = r#"
table aliases proc:/usr/libexec/table-ldap
action "local" mbox alias <aliases>
match from any for local action "local"
"#;
    let s = setup(conf, &[]);
    assert_eq!(
        s.refused("alice@localhost"),
        "424 4.2.4 Mailing list expansion problem: <alice@localhost>"
    );
    // The log learns which table failed; the client does not.
    assert_eq!(
        s.resolve("alice@localhost").unwrap_err().cause,
        "table <aliases> is not available"
    );
}

#[test]
fn refusals_explain_themselves_to_the_log() {
    let s = local("gone: error:550 5.1.1 gone\n", &[]);
    let cause = |rcpt: &str| s.resolve(rcpt).unwrap_err().cause;
    assert_eq!(
        cause("x@elsewhere.example"),
        "no rule matched x@elsewhere.example"
    );
    assert_eq!(cause("nobody@localhost"), "no user \"nobody\"");
    assert_eq!(cause("gone@localhost"), "error item");
}

const SRS: &str = r#"
srs key "s3cr3t-k3y"
srs key backup "old-k3y"
table aliases { fwd = "alice@example.org" }
action "local" mbox alias <aliases>
action "relay" relay srs
table ours { forwarder.example }
match from any for domain <ours> action "local"
match from any for local action "local"
match from local for any action "relay"
"#;

#[test]
fn srs_bounces_are_decoded_and_routed_as_local_mail() {
    let s = setup(SRS, &[]);
    let bounce = |rcpt: &str, now: Time| {
        let sender = MailAddr::null();
        let rcpt = MailAddr::parse(rcpt);
        let session = internet();
        s.rules.resolve(
            &Recipient {
                session: &session,
                sender: &sender,
                rcpt: &rcpt,
            },
            &s.lookups,
            now,
        )
    };
    let valid = "SRS0=Hy2-=G3=example.org=alice@forwarder.example";
    assert_eq!(
        bounce(valid, NOW),
        Ok(vec![relay("relay", "alice@example.org")])
    );
    // The backup key still verifies, SRS1 decodes to the first forwarder's SRS0 address.
    assert_eq!(
        bounce("SRS0=FJGj=G3=example.org=alice@forwarder.example", NOW),
        Ok(vec![relay("relay", "alice@example.org")])
    );
    assert_eq!(
        bounce("SRS0=XXXX=G3=example.org=alice@forwarder.example", NOW)
            .unwrap_err()
            .to_string(),
        "550 5.7.1 Invalid SRS hash: <SRS0=XXXX=G3=example.org=alice@forwarder.example>"
    );
    let day = 86_400;
    assert!(bounce(valid, Time::from_secs(1_700_000_000 + 4 * day)).is_ok());
    assert_eq!(
        bounce(valid, Time::from_secs(1_700_000_000 + 5 * day))
            .unwrap_err()
            .to_string(),
        format!("550 5.7.1 SRS address has expired: <{valid}>")
    );
    // Mail that is not a bounce is not decoded: an ordinary (unknown) local user.
    assert_eq!(
        s.resolve_from(&internet(), "someone@example.net", valid)
            .unwrap_err()
            .to_string(),
        format!("550 5.1.1 Invalid recipient: <{valid}>")
    );
}

#[test]
fn srs1_bounces_go_back_to_the_first_forwarder() {
    let s = setup(&SRS.replace("forwarder.example", "second.example"), &[]);
    assert_eq!(
        s.resolve_from(
            &internet(),
            "",
            "SRS1=hk-9=forwarder.example==Hy2-=G3=example.org=alice@second.example"
        ),
        Ok(vec![relay(
            "relay",
            "SRS0=Hy2-=G3=example.org=alice@forwarder.example"
        )])
    );
}

#[test]
fn srs_addresses_of_others_are_relayed_untouched() {
    let s = setup(SRS, &[]);
    let other = "SRS0=abcd=G3=example.org=alice@other.example";
    assert_eq!(
        s.resolve_from(&SessionFacts::socket(), "", other),
        Ok(vec![relay("relay", other)])
    );
}

#[test]
fn logical_lines_join_and_strip_comments() {
    assert_eq!(
        logical_lines("a, \\\nb # comment\n\\# not a comment\n# all comment\nc\\"),
        vec!["a, b ", "\\# not a comment", "", "c"]
    );
}
