//! Work done off the request path: the audit log, written by a conc-pool
//! [`CpuPool`] (blocking file writes belong on threads the pool owns, not
//! on the runtime's), and the request statistics, aggregated by a conc-pipeline
//! [`Pipeline`]. A request hands both their record without waiting: when
//! the pool's queue or the pipeline's channel is full the record is counted
//! as dropped, and the request goes on.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use conc_core::channel::{self, Rx, Tx};
use conc_pipeline::{Pipeline, PipelineError, PipelineReport, Progress};
use conc_pool::{CpuPool, Pool, ShutdownReport};
use conc_shutdown::SubsystemHandle;
use tokio::sync::oneshot;

/// One request as the gateway answered it.
#[derive(Clone, Debug)]
pub(crate) struct RequestEvent {
    /// The route pattern (`/api/downstream`), not the raw path, so that the
    /// statistics have one row per route.
    pub(crate) route: String,
    pub(crate) method: String,
    pub(crate) client: String,
    pub(crate) status: u16,
    pub(crate) latency: Duration,
}

impl RequestEvent {
    /// The audit log's line: unix time in ms, client, method, route,
    /// status, latency in µs.
    fn audit_line(&self) -> String {
        let unix_ms = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |since| since.as_millis());
        format!(
            "{unix_ms} client={} {} {} {} {}us\n",
            self.client,
            self.method,
            self.route,
            self.status,
            self.latency.as_micros()
        )
    }
}

/// The audit log: a file that a pool's jobs append to.
#[derive(Debug)]
pub(crate) struct Audit {
    pool: CpuPool,
    file: Arc<File>,
    path: PathBuf,
    written: Arc<AtomicU64>,
    write_errors: Arc<AtomicU64>,
    dropped: AtomicU64,
}

impl Audit {
    /// Opens (appends to) the log at `path` and starts the writer pool.
    pub(crate) fn open(path: &Path) -> Result<Audit, Box<dyn std::error::Error>> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        // Two writers and room for a burst of records: a full queue drops
        // records (counted) rather than slowing requests down.
        let pool = Pool::builder().name("audit").workers(2).queue_capacity(4096).build_cpu()?;
        Ok(Audit {
            pool,
            file: Arc::new(file),
            path: path.to_owned(),
            written: Arc::default(),
            write_errors: Arc::default(),
            dropped: AtomicU64::new(0),
        })
    }

    /// Hands the request's record to the pool; never waits.
    pub(crate) fn record(&self, event: &RequestEvent) {
        let line = event.audit_line();
        let file = Arc::clone(&self.file);
        let (written, write_errors) = (Arc::clone(&self.written), Arc::clone(&self.write_errors));
        let job = move |_token| {
            // One `write` of a whole line to a file opened for appending:
            // lines from the two writer threads never interleave, and no
            // lock is needed. A blocking call, on the pool's own threads:
            // neither the request nor the runtime waits for it.
            match (&*file).write_all(line.as_bytes()) {
                Ok(()) => written.fetch_add(1, Ordering::Relaxed),
                Err(_) => write_errors.fetch_add(1, Ordering::Relaxed),
            };
        };
        match self.pool.try_submit(job) {
            Ok(handle) => handle.detach(),
            // Full or closed (a request answered during shutdown, after the
            // pool closed): the record is lost, and counted.
            Err(_) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub(crate) fn pool(&self) -> &CpuPool {
        &self.pool
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Records written to the file, failed writes, and records dropped
    /// because the queue was full.
    pub(crate) fn counts(&self) -> (u64, u64, u64) {
        (
            self.written.load(Ordering::Relaxed),
            self.write_errors.load(Ordering::Relaxed),
            self.dropped.load(Ordering::Relaxed),
        )
    }

    /// The audit subsystem (drain phase): once told to stop, which is after
    /// the HTTP server has answered its last request, closes the pool and
    /// lets it write every queued record (up to `budget`), then reports.
    pub(crate) async fn run(&self, sub: SubsystemHandle, budget: Duration, report: oneshot::Sender<ShutdownReport>) {
        sub.cancelled().await;
        let finished = self.pool.shutdown(Instant::now() + budget).await;
        // The receiver is gone only if main stopped waiting: nothing to tell.
        let _ = report.send(finished);
    }
}

/// Upper bounds of the latency histogram's buckets, in seconds (the last
/// bucket, `+Inf`, is implied).
pub(crate) const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// What one route saw: requests by status and a latency histogram.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct RouteStats {
    pub(crate) statuses: BTreeMap<u16, u64>,
    /// Requests per bucket (not cumulative); the last one is `+Inf`.
    pub(crate) buckets: [u64; BUCKETS.len() + 1],
    pub(crate) latency_sum: Duration,
    pub(crate) count: u64,
}

impl RouteStats {
    fn add(&mut self, status: u16, latency: Duration) {
        *self.statuses.entry(status).or_default() += 1;
        let seconds = latency.as_secs_f64();
        let bucket = BUCKETS.iter().position(|&le| seconds <= le).unwrap_or(BUCKETS.len());
        self.buckets[bucket] += 1;
        self.latency_sum += latency;
        self.count += 1;
    }

    fn merge(&mut self, other: &RouteStats) {
        for (status, count) in &other.statuses {
            *self.statuses.entry(*status).or_default() += count;
        }
        for (mine, theirs) in self.buckets.iter_mut().zip(other.buckets) {
            *mine += theirs;
        }
        self.latency_sum += other.latency_sum;
        self.count += other.count;
    }

    /// The upper bound of the bucket holding the `q` quantile (0..=1), in
    /// seconds; infinite if it is past the last bound.
    pub(crate) fn quantile_bound(&self, q: f64) -> f64 {
        #[expect(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let rank = ((self.count as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, count) in self.buckets.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return BUCKETS.get(i).copied().unwrap_or(f64::INFINITY);
            }
        }
        f64::INFINITY
    }
}

