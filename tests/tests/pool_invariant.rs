//! conc-pool's invariant: every job accepted by `submit*` has exactly one
//! outcome visible to the caller, whatever happens around it.
//!
//! Each seed runs a pool on a multi-thread runtime while submitters (with
//! `submit`, `try_submit` and `submit_until`), a canceller and a resizer
//! race each other, and a shutdown with a deadline cuts them off at a
//! random point. Jobs complete, fail, panic, yield, or wait for their
//! token. Every accepted job's outcome is read from its handle (or, for
//! detached jobs, from the shutdown report and the job's own record), and
//! the test checks accepted = completed + failed + panicked + cancelled +
//! returned, that no job is counted twice, and that the pool's counters
//! agree.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conc_core::{Clock, ManualClock, TaskCounter, Token};
use conc_pool::{JobError, JobHandle, Pool, SubmitError};

/// A small deterministic generator (xorshift64*), one per actor.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

type Job = Box<dyn FnOnce(Token) -> std::pin::Pin<Box<dyn Future<Output = Result<u64, u64>> + Send>> + Send>;

/// Builds a job of a random kind.
fn job(kind: u64, n: u64) -> Job {
    Box::new(move |token: Token| {
        Box::pin(async move {
            match kind {
                0 => Ok(n),
                1 => Err(n),
                2 => panic!("job {n} panicked"),
                3 => {
                    for _ in 0..(n % 4) {
                        tokio::task::yield_now().await;
                    }
                    Ok(n)
                }
                _ => {
                    token.cancelled().await;
                    Ok(n)
                }
            }
        })
    })
}

type Handle = JobHandle<Result<u64, u64>, Job>;

#[derive(Default)]
struct Tally {
    accepted: u64,
    completed: u64,
    failed: u64,
    panicked: u64,
    cancelled: u64,
    returned: u64,
    ids: HashSet<u64>,
}

impl Tally {
    fn count(&mut self, id: u64, outcome: &Result<Result<u64, u64>, JobError<Job>>) {
        assert!(self.ids.insert(id), "job {id} has two outcomes");
        match outcome {
            Ok(Ok(_)) => self.completed += 1,
            Ok(Err(_)) => self.failed += 1,
            Err(JobError::Panicked(_)) => self.panicked += 1,
            Err(JobError::Cancelled) => self.cancelled += 1,
            Err(JobError::NotRun(_)) => self.returned += 1,
        }
    }
}

