//! conc-pool's async `Pool`: backpressure, worker bounds, panics,
//! cancellation, close / join / shutdown, resizing and growth, results
//! streams and groups.
//!
//! Time rules run on a `ManualClock`; "eventually" conditions are awaited
//! by yielding to the runtime (never by sleeping), with a wall-clock bound
//! only so that a bug fails instead of hanging.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use conc_core::{Clock, ManualClock, TaskCounter, Token};
use conc_pool::{BuildError, GroupError, JobError, Pool, SubmitError};
use futures_lite::StreamExt;
use futures_lite::future::poll_once;

/// Yields until `condition` holds; panics if it still does not after a
/// generous wall-clock bound (a bug, not a timing rule: nothing here
/// waits for time to pass).
async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    let give_up = std::time::Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(std::time::Instant::now() < give_up, "never happened: {what}");
        tokio::task::yield_now().await;
    }
}

/// A job that waits until `release` is cancelled, counting itself running.
fn blocker(
    release: &Token,
    running: &Arc<AtomicUsize>,
) -> impl FnOnce(Token) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Send + 'static {
    let (release, running) = (release.clone(), running.clone());
    move |_token| {
        Box::pin(async move {
            running.fetch_add(1, Ordering::SeqCst);
            release.cancelled().await;
            running.fetch_sub(1, Ordering::SeqCst);
        })
    }
}

#[tokio::test]
async fn jobs_return_their_values_and_stats_add_up() {
    let pool = Pool::builder().workers(3).queue_capacity(8).name("values").build().unwrap();
    assert_eq!(pool.name(), "values");
    let mut handles = Vec::new();
    for n in 0..20u64 {
        handles.push(pool.submit(move |_| async move { n * 2 }).await.unwrap());
    }
    let ids: Vec<u64> = handles.iter().map(|h| h.id().get()).collect();
    assert_eq!(ids, (0..20).collect::<Vec<_>>(), "ids are given in order of acceptance");
    let mut sum = 0;
    for handle in handles {
        sum += handle.await.unwrap();
    }
    assert_eq!(sum, 380);
    pool.join().await;
    let stats = pool.stats();
    assert_eq!((stats.submitted, stats.completed, stats.queued, stats.running, stats.workers), (20, 20, 0, 0, 0));
}

