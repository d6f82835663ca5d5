//! Targeted tests of `petrel_core::config::parse`: defaults, macros, includes, the typed shape
//! of each directive, and the error checks done at load time.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use petrel_core::config::*;

fn parse_ok(text: &str) -> Config {
    match parse("test.conf", text, &ParseOptions::default()) {
        Ok(config) => config,
        Err(errors) => panic!("unexpected errors:\n{errors}"),
    }
}

/// The rendered errors of a configuration that must not parse.
fn errors(text: &str) -> String {
    match parse("test.conf", text, &ParseOptions::default()) {
        Ok(config) => panic!("parsed, but should not have:\n{config}"),
        Err(errors) => errors.to_string(),
    }
}

fn first_error(text: &str) -> ErrorKind {
    let errors = parse("test.conf", text, &ParseOptions::default()).expect_err("should not parse");
    errors.errors()[0].kind.clone()
}

struct Files(HashMap<&'static str, &'static str>);

impl SourceLoader for Files {
    fn load(&self, path: &str) -> Result<String, String> {
        self.0
            .get(path)
            .map(|t| (*t).to_owned())
            .ok_or_else(|| "No such file or directory".into())
    }
}

#[test]
fn an_empty_configuration_has_the_documented_defaults() {
    let config = parse_ok("");
    assert_eq!(config.smtp.max_message_size, 36_700_160);
    assert_eq!(config.smtp.max_rcpt, 1000);
    assert_eq!(config.smtp.max_mails, 100);
    assert_eq!(config.smtp.sub_addr_delim, '+');
    assert_eq!(config.smtp.ciphers, "HIGH:!aNULL:!MD5");
    assert_eq!(config.queue.ttl, Duration::from_secs(4 * 86_400));
    assert!(!config.queue.compression && config.queue.encryption.is_none());
    assert_eq!(
        config.bounce.warn_intervals,
        vec![Duration::from_secs(4 * 3_600)]
    );
    assert_eq!(config.srs.ttl_days, 4);
    assert_eq!(config.srs.key, None);
    assert_eq!(config.mta.max_deferred, 100);
    assert_eq!(config.to_string(), "");
}

#[test]
fn macros_expand_in_unquoted_context_only() {
    let config = parse_ok(
        "lan = \"192.0.2.10\"\n\
         port_num = 2525\n\
         opts = \"tag LAN mask-src\"\n\
         listen on $lan port $port_num $opts hostname \"$lan\"\n",
    );
    let listener = &config.listeners[0];
    assert_eq!(
        listener.on,
        ListenOn::Address("192.0.2.10".parse().unwrap())
    );
    assert_eq!(listener.port, Some(2525));
    assert_eq!(listener.tag.as_deref(), Some("LAN"));
    assert!(listener.mask_src);
    assert_eq!(listener.hostname.as_deref(), Some("$lan"));
}

#[test]
fn a_macro_can_copy_another_and_be_redefined() {
    let config = parse_ok("a = one\nb = $a\na = two\nlisten on lo tag $b hostname $a\n");
    assert_eq!(config.listeners[0].tag.as_deref(), Some("one"));
    assert_eq!(config.listeners[0].hostname.as_deref(), Some("two"));
}

#[test]
fn command_line_macros_win_over_the_file() {
    let mut options = ParseOptions::default();
    options.define("iface=em0").unwrap();
    assert!(options.define("nonsense").is_err());
    let config = parse("f", "iface = lo0\nlisten on $iface\n", &options).unwrap();
    assert_eq!(config.listeners[0].on, ListenOn::Interface("em0".into()));
}

