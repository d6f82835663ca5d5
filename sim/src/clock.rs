//! Simulated wall clocks: the simulation's elapsed time from a fixed epoch, plus a per-host
//! offset that a fault can change (a clock jump). Never reads the machine's clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use petrel_core::Time;
use petrel_daemon::clock::Clock;

/// The simulation's epoch: 2025-01-01T00:00:00Z, in milliseconds since the Unix epoch.
pub const EPOCH_MS: u64 = 1_735_689_600_000;

/// Time elapsed in the simulation (zero outside one).
#[must_use]
pub fn sim_elapsed() -> Duration {
    turmoil::sim_elapsed().unwrap_or_default()
}

/// A host's wall clock. Clones share the offset.
#[derive(Clone, Debug, Default)]
pub struct SimClock {
    offset_ms: Arc<AtomicI64>,
}

impl SimClock {
    /// A clock reading the simulation's time.
    #[must_use]
    pub fn new() -> SimClock {
        SimClock::default()
    }

    /// Moves the clock by `delta_ms` (negative: backwards).
    pub fn jump(&self, delta_ms: i64) {
        self.offset_ms.fetch_add(delta_ms, Ordering::Relaxed);
    }

    /// The current offset from the simulation's time, in milliseconds.
    #[must_use]
    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }

    /// What the clock reads when the simulation's elapsed time is `elapsed`.
    #[must_use]
    pub fn at(&self, elapsed: Duration) -> Time {
        let base = EPOCH_MS as i64 + elapsed.as_millis() as i64 + self.offset_ms();
        Time::from_millis(base.max(0) as u64)
    }
}

impl Clock for SimClock {
    fn now(&self) -> Time {
        self.at(sim_elapsed())
    }
}
