//! The builder and the settings it validates.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use conc_core::Clock;

use crate::clock::BreakerClock;

use crate::window::{MAX_BUCKETS, MAX_COUNT_WINDOW};
use crate::{Breaker, BuildError, Counts, StateChange};

/// A state-change listener.
pub(crate) type Listener = Arc<dyn Fn(&StateChange) + Send + Sync>;
/// A caller's trip predicate.
pub(crate) type Predicate = Arc<dyn Fn(&Counts) -> bool + Send + Sync>;

/// The largest number of half-open trial calls.
pub(crate) const MAX_TRIALS: u64 = (1 << 24) - 1;

/// gobreaker's default trip rule: more than 5 consecutive failures.
const DEFAULT_CONSECUTIVE_FAILURES: u32 = 6;
/// gobreaker's default `Timeout`.
const DEFAULT_OPEN: Duration = Duration::from_secs(60);
/// resilience4j's default `slidingWindowSize`, used when a rate rule is set
/// without a window.
const DEFAULT_COUNT_WINDOW: u32 = 100;

/// A rate rule: trip when `percent` of the window's calls are bad, once the
/// window holds `minimum_calls`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct RateRule {
    pub(crate) percent: f64,
    pub(crate) minimum_calls: u64,
}

impl RateRule {
    pub(crate) fn holds(&self, bad: u64, calls: u64) -> bool {
        calls >= self.minimum_calls && crate::metrics::percent(bad, calls).is_some_and(|rate| rate >= self.percent)
    }
}

/// The window settings as given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WindowSpec {
    Generation,
    Count(u32),
    Time { length: Duration, buckets: u32 },
}

/// Validated settings, shared by every breaker a registry makes.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) consecutive_failures: Option<u64>,
    pub(crate) failure_rate: Option<RateRule>,
    pub(crate) slow_rate: Option<RateRule>,
    pub(crate) predicate: Option<Predicate>,
    pub(crate) window: WindowSpec,
    pub(crate) interval: Option<Duration>,
    pub(crate) open_initial: Duration,
    pub(crate) open_max: Duration,
    pub(crate) half_open_trials: u64,
    pub(crate) half_open_max_wait: Option<Duration>,
    pub(crate) call_timeout: Option<Duration>,
    pub(crate) slow_call_duration: Option<Duration>,
    pub(crate) clock: BreakerClock,
    pub(crate) listeners: Vec<Listener>,
}

impl Config {
    /// How long to stay open after the `trips`-th consecutive trip
    /// (0 for the first): doubling from the initial duration up to the cap.
    pub(crate) fn open_duration(&self, trips: u32) -> Duration {
        let factor = 1u32.checked_shl(trips.min(31)).unwrap_or(u32::MAX);
        self.open_initial.checked_mul(factor).map_or(self.open_max, |grown| grown.min(self.open_max))
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("consecutive_failures", &self.consecutive_failures)
            .field("failure_rate", &self.failure_rate)
            .field("slow_rate", &self.slow_rate)
            .field("predicate", &self.predicate.is_some())
            .field("window", &self.window)
            .field("interval", &self.interval)
            .field("open_initial", &self.open_initial)
            .field("open_max", &self.open_max)
            .field("half_open_trials", &self.half_open_trials)
            .field("half_open_max_wait", &self.half_open_max_wait)
            .field("call_timeout", &self.call_timeout)
            .field("slow_call_duration", &self.slow_call_duration)
            .field("clock", &self.clock)
            .field("listeners", &self.listeners.len())
            .finish()
    }
}

/// Settings for a [`Breaker`] (or a [`Breakers`](crate::Breakers)
/// registry): made by [`Breaker::builder`], checked by
/// [`build`](BreakerBuilder::build).
///
/// Defaults are gobreaker's: trip after more than 5 consecutive failures,
/// stay open 60 s, then let 1 trial call through; counts are cleared only
/// by transitions. Each rule added is checked besides the others: the
/// breaker trips when any holds.
///
/// The builder is `Clone`, so one configuration can make many breakers.
#[derive(Clone)]
#[must_use = "a builder does nothing until built"]
pub struct BreakerBuilder {
    consecutive_failures: Option<u32>,
    failure_rate: Option<(f64, u32)>,
    slow_rate: Option<(f64, u32)>,
    predicate: Option<Predicate>,
    window: WindowSpec,
    interval: Option<Duration>,
    open_initial: Duration,
    open_max: Duration,
    half_open_trials: u32,
    half_open_max_wait: Option<Duration>,
    call_timeout: Option<Duration>,
    slow_call_duration: Option<Duration>,
    clock: BreakerClock,
    listeners: Vec<Listener>,
}

impl Default for BreakerBuilder {
    fn default() -> Self {
        BreakerBuilder {
            consecutive_failures: None,
            failure_rate: None,
            slow_rate: None,
            predicate: None,
            window: WindowSpec::Generation,
            interval: None,
            open_initial: DEFAULT_OPEN,
            open_max: DEFAULT_OPEN,
            half_open_trials: 1,
            half_open_max_wait: None,
            call_timeout: None,
            slow_call_duration: None,
            clock: BreakerClock::System,
            listeners: Vec::new(),
        }
    }
}

