//! The [`Pipeline`] builder: sources and stages.

use std::fmt;
use std::future::{self, Future};
use std::hash::{BuildHasherDefault, DefaultHasher, Hash};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conc_core::Token;
use conc_core::channel::Receiver;
use futures_core::Stream;

use crate::error::{BoxError, BuildError};
use crate::link::{DEFAULT_CAPACITY, Feed, LinkRx, LinkTx, link, link_fed};
use crate::parallel::{Concurrency, Ctl, Results, WORK_QUEUE, Window, WorkerOut, dispatch, reorder, route, worker};
use crate::policy::ErrorPolicy;
use crate::report::{Progress, StageStats};
use crate::run::{RunShared, Shared, StageCtx};
use crate::source::{self, Emitter};
use crate::stage::{Outbox, batch_stage, sequential_stage};
use crate::sync::lock_std as lock;

/// Starts every stage of a pipeline for one run and returns the receiver
/// of its last stage's output link, of the capacity given.
pub(crate) type StartFn<T> = Box<dyn FnOnce(&Arc<RunShared>, usize) -> LinkRx<T> + Send>;

/// What the builder keeps about one stage for later settings.
pub(crate) struct StageMeta {
    pub(crate) stats: Arc<StageStats>,
    /// Set by `on_error` before the run: cold.
    policy: Mutex<Option<ErrorPolicy>>,
    concurrency: Option<Concurrency>,
}

impl StageMeta {
    fn new(stats: Arc<StageStats>, concurrency: Option<Concurrency>) -> Arc<Self> {
        Arc::new(StageMeta { stats, policy: Mutex::new(None), concurrency })
    }

    /// The stage's own policy, else the pipeline's.
    fn policy(&self, shared: &Shared) -> ErrorPolicy {
        lock(&self.policy).clone().unwrap_or_else(|| shared.policy())
    }
}

/// A typed pipeline: a source, then stages, each running as its own tokio
/// task(s), connected by bounded channels; consumed by a sink
/// ([`collect`](Pipeline::collect), [`for_each`](Pipeline::for_each),
/// [`fold`](Pipeline::fold), [`run`](Pipeline::run),
/// [`into_stream`](Pipeline::into_stream)).
///
/// Building starts nothing: the tasks are spawned when a sink runs, under a
/// child of the pipeline's [`Token`], and the sink joins every one of them
/// before it returns. See the [crate documentation](crate) for the model.
pub struct Pipeline<T> {
    pub(crate) shared: Arc<Shared>,
    pub(crate) start: StartFn<T>,
    /// Capacity of the last stage's output link.
    pub(crate) capacity: usize,
    last: Arc<StageMeta>,
}

impl<T> fmt::Debug for Pipeline<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stages: Vec<String> = self.shared.stage_reports().into_iter().map(|stage| stage.name).collect();
        f.debug_struct("Pipeline").field("stages", &stages).field("capacity", &self.capacity).finish()
    }
}

fn check_capacity(capacity: usize) -> Result<(), BuildError> {
    if capacity == 0 { Err(BuildError::ZeroCapacity) } else { Ok(()) }
}

