//! Conformance with Go's `golang.org/x/time/rate`: the meaning of its
//! `Limiter` tests, ported to `conc_limit::TokenBucket`.
//!
//! Source: golang/time, `rate/rate_test.go`. Ported by meaning: `AllowN(t,
//! n)` is `allow_n_at(t, n)`, `ReserveN(t, n)` is `reserve_n_at(t, n)`,
//! `CancelAt` is `cancel_at`, `SetLimitAt`/`SetBurstAt` are
//! `set_rate_at`/`set_burst_at`, `WaitN(ctx, n)` is `wait_n_until(n,
//! &token)`. Go's internal `reserveN(t, n, maxFutureReserve)` is reached
//! through a wait with a deadline, which is how Go's `WaitN` uses it.
//!
//! Where Go's tests sleep on the wall clock (the `Wait` tests,
//! `TestLongRunningQPS`), these run on a `ManualClock`: a wait must be
//! pending until the clock reaches its time to act and done right then.
//! Nothing here sleeps.

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use conc_core::{Cause, Clock, ManualClock, Token};
use conc_limit::{ConfigError, Denied, Limiter, Rate, RateError, Reservation, TokenBucket, WaitError};

/// Go's `d`: the time one token takes at 10 a second.
const D: Duration = Duration::from_millis(100);

fn rate(per_second: f64) -> Rate {
    Rate::per_second(per_second).unwrap()
}

/// A bucket on a manual clock, and Go's `t0` .. `t9`: `t[k]` is `t0 + k*d`,
/// where `t0` is the instant the bucket was made (full, as Go's `NewLimiter`).
fn limiter(per_second: f64, burst: u32) -> (ManualClock, TokenBucket<ManualClock>, [Instant; 10]) {
    let clock = ManualClock::new();
    let bucket = TokenBucket::with_clock(rate(per_second), burst, clock.clone()).unwrap();
    let t0 = clock.now();
    let t = std::array::from_fn(|k| t0 + D * k as u32);
    (clock, bucket, t)
}

/// Go's `dSince`: multiples of `d` since `t0`, rounded to the nearest.
fn d_since(t0: Instant, t: Instant) -> u128 {
    (t.duration_since(t0).as_nanos() + D.as_nanos() / 2) / D.as_nanos()
}

/// Go's `run`: each `(t, n, ok)` is `AllowN(t, n) == ok`.
fn run(bucket: &TokenBucket<ManualClock>, allows: &[(Instant, u32, bool)]) {
    for (step, &(t, n, ok)) in allows.iter().enumerate() {
        assert_eq!(bucket.allow_n_at(t, n), ok, "step {step}: allow_n_at(t, {n})");
    }
}

/// Go's `runReserve`: `ReserveN(t, n)` is ok as expected and, if ok, acts
/// at `act` (to the nearest `d`).
fn run_reserve<'a>(
    bucket: &'a TokenBucket<ManualClock>,
    t0: Instant,
    (t, n, act, ok): (Instant, u32, Instant, bool),
) -> Reservation<'a, ManualClock> {
    let r = bucket.reserve_n_at(t, n);
    assert_eq!(r.ok(), ok, "reserve_n_at(t{}, {n}).ok()", d_since(t0, t));
    if let Some(at) = r.time_to_act() {
        assert_eq!(d_since(t0, at), d_since(t0, act), "reserve_n_at(t{}, {n}): time to act", d_since(t0, t));
    }
    r
}

fn poll_now<F: Future>(future: Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(Waker::noop()))
}

/// Go's `runWait` on a manual clock: the wait is done at once if `delay`
/// is 0; otherwise done once `delay * d` has passed, and still pending half
/// a `d` before (Go rounds the delay to the nearest `d`; waits are truncated
/// to the nanosecond, so they may end a nanosecond before the exact
/// instant).
fn run_wait(
    clock: &ManualClock,
    name: &str,
    wait: impl Future<Output = Result<(), WaitError>>,
    delay: u32,
) -> Result<(), WaitError> {
    let mut wait = pin!(wait);
    if delay > 0 {
        assert!(poll_now(wait.as_mut()).is_pending(), "{name}: done before its delay");
        clock.advance(D * delay - D / 2);
        assert!(poll_now(wait.as_mut()).is_pending(), "{name}: done half a d early");
        clock.advance(D / 2);
    }
    match poll_now(wait.as_mut()) {
        Poll::Ready(result) => result,
        Poll::Pending => panic!("{name}: not done after {delay}d"),
    }
}

