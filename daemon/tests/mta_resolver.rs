//! The resolver seam: hickory-resolver against a loopback DNS server (never the machine's
//! resolver), and the static table, answering the same questions the same way.

mod mta_common;

use std::net::IpAddr;
use std::time::Duration;

use mta_common::dns::{Answer, DnsServer, a, aaaa, mx, ptr, txt};
use petrel_core::relay::{DnsError, MxRecord, StaticRecords};
use petrel_daemon::mta::resolver::{HickoryResolver, Resolver, StaticResolver, host_addresses};

fn zone() -> Vec<(&'static str, Answer)> {
    vec![
        (
            "example.test.",
            Answer::Records(vec![
                mx(10, "mx1.example.test."),
                mx(20, "mx2.example.test."),
                txt("v=spf1 mx -all"),
            ]),
        ),
        (
            "mx1.example.test.",
            Answer::Records(vec![a("192.0.2.1"), aaaa("2001:db8::1")]),
        ),
        ("mx2.example.test.", Answer::Records(vec![a("192.0.2.2")])),
        ("nullmx.test.", Answer::Records(vec![mx(0, ".")])),
        (
            "1.2.0.192.in-addr.arpa.",
            Answer::Records(vec![ptr("mx1.example.test.")]),
        ),
        ("broken.test.", Answer::ServFail),
        ("silent.test.", Answer::Silent),
    ]
}

fn table() -> StaticRecords {
    let mut t = StaticRecords::new();
    t.add_mx("example.test", 10, "mx1.example.test")
        .add_mx("example.test", 20, "mx2.example.test")
        .add_txt("example.test", "v=spf1 mx -all")
        .add_ip("mx1.example.test", "192.0.2.1".parse().unwrap())
        .add_ip("mx1.example.test", "2001:db8::1".parse().unwrap())
        .add_ip("mx2.example.test", "192.0.2.2".parse().unwrap())
        .add_mx("nullmx.test", 0, ".")
        .add_ptr("192.0.2.1".parse().unwrap(), "mx1.example.test")
        .fail("broken.test", DnsError::Temporary("SERVFAIL".into()))
        .fail("silent.test", DnsError::Temporary("timeout".into()));
    t
}

/// The same questions to any resolver; the answers both implementations must give.
async fn check(r: &dyn Resolver) {
    assert_eq!(
        r.mx("Example.TEST").await.unwrap(),
        [
            MxRecord::new(10, "mx1.example.test"),
            MxRecord::new(20, "mx2.example.test")
        ]
    );
    assert_eq!(r.mx("nullmx.test.").await.unwrap(), [MxRecord::new(0, ".")]);
    assert_eq!(r.mx("mx1.example.test").await, Err(DnsError::NoData));
    assert_eq!(r.mx("nowhere.test").await, Err(DnsError::NxDomain));
    let addrs = host_addresses(r, "mx1.example.test").await;
    assert_eq!(
        addrs.v4.unwrap(),
        ["192.0.2.1".parse::<std::net::Ipv4Addr>().unwrap()]
    );
    assert_eq!(
        addrs.v6.unwrap(),
        ["2001:db8::1".parse::<std::net::Ipv6Addr>().unwrap()]
    );
    assert_eq!(r.ipv6("mx2.example.test").await, Err(DnsError::NoData));
    let ip: IpAddr = "192.0.2.1".parse().unwrap();
    assert_eq!(r.ptr(ip).await.unwrap(), ["mx1.example.test"]);
    assert_eq!(
        r.ptr("192.0.2.99".parse().unwrap()).await,
        Err(DnsError::NxDomain)
    );
    assert_eq!(r.txt("example.test").await.unwrap(), ["v=spf1 mx -all"]);
    assert!(r.mx("broken.test").await.unwrap_err().is_temporary());
    assert!(r.ipv4("silent.test").await.unwrap_err().is_temporary());
}

#[tokio::test]
async fn hickory_against_a_loopback_server() {
    let server = DnsServer::start(zone()).await;
    let resolver =
        HickoryResolver::with_nameservers(&[server.addr], Duration::from_millis(300)).unwrap();
    check(&resolver).await;
    assert!(server.queries.load(std::sync::atomic::Ordering::SeqCst) > 0);
}

#[tokio::test]
async fn static_table_answers_alike() {
    check(&StaticResolver::new(table())).await;
}

#[tokio::test]
async fn a_dead_nameserver_is_a_temporary_failure() {
    // Bind a socket and drop it: nothing listens on that port any more.
    let addr = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let resolver = HickoryResolver::with_nameservers(&[addr], Duration::from_millis(200)).unwrap();
    assert!(
        resolver
            .mx("example.test")
            .await
            .unwrap_err()
            .is_temporary()
    );
}

/// `petreld -n` reads the `resolver static` file (relative to the configuration's folder) and
/// reports its errors with their line numbers.
#[test]
fn petreld_n_checks_the_static_records_file() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("smtpd.conf");
    std::fs::write(&conf, "resolver static \"records\"\nlisten on lo\n").unwrap();
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_petreld"))
            .arg("-n")
            .arg("-f")
            .arg(&conf)
            .output()
            .unwrap()
    };
    let out = run();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("resolver static"));

    std::fs::write(
        dir.path().join("records"),
        "a.test MX 10 mx.a.test\nmx.a.test A nope\n",
    )
    .unwrap();
    let out = run();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("line 2: invalid address \"nope\""),
        "{stderr}"
    );

    std::fs::write(
        dir.path().join("records"),
        "a.test MX 10 mx.a.test\nmx.a.test A 127.0.0.1:2525\n",
    )
    .unwrap();
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("resolver static records"));
}
