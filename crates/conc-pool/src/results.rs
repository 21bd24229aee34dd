//! [`Results`]: Go's results channel, each outcome tagged with its job id.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_channel::{Receiver, Sender};
use conc_core::Token;
use futures_core::Stream;

use crate::cpu::{CpuJob, CpuPool};
use crate::error::{AnyJob, JobError, SubmitError};
use crate::job::{JobId, Outcome, Owned, Sink};
use crate::pool::{AsyncJob, Pool};

/// One job's outcome on a [`ResultStream`]: its id and its value or error
/// (a never-run job's input comes back boxed, as [`AnyJob`]).
pub type ResultItem<T> = (JobId, Result<T, JobError<AnyJob>>);

/// Delivers to a results stream; if the stream is gone, a never-run input
/// goes to the shutdown report.
struct ResultSink<T> {
    tx: Sender<ResultItem<T>>,
}

impl<F: Send + 'static, T: Send + 'static> Sink<F, T> for ResultSink<T> {
    fn deliver(self, id: JobId, outcome: Result<T, JobError<F>>) -> (Outcome, Option<(JobId, AnyJob)>) {
        let kind = Outcome::of(&outcome);
        let outcome = outcome.map_err(|error| error.map_job(|job| Box::new(job) as AnyJob));
        match self.tx.try_send((id, outcome)) {
            Err(error) => match error.into_inner() {
                (id, Err(JobError::NotRun(job))) => (kind, Some((id, job))),
                _ => (kind, None),
            },
            Ok(()) => (kind, None),
        }
    }
}

/// The submitting half of a results fan-in, made by [`Pool::results`] (or
/// [`CpuPool::results`], then `P` is [`CpuPool`] and jobs are blocking
/// closures): jobs submitted through it deliver their outcome to its
/// [`ResultStream`] instead of a handle.
///
/// The stream ends once this is dropped and every job submitted through
/// it has delivered, as a Go results channel closed after the workers'
/// `WaitGroup`. Results are buffered without bound, so every outcome is
/// kept even while nobody reads; the pool's queue bounds how many jobs are
/// in flight.
pub struct Results<T, P = Pool> {
    pool: P,
    tx: Sender<ResultItem<T>>,
}

/// The receiving half of a results fan-in: a [`Stream`] of
/// [`ResultItem`]s in the order the jobs finished.
pub struct ResultStream<T> {
    rx: Pin<Box<Receiver<ResultItem<T>>>>,
}

impl Pool {
    /// A results fan-in on this pool: submit jobs through the [`Results`],
    /// read every outcome, tagged with its job id, from the
    /// [`ResultStream`].
    ///
    /// # Examples
    ///
    /// ```
    /// use futures_lite::StreamExt;
    /// use conc_pool::Pool;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = Pool::builder().workers(3).build()?;
    /// let (results, mut stream) = pool.results();
    /// for n in 0..5u32 {
    ///     results.submit(move |_token| async move { n * 10 }).await.map_err(|e| e.to_string())?;
    /// }
    /// drop(results); // the stream ends once these five are in
    /// let mut total = 0;
    /// while let Some((_id, outcome)) = stream.next().await {
    ///     total += outcome?;
    /// }
    /// assert_eq!(total, 100);
    /// # Ok(())
    /// # }
    /// ```
    pub fn results<T: Send + 'static>(&self) -> (Results<T>, ResultStream<T>) {
        let (tx, rx) = async_channel::unbounded();
        (Results { pool: self.clone(), tx }, ResultStream { rx: Box::pin(rx) })
    }
}

impl CpuPool {
    /// A results fan-in on this pool, as [`Pool::results`]; the stream
    /// also works from plain threads through
    /// [`ResultStream::next_blocking`].
    pub fn results<T: Send + 'static>(&self) -> (Results<T, CpuPool>, ResultStream<T>) {
        let (tx, rx) = async_channel::unbounded();
        (Results { pool: self.clone(), tx }, ResultStream { rx: Box::pin(rx) })
    }
}

