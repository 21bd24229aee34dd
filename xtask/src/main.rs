//! The project's task runner, run as `cargo xtask <task>` (an alias in
//! `.cargo/config.toml`). Std only, so that it compiles in seconds.
//!
//! Each task prints every command it runs (`$ cargo ...`) and fails with a
//! message and a non-zero exit when one of them does. Commands run from the
//! workspace root. Build variants that change `RUSTFLAGS` (loom, miri,
//! tsan) get their own target dir, so switching between them does not
//! rebuild everything.

#![allow(clippy::print_stdout, reason = "a command-line tool: printing is its output")]

mod bench;
mod bench_report;
mod ci;
mod cmd;
mod deny;
mod json;
mod load;
mod loom;
mod miri;
mod toolchain;
mod tsan;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::cmd::{Error, Result};

const USAGE: &str = "\
usage: cargo xtask <task> [args...]

tasks:
  ci [--fail-fast]      fmt check, clippy -D warnings, tests, docs -D warnings, loom, miri;
                        every step runs unless --fail-fast, then a summary
  loom [test args]      loom models (--cfg conc_loom, target/loom); test args go to
                        the test binary, default filter `loom`; LOOM_MAX_PREEMPTIONS=3
                        unless set
  miri [test args]      the tests under miri on nightly (target/miri; installs the
                        miri component if missing); MIRIFLAGS are added to
                        -Zmiri-strict-provenance
  tsan [test args]      the tests under ThreadSanitizer on nightly (target/tsan)
  bench [--quick] [--report-only] [criterion args]
                        criterion benches of conc-benches, then target/bench-report.md
                        (ours beside each peer); --quick: short warm-up and
                        measurement; --report-only: rebuild the report from the
                        last results without running
  load [--duration S] [--connections N] [--threads N]
                        the showcase gateway (release) under wrk on loopback, one run
                        per scenario, then SIGTERM and its drain report (installs
                        Debian's wrk when missing, as root)
  deny                  cargo-deny: bans, licenses, sources (installs cargo-deny if
                        missing); advisories too when CONC_DENY_ADVISORIES=1
  help                  this text
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((task, rest)) = args.split_first() else {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    };
    let root = project_root();
    let result = match task.as_str() {
        "ci" => match rest {
            [] => ci::run(&root, false),
            [flag] if flag == "--fail-fast" => ci::run(&root, true),
            _ => Err(Error::new(format!("`cargo xtask ci` takes only `--fail-fast`, got `{}`", rest.join(" ")))),
        },
        "loom" => loom::run(&root, rest),
        "miri" => miri::run(&root, rest),
        "tsan" => tsan::run(&root, rest),
        "bench" => bench::run(&root, rest),
        "load" => load::run(&root, rest),
        "deny" => no_args("deny", rest).and_then(|()| deny::run(&root)),
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => {
            eprint!("error: unknown task `{other}`\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\nerror: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: the parent of this crate's directory.
fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives one level below the workspace root").to_owned()
}

fn no_args(task: &str, rest: &[String]) -> Result {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(Error::new(format!("`cargo xtask {task}` takes no arguments, got `{}`", rest.join(" "))))
    }
}
