//! [`Gcra`]: the generic cell rate algorithm in one atomic word.
//!
//! **Invariant:** the whole limiter state is the theoretical arrival time
//! (TAT), one `AtomicU64` of nanoseconds since the limiter's origin. A check
//! reads it once (and the two setting words around it); a denied check
//! returns without writing anything, so callers that are being refused never
//! bounce the shared cache line; an admitted check publishes the new TAT
//! with one `compare_exchange_weak`, retried only when another admission
//! got there first.
//!
//! **Invariant:** the stored TAT never exceeds `3 * HORIZON`, so the plain
//! additions on the hot path cannot overflow: `now` and every increment are
//! clamped to [`HORIZON`] and a TAT is only written when it was at most
//! `now + HORIZON`.

mod wait;

#[cfg(all(test, conc_loom))]
mod loom_tests;
#[cfg(all(test, not(conc_loom)))]
mod tests;

use std::fmt;
use std::time::{Duration, Instant};

use conc_core::{Clock, SystemClock};

use crate::sync::{AtomicU64, Mutex, Ordering, lock};
use crate::waiters::WaiterCap;
use crate::{ConfigError, Denied, Limiter, Rate};

/// The longest span, in nanoseconds, the arithmetic tracks (about 146
/// years): longer intervals and tolerances are treated as this long.
const HORIZON: u64 = 1 << 62;

/// A lock-free rate limiter: the generic cell rate algorithm (GCRA, the
/// "virtual scheduling" form of a leaky bucket) in one atomic word.
///
/// With a [`Rate`] of one event every `T` and a burst of `B`, a fresh
/// limiter admits `B` events at once and then one every `T`; in any window
/// of length `W` it admits at most `B + W / T` events. It decides exactly as
/// Go's `rate.Limiter.AllowN` does for the same rate and burst (the events
/// available now are `B` minus the debt still to be paid back at the rate),
/// but keeps no `f64` token count and takes no lock: the state is one
/// `u64`, the instant at which the limiter would be full again.
///
/// A denied check says when to retry ([`Denied::NotUntil`]) and writes
/// nothing, so a flood of rejected callers costs one shared read each.
///
/// [`check`](Gcra::check) and [`check_n`](Gcra::check_n) read the clock
/// the fast way, [`Clock::now_nanos`] (on the system clock, the CPU's
/// time-stamp counter kept within a microsecond or so of
/// `Instant::now`); the `_at` forms and the waits go by
/// [`Clock::now`].
///
/// Limits change at run time ([`set_rate`](Gcra::set_rate),
/// [`set_burst`](Gcra::set_burst)) while checks go on: checks never lock or
/// wait for a change, and the events available at the moment of the change
/// are kept, as `x/time/rate`'s `SetLimit` and `SetBurst` keep the tokens.
/// [`Rate::INFINITE`] admits everything, including more than the burst at
/// once (as Go's `Inf` limit does), without touching the state.
///
/// Waiting ([`until_ready`](Gcra::until_ready) and its forms) sleeps on the
/// limiter's clock until the events would be admitted, then checks again.
/// Unlike [`TokenBucket`](crate::TokenBucket)'s reservations, a GCRA waiter
/// reserves nothing ahead: it competes with other callers when it wakes and
/// may have to wait again, so waiting is not FIFO. Use a token bucket where
/// waiters must be served in order.
///
/// The limiter is not `Clone`: a clone sharing the state would surprise, and
/// a copy would not limit anything together with the original. Share one
/// through an `Arc`, or make an independent one with
/// [`Limiter::fresh_at`].
///
/// # Differences from Go's `rate.Limiter`
///
/// - Instants that go backwards (explicit `_at` forms) are judged strictly:
///   the debt seen from an earlier instant is larger, where Go keeps its
///   tokens.
/// - Waiting reserves nothing (see above), and events that would be ready
///   exactly at a token's deadline count as too late.
/// - Time is whole nanoseconds: the interval is the rate's, rounded to the
///   nanosecond (at least 1 ns), and spans beyond about 146 years (a burst
///   times the interval included) are treated as 146 years. So at rates
///   slower than one event per `146 years / burst`, a full limiter admits
///   fewer than `burst` events at once: as many intervals as fit in 146
///   years (at `Rate::per_second(1e-9)`, one event every 31.7 years, that is
///   5). A [`TokenBucket`](crate::TokenBucket) keeps the whole burst there.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_core::{Clock, ManualClock};
/// use conc_limit::{Denied, Gcra, Rate};
///
/// let clock = ManualClock::new();
/// // 10 events a second, in bursts of up to 3.
/// let gcra = Gcra::with_clock(Rate::per_second(10.0)?, 3, clock.clone())?;
///
/// for _ in 0..3 {
///     assert!(gcra.check().is_ok()); // the burst, at once
/// }
/// let Err(Denied::NotUntil(retry)) = gcra.check() else { panic!("the burst is spent") };
/// assert_eq!(retry - clock.now(), Duration::from_millis(100)); // then one every 100 ms
///
/// clock.advance(Duration::from_millis(100));
/// assert!(gcra.check().is_ok());
/// assert!(gcra.check().is_err());
///
/// // More than the burst can never be admitted at once.
/// assert_eq!(gcra.check_n(4), Err(Denied::ExceedsBurst { requested: 4, burst: 3 }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Gcra<C: Clock = SystemClock> {
    /// The theoretical arrival time: nanoseconds since `origin` at which the
    /// limiter is full again (at most `3 * HORIZON`).
    tat: AtomicU64,
    /// The emission interval `T` in nanoseconds (at least 1); 0 for
    /// [`Rate::INFINITE`]. Ordered with the TAT on a change (see
    /// `set_rate_at`).
    interval: AtomicU64,
    /// The burst `B` (1..=u32::MAX). Kept instead of the tolerance
    /// `(B - 1) * T`, so that a change of the rate or of the burst writes
    /// one setting word (and the TAT).
    burst: AtomicU64,
    /// The instant the TAT counts from; instants before it count as it.
    origin: Instant,
    /// `origin` on the clock's nanosecond time line
    /// ([`Clock::now_nanos`]), for checks at the clock's current time.
    origin_nanos: u64,
    clock: C,
    waiters: WaiterCap,
    /// Serializes `set_rate` and `set_burst` (cold path); checks never
    /// take it.
    setting: Mutex<()>,
}

