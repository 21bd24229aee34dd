//! conc-pool's `CpuPool`: blocking closures on threads the pool owns.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use conc_core::{Clock, ManualClock, TaskCounter, Token};
use conc_pool::{JobError, Pool, SubmitError};

/// Spins (yielding the thread) until `condition` holds; panics if it still
/// does not after a generous wall-clock bound (a bug, not a timing rule).
fn until(what: &str, mut condition: impl FnMut() -> bool) {
    let give_up = std::time::Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(std::time::Instant::now() < give_up, "never happened: {what}");
        std::thread::yield_now();
    }
}

#[test]
fn closures_run_on_the_pools_own_named_threads() {
    let tasks = TaskCounter::new();
    let pool = Pool::builder().workers(2).name("crunch").task_counter(tasks.clone()).build_cpu().unwrap();
    assert_eq!(tasks.live(), 2);
    let handles: Vec<_> = (0..10u64)
        .map(|n| {
            pool.submit_blocking(move |_| (n, std::thread::current().name().unwrap_or_default().to_owned())).unwrap()
        })
        .collect();
    for (n, handle) in handles.into_iter().enumerate() {
        let (value, thread) = handle.wait_blocking().unwrap();
        assert_eq!(value, n as u64);
        assert!(thread.starts_with("crunch-"), "{thread}");
    }
    pool.join_blocking();
    assert_eq!(tasks.live(), 0, "join joins every thread");
    assert_eq!(pool.stats().completed, 10);
}

#[test]
fn a_panic_is_caught_and_the_thread_lives_on() {
    let pool = Pool::builder().workers(1).build_cpu().unwrap();
    let boom = pool.submit_blocking(|_| -> u32 { panic!("cpu boom") }).unwrap();
    let after = pool.submit_blocking(|_| 5).unwrap();
    match boom.wait_blocking() {
        Err(JobError::Panicked(payload)) => assert_eq!(*payload.downcast_ref::<&str>().unwrap(), "cpu boom"),
        other => panic!("expected a panic, got {other:?}"),
    }
    assert_eq!(after.wait_blocking().unwrap(), 5);
    assert_eq!(pool.stats().workers, 1);
}

#[test]
fn a_full_queue_fails_try_submit_and_blocks_submit_blocking() {
    let pool = Pool::builder().workers(1).queue_capacity(1).build_cpu().unwrap();
    let release = Token::new();
    let started = Arc::new(AtomicUsize::new(0));
    let first = {
        let (release, started) = (release.clone(), started.clone());
        pool.submit_blocking(move |_| {
            started.fetch_add(1, Ordering::SeqCst);
            release.wait_blocking();
        })
        .unwrap()
    };
    until("the first job runs", || started.load(Ordering::SeqCst) == 1);
    let second = pool.try_submit(|_| ()).unwrap();
    assert!(matches!(pool.try_submit(|_| ()), Err(SubmitError::Full(_))));
    // The thread takes the last handle: the pool closes when it is done.
    let blocked = std::thread::spawn(move || pool.submit_blocking(|_| 3).unwrap().wait_blocking().unwrap());
    release.cancel();
    assert_eq!(blocked.join().unwrap(), 3);
    first.wait_blocking().unwrap();
    second.wait_blocking().unwrap();
}

#[tokio::test]
async fn async_callers_submit_and_await_cpu_jobs() {
    let pool = Pool::builder().workers(2).build_cpu().unwrap();
    let handle = pool.submit(|_| (1..=10u64).sum::<u64>()).await.unwrap();
    assert_eq!(handle.await.unwrap(), 55);
    let token = Token::new();
    let handle = pool.submit_until(|_| 1, &token).await.unwrap();
    assert_eq!(handle.await.unwrap(), 1);
    pool.join().await;
    assert!(matches!(pool.try_submit(|_| 1), Err(SubmitError::Closed(_))));
}

#[test]
fn shutdown_cancels_tokens_at_the_deadline_and_hands_queued_jobs_back() {
    let clock = ManualClock::new();
    let tasks = TaskCounter::new();
    let pool = Pool::builder()
        .workers(1)
        .queue_capacity(4)
        .clock(clock.clone())
        .task_counter(tasks.clone())
        .build_cpu()
        .unwrap();
    let started = Arc::new(AtomicUsize::new(0));
    let cooperative = {
        let started = started.clone();
        pool.submit_blocking(move |token: Token| {
            started.fetch_add(1, Ordering::SeqCst);
            token.wait_blocking();
            "stopped when asked"
        })
        .unwrap()
    };
    let queued = pool.submit_blocking(|_| 7).unwrap();
    until("the first job runs", || started.load(Ordering::SeqCst) == 1);

    let deadline = clock.now() + Duration::from_secs(3);
    let shutdown = {
        let pool = pool.clone();
        std::thread::spawn(move || pool.shutdown_blocking(deadline))
    };
    until("the pool is closed", || pool.is_closed());
    assert!(!shutdown.is_finished());
    clock.advance(Duration::from_secs(3));
    let report = shutdown.join().unwrap();

    // A CPU job cannot be interrupted: it saw its token and returned.
    assert_eq!(cooperative.wait_blocking().unwrap(), "stopped when asked");
    assert_eq!(queued.wait_blocking().unwrap_err().into_not_run().unwrap()(Token::new()), 7);
    assert!(report.deadline_passed);
    assert_eq!((report.completed, report.not_run), (1, 1));
    assert_eq!(tasks.live(), 0);
}