async fn run_seed(seed: u64) {
    let clock = ManualClock::new();
    let tasks = TaskCounter::new();
    let mut rng = Rng::new(seed);
    let pool = Pool::builder()
        .workers_between(1 + rng.below(2) as usize, 2 + rng.below(4) as usize)
        .queue_capacity(rng.below(6) as usize)
        .idle_timeout(Duration::from_secs(1))
        .clock(clock.clone())
        .task_counter(tasks.clone())
        .build()
        .unwrap();
    let handles: Arc<Mutex<Vec<Handle>>> = Arc::default();
    let accepted = Arc::new(AtomicU64::new(0));
    let detached = Arc::new(AtomicU64::new(0));
    let stop = Token::new();

    let submitters: Vec<_> = (0..3)
        .map(|actor| {
            let (pool, handles, accepted, detached, stop) =
                (pool.clone(), handles.clone(), accepted.clone(), detached.clone(), stop.clone());
            let mut rng = Rng::new(seed * 31 + actor);
            tokio::spawn(async move {
                for n in 0..40 {
                    // One job in ten waits for its token: it ends only by cancellation.
                    let job = job(if rng.below(10) == 0 { 4 } else { rng.below(4) }, n);
                    let submitted = match rng.below(3) {
                        0 => pool.submit(job).await,
                        1 => pool.try_submit(job),
                        _ => pool.submit_until(job, &stop).await,
                    };
                    match submitted {
                        Ok(handle) => {
                            accepted.fetch_add(1, Ordering::SeqCst);
                            if rng.below(8) == 0 {
                                detached.fetch_add(1, Ordering::SeqCst);
                                handle.detach();
                            } else {
                                handles.lock().unwrap().push(handle);
                            }
                        }
                        Err(SubmitError::Closed(_)) => break,
                        Err(SubmitError::Full(_) | SubmitError::Cancelled(_)) => tokio::task::yield_now().await,
                    }
                }
            })
        })
        .collect();

    let canceller = {
        let (handles, stop) = (handles.clone(), stop.clone());
        let mut rng = Rng::new(seed * 17 + 5);
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                {
                    let handles = handles.lock().unwrap();
                    if !handles.is_empty() {
                        handles[rng.below(handles.len() as u64) as usize].cancel();
                    }
                }
                for _ in 0..rng.below(20) {
                    tokio::task::yield_now().await;
                }
            }
        })
    };

    let resizer = {
        let (pool, stop) = (pool.clone(), stop.clone());
        let mut rng = Rng::new(seed * 13 + 7);
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                pool.resize(1 + rng.below(5) as usize).unwrap();
                for _ in 0..rng.below(30) {
                    tokio::task::yield_now().await;
                }
            }
        })
    };

    // Shut down at a random point: after a random number of acceptances
    // (most seeds), or once the submitters are done.
    let target = 10 + rng.below(100);
    for _ in 0..20_000 {
        if accepted.load(Ordering::SeqCst) >= target {
            break;
        }
        tokio::task::yield_now().await;
    }
    let shutdown = tokio::spawn({
        let (pool, deadline) = (pool.clone(), clock.now() + Duration::from_secs(10));
        async move { pool.shutdown(deadline).await }
    });
    for _ in 0..rng.below(100) {
        tokio::task::yield_now().await;
    }
    // Past the deadline: the jobs waiting for their tokens are cancelled.
    clock.advance(Duration::from_secs(10));
    let report = shutdown.await.unwrap();
    stop.cancel();
    for task in submitters {
        task.await.unwrap();
    }
    canceller.await.unwrap();
    resizer.await.unwrap();

    let mut tally = Tally { accepted: accepted.load(Ordering::SeqCst), ..Tally::default() };
    let handles = std::mem::take(&mut *handles.lock().unwrap());
    for handle in handles {
        let id = handle.id().get();
        let outcome = handle.await;
        tally.count(id, &outcome);
    }
    // Detached jobs: their never-run inputs are in the report, each once.
    for (id, _) in &report.returned {
        assert!(tally.ids.insert(id.get()), "job {id} returned twice");
        tally.returned += 1;
    }

    let detached = detached.load(Ordering::SeqCst);
    let seen_detached = report.returned.len() as u64;
    // Every job with a handle is accounted for by its handle; the pool's
    // own counters must agree with the handles plus the detached jobs.
    let through_handles = tally.completed + tally.failed + tally.panicked + tally.cancelled + tally.returned;
    assert_eq!(tally.accepted, through_handles + detached - seen_detached, "seed {seed}: {report:?}");
    assert_eq!(report.submitted, tally.accepted, "seed {seed}");
    let pool_total = report.completed + report.failed + report.panicked + report.cancelled + report.not_run;
    assert_eq!(pool_total, tally.accepted, "seed {seed}: every accepted job has exactly one outcome: {report:?}");
    assert!(report.not_run >= tally.returned, "seed {seed}");
    assert!(report.cancelled >= tally.cancelled && report.panicked >= tally.panicked, "seed {seed}");
    let stats = pool.stats();
    assert_eq!((stats.queued, stats.running, stats.workers), (0, 0, 0), "seed {seed}");
    assert_eq!(tasks.live(), 0, "seed {seed}: a worker outlived the shutdown");
}

#[test]
fn every_accepted_job_has_exactly_one_outcome() {
    let seeds = if cfg!(miri) { 2 } else { 200 };
    for seed in 0..seeds {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(3).build().unwrap();
        runtime.block_on(run_seed(seed));
    }
}

