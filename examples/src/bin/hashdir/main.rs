//! `hashdir`: the SHA-256 of every file under a directory, computed by a
//! `conc-pipeline` pipeline, with a live progress bar and a clean Ctrl-C.
//!
//! ```text
//! cargo run --release -p conc-examples --bin hashdir -- [PATH]... [--jobs N]
//! ```
//!
//! With no path it hashes the current directory (the repository, when run
//! from its root), skipping `target/` and `.git/`. It prints `sha256sum`
//! lines on stdout, sorted by path, so `hashdir > sums && sha256sum -c sums`
//! checks them, and a summary on stderr.
//!
//! What it shows:
//!
//! - **conc-pipeline**: a `generate` source walks the tree; a
//!   `try_map_ordered` stage hashes files in parallel and keeps the walk's
//!   order; the `for_each` sink prints each line as soon as the lines
//!   before it are out. The stage's error policy is a side output: a file
//!   that cannot be read is reported and counted, and the run goes on
//!   (exit status 1 at the end). The pipeline's `progress()` handle drives
//!   the bar: files and bytes hashed, and each stage's busy share, which
//!   names the bottleneck. Its `PipelineReport` ends the summary.
//! - **conc-pool**: the reads and the hashing (and the directory listings)
//!   run on a `CpuPool`'s threads, never on the runtime's. A pool job is
//!   cancelled when the pipeline drops the worker waiting for it, so a
//!   cancel does not wait for a large file to be read to its end.
//! - **conc-shutdown**: SIGINT (Ctrl-C) or SIGTERM cancels the pipeline's
//!   token; every task stops, the summary counts the files dropped in
//!   flight, and the exit status is 130 (143 for SIGTERM). A second signal
//!   stops it at once.
//!
//! The bar is drawn only when stderr is a terminal. Paths named on the
//! command line may be files or pipes (`hashdir /dev/stdin`, `<(cmd)`):
//! pipes are read asynchronously, so a silent writer holds no thread and
//! Ctrl-C still stops the run at once (a FIFO with no writer at all reads
//! as empty, unlike `sha256sum`, which waits for one).

mod args;
mod hash;
mod progress;
mod summary;
mod walk;

use std::io::Write;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use conc_core::Token;
use conc_core::channel::{self, Rx};
use conc_pipeline::{ErrorPolicy, Pipeline, PipelineError, Progress, StageError};
use conc_pool::{CpuPool, Pool};
use conc_shutdown::{Phase, Shutdown, Signal, SubsystemHandle, Trigger};

use crate::args::{Command, USAGE};
use crate::progress::Reporter;
use crate::summary::{EXIT_ERRORS, EXIT_USAGE, Finished, Output, Stop, Summary};
use crate::walk::Root;

/// How long the run may take to stop once signalled before its tasks are
/// aborted; cancellation is checked at least once per chunk read, so it
/// normally takes milliseconds.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// What the run leaves for the summary. Written once each: cold.
#[derive(Debug, Default)]
struct Outcome {
    /// Set as the pipeline starts, so even an aborted run has figures.
    progress: OnceLock<Progress>,
    finished: Mutex<Option<Finished>>,
}

