//! [`Breaker`]: the state machine, its admission and its recording.
//!
//! **Invariant:** the closed-state fast path takes no lock. Admission is
//! one load of the state word (plus a clock read when an `interval` is
//! set); recording a success writes only the caller's stripe of the
//! totals, and the shared run word only when a success ends a run of
//! failures (and, with a sliding window, the window's words).
//!
//! **Invariant:** every transition happens under the `cold` mutex and
//! publishes its new state word last: it first writes the timing words for
//! the new state and re-tags every counter to the new generation (the
//! sweep). So whoever loads a state word sees that state's deadlines and
//! empty counters, and a transition that lost the race (the word it
//! expected is gone) does nothing.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use event_listener::Event;

use crate::config::{Config, Listener, WindowSpec};
use crate::permit::{OwnedPermit, Permit};
use crate::state::{generation_of, word};
use crate::sync::{AtomicU64, Mutex, MutexGuard, Ordering, lock};
use crate::tagged::{self, Update};
use crate::window::{CountWindow, Outcome, Padded, Runs, TimeWindow, Totals, Window};
use crate::{BreakerBuilder, Counts, Rejected, State, StateChange};

/// Trial calls admitted (low 24 bits) and trial successes (next 24 bits).
pub(crate) const TRIAL_COUNT: u64 = (1 << 24) - 1;
const TRIAL_SUCCESS: u64 = 1 << 24;

/// The cold-path state: only transitions, listener registration and event
/// delivery touch it.
struct Cold {
    /// Trips since the breaker last closed through its half-open state:
    /// the exponent of the open-duration backoff.
    trips: u32,
    /// State changes not yet handed to the listeners, in order.
    events: VecDeque<StateChange>,
    /// Whether some thread is handing events to the listeners right now.
    delivering: bool,
    listeners: Vec<Listener>,
}

/// A circuit breaker: sony/gobreaker's state machine with resilience4j's
/// trip rules and sliding windows, lock-free while closed.
///
/// In [`State::Closed`] calls pass and their outcomes are recorded; when
/// the trip rule holds the breaker opens ([`State::Open`]) and rejects
/// calls for the open duration; then it lets a bounded number of trial
/// calls through ([`State::HalfOpen`]): if they all succeed it closes, at
/// the first failure it opens again (for longer, with
/// [`open_backoff`](BreakerBuilder::open_backoff)).
///
/// Calls go through [`call`](Breaker::call) (async),
/// [`call_blocking`](Breaker::call_blocking), or the two-step
/// [`try_acquire`](Breaker::try_acquire) and [`Permit`]. Each state change
/// begins a new generation: outcomes of calls admitted before it are
/// ignored, so a slow call from before a trip cannot close the breaker or
/// count in a fresh window.
///
/// Time-driven transitions (open to half-open, the `interval`, the
/// half-open wait) happen lazily, when the breaker is next used or asked
/// ([`state`](Breaker::state) included), as gobreaker does: no timer runs
/// in the background.
///
/// Share a breaker through an `Arc` (or a `&`): it is `Send + Sync`;
/// [`Breakers`](crate::Breakers) keeps one per key.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_breaker::{Breaker, BreakerError, State};
/// use conc_core::ManualClock;
///
/// # fn main() -> Result<(), conc_breaker::BuildError> {
/// let clock = ManualClock::new();
/// let breaker = Breaker::builder()
///     .consecutive_failures(3)
///     .open_duration(Duration::from_secs(10))
///     .clock(clock.clone())
///     .build()?;
///
/// for _ in 0..3 {
///     let _ = breaker.call_blocking(|| Err::<(), _>("refused"));
/// }
/// assert_eq!(breaker.state(), State::Open);
/// let Err(BreakerError::Open { .. }) = breaker.call_blocking(|| Ok::<_, &str>(1)) else { panic!() };
///
/// clock.advance(Duration::from_secs(10));
/// assert_eq!(breaker.state(), State::HalfOpen);
/// assert_eq!(breaker.call_blocking(|| Ok::<_, &str>(1)), Ok(1)); // the trial succeeds
/// assert_eq!(breaker.state(), State::Closed);
/// # Ok(())
/// # }
/// ```
pub struct Breaker {
    /// `generation << 3 | state`; see [`crate::state`].
    state: Padded<AtomicU64>,
    runs: Runs,
    /// Tagged trial counts of the half-open state.
    trials: Padded<AtomicU64>,
    totals: Totals,
    window: Window,
    /// Deadlines in nanoseconds since `origin` (the clock's epoch, which
    /// its `now_nanos` counts from), written before the state
    /// word that they belong to is published.
    open_until: AtomicU64,
    half_open_until: AtomicU64,
    interval_until: AtomicU64,
    /// When the current state began.
    since: AtomicU64,
    origin: Instant,
    pub(crate) config: Config,
    /// Calls are timed (slow-call duration or call timeout set).
    measure: bool,
    /// Recording reads the clock (timed calls or a time window).
    record_reads_clock: bool,
    /// Success runs are counted for a predicate.
    track_successes: bool,
    /// A closed-state success only counts a call and ends a failure run
    /// (no window, no timing, no success runs): the short path.
    plain_success: bool,
    /// Serializes transitions; cold path only.
    cold: Mutex<Cold>,
    /// Wakes `ready()` waiters on every transition and freed trial.
    pub(crate) changed: Event,
}

