//! Runs the `drain_pool_and_group` example as a real process: every audit
//! entry the pool accepted is written before it exits, the batch group is
//! ended by the shutdown, and the exit code is 0.

use std::process::Command;

/// The number in `line` after `prefix`, up to the next space.
fn number_after(output: &str, prefix: &str) -> u64 {
    let start = output.find(prefix).unwrap_or_else(|| panic!("no {prefix:?} in:\n{output}")) + prefix.len();
    let digits: String = output[start..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap_or_else(|_| panic!("no number after {prefix:?} in:\n{output}"))
}

#[test]
fn every_accepted_entry_is_written_before_the_process_exits() {
    let output = Command::new(env!("CARGO_BIN_EXE_drain_pool_and_group"))
        .args(["--run-for", "200"])
        .output()
        .expect("the example starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "exit {:?}:\n{stdout}", output.status);

    let accepted = number_after(&stdout, "accepted ");
    assert!(accepted > 0, "the producer ran:\n{stdout}");
    assert_eq!(number_after(&stdout, "wrote "), accepted, "nothing accepted is lost:\n{stdout}");
    assert_eq!(number_after(&stdout, "audit-pool: "), accepted, "the pool completed them all:\n{stdout}");
    assert!(stdout.contains(" 0 cancelled, 0 never ran"), "{stdout}");
    assert!(stdout.contains("batch: 4 shard scans ended by the shutdown"), "{stdout}");
    assert!(stdout.contains("exit code 0"), "{stdout}");
}
