//! The conc showcase: an HTTP gateway on 127.0.0.1 built from every conc
//! crate, the program to read first.
//!
//! ```text
//! cargo run --release -p conc-examples --bin gateway            # http://127.0.0.1:8080
//! cargo run --release -p conc-examples --bin gateway -- --help
//! ```
//!
//! What each crate does here:
//!
//! - **conc-limit**: each client (`x-client-id` header, else IP) gets its
//!   own GCRA rate limit through `KeyedRateLimitLayer` (over it: 429 with
//!   `Retry-After`); a `Semaphore` behind `ConcurrencyLimitLayer` caps the
//!   API requests in flight, with a bounded queue (full: 503, shed rather
//!   than queued forever).
//! - **conc-breaker**: `/api/downstream` calls a simulated flaky service
//!   through `BreakerLayer`; a 5xx counts as a failure, and while the
//!   breaker is open calls get a fast 503 without reaching it.
//! - **conc-group**: `/api/fanout` asks three backends at once, the first
//!   failure cancels the others; `/api/fastest` races replicas with
//!   `first_ok`, or `hedge`s.
//! - **conc-pool**: every request's audit record is a job on a `CpuPool`
//!   whose own threads append it to a log file (blocking writes never stall
//!   the runtime); a full queue drops the record, never the request.
//! - **conc-pipeline**: request events flow through a channel into a
//!   pipeline that batches and summarizes them into per-route counts and
//!   latency histograms.
//! - **conc-shutdown**: on SIGINT/SIGTERM the server stops accepting and
//!   finishes the requests in flight, then the pool writes its last records
//!   and the pipeline aggregates its last events, and a report is printed.
//! - `/metrics` shows all of it in Prometheus' text format.
//!
//! The first line on stdout is `listening on http://127.0.0.1:PORT`.
#![allow(clippy::print_stdout, reason = "a program that reports on stdout")]

mod background;
mod downstream;
mod flags;
mod metrics;
mod routes;

use std::error::Error;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use conc_breaker::Breaker;
use conc_limit::{Gcra, Keyed, Rate, Semaphore};
use conc_pipeline::PipelineReport;
use conc_shutdown::{Phase, Shutdown, ShutdownReport};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::background::{Audit, Stats};
use crate::downstream::Downstream;
use crate::flags::{Command, Flags, USAGE};
use crate::metrics::Counters;

/// Everything the handlers share.
#[derive(Debug)]
pub(crate) struct Gateway {
    flags: Flags,
    addr: SocketAddr,
    /// One GCRA per client, at most 100 000 clients tracked.
    limiter: Arc<Keyed<String, Gcra>>,
    /// One permit per API request in flight.
    slots: Arc<Semaphore>,
    breaker: Arc<Breaker>,
    downstream: Downstream,
    audit: Audit,
    stats: Stats,
    counters: Counters,
}

