//! [`ShutdownReport`]: what a shutdown found.

use std::fmt;

use crate::error::AnyJob;
use crate::job::JobId;
use crate::stats::Stats;

/// What [`shutdown`](crate::Pool::shutdown) found: how every job the pool
/// accepted ended, and the inputs of detached jobs that never ran.
///
/// Counts cover the pool's whole life. A job that never ran and still had
/// a handle got its input back through the handle
/// ([`JobError::NotRun`](crate::JobError::NotRun)); only detached ones are
/// in [`returned`](ShutdownReport::returned), so each input comes back
/// exactly once.
#[non_exhaustive]
pub struct ShutdownReport {
    /// Jobs accepted.
    pub submitted: u64,
    /// Jobs that ran to their value.
    pub completed: u64,
    /// Group jobs that returned an error.
    pub failed: u64,
    /// Jobs that panicked.
    pub panicked: u64,
    /// Jobs cancelled, by their handle or by this shutdown.
    pub cancelled: u64,
    /// Jobs that never ran.
    pub not_run: u64,
    /// Inputs of detached jobs that never ran, with their ids: downcast
    /// each to its closure type to run it elsewhere.
    pub returned: Vec<(JobId, AnyJob)>,
    /// Whether the deadline passed before the queue drained (running jobs
    /// were then cancelled and queued ones handed back).
    pub deadline_passed: bool,
}

impl ShutdownReport {
    pub(crate) fn new(stats: &Stats, returned: Vec<(JobId, AnyJob)>, deadline_passed: bool) -> ShutdownReport {
        ShutdownReport {
            submitted: stats.submitted,
            completed: stats.completed,
            failed: stats.failed,
            panicked: stats.panicked,
            cancelled: stats.cancelled,
            not_run: stats.not_run,
            returned,
            deadline_passed,
        }
    }
}

impl fmt::Debug for ShutdownReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShutdownReport")
            .field("submitted", &self.submitted)
            .field("completed", &self.completed)
            .field("failed", &self.failed)
            .field("panicked", &self.panicked)
            .field("cancelled", &self.cancelled)
            .field("not_run", &self.not_run)
            .field("returned", &self.returned.len())
            .field("deadline_passed", &self.deadline_passed)
            .finish()
    }
}
