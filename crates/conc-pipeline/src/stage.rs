//! The loops of the sequential stages: one task per stage.

use std::future::Future;
use std::mem;
use std::pin::{Pin, pin};
use std::task::{Context, Poll};
use std::time::Duration;

use async_channel::TrySendError;
use conc_core::Cancelled;
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
    hold: Hold,
}

impl<U> Outbox<U> {
    pub(crate) fn new(link: LinkTx<U>) -> Self {
        let buf = Vec::with_capacity(link.chunk);
        Outbox { link, buf, waited: Duration::ZERO, hold: Hold::default() }
    }

    /// Adds one item, sending the chunk once it is full. On a closed link,
    /// returns how many items were lost with the chunk.
    pub(crate) async fn push(&mut self, value: U, stats: &StageStats) -> Result<(), usize> {
        self.buf.push(value);
        if self.is_full() { self.flush(stats).await } else { Ok(()) }
    }

    /// Moves items from `values` into the chunk until it is full (true:
    /// flush it, then call again) or `values` runs out (false). A plain
    /// move, so a whole run of items costs one bounds check, not an await
    /// each.
    pub(crate) fn fill(&mut self, values: &mut impl Iterator<Item = U>) -> bool {
        let room = self.link.chunk.saturating_sub(self.buf.len());
        self.buf.extend(values.take(room));
        self.is_full()
    }

    fn is_full(&self) -> bool {
        self.buf.len() >= self.link.chunk
    }

    /// Sends the chunk now, if it holds anything.
    pub(crate) async fn flush(&mut self, stats: &StageStats) -> Result<(), usize> {
        if self.buf.is_empty() {
            return Ok(());
        }
        // Size the next chunk like this one: full chunks keep coming in a
        // busy pipeline, small ones in a slow one, where a full-size
        // allocation per item would be waste (large for large items).
        let next = Vec::with_capacity(self.buf.len());
        let chunk = mem::replace(&mut self.buf, next);
        self.hold.sent();
        match self.link.send(chunk, stats).await {
            Ok(waited) => {
                self.waited += waited;
                Ok(())
            }
            Err(unsent) => Err(unsent.len()),
        }
    }

    /// Sends the chunk if the link has room now. A full link keeps it held:
    /// its consumer has work queued and gains nothing from these items yet.
    /// On a closed link, returns how many items were lost with the chunk.
    pub(crate) fn try_flush(&mut self, stats: &StageStats) -> Result<(), usize> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let items = self.buf.len();
        let chunk = mem::take(&mut self.buf);
        match self.link.tx.try_send(chunk) {
            Ok(()) => {
                stats.add_out(items);
                self.buf = Vec::with_capacity(items);
                self.hold.sent();
                Ok(())
            }
            Err(TrySendError::Full(chunk)) => {
                self.buf = chunk;
                Ok(())
            }
            Err(TrySendError::Closed(_)) => Err(items),
        }
    }

    /// Items held, not yet sent.
    pub(crate) fn held(&self) -> usize {
        self.buf.len()
    }

    /// [`Hold::poll_call`] for the items this outbox holds.
    pub(crate) fn poll_call<F: Future>(
        &mut self,
        call: Pin<&mut F>,
        cancelled: Pin<&mut Cancelled<'_>>,
        cx: &mut Context<'_>,
    ) -> Poll<Called<F::Output>> {
        let held = !self.buf.is_empty();
        self.hold.poll_call(call, cancelled, held, cx)
    }

    /// Time spent waiting for downstream room since the last call.
    pub(crate) fn take_waited(&mut self) -> Duration {
        mem::take(&mut self.waited)
    }
}

/// How long `then` may hold finished results in a partial chunk while a
/// later call waits, before sending them on. Sending a chunk can cost a
/// wake-up of the consumer's thread (microseconds): calls that wait only
/// briefly (a scheduler round trip) would pay that per item if results were
/// sent at every wait, while calls that wait longer pay it at most once per
/// `HOLD`. So a result waits about `HOLD` at most for later calls, unless
/// the consumer is busy anyway (the link is full); then it leaves with the
/// stage's next send.
pub(crate) const HOLD: Duration = Duration::from_millis(1);

/// How one awaited call of a stage's function ended.
pub(crate) enum Called<R> {
    /// It completed.
    Done(R),
    /// The results held have waited [`HOLD`]: send them, then wait again.
    Due,
    /// The run was cancelled first.
    Cancelled,
}

/// The timer of [`HOLD`], for the results one stage task holds.
#[derive(Default)]
pub(crate) struct Hold {
    /// Made at the first wait with results held: a stage whose calls never
    /// wait needs no timer (nor a runtime with timers enabled).
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    state: HoldState,
}

#[derive(Clone, Copy, Default, PartialEq, Eq)]
enum HoldState {
    /// No wait has started for the results held.
    #[default]
    Idle,
    /// The timer runs for the results held.
    Armed,
    /// It fired but the link was full, its consumer busy: the results wait
    /// for the stage's next send, with no timer running meanwhile.
    Spent,
}

