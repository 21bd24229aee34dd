//! Command-line parsing, by hand: two options and a list of paths.

use std::ffi::OsString;
use std::fmt;
use std::num::NonZeroUsize;
use std::path::PathBuf;

/// The text `--help` prints, and a usage error prints after its message.
pub(crate) const USAGE: &str = "\
hashdir: the SHA-256 of every file under the given paths, hashed in parallel,
printed as `sha256sum` prints them (check them with `sha256sum -c`).

usage: hashdir [-j N | --jobs N] [PATH]...

  PATH           a directory to walk (default: the current directory), or a
                 file or pipe to hash. Walks skip directories named `target`
                 and `.git`, do not follow symbolic links, and skip special
                 files (sockets, devices, FIFOs).
  -j, --jobs N   files hashed at once (default: the number of CPUs)
  -h, --help     print this help

A progress bar shows on stderr when it is a terminal. Ctrl-C (or SIGTERM)
stops the run and prints a summary, as a normal end does.

exit status: 0 done; 1 some files could not be read; 2 bad usage or a path
that does not exist; 130 stopped by SIGINT; 143 stopped by SIGTERM.";

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Command {
    /// Print [`USAGE`] and exit.
    Help,
    /// Hash the given paths.
    Run(Args),
}

/// The settings of a run.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Args {
    /// What to hash, in order; `.` if none was given.
    pub(crate) paths: Vec<PathBuf>,
    /// Files hashed at once.
    pub(crate) jobs: NonZeroUsize,
}

/// A command line that cannot be used.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct UsageError(String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn parse_jobs(value: Option<OsString>) -> Result<NonZeroUsize, UsageError> {
    let value = value.ok_or_else(|| UsageError("--jobs needs a value".into()))?;
    value
        .to_str()
        .and_then(|text| text.parse::<NonZeroUsize>().ok())
        .ok_or_else(|| UsageError(format!("--jobs wants a whole number of at least 1, not {value:?}")))
}

/// Parses the arguments after the program name.
///
/// # Errors
///
/// A [`UsageError`] for an unknown option or a bad `--jobs` value.
pub(crate) fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command, UsageError> {
    let mut args = args.into_iter();
    let mut paths = Vec::new();
    let mut jobs = None;
    let mut options_done = false;
    while let Some(arg) = args.next() {
        let text = arg.to_str().unwrap_or("");
        if options_done || !text.starts_with('-') || text == "-" {
            paths.push(PathBuf::from(arg));
            continue;
        }
        match text {
            "--" => options_done = true,
            "-h" | "--help" => return Ok(Command::Help),
            "-j" | "--jobs" => jobs = Some(parse_jobs(args.next())?),
            _ => {
                if let Some(value) = text.strip_prefix("--jobs=") {
                    jobs = Some(parse_jobs(Some(value.into()))?);
                } else {
                    return Err(UsageError(format!("unknown option {text}")));
                }
            }
        }
    }
    if paths.is_empty() {
        paths.push(PathBuf::from("."));
    }
    let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN));
    Ok(Command::Run(Args { paths, jobs }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_strs(args: &[&str]) -> Result<Command, UsageError> {
        parse(args.iter().map(OsString::from))
    }

    fn run(paths: &[&str], jobs: usize) -> Command {
        let jobs = NonZeroUsize::new(jobs).expect("jobs > 0");
        Command::Run(Args { paths: paths.iter().map(PathBuf::from).collect(), jobs })
    }

    #[test]
    fn paths_and_jobs_in_any_order() {
        assert_eq!(parse_strs(&["-j", "3", "a", "b"]), Ok(run(&["a", "b"], 3)));
        assert_eq!(parse_strs(&["a", "--jobs=5", "b", "--jobs", "2"]), Ok(run(&["a", "b"], 2)));
        assert_eq!(parse_strs(&["-j", "1"]), Ok(run(&["."], 1)), "the current directory by default");
    }

    #[test]
    fn a_double_dash_ends_the_options() {
        assert_eq!(parse_strs(&["-j", "2", "--", "--help", "-"]), Ok(run(&["--help", "-"], 2)));
    }

    #[test]
    fn help_wins_over_everything_before_it() {
        assert_eq!(parse_strs(&["a", "-h"]), Ok(Command::Help));
        assert_eq!(parse_strs(&["--jobs", "2", "--help", "--bogus"]), Ok(Command::Help));
    }

    #[test]
    fn bad_options_are_usage_errors() {
        for args in [&["-x"][..], &["--jobs"], &["--jobs", "0"], &["-j", "two"], &["--jobs="], &["--job=2"]] {
            assert!(parse_strs(args).is_err(), "{args:?}");
        }
    }
}
