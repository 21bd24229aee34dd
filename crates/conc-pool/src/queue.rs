//! The job queue: a lock-free MPMC queue plus one event idle workers wait
//! on, woken sparingly.
//!
//! A push wakes an idle worker only if none is already woken and on its
//! way (`notify(1)` is a single atomic load while a woken listener has not
//! yet run), and a worker that takes a job while more wait wakes the next
//! one, as tokio's scheduler does with its searching workers. So a burst
//! of jobs costs one wake-up per worker that joins in, not one per job,
//! and no job waits while a worker idles.

use std::sync::atomic::{AtomicUsize, Ordering, fence};

use concurrent_queue::{ConcurrentQueue, PopError};
use event_listener::Event;

/// The queue is empty (`Empty`) or closed and drained (`Closed`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Empty {
    Empty,
    Closed,
}

pub(crate) struct Queue<T> {
    items: ConcurrentQueue<T>,
    ready: Event,
    /// Workers waiting in `pop`.
    idle: AtomicUsize,
}

impl<T> Queue<T> {
    pub(crate) fn new() -> Queue<T> {
        Queue { items: ConcurrentQueue::unbounded(), ready: Event::new(), idle: AtomicUsize::new(0) }
    }

    /// Queues `item`, waking an idle worker if none is on its way; hands it
    /// back if the queue is closed.
    pub(crate) fn push(&self, item: T) -> Result<(), T> {
        self.items.push(item).map_err(concurrent_queue::PushError::into_inner)?;
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
        match self.items.pop() {
            Ok(item) => {
                // More wait: pass the wake-up on so another idle worker
                // joins in. The idle count first: it rarely changes, while
                // the queue's tail is written by every push.
                if self.idle.load(Ordering::Relaxed) > 0 && !self.items.is_empty() {
                    self.ready.notify(1);
                }
                Ok(item)
            }
            Err(PopError::Empty) => Err(Empty::Empty),
            Err(PopError::Closed) => Err(Empty::Closed),
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
        self.items.close();
        self.ready.notify(usize::MAX);
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// Counts a worker idle while it waits in `pop`, however the wait ends.
struct Idle<'a>(&'a AtomicUsize);

impl Drop for Idle<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
