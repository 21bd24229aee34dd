//! The state of a pipeline: what its builder shares with its progress
//! handle ([`Shared`]), and what one run shares between its tasks
//! ([`RunShared`]), with the owner that joins them ([`Run`]).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use conc_core::{OnCancel, TaskCounter, Token};
use futures_lite::FutureExt;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::error::{Failure, PipelineError, panic_message};
use crate::policy::ErrorPolicy;
use crate::report::{PipelineReport, StageReport, StageStats};
use crate::sync::lock_std as lock;

/// What a pipeline's builder, its runs and its [`Progress`](crate::Progress)
/// handles share. The mutexes guard build-time settings and are read once
/// per run or snapshot: cold paths.
pub(crate) struct Shared {
    token: Mutex<Token>,
    policy: Mutex<ErrorPolicy>,
    stages: Mutex<Vec<Arc<StageStats>>>,
    dropped: AtomicU64,
    pub(crate) counter: TaskCounter,
}

impl Shared {
    pub(crate) fn new(token: Token) -> Arc<Self> {
        Arc::new(Shared {
            token: Mutex::new(token),
            policy: Mutex::new(ErrorPolicy::FailFast),
            stages: Mutex::new(Vec::new()),
            dropped: AtomicU64::new(0),
            counter: TaskCounter::new(),
        })
    }

    pub(crate) fn add_stage(&self, name: &str) -> Arc<StageStats> {
        let stats = Arc::new(StageStats::new(name));
        lock(&self.stages).push(Arc::clone(&stats));
        stats
    }

    /// Appends another pipeline's stages (the parts of a merge).
    pub(crate) fn adopt_stages(&self, other: &Shared) {
        let theirs = lock(&other.stages).clone();
        lock(&self.stages).extend(theirs);
    }

    pub(crate) fn stage_reports(&self) -> Vec<StageReport> {
        lock(&self.stages).iter().map(|stats| stats.snapshot()).collect()
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub(crate) fn token(&self) -> Token {
        lock(&self.token).clone()
    }

    pub(crate) fn set_token(&self, token: Token) {
        *lock(&self.token) = token;
    }

    pub(crate) fn policy(&self) -> ErrorPolicy {
        lock(&self.policy).clone()
    }

    pub(crate) fn set_policy(&self, policy: ErrorPolicy) {
        *lock(&self.policy) = policy;
    }
}

type Closer = Box<dyn Fn() + Send + Sync>;

/// What the tasks of one run share.
pub(crate) struct RunShared {
    pub(crate) shared: Arc<Shared>,
    /// A child of the pipeline's token: a failure cancels this run only.
    pub(crate) token: Token,
    runtime: tokio::runtime::Handle,
    /// Pushed to when a task is spawned and drained by the joiner: cold.
    handles: Mutex<Vec<JoinHandle<()>>>,
    /// Closes every channel of the run on cancel, so blocked sends and
    /// receives wake without each await racing the token.
    closers: Mutex<Vec<Closer>>,
    /// The first failure wins; written once per run: cold.
    failure: Mutex<Option<Failure>>,
    cut_short: AtomicBool,
}

impl RunShared {
    /// Spawns one task of the run, tracked by the pipeline's counter; a
    /// panic in it fails the run.
    pub(crate) fn spawn<F>(self: &Arc<Self>, stats: &Arc<StageStats>, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let run = Arc::clone(self);
        let stats = Arc::clone(stats);
        let task = async move {
            if let Err(payload) = AssertUnwindSafe(future).catch_unwind().await {
                run.fail(Failure::Panic { stage: stats.name(), message: panic_message(payload.as_ref()) });
            }
        };
        let handle = self.runtime.spawn(self.shared.counter.track(task));
        lock(&self.handles).push(handle);
    }

    /// Registers `close` to run when the run is cancelled (at once if it
    /// already is).
    pub(crate) fn on_cancel(&self, close: impl Fn() + Send + Sync + 'static) {
        lock(&self.closers).push(Box::new(close));
        // The cancel callback may have run before the push; closing twice is harmless.
        if self.token.is_cancelled() {
            self.close_all();
        }
    }

    /// Registers a channel to be closed when the run is cancelled.
    pub(crate) fn close_on_cancel<T: Send + 'static>(&self, sender: &async_channel::Sender<T>) {
        let weak = sender.downgrade();
        self.on_cancel(move || {
            if let Some(sender) = weak.upgrade() {
                sender.close();
            }
        });
    }

