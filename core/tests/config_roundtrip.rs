//! Property tests of the normal form: a generated configuration printed and parsed again is the
//! same configuration, and no input, however mangled, makes the parser panic.
//!
//! Generated configurations respect the load-time rules (names defined before use, tables of the
//! right shape, options that exclude each other never together …): the named items come from
//! fixed pools whose contents vary, and a final pass clears the combinations the parser refuses.
//! Values are drawn to stress quoting: reserved words, digits, quotes, backslashes, `$`, `#`,
//! braces, spaces and non-ASCII text.

use std::net::IpAddr;
use std::time::Duration;

use petrel_core::config::*;
use petrel_core::filter::chain::FailurePolicy;
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Values

fn text() -> BoxedStrategy<String> {
    prop_oneof![
        4 => "[a-zA-Z0-9_.:/@%+*-]{1,12}",
        4 => "[ -~]{0,14}",
        1 => "[a-z\u{e9}\u{fc}\u{4e2d} ]{1,6}",
        1 => prop::sample::select(vec![
            "local", "relay", "25", "a\\", "\\\"", "$macro", "# not a comment", "{ x }", "<t>",
            "-", "it's", "\\.example\\.org$", "",
        ])
        .prop_map(str::to_owned),
    ]
    .boxed()
}

fn non_blank() -> impl Strategy<Value = String> {
    text().prop_filter("non-blank", |s| !s.trim().is_empty())
}

fn path() -> impl Strategy<Value = String> {
    "/[a-z0-9/._-]{0,15}"
}

fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (1u64..100).prop_map(|d| Duration::from_secs(d * 86_400)),
        (1u64..100).prop_map(|h| Duration::from_secs(h * 3_600)),
        (1u64..10_000_000).prop_map(Duration::from_secs),
    ]
}

fn host_name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,6}(\\.[a-z]{2,5}){0,2}"
}

/// Regular expressions that compile, for `regex` conditions written in place.
fn regex() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "^a.*$",
        "\\.example\\.org$",
        "^(root|postmaster)@",
        "[0-9]+",
        "x|y",
    ])
    .prop_map(str::to_owned)
}

const LIST_TABLES: &[&str] = &["list0", "local", "file0"];
const MAP_TABLES: &[&str] = &["map0", "file0"];
const REGEX_TABLES: &[&str] = &["rx", "file0"];
const FILTERS: &[&str] = &["b0", "rdns", "b2", "pe", "pp", "gl"];
const ACTIONS: &[&str] = &["a0", "relay", "a-2", "a3", "a4", "a5"];
const PKIS: &[&str] = &["mx.example.org", "*"];

fn pick(pool: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::sample::select(pool).prop_map(str::to_owned)
}

fn matcher(tables: &'static [&'static str]) -> BoxedStrategy<Matcher> {
    prop_oneof![
        text().prop_map(|v| Matcher {
            regex: false,
            lookup: Lookup::Value(v)
        }),
        pick(tables).prop_map(|t| Matcher {
            regex: false,
            lookup: Lookup::Table(t)
        }),
        regex().prop_map(|v| Matcher {
            regex: true,
            lookup: Lookup::Value(v)
        }),
        pick(REGEX_TABLES).prop_map(|t| Matcher {
            regex: true,
            lookup: Lookup::Table(t)
        }),
    ]
    .boxed()
}

fn cond<T: std::fmt::Debug>(test: impl Strategy<Value = T>) -> impl Strategy<Value = Cond<T>> {
    (any::<bool>(), test).prop_map(|(negated, test)| Cond { negated, test })
}

fn family() -> impl Strategy<Value = Option<AddressFamily>> {
    prop::option::of(prop_oneof![
        Just(AddressFamily::Inet4),
        Just(AddressFamily::Inet6)
    ])
}

/// A subset of the non-chain filters, in some order, without repeats.
fn chain_members() -> impl Strategy<Value = Vec<String>> {
    Just(FILTERS.iter().map(|f| (*f).to_owned()).collect::<Vec<_>>())
        .prop_shuffle()
        .prop_flat_map(|all| (1..=all.len()).prop_map(move |n| all[..n].to_vec()))
}

