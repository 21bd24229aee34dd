//! [`Builder`]: how many workers, how much queue, what name.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use conc_core::{Clock, SystemClock, TaskCounter, Token};

use crate::cpu::CpuPool;
use crate::error::BuildError;
use crate::pool::Pool;

/// Configures a [`Pool`] (async jobs on tokio tasks) or a [`CpuPool`]
/// (blocking closures on threads the pool owns); made by [`Pool::builder`].
///
/// Defaults: as many workers as the machine has cores, fixed; a queue of
/// 1024 jobs; an idle timeout of 10 s (for growing pools); the name
/// `conc-pool`; the system clock.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_pool::{BuildError, Pool};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), BuildError> {
/// // 2 workers at rest, up to 8 under load, extra ones retired after 30 s idle.
/// let pool = Pool::builder()
///     .workers_between(2, 8)
///     .idle_timeout(Duration::from_secs(30))
///     .queue_capacity(100)
///     .name("thumbnails")
///     .build()?;
/// assert_eq!(pool.stats().workers, 2);
///
/// assert_eq!(Pool::builder().workers_between(3, 2).build().unwrap_err(), BuildError::MinAboveMax { min: 3, max: 2 });
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Builder {
    pub(crate) min: usize,
    pub(crate) max: usize,
    pub(crate) capacity: usize,
    pub(crate) idle_timeout: Duration,
    pub(crate) name: String,
    pub(crate) clock: Arc<dyn Clock>,
    /// A token on `clock`: each pool's root token is a child of it.
    pub(crate) root: Token,
    pub(crate) tasks: TaskCounter,
}

impl Default for Builder {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Builder {
            min: cores,
            max: cores,
            capacity: 1024,
            idle_timeout: Duration::from_secs(10),
            name: "conc-pool".to_owned(),
            clock: Arc::new(SystemClock),
            root: Token::new(),
            tasks: TaskCounter::new(),
        }
    }
}

impl Builder {
    /// A fixed number of workers, all started when the pool is built.
    pub fn workers(mut self, workers: usize) -> Self {
        self.min = workers;
        self.max = workers;
        self
    }

    /// A growing pool: `min` workers at rest, more started while jobs wait
    /// and no worker is idle, up to `max`; a worker above `min` idle for
    /// the [`idle_timeout`](Builder::idle_timeout) retires (like Go's pond
    /// and ants). `min` may be 0.
    pub fn workers_between(mut self, min: usize, max: usize) -> Self {
        self.min = min;
        self.max = max;
        self
    }

    /// How many jobs may wait beyond one per worker: at most
    /// `max workers + capacity` accepted jobs are queued or running at
    /// once, so while every worker is busy at most `capacity` wait.
    ///
    /// 0 means hand-off: a job is accepted only while a worker (running,
    /// or one that can still be started) will take it.
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// How long a worker above the minimum may stay idle before it retires.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// The pool's name: worker threads are called `<name>-<n>`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The clock idle timeouts and shutdown deadlines are measured on (a
    /// [`ManualClock`](conc_core::ManualClock) in tests).
    pub fn clock<C: Clock + Clone>(mut self, clock: C) -> Self {
        self.root = Token::with_clock(clock.clone());
        self.clock = Arc::new(clock);
        self
    }

    /// The counter the pool's workers (tasks or threads) are tracked by,
    /// so a test can check that none outlives the pool. Each pool has its
    /// own by default.
    pub fn task_counter(mut self, tasks: TaskCounter) -> Self {
        self.tasks = tasks;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), BuildError> {
        if self.max == 0 {
            return Err(BuildError::ZeroWorkers);
        }
        if self.min > self.max {
            return Err(BuildError::MinAboveMax { min: self.min, max: self.max });
        }
        if self.idle_timeout.is_zero() && self.min < self.max {
            return Err(BuildError::ZeroIdleTimeout);
        }
        Ok(())
    }

    /// Builds a pool that runs async jobs as tokio tasks on the current
    /// runtime.
    ///
    /// # Errors
    ///
    /// [`BuildError`] if the settings cannot work, or
    /// [`BuildError::NoRuntime`] outside a tokio runtime.
    pub fn build(self) -> Result<Pool, BuildError> {
        Pool::from_builder(self)
    }

    /// Builds a pool that runs blocking closures on OS threads it owns.
    ///
    /// # Errors
    ///
    /// [`BuildError`] if the settings cannot work.
    pub fn build_cpu(self) -> Result<CpuPool, BuildError> {
        CpuPool::from_builder(self)
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("min", &self.min)
            .field("max", &self.max)
            .field("capacity", &self.capacity)
            .field("idle_timeout", &self.idle_timeout)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}
