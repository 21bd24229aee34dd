//! Unit tests on tokio's paused clock: every time rule is checked without
//! sleeping on the wall clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use conc_core::{Cause, ManualClock, Token};
use tokio::time::Instant;

use crate::{AbortReason, BuildError, Outcome, Phase, Shutdown, ShutdownReport, SpawnError, Trigger};

fn quiet() -> crate::Builder {
    Shutdown::builder().signals(&[])
}

type Log = Arc<Mutex<Vec<String>>>;

fn log() -> Log {
    Arc::default()
}

fn push(log: &Log, line: impl Into<String>) {
    log.lock().unwrap().push(line.into());
}

fn lines(log: &Log) -> Vec<String> {
    log.lock().unwrap().clone()
}

/// Waits for the report and checks that no task outlived it.
async fn finish(shutdown: Shutdown) -> ShutdownReport {
    let handle = shutdown.handle();
    let report = shutdown.wait().await;
    assert_eq!(handle.live_tasks(), 0, "a task outlived wait()");
    report
}

/// A subsystem that, told to stop, takes `work` to wind down and logs it.
fn worker(
    log: &Log,
    name: &'static str,
    work: Duration,
) -> impl FnOnce(crate::SubsystemHandle) -> futures_lite::future::Boxed<()> + use<> {
    let log = log.clone();
    move |sub| {
        Box::pin(async move {
            sub.cancelled().await;
            push(&log, format!("{name} told"));
            tokio::time::sleep(work).await;
            push(&log, format!("{name} done"));
        })
    }
}

#[tokio::test(start_paused = true)]
async fn phases_run_in_order_and_each_waits_for_its_subsystems() {
    let log = log();
    let shutdown = quiet().build().unwrap();
    shutdown.spawn_in(Phase::Final, "flusher", worker(&log, "final", Duration::from_millis(10))).unwrap();
    shutdown.spawn_in(Phase::Background, "ticker", worker(&log, "background", Duration::from_millis(10))).unwrap();
    shutdown.spawn("requests", worker(&log, "drain", Duration::from_millis(300))).unwrap();
    shutdown.spawn_in(Phase::StopAccepting, "listener", worker(&log, "accept", Duration::from_millis(20))).unwrap();
    shutdown.trigger();
    let started = Instant::now();
    let report = finish(shutdown).await;

    assert_eq!(
        lines(&log),
        [
            "accept told",
            "accept done",
            "drain told",
            "drain done",
            "background told",
            "background done",
            "final told",
            "final done"
        ]
    );
    assert_eq!(started.elapsed(), Duration::from_millis(340));
    assert_eq!(report.trigger, Trigger::Requested);
    assert_eq!(report.phases.iter().map(|p| p.phase).collect::<Vec<_>>(), Phase::ALL);
    assert!(report.phases.iter().all(|p| !p.deadline_hit));
    assert_eq!(report.phases[1].duration, Duration::from_millis(300));
    let drain = report.subsystem("requests").unwrap();
    assert_eq!((drain.phase, &drain.outcome), (Phase::Drain, &Outcome::Finished));
    assert_eq!(drain.stop_duration, Some(Duration::from_millis(300)));
    assert_eq!(drain.duration, Duration::from_millis(320));
    assert_eq!(report.exit_code(), ShutdownReport::EXIT_OK);
    assert!(report.is_clean());
}

#[tokio::test(start_paused = true)]
async fn a_subsystem_ignoring_its_token_is_aborted_at_its_phase_deadline() {
    let log = log();
    let shutdown = quiet().phase_timeout(Phase::Drain, Duration::from_secs(2)).build().unwrap();
    shutdown.spawn("stubborn", |_sub| std::future::pending::<()>()).unwrap();
    shutdown.spawn("polite", worker(&log, "polite", Duration::from_millis(500))).unwrap();
    shutdown.spawn_in(Phase::Background, "later", worker(&log, "later", Duration::ZERO)).unwrap();
    shutdown.trigger();
    let report = finish(shutdown).await;

    let stubborn = report.subsystem("stubborn").unwrap();
    assert_eq!(stubborn.outcome, Outcome::Aborted(AbortReason::Deadline));
    assert_eq!(stubborn.stop_duration, Some(Duration::from_secs(2)));
    assert!(report.subsystem("polite").unwrap().outcome.is_finished());
    assert!(report.phases[1].deadline_hit);
    assert_eq!(report.phases[1].duration, Duration::from_secs(2));
    // The next phase still ran, after the deadline.
    assert_eq!(lines(&log), ["polite told", "polite done", "later told", "later done"]);
    assert_eq!(report.exit_code(), ShutdownReport::EXIT_TIMEOUT);
}

