//! `cargo xtask load`: the showcase gateway under a real load generator.
//!
//! Builds the gateway in release, starts it on a free loopback port, and
//! drives it with `wrk` (Debian's package, installed here with `apt-get`
//! when missing and running as root) at a fixed concurrency, once per
//! scenario:
//!
//! - `open`: limits far above what one machine can send, so the figures
//!   are the cost of every layer (keyed rate limit, concurrency cap,
//!   breaker, audit job, statistics pipeline) on a fast downstream;
//! - `limited`: one client over its per-client rate, so most answers are
//!   the intended 429s and the rest pass.
//!
//! After each run the gateway gets SIGTERM, and its exit status and
//! shutdown report are printed: a drain under load is part of the check.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::cmd::{Cmd, Error, Result};

const USAGE: &str = "usage: cargo xtask load [--duration SECONDS] [--connections N] [--threads N]";

struct Options {
    duration: u64,
    connections: u64,
    threads: u64,
}

/// One gateway configuration and the wrk run against it.
struct Scenario {
    name: &'static str,
    what: &'static str,
    /// The per-client rate limit: events per second and burst.
    rate: &'static str,
    burst: &'static str,
    path: &'static str,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "open",
        what: "limits out of reach: the cost of every layer on a fast downstream",
        rate: "10000000",
        burst: "10000000",
        path: "/api/downstream",
    },
    Scenario {
        name: "limited",
        what: "one client at 1,000 requests/s (burst 100): the rest are the intended 429s",
        rate: "1000",
        burst: "100",
        path: "/api/downstream",
    },
];

/// What every scenario runs the gateway with: a free port, a concurrency
/// cap out of reach, and a downstream that answers at once and never fails.
const GATEWAY_ARGS: &[&str] =
    &["--port", "0", "--max-inflight", "4096", "--downstream-latency-ms", "0", "--downstream-error-rate", "0"];

pub(crate) fn run(root: &Path, args: &[String]) -> Result {
    let options = parse(args)?;
    ensure_wrk(root)?;
    Cmd::cargo(root).args(["build", "--release", "-p", "conc-examples", "--bin", "gateway"]).run()?;
    let gateway = root.join("target/release/gateway");
    for scenario in SCENARIOS {
        println!("\n== scenario `{}`: {}", scenario.name, scenario.what);
        one(root, &gateway, scenario, &options)?;
    }
    Ok(())
}

fn parse(args: &[String]) -> Result<Options> {
    let mut options = Options { duration: 10, connections: 64, threads: 2 };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let slot = match flag.as_str() {
            "--duration" => &mut options.duration,
            "--connections" => &mut options.connections,
            "--threads" => &mut options.threads,
            _ => return Err(Error::new(format!("unknown argument `{flag}`\n{USAGE}"))),
        };
        *slot = args
            .next()
            .and_then(|value| value.parse().ok())
            .filter(|&value| value > 0)
            .ok_or_else(|| Error::new(format!("`{flag}` needs a positive number\n{USAGE}")))?;
    }
    Ok(options)
}

/// `wrk` from Debian's packages: installed when missing, as root only.
fn ensure_wrk(root: &Path) -> Result {
    if wrk_runs() {
        return Ok(());
    }
    let install = Cmd::new("apt-get", root).args(["install", "-y", "--no-install-recommends", "wrk"]);
    if install.run().is_err() {
        Cmd::new("apt-get", root).arg("update").run()?;
        install.run()?;
    }
    if wrk_runs() {
        Ok(())
    } else {
        Err(Error::new("wrk is still missing: install Debian's `wrk` package (apt-get install wrk)"))
    }
}

/// `wrk --version` exits 1 on some builds; finding it on `PATH` is enough.
fn wrk_runs() -> bool {
    Command::new("wrk").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

fn one(root: &Path, gateway: &Path, scenario: &Scenario, options: &Options) -> Result {
    let mut args = GATEWAY_ARGS.to_vec();
    args.extend_from_slice(&["--rate", scenario.rate, "--burst", scenario.burst]);
    println!("$ {} {}", gateway.display(), args.join(" "));
    let mut child = Command::new(gateway)
        .args(&args)
        .current_dir(root)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::new(format!("could not start the gateway: {e}")))?;
    let (url, stdout_rest) = match listening_url(&mut child) {
        Ok(found) => found,
        Err(e) => {
            // Best effort: the error above is the one to report.
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
    };
    let stderr = drain(child.stderr.take());
    let wrk = Cmd::new("wrk", root).args([
        format!("--threads={}", options.threads),
        format!("--connections={}", options.connections),
        format!("--duration={}s", options.duration),
        "--latency".to_owned(),
        "--header=x-client-id: load".to_owned(),
        format!("{url}{}", scenario.path),
    ]);
    let report = wrk.run();
    Cmd::new("kill", root).args(["-TERM", &child.id().to_string()]).run()?;
    let status = wait_with_timeout(&mut child, Duration::from_secs(30))?;
    let stdout = stdout_rest.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    println!("-- gateway after SIGTERM: {status}");
    print!("{stdout}");
    if !stderr.trim().is_empty() {
        println!("-- gateway stderr");
        print!("{stderr}");
    }
    report?;
    if status.success() { Ok(()) } else { Err(Error::new(format!("the gateway exited with {status}"))) }
}

/// Reads the gateway's stdout until its `listening on http://...` line;
/// the rest of stdout is collected by a thread, so the gateway never blocks
/// on a full pipe.
fn listening_url(child: &mut Child) -> Result<(String, JoinHandle<String>)> {
    let stdout = child.stdout.take().ok_or_else(|| Error::new("the gateway's stdout is not piped"))?;
    let mut lines = BufReader::new(stdout);
    let mut line = String::new();
    loop {
        line.clear();
        let read = lines.read_line(&mut line).map_err(|e| Error::new(format!("reading the gateway's stdout: {e}")))?;
        if read == 0 {
            return Err(Error::new("the gateway exited before it said where it listens"));
        }
        if let Some(at) = line.find("http://") {
            let url = line[at..].trim().trim_end_matches('/').to_owned();
            let rest = std::thread::spawn(move || {
                let mut rest = String::new();
                // A read error ends the collection; what was read is kept.
                let _ = lines.read_to_string(&mut rest);
                rest
            });
            return Ok((url, rest));
        }
    }
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            // As above: a read error ends the collection.
            let _ = pipe.read_to_string(&mut text);
        }
        text
    })
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Result<std::process::ExitStatus> {
    let give_up = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| Error::new(format!("waiting for the gateway: {e}")))? {
            return Ok(status);
        }
        if Instant::now() >= give_up {
            // It did not drain in time: kill it and report that.
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::new(format!("the gateway did not exit within {timeout:?} of SIGTERM")));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
