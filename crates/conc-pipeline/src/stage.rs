//! The loops of the sequential stages: one task per stage.

use std::mem;
use std::time::Duration;

use futures_lite::future;
use tokio::time::Instant;

use crate::error::BoxError;
use crate::link::{LinkRx, LinkTx};
use crate::policy::{ErrorPolicy, Verdict};
use crate::report::StageStats;
use crate::run::StageCtx;

/// A stage's output chunk being filled, and the link it goes to.
pub(crate) struct Outbox<U> {
    link: LinkTx<U>,
    buf: Vec<U>,
    waited: Duration,
}

impl<U> Outbox<U> {
    pub(crate) fn new(link: LinkTx<U>) -> Self {
        let buf = Vec::with_capacity(link.chunk);
        Outbox { link, buf, waited: Duration::ZERO }
    }

    /// Adds one item, sending the chunk once it is full. On a closed link,
    /// returns how many items were lost with the chunk.
    pub(crate) async fn push(&mut self, value: U, stats: &StageStats) -> Result<(), usize> {
        self.buf.push(value);
        if self.buf.len() >= self.link.chunk { self.flush(stats).await } else { Ok(()) }
    }

    /// Sends the chunk now, if it holds anything.
    pub(crate) async fn flush(&mut self, stats: &StageStats) -> Result<(), usize> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = mem::replace(&mut self.buf, Vec::with_capacity(self.link.chunk));
        match self.link.send(chunk, stats).await {
            Ok(waited) => {
                self.waited += waited;
                Ok(())
            }
            Err(unsent) => Err(unsent.len()),
        }
    }

    /// Items held, not yet sent.
    pub(crate) fn held(&self) -> usize {
        self.buf.len()
    }

    /// Time spent waiting for downstream room since the last call.
    pub(crate) fn take_waited(&mut self) -> Duration {
        mem::take(&mut self.waited)
    }
}

/// One sequential stage: each input item becomes zero or more output items
/// (`map`, `filter`, `filter_map`, `flat_map`, `inspect`, `buffer`,
/// `unbatch` and their fallible forms).
pub(crate) async fn sync_stage<T, U, I, S>(
    ctx: StageCtx,
    input: LinkRx<T>,
    output: LinkTx<U>,
    policy: ErrorPolicy,
    mut step: S,
) where
    S: FnMut(T) -> Result<I, BoxError>,
    I: IntoIterator<Item = U>,
{
    let run = &ctx.run;
    let stats = &ctx.stats;
    let mut out = Outbox::new(output);
    loop {
        let Ok(chunk) = input.rx.recv().await else {
            if run.is_cancelled() {
                run.stopped_early();
            }
            break;
        };
        if run.is_cancelled() {
            run.drop_items(chunk.len() + out.held());
            run.abandon_chunks(&input.rx);
            return;
        }
        let started = Instant::now();
        stats.add_in(chunk.len());
        let mut items = chunk.into_iter();
        while let Some(item) = items.next() {
            match step(item) {
                Ok(values) => {
                    for value in values {
                        if let Err(lost) = out.push(value, stats).await {
                            run.drop_items(lost + items.len());
                            run.abandon_chunks(&input.rx);
                            return;
                        }
                    }
                }
                Err(error) => {
                    if let Verdict::Stop = policy.handle(&ctx, error).await {
                        run.drop_items(out.held() + items.len());
                        run.abandon_chunks(&input.rx);
                        return;
                    }
                }
            }
        }
        // Hold a partial chunk only while more input is already waiting, so
        // no item waits on input that may be slow to come.
        if input.rx.is_empty()
            && let Err(lost) = out.flush(stats).await
        {
            run.drop_items(lost);
            run.abandon_chunks(&input.rx);
            return;
        }
        stats.add_busy(started.elapsed().saturating_sub(out.take_waited()));
    }
    if let Err(lost) = out.flush(stats).await {
        run.drop_items(lost);
    }
}

/// `batch(size, max_wait)`: groups items into batches of `size`, sending a
/// partial batch once its first item has waited `max_wait`.
pub(crate) async fn batch_stage<T>(
    ctx: StageCtx,
    input: LinkRx<T>,
    output: LinkTx<Vec<T>>,
    size: usize,
    max_wait: Duration,
) {
    let run = &ctx.run;
    let stats = &ctx.stats;
    let mut out = Outbox::new(output);
    let mut batch: Vec<T> = Vec::new();
    let mut deadline: Option<Instant> = None;
    // One timer, re-armed per batch: registering a new one per receive
    // would cost more than the batching saves.
    let timer = tokio::time::sleep(max_wait);
    let mut timer = std::pin::pin!(timer);
    loop {
        let received = match deadline {
            None => Some(input.rx.recv().await),
            Some(_) => {
                future::or(async { Some(input.rx.recv().await) }, async {
                    timer.as_mut().await;
                    None
                })
                .await
            }
        };
        match received {
            None => {
                // The oldest item waited max_wait: send what there is.
                deadline = None;
                let partial = mem::take(&mut batch);
                if let Err(lost) = push_flush(&mut out, partial, stats).await {
                    run.drop_items(lost);
                    run.abandon_chunks(&input.rx);
                    return;
                }
            }
            Some(Err(_)) => {
                if run.is_cancelled() {
                    run.drop_items(batch.len() + out.held());
                    return;
                }
                break;
            }
            Some(Ok(chunk)) => {
                if run.is_cancelled() {
                    run.drop_items(chunk.len() + batch.len() + out.held());
                    run.abandon_chunks(&input.rx);
                    return;
                }
                let started = Instant::now();
                stats.add_in(chunk.len());
                for item in chunk {
                    if batch.is_empty() {
                        batch.reserve(size);
                        let at = Instant::now() + max_wait;
                        deadline = Some(at);
                        timer.as_mut().reset(at);
                    }
                    batch.push(item);
                    if batch.len() == size {
                        deadline = None;
                        let full = mem::take(&mut batch);
                        if let Err(lost) = out.push(full, stats).await {
                            run.drop_items(lost + batch.len());
                            run.abandon_chunks(&input.rx);
                            return;
                        }
                    }
                }
                if input.rx.is_empty()
                    && let Err(lost) = out.flush(stats).await
                {
                    run.drop_items(lost + batch.len());
                    run.abandon_chunks(&input.rx);
                    return;
                }
                stats.add_busy(started.elapsed().saturating_sub(out.take_waited()));
            }
        }
    }
    if !batch.is_empty() {
        out.buf.push(batch);
    }
    if let Err(lost) = out.flush(stats).await {
        run.drop_items(lost);
    }
}

async fn push_flush<T>(out: &mut Outbox<Vec<T>>, batch: Vec<T>, stats: &StageStats) -> Result<(), usize> {
    out.buf.push(batch);
    out.flush(stats).await
}
