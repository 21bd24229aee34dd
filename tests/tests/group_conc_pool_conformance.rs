//! Conformance with sourcegraph/conc's pools and iterators, porting the
//! meaning of `pool/pool_test.go`, `pool/result_pool_test.go`,
//! `pool/result_error_pool_test.go`, `pool/context_pool_test.go` and
//! `iter/map_test.go` / `iter/iter_test.go` to `conc_group`.
//!
//! conc's pools re-panic on `Wait`; `conc_group` returns the panic and
//! re-raises it on request (`GroupError::resume_panic`), which these tests
//! use where conc expects a panic.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use conc_core::{Cause, Token};
use conc_group::{Group, GroupError, MapError, ResultGroup, for_each, map, try_map};

/// The most tasks seen inside a section at once (conc's tests track
/// `currentConcurrent` / `maxConcurrent` the same way).
#[derive(Clone, Default)]
struct Concurrency {
    current: Arc<AtomicUsize>,
    max: Arc<AtomicUsize>,
}

impl Concurrency {
    async fn run(&self) {
        let now = self.current.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
        self.current.fetch_sub(1, Ordering::SeqCst);
    }

    fn max(&self) -> usize {
        self.max.load(Ordering::SeqCst)
    }
}

fn tasks(n: usize) -> usize {
    if cfg!(miri) { n.min(8) } else { n }
}

// pool_test.go "basic": every task runs before Wait returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_basic_runs_every_task() {
    let completed = Arc::new(AtomicUsize::new(0));
    let mut group = Group::<String>::new();
    for _ in 0..tasks(100) {
        let completed = completed.clone();
        group
            .spawn(move |_| async move {
                completed.fetch_add(1, Ordering::SeqCst);
                Ok(())
            })
            .await
            .unwrap();
    }
    group.wait().await.unwrap();
    assert_eq!(completed.load(Ordering::SeqCst), tasks(100));
}

// pool_test.go "limit": WithMaxGoroutines(n) never runs more than n tasks
// at once, for several n, and still runs them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_limit_is_respected() {
    for limit in [1, 10, 100] {
        let concurrency = Concurrency::default();
        let completed = Arc::new(AtomicUsize::new(0));
        let mut group = Group::<String>::new();
        group.limit(limit).unwrap();
        for _ in 0..tasks(300) {
            let (concurrency, completed) = (concurrency.clone(), completed.clone());
            group
                .spawn(move |_| async move {
                    concurrency.run().await;
                    completed.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                })
                .await
                .unwrap();
        }
        group.wait().await.unwrap();
        assert!(concurrency.max() <= limit, "limit {limit}: {} at once", concurrency.max());
        assert_eq!(completed.load(Ordering::SeqCst), tasks(300));
    }
}

// pool_test.go "panics": a task's panic reaches the caller of Wait, with
// its value.
#[tokio::test]
async fn pool_panics_propagate_on_request() {
    let mut group = Group::<String>::new();
    for i in 0..10 {
        group
            .spawn(move |_| async move {
                assert!(i != 5, "super bad thing happened");
                Ok(())
            })
            .await
            .ok();
    }
    let result = group.wait().await;
    let resumed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| result.map_err(GroupError::resume_panic)));
    let payload = resumed.unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"super bad thing happened"));
}

// result_pool_test.go "basic" / "deterministic order": results come back in
// the order the tasks were submitted, whatever order they finish in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn result_pool_returns_results_in_submission_order() {
    let mut group = ResultGroup::<usize, String>::new();
    group.limit(4).unwrap();
    let n = tasks(100);
    for i in 0..n {
        group
            .spawn(move |_| async move {
                // Later tasks tend to finish first.
                for _ in 0..(n - i) % 5 {
                    tokio::task::yield_now().await;
                }
                Ok(i)
            })
            .await
            .unwrap();
    }
    assert_eq!(group.wait().await.unwrap(), (0..n).collect::<Vec<_>>());
}

// result_error_pool_test.go "WithCollectErrored": results of tasks that
// failed are collected too, and every error is reported.
#[tokio::test]
async fn result_error_pool_collect_errored() {
    let mut group = ResultGroup::<i32, String>::new().collect_errored();
    for i in 0..10 {
        group.spawn(move |_| async move { if i % 2 == 0 { Err(format!("err {i}")) } else { Ok(i) } }).await.unwrap();
    }
    let outcomes = group.wait_results().await;
    assert_eq!(outcomes.len(), 10);
    let values: Vec<_> = outcomes.iter().filter_map(|outcome| outcome.as_ref().ok().copied()).collect();
    assert_eq!(values, [1, 3, 5, 7, 9]);
    let errors: Vec<_> =
        outcomes.iter().filter_map(|outcome| outcome.as_ref().err().map(ToString::to_string)).collect();
    assert_eq!(errors, ["err 0", "err 2", "err 4", "err 6", "err 8"]);
}