/// `at + wait` in nanoseconds, saturating.
fn later(at: u64, wait: Duration) -> u64 {
    at.saturating_add(u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX))
}

impl Breaker {
    /// A builder with gobreaker's defaults (see [`BreakerBuilder`]).
    pub fn builder() -> BreakerBuilder {
        BreakerBuilder::default()
    }

    /// A breaker with gobreaker's defaults: trips after more than 5
    /// consecutive failures, stays open 60 s, then lets 1 trial through.
    pub fn new() -> Breaker {
        Breaker::from_config(BreakerBuilder::default().validate().unwrap_or_else(|_| unreachable!()))
    }

    pub(crate) fn from_config(config: Config) -> Breaker {
        let origin = config.clock.epoch();
        let now = config.clock.now_nanos();
        let window = match config.window {
            WindowSpec::Generation => Window::Generation,
            WindowSpec::Count(calls) => Window::Count(Box::new(CountWindow::new(calls, 0))),
            WindowSpec::Time { length, buckets } => {
                let bucket = u64::try_from(length.as_nanos() / u128::from(buckets)).unwrap_or(u64::MAX);
                Window::Time(TimeWindow::new(bucket, buckets, 0))
            }
        };
        let measure = config.slow_call_duration.is_some() || config.call_timeout.is_some();
        Breaker {
            state: Padded(AtomicU64::new(word(0, State::Closed))),
            runs: Runs::new(0),
            trials: Padded(AtomicU64::new(tagged::fresh(0))),
            totals: Totals::new(0),
            record_reads_clock: measure || matches!(window, Window::Time(_)),
            window,
            open_until: AtomicU64::new(0),
            half_open_until: AtomicU64::new(u64::MAX),
            interval_until: AtomicU64::new(config.interval.map_or(u64::MAX, |interval| later(now, interval))),
            since: AtomicU64::new(now),
            origin,
            measure,
            track_successes: config.predicate.is_some(),
            plain_success: !measure && config.predicate.is_none() && config.window == WindowSpec::Generation,
            cold: Mutex::new(Cold {
                trips: 0,
                events: VecDeque::new(),
                delivering: false,
                listeners: config.listeners.clone(),
            }),
            config,
            changed: Event::new(),
        }
    }

    #[inline]
    pub(crate) fn now_nanos(&self) -> u64 {
        self.config.clock.now_nanos()
    }

    pub(crate) fn instant_at(&self, nanos: u64) -> Instant {
        let at = Duration::from_nanos(nanos);
        self.origin.checked_add(at).unwrap_or_else(|| self.origin + Duration::from_secs(100 * 365 * 24 * 3600))
    }

    #[inline]
    pub(crate) fn load(&self) -> u64 {
        self.state.load(Ordering::Acquire)
    }

