//! The end of a run: the `sha256sum` output lines, and the summary printed
//! on stderr however the run ended.

use std::fmt;
use std::io::{self, Write};
use std::time::Duration;

use conc_core::Token;
use conc_pipeline::{PipelineError, PipelineReport, StageReport};
use conc_shutdown::Signal;
use indicatif::HumanBytes;

use crate::hash::Hashed;
use crate::progress::{Load, stage};

/// Exit status when some files or directories could not be read.
pub(crate) const EXIT_ERRORS: u8 = 1;
/// Exit status for a bad command line or a path that does not exist.
pub(crate) const EXIT_USAGE: u8 = 2;

/// Writes one `sha256sum` line for `hashed` into `line`: `<hex>  <path>`,
/// with `sha256sum`'s escaping (a leading `\`, and `\\`, `\n`, `\r` in the
/// name) when the name holds a backslash or a line break.
pub(crate) fn format_line(line: &mut Vec<u8>, hashed: &Hashed) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    line.clear();
    let name = hashed.path.as_os_str().as_encoded_bytes();
    let escape = name.iter().any(|byte| matches!(byte, b'\\' | b'\n' | b'\r'));
    if escape {
        line.push(b'\\');
    }
    for byte in hashed.sum {
        line.extend([HEX[usize::from(byte >> 4)], HEX[usize::from(byte & 0xf)]]);
    }
    line.extend_from_slice(b"  ");
    for &byte in name {
        match byte {
            b'\\' if escape => line.extend_from_slice(b"\\\\"),
            b'\n' => line.extend_from_slice(b"\\n"),
            b'\r' => line.extend_from_slice(b"\\r"),
            _ => line.push(byte),
        }
    }
    line.push(b'\n');
}

/// The pipeline's sink: writes each line to stdout as it comes, in the
/// pipeline's order, so what an interrupted run printed is still valid.
#[derive(Debug)]
pub(crate) struct Output {
    stdout: io::Stdout,
    line: Vec<u8>,
    /// Lines written.
    pub(crate) printed: u64,
    /// The write error that stopped the run, if any.
    pub(crate) failed: Option<io::Error>,
    /// Cancelled when stdout fails: there is no point hashing on.
    token: Token,
}

impl Output {
    pub(crate) fn new(token: Token) -> Output {
        Output { stdout: io::stdout(), line: Vec::with_capacity(128), printed: 0, failed: None, token }
    }

    /// Writes `hashed`'s line. stdout is line buffered, so each line goes
    /// out whole, at once (a slow reader blocks this thread, as any
    /// program's output would; the run's other tasks go on elsewhere).
    pub(crate) fn write(&mut self, hashed: &Hashed) {
        if self.failed.is_some() {
            return;
        }
        format_line(&mut self.line, hashed);
        match self.stdout.write_all(&self.line) {
            Ok(()) => self.printed += 1,
            Err(error) => {
                self.failed = Some(error);
                self.token.cancel();
            }
        }
    }
}

/// How the pipeline's run ended, as its sink returned it.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) result: Result<PipelineReport, PipelineError>,
    pub(crate) printed: u64,
    pub(crate) output_error: Option<io::Error>,
}

/// Why a run did not go through every file.
#[derive(Debug)]
pub(crate) enum Stop {
    /// A signal cancelled it.
    Signal(Signal),
    /// Something failed: the output, or the run itself.
    Failed(String),
}

/// The figures of a run, printed on stderr at its end.
#[derive(Debug)]
pub(crate) struct Summary {
    pub(crate) stopped: Option<Stop>,
    pub(crate) stages: Vec<StageReport>,
    pub(crate) dropped_in_flight: u64,
    pub(crate) elapsed: Duration,
    pub(crate) printed: u64,
    pub(crate) bytes: u64,
    pub(crate) skipped: u64,
    pub(crate) walk_errors: u64,
    /// Time the walk spent listing directories.
    pub(crate) walk_busy: Duration,
    pub(crate) hash_workers: usize,
}

impl Summary {
    fn count(&self, name: &str, field: fn(&StageReport) -> u64) -> u64 {
        stage(&self.stages, name).map_or(0, field)
    }

    /// Files that could not be hashed.
    fn failed(&self) -> u64 {
        self.count("hash", |stage| stage.errors)
    }

