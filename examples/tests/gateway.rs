//! The gateway as a real process on a free loopback port, driven by a real
//! HTTP client: rate limits per client, the breaker opening and closing,
//! the concurrency cap shedding, and a SIGTERM that drains what was
//! accepted. Each test starts its own gateway with small limits, sends a
//! bounded number of requests, and waits for conditions (with generous
//! deadlines for a loaded machine), never for fixed times.
#![cfg(unix)]

mod support;

use std::path::PathBuf;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use futures::future::join_all;
use support::Process;

/// How long to wait for anything before calling the gateway stuck.
const PATIENCE: Duration = Duration::from_secs(30);

/// A gateway process, killed if a test fails half way.
struct Gateway {
    process: Process,
    base: String,
    audit_log: PathBuf,
    http: reqwest::Client,
}

impl Gateway {
    /// Starts the gateway with `args` (plus `--port 0` and its own audit
    /// log) and waits for its `listening on` line.
    fn start(name: &str, args: &[&str]) -> Gateway {
        let audit_log = std::env::temp_dir().join(format!("conc-gateway-test-{}-{name}.log", std::process::id()));
        let _ = std::fs::remove_file(&audit_log);
        let mut command = Command::new(env!("CARGO_BIN_EXE_gateway"));
        command.args(["--port", "0", "--audit-log"]).arg(&audit_log).args(args);
        let process = Process::spawn("the gateway", &mut command, PATIENCE);
        let http = reqwest::Client::builder().timeout(PATIENCE).build().expect("an HTTP client");
        let mut gateway = Gateway { process, base: String::new(), audit_log, http };
        let first = gateway.wait_for("listening on http://");
        gateway.base = first.trim_start_matches("listening on ").to_owned();
        gateway
    }

    /// Waits until the gateway has printed a line containing `text`.
    fn wait_for(&mut self, text: &str) -> String {
        self.process.wait_for(text)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET `path` as `client`.
    async fn get(&self, path: &str, client: &str) -> reqwest::Response {
        self.http.get(self.url(path)).header("x-client-id", client).send().await.expect("a response")
    }

    async fn admin(&self, query: &str) {
        let response = self.http.post(self.url(&format!("/admin/downstream?{query}"))).send().await.expect("admin");
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap_or_default());
    }

    /// The value of the sample `name` (with its labels, as printed) in
    /// `/metrics`, if it is there.
    async fn try_metric(&self, name: &str) -> Option<f64> {
        let text = self.http.get(self.url("/metrics")).send().await.expect("metrics").text().await.expect("a body");
        let prefix = format!("{name} ");
        text.lines().find_map(|line| line.strip_prefix(&prefix)).map(|value| value.parse().expect("a number"))
    }

    async fn metric(&self, name: &str) -> f64 {
        self.try_metric(name).await.unwrap_or_else(|| panic!("no sample {name} in /metrics"))
    }

