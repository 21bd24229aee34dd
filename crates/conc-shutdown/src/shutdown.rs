//! [`Shutdown`], its [`Builder`] and its cloneable [`ShutdownHandle`].

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use conc_core::{Cancelled, Token};

use crate::driver::Driver;
use crate::report::{ShutdownReport, Trigger};
use crate::signals::Listener;
use crate::state::{Config, HookFuture, Inner};
use crate::subsystem::{SubsystemHandle, SubsystemResult};
use crate::{BuildError, Phase, Signal, SpawnError};

/// Owns a service's subsystems and shuts them down in order.
///
/// Build one at the start of `main` ([`Shutdown::new`] or
/// [`Shutdown::builder`]), start subsystems with [`spawn`](Shutdown::spawn)
/// and [`spawn_in`](Shutdown::spawn_in), register cleanup hooks with
/// [`add_hook`](Shutdown::add_hook), then [`wait`](Shutdown::wait) (or
/// [`run`](Shutdown::run) a main future). The shutdown starts on the first
/// trigger: a signal, [`trigger`](Shutdown::trigger), a failed subsystem
/// (by default), or the root token's cancellation or deadline. Then:
///
/// 1. [`is_draining`](Shutdown::is_draining) turns true and the optional
///    pre-drain delay passes (health checks report unhealthy, the load
///    balancer takes the instance out, traffic is still served).
/// 2. Each [`Phase`] in order cancels its subsystems' tokens and waits for
///    them up to its deadline; the stragglers are aborted.
/// 3. The cleanup hooks run, last registered first.
///
/// A second signal forces the shutdown: every token is cancelled and every
/// remaining task aborted at once, and hooks not yet run are skipped.
///
/// Every task is owned: `wait` returns only once all of them are gone, and
/// dropping a `Shutdown` (or the `wait` future) aborts them.
pub struct Shutdown {
    owner: Owner,
}

/// Aborts every task if the shutdown is dropped before it finished.
pub(crate) struct Owner {
    pub(crate) inner: Arc<Inner>,
    pub(crate) signals: Listener,
    pub(crate) done: bool,
}

impl Drop for Owner {
    fn drop(&mut self) {
        if !self.done {
            self.inner.abort_all_now();
        }
    }
}

/// A cloneable handle to a [`Shutdown`]: trigger it, check it, start
/// subsystems and hooks from anywhere (a request handler, an admin
/// endpoint, another thread).
#[derive(Clone)]
pub struct ShutdownHandle {
    inner: Arc<Inner>,
}

/// Configures a [`Shutdown`]; from [`Shutdown::builder`].
#[derive(Clone)]
pub struct Builder {
    config: Config,
    signals: Vec<Signal>,
    parent: Option<Token>,
}

impl Shutdown {
    /// A shutdown with the default settings: `SIGINT` and `SIGTERM` trigger
    /// it (ctrl-c outside unix; none without the `signals` feature), a
    /// subsystem's error or panic triggers it, no pre-drain delay, and phase
    /// timeouts of 5 s (stop accepting), 30 s (drain), 10 s (background)
    /// and 5 s (final).
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, or if the signal handlers cannot be
    /// installed (the runtime's signal driver is off, or the OS refused);
    /// [`Shutdown::builder`] returns these as errors instead.
    pub fn new() -> Shutdown {
        match Builder::new().build() {
            Ok(shutdown) => shutdown,
            Err(error) => panic!("conc_shutdown::Shutdown::new: {error}"),
        }
    }

    /// A builder to configure the phases, signals and triggers.
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// A cloneable handle to this shutdown.
    pub fn handle(&self) -> ShutdownHandle {
        ShutdownHandle::from_inner(Arc::clone(&self.owner.inner))
    }

    /// The root token: every subsystem's token descends from it. Cancelling
    /// it (or its deadline passing) triggers the shutdown with every
    /// subsystem told to stop at once.
    pub fn token(&self) -> &Token {
        &self.owner.inner.root
    }

    /// Starts the shutdown from code. Does nothing if it already started.
    pub fn trigger(&self) {
        self.owner.inner.trigger(Trigger::Requested);
    }

    /// Forces the shutdown from code, like a second signal.
    pub fn force(&self) {
        self.owner.inner.force();
    }

    /// Whether the shutdown has been triggered: turns true at the trigger,
    /// before the pre-drain delay, so health checks can report unhealthy
    /// while traffic is still served. A single atomic load.
    pub fn is_draining(&self) -> bool {
        self.owner.inner.is_draining()
    }

