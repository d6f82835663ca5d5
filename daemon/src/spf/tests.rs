use petrel_core::relay::StaticRecords;
use petrel_core::rules::Table;

use super::*;
use crate::mta::resolver::StaticResolver;

fn run(records: &str, domain: &str) -> Walk {
    let records = StaticRecords::parse(records).expect("valid records");
    let resolver = StaticResolver::new(records);
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(walk(&resolver, domain))
}

fn lines(walk: &Walk) -> Vec<String> {
    walk.networks.iter().map(ToString::to_string).collect()
}

fn messages(walk: &Walk) -> Vec<String> {
    walk.problems.iter().map(ToString::to_string).collect()
}

#[test]
fn every_mechanism_form_lists_its_networks_sorted_and_deduplicated() {
    let w = run(
        r#"
        example.org       TXT "v=spf1 ip4:192.0.2.7 ip6:2001:db8::/32 a a/24 a:host.example.org/28//64 mx mx:other.example.org//48 ip4:192.0.2.7/32 ip6:2001:DB8::1 include:inc.example.org redirect=red.example.org"
        example.org       A 198.51.100.10
        example.org       MX 10 mx1.example.org
        example.org       MX 20 mx2.example.org
        host.example.org  A 203.0.113.77
        host.example.org  AAAA 2001:db8:2::5
        mx1.example.org   A 192.0.2.25
        mx1.example.org   AAAA 2001:db8:3::25
        mx2.example.org   A 192.0.2.26
        other.example.org MX 5 mx3.example.org
        mx3.example.org   AAAA 2001:db8:4:5::1
        inc.example.org   TXT "v=spf1 ip4:10.0.0.0/8 -all"
        red.example.org   TXT "v=spf1 ip4:10.0.0.1/8 ip4:172.16.0.0/12 ~all"
        "#,
        "Example.ORG.",
    );
    assert_eq!(w.problems, []);
    assert_eq!(
        lines(&w),
        [
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.0.2.7/32",
            "192.0.2.25/32",
            "192.0.2.26/32",
            "198.51.100.0/24",
            "198.51.100.10/32",
            "203.0.113.64/28",
            "2001:db8::/32",
            "2001:db8::1/128",
            "2001:db8:2::/64",
            "2001:db8:3::25/128",
            "2001:db8:4::/48",
        ]
    );
    assert_eq!(w.table().lines().count(), 13);
    assert!(w.table().ends_with("2001:db8:4::/48\n"));
}

#[test]
fn the_output_is_a_netaddr_table() {
    let w = run(
        r#"
        example.org TXT "v=spf1 ip4:192.0.2.0/24 ip4:198.51.100.9 ip6:2001:db8::/32 ip6:2001:db8:ffff::1 -all"
        "#,
        "example.org",
    );
    let table = Table::list("spf", w.table().lines().map(str::to_owned));
    for (ip, inside) in [
        ("192.0.2.200", true),
        ("192.0.3.1", false),
        ("198.51.100.9", true),
        ("198.51.100.10", false),
        ("2001:db8:1::1", true),
        ("2001:db9::1", false),
    ] {
        assert_eq!(table.matches_netaddr(ip.parse().unwrap()), inside, "{ip}");
    }
    for line in w.table().lines() {
        assert_eq!(line.parse::<Cidr>().unwrap().to_string(), line);
    }
}

#[test]
fn only_txt_records_starting_with_v_spf1_count() {
    let w = run(
        r#"
        example.org TXT "google-site-verification=abc"
        example.org TXT "v=spf10 ip4:10.0.0.1"
        example.org TXT "V=SPF1 ip4:192.0.2.1"
        example.org TXT "v=spf1ip4:10.0.0.2"
        "#,
        "example.org",
    );
    assert_eq!(w.problems, []);
    assert_eq!(lines(&w), ["192.0.2.1/32"]);
    assert_eq!(
        run("example.org TXT \"v=spf1\"", "example.org"),
        Walk::default()
    );
}

#[test]
fn missing_several_and_unresolvable_records_are_reported() {
    let records = r#"
        none.example   TXT "some text"
        two.example    TXT "v=spf1 ip4:192.0.2.1"
        two.example    TXT "v=spf1 ip4:192.0.2.2"
        flaky.example  SERVFAIL
        bare.example   A 192.0.2.9
    "#;
    assert_eq!(
        messages(&run(records, "none.example")),
        ["none.example has no SPF record"]
    );
    assert_eq!(
        messages(&run(records, "bare.example")),
        ["bare.example has no SPF record"]
    );
    let w = run(records, "two.example");
    assert!(w.networks.is_empty());
    assert_eq!(
        messages(&w),
        ["two.example has 2 SPF records where only one is allowed; none of them was followed"]
    );
    assert_eq!(
        messages(&run(records, "flaky.example")),
        ["the TXT lookup of flaky.example failed: SERVFAIL (static table)"]
    );
    assert_eq!(
        messages(&run(records, "gone.example")),
        ["gone.example does not exist (NXDOMAIN on its TXT lookup)"]
    );
}

