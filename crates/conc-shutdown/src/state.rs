//! The shared state behind a shutdown and its handles.
//!
//! Everything here is on a cold path (a subsystem starting or ending, a
//! trigger, a phase change), so one mutex guards it; the only hot read,
//! `is_draining`, is a token's `is_cancelled`: one atomic load.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use conc_core::{Cause, TaskCounter, Token};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::report::{AbortReason, HookReport, Outcome, SubsystemError, SubsystemReport, Trigger};
use crate::subsystem::{CatchUnwind, SubsystemHandle, SubsystemResult, panic_message};
use crate::{Phase, SpawnError};

/// A hook's body, boxed so hooks of different types share one stack.
pub(crate) type HookFuture = Pin<Box<dyn Future<Output = Result<(), SubsystemError>> + Send>>;
type HookStart = Box<dyn FnOnce() -> HookFuture + Send>;

/// Settings fixed when the shutdown is built.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) timeouts: [Duration; 4],
    pub(crate) pre_drain_delay: Duration,
    pub(crate) shutdown_on_error: bool,
    pub(crate) shutdown_on_panic: bool,
}

pub(crate) struct Inner {
    pub(crate) root: Token,
    /// Cancelled at the trigger: what `is_draining` and `draining` read.
    pub(crate) requested: Token,
    /// One token per phase, children of the root, cancelled when the phase starts.
    phase_tokens: [Token; 4],
    pub(crate) config: Config,
    runtime: tokio::runtime::Handle,
    pub(crate) tasks: TaskCounter,
    /// Woken on every state change: a subsystem ended, a trigger, a force.
    pub(crate) notify: Notify,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    trigger: Option<Trigger>,
    triggered_at: Option<Instant>,
    forced_at: Option<Instant>,
    /// The phase running now (or the last that ran).
    current: Option<Phase>,
    /// Set once the shutdown is over: nothing new may start.
    closed: bool,
    entries: Vec<Entry>,
    /// Live subsystems per phase.
    live: [usize; 4],
    hooks: Vec<(String, HookStart)>,
}

struct Entry {
    name: String,
    phase: Phase,
    parent: Option<usize>,
    live_children: usize,
    started: Instant,
    /// When it was told to stop, if it was still running then.
    told: Option<Instant>,
    ended: Option<(Instant, Outcome)>,
    handle: Option<JoinHandle<()>>,
}

/// What the driver waits for.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Until {
    Triggered,
    PhaseDone(Phase),
    Never,
}

