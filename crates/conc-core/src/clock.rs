//! Time, injected: the one way conc crates read the clock and sleep.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::timer::{Entry, TimerKey, TimerQueue, Timers};

mod tsc;

pub(crate) mod sealed {
    /// Keeps `Clock` implemented only here.
    pub trait Sealed {
        /// The clock's time source and timer queue.
        fn timers(&self) -> Timers;
    }

    /// A clock's runtime form, opaque outside the crate.
    #[derive(Debug)]
    pub struct Timers(pub(crate) crate::timer::Timers);
}

/// A source of monotonic time that can also wake sleepers.
///
/// Every conc crate reads time through a `Clock`, so each time rule (a
/// token's deadline, a limiter's refill, a breaker's open interval) can be
/// tested deterministically with a [`ManualClock`] instead of sleeping.
/// Production code uses [`SystemClock`], the default everywhere.
///
/// Instants are `std::time::Instant`s: a manual clock starts at the real
/// instant it was made and moves only when advanced, so instants from both
/// kinds of clock compare as usual.
///
/// The trait is sealed: the two clocks here share one timer mechanism, which
/// keeps `now()` and the instants timers fire at consistent.
pub trait Clock: sealed::Sealed + Send + Sync + fmt::Debug + 'static {
    /// The current instant by this clock.
    fn now(&self) -> Instant;

    /// The instant [`now_nanos`](Clock::now_nanos) counts from, fixed for
    /// the clock's life: the instant a [`ManualClock`] was made; for
    /// [`SystemClock`], an instant early in the process's life.
    fn epoch(&self) -> Instant;

    /// The current time by this clock as nanoseconds since
    /// [`epoch`](Clock::epoch): the reading for hot paths that only compare
    /// and subtract times (a rate limiter's check), and the cheaper one.
    ///
    /// On a [`ManualClock`] it is exactly `now() - epoch()`. On
    /// [`SystemClock`] it comes from the CPU's time-stamp counter where that
    /// counter is invariant (x86-64), scaled and re-anchored to
    /// [`now`](Clock::now) every few milliseconds: about 9 ns instead of the
    /// 20–30 ns of a `clock_gettime` call, and within a microsecond or so of
    /// `now()`, so two readings taken on different threads a few hundred
    /// nanoseconds apart may come in either order. Elsewhere it is
    /// `now() - epoch()`. Saturates after 584 years.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_core::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// let start = clock.now_nanos();
    /// clock.advance(Duration::from_micros(3));
    /// assert_eq!(clock.now_nanos() - start, 3_000);
    /// assert_eq!(clock.epoch() + Duration::from_nanos(clock.now_nanos()), clock.now());
    /// ```
    fn now_nanos(&self) -> u64;

    /// A future that completes once this clock reads `deadline` or later.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future removes its timer; nothing else happens.
    fn sleep_until(&self, deadline: Instant) -> Sleep {
        Sleep { timers: self.timers().0, deadline: Some(deadline), key: None }
    }

    /// A future that completes once `duration` has passed on this clock.
    ///
    /// A duration too large to represent as an instant sleeps forever.
    fn sleep(&self, duration: Duration) -> Sleep {
        Sleep { timers: self.timers().0, deadline: self.now().checked_add(duration), key: None }
    }
}

/// The system's monotonic clock (`std::time::Instant::now`).
///
/// Sleeps and token deadlines on this clock are fired by one small
/// process-wide thread, `conc-timer`, which runs only while timers are
/// pending; so they work from any async runtime and from plain threads alike.
///
/// That thread also runs the `on_cancel` callbacks of tokens whose deadline
/// passes: keep such callbacks short and never block in them, or every
/// other deadline and sleep waits. A panic in one is caught and dropped
/// there (it has no caller to go to). Being conc's own timer, it does not
/// follow tokio's paused test time (`tokio::time::pause`); tests use a
/// [`ManualClock`] instead.
///
/// # Examples
///
/// ```
/// use conc_core::{Clock, SystemClock};
///
/// let clock = SystemClock;
/// let earlier = clock.now();
/// assert!(clock.now() >= earlier);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SystemClock;