impl Hold {
    /// The results held were sent: the next ones start a new wait.
    pub(crate) fn sent(&mut self) {
        self.state = HoldState::Idle;
    }

    /// Polls `call`; while it waits, also the run's cancellation and, if
    /// results are `held`, the hold timer. The call is polled first and
    /// once per wake-up, as a plain `.await` would.
    pub(crate) fn poll_call<F: Future>(
        &mut self,
        call: Pin<&mut F>,
        cancelled: Pin<&mut Cancelled<'_>>,
        held: bool,
        cx: &mut Context<'_>,
    ) -> Poll<Called<F::Output>> {
        if let Poll::Ready(output) = call.poll(cx) {
            return Poll::Ready(Called::Done(output));
        }
        if cancelled.poll(cx).is_ready() {
            return Poll::Ready(Called::Cancelled);
        }
        if !held || self.state == HoldState::Spent {
            return Poll::Pending;
        }
        if self.state == HoldState::Idle {
            let due = Instant::now() + HOLD;
            match &mut self.timer {
                Some(timer) => timer.as_mut().reset(due),
                None => self.timer = Some(Box::pin(tokio::time::sleep_until(due))),
            }
            self.state = HoldState::Armed;
        }
        if self.timer.as_mut().is_some_and(|timer| timer.as_mut().poll(cx).is_ready()) {
            self.state = HoldState::Spent;
            return Poll::Ready(Called::Due);
        }
        Poll::Pending
    }
}

/// One sequential stage: each input item becomes zero or more output items
/// (`map`, `filter`, `filter_map`, `flat_map`, `inspect`, `buffer`,
/// `unbatch`, `then` and their fallible forms).
///
/// `step` returns a future: the plain closures are wrapped in
/// [`std::future::Ready`], which the first poll completes, so they pay no
/// wait; only `then`'s futures truly wait. While one does, the results held
/// are sent on after [`HOLD`] if the link has room, and a cancel drops the
/// call.
pub(crate) async fn sequential_stage<T, U, I, S, Fut>(
    ctx: StageCtx,
    input: LinkRx<T>,
    output: LinkTx<U>,
    policy: ErrorPolicy,
    mut step: S,
) where
    S: FnMut(T) -> Fut,
    Fut: Future<Output = Result<I, BoxError>>,
    I: IntoIterator<Item = U>,
{
    let run = &ctx.run;
    let stats = &ctx.stats;
    let mut out = Outbox::new(output);
    // Polled only while a call waits; registers with the token once. Its
    // poll takes the run token's mutex, which only registrations and the
    // cancel itself contend for.
    let mut cancelled = pin!(run.token.cancelled());
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
            let mut call = pin!(step(item));
            let result = loop {
                let called = future::poll_fn(|cx| out.poll_call(call.as_mut(), cancelled.as_mut(), cx));
                match called.await {
                    Called::Done(result) => break result,
                    Called::Due => {
                        if let Err(lost) = out.try_flush(stats) {
                            run.drop_items(lost + 1 + items.len());
                            run.abandon_chunks(&input.rx);
                            return;
                        }
                    }
                    Called::Cancelled => {
                        run.drop_items(1 + items.len() + out.held());
                        run.abandon_chunks(&input.rx);
                        return;
                    }
                }
            };
            match result {
                Ok(values) => {
                    let mut values = values.into_iter();
                    while out.fill(&mut values) {
                        if let Err(lost) = out.flush(stats).await {
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
    // When the batch being filled is due; `None` while there is none.
    let mut deadline: Option<Instant> = None;
    // One timer, moved only when it fires: resetting a tokio `Sleep`
    // re-registers it with the timer wheel, which per batch would cost more
    // than filling a batch of cheap items. Deadlines only move later, so the
    // timer is never later than the current batch's deadline: at worst it
    // fires early (for an earlier batch, or long ago) and is moved on then,
    // once per `max_wait` at most.
    let mut timer = pin!(tokio::time::sleep(max_wait));
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
                let Some(due) = deadline else { continue };
                if timer.deadline() < due {
                    timer.as_mut().reset(due);
                    continue;
                }
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
                let mut items = chunk.into_iter();
                while items.len() > 0 {
                    if batch.is_empty() {
                        batch.reserve(size);
                        deadline = Some(due_after(max_wait));
                    }
                    batch.extend(items.by_ref().take(size - batch.len()));
                    if batch.len() == size {
                        deadline = None;
                        let full = mem::take(&mut batch);
                        if let Err(lost) = out.push(full, stats).await {
                            run.drop_items(lost + items.len());
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

/// `max_wait` from now; a wait too long to represent never ends in practice
/// (tokio's `sleep` takes the same view).
fn due_after(max_wait: Duration) -> Instant {
    const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    let now = Instant::now();
    now.checked_add(max_wait).or_else(|| now.checked_add(FOREVER)).unwrap_or(now)
}

async fn push_flush<T>(out: &mut Outbox<Vec<T>>, batch: Vec<T>, stats: &StageStats) -> Result<(), usize> {
    out.buf.push(batch);
    out.flush(stats).await
}