impl<T: Send + 'static> Pipeline<T> {
    fn source<B, Fut>(name: &str, body: B) -> Self
    where
        B: FnOnce(StageCtx, LinkTx<T>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let shared = Shared::new(Token::new());
        let meta = StageMeta::new(shared.add_stage(name), None);
        let stats = Arc::clone(&meta.stats);
        let start: StartFn<T> = Box::new(move |run, capacity| {
            let (tx, rx) = link(run, capacity);
            run.spawn(&stats, body(StageCtx::new(run, &stats), tx));
            rx
        });
        Pipeline { shared, start, capacity: DEFAULT_CAPACITY, last: meta }
    }

    /// A pipeline fed by an iterator, which runs inside the source task.
    #[allow(
        clippy::should_implement_trait,
        reason = "the iterator runs in a task, so it must be Send + 'static, which FromIterator cannot ask for"
    )]
    pub fn from_iter<I>(iter: I) -> Self
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: Send + 'static,
    {
        let iter = iter.into_iter();
        Self::source("source", move |ctx, tx| source::from_iter(ctx, iter, tx))
    }

    /// A pipeline fed by a stream (`futures_core::Stream`, so any
    /// futures, tokio-stream or futures-lite stream).
    pub fn from_stream<S>(stream: S) -> Self
    where
        S: Stream<Item = T> + Send + 'static,
    {
        Self::source("source", move |ctx, tx| source::from_stream(ctx, stream, tx))
    }

    /// A pipeline fed by any `conc_core` channel receiver (the `conc_core`
    /// MPMC channel, or tokio's mpsc); it ends when the channel closes.
    pub fn from_receiver<R>(receiver: R) -> Self
    where
        R: Receiver<T> + 'static,
    {
        Self::source("source", move |ctx, tx| source::from_receiver(ctx, receiver, tx))
    }

    /// A pipeline fed by a generator function: Go's generator goroutine. It
    /// gets an [`Emitter`] to send items with and the run's [`Token`]; the
    /// source ends when the function returns. If the run is cancelled the
    /// function's future is dropped at its next await.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_pipeline::Pipeline;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let evens = Pipeline::generate(|out, _token| async move {
    ///     for n in 0.. {
    ///         if n == 10 || out.send(n * 2).await.is_err() {
    ///             return;
    ///         }
    ///     }
    /// });
    /// assert_eq!(evens.collect().await.unwrap(), vec![0, 2, 4, 6, 8, 10, 12, 14, 16, 18]);
    /// # }
    /// ```
    pub fn generate<F, Fut>(generator: F) -> Self
    where
        F: FnOnce(Emitter<T>, Token) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self::source("generate", move |ctx, tx| source::generate(ctx, generator, tx))
    }

    /// Fan-in: one pipeline carrying the items of every part, in the order
    /// they arrive (Go's `merge`). Each part keeps its stages, capacities and
    /// error policies; the merged pipeline's token (see
    /// [`with_token`](Pipeline::with_token)) governs them all, and its report
    /// lists the parts' stages followed by a `merge` stage.
    pub fn merge<P>(parts: P) -> Self
    where
        P: IntoIterator<Item = Pipeline<T>>,
    {
        let shared = Shared::new(Token::new());
        let parts: Vec<Pipeline<T>> = parts.into_iter().collect();
        for part in &parts {
            shared.adopt_stages(&part.shared);
        }
        let meta = StageMeta::new(shared.add_stage("merge"), None);
        let stats = Arc::clone(&meta.stats);
        let start: StartFn<T> = Box::new(move |run, capacity| {
            let (tx, rx) = link(run, capacity);
            for part in parts {
                let input = (part.start)(run, part.capacity);
                let ctx = StageCtx::new(run, &stats);
                run.spawn(
                    &stats,
                    sequential_stage(ctx, input, tx.clone(), ErrorPolicy::Skip, |item| {
                        future::ready(Ok::<_, BoxError>(Some(item)))
                    }),
                );
            }
            rx
        });
        Pipeline { shared, start, capacity: DEFAULT_CAPACITY, last: meta }
    }

    /// Registers a stage that has no start function of its own (`tee`).
    pub(crate) fn add_stage_meta(&self, name: &str) -> Arc<StageMeta> {
        StageMeta::new(self.shared.add_stage(name), None)
    }

    pub(crate) fn from_parts(shared: Arc<Shared>, start: StartFn<T>, last: Arc<StageMeta>) -> Self {
        Pipeline { shared, start, capacity: DEFAULT_CAPACITY, last }
    }

    /// Adds a stage whose `body` spawns its task(s) for a run.
    pub(crate) fn add_stage<U, B>(self, name: &str, concurrency: Option<Concurrency>, body: B) -> Pipeline<U>
    where
        U: Send + 'static,
        B: FnOnce(&Arc<RunShared>, StageCtx, LinkRx<T>, LinkTx<U>, ErrorPolicy) + Send + 'static,
    {
        self.add_stage_with(name, concurrency, Feed::Task, body)
    }

    /// [`add_stage`](Self::add_stage) for a stage whose output is fed by
    /// `feed` (the workers of a parallel stage).
    fn add_stage_with<U, B>(self, name: &str, concurrency: Option<Concurrency>, feed: Feed, body: B) -> Pipeline<U>
    where
        U: Send + 'static,
        B: FnOnce(&Arc<RunShared>, StageCtx, LinkRx<T>, LinkTx<U>, ErrorPolicy) + Send + 'static,
    {
        let meta = StageMeta::new(self.shared.add_stage(name), concurrency);
        let stage = Arc::clone(&meta);
        let shared = Arc::clone(&self.shared);
        let upstream = self.start;
        let upstream_capacity = self.capacity;
        let start: StartFn<U> = Box::new(move |run, capacity| {
            let input = upstream(run, upstream_capacity);
            let (tx, rx) = link_fed(run, capacity, feed);
            let policy = stage.policy(&shared);
            body(run, StageCtx::new(run, &stage.stats), input, tx, policy);
            rx
        });
        Pipeline { shared: self.shared, start, capacity: DEFAULT_CAPACITY, last: meta }
    }

    /// A one-task stage turning each item into zero or more.
    fn sequential<U, I, S>(self, name: &str, mut step: S) -> Pipeline<U>
    where
        U: Send + 'static,
        S: FnMut(T) -> Result<I, BoxError> + Send + 'static,
        I: IntoIterator<Item = U> + Send + 'static,
        I::IntoIter: Send,
    {
        self.sequential_async(name, move |item| future::ready(step(item)))
    }

    /// [`sequential`](Self::sequential) with an async step, awaited one
    /// item at a time.
    fn sequential_async<U, I, S, Fut>(self, name: &str, step: S) -> Pipeline<U>
    where
        U: Send + 'static,
        S: FnMut(T) -> Fut + Send + 'static,
        Fut: Future<Output = Result<I, BoxError>> + Send + 'static,
        I: IntoIterator<Item = U> + Send + 'static,
        I::IntoIter: Send,
    {
        self.add_stage(name, None, move |run, ctx, input, output, policy| {
            let stats = Arc::clone(&ctx.stats);
            run.spawn(&stats, sequential_stage(ctx, input, output, policy, step));
        })
    }

    /// Sets the capacity (in items) of the channel after the last stage
    /// added (or after the source). The default is [`DEFAULT_CAPACITY`](crate::DEFAULT_CAPACITY) (1024);
    /// lower it for large items.
    ///
    /// Items move between stages in chunks of up to `min(capacity, 256)`
    /// (`min(capacity, 64) / workers` after an unordered parallel stage);
    /// the items a pipeline holds are bounded by the sum of its capacities
    /// plus at most one input and one output chunk in each stage's hands.
    ///
    /// # Errors
    ///
    /// [`BuildError::ZeroCapacity`]: rendezvous channels are not supported.
    pub fn capacity(mut self, capacity: usize) -> Result<Self, BuildError> {
        check_capacity(capacity)?;
        self.capacity = capacity;
        Ok(self)
    }

    /// Names the last stage added, for the report and [`Progress`].
    pub fn named(self, name: impl Into<String>) -> Self {
        self.last.stats.rename(name.into());
        self
    }

    /// Sets the error policy of the last stage added (used if it is
    /// fallible), overriding the pipeline's.
    pub fn on_error(self, policy: ErrorPolicy) -> Self {
        *lock(&self.last.policy) = Some(policy);
        self
    }

    /// Sets the error policy of every fallible stage that has none of its
    /// own (default [`ErrorPolicy::FailFast`]).
    pub fn error_policy(self, policy: ErrorPolicy) -> Self {
        self.shared.set_policy(policy);
        self
    }

    /// Runs the pipeline under `token`: cancelling it (or a parent) stops
    /// every stage; the run itself uses a child, so a failure inside the
    /// pipeline never cancels `token`.
    pub fn with_token(self, token: Token) -> Self {
        self.shared.set_token(token);
        self
    }

    /// The token the pipeline runs under (a fresh one unless
    /// [`with_token`](Pipeline::with_token) set it): cancel it to stop the run.
    pub fn token(&self) -> Token {
        self.shared.token()
    }

    /// A live view of every stage's counters, valid during and after the run.
    pub fn progress(&self) -> Progress {
        Progress { shared: Arc::clone(&self.shared) }
    }

    /// The worker-count control of the last stage added, if it is a
    /// `map_concurrent` or `map_ordered` stage (or a fallible form).
    pub fn concurrency(&self) -> Option<Concurrency> {
        self.last.concurrency.clone()
    }

    /// Applies `f` to every item.
    pub fn map<U, F>(self, mut f: F) -> Pipeline<U>
    where
        U: Send + 'static,
        F: FnMut(T) -> U + Send + 'static,
    {
        self.sequential("map", move |item| Ok::<_, BoxError>(Some(f(item))))
    }

    /// Keeps the items for which `f` returns true.
    pub fn filter<F>(self, mut f: F) -> Pipeline<T>
    where
        F: FnMut(&T) -> bool + Send + 'static,
    {
        self.sequential("filter", move |item| Ok::<_, BoxError>(f(&item).then_some(item)))
    }

    /// Applies `f` to every item and keeps the `Some` results.
    pub fn filter_map<U, F>(self, f: F) -> Pipeline<U>
    where
        U: Send + 'static,
        F: FnMut(T) -> Option<U> + Send + 'static,
    {
        let mut f = f;
        self.sequential("filter_map", move |item| Ok::<_, BoxError>(f(item)))
    }

    /// Replaces every item with the items `f` returns for it.
    pub fn flat_map<U, I, F>(self, mut f: F) -> Pipeline<U>
    where
        U: Send + 'static,
        I: IntoIterator<Item = U> + Send + 'static,
        I::IntoIter: Send,
        F: FnMut(T) -> I + Send + 'static,
    {
        self.sequential("flat_map", move |item| Ok::<_, BoxError>(f(item)))
    }

    /// Calls `f` on every item and passes it on unchanged.
    pub fn inspect<F>(self, mut f: F) -> Pipeline<T>
    where
        F: FnMut(&T) + Send + 'static,
    {
        self.sequential("inspect", move |item| {
            f(&item);
            Ok::<_, BoxError>(Some(item))
        })
    }

    /// Adds a pass-through stage with a channel of `capacity` items after
    /// it: room for a bursty producer to run ahead of a slower consumer.
    ///
    /// # Errors
    ///
    /// [`BuildError::ZeroCapacity`] for 0.
    pub fn buffer(self, capacity: usize) -> Result<Pipeline<T>, BuildError> {
        check_capacity(capacity)?;
        self.sequential("buffer", |item| Ok::<_, BoxError>(Some(item))).capacity(capacity)
    }

    /// Groups items into `Vec`s of `size`; a partial batch is sent once its
    /// first item has waited `max_wait` (by tokio's clock), and at the end.
    ///
    /// Downstream of a batch stage a batch counts as one item (in
    /// capacities and in the report).
    ///
    /// # Errors
    ///
    /// [`BuildError::ZeroBatchSize`] for a size of 0.
    pub fn batch(self, size: usize, max_wait: Duration) -> Result<Pipeline<Vec<T>>, BuildError> {
        if size == 0 {
            return Err(BuildError::ZeroBatchSize);
        }
        Ok(self.add_stage("batch", None, move |run, ctx, input, output, _policy| {
            let stats = Arc::clone(&ctx.stats);
            run.spawn(&stats, batch_stage(ctx, input, output, size, max_wait));
        }))
    }

    /// Flattens batches (or any iterable items) back into single items.
    pub fn unbatch<U>(self) -> Pipeline<U>
    where
        U: Send + 'static,
        T: IntoIterator<Item = U>,
        T::IntoIter: Send,
    {
        self.sequential("unbatch", Ok::<T, BoxError>)
    }

    /// Applies a fallible `f`; errors go to the stage's [`ErrorPolicy`].
    pub fn try_map<U, E, F>(self, mut f: F) -> Pipeline<U>
    where
        U: Send + 'static,
        E: Into<BoxError>,
        F: FnMut(T) -> Result<U, E> + Send + 'static,
    {
        self.sequential("try_map", move |item| f(item).map(Some).map_err(Into::into))
    }

    /// Applies a fallible `f` and keeps the `Ok(Some)` results; errors go to
    /// the stage's [`ErrorPolicy`].
    pub fn try_filter_map<U, E, F>(self, mut f: F) -> Pipeline<U>
    where
        U: Send + 'static,
        E: Into<BoxError>,
        F: FnMut(T) -> Result<Option<U>, E> + Send + 'static,
    {
        self.sequential("try_filter_map", move |item| f(item).map_err(Into::into))
    }

    /// Keeps the items for which a fallible `f` returns `Ok(true)`; errors
    /// go to the stage's [`ErrorPolicy`] (the item is dropped with them).
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_pipeline::{ErrorPolicy, Pipeline};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let lines = ["7", "x", "12", "30"];
    /// let small = Pipeline::from_iter(lines)
    ///     .try_filter(|line| line.parse::<u32>().map(|n| n < 20))
    ///     .on_error(ErrorPolicy::Skip) // "x" is counted and dropped
    ///     .collect()
    ///     .await
    ///     .unwrap();
    /// assert_eq!(small, ["7", "12"]);
    /// # }
    /// ```
    pub fn try_filter<E, F>(self, mut f: F) -> Pipeline<T>
    where
        E: Into<BoxError>,
        F: FnMut(&T) -> Result<bool, E> + Send + 'static,
    {
        self.sequential("try_filter", move |item| match f(&item) {
            Ok(keep) => Ok(keep.then_some(item)),
            Err(error) => Err(error.into()),
        })
    }

    /// Replaces every item with the items a fallible `f` returns for it;
    /// errors go to the stage's [`ErrorPolicy`] (the item yields nothing).
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_pipeline::{ErrorPolicy, Pipeline};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let rows = ["1,2", "3,x", "4"];
    /// let numbers = Pipeline::from_iter(rows)
    ///     .try_flat_map(|row| row.split(',').map(str::parse::<u32>).collect::<Result<Vec<_>, _>>())
    ///     .on_error(ErrorPolicy::Skip) // the whole row "3,x" is dropped
    ///     .collect()
    ///     .await
    ///     .unwrap();
    /// assert_eq!(numbers, [1, 2, 4]);
    /// # }
    /// ```
    pub fn try_flat_map<U, I, E, F>(self, mut f: F) -> Pipeline<U>
    where
        U: Send + 'static,
        I: IntoIterator<Item = U> + Send + 'static,
        I::IntoIter: Send,
        E: Into<BoxError>,
        F: FnMut(T) -> Result<I, E> + Send + 'static,
    {
        self.sequential("try_flat_map", move |item| f(item).map_err(Into::into))
    }

    /// Awaits the async `f` on every item, one at a time and in input order,
    /// in the stage's own task (`StreamExt::then`, as a pipeline stage). For
    /// a sequential async step this is cheaper than
    /// [`map_concurrent(1, f)`](Pipeline::map_concurrent): no feeding task
    /// and no per-item queue, and `f` may be `FnMut`.
    ///
    /// Results travel on in chunks, like every stage's; while `f` waits,
    /// results already done are sent on once they have waited about a
    /// millisecond (sooner sends would cost a consumer wake-up per item when
    /// `f` only waits briefly), unless the next stage's channel is full and
    /// its consumer busy anyway. Cancelling the run drops the item whose `f`
    /// is waiting (counted in
    /// [`dropped_in_flight`](crate::PipelineReport::dropped_in_flight)).
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_pipeline::Pipeline;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let mut calls = 0;
    /// let out = Pipeline::from_iter(1..=3)
    ///     .then(move |n| {
    ///         calls += 1; // FnMut: state across calls
    ///         async move {
    ///             tokio::task::yield_now().await; // stands for an I/O call
    ///             n * 10 + calls
    ///         }
    ///     })
    ///     .collect()
    ///     .await
    ///     .unwrap();
    /// assert_eq!(out, [11, 22, 33]);
    /// # }
    /// ```
    pub fn then<U, F, Fut>(self, mut f: F) -> Pipeline<U>
    where
        U: Send + 'static,
        F: FnMut(T) -> Fut + Send + 'static,
        Fut: Future<Output = U> + Send + 'static,
    {
        self.sequential_async("then", move |item| {
            let call = f(item);
            async move { Ok::<_, BoxError>(Some(call.await)) }
        })
    }

    /// The fallible form of [`then`](Pipeline::then); errors go to the
    /// stage's [`ErrorPolicy`].
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_pipeline::{ErrorPolicy, Pipeline};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let (errors_tx, errors_rx) = conc_core::channel::unbounded();
    /// let stored = Pipeline::from_iter(1..=5)
    ///     .try_then(|n| async move { if n == 3 { Err("disk full") } else { Ok(n) } })
    ///     .on_error(ErrorPolicy::SideOutput(errors_tx)) // failures go aside
    ///     .collect()
    ///     .await
    ///     .unwrap();
    /// assert_eq!(stored, [1, 2, 4, 5]);
    /// assert_eq!(errors_rx.try_recv().unwrap().to_string(), "stage `try_then` failed: disk full");
    /// # }
    /// ```
    pub fn try_then<U, E, F, Fut>(self, mut f: F) -> Pipeline<U>
    where
        U: Send + 'static,
        E: Into<BoxError>,
        F: FnMut(T) -> Fut + Send + 'static,
        Fut: Future<Output = Result<U, E>> + Send + 'static,
    {
        self.sequential_async("try_then", move |item| {
            let call = f(item);
            async move { call.await.map(Some).map_err(Into::into) }
        })
    }

    fn parallel<U, G, Fut>(self, name: &str, workers: usize, ordered: bool, g: G) -> Result<Pipeline<U>, BuildError>
    where
        U: Send + 'static,
        G: Fn(T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<U, BoxError>> + Send + 'static,
    {
        if workers == 0 {
            return Err(BuildError::ZeroConcurrency);
        }
        let ctl = Ctl::new(workers);
        let concurrency = Concurrency { ctl: Arc::clone(&ctl) };
        let g = Arc::new(g);
        // An ordered stage's output comes from its one reorder task.
        let feed = if ordered { Feed::Task } else { Feed::Workers(workers) };
        Ok(self.add_stage_with(name, Some(concurrency), feed, move |run, ctx, input, output, policy| {
            let queue = WORK_QUEUE;
            let (work_tx, work_rx) = async_channel::bounded::<(u64, T)>(queue);
            run.close_on_cancel(&work_tx);
            let stats = Arc::clone(&ctx.stats);
            let (template, window) = if ordered {
                let (results_tx, results_rx) = async_channel::bounded(queue);
                run.close_on_cancel(&results_tx);
                let window = Window::new(Arc::clone(&ctl));
                let wake = Arc::clone(&window);
                run.on_cancel(move || wake.wake());
                run.spawn(&stats, reorder(ctx.clone(), results_rx, output, Arc::clone(&window)));
                (Template::Ordered(results_tx), Some(window))
            } else {
                (Template::Unordered(output), None)
            };
            let weak = Arc::downgrade(&ctl);
            let spawn_run = Arc::clone(run);
            let spawn_ctx = ctx.clone();
            ctl.set_spawner(Box::new(move || {
                let Some(ctl) = weak.upgrade() else { return };
                let out = match &template {
                    Template::Unordered(link) => WorkerOut::Unordered(Outbox::new(link.clone())),
                    Template::Ordered(results) => WorkerOut::ordered(results.clone()),
                };
                let task = worker(spawn_ctx.clone(), work_rx.clone(), out, Arc::clone(&g), policy.clone(), ctl);
                spawn_run.spawn(&spawn_ctx.stats, task);
            }));
            run.spawn(&stats, dispatch(ctx, input, work_tx, ctl, window));
        }))
    }

    /// Fan-out/fan-in: runs the async `f` on up to `workers` items at once,
    /// each worker its own task, and emits results as they complete
    /// (unordered). Workers keep going while the consumer is busy, up to the
    /// output capacity. Change the worker count while it runs through
    /// [`concurrency`](Pipeline::concurrency).
    ///
    /// # Errors
    ///
    /// [`BuildError::ZeroConcurrency`] for 0 workers.
    pub fn map_concurrent<U, F, Fut>(self, workers: usize, f: F) -> Result<Pipeline<U>, BuildError>
    where
        U: Send + 'static,
        F: Fn(T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = U> + Send + 'static,
    {
        self.parallel("map_concurrent", workers, false, move |item| {
            let future = f(item);
            async move { Ok::<U, BoxError>(future.await) }
        })
    }

    /// Like [`map_concurrent`](Pipeline::map_concurrent), but emits results
    /// in input order. A slow item holds back the ones after it; to bound
    /// the memory this takes, the stage never runs more than
    /// `max(4 × workers, 64)` items ahead of the oldest unfinished one.
    ///
    /// # Errors
    ///
    /// [`BuildError::ZeroConcurrency`] for 0 workers.
    pub fn map_ordered<U, F, Fut>(self, workers: usize, f: F) -> Result<Pipeline<U>, BuildError>
    where
        U: Send + 'static,
        F: Fn(T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = U> + Send + 'static,
    {
        self.parallel("map_ordered", workers, true, move |item| {
            let future = f(item);
            async move { Ok::<U, BoxError>(future.await) }
        })
    }

    /// The fallible form of [`map_concurrent`](Pipeline::map_concurrent);
    /// errors go to the stage's [`ErrorPolicy`].
    ///
    /// # Errors
    ///
    /// [`BuildError::ZeroConcurrency`] for 0 workers.
    pub fn try_map_concurrent<U, E, F, Fut>(self, workers: usize, f: F) -> Result<Pipeline<U>, BuildError>
    where
        U: Send + 'static,
        E: Into<BoxError>,
        F: Fn(T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<U, E>> + Send + 'static,
    {
        self.parallel("try_map_concurrent", workers, false, move |item| {
            let future = f(item);
            async move { future.await.map_err(Into::into) }
        })
    }

    /// The fallible form of [`map_ordered`](Pipeline::map_ordered); errors
    /// go to the stage's [`ErrorPolicy`] (a skipped item leaves no gap).
    ///
    /// # Errors
    ///
    /// [`BuildError::ZeroConcurrency`] for 0 workers.
    pub fn try_map_ordered<U, E, F, Fut>(self, workers: usize, f: F) -> Result<Pipeline<U>, BuildError>
    where
        U: Send + 'static,
        E: Into<BoxError>,
        F: Fn(T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<U, E>> + Send + 'static,
    {
        self.parallel("try_map_ordered", workers, true, move |item| {
            let future = f(item);
            async move { future.await.map_err(Into::into) }
        })
    }

    /// Runs the async `f` on `workers` workers, routing each item by the
    /// hash of `key(&item)`: items with equal keys go to the same worker, so
    /// they are processed and emitted in input order relative to each
    /// other; items with different keys run in parallel.
    ///
    /// # Errors
    ///
    /// [`BuildError::ZeroConcurrency`] for 0 workers.
    pub fn partition_by<U, Q, K, F, Fut>(self, key: K, workers: usize, f: F) -> Result<Pipeline<U>, BuildError>
    where
        U: Send + 'static,
        Q: Hash + 'static,
        K: Fn(&T) -> Q + Send + 'static,
        F: Fn(T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = U> + Send + 'static,
    {
        self.partitioned("partition_by", key, workers, move |item| {
            let future = f(item);
            async move { Ok::<U, BoxError>(future.await) }
        })
    }

    /// The fallible form of [`partition_by`](Pipeline::partition_by); errors
    /// go to the stage's [`ErrorPolicy`]. A skipped item leaves the order of
    /// the other items of its key unchanged.
    ///
    /// # Errors
    ///
    /// [`BuildError::ZeroConcurrency`] for 0 workers.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_pipeline::{ErrorPolicy, Pipeline};
    ///
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// // (account, amount): each account's updates stay in order.
    /// let updates = [(1, 10), (2, 5), (1, -20), (2, 7), (1, 4)];
    /// let applied = Pipeline::from_iter(updates)
    ///     .try_partition_by(|(account, _)| *account, 2, |(account, amount)| async move {
    ///         if amount < 0 { Err(format!("account {account}: negative amount")) } else { Ok((account, amount)) }
    ///     })?
    ///     .on_error(ErrorPolicy::Skip)
    ///     .collect()
    ///     .await?;
    /// let account_1: Vec<i32> = applied.iter().filter(|(a, _)| *a == 1).map(|(_, n)| *n).collect();
    /// assert_eq!(account_1, [10, 4]);
    /// assert_eq!(applied.len(), 4);
    /// # Ok(())
    /// # }
    /// ```
    pub fn try_partition_by<U, E, Q, K, F, Fut>(self, key: K, workers: usize, f: F) -> Result<Pipeline<U>, BuildError>
    where
        U: Send + 'static,
        E: Into<BoxError>,
        Q: Hash + 'static,
        K: Fn(&T) -> Q + Send + 'static,
        F: Fn(T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<U, E>> + Send + 'static,
    {
        self.partitioned("try_partition_by", key, workers, move |item| {
            let future = f(item);
            async move { future.await.map_err(Into::into) }
        })
    }

    fn partitioned<U, Q, K, G, Fut>(self, name: &str, key: K, workers: usize, g: G) -> Result<Pipeline<U>, BuildError>
    where
        U: Send + 'static,
        Q: Hash + 'static,
        K: Fn(&T) -> Q + Send + 'static,
        G: Fn(T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<U, BoxError>> + Send + 'static,
    {
        if workers == 0 {
            return Err(BuildError::ZeroConcurrency);
        }
        let g = Arc::new(g);
        Ok(self.add_stage_with(name, None, Feed::Workers(workers), move |run, ctx, input, output, policy| {
            // A fixed worker set: keys must keep their worker.
            let ctl = Ctl::new(workers);
            let mut queues = Vec::with_capacity(workers);
            for _ in 0..workers {
                let (tx, rx) = async_channel::bounded::<(u64, T)>(WORK_QUEUE);
                run.close_on_cancel(&tx);
                queues.push(tx);
                ctl.count_started();
                let out = WorkerOut::Unordered(Outbox::new(output.clone()));
                run.spawn(&ctx.stats, worker(ctx.clone(), rx, out, Arc::clone(&g), policy.clone(), Arc::clone(&ctl)));
            }
            drop(output);
            let stats = Arc::clone(&ctx.stats);
            // A fixed hasher: the same key goes to the same worker in every run,
            // which makes runs reproducible.
            run.spawn(&stats, route(ctx, input, queues, key, BuildHasherDefault::<DefaultHasher>::default()));
        }))
    }
}

/// What each new worker of a parallel stage is given to send results to.
enum Template<U> {
    Unordered(LinkTx<U>),
    Ordered(async_channel::Sender<Results<U>>),
}
