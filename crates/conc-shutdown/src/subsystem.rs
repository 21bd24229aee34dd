//! Subsystems: the named tasks a shutdown owns.

use std::any::Any;
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use conc_core::{Cancelled, Token};

use crate::report::SubsystemError;
use crate::state::Inner;
use crate::{Phase, ShutdownHandle, SpawnError};

/// What a subsystem's or hook's future may return: `()`, or
/// `Result<(), E>` for any error that converts into a boxed error
/// (`std::io::Error`, your own error type, `anyhow::Error`, `String`, ...).
pub trait SubsystemResult: Send + 'static {
    /// `Ok` if it finished, the error otherwise.
    ///
    /// # Errors
    ///
    /// The subsystem's own error.
    fn into_result(self) -> Result<(), SubsystemError>;
}

impl SubsystemResult for () {
    fn into_result(self) -> Result<(), SubsystemError> {
        Ok(())
    }
}

impl<E> SubsystemResult for Result<(), E>
where
    E: Into<Box<dyn StdError + Send + Sync + 'static>> + Send + 'static,
{
    fn into_result(self) -> Result<(), SubsystemError> {
        self.map_err(|error| Arc::from(error.into()))
    }
}

/// What a subsystem gets when it starts: its name, its phase, its token,
/// and a way to start children.
///
/// The [`token`](SubsystemHandle::token) is a descendant of the shutdown's
/// root token. It is cancelled when the subsystem's [`Phase`] starts (or at
/// once, if the root token is cancelled or the shutdown is forced). A
/// subsystem is expected to wind down when it is: stop accepting, finish
/// in-flight work, return. One still running at its phase's deadline is
/// aborted.
///
/// # Examples
///
/// ```
/// use conc_shutdown::Shutdown;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let shutdown = Shutdown::builder().signals(&[]).build()?;
/// shutdown.spawn("server", |server| async move {
///     // Children share their parent's phase; the parent ends after them.
///     server.spawn("connection-1", |conn| async move { conn.cancelled().await })?;
///     server.cancelled().await;
///     Ok::<_, conc_shutdown::SpawnError>(())
/// })?;
/// shutdown.trigger();
/// let report = shutdown.wait().await;
/// assert!(report.subsystem("server/connection-1").unwrap().outcome.is_finished());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SubsystemHandle {
    inner: Arc<Inner>,
    pub(crate) id: usize,
    name: Arc<str>,
    phase: Phase,
    token: Token,
}

impl SubsystemHandle {
    pub(crate) fn new(inner: Arc<Inner>, id: usize, name: String, phase: Phase, token: Token) -> Self {
        SubsystemHandle { inner, id, name: name.into(), phase, token }
    }

    /// Its full name: `parent/child` for a nested subsystem.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The phase it belongs to.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Its token: cancelled when it should stop. Pass it (or a child of it)
    /// down to the work it runs; `token().clone().cancelled_owned()` is the
    /// `'static` future that axum's and hyper's `with_graceful_shutdown` take.
    pub fn token(&self) -> &Token {
        &self.token
    }

    /// Completes when it should stop: its token's
    /// [`cancelled`](Token::cancelled).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub fn cancelled(&self) -> Cancelled<'_> {
        self.token.cancelled()
    }

    /// Whether it should stop.
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Whether the shutdown has been triggered (see
    /// [`Shutdown::is_draining`](crate::Shutdown::is_draining)).
    pub fn is_draining(&self) -> bool {
        self.inner.is_draining()
    }

    /// Completes when the shutdown is triggered (see
    /// [`Shutdown::draining`](crate::Shutdown::draining)); a subsystem's own
    /// token is cancelled later, when its phase starts.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub fn draining(&self) -> Cancelled<'_> {
        self.inner.requested.cancelled()
    }

    /// A handle to the whole shutdown, to trigger it or start top-level
    /// subsystems and hooks.
    pub fn shutdown(&self) -> ShutdownHandle {
        ShutdownHandle::from_inner(Arc::clone(&self.inner))
    }

    /// Starts a child subsystem named `name` (reported as `parent/name`) in
    /// this subsystem's phase, with a child of this subsystem's token. This
    /// subsystem's end is reported only after all its children have ended;
    /// if it errors or panics, its children's tokens are cancelled.
    ///
    /// # Errors
    ///
    /// [`SpawnError::Closed`] if the shutdown has already ended; `f` is not run.
    pub fn spawn<F, Fut>(&self, name: impl Into<String>, f: F) -> Result<(), SpawnError>
    where
        F: FnOnce(SubsystemHandle) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: SubsystemResult,
    {
        self.inner.spawn(Some((self.id, &self.token)), self.phase, name.into(), None, f)
    }
}

impl fmt::Debug for SubsystemHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubsystemHandle")
            .field("name", &self.name)
            .field("phase", &self.phase)
            .field("cancelled", &self.token.is_cancelled())
            .finish()
    }
}

/// Runs a future, turning a panic in any poll into an `Err` with the
/// payload, so a panicking subsystem is reported rather than lost.
pub(crate) struct CatchUnwind<F> {
    future: Pin<Box<F>>,
}

impl<F: Future> CatchUnwind<F> {
    pub(crate) fn new(future: F) -> Self {
        CatchUnwind { future: Box::pin(future) }
    }
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let future = self.future.as_mut();
        // A future that panicked is never polled again, so whatever state
        // the unwind left it in is not observed.
        match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Err(payload) => Poll::Ready(Err(payload)),
        }
    }
}

/// The message of a panic payload (`panic!` with a literal or a format).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&'static str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "<non-string panic payload>".to_owned()
    }
}
