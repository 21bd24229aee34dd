//! A small service shut down by conc-shutdown: a listener, two workers with
//! in-flight jobs, a background ticker, a health check and cleanup hooks.
//!
//! Send it SIGTERM (or press ctrl-c): the health check turns unhealthy at
//! once, the service keeps serving through a short pre-drain delay, then the
//! phases run in order. The listener stops accepting, the workers finish the
//! job each has in flight, the ticker is cancelled, the health check ends,
//! and the hooks run last-registered first. It prints the report and exits
//! with the report's exit code. With `--slow` a subsystem needs far longer
//! than its phase allows: a second signal forces the shutdown (exit 130).
//!
//! Run it with `cargo run -p conc-examples --bin shutdown_demo`, then press
//! ctrl-c (twice, with `-- --slow`, to see the forced path).
#![allow(clippy::print_stdout, reason = "an example program reports on stdout")]

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use conc_shutdown::{Phase, Shutdown, Signal, SpawnError, SubsystemHandle};

/// A worker: runs jobs back to back; a job that started is always finished,
/// the token is only checked between jobs.
async fn worker(sub: SubsystemHandle, id: usize, done: Arc<AtomicU64>) {
    let mut job = 0;
    while !sub.is_cancelled() {
        job += 1;
        println!("worker {id}: job {job} started");
        tokio::time::sleep(Duration::from_millis(150)).await;
        done.fetch_add(1, Ordering::Relaxed);
        println!("worker {id}: job {job} finished");
    }
    println!("worker {id}: stopped after {job} jobs");
}

#[tokio::main]
async fn main() -> ExitCode {
    let slow = std::env::args().any(|arg| arg == "--slow");
    let shutdown = match Shutdown::builder()
        .signals(&[Signal::Interrupt, Signal::Terminate])
        .pre_drain_delay(Duration::from_millis(100))
        .phase_timeout(Phase::StopAccepting, Duration::from_secs(1))
        .phase_timeout(Phase::Drain, Duration::from_secs(if slow { 60 } else { 5 }))
        .phase_timeout(Phase::Background, Duration::from_secs(1))
        .phase_timeout(Phase::Final, Duration::from_secs(1))
        .build()
    {
        Ok(shutdown) => shutdown,
        Err(error) => {
            println!("cannot set up the shutdown: {error}");
            return ExitCode::FAILURE;
        }
    };
    let done = Arc::new(AtomicU64::new(0));

    let started = [
        // Stop accepting first; with axum this is where
        // `with_graceful_shutdown(sub.token().clone().cancelled_owned())` goes.
        shutdown.spawn_in(Phase::StopAccepting, "listener", |sub| async move {
            sub.cancelled().await;
            println!("listener: stopped accepting");
        }),
        // In-flight work drains second: a parent with one child per worker.
        shutdown.spawn("workers", {
            let done = done.clone();
            move |workers| async move {
                for id in 0..2 {
                    let done = done.clone();
                    workers.spawn(format!("worker-{id}"), move |sub| worker(sub, id, done))?;
                }
                workers.cancelled().await;
                Ok::<_, SpawnError>(())
            }
        }),
        shutdown.spawn_in(Phase::Background, "metrics", |sub| async move {
            let mut ticks = 0u64;
            while sub.token().run_until_cancelled(tokio::time::sleep(Duration::from_millis(50))).await.is_ok() {
                ticks += 1;
            }
            println!("metrics: cancelled after {ticks} ticks");
        }),
        shutdown.spawn_in(Phase::Final, "health", |sub| async move {
            // Turns unhealthy at the trigger, while traffic is still served.
            sub.draining().await;
            println!("health: reporting unhealthy");
            sub.cancelled().await;
        }),
        shutdown.add_hook("close-db", || async { println!("hook: close-db") }),
        shutdown.add_hook("flush-logs", || async { println!("hook: flush-logs") }),
    ];
    if slow {
        let slow_export = shutdown.spawn("slow-export", |sub| async move {
            sub.cancelled().await;
            println!("slow-export: told to stop, needs 30s more");
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        if let Err(error) = slow_export {
            println!("cannot start: {error}");
        }
    }
    if let Some(Err(error)) = started.into_iter().find(Result::is_err) {
        println!("cannot start: {error}");
        return ExitCode::FAILURE;
    }

    println!("ready: pid {}", std::process::id());
    let report = shutdown.wait().await;
    println!("jobs finished: {}", done.load(Ordering::Relaxed));
    print!("{report}");
    ExitCode::from(report.exit_code())
}
