//! The tasks that feed a pipeline: an iterator, a stream, a channel, or a
//! generator function.

use std::fmt;
use std::future::Future;

use conc_core::Token;
use conc_core::channel::{Receiver, SendError, TryRecvError};
use futures_core::Stream;
use futures_lite::{StreamExt, future};
use tokio::time::Instant;

use crate::link::LinkTx;
use crate::run::StageCtx;
use crate::stage::Outbox;

/// Sends `chunk`, counting it as produced; on failure counts it dropped.
async fn emit<T>(ctx: &StageCtx, out: &mut Outbox<T>, chunk: Vec<T>) -> bool {
    ctx.stats.add_in(chunk.len());
    let mut items = chunk.into_iter();
    while out.fill(&mut items) {
        if let Err(lost) = out.flush(&ctx.stats).await {
            ctx.run.drop_items(lost + items.len());
            return false;
        }
    }
    match out.flush(&ctx.stats).await {
        Ok(()) => true,
        Err(lost) => {
            ctx.run.drop_items(lost);
            false
        }
    }
}

pub(crate) async fn from_iter<I>(ctx: StageCtx, iter: I, output: LinkTx<I::Item>)
where
    I: Iterator,
{
    let mut out = Outbox::new(output);
    let mut iter = iter;
    loop {
        if ctx.run.is_cancelled() {
            ctx.run.stopped_early();
            return;
        }
        // Straight from the iterator into the outgoing chunk: no copy.
        let started = Instant::now();
        let more = out.fill(&mut iter);
        ctx.stats.add_in(out.held());
        ctx.stats.add_busy(started.elapsed());
        if let Err(lost) = out.flush(&ctx.stats).await {
            ctx.run.drop_items(lost);
            return;
        }
        if !more {
            return;
        }
    }
}

pub(crate) async fn from_stream<S>(ctx: StageCtx, stream: S, output: LinkTx<S::Item>)
where
    S: Stream,
{
    let chunk_size = output.chunk;
    let mut out = Outbox::new(output);
    let mut stream = std::pin::pin!(stream);
    let token = ctx.run.token.clone();
    loop {
        let first = future::or(async { Some(stream.next().await) }, async {
            token.cancelled().await;
            None
        })
        .await;
        let first = match first {
            None => {
                ctx.run.stopped_early();
                return;
            }
            Some(None) => return,
            Some(Some(item)) => item,
        };
        // Take what else is ready now, without waiting for more.
        let mut chunk = vec![first];
        let mut ended = false;
        while chunk.len() < chunk_size {
            match future::poll_once(stream.next()).await {
                Some(Some(item)) => chunk.push(item),
                Some(None) => {
                    ended = true;
                    break;
                }
                None => break,
            }
        }
        if !emit(&ctx, &mut out, chunk).await || ended {
            return;
        }
    }
}

pub(crate) async fn from_receiver<T, R>(ctx: StageCtx, mut receiver: R, output: LinkTx<T>)
where
    T: Send,
    R: Receiver<T>,
{
    let chunk_size = output.chunk;
    let mut out = Outbox::new(output);
    let token = ctx.run.token.clone();
    loop {
        let Ok(first) = receiver.recv_until(&token).await else {
            if token.is_cancelled() {
                ctx.run.stopped_early();
            }
            return;
        };
        let mut chunk = vec![first];
        let mut ended = false;
        while chunk.len() < chunk_size {
            match receiver.try_recv() {
                Ok(item) => chunk.push(item),
                Err(TryRecvError::Empty) => break,
                Err(_) => {
                    ended = true;
                    break;
                }
            }
        }
        if !emit(&ctx, &mut out, chunk).await || ended {
            return;
        }
    }
}

pub(crate) async fn generate<T, F, Fut>(ctx: StageCtx, generator: F, output: LinkTx<T>)
where
    F: FnOnce(Emitter<T>, Token) -> Fut,
    Fut: Future<Output = ()>,
{
    let token = ctx.run.token.clone();
    let emitter = Emitter { ctx: ctx.clone(), link: output };
    let finished = future::or(
        async {
            generator(emitter, token.clone()).await;
            true
        },
        async {
            token.cancelled().await;
            false
        },
    )
    .await;
    if !finished {
        ctx.run.stopped_early();
    }
}

/// The sending side handed to a [`Pipeline::generate`](crate::Pipeline::generate)
/// function: Go's `out <- v` in a generator goroutine.
pub struct Emitter<T> {
    ctx: StageCtx,
    link: LinkTx<T>,
}

impl<T> Emitter<T> {
    /// Sends one item into the pipeline, waiting while the first stage's
    /// channel is full.
    ///
    /// # Errors
    ///
    /// [`SendError::Cancelled`] with the item if the pipeline was cancelled
    /// (or failed), [`SendError::Closed`] if it stopped consuming; either
    /// way the generator should return.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes drops the item unsent.
    pub async fn send(&self, item: T) -> Result<(), SendError<T>> {
        if self.ctx.run.is_cancelled() {
            return Err(SendError::Cancelled(item));
        }
        self.ctx.stats.add_in(1);
        match self.link.send(vec![item], &self.ctx.stats).await {
            Ok(_) => Ok(()),
            // A refused chunk comes back whole, so it holds the one item.
            Err(unsent) => match unsent.into_iter().next() {
                Some(item) if self.ctx.run.is_cancelled() => Err(SendError::Cancelled(item)),
                Some(item) => Err(SendError::Closed(item)),
                None => Ok(()),
            },
        }
    }

    /// Whether the pipeline was cancelled: the generator should stop.
    pub fn is_cancelled(&self) -> bool {
        self.ctx.run.is_cancelled()
    }
}

impl<T> fmt::Debug for Emitter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emitter").field("cancelled", &self.is_cancelled()).finish()
    }
}