impl sealed::Sealed for SystemClock {
    fn timers(&self) -> sealed::Timers {
        sealed::Timers(Timers::System)
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn epoch(&self) -> Instant {
        tsc::epoch()
    }

    #[inline]
    fn now_nanos(&self) -> u64 {
        tsc::now_nanos()
    }
}

/// Advances by hand at most this far from where it started.
const MAX_OFFSET: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// A clock that moves only when told to: for deterministic tests of time rules.
///
/// Clones share one time line: advance any clone and every holder, every
/// [`Sleep`] and every token deadline on this clock sees it. Timers that fall
/// due are fired by [`advance`](ManualClock::advance) on the calling thread,
/// before it returns.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_core::{Cause, Clock, ManualClock, Token};
///
/// let clock = ManualClock::new();
/// let root = Token::with_clock(clock.clone());
/// let job = root.with_timeout(Duration::from_secs(30));
///
/// clock.advance(Duration::from_secs(29));
/// assert!(!job.is_cancelled());
/// clock.advance(Duration::from_secs(1));
/// assert_eq!(job.cause(), Some(Cause::DeadlineExceeded));
/// assert!(!root.is_cancelled());
/// ```
#[derive(Clone)]
pub struct ManualClock {
    shared: Arc<ManualShared>,
}

pub(crate) struct ManualShared {
    start: Instant,
    /// Nanoseconds advanced since `start`; never more than `MAX_OFFSET`.
    offset_nanos: AtomicU64,
    pub(crate) timers: TimerQueue,
}

impl ManualShared {
    pub(crate) fn now(&self) -> Instant {
        self.start + Duration::from_nanos(self.offset_nanos.load(Ordering::Acquire))
    }
}

impl fmt::Debug for ManualShared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("elapsed", &Duration::from_nanos(self.offset_nanos.load(Ordering::Acquire)))
            .field("timers", &self.timers)
            .finish()
    }
}

impl ManualClock {
    /// A manual clock that reads the current real instant until advanced.
    pub fn new() -> Self {
        ManualClock {
            shared: Arc::new(ManualShared {
                start: Instant::now(),
                offset_nanos: AtomicU64::new(0),
                timers: TimerQueue::new(),
            }),
        }
    }

    /// Moves the clock forward by `duration` and fires every timer that is
    /// now due, in deadline order, before returning.
    ///
    /// No lock is held while timers fire, so what they run (a token's
    /// `on_cancel` callback, say) may use the clock, advancing it included.
    /// The clock saturates 100 years after it was made.
    ///
    /// # Panics
    ///
    /// If an `on_cancel` callback run by a deadline panics, every other due
    /// timer still fires, then the first panic is resumed here.
    pub fn advance(&self, duration: Duration) {
        // `MAX_OFFSET` is about 3.2e18 ns, well inside a u64.
        let step = u64::try_from(duration.min(MAX_OFFSET).as_nanos()).unwrap_or(u64::MAX);
        let max = u64::try_from(MAX_OFFSET.as_nanos()).unwrap_or(u64::MAX);
        // The closure always returns `Some`, so the update cannot fail.
        let _ = self
            .shared
            .offset_nanos
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |current| Some(current.saturating_add(step).min(max)));
        self.shared.timers.fire_due(self.shared.now());
    }

    /// Moves the clock forward to `instant` (if it is later than now) and
    /// fires the timers that are due.
    pub fn advance_to(&self, instant: Instant) {
        let now = self.shared.now();
        if instant > now {
            self.advance(instant - now);
        }
    }

    /// How far the clock has been advanced since it was made.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.shared.offset_nanos.load(Ordering::Acquire))
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.shared, f)
    }
}

impl sealed::Sealed for ManualClock {
    fn timers(&self) -> sealed::Timers {
        sealed::Timers(Timers::Manual(self.shared.clone()))
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.shared.now()
    }

    fn epoch(&self) -> Instant {
        self.shared.start
    }

    #[inline]
    fn now_nanos(&self) -> u64 {
        self.shared.offset_nanos.load(Ordering::Acquire)
    }
}

/// A future that completes when its clock reaches a deadline; made by
/// [`Clock::sleep`] and [`Clock::sleep_until`].
#[must_use = "futures do nothing unless polled"]
pub struct Sleep {
    timers: Timers,
    /// `None`: the deadline is beyond what an instant can hold; never fires.
    deadline: Option<Instant>,
    key: Option<TimerKey>,
}