// result_error_pool_test.go "WithFirstError": only the first error is
// returned, even when several tasks fail.
#[tokio::test]
async fn result_error_pool_first_error() {
    let mut group = ResultGroup::<i32, String>::new();
    let (first_tx, first_rx) = tokio::sync::oneshot::channel::<()>();
    group
        .spawn(|_| async move {
            let result = Err("first".to_owned());
            first_tx.send(()).unwrap();
            result
        })
        .await
        .unwrap();
    group
        .spawn(|_| async move {
            first_rx.await.unwrap();
            Err("second".to_owned())
        })
        .await
        .unwrap();
    assert_eq!(group.wait().await.unwrap_err().into_failed().as_deref(), Some("first"));
}

// context_pool_test.go "WithCancelOnError": the first error cancels the
// context the other tasks run under; they return the context's error and
// Wait returns the original one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_pool_cancel_on_error() {
    let mut group = Group::<String>::new();
    for _ in 0..tasks(10) {
        group
            .spawn(|token| async move {
                token.cancelled().await;
                Err(format!("cancelled: {}", token.cause().unwrap()))
            })
            .await
            .unwrap();
    }
    group.spawn(|_| async { Err("boom".to_owned()) }).await.unwrap();
    let errors = group.wait_all().await.unwrap_err();
    assert_eq!(errors.len(), tasks(10) + 1);
    assert_eq!(errors[0].to_string(), "boom", "the original error happened first");
    assert!(errors[1..].iter().all(|error| error.to_string() == "cancelled: boom"));
}

// context_pool_test.go "parent context canceled": cancelling the parent
// context reaches every task.
#[tokio::test]
async fn context_pool_parent_cancellation_reaches_tasks() {
    let parent = Token::new();
    let mut group = Group::<String>::with_token(&parent);
    let stopped = Arc::new(AtomicUsize::new(0));
    for _ in 0..tasks(10) {
        let stopped = stopped.clone();
        group
            .spawn(move |token| async move {
                token.cancelled().await;
                stopped.fetch_add(1, Ordering::SeqCst);
                Ok(())
            })
            .await
            .unwrap();
    }
    let tasks_token = group.token().clone();
    parent.cancel_with(Cause::error("shutdown"));
    assert_eq!(tasks_token.cause().map(|cause| cause.to_string()).as_deref(), Some("shutdown"));
    // Every task sees the cancellation and returns (the yields are bounded,
    // so a task that never saw it fails the test instead of hanging).
    for _ in 0..1000 {
        if stopped.load(Ordering::SeqCst) == tasks(10) {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(stopped.load(Ordering::SeqCst), tasks(10));
    // They all returned Ok, so nothing had to be aborted.
    assert!(group.wait().await.is_ok());
}

// iter/map_test.go "basic increment": Map returns the results in input
// order, for several worker limits, and leaves the input untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iter_map_keeps_order_for_every_limit() {
    let input: Vec<i64> = (1..=tasks(100) as i64).collect();
    for limit in [1, 3, 64, 1000] {
        let concurrency = Concurrency::default();
        let c = concurrency.clone();
        let output = map(input.clone(), limit, move |x| {
            let c = c.clone();
            async move {
                c.run().await;
                x + 1
            }
        })
        .await
        .unwrap();
        assert_eq!(output, input.iter().map(|x| x + 1).collect::<Vec<_>>(), "limit {limit}");
        assert!(concurrency.max() <= limit);
    }
    let empty: Vec<i64> = map(Vec::<i64>::new(), 4, |x| async move { x }).await.unwrap();
    assert!(empty.is_empty());
}

// iter/map_test.go "MapErr": errors are reported; here the first one, with
// the index of the item that failed.
#[tokio::test]
async fn iter_map_err_reports_the_failing_item() {
    let result = try_map(vec![1, 2, 3, 4], 1, |x| async move { if x == 3 { Err("three") } else { Ok(x) } }).await;
    match result {
        Err(MapError::Failed { index, error }) => assert_eq!((index, error), (2, "three")),
        other => panic!("unexpected {other:?}"),
    }
}

// iter/iter_test.go "ForEach" and "panic is propagated": every item is
// visited; a panic reaches the caller.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iter_for_each_visits_every_item_and_propagates_panics() {
    let sum = Arc::new(AtomicUsize::new(0));
    let s = sum.clone();
    for_each(1..=tasks(100), 7, move |i| {
        let s = s.clone();
        async move {
            s.fetch_add(i, Ordering::SeqCst);
        }
    })
    .await
    .unwrap();
    let n = tasks(100);
    assert_eq!(sum.load(Ordering::SeqCst), n * (n + 1) / 2);

    let result = for_each(0..10, 3, |i| async move { assert!(i != 7, "super bad thing happened") }).await;
    let resumed = std::panic::catch_unwind(|| result.map_err(MapError::resume_panic));
    assert_eq!(resumed.unwrap_err().downcast_ref::<&str>(), Some(&"super bad thing happened"));
}
