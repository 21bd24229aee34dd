//! Graceful shutdown for tokio services: signals, named subsystems, ordered
//! phases with deadlines, LIFO cleanup hooks and a report.
//!
//! The crate to reach for instead of a hand-rolled `select!` on ctrl-c, or
//! Go's `signal.Notify` + `http.Server.Shutdown(ctx)` + `WaitGroup` dance.
//! A [`Shutdown`] owns a root [`Token`](conc_core::Token) and every task of
//! the service (its *subsystems*). On the first trigger (`SIGINT`/`SIGTERM`,
//! [`Shutdown::trigger`], a failed subsystem, or the root token's
//! cancellation or deadline) it:
//!
//! 1. turns [`is_draining`](Shutdown::is_draining) on (and completes
//!    [`draining`](Shutdown::draining)), so health checks fail
//!    first, and waits the optional pre-drain delay while still serving;
//! 2. runs the [`Phase`]s in order (stop accepting, drain, cancel
//!    background work, final), each cancelling its subsystems' tokens and
//!    waiting for them up to its own deadline, aborting the stragglers;
//! 3. runs the cleanup hooks, last registered first (like `defer`);
//! 4. returns a [`ShutdownReport`]: per subsystem its phase, how it ended
//!    (finished, errored, panicked, aborted) and how long it took, and an
//!    [`exit_code`](ShutdownReport::exit_code) for `main`.
//!
//! A second signal forces it: every token is cancelled and every task
//! aborted at once. No task outlives [`wait`](Shutdown::wait).
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use conc_shutdown::{Phase, Shutdown};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let shutdown = Shutdown::builder()
//!     .phase_timeout(Phase::Drain, Duration::from_secs(10))
//!     .build()?; // listens for SIGINT and SIGTERM
//!
//! // The front door: with axum, `axum::serve(listener, app)
//! //     .with_graceful_shutdown(sub.token().clone().cancelled_owned())`.
//! shutdown.spawn_in(Phase::StopAccepting, "listener", |sub| async move {
//!     sub.cancelled().await;
//! })?;
//! // In-flight work: finishes what it has, then returns.
//! shutdown.spawn("jobs", |sub| async move {
//!     sub.cancelled().await;
//!     tokio::time::sleep(Duration::from_millis(200)).await; // the last job
//!     Ok::<_, std::io::Error>(())
//! })?;
//! // A subsystem that ignores its token is aborted at its phase's deadline.
//! shutdown.spawn_in(Phase::Background, "stuck", |_sub| std::future::pending::<()>())?;
//! shutdown.add_hook("flush-logs", || async { /* flush */ })?;
//!
//! shutdown.trigger(); // in a service: a signal
//! let report = shutdown.wait().await;
//! assert!(report.subsystem("jobs").unwrap().outcome.is_finished());
//! assert!(report.subsystem("stuck").unwrap().outcome.is_aborted());
//! assert_eq!(report.exit_code(), conc_shutdown::ShutdownReport::EXIT_TIMEOUT);
//! println!("{report}");
//! # Ok(())
//! # }
//! ```
//!
//! # Time
//!
//! Phase deadlines, the pre-drain delay and hook budgets run on tokio's
//! timer, so tests use `#[tokio::test(start_paused = true)]` and check
//! them without sleeping. The root token's deadline is conc-core's (use a
//! `ManualClock` parent token, see [`Builder::parent`]).
//!
//! # Features
//!
//! - `signals` (default): listen for `SIGINT`/`SIGTERM` (and, when asked,
//!   `SIGHUP`/`SIGQUIT`) on unix, ctrl-c on windows.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod driver;
mod error;
mod phase;
mod report;
mod shutdown;
mod signals;
mod state;
mod subsystem;
#[cfg(all(test, not(conc_loom)))]
mod tests;

pub use error::{BuildError, SpawnError};
pub use phase::Phase;
pub use report::{
    AbortReason, HookReport, Outcome, PhaseReport, ShutdownReport, SubsystemError, SubsystemReport, Trigger,
};
pub use shutdown::{Builder, Shutdown, ShutdownHandle};
pub use signals::Signal;
pub use subsystem::{SubsystemHandle, SubsystemResult};
