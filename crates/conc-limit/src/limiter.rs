//! [`Limiter`]: what every rate limiter here can do, so [`Keyed`](crate::Keyed)
//! can hold one per key.

use std::time::Instant;

use crate::Denied;

/// A rate limiter that reads time from its clock and can also be driven
/// with explicit instants.
///
/// Implemented by [`Gcra`](crate::Gcra), [`TokenBucket`](crate::TokenBucket)
/// and [`SlidingWindow`](crate::SlidingWindow); [`Keyed`](crate::Keyed)
/// keeps one per key, made from a template with [`fresh_at`](Limiter::fresh_at).
pub trait Limiter: Send + Sync + 'static {
    /// The current instant by this limiter's clock.
    fn now(&self) -> Instant;

    /// A limiter with the same settings and clock, in the state of one
    /// that has admitted nothing, as of `now`.
    fn fresh_at(&self, now: Instant) -> Self
    where
        Self: Sized;

    /// Admits `n` events at `now` or says why not (and until when).
    ///
    /// # Errors
    ///
    /// [`Denied::NotUntil`] with the earliest instant they would be
    /// admitted, or [`Denied::ExceedsBurst`] if they never can be at once.
    fn check_n_at(&self, now: Instant, n: u32) -> Result<(), Denied>;

    /// Admits `n` events now, by this limiter's clock: `check_n_at(now(),
    /// n)`, or a faster reading of the same clock where the limiter has one
    /// ([`Gcra`](crate::Gcra) reads
    /// [`Clock::now_nanos`](conc_core::Clock::now_nanos)).
    ///
    /// # Errors
    ///
    /// As [`check_n_at`](Limiter::check_n_at).
    #[inline]
    fn check_n(&self, n: u32) -> Result<(), Denied> {
        self.check_n_at(self.now(), n)
    }

    /// Whether, at `now`, this limiter would decide everything exactly as a
    /// [`fresh`](Limiter::fresh_at) one would: its state carries no
    /// information, so a keyed store may drop it.
    fn is_idle_at(&self, now: Instant) -> bool;
}
