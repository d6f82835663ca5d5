//! Added latency on a link slows every segment down without stopping time: a Petrel host whose
//! connections to a remote MX take longer than its connect timeout gives up on each at that
//! timeout exactly, and the mail still arrives once the link is quick again.

use std::collections::BTreeMap;
use std::time::Duration;

use petrel_sim::scenarios;
use petrel_sim::world::{Fault, run};

/// The connect timeout of smtp-out.
const CONNECT_TIMEOUT: f64 = 30.0;

#[test]
fn connections_over_a_slow_link_time_out_on_time() {
    let family = scenarios::family("slow-peers").expect("a known family");
    // The first world with a link slow enough that no connection can open (a SYN and its
    // answer take longer than the timeout).
    let spec = (1..200)
        .map(|seed| family.world(seed))
        .find(|spec| {
            spec.expect.must_settle
                && spec.faults.iter().any(|(_, f)| {
                    matches!(f, Fault::Latency(_, _, Some(l)) if *l > Duration::from_secs(16))
                })
        })
        .expect("a world with a slow link");
    let result = run(&spec, true);
    assert!(result.passed(), "{:?}", result.verdict.violations);
    let mut connecting = BTreeMap::new();
    let mut timed_out = 0;
    for line in &result.trace {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(at) = words.first().and_then(|w| w.parse::<f64>().ok()) else {
            continue;
        };
        let Some(i) = words.iter().position(|w| *w == "mta") else {
            continue;
        };
        let id = words[i - 1];
        if words.get(i + 1) == Some(&"connecting") {
            connecting.insert(id.to_owned(), at);
        } else if line.contains("connect: connection timed out") {
            let start = connecting[id];
            let waited = at - start;
            assert!(
                (CONNECT_TIMEOUT..=CONNECT_TIMEOUT + 2.0 * spec.tick.as_secs_f64())
                    .contains(&waited),
                "seed {}: connection {id} gave up after {waited} s",
                spec.seed
            );
            timed_out += 1;
        }
    }
    assert!(
        timed_out > 0,
        "seed {}: no connection timed out over the slow link",
        spec.seed
    );
    assert!(result.verdict.stats.delivered > 0);
}
