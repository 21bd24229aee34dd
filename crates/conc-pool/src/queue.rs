//! The job queue: a lock-free MPMC queue plus one event idle workers wait
//! on, woken sparingly.
//!
//! A `CpuPool`'s jobs wait in a ring allocated once, as large as the pool
//! lets jobs be in flight (up to [`RING_MAX`]). An unbounded queue
//! allocates a block every few dozen pushes, freed by the worker that
//! empties it; with submitters and workers on different threads (always,
//! for a `CpuPool`) the allocator's lock then passes between them, which
//! cost a one-worker pool about a fifth of its throughput on short jobs.
//! Jobs that do not fit (the ring's cap, or a `resize` that raised the
//! limit) go to an unbounded overflow queue; while it holds any, new jobs
//! go there too, so each submitter's jobs still start in the order it
//! submitted them. An async `Pool` has no ring: its submitters and workers
//! share the runtime's threads, where the unbounded queue's blocks come
//! back warm from the thread's own allocator cache, and a ring's slots,
//! spread over many cache lines, measured slower.
//!
//! A push wakes an idle worker only if none is already woken and on its
//! way (`notify(1)` is a single atomic load while a woken listener has not
//! yet run), and a worker that takes a job while more wait wakes the next
//! one, as tokio's scheduler does with its searching workers. So a burst
//! of jobs costs one wake-up per worker that joins in, not one per job,
//! and no job waits while a worker idles.

use std::sync::atomic::{AtomicUsize, Ordering, fence};

use concurrent_queue::{ConcurrentQueue, PopError, PushError};
use event_listener::Event;

/// The queue is empty (`Empty`) or closed and drained (`Closed`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Empty {
    Empty,
    Closed,
}

/// The most slots the ring gets: a pool allowed more jobs in flight keeps
/// the rest in the overflow queue.
pub(crate) const RING_MAX: usize = 1 << 16;

pub(crate) struct Queue<T> {
    /// Absent for an async pool.
    ring: Option<ConcurrentQueue<T>>,
    /// Jobs beyond the ring, behind every job in it.
    overflow: ConcurrentQueue<T>,
    ready: Event,
    /// Workers waiting in `pop`.
    idle: AtomicUsize,
}

impl<T> Queue<T> {
    /// A queue whose ring holds `ring` jobs (at most [`RING_MAX`]; none if 0).
    pub(crate) fn new(ring: usize) -> Queue<T> {
        Queue {
            ring: (ring > 0).then(|| ConcurrentQueue::bounded(ring.min(RING_MAX))),
            overflow: ConcurrentQueue::unbounded(),
            ready: Event::new(),
            idle: AtomicUsize::new(0),
        }
    }

    /// Queues `item`, waking an idle worker if none is on its way; hands it
    /// back if the queue is closed.
    pub(crate) fn push(&self, item: T) -> Result<(), T> {
        let full = match &self.ring {
            Some(ring) if self.overflow.is_empty() => match ring.push(item) {
                Ok(()) => None,
                Err(PushError::Full(item)) => Some(item),
                Err(PushError::Closed(item)) => return Err(item),
            },
            _ => Some(item),
        };
        if let Some(item) = full {
            self.overflow.push(item).map_err(PushError::into_inner)?;
        }
        // Pairs with the fence in `pop`: either the worker counted idle
        // there sees this item, or this sees it idle and wakes it.
        fence(Ordering::SeqCst);
        if self.idle.load(Ordering::SeqCst) > 0 {
            self.ready.notify(1);
        }
        Ok(())
    }

    /// Takes the next item without waiting.
    pub(crate) fn try_pop(&self) -> Result<T, Empty> {
        let popped = match self.ring.as_ref().map_or(Err(PopError::Closed), ConcurrentQueue::pop) {
            Ok(item) => Ok(item),
            // The overflow's jobs are behind the ring's: they come next.
            Err(ring) => self.overflow.pop().map_err(|overflow| (ring, overflow)),
        };
        match popped {
            Ok(item) => {
                // More wait: pass the wake-up on so another idle worker
                // joins in. The idle count first: it rarely changes, while
                // the queue's tail is written by every push.
                if self.idle.load(Ordering::Relaxed) > 0 && !self.is_empty() {
                    self.ready.notify(1);
                }
                Ok(item)
            }
            // Both are closed at once; until both say so, it may still fill.
            Err((PopError::Closed, PopError::Closed)) => Err(Empty::Closed),
            Err(_) => Err(Empty::Empty),
        }
    }

