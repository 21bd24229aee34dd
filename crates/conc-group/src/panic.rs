//! Captured panics: the payload of a task that panicked, and where the task
//! was spawned.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, Location};
use std::pin::pin;
use std::sync::Mutex;

/// A panic caught in a task: its payload and where the task was spawned.
///
/// A panicking task neither aborts the process nor takes its runtime down:
/// the group catches the panic, cancels its token as a failure would, and
/// hands the panic back from `wait` as
/// [`GroupError::Panicked`](crate::GroupError::Panicked). Call
/// [`resume`](Panic::resume) (or
/// [`GroupError::resume_panic`](crate::GroupError::resume_panic)) to
/// re-raise it on the waiting task.
///
/// # Backtraces
///
/// No backtrace is stored: by the time a panic is caught, the stack that
/// raised it has unwound, and capturing it earlier would take a process-wide
/// panic hook, which this crate does not install. The stack is not lost:
/// the panic still goes through the process's panic hook *at the panic
/// site*, so the default hook prints the message, location and (with
/// `RUST_BACKTRACE=1`) the backtrace of the task that panicked, and a hook
/// of your own sees it there. What the group adds is
/// [`spawned_at`](Panic::spawned_at): the `spawn` call that started the
/// task.
pub struct Panic {
    /// In a mutex only so that `Panic` (and the errors holding it) is
    /// `Sync`, like any error type; it is locked only to read the message.
    payload: Mutex<Box<dyn Any + Send + 'static>>,
    spawned_at: &'static Location<'static>,
}

impl Panic {
    pub(crate) fn new(payload: Box<dyn Any + Send + 'static>, spawned_at: &'static Location<'static>) -> Panic {
        Panic { payload: Mutex::new(payload), spawned_at }
    }

    /// The panic message, when the payload is a string (what `panic!`
    /// with a message gives).
    pub fn message(&self) -> Option<String> {
        let payload = self.payload.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(message) = payload.downcast_ref::<&'static str>() {
            Some((*message).to_owned())
        } else {
            payload.downcast_ref::<String>().cloned()
        }
    }

    /// Where the task that panicked was spawned.
    pub fn spawned_at(&self) -> &'static Location<'static> {
        self.spawned_at
    }

    /// The payload, as `std::panic::catch_unwind` returns it.
    pub fn into_payload(self) -> Box<dyn Any + Send + 'static> {
        self.payload.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Re-raises the panic on this thread, with its original payload.
    pub fn resume(self) -> ! {
        std::panic::resume_unwind(self.into_payload())
    }
}

impl fmt::Debug for Panic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Panic").field("message", &self.message()).field("spawned_at", &self.spawned_at).finish()
    }
}

impl fmt::Display for Panic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.message() {
            Some(message) => write!(f, "task spawned at {} panicked: {message}", self.spawned_at),
            None => write!(f, "task spawned at {} panicked", self.spawned_at),
        }
    }
}

impl std::error::Error for Panic {}

/// Runs `future`, catching a panic from any of its polls.
pub(crate) async fn catch_unwind<F: Future>(future: F) -> Result<F::Output, Box<dyn Any + Send + 'static>> {
    let mut future = pin!(future);
    std::future::poll_fn(|cx| match std::panic::catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
        Ok(poll) => poll.map(Ok),
        Err(payload) => std::task::Poll::Ready(Err(payload)),
    })
    .await
}