fn filter_ref() -> impl Strategy<Value = FilterRef> {
    prop_oneof![
        prop::sample::select(vec!["b0", "rdns", "b2", "pe", "pp", "gl", "ch"])
            .prop_map(|f| FilterRef::Named(f.into())),
        chain_members().prop_map(FilterRef::Chain),
    ]
}

// ---------------------------------------------------------------------------------------------
// Named items (fixed pools, varying contents)

fn tables() -> impl Strategy<Value = Vec<Table>> {
    let table = |name: &str, source: TableSource| Table {
        name: name.into(),
        source,
        span: Span::default(),
    };
    (
        prop::collection::vec(text(), 0..4),
        prop::collection::vec(text(), 0..3),
        prop::collection::vec((text(), text()), 1..4),
        prop_oneof![
            path().prop_map(TableSource::File),
            path().prop_map(TableSource::Db),
            path().prop_map(TableSource::Proc)
        ],
        prop::collection::vec(regex(), 0..3),
    )
        .prop_map(move |(list, local, map, file, rx)| {
            vec![
                table("list0", TableSource::List(list)),
                table("local", TableSource::List(local)),
                table("map0", TableSource::Map(map)),
                table("file0", file),
                table("rx", TableSource::List(rx)),
            ]
        })
}

prop_compose! {
    fn pki(name: &'static str)(cert in text(), key in text(), dhe in prop_oneof![
        Just(Dhe::None), Just(Dhe::Auto), Just(Dhe::Legacy)
    ]) -> Pki {
        Pki { name: name.into(), cert, key, dhe, span: Span::default() }
    }
}

prop_compose! {
    fn proc_exec()(
        command in non_blank(),
        user in prop::option::of(text()),
        group in prop::option::of(text()),
        chroot in prop::option::of(path()),
        open in any::<bool>(),
        timeout in prop::option::of(1u64..100_000),
        protocol in prop::option::of(prop::sample::select(petrel_core::filter::Version::ALL.to_vec())),
    ) -> ProcExec {
        let on_failure = if open { FailurePolicy::Open } else { FailurePolicy::Closed };
        let timeout = timeout.map(std::time::Duration::from_secs);
        ProcExec { command, user, group, chroot, on_failure, timeout, protocol }
    }
}

fn reply() -> impl Strategy<Value = SmtpReply> {
    (400u16..600, non_blank()).prop_map(|(code, text)| SmtpReply { code, text })
}

fn builtin_filter() -> impl Strategy<Value = BuiltinFilter> {
    let phase = prop::sample::select(FilterPhase::ALL.to_vec());
    let check = prop_oneof![
        Just(FilterCheck::Fcrdns),
        prop::option::of(matcher(LIST_TABLES)).prop_map(FilterCheck::Rdns),
        matcher(LIST_TABLES).prop_map(FilterCheck::Src),
        matcher(LIST_TABLES).prop_map(FilterCheck::Helo),
        prop::option::of(matcher(LIST_TABLES)).prop_map(FilterCheck::Auth),
        matcher(LIST_TABLES).prop_map(FilterCheck::MailFrom),
        matcher(LIST_TABLES).prop_map(FilterCheck::RcptTo),
    ];
    let decision = prop_oneof![
        Just(FilterDecision::Junk),
        Just(FilterDecision::Bypass),
        reply().prop_map(FilterDecision::Reject),
        reply().prop_map(FilterDecision::Disconnect),
        text().prop_map(FilterDecision::Rewrite),
        text().prop_map(FilterDecision::Report),
    ];
    (phase, prop::collection::vec(cond(check), 1..4), decision).prop_map(
        |(phase, conditions, decision)| {
            // Only conditions the phase allows, each once; at least one.
            let allowed = phase.allowed_conditions();
            let mut kept: Vec<Cond<FilterCheck>> = Vec::new();
            for c in conditions {
                let keyword = c.test.keyword();
                if allowed.contains(&keyword) && !kept.iter().any(|k| k.test.keyword() == keyword) {
                    kept.push(c);
                }
            }
            if kept.is_empty() {
                kept.push(Cond {
                    negated: true,
                    test: FilterCheck::Fcrdns,
                });
            }
            let decision = match decision {
                FilterDecision::Junk if phase == FilterPhase::Commit => FilterDecision::Bypass,
                other => other,
            };
            BuiltinFilter {
                phase,
                conditions: kept,
                decision,
            }
        },
    )
}