#[test]
fn includes_are_read_through_the_loader_and_report_their_own_file() {
    let files = Files(HashMap::from([
        (
            "/etc/petrel/tables.conf",
            "table aliases file:/etc/mail/aliases\nwho = alice\n",
        ),
        ("/etc/petrel/broken.conf", "\nlisten on lo prot 25\n"),
        (
            "/etc/petrel/loop.conf",
            "include \"/etc/petrel/loop.conf\"\n",
        ),
    ]));
    let options = ParseOptions::with_loader(&files);
    let config = parse(
        "main.conf",
        "include \"/etc/petrel/tables.conf\"\naction a mbox alias <aliases>\nmatch for local action a\n",
        &options,
    )
    .unwrap();
    assert_eq!(config.files, ["main.conf", "/etc/petrel/tables.conf"]);
    assert_eq!(config.tables[0].span.file, 1);
    assert_eq!(
        config.location(config.tables[0].span),
        "/etc/petrel/tables.conf:1:1"
    );

    let errors = parse(
        "main.conf",
        "include \"/etc/petrel/broken.conf\"\n",
        &options,
    )
    .unwrap_err();
    assert_eq!(
        errors.to_string(),
        "/etc/petrel/broken.conf:2:14: unknown keyword \"prot\", did you mean \"port\"?\n\
         listen on lo prot 25\n             ^\n"
    );
    let errors = parse(
        "main.conf",
        "include \"/missing.conf\"\ninclude \"/etc/petrel/loop.conf\"\n",
        &options,
    )
    .unwrap_err();
    assert_eq!(
        errors.kinds(),
        [
            &ErrorKind::Include {
                path: "/missing.conf".into(),
                reason: "No such file or directory".into()
            },
            &ErrorKind::IncludeCycle("/etc/petrel/loop.conf".into()),
        ]
    );
    assert!(matches!(
        first_error("include \"/x\""),
        ErrorKind::Include { .. }
    ));
}

#[test]
fn tables_of_every_kind() {
    let config = parse_ok(
        "table a file:/etc/mail/aliases\n\
         table b /etc/mail/b\n\
         table c db:/etc/mail/c.db\n\
         table d proc:/usr/libexec/table-d\n\
         table e { one, \"two words\"\n  three }\n\
         table f {\n  k1 = v1,\n  k2 => v2\n}\n\
         table g { }\n",
    );
    let sources: Vec<&TableSource> = config.tables.iter().map(|t| &t.source).collect();
    assert_eq!(
        sources,
        [
            &TableSource::File("/etc/mail/aliases".into()),
            &TableSource::File("/etc/mail/b".into()),
            &TableSource::Db("/etc/mail/c.db".into()),
            &TableSource::Proc("/usr/libexec/table-d".into()),
            &TableSource::List(vec!["one".into(), "two words".into(), "three".into()]),
            &TableSource::Map(vec![("k1".into(), "v1".into()), ("k2".into(), "v2".into())]),
            &TableSource::List(vec![]),
        ]
    );
    assert!(matches!(
        first_error("table x ldap:/etc/ldap.conf"),
        ErrorKind::InvalidValue { .. }
    ));
    assert!(matches!(
        first_error("table x { a, b = c }"),
        ErrorKind::InvalidValue { .. }
    ));
    assert_eq!(first_error("table x { a, b"), ErrorKind::UnclosedBrace);
}

#[test]
fn pki_lines_merge_and_names_ignore_case() {
    let config = parse_ok(
        "pki MX.Example.ORG cert \"/c.pem\"\n\
         pki mx.example.org key \"/k.pem\" dhe auto\n\
         listen on lo tls pki Mx.Example.Org\n",
    );
    assert_eq!(config.pkis.len(), 1);
    assert_eq!(config.pkis[0].name, "mx.example.org");
    assert_eq!(config.pkis[0].dhe, Dhe::Auto);
    assert_eq!(config.listeners[0].pki, ["mx.example.org"]);
    assert_eq!(
        first_error("pki a cert \"/c\"\nlisten on lo tls pki a"),
        ErrorKind::Incomplete {
            what: "pki \"a\"".into(),
            missing: "`key`".into()
        }
    );
    assert!(matches!(
        first_error("pki a cert \"/c\" cert \"/d\""),
        ErrorKind::Repeated(_)
    ));
}

