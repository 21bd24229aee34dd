//! Parallel stages: `map_concurrent` (unordered), `map_ordered` and
//! `partition_by`, each a set of worker tasks fed through an item queue.

use std::collections::VecDeque;
use std::fmt;
use std::future::{self, Future};
use std::hash::{BuildHasher, Hash};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::task::Poll;

use async_channel::{Receiver, Sender, TrySendError};
use conc_core::Cancelled;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::error::{BoxError, BuildError};
use crate::link::{LinkRx, LinkTx};
use crate::policy::{ErrorPolicy, Verdict};
use crate::run::StageCtx;
use crate::stage::Outbox;
use crate::sync::{AtomicUsize, Mutex, Ordering, lock};

type Spawner = Box<dyn Fn() + Send + Sync>;

/// Items queued for the workers of a parallel stage, one channel slot each.
pub(crate) const WORK_QUEUE: usize = 64;

/// The worker count of a parallel stage: a target the caller sets and the
/// number of workers alive.
///
/// Protocol: only `grow` (under the spawner lock) raises `live`, and only
/// while `live < target`; a worker lowers it by retiring only while
/// `live > target`, with a compare-and-swap so two workers cannot both
/// retire the last surplus. So once changes stop, `live` settles at
/// `target` and never below 1 while the stage has input.
pub(crate) struct Ctl {
    target: AtomicUsize,
    live: AtomicUsize,
    /// Starts one worker; `None` once the stage's input has ended. Locked
    /// only to grow or close: a cold path.
    spawner: Mutex<Option<Spawner>>,
}

impl Ctl {
    pub(crate) fn new(target: usize) -> Arc<Self> {
        Arc::new(Ctl { target: AtomicUsize::new(target), live: AtomicUsize::new(0), spawner: Mutex::new(None) })
    }

    pub(crate) fn set_spawner(&self, spawner: Spawner) {
        *lock(&self.spawner) = Some(spawner);
    }

    /// Starts workers until `live` reaches `target`.
    pub(crate) fn grow(&self) {
        let spawner = lock(&self.spawner);
        if let Some(spawn) = spawner.as_ref() {
            while self.live.load(Ordering::Acquire) < self.target.load(Ordering::Acquire) {
                self.live.fetch_add(1, Ordering::AcqRel);
                spawn();
            }
        }
    }

    /// Whether the calling worker should exit because there are more
    /// workers than the target; if so it is no longer counted.
    pub(crate) fn try_retire(&self) -> bool {
        let mut live = self.live.load(Ordering::Acquire);
        loop {
            if live <= self.target.load(Ordering::Acquire) {
                return false;
            }
            match self.live.compare_exchange(live, live - 1, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return true,
                Err(now) => live = now,
            }
        }
    }

    /// Counts a worker started outside `grow` (the fixed set of `partition_by`).
    pub(crate) fn count_started(&self) {
        self.live.fetch_add(1, Ordering::AcqRel);
    }

    /// A worker leaves because its input ended or the run stopped.
    pub(crate) fn exit(&self) {
        self.live.fetch_sub(1, Ordering::AcqRel);
    }

    /// No more workers will be needed: drops the spawner and what it holds.
    pub(crate) fn close(&self) {
        let spawner = lock(&self.spawner).take();
        drop(spawner);
    }

    pub(crate) fn target(&self) -> usize {
        self.target.load(Ordering::Acquire)
    }

    pub(crate) fn live(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    pub(crate) fn set_target(&self, target: usize) {
        self.target.store(target, Ordering::Release);
    }
}

/// Changes the number of workers of a running parallel stage
/// (`map_concurrent`, `map_ordered` and their fallible forms).
///
/// Taken from [`Pipeline::concurrency`](crate::Pipeline::concurrency) right
/// after adding the stage. New workers start at once; surplus workers
/// retire after their current item. Once the stage's input has ended, the
/// setting is recorded but no worker is started.
#[derive(Clone)]
pub struct Concurrency {
    pub(crate) ctl: Arc<Ctl>,
}

impl Concurrency {
    /// Sets the number of workers.
    ///
    /// # Errors
    ///
    /// [`BuildError::ZeroConcurrency`] for 0 (the stage would stall).
    pub fn set_concurrency(&self, workers: usize) -> Result<(), BuildError> {
        if workers == 0 {
            return Err(BuildError::ZeroConcurrency);
        }
        self.ctl.set_target(workers);
        self.ctl.grow();
        Ok(())
    }

