//! `cargo xtask miri`: the unit and integration tests that miri can run,
//! checked for undefined behaviour on the nightly toolchain.

use std::path::Path;

use crate::cmd::{Cmd, Result, target_dir};
use crate::toolchain;

/// What runs under miri: a package and the cargo test-target selection of
/// it. Library crates run all their unit and integration tests; from the
/// `conc-tests` crate, the suites miri can run (not the trybuild UI tests,
/// which call rustc, nor the million-iteration memory tests, which would
/// take miri hours).
pub(crate) const MIRI_CRATES: &[(&str, &[&str])] = &[
    ("conc-core", &["--lib", "--tests"]),
    ("conc-limit", &["--features", "tower", "--lib", "--tests"]),
    ("conc-group", &["--lib", "--tests"]),
    ("conc-pool", &["--lib", "--tests"]),
    ("conc-pipeline", &["--lib", "--tests"]),
    ("conc-breaker", &["--features", "tower", "--lib", "--tests"]),
    ("conc-shutdown", &["--lib", "--tests"]),
    (
        "conc-tests",
        &[
            "--test",
            "token_go_context_conformance",
            "--test",
            "token_tokio_util_conformance",
            "--test",
            "channel",
            "--test",
            "leaks",
            "--test",
            "limit_gcra",
            "--test",
            "limit_keyed",
            "--test",
            "limit_rate_property",
            "--test",
            "limit_semaphore_conformance",
            "--test",
            "limit_sliding_window",
            "--test",
            "limit_token_bucket_conformance",
            "--test",
            "group_errgroup_conformance",
            "--test",
            "group_conc_pool_conformance",
            "--test",
            "group_leaks",
            "--test",
            "breaker_gobreaker_conformance",
            "--test",
            "breaker_resilience4j_windows",
            "--test",
            "breaker_concurrency",
            "--test",
            "pool_async",
            "--test",
            "pool_cpu",
            "--test",
            "pool_invariant",
            "--test",
            "pipeline_go_examples",
            "--test",
            "pipeline_fallible",
            "--test",
            "pipeline_ordering",
            "--test",
            "shutdown_scenarios",
        ],
    ),
];

/// Provenance is checked strictly: int-to-pointer casts are errors, not
/// guesses.
const DEFAULT_MIRIFLAGS: &str = "-Zmiri-strict-provenance";

/// Installs miri if the nightly toolchain lacks it, then runs every crate in
/// [`MIRI_CRATES`] under miri. `test_args` go to the test binaries.
pub(crate) fn run(root: &Path, test_args: &[String]) -> Result {
    toolchain::ensure_nightly_components(root, &toolchain::host_triple(root)?, &["miri", "rust-src"])?;
    Cmd::nightly_cargo(root).args(["miri", "setup"]).run()?;
    // The user's MIRIFLAGS come last so that they can override ours.
    let miriflags = match std::env::var("MIRIFLAGS") {
        Ok(user) if !user.trim().is_empty() => format!("{DEFAULT_MIRIFLAGS} {}", user.trim()),
        _ => DEFAULT_MIRIFLAGS.to_owned(),
    };
    for (krate, targets) in MIRI_CRATES {
        let mut cmd = Cmd::nightly_cargo(root)
            .env("CARGO_TARGET_DIR", target_dir(Some("miri")))
            .env("MIRIFLAGS", &miriflags)
            .args(["miri", "test", "-p", krate])
            .args(targets.iter().copied());
        if !test_args.is_empty() {
            cmd = cmd.arg("--").args(test_args.iter().cloned());
        }
        cmd.run()?;
    }
    Ok(())
}