    /// Polls `/metrics` until `name` is there and satisfies `ok` (figures
    /// aggregated by the pipeline show up a batch later).
    async fn wait_for_metric(&self, name: &str, ok: impl Fn(f64) -> bool) -> f64 {
        let give_up = Instant::now() + PATIENCE;
        loop {
            let value = self.try_metric(name).await;
            if let Some(value) = value.filter(|value| ok(*value)) {
                return value;
            }
            assert!(Instant::now() < give_up, "{name} stayed at {value:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn signal(&self, signal: &str) {
        self.process.signal(signal);
    }

    /// Reads the rest of the output and the exit status.
    fn finish(&mut self) -> (String, ExitStatus) {
        let status = self.process.finish();
        (self.process.seen.join("\n"), status)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        // The process itself is killed by `Process`'s drop; best effort.
        let _ = std::fs::remove_file(&self.audit_log);
    }
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response.headers().get(name).and_then(|value| value.to_str().ok()).unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_over_their_rate_get_429_and_others_never_do() {
    // 5 requests a second in bursts of 10. The greedy client fires 40 at
    // once: at most 10 plus 5 a second of them can pass. The polite one
    // sends 6 in all, fewer than one burst, so no timing can limit it.
    let gateway = Gateway::start("ratelimit", &["--rate", "5", "--burst", "10", "--downstream-latency-ms", "0"]);
    let greedy = join_all((0..40).map(|_| gateway.get("/api/downstream", "greedy")));
    let polite = async {
        let mut statuses = Vec::new();
        for _ in 0..6 {
            statuses.push(gateway.get("/api/downstream", "polite").await.status());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        statuses
    };
    let (greedy, polite) = tokio::join!(greedy, polite);

    assert!(polite.iter().all(|status| *status == 200), "the polite client was refused: {polite:?}");
    let limited: Vec<_> = greedy.iter().filter(|response| response.status() == 429).collect();
    let ok = greedy.iter().filter(|response| response.status() == 200).count();
    assert!(!limited.is_empty(), "40 requests at once should exceed a burst of 10");
    assert!(ok >= 10, "the burst should pass: {ok} of 40 did");
    assert_eq!(ok + limited.len(), 40, "only 200 and 429 expected");
    for response in &limited {
        // The next slot is at most 200 ms away: rounded up, 1 second.
        assert_eq!(header(response, "retry-after"), "1");
    }
    assert_eq!(gateway.metric("gateway_ratelimit_limited_total").await, limited.len() as f64);
    assert_eq!(gateway.metric("gateway_ratelimit_allowed_total").await, (46 - limited.len()) as f64);
    assert_eq!(gateway.metric("gateway_ratelimit_keys").await, 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_opens_on_failures_and_closes_after_recovery() {
    let gateway = Gateway::start(
        "breaker",
        &["--breaker-open-ms", "300", "--downstream-latency-ms", "0", "--rate", "1000", "--burst", "1000"],
    );
    let response = gateway.get("/api/downstream", "t").await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-breaker-state"), "closed");

    // The downstream fails every call: the breaker opens within its window
    // (10 calls at 50% failures) and then answers 503 without calling it.
    gateway.admin("error_rate=1.0").await;
    let mut failures = 0;
    let rejected = loop {
        let response = gateway.get("/api/downstream", "t").await;
        match response.status().as_u16() {
            500 => failures += 1,
            503 => break response,
            other => panic!("unexpected {other}"),
        }
        assert!(failures <= 20, "the breaker did not open after {failures} failures");
    };
    assert!(failures >= 9, "opened after only {failures} failures");
    assert_eq!(header(&rejected, "x-breaker-state"), "open");
    assert!(header(&rejected, "retry-after").parse::<u64>().is_ok_and(|secs| secs >= 1));
    assert!(rejected.text().await.unwrap().contains("circuit open"));
    assert!(gateway.metric("gateway_breaker_rejected_total").await >= 1.0);
    // Still failing, so it cannot have closed (it may be half-open, or open again).
    assert_eq!(gateway.metric("gateway_breaker_state{state=\"closed\"}").await, 0.0);

    // The downstream recovers: after the open time, trial calls succeed
    // and the breaker closes.
    gateway.admin("error_rate=0").await;
    let give_up = Instant::now() + PATIENCE;
    let mut seen = Vec::new();
    loop {
        let response = gateway.get("/api/downstream", "t").await;
        let (status, state) = (response.status().as_u16(), header(&response, "x-breaker-state").to_owned());
        seen.push((status, state.clone()));
        if status == 200 && state == "closed" {
            break;
        }
        assert!(Instant::now() < give_up, "the breaker did not close: {seen:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(seen.iter().all(|(status, _)| *status == 200 || *status == 503), "{seen:?}");
    assert_eq!(gateway.metric("gateway_breaker_state{state=\"closed\"}").await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_concurrency_cap_sheds_load_and_holds() {
    // 4 slots, no queue, each call takes a second: of 20 requests sent at
    // once, the first 4 take the slots and the rest are shed.
    let gateway = Gateway::start(
        "concurrency",
        &[
            "--max-inflight",
            "4",
            "--max-waiters",
            "0",
            "--downstream-latency-ms",
            "1000",
            "--rate",
            "1000",
            "--burst",
            "1000",
        ],
    );
    let responses = join_all((0..20).map(|i| gateway.get("/api/downstream", if i % 2 == 0 { "a" } else { "b" }))).await;
    let ok = responses.iter().filter(|response| response.status() == 200).count();
    let shed: Vec<_> = responses.iter().filter(|response| response.status() == 503).collect();
    assert_eq!(ok + shed.len(), 20, "only 200 and 503 expected");
    assert!(ok >= 4, "the first 4 should be served, {ok} were");
    assert!(!shed.is_empty(), "20 requests at once should exceed 4 slots");
    assert!(shed.iter().all(|response| !header(response, "retry-after").is_empty()));
    assert_eq!(gateway.metric("gateway_concurrency_shed_total").await, shed.len() as f64);
    assert_eq!(gateway.metric("gateway_concurrency_capacity").await, 4.0);
    let peak = gateway.metric("gateway_in_flight_peak").await;
    assert!((1.0..=4.0).contains(&peak), "in flight peaked at {peak}, above the cap of 4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_answers_every_accepted_request_then_exits_cleanly() {
    let mut gateway = Gateway::start("sigterm", &["--downstream-latency-ms", "2500"]);
    let addr = gateway.base.trim_start_matches("http://").to_owned();
    let requests: Vec<_> = (0..5)
        .map(|i| {
            let request = gateway.http.get(gateway.url("/api/downstream")).header("x-client-id", format!("c{i}"));
            tokio::spawn(request.send())
        })
        .collect();
    // All five are inside the gateway before the signal.
    gateway.wait_for_metric("gateway_in_flight", |n| n >= 5.0).await;
    gateway.signal("TERM");
    gateway.wait_for("shutdown: stopped accepting");

    // The listener closes at once; the accepted requests still finish.
    let give_up = Instant::now() + PATIENCE;
    while tokio::net::TcpStream::connect(&addr).await.is_ok() {
        assert!(Instant::now() < give_up, "still accepting connections after SIGTERM");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for request in requests {
        let response = request.await.expect("the request task").expect("a response to an accepted request");
        assert_eq!(response.status(), 200);
        assert!(response.text().await.unwrap().contains("downstream ok"));
    }

    let (output, status) = gateway.finish();
    assert_eq!(status.code(), Some(0), "output:\n{output}");
    assert!(output.contains("shutdown: trigger SIGTERM"), "output:\n{output}");
    assert!(output.contains("exit code 0"), "output:\n{output}");
    for subsystem in ["http", "audit-pool", "stats-pipeline", "limiter-janitor"] {
        let line = output.lines().find(|line| line.trim_start().starts_with(&format!("subsystem {subsystem} ")));
        assert!(line.is_some_and(|line| line.ends_with("finished")), "{subsystem}:\n{output}");
    }
    assert!(output.contains("audit pool: "), "output:\n{output}");
    assert!(output.contains("route /api/downstream: 5 requests (200: 5)"), "output:\n{output}");
    // The pool wrote the five records before the process exited.
    let log = std::fs::read_to_string(&gateway.audit_log).expect("the audit log");
    assert_eq!(log.lines().filter(|line| line.contains("GET /api/downstream 200")).count(), 5, "log:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_names_the_failed_backend_and_the_other_routes_answer() {
    let gateway = Gateway::start("routes", &[]);
    let all = gateway.get("/api/fanout", "t").await;
    assert_eq!(all.status(), 200);
    let body = all.text().await.unwrap();
    for backend in ["users: ok", "orders: ok", "inventory: ok"] {
        assert!(body.contains(backend), "{body}");
    }
    let failed = gateway.get("/api/fanout?fail=orders", "t").await;
    assert_eq!(failed.status(), 502);
    let body = failed.text().await.unwrap();
    assert!(body.starts_with("backend orders failed;"), "{body}");
    assert_eq!(gateway.metric("gateway_fanout_failed_total").await, 1.0);
    assert_eq!(gateway.get("/api/fanout?fail=nobody", "t").await.status(), 400);

    for mode in ["first_ok", "hedge"] {
        let response = gateway.get(&format!("/api/fastest?mode={mode}"), "t").await;
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        // A replica fails one call in five: all of them failing is rare, but fine.
        match status {
            200 => assert!(body.contains("replica-") && body.contains("answered first"), "{body}"),
            502 => assert!(body.starts_with("every replica failed"), "{body}"),
            other => panic!("{mode}: unexpected {other}: {body}"),
        }
    }
    let index = gateway.get("/", "t").await.text().await.unwrap();
    assert!(index.contains("/api/fanout") && index.contains("curl"), "{index}");
    let settings = gateway.get("/admin/downstream", "t").await.text().await.unwrap();
    assert_eq!(settings.trim(), "latency_ms=20 error_rate=0");
    let bad = gateway.http.post(gateway.url("/admin/downstream?error_rate=2")).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    // Every request went through the pipeline into the per-route counts.
    gateway.wait_for_metric("gateway_requests_total{route=\"/api/fanout\",status=\"502\"}", |n| n == 1.0).await;
}
