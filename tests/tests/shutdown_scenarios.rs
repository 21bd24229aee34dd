//! conc-shutdown in the situations services put it in: many nested
//! subsystems on a multi-thread runtime, a worker pool draining its queue,
//! a server with hyper/axum's `with_graceful_shutdown` shape, and Go's
//! `http.Server.Shutdown(ctx)` with a deadline (ported from the Go guides'
//! three-phase shutdown: stop accepting, drain, cancel background work).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use conc_core::TaskCounter;
use conc_shutdown::{AbortReason, Outcome, Phase, Shutdown, ShutdownReport, SpawnError, Trigger};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

fn quiet() -> conc_shutdown::Builder {
    Shutdown::builder().signals(&[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deep_tree_on_a_multi_thread_runtime_ends_without_leaks() {
    let (parents, children) = if cfg!(miri) { (2, 3) } else { (8, 25) };
    let shutdown = quiet().build().unwrap();
    let handle = shutdown.handle();
    let ended = Arc::new(AtomicUsize::new(0));
    for p in 0..parents {
        let ended = ended.clone();
        let phase = Phase::ALL[p % Phase::ALL.len()];
        shutdown
            .spawn_in(phase, format!("parent-{p}"), move |parent| async move {
                for c in 0..children {
                    let ended = ended.clone();
                    parent.spawn(format!("child-{c}"), move |child| async move {
                        child.cancelled().await;
                        tokio::task::yield_now().await;
                        ended.fetch_add(1, Ordering::Relaxed);
                    })?;
                }
                parent.cancelled().await;
                Ok::<_, SpawnError>(())
            })
            .unwrap();
    }
    shutdown.trigger();
    let report = shutdown.wait().await;

    assert_eq!(report.subsystems.len(), parents + parents * children);
    assert!(report.subsystems.iter().all(|s| s.outcome.is_finished()), "{report}");
    assert_eq!(ended.load(Ordering::Relaxed), parents * children);
    assert_eq!(handle.live_tasks(), 0);
    assert!(report.is_clean());
}

/// A stand-in for a worker pool (conc-pool's shape): jobs arrive on a
/// channel, each runs as its own task, `join` waits for the ones in flight.
struct Pool {
    tasks: TaskCounter,
    running: Vec<JoinHandle<()>>,
}

impl Pool {
    fn submit(&mut self, job: impl Future<Output = ()> + Send + 'static) {
        self.running.push(self.tasks.spawn(job));
    }

    async fn join(self) {
        for job in self.running {
            job.await.unwrap();
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_pool_drains_its_in_flight_jobs_as_a_subsystem() {
    let shutdown = quiet().build().unwrap();
    let (jobs, mut queue) = mpsc::channel::<u64>(16);
    let done = Arc::new(AtomicUsize::new(0));
    let tasks = TaskCounter::new();
    let pool_done = done.clone();
    let pool_tasks = tasks.clone();
    shutdown
        .spawn("pool", move |sub| async move {
            let mut pool = Pool { tasks: pool_tasks, running: Vec::new() };
            // Take jobs until told to stop, then let the accepted ones finish.
            while let Ok(Some(millis)) = sub.token().run_until_cancelled(queue.recv()).await {
                let done = pool_done.clone();
                pool.submit(async move {
                    tokio::time::sleep(Duration::from_millis(millis)).await;
                    done.fetch_add(1, Ordering::Relaxed);
                });
            }
            pool.join().await;
        })
        .unwrap();
    for millis in [100, 200, 300] {
        jobs.send(millis).await.unwrap();
    }
    tokio::task::yield_now().await;
    shutdown.trigger();
    let report = shutdown.wait().await;

    assert_eq!(done.load(Ordering::Relaxed), 3, "every accepted job finished");
    assert_eq!(tasks.live(), 0);
    let pool = report.subsystem("pool").unwrap();
    assert_eq!((pool.outcome.is_finished(), pool.stop_duration), (true, Some(Duration::from_millis(300))));
}

/// The shape of hyper's and axum's `with_graceful_shutdown(signal)`: stop
/// accepting when `signal` completes, then wait for open connections.
async fn serve(mut connections: mpsc::Receiver<Duration>, signal: impl Future<Output = ()> + Send + 'static) -> usize {
    let mut signal = std::pin::pin!(signal);
    // A JoinSet, so that aborting the server aborts its connections too.
    let mut open = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            () = &mut signal => break,
            Some(work) = connections.recv() => {
                open.spawn(tokio::time::sleep(work));
            }
        }
    }
    let served = open.len();
    while let Some(connection) = open.join_next().await {
        connection.unwrap();
    }
    served
}

#[tokio::test(start_paused = true)]
async fn a_token_plugs_into_with_graceful_shutdown() {
    let shutdown = quiet().build().unwrap();
    let (connect, connections) = mpsc::channel(4);
    let served = Arc::new(AtomicUsize::new(0));
    let count = served.clone();
    shutdown
        .spawn_in(Phase::StopAccepting, "http", move |sub| async move {
            let n = serve(connections, sub.token().clone().cancelled_owned()).await;
            count.store(n, Ordering::Relaxed);
        })
        .unwrap();
    connect.send(Duration::from_secs(2)).await.unwrap();
    connect.send(Duration::from_secs(1)).await.unwrap();
    tokio::task::yield_now().await;
    shutdown.trigger();
    let report = shutdown.wait().await;
    assert_eq!(served.load(Ordering::Relaxed), 2);
    assert_eq!(report.subsystem("http").unwrap().stop_duration, Some(Duration::from_secs(2)));
    assert!(report.is_clean());
}

/// Go: `srv.Shutdown(ctx)` with a 30 s context returns `ctx.Err()` when a
/// connection outlives it, and the program reports the timeout.
#[tokio::test(start_paused = true)]
async fn like_gos_server_shutdown_a_stuck_connection_hits_the_deadline() {
    let shutdown = quiet()
        .phase_timeout(Phase::StopAccepting, Duration::from_secs(30))
        .phase_timeout(Phase::Background, Duration::from_secs(1))
        .build()
        .unwrap();
    let (connect, connections) = mpsc::channel(4);
    shutdown
        .spawn_in(Phase::StopAccepting, "http", move |sub| async move {
            serve(connections, sub.token().clone().cancelled_owned()).await;
        })
        .unwrap();
    // Phase 2 of the Go guide: background work is cancelled after the server.
    let background_told = Arc::new(AtomicUsize::new(0));
    let told = background_told.clone();
    shutdown
        .spawn_in(Phase::Background, "workers", move |sub| async move {
            sub.cancelled().await;
            told.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
    connect.send(Duration::from_secs(3600)).await.unwrap();
    tokio::task::yield_now().await;
    let handle = shutdown.handle();
    handle.trigger();
    let report = shutdown.wait().await;

    let http = report.subsystem("http").unwrap();
    assert_eq!(http.outcome, Outcome::Aborted(AbortReason::Deadline));
    assert_eq!(http.stop_duration, Some(Duration::from_secs(30)));
    assert_eq!(background_told.load(Ordering::Relaxed), 1);
    assert_eq!(report.trigger, Trigger::Requested);
    assert_eq!(report.exit_code(), ShutdownReport::EXIT_TIMEOUT);
    assert_eq!(handle.live_tasks(), 0);
}
