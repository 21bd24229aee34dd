//! What a shutdown did: [`ShutdownReport`] and its parts.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use conc_core::Cause;

use crate::{Phase, Signal};

/// A subsystem's or hook's error, shared so reports can be cloned.
pub type SubsystemError = Arc<dyn StdError + Send + Sync + 'static>;

/// What started the shutdown.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Trigger {
    /// An OS signal.
    Signal(Signal),
    /// [`Shutdown::trigger`](crate::Shutdown::trigger) (or `force`) from code.
    Requested,
    /// A subsystem errored or panicked, and the shutdown was configured to
    /// stop on that.
    Failure {
        /// The subsystem's full name.
        subsystem: String,
    },
    /// The `main` future given to [`Shutdown::run`](crate::Shutdown::run)
    /// returned.
    MainReturned,
    /// The root token was cancelled from outside, or its deadline passed;
    /// every subsystem was told to stop at once.
    TokenCancelled(Cause),
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trigger::Signal(signal) => write!(f, "{signal}"),
            Trigger::Requested => f.write_str("requested"),
            Trigger::Failure { subsystem } => write!(f, "failure of `{subsystem}`"),
            Trigger::MainReturned => f.write_str("main returned"),
            Trigger::TokenCancelled(cause) => write!(f, "root token: {cause}"),
        }
    }
}

/// Why a task was aborted rather than left to end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AbortReason {
    /// It was still running at its phase's deadline (or, for a hook, at the
    /// end of its time budget).
    Deadline,
    /// The shutdown was forced (a second signal, or
    /// [`Shutdown::force`](crate::Shutdown::force)).
    Forced,
}

/// How a subsystem or hook ended.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// It returned `()` or `Ok(())`.
    Finished,
    /// It returned an error.
    Errored(SubsystemError),
    /// It panicked; the panic message (or a placeholder if the payload was
    /// not a string).
    Panicked(String),
    /// It was aborted; a hook aborted by a forced shutdown before it started
    /// never ran.
    Aborted(AbortReason),
}

impl Outcome {
    /// Whether it finished on its own, without error.
    pub fn is_finished(&self) -> bool {
        matches!(self, Outcome::Finished)
    }

    /// Whether it errored or panicked.
    pub fn is_failure(&self) -> bool {
        matches!(self, Outcome::Errored(_) | Outcome::Panicked(_))
    }

    /// Whether it was aborted, for either reason.
    pub fn is_aborted(&self) -> bool {
        matches!(self, Outcome::Aborted(_))
    }
}

/// Errors compare by identity (the same shared error), like
/// [`Cause`]'s.
impl PartialEq for Outcome {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Outcome::Finished, Outcome::Finished) => true,
            (Outcome::Errored(a), Outcome::Errored(b)) => Arc::ptr_eq(a, b),
            (Outcome::Panicked(a), Outcome::Panicked(b)) => a == b,
            (Outcome::Aborted(a), Outcome::Aborted(b)) => a == b,
            _ => false,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Finished => f.write_str("finished"),
            Outcome::Errored(error) => write!(f, "errored: {error}"),
            Outcome::Panicked(message) => write!(f, "panicked: {message}"),
            Outcome::Aborted(AbortReason::Deadline) => f.write_str("aborted at deadline"),
            Outcome::Aborted(AbortReason::Forced) => f.write_str("aborted (forced)"),
        }
    }
}

/// How one subsystem ended.
#[derive(Clone, Debug, PartialEq)]
pub struct SubsystemReport {
    /// Its full name: a nested subsystem's is `parent/child`.
    pub name: String,
    /// The phase it belonged to.
    pub phase: Phase,
    /// How it ended.
    pub outcome: Outcome,
    /// From its start to its end (including the wait for its children).
    pub duration: Duration,
    /// From the moment it was told to stop (its phase started, or the
    /// shutdown was forced) to its end; `None` if it ended before that.
    pub stop_duration: Option<Duration>,
}

/// How one cleanup hook ended.
#[derive(Clone, Debug, PartialEq)]
pub struct HookReport {
    /// The name it was registered with.
    pub name: String,
    /// How it ended.
    pub outcome: Outcome,
    /// How long it ran (zero if it never ran).
    pub duration: Duration,
}

