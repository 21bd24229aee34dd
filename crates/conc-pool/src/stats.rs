//! Counters: what [`stats`](crate::Pool::stats) reports.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::job::Outcome;

/// A counter on its own cache lines (128 bytes: two lines, for CPUs that
/// fetch them in pairs), so the submitters' counters and the workers'
/// counters, each written once per job, do not make each other's threads
/// wait for the line.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Padded<T>(T);

impl<T> Padded<T> {
    pub(crate) const fn new(value: T) -> Self {
        Padded(value)
    }
}

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// A snapshot of a pool's counters.
///
/// Counters are read one by one, so a snapshot taken while jobs run may be
/// a few jobs out of step between fields; once the pool is joined they add
/// up: `submitted = completed + failed + panicked + cancelled + not_run`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Jobs accepted.
    pub submitted: u64,
    /// Jobs waiting in the queue.
    pub queued: usize,
    /// Jobs running now.
    pub running: usize,
    /// Jobs that ran to their value.
    pub completed: u64,
    /// Group jobs that returned an error.
    pub failed: u64,
    /// Jobs that panicked.
    pub panicked: u64,
    /// Jobs cancelled before or while running.
    pub cancelled: u64,
    /// Jobs that never ran: a shutdown handed them back.
    pub not_run: u64,
    /// Submissions refused because the queue was full or the pool closed.
    pub rejected: u64,
    /// Workers alive now.
    pub workers: usize,
    /// The most workers alive at once.
    pub peak_workers: usize,
    /// The most jobs running at once.
    pub peak_running: usize,
    /// The most jobs queued at once (the queue's high-water mark).
    pub peak_queued: usize,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) submitted: Padded<AtomicU64>,
    pub(crate) rejected: Padded<AtomicU64>,
    completed: Padded<AtomicU64>,
    failed: Padded<AtomicU64>,
    panicked: Padded<AtomicU64>,
    cancelled: Padded<AtomicU64>,
    not_run: Padded<AtomicU64>,
    pub(crate) running: Padded<AtomicUsize>,
    peak_running: Padded<AtomicUsize>,
    peak_queued: Padded<AtomicUsize>,
    pub(crate) workers: Padded<AtomicUsize>,
    peak_workers: Padded<AtomicUsize>,
}

impl Counters {
    pub(crate) fn record(&self, outcome: Outcome) {
        let counter = match outcome {
            Outcome::Completed => &self.completed,
            Outcome::Failed => &self.failed,
            Outcome::Panicked => &self.panicked,
            Outcome::Cancelled => &self.cancelled,
            Outcome::NotRun => &self.not_run,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn started(&self) {
        let running = self.running.fetch_add(1, Ordering::Relaxed) + 1;
        if running > self.peak_running.load(Ordering::Relaxed) {
            self.peak_running.fetch_max(running, Ordering::Relaxed);
        }
    }

    pub(crate) fn stopped(&self) {
        self.running.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn peak_queued(&self) -> usize {
        self.peak_queued.load(Ordering::Relaxed)
    }

    pub(crate) fn saw_queued(&self, queued: usize) {
        if queued > self.peak_queued.load(Ordering::Relaxed) {
            self.peak_queued.fetch_max(queued, Ordering::Relaxed);
        }
    }

    pub(crate) fn saw_workers(&self, workers: usize) {
        self.peak_workers.fetch_max(workers, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, queued: usize) -> Stats {
        Stats {
            submitted: self.submitted.load(Ordering::Relaxed),
            queued,
            running: self.running.load(Ordering::Relaxed),
            completed: self.completed.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            panicked: self.panicked.load(Ordering::Relaxed),
            cancelled: self.cancelled.load(Ordering::Relaxed),
            not_run: self.not_run.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            workers: self.workers.load(Ordering::Relaxed),
            peak_workers: self.peak_workers.load(Ordering::Relaxed),
            peak_running: self.peak_running.load(Ordering::Relaxed),
            peak_queued: self.peak_queued.load(Ordering::Relaxed),
        }
    }
}
