//! The tower layers of conc-limit, driven through `tower::ServiceExt` and
//! `tower::ServiceBuilder`, with a `ManualClock` for every time rule.
#![cfg(feature = "tower")]

use std::convert::Infallible;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use conc_core::ManualClock;
use conc_limit::tower::{ConcurrencyLimitLayer, KeyedRateLimitLayer, LimitError, RateLimitLayer};
use conc_limit::{Gcra, Keyed, Limiter, Rate, Semaphore, SlidingWindow, TokenBucket};
use futures_lite::future::block_on;
use tower::util::BoxCloneService;
use tower::{Layer, Service, ServiceBuilder, ServiceExt, service_fn};

/// An inner service that counts its calls and doubles its request.
fn doubler(calls: &Arc<AtomicUsize>) -> impl Service<u32, Response = u32, Error = Infallible, Future: Send> + Clone {
    let calls = Arc::clone(calls);
    service_fn(move |n: u32| {
        calls.fetch_add(1, Ordering::SeqCst);
        async move { Ok::<_, Infallible>(n * 2) }
    })
}

fn gcra(per_second: f64, burst: u32, clock: &ManualClock) -> Gcra<ManualClock> {
    Gcra::with_clock(Rate::per_second(per_second).unwrap(), burst, clock.clone()).unwrap()
}

// ---- RateLimit ----

#[test]
fn rate_limit_clones_share_one_limiter() {
    let clock = ManualClock::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let service =
        ServiceBuilder::new().layer(RateLimitLayer::new(Arc::new(gcra(1.0, 2, &clock)))).service(doubler(&calls));
    let (a, b) = (service.clone(), service.clone());
    block_on(async {
        assert_eq!(a.clone().oneshot(1).await, Ok(2));
        assert_eq!(b.clone().oneshot(2).await, Ok(4));
        // Two clones spent the one burst of 2: both are limited now.
        assert_eq!(a.clone().oneshot(3).await, Err(LimitError::RateLimited { retry_after: Duration::from_secs(1) }));
        assert_eq!(b.clone().oneshot(3).await, Err(LimitError::RateLimited { retry_after: Duration::from_secs(1) }));
        assert_eq!(calls.load(Ordering::SeqCst), 2, "a denied request must not reach the inner service");

        // `retry_after` is measured from now by the limiter's clock.
        clock.advance(Duration::from_millis(400));
        let error = service.clone().oneshot(4).await.unwrap_err();
        assert_eq!(error.retry_after(), Some(Duration::from_millis(600)));
        assert!(error.is_rejected());
        clock.advance(Duration::from_millis(600));
        assert_eq!(b.oneshot(5).await, Ok(10));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    });
}

/// Spends `limiter` through a rate-limited service: `admitted` requests
/// pass, the next one is shed; returns its error.
fn exhaust<L: Limiter>(limiter: L, admitted: u32) -> LimitError<Infallible> {
    let calls = Arc::new(AtomicUsize::new(0));
    let service = RateLimitLayer::new(Arc::new(limiter)).layer(doubler(&calls));
    block_on(async {
        for n in 0..admitted {
            assert_eq!(service.clone().oneshot(n).await, Ok(n * 2));
        }
        service.oneshot(99).await.unwrap_err()
    })
}

#[test]
fn rate_limit_works_with_every_limiter() {
    let clock = ManualClock::new();
    let rate = Rate::per_second(2.0).unwrap();
    assert_eq!(exhaust(gcra(2.0, 3, &clock), 3), LimitError::RateLimited { retry_after: Duration::from_millis(500) });
    assert_eq!(
        exhaust(TokenBucket::with_clock(rate, 3, clock.clone()).unwrap(), 3),
        LimitError::RateLimited { retry_after: Duration::from_millis(500) }
    );
    let window = Duration::from_secs(10);
    assert_eq!(
        exhaust(SlidingWindow::log_with_clock(4, window, clock.clone()).unwrap(), 4),
        LimitError::RateLimited { retry_after: window }
    );
    assert!(matches!(
        exhaust(SlidingWindow::counter_with_clock(4, window, clock).unwrap(), 4),
        LimitError::RateLimited { retry_after } if retry_after > Duration::ZERO && retry_after <= window * 2
    ));
}

