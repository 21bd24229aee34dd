//! The machinery both pool kinds share: admission, the queue, worker
//! accounting, and the close / join / shutdown sequence.
//!
//! The hot path (admit, push, pop, finish) touches the gate word, the
//! queue and a few counters, all atomics; locks are taken only on cold
//! paths (thread handles, inputs handed back by a shutdown).

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use conc_core::{Clock, TaskCounter, Token};
use event_listener::Event;
use futures_lite::future;

use crate::builder::Builder;
use crate::error::{AnyJob, SubmitError};
use crate::gate::{Gate, Refused};
use crate::job::{JobId, Outcome, Returned};
use crate::queue::{Empty, Queue};
use crate::shutdown::ShutdownReport;
use crate::stats::{Counters, Stats};

impl<E: ?Sized + Entry> Drop for Core<E> {
    /// Jobs can be left queued only if every worker died under the pool
    /// (its runtime shut down): their handles get them back unrun rather
    /// than waiting for nothing.
    fn drop(&mut self) {
        while let Ok(entry) = self.queue.try_pop() {
            drop(entry.not_run());
        }
    }
}

/// A queued job, whatever its kind.
pub(crate) trait Entry: Send + Sync + 'static {
    /// Gives the job back unrun: its outcome, and its input when its
    /// handle is gone and the input must go to the shutdown report.
    fn not_run(self: Arc<Self>) -> (Outcome, Option<(JobId, AnyJob)>);
}

/// Why an admission failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    Full,
    Closed,
    Cancelled,
}

impl Refusal {
    pub(crate) fn with<J>(self, job: J) -> SubmitError<J> {
        match self {
            Refusal::Full => SubmitError::Full(job),
            Refusal::Closed => SubmitError::Closed(job),
            Refusal::Cancelled => SubmitError::Cancelled(job),
        }
    }
}

/// How many times a thread polls an empty queue before it parks.
const SPINS: u32 = 64;

/// What an idle worker waited for.
pub(crate) enum Next<T> {
    /// A job to run.
    Job(T),
    /// Woken to check whether to retire (a resize).
    Woken,
    /// Idle for the whole idle timeout.
    IdleExpired,
    /// The queue ended: the pool is closed and drained.
    Ended,
}

/// Starts one worker for the core; `false` if it could not be started.
pub(crate) type Spawn<E> = Box<dyn Fn(&Arc<Core<E>>) -> bool + Send + Sync>;

pub(crate) struct Core<E: ?Sized + Entry> {
    pub(crate) name: String,
    gate: Gate,
    capacity: usize,
    /// `capacity + max`: the most jobs in flight (queued or running).
    limit: AtomicUsize,
    min: AtomicUsize,
    max: AtomicUsize,
    pub(crate) idle_timeout: Duration,
    pub(crate) clock: Arc<dyn Clock>,
    queue: Queue<Arc<E>>,
    /// Wakes submitters waiting for room (see `pass_room_on`).
    room: Event,
    /// Submitters waiting for room: a finishing job notifies `room` only
    /// when some wait, so the common case takes no lock.
    room_waiters: AtomicUsize,
    /// Wakes idle workers to re-check whether they should retire.
    pub(crate) wake: Event,
    /// Notified when a worker exits or the gate drains.
    exited: Event,
    pub(crate) counters: Counters,
    returned: Returned,
    /// The parent of every job's token, cancelled by a shutdown past its
    /// deadline; a job started after that gets a cancelled token.
    pub(crate) token: Token,
    /// Set by a shutdown past its deadline: dequeued jobs are handed back.
    draining: AtomicBool,
    pub(crate) tasks: TaskCounter,
    next_worker: AtomicUsize,
    spawn: Spawn<E>,
}

impl<E: ?Sized + Entry> Core<E> {
    /// A pool's shared state; its queue has a ring of `ring` slots (see
    /// [`Queue`]).
    pub(crate) fn new(builder: &Builder, ring: usize, spawn: Spawn<E>) -> Arc<Core<E>> {
        let core = Arc::new(Core {
            name: builder.name.clone(),
            gate: Gate::new(),
            capacity: builder.capacity,
            limit: AtomicUsize::new(builder.capacity.saturating_add(builder.max)),
            min: AtomicUsize::new(builder.min),
            max: AtomicUsize::new(builder.max),
            idle_timeout: builder.idle_timeout,
            clock: builder.clock.clone(),
            queue: Queue::new(ring),
            room: Event::new(),
            room_waiters: AtomicUsize::new(0),
            wake: Event::new(),
            exited: Event::new(),
            counters: Counters::default(),
            returned: Mutex::new(Vec::new()),
            token: builder.root.child(),
            draining: AtomicBool::new(false),
            tasks: builder.tasks.clone(),
            next_worker: AtomicUsize::new(0),
            spawn,
        });
        for _ in 0..builder.min {
            core.add_worker();
        }
        core
    }

