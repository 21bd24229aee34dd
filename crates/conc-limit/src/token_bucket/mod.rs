//! [`TokenBucket`]: Go's `x/time/rate.Limiter`, with reservations.

mod reservation;
mod wait;

use std::fmt;
use std::time::{Duration, Instant};

use conc_core::{Clock, SystemClock};

pub use reservation::Reservation;

use crate::sync::{Mutex, lock};
use crate::time::saturating_add;
use crate::waiters::WaiterCap;
use crate::{ConfigError, Denied, Limiter, Rate};

/// A token bucket with the semantics of Go's `x/time/rate.Limiter`: it holds
/// up to `burst` tokens, starts full, and refills at `rate` tokens a second;
/// each event takes one token.
///
/// Three ways to take tokens, as in Go:
///
/// - [`allow_n`](TokenBucket::allow_n): take `n` tokens now or say no (drop
///   or skip the events);
/// - [`reserve_n`](TokenBucket::reserve_n): take `n` tokens now, possibly
///   borrowing from the future, and learn how long to wait before acting
///   (a [`Reservation`], which can be [cancelled](Reservation::cancel) to
///   give the tokens back);
/// - [`wait_n`](TokenBucket::wait_n) / [`wait_n_until`](TokenBucket::wait_n_until):
///   reserve and sleep until the tokens are due, ending early if a
///   [`Token`](conc_core::Token) is cancelled.
///
/// Every method that reads the clock has an `_at(now)` twin that takes the
/// instant instead, so schedules can be simulated deterministically.
/// [`Rate::INFINITE`] admits everything, whatever `n` and the burst.
///
/// In any window of length `T` a bucket admits at most `burst + rate * T`
/// events (plus at most a nanosecond's worth of rate: waits are truncated
/// to the nanosecond, as in Go).
///
/// The state sits behind one mutex per bucket, as in Go: a reservation,
/// its cancellation and a change of rate or burst must each update several
/// fields together. When the hot path is a plain "N a second with bursts of
/// B" check that never reserves, prefer [`Gcra`](crate::Gcra), which is
/// lock-free.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_core::{Clock, ManualClock};
/// use conc_limit::{Rate, TokenBucket};
///
/// let clock = ManualClock::new();
/// // 10 events a second, bursts of 3.
/// let bucket = TokenBucket::with_clock(Rate::per_second(10.0)?, 3, clock.clone())?;
///
/// assert!(bucket.allow_n(3)); // the bucket starts full
/// assert!(!bucket.allow()); // and is now empty
///
/// // Borrow two tokens from the future: act in 200 ms.
/// let reservation = bucket.reserve_n(2);
/// assert!(reservation.ok());
/// assert_eq!(reservation.delay(), Duration::from_millis(200));
/// // Changed our mind: the tokens go back to the bucket.
/// reservation.cancel();
///
/// clock.advance(Duration::from_millis(100));
/// assert!(bucket.allow()); // one token refilled
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Waiting, with a deadline:
///
/// ```
/// use std::time::Duration;
/// use conc_core::{Clock, ManualClock, Token};
/// use conc_limit::{Rate, TokenBucket, WaitError};
///
/// # futures_lite::future::block_on(async {
/// let clock = ManualClock::new();
/// let bucket = TokenBucket::with_clock(Rate::per_second(10.0)?, 1, clock.clone())?;
/// let request = Token::with_clock(clock.clone()).with_timeout(Duration::from_millis(50));
///
/// bucket.wait_n_until(1, &request).await?; // the first token is there
/// // The next one comes in 100 ms, after the deadline: fail at once, take nothing.
/// let err = bucket.wait_n_until(1, &request).await.unwrap_err();
/// assert!(matches!(err, WaitError::DeadlineTooSoon { .. }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
///
/// # Differences from Go
///
/// - **Burst 0 is rejected** with [`ConfigError::ZeroBurst`]: the
///   workspace's rule is that a setting under which a limiter can admit
///   nothing is a mistake to catch when the value is built. Go accepts it
///   and then admits nothing unless the rate is infinite (`NewLimiter(Inf,
///   0)` is its unlimited limiter); here an infinite rate needs a burst of
///   at least 1 too, though the burst is then ignored, as in Go.
/// - **No zero rate.** Go's `Limit(0)` is a bucket that never refills; a
///   [`Rate`] cannot be zero. A very slow rate (`Rate::per_second(1e-9)`)
///   admits the same through `allow_n`, but a reservation past the burst
///   is [`ok`](Reservation::ok) with a delay of years, and a wait without
///   a deadline sleeps that long, where Go's are not ok and fail at once.
/// - **A [`Reservation`] borrows the bucket** (Go's holds a pointer): no
///   reference count, no allocation. To keep one across a `'static` task,
///   share the bucket in an `Arc` and reserve inside the task.
/// - **Cancelling consumes the reservation**, so it cannot be cancelled
///   twice (in Go a second `Cancel` can restore tokens again).
/// - **A reservation made while the rate was infinite took no tokens**, so
///   cancelling it gives none back, even if the rate has become finite
///   since (Go gives back up to `n` tokens in that case). As in Go,
///   nothing is given back while the rate is infinite.
/// - **`n` larger than the burst**: `allow_n` says no and `reserve_n`
///   returns a reservation that is not [`ok`](Reservation::ok), as in Go;
///   [`wait_n`](TokenBucket::wait_n) fails at once with
///   [`WaitError::ExceedsBurst`](crate::WaitError::ExceedsBurst), and
///   [`check_n_at`](Limiter::check_n_at) with [`Denied::ExceedsBurst`].
/// - **Waiting** adds a `max_waiters` cap
///   ([`WaitError::TooManyWaiters`](crate::WaitError::TooManyWaiters)),
///   counting only calls that actually have to sleep; gives the
///   reservation back when the wait future is dropped, not only when the
///   token is cancelled; and, when the cancellation is noticed at or after
///   the instant the tokens were due, succeeds (the tokens are spent by
///   then; Go picks at random between its timer and `ctx.Done()`).
/// - **Durations saturate**: a wait too long to represent as an instant
///   (a tiny rate) ends about a century from now instead of overflowing.
pub struct TokenBucket<C: Clock = SystemClock> {
    /// Per bucket, not global. A mutex because a reservation, its
    /// cancellation and a change of rate or burst each update several
    /// fields together; the lock-free hot path is [`crate::Gcra`].
    state: Mutex<State>,
    clock: C,
    waiters: WaiterCap,
}