/// The same invariant for the `CpuPool`: submitters on plain threads race
/// handle cancels and a resize, then a shutdown whose deadline passes while
/// jobs wait for their tokens (a CPU job must return by itself: these
/// watch their token).
fn run_cpu_seed(seed: u64) {
    let clock = ManualClock::new();
    let tasks = TaskCounter::new();
    let mut rng = Rng::new(seed);
    let pool = Pool::builder()
        .workers_between(rng.below(2) as usize, 1 + rng.below(3) as usize)
        .queue_capacity(rng.below(4) as usize)
        .idle_timeout(Duration::from_secs(1))
        .clock(clock.clone())
        .task_counter(tasks.clone())
        .build_cpu()
        .unwrap();
    type CpuJob = Box<dyn FnOnce(Token) -> Result<u64, u64> + Send>;
    let cpu_job = |kind: u64, n: u64| -> CpuJob {
        Box::new(move |token: Token| match kind {
            0 => Ok(n),
            1 => Err(n),
            2 => panic!("cpu job {n} panicked"),
            _ => {
                token.wait_blocking();
                Ok(n)
            }
        })
    };
    let accepted = AtomicU64::new(0);
    let handles = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        let submitters: Vec<_> = (0..2)
            .map(|actor| {
                let (pool, accepted, handles) = (&pool, &accepted, &handles);
                let mut rng = Rng::new(seed * 7 + actor);
                scope.spawn(move || {
                    for n in 0..20 {
                        let job = cpu_job(if rng.below(8) == 0 { 3 } else { rng.below(3) }, n);
                        let submitted =
                            if rng.below(2) == 0 { pool.try_submit(job) } else { pool.submit_blocking(job) };
                        match submitted {
                            Ok(handle) => {
                                accepted.fetch_add(1, Ordering::SeqCst);
                                if rng.below(4) == 0 {
                                    handle.cancel();
                                }
                                handles.lock().unwrap().push(handle);
                            }
                            Err(SubmitError::Closed(_)) => break,
                            Err(_) => std::thread::yield_now(),
                        }
                    }
                })
            })
            .collect();
        let pool = &pool;
        let workers = 1 + rng.below(3) as usize;
        scope.spawn(move || pool.resize(workers).unwrap());
        // Shut down at a random point.
        let target = rng.below(30);
        for _ in 0..100_000 {
            if accepted.load(Ordering::SeqCst) >= target {
                break;
            }
            std::thread::yield_now();
        }
        let deadline = clock.now() + Duration::from_secs(5);
        let shutdown = scope.spawn(move || pool.shutdown_blocking(deadline));
        while !pool.is_closed() {
            std::thread::yield_now();
        }
        clock.advance(Duration::from_secs(5));
        let report = shutdown.join().unwrap();
        // A submitter may be between an accepted submit and its count.
        for submitter in submitters {
            submitter.join().unwrap();
        }

        let mut tally = Tally { accepted: accepted.load(Ordering::SeqCst), ..Tally::default() };
        let mut counts = [0u64; 5];
        for handle in std::mem::take(&mut *handles.lock().unwrap()) {
            let id = handle.id().get();
            assert!(tally.ids.insert(id), "seed {seed}: job {id} has two outcomes");
            let slot = match handle.wait_blocking() {
                Ok(Ok(_)) => 0,
                Ok(Err(_)) => 1,
                Err(JobError::Panicked(_)) => 2,
                Err(JobError::Cancelled) => 3,
                Err(JobError::NotRun(_)) => 4,
            };
            counts[slot] += 1;
        }
        assert_eq!(counts.iter().sum::<u64>(), tally.accepted, "seed {seed}");
        assert_eq!(report.submitted, tally.accepted, "seed {seed}");
        // Plain CPU jobs have no error of their own: `Err` values count as completed.
        assert_eq!(report.completed, counts[0] + counts[1], "seed {seed}: {report:?}");
        assert_eq!(
            (report.panicked, report.cancelled, report.not_run),
            (counts[2], counts[3], counts[4]),
            "seed {seed}"
        );
        assert!(report.returned.is_empty(), "seed {seed}: every job had a handle");
    });
    assert_eq!(tasks.live(), 0, "seed {seed}: a thread outlived the shutdown");
}

#[test]
fn every_accepted_cpu_job_has_exactly_one_outcome() {
    let seeds = if cfg!(miri) { 1 } else { 100 };
    for seed in 0..seeds {
        run_cpu_seed(seed);
    }
}