impl Gcra {
    /// A limiter on the system clock admitting `rate` with bursts of up to
    /// `burst` events; it starts full (a burst is available at once).
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroBurst`] if `burst` is 0.
    pub fn new(rate: Rate, burst: u32) -> Result<Gcra, ConfigError> {
        Gcra::with_clock(rate, burst, SystemClock)
    }
}

impl<C: Clock> Gcra<C> {
    /// A limiter reading time from `clock` (a
    /// [`ManualClock`](conc_core::ManualClock) in tests) admitting `rate`
    /// with bursts of up to `burst` events; it starts full.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroBurst`] if `burst` is 0.
    pub fn with_clock(rate: Rate, burst: u32, clock: C) -> Result<Gcra<C>, ConfigError> {
        if burst == 0 {
            return Err(ConfigError::ZeroBurst);
        }
        let origin = clock.now_nanos();
        Ok(Gcra::from_parts(interval_of(rate), u64::from(burst), origin, clock, WaiterCap::unbounded()))
    }

    /// A full limiter counting from `origin_nanos` on `clock`'s nanosecond
    /// time line.
    fn from_parts(interval: u64, burst: u64, origin_nanos: u64, clock: C, waiters: WaiterCap) -> Gcra<C> {
        Gcra {
            tat: AtomicU64::new(0),
            interval: AtomicU64::new(interval),
            burst: AtomicU64::new(burst),
            origin: clock.epoch() + Duration::from_nanos(origin_nanos),
            origin_nanos,
            clock,
            waiters,
            setting: Mutex::new(()),
        }
    }

    /// Admits one event now, or says when it would be admitted.
    ///
    /// # Errors
    ///
    /// [`Denied::NotUntil`] with the earliest instant the event would be
    /// admitted if nothing else is admitted meanwhile.
    #[inline]
    pub fn check(&self) -> Result<(), Denied> {
        self.check_nanos(self.nanos_now(), 1)
    }

    /// Admits `n` events now, all or none, or says when they would be
    /// admitted. `n == 0` is always admitted.
    ///
    /// # Errors
    ///
    /// [`Denied::NotUntil`] with the earliest instant they would be admitted
    /// if nothing else is admitted meanwhile; [`Denied::ExceedsBurst`] if
    /// `n` is more than the burst (never admitted at once, unless the rate is
    /// [`Rate::INFINITE`]).
    #[inline]
    pub fn check_n(&self, n: u32) -> Result<(), Denied> {
        self.check_nanos(self.nanos_now(), n)
    }

    /// [`check`](Gcra::check) at an explicit instant `now` (by this
    /// limiter's clock): for tests and simulations. Instants before the
    /// limiter was made count as the instant it was made.
    ///
    /// # Errors
    ///
    /// As [`check`](Gcra::check).
    #[inline]
    pub fn check_at(&self, now: Instant) -> Result<(), Denied> {
        self.check_n_at(now, 1)
    }

    /// [`check_n`](Gcra::check_n) at an explicit instant `now`. Instants
    /// before the limiter was made count as the instant it was made.
    ///
    /// Checks at instants that go backwards are handled as GCRA handles
    /// them: an event is admitted only if the limit holds at the instant
    /// given, so a late caller with an early instant is judged strictly.
    ///
    /// # Errors
    ///
    /// As [`check_n`](Gcra::check_n).
    #[inline]
    pub fn check_n_at(&self, now: Instant, n: u32) -> Result<(), Denied> {
        self.check_nanos(self.nanos_since_origin(now), n)
    }

    /// The check at `now` nanoseconds since the origin (at most
    /// [`HORIZON`]).
    #[inline]
    fn check_nanos(&self, now: u64, n: u32) -> Result<(), Denied> {
        if n == 0 {
            return Ok(());
        }
        let n = u64::from(n);
        // Restarts only when a setting changes under an admission.
        'settings: loop {
            let interval = self.interval.load(Ordering::Acquire);
            if interval == 0 {
                return Ok(());
            }
            let burst = self.burst.load(Ordering::Acquire);
            if n > burst {
                return Err(exceeds_burst(n, burst));
            }
            // The events fit while the TAT, moved on by their cost, stays
            // within `burst` intervals of now: admitted iff
            // `tat - slack <= now`.
            let slack = (burst - n).saturating_mul(interval).min(HORIZON);
            let cost = n.saturating_mul(interval).min(HORIZON);
            let mut tat = self.tat.load(Ordering::Acquire);
            loop {
                let allowed_from = tat.saturating_sub(slack);
                if now < allowed_from {
                    // Denied: nothing is written.
                    return Err(Denied::NotUntil(self.instant_at(allowed_from)));
                }
                // Admitting on a TAT from after a setting changed, with the
                // setting from before, could be more lenient than either
                // setting: check they are still the ones read (the setters
                // publish in an order that makes this catch every such mix).
                if self.interval.load(Ordering::Relaxed) != interval || self.burst.load(Ordering::Relaxed) != burst {
                    continue 'settings;
                }
                // `tat <= now + slack <= 2 * HORIZON`: this cannot overflow.
                let next = tat.max(now) + cost;
                // The modification order of this one word is what makes
                // admissions add up: a lost update would fail the exchange.
                match self.tat.compare_exchange_weak(tat, next, Ordering::Relaxed, Ordering::Acquire) {
                    Ok(_) => return Ok(()),
                    Err(actual) => tat = actual,
                }
            }
        }
    }

    /// Sets the rate at run time; the events available now are kept (as
    /// `x/time/rate`'s `SetLimit` keeps the tokens): the debt still to be
    /// paid back is rescaled to the new rate.
    ///
    /// Leaving or entering [`Rate::INFINITE`] leaves the limiter full.
    ///
    /// Checks never lock or wait for a change. A check racing it is decided
    /// at least as strictly as either rate alone would decide it (it never
    /// admits on a mix of the old rate and the rescaled debt); an event
    /// admitted in the race is priced at the old rate, the new one, or, if
    /// the rate grows, possibly the new rate rescaled once more, within one
    /// event of either. Changes serialize among themselves on a small lock
    /// that checks never take.
    pub fn set_rate(&self, rate: Rate) {
        self.set_rate_at(self.clock.now(), rate);
    }

    /// [`set_rate`](Gcra::set_rate) at an explicit instant `now`.
    pub fn set_rate_at(&self, now: Instant, rate: Rate) {
        // Cold path: setters take this lock among themselves, never checks.
        let _setting = lock(&self.setting);
        let new = interval_of(rate);
        let old = self.interval.load(Ordering::Acquire);
        if old == new {
            return;
        }
        let now = self.nanos_since_origin(now);
        let rescale = |debt: u64| {
            if old == 0 || new == 0 {
                0
            } else {
                let scaled = u128::from(debt) * u128::from(new) / u128::from(old);
                u64::try_from(scaled).unwrap_or(u64::MAX)
            }
        };
        // A check admits only on an interval it read both before and after
        // the TAT (acquire loads, release writes). Of the two writes, the one
        // that would complete a lenient mix comes second, so a check that
        // sees it sees the first too: for a faster rate (old interval with
        // the shrunk debt is lenient) the interval is stored before the
        // debt shrinks; for a slower one (new interval with the old debt)
        // the debt grows before the interval is stored.
        let faster = new == 0 || (old != 0 && new < old);
        if faster {
            self.interval.store(new, Ordering::Release);
            self.update_debt(now, rescale);
        } else {
            self.update_debt(now, rescale);
            self.interval.store(new, Ordering::Release);
        }
    }

    /// Sets the burst at run time; the events available now are kept,
    /// capped to the new burst (as `x/time/rate`'s `SetBurst`): a larger
    /// burst does not fill up at once but refills at the rate, a smaller one
    /// takes effect at once.
    ///
    /// Checks never wait for a change; one racing it is judged at least as
    /// strictly as either burst alone would judge it.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroBurst`] if `burst` is 0 (nothing changes).
    pub fn set_burst(&self, burst: u32) -> Result<(), ConfigError> {
        self.set_burst_at(self.clock.now(), burst)
    }

    /// [`set_burst`](Gcra::set_burst) at an explicit instant `now`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroBurst`] if `burst` is 0 (nothing changes).
    pub fn set_burst_at(&self, now: Instant, burst: u32) -> Result<(), ConfigError> {
        if burst == 0 {
            return Err(ConfigError::ZeroBurst);
        }
        // Cold path: setters take this lock among themselves, never checks.
        let _setting = lock(&self.setting);
        let new = u64::from(burst);
        let old = self.burst.load(Ordering::Acquire);
        let interval = self.interval.load(Ordering::Acquire);
        if old == new {
            return Ok(());
        }
        if interval == 0 {
            self.burst.store(new, Ordering::Release);
            return Ok(());
        }
        let now = self.nanos_since_origin(now);
        // Available events are `burst - debt / T`: keeping them moves the
        // debt by the change of burst, in time. Ordered as in `set_rate_at`:
        // a larger burst is stored after the debt grows, a smaller one
        // before the debt shrinks.
        if new > old {
            self.update_debt(now, |debt| debt.saturating_add((new - old).saturating_mul(interval)));
            self.burst.store(new, Ordering::Release);
        } else {
            self.burst.store(new, Ordering::Release);
            self.update_debt(now, |debt| debt.saturating_sub((old - new).saturating_mul(interval)));
        }
        Ok(())
    }

    /// Replaces the debt (how far the TAT lies beyond `now`) with
    /// `update(debt)`, clamped to the horizon, in a CAS loop.
    fn update_debt(&self, now: u64, update: impl Fn(u64) -> u64) {
        let mut tat = self.tat.load(Ordering::Acquire);
        loop {
            let new_debt = update(tat.saturating_sub(now)).min(HORIZON);
            // `now <= HORIZON`, so the stored TAT stays within its bound.
            let next = if new_debt == 0 { tat.min(now) } else { now + new_debt };
            if next == tat {
                return;
            }
            match self.tat.compare_exchange_weak(tat, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return,
                Err(actual) => tat = actual,
            }
        }
    }

    /// The rate, with its interval rounded to whole nanoseconds as the
    /// limiter keeps it.
    pub fn rate(&self) -> Rate {
        match self.interval.load(Ordering::Relaxed) {
            0 => Rate::INFINITE,
            nanos => Rate::every(Duration::from_nanos(nanos)).unwrap_or(Rate::INFINITE),
        }
    }

    /// The time between two events at the steady rate, in whole
    /// nanoseconds; `None` for [`Rate::INFINITE`].
    pub fn interval(&self) -> Option<Duration> {
        match self.interval.load(Ordering::Relaxed) {
            0 => None,
            nanos => Some(Duration::from_nanos(nanos)),
        }
    }

    /// The most events admitted at once.
    pub fn burst(&self) -> u32 {
        u32::try_from(self.burst.load(Ordering::Relaxed)).unwrap_or(u32::MAX)
    }

    /// The clock this limiter reads.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// The events that could be admitted at once at `now` (rounded down),
    /// if nothing else is admitted meanwhile; `u32::MAX` for
    /// [`Rate::INFINITE`].
    pub fn available_at(&self, now: Instant) -> u32 {
        let interval = self.interval.load(Ordering::Relaxed);
        if interval == 0 {
            return u32::MAX;
        }
        let burst = self.burst.load(Ordering::Relaxed);
        let debt = self.tat.load(Ordering::Relaxed).saturating_sub(self.nanos_since_origin(now));
        let owed = debt.div_ceil(interval);
        u32::try_from(burst.saturating_sub(owed)).unwrap_or(u32::MAX)
    }

    /// Nanoseconds from the origin to the clock's current time (read the
    /// fast way, [`Clock::now_nanos`]), at most [`HORIZON`].
    #[inline]
    fn nanos_now(&self) -> u64 {
        self.clock.now_nanos().saturating_sub(self.origin_nanos).min(HORIZON)
    }

    /// Nanoseconds from the origin to `now`, 0 for earlier instants, at most
    /// [`HORIZON`]. Avoids `Duration::as_nanos`'s `u128`.
    #[inline]
    fn nanos_since_origin(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.origin);
        elapsed.as_secs().saturating_mul(1_000_000_000).saturating_add(u64::from(elapsed.subsec_nanos())).min(HORIZON)
    }

    /// The instant `nanos` after the origin (the latest representable one
    /// if that is beyond what an `Instant` holds).
    #[cold]
    fn instant_at(&self, nanos: u64) -> Instant {
        let mut offset = Duration::from_nanos(nanos);
        loop {
            if let Some(instant) = self.origin.checked_add(offset) {
                return instant;
            }
            offset /= 2;
        }
    }
}