impl fmt::Debug for BreakerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerBuilder")
            .field("consecutive_failures", &self.consecutive_failures)
            .field("failure_rate", &self.failure_rate)
            .field("slow_rate", &self.slow_rate)
            .field("predicate", &self.predicate.is_some())
            .field("window", &self.window)
            .field("interval", &self.interval)
            .field("open_initial", &self.open_initial)
            .field("open_max", &self.open_max)
            .field("half_open_trials", &self.half_open_trials)
            .field("half_open_max_wait", &self.half_open_max_wait)
            .field("call_timeout", &self.call_timeout)
            .field("slow_call_duration", &self.slow_call_duration)
            .finish_non_exhaustive()
    }
}

impl BreakerBuilder {
    /// Trips after `failures` failures in a row (gobreaker's default rule,
    /// with 6). Successes end a run.
    pub fn consecutive_failures(mut self, failures: u32) -> Self {
        self.consecutive_failures = Some(failures);
        self
    }

    /// Trips when at least `percent` (0..=100) of the window's calls
    /// failed, once the window holds `minimum_calls` calls
    /// (resilience4j's `failureRateThreshold` and
    /// `minimumNumberOfCalls`). Without a window set, a count window of
    /// the last 100 calls is used.
    ///
    /// Rates are judged when an outcome is recorded: after every call with
    /// a count window; with a time window, after each failure or slow call
    /// only (summing its buckets on every success would cost the hot path),
    /// so a success that brings the window up to its minimum number of
    /// calls does not trip it; the next failure does.
    pub fn failure_rate(mut self, percent: f64, minimum_calls: u32) -> Self {
        self.failure_rate = Some((percent, minimum_calls));
        self
    }

    /// Trips when at least `percent` (0..=100) of the window's calls took
    /// `slow_call_duration` or longer, once the window holds
    /// `minimum_calls` calls (resilience4j's `slowCallRateThreshold`).
    /// Sets the slow-call duration as
    /// [`slow_call_duration`](Self::slow_call_duration) does.
    pub fn slow_call_rate(mut self, percent: f64, slow_call_duration: Duration, minimum_calls: u32) -> Self {
        self.slow_rate = Some((percent, minimum_calls));
        self.slow_call_duration = Some(slow_call_duration);
        self
    }

    /// Counts calls that take `duration` or longer as slow (in
    /// [`Counts::slow_calls`]), whether or not a slow-call rule trips on
    /// them. Measuring costs two clock reads a call.
    pub fn slow_call_duration(mut self, duration: Duration) -> Self {
        self.slow_call_duration = Some(duration);
        self
    }

    /// Trips when `predicate` holds for the window's counts, checked after
    /// each failure (gobreaker's `ReadyToTrip`).
    pub fn trip_when(mut self, predicate: impl Fn(&Counts) -> bool + Send + Sync + 'static) -> Self {
        self.predicate = Some(Arc::new(predicate));
        self
    }

    /// Judges rates over the last `calls` calls (resilience4j's
    /// `COUNT_BASED` sliding window).
    pub fn count_window(mut self, calls: u32) -> Self {
        self.window = WindowSpec::Count(calls);
        self
    }

    /// Judges rates over the calls of the last `length` of time, kept in
    /// `buckets` buckets of `length / buckets` each (resilience4j's
    /// `TIME_BASED` window is `length` seconds in one-second buckets). The
    /// window slides a bucket at a time.
    pub fn time_window(mut self, length: Duration, buckets: u32) -> Self {
        self.window = WindowSpec::Time { length, buckets };
        self
    }

