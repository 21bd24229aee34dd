//! Running calls through a breaker.

use std::future::IntoFuture;

use crate::control::race;
use crate::{Breaker, BreakerError};

impl Breaker {
    /// Runs `call` if the breaker lets it through and records its outcome:
    /// an `Err` is a failure, an `Ok` a success.
    ///
    /// With a [`call_timeout`](crate::BreakerBuilder::call_timeout), a
    /// call that has not completed in time is dropped and recorded as a
    /// timeout (a failure). A call that takes at least the
    /// [`slow_call_duration`](crate::BreakerBuilder::slow_call_duration)
    /// is also counted as slow.
    ///
    /// # Errors
    ///
    /// [`BreakerError::Open`] or [`BreakerError::HalfOpenFull`] if the call
    /// was rejected (it is dropped without being polled);
    /// [`BreakerError::Timeout`] if it ran past the call timeout;
    /// [`BreakerError::Inner`] with the call's own error.
    ///
    /// # Cancel safety
    ///
    /// Dropping the returned future drops the call and records nothing (a
    /// half-open trial place is given back): a cancelled call is never
    /// counted as a success. See [`Permit`](crate::Permit).
    pub async fn call<F, T, E>(&self, call: F) -> Result<T, BreakerError<E>>
    where
        F: IntoFuture<Output = Result<T, E>>,
    {
        self.call_with(Result::is_err, call).await
    }

    /// [`call`](Breaker::call) with a classifier: `is_failure` decides from
    /// the call's result whether it counts as a failure, so that, say, a
    /// "not found" or a cancellation the caller asked for does not trip
    /// the breaker. The result is returned as it is either way (`Err`
    /// values as [`BreakerError::Inner`]).
    ///
    /// # Errors
    ///
    /// As [`call`](Breaker::call).
    ///
    /// # Cancel safety
    ///
    /// As [`call`](Breaker::call).
    pub async fn call_with<F, T, E, C>(&self, is_failure: C, call: F) -> Result<T, BreakerError<E>>
    where
        F: IntoFuture<Output = Result<T, E>>,
        C: FnOnce(&Result<T, E>) -> bool,
    {
        let permit = self.try_acquire()?;
        let result = match self.config.call_timeout {
            None => call.await,
            Some(timeout) => match race(call.into_future(), self.config.clock.sleep(timeout)).await {
                Some(result) => result,
                None => {
                    permit.timed_out();
                    return Err(BreakerError::Timeout(timeout));
                }
            },
        };
        permit.record(is_failure(&result));
        result.map_err(BreakerError::Inner)
    }

    /// Runs `call` on this thread if the breaker lets it through and
    /// records its outcome: an `Err` is a failure. A panic in `call` is
    /// recorded as a failure and resumed.
    ///
    /// A blocking call cannot be stopped: one that ran past the call
    /// timeout is recorded as a timeout (a failure), but its result is
    /// still returned.
    ///
    /// # Errors
    ///
    /// [`BreakerError::Open`] or [`BreakerError::HalfOpenFull`] if the call
    /// was rejected (it did not run); [`BreakerError::Inner`] with the
    /// call's own error.
    pub fn call_blocking<F, T, E>(&self, call: F) -> Result<T, BreakerError<E>>
    where
        F: FnOnce() -> Result<T, E>,
    {
        self.call_blocking_with(Result::is_err, call)
    }

    /// [`call_blocking`](Breaker::call_blocking) with a classifier (see
    /// [`call_with`](Breaker::call_with)).
    ///
    /// # Errors
    ///
    /// As [`call_blocking`](Breaker::call_blocking).
    pub fn call_blocking_with<F, T, E, C>(&self, is_failure: C, call: F) -> Result<T, BreakerError<E>>
    where
        F: FnOnce() -> Result<T, E>,
        C: FnOnce(&Result<T, E>) -> bool,
    {
        let permit = self.try_acquire()?;
        let result = call();
        let overran = match (self.config.call_timeout, permit.started()) {
            (Some(timeout), Some(started)) => {
                u128::from(self.now_nanos().saturating_sub(started)) >= timeout.as_nanos()
            }
            _ => false,
        };
        if overran {
            permit.timed_out();
        } else {
            permit.record(is_failure(&result));
        }
        result.map_err(BreakerError::Inner)
    }
}
