//! The real-process tests of conc-shutdown: `shutdown_demo` runs as a child
//! process, gets real signals, and is judged by what it prints and its exit
//! status. The tests wait on the demo's own output, never on fixed sleeps;
//! the long timeouts only stop a broken build from hanging the suite.
#![cfg(unix)]

mod support;

use std::process::{Command, ExitStatus};
use std::time::Duration;

use support::Process;

/// How long to wait for a line before calling the demo stuck.
const PATIENCE: Duration = Duration::from_secs(60);

fn start(args: &[&str]) -> Process {
    Process::spawn("shutdown_demo", Command::new(env!("CARGO_BIN_EXE_shutdown_demo")).args(args), PATIENCE)
}

/// Reads the rest of the output and the exit status.
fn finish(mut demo: Process) -> (Vec<String>, ExitStatus) {
    let status = demo.finish();
    (std::mem::take(&mut demo.seen), status)
}

fn count(lines: &[String], pattern: &str) -> usize {
    lines.iter().filter(|line| line.contains(pattern)).count()
}

fn report_line<'a>(lines: &'a [String], subsystem: &str) -> &'a str {
    let needle = format!("subsystem {subsystem} ");
    lines
        .iter()
        .find(|line| line.trim_start().starts_with(&needle))
        .unwrap_or_else(|| panic!("no report line for {subsystem}:\n{}", lines.join("\n")))
}

#[test]
fn sigterm_drains_in_flight_work_and_exits_cleanly() {
    let mut demo = start(&[]);
    demo.wait_for("ready");
    // A job in flight when the signal lands must still finish.
    demo.wait_for("worker 0: job 1 started");
    demo.signal("TERM");
    let (lines, status) = finish(demo);
    let output = lines.join("\n");

    assert_eq!(status.code(), Some(0), "output:\n{output}");
    let jobs = |state: &str| lines.iter().filter(|line| line.contains(": job ") && line.ends_with(state)).count();
    assert!(jobs("started") >= 1);
    assert_eq!(jobs("started"), jobs("finished"), "a job was cut off:\n{output}");
    assert!(output.contains(&format!("jobs finished: {}", jobs("finished"))));
    // The phases' order shows in what the subsystems printed.
    let position = |text: &str| lines.iter().position(|line| line.contains(text)).unwrap_or(usize::MAX);
    // (The health check turns unhealthy during the pre-drain delay; how that
    // interleaves with other lines is up to the OS scheduler, so only its
    // presence is checked here; the paused-time unit tests check the timing.)
    assert_eq!(count(&lines, "health: reporting unhealthy"), 1);
    assert!(position("listener: stopped accepting") < position("worker 0: stopped"));
    assert!(position("worker 1: stopped") < position("metrics: cancelled"));
    assert!(position("metrics: cancelled") < position("hook: flush-logs"));
    assert!(position("hook: flush-logs") < position("hook: close-db"), "hooks run last registered first");
    // The report.
    assert!(output.contains("shutdown: trigger SIGTERM"), "output:\n{output}");
    assert!(output.contains("exit code 0"));
    for subsystem in ["listener", "workers", "workers/worker-0", "workers/worker-1", "metrics", "health"] {
        assert!(report_line(&lines, subsystem).ends_with("finished"), "{subsystem}:\n{output}");
    }
    assert!(report_line(&lines, "workers/worker-0").contains(" drain "));
    assert_eq!(count(&lines, "phase "), 4);
}

#[test]
fn a_second_signal_forces_the_shutdown() {
    let mut demo = start(&["--slow"]);
    demo.wait_for("ready");
    demo.signal("TERM");
    // Wait until the shutdown is under way and stuck on the slow subsystem.
    demo.wait_for("slow-export: told to stop");
    demo.signal("INT");
    let (lines, status) = finish(demo);
    let output = lines.join("\n");

    assert_eq!(status.code(), Some(130), "output:\n{output}");
    assert!(output.contains("shutdown: trigger SIGTERM"), "output:\n{output}");
    assert!(output.contains(", forced, exit code 130"), "output:\n{output}");
    assert!(report_line(&lines, "slow-export").ends_with("aborted (forced)"), "output:\n{output}");
    // The forced shutdown skipped the later phases and the hooks.
    assert_eq!(count(&lines, "hook: flush-logs"), 0);
    assert!(output.contains("hook flush-logs") && output.contains("aborted (forced)"));
    assert_eq!(count(&lines, "phase background"), 0);
}