#[derive(Debug, thiserror::Error)]
#[error("database gone")]
struct DbGone;

#[tokio::test(start_paused = true)]
async fn a_failing_subsystem_triggers_the_shutdown_and_is_reported() {
    let shutdown = quiet().build().unwrap();
    shutdown
        .spawn("db", |_sub| async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Err(DbGone)
        })
        .unwrap();
    let log = log();
    shutdown.spawn("api", worker(&log, "api", Duration::ZERO)).unwrap();
    let report = finish(shutdown).await;

    assert_eq!(report.trigger, Trigger::Failure { subsystem: "db".into() });
    let db = report.subsystem("db").unwrap();
    match &db.outcome {
        Outcome::Errored(error) => {
            assert_eq!(error.to_string(), "database gone");
            assert!(error.downcast_ref::<DbGone>().is_some());
        }
        other => panic!("expected an error, got {other:?}"),
    }
    assert_eq!(db.stop_duration, None, "it ended before being told to stop");
    assert!(report.subsystem("api").unwrap().outcome.is_finished());
    assert_eq!(report.exit_code(), ShutdownReport::EXIT_FAILURE);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_subsystem_triggers_the_shutdown_with_its_message() {
    let shutdown = quiet().build().unwrap();
    shutdown
        .spawn_in(Phase::Background, "cache-refresher", |_sub| async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if true {
                panic!("refresh failed: {}", 42);
            }
        })
        .unwrap();
    let report = finish(shutdown).await;
    assert_eq!(report.trigger, Trigger::Failure { subsystem: "cache-refresher".into() });
    assert_eq!(report.subsystem("cache-refresher").unwrap().outcome, Outcome::Panicked("refresh failed: 42".into()));
    assert_eq!(report.exit_code(), ShutdownReport::EXIT_FAILURE);
}

#[tokio::test(start_paused = true)]
async fn failures_do_not_trigger_when_configured_off() {
    let shutdown = quiet().shutdown_on_error(false).shutdown_on_panic(false).build().unwrap();
    shutdown.spawn("fails", |_sub| async { Err("boom") }).unwrap();
    shutdown
        .spawn("panics", |_sub| async {
            if true {
                panic!("bang");
            }
        })
        .unwrap();
    let handle = shutdown.handle();
    shutdown
        .spawn("operator", move |sub| async move {
            tokio::time::sleep(Duration::from_secs(60)).await;
            assert!(!sub.is_draining(), "a failure triggered the shutdown");
            handle.trigger();
        })
        .unwrap();
    let report = finish(shutdown).await;
    assert_eq!(report.trigger, Trigger::Requested);
    assert!(report.subsystem("fails").unwrap().outcome.is_failure());
    assert_eq!(report.subsystem("panics").unwrap().outcome, Outcome::Panicked("bang".into()));
    assert!(report.subsystem("operator").unwrap().outcome.is_finished());
}

