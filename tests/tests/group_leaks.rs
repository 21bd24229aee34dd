//! No task outlives its group: every task a `conc_group` group or bounded
//! helper starts is counted with a `TaskCounter`, and the count is back to
//! zero after `wait`, after the group is dropped mid-flight, and after the
//! future of a `map` is dropped — on a multi-threaded runtime, where aborted
//! tasks are torn down by other workers.

use std::future::pending;
use std::time::{Duration, Instant};

use conc_core::{ManualClock, TaskCounter, Token};
use conc_group::{Group, GroupError, ResultGroup, map};

/// Waits until `counter` reads zero. Aborted tasks are dropped by the
/// runtime's workers soon after the abort; the generous deadline only
/// turns a leak into a failure instead of a hang.
async fn settled(counter: &TaskCounter) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    while counter.live() > 0 && Instant::now() < deadline {
        tokio::task::yield_now().await;
    }
    counter.live()
}

fn scale(n: usize) -> usize {
    if cfg!(miri) { n.min(10) } else { n }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_groups_mid_flight_leaves_no_task() {
    let counter = TaskCounter::new();
    for round in 0..scale(20) {
        let mut group = Group::<String>::new();
        if round % 2 == 0 {
            group.limit(1 + round % 5).unwrap();
        }
        for i in 0..scale(50) {
            let tracked = counter.track(async move {
                if i % 3 == 0 {
                    pending::<()>().await;
                }
                tokio::task::yield_now().await;
                Ok(())
            });
            if group.try_spawn(move |_| tracked).is_err() {
                break;
            }
        }
        drop(group);
    }
    assert_eq!(settled(&counter).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_leaves_no_task_even_after_failures_and_panics() {
    let counter = TaskCounter::new();
    let mut group = ResultGroup::<usize, String>::new().collect_errored();
    group.limit(8).unwrap();
    for i in 0..scale(200) {
        let tracked = counter.track(async move {
            tokio::task::yield_now().await;
            match i % 10 {
                3 => Err(format!("task {i} failed")),
                7 => panic!("task {i} panicked"),
                _ => Ok(i),
            }
        });
        group.spawn(move |_| tracked).await.unwrap();
    }
    let outcomes = group.wait_results().await;
    // wait returned, so every task has ended: no settling needed.
    assert_eq!(counter.live(), 0);
    let expected = |rest| (0..scale(200)).filter(|i| i % 10 == rest).count();
    assert_eq!(outcomes.iter().filter(|o| matches!(o, Err(GroupError::Failed(_)))).count(), expected(3));
    assert_eq!(outcomes.iter().filter(|o| matches!(o, Err(GroupError::Panicked(_)))).count(), expected(7));
    // The runtime survived the panics.
    assert_eq!(tokio::spawn(async { 1 }).await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_ends_a_group_of_stubborn_tasks() {
    let clock = ManualClock::new();
    let request = Token::with_clock(clock.clone()).with_timeout(Duration::from_secs(30));
    let counter = TaskCounter::new();
    let mut group = Group::<String>::with_token(&request);
    for _ in 0..scale(16) {
        let tracked = counter.track(pending());
        group.spawn(move |_| tracked).await.unwrap();
    }
    let waiting = tokio::spawn(group.wait());
    clock.advance(Duration::from_secs(30));
    match waiting.await.unwrap() {
        Err(GroupError::Cancelled(cause)) => assert!(cause.is_deadline_exceeded()),
        other => panic!("unexpected {other:?}"),
    }
    // wait awaited every aborted task, so they are gone already.
    assert_eq!(counter.live(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_map_leaves_no_worker() {
    let counter = TaskCounter::new();
    let tracked = counter.clone();
    // Every item waits forever, so each of the 16 workers holds one.
    let run = tokio::spawn(map(0..scale(1000), 16, move |_| tracked.track(pending::<()>())));
    while counter.live() < 16.min(scale(1000)) {
        tokio::task::yield_now().await;
    }
    run.abort();
    assert!(run.await.unwrap_err().is_cancelled());
    assert_eq!(settled(&counter).await, 0);
}