prop_compose! {
    /// Greylisting settings; the delay is kept shorter than the retry window, as the parser
    /// requires.
    fn greylist()(
        (delay, window, pass_lifetime) in (duration(), duration(), duration()),
        ipv4_mask in 0u8..=32,
        ipv6_mask in 0u8..=128,
        bypass in prop::option::of(pick(LIST_TABLES)),
    ) -> GreylistSettings {
        let (delay, retry_window) = if delay < window {
            (delay, window)
        } else if window < delay {
            (window, delay)
        } else {
            (delay, delay + Duration::from_secs(1))
        };
        GreylistSettings { delay, retry_window, pass_lifetime, ipv4_mask, ipv6_mask, bypass }
    }
}

fn filters() -> impl Strategy<Value = (Vec<Proc>, Vec<Filter>)> {
    (
        builtin_filter(),
        builtin_filter(),
        builtin_filter(),
        proc_exec(),
        proc_exec(),
        greylist(),
        chain_members(),
    )
        .prop_map(|(b0, b1, b2, pe, p0, gl, chain)| {
            let filter = |name: &str, kind| Filter {
                name: name.into(),
                kind,
                span: Span::default(),
            };
            let procs = vec![Proc {
                name: "p0".into(),
                exec: p0,
                span: Span::default(),
            }];
            let filters = vec![
                filter("b0", FilterKind::Builtin(b0)),
                filter("rdns", FilterKind::Builtin(b1)),
                filter("b2", FilterKind::Builtin(b2)),
                filter("pe", FilterKind::ProcExec(pe)),
                filter("pp", FilterKind::Proc("p0".into())),
                filter("gl", FilterKind::Greylist(gl)),
                filter("ch", FilterKind::Chain(chain)),
            ];
            (procs, filters)
        })
}

// ---------------------------------------------------------------------------------------------
// Listeners, actions, rules

fn listen_on() -> impl Strategy<Value = ListenOn> {
    prop_oneof![
        Just(ListenOn::Socket),
        Just(ListenOn::All),
        Just(ListenOn::Localhost),
        any::<IpAddr>().prop_map(ListenOn::Address),
        prop::sample::select(vec!["lo0", "egress", "em0", "local", "socket"])
            .prop_map(|i| ListenOn::Interface(i.into())),
    ]
}

fn tls_mode() -> impl Strategy<Value = TlsMode> {
    prop_oneof![
        Just(TlsMode::Off),
        Just(TlsMode::StartTls),
        any::<bool>().prop_map(|verify| TlsMode::StartTlsRequired { verify }),
        any::<bool>().prop_map(|verify| TlsMode::Smtps { verify }),
    ]
}

prop_compose! {
    fn listener()(
        (on, family, port, tls) in (listen_on(), family(), 1u16..=65535, tls_mode()),
        (pki, ca, auth) in (
            prop::collection::vec(pick(PKIS), 0..3),
            prop::option::of(Just("ca1".to_owned())),
            prop::option::of((any::<bool>(), prop::option::of(pick(MAP_TABLES))))
                .prop_map(|a| a.map(|(required, table)| ListenAuth { required, table })),
        ),
        (filter, hostname, hostnames, tag) in (
            prop::option::of(filter_ref()),
            prop::option::of(text()),
            prop::option::of(pick(MAP_TABLES)),
            prop::option::of(text()),
        ),
        (mask_src, received_auth, no_dsn, proxy_v2) in (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()),
        no_rdns in any::<bool>(),
        senders in prop::option::of((pick(MAP_TABLES), any::<bool>())
            .prop_map(|(table, masquerade)| Senders { table, masquerade })),
        (protocols, ciphers) in (prop::option::of(text()), prop::option::of(text())),
    ) -> Listener {
        let mut l = Listener {
            on, family, port: Some(port), tls, pki, ca, auth, filter, hostname, hostnames, tag, mask_src,
            senders, received_auth, no_dsn, no_rdns, proxy_v2, protocols, ciphers, span: Span::default(),
        };
        if !l.tls.is_on() {
            l.auth = None;
            l.pki.clear();
        }
        if l.on == ListenOn::Socket {
            // The socket takes only filter, mask-src, tag and no-dsn.
            l = Listener { filter: l.filter, mask_src: l.mask_src, tag: l.tag, no_dsn: l.no_dsn, ..Listener::new(ListenOn::Socket) };
        }
        l
    }
}