#[test]
fn include_problems_name_the_term_and_the_domain() {
    let w = run(
        r#"
        example.org     TXT "v=spf1 include:gone.example include:flaky.example include:plain.example include:_spf.example.org ip4:192.0.2.1 -all"
        flaky.example   SERVFAIL
        plain.example   A 192.0.2.2
        _spf.example.org TXT "v=spf1 a:nohost.example.org a:empty.example.org mx:nomx.example.org ip4:192.0.2.3"
        empty.example.org TXT "x"
        nomx.example.org A 192.0.2.4
        "#,
        "example.org",
    );
    assert_eq!(lines(&w), ["192.0.2.1/32", "192.0.2.3/32"]);
    assert_eq!(
        messages(&w),
        [
            "gone.example does not exist (NXDOMAIN on its TXT lookup) \
             (for include:gone.example in the SPF record of example.org)",
            "the TXT lookup of flaky.example failed: SERVFAIL (static table) \
             (for include:flaky.example in the SPF record of example.org)",
            "plain.example has no SPF record \
             (for include:plain.example in the SPF record of example.org)",
            "nohost.example.org does not exist (NXDOMAIN on its A lookup) \
             (for a:nohost.example.org in the SPF record of _spf.example.org)",
            "empty.example.org has no A or AAAA records, so a:empty.example.org in the SPF record \
             of _spf.example.org matches no address",
            "nomx.example.org has no MX records, so mx:nomx.example.org in the SPF record of \
             _spf.example.org matches no address",
        ]
    );
}

#[test]
fn loops_are_reported_with_their_chain_and_not_followed_again() {
    let w = run(
        r#"
        a.example TXT "v=spf1 include:b.example ip4:192.0.2.1"
        b.example TXT "v=spf1 ip4:192.0.2.2 redirect=c.example"
        c.example TXT "v=spf1 include:a.example include:c.example ip4:192.0.2.3"
        "#,
        "a.example",
    );
    assert_eq!(lines(&w), ["192.0.2.1/32", "192.0.2.2/32", "192.0.2.3/32"]);
    assert_eq!(
        w.problems,
        [
            Problem::Loop {
                domain: "c.example".into(),
                term: "include:a.example".into(),
                chain: vec![
                    "a.example".into(),
                    "b.example".into(),
                    "c.example".into(),
                    "a.example".into()
                ],
            },
            Problem::Loop {
                domain: "c.example".into(),
                term: "include:c.example".into(),
                chain: vec![
                    "a.example".into(),
                    "b.example".into(),
                    "c.example".into(),
                    "c.example".into()
                ],
            },
        ]
    );
    assert_eq!(
        w.problems[0].to_string(),
        "loop: include:a.example in the SPF record of c.example leads back to a domain already \
         on the way (a.example -> b.example -> c.example -> a.example); not followed again"
    );
}

#[test]
fn a_domain_reached_on_two_branches_is_not_a_loop() {
    let w = run(
        r#"
        top.example   TXT "v=spf1 include:left.example include:right.example -all"
        left.example  TXT "v=spf1 include:shared.example"
        right.example TXT "v=spf1 include:shared.example"
        shared.example TXT "v=spf1 ip4:192.0.2.0/24"
        "#,
        "top.example",
    );
    assert_eq!(w.problems, []);
    assert_eq!(lines(&w), ["192.0.2.0/24"]);
}

#[test]
fn more_than_ten_lookups_is_reported_once_and_the_walk_goes_on() {
    let mut records = String::from("many.example TXT \"v=spf1");
    for i in 1..=12 {
        records.push_str(&format!(" a:h{i}.many.example"));
    }
    records.push_str(" -all\"\n");
    for i in 1..=12 {
        records.push_str(&format!("h{i}.many.example A 10.0.0.{i}\n"));
    }
    let w = run(&records, "many.example");
    assert_eq!(w.networks.len(), 12);
    assert_eq!(
        w.problems,
        [Problem::LookupLimit {
            domain: "many.example".into(),
            term: "a:h11.many.example".into(),
            count: 11,
        }]
    );
    assert_eq!(
        w.problems[0].to_string(),
        "more than 10 DNS lookups: a:h11.many.example in the SPF record of many.example brings \
         the count to 11; receivers stop here with a permanent error, the walk went on"
    );
}

