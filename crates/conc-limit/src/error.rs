//! Errors shared by the rate limiters.

use std::time::{Duration, Instant};

use conc_core::Cause;

/// A limiter setting that cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A burst of 0 would admit nothing, ever.
    #[error("burst must be at least 1")]
    ZeroBurst,
    /// A sliding window limit of 0 would admit nothing, ever.
    #[error("limit must be at least 1")]
    ZeroLimit,
    /// A sliding window of zero length measures nothing.
    #[error("window must be longer than zero")]
    ZeroWindow,
    /// A keyed limiter with room for no key.
    #[error("max_keys must be at least 1")]
    ZeroMaxKeys,
    /// A shard count of 0, or not a power of two.
    #[error("shards must be a power of two, got {0}")]
    BadShards(usize),
}

/// Why a check did not admit the events now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// Not now; retry at this instant (by the limiter's clock), when the
    /// events would be admitted if nothing else is admitted meanwhile.
    #[error("rate limited; retry at the given instant")]
    NotUntil(Instant),
    /// More events at once than the limiter can ever admit together.
    #[error("{requested} events exceed the burst of {burst}: never admitted at once")]
    ExceedsBurst {
        /// Events asked for.
        requested: u32,
        /// The most the limiter admits at once.
        burst: u32,
    },
}

impl Denied {
    /// When to retry; `None` if retrying cannot help.
    pub fn retry_at(&self) -> Option<Instant> {
        match self {
            Denied::NotUntil(at) => Some(*at),
            Denied::ExceedsBurst { .. } => None,
        }
    }

    /// How long after `now` to retry (for a `Retry-After` header); `None`
    /// if retrying cannot help.
    pub fn wait_time_from(&self, now: Instant) -> Option<Duration> {
        self.retry_at().map(|at| at.saturating_duration_since(now))
    }
}

/// Why an async or blocking wait for a limiter ended without admission.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WaitError {
    /// More events at once than the limiter ever admits together: waiting
    /// would never end, so it fails at once.
    #[error("{requested} events exceed the burst of {burst}: waiting would never end")]
    ExceedsBurst {
        /// Events asked for.
        requested: u32,
        /// The most the limiter admits at once.
        burst: u32,
    },
    /// The token's deadline comes before the events would be admitted, so
    /// the wait failed at once instead of sleeping to a certain failure.
    ///
    /// A deadline at the very instant they would be admitted passes a
    /// [`TokenBucket`](crate::TokenBucket)'s wait (its tokens are reserved,
    /// as in Go), but fails the waits of limiters that check again when
    /// they wake ([`Gcra`](crate::Gcra), [`SlidingWindow`](crate::SlidingWindow),
    /// [`Keyed`](crate::Keyed)): the deadline would race that check.
    #[error("the deadline passes before the events would be admitted")]
    DeadlineTooSoon {
        /// When the events would have been admitted.
        ready_at: Instant,
        /// The token's deadline.
        deadline: Instant,
    },
    /// The token was cancelled while waiting; what was reserved for the
    /// wait was given back.
    #[error("wait cancelled: {0}")]
    Cancelled(Cause),
    /// Already `max_waiters` waiting: rejected at once to shed load.
    #[error("too many waiters (at most {max})")]
    TooManyWaiters {
        /// The configured `max_waiters`.
        max: usize,
    },
}
