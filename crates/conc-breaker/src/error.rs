//! Errors: bad settings, rejected calls, failed calls.

use std::time::{Duration, Instant};

/// A breaker setting that cannot be used, reported by
/// [`BreakerBuilder::build`](crate::BreakerBuilder::build).
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
pub enum BuildError {
    /// A count window of 0 calls, or a time window of 0 buckets.
    #[error("the window must hold at least one call or bucket")]
    ZeroWindow,
    /// A window larger than the breaker supports.
    #[error("{setting} of {requested} exceeds the supported maximum of {max}")]
    TooLarge {
        /// Which setting.
        setting: &'static str,
        /// The value asked for.
        requested: u64,
        /// The largest value supported.
        max: u64,
    },
    /// A rate threshold outside `0.0..=100.0` percent (or NaN).
    #[error("a rate threshold must be a percentage in 0..=100, got {0}")]
    ThresholdOutOfRange(f64),
    /// Half-open with no trial call would never close again.
    #[error("half-open trials must be at least 1")]
    ZeroHalfOpenTrials,
    /// A consecutive-failures rule of 0 would trip with no failure.
    #[error("consecutive failures must be at least 1")]
    ZeroConsecutiveFailures,
    /// A rate rule's minimum number of calls of 0.
    #[error("minimum calls must be at least 1")]
    ZeroMinimumCalls,
    /// A rate rule that needs more calls than the count window holds could
    /// never trip.
    #[error("minimum calls ({minimum_calls}) exceed the count window ({window})")]
    MinimumCallsExceedWindow {
        /// The rule's minimum number of calls.
        minimum_calls: u32,
        /// The count window's size.
        window: u32,
    },
    /// A registry with room for no breaker.
    #[error("max_keys must be at least 1")]
    ZeroMaxKeys,
    /// A duration that must be longer than zero is zero.
    #[error("{0} must be longer than zero")]
    ZeroDuration(&'static str),
    /// An exponential backoff whose first open duration exceeds its cap.
    #[error("backoff starts at {initial:?}, above its cap {max:?}")]
    BackoffAboveCap {
        /// The first open duration.
        initial: Duration,
        /// The cap.
        max: Duration,
    },
}

/// Why the breaker did not let a call through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    /// The breaker is open.
    #[error("circuit breaker is open")]
    Open {
        /// When it will next let a trial call through (by its clock);
        /// `None` when it was forced open and only a person can close it.
        retry_at: Option<Instant>,
    },
    /// The breaker is half-open and every trial call is taken.
    #[error("circuit breaker is half-open and all trial calls are taken")]
    HalfOpenFull,
}

impl Rejected {
    /// How long after `now` a trial call will be allowed (for a
    /// `Retry-After` header), if the breaker knows.
    pub fn retry_after(&self, now: Instant) -> Option<Duration> {
        match self {
            Rejected::Open { retry_at } => retry_at.map(|at| at.saturating_duration_since(now)),
            Rejected::HalfOpenFull => None,
        }
    }
}

/// Why [`Breaker::call`](crate::Breaker::call) returned no value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BreakerError<E> {
    /// Rejected: the breaker is open. The call did not run.
    #[error("circuit breaker is open")]
    Open {
        /// When the breaker will next let a trial call through (by its
        /// clock); `None` when it was forced open.
        retry_at: Option<Instant>,
    },
    /// Rejected: the breaker is half-open and every trial call is taken.
    /// The call did not run.
    #[error("circuit breaker is half-open and all trial calls are taken")]
    HalfOpenFull,
    /// The call ran past the breaker's call timeout; it was dropped and
    /// recorded as a failure.
    #[error("call timed out after {0:?}")]
    Timeout(Duration),
    /// The call's own error (recorded as the classifier said).
    #[error("call failed: {0}")]
    Inner(E),
}

impl<E> BreakerError<E> {
    /// Whether the breaker rejected the call without running it.
    pub fn is_rejected(&self) -> bool {
        matches!(self, BreakerError::Open { .. } | BreakerError::HalfOpenFull)
    }

    /// The call's own error, if that is what this is.
    pub fn into_inner(self) -> Option<E> {
        match self {
            BreakerError::Inner(error) => Some(error),
            _ => None,
        }
    }
}

impl<E> From<Rejected> for BreakerError<E> {
    fn from(rejected: Rejected) -> Self {
        match rejected {
            Rejected::Open { retry_at } => BreakerError::Open { retry_at },
            Rejected::HalfOpenFull => BreakerError::HalfOpenFull,
        }
    }
}