impl Sleep {
    /// The instant this sleep completes at, if it ever does.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let Some(deadline) = this.deadline else {
            return Poll::Pending;
        };
        if this.timers.now() >= deadline {
            if let Some(key) = this.key.take() {
                this.timers.remove(key);
            }
            return Poll::Ready(());
        }
        let registered = match this.key {
            Some(key) => this.timers.queue().update_waker(key, cx.waker()),
            None => false,
        };
        if !registered {
            this.key = Some(this.timers.insert(deadline, Entry::Wake(cx.waker().clone())));
        }
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.timers.remove(key);
        }
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep").field("deadline", &self.deadline).finish_non_exhaustive()
    }
}

#[cfg(all(test, not(conc_loom)))]
mod tests {
    use super::*;
    use crate::test_support::CountingWaker;

    fn poll_once(sleep: &mut Sleep, waker: &std::task::Waker) -> Poll<()> {
        Pin::new(sleep).poll(&mut Context::from_waker(waker))
    }

    #[test]
    fn manual_sleep_completes_only_when_advanced_past_its_deadline() {
        let clock = ManualClock::new();
        let (counter, waker) = CountingWaker::new();
        let mut sleep = clock.sleep(Duration::from_millis(10));

        assert!(poll_once(&mut sleep, &waker).is_pending());
        clock.advance(Duration::from_millis(9));
        assert_eq!(counter.wakes(), 0);
        assert!(poll_once(&mut sleep, &waker).is_pending());

        clock.advance(Duration::from_millis(1));
        assert_eq!(counter.wakes(), 1, "the due timer wakes its sleeper");
        assert!(poll_once(&mut sleep, &waker).is_ready());
        assert_eq!(clock.elapsed(), Duration::from_millis(10));
    }

    #[test]
    fn dropped_sleep_leaves_no_timer_behind() {
        let clock = ManualClock::new();
        let waker = CountingWaker::new().1;
        let mut sleep = clock.sleep(Duration::from_secs(1));
        assert!(poll_once(&mut sleep, &waker).is_pending());
        assert_eq!(clock.shared.timers.len(), 1);
        drop(sleep);
        assert_eq!(clock.shared.timers.len(), 0);
    }

    #[test]
    fn advance_to_the_past_is_a_no_op_and_advances_saturate() {
        let clock = ManualClock::new();
        let start = clock.now();
        clock.advance_to(start - Duration::from_secs(1).min(start.elapsed()));
        assert_eq!(clock.now(), start);
        clock.advance(Duration::MAX);
        assert_eq!(clock.elapsed(), MAX_OFFSET);
        clock.advance(Duration::from_secs(1));
        assert_eq!(clock.elapsed(), MAX_OFFSET);
    }

    #[test]
    fn what_a_timer_fires_may_advance_the_clock_again() {
        let clock = ManualClock::new();
        let root = crate::Token::with_clock(clock.clone());
        let first = root.with_timeout(Duration::from_secs(1));
        let second = root.with_timeout(Duration::from_secs(2));
        let chained = clock.clone();
        let _registration = first.on_cancel(move || chained.advance(Duration::from_secs(1)));
        clock.advance(Duration::from_secs(1));
        assert!(first.is_cancelled());
        assert!(second.is_cancelled(), "the callback's own advance fired the later timer");
        assert_eq!(clock.elapsed(), Duration::from_secs(2));
    }

    #[test]
    fn unrepresentable_sleep_never_completes() {
        let clock = ManualClock::new();
        let waker = CountingWaker::new().1;
        let mut sleep = clock.sleep(Duration::MAX);
        assert_eq!(sleep.deadline(), None);
        clock.advance(Duration::MAX);
        assert!(poll_once(&mut sleep, &waker).is_pending());
    }

    #[test]
    fn system_sleep_wakes_from_the_timer_thread() {
        let clock = SystemClock;
        futures_lite::future::block_on(clock.sleep(Duration::from_millis(5)));
        let target = clock.now() + Duration::from_millis(5);
        futures_lite::future::block_on(clock.sleep_until(target));
        assert!(clock.now() >= target);
    }
}

#[cfg(all(test, not(conc_loom)))]
impl ManualClock {
    /// How many timers are pending on this clock.
    pub(crate) fn shared_timers_len(&self) -> usize {
        self.shared.timers.len()
    }
}
