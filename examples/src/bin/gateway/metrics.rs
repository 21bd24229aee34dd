//! The gateway's own counters, and `/metrics` in Prometheus' text format:
//! every figure the crates expose (limiter, semaphore, breaker, pool,
//! pipeline) next to the counters kept here.

use std::fmt::{Display, Write};
use std::sync::atomic::{AtomicU64, Ordering};

use conc_breaker::State;

use crate::Gateway;
use crate::background::BUCKETS;

/// Counters the handlers and middleware bump: one atomic each, no lock.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// API requests the rate limiter let through.
    pub(crate) allowed: AtomicU64,
    /// API requests answered 429 by the rate limiter.
    pub(crate) limited: AtomicU64,
    /// API requests refused because the limiter holds too many clients.
    pub(crate) too_many_keys: AtomicU64,
    /// API requests answered 503 because no slot was free.
    pub(crate) shed: AtomicU64,
    /// API requests being handled now (inside the concurrency cap).
    pub(crate) in_flight: AtomicU64,
    /// The most API requests ever handled at once.
    pub(crate) in_flight_peak: AtomicU64,
    /// Downstream calls answered 503 by the open breaker.
    pub(crate) breaker_rejected: AtomicU64,
    /// Fan-outs that failed (502).
    pub(crate) fanout_failed: AtomicU64,
    /// Backend calls cancelled because a sibling failed.
    pub(crate) fanout_cancelled: AtomicU64,
    /// Hedged requests that started their second attempt.
    pub(crate) hedged: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Prometheus' text exposition format, written by hand.
struct Exposition(String);

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (key, label)) in labels.iter().enumerate() {
                let separator = if i == 0 { "" } else { "," };
                let _ = write!(self.0, "{separator}{key}=\"{}\"", escape(label));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }

    /// A family with one unlabelled sample.
    fn single(&mut self, name: &str, kind: &str, help: &str, value: impl Display) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }
}