impl<T: Send + 'static> Results<T, CpuPool> {
    fn enqueue<F>(&self, id: JobId, job: F) -> JobId
    where
        F: FnOnce(Token) -> T + Send + 'static,
    {
        let sink = ResultSink { tx: self.tx.clone() };
        self.pool.core().push(Owned::new(CpuJob { id, job, sink }));
        id
    }

    /// Submits `job` if there is room now; its outcome goes to the stream.
    ///
    /// # Errors
    ///
    /// As [`CpuPool::try_submit`].
    pub fn try_submit<F>(&self, job: F) -> Result<JobId, SubmitError<F>>
    where
        F: FnOnce(Token) -> T + Send + 'static,
    {
        match self.pool.core().try_admit() {
            Ok(id) => Ok(self.enqueue(id, job)),
            Err(refusal) => Err(refusal.with(job)),
        }
    }

    /// Submits `job` from a plain thread, blocking while the queue is full.
    ///
    /// # Errors
    ///
    /// As [`CpuPool::submit_blocking`].
    pub fn submit_blocking<F>(&self, job: F) -> Result<JobId, SubmitError<F>>
    where
        F: FnOnce(Token) -> T + Send + 'static,
    {
        match conc_core::task::block_on(self.pool.core().admit(None)) {
            Ok(id) => Ok(self.enqueue(id, job)),
            Err(refusal) => Err(refusal.with(job)),
        }
    }
}

impl<T> ResultStream<T> {
    /// The next outcome, blocking the current thread; `None` once the
    /// stream has ended. For plain threads: in async code use the
    /// [`Stream`].
    pub fn next_blocking(&mut self) -> Option<ResultItem<T>> {
        self.rx.recv_blocking().ok()
    }
}

impl<T: Send + 'static> Results<T> {
    fn enqueue<F, Fut>(&self, id: JobId, job: F) -> JobId
    where
        F: FnOnce(Token) -> Fut + Send + 'static,
        Fut: Future<Output = T> + Send + 'static,
    {
        let sink = ResultSink { tx: self.tx.clone() };
        self.pool.core().push(Owned::new(AsyncJob { id, job, sink }));
        id
    }

    /// Submits `job`, waiting for room; its outcome goes to the stream.
    ///
    /// # Errors
    ///
    /// As [`Pool::submit`].
    pub async fn submit<F, Fut>(&self, job: F) -> Result<JobId, SubmitError<F>>
    where
        F: FnOnce(Token) -> Fut + Send + 'static,
        Fut: Future<Output = T> + Send + 'static,
    {
        match self.pool.core().admit(None).await {
            Ok(id) => Ok(self.enqueue(id, job)),
            Err(refusal) => Err(refusal.with(job)),
        }
    }

    /// Submits `job` if there is room now.
    ///
    /// # Errors
    ///
    /// As [`Pool::try_submit`].
    pub fn try_submit<F, Fut>(&self, job: F) -> Result<JobId, SubmitError<F>>
    where
        F: FnOnce(Token) -> Fut + Send + 'static,
        Fut: Future<Output = T> + Send + 'static,
    {
        match self.pool.core().try_admit() {
            Ok(id) => Ok(self.enqueue(id, job)),
            Err(refusal) => Err(refusal.with(job)),
        }
    }

    /// Submits `job`, waiting for room until `token` is cancelled.
    ///
    /// # Errors
    ///
    /// As [`Pool::submit_until`].
    pub async fn submit_until<F, Fut>(&self, job: F, token: &Token) -> Result<JobId, SubmitError<F>>
    where
        F: FnOnce(Token) -> Fut + Send + 'static,
        Fut: Future<Output = T> + Send + 'static,
    {
        match self.pool.core().admit(Some(token)).await {
            Ok(id) => Ok(self.enqueue(id, job)),
            Err(refusal) => Err(refusal.with(job)),
        }
    }
}

impl<T> Stream for ResultStream<T> {
    type Item = ResultItem<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.as_mut().poll_next(cx)
    }
}

impl<T, P: fmt::Debug> fmt::Debug for Results<T, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Results").field("pool", &self.pool).finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for ResultStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResultStream").field("ready", &self.rx.len()).finish()
    }
}