    /// Clears the closed state's counts every `interval` (gobreaker's
    /// `Interval`): a new generation begins and outcomes of calls started
    /// before it are ignored.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = Some(interval);
        self
    }

    /// Stays open for `duration` after each trip (gobreaker's `Timeout`;
    /// 60 s by default). Zero lets a trial through at once.
    pub fn open_duration(mut self, duration: Duration) -> Self {
        self.open_initial = duration;
        self.open_max = duration;
        self
    }

    /// Stays open `initial` after a trip, doubling each time a trial fails
    /// and the breaker opens again, up to `max`; closing resets it.
    pub fn open_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.open_initial = initial;
        self.open_max = max;
        self
    }

    /// Lets `trials` calls through in the half-open state (gobreaker's
    /// `MaxRequests`; 1 by default). The breaker closes when all of them
    /// succeed and opens again at the first failure.
    pub fn half_open_trials(mut self, trials: u32) -> Self {
        self.half_open_trials = trials;
        self
    }

    /// Opens again if the half-open state lasts `wait` without being
    /// decided, e.g. because trial calls never report back (resilience4j's
    /// `maxWaitDurationInHalfOpenState`). Unset, trials that are dropped
    /// without an outcome give their place back instead.
    pub fn half_open_max_wait(mut self, wait: Duration) -> Self {
        self.half_open_max_wait = Some(wait);
        self
    }

    /// Ends [`Breaker::call`] after `timeout` with
    /// [`BreakerError::Timeout`](crate::BreakerError::Timeout), recording
    /// a failure. A timed-out call is not counted as slow: the two are
    /// distinct outcomes.
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = Some(timeout);
        self
    }

    /// Reads time from `clock` (a [`ManualClock`](conc_core::ManualClock)
    /// in tests) instead of the system clock.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = BreakerClock::of(clock);
        self
    }

    /// Calls `listener` after every change of state (gobreaker's
    /// `OnStateChange`), in order; see [`Breaker::on_state_change`].
    pub fn on_state_change(mut self, listener: impl Fn(&StateChange) + Send + Sync + 'static) -> Self {
        self.listeners.push(Arc::new(listener));
        self
    }

    /// Checks the settings and makes the breaker.
    ///
    /// # Errors
    ///
    /// A [`BuildError`] naming the first setting that cannot be used: a
    /// window of 0 (or too large), a threshold outside 0..=100, 0
    /// half-open trials, a minimum number of calls of 0 or larger than the
    /// count window, 0 consecutive failures, a zero interval, time window,
    /// slow-call duration, call timeout or half-open wait, a backoff that
    /// starts above its cap.
    pub fn build(self) -> Result<Breaker, BuildError> {
        Ok(Breaker::from_config(self.validate()?))
    }

    pub(crate) fn validate(self) -> Result<Config, BuildError> {
        fn positive(duration: Option<Duration>, setting: &'static str) -> Result<(), BuildError> {
            match duration {
                Some(duration) if duration.is_zero() => Err(BuildError::ZeroDuration(setting)),
                _ => Ok(()),
            }
        }
        fn rate(rule: Option<(f64, u32)>) -> Result<Option<RateRule>, BuildError> {
            let Some((percent, minimum_calls)) = rule else { return Ok(None) };
            if !(0.0..=100.0).contains(&percent) {
                return Err(BuildError::ThresholdOutOfRange(percent));
            }
            if minimum_calls == 0 {
                return Err(BuildError::ZeroMinimumCalls);
            }
            Ok(Some(RateRule { percent, minimum_calls: u64::from(minimum_calls) }))
        }

        let failure_rate = rate(self.failure_rate)?;
        let slow_rate = rate(self.slow_rate)?;
        let has_rate = failure_rate.is_some() || slow_rate.is_some();
        let consecutive_failures = match self.consecutive_failures {
            Some(0) => return Err(BuildError::ZeroConsecutiveFailures),
            Some(failures) => Some(u64::from(failures)),
            None if has_rate || self.predicate.is_some() => None,
            None => Some(u64::from(DEFAULT_CONSECUTIVE_FAILURES)),
        };
        let window = match self.window {
            WindowSpec::Generation if has_rate => WindowSpec::Count(DEFAULT_COUNT_WINDOW),
            window => window,
        };
        match window {
            WindowSpec::Generation => {}
            WindowSpec::Count(0) | WindowSpec::Time { buckets: 0, .. } => return Err(BuildError::ZeroWindow),
            WindowSpec::Count(calls) => {
                if u64::from(calls) > MAX_COUNT_WINDOW {
                    return Err(BuildError::TooLarge {
                        setting: "count window",
                        requested: calls.into(),
                        max: MAX_COUNT_WINDOW,
                    });
                }
                for rule in [failure_rate, slow_rate].into_iter().flatten() {
                    if rule.minimum_calls > u64::from(calls) {
                        // `minimum_calls` came from a u32.
                        let minimum_calls = u32::try_from(rule.minimum_calls).unwrap_or(u32::MAX);
                        return Err(BuildError::MinimumCallsExceedWindow { minimum_calls, window: calls });
                    }
                }
            }
            WindowSpec::Time { length, buckets } => {
                positive(Some(length), "time window")?;
                if u64::from(buckets) > MAX_BUCKETS {
                    return Err(BuildError::TooLarge {
                        setting: "time window buckets",
                        requested: buckets.into(),
                        max: MAX_BUCKETS,
                    });
                }
            }
        }
        if self.half_open_trials == 0 {
            return Err(BuildError::ZeroHalfOpenTrials);
        }
        if u64::from(self.half_open_trials) > MAX_TRIALS {
            return Err(BuildError::TooLarge {
                setting: "half-open trials",
                requested: self.half_open_trials.into(),
                max: MAX_TRIALS,
            });
        }
        if self.open_initial > self.open_max {
            return Err(BuildError::BackoffAboveCap { initial: self.open_initial, max: self.open_max });
        }
        positive(self.interval, "interval")?;
        positive(self.slow_call_duration, "slow-call duration")?;
        positive(self.call_timeout, "call timeout")?;
        positive(self.half_open_max_wait, "half-open max wait")?;
        Ok(Config {
            consecutive_failures,
            failure_rate,
            slow_rate,
            predicate: self.predicate,
            window,
            interval: self.interval,
            open_initial: self.open_initial,
            open_max: self.open_max,
            half_open_trials: u64::from(self.half_open_trials),
            half_open_max_wait: self.half_open_max_wait,
            call_timeout: self.call_timeout,
            slow_call_duration: self.slow_call_duration,
            clock: self.clock,
            listeners: self.listeners,
        })
    }
}