    /// The next worker's number, for its name.
    pub(crate) fn worker_number(&self) -> usize {
        self.next_worker.fetch_add(1, Ordering::Relaxed)
    }

    fn accepted(&self) -> JobId {
        JobId(self.counters.submitted.fetch_add(1, Ordering::Relaxed))
    }

    fn refused(&self, refused: Refused) -> Refusal {
        self.counters.rejected.fetch_add(1, Ordering::Relaxed);
        match refused {
            Refused::Full => Refusal::Full,
            Refused::Closed => Refusal::Closed,
        }
    }

    /// Admits one job now or refuses it.
    pub(crate) fn try_admit(&self) -> Result<JobId, Refusal> {
        match self.gate.try_enter(self.limit.load(Ordering::Relaxed)) {
            Ok(()) => Ok(self.accepted()),
            Err(refused) => Err(self.refused(refused)),
        }
    }

    /// Admits one job if there is room now; a refusal is not counted (the
    /// caller goes on to wait, or to `admit`, which counts it).
    pub(crate) fn try_admit_quietly(&self) -> Option<JobId> {
        self.gate.try_enter(self.limit.load(Ordering::Relaxed)).ok().map(|()| self.accepted())
    }

    /// Admits one job, waiting for room; ends early if the pool closes or
    /// `until` is cancelled.
    pub(crate) async fn admit(&self, until: Option<&Token>) -> Result<JobId, Refusal> {
        match self.gate.try_enter(self.limit.load(Ordering::Relaxed)) {
            Ok(()) => return Ok(self.accepted()),
            Err(Refused::Closed) => return Err(self.refused(Refused::Closed)),
            Err(Refused::Full) => {}
        }
        self.room_waiters.fetch_add(1, Ordering::SeqCst);
        let admitted = self.wait_for_room(until).await;
        self.room_waiters.fetch_sub(1, Ordering::SeqCst);
        admitted
    }

    async fn wait_for_room(&self, until: Option<&Token>) -> Result<JobId, Refusal> {
        loop {
            if until.is_some_and(Token::is_cancelled) {
                return Err(Refusal::Cancelled);
            }
            let listener = self.room.listen();
            // Room may have been made before this waiter was counted or
            // listening: look again now that any later finish notifies it.
            // Pairs with `finish` (its `SeqCst` leave, then load).
            fence(Ordering::SeqCst);
            match self.gate.try_enter(self.limit.load(Ordering::Relaxed)) {
                Ok(()) => {
                    self.pass_room_on();
                    return Ok(self.accepted());
                }
                Err(Refused::Closed) => return Err(self.refused(Refused::Closed)),
                Err(Refused::Full) => {}
            }
            match until {
                None => listener.await,
                Some(token) => {
                    let cancelled = future::or(
                        async {
                            listener.await;
                            false
                        },
                        async {
                            token.cancelled().await;
                            true
                        },
                    )
                    .await;
                    if cancelled {
                        return Err(Refusal::Cancelled);
                    }
                }
            }
        }
    }

    /// A finishing job wakes at most one waiting submitter at a time
    /// (`notify(1)` costs one atomic load while a woken one has not run
    /// yet); a submitter that got in wakes the next if room is left, so
    /// every free place finds a waiter without a lock per finished job.
    fn pass_room_on(&self) {
        if self.room_waiters.load(Ordering::SeqCst) > 1 && self.gate.room(self.limit.load(Ordering::Relaxed)) > 0 {
            self.room.notify(1);
        }
    }

    /// Queues an admitted job, starting a worker if none is idle and the
    /// pool may grow.
    pub(crate) fn push(self: &Arc<Self>, entry: Arc<E>) {
        // Unbounded: the gate bounds it. Pushing fails only once the gate
        // drained, which cannot happen while this job holds its place.
        if let Err(entry) = self.queue.push(entry) {
            let (outcome, leftover) = entry.not_run();
            self.finish_unrun(outcome, leftover);
            return;
        }
        // The queue never holds more than the jobs in flight: while those
        // are no more than the high-water mark, the queue's length (its
        // head is written by every worker's pop) need not be read. The
        // in-flight count is first bounded from the submitters' side of
        // the gate, to leave the workers' side alone.
        let peak = self.counters.peak_queued();
        if self.gate.in_flight_at_most() > peak && self.gate.in_flight() > peak {
            self.counters.saw_queued(self.queue.len());
        }
        self.grow_if_needed();
    }