    /// Completes when the shutdown is triggered (when
    /// [`is_draining`](Shutdown::is_draining) turns true).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub fn draining(&self) -> Cancelled<'_> {
        self.owner.inner.requested.cancelled()
    }

    /// Starts a subsystem named `name` in [`Phase::Drain`]; see
    /// [`spawn_in`](Shutdown::spawn_in).
    ///
    /// # Errors
    ///
    /// [`SpawnError::Closed`] if the shutdown has already ended.
    pub fn spawn<F, Fut>(&self, name: impl Into<String>, f: F) -> Result<(), SpawnError>
    where
        F: FnOnce(SubsystemHandle) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: SubsystemResult,
    {
        self.owner.inner.spawn(None, Phase::Drain, name.into(), None, f)
    }

    /// Starts a subsystem named `name` in `phase`: `f` gets its
    /// [`SubsystemHandle`] (with its token) and returns the future to run,
    /// which may return `()` or a `Result<(), E>`.
    ///
    /// The subsystem's token is cancelled when `phase` starts. If `phase`
    /// has already run, the subsystem joins the phase running now. An error
    /// or panic triggers the shutdown (unless configured off) and is
    /// reported.
    ///
    /// # Errors
    ///
    /// [`SpawnError::Closed`] if the shutdown has already ended; `f` is not run.
    pub fn spawn_in<F, Fut>(&self, phase: Phase, name: impl Into<String>, f: F) -> Result<(), SpawnError>
    where
        F: FnOnce(SubsystemHandle) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: SubsystemResult,
    {
        self.owner.inner.spawn(None, phase, name.into(), None, f)
    }

    /// Registers a cleanup hook: `f` runs after the final phase's
    /// subsystems, hooks run last registered first (like Go's `defer`), and
    /// each gets the final phase's timeout as its own budget (one still
    /// running then is aborted, and the next one runs).
    ///
    /// # Errors
    ///
    /// [`SpawnError::Closed`] if the hooks have already run.
    pub fn add_hook<F, Fut>(&self, name: impl Into<String>, f: F) -> Result<(), SpawnError>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: SubsystemResult,
    {
        add_hook(&self.owner.inner, name.into(), f)
    }

    /// Waits for a trigger, then runs the shutdown to its end and reports.
    ///
    /// Returns only once every task it started is gone. Nothing happens
    /// until a trigger comes: a service whose subsystems all end on their
    /// own still waits here (use [`run`](Shutdown::run) to tie the
    /// shutdown to a main future).
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: dropping the future aborts every subsystem and
    /// hook, without a report.
    pub async fn wait(self) -> ShutdownReport {
        let Shutdown { owner } = self;
        Driver::new(owner).run().await
    }

    /// Starts `main` as a subsystem named `main` in [`Phase::StopAccepting`]
    /// (the front door of the service), and triggers the shutdown when it
    /// returns; then [`wait`](Shutdown::wait)s.
    ///
    /// `main` ending with an error or a panic is reported like any
    /// subsystem's (and triggers the shutdown as a failure, by default).
    ///
    /// # Cancel safety
    ///
    /// As [`wait`](Shutdown::wait).
    pub async fn run<F, Fut>(self, main: F) -> ShutdownReport
    where
        F: FnOnce(SubsystemHandle) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: SubsystemResult,
    {
        // Cannot fail: the shutdown is owned here, so it has not ended.
        let _ = self.owner.inner.spawn(None, Phase::StopAccepting, "main".into(), Some(Trigger::MainReturned), main);
        self.wait().await
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown::new()
    }
}

impl fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.owner.inner, f)
    }
}

fn add_hook<F, Fut>(inner: &Inner, name: String, f: F) -> Result<(), SpawnError>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: SubsystemResult,
{
    inner.add_hook(name, Box::new(move || -> HookFuture { Box::pin(async move { f().await.into_result() }) }))
}

impl ShutdownHandle {
    pub(crate) fn from_inner(inner: Arc<Inner>) -> Self {
        ShutdownHandle { inner }
    }

    /// See [`Shutdown::token`].
    pub fn token(&self) -> &Token {
        &self.inner.root
    }

    /// See [`Shutdown::trigger`].
    pub fn trigger(&self) {
        self.inner.trigger(Trigger::Requested);
    }

    /// See [`Shutdown::force`].
    pub fn force(&self) {
        self.inner.force();
    }

    /// See [`Shutdown::is_draining`].
    pub fn is_draining(&self) -> bool {
        self.inner.is_draining()
    }

