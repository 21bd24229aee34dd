//! [`LimitError`]: why a limited service did not answer.

use std::time::{Duration, Instant};

use crate::Denied;
use crate::semaphore::{AcquireError, TryAcquireError};

/// Why a request through [`RateLimit`](super::RateLimit),
/// [`KeyedRateLimit`](super::KeyedRateLimit) or
/// [`ConcurrencyLimit`](super::ConcurrencyLimit) got no response from the
/// inner service: it was shed by the limit, or the inner service failed.
///
/// Every variant but [`Inner`](LimitError::Inner) means the request was
/// rejected without reaching the inner service's response future.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitError<E> {
    /// A rate limiter denied the request; it was shed, not queued. Retrying
    /// after `retry_after` would be admitted if nothing else is admitted
    /// meanwhile (an HTTP `429` with `Retry-After`).
    #[error("rate limited; retry after {retry_after:?}")]
    RateLimited {
        /// How long from the check until the request would be admitted.
        retry_after: Duration,
    },
    /// The concurrency limit had no room: no permit was free in shed mode,
    /// the semaphore's `max_waiters` were already queued, or the semaphore
    /// has a capacity of 0 (an HTTP `503`).
    #[error("concurrency limit reached")]
    Saturated,
    /// The concurrency limit's semaphore was closed.
    #[error("the concurrency limit's semaphore is closed")]
    Closed,
    /// The request's key is new, the keyed limiter holds `max_keys` keys
    /// and none of them is idle (see [`Keyed`](crate::Keyed)).
    #[error("too many rate-limit keys and none idle to evict")]
    TooManyKeys,
    /// The inner service's own error, from `poll_ready` or its response.
    #[error("inner service failed: {0}")]
    Inner(#[source] E),
}

impl<E> LimitError<E> {
    /// Whether the limit shed the request (every variant but
    /// [`Inner`](LimitError::Inner)).
    pub fn is_rejected(&self) -> bool {
        !matches!(self, LimitError::Inner(_))
    }

    /// How long to wait before retrying, for a
    /// [`RateLimited`](LimitError::RateLimited) error.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            LimitError::RateLimited { retry_after } => Some(*retry_after),
            _ => None,
        }
    }

    /// The inner service's error, if that is what this is.
    pub fn into_inner(self) -> Option<E> {
        match self {
            LimitError::Inner(error) => Some(error),
            _ => None,
        }
    }
}

/// A rejection, kept in a response future until it is polled; it carries
/// no inner error type, so the futures need no parameter for one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Reject {
    RateLimited(Duration),
    Saturated,
    Closed,
    TooManyKeys,
}

impl Reject {
    /// A limiter's denial, as of `now` by the limiter's own clock.
    pub(super) fn denied(denied: Denied, now: Instant) -> Reject {
        match denied.wait_time_from(now) {
            Some(retry_after) => Reject::RateLimited(retry_after),
            // A limiter that can never admit one request at once (a custom
            // `Limiter`: the crate's own reject a burst of 0 when built).
            None => Reject::Saturated,
        }
    }

    pub(super) fn into_error<E>(self) -> LimitError<E> {
        match self {
            Reject::RateLimited(retry_after) => LimitError::RateLimited { retry_after },
            Reject::Saturated => LimitError::Saturated,
            Reject::Closed => LimitError::Closed,
            Reject::TooManyKeys => LimitError::TooManyKeys,
        }
    }
}

impl From<TryAcquireError> for Reject {
    fn from(error: TryAcquireError) -> Reject {
        match error {
            TryAcquireError::Closed => Reject::Closed,
            // `TooLarge` for one permit: a semaphore of capacity 0.
            TryAcquireError::NoPermits | TryAcquireError::TooLarge { .. } => Reject::Saturated,
        }
    }
}

impl From<AcquireError> for Reject {
    fn from(error: AcquireError) -> Reject {
        match error {
            AcquireError::Closed => Reject::Closed,
            // `Cancelled` comes only from the `_until` forms, which are not
            // used; `TooLarge` for one permit means a capacity of 0.
            AcquireError::TooManyWaiters { .. } | AcquireError::TooLarge { .. } | AcquireError::Cancelled(_) => {
                Reject::Saturated
            }
        }
    }
}