impl Inner {
    pub(crate) fn new(root: Token, config: Config, runtime: tokio::runtime::Handle) -> Arc<Inner> {
        let phase_tokens = [root.child(), root.child(), root.child(), root.child()];
        Arc::new(Inner {
            requested: root.child(),
            root,
            phase_tokens,
            config,
            runtime,
            tasks: TaskCounter::new(),
            notify: Notify::new(),
            state: Mutex::new(State::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Critical sections run no user code (closures and hooks are dropped
        // and spawned outside them), so a poisoned state is still consistent.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.requested.is_cancelled()
    }

    pub(crate) fn is_forced(&self) -> bool {
        self.lock().forced_at.is_some()
    }

    pub(crate) fn trigger_kind(&self) -> Option<Trigger> {
        self.lock().trigger.clone()
    }

    /// Starts the shutdown unless it already started.
    pub(crate) fn trigger(&self, trigger: Trigger) {
        {
            let mut state = self.lock();
            if state.trigger.is_some() {
                return;
            }
            let now = Instant::now();
            if matches!(trigger, Trigger::TokenCancelled(_)) {
                tell_live(&mut state, None, now);
            }
            state.trigger = Some(trigger);
            state.triggered_at = Some(now);
        }
        // Outside the lock: cancelling runs the users' `on_cancel` callbacks.
        self.requested.cancel();
        self.notify.notify_waiters();
    }

    /// Forces the shutdown: every token is cancelled at once and the driver
    /// aborts whatever is still running.
    pub(crate) fn force(&self) {
        {
            let mut state = self.lock();
            if state.forced_at.is_some() {
                return;
            }
            let now = Instant::now();
            state.forced_at = Some(now);
            tell_live(&mut state, None, now);
            if state.trigger.is_none() {
                state.trigger = Some(Trigger::Requested);
                state.triggered_at = Some(now);
            }
        }
        // Outside the lock: cancelling runs the users' `on_cancel` callbacks.
        self.root.cancel();
        self.notify.notify_waiters();
    }

    pub(crate) fn reached(&self, until: Until) -> bool {
        let state = self.lock();
        match until {
            Until::Triggered => state.trigger.is_some(),
            Until::PhaseDone(phase) => state.live[phase.index()] == 0,
            Until::Never => false,
        }
    }

    pub(crate) fn triggered_at(&self) -> Option<Instant> {
        self.lock().triggered_at
    }

    /// Marks `phase` as running and tells its subsystems to stop.
    pub(crate) fn start_phase(&self, phase: Phase) -> Instant {
        let now = Instant::now();
        {
            let mut state = self.lock();
            state.current = Some(phase);
            tell_live(&mut state, Some(phase), now);
        }
        self.phase_tokens[phase.index()].cancel();
        now
    }

    /// Starts a subsystem. `parent` is the parent subsystem's id and token;
    /// `on_end` is a trigger fired when it ends (for `run`'s main).
    pub(crate) fn spawn<F, Fut>(
        self: &Arc<Self>,
        parent: Option<(usize, &Token)>,
        phase: Phase,
        name: String,
        on_end: Option<Trigger>,
        f: F,
    ) -> Result<(), SpawnError>
    where
        F: FnOnce(SubsystemHandle) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: SubsystemResult,
    {
        let (id, body) = {
            let mut state = self.lock();
            if state.closed {
                return Err(SpawnError::Closed { name });
            }
            // A phase that has already run would never wait for it: it joins
            // the phase running now.
            let phase = state.current.map_or(phase, |current| phase.max(current));
            let (token, name) = match parent {
                Some((parent, token)) => (token.child(), format!("{}/{name}", state.entries[parent].name)),
                None => (self.phase_tokens[phase.index()].child(), name),
            };
            let id = state.entries.len();
            let now = Instant::now();
            let told = token.is_cancelled().then_some(now);
            let handle = SubsystemHandle::new(Arc::clone(self), id, name.clone(), phase, token);
            // The entry exists before the task does, so the task's end
            // always finds it.
            state.entries.push(Entry {
                name,
                phase,
                parent: parent.map(|(parent, _)| parent),
                live_children: 0,
                started: now,
                told,
                ended: None,
                handle: None,
            });
            state.live[phase.index()] += 1;
            if let Some((parent, _)) = parent {
                state.entries[parent].live_children += 1;
            }
            (id, self.tasks.track(run_subsystem(Arc::clone(self), handle, on_end, f)))
        };
        // Spawned outside the lock: a runtime that is shutting down drops
        // the future, and with it the caller's closure, right here.
        let join = self.runtime.spawn(body);
        let mut state = self.lock();
        // Aborted by a deadline or a force, or the shutdown ended or was
        // dropped, while it was being spawned: it must not run on unowned.
        if state.closed || matches!(state.entries[id].ended, Some((_, Outcome::Aborted(_)))) {
            join.abort();
        }
        state.entries[id].handle = Some(join);
        Ok(())
    }

    /// Records how subsystem `id` ended, unless it was already recorded
    /// (aborted by the driver).
    fn finish(&self, id: usize, outcome: Outcome) {
        {
            let mut state = self.lock();
            end_entry(&mut state, id, Instant::now(), outcome);
        }
        self.notify.notify_waiters();
    }

    /// Waits until every child of subsystem `id` has ended.
    async fn wait_children(&self, id: usize) {
        loop {
            let notified = self.notify.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if self.lock().entries[id].live_children == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Aborts every live subsystem (of `phase`, or all), records it as
    /// aborted for `reason`, and waits until their tasks are gone.
    pub(crate) async fn abort_live(&self, phase: Option<Phase>, reason: AbortReason) -> bool {
        let handles: Vec<JoinHandle<()>> = {
            let mut state = self.lock();
            let now = Instant::now();
            let ids: Vec<usize> = (0..state.entries.len())
                .filter(|&id| {
                    let entry = &state.entries[id];
                    entry.ended.is_none() && phase.is_none_or(|phase| entry.phase == phase)
                })
                .collect();
            ids.into_iter()
                .filter_map(|id| {
                    end_entry(&mut state, id, now, Outcome::Aborted(reason));
                    state.entries[id].handle.take()
                })
                .collect()
        };
        let any = !handles.is_empty();
        self.notify.notify_waiters();
        join_all(handles, true).await;
        any
    }

    /// Closes the shutdown to new work and waits for every task it started.
    pub(crate) async fn close(&self) {
        self.lock().closed = true;
        self.abort_live(None, AbortReason::Deadline).await;
        let handles: Vec<JoinHandle<()>> =
            self.lock().entries.iter_mut().filter_map(|entry| entry.handle.take()).collect();
        join_all(handles, false).await;
    }

    /// Aborts every task without waiting: for a shutdown dropped before it
    /// finished.
    pub(crate) fn abort_all_now(&self) {
        let hooks = {
            let mut state = self.lock();
            state.closed = true;
            for entry in &mut state.entries {
                if let Some(handle) = entry.handle.take() {
                    handle.abort();
                }
            }
            std::mem::take(&mut state.hooks)
        };
        // Dropped outside the lock: a hook's captures may run code that
        // calls back into the shutdown. Dropping them also breaks the cycle
        // of a hook that holds a handle to this shutdown.
        drop(hooks);
    }

    pub(crate) fn add_hook(&self, name: String, start: HookStart) -> Result<(), SpawnError> {
        let mut state = self.lock();
        if state.closed {
            return Err(SpawnError::Closed { name });
        }
        state.hooks.push((name, start));
        Ok(())
    }

    /// The last registered hook not yet run, started as a task.
    pub(crate) fn next_hook(&self) -> Option<(String, JoinHandle<Outcome>)> {
        let (name, start) = self.lock().hooks.pop()?;
        let body = async move {
            match CatchUnwind::new(async move { start().await }).await {
                Ok(Ok(())) => Outcome::Finished,
                Ok(Err(error)) => Outcome::Errored(error),
                Err(payload) => Outcome::Panicked(panic_message(payload.as_ref())),
            }
        };
        Some((name, self.runtime.spawn(self.tasks.track(body))))
    }

    /// Closes the hook stack, reporting hooks that never ran as aborted.
    pub(crate) fn drop_hooks(&self, reason: AbortReason) -> Vec<HookReport> {
        let hooks = std::mem::take(&mut self.lock().hooks);
        // The closures are dropped here, outside the lock (see `abort_all_now`).
        hooks
            .into_iter()
            .rev()
            .map(|(name, _)| HookReport { name, outcome: Outcome::Aborted(reason), duration: Duration::ZERO })
            .collect()
    }

    pub(crate) fn subsystem_reports(&self) -> Vec<SubsystemReport> {
        let state = self.lock();
        let now = Instant::now();
        state
            .entries
            .iter()
            .map(|entry| {
                let (ended, outcome) = entry.ended.clone().unwrap_or((now, Outcome::Aborted(AbortReason::Deadline)));
                SubsystemReport {
                    name: entry.name.clone(),
                    phase: entry.phase,
                    outcome,
                    duration: ended.duration_since(entry.started),
                    stop_duration: entry.told.map(|told| ended.duration_since(told)),
                }
            })
            .collect()
    }
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("Shutdown")
            .field("trigger", &state.trigger)
            .field("forced", &state.forced_at.is_some())
            .field("phase", &state.current)
            .field("subsystems", &state.entries.len())
            .field("live", &state.live)
            .field("hooks", &state.hooks.len())
            .finish()
    }
}

/// Notes when the live subsystems (of `phase`, or all) were told to stop.
fn tell_live(state: &mut State, phase: Option<Phase>, now: Instant) {
    for entry in &mut state.entries {
        if entry.ended.is_none() && entry.told.is_none() && phase.is_none_or(|phase| entry.phase == phase) {
            entry.told = Some(now);
        }
    }
}

fn end_entry(state: &mut State, id: usize, now: Instant, outcome: Outcome) {
    let entry = &mut state.entries[id];
    if entry.ended.is_some() {
        return;
    }
    entry.ended = Some((now, outcome));
    let (phase, parent) = (entry.phase, entry.parent);
    state.live[phase.index()] -= 1;
    if let Some(parent) = parent {
        state.entries[parent].live_children -= 1;
    }
}

async fn join_all(handles: Vec<JoinHandle<()>>, abort: bool) {
    for handle in handles {
        if abort {
            handle.abort();
        }
        // The outcome was recorded by the task itself or by the abort: the
        // join only proves the task is gone.
        let _ = handle.await;
    }
}

/// A subsystem's task: runs the body, reports how it ended (after its
/// children), and triggers the shutdown on failure if so configured.
async fn run_subsystem<F, Fut>(inner: Arc<Inner>, handle: SubsystemHandle, on_end: Option<Trigger>, f: F)
where
    F: FnOnce(SubsystemHandle) -> Fut + Send + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: SubsystemResult,
{
    let (id, token, name) = (handle.id, handle.token().clone(), handle.name().to_owned());
    let outcome = match CatchUnwind::new(async move { f(handle).await.into_result() }).await {
        Ok(Ok(())) => Outcome::Finished,
        Ok(Err(error)) => Outcome::Errored(error),
        Err(payload) => Outcome::Panicked(panic_message(payload.as_ref())),
    };
    let stop_on_failure = match &outcome {
        Outcome::Errored(_) => inner.config.shutdown_on_error,
        Outcome::Panicked(_) => inner.config.shutdown_on_panic,
        _ => false,
    };
    if outcome.is_failure() {
        // A failed parent's children have nothing left to serve.
        token.cancel_with(Cause::error(format!("subsystem `{name}` failed")));
    }
    if stop_on_failure {
        inner.trigger(Trigger::Failure { subsystem: name });
    }
    if let Some(trigger) = on_end {
        inner.trigger(trigger);
    }
    inner.wait_children(id).await;
    inner.finish(id, outcome);
}