    /// The number of workers asked for.
    pub fn concurrency(&self) -> usize {
        self.ctl.target()
    }

    /// The number of workers alive now.
    pub fn live_workers(&self) -> usize {
        self.ctl.live()
    }
}

impl fmt::Debug for Concurrency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Concurrency").field("target", &self.concurrency()).field("live", &self.live_workers()).finish()
    }
}

/// How far ahead of the oldest unfinished item `map_ordered` may run.
pub(crate) struct Window {
    emitted: AtomicU64,
    notify: Notify,
    ctl: Arc<Ctl>,
}

impl Window {
    pub(crate) fn new(ctl: Arc<Ctl>) -> Arc<Self> {
        Arc::new(Window { emitted: AtomicU64::new(0), notify: Notify::new(), ctl })
    }

    /// Items that may be in flight or waiting for reordering: four per
    /// worker and at least 64, so workers keep busy past a slow item and
    /// results can travel in chunks.
    fn size(&self) -> u64 {
        (4 * self.ctl.target()).max(64) as u64
    }

    /// Waits until item `seq` fits in the window; false if the run stopped.
    async fn admit(&self, seq: u64, ctx: &StageCtx) -> bool {
        loop {
            if seq < self.emitted.load(std::sync::atomic::Ordering::Acquire) + self.size() {
                return true;
            }
            if ctx.run.is_cancelled() {
                return false;
            }
            // `notify_one` stores a permit when no one waits, so an
            // emission between the check and this await is not missed.
            self.notify.notified().await;
        }
    }

    fn advance(&self, emitted: u64) {
        self.emitted.store(emitted, std::sync::atomic::Ordering::Release);
        self.notify.notify_one();
    }

    pub(crate) fn wake(&self) {
        self.notify.notify_one();
    }
}

/// A chunk of `map_ordered` results, each tagged with its input's sequence
/// number; `None` for an item skipped after an error, so the sequence has
/// no gap.
pub(crate) type Results<U> = Vec<(u64, Option<U>)>;

/// Results a `map_ordered` worker gathers before sending them on (sooner
/// when it runs out of work).
const RESULTS_CHUNK: usize = 8;

/// Where a worker's results go.
pub(crate) enum WorkerOut<U> {
    /// Straight to the next stage, in completion order.
    Unordered(Outbox<U>),
    /// To the reorder task, in chunks.
    Ordered(Sender<Results<U>>, Results<U>),
}

impl<U> WorkerOut<U> {
    pub(crate) fn ordered(results: Sender<Results<U>>) -> Self {
        WorkerOut::Ordered(results, Vec::with_capacity(RESULTS_CHUNK))
    }

    async fn push(&mut self, seq: u64, value: Option<U>, ctx: &StageCtx) -> Result<(), usize> {
        match self {
            WorkerOut::Unordered(out) => match value {
                Some(value) => out.push(value, &ctx.stats).await,
                None => Ok(()),
            },
            WorkerOut::Ordered(_, buf) => {
                buf.push((seq, value));
                if buf.len() >= RESULTS_CHUNK { self.flush(ctx).await } else { Ok(()) }
            }
        }
    }

    async fn flush(&mut self, ctx: &StageCtx) -> Result<(), usize> {
        match self {
            WorkerOut::Unordered(out) => out.flush(&ctx.stats).await,
            WorkerOut::Ordered(_, buf) if buf.is_empty() => Ok(()),
            WorkerOut::Ordered(tx, buf) => {
                let chunk = std::mem::replace(buf, Vec::with_capacity(RESULTS_CHUNK));
                let sent = match tx.try_send(chunk) {
                    Ok(()) => Ok(()),
                    Err(TrySendError::Closed(chunk)) => Err(chunk),
                    Err(TrySendError::Full(chunk)) => {
                        let started = Instant::now();
                        let sent = tx.send(chunk).await;
                        ctx.stats.add_waiting(started.elapsed());
                        sent.map_err(|refused| refused.into_inner())
                    }
                };
                sent.map_err(|chunk| values(&chunk))
            }
        }
    }

    fn held(&self) -> usize {
        match self {
            WorkerOut::Unordered(out) => out.held(),
            WorkerOut::Ordered(_, buf) => values(buf),
        }
    }
}