/// The bucket as Go's `Limiter` keeps it.
#[derive(Debug)]
struct State {
    rate: Rate,
    burst: u32,
    /// May be negative: tokens already promised to reservations.
    tokens: f64,
    /// When `tokens` was last brought up to date.
    last: Instant,
    /// The latest time to act of any reservation (past or future).
    last_event: Instant,
}

/// A reservation worked out under the lock but not yet made.
#[derive(Clone, Copy, Debug)]
struct Plan {
    now: Instant,
    n: u32,
    tokens_left: f64,
    time_to_act: Instant,
}

const NANOSECOND: Duration = Duration::from_nanos(1);

impl State {
    /// Go's `advance`: the tokens at `now`, not stored. An instant before
    /// `last` sees no time pass (and committing it moves `last` back, as Go
    /// does).
    fn tokens_at(&self, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.last);
        // An infinite rate times zero would be NaN: no time, no refill.
        let refill = if elapsed.is_zero() { 0.0 } else { self.rate.events_in(elapsed) };
        (self.tokens + refill).min(f64::from(self.burst))
    }

    /// What reserving `n` tokens at `now` would do; `None` if `n` exceeds
    /// the burst. Only for a finite rate.
    fn plan(&self, now: Instant, n: u32) -> Option<Plan> {
        if n > self.burst {
            return None;
        }
        let tokens_left = self.tokens_at(now) - f64::from(n);
        let wait = if tokens_left < 0.0 { duration_from_tokens(self.rate, -tokens_left) } else { Duration::ZERO };
        Some(Plan { now, n, tokens_left, time_to_act: saturating_add(now, wait) })
    }

    /// Makes the planned reservation.
    fn commit(&mut self, plan: Plan) {
        self.last = plan.now;
        self.tokens = plan.tokens_left;
        self.last_event = plan.time_to_act;
    }

    /// Brings the tokens up to `now` and stores them (Go's
    /// `SetLimitAt`/`SetBurstAt` preamble).
    fn settle(&mut self, now: Instant) {
        self.tokens = self.tokens_at(now);
        self.last = now;
    }
}

/// Go's `durationFromTokens`: how long `rate` takes to refill `tokens`,
/// truncated to the nanosecond as Go does (so a deficit worth less than a
/// nanosecond does not make anyone wait); `Duration::MAX` if too long.
fn duration_from_tokens(rate: Rate, tokens: f64) -> Duration {
    if rate.is_infinite() || tokens <= 0.0 {
        return Duration::ZERO;
    }
    let nanos = tokens / rate.per_second_f64() * 1e9;
    if nanos >= u64::MAX as f64 { Duration::MAX } else { Duration::from_nanos(nanos as u64) }
}

/// `later - earlier` in seconds, negative if `later` is earlier.
fn signed_secs(later: Instant, earlier: Instant) -> f64 {
    match later.checked_duration_since(earlier) {
        Some(ahead) => ahead.as_secs_f64(),
        None => -earlier.duration_since(later).as_secs_f64(),
    }
}

