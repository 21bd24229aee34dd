//! Build errors, stage errors and the ways a run can end badly.

use std::error::Error as StdError;
use std::fmt;

use conc_core::Cause;

use crate::report::PipelineReport;

/// The error type fallible stages hand to the pipeline: any error, boxed.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// A pipeline setting that cannot be used, rejected when the stage is added.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// A parallel stage with no worker would never process an item.
    #[error("concurrency must be at least 1")]
    ZeroConcurrency,
    /// A batch of 0 items would never fill.
    #[error("batch size must be at least 1")]
    ZeroBatchSize,
    /// Stage links are buffered channels; a rendezvous (capacity 0) is not supported.
    #[error("channel capacity must be at least 1 (rendezvous channels are not supported)")]
    ZeroCapacity,
    /// `tee` into no branch would drop every item.
    #[error("tee needs at least 1 branch")]
    ZeroBranches,
}

/// One item's failure in a fallible stage, as sent to a side output
/// ([`ErrorPolicy::SideOutput`](crate::ErrorPolicy::SideOutput)).
#[derive(Debug, thiserror::Error)]
#[error("stage `{stage}` failed: {error}")]
pub struct StageError {
    /// The name of the stage whose function returned the error.
    pub stage: String,
    /// The error the stage's function returned.
    #[source]
    pub error: BoxError,
}

/// Why a pipeline run did not complete.
///
/// Every variant carries the [`PipelineReport`] of the run, with the number
/// of items that were in flight and dropped ([`PipelineReport::dropped_in_flight`]).
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A fallible stage under [`ErrorPolicy::FailFast`](crate::ErrorPolicy::FailFast)
    /// returned an error; every stage was cancelled.
    #[error("stage `{stage}` failed: {source}")]
    Stage {
        /// The stage that failed first.
        stage: String,
        /// Its error.
        source: BoxError,
        /// The run's report.
        report: Box<PipelineReport>,
    },
    /// A stage's function panicked; every stage was cancelled.
    #[error("stage `{stage}` panicked: {message}")]
    Panicked {
        /// The stage that panicked first.
        stage: String,
        /// The panic message, when it was a string.
        message: String,
        /// The run's report.
        report: Box<PipelineReport>,
    },
    /// The pipeline's token was cancelled (or the consumer stopped early)
    /// before every item went through.
    #[error("pipeline cancelled ({cause}); {} items in flight were dropped", report.dropped_in_flight)]
    Cancelled {
        /// Why the token was cancelled.
        cause: Cause,
        /// The run's report.
        report: Box<PipelineReport>,
    },
}

impl PipelineError {
    /// The report of the run that ended with this error.
    pub fn report(&self) -> &PipelineReport {
        match self {
            PipelineError::Stage { report, .. }
            | PipelineError::Panicked { report, .. }
            | PipelineError::Cancelled { report, .. } => report,
        }
    }

    /// Whether the run ended because it was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, PipelineError::Cancelled { .. })
    }
}

/// The first failure of a run, kept until the run is joined.
pub(crate) enum Failure {
    Error { stage: String, error: BoxError },
    Panic { stage: String, message: String },
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Error { stage, error } => write!(f, "Error({stage}: {error})"),
            Failure::Panic { stage, message } => write!(f, "Panic({stage}: {message})"),
        }
    }
}

/// The text of a panic payload, when it is a string.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
