//! Timer queues: what fires token deadlines and wakes [`Sleep`](crate::Sleep)
//! futures.
//!
//! Each clock owns one queue. The system clock's queue is process-wide and
//! driven by a small `conc-timer` thread that exists only while timers are
//! pending; a [`ManualClock`](crate::ManualClock)'s queue fires when the
//! clock is advanced. Timers are set when a deadline token is made or a sleep
//! first waits, not on any per-call hot path, so the queue is a `BTreeMap`
//! under a mutex (a cold path: one lock per timer set, fired or removed).

use std::any::Any;
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::task::Waker;
use std::time::{Duration, Instant};

use crate::clock::ManualShared;
use crate::token::Node;

/// What a timer does when it fires.
pub(crate) enum Entry {
    /// Wake a sleeping future.
    Wake(Waker),
    /// Cancel a deadline token with `DeadlineExceeded`, if it still exists.
    Cancel(Weak<Node>),
}

impl Entry {
    fn fire(self) {
        match self {
            Entry::Wake(waker) => waker.wake(),
            Entry::Cancel(node) => {
                if let Some(node) = node.upgrade() {
                    crate::token::cancel_node(&node, crate::Cause::DeadlineExceeded);
                }
            }
        }
    }
}

/// Identifies one timer in its queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct TimerKey {
    at: Instant,
    id: u64,
}

#[derive(Default)]
struct QueueState {
    entries: BTreeMap<TimerKey, Entry>,
    next_id: u64,
    driver_running: bool,
}

/// A queue of timers ordered by deadline.
pub(crate) struct TimerQueue {
    state: Mutex<QueueState>,
    /// Wakes the driver thread of the system queue when an earlier timer is
    /// set; unused by manual queues.
    changed: Condvar,
}

/// How long the system driver thread stays around with no timers pending
/// before it exits (a new timer starts a new one). Not at all under miri,
/// which reports a thread still running when a test's main thread ends.
const DRIVER_LINGER: Duration = if cfg!(miri) { Duration::ZERO } else { Duration::from_millis(200) };

static SYSTEM_QUEUE: TimerQueue = TimerQueue::new();

