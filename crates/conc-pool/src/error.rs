//! The pool's error types.

use std::any::Any;
use std::fmt;

/// A pool setting that cannot be used, rejected by
/// [`Builder::build`](crate::Builder::build).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// A pool with no worker (a fixed size of 0, or a maximum of 0) could
    /// never run a job.
    #[error("a pool needs at least one worker")]
    ZeroWorkers,
    /// A growing pool whose minimum is above its maximum.
    #[error("min workers ({min}) is above max workers ({max})")]
    MinAboveMax {
        /// The minimum asked for.
        min: usize,
        /// The maximum asked for.
        max: usize,
    },
    /// An idle timeout of zero would retire every extra worker the moment it
    /// finished a job.
    #[error("the idle timeout must be longer than zero")]
    ZeroIdleTimeout,
    /// An async pool was built outside a tokio runtime.
    #[error("an async pool must be built inside a tokio runtime")]
    NoRuntime,
}

/// Why a job was not accepted; the job is handed back.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError<J> {
    /// The queue is full ([`try_submit`](crate::Pool::try_submit) only:
    /// `submit` waits for room instead).
    #[error("the pool's queue is full")]
    Full(J),
    /// The pool is closed: it accepts no more jobs.
    #[error("the pool is closed")]
    Closed(J),
    /// The token given to `submit_until` was cancelled before there was room.
    #[error("cancelled while waiting for room in the queue")]
    Cancelled(J),
}

impl<J> SubmitError<J> {
    /// The job that was not accepted.
    pub fn into_inner(self) -> J {
        match self {
            SubmitError::Full(job) | SubmitError::Closed(job) | SubmitError::Cancelled(job) => job,
        }
    }
}

impl<J> fmt::Debug for SubmitError<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SubmitError::Full(_) => "Full(..)",
            SubmitError::Closed(_) => "Closed(..)",
            SubmitError::Cancelled(_) => "Cancelled(..)",
        })
    }
}

/// A panic payload, as `std::panic::catch_unwind` returns it.
pub type Panic = Box<dyn Any + Send + 'static>;

/// A job input handed back without its type, where jobs of many types meet
/// (a [`ShutdownReport`](crate::ShutdownReport), a results stream, a
/// group): `downcast` it to the closure's type, or just drop it.
pub type AnyJob = Box<dyn Any + Send + 'static>;

/// Why an accepted job has no value: the outcome a [`JobHandle`](crate::JobHandle)
/// gives instead of the job's value.
#[derive(thiserror::Error)]
pub enum JobError<J> {
    /// The job panicked; this is the payload. The worker lives on.
    #[error("the job panicked")]
    Panicked(Panic),
    /// The job was cancelled (through its handle, or by a shutdown whose
    /// deadline passed): before it started, or while it ran, in which case
    /// an async job's future was dropped at its next await point.
    #[error("the job was cancelled")]
    Cancelled,
    /// The job never started (the pool shut down first); its input is
    /// handed back so it can be retried elsewhere.
    #[error("the job never ran")]
    NotRun(J),
}

impl<J> JobError<J> {
    /// Whether the job panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, JobError::Panicked(_))
    }

    /// Whether the job was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, JobError::Cancelled)
    }

    /// The job input, if the job never ran.
    pub fn into_not_run(self) -> Option<J> {
        match self {
            JobError::NotRun(job) => Some(job),
            _ => None,
        }
    }

    pub(crate) fn map_job<K>(self, f: impl FnOnce(J) -> K) -> JobError<K> {
        match self {
            JobError::Panicked(payload) => JobError::Panicked(payload),
            JobError::Cancelled => JobError::Cancelled,
            JobError::NotRun(job) => JobError::NotRun(f(job)),
        }
    }
}

impl<J> fmt::Debug for JobError<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobError::Panicked(payload) => {
                let message = payload
                    .downcast_ref::<&str>()
                    .copied()
                    .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
                f.debug_tuple("Panicked").field(&message.unwrap_or("..")).finish()
            }
            JobError::Cancelled => f.write_str("Cancelled"),
            JobError::NotRun(_) => f.write_str("NotRun(..)"),
        }
    }
}