/// A service whose readiness and errors the test controls.
#[derive(Clone)]
struct Controlled {
    ready: Arc<AtomicBool>,
    calls: Arc<AtomicUsize>,
}

impl Service<u32> for Controlled {
    type Response = u32;
    type Error = &'static str;
    type Future = std::future::Ready<Result<u32, &'static str>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if self.ready.load(Ordering::SeqCst) { Poll::Ready(Ok(())) } else { Poll::Ready(Err("not ready")) }
    }

    fn call(&mut self, n: u32) -> Self::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        std::future::ready(if n == 0 { Err("zero") } else { Ok(n) })
    }
}

/// A service that is never ready.
#[derive(Clone)]
struct NeverReady;

impl Service<u32> for NeverReady {
    type Response = u32;
    type Error = Infallible;
    type Future = std::future::Ready<Result<u32, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Pending
    }

    fn call(&mut self, n: u32) -> Self::Future {
        std::future::ready(Ok(n))
    }
}

#[test]
fn every_layer_forwards_readiness_and_inner_errors() {
    let clock = ManualClock::new();
    let keyed = Arc::new(Keyed::new(gcra(1.0, 10, &clock)));
    type Limited = BoxCloneService<u32, u32, LimitError<&'static str>>;
    let layers: Vec<Box<dyn Fn(Controlled) -> Limited + '_>> = vec![
        Box::new(|inner| BoxCloneService::new(RateLimitLayer::new(Arc::new(gcra(1.0, 10, &clock))).layer(inner))),
        Box::new(|inner| {
            BoxCloneService::new(KeyedRateLimitLayer::new(Arc::clone(&keyed), |_: &u32| "k").layer(inner))
        }),
        Box::new(|inner| BoxCloneService::new(ConcurrencyLimitLayer::new(Arc::new(Semaphore::new(1))).layer(inner))),
        Box::new(|inner| BoxCloneService::new(ConcurrencyLimitLayer::shed(Arc::new(Semaphore::new(1))).layer(inner))),
    ];
    for layer in layers {
        let ready = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(AtomicUsize::new(0));
        let mut service = layer(Controlled { ready: Arc::clone(&ready), calls: Arc::clone(&calls) });
        let mut cx = Context::from_waker(Waker::noop());
        assert_eq!(service.poll_ready(&mut cx), Poll::Ready(Err(LimitError::Inner("not ready"))));
        ready.store(true, Ordering::SeqCst);
        block_on(async {
            assert_eq!(service.clone().oneshot(0).await, Err(LimitError::Inner("zero")));
            assert_eq!(service.clone().oneshot(7).await, Ok(7));
        });
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    // Pending readiness is passed on as it is; the limit is not touched.
    let semaphore = Arc::new(Semaphore::new(1));
    let mut service = ConcurrencyLimitLayer::shed(Arc::clone(&semaphore)).layer(NeverReady);
    assert!(service.poll_ready(&mut Context::from_waker(Waker::noop())).is_pending());
    let limiter = Arc::new(gcra(1.0, 1, &clock));
    let mut service = RateLimitLayer::new(Arc::clone(&limiter)).layer(NeverReady);
    assert!(service.poll_ready(&mut Context::from_waker(Waker::noop())).is_pending());
    assert_eq!(semaphore.available(), 1);
    assert!(limiter.check_n(1).is_ok(), "poll_ready must not spend the limit");
}

// ---- KeyedRateLimit ----

/// A request from a client.
struct Request {
    client: &'static str,
    n: u32,
}