impl TokenBucket<SystemClock> {
    /// A full bucket of `burst` tokens refilled at `rate`, on the system
    /// clock (Go's `NewLimiter`).
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroBurst`] if `burst` is 0 (Go accepts it; see
    /// "Differences from Go" on the type).
    pub fn new(rate: Rate, burst: u32) -> Result<Self, ConfigError> {
        Self::with_clock(rate, burst, SystemClock)
    }
}

impl<C: Clock> TokenBucket<C> {
    /// A full bucket of `burst` tokens refilled at `rate`, reading time from
    /// `clock` (a [`ManualClock`](conc_core::ManualClock) in tests).
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroBurst`] if `burst` is 0.
    pub fn with_clock(rate: Rate, burst: u32, clock: C) -> Result<Self, ConfigError> {
        if burst == 0 {
            return Err(ConfigError::ZeroBurst);
        }
        let now = clock.now();
        let state = State { rate, burst, tokens: f64::from(burst), last: now, last_event: now };
        Ok(TokenBucket { state: Mutex::new(state), clock, waiters: WaiterCap::unbounded() })
    }

    /// The clock this bucket reads.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// Whether one event may happen now; takes its token if so.
    pub fn allow(&self) -> bool {
        self.allow_n_at(self.clock.now(), 1)
    }

    /// Whether one event may happen at `now`; takes its token if so.
    pub fn allow_at(&self, now: Instant) -> bool {
        self.allow_n_at(now, 1)
    }

    /// Whether `n` events may happen now; takes their tokens if so, and
    /// nothing if not. Use it to drop or skip events over the rate.
    pub fn allow_n(&self, n: u32) -> bool {
        self.allow_n_at(self.clock.now(), n)
    }

    /// Whether `n` events may happen at `now` (Go's `AllowN`); takes their
    /// tokens if so, and nothing if not.
    ///
    /// `n` larger than the burst is never allowed (unless the rate is
    /// infinite). An instant earlier than the last one seen counts as no
    /// time passing, as in Go.
    pub fn allow_n_at(&self, now: Instant, n: u32) -> bool {
        self.reserve_within(now, n, Some(now)).ok()
    }

    /// Reserves one token now; see [`reserve_n_at`](TokenBucket::reserve_n_at).
    pub fn reserve(&self) -> Reservation<'_, C> {
        self.reserve_n_at(self.clock.now(), 1)
    }

    /// Reserves one token at `now`; see [`reserve_n_at`](TokenBucket::reserve_n_at).
    pub fn reserve_at(&self, now: Instant) -> Reservation<'_, C> {
        self.reserve_n_at(now, 1)
    }

    /// Reserves `n` tokens now; see [`reserve_n_at`](TokenBucket::reserve_n_at).
    pub fn reserve_n(&self, n: u32) -> Reservation<'_, C> {
        self.reserve_n_at(self.clock.now(), n)
    }

    /// Reserves `n` tokens at `now`, borrowing from the future if the
    /// bucket is short (Go's `ReserveN`): the [`Reservation`] says how long
    /// to wait before acting. Later callers see the tokens gone.
    ///
    /// The reservation is not [`ok`](Reservation::ok) if `n` exceeds the
    /// burst (unless the rate is infinite); then nothing was taken.
    /// Dropping an ok reservation keeps its tokens taken: act after its
    /// delay, or [`cancel`](Reservation::cancel) it.
    pub fn reserve_n_at(&self, now: Instant, n: u32) -> Reservation<'_, C> {
        self.reserve_within(now, n, None)
    }

    /// Go's `reserveN` with `latest = now + maxFutureReserve`.
    fn reserve_within(&self, now: Instant, n: u32, latest: Option<Instant>) -> Reservation<'_, C> {
        let mut state = lock(&self.state);
        if state.rate.is_infinite() {
            return Reservation::free(self, now);
        }
        match state.plan(now, n) {
            Some(plan) if latest.is_none_or(|latest| plan.time_to_act <= latest) => {
                state.commit(plan);
                Reservation::granted(self, plan.n, plan.time_to_act, state.rate)
            }
            _ => Reservation::refused(self),
        }
    }

    /// Sets the rate from now on; see [`set_rate_at`](TokenBucket::set_rate_at).
    pub fn set_rate(&self, rate: Rate) {
        self.set_rate_at(self.clock.now(), rate);
    }

    /// Sets the rate from `now` on (Go's `SetLimitAt`): tokens refilled up
    /// to `now` stay, later ones come at the new rate. Reservations already
    /// made keep their times to act, so the new rate may be briefly
    /// exceeded or underused, as in Go.
    pub fn set_rate_at(&self, now: Instant, rate: Rate) {
        let mut state = lock(&self.state);
        state.settle(now);
        state.rate = rate;
    }

    /// Sets the burst from now on; see [`set_burst_at`](TokenBucket::set_burst_at).
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroBurst`] if `burst` is 0; nothing changes then.
    pub fn set_burst(&self, burst: u32) -> Result<(), ConfigError> {
        self.set_burst_at(self.clock.now(), burst)
    }

    /// Sets the burst from `now` on (Go's `SetBurstAt`): tokens refilled up
    /// to `now` stay (a smaller burst caps them from then on), and the
    /// bucket refills up to the new burst.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroBurst`] if `burst` is 0; nothing changes then.
    pub fn set_burst_at(&self, now: Instant, burst: u32) -> Result<(), ConfigError> {
        if burst == 0 {
            return Err(ConfigError::ZeroBurst);
        }
        let mut state = lock(&self.state);
        state.settle(now);
        state.burst = burst;
        Ok(())
    }

    /// The rate tokens refill at.
    pub fn rate(&self) -> Rate {
        lock(&self.state).rate
    }

    /// The most tokens the bucket holds, and so the most events admitted
    /// at once.
    pub fn burst(&self) -> u32 {
        lock(&self.state).burst
    }

    /// The tokens in the bucket now; see [`tokens_at`](TokenBucket::tokens_at).
    pub fn tokens(&self) -> f64 {
        self.tokens_at(self.clock.now())
    }

    /// The tokens in the bucket at `now` (Go's `TokensAt`), without taking
    /// any: fractional while refilling, negative while reservations have
    /// borrowed from the future, at most the burst.
    pub fn tokens_at(&self, now: Instant) -> f64 {
        lock(&self.state).tokens_at(now)
    }

    /// Caps how many callers may be sleeping in a wait at once; `None`
    /// removes the cap. A wait that would have to sleep beyond the cap
    /// fails at once with
    /// [`WaitError::TooManyWaiters`](crate::WaitError::TooManyWaiters),
    /// taking nothing; a wait whose tokens are there does not count.
    pub fn set_max_waiters(&self, max: Option<usize>) {
        self.waiters.set_max(max);
    }

    /// The cap on sleeping waiters, if any.
    pub fn max_waiters(&self) -> Option<usize> {
        self.waiters.max()
    }

    /// How many callers are sleeping in a wait now.
    pub fn waiting(&self) -> usize {
        self.waiters.current()
    }
}