    fn close_all(&self) {
        for close in lock(&self.closers).iter() {
            close();
        }
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Counts items dropped because the run stopped early.
    pub(crate) fn drop_items(&self, items: usize) {
        self.cut_short.store(true, Ordering::Relaxed);
        if items > 0 {
            self.shared.dropped.fetch_add(items as u64, Ordering::Relaxed);
        }
    }

    /// Counts dropped items only if there are any (a normal end has none).
    pub(crate) fn drop_items_if_any(&self, items: usize) {
        if items > 0 {
            self.drop_items(items);
        }
    }

    /// Notes that a task stopped before its input ended.
    pub(crate) fn stopped_early(&self) {
        self.cut_short.store(true, Ordering::Relaxed);
    }

    /// Records the run's first failure and cancels every stage.
    pub(crate) fn fail(&self, failure: Failure) {
        {
            let mut slot = lock(&self.failure);
            if slot.is_none() {
                *slot = Some(failure);
            }
        }
        self.stopped_early();
        self.token.cancel();
    }

    /// Stops consuming `input`: closes it so upstream sends fail (and are
    /// counted there), then counts what was already buffered.
    pub(crate) fn abandon_chunks<T>(&self, input: &async_channel::Receiver<Vec<T>>) {
        input.close();
        let mut items = 0;
        while let Ok(chunk) = input.try_recv() {
            items += chunk.len();
        }
        self.drop_items(items);
    }

    /// [`abandon_chunks`](Self::abandon_chunks) for chunks whose items are
    /// counted by `count`.
    pub(crate) fn abandon_chunks_of<C>(&self, input: &async_channel::Receiver<C>, count: impl Fn(&C) -> usize) {
        input.close();
        let mut items = 0;
        while let Ok(chunk) = input.try_recv() {
            items += count(&chunk);
        }
        self.drop_items(items);
    }

    /// [`abandon_chunks`](Self::abandon_chunks) for a channel of single items.
    pub(crate) fn abandon_items<T>(&self, input: &async_channel::Receiver<T>) {
        input.close();
        let mut items = 0;
        while input.try_recv().is_ok() {
            items += 1;
        }
        self.drop_items(items);
    }
}

/// The owner of one run: it joins every task, and cancels and aborts them
/// if it is dropped first.
pub(crate) struct Run {
    pub(crate) inner: Arc<RunShared>,
    started: Instant,
    registration: Option<OnCancel>,
}

impl Run {
    /// Starts a run under a child of the pipeline's token.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub(crate) fn new(shared: Arc<Shared>) -> Run {
        let token = shared.token().child();
        let inner = Arc::new(RunShared {
            shared,
            token: token.clone(),
            runtime: tokio::runtime::Handle::current(),
            handles: Mutex::new(Vec::new()),
            closers: Mutex::new(Vec::new()),
            failure: Mutex::new(None),
            cut_short: AtomicBool::new(false),
        });
        let weak: Weak<RunShared> = Arc::downgrade(&inner);
        let registration = token.on_cancel(move || {
            if let Some(run) = weak.upgrade() {
                run.close_all();
            }
        });
        Run { inner, started: Instant::now(), registration: Some(registration) }
    }

    /// Joins every task (workers started while joining included) and says
    /// how the run ended.
    pub(crate) async fn finish(mut self) -> Result<PipelineReport, PipelineError> {
        loop {
            let handles = std::mem::take(&mut *lock(&self.inner.handles));
            if handles.is_empty() {
                break;
            }
            for handle in handles {
                // Panics are caught inside the task, so the join error can
                // only be an abort. If this future is dropped mid-join, the
                // guard aborts the task rather than detach it.
                let mut guard = AbortOnDrop(handle);
                let _ = (&mut guard.0).await;
            }
        }
        if let Some(registration) = self.registration.take() {
            registration.stop();
        }
        let report = Box::new(PipelineReport {
            stages: self.inner.shared.stage_reports(),
            dropped_in_flight: self.inner.shared.dropped(),
            elapsed: self.started.elapsed(),
        });
        let failure = lock(&self.inner.failure).take();
        match failure {
            Some(Failure::Error { stage, error }) => Err(PipelineError::Stage { stage, source: error, report }),
            Some(Failure::Panic { stage, message }) => Err(PipelineError::Panicked { stage, message, report }),
            None if self.inner.cut_short.load(Ordering::Relaxed) => {
                let cause = self.inner.token.cause().unwrap_or(conc_core::Cause::Cancelled);
                Err(PipelineError::Cancelled { cause, report })
            }
            None => Ok(*report),
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if self.registration.is_some() {
            // Dropped before being joined (the sink's future was dropped):
            // stop every task now rather than let one outlive its owner.
            self.inner.token.cancel();
            for handle in lock(&self.inner.handles).drain(..) {
                handle.abort();
            }
        }
    }
}

/// Aborts a task whose handle is dropped before it is joined.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The tasks of one stage see the run through this.
#[derive(Clone)]
pub(crate) struct StageCtx {
    pub(crate) run: Arc<RunShared>,
    pub(crate) stats: Arc<StageStats>,
}

impl StageCtx {
    pub(crate) fn new(run: &Arc<RunShared>, stats: &Arc<StageStats>) -> Self {
        StageCtx { run: Arc::clone(run), stats: Arc::clone(stats) }
    }
}