    /// See [`Shutdown::draining`].
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub fn draining(&self) -> Cancelled<'_> {
        self.inner.requested.cancelled()
    }

    /// How many of the shutdown's tasks (subsystems, hooks) are alive: zero
    /// once [`wait`](Shutdown::wait) has returned.
    pub fn live_tasks(&self) -> usize {
        self.inner.tasks.live()
    }

    /// See [`Shutdown::spawn`].
    ///
    /// # Errors
    ///
    /// [`SpawnError::Closed`] if the shutdown has already ended.
    pub fn spawn<F, Fut>(&self, name: impl Into<String>, f: F) -> Result<(), SpawnError>
    where
        F: FnOnce(SubsystemHandle) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: SubsystemResult,
    {
        self.inner.spawn(None, Phase::Drain, name.into(), None, f)
    }

    /// See [`Shutdown::spawn_in`].
    ///
    /// # Errors
    ///
    /// [`SpawnError::Closed`] if the shutdown has already ended.
    pub fn spawn_in<F, Fut>(&self, phase: Phase, name: impl Into<String>, f: F) -> Result<(), SpawnError>
    where
        F: FnOnce(SubsystemHandle) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: SubsystemResult,
    {
        self.inner.spawn(None, phase, name.into(), None, f)
    }

    /// See [`Shutdown::add_hook`].
    ///
    /// # Errors
    ///
    /// [`SpawnError::Closed`] if the hooks have already run.
    pub fn add_hook<F, Fut>(&self, name: impl Into<String>, f: F) -> Result<(), SpawnError>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: SubsystemResult,
    {
        add_hook(&self.inner, name.into(), f)
    }
}

impl fmt::Debug for ShutdownHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

impl Builder {
    fn new() -> Builder {
        Builder {
            config: Config {
                timeouts: Phase::ALL.map(Phase::default_timeout),
                pre_drain_delay: Duration::ZERO,
                shutdown_on_error: true,
                shutdown_on_panic: true,
            },
            signals: Signal::defaults(),
            parent: None,
        }
    }

    /// How long `phase` may take before its remaining subsystems are
    /// aborted; for [`Phase::Final`] also each hook's budget. Zero aborts
    /// whatever has not already ended the moment the phase starts;
    /// `Duration::MAX` means no deadline.
    pub fn phase_timeout(mut self, phase: Phase, timeout: Duration) -> Builder {
        self.config.timeouts[phase.index()] = timeout;
        self
    }

    /// How long to keep serving after the trigger, before the first phase:
    /// time for load balancers to notice [`is_draining`](Shutdown::is_draining).
    /// Zero (the default) starts the phases at once.
    pub fn pre_drain_delay(mut self, delay: Duration) -> Builder {
        self.config.pre_drain_delay = delay;
        self
    }

    /// The signals that trigger the shutdown (the second one received
    /// forces it). `&[]` listens for none.
    pub fn signals(mut self, signals: &[Signal]) -> Builder {
        self.signals = signals.to_vec();
        self
    }

    /// Whether a subsystem returning an error triggers the shutdown
    /// (default: yes). Either way the error is reported.
    pub fn shutdown_on_error(mut self, enabled: bool) -> Builder {
        self.config.shutdown_on_error = enabled;
        self
    }

    /// Whether a subsystem panicking triggers the shutdown (default: yes).
    /// Either way the panic is reported.
    pub fn shutdown_on_panic(mut self, enabled: bool) -> Builder {
        self.config.shutdown_on_panic = enabled;
        self
    }

    /// Makes the root token a child of `parent`: cancelling `parent`, or its
    /// deadline passing (Go's `context.WithTimeout` on the whole service),
    /// triggers the shutdown with every subsystem told to stop at once;
    /// the phases still wait in order.
    pub fn parent(mut self, parent: Token) -> Builder {
        self.parent = Some(parent);
        self
    }

    /// Builds the shutdown and installs its signal handlers.
    ///
    /// # Errors
    ///
    /// [`BuildError::NoRuntime`] outside a tokio runtime;
    /// [`BuildError::SignalUnavailable`] for a signal this build or platform
    /// cannot listen for; [`BuildError::Signal`] if the OS refused a handler.
    ///
    /// # Panics
    ///
    /// If signals are asked for and the runtime was built without its
    /// signal driver (`enable_all`, which `#[tokio::main]` uses, turns it on).
    pub fn build(self) -> Result<Shutdown, BuildError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| BuildError::NoRuntime)?;
        let signals = Listener::install(&self.signals)?;
        let root = self.parent.map_or_else(Token::new, |parent| parent.child());
        let inner = Inner::new(root, self.config, runtime);
        Ok(Shutdown { owner: Owner { inner, signals, done: false } })
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("config", &self.config)
            .field("signals", &self.signals)
            .field("parent", &self.parent)
            .finish()
    }
}
