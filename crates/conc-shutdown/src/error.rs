//! The crate's errors.

use crate::Signal;

/// Why a [`Shutdown`](crate::Shutdown) could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Built outside a tokio runtime: subsystems and signal listeners need
    /// one.
    #[error("conc-shutdown must be built inside a tokio runtime")]
    NoRuntime,
    /// The signal cannot be listened for here: the `signals` feature is off,
    /// or the platform has no such signal (only ctrl-c exists outside unix).
    #[error("{0} cannot be listened for (the `signals` feature is off or the platform lacks it)")]
    SignalUnavailable(Signal),
    /// The OS refused to install the handler for a signal.
    #[error("cannot listen for {signal}: {source}")]
    Signal {
        /// The signal whose handler failed.
        signal: Signal,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Why a subsystem or hook was not started.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// The shutdown already ended: nothing would own or report the task, so
    /// it is not run.
    #[error("cannot start `{name}`: the shutdown has already ended")]
    Closed {
        /// The name the subsystem or hook was given.
        name: String,
    },
}
