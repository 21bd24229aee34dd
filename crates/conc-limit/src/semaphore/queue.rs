//! The waiter queue and what the semaphore owes: the cold path, kept
//! behind the semaphore's mutex, and the [`Board`] through which a waiter
//! learns without the lock that it was granted.
//!
//! A waiter holds no allocation shared with its entry. Every waiter gets
//! the next id, in arrival order, and only the head is ever granted, so
//! the id of the head says which waiters were granted: all that left the
//! queue, unless they left it themselves (then they do not ask) or were
//! failed (a shrink or a close, both rare, both counted on the board).

use std::collections::VecDeque;
use std::task::Waker;

use crate::sync::{AtomicU64, Ordering};

/// What the semaphore owes, in the order it pays: permits to destroy (the
/// debt a shrink left), then the waiters, head first.
#[derive(Debug, Default)]
pub(super) struct Queue {
    /// Waiters in arrival order; their ids ascend, so a waiter is found by
    /// binary search.
    entries: VecDeque<Entry>,
    /// Permits held beyond the capacity since a shrink: returning permits
    /// pay it off before any becomes free.
    pub(super) debt: usize,
    next_id: u64,
    /// Waiters failed with `TooLarge` by a shrink and not yet told: their
    /// id and the capacity that failed them. Each record goes when its
    /// waiter learns the outcome or leaves, so it holds at most as many as
    /// there are such waiters alive.
    too_large: Vec<(u64, usize)>,
    /// The id of the head when `close` failed every waiter: those at or
    /// above it were failed with `Closed` (no waiter queues after a close).
    closed_from: Option<u64>,
}

#[derive(Debug)]
struct Entry {
    id: u64,
    needed: usize,
    waker: Waker,
}

/// What a waiter reads without the lock. Written only under the queue's
/// lock.
#[derive(Debug, Default)]
pub(super) struct Board {
    /// The id of the head, or the next id while the queue is empty: every
    /// waiter below it has left the queue.
    head: AtomicU64,
    /// How many times queued waiters were failed (by a shrink or a close).
    failures: AtomicU64,
}

/// A queued waiter, as its future holds it.
#[derive(Debug)]
pub(super) struct Waiting {
    id: u64,
    /// `Board::failures` when this waiter last knew it was queued: while
    /// the count has not moved, no failure touched it.
    failures_seen: u64,
}

/// How a wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    Pending,
    Granted,
    Closed,
    TooLarge { capacity: usize },
}

impl Board {
    /// Whether the board alone tells that the waiter was granted: its id
    /// is below the head and no failure happened since it last looked.
    /// `false` means "ask under the lock" (or "not yet").
    ///
    /// Sound because the head passes a waiter only in the critical section
    /// that removes it or a later one: if a failure removed it, the count
    /// was raised before, and the `Acquire` load of the head that sees the
    /// head past it makes that raise visible to the count's load. The same
    /// `Acquire` makes the permits' last holder's writes visible to a
    /// granted waiter.
    pub(super) fn granted(&self, waiting: &Waiting) -> bool {
        let head = self.head.load(Ordering::Acquire);
        head > waiting.id && self.failures.load(Ordering::Acquire) == waiting.failures_seen
    }
}

impl Queue {
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Permits the head waiter needs.
    pub(super) fn head_needs(&self) -> Option<usize> {
        self.entries.front().map(|entry| entry.needed)
    }

    /// Queues a waiter for `needed` permits at the tail.
    pub(super) fn push(&mut self, board: &Board, needed: usize, waker: &Waker) -> Waiting {
        let id = self.next_id;
        self.next_id += 1;
        // The head does not move: it was this id if the queue was empty.
        self.entries.push_back(Entry { id, needed, waker: waker.clone() });
        Waiting { id, failures_seen: board.failures.load(Ordering::Relaxed) }
    }

    /// Grants the head waiter, which the caller has taken permits for.
    pub(super) fn grant_head(&mut self, board: &Board, wakers: &mut Wakers) {
        if let Some(head) = self.entries.pop_front() {
            self.publish_head(board);
            wakers.push(head.waker);
        }
    }

