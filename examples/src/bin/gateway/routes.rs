//! The HTTP surface: the router, the middleware stack, and the handlers.
//!
//! ```text
//! every request ── record (stats pipeline + audit pool) ──┬─ /, /metrics, /admin/downstream
//!                                                         └─ /api/* ── per-client GCRA (429)
//!                                                                  └─ concurrency cap (503)
//!                                                                     └─ /api/downstream ── breaker (503 while open)
//!                                                                     └─ /api/fanout, /api/fastest (conc-group)
//! ```

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::handler::Handler;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, get_service};
use conc_breaker::BreakerError;
use conc_breaker::tower::BreakerLayer;
use conc_core::Token;
use conc_group::{GroupError, ResultGroup};
use conc_limit::tower::{ConcurrencyLimitLayer, KeyedRateLimitLayer, LimitError};
use http::{HeaderValue, StatusCode, header};
use tower::ServiceBuilder;

use crate::Gateway;
use crate::background::RequestEvent;
use crate::downstream::{BACKENDS, Backend, REPLICAS, Reply};
use crate::metrics::{self, Counters};

/// The header naming the client; without it the peer's IP address is the client.
pub(crate) const CLIENT_HEADER: &str = "x-client-id";
/// The header telling the downstream breaker's state after the call.
pub(crate) const BREAKER_HEADER: &str = "x-breaker-state";

/// The whole application.
pub(crate) fn router(gw: Arc<Gateway>) -> Router {
    let concurrency = if gw.flags.max_waiters == 0 {
        ConcurrencyLimitLayer::shed(Arc::clone(&gw.slots))
    } else {
        ConcurrencyLimitLayer::new(Arc::clone(&gw.slots))
    };
    // Outermost first. Each limit sheds with a `LimitError`, which the
    // `HandleErrorLayer` above it turns into a response.
    let api_limits = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(limit_handler(&gw)))
        .layer(KeyedRateLimitLayer::new(Arc::clone(&gw.limiter), client_key))
        .map_request({
            let gw = Arc::clone(&gw);
            move |request: Request| {
                Counters::bump(&gw.counters.allowed);
                request
            }
        })
        .layer(HandleErrorLayer::new(limit_handler(&gw)))
        .layer(concurrency)
        .layer(middleware::from_fn_with_state(Arc::clone(&gw), track_in_flight));

    let api = Router::new()
        .route("/api/downstream", get_service(downstream_service(&gw)))
        .route("/api/fanout", get(fanout))
        .route("/api/fastest", get(fastest))
        .route_layer(api_limits);

    Router::new()
        .route("/", get(index))
        .route("/metrics", get(metrics))
        .route("/admin/downstream", get(show_downstream).post(set_downstream))
        .merge(api)
        .layer(middleware::from_fn_with_state(Arc::clone(&gw), record))
        .with_state(gw)
}

/// The routes served: the statistics keep one row for each, and one for
/// everything else, so a scan of random paths cannot grow the table.
const ROUTES: [&str; 6] = ["/", "/metrics", "/admin/downstream", "/api/downstream", "/api/fanout", "/api/fastest"];

fn route_label(path: &str) -> &'static str {
    ROUTES.iter().find(|route| **route == path).copied().unwrap_or("other")
}

/// The rate limiter's key: the `x-client-id` header, else the peer's IP.
fn client_key(request: &Request) -> String {
    let header = request.headers().get(CLIENT_HEADER).and_then(|value| value.to_str().ok());
    match header {
        // Bounded, so a client cannot make the limiter store huge keys.
        Some(id) if !id.is_empty() => id.chars().take(64).collect(),
        _ => request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or_else(|| "unknown".to_owned(), |ConnectInfo(peer)| peer.ip().to_string()),
    }
}

/// A response with a plain-text body.
fn text(status: StatusCode, body: impl fmt::Display) -> Response {
    (status, format!("{body}\n")).into_response()
}

/// Whole seconds for a `Retry-After` header, rounded up and at least 1
/// (the request was just refused: "retry now" would be wrong).
fn retry_after_secs(wait: Duration) -> u64 {
    let rounded_up = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    rounded_up.max(1)
}

fn with_retry_after(mut response: Response, wait: Duration) -> Response {
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs(wait)));
    response
}