#[tokio::test(start_paused = true)]
async fn a_parent_waits_for_its_children() {
    let log = log();
    let shutdown = quiet().build().unwrap();
    let child_log = log.clone();
    shutdown
        .spawn("server", move |server| async move {
            server.spawn("conn-1", worker(&child_log, "conn-1", Duration::from_secs(3)))?;
            server.spawn("conn-2", worker(&child_log, "conn-2", Duration::from_secs(1)))?;
            let nested_log = child_log.clone();
            server.spawn("pool", move |pool| async move {
                pool.spawn("job", worker(&nested_log, "job", Duration::from_secs(2)))?;
                pool.cancelled().await;
                Ok::<_, SpawnError>(())
            })?;
            server.cancelled().await;
            push(&child_log, "server returned");
            Ok::<_, SpawnError>(())
        })
        .unwrap();
    shutdown.spawn_in(Phase::Background, "after", worker(&log, "after", Duration::ZERO)).unwrap();
    shutdown.trigger();
    let report = finish(shutdown).await;

    let names: Vec<&str> = report.subsystems.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["server", "after", "server/conn-1", "server/conn-2", "server/pool", "server/pool/job"]);
    let server = report.subsystem("server").unwrap();
    assert!(server.outcome.is_finished());
    assert_eq!(server.stop_duration, Some(Duration::from_secs(3)), "the parent ends with its last child");
    assert_eq!(report.subsystem("server/pool").unwrap().stop_duration, Some(Duration::from_secs(2)));
    assert!(report.subsystems.iter().all(|s| s.phase == Phase::Drain || s.name == "after"));
    // The background phase started only after the whole tree ended.
    assert_eq!(lines(&log).last().map(String::as_str), Some("after done"));
    assert_eq!(lines(&log).iter().filter(|l| l.ends_with("told")).count(), 4);
}

#[tokio::test(start_paused = true)]
async fn a_failed_parent_cancels_its_children() {
    let shutdown = quiet().shutdown_on_error(false).build().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    shutdown
        .spawn("parent", move |parent| async move {
            parent
                .spawn("child", move |child| async move {
                    child.cancelled().await;
                    let _ = tx.send(child.token().cause());
                })
                .unwrap();
            tokio::time::sleep(Duration::from_secs(1)).await;
            Err("parent failed")
        })
        .unwrap();
    let cause = rx.await.unwrap().unwrap();
    assert_eq!(cause.to_string(), "subsystem `parent` failed");
    shutdown.trigger();
    let report = finish(shutdown).await;
    assert!(report.subsystem("parent").unwrap().outcome.is_failure());
    assert_eq!(report.subsystem("parent").unwrap().duration, Duration::from_secs(1));
    assert!(report.subsystem("parent/child").unwrap().outcome.is_finished());
}