/// Results that carry a value (not skipped items).
fn values<U>(results: &Results<U>) -> usize {
    results.iter().filter(|(_, value)| value.is_some()).count()
}

/// One worker: takes items from `work`, runs `f`, hands results on.
pub(crate) async fn worker<T, U, F, Fut>(
    ctx: StageCtx,
    work: Receiver<(u64, T)>,
    mut out: WorkerOut<U>,
    f: Arc<F>,
    policy: ErrorPolicy,
    ctl: Arc<Ctl>,
) where
    F: Fn(T) -> Fut,
    Fut: Future<Output = Result<U, BoxError>>,
{
    let run = &ctx.run;
    // Raced against every call that waits, so that a cancel stops a worker
    // stuck in a call that never ends (a read from a silent pipe) rather
    // than leave the run's join waiting for it.
    let mut cancelled = pin!(run.token.cancelled());
    loop {
        if ctl.try_retire() {
            if let Err(lost) = out.flush(&ctx).await {
                run.drop_items(lost);
            }
            return;
        }
        let (seq, item) = match work.try_recv() {
            Ok(job) => job,
            Err(async_channel::TryRecvError::Empty) => {
                // Nothing else ready: send what is held before waiting.
                if let Err(lost) = out.flush(&ctx).await {
                    run.drop_items(lost);
                    run.abandon_items(&work);
                    ctl.exit();
                    return;
                }
                match work.recv().await {
                    Ok(job) => job,
                    Err(_) => break,
                }
            }
            Err(_) => break,
        };
        if run.is_cancelled() {
            run.drop_items(1 + out.held());
            run.abandon_items(&work);
            ctl.exit();
            return;
        }
        let started = Instant::now();
        let result = call_unless_cancelled(f(item), cancelled.as_mut()).await;
        ctx.stats.add_busy(started.elapsed());
        let Some(result) = result else {
            // The call was dropped with its item.
            run.drop_items(1 + out.held());
            run.abandon_items(&work);
            ctl.exit();
            return;
        };
        let value = match result {
            Ok(value) => Some(value),
            Err(error) => match policy.handle(&ctx, error).await {
                Verdict::Continue => None,
                Verdict::Stop => {
                    run.drop_items(out.held());
                    run.abandon_items(&work);
                    ctl.exit();
                    return;
                }
            },
        };
        if let Err(lost) = out.push(seq, value, &ctx).await {
            run.drop_items(lost);
            run.abandon_items(&work);
            ctl.exit();
            return;
        }
    }
    if run.is_cancelled() {
        run.drop_items(out.held());
    } else if let Err(lost) = out.flush(&ctx).await {
        run.drop_items(lost);
    }
    ctl.exit();
}

/// Awaits `call`, or `None` if the run is cancelled while it waits. The
/// call is polled first, so a call ready at once never touches the token.
async fn call_unless_cancelled<F: Future>(call: F, mut cancelled: Pin<&mut Cancelled<'_>>) -> Option<F::Output> {
    let mut call = pin!(call);
    future::poll_fn(|cx| match call.as_mut().poll(cx) {
        Poll::Ready(output) => Poll::Ready(Some(output)),
        Poll::Pending => cancelled.as_mut().poll(cx).map(|()| None),
    })
    .await
}

/// Sends one job to the workers, timing a wait for room. False if the
/// queue is closed (the run stopped).
async fn send_job<T>(ctx: &StageCtx, work: &Sender<T>, job: T) -> bool {
    match work.try_send(job) {
        Ok(()) => true,
        Err(TrySendError::Closed(_)) => false,
        Err(TrySendError::Full(job)) => {
            let started = Instant::now();
            let sent = work.send(job).await;
            ctx.stats.add_waiting(started.elapsed());
            sent.is_ok()
        }
    }
}

/// The next chunk of a feeding task's input, counted in; `None` once the
/// input has ended, or once the run is cancelled (the chunk received then
/// and those still queued are counted as dropped).
async fn next_chunk<T>(ctx: &StageCtx, input: &LinkRx<T>) -> Option<Vec<T>> {
    let run = &ctx.run;
    let Ok(chunk) = input.rx.recv().await else {
        if run.is_cancelled() {
            run.stopped_early();
        }
        return None;
    };
    if run.is_cancelled() {
        run.drop_items(chunk.len());
        run.abandon_chunks(&input.rx);
        return None;
    }
    ctx.stats.add_in(chunk.len());
    Some(chunk)
}

