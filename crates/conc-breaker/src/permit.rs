//! [`Permit`] and [`OwnedPermit`]: one admitted call, waiting for its
//! outcome.

use std::fmt;
use std::sync::Arc;

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

    /// The same permit, holding `breaker` (the one it came from) by `Arc`.
    #[inline]
    pub(crate) fn into_owned(self, breaker: Arc<Breaker>) -> OwnedPermit {
        debug_assert!(std::ptr::eq(self.breaker, &*breaker));
        let (word, started) = (self.word, self.started);
        // Moved, not ended: the drop path must not run.
        std::mem::forget(self);
        OwnedPermit { breaker, word, started, reported: false }
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

/// A [`Permit`] that holds its breaker through an `Arc`, so it is
/// `'static` and can move into a spawned task or a `'static` future (a
/// tower response future); from [`Breaker::try_acquire_owned`].
///
/// Report the outcome as on a [`Permit`]; dropping it behaves the same:
/// without an outcome it records nothing (a half-open trial place is given
/// back), and while its thread is panicking it records a failure.
#[must_use = "a permit records nothing unless its outcome is reported"]
pub struct OwnedPermit {
    breaker: Arc<Breaker>,
    word: u64,
    /// As [`Permit`]'s `started`.
    started: u64,
    /// An outcome was recorded: dropping does nothing more.
    reported: bool,
}

impl OwnedPermit {
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

    /// The breaker the permit came from.
    pub fn breaker(&self) -> &Arc<Breaker> {
        &self.breaker
    }

    #[inline]
    fn started(&self) -> Option<u64> {
        (self.started != UNTIMED).then_some(self.started)
    }

    #[inline]
    fn finish(mut self, failure: bool, timeout: bool) {
        self.reported = true;
        self.breaker.record(self.word, self.started(), failure, timeout);
    }
}

impl Drop for OwnedPermit {
    #[inline]
    fn drop(&mut self) {
        if self.reported {
            return;
        }
        if std::thread::panicking() {
            self.breaker.record(self.word, self.started(), true, false);
        } else {
            self.breaker.release(self.word);
        }
    }
}

impl fmt::Debug for OwnedPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedPermit")
            .field("state", &self.state())
            .field("generation", &generation_of(self.word))
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(conc_loom)))]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use conc_core::{Clock, ManualClock};

    use crate::{Breaker, Rejected, State};

    fn breaker(trials: u32) -> (Arc<Breaker>, ManualClock) {
        let clock = ManualClock::new();
        let breaker = Breaker::builder()
            .consecutive_failures(2)
            .open_duration(Duration::from_secs(1))
            .half_open_trials(trials)
            .clock(clock.clone())
            .build()
            .unwrap();
        (Arc::new(breaker), clock)
    }

    #[test]
    fn owned_permits_record_as_borrowed_ones_do() {
        let (breaker, clock) = breaker(1);
        let permit = breaker.try_acquire_owned().unwrap();
        assert_eq!(permit.state(), State::Closed);
        assert!(Arc::ptr_eq(permit.breaker(), &breaker));
        permit.timed_out();
        assert_eq!((breaker.metrics().timeouts, breaker.metrics().counts.failures), (1, 1));
        breaker.try_acquire_owned().unwrap().success(); // ends the run
        breaker.try_acquire_owned().unwrap().record(true);
        assert_eq!(breaker.state(), State::Closed);
        let stale = breaker.try_acquire_owned().unwrap();
        assert!(!stale.is_stale());
        breaker.try_acquire_owned().unwrap().failure();
        assert_eq!(breaker.state(), State::Open);
        assert!(stale.is_stale());
        assert_eq!(
            breaker.try_acquire_owned().unwrap_err(),
            Rejected::Open { retry_at: Some(clock.now() + Duration::from_secs(1)) }
        );
        stale.success(); // of the closed generation: ignored
        assert_eq!(breaker.state(), State::Open);
    }

    #[test]
    fn a_dropped_owned_permit_records_nothing_and_frees_its_trial() {
        let (breaker, clock) = breaker(1);
        drop(breaker.try_acquire_owned().unwrap());
        breaker.try_acquire_owned().unwrap().ignore();
        assert_eq!(breaker.metrics().counts.calls, 0);

        breaker.try_acquire_owned().unwrap().failure();
        breaker.try_acquire_owned().unwrap().failure();
        clock.advance(Duration::from_secs(1));
        let trial = breaker.try_acquire_owned().unwrap();
        assert_eq!(trial.state(), State::HalfOpen);
        assert_eq!(breaker.try_acquire_owned().unwrap_err(), Rejected::HalfOpenFull);
        drop(trial);
        let trial = breaker.try_acquire_owned().expect("the dropped trial's place is free again");
        // It can move to another thread.
        std::thread::spawn(move || trial.success()).join().unwrap();
        assert_eq!(breaker.state(), State::Closed);
    }

    #[test]
    fn an_owned_permit_dropped_while_panicking_records_a_failure() {
        let (breaker, _clock) = breaker(1);
        for _ in 0..2 {
            let permit = breaker.try_acquire_owned().unwrap();
            let panicked = std::panic::catch_unwind(move || {
                let _permit = permit;
                panic!("the call panicked");
            });
            assert!(panicked.is_err());
        }
        assert_eq!(breaker.state(), State::Open);
        assert_eq!(breaker.metrics().counts.calls, 0, "a new generation began");
    }
}
