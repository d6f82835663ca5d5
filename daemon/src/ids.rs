//! Identifiers for sessions and messages, printed in logs as OpenSMTPD does (16 hex digits).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Hands out identifiers that are unique within the process and unlikely to repeat across
/// restarts: a counter started from the clock and the process id, scrambled so that
/// consecutive ids do not look alike in logs.
#[derive(Debug)]
pub struct IdGenerator {
    next: AtomicU64,
}

impl IdGenerator {
    /// A generator seeded from the clock and the process id.
    #[must_use]
    pub fn new() -> IdGenerator {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let seed = (nanos as u64) ^ (u64::from(std::process::id()) << 32);
        IdGenerator::with_seed(seed)
    }

    /// A generator with a fixed seed, for reproducible runs.
    #[must_use]
    pub fn with_seed(seed: u64) -> IdGenerator {
        IdGenerator {
            next: AtomicU64::new(seed),
        }
    }

    /// The next identifier.
    pub fn next_id(&self) -> u64 {
        mix(self.next.fetch_add(1, Ordering::Relaxed))
    }
}

impl Default for IdGenerator {
    fn default() -> Self {
        IdGenerator::new()
    }
}

/// A bijective scramble (SplitMix64's finaliser): distinct counters give distinct ids.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct() {
        let g = IdGenerator::with_seed(7);
        let ids: std::collections::BTreeSet<u64> = (0..10_000).map(|_| g.next_id()).collect();
        assert_eq!(ids.len(), 10_000);
    }
}