    /// The outcome of a waiter, under the lock. A final outcome is
    /// consumed: the waiter must not ask again. A waiter still queued is
    /// told `Pending`, and learns that it need not lock again until the
    /// next failure.
    pub(super) fn take_outcome(&mut self, board: &Board, waiting: &mut Waiting) -> Outcome {
        if self.position(waiting.id).is_some() {
            waiting.failures_seen = board.failures.load(Ordering::Relaxed);
            return Outcome::Pending;
        }
        if let Some(index) = self.too_large.iter().position(|&(id, _)| id == waiting.id) {
            let (_, capacity) = self.too_large.swap_remove(index);
            return Outcome::TooLarge { capacity };
        }
        if self.closed_from.is_some_and(|from| waiting.id >= from) {
            return Outcome::Closed;
        }
        Outcome::Granted
    }

    /// Removes a waiter that leaves and returns its waker, or `None` if it
    /// is no longer queued (granted or failed meanwhile).
    ///
    /// Wakers leave the queue to be dropped after the lock is released, as
    /// they are woken: dropping the last reference to a task may drop a
    /// permit it holds, whose release takes the lock.
    pub(super) fn remove(&mut self, board: &Board, waiting: &Waiting) -> Option<Waker> {
        let index = self.position(waiting.id)?;
        let entry = self.entries.remove(index)?;
        if index == 0 {
            self.publish_head(board);
        }
        Some(entry.waker)
    }

    /// Gives a queued waiter a new waker, unless the one it holds wakes the
    /// same task, and returns the old one (to drop after the lock); `None`
    /// if it is no longer queued.
    pub(super) fn set_waker(&mut self, waiting: &Waiting, waker: &Waker) -> Option<Waker> {
        let index = self.position(waiting.id)?;
        let entry = &mut self.entries[index];
        if entry.waker.will_wake(waker) {
            return None;
        }
        Some(std::mem::replace(&mut entry.waker, waker.clone()))
    }

    /// Fails, with [`Outcome::TooLarge`], every waiter that needs more than
    /// `capacity`: after a shrink it could never be granted.
    pub(super) fn fail_larger_than(&mut self, board: &Board, capacity: usize, wakers: &mut Wakers) {
        let before = self.entries.len();
        let too_large = &mut self.too_large;
        self.entries.retain_mut(|entry| {
            let fits = entry.needed <= capacity;
            if !fits {
                too_large.push((entry.id, capacity));
                wakers.push(std::mem::replace(&mut entry.waker, Waker::noop().clone()));
            }
            fits
        });
        if self.entries.len() != before {
            self.record_failure(board);
        }
    }

    /// Fails every waiter with [`Outcome::Closed`].
    pub(super) fn close_all(&mut self, board: &Board, wakers: &mut Wakers) {
        if self.closed_from.is_none() {
            self.closed_from = Some(self.entries.front().map_or(self.next_id, |entry| entry.id));
        }
        if self.entries.is_empty() {
            return;
        }
        for entry in self.entries.drain(..) {
            wakers.push(entry.waker);
        }
        self.record_failure(board);
    }

    /// Counts a failure, then moves the head: in this order, so that a
    /// waiter that sees the head past it sees the count too.
    fn record_failure(&self, board: &Board) {
        board.failures.fetch_add(1, Ordering::Release);
        self.publish_head(board);
    }

    /// Publishes the head's id (or the next id): `Release`, so that a
    /// waiter that sees it past its own id sees what happened before.
    fn publish_head(&self, board: &Board) {
        let head = self.entries.front().map_or(self.next_id, |entry| entry.id);
        board.head.store(head, Ordering::Release);
    }

    fn position(&self, id: u64) -> Option<usize> {
        self.entries.binary_search_by_key(&id, |entry| entry.id).ok()
    }

    /// Whether no failed waiter's record is left (for the tests' checks
    /// that a semaphore is at rest).
    #[cfg(test)]
    pub(super) fn has_no_records(&self) -> bool {
        self.too_large.is_empty()
    }
}

/// Wakers collected under the lock, woken after it is released so that a
/// woken task never finds the lock still held.
#[derive(Debug, Default)]
pub(super) struct Wakers {
    /// The common case, one waiter granted, needs no allocation.
    first: Option<Waker>,
    rest: Vec<Waker>,
}

impl Wakers {
    pub(super) fn push(&mut self, waker: Waker) {
        if self.first.is_none() {
            self.first = Some(waker);
        } else {
            self.rest.push(waker);
        }
    }

    pub(super) fn wake_all(self) {
        if let Some(first) = self.first {
            first.wake();
        }
        for waker in self.rest {
            waker.wake();
        }
    }
}
