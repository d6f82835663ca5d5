//! The `resolver` directive: its typed form, and that its normal form parses back for any
//! list of nameservers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use petrel_core::config::{ParseOptions, ResolverSource, parse};
use proptest::prelude::*;

fn source(text: &str) -> ResolverSource {
    parse("t.conf", text, &ParseOptions::default())
        .unwrap_or_else(|e| panic!("{e}"))
        .petrel
        .resolver
        .source
}

#[test]
fn default_is_the_system_configuration() {
    assert_eq!(source("listen on lo\n"), ResolverSource::System);
}

#[test]
fn nameserver_forms() {
    let expected: Vec<SocketAddr> = ["127.0.0.1:53", "127.0.0.1:5353", "[::1]:53", "[::1]:5353"]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
    let text = "resolver nameserver 127.0.0.1\n\
                resolver nameserver 127.0.0.1:5353\n\
                resolver nameserver ::1\n\
                resolver nameserver \"[::1]:5353\"\n";
    assert_eq!(source(text), ResolverSource::Nameservers(expected));
}

#[test]
fn static_file_and_macros() {
    let text = "records = \"/etc/petrel/records\"\nresolver static $records\n";
    assert_eq!(
        source(text),
        ResolverSource::Static("/etc/petrel/records".into())
    );
}

fn addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<u32>(), 1u16..)
            .prop_map(|(ip, p)| SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), p)),
        (any::<u128>(), 1u16..)
            .prop_map(|(ip, p)| SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), p)),
    ]
}

proptest! {
    #[test]
    fn normal_form_round_trips(addrs in prop::collection::btree_set(addr(), 1..5)) {
        let addrs: Vec<SocketAddr> = addrs.into_iter().collect();
        let text: String = addrs
            .iter()
            .map(|a| format!("resolver nameserver \"{a}\"\n"))
            .collect();
        let config = parse("t.conf", &text, &ParseOptions::default()).unwrap();
        prop_assert_eq!(&config.petrel.resolver.source, &ResolverSource::Nameservers(addrs));
        let again = parse("normal", &config.to_string(), &ParseOptions::default()).unwrap();
        prop_assert_eq!(again.without_spans(), config.without_spans());
    }
}