#[test]
fn listener_defaults_and_options() {
    let config = parse_ok(
        "pki mx cert \"/c\"\npki mx key \"/k\"\n\
         table creds file:/creds\ntable senders file:/senders\n\
         filter f phase connect match rdns bypass\n\
         listen on socket tag LOCAL\n\
         listen on all inet6 smtps pki mx\n\
         listen on localhost port submission tls-require verify pki mx auth-optional <creds> \
           senders <senders> masquerade filter { f } received-auth no-dsn no-rdns proxy-v2 \
           protocols \"tlsv1.3\" ciphers \"HIGH\"\n",
    );
    let [socket, all, local] = config.listeners.as_slice() else {
        panic!()
    };
    assert_eq!(
        (socket.on.clone(), socket.port, socket.tag.as_deref()),
        (ListenOn::Socket, None, Some("LOCAL"))
    );
    assert_eq!(
        (all.on.clone(), all.family, all.port),
        (ListenOn::All, Some(AddressFamily::Inet6), Some(465))
    );
    assert_eq!(local.port, Some(587));
    assert_eq!(local.tls, TlsMode::StartTlsRequired { verify: true });
    assert_eq!(
        local.auth,
        Some(ListenAuth {
            required: false,
            table: Some("creds".into())
        })
    );
    assert_eq!(
        local.senders,
        Some(Senders {
            table: "senders".into(),
            masquerade: true
        })
    );
    assert_eq!(local.filter, Some(FilterRef::Chain(vec!["f".into()])));
    assert!(local.received_auth && local.no_dsn && local.no_rdns && local.proxy_v2);
    assert!(!all.no_rdns);
}

#[test]
fn listener_errors() {
    assert_eq!(
        first_error("listen on lo tls smtps"),
        ErrorKind::Conflict("`tls`".into(), "`smtps`".into())
    );
    assert_eq!(
        first_error("listen on lo port 25 port 26"),
        ErrorKind::Repeated("`port`".into())
    );
    assert!(matches!(
        first_error("listen on lo port 0"),
        ErrorKind::InvalidValue { what: "port", .. }
    ));
    assert!(matches!(
        first_error("listen on socket port 25"),
        ErrorKind::NotAllowed { .. }
    ));
    assert!(matches!(
        first_error("listen on lo auth"),
        ErrorKind::Requires { .. }
    ));
    assert!(matches!(
        first_error("listen on socket\nlisten on socket"),
        ErrorKind::AlreadySet { .. }
    ));
    assert!(matches!(
        first_error("listen lo"),
        ErrorKind::Unexpected { .. }
    ));
}

#[test]
fn local_actions() {
    let config = parse_ok(
        "table aliases { root = alice }\ntable users { alice = \"1000:1000:/home/alice\" }\n\
         mda wrapper spam \"/usr/bin/spamc -e %{mda}\"\n\
         action a mbox alias <aliases>\n\
         action b maildir\n\
         action c maildir \"~/Mail/%{rcpt.domain}\" junk userbase <users> user vmail ttl 2d\n\
         action d maildir junk\n\
         action e lmtp \"127.0.0.1:24\" rcpt-to\n\
         action f mda \"/usr/bin/procmail -f %{sender}\" wrapper spam\n\
         action g expand-only\naction h forward-only\n",
    );
    let method = |name: &str| match &config.action(name).unwrap().delivery {
        Delivery::Local(local) => local.clone(),
        Delivery::Relay(_) => panic!("not local"),
    };
    assert_eq!(
        method("a").expansion,
        Some(Expansion::Alias("aliases".into()))
    );
    assert_eq!(
        method("b").method,
        LocalMethod::Maildir {
            path: None,
            junk: false
        }
    );
    let c = method("c");
    assert_eq!(
        c.method,
        LocalMethod::Maildir {
            path: Some("~/Mail/%{rcpt.domain}".into()),
            junk: true
        }
    );
    assert_eq!(
        (c.userbase.as_deref(), c.user.as_deref()),
        (Some("users"), Some("vmail"))
    );
    assert_eq!(
        config.action("c").unwrap().ttl,
        Some(Duration::from_secs(2 * 86_400))
    );
    assert_eq!(
        method("d").method,
        LocalMethod::Maildir {
            path: None,
            junk: true
        }
    );
    assert_eq!(
        method("e").method,
        LocalMethod::Lmtp {
            destination: "127.0.0.1:24".into(),
            rcpt_to: true
        }
    );
    assert_eq!(method("f").wrapper.as_deref(), Some("spam"));
    assert_eq!(method("g").method, LocalMethod::ExpandOnly);
    assert_eq!(method("h").method, LocalMethod::ForwardOnly);
}

