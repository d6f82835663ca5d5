//! Fuzz target bodies for the rules' parsers (used by `fuzz/` and replayed over
//! `corpora/aliases/` by a test; not part of the public API). Each takes arbitrary bytes and
//! must never panic; each also checks invariants of what it parsed.

use std::sync::OnceLock;

use super::address::MailAddr;
use super::alias::{self, AliasTarget};
use super::lookups::{ForwardFile, LocalNames, StaticLookups, UserInfo};
use super::proc_table::{self, Operation, ProcTableClient, RequestId, SMTPD_VERSION, Timeouts};
use super::resolve::Recipient;
use super::router::{Ruleset, SessionFacts};
use super::service::Service;
use super::table::{Entries, Table};
use super::table_file;
use crate::Time;
use crate::config::{ParseOptions, parse};

/// Parses the bytes (lossy UTF-8) as a table file; for a mapping, parses every value as an
/// alias value too, and asks the table every kind of question about every key.
pub fn fuzz_table_file(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(entries) = table_file::parse(&text) else {
        return;
    };
    let keys: Vec<String> = match &entries {
        Entries::List(values) => values.clone(),
        Entries::Map(pairs) => pairs.iter().map(|(k, _)| k.clone()).collect(),
    };
    for key in &keys {
        assert!(!key.is_empty(), "empty key from {text:?}");
        assert!(!key.contains('\n'), "multi-line key from {text:?}");
    }
    if let Entries::Map(pairs) = &entries {
        for (_, value) in pairs {
            assert!(!value.is_empty(), "empty value from {text:?}");
            check_targets(value);
        }
    }
    let table = Table::new("fuzz", entries);
    for key in keys.iter().take(16) {
        for &service in Service::ALL {
            let _ = table.check(service, key, '+');
            let _ = table.lookup(service, key, '+');
        }
        assert!(table.contains(key), "{key:?} not found in its own table");
    }
}

/// Parses the bytes (lossy UTF-8) as one alias value.
pub fn fuzz_alias_value(data: &[u8]) {
    check_targets(&String::from_utf8_lossy(data));
}

fn check_targets(value: &str) {
    let Ok(targets) = alias::parse_targets(value) else {
        return;
    };
    for target in targets {
        match target {
            AliasTarget::User(name) => assert!(
                !name.is_empty()
                    && name.bytes().all(|b| b.is_ascii_digit()
                        || b.is_ascii_lowercase()
                        || b"_.-+".contains(&b)),
                "bad user {name:?} from {value:?}"
            ),
            AliasTarget::Address(addr) => {
                assert!(
                    !addr.user.is_empty() && !addr.domain.is_empty(),
                    "{value:?}"
                );
            }
            AliasTarget::File(path) | AliasTarget::Include(path) => {
                assert!(
                    path.starts_with('/'),
                    "relative path {path:?} from {value:?}"
                );
            }
            AliasTarget::Command(_) => {}
            AliasTarget::Error(reply) => {
                assert!((400..600).contains(&reply.code), "{value:?}");
                assert!(!reply.text.is_empty(), "{value:?}");
            }
        }
    }
}

/// The configuration [`fuzz_expansion`] resolves against: an aliases table, local users, and
/// a relay for anything else.
const EXPANSION_CONFIG: &str = "table aliases file:/etc/mail/aliases\n\
    action \"local\" mbox alias <aliases>\n\
    action \"relay\" relay\n\
    match from any for local action \"local\"\n\
    match from local for any action \"relay\"\n";

/// Uses the bytes as `/etc/mail/aliases` (and as alice's `.forward` and an include file) and
/// resolves a few recipients: resolution must terminate, and a success must have deliveries.
pub fn fuzz_expansion(data: &[u8]) {
    static RULES: OnceLock<Ruleset> = OnceLock::new();
    let rules = RULES.get_or_init(|| {
        let config = parse("fuzz.conf", EXPANSION_CONFIG, &ParseOptions::default())
            .expect("the fuzz configuration parses");
        Ruleset::new(&config).expect("the fuzz configuration compiles")
    });
    let text = String::from_utf8_lossy(data);
    let mut lookups = StaticLookups::new(&LocalNames::new("mx.example.org", []));
    if lookups.insert_table_text("aliases", &text).is_err() {
        return;
    }
    for name in ["root", "alice", "bob"] {
        lookups.insert_user(UserInfo::account(name, 1000, 1000, format!("/home/{name}")));
    }
    lookups.insert_forward("alice", ForwardFile::Contents(text.clone().into_owned()));
    lookups.insert_include("/etc/mail/list", text.clone().into_owned());
    let session = SessionFacts::socket();
    let sender = MailAddr::parse("sender@example.org");
    let keys: Vec<String> = match lookups.table("aliases").map(Table::entries) {
        Some(Entries::Map(pairs)) => pairs.iter().take(8).map(|(k, _)| k.clone()).collect(),
        _ => Vec::new(),
    };
    for user in keys.iter().map(String::as_str).chain(["root", "alice"]) {
        let rcpt = MailAddr::new(user, "localhost");
        let recipient = Recipient {
            session: &session,
            sender: &sender,
            rcpt: &rcpt,
        };
        if let Ok(deliveries) = rules.resolve(&recipient, &lookups, Time::ZERO) {
            assert!(!deliveries.is_empty(), "accepted {user} with no delivery");
        }
    }
}

/// Feeds each line of the bytes to a `proc:` table client — first through the handshake, then
/// as replies to a few outstanding requests — and to the bare reply parser. The client must
/// never answer a request twice nor invent one.
pub fn fuzz_proc_reply(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let t0 = Time::from_secs(1_700_000_000);
    for line in text.lines() {
        let _ = proc_table::parse_reply(line);
        let _ = proc_table::parse_register(line);
    }
    let Ok(mut client) = ProcTableClient::new("fuzz", SMTPD_VERSION, t0, Timeouts::default())
    else {
        return;
    };
    for line in ["register|alias", "register|source", "register|ready"] {
        let _ = client.handle_line(line, t0);
    }
    let ids = [RequestId(0), RequestId(1), RequestId(0xdead_beef)];
    let ops = [
        Operation::Lookup {
            service: Service::Alias,
            key: "root".into(),
        },
        Operation::Check {
            service: Service::Alias,
            key: "x|y".into(),
        },
        Operation::Fetch {
            service: Service::Source,
        },
    ];
    for (id, op) in ids.iter().zip(ops) {
        client.request(*id, op, t0).expect("the client is ready");
    }
    let mut answered = std::collections::HashSet::new();
    for line in text.lines() {
        let _ = client.handle_line(line, t0);
        while let Some(event) = client.poll_event() {
            if let proc_table::Event::Answer { id, .. } = event {
                assert!(ids.contains(&id), "answer to an unknown request {id}");
                assert!(answered.insert(id), "request {id} answered twice");
            }
        }
    }
    assert_eq!(client.outstanding() + answered.len(), ids.len());
}
