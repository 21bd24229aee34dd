//! Why an acquire, a try-acquire or a capacity change did not happen.

use conc_core::Cause;

/// Why an async or blocking acquire ended without permits.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AcquireError {
    /// More permits than the semaphore's capacity: the acquire fails at
    /// once instead of waiting for a growth that may never come (Go's
    /// `Acquire` would block until its context ends, tokio's would wait).
    /// A request that big is almost always a sizing bug, and failing names
    /// it; a caller that does mean to wait for growth grows the capacity
    /// first. Also what a waiter gets when
    /// [`set_capacity`](super::Semaphore::set_capacity) or a
    /// [`forget`](super::Permit::forget) lowers the capacity below its
    /// request.
    #[error("{requested} permits exceed the capacity of {capacity}")]
    TooLarge {
        /// Permits asked for.
        requested: usize,
        /// The capacity when the request was refused.
        capacity: usize,
    },
    /// The semaphore was [closed](super::Semaphore::close) before the
    /// permits were granted.
    #[error("the semaphore is closed")]
    Closed,
    /// The token passed to an `..._until` acquire was cancelled first; the
    /// waiter left the queue and nothing it was granted is kept.
    #[error("acquire cancelled: {0}")]
    Cancelled(Cause),
    /// Already `max_waiters` waiting: rejected at once to shed load.
    #[error("too many waiters (at most {max})")]
    TooManyWaiters {
        /// The configured `max_waiters`.
        max: usize,
    },
}

/// Why [`try_acquire`](super::Semaphore::try_acquire) returned no permits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TryAcquireError {
    /// Not enough free permits now, or earlier waiters are queued (a
    /// try-acquire never jumps the queue).
    #[error("no permits available")]
    NoPermits,
    /// More permits than the semaphore's capacity: no retry can succeed.
    #[error("{requested} permits exceed the capacity of {capacity}")]
    TooLarge {
        /// Permits asked for.
        requested: usize,
        /// The semaphore's capacity.
        capacity: usize,
    },
    /// The semaphore is closed.
    #[error("the semaphore is closed")]
    Closed,
}

/// A capacity larger than [`Semaphore::MAX_PERMITS`](super::Semaphore::MAX_PERMITS).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a capacity of {requested} permits exceeds the maximum of {max}")]
pub struct CapacityError {
    /// The capacity that was asked for (saturated at `usize::MAX` when the
    /// sum itself overflowed).
    pub requested: usize,
    /// [`Semaphore::MAX_PERMITS`](super::Semaphore::MAX_PERMITS).
    pub max: usize,
}