#[test]
fn relay_actions() {
    let config = parse_ok(
        "table creds file:/creds\ntable src { 192.0.2.1, 192.0.2.2 }\nsrs key secret\n\
         action a relay host smtps://bob@[2001:db8::25] auth <creds> tls no-verify src <src> \
           mail-from \"bounces@example.org\" helo out.example.org ttl 1h\n\
         action b relay backup mx mx2.example.org srs src 192.0.2.9\n",
    );
    let relay = |name: &str| match &config.action(name).unwrap().delivery {
        Delivery::Relay(relay) => relay.clone(),
        Delivery::Local(_) => panic!("not a relay"),
    };
    let a = relay("a");
    let url = a.host.unwrap();
    assert_eq!(url.scheme, RelayScheme::Smtps);
    assert_eq!(url.label.as_deref(), Some("bob"));
    assert_eq!(
        url.host,
        RelayHost::Address("2001:db8::25".parse().unwrap())
    );
    assert_eq!(url.port, 465);
    assert_eq!(a.tls, Some(RelayTls { verify: false }));
    assert_eq!(a.src, Some(RelaySource::Table("src".into())));
    let b = relay("b");
    assert_eq!(
        b.backup,
        Some(Backup {
            mx: Some("mx2.example.org".into())
        })
    );
    assert!(b.srs);
    assert_eq!(
        b.src,
        Some(RelaySource::Address("192.0.2.9".parse::<IpAddr>().unwrap()))
    );
}

#[test]
fn action_errors() {
    assert_eq!(
        first_error("table t file:/t\naction a mbox alias <t> virtual <t>"),
        ErrorKind::Conflict("`alias`".into(), "`virtual`".into())
    );
    assert_eq!(
        first_error("action a mbox user vmail"),
        ErrorKind::NotAllowed {
            option: "`user`".into(),
            context: "with `mbox`".into()
        }
    );
    assert_eq!(
        first_error("table c file:/c\naction a relay auth <c>"),
        ErrorKind::Requires {
            option: "`auth`".into(),
            requirement: "`host`".into()
        }
    );
    assert_eq!(
        first_error("action a relay srs"),
        ErrorKind::Requires {
            option: "`srs`".into(),
            requirement: "an `srs key` directive".into()
        }
    );
    assert_eq!(
        first_error("action a relay backup host x"),
        ErrorKind::Conflict("`backup`".into(), "`host`".into())
    );
    assert!(matches!(
        first_error("action a relay host lmtp://x"),
        ErrorKind::InvalidValue { .. }
    ));
    assert!(matches!(
        first_error("action a mbox ttl 0d"),
        ErrorKind::InvalidValue { .. }
    ));
    assert!(matches!(
        first_error("action a mbox\naction a maildir"),
        ErrorKind::Duplicate { .. }
    ));
    assert!(matches!(
        first_error("action a deliver"),
        ErrorKind::Unexpected { .. }
    ));
}