/// The emission interval of `rate` in nanoseconds, 0 for infinite.
fn interval_of(rate: Rate) -> u64 {
    rate.interval_nanos().unwrap_or(0)
}

#[cold]
fn exceeds_burst(n: u64, burst: u64) -> Denied {
    Denied::ExceedsBurst {
        requested: u32::try_from(n).unwrap_or(u32::MAX),
        burst: u32::try_from(burst).unwrap_or(u32::MAX),
    }
}

impl<C: Clock + Clone> Limiter for Gcra<C> {
    #[inline]
    fn now(&self) -> Instant {
        self.clock.now()
    }

    /// A full limiter with this one's rate, burst, `max_waiters` and clock,
    /// counting from `now`.
    fn fresh_at(&self, now: Instant) -> Self {
        let waiters = WaiterCap::unbounded();
        waiters.set_max(self.waiters.max());
        let since_epoch = now.saturating_duration_since(self.clock.epoch());
        Gcra::from_parts(
            self.interval.load(Ordering::Relaxed),
            self.burst.load(Ordering::Relaxed),
            u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX),
            self.clock.clone(),
            waiters,
        )
    }

    #[inline]
    fn check_n_at(&self, now: Instant, n: u32) -> Result<(), Denied> {
        Gcra::check_n_at(self, now, n)
    }

    #[inline]
    fn check_n(&self, n: u32) -> Result<(), Denied> {
        Gcra::check_n(self, n)
    }

    /// Idle once the TAT is not after `now`: the limiter is full again, as
    /// a fresh one is. Always idle at [`Rate::INFINITE`].
    fn is_idle_at(&self, now: Instant) -> bool {
        self.interval.load(Ordering::Relaxed) == 0 || self.tat.load(Ordering::Relaxed) <= self.nanos_since_origin(now)
    }
}

impl<C: Clock> fmt::Debug for Gcra<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gcra")
            .field("rate", &self.rate())
            .field("burst", &self.burst())
            .field("full_at", &Duration::from_nanos(self.tat.load(Ordering::Relaxed)))
            .field("waiters", &self.waiters)
            .field("clock", &self.clock)
            .finish()
    }
}
