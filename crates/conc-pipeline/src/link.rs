//! The bounded channels between stages.
//!
//! A link moves items in chunks (a `Vec` of up to [`MAX_CHUNK`] items) so
//! cheap items do not pay one channel operation (and a wake-up of the
//! consumer) each, while the capacity a user sets still bounds items, not
//! chunks: a link of capacity `c` has chunks of at most `min(c, MAX_CHUNK)`
//! items (less after a parallel stage, see [`Feed`]) and `c / chunk` slots.
//! Stages never hold an item back to fill a chunk: a chunk leaves as soon as
//! its stage would otherwise wait for more input.

use std::sync::Arc;
use std::time::Duration;

use async_channel::{Receiver, Sender, TrySendError};
use tokio::time::Instant;

use crate::report::StageStats;
use crate::run::RunShared;

/// The most items one chunk carries between two stages. Every chunk that
/// reaches a consumer parked on another thread costs a wake-up of that
/// thread (a futex call and a context switch: microseconds, tens of them
/// on an idle machine whose cores sleep deeply), by far the largest cost of
/// a cheap item; so chunks are large. Stages send partial chunks rather
/// than wait, so a large chunk adds no latency.
pub(crate) const MAX_CHUNK: usize = 256;

/// The capacity (in items) of a stage's output channel when none is set
/// with [`Pipeline::capacity`](crate::Pipeline::capacity): four full chunks.
///
/// A producer can run at most this far ahead of a consumer on another
/// thread before it must wait for that thread to wake and make room, so the
/// capacity, divided by the wake-up latency, bounds a link's throughput.
/// 1024 keeps a pipeline of cheap items from being bound by wake-ups; lower
/// it for large items.
pub const DEFAULT_CAPACITY: usize = 1024;

/// The sending end of a link.
pub(crate) struct LinkTx<T> {
    pub(crate) tx: Sender<Vec<T>>,
    /// The most items one chunk may carry.
    pub(crate) chunk: usize,
}

impl<T> Clone for LinkTx<T> {
    fn clone(&self) -> Self {
        LinkTx { tx: self.tx.clone(), chunk: self.chunk }
    }
}

/// The receiving end of a link.
pub(crate) struct LinkRx<T> {
    pub(crate) rx: Receiver<Vec<T>>,
}

/// A link of `capacity` items (at least 1), closed when `run` is cancelled.
pub(crate) fn link<T: Send + 'static>(run: &Arc<RunShared>, capacity: usize) -> (LinkTx<T>, LinkRx<T>) {
    link_fed(run, capacity, Feed::Task)
}

/// The most results the workers of a parallel stage hold together before
/// sending them on: less than [`MAX_CHUNK`], because a worker keeps its
/// results while its queue has work and each call may be slow, so the
/// chunk size bounds how long a result waits in a worker's hands.
const WORKERS_CHUNK: usize = 64;

/// What feeds a link.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Feed {
    /// One stage task: chunks of up to [`MAX_CHUNK`].
    Task,
    /// The given number of workers at once: each sends chunks of a share of
    /// [`WORKERS_CHUNK`], so together they hold about one such chunk, and
    /// the link has a slot for each small chunk.
    Workers(usize),
}

/// A link of `capacity` items fed as `feed` says, closed when `run` is
/// cancelled.
pub(crate) fn link_fed<T: Send + 'static>(run: &Arc<RunShared>, capacity: usize, feed: Feed) -> (LinkTx<T>, LinkRx<T>) {
    let chunk = match feed {
        Feed::Task => capacity.clamp(1, MAX_CHUNK),
        Feed::Workers(workers) => (capacity.clamp(1, WORKERS_CHUNK) / workers.max(1)).max(1),
    };
    let slots = (capacity / chunk).max(1);
    let (tx, rx) = async_channel::bounded(slots);
    run.close_on_cancel(&tx);
    (LinkTx { tx, chunk }, LinkRx { rx })
}

impl<T> LinkTx<T> {
    /// Sends one chunk, counting its items out of `stats` and the time spent
    /// waiting for room. Returns the time waited, or the chunk if the link
    /// is closed.
    pub(crate) async fn send(&self, chunk: Vec<T>, stats: &StageStats) -> Result<Duration, Vec<T>> {
        let items = chunk.len();
        match self.tx.try_send(chunk) {
            Ok(()) => {
                stats.add_out(items);
                Ok(Duration::ZERO)
            }
            Err(TrySendError::Closed(chunk)) => Err(chunk),
            Err(TrySendError::Full(chunk)) => {
                let start = Instant::now();
                let sent = self.tx.send(chunk).await;
                let waited = start.elapsed();
                stats.add_waiting(waited);
                match sent {
                    Ok(()) => {
                        stats.add_out(items);
                        Ok(waited)
                    }
                    Err(error) => Err(error.into_inner()),
                }
            }
        }
    }
}
