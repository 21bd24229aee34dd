//! Real signals sent to this test process: the first triggers the shutdown,
//! the second forces it. Signals reach the whole process, so only one test
//! here sends any.
#![cfg(all(unix, feature = "signals"))]

use std::process::Command;

use conc_shutdown::{AbortReason, Outcome, Phase, Shutdown, ShutdownReport, Signal, Trigger};

fn send(signal: &str) {
    let status =
        Command::new("kill").arg(format!("-{signal}")).arg(std::process::id().to_string()).status().expect("run kill");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(miri, ignore = "starts `kill` processes (miri cannot) to send real signals")]
async fn the_first_signal_triggers_and_the_second_forces() {
    let shutdown = Shutdown::builder().signals(&[Signal::Terminate, Signal::Hangup]).build().unwrap();
    let (told, told_rx) = tokio::sync::oneshot::channel();
    shutdown
        .spawn("stuck", move |sub| async move {
            sub.cancelled().await;
            let _ = told.send(());
            std::future::pending::<()>().await;
        })
        .unwrap();
    // Ignores its token, so the force, not its own return, ends it.
    shutdown.spawn_in(Phase::Final, "never-reached", |_sub| std::future::pending::<()>()).unwrap();
    let handle = shutdown.handle();
    let wait = tokio::spawn(shutdown.wait());

    send("TERM");
    // The drain phase started: the first signal was taken as the trigger.
    told_rx.await.unwrap();
    assert!(handle.is_draining());
    send("HUP");
    let report = wait.await.unwrap();

    assert_eq!(report.trigger, Trigger::Signal(Signal::Terminate));
    assert!(report.forced);
    assert_eq!(report.subsystem("stuck").unwrap().outcome, Outcome::Aborted(AbortReason::Forced));
    assert_eq!(report.subsystem("never-reached").unwrap().outcome, Outcome::Aborted(AbortReason::Forced));
    assert_eq!(report.exit_code(), ShutdownReport::EXIT_FORCED);
    assert_eq!(handle.live_tasks(), 0);
}

#[tokio::test]
#[cfg_attr(miri, ignore = "installs real signal handlers")]
async fn new_listens_with_the_defaults() {
    let shutdown = Shutdown::new();
    assert!(!shutdown.is_draining());
    shutdown.trigger();
    let report = shutdown.wait().await;
    assert_eq!(report.trigger, Trigger::Requested);
    assert!(report.is_clean());
}
