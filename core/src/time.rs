//! Time as a value.
//!
//! The core never reads a clock: every call that depends on time takes a [`Time`] supplied by
//! the shell (system time in the daemon, simulated time in the simulator). Time passed to one
//! machine must not go backwards; a machine treats an earlier value as "no time has passed".

use std::fmt;
use std::ops::{Add, Sub};
use std::time::Duration;

/// A point in time: wall-clock milliseconds since the Unix epoch, as supplied by the shell.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(u64);

impl Time {
    /// The Unix epoch itself; convenient for tests.
    pub const ZERO: Time = Time(0);

    /// A time from milliseconds since the Unix epoch.
    #[must_use]
    pub const fn from_millis(ms: u64) -> Time {
        Time(ms)
    }

    /// A time from whole seconds since the Unix epoch.
    #[must_use]
    pub const fn from_secs(secs: u64) -> Time {
        Time(secs.saturating_mul(1000))
    }

    /// Milliseconds since the Unix epoch.
    #[must_use]
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// Whole seconds since the Unix epoch.
    #[must_use]
    pub const fn as_secs(self) -> u64 {
        self.0 / 1000
    }

    /// The time elapsed since `earlier`, or zero if `earlier` is later than `self`.
    #[must_use]
    pub fn saturating_since(self, earlier: Time) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Time {
    type Output = Time;
    fn add(self, rhs: Duration) -> Time {
        let ms = u64::try_from(rhs.as_millis()).unwrap_or(u64::MAX);
        Time(self.0.saturating_add(ms))
    }
}

impl Sub<Duration> for Time {
    type Output = Time;
    fn sub(self, rhs: Duration) -> Time {
        let ms = u64::try_from(rhs.as_millis()).unwrap_or(u64::MAX);
        Time(self.0.saturating_sub(ms))
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}", self.0 / 1000, self.0 % 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Time::from_secs(10);
        assert_eq!((t + Duration::from_millis(1500)).as_millis(), 11_500);
        assert_eq!((t - Duration::from_secs(20)), Time::ZERO);
        assert_eq!(Time::ZERO.saturating_since(t), Duration::ZERO);
        assert_eq!(
            t.saturating_since(Time::from_secs(4)),
            Duration::from_secs(6)
        );
        assert_eq!(
            Time::from_millis(u64::MAX) + Duration::from_secs(1),
            Time::from_millis(u64::MAX)
        );
        assert_eq!(Time::from_millis(12_345).to_string(), "12.345");
    }
}