fn local_method() -> impl Strategy<Value = LocalMethod> {
    prop_oneof![
        Just(LocalMethod::Mbox),
        (prop::option::of(text()), any::<bool>())
            .prop_map(|(path, junk)| LocalMethod::Maildir { path, junk }),
        (text(), any::<bool>()).prop_map(|(destination, rcpt_to)| LocalMethod::Lmtp {
            destination,
            rcpt_to
        }),
        text().prop_map(|command| LocalMethod::Mda { command }),
        Just(LocalMethod::ExpandOnly),
        Just(LocalMethod::ForwardOnly),
    ]
}

prop_compose! {
    fn local_delivery()(
        method in local_method(),
        expansion in prop::option::of(prop_oneof![
            pick(MAP_TABLES).prop_map(Expansion::Alias),
            pick(MAP_TABLES).prop_map(Expansion::Virtual),
        ]),
        userbase in prop::option::of(pick(MAP_TABLES)),
        user in prop::option::of(text()),
        wrapper in prop::option::of(Just("w0".to_owned())),
    ) -> LocalDelivery {
        let user = match method {
            LocalMethod::Mbox | LocalMethod::ExpandOnly | LocalMethod::ForwardOnly => None,
            _ => user,
        };
        LocalDelivery { method, expansion, userbase, user, wrapper }
    }
}

fn relay_url() -> impl Strategy<Value = RelayUrl> {
    let scheme = prop::sample::select(vec![
        RelayScheme::Smtp,
        RelayScheme::SmtpTls,
        RelayScheme::SmtpNoTls,
        RelayScheme::Smtps,
        RelayScheme::Lmtp,
    ]);
    let host = prop_oneof![
        host_name().prop_map(RelayHost::Name),
        any::<IpAddr>().prop_map(RelayHost::Address)
    ];
    (
        scheme,
        prop::option::of("[a-z0-9]{1,6}"),
        host,
        1u16..=65535,
    )
        .prop_map(|(scheme, label, host, port)| RelayUrl {
            scheme,
            label,
            host,
            port,
        })
}

/// How a relay picks its next hop: these exclude each other.
#[derive(Debug, Clone)]
enum Route {
    Mx,
    Host(RelayUrl),
    Domain(String),
    Backup(Option<String>),
}

prop_compose! {
    fn relay()(
        route in prop_oneof![
            Just(Route::Mx),
            relay_url().prop_map(Route::Host),
            pick(MAP_TABLES).prop_map(Route::Domain),
            prop::option::of(host_name()).prop_map(Route::Backup),
        ],
        (helo, helo_src, tls, auth) in (
            prop::option::of(text()),
            prop::option::of(pick(MAP_TABLES)),
            prop::option::of(any::<bool>().prop_map(|verify| RelayTls { verify })),
            prop::option::of(pick(MAP_TABLES)),
        ),
        (pki, ca, src) in (
            prop::option::of(pick(PKIS)),
            prop::option::of(Just("ca1".to_owned())),
            prop::option::of(prop_oneof![
                any::<IpAddr>().prop_map(RelaySource::Address),
                pick(LIST_TABLES).prop_map(RelaySource::Table),
            ]),
        ),
        (mail_from, srs, filter) in (prop::option::of(text()), any::<bool>(), prop::option::of(filter_ref())),
        (protocols, ciphers) in (prop::option::of(text()), prop::option::of(text())),
    ) -> Relay {
        let (mut host, mut domain, mut backup) = (None, None, None);
        match route {
            Route::Mx => {}
            Route::Host(url) => host = Some(url),
            Route::Domain(table) => domain = Some(table),
            Route::Backup(mx) => backup = Some(Backup { mx }),
        }
        let auth = if host.is_some() { auth } else { None };
        Relay {
            host, backup, domain, helo, helo_src, tls, auth, pki, ca, src, mail_from, srs, filter,
            protocols, ciphers,
        }
    }
}

