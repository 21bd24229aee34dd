//! The running-task count of a group: one atomic word, and a waker slot
//! touched only when the owner may be waiting on it.
//!
//! The owner (the group's holder, with `&mut` access) waits for one of two
//! things: a free slot under [`Group::limit`](crate::Group::limit) while
//! spawning, or no task running at all while in `wait`. Tasks give their
//! slot back with one `fetch_sub`; so that `wait` parks once rather than
//! once per task, a task wakes the owner only on the transitions it may be
//! waiting for: from `limit` to `limit - 1`, and from 1 to 0.
//!
//! The protocol, checked by the loom models in `loom_tests.rs`:
//!
//! - Only the owner adds to the count, so "load, compare with the limit,
//!   add one" races only with tasks giving slots back, which only make the
//!   check more conservative.
//! - The owner waits only after it saw the count at `limit` (or above 0),
//!   so the next task to end makes one of the two transitions and wakes it.
//! - The owner stores its waker *before* it checks the count a second
//!   time: either that check sees the slot given back, or the task that
//!   gave it back runs after the store and finds the waker.

use std::task::{Context, Poll, Waker};

use crate::sync::{AtomicUsize, Mutex, Ordering, lock};

/// The limit of a group without one: the count never reaches it.
pub(crate) const UNLIMITED: usize = usize::MAX;

/// Running tasks counted against a limit, and the owner's waker.
#[derive(Debug, Default)]
pub(crate) struct Slots {
    running: AtomicUsize,
    /// The owner's waker while it waits. A mutex, on a cold path: it is
    /// taken only on the two transitions above, never per task otherwise.
    waiter: Mutex<Option<Waker>>,
}

impl Slots {
    /// How many tasks hold a slot now.
    pub(crate) fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// Takes a slot if fewer than `limit` are taken. For the owner only.
    pub(crate) fn try_take(&self, limit: usize) -> bool {
        if limit != UNLIMITED && self.running.load(Ordering::SeqCst) >= limit {
            return false;
        }
        self.running.fetch_add(1, Ordering::SeqCst);
        true
    }

    /// Takes a slot, or registers to be woken when one is given back.
    /// For the owner only.
    pub(crate) fn poll_take(&self, limit: usize, cx: &mut Context<'_>) -> Poll<()> {
        if self.try_take(limit) {
            return Poll::Ready(());
        }
        self.register(cx);
        if self.try_take(limit) { Poll::Ready(()) } else { Poll::Pending }
    }

    /// Ready once no task holds a slot, or registers to be woken then.
    /// For the owner only.
    pub(crate) fn poll_idle(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.running() == 0 {
            return Poll::Ready(());
        }
        self.register(cx);
        if self.running() == 0 { Poll::Ready(()) } else { Poll::Pending }
    }

    fn register(&self, cx: &mut Context<'_>) {
        let mut waiter = lock(&self.waiter);
        match &mut *waiter {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            other => *other = Some(cx.waker().clone()),
        }
    }

    /// Gives a slot taken under `limit` back; wakes the owner if it may be
    /// waiting for this.
    pub(crate) fn give_back(&self, limit: usize) {
        let before = self.running.fetch_sub(1, Ordering::SeqCst);
        if before == limit || before == 1 {
            let waker = lock(&self.waiter).take();
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }
}
