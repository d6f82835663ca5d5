//! Deliberate bugs for the simulator's own tests.
//!
//! The simulator proves that its invariants have teeth by switching one of these on and
//! checking that a bounded sweep of seeds catches it. They exist only when the crate is built
//! with the `sim-bugs` feature (which only the simulator's tests enable), and even then each
//! is off unless switched on for the current thread with [`with`]; without the feature
//! [`active`] is a constant `false` and the code paths disappear.

/// A deliberate bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Bug {
    /// The queue acknowledges a message without syncing it to disk.
    AckBeforeSync,
    /// A recipient that fails temporarily is dropped from the queue.
    LoseEnvelopeOn4xx,
    /// DATA unstuffing keeps a stuffed dot that arrives as the last byte of a read.
    DotUnstuffChunkBoundary,
    /// A temporary failure is retried a second later instead of on the backoff schedule.
    RetryWithoutBackoff,
    /// A failed message from the null sender is bounced to its recipient.
    BounceToNullSender,
}

impl Bug {
    /// Every bug.
    pub const ALL: [Bug; 5] = [
        Bug::AckBeforeSync,
        Bug::LoseEnvelopeOn4xx,
        Bug::DotUnstuffChunkBoundary,
        Bug::RetryWithoutBackoff,
        Bug::BounceToNullSender,
    ];

    /// A short name (`ack-before-sync`, …).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Bug::AckBeforeSync => "ack-before-sync",
            Bug::LoseEnvelopeOn4xx => "lose-envelope-on-4xx",
            Bug::DotUnstuffChunkBoundary => "dot-unstuff-chunk-boundary",
            Bug::RetryWithoutBackoff => "retry-without-backoff",
            Bug::BounceToNullSender => "bounce-to-null-sender",
        }
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

#[cfg(feature = "sim-bugs")]
std::thread_local! {
    static ACTIVE: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// True when `bug` is switched on for the current thread (never without `sim-bugs`).
#[inline]
#[must_use]
pub fn active(bug: Bug) -> bool {
    #[cfg(feature = "sim-bugs")]
    {
        ACTIVE.with(|a| a.get() & bug.bit() != 0)
    }
    #[cfg(not(feature = "sim-bugs"))]
    {
        let _ = bug.bit();
        false
    }
}

/// Whether deliberate bugs can be switched on in this build.
#[must_use]
pub const fn available() -> bool {
    cfg!(feature = "sim-bugs")
}

/// Runs `f` with `bugs` switched on for the current thread (a no-op switch without
/// `sim-bugs`).
pub fn with<T>(bugs: &[Bug], f: impl FnOnce() -> T) -> T {
    #[cfg(feature = "sim-bugs")]
    {
        let bits = bugs.iter().fold(0, |acc, b| acc | b.bit());
        let old = ACTIVE.with(|a| a.replace(bits));
        struct Restore(u32);
        impl Drop for Restore {
            fn drop(&mut self) {
                let old = self.0;
                ACTIVE.with(|a| a.set(old));
            }
        }
        let _restore = Restore(old);
        f()
    }
    #[cfg(not(feature = "sim-bugs"))]
    {
        let _ = bugs;
        f()
    }
}