// Ported from rate_test.go: TestLimit and TestEvery. Go's `Every(0)` and
// `Every(-1)` are `Inf`; a `Rate` cannot be zero (`Rate::INFINITE` is
// asked for by name), so a zero interval is an error here.
#[test]
fn every() {
    assert!(!rate(10.0).is_infinite());
    assert!(Rate::INFINITE.is_infinite());
    assert_eq!(Rate::every(Duration::ZERO), Err(RateError::NotPositive));
    let cases = [
        (Duration::from_nanos(1), 1e9),
        (Duration::from_micros(1), 1e6),
        (Duration::from_millis(1), 1e3),
        (Duration::from_millis(10), 100.0),
        (Duration::from_millis(100), 10.0),
        (Duration::from_secs(1), 1.0),
        (Duration::from_secs(2), 0.5),
        (Duration::from_millis(2500), 0.4),
        (Duration::from_secs(4), 0.25),
        (Duration::from_secs(10), 0.1),
        (Duration::from_nanos(i64::MAX as u64), 1e9 / i64::MAX as f64),
    ];
    for (interval, per_second) in cases {
        let got = Rate::every(interval).unwrap().per_second_f64();
        assert!((got / per_second - 1.0).abs() < 1e-9, "every({interval:?}) = {got}, want {per_second}");
    }
}

// Ported from rate_test.go: TestLimiterBurst1
#[test]
fn limiter_burst_1() {
    let (_clock, lim, t) = limiter(10.0, 1);
    run(
        &lim,
        &[
            (t[0], 1, true),
            (t[0], 1, false),
            (t[0], 1, false),
            (t[1], 1, true),
            (t[1], 1, false),
            (t[1], 1, false),
            (t[2], 2, false), // burst size is 1, so n=2 always fails
            (t[2], 1, true),
            (t[2], 1, false),
        ],
    );
}

// Ported from rate_test.go: TestLimiterBurst3
#[test]
fn limiter_burst_3() {
    let (_clock, lim, t) = limiter(10.0, 3);
    run(
        &lim,
        &[
            (t[0], 2, true),
            (t[0], 2, false),
            (t[0], 1, true),
            (t[0], 1, false),
            (t[1], 4, false),
            (t[2], 1, true),
            (t[3], 1, true),
            (t[4], 1, true),
            (t[4], 1, true),
            (t[4], 1, false),
            (t[4], 1, false),
            (t[9], 3, true),
            (t[9], 0, true),
        ],
    );
}

// Ported from rate_test.go: TestLimiterJumpBackwards (explicit instants
// earlier than the last one: no time passes, and the bucket's clock moves
// back to them, as in Go).
#[test]
fn limiter_jump_backwards() {
    let (_clock, lim, t) = limiter(10.0, 3);
    run(
        &lim,
        &[
            (t[1], 1, true), // start at t1
            (t[0], 1, true), // jump back to t0, two tokens remain
            (t[0], 1, true),
            (t[0], 1, false),
            (t[0], 1, false),
            (t[1], 1, true), // got a token
            (t[1], 1, false),
            (t[1], 1, false),
            (t[2], 1, true), // got another token
            (t[2], 1, false),
            (t[2], 1, false),
        ],
    );
}

// Ported from rate_test.go: TestLimiter_noTruncationErrors (golang.org/issues/34861)
#[test]
fn limiter_no_truncation_errors() {
    let lim = TokenBucket::new(rate(0.7692307692307693), 1).unwrap();
    assert!(lim.allow());
}

