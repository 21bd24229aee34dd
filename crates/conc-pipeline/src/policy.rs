//! What a fallible stage does with an item whose function failed.

use conc_core::channel::Tx;

use crate::error::{BoxError, Failure, StageError};
use crate::run::StageCtx;

/// What a fallible stage (`try_map`, `try_filter`, `try_filter_map`,
/// `try_flat_map`, `try_then`, `try_map_concurrent`, `try_map_ordered`,
/// `try_partition_by`) does when its function returns an error.
///
/// Set it for the whole pipeline with
/// [`Pipeline::error_policy`](crate::Pipeline::error_policy) or for the
/// last stage added with [`Pipeline::on_error`](crate::Pipeline::on_error).
/// Every policy counts the error in the stage's
/// [`StageReport::errors`](crate::StageReport::errors).
#[derive(Clone, Debug, Default)]
pub enum ErrorPolicy {
    /// Cancel every stage and end the run with
    /// [`PipelineError::Stage`](crate::PipelineError::Stage) carrying the
    /// first error (errgroup's rule). The default.
    #[default]
    FailFast,
    /// Drop the failed item, count the error, and go on.
    Skip,
    /// Send a [`StageError`] to this channel and go on. A full side channel
    /// holds the stage back (backpressure); a closed one makes the policy
    /// behave like [`Skip`](ErrorPolicy::Skip).
    SideOutput(Tx<StageError>),
}

/// Whether a stage goes on after an error.
pub(crate) enum Verdict {
    Continue,
    Stop,
}

impl ErrorPolicy {
    pub(crate) async fn handle(&self, ctx: &StageCtx, error: BoxError) -> Verdict {
        ctx.stats.add_error();
        match self {
            ErrorPolicy::FailFast => {
                ctx.run.fail(Failure::Error { stage: ctx.stats.name(), error });
                Verdict::Stop
            }
            ErrorPolicy::Skip => Verdict::Continue,
            ErrorPolicy::SideOutput(side) => {
                let report = StageError { stage: ctx.stats.name(), error };
                match side.send_until(report, &ctx.run.token).await {
                    Err(refused) if refused.is_cancelled() => Verdict::Stop,
                    _ => Verdict::Continue,
                }
            }
        }
    }
}