/// How one phase went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhaseReport {
    /// Which phase.
    pub phase: Phase,
    /// From its start to its end (the final phase's includes its hooks).
    pub duration: Duration,
    /// Whether its deadline passed with subsystems still running (they were
    /// aborted).
    pub deadline_hit: bool,
}

/// What a shutdown did, returned by [`Shutdown::wait`](crate::Shutdown::wait)
/// and [`Shutdown::run`](crate::Shutdown::run).
///
/// Its `Display` form is a short table for logs; [`exit_code`](Self::exit_code)
/// turns it into a process exit status.
#[derive(Clone, Debug, PartialEq)]
pub struct ShutdownReport {
    /// What started the shutdown.
    pub trigger: Trigger,
    /// Whether it was forced (a second signal, or `force`).
    pub forced: bool,
    /// The phases that ran, in order (a forced shutdown skips the rest).
    pub phases: Vec<PhaseReport>,
    /// Every subsystem, in the order they were started.
    pub subsystems: Vec<SubsystemReport>,
    /// The cleanup hooks, in the order they ran (last registered first).
    pub hooks: Vec<HookReport>,
    /// From the trigger to the end of the shutdown, pre-drain delay included.
    pub duration: Duration,
}

impl ShutdownReport {
    /// Exit status of a clean shutdown: everything finished.
    pub const EXIT_OK: u8 = 0;
    /// Exit status when a subsystem or hook errored or panicked.
    pub const EXIT_FAILURE: u8 = 1;
    /// Exit status when nothing failed but something had to be aborted at a
    /// deadline.
    pub const EXIT_TIMEOUT: u8 = 2;
    /// Exit status of a forced shutdown: 128 + `SIGINT`, as shells report an
    /// interrupted program.
    pub const EXIT_FORCED: u8 = 130;

    /// The exit status for `main`, most severe first: [`EXIT_FORCED`](Self::EXIT_FORCED),
    /// [`EXIT_FAILURE`](Self::EXIT_FAILURE), [`EXIT_TIMEOUT`](Self::EXIT_TIMEOUT),
    /// else [`EXIT_OK`](Self::EXIT_OK).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn serve(shutdown: conc_shutdown::Shutdown) -> std::process::ExitCode {
    /// let report = shutdown.wait().await;
    /// std::process::ExitCode::from(report.exit_code())
    /// # }
    /// ```
    pub fn exit_code(&self) -> u8 {
        let outcomes = || self.subsystems.iter().map(|s| &s.outcome).chain(self.hooks.iter().map(|h| &h.outcome));
        if self.forced {
            Self::EXIT_FORCED
        } else if outcomes().any(Outcome::is_failure) {
            Self::EXIT_FAILURE
        } else if outcomes().any(Outcome::is_aborted) {
            Self::EXIT_TIMEOUT
        } else {
            Self::EXIT_OK
        }
    }

    /// Whether every subsystem and hook finished on its own.
    pub fn is_clean(&self) -> bool {
        self.exit_code() == Self::EXIT_OK
    }

    /// The subsystem with this full name, if any (the first, if names repeat).
    pub fn subsystem(&self, name: &str) -> Option<&SubsystemReport> {
        self.subsystems.iter().find(|s| s.name == name)
    }

    /// The hook with this name, if any (the first to run, if names repeat).
    pub fn hook(&self, name: &str) -> Option<&HookReport> {
        self.hooks.iter().find(|h| h.name == name)
    }
}

impl fmt::Display for ShutdownReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "shutdown: trigger {}, {:?}{}, exit code {}",
            self.trigger,
            self.duration,
            if self.forced { ", forced" } else { "" },
            self.exit_code()
        )?;
        for phase in &self.phases {
            let hit = if phase.deadline_hit { " (deadline hit)" } else { "" };
            writeln!(f, "  phase {:<14} {:?}{hit}", phase.phase.name(), phase.duration)?;
        }
        for sub in &self.subsystems {
            let stop = sub.stop_duration.map_or(String::new(), |stop| format!(", stopped in {stop:?}"));
            writeln!(
                f,
                "  subsystem {:<24} {:<14} ran {:?}{stop}: {}",
                sub.name,
                sub.phase.name(),
                sub.duration,
                sub.outcome
            )?;
        }
        for hook in &self.hooks {
            writeln!(f, "  hook {:<29} {:<14} ran {:?}: {}", hook.name, "", hook.duration, hook.outcome)?;
        }
        Ok(())
    }
}
