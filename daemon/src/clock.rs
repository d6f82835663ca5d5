//! The wall clock. The core never reads a clock: the shell reads it here and passes the value in.

use std::time::{SystemTime, UNIX_EPOCH};

use petrel_core::Time;

/// A source of wall-clock time, swappable so that a simulation can drive simulated time.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> Time;
}

/// The system's real-time clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Time {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Time::from_millis(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
    }
}

/// Tokio's clock mapped onto wall-clock time from a fixed starting point. Under tokio's paused
/// test time or the simulator's virtual time it advances only when they do, which makes runs
/// reproducible.
#[derive(Clone, Copy, Debug)]
pub struct TokioClock {
    base: Time,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// A clock reading `base` now.
    #[must_use]
    pub fn starting_at(base: Time) -> TokioClock {
        TokioClock {
            base,
            start: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Time {
        self.base + self.start.elapsed()
    }
}
