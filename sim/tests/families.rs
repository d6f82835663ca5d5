//! A fixed sweep of every scenario family: a few hundred seeds in all, each run judged by
//! every invariant. A failure names the seed and the command that reproduces it.

use petrel_sim::scenarios::{self, FAMILIES};
use petrel_sim::sweep::{Plan, sweep};

fn sweep_family(name: &str, seeds: u64) {
    let family = scenarios::family(name).expect("a known family");
    let summary = sweep(&Plan {
        families: vec![family],
        from: 1,
        to: seeds,
        jobs: 1,
        shard: (0, 1),
        progress: false,
    });
    let mut report = String::new();
    for f in &summary.failures {
        report.push_str(&format!("seed {}:\n", f.seed));
        for v in &f.violations {
            report.push_str(&format!("  {}: {}\n", v.kind, v.detail));
        }
        report.push_str(&format!("  reproduce: {}\n", f.reproduce));
    }
    assert!(summary.passed(), "{name}: failing seeds\n{report}");
    let s = &summary.families[0];
    assert_eq!(s.runs as u64, seeds);
    // Every world has mail to settle: a family whose runs deliver and bounce nothing tests
    // nothing.
    assert!(
        s.delivered + s.bounced > 0,
        "{name}: nothing delivered or bounced"
    );
}

#[test]
fn every_family_is_listed_once() {
    let mut names: Vec<&str> = FAMILIES.iter().map(|f| f.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), FAMILIES.len());
    assert!(FAMILIES.len() >= 13);
}

macro_rules! family_tests {
    ($($test:ident => $name:literal, $seeds:literal;)*) => {
        $(
            #[test]
            fn $test() {
                sweep_family($name, $seeds);
            }
        )*
    };
}

family_tests! {
    retry_backoff => "retry-backoff", 25;
    greylisting => "greylisting", 25;
    dot_escaping => "dot-escaping", 30;
    drop_mid_data => "drop-mid-data", 25;
    partition => "partition", 25;
    crash_restart => "crash-restart", 30;
    dns_failures => "dns-failures", 25;
    slow_peers => "slow-peers", 20;
    expiry => "expiry", 8;
    srs_bounce => "srs-bounce", 20;
    mx_failover => "mx-failover", 20;
    smarthost_failover => "smarthost-failover", 20;
    many_clients => "many-clients", 15;
    clock_jumps => "clock-jumps", 25;
    greylisted_senders => "greylisted-senders", 6;
    filter_chain => "filter-chain", 15;
    filter_faults => "filter-faults", 15;
}
