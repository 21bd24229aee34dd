//! The live side of a run: counters the stages share, the progress bar they
//! drive, and error messages printed around the bar.

use std::fmt::Display;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use conc_core::Token;
use conc_pipeline::{Progress, StageReport};
use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often the bar is redrawn from the pipeline's counters.
const TICK: Duration = Duration::from_millis(100);

/// The bottleneck comes first in the message, so a narrow terminal, which
/// cuts `wide_msg` short, still shows it.
const TEMPLATE: &str = "{spinner} {elapsed} [{bar:24}] {pos}/{len} files · {wide_msg}";

/// The counters a run keeps beside the pipeline's own (which count items,
/// not bytes), and the bar. Every counter is written by the task or pool
/// thread doing the work, once per file or chunk.
#[derive(Debug)]
pub(crate) struct Reporter {
    bar: ProgressBar,
    started: Instant,
    /// Sizes of the files found so far.
    bytes_found: AtomicU64,
    /// Bytes read and hashed so far (shared with the pool's jobs).
    pub(crate) bytes_hashed: Arc<AtomicU64>,
    /// Symbolic links and special files the walk did not hash.
    skipped: AtomicU64,
    /// Directories the walk could not list.
    walk_errors: AtomicU64,
    /// Time the walk spent listing directories, in nanoseconds: a
    /// generator's own time is not in the pipeline's report (it runs
    /// between its sends).
    walk_busy: AtomicU64,
}

impl Reporter {
    /// A reporter whose bar draws on stderr if it is a terminal, and is
    /// hidden otherwise (a pipe, a file, a test), so logs stay clean.
    pub(crate) fn new() -> Reporter {
        let target =
            if std::io::stderr().is_terminal() { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
        let bar = ProgressBar::with_draw_target(Some(0), target);
        if let Ok(style) = ProgressStyle::with_template(TEMPLATE) {
            bar.set_style(style.progress_chars("=> "));
        }
        Reporter {
            bar,
            started: Instant::now(),
            bytes_found: AtomicU64::new(0),
            bytes_hashed: Arc::new(AtomicU64::new(0)),
            skipped: AtomicU64::new(0),
            walk_errors: AtomicU64::new(0),
            walk_busy: AtomicU64::new(0),
        }
    }

    /// Time since the reporter was made (the run's start).
    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    pub(crate) fn found_bytes(&self, bytes: u64) {
        self.bytes_found.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn bytes_hashed(&self) -> u64 {
        self.bytes_hashed.load(Ordering::Relaxed)
    }

    pub(crate) fn skipped(&self) {
        self.skipped.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn skipped_count(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    pub(crate) fn add_walk_busy(&self, busy: Duration) {
        self.walk_busy.fetch_add(u64::try_from(busy.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    pub(crate) fn walk_busy(&self) -> Duration {
        Duration::from_nanos(self.walk_busy.load(Ordering::Relaxed))
    }

    pub(crate) fn walk_errors(&self) -> u64 {
        self.walk_errors.load(Ordering::Relaxed)
    }

    /// Reports a directory the walk could not list; the walk goes on.
    pub(crate) fn walk_error(&self, dir: &Path, error: &std::io::Error) {
        self.walk_errors.fetch_add(1, Ordering::Relaxed);
        self.error(format_args!("{}: {error}", dir.display()));
    }

    /// Prints an error line on stderr without tearing the bar.
    pub(crate) fn error(&self, message: impl Display) {
        self.bar.suspend(|| eprintln!("hashdir: {message}"));
    }

    /// Removes the bar, before the summary is printed.
    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }

    /// Redraws the bar from a snapshot of the stages.
    fn update(&self, stages: &[StageReport], hash_workers: usize) {
        let (Some(walk), Some(hash)) = (stage(stages, "walk"), stage(stages, "hash")) else {
            return;
        };
        self.bar.set_length(walk.items_out);
        self.bar.set_position(hash.items_out + hash.errors);
        self.bar.tick();
        let elapsed = self.elapsed();
        let load = Load::of(self.walk_busy(), hash, elapsed, hash_workers);
        self.bar.set_message(format!(
            "{load} · {}/{} · {:.0} files/s",
            HumanBytes(self.bytes_hashed()),
            HumanBytes(self.bytes_found.load(Ordering::Relaxed)),
            hash.items_out as f64 / elapsed.as_secs_f64().max(1e-9)
        ));
    }
}

/// The stage called `name` in a snapshot.
pub(crate) fn stage<'a>(stages: &'a [StageReport], name: &str) -> Option<&'a StageReport> {
    stages.iter().find(|stage| stage.name == name)
}

/// Where the time goes, as shares of the wall time: the walk, the hashing
/// workers, and the output (time the hash stage waited for room downstream).
/// The largest is the bottleneck.
#[derive(Debug)]
pub(crate) struct Load {
    walk: f64,
    hash: f64,
    output: f64,
}

impl Load {
    pub(crate) fn of(walk_busy: Duration, hash: &StageReport, elapsed: Duration, hash_workers: usize) -> Load {
        let wall = elapsed.as_secs_f64().max(1e-9);
        let share = |busy: Duration, tasks: usize| (busy.as_secs_f64() / (wall * tasks as f64)).min(1.0);
        Load {
            walk: share(walk_busy, 1),
            hash: share(hash.busy, hash_workers.max(1)),
            output: share(hash.waiting_downstream, 1),
        }
    }

    fn bottleneck(&self) -> &'static str {
        if self.hash >= self.walk && self.hash >= self.output {
            "hash"
        } else if self.walk >= self.output {
            "walk"
        } else {
            "output"
        }
    }
}

impl Display for Load {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let percent = |share: f64| (share * 100.0).round();
        write!(
            f,
            "bottleneck: {} (busy: walk {}%, hash {}%, output {}%)",
            self.bottleneck(),
            percent(self.walk),
            percent(self.hash),
            percent(self.output)
        )
    }
}

/// Redraws the bar from the pipeline's progress handle until `stop` is
/// cancelled.
pub(crate) async fn drive(reporter: Arc<Reporter>, progress: Progress, hash_workers: usize, stop: Token) {
    loop {
        reporter.update(&progress.stages(), hash_workers);
        if stop.run_until_cancelled(tokio::time::sleep(TICK)).await.is_err() {
            return;
        }
    }
}