#[test]
fn lookups_of_a_domain_reached_twice_are_counted_twice() {
    // shared's record makes 4 lookups (three `a` and an include). Reached through left it
    // brings the count to 1 + 1 + 4 = 6; through right, to 6 + 1 + 1 + 4 = 12.
    let w = run(
        r#"
        top.example    TXT "v=spf1 include:left.example include:right.example -all"
        left.example   TXT "v=spf1 include:shared.example"
        right.example  TXT "v=spf1 include:shared.example"
        shared.example TXT "v=spf1 a a a include:leaf.example"
        shared.example A 192.0.2.1
        leaf.example   TXT "v=spf1 ip4:192.0.2.2"
        "#,
        "top.example",
    );
    assert_eq!(lines(&w), ["192.0.2.1/32", "192.0.2.2/32"]);
    assert_eq!(
        w.problems,
        [Problem::LookupLimit {
            domain: "right.example".into(),
            term: "include:shared.example".into(),
            count: 12,
        }]
    );
}

#[test]
fn terms_that_name_no_networks_are_reported() {
    let w = run(
        r#"
        example.org TXT "v=spf1 ptr ptr:example.org exists:%{i}.bl.example -ip4:192.0.2.66 ?include:x.example ~a ip4:192.0.2.1 exp=explain.example.org x-custom=1 -all ip4:192.0.2.99 redirect=other.example"
        "#,
        "example.org",
    );
    assert_eq!(lines(&w), ["192.0.2.1/32"]);
    assert_eq!(
        messages(&w),
        [
            "ptr in the SPF record of example.org lists no networks: ptr depends on the client's \
             reverse DNS (and is deprecated)",
            "ptr:example.org in the SPF record of example.org lists no networks: ptr depends on \
             the client's reverse DNS (and is deprecated)",
            "exists:%{i}.bl.example in the SPF record of example.org lists no networks: its \
             domain has macros that depend on the client or the message",
            "-ip4:192.0.2.66 in the SPF record of example.org lists no networks: its qualifier \
             is not pass (+), so it allows nothing",
            "?include:x.example in the SPF record of example.org lists no networks: its qualifier \
             is not pass (+), so it allows nothing",
            "~a in the SPF record of example.org lists no networks: its qualifier is not pass \
             (+), so it allows nothing",
            "exp=explain.example.org in the SPF record of example.org lists no networks: exp= \
             only names the explanation given with a refusal",
            "x-custom=1 in the SPF record of example.org lists no networks: an unknown \
             modifier, which receivers ignore",
            "ip4:192.0.2.99 in the SPF record of example.org lists no networks: it comes after \
             \"all\", so receivers never reach it",
            "redirect=other.example in the SPF record of example.org lists no networks: \
             receivers ignore redirect= in a record with \"all\"",
        ]
    );
}

#[test]
fn plus_all_is_reported_not_listed() {
    let w = run(
        "example.org TXT \"v=spf1 ip4:192.0.2.1 +all\"",
        "example.org",
    );
    assert_eq!(lines(&w), ["192.0.2.1/32"]);
    assert_eq!(
        messages(&w),
        [
            "+all in the SPF record of example.org allows every address \
          (0.0.0.0/0 and ::/0 are not listed)"
        ]
    );
}

#[test]
fn the_current_domain_macro_is_expanded() {
    let w = run(
        r#"
        example.org      TXT "v=spf1 include:_spf.%{d} a:mail.%{D}"
        _spf.example.org TXT "v=spf1 ip4:192.0.2.1"
        mail.example.org A 192.0.2.2
        "#,
        "example.org",
    );
    assert_eq!(w.problems, []);
    assert_eq!(lines(&w), ["192.0.2.1/32", "192.0.2.2/32"]);
}