#[test]
fn keyed_rate_limit_keeps_keys_independent() {
    let clock = ManualClock::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let keyed = Arc::new(Keyed::new(gcra(1.0, 2, &clock)));
    let service = ServiceBuilder::new()
        .layer(KeyedRateLimitLayer::new(Arc::clone(&keyed), |request: &Request| request.client))
        .service_fn(move |request: Request| {
            counted.fetch_add(1, Ordering::SeqCst);
            async move { Ok::<_, Infallible>(request.n) }
        });
    let (a, b) = (service.clone(), service.clone());
    block_on(async {
        // Two clones spend alice's one budget.
        assert_eq!(a.clone().oneshot(Request { client: "alice", n: 1 }).await, Ok(1));
        assert_eq!(b.clone().oneshot(Request { client: "alice", n: 2 }).await, Ok(2));
        let error = a.clone().oneshot(Request { client: "alice", n: 3 }).await.unwrap_err();
        assert_eq!(error, LimitError::RateLimited { retry_after: Duration::from_secs(1) });
        // Bob is not affected by alice.
        assert_eq!(b.clone().oneshot(Request { client: "bob", n: 4 }).await, Ok(4));
        assert_eq!(a.clone().oneshot(Request { client: "bob", n: 5 }).await, Ok(5));
        assert!(a.clone().oneshot(Request { client: "bob", n: 6 }).await.unwrap_err().is_rejected());
        assert_eq!(calls.load(Ordering::SeqCst), 4);

        clock.advance(Duration::from_millis(250));
        let error = a.clone().oneshot(Request { client: "alice", n: 7 }).await.unwrap_err();
        assert_eq!(error.retry_after(), Some(Duration::from_millis(750)));
        clock.advance(Duration::from_millis(750));
        assert_eq!(a.oneshot(Request { client: "alice", n: 8 }).await, Ok(8));
    });
    assert_eq!(keyed.len(), 2);
}

#[test]
fn keyed_rate_limit_maps_too_many_keys() {
    let clock = ManualClock::new();
    let keyed = Arc::new(Keyed::builder(gcra(1.0, 2, &clock)).max_keys(1).shards(1).build().unwrap());
    let calls = Arc::new(AtomicUsize::new(0));
    let service = KeyedRateLimitLayer::new(keyed, |n: &u32| n % 10).layer(doubler(&calls));
    block_on(async {
        assert_eq!(service.clone().oneshot(1).await, Ok(2)); // key 1 now carries state
        assert_eq!(service.clone().oneshot(2).await, Err(LimitError::TooManyKeys));
        assert!(service.clone().oneshot(2).await.unwrap_err().retry_after().is_none());
        assert_eq!(service.clone().oneshot(11).await, Ok(22)); // key 1 again
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        clock.advance(Duration::from_secs(2)); // key 1 is idle again: evictable
        assert_eq!(service.oneshot(2).await, Ok(4));
    });
}

// ---- ConcurrencyLimit ----

/// An inner service whose response futures count themselves in flight
/// (and the most ever at once), wait for `gate` to open, and note when
/// they start and when they are dropped.
#[derive(Clone)]
struct Gauge {
    in_flight: Arc<AtomicUsize>,
    max: Arc<AtomicUsize>,
    started: Arc<Mutex<Vec<u32>>>,
    dropped: Arc<AtomicUsize>,
    gate: Arc<tokio::sync::Semaphore>,
}

impl Gauge {
    fn new() -> Gauge {
        Gauge {
            in_flight: Arc::default(),
            max: Arc::default(),
            started: Arc::default(),
            dropped: Arc::default(),
            gate: Arc::new(tokio::sync::Semaphore::new(0)),
        }
    }

    fn open(&self) {
        self.gate.add_permits(tokio::sync::Semaphore::MAX_PERMITS / 2);
    }

    fn service(&self) -> impl Service<u32, Response = u32, Error = Infallible, Future: Send + 'static> + Clone + use<> {
        let gauge = self.clone();
        service_fn(move |id: u32| {
            let gauge = gauge.clone();
            async move {
                let _dropped = OnDrop(Arc::clone(&gauge.dropped));
                gauge.started.lock().unwrap().push(id);
                let now = gauge.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                gauge.max.fetch_max(now, Ordering::SeqCst);
                let _pass = gauge.gate.acquire().await.unwrap();
                tokio::task::yield_now().await;
                gauge.in_flight.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, Infallible>(id)
            }
        })
    }
}

