//! The same seed gives the same run, byte for byte: the traces of two runs (every SMTP
//! transcript, queue event and daemon log line, stamped with simulated time) hash the same.

use petrel_sim::scenarios::{self, FAMILIES};
use petrel_sim::world::{run, trace_hash};

#[test]
fn the_same_seed_gives_the_same_trace() {
    for family in FAMILIES {
        if family.name == "expiry" {
            continue;
        }
        let spec = family.world(7);
        let a = run(&spec, true);
        let b = run(&family.world(7), true);
        assert!(
            a.trace.len() > 20,
            "{}: a trace of {} lines",
            family.name,
            a.trace.len()
        );
        assert_eq!(
            trace_hash(&a.trace),
            trace_hash(&b.trace),
            "{}: traces differ at line {:?}",
            family.name,
            a.trace.iter().zip(&b.trace).position(|(x, y)| x != y)
        );
    }
}

#[test]
fn different_seeds_give_different_worlds() {
    let family = scenarios::family("many-clients").unwrap();
    let a = run(&family.world(1), true);
    let b = run(&family.world(2), true);
    assert_ne!(trace_hash(&a.trace), trace_hash(&b.trace));
}
