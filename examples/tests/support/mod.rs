//! What the process tests share: a program started as a child process,
//! its stdout read line by line on a thread, waited on for a condition
//! with a deadline (never for a fixed time), signalled with `kill`, and
//! killed if a test fails half way.
#![allow(dead_code, reason = "each test file uses the part it needs")]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// A child process and the lines it has printed so far.
pub(crate) struct Process {
    child: Child,
    name: &'static str,
    /// How long to wait for anything before calling the program stuck.
    patience: Duration,
    lines: Receiver<String>,
    /// Every stdout line received so far, in order.
    pub(crate) seen: Vec<String>,
}

impl Process {
    /// Starts `command` with its stdout piped to a reader thread.
    pub(crate) fn spawn(name: &'static str, command: &mut Command, patience: Duration) -> Process {
        let mut child = command.stdout(Stdio::piped()).spawn().unwrap_or_else(|e| panic!("start {name}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Process { child, name, patience, lines, seen: Vec::new() }
    }

    /// The child, for what only some tests need (its pid, its stderr).
    pub(crate) fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Waits until the program has printed a line containing `text` (it
    /// may already have: output from several threads interleaves), and
    /// returns that line.
    pub(crate) fn wait_for(&mut self, text: &str) -> String {
        if let Some(line) = self.seen.iter().find(|line| line.contains(text)) {
            return line.clone();
        }
        let give_up = Instant::now() + self.patience;
        loop {
            match self.lines.recv_timeout(give_up.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => panic!("no `{text}` line; output so far:\n{}", self.seen.join("\n")),
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("{} exited before `{text}`; output:\n{}", self.name, self.seen.join("\n"))
                }
            }
        }
    }

    /// Waits until `count` lines have come out.
    pub(crate) fn wait_for_lines(&mut self, count: usize) {
        let give_up = Instant::now() + self.patience;
        while self.seen.len() < count {
            match self.lines.recv_timeout(give_up.saturating_duration_since(Instant::now())) {
                Ok(line) => self.seen.push(line),
                Err(error) => panic!("{error} after {} of {count} lines: {:?}", self.seen.len(), self.seen),
            }
        }
    }

    /// Sends `signal` (a name such as `TERM`) with `kill`.
    pub(crate) fn signal(&self, signal: &str) {
        let status =
            Command::new("kill").arg(format!("-{signal}")).arg(self.child.id().to_string()).status().expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Reads the rest of the output and waits for the exit status, each
    /// within the patience.
    pub(crate) fn finish(&mut self) -> ExitStatus {
        let give_up = Instant::now() + self.patience;
        // The pipe closes when the program exits: the reader ends.
        while let Ok(line) = self.lines.recv_timeout(give_up.saturating_duration_since(Instant::now())) {
            self.seen.push(line);
        }
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the child") {
                return status;
            }
            assert!(Instant::now() < give_up, "{} did not exit; output so far:\n{}", self.name, self.seen.join("\n"));
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // Best effort: the process may be gone already.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
