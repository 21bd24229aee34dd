//! The ends of a pipeline: run it and consume its items.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;

use crate::error::PipelineError;
use crate::link::LinkRx;
use crate::pipeline::Pipeline;
use crate::report::{PipelineReport, Progress};
use crate::run::Run;

/// The next chunk for the sink, or `None` at the end or on cancel (with
/// what was left counted as dropped).
async fn next_chunk<T>(run: &Run, rx: &LinkRx<T>) -> Option<Vec<T>> {
    let shared = &run.inner;
    match rx.rx.recv().await {
        Ok(chunk) if shared.is_cancelled() => {
            shared.drop_items(chunk.len());
            shared.abandon_chunks(&rx.rx);
            None
        }
        Ok(chunk) => Some(chunk),
        Err(_) => {
            if shared.is_cancelled() {
                shared.stopped_early();
            }
            None
        }
    }
}

impl<T: Send + 'static> Pipeline<T> {
    /// Starts every stage task.
    fn launch(self) -> (Run, LinkRx<T>) {
        let run = Run::new(self.shared);
        let rx = (self.start)(&run.inner, self.capacity);
        (run, rx)
    }

    /// Runs the pipeline and awaits `f` on every item, one at a time,
    /// while the stages keep working ahead (up to their capacities).
    /// Returns the report once every task is joined.
    ///
    /// # Errors
    ///
    /// [`PipelineError`] if a stage failed or panicked, or the run was
    /// cancelled; items not yet given to `f` are counted as dropped.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime; and if `f` panics (every stage task is
    /// cancelled and aborted first).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future cancels the run and aborts its tasks.
    pub async fn for_each<F, Fut>(self, mut f: F) -> Result<PipelineReport, PipelineError>
    where
        F: FnMut(T) -> Fut,
        Fut: Future<Output = ()>,
    {
        let (run, rx) = self.launch();
        while let Some(chunk) = next_chunk(&run, &rx).await {
            let mut items = chunk.into_iter();
            while let Some(item) = items.next() {
                if run.inner.is_cancelled() {
                    run.inner.drop_items(1 + items.len());
                    run.inner.abandon_chunks(&rx.rx);
                    break;
                }
                f(item).await;
            }
        }
        drop(rx);
        run.finish().await
    }

    /// Runs the pipeline and collects every item, in the order the last
    /// stage emitted them.
    ///
    /// # Errors
    ///
    /// [`PipelineError`] if a stage failed or panicked, or the run was
    /// cancelled (the items collected so far are discarded; the error's
    /// report counts the ones dropped inside the pipeline).
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future cancels the run and aborts its tasks.
    pub async fn collect(self) -> Result<Vec<T>, PipelineError> {
        let (run, rx) = self.launch();
        let mut items = Vec::new();
        while let Some(chunk) = next_chunk(&run, &rx).await {
            items.extend(chunk);
        }
        drop(rx);
        run.finish().await.map(|_| items)
    }

    /// Runs the pipeline and folds every item into an accumulator.
    ///
    /// # Errors
    ///
    /// As [`collect`](Pipeline::collect).
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, and if `f` panics.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future cancels the run and aborts its tasks.
    pub async fn fold<A, F>(self, init: A, mut f: F) -> Result<A, PipelineError>
    where
        F: FnMut(A, T) -> A,
    {
        let (run, rx) = self.launch();
        let mut acc = init;
        while let Some(chunk) = next_chunk(&run, &rx).await {
            for item in chunk {
                acc = f(acc, item);
            }
        }
        drop(rx);
        run.finish().await.map(|_| acc)
    }

    /// Runs the pipeline for its effects, discarding the items, and returns
    /// the report.
    ///
    /// # Errors
    ///
    /// As [`collect`](Pipeline::collect).
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future cancels the run and aborts its tasks.
    pub async fn run(self) -> Result<PipelineReport, PipelineError> {
        let (run, rx) = self.launch();
        while next_chunk(&run, &rx).await.is_some() {}
        drop(rx);
        run.finish().await
    }

    /// Starts the pipeline and returns its output as a
    /// `futures_core::Stream`. Call [`PipelineStream::finish`] at the end
    /// for the report; dropping the stream cancels the run instead.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn into_stream(self) -> PipelineStream<T> {
        let progress = self.progress();
        let (run, rx) = self.launch();
        PipelineStream { run, rx: Box::pin(rx.rx), current: Vec::new().into_iter(), ended: false, progress }
    }
}

/// The output of a running pipeline, as a stream
/// ([`Pipeline::into_stream`]).
///
/// The stream ends when the last stage is done, or early if the run is
/// cancelled or fails; [`finish`](PipelineStream::finish) says which.
pub struct PipelineStream<T> {
    run: Run,
    rx: Pin<Box<async_channel::Receiver<Vec<T>>>>,
    current: std::vec::IntoIter<T>,
    ended: bool,
    progress: Progress,
}

impl<T> PipelineStream<T> {
    /// Joins every stage task and returns the report. If the stream was not
    /// read to its end, the run is cancelled first and the items not read
    /// are counted as dropped.
    ///
    /// # Errors
    ///
    /// As [`Pipeline::collect`]; stopping early gives
    /// [`PipelineError::Cancelled`].
    pub async fn finish(self) -> Result<PipelineReport, PipelineError> {
        let PipelineStream { run, rx, current, ended, progress: _ } = self;
        if !ended || current.len() > 0 {
            run.inner.drop_items(current.len());
            run.inner.token.cancel();
            run.inner.abandon_chunks(&rx);
        }
        drop(rx);
        run.finish().await
    }

    /// The live counters of the running pipeline.
    pub fn progress(&self) -> Progress {
        self.progress.clone()
    }

    /// Cancels the run: every stage stops, and the stream ends.
    pub fn cancel(&self) {
        self.run.inner.token.cancel();
    }
}

// The stream never pins its fields: the current chunk is a plain iterator.
impl<T> Unpin for PipelineStream<T> {}

impl<T> Stream for PipelineStream<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = self.get_mut();
        loop {
            if let Some(item) = this.current.next() {
                return Poll::Ready(Some(item));
            }
            if this.ended {
                return Poll::Ready(None);
            }
            match this.rx.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(chunk)) => {
                    if this.run.inner.is_cancelled() {
                        this.run.inner.drop_items(chunk.len());
                        this.run.inner.abandon_chunks(&this.rx);
                        this.ended = true;
                    } else {
                        this.current = chunk.into_iter();
                    }
                }
                Poll::Ready(None) => {
                    if this.run.inner.is_cancelled() {
                        this.run.inner.stopped_early();
                    }
                    this.ended = true;
                }
            }
        }
    }
}

impl<T> fmt::Debug for PipelineStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipelineStream").field("ended", &self.ended).field("progress", &self.progress).finish()
    }
}
