//! conc-breaker's tower layer, driven through `tower::ServiceExt` and
//! `tower::ServiceBuilder` on a `ManualClock`.
#![cfg(feature = "tower")]

use std::convert::Infallible;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use conc_breaker::tower::{BreakerLayer, BreakerService, Classify, DefaultClassifier};
use conc_breaker::{Breaker, BreakerBuilder, BreakerError, State};
use conc_core::{Clock, ManualClock};
use futures_lite::future::block_on;
use tower::{Layer, Service, ServiceBuilder, ServiceExt, service_fn};

const OPEN: Duration = Duration::from_secs(10);

fn breaker(builder: BreakerBuilder) -> (Arc<Breaker>, ManualClock) {
    let clock = ManualClock::new();
    (Arc::new(builder.open_duration(OPEN).clock(clock.clone()).build().unwrap()), clock)
}

/// A downstream answering a request with an HTTP-like status code: the
/// request is the status to answer. Counts its calls.
fn statuses(
    calls: &Arc<AtomicUsize>,
) -> impl Service<u16, Response = u16, Error = Infallible, Future: Send> + Clone + use<> {
    let calls = Arc::clone(calls);
    service_fn(move |status: u16| {
        calls.fetch_add(1, Ordering::SeqCst);
        async move { Ok::<_, Infallible>(status) }
    })
}

fn server_error(result: &Result<u16, Infallible>) -> bool {
    result.as_ref().map_or(true, |status| *status >= 500)
}

/// A downstream that fails when asked for 0.
fn fallible(calls: &Arc<AtomicUsize>) -> impl Service<u32, Response = u32, Error = &'static str> + Clone + use<> {
    let calls = Arc::clone(calls);
    service_fn(move |n: u32| {
        calls.fetch_add(1, Ordering::SeqCst);
        async move { if n == 0 { Err("refused") } else { Ok(n) } }
    })
}

