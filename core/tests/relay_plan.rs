//! Property tests of connection plans: deterministic per seed, whatever order the DNS answer
//! came in; MX preference order holds; IPv6 before IPv4 within a host; nothing of ours in it.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use petrel_core::relay::{
    BackupMx, DnsError, HostAddresses, MxOptions, MxRecord, Plan, build_plan, mx_hops,
};
use proptest::prelude::*;

const HOSTS: &[&str] = &["a.test", "b.test", "c.test", "d.test", "e.test", "me.test"];

fn records() -> impl Strategy<Value = Vec<MxRecord>> {
    prop::collection::vec(
        (0u16..4, prop::sample::select(HOSTS)).prop_map(|(p, h)| MxRecord::new(p * 10, h)),
        1..8,
    )
}

fn addresses() -> impl Strategy<Value = HostAddresses> {
    (
        prop::collection::vec(any::<u16>(), 0..3),
        prop::collection::vec(any::<u8>(), 0..3),
    )
        .prop_map(|(v6, v4)| {
            HostAddresses::new(
                v6.into_iter()
                    .map(|n| Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, n))
                    .collect(),
                v4.into_iter()
                    .map(|n| Ipv4Addr::new(192, 0, 2, n))
                    .collect(),
            )
        })
}

fn table() -> impl Strategy<Value = HashMap<String, HostAddresses>> {
    prop::collection::vec(addresses(), HOSTS.len())
        .prop_map(|v| HOSTS.iter().map(|h| (*h).to_owned()).zip(v).collect())
}

fn options(backup: bool) -> MxOptions {
    MxOptions {
        local_names: vec!["ME.test".into()],
        backup: backup.then_some(BackupMx::Ours),
        ..MxOptions::default()
    }
}

fn plan(
    records: &[MxRecord],
    table: &HashMap<String, HostAddresses>,
    backup: bool,
    seed: u64,
) -> Option<Plan> {
    let hops = mx_hops("dest.test", Ok(records.to_vec()), &options(backup), seed).ok()?;
    build_plan(hops, |hop| table.get(&hop.name).cloned()).ok()
}

proptest! {
    #[test]
    fn plans_are_deterministic_per_seed(
        records in records(),
        table in table(),
        backup in any::<bool>(),
        seed in any::<u64>(),
        rotate in 0usize..8,
    ) {
        let first = plan(&records, &table, backup, seed);
        prop_assert_eq!(&first, &plan(&records, &table, backup, seed));
        let mut rotated = records.clone();
        let n = rotated.len();
        rotated.rotate_left(rotate % n);
        prop_assert_eq!(&first, &plan(&rotated, &table, backup, seed), "answer order matters");
    }

    #[test]
    fn preference_order_and_ipv6_first(
        records in records(),
        table in table(),
        backup in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let Some(plan) = plan(&records, &table, backup, seed) else { return Ok(()) };
        let prefs: Vec<u16> = plan.targets.iter().map(|t| t.hop.preference().unwrap()).collect();
        prop_assert!(prefs.windows(2).all(|w| w[0] <= w[1]), "preferences {:?}", prefs);
        for host in HOSTS {
            let families: Vec<bool> = plan
                .targets
                .iter()
                .filter(|t| t.host() == *host)
                .map(|t| t.addr.is_ipv6())
                .collect();
            prop_assert!(
                families.windows(2).all(|w| w[0] || !w[1]),
                "{}: IPv4 before IPv6 in {:?}", host, families
            );
        }
        prop_assert!(plan.targets.iter().all(|t| t.host() != "me.test"));
        if backup && let Some(ours) = records.iter().filter(|r| r.exchange == "me.test").map(|r| r.preference).min() {
            prop_assert!(prefs.iter().all(|p| *p < ours));
        }
    }

    #[test]
    fn every_usable_exchanger_is_in_the_plan(
        records in records(),
        table in table(),
        seed in any::<u64>(),
    ) {
        let Some(plan) = plan(&records, &table, false, seed) else { return Ok(()) };
        for r in &records {
            if r.exchange == "me.test" {
                continue;
            }
            // Every address of every exchanger is tried (once, under the first host naming it).
            let addrs = &table[&r.exchange];
            let ips = addrs.v6.iter().flatten().map(|ip| IpAddr::V6(*ip))
                .chain(addrs.v4.iter().flatten().map(|ip| IpAddr::V4(*ip)));
            for ip in ips {
                prop_assert!(plan.targets.iter().any(|t| t.addr.ip() == ip), "{} missing", ip);
            }
        }
        // No address twice.
        let mut seen: Vec<IpAddr> = plan.targets.iter().map(|t| t.addr.ip()).collect();
        let n = seen.len();
        seen.sort();
        seen.dedup();
        prop_assert_eq!(seen.len(), n);
    }
}

#[test]
fn temporary_failures_are_not_fatal_when_another_host_answers() {
    let records = vec![MxRecord::new(10, "a.test"), MxRecord::new(20, "b.test")];
    let hops = mx_hops("dest.test", Ok(records), &MxOptions::default(), 1).unwrap();
    let plan = build_plan(hops, |hop| {
        Some(if hop.name == "a.test" {
            HostAddresses::failed(DnsError::Temporary("timeout".into()))
        } else {
            HostAddresses::new(vec![], vec![Ipv4Addr::LOCALHOST])
        })
    })
    .unwrap();
    assert_eq!(plan.targets.len(), 1);
    assert!(plan.unresolved[0].1.is_temporary());
}
