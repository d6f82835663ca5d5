//! `spf walk` end to end: the hickory-backed resolver against a loopback DNS server answering
//! crafted records (never the machine's resolver).

#[allow(dead_code)]
#[path = "mta_common/dns.rs"]
mod dns;

use std::time::Duration;

use dns::{Answer, DnsServer, a, aaaa, mx, txt};
use hickory_resolver::proto::rr::RData;
use hickory_resolver::proto::rr::rdata::TXT;
use petrel_daemon::mta::resolver::HickoryResolver;
use petrel_daemon::spf::{self, Problem, Via, Walk};

/// A TXT record made of several strings, which SPF joins without spaces.
fn txt_strings(parts: &[&str]) -> RData {
    RData::TXT(TXT::new(parts.iter().map(|s| (*s).to_owned()).collect()))
}

fn records(data: Vec<RData>) -> Answer {
    Answer::Records(data)
}

fn zone() -> Vec<(String, Answer)> {
    let mut zone = vec![
        // Every mechanism form that lists networks.
        (
            "walk.test.",
            records(vec![
                txt("v=spf1 ip4:192.0.2.7 ip6:2001:db8:1::/48 a/24 \
                     a:host.walk.test/28//64 mx include:nested.walk.test \
                     redirect=redir.walk.test"),
                txt("an unrelated TXT record"),
                a("198.51.100.10"),
                mx(10, "mx1.walk.test."),
                mx(20, "mx2.walk.test."),
            ]),
        ),
        (
            "host.walk.test.",
            records(vec![a("203.0.113.77"), aaaa("2001:db8:2::5")]),
        ),
        (
            "mx1.walk.test.",
            records(vec![a("192.0.2.25"), aaaa("2001:db8:3::25")]),
        ),
        ("mx2.walk.test.", records(vec![a("192.0.2.26")])),
        (
            "nested.walk.test.",
            records(vec![txt(
                "v=spf1 include:deeper.walk.test ip4:10.1.0.0/16 ~all",
            )]),
        ),
        // One record split into strings, in the middle of an address.
        (
            "deeper.walk.test.",
            records(vec![txt_strings(&[
                "v=spf1 ip4:10.2.0.0/16 ip6:2001:db8:",
                "4::/64 -all",
            ])]),
        ),
        (
            "redir.walk.test.",
            records(vec![txt("v=spf1 ip4:10.3.0.0/16 -all")]),
        ),
        // Problems: a loop, a SERVFAIL, an NXDOMAIN include, two records.
        (
            "bad.test.",
            records(vec![txt(
                "v=spf1 include:loop1.bad.test include:fail.bad.test \
                 include:gone.bad.test include:two.bad.test ip4:192.0.2.1 -all",
            )]),
        ),
        (
            "loop1.bad.test.",
            records(vec![txt("v=spf1 include:loop2.bad.test ip4:10.9.0.0/16")]),
        ),
        (
            "loop2.bad.test.",
            records(vec![txt("v=spf1 redirect=loop1.bad.test")]),
        ),
        ("fail.bad.test.", Answer::ServFail),
        (
            "two.bad.test.",
            records(vec![
                txt("v=spf1 ip4:10.7.0.0/16"),
                txt("v=spf1 ip4:10.8.0.0/16"),
            ]),
        ),
        ("nospf.test.", records(vec![txt("v=spf10 ip4:10.0.0.1")])),
        (
            "slow.test.",
            records(vec![txt("v=spf1 ip4:192.0.2.1 a:silent.slow.test")]),
        ),
        ("silent.slow.test.", Answer::Silent),
    ];
    // More than ten lookups: twelve `a` terms.
    let terms: String = (1..=12).map(|i| format!(" a:h{i}.many.test")).collect();
    zone.push((
        "many.test.",
        records(vec![txt(&format!("v=spf1{terms} -all"))]),
    ));
    let mut zone: Vec<(String, Answer)> = zone.into_iter().map(|(n, a)| (n.into(), a)).collect();
    for i in 1..=12 {
        zone.push((
            format!("h{i}.many.test."),
            records(vec![a(&format!("10.0.0.{i}"))]),
        ));
    }
    zone
}

async fn start() -> DnsServer {
    let zone = zone();
    DnsServer::start(zone.iter().map(|(n, a)| (n.as_str(), a.clone())).collect()).await
}

async fn walk_with(server: &DnsServer, domain: &str) -> Walk {
    let resolver =
        HickoryResolver::with_nameservers(&[server.addr], Duration::from_millis(500)).unwrap();
    spf::walk(&resolver, domain).await
}