#[test]
fn match_rules() {
    let config = parse_ok(
        "table t { a }\naction a mbox\n\
         match action a\n\
         match !from src 10.0.0.0/8 for domain regex \"^.*\\.example$\" tagged T !tls action a\n\
         match from auth <t> for rcpt-to regex <t> helo x mail-from \"@example.org\" reject\n\
         match from rdns for any action a\n\
         match !from mail-from <t> for any !auth action a\n",
    );
    let rules = &config.rules;
    assert_eq!(
        rules[0].from,
        Cond {
            negated: false,
            test: Origin::Local
        }
    );
    assert_eq!(
        rules[0].to,
        Cond {
            negated: false,
            test: Destination::Local
        }
    );
    assert_eq!(rules[0].decision, MatchDecision::Action("a".into()));
    assert!(rules[1].from.negated);
    assert_eq!(
        rules[1].to.test,
        Destination::Domain(Matcher {
            regex: true,
            lookup: Lookup::Value("^.*\\.example$".into())
        })
    );
    assert_eq!(
        rules[1].tls,
        Some(Cond {
            negated: true,
            test: ()
        })
    );
    // `from auth` is `from any` plus an auth condition, as in OpenSMTPD.
    assert_eq!(rules[2].from.test, Origin::Any);
    let auth = rules[2].auth.as_ref().unwrap();
    assert_eq!(
        auth.test,
        Some(Matcher {
            regex: false,
            lookup: Lookup::Table("t".into())
        })
    );
    assert_eq!(rules[2].to.test, Destination::Any);
    assert!(rules[2].rcpt_to.as_ref().unwrap().test.regex);
    assert_eq!(rules[2].decision, MatchDecision::Reject);
    assert_eq!(rules[3].from.test, Origin::Rdns(None));
    assert!(rules[4].mail_from.as_ref().unwrap().negated);
    assert!(rules[4].auth.as_ref().unwrap().negated);
}

#[test]
fn match_errors() {
    assert!(matches!(
        first_error("match from any action x"),
        ErrorKind::Undefined { .. }
    ));
    assert!(matches!(
        first_error("match from any from local reject"),
        ErrorKind::Repeated(_)
    ));
    assert!(matches!(
        first_error("match from auth auth reject"),
        ErrorKind::Repeated(_)
    ));
    assert!(matches!(
        first_error("match for domain regex \"(\" reject"),
        ErrorKind::Regex { .. }
    ));
    assert!(matches!(
        first_error("table r { \"a[\" }\nmatch helo regex <r> reject"),
        ErrorKind::Regex { .. }
    ));
    assert_eq!(
        first_error("match for domain { a, b } reject"),
        ErrorKind::InlineList
    );
    assert!(matches!(
        first_error("match from any"),
        ErrorKind::UnexpectedEnd { .. }
    ));
    assert!(matches!(
        first_error("match reject extra"),
        ErrorKind::Unexpected { .. }
    ));
    assert!(matches!(
        first_error("match !reject"),
        ErrorKind::NotAllowed { .. }
    ));
    assert!(matches!(
        first_error("table m { a = b }\nmatch from src <m> reject"),
        ErrorKind::TableShape { .. }
    ));
    assert!(matches!(
        first_error("action a mbox\nmatch mathc action a"),
        ErrorKind::UnknownKeyword { .. }
    ));
}

#[test]
fn references_must_come_after_definitions() {
    assert_eq!(
        errors("match for local action later\naction later mbox\n"),
        "test.conf:1:24: action \"later\" is used before its definition at line 2\n\
         match for local action later\n                       ^\n"
    );
    assert_eq!(
        first_error("table aliases file:/a\naction a mbox alias <alias>"),
        ErrorKind::Undefined {
            kind: ItemKind::Table,
            name: "alias".into(),
            suggestion: Some("aliases".into())
        }
    );
}

#[test]
fn filters() {
    let config = parse_ok(
        "table bad { 192.0.2.0/24 }\n\
         proc rspamd \"/usr/libexec/filter-rspamd\" user _rspamd group _rspamd chroot \"/var/empty\"\n\
         filter a phase connect match !rdns !fcrdns src <bad> disconnect \"421 4.7.0 go away\"\n\
         filter b phase mail-from match mail-from regex \"@spam\\.example$\" reject \"550 5.7.1 no\"\n\
         filter c proc rspamd\n\
         filter d proc-exec \"filter-dkimsign -d example.org\" user _dkim\n\
         filter e chain { a, b, c, d }\n\
         filter f phase commit match auth report \"authenticated\"\n",
    );
    let Some(Filter {
        kind: FilterKind::Builtin(a),
        ..
    }) = config.filter("a")
    else {
        panic!()
    };
    assert_eq!(a.phase, FilterPhase::Connect);
    assert_eq!(a.conditions.len(), 3);
    assert_eq!(
        a.decision,
        FilterDecision::Disconnect(SmtpReply {
            code: 421,
            text: "4.7.0 go away".into()
        })
    );
    assert_eq!(
        config.filter("c").unwrap().kind,
        FilterKind::Proc("rspamd".into())
    );
    assert_eq!(
        config.proc("rspamd").unwrap().exec.chroot.as_deref(),
        Some("/var/empty")
    );
    assert_eq!(
        config.filter("e").unwrap().kind,
        FilterKind::Chain(vec!["a".into(), "b".into(), "c".into(), "d".into()])
    );
}

