//! Replays the seeds in `corpora/aliases/` through the rules' fuzz bodies, and checks what the
//! realistic ones mean.
//!
//! Table files are named by what they hold: `*.aliases` and `*.map` are mappings, `*.list` are
//! lists, `*.invalid` must be refused. `values.good` and `values.bad` hold one alias value per
//! line, all valid or all invalid. `replies.lines` holds `proc:` table protocol lines.

use std::fs;
use std::path::{Path, PathBuf};

use petrel_core::Time;
use petrel_core::config::{ParseOptions, parse};
use petrel_core::rules::alias::{AliasTarget, parse_targets};
use petrel_core::rules::fuzzing;
use petrel_core::rules::table_file;
use petrel_core::rules::{
    Entries, LocalNames, Lookups, MailAddr, Recipient, Ruleset, Service, SessionFacts,
    StaticLookups, Table, Target, UserInfo,
};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpora/aliases")
}

fn seeds() -> Vec<(String, PathBuf)> {
    let mut seeds: Vec<_> = fs::read_dir(corpus_dir())
        .expect("corpora/aliases exists")
        .map(|entry| {
            let path = entry.unwrap().path();
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                path,
            )
        })
        .collect();
    seeds.sort();
    seeds
}

fn read(name: &str) -> String {
    let path = corpus_dir().join(name);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_seed_survives_every_fuzz_body() {
    let seeds = seeds();
    assert!(seeds.len() >= 12, "corpus went missing: {seeds:?}");
    for (_, path) in seeds {
        let data = fs::read(&path).unwrap();
        fuzzing::fuzz_table_file(&data);
        fuzzing::fuzz_expansion(&data);
        fuzzing::fuzz_proc_reply(&data);
        for line in data.split(|&b| b == b'\n') {
            fuzzing::fuzz_alias_value(line);
        }
    }
}

#[test]
fn table_files_parse_as_their_names_say() {
    let mut checked = 0;
    for (name, path) in seeds() {
        let text = fs::read_to_string(&path).unwrap();
        let parsed = table_file::parse(&text);
        match Path::new(&name).extension().and_then(|e| e.to_str()) {
            Some("aliases" | "map") => {
                assert!(matches!(parsed, Ok(Entries::Map(_))), "{name}: {parsed:?}");
            }
            Some("list") => assert!(matches!(parsed, Ok(Entries::List(_))), "{name}: {parsed:?}"),
            Some("invalid") => assert!(parsed.is_err(), "{name}: {parsed:?}"),
            _ => continue,
        }
        checked += 1;
    }
    assert!(checked >= 10);
}

#[test]
fn alias_values() {
    for line in read("values.good").lines() {
        assert!(
            parse_targets(line).is_ok(),
            "{line:?}: {:?}",
            parse_targets(line)
        );
    }
    for line in read("values.bad").lines() {
        assert!(parse_targets(line).is_err(), "{line:?} parsed");
    }
}

#[test]
fn proc_table_lines() {
    let data = read("replies.lines");
    fuzzing::fuzz_proc_reply(data.as_bytes());
    for line in data.lines() {
        fuzzing::fuzz_proc_reply(line.as_bytes());
    }
}

fn table(name: &str) -> Table {
    Table::new(name, table_file::parse(&read(name)).unwrap())
}

#[test]
fn the_system_aliases_reach_root_s_mailbox() {
    let config = parse(
        "smtpd.conf",
        "table aliases file:/etc/mail/aliases\n\
         action \"local_mail\" mbox alias <aliases>\n\
         match from local for local action \"local_mail\"\n",
        &ParseOptions::default(),
    )
    .unwrap();
    let rules = Ruleset::new(&config).unwrap();
    let mut lookups =
        StaticLookups::from_config(&config, &LocalNames::new("mx.example.org", []), |_| {
            Ok(read("openbsd-system.aliases"))
        })
        .unwrap();
    lookups.insert_user(UserInfo::account("alice", 1000, 1000, "/home/alice"));
    let session = SessionFacts::socket();
    let sender = MailAddr::parse("cron@mx.example.org");
    let resolve = |user: &str| {
        let rcpt = MailAddr::new(user, "localhost");
        rules.resolve(
            &Recipient {
                session: &session,
                sender: &sender,
                rcpt: &rcpt,
            },
            &lookups,
            Time::ZERO,
        )
    };
    // MAILER-DAEMON → postmaster → root → alice; keys are case-insensitive.
    for user in ["MAILER-DAEMON", "postmaster", "abuse", "www"] {
        let deliveries = resolve(user).unwrap();
        assert_eq!(deliveries.len(), 1, "{user}");
        assert!(
            matches!(&deliveries[0].target, Target::Mailbox { user, .. } if user.name == "alice"),
            "{user}: {deliveries:?}"
        );
    }
    // Pseudo accounts go to /dev/null, appended by the daemon itself.
    let nobody = resolve("nobody").unwrap();
    assert!(matches!(&nobody[0].target, Target::File { path, .. } if path == "/dev/null"));
}

#[test]
fn the_mailing_lists_mean_what_they_say() {
    let t = table("mailing-lists.aliases");
    let staff = parse_targets(t.get("staff").unwrap()).unwrap();
    assert_eq!(staff.len(), 4, "{staff:?}");
    assert_eq!(
        staff[3],
        AliasTarget::Command("/usr/local/bin/archive --list staff".into())
    );
    assert_eq!(
        parse_targets(t.get("devel").unwrap()).unwrap()[0],
        AliasTarget::Include("/etc/mail/lists/devel".into())
    );
    let [AliasTarget::Error(reply)] = &parse_targets(t.get("quota").unwrap()).unwrap()[..] else {
        panic!()
    };
    assert_eq!(reply.to_string(), "452 4.2.2 mailbox full, try later");
    assert!(t.contains("BOB+LISTS"));
}

#[test]
fn the_other_tables_answer_their_services() {
    let virtuals = table("virtual-domains.aliases");
    assert_eq!(virtuals.get("@"), Some("catchall@example.com"));
    assert_eq!(
        virtuals.get("SALES+EU@example.com"),
        Some("bob@example.com")
    );
    let domains = table("vdomains.list");
    for (domain, listed) in [
        ("example.org", true),
        ("mx.example.net", true),
        ("a.b.example.net", false),
        ("example.edu", false),
    ] {
        assert_eq!(
            domains.check(Service::Domain, domain, '+'),
            Ok(listed),
            "{domain}"
        );
    }
    let nets = table("netaddr.list");
    assert_eq!(nets.len(), 6);
    for (addr, listed) in [
        ("::1", true),
        ("2001:db8:ffff::1", true),
        ("198.51.100.200", true),
        ("192.0.2.2", false),
        ("local", true),
    ] {
        assert_eq!(
            nets.check(Service::Netaddr, addr, '+'),
            Ok(listed),
            "{addr}"
        );
    }
    let users = table("userinfo.map");
    assert_eq!(
        UserInfo::from_table_value("jack", users.get("jack").unwrap()),
        Some(UserInfo::account("jack", 1000, 100, "/home/virtual/jack"))
    );
    let mut lookups = StaticLookups::new(&LocalNames::default());
    lookups.insert_table(table("credentials.map"));
    assert_eq!(
        lookups
            .lookup("credentials.map", Service::Credentials, "isp")
            .unwrap()
            .as_deref(),
        Some("alice:s3cret with spaces")
    );
    let names = table("addrname.map");
    assert_eq!(names.get("[::1]"), Some("localhost"));
    let forced = table("forced-list.list");
    assert!(forced.contains("alice@example.org: not a key"));
}

mod properties {
    use petrel_core::rules::fuzzing;
    use proptest::prelude::*;

    /// An aliases file over a handful of names, so entries refer to each other, to users that
    /// exist (root, alice, bob), to local and remote addresses, files, commands and errors.
    fn aliases_file() -> impl Strategy<Value = String> {
        let item = prop_oneof![
            "(root|alice|bob|list|a|b|c)(\\+tag)?",
            "(root|alice|list|a|b)@(localhost|mx\\.example\\.org|remote\\.example)",
            Just("/var/mail/file".to_owned()),
            Just("\"|/bin/cat\"".to_owned()),
            Just("error:550 5.1.1 gone".to_owned()),
            Just(":include:/etc/mail/list".to_owned()),
        ];
        let entry = (
            "(root|alice|list|a|b|c)(\\+tag)?",
            prop::collection::vec(item, 1..5),
        )
            .prop_map(|(key, items)| format!("{key}: {}\n", items.join(", ")));
        prop::collection::vec(entry, 0..12).prop_map(|lines| lines.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn fuzz_bodies_never_panic(data in prop::collection::vec(any::<u8>(), 0..256)) {
            fuzzing::fuzz_table_file(&data);
            fuzzing::fuzz_alias_value(&data);
            fuzzing::fuzz_proc_reply(&data);
            fuzzing::fuzz_expansion(&data);
        }

        #[test]
        fn expansion_of_structured_aliases_terminates(text in aliases_file()) {
            fuzzing::fuzz_expansion(text.as_bytes());
        }
    }
}