/// Turns a shed request into its response: 429 for a client over its rate,
/// 503 for a full gateway. Used above both limits.
fn limit_handler(
    gw: &Arc<Gateway>,
) -> impl Fn(LimitError<Infallible>) -> std::future::Ready<Response> + Clone + Send + Sync + 'static {
    let gw = Arc::clone(gw);
    move |error| {
        let counters = &gw.counters;
        std::future::ready(match error {
            LimitError::RateLimited { retry_after } => {
                Counters::bump(&counters.limited);
                let body = format!("too many requests: retry in {retry_after:.1?}");
                with_retry_after(text(StatusCode::TOO_MANY_REQUESTS, body), retry_after)
            }
            LimitError::Saturated => {
                Counters::bump(&counters.shed);
                with_retry_after(text(StatusCode::SERVICE_UNAVAILABLE, "server busy: request shed"), Duration::ZERO)
            }
            LimitError::TooManyKeys => {
                Counters::bump(&counters.too_many_keys);
                with_retry_after(text(StatusCode::SERVICE_UNAVAILABLE, "too many clients"), Duration::ZERO)
            }
            LimitError::Closed => text(StatusCode::SERVICE_UNAVAILABLE, "shutting down"),
            LimitError::Inner(never) => match never {},
            other => text(StatusCode::INTERNAL_SERVER_ERROR, other),
        })
    }
}

/// Counts the API requests inside the concurrency cap (the peak shows that
/// the cap holds).
async fn track_in_flight(State(gw): State<Arc<Gateway>>, request: Request, next: Next) -> Response {
    struct Leave<'a>(&'a Counters);
    impl Drop for Leave<'_> {
        fn drop(&mut self) {
            self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
    }
    let now = gw.counters.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
    gw.counters.in_flight_peak.fetch_max(now, Ordering::Relaxed);
    let _leave = Leave(&gw.counters);
    next.run(request).await
}

/// Sends every request's record to the statistics pipeline and the audit
/// pool, after the response is ready. Neither waits.
async fn record(State(gw): State<Arc<Gateway>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = route_label(request.uri().path()).to_owned();
    let method = request.method().to_string();
    let client = client_key(&request);
    let response = next.run(request).await;
    let event = RequestEvent { route, method, client, status: response.status().as_u16(), latency: started.elapsed() };
    gw.audit.record(&event);
    gw.stats.record(event);
    response
}

/// `/api/downstream`: the simulated downstream behind the breaker. A 5xx
/// counts as a failure; while the breaker is open the call is not made.
fn downstream_service(
    gw: &Arc<Gateway>,
) -> impl tower::Service<Request, Response = Response, Error = Infallible, Future: Send> + Clone + Send + Sync + 'static
{
    let breaker = Arc::clone(&gw.breaker);
    ServiceBuilder::new()
        .map_response(move |mut response: Response| {
            if let Ok(state) = HeaderValue::from_str(&breaker.state().to_string()) {
                response.headers_mut().insert(BREAKER_HEADER, state);
            }
            response
        })
        .layer(HandleErrorLayer::new({
            let gw = Arc::clone(gw);
            move |error| std::future::ready(breaker_rejection(&gw, error))
        }))
        .layer(BreakerLayer::new(Arc::clone(&gw.breaker)).classify(is_server_error))
        .service(call_downstream.with_state(Arc::clone(gw)))
}

fn is_server_error(result: &Result<Response, Infallible>) -> bool {
    result.as_ref().is_ok_and(|response| response.status().is_server_error())
}

fn breaker_rejection(gw: &Gateway, error: BreakerError<Infallible>) -> Response {
    match error {
        BreakerError::Open { .. } => {
            Counters::bump(&gw.counters.breaker_rejected);
            // While open, the breaker knows when it will let a trial through.
            let wait = gw.breaker.retry_after().unwrap_or(Duration::ZERO);
            with_retry_after(text(StatusCode::SERVICE_UNAVAILABLE, "downstream unavailable: circuit open"), wait)
        }
        BreakerError::HalfOpenFull => {
            Counters::bump(&gw.counters.breaker_rejected);
            let body = "downstream unavailable: circuit half-open, its trial calls are taken";
            with_retry_after(text(StatusCode::SERVICE_UNAVAILABLE, body), Duration::ZERO)
        }
        BreakerError::Timeout(after) => {
            text(StatusCode::GATEWAY_TIMEOUT, format!("downstream timed out after {after:?}"))
        }
        BreakerError::Inner(never) => match never {},
    }
}

async fn call_downstream(State(gw): State<Arc<Gateway>>) -> Response {
    let started = Instant::now();
    match gw.downstream.call().await {
        Reply::Ok => text(StatusCode::OK, format!("downstream ok in {:?}", started.elapsed())),
        Reply::Failed => text(StatusCode::INTERNAL_SERVER_ERROR, "downstream failed"),
    }
}