#[test]
fn greylist_filters() {
    let plain = parse_ok("filter plain greylist\nfilter both chain { plain }\n");
    assert_eq!(
        plain.filter("plain").unwrap().kind,
        FilterKind::Greylist(GreylistSettings::default())
    );
    let defaults = GreylistSettings::default();
    assert_eq!(
        (
            defaults.delay,
            defaults.retry_window,
            defaults.pass_lifetime
        ),
        (
            Duration::from_secs(300),
            Duration::from_secs(4 * 3600),
            Duration::from_secs(36 * 86_400)
        )
    );
    assert_eq!((defaults.ipv4_mask, defaults.ipv6_mask), (24, 64));
    assert!(plain.to_string().contains(
        "filter plain greylist delay 5m retry-window 4h pass-lifetime 36d ipv4-mask 24 \
         ipv6-mask 64\n"
    ));
    let tuned = parse_ok(
        "table nets { 192.0.2.0/24 }\n\
         filter tuned greylist bypass <nets> ipv6-mask 56 delay 2m retry-window 1d \
         pass-lifetime 60d ipv4-mask 28\n",
    );
    assert_eq!(
        tuned.filter("tuned").unwrap().kind,
        FilterKind::Greylist(GreylistSettings {
            delay: Duration::from_secs(120),
            retry_window: Duration::from_secs(86_400),
            pass_lifetime: Duration::from_secs(60 * 86_400),
            ipv4_mask: 28,
            ipv6_mask: 56,
            bypass: Some("nets".into()),
        })
    );
}

#[test]
fn greylist_errors() {
    assert!(matches!(
        first_error("filter g greylist delay 1h retry-window 30m"),
        ErrorKind::InvalidValue { what: "delay", .. }
    ));
    assert!(matches!(
        first_error("filter g greylist ipv4-mask 25 ipv4-mask 24"),
        ErrorKind::Repeated(_)
    ));
    assert!(matches!(
        first_error("filter g greylist bypass <nowhere>"),
        ErrorKind::Undefined { .. }
    ));
    assert!(matches!(
        first_error("filter g greylist\nfilter h greylist"),
        ErrorKind::NotAllowed { .. }
    ));
    assert_eq!(
        first_error("filter g greylist pass-lifetme 1d"),
        ErrorKind::UnknownKeyword {
            found: "pass-lifetme".into(),
            suggestion: Some("pass-lifetime".into())
        }
    );
}

#[test]
fn filter_errors() {
    assert!(matches!(
        first_error("filter a phase connect match helo <t> junk"),
        ErrorKind::ConditionNotInPhase { .. }
    ));
    assert_eq!(
        first_error("filter a phase commit match rdns junk"),
        ErrorKind::JunkAtCommit
    );
    assert!(matches!(
        first_error("filter a phase connect match rdns reject \"250 ok\""),
        ErrorKind::InvalidReply(_)
    ));
    assert!(matches!(
        first_error("filter a phase connect match junk"),
        ErrorKind::Unexpected { .. }
    ));
    assert_eq!(
        first_error("filter a proc-exec x\nfilter b chain { a }\nfilter c chain { b }"),
        ErrorKind::NestedChain("b".into())
    );
    assert_eq!(
        first_error("filter a proc-exec x\nfilter c chain { a, a }"),
        ErrorKind::DuplicateChainMember("a".into())
    );
    assert!(matches!(
        first_error("proc p \"x\"\nfilter a proc p\nfilter b proc p\nfilter c chain { a, b }"),
        ErrorKind::DuplicateChainProc { .. }
    ));
    assert!(matches!(
        first_error("filter a proc nope"),
        ErrorKind::Undefined { .. }
    ));
}

