//! Command-line flags, parsed by hand (`--name value` or `--name=value`).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// What `--help` prints.
pub(crate) const USAGE: &str = "\
gateway: an HTTP gateway built from every conc crate

USAGE:
    cargo run --release -p conc-examples --bin gateway -- [FLAGS]

FLAGS:
    --port N                    port on 127.0.0.1 to listen on, 0 picks a free one [default: 8080]
    --rate R                    requests per second allowed to each client [default: 50]
    --burst B                   requests a client may make at once [default: 100]
    --max-inflight N            API requests handled at once [default: 64]
    --max-waiters N             requests that may queue for a slot; 0 sheds at once [default: 32]
    --downstream-latency-ms MS  latency of the simulated downstream [default: 20]
    --downstream-error-rate P   share of downstream calls that fail, 0.0..=1.0 [default: 0.0]
    --breaker-open-ms MS        how long the breaker stays open before a trial [default: 5000]
    --drain-timeout-ms MS       how long in-flight requests may take to finish on shutdown [default: 10000]
    --audit-log PATH            the audit log file [default: conc-gateway-audit.log in the temp dir]
    -h, --help                  print this help

The client of a request is its x-client-id header, else its IP address.
Change the downstream at run time: curl -X POST 'http://127.0.0.1:8080/admin/downstream?error_rate=1.0'
";

/// The gateway's settings.
#[derive(Clone, Debug)]
pub(crate) struct Flags {
    pub(crate) port: u16,
    pub(crate) rate: f64,
    pub(crate) burst: u32,
    pub(crate) max_inflight: usize,
    pub(crate) max_waiters: usize,
    pub(crate) downstream_latency: Duration,
    pub(crate) downstream_error_rate: f64,
    pub(crate) breaker_open: Duration,
    pub(crate) drain_timeout: Duration,
    pub(crate) audit_log: PathBuf,
}

impl Default for Flags {
    fn default() -> Self {
        Flags {
            port: 8080,
            rate: 50.0,
            burst: 100,
            max_inflight: 64,
            max_waiters: 32,
            downstream_latency: Duration::from_millis(20),
            downstream_error_rate: 0.0,
            breaker_open: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(10),
            audit_log: std::env::temp_dir().join("conc-gateway-audit.log"),
        }
    }
}

/// What the command line asks for.
#[derive(Debug)]
pub(crate) enum Command {
    Run(Flags),
    Help,
}

/// A command line that cannot be used.
#[derive(Debug)]
pub(crate) struct FlagError(String);

impl fmt::Display for FlagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FlagError {}

impl Command {
    /// Parses the arguments after the program name.
    pub(crate) fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, FlagError> {
        let mut flags = Flags::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            if arg == "-h" || arg == "--help" {
                return Ok(Command::Help);
            }
            let (name, inline) = match arg.split_once('=') {
                Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
                None => (arg, None),
            };
            let Some(value) = inline.or_else(|| args.next()) else {
                return Err(FlagError(format!("{name} needs a value")));
            };
            match name.as_str() {
                "--port" => flags.port = number(&name, &value)?,
                "--rate" => flags.rate = positive(&name, number(&name, &value)?)?,
                "--burst" => flags.burst = at_least_one(&name, number(&name, &value)?)?,
                "--max-inflight" => flags.max_inflight = at_least_one(&name, number(&name, &value)?)?,
                "--max-waiters" => flags.max_waiters = number(&name, &value)?,
                "--downstream-latency-ms" => flags.downstream_latency = millis(&name, &value)?,
                "--downstream-error-rate" => flags.downstream_error_rate = share(&name, number(&name, &value)?)?,
                "--breaker-open-ms" => flags.breaker_open = millis(&name, &value)?,
                "--drain-timeout-ms" => flags.drain_timeout = millis(&name, &value)?,
                "--audit-log" => flags.audit_log = PathBuf::from(value),
                _ => return Err(FlagError(format!("unknown flag {name}"))),
            }
        }
        Ok(Command::Run(flags))
    }
}

fn number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, FlagError> {
    value.parse().map_err(|_| FlagError(format!("{name}: `{value}` is not a valid number")))
}

fn positive(name: &str, value: f64) -> Result<f64, FlagError> {
    if value.is_finite() && value > 0.0 { Ok(value) } else { Err(FlagError(format!("{name} must be above 0"))) }
}

fn at_least_one<T: PartialOrd + From<u8>>(name: &str, value: T) -> Result<T, FlagError> {
    if value >= T::from(1) { Ok(value) } else { Err(FlagError(format!("{name} must be at least 1"))) }
}

/// A probability: 0.0 to 1.0.
pub(crate) fn share(name: &str, value: f64) -> Result<f64, FlagError> {
    if (0.0..=1.0).contains(&value) { Ok(value) } else { Err(FlagError(format!("{name} must be between 0.0 and 1.0"))) }
}

fn millis(name: &str, value: &str) -> Result<Duration, FlagError> {
    number(name, value).map(Duration::from_millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, FlagError> {
        Command::parse(args.iter().map(|arg| (*arg).to_owned()))
    }

    #[test]
    fn both_spellings_and_defaults() {
        let Ok(Command::Run(flags)) = parse(&["--port", "0", "--rate=2.5", "--breaker-open-ms", "300"]) else {
            panic!("should parse")
        };
        assert_eq!(flags.port, 0);
        assert!((flags.rate - 2.5).abs() < f64::EPSILON);
        assert_eq!(flags.breaker_open, Duration::from_millis(300));
        assert_eq!(flags.burst, Flags::default().burst);
    }

    #[test]
    fn bad_input_is_rejected() {
        for args in [
            &["--rate", "0"][..],
            &["--rate", "NaN"],
            &["--burst", "0"],
            &["--max-inflight", "0"],
            &["--downstream-error-rate", "1.5"],
            &["--port", "70000"],
            &["--port"],
            &["--nope", "1"],
        ] {
            assert!(parse(args).is_err(), "{args:?} should be rejected");
        }
        assert!(matches!(parse(&["--help"]), Ok(Command::Help)));
    }
}