fn poll_now<F: Future + ?Sized>(future: Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn opens_after_failures_shared_by_clones_and_rejects_without_calling_inner() {
    let (breaker, clock) = breaker(Breaker::builder().consecutive_failures(3));
    let calls = Arc::new(AtomicUsize::new(0));
    let service = ServiceBuilder::new().layer(BreakerLayer::new(Arc::clone(&breaker))).service(fallible(&calls));
    let (a, b) = (service.clone(), service.clone());
    block_on(async {
        assert_eq!(a.clone().oneshot(1).await, Ok(1));
        // Failures through two clones count on the one breaker.
        assert_eq!(a.clone().oneshot(0).await, Err(BreakerError::Inner("refused")));
        assert_eq!(b.clone().oneshot(0).await, Err(BreakerError::Inner("refused")));
        assert_eq!(breaker.state(), State::Closed);
        assert_eq!(a.clone().oneshot(0).await, Err(BreakerError::Inner("refused")));
        assert_eq!(breaker.state(), State::Open);

        let rejected = b.clone().oneshot(1).await.unwrap_err();
        assert_eq!(rejected, BreakerError::Open { retry_at: Some(clock.now() + OPEN) });
        assert!(rejected.is_rejected());
        assert_eq!(calls.load(Ordering::SeqCst), 4, "a rejected request must not reach the inner service");
        assert_eq!(breaker.metrics().rejected, 1);
    });
}

#[test]
fn a_half_open_trial_through_the_service_closes_or_reopens_it() {
    let (breaker, clock) = breaker(Breaker::builder().consecutive_failures(1));
    let calls = Arc::new(AtomicUsize::new(0));
    let service = BreakerLayer::new(Arc::clone(&breaker)).layer(fallible(&calls));
    block_on(async {
        assert!(service.clone().oneshot(0).await.is_err());
        assert_eq!(breaker.state(), State::Open);

        // A failing trial opens it again.
        clock.advance(OPEN);
        assert_eq!(breaker.state(), State::HalfOpen);
        assert_eq!(service.clone().oneshot(0).await, Err(BreakerError::Inner("refused")));
        assert_eq!(breaker.state(), State::Open);
        let Err(BreakerError::Open { retry_at }) = service.clone().oneshot(1).await else { panic!("not open") };
        assert_eq!(retry_at, Some(clock.now() + OPEN));

        // A succeeding trial closes it.
        clock.advance(OPEN);
        assert_eq!(service.clone().oneshot(7).await, Ok(7));
        assert_eq!(breaker.state(), State::Closed);
        assert_eq!(service.oneshot(8).await, Ok(8));
    });
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

#[test]
fn half_open_full_rejects_while_the_trials_are_in_flight() {
    let (breaker, clock) = breaker(Breaker::builder().consecutive_failures(1).half_open_trials(1));
    let open = Arc::new(AtomicBool::new(false));
    let gate = Arc::clone(&open);
    let service = BreakerLayer::new(Arc::clone(&breaker)).layer(service_fn(move |n: u32| {
        let gate = Arc::clone(&gate);
        std::future::poll_fn(move |_| {
            if gate.load(Ordering::SeqCst) { Poll::Ready(Ok::<_, Infallible>(n)) } else { Poll::Pending }
        })
    }));
    breaker.try_acquire().unwrap().failure();
    clock.advance(OPEN);

    let mut trial = pin!(service.clone().oneshot(1));
    assert!(poll_now(trial.as_mut()).is_pending());
    assert_eq!(block_on(service.clone().oneshot(2)), Err(BreakerError::HalfOpenFull));
    open.store(true, Ordering::SeqCst);
    assert_eq!(poll_now(trial.as_mut()), Poll::Ready(Ok(1)));
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn the_classifier_decides_what_a_failure_is() {
    let (breaker, _clock) = breaker(Breaker::builder().consecutive_failures(2));
    let calls = Arc::new(AtomicUsize::new(0));
    let service = ServiceBuilder::new()
        .layer(BreakerLayer::new(Arc::clone(&breaker)).classify(server_error))
        .service(statuses(&calls));
    block_on(async {
        // Responses reach the caller unchanged, whatever they count as.
        assert_eq!(service.clone().oneshot(503).await, Ok(503));
        assert_eq!(service.clone().oneshot(404).await, Ok(404)); // the client's mistake: a success
        assert_eq!(service.clone().oneshot(502).await, Ok(502));
        assert_eq!(breaker.state(), State::Closed, "the 404 ended the run of failures");
        assert_eq!(service.clone().oneshot(500).await, Ok(500));
        assert_eq!(breaker.state(), State::Open);
        assert!(service.oneshot(200).await.unwrap_err().is_rejected());
    });
    assert_eq!(calls.load(Ordering::SeqCst), 4);

    // A closure classifier, and the default one.
    let closure = |result: &Result<u16, Infallible>| matches!(result, Ok(429));
    assert!(closure.is_failure(&Ok(429)));
    assert!(!closure.is_failure(&Ok(500)));
    assert!(Classify::<u16, &str>::is_failure(&DefaultClassifier, &Err("x")));
    assert!(!Classify::<u16, &str>::is_failure(&DefaultClassifier, &Ok(500)));
}

#[test]
fn a_dropped_response_future_records_nothing() {
    let (breaker, clock) = breaker(Breaker::builder().consecutive_failures(1));
    let dropped = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&dropped);
    let service = BreakerService::new(
        service_fn(move |_: u32| {
            let guard = DropCounter(Arc::clone(&counter));
            async move {
                let _guard = guard;
                std::future::pending::<Result<u32, &'static str>>().await
            }
        }),
        Arc::clone(&breaker),
    );
    let mut call = Box::pin(service.clone().oneshot(1));
    assert!(poll_now(call.as_mut()).is_pending());
    drop(call); // the client went away
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
    assert_eq!(breaker.metrics().counts.calls, 0, "neither a success nor a failure");
    assert_eq!(breaker.state(), State::Closed);

    // A dropped half-open trial gives its place back.
    breaker.try_acquire().unwrap().failure();
    clock.advance(OPEN);
    let mut trial = Box::pin(service.clone().oneshot(2));
    assert!(poll_now(trial.as_mut()).is_pending());
    assert_eq!(block_on(service.clone().oneshot(3)), Err(BreakerError::HalfOpenFull));
    drop(trial);
    assert_eq!(breaker.state(), State::HalfOpen);
    assert!(breaker.try_acquire().is_ok(), "the trial place is free again");
}

struct DropCounter(Arc<AtomicUsize>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_panic_in_the_response_future_records_a_failure() {
    let (breaker, _clock) = breaker(Breaker::builder().consecutive_failures(1));
    let service = BreakerLayer::new(Arc::clone(&breaker)).layer(service_fn(|fail: bool| async move {
        tokio::task::yield_now().await;
        assert!(!fail, "the downstream panicked");
        Ok::<_, Infallible>(())
    }));
    // The task catches the panic and drops the future afterwards, when the
    // thread no longer panics: the failure must be recorded during the unwind.
    let error = tokio::spawn(service.clone().oneshot(true)).await.unwrap_err();
    assert!(error.is_panic());
    assert_eq!(breaker.state(), State::Open);
}

#[test]
fn a_panic_records_a_failure_before_the_future_is_dropped() {
    let (breaker, _clock) = breaker(Breaker::builder().consecutive_failures(1));
    let service = BreakerLayer::new(Arc::clone(&breaker)).layer(service_fn(|fail: bool| async move {
        assert!(!fail, "the downstream panicked");
        Ok::<_, Infallible>(())
    }));
    // An executor that catches the panic and keeps the future for a while.
    let mut call = Box::pin(service.oneshot(true));
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| poll_now(call.as_mut())));
    assert!(panicked.is_err());
    assert_eq!(breaker.state(), State::Open);
    drop(call);
    assert_eq!(breaker.state(), State::Open);
}

#[tokio::test]
async fn a_panicking_classifier_records_a_failure() {
    let (breaker, _clock) = breaker(Breaker::builder().consecutive_failures(1));
    let service = BreakerLayer::new(Arc::clone(&breaker))
        .classify(|_: &Result<u16, Infallible>| panic!("the classifier panicked"))
        .layer(statuses(&Arc::default()));
    assert!(tokio::spawn(service.oneshot(200)).await.unwrap_err().is_panic());
    assert_eq!(breaker.state(), State::Open);
}

#[test]
fn the_call_timeout_applies_on_the_breakers_clock() {
    let (breaker, clock) = breaker(Breaker::builder().consecutive_failures(2).call_timeout(Duration::from_secs(1)));
    let dropped = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&dropped);
    let service = BreakerLayer::new(Arc::clone(&breaker)).layer(service_fn(move |quick: bool| {
        let guard = DropCounter(Arc::clone(&counter));
        async move {
            let _guard = guard;
            if !quick {
                std::future::pending::<()>().await;
            }
            Ok::<_, Infallible>(quick)
        }
    }));
    let mut slow = pin!(service.clone().oneshot(false));
    assert!(poll_now(slow.as_mut()).is_pending());
    clock.advance(Duration::from_millis(999));
    assert!(poll_now(slow.as_mut()).is_pending());
    assert_eq!(block_on(service.oneshot(true)), Ok(true), "a quick call beats the timeout");
    clock.advance(Duration::from_millis(1));
    assert_eq!(poll_now(slow.as_mut()), Poll::Ready(Err(BreakerError::Timeout(Duration::from_secs(1)))));
    assert_eq!(dropped.load(Ordering::SeqCst), 2, "the timed-out call was dropped");
    let metrics = breaker.metrics();
    assert_eq!((metrics.timeouts, metrics.counts.failures, metrics.counts.successes), (1, 1, 1));
}

