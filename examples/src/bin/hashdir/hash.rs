//! Hashing one [`Target`]: a regular file on the worker pool, a pipe read
//! asynchronously with each chunk hashed on the pool.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use conc_core::Token;
use conc_pool::{CpuPool, JobError, JobHandle};
use sha2::{Digest, Sha256};

use crate::walk::{Kind, Target};

/// Bytes read and hashed per step: large enough that a step's cost dwarfs
/// the per-step bookkeeping, small enough that a cancel is seen quickly.
const CHUNK: usize = 256 * 1024;

/// A SHA-256 digest.
pub(crate) type Sum = [u8; 32];

/// A file and its digest: what the pipeline hands to the output.
#[derive(Debug)]
pub(crate) struct Hashed {
    pub(crate) path: PathBuf,
    pub(crate) sum: Sum,
}

/// A file that could not be hashed; the run goes on without it.
#[derive(Debug)]
pub(crate) struct HashError {
    path: PathBuf,
    source: io::Error,
}

impl fmt::Display for HashError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.source)
    }
}

impl std::error::Error for HashError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// A pool job's handle that cancels the job when dropped unfinished: the
/// pipeline drops a worker's future when the run is cancelled, and the job
/// on the pool should stop then too, not read the rest of its file.
pub(crate) struct CancelOnDrop<T, J>(pub(crate) JobHandle<T, J>);

impl<T, J> Future for CancelOnDrop<T, J> {
    type Output = Result<T, JobError<J>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl<T, J> Drop for CancelOnDrop<T, J> {
    fn drop(&mut self) {
        // A no-op once the job is done.
        self.0.cancel();
    }
}

/// Why a job gave no value, as an I/O error for the report.
fn job_failed<J>(error: &JobError<J>) -> io::Error {
    match error {
        JobError::Panicked(_) => io::Error::other("hashing panicked"),
        JobError::Cancelled | JobError::NotRun(_) => io::Error::other("cancelled"),
    }
}

thread_local! {
    /// Each pool thread's read buffer, reused from file to file.
    static BUFFER: RefCell<Vec<u8>> = RefCell::new(vec![0; CHUNK]);
}

/// Reads and hashes a regular file on the calling (pool) thread; `None`
/// if `token` was cancelled first.
fn hash_file(path: &Path, token: &Token, hashed: &AtomicU64) -> io::Result<Option<Sum>> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    BUFFER.with_borrow_mut(|buffer| {
        loop {
            if token.is_cancelled() {
                return Ok(None);
            }
            let read = match file.read(buffer) {
                Ok(0) => return Ok(Some(hasher.finalize().into())),
                Ok(read) => read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            };
            hasher.update(&buffer[..read]);
            hashed.fetch_add(read as u64, Ordering::Relaxed);
        }
    })
}

/// Reads a pipe on the runtime (waiting for its writer costs no thread)
/// and hashes each chunk on the pool; `None` if a job was cancelled.
#[cfg(unix)]
async fn hash_pipe(pool: &CpuPool, path: &Path, hashed: &AtomicU64) -> io::Result<Option<Sum>> {
    use tokio::io::AsyncReadExt;

    let mut pipe = tokio::net::unix::pipe::OpenOptions::new().open_receiver(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; CHUNK];
    loop {
        let read = pipe.read(&mut buffer).await?;
        if read == 0 {
            return Ok(Some(hasher.finalize().into()));
        }
        let job = pool
            .submit(move |_token| {
                hasher.update(&buffer[..read]);
                (hasher, buffer)
            })
            .await
            .map_err(|_| io::Error::other("the pool is closed"))?;
        match CancelOnDrop(job).await {
            Ok(state) => (hasher, buffer) = state,
            Err(JobError::Cancelled | JobError::NotRun(_)) => return Ok(None),
            Err(error) => return Err(job_failed(&error)),
        }
        hashed.fetch_add(read as u64, Ordering::Relaxed);
    }
}

#[cfg(not(unix))]
async fn hash_pipe(_pool: &CpuPool, _path: &Path, _hashed: &AtomicU64) -> io::Result<Option<Sum>> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "pipes are read on unix only"))
}

/// Hashes `target`, counting the bytes hashed in `hashed`. `Ok(None)` if
/// the work was cancelled before it finished.
///
/// # Errors
///
/// A [`HashError`] naming the file if it cannot be read, or is neither a
/// regular file nor a pipe.
pub(crate) async fn hash(pool: &CpuPool, target: Target, hashed: &Arc<AtomicU64>) -> Result<Option<Hashed>, HashError> {
    let Target { path, kind } = target;
    let sum = match kind {
        Kind::File => {
            let (job_path, job_hashed) = (path.clone(), Arc::clone(hashed));
            match pool.submit(move |token| hash_file(&job_path, &token, &job_hashed)).await {
                Ok(job) => match CancelOnDrop(job).await {
                    Ok(sum) => sum,
                    Err(JobError::Cancelled | JobError::NotRun(_)) => Ok(None),
                    Err(error) => Err(job_failed(&error)),
                },
                Err(_) => Err(io::Error::other("the pool is closed")),
            }
        }
        Kind::Pipe => hash_pipe(pool, &path, hashed).await,
        Kind::Other => Err(io::Error::new(io::ErrorKind::Unsupported, "not a regular file or a pipe")),
    };
    match sum {
        Ok(sum) => Ok(sum.map(|sum| Hashed { path, sum })),
        Err(source) => Err(HashError { path, source }),
    }
}
