//! The ordered phases of a shutdown.

use std::fmt;
use std::time::Duration;

/// One step of a shutdown, in the order they run.
///
/// This is the three-phase shutdown of the Go guides (stop accepting, drain,
/// cancel background work) plus a final phase for flushing and closing.
/// Every subsystem belongs to one phase: its token is cancelled when that
/// phase starts, and the phase ends when all of its subsystems have ended
/// or its deadline passed (the stragglers are then aborted). A phase starts
/// only after the previous one ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Listeners and acceptors stop taking new work (Go's `Server.Shutdown`
    /// closing its listeners).
    StopAccepting,
    /// In-flight work finishes: requests being served, queued jobs. The
    /// default phase of [`spawn`](crate::Shutdown::spawn).
    Drain,
    /// Background work is cancelled: tickers, refreshers, consumers.
    Background,
    /// Flushing and closing: final subsystems, then the cleanup hooks, last
    /// registered first.
    Final,
}

impl Phase {
    /// Every phase, in the order they run.
    pub const ALL: [Phase; 4] = [Phase::StopAccepting, Phase::Drain, Phase::Background, Phase::Final];

    /// A short lowercase name, as printed in reports.
    pub fn name(self) -> &'static str {
        match self {
            Phase::StopAccepting => "stop-accepting",
            Phase::Drain => "drain",
            Phase::Background => "background",
            Phase::Final => "final",
        }
    }

    /// The position of this phase in [`Phase::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// How long the phase may take unless configured otherwise.
    pub(crate) fn default_timeout(self) -> Duration {
        match self {
            Phase::StopAccepting => Duration::from_secs(5),
            Phase::Drain => Duration::from_secs(30),
            Phase::Background => Duration::from_secs(10),
            Phase::Final => Duration::from_secs(5),
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