#[tokio::test]
async fn a_full_queue_blocks_submit_and_fails_try_submit() {
    let pool = Pool::builder().workers(1).queue_capacity(1).build().unwrap();
    let (release, running) = (Token::new(), Arc::new(AtomicUsize::new(0)));
    let first = pool.submit(blocker(&release, &running)).await.unwrap();
    until("the first job runs", || running.load(Ordering::SeqCst) == 1).await;
    let second = pool.try_submit(blocker(&release, &running)).unwrap();

    // Full: the job comes back, whole, and still runs when called.
    let rejected = pool.try_submit(|_| async { 41 + 1 }).unwrap_err();
    assert!(matches!(rejected, SubmitError::Full(_)));
    assert_eq!(rejected.into_inner()(Token::new()).await, 42);
    assert_eq!(pool.stats().rejected, 1);
    assert_eq!(pool.stats().queued, 1);

    let mut waiting = Box::pin(pool.submit(|_| async { 7 }));
    for _ in 0..10 {
        assert!(poll_once(&mut waiting).await.is_none(), "submit must wait while the queue is full");
        tokio::task::yield_now().await;
    }
    release.cancel();
    let third = waiting.await.unwrap();
    first.await.unwrap();
    second.await.unwrap();
    assert_eq!(third.await.unwrap(), 7);
    assert_eq!(pool.stats().peak_queued, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_waiting_submitter_gets_in_as_room_frees() {
    // Ten submitters wait on a full pool at once; room frees in bursts and
    // each place must reach a waiter (none is stranded while room is left).
    let pool = Pool::builder().workers(2).queue_capacity(1).build().unwrap();
    let (release, running) = (Token::new(), Arc::new(AtomicUsize::new(0)));
    let mut first = Vec::new();
    for _ in 0..3 {
        first.push(pool.submit(blocker(&release, &running)).await.unwrap());
    }
    let waiters: Vec<_> = (0..10u32)
        .map(|n| {
            let pool = pool.clone();
            tokio::spawn(async move { pool.submit(move |_| async move { n }).await.unwrap().await.unwrap() })
        })
        .collect();
    until("the first two jobs run", || running.load(Ordering::SeqCst) == 2).await;
    release.cancel();
    let mut got = Vec::new();
    for waiter in waiters {
        got.push(waiter.await.unwrap());
    }
    got.sort_unstable();
    assert_eq!(got, (0..10).collect::<Vec<_>>());
    for handle in first {
        handle.await.unwrap();
    }
}

#[tokio::test]
async fn submit_until_hands_the_job_back_when_its_token_is_cancelled() {
    let pool = Pool::builder().workers(1).queue_capacity(0).build().unwrap();
    let (release, running) = (Token::new(), Arc::new(AtomicUsize::new(0)));
    let busy = pool.submit(blocker(&release, &running)).await.unwrap();
    let give_up = Token::new();
    let mut waiting = Box::pin(pool.submit_until(|_| async { 5 }, &give_up));
    assert!(poll_once(&mut waiting).await.is_none());
    give_up.cancel();
    let job = match waiting.await {
        Err(SubmitError::Cancelled(job)) => job,
        other => panic!("expected Cancelled, got {:?}", other.map(|h| h.id())),
    };
    assert_eq!(job(Token::new()).await, 5);
    // An already cancelled token with room free still fails without waiting
    // only when there is no room; with room the job is accepted.
    release.cancel();
    busy.await.unwrap();
    let accepted = pool.submit_until(|_| async { 6 }, &give_up).await.unwrap();
    assert_eq!(accepted.await.unwrap(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_more_jobs_run_than_workers() {
    let pool = Pool::builder().workers(3).queue_capacity(4).build().unwrap();
    let (now, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut handles = Vec::new();
    for _ in 0..200 {
        let (now, peak) = (now.clone(), peak.clone());
        handles.push(
            pool.submit(move |_| async move {
                let running = now.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(running, Ordering::SeqCst);
                tokio::task::yield_now().await;
                now.fetch_sub(1, Ordering::SeqCst);
            })
            .await
            .unwrap(),
        );
    }
    for handle in handles {
        handle.await.unwrap();
    }
    assert!(peak.load(Ordering::SeqCst) <= 3);
    let stats = pool.stats();
    assert!(stats.peak_running <= 3 && stats.peak_workers == 3, "{stats:?}");
    // Accepted jobs number at most workers + capacity; all may sit in the
    // queue for a moment before the workers wake.
    assert!(stats.peak_queued <= 3 + 4, "{stats:?}");
}

#[tokio::test]
async fn a_panic_goes_to_its_handle_and_the_worker_lives_on() {
    let pool = Pool::builder().workers(1).build().unwrap();
    let n = std::hint::black_box(1);
    let boom = pool.submit(move |_| async move { panic!("boom {n}") }).await.unwrap();
    let early = pool.submit(|_| -> std::future::Ready<()> { panic!("before the future") }).await.unwrap();
    let after = pool.submit(|_| async { "still here" }).await.unwrap();
    match boom.await {
        Err(JobError::Panicked(payload)) => assert_eq!(payload.downcast_ref::<String>().unwrap(), "boom 1"),
        other => panic!("expected a panic, got {other:?}"),
    }
    assert!(early.await.unwrap_err().is_panic());
    assert_eq!(after.await.unwrap(), "still here");
    let stats = pool.stats();
    assert_eq!((stats.panicked, stats.completed, stats.workers), (2, 1, 1));
}

/// Panics when dropped: a job's state whose clean-up fails.
struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("clean-up failed");
    }
}

#[tokio::test]
async fn a_panic_while_dropping_a_cancelled_job_goes_to_its_handle() {
    let tasks = TaskCounter::new();
    let pool = Pool::builder().workers(1).task_counter(tasks.clone()).build().unwrap();
    let started = Arc::new(AtomicUsize::new(0));
    let handle = {
        let started = started.clone();
        pool.submit(move |token: Token| async move {
            let _guard = PanicOnDrop;
            started.fetch_add(1, Ordering::SeqCst);
            token.cancelled().await;
            std::mem::forget(_guard);
        })
        .await
        .unwrap()
    };
    until("the job runs", || started.load(Ordering::SeqCst) == 1).await;
    handle.cancel();
    assert!(handle.await.unwrap_err().is_panic());
    assert_eq!(pool.submit(|_| async { 1 }).await.unwrap().await.unwrap(), 1, "the worker lives on");
    pool.join().await;
    assert_eq!(tasks.live(), 0);
}

#[tokio::test]
async fn cancelling_a_handle_stops_a_queued_or_running_job() {
    let pool = Pool::builder().workers(1).build().unwrap();
    let started = Arc::new(AtomicUsize::new(0));
    let running = {
        let started = started.clone();
        pool.submit(move |token: Token| async move {
            started.fetch_add(1, Ordering::SeqCst);
            token.cancelled().await;
            "ended on its own"
        })
        .await
        .unwrap()
    };
    let queued = {
        let started = started.clone();
        pool.submit(move |_| async move {
            started.fetch_add(1, Ordering::SeqCst);
        })
        .await
        .unwrap()
    };
    until("the first job runs", || started.load(Ordering::SeqCst) == 1).await;
    queued.cancel();
    running.cancel();
    assert!(running.await.unwrap_err().is_cancelled());
    assert!(queued.await.unwrap_err().is_cancelled());
    pool.join().await;
    assert_eq!(started.load(Ordering::SeqCst), 1, "a job cancelled while queued never starts");
    assert_eq!(pool.stats().cancelled, 2);
}

#[tokio::test]
async fn close_refuses_new_jobs_and_wakes_waiting_submitters() {
    let pool = Pool::builder().workers(1).queue_capacity(0).build().unwrap();
    let (release, running) = (Token::new(), Arc::new(AtomicUsize::new(0)));
    let busy = pool.submit(blocker(&release, &running)).await.unwrap();
    let mut waiting = Box::pin(pool.submit(|_| async { 1 }));
    assert!(poll_once(&mut waiting).await.is_none());
    pool.close();
    assert!(pool.is_closed());
    assert!(matches!(waiting.await, Err(SubmitError::Closed(_))));
    assert!(matches!(pool.try_submit(|_| async { 2 }), Err(SubmitError::Closed(_))));
    // The accepted job still runs to its end.
    release.cancel();
    busy.await.unwrap();
    pool.join().await;
    assert_eq!(pool.stats().completed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_leaves_no_task_behind() {
    let tasks = TaskCounter::new();
    let pool = Pool::builder().workers(4).task_counter(tasks.clone()).build().unwrap();
    assert_eq!(tasks.live(), 4);
    for n in 0..100 {
        pool.submit(move |_| async move { n }).await.unwrap().detach();
    }
    pool.join().await;
    assert_eq!(tasks.live(), 0);
    assert_eq!(pool.stats().completed, 100);
    assert_eq!(pool.stats().workers, 0);
}

#[tokio::test]
async fn dropping_the_pool_closes_it_and_its_workers_finish_the_queue() {
    let tasks = TaskCounter::new();
    let done = Arc::new(AtomicUsize::new(0));
    {
        let pool = Pool::builder().workers(2).task_counter(tasks.clone()).build().unwrap();
        for _ in 0..10 {
            let done = done.clone();
            pool.submit(move |_| async move {
                tokio::task::yield_now().await;
                done.fetch_add(1, Ordering::SeqCst);
            })
            .await
            .unwrap()
            .detach();
        }
    }
    until("the workers drain the queue and exit", || tasks.live() == 0).await;
    assert_eq!(done.load(Ordering::SeqCst), 10);
}

#[tokio::test]
async fn shutdown_cancels_running_jobs_at_the_deadline_and_hands_queued_ones_back() {
    let clock = ManualClock::new();
    let tasks = TaskCounter::new();
    let pool =
        Pool::builder().workers(1).queue_capacity(4).clock(clock.clone()).task_counter(tasks.clone()).build().unwrap();
    let started = Arc::new(AtomicUsize::new(0));
    let stuck = {
        let started = started.clone();
        pool.submit(move |token: Token| async move {
            started.fetch_add(1, Ordering::SeqCst);
            token.cancelled().await;
        })
        .await
        .unwrap()
    };
    let queued = pool.submit(|_| async { 10 }).await.unwrap();
    let detached: fn(Token) -> std::future::Ready<u32> = |_| std::future::ready(11);
    let detached_id = pool.submit(detached).await.unwrap().id();
    // The detached job's handle is gone from here on.
    until("the first job runs", || started.load(Ordering::SeqCst) == 1).await;

    let shutdown = tokio::spawn({
        let (pool, deadline) = (pool.clone(), clock.now() + Duration::from_secs(5));
        async move { pool.shutdown(deadline).await }
    });
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert!(!shutdown.is_finished(), "nothing may end before the deadline");
    clock.advance(Duration::from_secs(5));
    let mut report = shutdown.await.unwrap();

    assert!(stuck.await.unwrap_err().is_cancelled());
    let back = queued.await.unwrap_err().into_not_run().expect("the queued job comes back");
    assert_eq!(back(Token::new()).await, 10);
    assert!(report.deadline_passed);
    assert_eq!((report.submitted, report.completed, report.cancelled, report.not_run), (3, 0, 1, 2));
    assert_eq!(report.returned.len(), 1);
    let (id, job) = report.returned.pop().unwrap();
    assert_eq!(id, detached_id);
    let job = job.downcast::<fn(Token) -> std::future::Ready<u32>>().unwrap();
    assert_eq!(job(Token::new()).await, 11);
    assert_eq!(tasks.live(), 0);
}

#[tokio::test]
async fn shutdown_before_the_deadline_lets_every_job_finish() {
    let clock = ManualClock::new();
    let pool = Pool::builder().workers(2).clock(clock.clone()).build().unwrap();
    let mut handles = Vec::new();
    for n in 0..10 {
        handles.push(pool.submit(move |_| async move { n }).await.unwrap());
    }
    let report = pool.shutdown(clock.now() + Duration::from_secs(1)).await;
    assert!(!report.deadline_passed);
    assert_eq!((report.completed, report.not_run, report.cancelled), (10, 0, 0));
    for (n, handle) in handles.into_iter().enumerate() {
        assert_eq!(handle.await.unwrap(), n);
    }
}

#[tokio::test]
async fn a_growing_pool_adds_workers_under_load_and_retires_idle_ones() {
    let clock = ManualClock::new();
    let tasks = TaskCounter::new();
    let pool = Pool::builder()
        .workers_between(1, 4)
        .idle_timeout(Duration::from_secs(30))
        .clock(clock.clone())
        .task_counter(tasks.clone())
        .build()
        .unwrap();
    assert_eq!(pool.stats().workers, 1);
    let (release, running) = (Token::new(), Arc::new(AtomicUsize::new(0)));
    let mut handles = Vec::new();
    for _ in 0..6 {
        handles.push(pool.submit(blocker(&release, &running)).await.unwrap());
    }
    until("four jobs run", || running.load(Ordering::SeqCst) == 4).await;
    let stats = pool.stats();
    assert_eq!((stats.workers, stats.peak_workers, stats.queued), (4, 4, 2), "{stats:?}");
    release.cancel();
    for handle in handles {
        handle.await.unwrap();
    }
    // Not idle long enough yet: nobody retires.
    clock.advance(Duration::from_secs(29));
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    assert_eq!(pool.stats().workers, 4);
    until("idle workers retire down to the minimum", || {
        clock.advance(Duration::from_secs(30));
        pool.stats().workers == 1
    })
    .await;
    assert_eq!(tasks.live(), 1);
    // The pool still works, and grows again.
    assert_eq!(pool.submit(|_| async { 3 }).await.unwrap().await.unwrap(), 3);
    pool.join().await;
    assert_eq!(tasks.live(), 0);
}

#[tokio::test]
async fn a_pool_with_no_minimum_starts_workers_on_demand() {
    let pool = Pool::builder().workers_between(0, 2).queue_capacity(0).build().unwrap();
    assert_eq!(pool.stats().workers, 0);
    let handle = pool.try_submit(|_| async { "handed off" }).unwrap();
    assert_eq!(handle.await.unwrap(), "handed off");
    assert_eq!(pool.stats().peak_workers, 1);
}

#[tokio::test]
async fn resize_grows_and_shrinks_the_workers() {
    let pool = Pool::builder().workers(2).queue_capacity(8).build().unwrap();
    let (release, running) = (Token::new(), Arc::new(AtomicUsize::new(0)));
    let mut handles = Vec::new();
    for _ in 0..6 {
        handles.push(pool.submit(blocker(&release, &running)).await.unwrap());
    }
    until("two jobs run", || running.load(Ordering::SeqCst) == 2).await;
    pool.resize(5).unwrap();
    until("five jobs run", || running.load(Ordering::SeqCst) == 5).await;
    assert_eq!(pool.stats().workers, 5);
    pool.resize(1).unwrap();
    release.cancel();
    for handle in handles {
        handle.await.unwrap();
    }
    until("extra workers retire", || pool.stats().workers == 1).await;
    // With one worker, jobs run one at a time again.
    let (now, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut handles = Vec::new();
    for _ in 0..5 {
        let (now, peak) = (now.clone(), peak.clone());
        handles.push(
            pool.submit(move |_| async move {
                peak.fetch_max(now.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                tokio::task::yield_now().await;
                now.fetch_sub(1, Ordering::SeqCst);
            })
            .await
            .unwrap(),
        );
    }
    for handle in handles {
        handle.await.unwrap();
    }
    assert_eq!(peak.load(Ordering::SeqCst), 1);
    assert_eq!(pool.resize(0), Err(BuildError::ZeroWorkers));
}

#[tokio::test]
async fn bad_settings_are_rejected_when_built() {
    assert_eq!(Pool::builder().workers(0).build().unwrap_err(), BuildError::ZeroWorkers);
    assert_eq!(Pool::builder().workers_between(0, 0).build().unwrap_err(), BuildError::ZeroWorkers);
    assert_eq!(Pool::builder().workers_between(5, 2).build().unwrap_err(), BuildError::MinAboveMax { min: 5, max: 2 });
    assert_eq!(
        Pool::builder().workers_between(1, 2).idle_timeout(Duration::ZERO).build().unwrap_err(),
        BuildError::ZeroIdleTimeout
    );
    assert_eq!(Pool::builder().workers(1).build_cpu().map(drop), Ok(()));
}

#[test]
fn an_async_pool_needs_a_runtime() {
    assert_eq!(Pool::builder().workers(1).build().unwrap_err(), BuildError::NoRuntime);
}

#[test]
fn submit_blocking_works_from_a_plain_thread() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).build().unwrap();
    let pool = runtime.block_on(async { Pool::builder().workers(1).build().unwrap() });
    let handle = std::thread::spawn(move || pool.submit_blocking(|_| async { 9 }).unwrap().wait_blocking().unwrap());
    assert_eq!(handle.join().unwrap(), 9);
}

#[tokio::test]
async fn results_stream_tags_each_outcome_with_its_job_id() {
    let pool = Pool::builder().workers(3).build().unwrap();
    let (results, mut stream) = pool.results::<u64>();
    let mut ids = Vec::new();
    for n in 0..10u64 {
        ids.push((results.submit(move |_| async move { n * n }).await.unwrap(), n));
    }
    ids.push((results.submit(|_| async { panic!("nope") }).await.unwrap(), 99));
    drop(results);
    let mut seen = std::collections::HashMap::new();
    while let Some((id, outcome)) = stream.next().await {
        assert!(seen.insert(id, outcome).is_none(), "{id} delivered twice");
    }
    assert_eq!(seen.len(), 11);
    for (id, n) in ids {
        match seen.remove(&id).unwrap() {
            Ok(value) => assert_eq!(value, n * n),
            Err(error) => assert!(error.is_panic() && n == 99),
        }
    }
}

#[tokio::test]
async fn a_groups_first_error_cancels_its_other_jobs_only() {
    let pool = Pool::builder().workers(4).build().unwrap();
    let (release, running) = (Token::new(), Arc::new(AtomicUsize::new(0)));
    let outsider = pool.submit(blocker(&release, &running)).await.unwrap();

    let group = pool.group::<u32, &'static str>();
    for _ in 0..2 {
        group
            .submit(|token: Token| async move {
                token.cancelled().await;
                Ok(0)
            })
            .await
            .unwrap();
    }
    let failing = group.submit(|_| async { Err("bad input") }).await.unwrap();
    let results = group.wait().await; // does not wait for the outsider
    assert_eq!(results.results.len(), 3);
    for (id, result) in &results.results {
        match result {
            Err(GroupError::Failed(message)) => assert_eq!((*id, *message), (failing, "bad input")),
            Err(GroupError::Cancelled) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(matches!(results.into_result(), Err(GroupError::Failed("bad input"))));
    assert!(!outsider.is_finished());
    release.cancel();
    outsider.await.unwrap();
    assert_eq!(pool.stats().failed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_cap_bounds_its_jobs_below_the_pools() {
    let pool = Pool::builder().workers(4).build().unwrap();
    let group = pool.group::<(), ()>().collect_all().limit(2).unwrap();
    let (now, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    for _ in 0..40 {
        let (now, peak) = (now.clone(), peak.clone());
        group
            .submit(move |_| async move {
                peak.fetch_max(now.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                tokio::task::yield_now().await;
                now.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            })
            .await
            .unwrap();
    }
    let results = group.wait().await;
    assert_eq!(results.into_result().unwrap().len(), 40);
    assert!(peak.load(Ordering::SeqCst) <= 2);
    assert!(pool.group::<(), ()>().limit(0).is_err());
}