#[test]
fn global_settings() {
    let config = parse_ok(
        "smtp max-message-size 10M\nsmtp limit max-mails 10 max-rcpt 20\nsmtp sub-addr-delim \"-\"\n\
         smtp ciphers \"HIGH\"\nqueue ttl 36h\nqueue compression\nqueue encryption -\n\
         srs key a\nsrs key backup b\nsrs ttl 50h\nbounce warn-interval 1h, 2h, 3h, 4h\n\
         mta max-deferred 5\nmta limit for domain example.org inet4 max-conn-per-host 2 session-mail-max 10\n\
         scheduler limit max-inflight 100 max-schedule 3\nadmd mx.example.org\n",
    );
    assert_eq!(config.smtp.max_message_size, 10 << 20);
    assert_eq!(
        (
            config.smtp.max_mails,
            config.smtp.max_rcpt,
            config.smtp.sub_addr_delim
        ),
        (10, 20, '-')
    );
    assert_eq!(config.queue.ttl, Duration::from_secs(36 * 3_600));
    assert_eq!(config.queue.encryption, Some(QueueEncryption::Stdin));
    assert_eq!(config.srs.ttl_days, 2);
    assert_eq!(config.bounce.warn_intervals.len(), 4);
    let limits = &config.mta.limits[0];
    assert_eq!(limits.domain.as_deref(), Some("example.org"));
    assert_eq!(
        limits.values,
        [
            (MtaLimit::MaxConnPerHost, 2),
            (MtaLimit::SessionMailMax, 10)
        ]
    );
    assert_eq!(
        config.scheduler.values,
        [
            (SchedulerLimit::MaxInflight, 100),
            (SchedulerLimit::MaxSchedule, 3)
        ]
    );
    assert_eq!(config.admd.as_deref(), Some("mx.example.org"));

    assert!(matches!(
        first_error("queue ttl 1d\nqueue ttl 2d"),
        ErrorKind::AlreadySet { .. }
    ));
    assert!(matches!(
        first_error("srs ttl 23h"),
        ErrorKind::InvalidValue { .. }
    ));
    assert!(matches!(
        first_error("bounce warn-interval 1h, 2h, 3h, 4h, 5h"),
        ErrorKind::TooMany { max: 4, .. }
    ));
    assert!(matches!(
        first_error("smtp sub-addr-delim \"@\""),
        ErrorKind::InvalidValue { .. }
    ));
    assert!(matches!(
        first_error("smtp max-message-size 3X"),
        ErrorKind::InvalidValue { .. }
    ));
    assert!(matches!(
        first_error("mta limit max-con-per-host 2"),
        ErrorKind::UnknownKeyword { .. }
    ));
}

#[test]
fn obsolete_grammar_is_named() {
    assert_eq!(
        first_error("accept from any for domain example.org deliver to mbox"),
        ErrorKind::ObsoleteGrammar
    );
    assert_eq!(first_error("reject from any"), ErrorKind::ObsoleteGrammar);
}

#[test]
fn unknown_keywords_suggest_the_closest() {
    assert_eq!(
        errors("listen lisen on lo\n"),
        "test.conf:1:8: unknown keyword \"lisen\", did you mean \"listen\"?\nlisten lisen on lo\n       ^\n"
    );
    assert_eq!(
        first_error("lsiten on lo"),
        ErrorKind::UnknownKeyword {
            found: "lsiten".into(),
            suggestion: Some("listen".into())
        }
    );
}

#[test]
fn several_errors_are_reported_in_source_order() {
    let errors = parse(
        "f",
        "listen on lo prot 25\n\
         match for local action nowhere\n\
         table t { a\n\
         action \"x\" mbox\n\
         queue ttl forever\n",
        &ParseOptions::default(),
    )
    .unwrap_err();
    let lines: Vec<u32> = errors.errors().iter().map(|e| e.line).collect();
    assert_eq!(lines, [1, 2, 3, 5]);
}