#[test]
fn syntax_errors_are_reported_and_the_rest_is_walked() {
    let w = run(
        r#"
        example.org TXT "v=spf1 ip4:192.0.2.300 ip4:10.0.0.0/33 ip6:2001:db8::/129 ip6:192.0.2.1 ip4 include include:nodot a:/24 a/24x mx//200 foo:bar all:x ptr/24 include:%{x}.example a:%z.example exists:%{d redirect= redirect=r.example redirect=r2.example exp=a.example exp=b.example include:bad.123 ip4:192.0.2.1"
        r.example   TXT "v=spf1 ip4:192.0.2.2"
        "#,
        "example.org",
    );
    assert_eq!(lines(&w), ["192.0.2.1/32", "192.0.2.2/32"]);
    let syntax: Vec<(String, String)> = w
        .problems
        .iter()
        .filter_map(|p| match p {
            Problem::Syntax { term, reason, .. } => Some((term.clone(), reason.clone())),
            _ => None,
        })
        .collect();
    let expected = [
        ("ip4:192.0.2.300", "\"192.0.2.300\" is not an IPv4 address"),
        ("ip4:10.0.0.0/33", "the prefix length 33 is longer than 32"),
        (
            "ip6:2001:db8::/129",
            "the prefix length 129 is longer than 128",
        ),
        ("ip6:192.0.2.1", "\"192.0.2.1\" is not an IPv6 address"),
        ("ip4", "\"ip4\" needs \":\" and a network"),
        ("include", "\"include\" needs \":\" and a domain"),
        (
            "include:nodot",
            "\"nodot\" is not a domain name: it has no dot",
        ),
        ("a:/24", "\"a\" needs \":\" and a domain"),
        ("a/24x", "unexpected \"/24x\""),
        ("mx//200", "the IPv6 prefix length 200 is longer than 128"),
        ("foo:bar", "unknown mechanism \"foo\""),
        ("all:x", "\"all\" takes no argument"),
        ("ptr/24", "\"ptr\" needs \":\" and a domain"),
        ("include:%{x}.example", "unknown macro \"%{x}\""),
        (
            "a:%z.example",
            "a lone \"%\" in \"%z.example\" (write %% for a percent sign)",
        ),
        ("exists:%{d", "unterminated macro in \"%{d\""),
        ("redirect=", "a domain is needed after \"=\""),
        ("redirect=r2.example", "a second redirect= modifier"),
        ("exp=b.example", "a second exp= modifier"),
        (
            "include:bad.123",
            "\"bad.123\" is not a domain name: its last label is not a top-level label",
        ),
    ];
    assert_eq!(
        syntax,
        expected.map(|(t, r)| (t.to_owned(), r.to_owned())),
        "{:#?}",
        w.problems
    );
    assert_eq!(
        w.problems[0].to_string(),
        "syntax error in the SPF record of example.org: \"ip4:192.0.2.300\": \
         \"192.0.2.300\" is not an IPv4 address"
    );
}

#[test]
fn mx_hosts_beyond_ten_are_reported_and_listed() {
    let mut records = String::from("example.org TXT \"v=spf1 mx/24\"\n");
    for i in 1..=11 {
        records.push_str(&format!("example.org MX {i} mx{i}.example.org\n"));
        records.push_str(&format!("mx{i}.example.org A 10.{i}.0.1\n"));
    }
    let w = run(&records, "example.org");
    assert_eq!(w.networks.len(), 11);
    assert_eq!(w.networks[0].to_string(), "10.1.0.0/24");
    assert_eq!(
        messages(&w),
        [
            "example.org has 11 MX hosts, more than the 10 receivers look up for mx/24 in the SPF \
          record of example.org; all of them were listed"
        ]
    );
}

#[test]
fn null_mx_and_host_failures_are_reported() {
    let w = run(
        r#"
        example.org       TXT "v=spf1 mx mx:other.example.org"
        example.org       MX 0 .
        other.example.org MX 10 flaky.example.org
        other.example.org MX 20 good.example.org
        flaky.example.org SERVFAIL
        good.example.org  AAAA 2001:db8::25
        "#,
        "example.org",
    );
    assert_eq!(lines(&w), ["2001:db8::25/128"]);
    assert_eq!(
        messages(&w),
        [
            "example.org has no MX records, so mx in the SPF record of example.org matches no \
             address",
            "the A lookup of flaky.example.org failed: SERVFAIL (static \
             table) (for mx:other.example.org in the SPF record of example.org)",
            "the AAAA lookup of flaky.example.org failed: SERVFAIL \
             (static table) (for mx:other.example.org in the SPF record of example.org)",
        ]
    );
}

#[test]
fn endless_chains_stop_at_the_depth_limit() {
    let mut records = String::new();
    for i in 0..100 {
        records.push_str(&format!(
            "d{i}.example TXT \"v=spf1 ip4:10.0.{i}.0/24 include:d{}.example\"\n",
            i + 1
        ));
    }
    let w = run(&records, "d0.example");
    // d0 … d50 are walked: the chain holds 51 domains when d50 names d51.
    assert_eq!(w.networks.len(), MAX_DEPTH + 1);
    assert_eq!(
        w.problems.last(),
        Some(&Problem::TooDeep {
            domain: "d50.example".into(),
            term: "include:d51.example".into(),
        })
    );
    // The limit of ten lookups was reported on the way.
    assert!(matches!(
        w.problems[0],
        Problem::LookupLimit { count: 11, .. }
    ));
    assert_eq!(w.problems.len(), 2);
}
