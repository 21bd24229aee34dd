//! conc-pool and conc-group drained as conc-shutdown subsystems.
//!
//! A producer feeds audit-log entries into a `conc_pool::Pool`; a batch job
//! fans out over shards with a `conc_group::Group`. On ctrl-c or SIGTERM
//! (or on its own after `--run-for MS`, 800 by default) the shutdown runs
//! its phases: the producer stops accepting (phase `StopAccepting`), the
//! pool finishes every entry it accepted (`Drain`: close, then shutdown
//! with a deadline, reporting anything cut off), and the batch group is
//! cancelled and its tasks end (`Background`). Then it prints both reports
//! and exits with the shutdown report's exit code.
//!
//! Run it with `cargo run -p conc-examples --bin drain_pool_and_group`.
#![allow(clippy::print_stdout, reason = "an example program reports on stdout")]

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use conc_group::{Group, GroupError};
use conc_pool::Pool;
use conc_shutdown::{Phase, Shutdown, ShutdownReport};

/// How long the service runs before it shuts itself down, from
/// `--run-for MS`.
fn run_for() -> Duration {
    let args: Vec<String> = std::env::args().collect();
    let millis = args
        .iter()
        .position(|arg| arg == "--run-for")
        .and_then(|at| args.get(at + 1))
        .and_then(|value| value.parse().ok())
        .unwrap_or(800);
    Duration::from_millis(millis)
}

/// Writes one audit entry (a stand-in for a file or a database write).
async fn write_entry(entry: u64, written: Arc<AtomicU64>) -> u64 {
    tokio::time::sleep(Duration::from_millis(20)).await;
    written.fetch_add(1, Ordering::Relaxed);
    entry
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(report) => ExitCode::from(report.exit_code()),
        Err(error) => {
            println!("cannot start: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<ShutdownReport, Box<dyn std::error::Error>> {
    let shutdown = Shutdown::builder().phase_timeout(Phase::Drain, Duration::from_secs(2)).build()?;
    let pool = Arc::new(Pool::builder().name("audit").workers(2).queue_capacity(8).build()?);
    let accepted = Arc::new(AtomicU64::new(0));
    let written = Arc::new(AtomicU64::new(0));

    // The front door: submits until its token says stop. Backpressure
    // (a full queue) slows it down rather than piling entries up.
    shutdown.spawn_in(Phase::StopAccepting, "producer", {
        let (pool, accepted, written) = (pool.clone(), accepted.clone(), written.clone());
        move |sub| async move {
            for entry in 1.. {
                let written = written.clone();
                let job = move |_token| write_entry(entry, written);
                match pool.submit_until(job, sub.token()).await {
                    Ok(handle) => {
                        accepted.fetch_add(1, Ordering::Relaxed);
                        handle.detach();
                    }
                    Err(_) => break, // told to stop: this entry was never accepted
                }
            }
            println!("producer: stopped after {} entries", accepted.load(Ordering::Relaxed));
        }
    })?;

    // The pool drains in the Drain phase, after the producer has stopped:
    // every accepted entry is written, or reported if the deadline cuts it.
    shutdown.spawn("audit-pool", {
        let pool = pool.clone();
        move |sub| async move {
            sub.cancelled().await;
            pool.close();
            let report = pool.shutdown(Instant::now() + Duration::from_secs(1)).await;
            println!(
                "audit-pool: {} completed, {} cancelled, {} never ran",
                report.completed, report.cancelled, report.not_run
            );
        }
    })?;

    // Background work: a group of shard scans, ended by the shutdown.
    shutdown.spawn_in(Phase::Background, "batch", |sub| async move {
        let mut group: Group<std::io::Error> = Group::with_token(sub.token());
        for _shard in 0..4 {
            let scan = move |token: conc_core::Token| async move {
                // A scan round; the group ends the scans when its parent
                // token (the subsystem's) is cancelled.
                while token.run_until_cancelled(tokio::time::sleep(Duration::from_millis(30))).await.is_ok() {}
                Ok(())
            };
            if group.spawn(scan).await.is_err() {
                break; // already shutting down
            }
        }
        let shards = group.running();
        match group.wait().await {
            // Cancelled by the shutdown: the expected way for it to end.
            Ok(()) | Err(GroupError::Cancelled(_)) => {
                println!("batch: {shards} shard scans ended by the shutdown");
                Ok(())
            }
            Err(error) => Err(error.to_string()),
        }
    })?;

    let trigger = shutdown.handle();
    let run_for = run_for();
    tokio::spawn(async move {
        tokio::time::sleep(run_for).await;
        trigger.trigger();
    });
    println!("running for {run_for:?} (or until ctrl-c)");

    let report = shutdown.wait().await;
    println!("{report}");
    let (accepted, written) = (accepted.load(Ordering::Relaxed), written.load(Ordering::Relaxed));
    println!("accepted {accepted} entries, wrote {written}");
    Ok(report)
}