/// Statistics per route.
pub(crate) type StatsTable = BTreeMap<String, RouteStats>;

/// The statistics pipeline's input side and its results, shared with the
/// request handlers and `/metrics`.
#[derive(Debug)]
pub(crate) struct Stats {
    events: Tx<RequestEvent>,
    dropped: AtomicU64,
    /// Written once per batch by the pipeline's sink, read by `/metrics`:
    /// a cold path, so a plain mutex.
    table: Arc<Mutex<StatsTable>>,
    progress: Progress,
}

/// The statistics pipeline, built but not started.
#[derive(Debug)]
pub(crate) struct StatsPipeline {
    pipeline: Pipeline<StatsTable>,
    table: Arc<Mutex<StatsTable>>,
}

/// How many events may wait for the pipeline before new ones are dropped.
const EVENT_QUEUE: usize = 8192;

impl Stats {
    /// The event channel and the pipeline behind it: events → batches of
    /// up to 256 (or whatever arrived in 50 ms) → a per-route summary of
    /// each batch → merged into the table `/metrics` shows.
    pub(crate) fn new() -> Result<(Stats, StatsPipeline), Box<dyn std::error::Error>> {
        let (events, rx): (Tx<RequestEvent>, Rx<RequestEvent>) = channel::bounded(EVENT_QUEUE)?;
        let pipeline = Pipeline::from_receiver(rx)
            .named("events")
            .batch(256, Duration::from_millis(50))?
            .named("batch")
            .map(|batch: Vec<RequestEvent>| {
                let mut summary = StatsTable::new();
                for event in batch {
                    summary.entry(event.route).or_default().add(event.status, event.latency);
                }
                summary
            })
            .named("summarize");
        let table = Arc::new(Mutex::new(StatsTable::new()));
        let stats =
            Stats { events, dropped: AtomicU64::new(0), table: Arc::clone(&table), progress: pipeline.progress() };
        Ok((stats, StatsPipeline { pipeline, table }))
    }

    /// Hands an event to the pipeline; never waits.
    pub(crate) fn record(&self, event: RequestEvent) {
        if self.events.try_send(event).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Events dropped because the channel was full or closed.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub(crate) fn progress(&self) -> &Progress {
        &self.progress
    }

    /// A copy of the table as it is now.
    pub(crate) fn snapshot(&self) -> StatsTable {
        self.table.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The statistics subsystem (drain phase): runs the pipeline; once told
    /// to stop, closes its input (the HTTP server has answered its last
    /// request by then), lets it aggregate what is left and reports.
    pub(crate) async fn run(
        &self,
        sub: SubsystemHandle,
        pipeline: StatsPipeline,
        report: oneshot::Sender<PipelineReport>,
    ) -> Result<(), PipelineError> {
        let StatsPipeline { pipeline, table } = pipeline;
        let run = pipeline.for_each(move |summary| {
            let mut table = table.lock().unwrap_or_else(PoisonError::into_inner);
            for (route, stats) in summary {
                table.entry(route).or_default().merge(&stats);
            }
            std::future::ready(())
        });
        let mut run = std::pin::pin!(run);
        let result = tokio::select! {
            result = &mut run => result,
            () = sub.cancelled() => {
                self.events.close();
                run.await
            }
        };
        let _ = report.send(match &result {
            Ok(finished) => finished.clone(),
            Err(error) => error.report().clone(),
        });
        result.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_and_quantiles() {
        let mut stats = RouteStats::default();
        for ms in [1, 2, 3, 4, 20, 20, 20, 20, 200, 9000] {
            stats.add(200, Duration::from_millis(ms));
        }
        stats.add(503, Duration::from_millis(1));
        assert_eq!(stats.count, 11);
        assert_eq!(stats.statuses, BTreeMap::from([(200, 10), (503, 1)]));
        assert_eq!(stats.buckets, [5, 0, 4, 0, 0, 1, 0, 0, 0, 0, 1]);
        assert!((stats.quantile_bound(0.5) - 0.025).abs() < 1e-9);
        assert!(stats.quantile_bound(1.0).is_infinite());

        let mut merged = RouteStats::default();
        merged.merge(&stats);
        merged.merge(&stats);
        assert_eq!(merged.count, 22);
        assert_eq!(merged.statuses[&503], 2);
    }

    #[tokio::test]
    async fn the_pipeline_aggregates_every_event_before_it_reports() {
        let shutdown = conc_shutdown::Shutdown::builder().signals(&[]).build().unwrap();
        let (stats, pipeline) = Stats::new().unwrap();
        let stats = Arc::new(stats);
        let (report_tx, report_rx) = oneshot::channel();
        let runner = Arc::clone(&stats);
        shutdown.spawn("stats", move |sub| async move { runner.run(sub, pipeline, report_tx).await }).unwrap();
        for i in 0..1000_u64 {
            let route = if i % 4 == 0 { "/a" } else { "/b" };
            let event = RequestEvent {
                route: route.to_owned(),
                method: "GET".to_owned(),
                client: "test".to_owned(),
                status: 200,
                latency: Duration::from_millis(i % 30),
            };
            stats.record(event);
        }
        shutdown.trigger();
        assert!(shutdown.wait().await.is_clean());
        let report = report_rx.await.unwrap();
        assert_eq!(report.stage("events").unwrap().items_out, 1000);
        let table = stats.snapshot();
        assert_eq!((table["/a"].count, table["/b"].count), (250, 750));
        assert_eq!(stats.dropped(), 0);
        assert_eq!(stats.progress().live_tasks(), 0);
    }
}