impl<C: Clock> fmt::Debug for TokenBucket<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.state);
        f.debug_struct("TokenBucket")
            .field("rate", &state.rate)
            .field("burst", &state.burst)
            .field("tokens", &state.tokens)
            .field("last", &state.last)
            .field("waiters", &self.waiters)
            .field("clock", &self.clock)
            .finish()
    }
}

impl<C: Clock + Clone> Limiter for TokenBucket<C> {
    fn now(&self) -> Instant {
        self.clock.now()
    }

    /// A full bucket with the same rate, burst, clock and `max_waiters`.
    fn fresh_at(&self, now: Instant) -> Self {
        let (rate, burst) = {
            let state = lock(&self.state);
            (state.rate, state.burst)
        };
        let state = State { rate, burst, tokens: f64::from(burst), last: now, last_event: now };
        let fresh =
            TokenBucket { state: Mutex::new(state), clock: self.clock.clone(), waiters: WaiterCap::unbounded() };
        fresh.waiters.set_max(self.waiters.max());
        fresh
    }

    /// [`allow_n_at`](TokenBucket::allow_n_at), saying when to retry: the
    /// instant the tokens will be there if nobody else takes any. A denied
    /// check takes nothing.
    fn check_n_at(&self, now: Instant, n: u32) -> Result<(), Denied> {
        let mut state = lock(&self.state);
        if state.rate.is_infinite() {
            return Ok(());
        }
        let Some(plan) = state.plan(now, n) else {
            return Err(Denied::ExceedsBurst { requested: n, burst: state.burst });
        };
        if plan.time_to_act <= now {
            state.commit(plan);
            return Ok(());
        }
        // Retry when a reservation made now would act. Waits are truncated
        // to the nanosecond, as in Go, so with f64 rounding the check may
        // pass a nanosecond before that instant, or only a nanosecond or
        // two after it: step on until it passes, so retrying then works.
        let mut retry_at = plan.time_to_act;
        for _ in 0..4 {
            if state.plan(retry_at, n).is_some_and(|plan| plan.time_to_act <= retry_at) {
                break;
            }
            retry_at = saturating_add(retry_at, NANOSECOND);
        }
        Err(Denied::NotUntil(retry_at))
    }

    /// Whether the bucket is full at `now` (or the rate infinite): a full
    /// bucket decides as a fresh one does.
    fn is_idle_at(&self, now: Instant) -> bool {
        let state = lock(&self.state);
        state.rate.is_infinite() || state.tokens_at(now) >= f64::from(state.burst)
    }
}

#[cfg(all(test, not(conc_loom)))]
mod tests;

#[cfg(all(test, conc_loom))]
mod loom_tests;