    /// Waits for the next item; `None` once the queue is closed and drained.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: an item is taken only in the poll that returns it, and
    /// a dropped wake-up is passed on to another waiter.
    pub(crate) async fn pop(&self) -> Option<T> {
        self.idle.fetch_add(1, Ordering::SeqCst);
        let _idle = Idle(&self.idle);
        loop {
            match self.try_pop() {
                Ok(item) => return Some(item),
                Err(Empty::Closed) => return None,
                Err(Empty::Empty) => {}
            }
            let listener = self.ready.listen();
            fence(Ordering::SeqCst);
            match self.try_pop() {
                Ok(item) => return Some(item),
                Err(Empty::Closed) => return None,
                Err(Empty::Empty) => listener.await,
            }
        }
    }

    /// Workers waiting in `pop` now.
    pub(crate) fn idle(&self) -> usize {
        self.idle.load(Ordering::SeqCst)
    }

    /// Closes the queue: pushes fail, items already in it can still be
    /// taken, and waiting workers wake to find it drained.
    pub(crate) fn close(&self) {
        if let Some(ring) = &self.ring {
            ring.close();
        }
        self.overflow.close();
        self.ready.notify(usize::MAX);
    }

    pub(crate) fn len(&self) -> usize {
        self.ring.as_ref().map_or(0, ConcurrentQueue::len) + self.overflow.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ring.as_ref().is_none_or(ConcurrentQueue::is_empty) && self.overflow.is_empty()
    }
}

/// Counts a worker idle while it waits in `pop`, however the wait ends.
struct Idle<'a>(&'a AtomicUsize);

impl Drop for Idle<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(all(test, not(conc_loom)))]
mod tests {
    use super::*;

    fn drain(queue: &Queue<u32>) -> Vec<u32> {
        std::iter::from_fn(|| queue.try_pop().ok()).collect()
    }

    #[test]
    fn jobs_past_the_ring_wait_behind_it_and_keep_their_order() {
        let queue = Queue::new(2);
        for job in 1..=5 {
            queue.push(job).unwrap();
        }
        assert_eq!(queue.len(), 5);
        assert_eq!(queue.try_pop(), Ok(1));
        // The ring has room again, but older jobs wait in the overflow:
        // this one goes behind them.
        queue.push(6).unwrap();
        assert_eq!(drain(&queue), [2, 3, 4, 5, 6]);
        assert!(queue.is_empty());
        // Once the overflow is empty, the ring takes jobs again.
        queue.push(7).unwrap();
        assert_eq!(queue.ring.as_ref().map(ConcurrentQueue::len), Some(1));
        assert_eq!(queue.try_pop(), Ok(7));
    }

    #[test]
    fn a_closed_queue_hands_out_what_it_holds_then_says_closed() {
        let queue = Queue::new(1);
        queue.push(1).unwrap();
        queue.push(2).unwrap();
        queue.close();
        assert_eq!(queue.push(3), Err(3));
        assert_eq!(drain(&queue), [1, 2]);
        assert_eq!(queue.try_pop(), Err(Empty::Closed));
    }

    #[test]
    fn the_ring_is_sized_as_asked_within_bounds() {
        let ring = |slots| Queue::<u32>::new(slots).ring.and_then(|ring| ring.capacity());
        assert_eq!(ring(0), None);
        assert_eq!(ring(10), Some(10));
        assert_eq!(ring(usize::MAX), Some(RING_MAX));
    }

    #[test]
    fn without_a_ring_every_job_goes_through_the_overflow_in_order() {
        let queue = Queue::new(0);
        for job in 1..=3 {
            queue.push(job).unwrap();
        }
        assert_eq!(drain(&queue), [1, 2, 3]);
        queue.close();
        assert_eq!(queue.try_pop(), Err(Empty::Closed));
    }
}