#[tokio::main]
async fn main() -> ExitCode {
    let flags = match Command::parse(std::env::args().skip(1)) {
        Ok(Command::Run(flags)) => flags,
        Ok(Command::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("gateway: {error}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match serve(flags).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("gateway: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Builds the gateway, serves until a signal, shuts down and reports.
async fn serve(flags: Flags) -> Result<ExitCode, Box<dyn Error>> {
    let shutdown = Shutdown::builder()
        // The HTTP server stops accepting and finishes its requests in the
        // first phase; the pool and the pipeline, which those requests
        // feed, drain in the second.
        .phase_timeout(Phase::StopAccepting, flags.drain_timeout)
        .phase_timeout(Phase::Drain, Duration::from_secs(5))
        .phase_timeout(Phase::Background, Duration::from_secs(1))
        .build()?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, flags.port)).await?;
    let addr = listener.local_addr()?;

    let per_client = Gcra::new(Rate::per_second(flags.rate)?, flags.burst)?;
    let breaker = Breaker::builder()
        .failure_rate(50.0, 10) // open at 50% failures...
        .count_window(20) // ...of the last 20 calls, once there are 10
        .open_duration(flags.breaker_open)
        .half_open_trials(3) // close after 3 good trials
        .build()?;
    let (stats, stats_pipeline) = Stats::new()?;
    let gw = Arc::new(Gateway {
        addr,
        limiter: Arc::new(Keyed::builder(per_client).max_keys(100_000).build()?),
        slots: Arc::new(Semaphore::try_new(flags.max_inflight)?.with_max_waiters(Some(flags.max_waiters))),
        breaker: Arc::new(breaker),
        downstream: Downstream::new(flags.downstream_latency, flags.downstream_error_rate),
        audit: Audit::open(&flags.audit_log)?,
        stats,
        counters: Counters::default(),
        flags,
    });

    let app = routes::router(Arc::clone(&gw));
    let server = Arc::clone(&gw);
    shutdown.spawn_in(Phase::StopAccepting, "http", move |sub| async move {
        let stop = async move {
            sub.cancelled().await;
            let in_flight = Counters::get(&server.counters.in_flight);
            println!("shutdown: stopped accepting, finishing {in_flight} API requests in flight");
        };
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, app).with_graceful_shutdown(stop).await
    })?;
    let (pool_report, pool_report_rx) = oneshot::channel();
    let audit = Arc::clone(&gw);
    shutdown.spawn("audit-pool", move |sub| async move {
        audit.audit.run(sub, Duration::from_secs(4), pool_report).await;
    })?;
    let (stats_report, stats_report_rx) = oneshot::channel();
    let stats = Arc::clone(&gw);
    shutdown
        .spawn("stats-pipeline", move |sub| async move { stats.stats.run(sub, stats_pipeline, stats_report).await })?;
    let janitor = Arc::clone(&gw);
    shutdown.spawn_in(Phase::Background, "limiter-janitor", move |sub| async move {
        // Forget clients whose limiter is full again: memory follows the
        // active clients.
        while sub.token().run_until_cancelled(tokio::time::sleep(Duration::from_secs(30))).await.is_ok() {
            janitor.limiter.evict_idle();
        }
    })?;

    println!("listening on http://{addr}");
    println!("audit log: {}", gw.audit.path().display());
    let report = shutdown.wait().await;
    print_report(&gw, &report, pool_report_rx.await.ok(), stats_report_rx.await.ok());
    Ok(ExitCode::from(report.exit_code()))
}

fn print_report(
    gw: &Gateway,
    report: &ShutdownReport,
    pool: Option<conc_pool::ShutdownReport>,
    pipeline: Option<PipelineReport>,
) {
    print!("{report}");
    let (written, write_errors, dropped) = gw.audit.counts();
    match pool {
        Some(pool) => println!(
            "audit pool: {} jobs submitted, {} completed, {} panicked, {} cancelled, {} not run{}",
            pool.submitted,
            pool.completed,
            pool.panicked,
            pool.cancelled,
            pool.not_run,
            if pool.deadline_passed { ", deadline passed" } else { "" }
        ),
        None => println!("audit pool: no report (its subsystem did not finish)"),
    }
    println!(
        "audit log: {written} records written to {} ({write_errors} write errors, {dropped} dropped)",
        gw.audit.path().display()
    );
    match pipeline {
        Some(pipeline) => {
            let stages: Vec<String> = pipeline
                .stages
                .iter()
                .map(|stage| format!("{} {}→{}", stage.name, stage.items_in, stage.items_out))
                .collect();
            println!(
                "stats pipeline: {} in {:?}, {} dropped in flight, {} events dropped at the door",
                stages.join(", "),
                pipeline.elapsed,
                pipeline.dropped_in_flight,
                gw.stats.dropped()
            );
        }
        None => println!("stats pipeline: no report (its subsystem did not finish)"),
    }
    let c = &gw.counters;
    let breaker = gw.breaker.metrics();
    println!(
        "totals: {} allowed by the rate limiter, {} rate limited (429), {} shed (503), breaker {} with {} rejections",
        Counters::get(&c.allowed),
        Counters::get(&c.limited),
        Counters::get(&c.shed),
        breaker.state,
        breaker.rejected
    );
    for (route, stats) in gw.stats.snapshot() {
        let statuses: Vec<String> = stats.statuses.iter().map(|(status, n)| format!("{status}: {n}")).collect();
        println!(
            "route {route}: {} requests ({}), p50 <= {}, p99 <= {}",
            stats.count,
            statuses.join(", "),
            bound(stats.quantile_bound(0.5)),
            bound(stats.quantile_bound(0.99))
        );
    }
}

/// A histogram bound for people: `25ms`, `2.5s`, `inf`.
fn bound(seconds: f64) -> String {
    if seconds.is_infinite() {
        "inf".to_owned()
    } else if seconds < 1.0 {
        format!("{}ms", seconds * 1000.0)
    } else {
        format!("{seconds}s")
    }
}