/// Feeds the workers of `map_concurrent` / `map_ordered` one item at a time,
/// numbering items for the reorder task, and closes the worker set when the
/// input ends.
pub(crate) async fn dispatch<T>(
    ctx: StageCtx,
    input: LinkRx<T>,
    work: Sender<(u64, T)>,
    ctl: Arc<Ctl>,
    window: Option<Arc<Window>>,
) {
    let run = &ctx.run;
    ctl.grow();
    let mut seq = 0_u64;
    'input: loop {
        let Some(chunk) = next_chunk(&ctx, &input).await else {
            break;
        };
        let mut items = chunk.into_iter();
        while let Some(item) = items.next() {
            if let Some(window) = &window
                && !window.admit(seq, &ctx).await
            {
                run.drop_items(1 + items.len());
                run.abandon_chunks(&input.rx);
                break 'input;
            }
            if !send_job(&ctx, &work, (seq, item)).await {
                run.drop_items(1 + items.len());
                run.abandon_chunks(&input.rx);
                break 'input;
            }
            seq += 1;
        }
    }
    ctl.close();
}

/// Emits `map_ordered` results in input order, holding early ones until
/// the items before them are done.
pub(crate) async fn reorder<U>(ctx: StageCtx, results: Receiver<Results<U>>, output: LinkTx<U>, window: Arc<Window>) {
    let run = &ctx.run;
    let mut out = Outbox::new(output);
    let mut pending: VecDeque<Option<Option<U>>> = VecDeque::new();
    let mut next = 0_u64;
    loop {
        let Ok(chunk) = results.recv().await else {
            if run.is_cancelled() {
                run.stopped_early();
            }
            break;
        };
        if run.is_cancelled() {
            run.drop_items(values(&chunk) + waiting(&pending) + out.held());
            run.abandon_chunks_of(&results, values);
            return;
        }
        for (seq, value) in chunk {
            // The window keeps `seq - next` below its size.
            let slot = usize::try_from(seq - next).unwrap_or(usize::MAX);
            if pending.len() <= slot {
                pending.resize_with(slot + 1, || None);
            }
            pending[slot] = Some(value);
        }
        let before = next;
        while let Some(Some(_)) = pending.front() {
            let ready = pending.pop_front().flatten().flatten();
            next += 1;
            if let Some(value) = ready
                && let Err(lost) = out.push(value, &ctx.stats).await
            {
                run.drop_items(lost + waiting(&pending));
                run.abandon_chunks_of(&results, values);
                return;
            }
        }
        if next != before {
            window.advance(next);
        }
        if results.is_empty()
            && let Err(lost) = out.flush(&ctx.stats).await
        {
            run.drop_items(lost + waiting(&pending));
            run.abandon_chunks_of(&results, values);
            return;
        }
    }
    // Results still waiting for an earlier one can remain only if the run
    // was cut short.
    run.drop_items_if_any(waiting(&pending));
    if let Err(lost) = out.flush(&ctx.stats).await {
        run.drop_items(lost);
    }
}

/// Results held for reordering.
fn waiting<U>(pending: &VecDeque<Option<Option<U>>>) -> usize {
    pending.iter().filter(|slot| matches!(slot, Some(Some(_)))).count()
}

/// Routes each item of `partition_by` to the worker its key hashes to.
pub(crate) async fn route<T, Q, K, H>(ctx: StageCtx, input: LinkRx<T>, queues: Vec<Sender<(u64, T)>>, key: K, hasher: H)
where
    K: Fn(&T) -> Q,
    Q: Hash,
    H: BuildHasher,
{
    let run = &ctx.run;
    let workers = queues.len() as u64;
    'input: loop {
        let Some(chunk) = next_chunk(&ctx, &input).await else {
            break;
        };
        let mut items = chunk.into_iter();
        while let Some(item) = items.next() {
            let hash = hasher.hash_one(key(&item));
            let index = usize::try_from(hash % workers).unwrap_or(0);
            if !send_job(&ctx, &queues[index], (0, item)).await {
                run.drop_items(1 + items.len());
                run.abandon_chunks(&input.rx);
                break 'input;
            }
        }
    }
}