#[tokio::test(start_paused = true)]
async fn pre_drain_delay_keeps_serving_while_draining_is_reported() {
    let shutdown = quiet().pre_drain_delay(Duration::from_secs(5)).build().unwrap();
    let (told_tx, told_rx) = tokio::sync::oneshot::channel();
    let (unhealthy_tx, unhealthy_rx) = tokio::sync::oneshot::channel();
    shutdown
        .spawn_in(Phase::StopAccepting, "listener", move |sub| async move {
            sub.cancelled().await;
            let _ = told_tx.send(Instant::now());
        })
        .unwrap();
    shutdown
        .spawn_in(Phase::Final, "health", move |sub| async move {
            sub.draining().await;
            let _ = unhealthy_tx.send((Instant::now(), sub.is_cancelled()));
            sub.cancelled().await;
        })
        .unwrap();
    assert!(!shutdown.is_draining());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let triggered = Instant::now();
    shutdown.trigger();
    assert!(shutdown.is_draining(), "health checks see it at once");
    let report = finish(shutdown).await;
    assert_eq!(told_rx.await.unwrap() - triggered, Duration::from_secs(5));
    assert_eq!(unhealthy_rx.await.unwrap(), (triggered, false), "draining, while its own token is not cancelled");
    assert_eq!(report.duration, Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn hooks_run_last_in_reverse_order_each_within_the_final_timeout() {
    let log = log();
    let shutdown = quiet().phase_timeout(Phase::Final, Duration::from_secs(1)).build().unwrap();
    shutdown.spawn_in(Phase::Final, "flusher", worker(&log, "final subsystem", Duration::from_millis(100))).unwrap();
    for name in ["close-db", "flush-logs"] {
        let log = log.clone();
        shutdown.add_hook(name, move || async move { push(&log, name) }).unwrap();
    }
    shutdown.add_hook("hangs", std::future::pending::<()>).unwrap();
    shutdown.add_hook("errs", || async { Err("disk full") }).unwrap();
    shutdown
        .add_hook("panics", || async {
            if true {
                panic!("hook bug");
            }
        })
        .unwrap();
    let handle = shutdown.handle();
    let late_log = log.clone();
    shutdown
        .add_hook("registers-another", move || async move {
            // Registered while hooks run: runs next (LIFO).
            handle.add_hook("late", move || async move { push(&late_log, "late") })
        })
        .unwrap();
    shutdown.trigger();
    let report = finish(shutdown).await;

    let order: Vec<&str> = report.hooks.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(order, ["registers-another", "late", "panics", "errs", "hangs", "flush-logs", "close-db"]);
    assert_eq!(lines(&log), ["final subsystem told", "final subsystem done", "late", "flush-logs", "close-db"]);
    let hangs = report.hook("hangs").unwrap();
    assert_eq!((&hangs.outcome, hangs.duration), (&Outcome::Aborted(AbortReason::Deadline), Duration::from_secs(1)));
    assert!(report.hook("errs").unwrap().outcome.is_failure());
    assert_eq!(report.hook("panics").unwrap().outcome, Outcome::Panicked("hook bug".into()));
    assert_eq!(report.exit_code(), ShutdownReport::EXIT_FAILURE);
}

#[tokio::test(start_paused = true)]
async fn forcing_aborts_everything_at_once_and_skips_the_rest() {
    let shutdown = quiet().build().unwrap();
    let handle = shutdown.handle();
    shutdown.spawn("slow-drain", |_sub| std::future::pending::<()>()).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    shutdown
        .spawn_in(Phase::Final, "final", move |sub| async move {
            sub.cancelled().await;
            let _ = tx.send(sub.token().cause());
            std::future::pending::<()>().await;
        })
        .unwrap();
    shutdown.add_hook("never", || async {}).unwrap();
    shutdown.trigger();
    let forcer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        handle.force();
    });
    let started = Instant::now();
    let report = finish(shutdown).await;
    forcer.await.unwrap();

    assert_eq!(started.elapsed(), Duration::from_secs(3));
    assert!(report.forced);
    assert_eq!(report.subsystem("slow-drain").unwrap().outcome, Outcome::Aborted(AbortReason::Forced));
    assert_eq!(report.subsystem("final").unwrap().outcome, Outcome::Aborted(AbortReason::Forced));
    assert_eq!(rx.await.unwrap(), Some(Cause::Cancelled), "a later phase's token is cancelled by the force");
    assert_eq!(report.phases.len(), 2, "phases after the forced one do not run");
    assert_eq!(report.hook("never").unwrap().outcome, Outcome::Aborted(AbortReason::Forced));
    assert_eq!(report.exit_code(), ShutdownReport::EXIT_FORCED);
}

#[tokio::test(start_paused = true)]
async fn the_root_tokens_deadline_triggers_the_shutdown() {
    let clock = ManualClock::new();
    let service = Token::with_clock(clock.clone()).with_timeout(Duration::from_secs(3600));
    let shutdown = quiet().parent(service).build().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    shutdown
        .spawn_in(Phase::Background, "job", move |sub| async move {
            sub.cancelled().await;
            let _ = tx.send(());
        })
        .unwrap();
    assert!(shutdown.token().deadline().is_some());
    let handle = shutdown.handle();
    let wait = tokio::spawn(finish(shutdown));
    tokio::task::yield_now().await;
    assert!(!handle.is_draining());
    clock.advance(Duration::from_secs(3600));
    rx.await.unwrap();
    let report = wait.await.unwrap();
    assert_eq!(report.trigger, Trigger::TokenCancelled(Cause::DeadlineExceeded));
    assert!(report.is_clean());
}

#[tokio::test(start_paused = true)]
async fn run_triggers_when_main_returns() {
    let shutdown = quiet().build().unwrap();
    let log = log();
    shutdown.spawn("worker", worker(&log, "worker", Duration::from_millis(5))).unwrap();
    let report = shutdown
        .run(|main| async move {
            assert_eq!(main.name(), "main");
            assert_eq!(main.phase(), Phase::StopAccepting);
            tokio::time::sleep(Duration::from_secs(2)).await;
        })
        .await;
    assert_eq!(report.trigger, Trigger::MainReturned);
    assert_eq!(report.subsystem("main").unwrap().duration, Duration::from_secs(2));
    assert_eq!(lines(&log), ["worker told", "worker done"]);
    assert!(report.is_clean());
}

