//! The cold path: everything that takes the queue's lock. Only waits,
//! releases while something is owed, capacity changes, `forget` and
//! `close` come here; an acquire that finds permits free and a release
//! that finds nothing owed never do.

use std::task::Waker;

use super::queue::{Outcome, Queue, Waiting, Wakers};
use super::{AcquireError, CapacityError, OWED, SHIFT, Semaphore, check_capacity};
use crate::sync::{Ordering, lock};

impl Semaphore {
    /// Pays what is owed out of the free permits, in order: the debt, then
    /// the waiters from the head, stopping at the first that does not fit
    /// (Go's rule: letting smaller requests pass would starve large ones).
    /// Clears `OWED` once nothing is owed.
    ///
    /// Holds the queue's lock (the `queue` argument). Every path that adds
    /// free permits while `OWED` is set, or sets `OWED`, calls it after, so
    /// no permit stays free while a waiter it fits is asleep.
    pub(super) fn settle(&self, queue: &mut Queue, wakers: &mut Wakers) {
        if queue.debt > 0 {
            queue.debt -= self.take_up_to(queue.debt);
        }
        // While a debt is unpaid no permit is free, but a head that needs
        // none still goes: it takes nothing from the debt.
        while let Some(needed) = queue.head_needs() {
            if needed > 0 && (queue.debt > 0 || !self.take_exact(needed)) {
                return;
            }
            queue.grant_head(&self.board, wakers);
        }
        if queue.debt == 0 {
            self.state.fetch_and(!OWED, Ordering::AcqRel);
        }
    }

    /// Takes exactly `n` free permits, or none; under the lock, racing only
    /// fast-path acquires (while nothing is owed) and releases.
    fn take_exact(&self, n: usize) -> bool {
        let mut current = self.state.load(Ordering::Acquire);
        loop {
            if current >> SHIFT < n {
                return false;
            }
            let next = current - (n << SHIFT);
            match self.state.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
        }
    }

    /// Takes up to `max` free permits; returns how many.
    fn take_up_to(&self, max: usize) -> usize {
        let mut current = self.state.load(Ordering::Acquire);
        loop {
            let taken = (current >> SHIFT).min(max);
            if taken == 0 {
                return 0;
            }
            let next = current - (taken << SHIFT);
            match self.state.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return taken,
                Err(actual) => current = actual,
            }
        }
    }

    /// The slow path of an acquire whose fast path failed: under the lock,
    /// fails it, grants it (nothing owed and enough free), or queues it.
    pub(super) fn enqueue(&self, n: usize, waker: &Waker) -> Result<Option<Waiting>, AcquireError> {
        let mut wakers = Wakers::default();
        let result = {
            let mut queue = lock(&self.queue);
            self.enqueue_locked(&mut queue, n, waker, &mut wakers)
        };
        wakers.wake_all();
        result
    }

    fn enqueue_locked(
        &self,
        queue: &mut Queue,
        n: usize,
        waker: &Waker,
        wakers: &mut Wakers,
    ) -> Result<Option<Waiting>, AcquireError> {
        if self.is_closed() {
            return Err(AcquireError::Closed);
        }
        let capacity = self.capacity();
        if n > capacity {
            return Err(AcquireError::TooLarge { requested: n, capacity });
        }
        // Nobody is ahead: granted now if the permits are free, or if none
        // are needed (a shrink's unpaid debt holds back only permits).
        if queue.len() == 0 && (n == 0 || (queue.debt == 0 && self.take_exact(n))) {
            return Ok(None);
        }
        if let Some(max) = self.max_waiters() {
            if queue.len() >= max {
                return Err(AcquireError::TooManyWaiters { max });
            }
        }
        let waiting = queue.push(&self.board, n, waker);
        // Under contention it is set already: a load spares the write.
        if self.state.load(Ordering::Acquire) & OWED == 0 {
            self.state.fetch_or(OWED, Ordering::AcqRel);
        }
        // Permits released before `OWED` was set did not settle: this does.
        self.settle(queue, wakers);
        Ok(Some(waiting))
    }

    /// The outcome of a queued waiter the board did not say was granted,
    /// under the lock; while it is still pending, the queue also gets
    /// `waker` if it holds another one. A final outcome is consumed.
    pub(super) fn poll_queued(&self, waiting: &mut Waiting, waker: &Waker) -> Outcome {
        let (outcome, old) = {
            let mut queue = lock(&self.queue);
            match queue.take_outcome(&self.board, waiting) {
                Outcome::Pending => (Outcome::Pending, queue.set_waker(waiting, waker)),
                outcome => (outcome, None),
            }
        };
        drop(old); // after the lock: see `Queue::remove`
        outcome
    }

    /// A queued waiter for `n` permits leaves (its future was dropped or
    /// its token cancelled): it leaves the queue, or, if it was granted
    /// meanwhile, its permits go back. Either way the waiters behind it
    /// that now fit proceed.
    pub(super) fn leave(&self, mut waiting: Waiting, n: usize) {
        let mut granted = self.board.granted(&waiting);
        if !granted {
            let mut wakers = Wakers::default();
            let removed = {
                let mut queue = lock(&self.queue);
                let removed = queue.remove(&self.board, &waiting);
                if removed.is_some() {
                    self.settle(&mut queue, &mut wakers);
                } else {
                    // Granted or failed: the lock makes the outcome final.
                    granted = queue.take_outcome(&self.board, &mut waiting) == Outcome::Granted;
                }
                removed
            };
            drop(removed); // after the lock: see `Queue::remove`
            wakers.wake_all();
        }
        if granted {
            self.release(n);
        }
    }

    /// `n` held permits leave the semaphore for good ([`Permit::forget`]):
    /// they pay off debt first, then lower the capacity.
    pub(super) fn forget_permits(&self, n: usize) {
        if n == 0 {
            return;
        }
        let mut wakers = Wakers::default();
        {
            let mut queue = lock(&self.queue);
            let paid = queue.debt.min(n);
            queue.debt -= paid;
            let lowered = n - paid;
            if lowered > 0 {
                let capacity = self.capacity.load(Ordering::Acquire);
                debug_assert!(lowered <= capacity, "forgot more permits than are out");
                let capacity = capacity.saturating_sub(lowered);
                self.capacity.store(capacity, Ordering::Release);
                queue.fail_larger_than(&self.board, capacity, &mut wakers);
            }
            self.settle(&mut queue, &mut wakers);
        }
        wakers.wake_all();
    }

    /// Moves the capacity to `target(current capacity)`, under the lock.
    pub(super) fn resize(&self, target: impl FnOnce(usize) -> usize) -> Result<(), CapacityError> {
        let mut wakers = Wakers::default();
        {
            let mut queue = lock(&self.queue);
            let old = self.capacity.load(Ordering::Acquire);
            let new = target(old);
            check_capacity(new)?;
            self.capacity.store(new, Ordering::Release);
            if new >= old {
                let paid = queue.debt.min(new - old);
                queue.debt -= paid;
                let added = new - old - paid;
                if added > 0 {
                    self.state.fetch_add(added << SHIFT, Ordering::AcqRel);
                }
            } else {
                let shrink = old - new;
                // Set first, so that from here on no fast-path acquire takes
                // the permits the debt is owed.
                self.state.fetch_or(OWED, Ordering::AcqRel);
                queue.debt += shrink - self.take_up_to(shrink);
                queue.fail_larger_than(&self.board, new, &mut wakers);
            }
            self.settle(&mut queue, &mut wakers);
        }
        wakers.wake_all();
        Ok(())
    }
}