fn lines(walk: &Walk) -> Vec<String> {
    walk.networks.iter().map(ToString::to_string).collect()
}

fn via(domain: &str, term: &str) -> Option<Via> {
    Some(Via {
        domain: domain.into(),
        term: term.into(),
    })
}

#[tokio::test]
async fn nested_includes_redirect_a_mx_and_ip6_over_real_dns() {
    let server = start().await;
    let w = walk_with(&server, "walk.test").await;
    assert_eq!(w.problems, [], "{:#?}", w.problems);
    assert_eq!(
        lines(&w),
        [
            "10.1.0.0/16",
            "10.2.0.0/16",
            "10.3.0.0/16",
            "192.0.2.7/32",
            "192.0.2.25/32",
            "192.0.2.26/32",
            "198.51.100.0/24",
            "203.0.113.64/28",
            "2001:db8:1::/48",
            "2001:db8:2::/64",
            "2001:db8:3::25/128",
            "2001:db8:4::/64",
        ]
    );
    assert_eq!(
        w.table(),
        "10.1.0.0/16\n10.2.0.0/16\n10.3.0.0/16\n192.0.2.7/32\n192.0.2.25/32\n\
         192.0.2.26/32\n198.51.100.0/24\n203.0.113.64/28\n2001:db8:1::/48\n2001:db8:2::/64\n\
         2001:db8:3::25/128\n2001:db8:4::/64\n"
    );
}

#[tokio::test]
async fn loops_servfail_nxdomain_and_two_records_are_reported() {
    let server = start().await;
    let w = walk_with(&server, "bad.test").await;
    assert_eq!(lines(&w), ["10.9.0.0/16", "192.0.2.1/32"]);
    assert_eq!(w.problems.len(), 4, "{:#?}", w.problems);
    assert_eq!(
        w.problems[0],
        Problem::Loop {
            domain: "loop2.bad.test".into(),
            term: "redirect=loop1.bad.test".into(),
            chain: [
                "bad.test",
                "loop1.bad.test",
                "loop2.bad.test",
                "loop1.bad.test"
            ]
            .map(String::from)
            .to_vec(),
        }
    );
    match &w.problems[1] {
        Problem::DnsFailure {
            name,
            record: "TXT",
            via: v,
            ..
        } => {
            assert_eq!(name, "fail.bad.test");
            assert_eq!(*v, via("bad.test", "include:fail.bad.test"));
        }
        other => panic!("not a DNS failure: {other:?}"),
    }
    assert_eq!(
        w.problems[2],
        Problem::NxDomain {
            name: "gone.bad.test".into(),
            record: "TXT",
            via: via("bad.test", "include:gone.bad.test"),
        }
    );
    assert_eq!(
        w.problems[3].to_string(),
        "two.bad.test has 2 SPF records where only one is allowed; none of them was followed \
         (for include:two.bad.test in the SPF record of bad.test)"
    );
}

#[tokio::test]
async fn more_than_ten_lookups_are_reported_and_walked() {
    let server = start().await;
    let w = walk_with(&server, "many.test").await;
    assert_eq!(w.networks.len(), 12);
    assert_eq!(w.networks[11].to_string(), "10.0.0.12/32");
    assert_eq!(
        w.problems,
        [Problem::LookupLimit {
            domain: "many.test".into(),
            term: "a:h11.many.test".into(),
            count: 11,
        }]
    );
}

#[tokio::test]
async fn no_record_a_missing_domain_and_a_timeout() {
    let server = start().await;
    let w = walk_with(&server, "nospf.test").await;
    assert_eq!(
        w.problems,
        [Problem::NoRecord {
            name: "nospf.test".into(),
            via: None
        }]
    );
    let w = walk_with(&server, "absent.test").await;
    assert_eq!(
        w.problems,
        [Problem::NxDomain {
            name: "absent.test".into(),
            record: "TXT",
            via: None
        }]
    );
    // The silent name times out on both its A and AAAA lookups; what was found is kept.
    let w = walk_with(&server, "slow.test").await;
    assert_eq!(lines(&w), ["192.0.2.1/32"]);
    let failed: Vec<&str> = w
        .problems
        .iter()
        .map(|p| match p {
            Problem::DnsFailure {
                name, record, via, ..
            } if name == "silent.slow.test"
                && *via == self::via("slow.test", "a:silent.slow.test") =>
            {
                *record
            }
            other => panic!("unexpected problem: {other}"),
        })
        .collect();
    assert_eq!(failed, ["A", "AAAA"]);
}