/// Why a backend of the fan-out gave no answer.
#[derive(Debug)]
enum BackendError {
    /// The backend itself failed.
    Failed { backend: &'static str },
    /// A sibling failed first, so this call was cancelled.
    Cancelled { backend: &'static str },
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendError::Failed { backend } => write!(f, "backend {backend} failed"),
            BackendError::Cancelled { backend } => write!(f, "backend {backend} cancelled"),
        }
    }
}

impl std::error::Error for BackendError {}

async fn call_backend(
    token: Token,
    backend: Backend,
    fail: bool,
    cancelled: Arc<AtomicU64>,
) -> Result<String, BackendError> {
    // A failing backend gives up early; a healthy one answers after its
    // latency unless the group's token is cancelled first.
    let latency = if fail { backend.latency / 3 } else { backend.latency };
    if token.run_until_cancelled(tokio::time::sleep(latency)).await.is_err() {
        cancelled.fetch_add(1, Ordering::Relaxed);
        return Err(BackendError::Cancelled { backend: backend.name });
    }
    if fail {
        Err(BackendError::Failed { backend: backend.name })
    } else {
        Ok(format!("{}: ok in {:?}", backend.name, latency))
    }
}

/// Calls every backend at once (`fail` names one that fails); returns the
/// answers in backend order or the first failure, and how many calls were
/// cancelled.
async fn fan_out(backends: &[Backend], fail: Option<&str>) -> (Result<Vec<String>, GroupError<BackendError>>, u64) {
    // The whole fan-out has a deadline, like a Go context with a timeout.
    let request = Token::new().with_timeout(Duration::from_secs(2));
    let mut group = ResultGroup::with_token(&request);
    let cancelled = Arc::new(AtomicU64::new(0));
    for &backend in backends {
        let (fail, cancelled) = (fail == Some(backend.name), Arc::clone(&cancelled));
        // Refused only once a sibling has failed: `wait` reports that failure.
        let _ = group.spawn(move |token| call_backend(token, backend, fail, cancelled)).await;
    }
    let result = group.wait().await;
    // Every task has ended: the count is final.
    (result, cancelled.load(Ordering::Relaxed))
}

/// `/api/fanout[?fail=users|orders|inventory]`: asks three backends at once
/// in a conc-group `ResultGroup`; the first failure cancels the others and
/// is answered with 502 naming the backend.
async fn fanout(State(gw): State<Arc<Gateway>>, Query(query): Query<HashMap<String, String>>) -> Response {
    let fail = query.get("fail").map(String::as_str);
    if let Some(name) = fail.filter(|name| !BACKENDS.iter().any(|backend| backend.name == *name)) {
        return text(StatusCode::BAD_REQUEST, format!("no backend called {name}"));
    }
    let started = Instant::now();
    let (result, cancelled) = fan_out(&BACKENDS, fail).await;
    gw.counters.fanout_cancelled.fetch_add(cancelled, Ordering::Relaxed);
    match result {
        Ok(answers) => {
            text(StatusCode::OK, format!("{}\nall 3 backends in {:?}", answers.join("\n"), started.elapsed()))
        }
        Err(GroupError::Failed(error)) => {
            Counters::bump(&gw.counters.fanout_failed);
            text(StatusCode::BAD_GATEWAY, format!("{error}; {cancelled} other calls cancelled"))
        }
        Err(GroupError::Cancelled(cause)) => text(StatusCode::GATEWAY_TIMEOUT, format!("fan-out gave up: {cause}")),
        Err(error) => text(StatusCode::INTERNAL_SERVER_ERROR, error),
    }
}

/// `/api/fastest[?mode=first_ok|hedge]`: the first answer among replicas.
async fn fastest(State(gw): State<Arc<Gateway>>, Query(query): Query<HashMap<String, String>>) -> Response {
    let started = Instant::now();
    let replica = |name: &'static str| {
        // Each replica answers within 5..150 ms; one call in five fails.
        let (latency, fails) =
            (gw.downstream.jitter(Duration::from_millis(5), Duration::from_millis(150)), gw.downstream.chance(0.2));
        async move {
            tokio::time::sleep(latency).await;
            if fails { Err(format!("{name} failed")) } else { Ok(name) }
        }
    };
    let (result, how) = match query.get("mode").map_or("first_ok", String::as_str) {
        "first_ok" => (conc_group::first_ok(REPLICAS.map(replica)).await, "first_ok over 3 replicas"),
        "hedge" => {
            // Ask the replicas in turn; a second one only if the first has
            // not answered in 50 ms (or failed).
            let mut asked = 0;
            let result = conc_group::hedge(Duration::from_millis(50), || {
                asked += 1;
                replica(REPLICAS[asked - 1])
            })
            .await;
            if asked > 1 {
                Counters::bump(&gw.counters.hedged);
            }
            (result, if asked > 1 { "hedge, second attempt started" } else { "hedge, first attempt only" })
        }
        other => return text(StatusCode::BAD_REQUEST, format!("unknown mode {other}: use first_ok or hedge")),
    };
    match result {
        Ok(name) => text(StatusCode::OK, format!("{name} answered first in {:?} ({how})", started.elapsed())),
        Err(errors) => text(StatusCode::BAD_GATEWAY, format!("every replica failed: {}", errors.join(", "))),
    }
}

