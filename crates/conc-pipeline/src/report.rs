//! Per-stage counters, the end-of-run report and the live progress handle.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::run::Shared;
use std::sync::Mutex;

use crate::sync::lock_std as lock;

/// Live counters of one stage. Each is written by that stage's own tasks
/// only (and read by progress snapshots), so the atomics are uncontended.
pub(crate) struct StageStats {
    /// Renamed by [`Pipeline::named`](crate::Pipeline::named) before the run:
    /// a cold path, read only by snapshots.
    name: Mutex<String>,
    items_in: AtomicU64,
    items_out: AtomicU64,
    errors: AtomicU64,
    busy_nanos: AtomicU64,
    waiting_nanos: AtomicU64,
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

impl StageStats {
    pub(crate) fn new(name: &str) -> Self {
        StageStats {
            name: Mutex::new(name.to_owned()),
            items_in: AtomicU64::new(0),
            items_out: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            busy_nanos: AtomicU64::new(0),
            waiting_nanos: AtomicU64::new(0),
        }
    }

    pub(crate) fn name(&self) -> String {
        lock(&self.name).clone()
    }

    pub(crate) fn rename(&self, name: String) {
        *lock(&self.name) = name;
    }

    pub(crate) fn add_in(&self, items: usize) {
        self.items_in.fetch_add(items as u64, Ordering::Relaxed);
    }

    pub(crate) fn add_out(&self, items: usize) {
        self.items_out.fetch_add(items as u64, Ordering::Relaxed);
    }

    pub(crate) fn add_error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add_busy(&self, duration: Duration) {
        self.busy_nanos.fetch_add(nanos(duration), Ordering::Relaxed);
    }

    pub(crate) fn add_waiting(&self, duration: Duration) {
        self.waiting_nanos.fetch_add(nanos(duration), Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> StageReport {
        StageReport {
            name: self.name(),
            items_in: self.items_in.load(Ordering::Relaxed),
            items_out: self.items_out.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            busy: Duration::from_nanos(self.busy_nanos.load(Ordering::Relaxed)),
            waiting_downstream: Duration::from_nanos(self.waiting_nanos.load(Ordering::Relaxed)),
        }
    }
}

/// What one stage did: items in and out, errors, and where its time went.
///
/// A stage that spends most of its time `busy` is the bottleneck; one that
/// spends it `waiting_downstream` is held back by a slower stage after it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StageReport {
    /// The stage's name: its kind (`map`, `filter`, ...) or the name given
    /// with [`Pipeline::named`](crate::Pipeline::named).
    pub name: String,
    /// Items the stage took from upstream (for a source: items it produced).
    pub items_in: u64,
    /// Items the stage handed downstream.
    pub items_out: u64,
    /// Items whose function returned an error (fallible stages only).
    pub errors: u64,
    /// Time spent running the stage's function; summed over the workers of
    /// a parallel stage, so it can exceed the wall time.
    pub busy: Duration,
    /// Time spent waiting for room in the downstream channel.
    pub waiting_downstream: Duration,
}

/// What a whole run did, stage by stage, in the order the stages were added
/// (the parts of a [`merge`](crate::Pipeline::merge) first).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PipelineReport {
    /// One entry per stage.
    pub stages: Vec<StageReport>,
    /// Items that were inside the pipeline (in a channel or in a stage's
    /// hands) when it was cancelled or failed, and were dropped.
    pub dropped_in_flight: u64,
    /// Wall time from the start of the run until every task was joined.
    pub elapsed: Duration,
}

impl PipelineReport {
    /// The stage called `name`, if there is one (the first, if several share it).
    pub fn stage(&self, name: &str) -> Option<&StageReport> {
        self.stages.iter().find(|stage| stage.name == name)
    }

    /// Errors counted over every stage.
    pub fn errors(&self) -> u64 {
        self.stages.iter().map(|stage| stage.errors).sum()
    }
}

/// A live view of a pipeline's counters, usable while it runs (to drive a
/// progress bar, or to find the bottleneck stage).
///
/// Take it from [`Pipeline::progress`](crate::Pipeline::progress) before
/// running the pipeline; it stays valid after the run ends.
#[derive(Clone)]
pub struct Progress {
    pub(crate) shared: Arc<Shared>,
}

impl Progress {
    /// A snapshot of every stage's counters now.
    pub fn stages(&self) -> Vec<StageReport> {
        self.shared.stage_reports()
    }

    /// Items dropped by a cancel or failure so far.
    pub fn dropped_in_flight(&self) -> u64 {
        self.shared.dropped()
    }

    /// Tasks of this pipeline (stage tasks and workers) alive now; 0 before
    /// the run starts and after it has been joined.
    pub fn live_tasks(&self) -> usize {
        self.shared.counter.live()
    }
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Progress").field("stages", &self.stages()).field("live_tasks", &self.live_tasks()).finish()
    }
}