fn main() -> ExitCode {
    let args = match args::parse(std::env::args_os().skip(1)) {
        Ok(Command::Run(args)) => args,
        Ok(Command::Help) => {
            let _ = writeln!(std::io::stdout(), "{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("hashdir: {error}\n\n{USAGE}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let roots = match walk::resolve(&args.paths) {
        Ok(roots) => roots,
        Err(error) => {
            eprintln!("hashdir: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("hashdir: cannot start the runtime: {error}");
            return ExitCode::from(EXIT_ERRORS);
        }
    };
    runtime.block_on(run(roots, args.jobs.get()))
}

/// Runs the pipeline as the shutdown's main subsystem, so a signal cancels
/// it, and prints the summary.
async fn run(roots: Vec<Root>, jobs: usize) -> ExitCode {
    let shutdown = Shutdown::builder()
        .signals(&[Signal::Interrupt, Signal::Terminate])
        .phase_timeout(Phase::StopAccepting, STOP_TIMEOUT)
        .build();
    let shutdown = match shutdown {
        Ok(shutdown) => shutdown,
        Err(error) => {
            eprintln!("hashdir: cannot listen for signals: {error}");
            return ExitCode::from(EXIT_ERRORS);
        }
    };
    // As many threads as jobs, and as many files queued again, so a thread
    // that finishes a file finds the next one waiting.
    let pool = match Pool::builder().workers(jobs).queue_capacity(jobs).name("hashdir").build_cpu() {
        Ok(pool) => pool,
        Err(error) => {
            eprintln!("hashdir: cannot start the worker pool: {error}");
            return ExitCode::from(EXIT_ERRORS);
        }
    };
    let hash_workers = 2 * jobs;
    let reporter = Arc::new(Reporter::new());
    let outcome = Arc::new(Outcome::default());
    let report = shutdown
        .run({
            let (reporter, outcome) = (Arc::clone(&reporter), Arc::clone(&outcome));
            move |sub| hash_all(sub, roots, pool, hash_workers, reporter, outcome)
        })
        .await;
    reporter.finish();
    let summary = summarize(&report.trigger, &outcome, &reporter, hash_workers);
    eprint!("{summary}");
    ExitCode::from(summary.exit_code())
}

/// Builds the pipeline and runs it to its end or until `sub` is told to
/// stop, then joins everything it started.
async fn hash_all(
    sub: SubsystemHandle,
    roots: Vec<Root>,
    pool: CpuPool,
    hash_workers: usize,
    reporter: Arc<Reporter>,
    outcome: Arc<Outcome>,
) {
    // A child, so a failed output can stop the run without the shutdown.
    let token = sub.token().child();
    // Unbounded: at most one message per file, each printed at once.
    let (errors_tx, errors_rx) = channel::unbounded();
    let walk = {
        let (pool, reporter) = (pool.clone(), Arc::clone(&reporter));
        move |out, _token| walk::walk(roots, out, pool, reporter)
    };
    let hash = {
        let (pool, token, hashed) = (pool.clone(), token.clone(), Arc::clone(&reporter.bytes_hashed));
        move |target| {
            let (pool, token, hashed) = (pool.clone(), token.clone(), Arc::clone(&hashed));
            async move {
                // A worker awaits this to its end, so it must end on a cancel
                // (a pipe may never send another byte). `None` then: the
                // pipeline counts the item as dropped in flight.
                token.run_until_cancelled(hash::hash(&pool, target, &hashed)).await.unwrap_or(Ok(None))
            }
        }
    };
    let pipeline = Pipeline::generate(walk)
        .named("walk")
        .try_map_ordered(hash_workers, hash)
        .map(|pipeline| pipeline.named("hash").on_error(ErrorPolicy::SideOutput(errors_tx)).with_token(token.clone()));
    let pipeline = match pipeline {
        Ok(pipeline) => pipeline,
        Err(error) => {
            reporter.error(format_args!("cannot build the pipeline: {error}"));
            return;
        }
    };
    let progress = pipeline.progress();
    let _ = outcome.progress.set(progress.clone());
    let errors = tokio::spawn(print_errors(errors_rx, Arc::clone(&reporter)));
    let stop_bar = Token::new();
    let bar = tokio::spawn(progress::drive(Arc::clone(&reporter), progress, hash_workers, stop_bar.clone()));
    // Stops the bar even if this subsystem is aborted (a second signal).
    let stop_bar = stop_bar.drop_guard();

    let mut output = Output::new(token);
    let result = pipeline
        .for_each(|hashed| {
            if let Some(hashed) = hashed {
                output.write(&hashed);
            }
            std::future::ready(())
        })
        .await;

    drop(stop_bar);
    // Every pool job has its outcome by now, or was cancelled with the
    // worker that awaited it and stops at its next chunk.
    pool.join().await;
    // Both end on their own: the bar on its token, the printer when the
    // pipeline (which held the error channel's sender) is gone.
    let _ = bar.await;
    let _ = errors.await;
    let finished = Finished { result, printed: output.printed, output_error: output.failed };
    *outcome.finished.lock().unwrap_or_else(PoisonError::into_inner) = Some(finished);
}

/// Prints the files the hash stage could not read, as they fail.
async fn print_errors(errors: Rx<StageError>, reporter: Arc<Reporter>) {
    while let Ok(failed) = errors.recv().await {
        reporter.error(&failed.error);
    }
}

/// Puts together how the run ended: from the sink's result, or, if the
/// run was aborted before it returned, from the live progress handle.
fn summarize(trigger: &Trigger, outcome: &Outcome, reporter: &Reporter, hash_workers: usize) -> Summary {
    let signal = match trigger {
        Trigger::Signal(signal) => Some(*signal),
        _ => None,
    };
    let finished = outcome.finished.lock().unwrap_or_else(PoisonError::into_inner).take();
    let mut summary = Summary {
        stopped: None,
        stages: Vec::new(),
        dropped_in_flight: 0,
        elapsed: reporter.elapsed(),
        printed: 0,
        bytes: reporter.bytes_hashed(),
        skipped: reporter.skipped_count(),
        walk_errors: reporter.walk_errors(),
        walk_busy: reporter.walk_busy(),
        hash_workers,
    };
    match finished {
        Some(finished) => {
            let report = match &finished.result {
                Ok(report) => report,
                Err(error) => error.report(),
            };
            summary.stages.clone_from(&report.stages);
            summary.dropped_in_flight = report.dropped_in_flight;
            summary.elapsed = report.elapsed;
            summary.printed = finished.printed;
            summary.stopped = match (finished.result, finished.output_error, signal) {
                (Ok(_), None, _) => None,
                (_, Some(error), _) => Some(Stop::Failed(format!("cannot write the output: {error}"))),
                (Err(PipelineError::Cancelled { .. }), None, Some(signal)) => Some(Stop::Signal(signal)),
                (Err(error), None, _) => Some(Stop::Failed(error.to_string())),
            };
        }
        None => {
            // Aborted (a second signal), or the pipeline could not be built.
            if let Some(progress) = outcome.progress.get() {
                summary.stages = progress.stages();
                summary.dropped_in_flight = progress.dropped_in_flight();
                summary.printed = summary.stages.iter().find(|stage| stage.name == "hash").map_or(0, |s| s.items_out);
            }
            summary.stopped = Some(match signal {
                Some(signal) => Stop::Signal(signal),
                None => Stop::Failed(format!("the run was aborted ({trigger})")),
            });
        }
    }
    summary
}
