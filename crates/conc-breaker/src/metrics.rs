//! What a breaker reports about itself.

use std::time::Duration;

use crate::State;

/// Outcome counts of the current window, as trip predicates and
/// [`Metrics`] see them (gobreaker's `Counts`).
///
/// Which calls they cover depends on the window: with no sliding window,
/// every call since the breaker entered its current state (or since the
/// last `interval` cleared the counts); with a count or time window, the
/// calls in that window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Counts {
    /// Calls recorded.
    pub calls: u64,
    /// Of those, successes.
    pub successes: u64,
    /// Of those, failures.
    pub failures: u64,
    /// Of those, calls that took at least the slow-call duration (counted
    /// whether they succeeded or failed).
    pub slow_calls: u64,
    /// Failures since the last success.
    pub consecutive_failures: u64,
    /// Successes since the last failure. Tracked only when a
    /// [`trip_when`](crate::BreakerBuilder::trip_when) predicate is set or
    /// the breaker is half-open (counting them costs every success a write
    /// to one shared word); 0 otherwise.
    pub consecutive_successes: u64,
}

impl Counts {
    /// Failures as a percentage of calls; `None` with no calls.
    pub fn failure_rate(&self) -> Option<f64> {
        percent(self.failures, self.calls)
    }

    /// Slow calls as a percentage of calls; `None` with no calls.
    pub fn slow_call_rate(&self) -> Option<f64> {
        percent(self.slow_calls, self.calls)
    }
}

#[expect(clippy::cast_precision_loss, reason = "a rate needs no more than f64's 52 bits of precision")]
pub(crate) fn percent(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 * 100.0 / whole as f64)
}

/// A snapshot of a breaker: [`Breaker::metrics`](crate::Breaker::metrics).
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct Metrics {
    /// The state.
    pub state: State,
    /// How long the breaker has been in this state (by its clock).
    pub time_in_state: Duration,
    /// Counts of the current window.
    pub counts: Counts,
    /// Failures as a percentage of the window's calls, once the window
    /// holds the failure-rate rule's minimum number of calls (or one call,
    /// with no such rule); `None` before (resilience4j reports -1 then).
    pub failure_rate: Option<f64>,
    /// Slow calls as a percentage of the window's calls, with the same
    /// minimum as `failure_rate` (the slow-call rule's).
    pub slow_call_rate: Option<f64>,
    /// Calls that ran past the call timeout in this state (each also
    /// counted as a failure, when in the window).
    pub timeouts: u64,
    /// Calls rejected over the breaker's whole life.
    pub rejected: u64,
}