#[tokio::test(start_paused = true)]
async fn a_subsystem_started_after_its_phase_joins_the_running_one() {
    let shutdown = quiet().phase_timeout(Phase::Background, Duration::from_secs(1)).build().unwrap();
    let handle = shutdown.handle();
    shutdown
        .spawn_in(Phase::Background, "spawner", move |sub| async move {
            sub.cancelled().await;
            handle.spawn_in(Phase::StopAccepting, "late", |late| async move {
                assert!(late.is_cancelled(), "its phase already started");
                tokio::time::sleep(Duration::from_secs(5)).await;
            })
        })
        .unwrap();
    shutdown.trigger();
    let report = finish(shutdown).await;
    let late = report.subsystem("late").unwrap();
    assert_eq!((late.phase, &late.outcome), (Phase::Background, &Outcome::Aborted(AbortReason::Deadline)));
}

#[tokio::test(start_paused = true)]
async fn nothing_starts_after_the_shutdown_ended() {
    let shutdown = quiet().build().unwrap();
    let handle = shutdown.handle();
    shutdown.trigger();
    let report = finish(shutdown).await;
    assert!(report.subsystems.is_empty() && report.is_clean());
    assert_eq!(handle.spawn("late", |_sub| async {}), Err(SpawnError::Closed { name: "late".into() }));
    assert!(handle.add_hook("late", || async {}).is_err());
}

#[tokio::test(start_paused = true)]
async fn dropping_the_shutdown_aborts_its_tasks() {
    let shutdown = quiet().build().unwrap();
    let handle = shutdown.handle();
    shutdown.spawn("forever", |_sub| std::future::pending::<()>()).unwrap();
    assert_eq!(handle.live_tasks(), 1);
    drop(shutdown);
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(handle.live_tasks(), 0);
}

#[tokio::test(start_paused = true)]
async fn triggering_twice_and_spawning_before_the_trigger_are_fine() {
    let shutdown = quiet().build().unwrap();
    shutdown.spawn("early", |sub| async move { sub.cancelled().await }).unwrap();
    shutdown.trigger();
    shutdown.trigger();
    let report = finish(shutdown).await;
    assert_eq!(report.trigger, Trigger::Requested);
    assert!(!report.forced);
    assert!(report.to_string().contains("subsystem early"));
}

#[tokio::test(start_paused = true)]
async fn a_zero_timeout_aborts_what_has_not_ended() {
    let shutdown = quiet().phase_timeout(Phase::Drain, Duration::ZERO).build().unwrap();
    shutdown.spawn("needs-a-poll", |sub| async move { sub.cancelled().await }).unwrap();
    shutdown.spawn("finished-already", |_sub| async {}).unwrap();
    tokio::task::yield_now().await;
    shutdown.trigger();
    let report = finish(shutdown).await;
    assert_eq!(report.subsystem("needs-a-poll").unwrap().outcome, Outcome::Aborted(AbortReason::Deadline));
    assert!(report.subsystem("finished-already").unwrap().outcome.is_finished());
}

#[tokio::test(start_paused = true)]
async fn an_unbounded_phase_waits_as_long_as_it_takes() {
    let day = Duration::from_secs(24 * 3600);
    let shutdown = quiet().phase_timeout(Phase::Drain, Duration::MAX).build().unwrap();
    shutdown
        .spawn("slow", move |sub| async move {
            sub.cancelled().await;
            tokio::time::sleep(day).await;
        })
        .unwrap();
    shutdown.trigger();
    let report = finish(shutdown).await;
    let slow = report.subsystem("slow").unwrap();
    assert_eq!((&slow.outcome, slow.stop_duration), (&Outcome::Finished, Some(day)));
}

#[test]
fn building_outside_a_runtime_is_an_error() {
    assert!(matches!(quiet().build(), Err(BuildError::NoRuntime)));
}

#[cfg(not(feature = "signals"))]
#[tokio::test]
async fn signals_need_the_feature() {
    let error = Shutdown::builder().signals(&[crate::Signal::Terminate]).build().unwrap_err();
    assert!(matches!(error, BuildError::SignalUnavailable(crate::Signal::Terminate)));
}
