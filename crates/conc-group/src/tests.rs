use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use conc_core::{Cause, ManualClock, TaskCounter, Token};
use tokio::sync::oneshot;

use crate::*;

/// Yields until `counter` reaches zero; aborted tasks are dropped by the
/// runtime on its next turns. Bounded, so a leak fails instead of hanging.
async fn settle(counter: &TaskCounter) -> usize {
    for _ in 0..1000 {
        if counter.live() == 0 {
            break;
        }
        tokio::task::yield_now().await;
    }
    counter.live()
}

/// Tracks how many tasks are inside a section at once, and the most ever.
#[derive(Clone, Default)]
struct Gauge {
    now: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
}

impl Gauge {
    async fn visit(&self, yields: usize) {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        for _ in 0..yields {
            tokio::task::yield_now().await;
        }
        self.now.fetch_sub(1, Ordering::SeqCst);
    }

    fn most(&self) -> usize {
        self.most.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn an_empty_group_waits_for_nothing() {
    assert!(Group::<String>::new().wait().await.is_ok());
    assert!(Group::<String>::new().wait_all().await.is_ok());
    assert!(ResultGroup::<u8, String>::new().wait().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_first_error_cancels_the_token_and_is_returned() {
    let mut group = Group::new();
    let token = group.token().clone();
    let (fail, failing) = oneshot::channel::<()>();
    group
        .spawn(|token| async move {
            token.cancelled().await;
            Err("second: saw the cancellation")
        })
        .await
        .unwrap();
    group
        .spawn(|_| async move {
            failing.await.unwrap();
            Err("first")
        })
        .await
        .unwrap();
    fail.send(()).unwrap();
    assert_eq!(group.wait().await.unwrap_err().into_failed(), Some("first"));
    let cause = token.cause().unwrap();
    assert_eq!(cause.downcast_ref::<TaskFailure>().map(TaskFailure::message), Some("first"));
}

#[tokio::test]
async fn wait_all_returns_failures_in_the_order_they_happened() {
    let mut group = Group::new();
    let (first_tx, first_rx) = oneshot::channel::<()>();
    let (second_tx, second_rx) = oneshot::channel::<()>();
    group
        .spawn(|_| async move {
            second_rx.await.unwrap();
            Err("spawned first, failed second")
        })
        .await
        .unwrap();
    group.spawn(|_| async { Ok(()) }).await.unwrap();
    group
        .spawn(|_| async move {
            first_rx.await.unwrap();
            let result = Err("spawned last, failed first");
            second_tx.send(()).unwrap();
            result
        })
        .await
        .unwrap();
    first_tx.send(()).unwrap();
    let errors = group.wait_all().await.unwrap_err();
    let messages: Vec<_> = errors.into_iter().map(|e| e.into_failed().unwrap()).collect();
    assert_eq!(messages, ["spawned last, failed first", "spawned first, failed second"]);
}

#[tokio::test]
async fn a_zero_limit_is_rejected_and_a_limit_cannot_change_under_running_tasks() {
    let mut group = Group::<String>::new();
    assert_eq!(group.limit(0), Err(LimitError::Zero));
    let (release, released) = oneshot::channel::<()>();
    group
        .spawn(|_| async move {
            released.await.ok();
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(group.limit(2), Err(LimitError::TasksRunning { running: 1 }));
    release.send(()).unwrap();
    assert!(group.wait().await.is_ok());

    let mut group = Group::<String>::new();
    group.limit(3).unwrap();
    assert_eq!(group.current_limit(), Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limit_is_never_exceeded() {
    let gauge = Gauge::default();
    let mut group = Group::<String>::new();
    group.limit(3).unwrap();
    for _ in 0..if cfg!(miri) { 10 } else { 200 } {
        let gauge = gauge.clone();
        group
            .spawn(move |_| async move {
                gauge.visit(3).await;
                Ok(())
            })
            .await
            .unwrap();
        assert!(group.running() <= 3);
    }
    group.wait().await.unwrap();
    assert!(gauge.most() <= 3, "{} ran at once", gauge.most());
    assert!(gauge.most() >= 1);
}

#[tokio::test]
async fn try_spawn_hands_the_task_back_when_full() {
    let mut group = Group::<String>::new();
    group.limit(1).unwrap();
    let (release, released) = oneshot::channel::<()>();
    group
        .try_spawn(|_| async move {
            released.await.ok();
            Ok(())
        })
        .unwrap();
    let second = |_: Token| async { Ok(()) };
    let full = group.try_spawn(second).unwrap_err();
    assert!(matches!(full, SpawnError::Full(_)));
    assert!(!full.is_cancelled());
    let second = full.into_inner();
    release.send(()).unwrap();
    // The slot comes back when the first task ends.
    group.spawn(second).await.unwrap();
    assert!(group.wait().await.is_ok());
}

#[tokio::test]
async fn a_spawn_waiting_for_a_slot_is_refused_once_the_group_is_cancelled() {
    let mut group = Group::<&str>::new();
    group.limit(1).unwrap();
    let (fail, failing) = oneshot::channel::<()>();
    group
        .spawn(|_| async move {
            failing.await.ok();
            Err("broken")
        })
        .await
        .unwrap();
    let token = group.token().clone();
    let failer = tokio::spawn(async move {
        tokio::task::yield_now().await;
        fail.send(()).unwrap();
    });
    let refused = group.spawn(|_| async { Ok(()) }).await.unwrap_err();
    assert!(refused.is_cancelled());
    assert!(token.is_cancelled());
    assert!(group.try_spawn(|_| async { Ok(()) }).unwrap_err().is_cancelled());
    assert_eq!(group.not_started(), 2);
    failer.await.unwrap();
    assert_eq!(group.wait().await.unwrap_err().into_failed(), Some("broken"));
}

#[tokio::test]
async fn a_panic_is_caught_cancels_the_group_and_can_be_resumed() {
    let mut group = Group::<String>::new();
    let token = group.token().clone();
    let line = line!() + 1;
    group.spawn(|_| async { panic!("kaboom") }).await.unwrap();
    let error = group.wait().await.unwrap_err();
    assert!(error.is_panic());
    let GroupError::Panicked(panic) = &error else { panic!("expected a panic, got {error:?}") };
    assert_eq!(panic.message().as_deref(), Some("kaboom"));
    assert_eq!(panic.spawned_at().file(), file!());
    assert_eq!(panic.spawned_at().line(), line);
    assert!(error.to_string().contains("kaboom"));
    let cause = token.cause().unwrap();
    assert!(cause.downcast_ref::<TaskFailure>().unwrap().is_panic());

    let resumed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| error.resume_panic()));
    let payload = resumed.unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"kaboom"));
}

#[tokio::test]
async fn a_panic_in_the_closure_itself_is_caught_too() {
    let mut group = ResultGroup::<u8, String>::new();
    group.spawn(|_| -> std::future::Ready<Result<u8, String>> { panic!("{}", String::from("closure")) }).await.unwrap();
    let error = group.wait().await.unwrap_err();
    let GroupError::Panicked(panic) = error else { panic!("expected a panic") };
    assert_eq!(panic.message().as_deref(), Some("closure"));
    assert_eq!(panic.into_payload().downcast_ref::<String>().map(String::as_str), Some("closure"));
}

#[tokio::test]
async fn dropping_a_group_cancels_its_token_and_aborts_its_tasks() {
    let counter = TaskCounter::new();
    let mut group = Group::<String>::new();
    let token = group.token().clone();
    for _ in 0..8 {
        let tracked = counter.track(std::future::pending::<Result<(), String>>());
        group.spawn(move |_| tracked).await.unwrap();
    }
    assert_eq!(counter.live(), 8);
    drop(group);
    assert!(token.is_cancelled());
    assert_eq!(settle(&counter).await, 0);
}

#[tokio::test]
async fn wait_leaves_no_task_behind() {
    let counter = TaskCounter::new();
    let mut group = ResultGroup::<usize, String>::new();
    for n in 0..50 {
        let tracked = counter.track(async move {
            tokio::task::yield_now().await;
            Ok(n)
        });
        group.spawn(move |_| tracked).await.unwrap();
    }
    let token = group.token().clone();
    assert_eq!(group.wait().await.unwrap(), (0..50).collect::<Vec<_>>());
    assert_eq!(counter.live(), 0);
    assert!(token.is_cancelled(), "wait cancels the token at the end, as Go's Wait");
}

#[tokio::test]
async fn detached_tasks_run_on() {
    let mut group = Group::<String>::new();
    let token = group.token().clone();
    let (done_tx, done_rx) = oneshot::channel();
    group
        .spawn(|_| async move {
            tokio::task::yield_now().await;
            done_tx.send(7).unwrap();
            Ok(())
        })
        .await
        .unwrap();
    group.detach();
    assert_eq!(done_rx.await.unwrap(), 7);
    assert!(!token.is_cancelled());
}

#[tokio::test]
async fn a_parent_deadline_stops_spawning_and_ends_the_tasks() {
    let clock = ManualClock::new();
    let parent = Token::with_clock(clock.clone()).with_timeout(Duration::from_secs(1));
    let counter = TaskCounter::new();
    let mut group = ResultGroup::<u8, String>::with_token(&parent);
    group.spawn(|_| async { Ok(1) }).await.unwrap();
    let stubborn = counter.track(std::future::pending());
    group.spawn(move |_| stubborn).await.unwrap();
    let token = group.token().clone();
    let watcher = tokio::spawn(async move {
        token.cancelled().await;
        token.cause()
    });
    tokio::task::yield_now().await;
    clock.advance(Duration::from_secs(1));
    assert_eq!(watcher.await.unwrap(), Some(Cause::DeadlineExceeded));
    assert!(group.spawn(|_| async { Ok(3) }).await.unwrap_err().is_cancelled());
    let results = group.wait_results().await;
    assert_eq!(results.len(), 2);
    assert_eq!(results[0].as_ref().ok(), Some(&1));
    assert!(matches!(&results[1], Err(GroupError::Cancelled(Cause::DeadlineExceeded))));
    assert_eq!(counter.live(), 0);
}

#[tokio::test]
async fn a_parent_cancelled_while_waiting_aborts_and_reports_its_cause() {
    let parent = Token::new();
    let mut group = Group::<String>::with_token(&parent);
    let counter = TaskCounter::new();
    let stubborn = counter.track(std::future::pending());
    group.spawn(move |_| stubborn).await.unwrap();
    let canceller = parent.clone();
    tokio::spawn(async move {
        tokio::task::yield_now().await;
        canceller.cancel_with(Cause::error("shutdown"));
    });
    match group.wait().await {
        Err(GroupError::Cancelled(cause)) => assert_eq!(cause.to_string(), "shutdown"),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(counter.live(), 0);
}

#[tokio::test]
async fn a_failure_before_the_parent_cancel_is_what_wait_returns() {
    let parent = Token::new();
    let mut group = Group::<&str>::with_token(&parent);
    group.spawn(|_| async { Err("first") }).await.unwrap();
    group.spawn(|_| std::future::pending()).await.unwrap();
    tokio::task::yield_now().await;
    parent.cancel();
    assert_eq!(group.wait().await.unwrap_err().into_failed(), Some("first"));
}

#[tokio::test]
async fn collect_errored_keeps_going_and_returns_everything_in_spawn_order() {
    let mut group = ResultGroup::<u32, String>::new().collect_errored();
    let token = group.token().clone();
    for n in 0..6u32 {
        group
            .spawn(move |token| async move {
                tokio::task::yield_now().await;
                assert!(!token.is_cancelled());
                if n % 3 == 0 { Err(format!("bad {n}")) } else { Ok(n) }
            })
            .await
            .unwrap();
    }
    assert_eq!(group.len(), 6);
    let results = group.wait_results().await;
    let flat: Vec<_> = results.into_iter().map(|r| r.map_err(|e| e.to_string())).collect();
    assert_eq!(flat, [Err("bad 0".into()), Ok(1), Ok(2), Err("bad 3".into()), Ok(4), Ok(5)]);
    assert!(token.is_cancelled(), "cancelled by wait at the end, not by the failures");
    assert_eq!(token.cause(), Some(Cause::Cancelled));
}

#[tokio::test]
async fn many_finished_tasks_are_reaped_without_losing_failures() {
    fn unjoined(debug: &str) -> usize {
        let rest = &debug[debug.find("unjoined: ").unwrap() + "unjoined: ".len()..];
        rest[..rest.find(',').unwrap()].parse().unwrap()
    }

    // A long-lived group holds handles for running tasks only: once its
    // handle list is full (64), the finished ones are dropped.
    let mut group = Group::<u32>::new();
    for _ in 0..if cfg!(miri) { 200 } else { 1000 } {
        group.spawn(|_| async { Ok(()) }).await.unwrap();
        tokio::task::yield_now().await;
        assert!(unjoined(&format!("{group:?}")) <= 64);
    }
    assert!(group.wait().await.is_ok());

    // A failure whose handle was dropped is still reported.
    let mut group = Group::new();
    for i in 0..64u32 {
        group.spawn(move |_| async move { if i == 63 { Err(i) } else { Ok(()) } }).await.unwrap();
        tokio::task::yield_now().await;
    }
    assert!(group.spawn(|_| async { Ok(()) }).await.unwrap_err().is_cancelled());
    assert_eq!(unjoined(&format!("{group:?}")), 0, "the 65th spawn reaped every finished task");
    let errors = group.wait_all().await.unwrap_err();
    assert_eq!(errors.into_iter().map(|e| e.into_failed().unwrap()).collect::<Vec<_>>(), [63]);
    assert!(format!("{:?}", ResultGroup::<(), u32>::new()).starts_with("ResultGroup"));
}

#[tokio::test]
async fn map_keeps_input_order_under_its_limit() {
    let gauge = Gauge::default();
    let g = gauge.clone();
    let n = if cfg!(miri) { 20 } else { 500 };
    let doubled = map(0..n, 7, move |i| {
        let gauge = g.clone();
        async move {
            gauge.visit(i % 3).await;
            i * 2
        }
    })
    .await
    .unwrap();
    assert_eq!(doubled, (0..n).map(|i| i * 2).collect::<Vec<_>>());
    assert!(gauge.most() <= 7);
    assert!(map(Vec::<u8>::new(), 4, |i| async move { i }).await.unwrap().is_empty());
    assert!(matches!(map(0..3, 0, |i| async move { i }).await, Err(MapError::ZeroLimit)));
}

#[tokio::test]
async fn try_map_stops_at_the_first_error() {
    let started = Arc::new(AtomicUsize::new(0));
    let seen = started.clone();
    let result = try_map(0..1000u32, 1, move |i| {
        seen.fetch_add(1, Ordering::SeqCst);
        async move { if i == 5 { Err(format!("item {i}")) } else { Ok(i) } }
    })
    .await;
    match result {
        Err(MapError::Failed { index, error }) => assert_eq!((index, error.as_str()), (5, "item 5")),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(started.load(Ordering::SeqCst), 6, "with one worker nothing starts after the failure");
    assert_eq!(try_map(0..4u32, 2, |i| async move { Ok::<_, String>(i + 1) }).await.unwrap(), [1, 2, 3, 4]);
}

#[tokio::test]
async fn map_and_for_each_catch_panics() {
    let result = map(0..10u32, 3, |i| async move {
        assert!(i != 4, "item four");
        i
    })
    .await;
    match result {
        Err(MapError::Panicked { index, panic }) => {
            assert_eq!(index, 4);
            assert_eq!(panic.message().as_deref(), Some("item four"));
        }
        other => panic!("unexpected {other:?}"),
    }
    let result = for_each(0..3u32, 2, |i| async move { assert!(i != 1) }).await;
    assert!(matches!(result, Err(MapError::Panicked { index: 1, .. })));
    let resumed = std::panic::catch_unwind(|| result.map_err(MapError::resume_panic));
    assert!(resumed.is_err());
}

#[tokio::test]
async fn dropping_a_map_aborts_its_workers() {
    let counter = TaskCounter::new();
    let c = counter.clone();
    let run = tokio::spawn(map(0..100u32, 4, move |_| c.track(std::future::pending::<()>())));
    while counter.live() < 4 {
        tokio::task::yield_now().await;
    }
    run.abort();
    assert!(run.await.unwrap_err().is_cancelled());
    assert_eq!(settle(&counter).await, 0);
}

#[tokio::test]
async fn first_ok_takes_the_first_success_and_drops_the_rest() {
    let counter = TaskCounter::new();
    let slow = counter.track(async {
        std::future::pending::<()>().await;
        Ok::<u8, &str>(1)
    });
    type Attempt = std::pin::Pin<Box<dyn std::future::Future<Output = Result<u8, &'static str>> + Send>>;
    let futures: Vec<Attempt> = vec![Box::pin(slow), Box::pin(async { Err("down") }), Box::pin(async { Ok(3) })];
    assert_eq!(first_ok(futures).await, Ok(3));
    assert_eq!(counter.live(), 0, "the loser was dropped");
    assert_eq!(first_ok(Vec::<std::future::Ready<Result<u8, u8>>>::new()).await, Err(vec![]));
}

#[tokio::test]
async fn hedge_starts_a_second_attempt_only_after_the_delay() {
    let clock = ManualClock::new();
    let attempts = Arc::new(AtomicUsize::new(0));
    let (answer_tx, answer_rx) = oneshot::channel::<u8>();
    let mut answer_rx = Some(answer_rx);
    let counted = attempts.clone();
    let hedged = tokio::spawn({
        let clock = clock.clone();
        async move {
            hedge_with_clock(&clock, Duration::from_millis(100), move || {
                let n = counted.fetch_add(1, Ordering::SeqCst);
                let first = answer_rx.take();
                async move {
                    match first {
                        Some(rx) => rx.await.map_err(|_| "first gave up"),
                        None if n == 1 => std::future::pending().await,
                        None => Err("unexpected third attempt"),
                    }
                }
            })
            .await
        }
    });
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(attempts.load(Ordering::SeqCst), 1, "no second attempt before the delay");
    clock.advance(Duration::from_millis(100));
    while attempts.load(Ordering::SeqCst) < 2 {
        tokio::task::yield_now().await;
    }
    answer_tx.send(9).unwrap();
    assert_eq!(hedged.await.unwrap(), Ok(9), "the first attempt can still win");
}

#[tokio::test]
async fn hedge_returns_both_errors_when_both_fail() {
    let clock = ManualClock::new();
    let mut n = 0;
    let result = hedge_with_clock(&clock, Duration::from_secs(1), || {
        n += 1;
        let this = n;
        async move { Err::<(), _>(this) }
    })
    .await;
    assert_eq!(result, Err(vec![1, 2]));
}
