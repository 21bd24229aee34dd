use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::Duration;

use conc_core::{Cause, ManualClock, Token};

use super::*;
use crate::WaitError;

const MS: Duration = Duration::from_millis(1);

fn bucket(per_second: f64, burst: u32) -> (ManualClock, TokenBucket<ManualClock>) {
    let clock = ManualClock::new();
    let bucket = TokenBucket::with_clock(Rate::per_second(per_second).unwrap(), burst, clock.clone()).unwrap();
    (clock, bucket)
}

fn poll<F: Future>(future: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn durations_truncate_to_the_nanosecond_and_saturate() {
    let ten = Rate::per_second(10.0).unwrap();
    assert_eq!(duration_from_tokens(ten, 2.0), Duration::from_millis(200));
    assert_eq!(duration_from_tokens(ten, 1e-9), Duration::ZERO, "less than a nanosecond's worth");
    assert_eq!(duration_from_tokens(ten, 0.0), Duration::ZERO);
    assert_eq!(duration_from_tokens(Rate::INFINITE, 5.0), Duration::ZERO);
    assert_eq!(duration_from_tokens(Rate::per_second(1e-300).unwrap(), 1.0), Duration::MAX);

    let at = Instant::now();
    assert_eq!(saturating_add(at, MS), at + MS);
    assert_eq!(saturating_add(at, Duration::MAX), at + crate::time::FAR_FUTURE);
    assert!((signed_secs(at + MS, at) - 1e-3).abs() < 1e-12);
    assert!((signed_secs(at, at + MS) + 1e-3).abs() < 1e-12);
}

#[test]
fn zero_burst_is_rejected_everywhere() {
    let rate = Rate::per_second(1.0).unwrap();
    assert_eq!(TokenBucket::new(rate, 0).unwrap_err(), ConfigError::ZeroBurst);
    assert_eq!(TokenBucket::new(Rate::INFINITE, 0).unwrap_err(), ConfigError::ZeroBurst);
    let (_clock, bucket) = bucket(1.0, 2);
    assert_eq!(bucket.set_burst(0), Err(ConfigError::ZeroBurst));
    assert_eq!(bucket.burst(), 2, "a rejected setting changes nothing");
}

#[test]
fn a_denied_check_takes_nothing_and_its_retry_instant_is_right() {
    for per_second in [0.7692307692307693, 3.0, 10.0, 333.3, 1e6] {
        for burst in [1, 3, 7] {
            for n in 1..=burst {
                let (clock, bucket) = bucket(per_second, burst);
                let start = clock.now();
                assert_eq!(bucket.check_n_at(start, burst), Ok(()));
                let Err(Denied::NotUntil(at)) = bucket.check_n_at(start, n) else {
                    panic!("an empty bucket denies {n} at {per_second}/s");
                };
                assert_eq!(bucket.tokens_at(start), 0.0, "a denial takes nothing");
                // Go's truncation of waits may pass a nanosecond early.
                let just_before = at - Duration::from_nanos(2);
                assert!(bucket.check_n_at(just_before, n).is_err(), "{n} at {per_second}/s: not before {at:?}");
                assert_eq!(bucket.check_n_at(at, n), Ok(()), "{n} at {per_second}/s: admitted at the retry instant");
            }
        }
    }
}

#[test]
fn exceeding_the_burst_is_its_own_denial() {
    let (clock, bucket) = bucket(10.0, 3);
    assert_eq!(bucket.check_n_at(clock.now(), 4), Err(Denied::ExceedsBurst { requested: 4, burst: 3 }));
    assert!(!bucket.allow_n(4));
    let reservation = bucket.reserve_n(4);
    assert!(!reservation.ok());
    assert_eq!(reservation.delay(), Duration::MAX);
    assert_eq!(reservation.time_to_act(), None);
    reservation.cancel();
    assert_eq!(bucket.tokens(), 3.0, "a refused reservation took nothing and gives nothing");
}

#[test]
fn fresh_and_idle() {
    let (clock, bucket) = bucket(10.0, 2);
    bucket.set_max_waiters(Some(4));
    let start = clock.now();
    assert!(bucket.is_idle_at(start));
    assert!(bucket.allow());
    assert!(!bucket.is_idle_at(start));
    assert!(!bucket.is_idle_at(start + 99 * MS));
    assert!(bucket.is_idle_at(start + 100 * MS), "refilled to the burst");

    let fresh = bucket.fresh_at(start);
    assert_eq!((fresh.rate(), fresh.burst(), fresh.max_waiters()), (bucket.rate(), 2, Some(4)));
    assert_eq!(fresh.tokens_at(start), 2.0);
    assert_eq!(Limiter::now(&fresh), clock.now());
}

#[test]
fn an_infinite_rate_admits_everything_and_takes_nothing() {
    let clock = ManualClock::new();
    let bucket = TokenBucket::with_clock(Rate::INFINITE, 1, clock.clone()).unwrap();
    assert!(bucket.allow_n(1_000_000));
    assert_eq!(bucket.check_n_at(clock.now(), u32::MAX), Ok(()));
    assert!(bucket.is_idle_at(clock.now()));
    let free = bucket.reserve_n(50);
    assert!(free.ok());
    assert_eq!(free.delay(), Duration::ZERO);
    assert_eq!(bucket.tokens(), 1.0, "no time passed: no NaN from infinity times zero");

    // Go would give back up to 50 tokens here; this one took none.
    bucket.set_rate(Rate::per_second(1.0).unwrap());
    assert!(bucket.allow());
    free.cancel();
    assert_eq!(bucket.tokens(), 0.0);
}

#[test]
fn a_smaller_burst_caps_the_tokens() {
    let (clock, bucket) = bucket(10.0, 5);
    bucket.set_burst(2).unwrap();
    assert_eq!(bucket.tokens(), 2.0);
    assert!(bucket.allow_n(2));
    assert!(!bucket.allow());
    clock.advance(Duration::from_secs(10));
    assert_eq!(bucket.tokens(), 2.0);
}

#[test]
fn debug_shows_the_settings() {
    let (_clock, bucket) = bucket(10.0, 5);
    let text = format!("{bucket:?}");
    assert!(text.contains("Rate(10/s)") && text.contains("burst: 5"), "{text}");
    let reservation = bucket.reserve();
    assert!(format!("{reservation:?}").contains("ok: true"));
}

#[test]
fn wait_futures_are_send() {
    fn send<T: Send>(_: &T) {}
    let (_clock, bucket) = bucket(10.0, 1);
    let token = Token::new();
    send(&bucket.wait_n(1));
    send(&bucket.wait_n_until(1, &token));
}

#[test]
fn dropping_a_pending_wait_gives_its_tokens_back() {
    let (clock, bucket) = bucket(10.0, 2);
    assert!(bucket.allow_n(2));
    {
        let mut wait = pin!(bucket.wait_n(2));
        assert!(poll(wait.as_mut()).is_pending());
        assert_eq!(bucket.waiting(), 1);
        assert_eq!(bucket.tokens(), -2.0, "reserved while sleeping");
        clock.advance(100 * MS);
        assert!(poll(wait.as_mut()).is_pending());
    }
    assert_eq!(bucket.waiting(), 0);
    assert!((bucket.tokens() - 1.0).abs() < 1e-9, "the two reserved tokens came back: {}", bucket.tokens());
}

#[test]
fn the_waiter_cap_counts_only_sleepers() {
    let (clock, bucket) = bucket(10.0, 2);
    bucket.set_max_waiters(Some(1));
    assert_eq!(bucket.max_waiters(), Some(1));
    // The tokens are there: no sleep, no place taken.
    futures_lite::future::block_on(bucket.wait_n(1)).unwrap();
    let mut first = pin!(bucket.wait_n(2));
    assert!(poll(first.as_mut()).is_pending());
    let mut second = pin!(bucket.wait_n(1));
    assert_eq!(poll(second.as_mut()), Poll::Ready(Err(WaitError::TooManyWaiters { max: 1 })));
    assert!((bucket.tokens() + 1.0).abs() < 1e-9, "the rejected wait took nothing");
    clock.advance(150 * MS);
    assert_eq!(poll(first.as_mut()), Poll::Ready(Ok(())));
    bucket.set_max_waiters(None);
    assert_eq!(bucket.max_waiters(), None);
}

#[test]
fn a_deadline_at_the_very_instant_the_tokens_are_due_succeeds() {
    let (clock, bucket) = bucket(10.0, 1);
    assert!(bucket.allow());
    let token = Token::with_clock(clock.clone()).with_timeout(100 * MS);
    let mut wait = pin!(bucket.wait_n_until(1, &token));
    assert!(poll(wait.as_mut()).is_pending());
    clock.advance(100 * MS);
    assert_eq!(token.cause(), Some(Cause::DeadlineExceeded));
    assert_eq!(poll(wait.as_mut()), Poll::Ready(Ok(())), "the tokens were due when the deadline fired");
    assert!(bucket.tokens().abs() < 1e-9, "and are spent");
}

#[test]
fn blocking_waits_wake_when_another_thread_advances_the_clock() {
    let (clock, bucket) = bucket(10.0, 1);
    assert!(bucket.allow());
    let token = Token::with_clock(clock.clone());
    thread::scope(|scope| {
        let waiter = scope.spawn(|| bucket.wait_n_blocking(1));
        while bucket.waiting() == 0 {
            thread::yield_now();
        }
        clock.advance(100 * MS);
        assert_eq!(waiter.join().unwrap(), Ok(()));

        let cancelled = scope.spawn(|| bucket.wait_n_blocking_until(1, &token));
        while bucket.waiting() == 0 {
            thread::yield_now();
        }
        token.cancel();
        assert_eq!(cancelled.join().unwrap(), Err(WaitError::Cancelled(Cause::Cancelled)));
    });
    assert!(bucket.tokens().abs() < 1e-9, "the cancelled wait gave its token back: {}", bucket.tokens());
    assert_eq!(bucket.wait_n_blocking(2), Err(WaitError::ExceedsBurst { requested: 2, burst: 1 }));
}