#[test]
fn cpu_pools_grow_retire_and_resize() {
    let clock = ManualClock::new();
    let tasks = TaskCounter::new();
    let pool = Pool::builder()
        .workers_between(0, 3)
        .idle_timeout(Duration::from_secs(5))
        .clock(clock.clone())
        .task_counter(tasks.clone())
        .build_cpu()
        .unwrap();
    assert_eq!(pool.stats().workers, 0);
    let release = Token::new();
    let running = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let (release, running) = (release.clone(), running.clone());
            pool.submit_blocking(move |_| {
                running.fetch_add(1, Ordering::SeqCst);
                release.wait_blocking();
            })
            .unwrap()
        })
        .collect();
    until("three jobs run", || running.load(Ordering::SeqCst) == 3);
    assert_eq!(pool.stats().peak_workers, 3);
    release.cancel();
    for handle in handles {
        handle.wait_blocking().unwrap();
    }
    until("idle threads retire", || {
        clock.advance(Duration::from_secs(5));
        pool.stats().workers == 0
    });
    until("retired threads end", || tasks.live() == 0);
    pool.resize(2).unwrap();
    assert_eq!(pool.submit_blocking(|_| 4).unwrap().wait_blocking().unwrap(), 4);
    pool.join_blocking();
    assert_eq!(tasks.live(), 0);
}

#[test]
fn a_dropped_cpu_pool_finishes_its_queue_and_its_threads_end() {
    let tasks = TaskCounter::new();
    let done = Arc::new(AtomicUsize::new(0));
    {
        let pool = Pool::builder().workers(2).task_counter(tasks.clone()).build_cpu().unwrap();
        for _ in 0..20 {
            let done = done.clone();
            pool.submit_blocking(move |_| done.fetch_add(1, Ordering::SeqCst)).unwrap().detach();
        }
    }
    until("the threads drain the queue and end", || tasks.live() == 0);
    assert_eq!(done.load(Ordering::SeqCst), 20);
}

#[test]
fn a_cpu_results_stream_tags_outcomes_and_ends_when_the_submitter_goes() {
    let pool = Pool::builder().workers(2).queue_capacity(2).build_cpu().unwrap();
    let (results, mut stream) = pool.results::<u64>();
    let mut expected = std::collections::HashMap::new();
    for n in 0..8u64 {
        expected.insert(results.submit_blocking(move |_| n * 3).unwrap(), n * 3);
    }
    let panicked = results.submit_blocking(|_| -> u64 { panic!("cpu result panic") }).unwrap();
    drop(results);
    let mut seen = 0;
    while let Some((id, outcome)) = stream.next_blocking() {
        seen += 1;
        match outcome {
            Ok(value) => assert_eq!(expected.remove(&id), Some(value), "{id} delivered once, with its value"),
            Err(error) => assert!(error.is_panic() && id == panicked),
        }
    }
    assert_eq!(seen, 9);
    assert!(expected.is_empty());
    assert!(matches!(pool.results::<u8>().0.try_submit(|_| 1).map(|_| ()), Ok(())));
    pool.join_blocking();
}

/// A worker reuses its job token when nothing can observe it; these are
/// the cases where something can, so the next job must get a new one.
#[test]
fn no_job_gets_a_token_an_earlier_job_can_still_reach() {
    let pool = Pool::builder().workers(1).build_cpu().unwrap();
    let run = |job: fn(Token) -> Token| pool.submit_blocking(job).unwrap().wait_blocking().unwrap();

    // A job that cancelled its own token.
    let cancelled = run(|token| {
        token.cancel();
        token
    });
    drop(cancelled);
    let next = run(|token| token);
    assert!(!next.is_cancelled(), "a job started on an earlier job's cancelled token");
    drop(next);

    // A job that kept a clone of its token: cancelling it later must not
    // reach the next job.
    let kept = run(|token| token);
    let next = run(|token| token);
    kept.cancel();
    assert!(!next.is_cancelled(), "cancelling a kept token reached a later job");
    drop(next);

    // A job that left a child behind: cancelling the next job's token must
    // not reach that child.
    let child = run(|token| token.child());
    let next = run(|token| token);
    next.cancel();
    assert!(!child.is_cancelled(), "a later job's cancel reached an earlier job's child");
    pool.join_blocking();
}