fn actions() -> impl Strategy<Value = Vec<Action>> {
    let delivery = prop_oneof![
        local_delivery().boxed().prop_map(Delivery::Local),
        relay().boxed().prop_map(|r| Delivery::Relay(Box::new(r))),
    ];
    prop::collection::vec((delivery, prop::option::of(duration())), ACTIONS.len()).prop_map(
        |actions| {
            ACTIONS
                .iter()
                .zip(actions)
                .map(|(name, (delivery, ttl))| Action {
                    name: (*name).into(),
                    delivery,
                    ttl,
                    span: Span::default(),
                })
                .collect()
        },
    )
}

fn origin() -> impl Strategy<Value = Origin> {
    prop_oneof![
        Just(Origin::Any),
        Just(Origin::Local),
        Just(Origin::Socket),
        matcher(LIST_TABLES).prop_map(Origin::Src),
        prop::option::of(matcher(LIST_TABLES)).prop_map(Origin::Rdns),
    ]
}

fn destination() -> impl Strategy<Value = Destination> {
    prop_oneof![
        Just(Destination::Any),
        Just(Destination::Local),
        matcher(LIST_TABLES).prop_map(Destination::Domain),
    ]
}

prop_compose! {
    fn rule()(
        (from, to) in (cond(origin()), cond(destination())),
        (tag, helo, auth, tls) in (
            prop::option::of(cond(matcher(LIST_TABLES))),
            prop::option::of(cond(matcher(LIST_TABLES))),
            prop::option::of(cond(prop::option::of(matcher(LIST_TABLES)))),
            prop::option::of(cond(Just(()))),
        ),
        (mail_from, rcpt_to) in (
            prop::option::of(cond(matcher(LIST_TABLES))),
            prop::option::of(cond(matcher(LIST_TABLES))),
        ),
        decision in prop_oneof![Just(MatchDecision::Reject), pick(ACTIONS).prop_map(MatchDecision::Action)],
    ) -> MatchRule {
        MatchRule { from, to, tag, helo, auth, tls, mail_from, rcpt_to, decision, span: Span::default() }
    }
}

// ---------------------------------------------------------------------------------------------
// Global settings

prop_compose! {
    fn smtp()(
        max_message_size in any::<u64>(),
        max_mails in any::<u64>(),
        max_rcpt in any::<u64>(),
        sub_addr_delim in any::<char>().prop_filter("printable, not @", |c| {
            !c.is_whitespace() && !c.is_control() && *c != '@'
        }),
        ciphers in text(),
    ) -> SmtpOptions {
        SmtpOptions { max_message_size, max_mails, max_rcpt, sub_addr_delim, ciphers }
    }
}

prop_compose! {
    fn queue()(
        ttl in duration(),
        compression in any::<bool>(),
        encryption in prop::option::of(prop_oneof![
            Just(QueueEncryption::Prompt),
            Just(QueueEncryption::Stdin),
            text().prop_filter("not a keyword of its own", |k| k != "-" && !k.eq_ignore_ascii_case("stdin"))
                .prop_map(QueueEncryption::Key),
        ]),
    ) -> QueueOptions {
        QueueOptions { ttl, compression, encryption }
    }
}

fn mta() -> impl Strategy<Value = MtaOptions> {
    let limits = (
        prop::option::of(host_name()),
        family(),
        prop::collection::vec(
            (prop::sample::select(MtaLimit::ALL.to_vec()), any::<u64>()),
            0..4,
        ),
    )
        .prop_map(|(domain, family, values)| {
            let mut unique: Vec<(MtaLimit, u64)> = Vec::new();
            for (key, value) in values {
                if !unique.iter().any(|(k, _)| *k == key) {
                    unique.push((key, value));
                }
            }
            if family.is_none() && unique.is_empty() {
                unique.push((MtaLimit::MaxConnPerHost, 1));
            }
            MtaLimits {
                domain,
                family,
                values: unique,
                span: Span::default(),
            }
        });
    (any::<u64>(), prop::collection::vec(limits, 0..3)).prop_map(|(max_deferred, limits)| {
        MtaOptions {
            max_deferred,
            limits,
        }
    })
}

