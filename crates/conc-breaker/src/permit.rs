//! [`Permit`]: one admitted call, waiting for its outcome.

use std::fmt;

use crate::state::generation_of;
use crate::{Breaker, State};

/// Leave to make one call, from [`Breaker::try_acquire`]: report how the
/// call went with [`success`](Permit::success),
/// [`failure`](Permit::failure) or [`record`](Permit::record).
///
/// The outcome counts only in the generation the permit was issued in: if
/// the breaker has changed state (or an `interval` has cleared its counts)
/// since, the outcome is ignored, as in gobreaker.
///
/// # Dropping a permit
///
/// A permit dropped without an outcome records nothing, so a call the
/// caller abandoned (a cancelled future, an early return) is never
/// counted as a success by accident, nor as a failure of the downstream.
/// If it was a half-open trial, its place is given back for another trial.
/// A permit dropped while its thread is panicking (the call panicked)
/// records a failure, as gobreaker does for a panicking request.
#[must_use = "a permit records nothing unless its outcome is reported"]
pub struct Permit<'a> {
    breaker: &'a Breaker,
    word: u64,
    /// When the call began (nanoseconds since the breaker's origin), or
    /// [`UNTIMED`] if calls are not timed. A plain word rather than an
    /// `Option` keeps the permit three words, cheap to move.
    started: u64,
}

/// `Permit::started` when calls are not timed.
const UNTIMED: u64 = u64::MAX;

impl<'a> Permit<'a> {
    #[inline]
    pub(crate) fn new(breaker: &'a Breaker, word: u64, started: Option<u64>) -> Permit<'a> {
        Permit { breaker, word, started: started.unwrap_or(UNTIMED) }
    }

    /// Records that the call succeeded (and whether it was slow).
    #[inline]
    pub fn success(self) {
        self.finish(false, false);
    }

    /// Records that the call failed.
    #[inline]
    pub fn failure(self) {
        self.finish(true, false);
    }

    /// Records a failure if `failed`, a success otherwise: for the result of
    /// a classifier.
    #[inline]
    pub fn record(self, failed: bool) {
        self.finish(failed, false);
    }

    /// Records that the call ran past the call timeout (a failure, counted
    /// as a timeout, not as slow).
    pub fn timed_out(self) {
        self.finish(true, true);
    }

    /// Drops the permit without recording an outcome (as dropping it does).
    pub fn ignore(self) {}

    /// The state the permit was issued in: [`State::HalfOpen`] for a trial
    /// call.
    pub fn state(&self) -> State {
        State::of(self.word)
    }

    /// Whether the breaker has changed state since the permit was issued,
    /// so that its outcome will be ignored.
    pub fn is_stale(&self) -> bool {
        generation_of(self.breaker.load()) != generation_of(self.word)
    }

    #[inline]
    pub(crate) fn started(&self) -> Option<u64> {
        (self.started != UNTIMED).then_some(self.started)
    }

    #[inline]
    fn finish(self, failure: bool, timeout: bool) {
        let (breaker, word, started) = (self.breaker, self.word, self.started());
        // Reported: the drop path (which records nothing, or a failure
        // while panicking) must not run.
        std::mem::forget(self);
        breaker.record(word, started, failure, timeout);
    }
}

impl Drop for Permit<'_> {
    #[inline]
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.breaker.record(self.word, self.started(), true, false);
        } else {
            self.breaker.release(self.word);
        }
    }
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("state", &self.state())
            .field("generation", &generation_of(self.word))
            .finish_non_exhaustive()
    }
}
