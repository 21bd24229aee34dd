//! The meaning of sony/gobreaker's tests (gobreaker_test.go:
//! TestDefaultCircuitBreaker, TestCustomCircuitBreaker, TestPanicInRequest,
//! TestGeneration, TestCircuitBreakerInParallel), ported to conc-breaker
//! with a `ManualClock` in place of gobreaker's `pseudoSleep`.
//!
//! Two documented differences show up in the assertions:
//! - gobreaker counts a request when it is admitted; conc-breaker counts a
//!   call when its outcome is recorded (so an in-flight call is not in
//!   `calls` yet);
//! - consecutive successes are tracked only with a `trip_when` predicate
//!   (or half-open), so the default breaker's counts skip that field.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use conc_breaker::{Breaker, BreakerError, Counts, State};
use conc_core::ManualClock;

const SEC: Duration = Duration::from_secs(1);

fn succeed(breaker: &Breaker) -> Result<(), BreakerError<&'static str>> {
    breaker.call_blocking(|| Ok(()))
}

/// `Ok` when the call ran and failed (gobreaker's `fail` helper).
fn fail(breaker: &Breaker) -> Result<(), BreakerError<&'static str>> {
    match breaker.call_blocking(|| Err::<(), _>("fail")) {
        Err(BreakerError::Inner("fail")) => Ok(()),
        Err(other) => Err(other),
        Ok(()) => unreachable!("the call fails"),
    }
}

fn counts(breaker: &Breaker) -> Counts {
    breaker.metrics().counts
}

/// (calls, successes, failures, consecutive failures): gobreaker's `Counts`
/// less the consecutive successes the default breaker does not track.
fn short(counts: Counts) -> (u64, u64, u64, u64) {
    (counts.calls, counts.successes, counts.failures, counts.consecutive_failures)
}

/// The last state change a listener saw.
type LastChange = Arc<Mutex<Option<(State, State)>>>;

/// gobreaker's `customCB`: MaxRequests 3, Interval 30 s, Timeout 90 s,
/// ReadyToTrip at a failure ratio of 0.6 over at least 3 requests, and an
/// OnStateChange that remembers the last change.
fn custom() -> (Breaker, ManualClock, LastChange) {
    let clock = ManualClock::new();
    let last = Arc::new(Mutex::new(None));
    let sink = Arc::clone(&last);
    let breaker = Breaker::builder()
        .half_open_trials(3)
        .interval(30 * SEC)
        .open_duration(90 * SEC)
        .trip_when(|counts| {
            let ratio = counts.failures as f64 / counts.calls as f64;
            counts.calls >= 3 && ratio >= 0.6
        })
        .on_state_change(move |change| *sink.lock().unwrap() = Some((change.from, change.to)))
        .clock(clock.clone())
        .build()
        .unwrap();
    (breaker, clock, last)
}

#[test]
fn default_circuit_breaker() {
    let clock = ManualClock::new();
    let breaker = Breaker::builder().clock(clock.clone()).build().unwrap();
    for _ in 0..5 {
        assert_eq!(fail(&breaker), Ok(()));
    }
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(short(counts(&breaker)), (5, 0, 5, 5));

    assert_eq!(succeed(&breaker), Ok(()));
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(short(counts(&breaker)), (6, 1, 5, 0));

    assert_eq!(fail(&breaker), Ok(()));
    assert_eq!(short(counts(&breaker)), (7, 1, 6, 1));

    // Closed to Open: 6 consecutive failures.
    for _ in 0..5 {
        assert_eq!(fail(&breaker), Ok(()));
    }
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(counts(&breaker), Counts::default());

    assert!(succeed(&breaker).is_err_and(|error| error.is_rejected()));
    assert!(fail(&breaker).is_err_and(|error| error.is_rejected()));
    assert_eq!(counts(&breaker), Counts::default(), "rejected calls are not counted");

    clock.advance(59 * SEC);
    assert_eq!(breaker.state(), State::Open);

    // Open to HalfOpen, once the 60 s default passes.
    clock.advance(SEC);
    assert_eq!(breaker.state(), State::HalfOpen);

    // HalfOpen to Open.
    assert_eq!(fail(&breaker), Ok(()));
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(counts(&breaker), Counts::default());

    // Open to HalfOpen, then to Closed.
    clock.advance(60 * SEC);
    assert_eq!(breaker.state(), State::HalfOpen);
    assert_eq!(succeed(&breaker), Ok(()));
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(counts(&breaker), Counts::default());
}