/// A service whose readiness the test sets.
#[derive(Clone)]
struct Readiness(Arc<AtomicUsize>);

impl Service<u32> for Readiness {
    type Response = u32;
    type Error = &'static str;
    type Future = std::future::Ready<Result<u32, &'static str>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match self.0.load(Ordering::SeqCst) {
            0 => Poll::Pending,
            1 => Poll::Ready(Err("overloaded")),
            _ => Poll::Ready(Ok(())),
        }
    }

    fn call(&mut self, n: u32) -> Self::Future {
        std::future::ready(Ok(n))
    }
}

#[test]
fn poll_ready_is_forwarded_and_records_nothing() {
    let (breaker, _clock) = breaker(Breaker::builder().consecutive_failures(1));
    let readiness = Arc::new(AtomicUsize::new(0));
    let mut service = BreakerLayer::new(Arc::clone(&breaker)).layer(Readiness(Arc::clone(&readiness)));
    let mut cx = Context::from_waker(Waker::noop());
    assert!(service.poll_ready(&mut cx).is_pending());
    readiness.store(1, Ordering::SeqCst);
    assert_eq!(service.poll_ready(&mut cx), Poll::Ready(Err(BreakerError::Inner("overloaded"))));
    assert_eq!(breaker.metrics().counts.calls, 0);
    assert_eq!(breaker.state(), State::Closed);
    readiness.store(2, Ordering::SeqCst);
    assert_eq!(block_on(service.oneshot(5)), Ok(5));
    assert_eq!(breaker.metrics().counts.successes, 1);
}

#[test]
fn a_rejected_response_future_can_be_polled_again() {
    let (breaker, _clock) = breaker(Breaker::builder().consecutive_failures(1));
    breaker.force_open();
    let mut service = BreakerLayer::new(Arc::clone(&breaker)).layer(statuses(&Arc::default()));
    let mut response = pin!(service.call(200));
    assert_eq!(poll_now(response.as_mut()), Poll::Ready(Err(BreakerError::Open { retry_at: None })));
    assert_eq!(poll_now(response.as_mut()), Poll::Ready(Err(BreakerError::Open { retry_at: None })));
}