// Ported from rate_test.go: TestSimultaneousRequests. Go relies on a slow
// rate (1/s) so that no token refills during the test; a manual clock that
// is never advanced makes that exact.
#[test]
fn simultaneous_requests() {
    const BURST: u32 = 5;
    const REQUESTS: u32 = 15;
    let lim = TokenBucket::with_clock(rate(1.0), BURST, ManualClock::new()).unwrap();
    let ok = AtomicU32::new(0);
    thread::scope(|scope| {
        for _ in 0..REQUESTS {
            scope.spawn(|| {
                if lim.allow() {
                    ok.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
    assert_eq!(ok.load(Ordering::SeqCst), BURST);
}

// Ported from rate_test.go: TestLongRunningQPS. Go offers ~500 requests a
// second for 5 s of real time against 100/s with bursts of 100 and checks
// the count lies within [0.999 * ideal, ideal + 1], ideal being
// `burst + limit * elapsed`. On a manual clock the schedule is exact.
#[test]
fn long_running_qps() {
    const LIMIT: f64 = 100.0;
    const BURST: u32 = 100;
    let seconds = if cfg!(miri) { 1 } else { 5 };
    let (clock, lim, _) = limiter(LIMIT, BURST);
    let start = clock.now();
    let end = start + Duration::from_secs(seconds);
    let mut ok = 0u32;
    while clock.now() < end {
        if lim.allow() {
            ok += 1;
        }
        clock.advance(Duration::from_millis(2));
    }
    let elapsed = clock.now().duration_since(start).as_secs_f64();
    let ideal = f64::from(BURST) + LIMIT * elapsed;
    // We should never get more requests than allowed.
    assert!(ok <= (ideal + 1.0) as u32, "ok = {ok}, ideal {ideal}");
    // We should get very close to the number of requests allowed.
    assert!(ok >= (0.999 * ideal) as u32, "ok = {ok}, ideal {ideal}");
}

// Ported from rate_test.go: TestSimpleReserve
#[test]
fn simple_reserve() {
    let (_clock, lim, t) = limiter(10.0, 2);
    let _ = run_reserve(&lim, t[0], (t[0], 2, t[0], true));
    let _ = run_reserve(&lim, t[0], (t[0], 2, t[2], true));
    let _ = run_reserve(&lim, t[0], (t[3], 2, t[4], true));
}

// Ported from rate_test.go: TestMix
#[test]
fn mix() {
    let (_clock, lim, t) = limiter(10.0, 2);
    let _ = run_reserve(&lim, t[0], (t[0], 3, t[1], false)); // n > burst
    let _ = run_reserve(&lim, t[0], (t[0], 2, t[0], true));
    run(&lim, &[(t[1], 2, false)]); // not enough tokens: don't allow
    let _ = run_reserve(&lim, t[0], (t[1], 2, t[2], true));
    run(&lim, &[(t[1], 1, false)]); // negative tokens: don't allow
    run(&lim, &[(t[3], 1, true)]);
}

// Ported from rate_test.go: TestCancelInvalid
#[test]
fn cancel_invalid() {
    let (_clock, lim, t) = limiter(10.0, 2);
    let _ = run_reserve(&lim, t[0], (t[0], 2, t[0], true));
    let r = run_reserve(&lim, t[0], (t[0], 3, t[3], false));
    r.cancel_at(t[0]); // should have no effect
    let _ = run_reserve(&lim, t[0], (t[0], 2, t[2], true)); // did not get extra tokens
}

// Ported from rate_test.go: TestCancelLast
#[test]
fn cancel_last() {
    let (_clock, lim, t) = limiter(10.0, 2);
    let _ = run_reserve(&lim, t[0], (t[0], 2, t[0], true));
    let r = run_reserve(&lim, t[0], (t[0], 2, t[2], true));
    r.cancel_at(t[1]); // got 2 tokens back
    let _ = run_reserve(&lim, t[0], (t[1], 2, t[2], true));
}

// Ported from rate_test.go: TestCancelTooLate
#[test]
fn cancel_too_late() {
    let (_clock, lim, t) = limiter(10.0, 2);
    let _ = run_reserve(&lim, t[0], (t[0], 2, t[0], true));
    let r = run_reserve(&lim, t[0], (t[0], 2, t[2], true));
    r.cancel_at(t[3]); // too late to cancel: should have no effect
    let _ = run_reserve(&lim, t[0], (t[3], 2, t[4], true));
}

// Ported from rate_test.go: TestCancel0Tokens
#[test]
fn cancel_0_tokens() {
    let (_clock, lim, t) = limiter(10.0, 2);
    let _ = run_reserve(&lim, t[0], (t[0], 2, t[0], true));
    let r = run_reserve(&lim, t[0], (t[0], 1, t[1], true));
    let _ = run_reserve(&lim, t[0], (t[0], 1, t[2], true));
    r.cancel_at(t[0]); // got 0 tokens back
    let _ = run_reserve(&lim, t[0], (t[0], 1, t[3], true));
}

// Ported from rate_test.go: TestCancel1Token
#[test]
fn cancel_1_token() {
    let (_clock, lim, t) = limiter(10.0, 2);
    let _ = run_reserve(&lim, t[0], (t[0], 2, t[0], true));
    let r = run_reserve(&lim, t[0], (t[0], 2, t[2], true));
    let _ = run_reserve(&lim, t[0], (t[0], 1, t[3], true));
    r.cancel_at(t[2]); // got 1 token back
    let _ = run_reserve(&lim, t[0], (t[2], 2, t[4], true));
}

// Ported from rate_test.go: TestCancelMulti
#[test]
fn cancel_multi() {
    let (_clock, lim, t) = limiter(10.0, 4);
    let _ = run_reserve(&lim, t[0], (t[0], 4, t[0], true));
    let r_a = run_reserve(&lim, t[0], (t[0], 3, t[3], true));
    let _ = run_reserve(&lim, t[0], (t[0], 1, t[4], true));
    let r_c = run_reserve(&lim, t[0], (t[0], 1, t[5], true));
    r_c.cancel_at(t[1]); // get 1 token back
    r_a.cancel_at(t[1]); // get 2 tokens back, as if C was never reserved
    let _ = run_reserve(&lim, t[0], (t[1], 3, t[5], true));
}

// Ported from rate_test.go: TestReserveJumpBack
#[test]
fn reserve_jump_back() {
    let (_clock, lim, t) = limiter(10.0, 2);
    let _ = run_reserve(&lim, t[0], (t[1], 2, t[1], true)); // start at t1
    let _ = run_reserve(&lim, t[0], (t[0], 1, t[1], true)); // should violate Limit, Burst
    let _ = run_reserve(&lim, t[0], (t[2], 2, t[3], true));
}

// Ported from rate_test.go: TestReserveJumpBackCancel
#[test]
fn reserve_jump_back_cancel() {
    let (_clock, lim, t) = limiter(10.0, 2);
    let _ = run_reserve(&lim, t[0], (t[1], 2, t[1], true)); // start at t1
    let r = run_reserve(&lim, t[0], (t[1], 2, t[3], true));
    let _ = run_reserve(&lim, t[0], (t[1], 1, t[4], true));
    r.cancel_at(t[0]); // cancel at t0, get 1 token back
    let _ = run_reserve(&lim, t[0], (t[1], 2, t[4], true)); // should violate Limit, Burst
}

// Ported from rate_test.go: TestReserveSetLimit
#[test]
fn reserve_set_limit() {
    let (_clock, lim, t) = limiter(5.0, 2);
    let _ = run_reserve(&lim, t[0], (t[0], 2, t[0], true));
    let _ = run_reserve(&lim, t[0], (t[0], 2, t[4], true));
    lim.set_rate_at(t[2], rate(10.0));
    let _ = run_reserve(&lim, t[0], (t[2], 1, t[4], true)); // violates Limit and Burst
}

// Ported from rate_test.go: TestReserveSetBurst
#[test]
fn reserve_set_burst() {
    let (_clock, lim, t) = limiter(5.0, 2);
    let _ = run_reserve(&lim, t[0], (t[0], 2, t[0], true));
    let _ = run_reserve(&lim, t[0], (t[0], 2, t[4], true));
    lim.set_burst_at(t[3], 4).unwrap();
    let _ = run_reserve(&lim, t[0], (t[0], 4, t[9], true)); // violates Limit and Burst
}

// Ported from rate_test.go: TestReserveSetLimitCancel
#[test]
fn reserve_set_limit_cancel() {
    let (_clock, lim, t) = limiter(5.0, 2);
    let _ = run_reserve(&lim, t[0], (t[0], 2, t[0], true));
    let r = run_reserve(&lim, t[0], (t[0], 2, t[4], true));
    lim.set_rate_at(t[2], rate(10.0));
    r.cancel_at(t[2]); // 2 tokens back
    let _ = run_reserve(&lim, t[0], (t[2], 2, t[3], true));
}

// Ported from rate_test.go: TestReserveMax. Go calls its internal
// `reserveN(t, n, maxFutureReserve = d)`; the public road to it is a wait
// whose token's deadline is `d` away, which reserves with exactly that cap.
#[test]
fn reserve_max() {
    let (clock, lim, t) = limiter(10.0, 2);
    let max_t = Token::with_clock(clock.clone()).with_deadline(t[1]);
    assert!(lim.allow_n_at(t[0], 2));
    // Reserve for the close future: done at t1.
    let mut close = pin!(lim.wait_n_until(1, &max_t));
    assert!(poll_now(close.as_mut()).is_pending());
    // Time to act too far in the future: refused at once, nothing taken.
    let far = futures_lite::future::block_on(lim.wait_n_until(1, &max_t));
    assert_eq!(far, Err(WaitError::DeadlineTooSoon { ready_at: t[2], deadline: t[1] }));
    clock.advance_to(t[1]);
    assert_eq!(poll_now(close.as_mut()), Poll::Ready(Ok(())));
    assert!(lim.tokens_at(t[1]).abs() < 1e-9, "the refused wait took nothing");
}

// Ported from rate_test.go: TestWaitSimple
#[test]
fn wait_simple() {
    let (clock, lim, _) = limiter(10.0, 3);

    let cancelled = Token::with_clock(clock.clone());
    cancelled.cancel();
    let err = run_wait(&clock, "already-cancelled", lim.wait_n_until(1, &cancelled), 0);
    assert_eq!(err, Err(WaitError::Cancelled(Cause::Cancelled)));

    let background = Token::with_clock(clock.clone());
    let err = run_wait(&clock, "exceed-burst-error", lim.wait_n_until(4, &background), 0);
    assert_eq!(err, Err(WaitError::ExceedsBurst { requested: 4, burst: 3 }));

    run_wait(&clock, "act-now", lim.wait_n_until(2, &background), 0).unwrap();
    run_wait(&clock, "act-later", lim.wait_n_until(3, &background), 2).unwrap();
}

// Ported from rate_test.go: TestWaitCancel
#[test]
fn wait_cancel() {
    let (clock, lim, _) = limiter(10.0, 3);
    let ctx = Token::with_clock(clock.clone());
    run_wait(&clock, "act-now", lim.wait_n_until(2, &ctx), 0).unwrap(); // after this, 1 token

    let mut will_cancel = pin!(lim.wait_n_until(3, &ctx));
    assert!(poll_now(will_cancel.as_mut()).is_pending());
    clock.advance(D);
    ctx.cancel();
    assert_eq!(poll_now(will_cancel.as_mut()), Poll::Ready(Err(WaitError::Cancelled(Cause::Cancelled))));
    // Should get 3 tokens back, and have 2 tokens.
    assert!((lim.tokens() - 2.0).abs() < 1e-9, "tokens {}", lim.tokens());

    let background = Token::with_clock(clock.clone());
    run_wait(&clock, "act-now-after-cancel", lim.wait_n_until(2, &background), 0).unwrap();
}

// Ported from rate_test.go: TestWaitTimeout
#[test]
fn wait_timeout() {
    let (clock, lim, _) = limiter(10.0, 3);
    let ctx = Token::with_clock(clock.clone()).with_timeout(D);
    run_wait(&clock, "act-now", lim.wait_n_until(2, &ctx), 0).unwrap();
    let err = run_wait(&clock, "w-timeout-err", lim.wait_n_until(3, &ctx), 0);
    assert!(matches!(err, Err(WaitError::DeadlineTooSoon { .. })), "{err:?}");
    assert!((lim.tokens() - 1.0).abs() < 1e-9, "the refused wait took nothing");
}

// Ported from rate_test.go: TestWaitInf. Go uses `NewLimiter(Inf, 0)`; a
// burst of 0 is rejected here, and an infinite rate ignores the burst.
#[test]
fn wait_inf() {
    let clock = ManualClock::new();
    let lim = TokenBucket::with_clock(Rate::INFINITE, 1, clock.clone()).unwrap();
    run_wait(&clock, "exceed-burst-no-error", lim.wait_n(3), 0).unwrap();
}

// Ported from rate_test.go: TestZeroLimit. Go's `Limit(0)` is a full
// bucket that never refills; a `Rate` cannot be zero, and the slowest
// rates admit the same through `allow`.
#[test]
fn zero_limit() {
    assert_eq!(Rate::per_second(0.0), Err(RateError::NotPositive));
    assert_eq!(TokenBucket::new(rate(1.0), 0).unwrap_err(), ConfigError::ZeroBurst);
    let (clock, lim, _) = limiter(1e-12, 1);
    assert!(lim.allow(), "want true when first used");
    clock.advance(Duration::from_secs(3600));
    assert!(!lim.allow(), "want false when already used");
}

// Ported from rate_test.go: TestSetAfterZeroLimit, with the slowest rate
// for Go's zero limit.
#[test]
fn set_after_zero_limit() {
    let (clock, lim, t) = limiter(1e-12, 1);
    // The bucket starts full, so even though the rate is ~0, the first
    // request is allowed...
    assert!(lim.allow_n_at(t[0], 1));
    // ...but it is not refilled, so the next one is denied.
    assert!(!lim.allow_n_at(t[1], 1));
    clock.advance_to(t[2]);
    lim.set_rate_at(t[2], rate(10.0));
    // At 10/s, expect another token in 100 ms.
    run_wait(&clock, "wait-after-set-nonzero-after-zero", lim.wait_n(1), 1).unwrap();
}

// Go's `TokensAt` (rate.go; exercised by Go's tests only through the
// allow tables): fractional while refilling, negative while reservations
// borrow from the future, capped at the burst, and reading it takes
// nothing.
#[test]
fn tokens_at() {
    let (_clock, lim, t) = limiter(10.0, 2);
    assert_eq!(lim.tokens_at(t[0]), 2.0);
    let _ = lim.reserve_n_at(t[0], 2);
    let _ = lim.reserve_n_at(t[0], 1);
    assert_eq!(lim.tokens_at(t[0]), -1.0);
    assert!((lim.tokens_at(t[0] + D / 2) + 0.5).abs() < 1e-9);
    assert!((lim.tokens_at(t[2]) - 1.0).abs() < 1e-9);
    assert_eq!(lim.tokens_at(t[9]), 2.0, "capped at the burst");
    assert_eq!(lim.tokens_at(t[0]), -1.0, "reading took nothing");
}

// Beyond Go's tests: what `Limiter::check_n_at` (our addition) promises.
// A denial takes nothing and says when to retry; too many at once is its
// own denial.
#[test]
fn check_says_when_to_retry() {
    let (_clock, lim, t) = limiter(10.0, 3);
    assert_eq!(lim.check_n_at(t[0], 3), Ok(()));
    assert_eq!(lim.check_n_at(t[0], 2), Err(Denied::NotUntil(t[2])));
    assert_eq!(lim.check_n_at(t[1], 2), Err(Denied::NotUntil(t[2])));
    assert_eq!(lim.check_n_at(t[9], 4), Err(Denied::ExceedsBurst { requested: 4, burst: 3 }));
    assert_eq!(lim.check_n_at(t[2], 2), Ok(()));
}

// Beyond Go's tests: dropping a wait mid-sleep gives its reservation back,
// as Go's `WaitN` does when its context ends (a dropped future is our way
// of leaving the wait).
#[test]
fn a_dropped_wait_gives_its_tokens_back() {
    let (clock, lim, t) = limiter(10.0, 3);
    run_wait(&clock, "act-now", lim.wait_n(2), 0).unwrap(); // 1 token left
    {
        let mut wait = pin!(lim.wait_n(3));
        assert!(poll_now(wait.as_mut()).is_pending());
        clock.advance_to(t[1]);
    }
    assert!((lim.tokens() - 2.0).abs() < 1e-9, "tokens {}", lim.tokens());
}

// Beyond Go's tests: the bound a token bucket keeps. In every window of
// length T it admits at most `burst + rate * T` events (plus at most a
// nanosecond's worth, Go's truncation of waits).
#[test]
fn no_window_admits_more_than_burst_plus_rate_times_length() {
    let (clock, lim, _) = limiter(10.0, 3);
    let mut admitted = Vec::new();
    let steps = if cfg!(miri) { 200 } else { 5_000 };
    for step in 0..steps {
        if lim.allow_n(1 + step % 2) {
            admitted.push((clock.now(), 1 + step % 2));
        }
        clock.advance(Duration::from_millis(7 * (step % 5) as u64));
    }
    for (i, &(from, _)) in admitted.iter().enumerate() {
        let mut count = 0;
        for &(at, n) in &admitted[i..] {
            count += n;
            let length = at.duration_since(from).as_secs_f64();
            assert!(f64::from(count) <= 3.0 + 10.0 * length + 1e-6, "{count} events in {length} s");
        }
    }
}