#[test]
fn custom_circuit_breaker() {
    let (breaker, clock, last) = custom();
    for _ in 0..5 {
        assert_eq!(succeed(&breaker), Ok(()));
        assert_eq!(fail(&breaker), Ok(()));
    }
    assert_eq!(breaker.state(), State::Closed);
    let expect = |calls, successes, failures, consecutive_successes, consecutive_failures| Counts {
        calls,
        successes,
        failures,
        slow_calls: 0,
        consecutive_successes,
        consecutive_failures,
    };
    assert_eq!(counts(&breaker), expect(10, 5, 5, 0, 1));

    clock.advance(29 * SEC);
    assert_eq!(succeed(&breaker), Ok(()));
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(counts(&breaker), expect(11, 6, 5, 1, 0));

    clock.advance(SEC); // over Interval: the counts start again
    assert_eq!(fail(&breaker), Ok(()));
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(counts(&breaker), expect(1, 0, 1, 0, 1));

    // Closed to Open: failure ratio 2/3 >= 0.6.
    assert_eq!(succeed(&breaker), Ok(()));
    assert_eq!(fail(&breaker), Ok(()));
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(counts(&breaker), Counts::default());
    assert_eq!(*last.lock().unwrap(), Some((State::Closed, State::Open)));

    // Open to HalfOpen.
    clock.advance(90 * SEC);
    assert_eq!(breaker.state(), State::HalfOpen);
    assert_eq!(*last.lock().unwrap(), Some((State::Open, State::HalfOpen)));

    assert_eq!(succeed(&breaker), Ok(()));
    assert_eq!(succeed(&breaker), Ok(()));
    assert_eq!(breaker.state(), State::HalfOpen);
    assert_eq!(counts(&breaker), expect(2, 2, 0, 2, 0));

    // HalfOpen to Closed: the third trial is in flight, a fourth is over
    // MaxRequests, and the third's success closes the breaker.
    let third = breaker.try_acquire().unwrap();
    assert_eq!(counts(&breaker), expect(2, 2, 0, 2, 0), "counted when it reports");
    assert!(matches!(succeed(&breaker), Err(BreakerError::HalfOpenFull)));
    third.success();
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(counts(&breaker), Counts::default());
    assert_eq!(*last.lock().unwrap(), Some((State::HalfOpen, State::Closed)));
}

#[test]
fn panic_in_request_counts_as_a_failure() {
    let breaker = Breaker::builder().clock(ManualClock::new()).build().unwrap();
    let panicked = std::panic::catch_unwind(|| {
        let _ = breaker.call_blocking(|| -> Result<(), ()> { panic!("oops") });
    });
    assert!(panicked.is_err());
    assert_eq!(short(counts(&breaker)), (1, 0, 1, 1));
}

#[test]
fn generation() {
    let (breaker, clock, _) = custom();
    clock.advance(29 * SEC);
    assert_eq!(succeed(&breaker), Ok(()));
    let in_flight = breaker.try_acquire().unwrap();
    assert_eq!(counts(&breaker).calls, 1);

    clock.advance(SEC); // over Interval
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(counts(&breaker), Counts::default());

    // The request from the previous generation has no effect.
    in_flight.success();
    assert_eq!(counts(&breaker), Counts::default());
}

#[test]
fn circuit_breaker_in_parallel() {
    let (breaker, _clock, _) = custom();
    let (threads, per_thread) = if cfg!(miri) { (3, 20) } else { (10, 10_000) };
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                for _ in 0..per_thread {
                    assert_eq!(succeed(&breaker), Ok(()));
                }
            });
        }
    });
    let total = threads * per_thread;
    assert_eq!(
        counts(&breaker),
        Counts {
            calls: total,
            successes: total,
            failures: 0,
            slow_calls: 0,
            consecutive_successes: total,
            consecutive_failures: 0
        }
    );
}

#[test]
fn state_change_listeners_see_each_transition_in_order() {
    let clock = ManualClock::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let breaker = Breaker::builder()
        .consecutive_failures(1)
        .open_duration(10 * SEC)
        .on_state_change(move |change| sink.lock().unwrap().push((change.from, change.to, change.at)))
        .clock(clock.clone())
        .build()
        .unwrap();
    let start = conc_core::Clock::now(&clock);
    assert_eq!(fail(&breaker), Ok(()));
    clock.advance(10 * SEC);
    assert_eq!(fail(&breaker), Ok(()));
    clock.advance(10 * SEC);
    assert_eq!(succeed(&breaker), Ok(()));
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            (State::Closed, State::Open, start),
            (State::Open, State::HalfOpen, start + 10 * SEC),
            (State::HalfOpen, State::Open, start + 10 * SEC),
            (State::Open, State::HalfOpen, start + 20 * SEC),
            (State::HalfOpen, State::Closed, start + 20 * SEC),
        ]
    );
}