impl TimerQueue {
    pub(crate) const fn new() -> Self {
        TimerQueue {
            state: Mutex::new(QueueState { entries: BTreeMap::new(), next_id: 0, driver_running: false }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        // The critical sections only move entries in and out of the map and
        // run no user code, so a poisoned lock still guards consistent data.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Drops the entries that are due at `now` from the queue and returns them.
    fn take_due(state: &mut QueueState, now: Instant) -> BTreeMap<TimerKey, Entry> {
        let later = state.entries.split_off(&TimerKey { at: now, id: u64::MAX });
        std::mem::replace(&mut state.entries, later)
    }

    /// Runs every entry's action, even if one panics (an `on_cancel`
    /// callback run by a deadline can); returns the first panic. Called with
    /// no lock held.
    fn fire(due: BTreeMap<TimerKey, Entry>) -> Option<Box<dyn Any + Send>> {
        let mut first = None;
        for entry in due.into_values() {
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| entry.fire())) {
                first.get_or_insert(payload);
            }
        }
        first
    }

    /// Removes a timer; returns its entry so the caller drops it unlocked.
    pub(crate) fn remove(&self, key: TimerKey) -> Option<Entry> {
        let mut state = self.lock();
        let was_first = state.entries.first_key_value().is_some_and(|(first, _)| *first == key);
        let entry = state.entries.remove(&key);
        if was_first && state.driver_running {
            // The driver sleeps until the removed deadline: wake it to wait
            // for the next one instead, or, with none left, to linger and
            // exit, rather than outlive a long timeout nobody needs.
            self.changed.notify_one();
        }
        entry
    }

    /// Replaces the waker of a pending sleep timer. Returns `false` when the
    /// timer is no longer in the queue (it fired).
    pub(crate) fn update_waker(&self, key: TimerKey, waker: &Waker) -> bool {
        let mut state = self.lock();
        match state.entries.get_mut(&key) {
            Some(Entry::Wake(current)) => {
                if !current.will_wake(waker) {
                    let old = std::mem::replace(current, waker.clone());
                    drop(state);
                    drop(old);
                }
                true
            }
            _ => false,
        }
    }

    /// Inserts a timer and returns its key. `driven` queues (the system one)
    /// make sure their driver thread runs and sees the new deadline.
    fn insert(&'static self, at: Instant, entry: Entry, driven: bool) -> TimerKey {
        let mut state = self.lock();
        let key = TimerKey { at, id: state.next_id };
        state.next_id += 1;
        let is_first = state.entries.first_key_value().is_none_or(|(first, _)| key < *first);
        state.entries.insert(key, entry);
        if driven {
            if !state.driver_running {
                state.driver_running = spawn_driver(self);
            } else if is_first {
                self.changed.notify_one();
            }
        }
        key
    }

    fn insert_manual(&self, at: Instant, entry: Entry) -> TimerKey {
        let mut state = self.lock();
        let key = TimerKey { at, id: state.next_id };
        state.next_id += 1;
        state.entries.insert(key, entry);
        key
    }

    /// Fires every timer due at `now`: what advancing a manual clock does.
    /// If an action panics, the rest still fire, then the first panic is
    /// resumed on the caller.
    pub(crate) fn fire_due(&self, now: Instant) {
        let due = Self::take_due(&mut self.lock(), now);
        if let Some(payload) = Self::fire(due) {
            resume_unwind(payload);
        }
    }

    /// The driver loop of the system queue.
    fn drive(&'static self) {
        let mut state = self.lock();
        loop {
            let now = Instant::now();
            let due = Self::take_due(&mut state, now);
            if !due.is_empty() {
                drop(state);
                // The driver has no caller to hand a panic to, and dying
                // would stop every deadline in the process: a panic in a
                // deadline's callback is dropped here.
                drop(Self::fire(due));
                state = self.lock();
                continue;
            }
            let wait = match state.entries.first_key_value() {
                Some((first, _)) => first.at.saturating_duration_since(now),
                None => DRIVER_LINGER,
            };
            let idle = state.entries.is_empty();
            state = self.changed.wait_timeout(state, wait).unwrap_or_else(PoisonError::into_inner).0;
            if idle && state.entries.is_empty() {
                state.driver_running = false;
                return;
            }
        }
    }
}

/// Starts the system queue's driver thread; returns whether it started.
///
/// If the OS refuses a thread, the timer stays queued and the next timer set
/// tries again.
fn spawn_driver(queue: &'static TimerQueue) -> bool {
    std::thread::Builder::new().name("conc-timer".into()).spawn(move || queue.drive()).is_ok()
}

/// The timer queue and time source behind a clock: the runtime form of
/// every [`Clock`](crate::Clock).
#[derive(Clone, Debug, Default)]
pub(crate) enum Timers {
    /// The system monotonic clock and the process-wide queue.
    #[default]
    System,
    /// A manual clock's time and queue.
    Manual(Arc<ManualShared>),
}

impl Timers {
    pub(crate) fn now(&self) -> Instant {
        match self {
            Timers::System => Instant::now(),
            Timers::Manual(shared) => shared.now(),
        }
    }

    pub(crate) fn queue(&self) -> &TimerQueue {
        match self {
            Timers::System => &SYSTEM_QUEUE,
            Timers::Manual(shared) => &shared.timers,
        }
    }

    /// Sets a timer at `at`.
    pub(crate) fn insert(&self, at: Instant, entry: Entry) -> TimerKey {
        match self {
            Timers::System => SYSTEM_QUEUE.insert(at, entry, true),
            Timers::Manual(shared) => {
                let key = shared.timers.insert_manual(at, entry);
                // An `advance` may have fired the due timers between the
                // caller's last look at the time and this insert: fire this
                // one now rather than at the next advance.
                if shared.now() >= at {
                    if let Some(entry) = shared.timers.remove(key) {
                        entry.fire();
                    }
                }
                key
            }
        }
    }

    /// Removes a timer and drops its entry outside the queue's lock.
    pub(crate) fn remove(&self, key: TimerKey) {
        drop(self.queue().remove(key));
    }
}

impl std::fmt::Debug for TimerQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimerQueue").field("pending", &self.lock().entries.len()).finish()
    }
}

#[cfg(all(test, not(conc_loom)))]
impl TimerQueue {
    pub(crate) fn len(&self) -> usize {
        self.lock().entries.len()
    }
}