    fn grow_if_needed(self: &Arc<Self>) {
        if self.counters.workers.load(Ordering::Relaxed) >= self.max.load(Ordering::Relaxed) {
            return;
        }
        // Pairs with the fence in `retire`: either a retiring worker sees
        // this job in the queue, or this sees it is no longer idle.
        fence(Ordering::SeqCst);
        if self.queue.idle() == 0 {
            self.add_worker();
        }
    }

    /// Starts a worker if fewer than `max` are alive.
    fn add_worker(self: &Arc<Self>) -> bool {
        let max = self.max.load(Ordering::Relaxed);
        let mut workers = self.counters.workers.load(Ordering::Relaxed);
        loop {
            if workers >= max || self.gate.is_drained() {
                return false;
            }
            match self.counters.workers.compare_exchange_weak(workers, workers + 1, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(actual) => workers = actual,
            }
        }
        self.counters.saw_workers(workers + 1);
        if (self.spawn)(self) {
            true
        } else {
            self.worker_exited();
            false
        }
    }

    /// Takes the next job without waiting.
    pub(crate) fn try_next(&self) -> Result<Arc<E>, Empty> {
        self.queue.try_pop()
    }

    /// Polls the queue a little before a thread parks: a job that comes
    /// within a few hundred nanoseconds costs no sleep and wake-up.
    pub(crate) fn spin_for_next(&self) -> Option<Arc<E>> {
        for round in 0..SPINS {
            if round % 8 == 7 {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
            match self.queue.try_pop() {
                Ok(entry) => return Some(entry),
                Err(Empty::Closed) => return None,
                Err(Empty::Empty) => {}
            }
        }
        None
    }

    /// Waits for the next job, or for a reason to stop waiting.
    pub(crate) async fn next(&self) -> Next<Arc<E>> {
        let wake = self.wake.listen();
        if self.above_max() {
            return Next::Woken;
        }
        let may_time_out = self.counters.workers.load(Ordering::Relaxed) > self.min.load(Ordering::Relaxed);
        future::or(
            async {
                match self.queue.pop().await {
                    Some(entry) => Next::Job(entry),
                    None => Next::Ended,
                }
            },
            async {
                if may_time_out {
                    future::or(
                        async {
                            wake.await;
                            Next::Woken
                        },
                        async {
                            self.clock.sleep(self.idle_timeout).await;
                            Next::IdleExpired
                        },
                    )
                    .await
                } else {
                    wake.await;
                    Next::Woken
                }
            },
        )
        .await
    }

    /// More workers than the maximum (a resize shrank it).
    fn above_max(&self) -> bool {
        self.counters.workers.load(Ordering::Relaxed) > self.max.load(Ordering::Relaxed)
    }

    /// Retires the calling worker if the pool has more than it needs (more
    /// than `max`, or more than `min` when `idle_expired`). On `true` the
    /// worker must exit without calling `worker_exited`.
    pub(crate) fn retire(self: &Arc<Self>, idle_expired: bool) -> bool {
        let mut workers = self.counters.workers.load(Ordering::Relaxed);
        loop {
            let floor = if idle_expired { self.min.load(Ordering::Relaxed) } else { self.max.load(Ordering::Relaxed) };
            if workers <= floor {
                return false;
            }
            match self.counters.workers.compare_exchange_weak(workers, workers - 1, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(actual) => workers = actual,
            }
        }
        self.exited.notify(usize::MAX);
        // A job pushed while this worker still counted as idle found no
        // reason to start one: look again now that it is gone.
        fence(Ordering::SeqCst);
        if !self.queue.is_empty() {
            self.grow_if_needed();
        }
        true
    }

    /// A worker's loop ended (the queue ended).
    pub(crate) fn worker_exited(&self) {
        self.counters.workers.fetch_sub(1, Ordering::AcqRel);
        self.exited.notify(usize::MAX);
    }

    /// The token for the job a worker is about to run: a child of the
    /// pool's token, so a shutdown past its deadline cancels it, even one
    /// that comes as it starts. The worker keeps the last one in `kept`
    /// and hands it out again while nothing can tell it from a new child
    /// (the last job kept no clone, child or callback of it, and it was
    /// never cancelled): most jobs then cost no allocation and no lock on
    /// the pool's token, which every worker shares.
    pub(crate) fn job_token(&self, kept: &mut Option<Token>) -> Token {
        if !kept.as_mut().is_some_and(Token::is_pristine) {
            *kept = Some(self.token.child());
        }
        kept.clone().unwrap_or_default()
    }

    /// Whether a shutdown past its deadline wants dequeued jobs handed back.
    pub(crate) fn draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Hands an unrun job back and records its outcome.
    pub(crate) fn give_back(&self, entry: Arc<E>) {
        let (outcome, leftover) = entry.not_run();
        self.finish_unrun(outcome, leftover);
    }

    fn finish_unrun(&self, outcome: Outcome, leftover: Option<(JobId, AnyJob)>) {
        if let Some(job) = leftover {
            // Cold path: only shutdowns hand jobs back.
            self.returned.lock().unwrap_or_else(PoisonError::into_inner).push(job);
        }
        self.finish(outcome);
    }

    /// Records an accepted job's outcome (already delivered).
    pub(crate) fn finish(&self, outcome: Outcome) {
        self.counters.record(outcome);
        if self.gate.leave() {
            self.end();
            return;
        }
        // Pairs with the waiter's count-then-try (its count and fence are
        // `SeqCst`, as are `leave` and this load): either it sees this
        // job's room, or this sees it waiting.
        if self.room_waiters.load(Ordering::SeqCst) > 0 {
            // Wake waiting submitters once an eighth of the pool's places
            // are free rather than at every single one: a submitter that
            // waits is usually a producer ahead of the workers, and waking
            // it per job would make it and the workers take turns sleeping.
            // The count only falls while nobody is admitted, so the last
            // finish always wakes them.
            let limit = self.limit.load(Ordering::Relaxed);
            if self.gate.room(limit) >= (limit / 8).max(1) {
                self.room.notify(1);
            }
        }
    }

    /// The gate drained: nothing more will be queued, workers may go.
    fn end(&self) {
        self.queue.close();
        self.wake.notify(usize::MAX);
        self.exited.notify(usize::MAX);
    }

    pub(crate) fn close(&self) {
        if self.gate.close() {
            self.end();
        }
        // Waiting submitters see the gate closed and hand their jobs back.
        self.room.notify(usize::MAX);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.gate.is_closed()
    }

    /// Every accepted job has its outcome and every worker has exited.
    fn is_done(&self) -> bool {
        self.gate.is_drained() && self.counters.workers.load(Ordering::Acquire) == 0
    }

    pub(crate) async fn wait_done(&self) {
        loop {
            if self.is_done() {
                return;
            }
            let listener = self.exited.listen();
            if self.is_done() {
                return;
            }
            listener.await;
        }
    }

    /// Closes, drains until `deadline`, then cancels what runs, hands
    /// back what is queued and waits for the workers to stop.
    pub(crate) async fn shutdown(&self, deadline: Instant) -> ShutdownReport {
        self.close();
        let drained = future::or(
            async {
                self.wait_done().await;
                true
            },
            async {
                self.clock.sleep_until(deadline).await;
                false
            },
        )
        .await;
        if !drained {
            self.draining.store(true, Ordering::Release);
            self.token.cancel();
            while let Ok(entry) = self.queue.try_pop() {
                self.give_back(entry);
            }
            self.wait_done().await;
        }
        self.report(!drained)
    }

    fn report(&self, deadline_passed: bool) -> ShutdownReport {
        let stats = self.stats();
        let returned = std::mem::take(&mut *self.returned.lock().unwrap_or_else(PoisonError::into_inner));
        ShutdownReport::new(&stats, returned, deadline_passed)
    }

    /// Changes the number of workers: `max` becomes `workers` (and `min`
    /// too for a fixed pool, or if it was above).
    pub(crate) fn resize(self: &Arc<Self>, workers: usize) {
        let old_max = self.max.swap(workers, Ordering::AcqRel);
        let min = self.min.load(Ordering::Relaxed);
        if min == old_max || min > workers {
            self.min.store(workers, Ordering::Release);
        }
        self.limit.store(self.capacity.saturating_add(workers), Ordering::Release);
        if workers > old_max {
            self.room.notify(1);
        }
        while self.counters.workers.load(Ordering::Relaxed) < self.min.load(Ordering::Relaxed) {
            if !self.add_worker() {
                break;
            }
        }
        // Jobs may wait that new workers can take now.
        if !self.queue.is_empty() {
            for _ in 0..self.queue.len() {
                if !self.add_worker() {
                    break;
                }
            }
        }
        // Idle workers above the new maximum retire.
        self.wake.notify(usize::MAX);
    }

    pub(crate) fn stats(&self) -> Stats {
        self.counters.snapshot(self.queue.len())
    }

    /// Runs `f` as a worker body: counted by the pool's task counter while
    /// it runs, and `worker_exited` after it stops counting, so a joined
    /// pool already shows zero live tasks.
    pub(crate) fn worker_future<F>(self: &Arc<Self>, body: F) -> impl Future<Output = ()> + Send + 'static + use<E, F>
    where
        F: Future<Output = bool> + Send + 'static,
    {
        let tracked = self.tasks.track(body);
        let core = self.clone();
        async move {
            if !tracked.await {
                core.worker_exited();
            }
        }
    }
}
