//! The bounded channels between stages.
//!
//! A link moves items in chunks (a `Vec` of up to [`MAX_CHUNK`] items) so
//! cheap items do not pay one channel operation each, while the capacity a
//! user sets still bounds items, not chunks: a link of capacity `c` has
//! chunks of at most `min(c, MAX_CHUNK)` items and `c / chunk` slots.
//! Stages never hold an item back to fill a chunk: a chunk leaves as soon as
//! its stage would otherwise wait for more input.

use std::sync::Arc;
use std::time::Duration;

use async_channel::{Receiver, Sender, TrySendError};
use tokio::time::Instant;

use crate::report::StageStats;
use crate::run::RunShared;

/// The most items one chunk carries between two stages.
pub(crate) const MAX_CHUNK: usize = 64;

/// The capacity (in items) of a stage's output channel when none is set
/// with [`Pipeline::capacity`](crate::Pipeline::capacity): four full chunks, so
/// a stage can fill one while its consumer drains others.
pub const DEFAULT_CAPACITY: usize = 256;

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
    link_shared(run, capacity, 1)
}

/// A link of `capacity` items fed by `senders` tasks at once (the workers
/// of a parallel stage): each sends chunks of a share of the usual size,
/// so together they hold about one chunk, and the link has a slot for
/// each small chunk.
pub(crate) fn link_shared<T: Send + 'static>(
    run: &Arc<RunShared>,
    capacity: usize,
    senders: usize,
) -> (LinkTx<T>, LinkRx<T>) {
    let chunk = (capacity.clamp(1, MAX_CHUNK) / senders.max(1)).max(1);
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
