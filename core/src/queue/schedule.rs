//! When to try a delivery again.
//!
//! Like OpenSMTPD's scheduler, the n-th retry of an envelope is due at
//! `created + base × n²`: quick retries at first, then ever further apart. The base is 400 s
//! for relaying (retries at about 7 min, 27 min, 1 h, 1.8 h, 2.8 h, 4 h …, within RFC 5321's
//! advice of at least 30 minutes once the first few have failed) and 10 s for local delivery,
//! whose failures are usually brief (a locked mailbox, a full disk being cleaned).

use std::time::Duration;

use crate::time::Time;

/// How retries are spaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Base interval for relayed (remote) deliveries.
    pub relay_base: Duration,
    /// Base interval for local deliveries.
    pub local_base: Duration,
    /// Longest wait between two attempts (`None`: no cap).
    pub max_interval: Option<Duration>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            relay_base: Duration::from_secs(400),
            local_base: Duration::from_secs(10),
            max_interval: None,
        }
    }
}

impl RetryPolicy {
    /// When an envelope created at `created`, which has failed `attempts` times, is next due,
    /// as seen at `now`: the first point of the schedule strictly after `now` (so a host that
    /// was down for a while does not replay every missed retry at once).
    #[must_use]
    pub fn next_try(&self, created: Time, attempts: u32, now: Time, local: bool) -> Time {
        let base = if local {
            self.local_base
        } else {
            self.relay_base
        };
        let mut step = u64::from(attempts.max(1));
        let base_ms = u64::try_from(base.as_millis()).unwrap_or(u64::MAX).max(1);
        loop {
            let offset = base_ms.saturating_mul(step.saturating_mul(step));
            let due = Time::from_millis(created.as_millis().saturating_add(offset));
            if due > now {
                return match self.max_interval {
                    Some(cap) if due.saturating_since(now) > cap => now + cap,
                    _ => due,
                };
            }
            if offset == u64::MAX {
                return due;
            }
            step += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quadratic_schedule() {
        let p = RetryPolicy::default();
        let t0 = Time::from_secs(1_000_000);
        assert_eq!(p.next_try(t0, 1, t0, false), t0 + Duration::from_secs(400));
        assert_eq!(
            p.next_try(t0, 2, t0 + Duration::from_secs(400), false),
            t0 + Duration::from_secs(1600)
        );
        assert_eq!(
            p.next_try(t0, 3, t0 + Duration::from_secs(1600), false),
            t0 + Duration::from_secs(3600)
        );
        assert_eq!(p.next_try(t0, 1, t0, true), t0 + Duration::from_secs(10));
    }

    #[test]
    fn skips_missed_points_and_caps() {
        let p = RetryPolicy::default();
        let t0 = Time::from_secs(1_000_000);
        // Down for two hours: the next try is the first point after now, not a backlog.
        let now = t0 + Duration::from_secs(7200);
        assert_eq!(
            p.next_try(t0, 1, now, false),
            t0 + Duration::from_secs(400 * 25)
        );
        let capped = RetryPolicy {
            max_interval: Some(Duration::from_secs(600)),
            ..p
        };
        let later = t0 + Duration::from_secs(100_000);
        assert_eq!(
            capped.next_try(t0, 20, later, false),
            later + Duration::from_secs(600)
        );
    }
}