    /// Lets one call through, or says why not: the two-step form for code
    /// that cannot hand the breaker a closure or a future. Report the
    /// call's outcome on the [`Permit`].
    ///
    /// # Errors
    ///
    /// [`Rejected::Open`] (with when a trial will be allowed) while open or
    /// forced open; [`Rejected::HalfOpenFull`] while half-open with every
    /// trial call taken.
    #[inline]
    pub fn try_acquire(&self) -> Result<Permit<'_>, Rejected> {
        loop {
            let word = self.load();
            match State::of(word) {
                State::Closed => {
                    if self.config.interval.is_some() {
                        let now = self.now_nanos();
                        if now >= self.interval_until.load(Ordering::Acquire) {
                            self.transition(word, State::Closed, now);
                            continue;
                        }
                    }
                    return Ok(self.permit(word));
                }
                State::MetricsOnly => return Ok(self.permit(word)),
                State::Disabled => return Ok(Permit::new(self, word, None)),
                State::Open => {
                    let now = self.now_nanos();
                    let until = self.open_until.load(Ordering::Acquire);
                    if now >= until {
                        self.transition(word, State::HalfOpen, now);
                        continue;
                    }
                    self.totals.reject();
                    return Err(Rejected::Open { retry_at: Some(self.instant_at(until)) });
                }
                State::ForcedOpen => {
                    self.totals.reject();
                    return Err(Rejected::Open { retry_at: None });
                }
                State::HalfOpen => {
                    if self.half_open_expired(word) {
                        continue;
                    }
                    let max = self.config.half_open_trials;
                    let admit = |trials: u64| (trials & TRIAL_COUNT < max).then_some(trials + 1);
                    match tagged::update(&self.trials, generation_of(word), admit) {
                        Update::Written(_) => return Ok(self.permit(word)),
                        Update::Declined(_) => {
                            self.totals.reject();
                            return Err(Rejected::HalfOpenFull);
                        }
                        Update::Stale => {}
                    }
                }
            }
        }
    }

    /// [`try_acquire`](Breaker::try_acquire) for a breaker in an `Arc`:
    /// the [`OwnedPermit`] holds a clone of the `Arc`, so it is `'static`
    /// and can move into a spawned task or a `'static` future.
    ///
    /// # Errors
    ///
    /// As [`try_acquire`](Breaker::try_acquire).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use conc_breaker::{Breaker, State};
    ///
    /// let breaker = Arc::new(Breaker::builder().consecutive_failures(1).build()?);
    /// let permit = breaker.try_acquire_owned()?;
    /// // The call runs on another thread, which reports its outcome.
    /// std::thread::spawn(move || permit.failure()).join().unwrap();
    /// assert_eq!(breaker.state(), State::Open);
    /// assert!(breaker.try_acquire_owned().is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn try_acquire_owned(self: &Arc<Self>) -> Result<OwnedPermit, Rejected> {
        self.try_acquire().map(|permit| permit.into_owned(Arc::clone(self)))
    }

    #[inline]
    fn permit(&self, word: u64) -> Permit<'_> {
        Permit::new(self, word, self.measure.then(|| self.now_nanos()))
    }

    /// If the half-open state of `word` has outlasted its maximum wait,
    /// opens the breaker again and says so.
    fn half_open_expired(&self, word: u64) -> bool {
        if self.config.half_open_max_wait.is_none() {
            return false;
        }
        let now = self.now_nanos();
        if now < self.half_open_until.load(Ordering::Acquire) {
            return false;
        }
        self.transition(word, State::Open, now);
        true
    }

    /// Performs the transitions that time alone makes due and returns the
    /// state word after them.
    pub(crate) fn refresh(&self) -> u64 {
        loop {
            let word = self.load();
            let due = match State::of(word) {
                State::Open => {
                    let now = self.now_nanos();
                    (now >= self.open_until.load(Ordering::Acquire)).then_some((State::HalfOpen, now))
                }
                State::HalfOpen if self.config.half_open_max_wait.is_some() => {
                    let now = self.now_nanos();
                    (now >= self.half_open_until.load(Ordering::Acquire)).then_some((State::Open, now))
                }
                State::Closed if self.config.interval.is_some() => {
                    let now = self.now_nanos();
                    (now >= self.interval_until.load(Ordering::Acquire)).then_some((State::Closed, now))
                }
                _ => None,
            };
            match due {
                Some((to, now)) => {
                    self.transition(word, to, now);
                }
                None => return word,
            }
        }
    }

    /// Records the outcome of a call admitted under `word`; `started` is
    /// when it began, if calls are timed.
    #[inline]
    pub(crate) fn record(&self, word: u64, started: Option<u64>, failure: bool, timeout: bool) {
        // A permit of an earlier generation: its outcome is ignored. The
        // tags make this exact; the check only saves the work.
        if self.load() != word {
            return;
        }
        if self.plain_success && !failure && !timeout && State::of(word) == State::Closed {
            // What the general path below does for this case, minus the
            // branches that cannot apply: a success trips nothing here.
            let generation = generation_of(word);
            self.totals.record(generation, Outcome::default());
            self.runs.record(generation, false, false);
            return;
        }
        self.record_outcome(word, started, failure, timeout);
    }

    /// [`record`](Self::record)'s general path.
    fn record_outcome(&self, word: u64, started: Option<u64>, failure: bool, timeout: bool) {
        let generation = generation_of(word);
        let state = State::of(word);
        if !matches!(state, State::Closed | State::MetricsOnly | State::HalfOpen) {
            return;
        }
        let now = if self.record_reads_clock { self.now_nanos() } else { 0 };
        let slow = !timeout
            && match (self.config.slow_call_duration, started) {
                (Some(slow), Some(started)) => now.saturating_sub(started) >= later(0, slow),
                _ => false,
            };
        let outcome = Outcome { failure: failure || timeout, slow, timeout };
        self.totals.record(generation, outcome);
        if state == State::HalfOpen {
            self.runs.record(generation, outcome.failure, true);
            self.record_trial(word, outcome);
            return;
        }
        let Some(failure_run) = self.runs.record(generation, outcome.failure, self.track_successes) else {
            return;
        };
        let window_moved = match &self.window {
            Window::Generation => false,
            Window::Count(window) => {
                if !window.record(generation, outcome) {
                    return;
                }
                true
            }
            Window::Time(window) => {
                window.record(generation, now, outcome);
                false
            }
        };
        // Only a bad outcome can push a rule over its threshold, except
        // that a success can fill a count window up to its minimum.
        let has_rate = self.config.failure_rate.is_some() || self.config.slow_rate.is_some();
        let check = outcome.failure || outcome.slow || (window_moved && has_rate);
        if state == State::Closed && check && self.should_trip(generation, failure_run, outcome.failure, now) {
            let now = if self.record_reads_clock { now } else { self.now_nanos() };
            self.transition(word, State::Open, now);
        }
    }

    fn record_trial(&self, word: u64, outcome: Outcome) {
        let bad = outcome.failure || (outcome.slow && self.config.slow_rate.is_some());
        if bad {
            self.transition(word, State::Open, self.now_nanos());
            return;
        }
        let success = |trials: u64| Some(trials + TRIAL_SUCCESS);
        if let Update::Written(trials) = tagged::update(&self.trials, generation_of(word), success) {
            if trials / TRIAL_SUCCESS >= self.config.half_open_trials {
                self.transition(word, State::Closed, self.now_nanos());
            }
        }
    }

    /// Gives back the trial place of a half-open permit dropped without an
    /// outcome.
    pub(crate) fn release(&self, word: u64) {
        if State::of(word) != State::HalfOpen || self.load() != word {
            return;
        }
        let give_back = |trials: u64| (trials & TRIAL_COUNT > 0).then(|| trials - 1);
        if let Update::Written(_) = tagged::update(&self.trials, generation_of(word), give_back) {
            self.changed.notify(usize::MAX);
        }
    }

    fn should_trip(&self, generation: u64, failure_run: u64, failure: bool, now: u64) -> bool {
        if self.config.consecutive_failures.is_some_and(|limit| failure_run >= limit) {
            return true;
        }
        let rates = self.config.failure_rate.is_some() || self.config.slow_rate.is_some();
        let predicate = self.config.predicate.as_ref().filter(|_| failure);
        if !rates && predicate.is_none() {
            return false;
        }
        let counts = self.counts(generation, now);
        self.config.failure_rate.is_some_and(|rule| rule.holds(counts.failures, counts.calls))
            || self.config.slow_rate.is_some_and(|rule| rule.holds(counts.slow_calls, counts.calls))
            || predicate.is_some_and(|predicate| predicate(&counts))
    }

    /// The counts of `generation`'s window at `now`.
    pub(crate) fn counts(&self, generation: u64, now: u64) -> Counts {
        let (calls, failures, slow_calls) = match &self.window {
            Window::Generation => {
                let tally = self.totals.tally(generation);
                (tally.calls, tally.failures.min(tally.calls), tally.slow.min(tally.calls))
            }
            Window::Count(window) => window.counts(generation),
            Window::Time(window) => window.counts(generation, now),
        };
        let (consecutive_failures, consecutive_successes) = self.runs.read(generation);
        Counts { calls, successes: calls - failures, failures, slow_calls, consecutive_failures, consecutive_successes }
    }

    pub(crate) fn totals(&self) -> &Totals {
        &self.totals
    }

    pub(crate) fn open_until(&self) -> u64 {
        self.open_until.load(Ordering::Acquire)
    }

    pub(crate) fn half_open_until(&self) -> u64 {
        self.half_open_until.load(Ordering::Acquire)
    }

    pub(crate) fn since(&self) -> u64 {
        self.since.load(Ordering::Acquire)
    }

    pub(crate) fn trials_taken(&self, word: u64) -> u64 {
        tagged::read(&self.trials, generation_of(word)) & TRIAL_COUNT
    }

    /// Moves from `expected` to `to` if the state word is still
    /// `expected`; returns whether it did.
    pub(crate) fn transition(&self, expected: u64, to: State, now: u64) -> bool {
        let mut cold = lock(&self.cold);
        let current = self.load();
        if current != expected {
            return false;
        }
        self.switch(&mut cold, current, to, now);
        drop(cold);
        self.after_switch();
        true
    }

    /// Moves to `to` from whatever state the breaker is in (operator
    /// commands); `reset_backoff` starts the open-duration backoff over.
    pub(crate) fn force(&self, to: State, reset_backoff: bool) {
        let now = self.now_nanos();
        let mut cold = lock(&self.cold);
        if reset_backoff {
            cold.trips = 0;
        }
        let current = self.load();
        self.switch(&mut cold, current, to, now);
        drop(cold);
        self.after_switch();
    }

    /// The transition itself; the caller holds the cold lock and has
    /// checked that the state word is `current`.
    fn switch(&self, cold: &mut MutexGuard<'_, Cold>, current: u64, to: State, now: u64) {
        let from = State::of(current);
        let generation = generation_of(current) + 1;
        match to {
            State::Open => {
                let open = self.config.open_duration(cold.trips);
                cold.trips = cold.trips.saturating_add(1);
                self.open_until.store(later(now, open), Ordering::Release);
            }
            State::HalfOpen => {
                let until = self.config.half_open_max_wait.map_or(u64::MAX, |wait| later(now, wait));
                self.half_open_until.store(until, Ordering::Release);
            }
            State::Closed => {
                if from == State::HalfOpen {
                    cold.trips = 0;
                }
                let until = self.config.interval.map_or(u64::MAX, |interval| later(now, interval));
                self.interval_until.store(until, Ordering::Release);
            }
            State::ForcedOpen | State::Disabled | State::MetricsOnly => {}
        }
        self.sweep(generation);
        if from != to {
            self.since.store(now, Ordering::Release);
            cold.events.push_back(StateChange { from, to, at: self.instant_at(now) });
        }
        self.state.store(word(generation, to), Ordering::Release);
    }

    /// Empties every counter for `generation`, before it is published.
    fn sweep(&self, generation: u64) {
        self.trials.store(tagged::fresh(generation), Ordering::Release);
        self.runs.sweep(generation);
        self.totals.sweep(generation);
        match &self.window {
            Window::Generation => {}
            Window::Count(window) => window.sweep(generation),
            Window::Time(window) => window.sweep(generation),
        }
    }

    fn after_switch(&self) {
        self.changed.notify(usize::MAX);
        self.deliver();
    }

    /// Hands queued state changes to the listeners, in order, outside the
    /// lock, from one thread at a time. A listener that changes the state
    /// itself only queues the change; the loop here delivers it next.
    fn deliver(&self) {
        /// Lets the next transition deliver again even if a listener panics.
        struct Delivering<'a>(&'a Mutex<Cold>);
        impl Drop for Delivering<'_> {
            fn drop(&mut self) {
                lock(self.0).delivering = false;
            }
        }

        {
            let mut cold = lock(&self.cold);
            if cold.delivering || cold.events.is_empty() {
                return;
            }
            cold.delivering = true;
        }
        let _delivering = Delivering(&self.cold);
        loop {
            let (change, listeners) = {
                let mut cold = lock(&self.cold);
                let Some(change) = cold.events.pop_front() else { break };
                (change, cold.listeners.clone())
            };
            for listener in &listeners {
                listener(&change);
            }
        }
    }

    pub(crate) fn add_listener(&self, listener: Listener) {
        lock(&self.cold).listeners.push(listener);
    }
}

// A panic cannot leave a breaker half-updated: its state is atomic words,
// and its one lock guards data that is consistent at every step (listeners
// and predicates run outside it). So it is safe to use across
// `catch_unwind`, whatever the closures it holds.
impl std::panic::RefUnwindSafe for Breaker {}
impl std::panic::UnwindSafe for Breaker {}

impl Default for Breaker {
    fn default() -> Self {
        Breaker::new()
    }
}

impl fmt::Debug for Breaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = self.load();
        f.debug_struct("Breaker")
            .field("state", &State::of(word))
            .field("generation", &generation_of(word))
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