async fn show_downstream(State(gw): State<Arc<Gateway>>) -> Response {
    let (latency, error_rate) = (gw.downstream.latency(), gw.downstream.error_rate());
    text(StatusCode::OK, format!("latency_ms={} error_rate={error_rate}", latency.as_millis()))
}

/// `POST /admin/downstream?error_rate=0.5&latency_ms=100`: changes the
/// simulated downstream at run time.
async fn set_downstream(State(gw): State<Arc<Gateway>>, Query(query): Query<HashMap<String, String>>) -> Response {
    let error_rate = match query.get("error_rate").map(|value| value.parse::<f64>()) {
        None => None,
        Some(Ok(rate)) if (0.0..=1.0).contains(&rate) => Some(rate),
        Some(_) => return text(StatusCode::BAD_REQUEST, "error_rate must be a number from 0.0 to 1.0"),
    };
    let latency = match query.get("latency_ms").map(|value| value.parse::<u64>()) {
        None => None,
        Some(Ok(ms)) => Some(Duration::from_millis(ms)),
        Some(Err(_)) => return text(StatusCode::BAD_REQUEST, "latency_ms must be a whole number of milliseconds"),
    };
    if let Some(rate) = error_rate {
        gw.downstream.set_error_rate(rate);
    }
    if let Some(latency) = latency {
        gw.downstream.set_latency(latency);
    }
    show_downstream(State(gw)).await
}

async fn metrics(State(gw): State<Arc<Gateway>>) -> Response {
    let mut response = metrics::render(&gw).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    response
}

async fn index(State(gw): State<Arc<Gateway>>) -> String {
    let base = format!("http://{}", gw.addr);
    format!(
        "\
conc gateway: every conc crate in one small service

GET  /api/downstream   a flaky downstream behind a circuit breaker (header {BREAKER_HEADER})
GET  /api/fanout       three backends at once; ?fail=orders makes one fail and cancels the rest
GET  /api/fastest      first answer among replicas; ?mode=first_ok (default) or ?mode=hedge
GET  /metrics          Prometheus metrics: limiter, semaphore, breaker, pool, pipeline, routes
GET  /admin/downstream the downstream's settings
POST /admin/downstream?error_rate=0.5&latency_ms=100   change them

/api/* is limited per client ({CLIENT_HEADER} header, else IP) to {rate}/s in bursts of {burst} (429),
and to {inflight} requests at once (503).

Try:
  curl -i {base}/api/downstream
  curl -i -H '{CLIENT_HEADER}: alice' {base}/api/fanout?fail=orders
  curl {base}/api/fastest?mode=hedge
  curl -X POST '{base}/admin/downstream?error_rate=1.0'   # then call /api/downstream until the breaker opens
  curl -s {base}/metrics | grep -v '^#'
",
        rate = gw.flags.rate,
        burst = gw.flags.burst,
        inflight = gw.flags.max_inflight,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(30)), 30);
    }

    #[tokio::test]
    async fn a_failed_backend_cancels_the_others() {
        let (result, cancelled) = fan_out(&BACKENDS, None).await;
        assert_eq!(result.unwrap(), ["users: ok in 15ms", "orders: ok in 30ms", "inventory: ok in 45ms"]);
        assert_eq!(cancelled, 0);

        // The healthy backends would take an hour: they end only if cancelled.
        let hour = Duration::from_secs(3600);
        let backends = [
            Backend { name: "slow-1", latency: hour },
            Backend { name: "flaky", latency: Duration::from_millis(3) },
            Backend { name: "slow-2", latency: hour },
        ];
        let (result, cancelled) = fan_out(&backends, Some("flaky")).await;
        assert!(matches!(result, Err(GroupError::Failed(BackendError::Failed { backend: "flaky" }))));
        assert_eq!(cancelled, 2);
    }
}