fn scheduler() -> impl Strategy<Value = SchedulerLimits> {
    prop::collection::vec(
        (
            prop::sample::select(SchedulerLimit::ALL.to_vec()),
            any::<u64>(),
        ),
        0..5,
    )
    .prop_map(|values| {
        let mut unique: Vec<(SchedulerLimit, u64)> = Vec::new();
        for (key, value) in values {
            if !unique.iter().any(|(k, _)| *k == key) {
                unique.push((key, value));
            }
        }
        SchedulerLimits { values: unique }
    })
}

prop_compose! {
    fn config()(
        tables in tables().boxed(),
        (mx, star) in (pki("mx.example.org"), pki("*")).boxed(),
        ca_cert in text(),
        (procs, filters) in filters().boxed(),
        wrapper in non_blank(),
        listeners in prop::collection::vec(listener().boxed(), 0..5).boxed(),
        actions in actions().boxed(),
        rules in prop::collection::vec(rule().boxed(), 0..6).boxed(),
        (smtp, queue, mta, scheduler) in (smtp(), queue(), mta(), scheduler()).boxed(),
        warn_intervals in prop::collection::vec(duration(), 1..=4),
        (srs_key, backup_key, ttl_days) in (prop::option::of(text()), prop::option::of(text()), 1u32..1000),
        admd in prop::option::of(non_blank()),
    ) -> Config {
        let mut config = Config {
            tables,
            pkis: vec![mx, star],
            cas: vec![Ca { name: "ca1".into(), cert: ca_cert, span: Span::default() }],
            procs,
            filters,
            mda_wrappers: vec![MdaWrapper { name: "w0".into(), command: wrapper, span: Span::default() }],
            listeners,
            actions,
            rules,
            smtp,
            queue,
            bounce: BounceOptions { warn_intervals },
            srs: SrsOptions { key: srs_key, backup_key, ttl_days },
            mta,
            scheduler,
            admd,
            ..Config::default()
        };
        // One socket listener at most; `srs` only with a key.
        let mut socket = false;
        config.listeners.retain(|l| l.on != ListenOn::Socket || !std::mem::replace(&mut socket, true));
        if config.srs.key.is_none() {
            for action in &mut config.actions {
                if let Delivery::Relay(relay) = &mut action.delivery {
                    relay.srs = false;
                }
            }
        }
        config
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn printing_then_parsing_gives_the_same_configuration(config in config()) {
        let printed = config.to_string();
        let parsed = match parse("generated.conf", &printed, &ParseOptions::default()) {
            Ok(parsed) => parsed,
            Err(errors) => panic!("the printed configuration does not parse:\n{errors}\n{printed}"),
        };
        prop_assert_eq!(parsed.without_spans(), config.without_spans(), "printed as:\n{}", printed);
    }

    #[test]
    fn the_parser_never_panics(text in input()) {
        if let Err(errors) = parse("fuzz.conf", &text, &ParseOptions::default()) {
            // Rendering must not panic either, whatever the spans point at.
            let _ = errors.to_string();
        }
    }
}

/// Text made of smtpd.conf fragments and noise, to get past the lexer into the parser.
fn input() -> impl Strategy<Value = String> {
    let fragment = prop_oneof![
        prop::sample::select(vec![
            "listen",
            "on",
            "lo",
            "port",
            "25",
            "tls",
            "action",
            "match",
            "from",
            "for",
            "any",
            "local",
            "relay",
            "host",
            "table",
            "filter",
            "phase",
            "connect",
            "chain",
            "{",
            "}",
            ",",
            "=",
            "!",
            "<t>",
            "\"q\"",
            "'",
            "\"",
            "\\",
            "\n",
            "\\\n",
            "#",
            "$m",
            "m = x\n",
            "regex",
            "\"(\"",
            "include",
            "pki",
            "srs",
            "key",
            "junk",
            "reject",
            "\"550 no\"",
            "smtps",
            "auth",
            "mbox",
            "maildir",
            "t",
            "<",
            ">",
            "\u{e9}",
            "\r\n",
        ])
        .prop_map(str::to_owned),
        "[ -~\n\t]{0,6}",
    ];
    prop::collection::vec(fragment, 0..40).prop_map(|parts| parts.join(" "))
}