/// Counts its drops.
struct OnDrop(Arc<AtomicUsize>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Polls `future` once, with a waker that does nothing.
fn poll_now<F: Future + ?Sized>(future: Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn shed_rejects_when_full_without_calling_inner() {
    let gauge = Gauge::new();
    let semaphore = Arc::new(Semaphore::new(2));
    let service =
        ServiceBuilder::new().layer(ConcurrencyLimitLayer::shed(Arc::clone(&semaphore))).service(gauge.service());
    // Two clones take the two permits of the one semaphore.
    let mut first = pin!(service.clone().oneshot(1));
    let mut second = pin!(service.clone().oneshot(2));
    assert!(poll_now(first.as_mut()).is_pending());
    assert!(poll_now(second.as_mut()).is_pending());
    assert_eq!(semaphore.available(), 0);
    // A third is shed at once, and never started.
    let mut third = pin!(service.clone().oneshot(3));
    assert_eq!(poll_now(third.as_mut()), Poll::Ready(Err(LimitError::Saturated)));
    assert_eq!(*gauge.started.lock().unwrap(), [1, 2]);
    assert_eq!(semaphore.waiters(), 0, "shed mode never queues");

    gauge.open();
    assert_eq!(block_on(first), Ok(1));
    assert_eq!(semaphore.available(), 1, "the permit goes back when the response completes");
    assert_eq!(block_on(service.oneshot(4)), Ok(4));
    assert_eq!(block_on(second), Ok(2));
    assert_eq!(semaphore.available(), 2);
    assert_eq!(gauge.max.load(Ordering::SeqCst), 2);
}

#[test]
fn queue_mode_serves_waiters_in_fifo_order() {
    let gauge = Gauge::new();
    gauge.open();
    let semaphore = Arc::new(Semaphore::new(1));
    let service = ConcurrencyLimitLayer::new(Arc::clone(&semaphore)).layer(gauge.service());
    let held = semaphore.try_acquire_owned(1).unwrap();
    let mut futures: Vec<_> = (1..=3).map(|id| Box::pin(service.clone().oneshot(id))).collect();
    for future in &mut futures {
        assert!(poll_now(future.as_mut()).is_pending());
    }
    assert_eq!(semaphore.waiters(), 3);
    assert!(gauge.started.lock().unwrap().is_empty(), "no response future runs without a permit");

    drop(held);
    // Polled last to first, they still run first to last, one at a time.
    let mut done = Vec::new();
    while done.len() < 3 {
        for (index, future) in futures.iter_mut().enumerate().rev() {
            if done.contains(&index) {
                continue;
            }
            if let Poll::Ready(result) = poll_now(future.as_mut()) {
                assert_eq!(result, Ok(u32::try_from(index).unwrap() + 1));
                done.push(index);
            }
        }
    }
    assert_eq!(done, [0, 1, 2]);
    assert_eq!(*gauge.started.lock().unwrap(), [1, 2, 3]);
    assert_eq!(gauge.max.load(Ordering::SeqCst), 1);
    assert_eq!(semaphore.available(), 1);
}

#[test]
fn queue_mode_sheds_past_max_waiters() {
    let gauge = Gauge::new();
    let semaphore = Arc::new(Semaphore::new(1).with_max_waiters(Some(1)));
    let service = ConcurrencyLimitLayer::new(Arc::clone(&semaphore)).layer(gauge.service());
    let mut running = pin!(service.clone().oneshot(1));
    let mut waiting = pin!(service.clone().oneshot(2));
    let mut shed = pin!(service.oneshot(3));
    assert!(poll_now(running.as_mut()).is_pending());
    assert!(poll_now(waiting.as_mut()).is_pending());
    assert_eq!(poll_now(shed.as_mut()), Poll::Ready(Err(LimitError::Saturated)));
    assert_eq!(*gauge.started.lock().unwrap(), [1]);
    assert_eq!(gauge.dropped.load(Ordering::SeqCst), 0, "the shed request's future never started");

    gauge.open();
    assert_eq!(block_on(running), Ok(1));
    assert_eq!(block_on(waiting), Ok(2));
}

#[test]
fn a_closed_semaphore_rejects_with_closed() {
    let gauge = Gauge::new();
    let semaphore = Arc::new(Semaphore::new(1));
    let queue = ConcurrencyLimitLayer::new(Arc::clone(&semaphore)).layer(gauge.service());
    let shed = ConcurrencyLimitLayer::shed(Arc::clone(&semaphore)).layer(gauge.service());
    let held = semaphore.try_acquire_owned(1).unwrap();
    let mut waiting = pin!(queue.clone().oneshot(1));
    assert!(poll_now(waiting.as_mut()).is_pending());

    semaphore.close();
    assert_eq!(poll_now(waiting.as_mut()), Poll::Ready(Err(LimitError::Closed)), "a waiter fails when it closes");
    assert_eq!(poll_now(waiting.as_mut()), Poll::Ready(Err(LimitError::Closed)));
    assert_eq!(block_on(queue.oneshot(2)), Err(LimitError::Closed));
    assert_eq!(block_on(shed.oneshot(3)), Err(LimitError::Closed));
    assert!(gauge.started.lock().unwrap().is_empty());
    drop(held);
}

#[test]
fn a_semaphore_of_capacity_zero_saturates() {
    let gauge = Gauge::new();
    let semaphore = Arc::new(Semaphore::new(0));
    for layer in [ConcurrencyLimitLayer::new(Arc::clone(&semaphore)), ConcurrencyLimitLayer::shed(semaphore)] {
        assert_eq!(block_on(layer.layer(gauge.service()).oneshot(1)), Err(LimitError::Saturated));
    }
}

#[test]
fn dropping_a_response_future_releases_its_permit() {
    for layer in [ConcurrencyLimitLayer::new, ConcurrencyLimitLayer::shed] {
        let gauge = Gauge::new();
        let semaphore = Arc::new(Semaphore::new(1));
        let service = layer(Arc::clone(&semaphore)).layer(gauge.service());

        // Mid-flight: the inner future is dropped, then the permit released.
        let mut running = Box::pin(service.clone().oneshot(1));
        assert!(poll_now(running.as_mut()).is_pending());
        assert_eq!(semaphore.available(), 0);
        assert_eq!(gauge.in_flight.load(Ordering::SeqCst), 1);
        drop(running);
        assert_eq!(gauge.dropped.load(Ordering::SeqCst), 1);
        assert_eq!(semaphore.available(), 1);

        // Before it was ever polled.
        drop(service.clone().oneshot(2));
        assert_eq!(semaphore.available(), 1);

        gauge.open();
        assert_eq!(block_on(service.oneshot(3)), Ok(3));
        assert_eq!(semaphore.available(), 1);
    }
}

#[test]
fn dropping_a_queued_response_future_leaves_the_queue() {
    let gauge = Gauge::new();
    let semaphore = Arc::new(Semaphore::new(1));
    let service = ConcurrencyLimitLayer::new(Arc::clone(&semaphore)).layer(gauge.service());
    let mut running = Box::pin(service.clone().oneshot(1));
    let mut queued = Box::pin(service.clone().oneshot(2));
    let mut behind = Box::pin(service.oneshot(3));
    assert!(poll_now(running.as_mut()).is_pending());
    assert!(poll_now(queued.as_mut()).is_pending());
    assert!(poll_now(behind.as_mut()).is_pending());
    assert_eq!(semaphore.waiters(), 2);
    drop(queued);
    assert_eq!(semaphore.waiters(), 1);

    gauge.open();
    assert_eq!(block_on(running), Ok(1));
    assert_eq!(block_on(behind), Ok(3));
    assert_eq!(*gauge.started.lock().unwrap(), [1, 3]);
    assert_eq!(semaphore.available(), 1);
}

/// Deterministic: on one thread, every request is spawned and runs until
/// it waits, and exactly `limit` of them are in their response futures.
#[tokio::test]
async fn queue_mode_runs_exactly_the_limit_at_once() {
    let (limit, requests) = (3, 10);
    let gauge = Gauge::new();
    let semaphore = Arc::new(Semaphore::new(limit));
    let service = ConcurrencyLimitLayer::new(Arc::clone(&semaphore)).layer(gauge.service());
    let tasks: Vec<_> = (0..requests).map(|id| tokio::spawn(service.clone().oneshot(id))).collect();
    for _ in 0..5 {
        tokio::task::yield_now().await;
    }
    assert_eq!(gauge.in_flight.load(Ordering::SeqCst), limit);
    assert_eq!(semaphore.waiters(), usize::try_from(requests).unwrap() - limit);

    gauge.open();
    for (id, task) in (0..).zip(tasks) {
        assert_eq!(task.await.unwrap(), Ok(id));
    }
    assert_eq!(gauge.max.load(Ordering::SeqCst), limit);
    assert_eq!(semaphore.available(), limit);
}

/// Many threads, both modes: the limit is never exceeded, and every request
/// is either served or shed.
#[test]
fn the_limit_holds_across_threads() {
    let (limit, requests) = (3, if cfg!(miri) { 12 } else { 400 });
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(4).build().unwrap();
    for shed in [false, true] {
        let gauge = Gauge::new();
        gauge.open();
        let semaphore = Arc::new(Semaphore::new(limit));
        let layer = if shed { ConcurrencyLimitLayer::shed } else { ConcurrencyLimitLayer::new };
        let service = layer(Arc::clone(&semaphore)).layer(gauge.service());
        let (served, rejected) = runtime.block_on(async {
            let tasks: Vec<_> = (0..requests).map(|id| tokio::spawn(service.clone().oneshot(id))).collect();
            let (mut served, mut rejected) = (0, 0);
            for task in tasks {
                match task.await.unwrap() {
                    Ok(_) => served += 1,
                    Err(LimitError::Saturated) if shed => rejected += 1,
                    Err(error) => panic!("unexpected {error:?}"),
                }
            }
            (served, rejected)
        });
        assert_eq!(served + rejected, requests);
        assert!(served > 0);
        if !shed {
            assert_eq!(rejected, 0);
        }
        let max = gauge.max.load(Ordering::SeqCst);
        assert!((1..=limit).contains(&max), "{max} in flight with a limit of {limit}");
        assert_eq!(gauge.in_flight.load(Ordering::SeqCst), 0);
        assert_eq!(semaphore.available(), limit);
    }
}

#[test]
fn layers_compose_in_a_service_builder() {
    let clock = ManualClock::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let semaphore = Arc::new(Semaphore::new(4));
    let service = ServiceBuilder::new()
        .layer(RateLimitLayer::new(Arc::new(gcra(1.0, 1, &clock))))
        .layer(ConcurrencyLimitLayer::shed(Arc::clone(&semaphore)))
        .service(doubler(&calls));
    block_on(async {
        assert_eq!(service.clone().oneshot(1).await, Ok(2));
        let error = service.clone().oneshot(2).await.unwrap_err();
        assert_eq!(error, LimitError::RateLimited { retry_after: Duration::from_secs(1) });
        semaphore.close();
        clock.advance(Duration::from_secs(1));
        assert_eq!(service.oneshot(3).await, Err(LimitError::Inner(LimitError::Closed)));
    });
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn limit_errors_display_and_chain() {
    use std::error::Error as _;
    let inner = LimitError::Inner(std::io::Error::other("refused"));
    assert_eq!(inner.to_string(), "inner service failed: refused");
    assert_eq!(inner.source().unwrap().to_string(), "refused");
    assert!(!inner.is_rejected());
    assert_eq!(inner.into_inner().unwrap().to_string(), "refused");
    let shed = LimitError::<std::io::Error>::Saturated;
    assert!(shed.source().is_none());
    assert!(shed.is_rejected());
    assert!(shed.into_inner().is_none());
    let limited = LimitError::<Infallible>::RateLimited { retry_after: Duration::from_millis(1500) };
    assert_eq!(limited.to_string(), "rate limited; retry after 1.5s");
    // Boxable, as tower's error handling wants.
    let boxed: tower::BoxError = LimitError::<Infallible>::TooManyKeys.into();
    assert!(boxed.to_string().contains("too many"));
}