fn escape(label: &str) -> String {
    label.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The states a breaker gauge reports, one sample each.
const STATES: [State; 6] =
    [State::Closed, State::Open, State::HalfOpen, State::ForcedOpen, State::Disabled, State::MetricsOnly];

/// Everything, as `GET /metrics` returns it.
pub(crate) fn render(gw: &Gateway) -> String {
    let mut out = Exposition(String::with_capacity(8 * 1024));
    let c = &gw.counters;
    let get = Counters::get;

    // conc-limit: the keyed GCRA.
    out.single(
        "gateway_ratelimit_allowed_total",
        "counter",
        "API requests the per-client limiter let through",
        get(&c.allowed),
    );
    out.single(
        "gateway_ratelimit_limited_total",
        "counter",
        "API requests answered 429 (client over its rate)",
        get(&c.limited),
    );
    out.single(
        "gateway_ratelimit_too_many_keys_total",
        "counter",
        "API requests refused: too many clients tracked",
        get(&c.too_many_keys),
    );
    out.single("gateway_ratelimit_keys", "gauge", "Clients the keyed limiter holds state for", gw.limiter.len());
    out.single("gateway_ratelimit_rate_per_second", "gauge", "Requests per second allowed per client", gw.flags.rate);
    out.single("gateway_ratelimit_burst", "gauge", "Requests a client may make at once", gw.flags.burst);

    // conc-limit: the semaphore capping concurrency.
    let capacity = gw.slots.capacity();
    let available = gw.slots.available();
    out.single("gateway_concurrency_capacity", "gauge", "API requests handled at once, at most", capacity);
    out.single(
        "gateway_concurrency_in_flight",
        "gauge",
        "Semaphore permits held now",
        capacity.saturating_sub(available),
    );
    out.single("gateway_concurrency_available", "gauge", "Semaphore permits free now", available);
    out.single("gateway_concurrency_waiters", "gauge", "Requests queued for a permit", gw.slots.waiters());
    out.single("gateway_concurrency_shed_total", "counter", "API requests answered 503 (no slot free)", get(&c.shed));
    out.single("gateway_in_flight", "gauge", "API requests inside the cap now", get(&c.in_flight));
    out.single(
        "gateway_in_flight_peak",
        "gauge",
        "The most API requests ever inside the cap at once",
        get(&c.in_flight_peak),
    );

    // conc-breaker.
    let breaker = gw.breaker.metrics();
    out.family("gateway_breaker_state", "gauge", "The downstream breaker's state: 1 for the current one");
    for state in STATES {
        out.sample("gateway_breaker_state", &[("state", &state.to_string())], u8::from(breaker.state == state));
    }
    out.single("gateway_breaker_window_calls", "gauge", "Calls in the breaker's window", breaker.counts.calls);
    out.single(
        "gateway_breaker_window_failures",
        "gauge",
        "Failed calls in the breaker's window",
        breaker.counts.failures,
    );
    out.single(
        "gateway_breaker_window_successes",
        "gauge",
        "Successful calls in the breaker's window",
        breaker.counts.successes,
    );
    out.single(
        "gateway_breaker_failure_rate_percent",
        "gauge",
        "Failure rate over the window (-1: too few calls)",
        breaker.failure_rate.unwrap_or(-1.0),
    );
    out.single(
        "gateway_breaker_rejected_total",
        "counter",
        "Calls the breaker rejected without running",
        breaker.rejected,
    );
    out.single(
        "gateway_breaker_time_in_state_seconds",
        "gauge",
        "Time since the breaker's last state change",
        breaker.time_in_state.as_secs_f64(),
    );

    // conc-group.
    out.single("gateway_fanout_failed_total", "counter", "Fan-outs that failed (502)", get(&c.fanout_failed));
    out.single(
        "gateway_fanout_cancelled_total",
        "counter",
        "Backend calls cancelled because a sibling failed",
        get(&c.fanout_cancelled),
    );
    out.single(
        "gateway_hedge_second_attempts_total",
        "counter",
        "Hedged requests that started a second attempt",
        get(&c.hedged),
    );

    // conc-pool: the audit writer.
    let pool = gw.audit.pool().stats();
    let (written, write_errors, dropped) = gw.audit.counts();
    out.single("gateway_audit_pool_submitted_total", "counter", "Audit jobs accepted by the pool", pool.submitted);
    out.single("gateway_audit_pool_completed_total", "counter", "Audit jobs finished", pool.completed);
    out.single(
        "gateway_audit_pool_rejected_total",
        "counter",
        "Audit jobs refused (queue full or closed)",
        pool.rejected,
    );
    out.single("gateway_audit_pool_queued", "gauge", "Audit jobs waiting", pool.queued);
    out.single("gateway_audit_pool_running", "gauge", "Audit jobs running", pool.running);
    out.single("gateway_audit_pool_workers", "gauge", "Audit pool workers alive", pool.workers);
    out.single("gateway_audit_pool_peak_queued", "gauge", "The audit queue's high-water mark", pool.peak_queued);
    out.single("gateway_audit_records_written_total", "counter", "Audit records appended to the log", written);
    out.single("gateway_audit_write_errors_total", "counter", "Audit records the file refused", write_errors);
    out.single("gateway_audit_records_dropped_total", "counter", "Audit records dropped (queue full)", dropped);

    // conc-pipeline: the statistics aggregator.
    let progress = gw.stats.progress();
    out.family("gateway_pipeline_stage_items_in_total", "counter", "Items each stats pipeline stage took in");
    let stages = progress.stages();
    for stage in &stages {
        out.sample("gateway_pipeline_stage_items_in_total", &[("stage", &stage.name)], stage.items_in);
    }
    out.family("gateway_pipeline_stage_items_out_total", "counter", "Items each stats pipeline stage handed on");
    for stage in &stages {
        out.sample("gateway_pipeline_stage_items_out_total", &[("stage", &stage.name)], stage.items_out);
    }
    out.family("gateway_pipeline_stage_busy_seconds_total", "counter", "Time each stats pipeline stage spent working");
    for stage in &stages {
        out.sample("gateway_pipeline_stage_busy_seconds_total", &[("stage", &stage.name)], stage.busy.as_secs_f64());
    }
    out.single(
        "gateway_pipeline_events_dropped_total",
        "counter",
        "Request events dropped (channel full)",
        gw.stats.dropped(),
    );
    out.single("gateway_pipeline_tasks", "gauge", "Tasks the stats pipeline runs", progress.live_tasks());

    // What the pipeline aggregated: requests per route and status, latency.
    let table = gw.stats.snapshot();
    out.family(
        "gateway_requests_total",
        "counter",
        "Requests answered, by route and status (aggregated by the pipeline)",
    );
    for (route, stats) in &table {
        for (status, count) in &stats.statuses {
            out.sample("gateway_requests_total", &[("route", route), ("status", &status.to_string())], count);
        }
    }
    out.family(
        "gateway_request_duration_seconds",
        "histogram",
        "Request latency by route (aggregated by the pipeline)",
    );
    for (route, stats) in &table {
        let mut cumulative = 0;
        for (i, count) in stats.buckets.iter().enumerate() {
            cumulative += count;
            let le = BUCKETS.get(i).map_or_else(|| "+Inf".to_owned(), f64::to_string);
            out.sample("gateway_request_duration_seconds_bucket", &[("route", route), ("le", &le)], cumulative);
        }
        out.sample("gateway_request_duration_seconds_sum", &[("route", route)], stats.latency_sum.as_secs_f64());
        out.sample("gateway_request_duration_seconds_count", &[("route", route)], stats.count);
    }
    out.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped() {
        let mut out = Exposition(String::new());
        out.sample("m", &[("route", "a\"b"), ("le", "+Inf")], 3);
        assert_eq!(out.0, "m{route=\"a\\\"b\",le=\"+Inf\"} 3\n");
    }
}
