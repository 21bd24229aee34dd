//! `cargo xtask loom`: the `#[cfg(conc_loom)]` model-checking tests.
//!
//! The cfg is namespaced (`conc_loom`, like crossbeam's `crossbeam_loom`):
//! a bare `--cfg loom` reaches every dependency and breaks event-listener's
//! build. The loom build gets its own target dir so that switching between
//! it and a normal build does not rebuild everything.

use std::path::Path;

use crate::cmd::{Cmd, Result, append_flags, target_dir};

/// The crates that have loom models, each run with
/// `--no-default-features --lib` (the models live in the library's unit
/// tests and need neither tokio nor the integration tests).
pub(crate) const LOOM_CRATES: &[&str] =
    &["conc-core", "conc-limit", "conc-group", "conc-pool", "conc-pipeline", "conc-breaker", "conc-shutdown"];

/// How many preemptions loom explores per execution unless
/// `LOOM_MAX_PREEMPTIONS` says otherwise: 3 finds the races the models are
/// written for while keeping the run to minutes on two cores.
const DEFAULT_MAX_PREEMPTIONS: &str = "3";

/// Runs the loom models of every crate in [`LOOM_CRATES`]. `test_args` go
/// to the test binaries; when they hold no test-name filter, `loom` is used
/// as the filter.
pub(crate) fn run(root: &Path, test_args: &[String]) -> Result {
    let rustflags = append_flags("RUSTFLAGS", "--cfg conc_loom");
    let preemptions = std::env::var("LOOM_MAX_PREEMPTIONS").unwrap_or_else(|_| DEFAULT_MAX_PREEMPTIONS.to_owned());
    for krate in LOOM_CRATES {
        let mut cmd = Cmd::cargo(root)
            .env("RUSTFLAGS", &rustflags)
            .env("CARGO_TARGET_DIR", target_dir(Some("loom")))
            .env("LOOM_MAX_PREEMPTIONS", &preemptions)
            .args(["test", "--release", "-p", krate, "--no-default-features", "--lib", "--"]);
        if !has_test_filter(test_args) {
            cmd = cmd.arg("loom");
        }
        cmd.args(test_args.iter().cloned()).run()?;
    }
    Ok(())
}

/// Whether libtest arguments hold a positional test-name filter, as opposed
/// to only options (`--nocapture`, `--test-threads 1`, ...).
pub(crate) fn has_test_filter(args: &[String]) -> bool {
    const TAKES_VALUE: &[&str] =
        &["--test-threads", "--skip", "--color", "--format", "--logfile", "--shuffle-seed", "-Z"];
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if TAKES_VALUE.contains(&arg.as_str()) {
            args.next();
        } else if !arg.starts_with('-') {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn option_values_are_not_filters() {
        assert!(!has_test_filter(&args(&[])));
        assert!(!has_test_filter(&args(&["--nocapture", "--test-threads", "1", "--skip", "slow"])));
        assert!(!has_test_filter(&args(&["--test-threads=1"])));
        assert!(has_test_filter(&args(&["--nocapture", "cancel_races_child"])));
    }
}