    /// The process's exit status: 128 + the signal's number if one stopped
    /// the run (as a shell reports an interrupted program), 1 if anything
    /// failed, else 0.
    pub(crate) fn exit_code(&self) -> u8 {
        match &self.stopped {
            Some(Stop::Signal(Signal::Terminate)) => 128 + 15,
            Some(Stop::Signal(_)) => 128 + 2,
            Some(Stop::Failed(_)) => EXIT_ERRORS,
            None if self.failed() + self.walk_errors > 0 => EXIT_ERRORS,
            None => 0,
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let elapsed = self.elapsed;
        match &self.stopped {
            None => writeln!(f, "hashdir: done in {elapsed:.2?}")?,
            Some(Stop::Signal(signal)) => writeln!(f, "hashdir: stopped by {signal} after {elapsed:.2?}")?,
            Some(Stop::Failed(why)) => writeln!(f, "hashdir: stopped after {elapsed:.2?}: {why}")?,
        }
        let found = self.count("walk", |stage| stage.items_out);
        write!(
            f,
            "  files   {} hashed, {} failed, {} dropped in flight, of {found} found",
            self.printed,
            self.failed(),
            self.dropped_in_flight
        )?;
        if self.skipped > 0 {
            write!(f, " ({} links and special files skipped)", self.skipped)?;
        }
        if self.walk_errors > 0 {
            write!(f, "; {} directories could not be read", self.walk_errors)?;
        }
        writeln!(f)?;
        let seconds = elapsed.as_secs_f64().max(1e-9);
        writeln!(f, "  bytes   {} hashed", HumanBytes(self.bytes))?;
        writeln!(
            f,
            "  rate    {:.0} files/s, {}/s",
            self.printed as f64 / seconds,
            HumanBytes((self.bytes as f64 / seconds) as u64)
        )?;
        for stage in &self.stages {
            let busy = match stage.name.as_str() {
                "hash" => format!("busy {:.2?} over {} workers", stage.busy, self.hash_workers),
                "walk" => format!("busy {:.2?} listing directories", self.walk_busy),
                _ => format!("busy {:.2?}", stage.busy),
            };
            writeln!(
                f,
                "  stage   {:<5} {} in, {} out, {} errors; {busy}, waited {:.2?} for room downstream",
                stage.name, stage.items_in, stage.items_out, stage.errors, stage.waiting_downstream
            )?;
        }
        if let Some(hash) = stage(&self.stages, "hash") {
            writeln!(f, "  {}", Load::of(self.walk_busy, hash, elapsed, self.hash_workers))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn line(path: &str) -> String {
        let mut line = Vec::new();
        let mut sum = [0_u8; 32];
        sum[0] = 0xab;
        sum[31] = 0x01;
        format_line(&mut line, &Hashed { path: PathBuf::from(path), sum });
        String::from_utf8(line).expect("utf-8")
    }

    #[test]
    fn lines_are_sha256sum_lines() {
        let hex = format!("ab{}01", "00".repeat(30));
        assert_eq!(line("dir/a file.txt"), format!("{hex}  dir/a file.txt\n"));
        // sha256sum's escaping: a leading backslash, then escaped names.
        assert_eq!(line("back\\slash"), format!("\\{hex}  back\\\\slash\n"));
        assert_eq!(line("two\nlines\r"), format!("\\{hex}  two\\nlines\\r\n"));
    }

    #[test]
    fn exit_codes_follow_how_the_run_ended() {
        let summary = |stopped, walk_errors| Summary {
            stopped,
            stages: Vec::new(),
            dropped_in_flight: 0,
            elapsed: Duration::ZERO,
            printed: 0,
            bytes: 0,
            skipped: 0,
            walk_errors,
            walk_busy: Duration::ZERO,
            hash_workers: 1,
        };
        assert_eq!(summary(None, 0).exit_code(), 0);
        assert_eq!(summary(None, 1).exit_code(), EXIT_ERRORS);
        assert_eq!(summary(Some(Stop::Failed("output".into())), 0).exit_code(), EXIT_ERRORS);
        assert_eq!(summary(Some(Stop::Signal(Signal::Interrupt)), 1).exit_code(), 130);
        assert_eq!(summary(Some(Stop::Signal(Signal::Terminate)), 0).exit_code(), 143);
    }
}
